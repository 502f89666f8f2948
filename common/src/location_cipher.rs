//! `metadata_encryption_key`: image locations are encrypted by the API node before they reach
//! the registry, so the database holds no store URL (nor the credentials some carry).
//!
//! Glance used AES-CBC without authentication; this is AES-GCM (the key's length picks
//! AES-128, -192 or -256) with a random 96-bit nonce per value: a value that was tampered with,
//! or written under another key, fails to decrypt instead of turning into a wrong URL. Stored
//! form: URL-safe base64 (no padding) of `nonce || ciphertext || tag`. That alphabet has no
//! `:`, so a location stored before the key was set (always `scheme://...`) is recognised and
//! read as it is.

use crate::error::Error;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::aes::Aes192;
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::fmt;

type Aes192Gcm = AesGcm<Aes192, aes_gcm::aead::consts::U12>;

const NONCE: usize = 12;

enum Cipher {
    Aes128(Aes128Gcm),
    Aes192(Aes192Gcm),
    Aes256(Aes256Gcm),
}

pub struct LocationCipher {
    cipher: Cipher,
}

impl fmt::Debug for LocationCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocationCipher(***)")
    }
}

impl LocationCipher {
    /// A key of 16, 24 or 32 bytes, as Glance requires.
    pub fn new(key: &str) -> Result<Self, String> {
        let key = key.as_bytes();
        let invalid = |_| "must be 16, 24 or 32 bytes long".to_string();
        let cipher = match key.len() {
            16 => Cipher::Aes128(Aes128Gcm::new_from_slice(key).map_err(invalid)?),
            24 => Cipher::Aes192(Aes192Gcm::new_from_slice(key).map_err(invalid)?),
            32 => Cipher::Aes256(Aes256Gcm::new_from_slice(key).map_err(invalid)?),
            _ => return Err("must be 16, 24 or 32 bytes long".into()),
        };
        Ok(Self { cipher })
    }

    pub fn encrypt(&self, location: &str) -> String {
        let nonce = Aes128Gcm::generate_nonce(&mut OsRng);
        let sealed = match &self.cipher {
            Cipher::Aes128(c) => c.encrypt(&nonce, location.as_bytes()),
            Cipher::Aes192(c) => c.encrypt(&nonce, location.as_bytes()),
            Cipher::Aes256(c) => c.encrypt(&nonce, location.as_bytes()),
        }
        .expect("AES-GCM encrypts any URL-sized input");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The location a stored value stands for; a plain `scheme://` value from before the key
    /// was set passes through.
    pub fn decrypt(&self, stored: &str) -> Result<String, Error> {
        if stored.contains("://") {
            return Ok(stored.to_string());
        }
        let failed = || {
            log::error!("an image location could not be decrypted: another metadata_encryption_key, or altered data");
            Error::internal("an image location could not be decrypted")
        };
        let raw = URL_SAFE_NO_PAD.decode(stored).map_err(|_| failed())?;
        if raw.len() < NONCE {
            return Err(failed());
        }
        let (nonce, sealed) = raw.split_at(NONCE);
        let nonce = aes_gcm::Nonce::from_slice(nonce);
        let plain = match &self.cipher {
            Cipher::Aes128(c) => c.decrypt(nonce, sealed),
            Cipher::Aes192(c) => c.decrypt(nonce, sealed),
            Cipher::Aes256(c) => c.decrypt(nonce, sealed),
        }
        .map_err(|_| failed())?;
        String::from_utf8(plain).map_err(|_| failed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_every_key_size_and_a_fresh_nonce_each_time() {
        for key in ["0123456789abcdef", "0123456789abcdef01234567", "0123456789abcdef0123456789abcdef"] {
            let c = LocationCipher::new(key).expect("key");
            let url = "swift+https://tenant:user:p4ss@auth.example.com/v2.0/glance/abc";
            let (a, b) = (c.encrypt(url), c.encrypt(url));
            assert_ne!(a, b, "random nonce");
            assert!(!a.contains("p4ss") && !a.contains("://"));
            assert_eq!(c.decrypt(&a).expect("decrypt"), url);
        }
        assert!(LocationCipher::new("short").is_err());
    }

    #[test]
    fn tampering_and_wrong_keys_fail_plain_urls_pass() {
        let c = LocationCipher::new("0123456789abcdef").expect("key");
        let other = LocationCipher::new("fedcba9876543210").expect("key");
        let sealed = c.encrypt("file:///var/lib/glance/images/x");
        assert!(other.decrypt(&sealed).is_err());
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).expect("b64");
        bytes[NONCE] ^= 1;
        assert!(c.decrypt(&URL_SAFE_NO_PAD.encode(bytes)).is_err());
        assert!(c.decrypt("AAAA").is_err());
        assert_eq!(c.decrypt("http://example.com/a").expect("plain"), "http://example.com/a");
    }
}
