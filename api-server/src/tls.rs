//! HTTPS for glance-api when `cert_file` and `key_file` are set (PEM files).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// A rustls server config from the certificate chain and private key files.
pub fn server_config(files: &TlsFiles) -> io::Result<rustls::ServerConfig> {
    let bad = |what: &str, path: &PathBuf, e: &dyn std::fmt::Display| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("{what} {}: {e}", path.display()))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert_file)
        .and_then(|certs| certs.collect())
        .map_err(|e| bad("cert_file", &files.cert_file, &e))?;
    if certs.is_empty() {
        return Err(bad("cert_file", &files.cert_file, &"no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key_file).map_err(|e| bad("key_file", &files.key_file, &e))?;
    rustls::ServerConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad("key_file", &files.key_file, &e))
}
