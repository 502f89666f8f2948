//! glance-api.conf, as a typed value.

use glance_common::config::{ConfigError, DEFAULT_SECTION, RawConfig, SERVER_KEYS, ServerOptions};
use glance_common::context::AuthOptions;
use glance_common::model::{DEFAULT_CONTAINER_FORMATS, DEFAULT_DISK_FORMATS};
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_PORT: u16 = 9292;

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub server: ServerOptions,
    pub registry_host: String,
    pub registry_port: u16,
    pub registry_timeout: Duration,
    pub enable_v1_api: bool,
    pub enable_v2_api: bool,
    pub auth: AuthOptions,
    /// `file` or `http`: where uploads go unless `x-image-meta-store` says otherwise.
    pub default_store: String,
    /// The Swift store, when `swift_store_auth_address` is set.
    pub swift: Option<crate::store::swift::SwiftOptions>,
    /// The S3 store, when `s3_store_host` is set.
    pub s3: Option<crate::store::s3::S3Options>,
    /// The image cache: `caching` / `cachemanagement` in the flavor, and where it lives.
    pub cache_mode: crate::cache::CacheMode,
    pub image_cache_dir: Option<PathBuf>,
    pub image_cache_driver: crate::cache::CacheDriver,
    pub image_cache_sqlite_db: String,
    pub image_cache_max_size: u64,
    pub image_cache_stall_time: u64,
    /// How downloads order an image's locations.
    pub location_strategy: crate::store::LocationStrategy,
    /// Whether the v2 API shows `direct_url` / `locations` (v1 never shows locations).
    pub show_image_direct_url: bool,
    pub show_multiple_locations: bool,
    pub filesystem_store_datadir: PathBuf,
    /// Largest image accepted, in bytes.
    pub image_size_cap: u64,
    /// Custom properties per image; negative means unlimited.
    pub image_property_quota: i64,
    /// Members per image; negative means unlimited.
    pub image_member_quota: i64,
    /// Tags and locations per image: read and checked now, enforced by the v2 API (v1 has
    /// neither tags nor several locations per image).
    pub image_tag_quota: i64,
    pub image_location_quota: i64,
    /// Encrypts image locations in the registry (16, 24 or 32 bytes).
    pub metadata_encryption_key: Option<glance_common::keystone::Secret>,
    /// Bytes each owner may store in all; 0 means unlimited.
    pub user_storage_quota: u64,
    /// `delayed_delete`: a DELETE leaves the data to glance-scrubber, `scrub_time` later.
    pub delayed_delete: Option<Duration>,
    /// `property_protection_file` and `property_protection_rule_format`.
    pub property_protection: Option<(PathBuf, crate::protections::Format)>,
    pub policy_file: Option<PathBuf>,
    pub policy_default_rule: String,
    pub disk_formats: Vec<String>,
    pub container_formats: Vec<String>,
    /// HTTPS when both `cert_file` and `key_file` are set.
    pub tls: Option<crate::tls::TlsFiles>,
    /// How long an upload may stall before it is abandoned.
    pub client_socket_timeout: Duration,
}

/// Options glance-api reads; anything else in its files draws a warning.
const KEYS: &[(&str, &str)] = &[
    ("default", "registry_host"),
    ("default", "registry_port"),
    ("default", "registry_client_timeout"),
    ("default", "enable_v1_api"),
    ("default", "enable_v2_api"),
    ("default", "owner_is_tenant"),
    ("default", "admin_role"),
    ("default", "default_store"),
    ("glance_store", "default_store"),
    ("default", "filesystem_store_datadir"),
    ("glance_store", "filesystem_store_datadir"),
    ("default", "image_size_cap"),
    ("default", "image_property_quota"),
    ("default", "image_member_quota"),
    ("default", "image_tag_quota"),
    ("default", "location_strategy"),
    ("default", "image_cache_dir"),
    ("default", "image_cache_driver"),
    ("default", "image_cache_sqlite_db"),
    ("default", "image_cache_max_size"),
    ("default", "image_cache_stall_time"),
    ("store_type_location_strategy", "store_type_preference"),
    ("default", "show_image_direct_url"),
    ("default", "show_multiple_locations"),
    ("default", "image_location_quota"),
    ("default", "policy_file"),
    ("default", "policy_default_rule"),
    ("oslo_policy", "policy_file"),
    ("oslo_policy", "policy_default_rule"),
    ("image_format", "disk_formats"),
    ("image_format", "container_formats"),
    ("default", "disk_formats"),
    ("default", "container_formats"),
    // v1 never shows locations, whatever these say; v2 will read them.
    ("default", "show_image_direct_url"),
    ("default", "show_multiple_locations"),
    // Protections, quotas, delayed delete, encryption, TLS and the auth flavor.
    ("default", "property_protection_file"),
    ("default", "property_protection_rule_format"),
    ("default", "user_storage_quota"),
    ("default", "delayed_delete"),
    ("default", "scrub_time"),
    // glance-scrubber's (its config uses glance-api's option names); the queue itself lives
    // in the registry's database, so scrubber_datadir and lock_path are accepted and unused.
    ("default", "daemon"),
    ("default", "wakeup_time"),
    ("default", "scrubber_datadir"),
    ("default", "lock_path"),
    ("default", "cleanup_scrubber"),
    ("default", "cleanup_scrubber_time"),
    ("default", "metadata_encryption_key"),
    ("default", "client_socket_timeout"),
    ("default", "cert_file"),
    ("default", "key_file"),
    ("paste_deploy", "flavor"),
    ("default", "registry_shared_secret"),
    ("default", "allow_anonymous_access"),
    ("paste_deploy", "config_file"),
];

/// `location_strategy` and, for `store_type`, `[store_type_location_strategy]
/// store_type_preference`.
fn location_strategy(raw: &RawConfig) -> Result<crate::store::LocationStrategy, ConfigError> {
    use crate::store::{LocationStrategy, Scheme};
    let d = DEFAULT_SECTION;
    match raw.string(d, "location_strategy").as_deref().unwrap_or("location_order") {
        "location_order" => Ok(LocationStrategy::LocationOrder),
        "store_type" => {
            let section = "store_type_location_strategy";
            let names = raw.string(section, "store_type_preference").unwrap_or_default();
            let preference = names
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| {
                    Scheme::parse(n).ok_or_else(|| raw.invalid(section, "store_type_preference", n, "unknown store"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(LocationStrategy::StoreType(preference))
        }
        other => Err(raw.invalid(d, "location_strategy", other, "must be location_order or store_type")),
    }
}

/// A size as Glance writes it: bytes, or a number with `B`, `KB`, `MB`, `GB` or `TB` (powers
/// of 1024, any case, optional space).
pub fn parse_bytes(value: &str) -> Result<u64, String> {
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let number: u64 = number.parse().map_err(|_| "expected a number of bytes, optionally with B, KB, MB, GB or TB")?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "KB" => 10,
        "MB" => 20,
        "GB" => 30,
        "TB" => 40,
        _ => return Err("the unit must be B, KB, MB, GB or TB".into()),
    };
    number.checked_mul(1 << shift).ok_or_else(|| "too large".to_string())
}

impl ApiConfig {
    pub fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        let d = DEFAULT_SECTION;
        let registry_host = match raw.string(d, "registry_host") {
            // Glance's default 0.0.0.0 means "this host" to a client.
            None => "127.0.0.1".to_string(),
            Some(h) if h == "0.0.0.0" => "127.0.0.1".to_string(),
            Some(h) => h,
        };
        // [glance_store] (newer configs) wins over the [DEFAULT] spelling.
        let store_option = |key: &str| raw.string("glance_store", key).or_else(|| raw.string(d, key));
        let default_store = store_option("default_store").unwrap_or_else(|| "file".into()).to_lowercase();
        let swift = crate::store::swift::SwiftOptions::from_raw(raw)?;
        let s3 = crate::store::s3::S3Options::from_raw(raw)?;
        match default_store.as_str() {
            "file" | "filesystem" => {}
            "swift" if swift.is_some() => {}
            "s3" if s3.is_some() => {}
            "swift" => {
                return Err(raw.invalid(d, "default_store", "swift", "needs swift_store_auth_address, _user and _key"));
            }
            "s3" => {
                return Err(raw.invalid(
                    d,
                    "default_store",
                    "s3",
                    "needs s3_store_host, _access_key, _secret_key and _bucket",
                ));
            }
            _ => {
                return Err(raw.invalid(
                    d,
                    "default_store",
                    &default_store,
                    "Store for scheme not found (available: file, swift, s3)",
                ));
            }
        }
        let datadir = store_option("filesystem_store_datadir").unwrap_or_else(|| "/var/lib/glance/images/".into());
        let policy_file = raw.path("oslo_policy", "policy_file").or_else(|| raw.path(d, "policy_file")).or_else(|| {
            // Beside the config: policy.json as Glance shipped it, or oslo's newer policy.yaml.
            let dir = raw.config_dir()?;
            let yaml = dir.join("policy.yaml");
            Some(if !dir.join("policy.json").exists() && yaml.exists() { yaml } else { dir.join("policy.json") })
        });
        let list = |key: &str, default: &[&str]| -> Vec<String> {
            raw.string("image_format", key)
                .or_else(|| raw.string(d, key))
                .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
                .unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect())
        };
        let caching = crate::cache::CacheMode::of_flavor(raw.string("paste_deploy", "flavor").as_deref());
        if caching != crate::cache::CacheMode::Off && raw.string(d, "image_cache_dir").is_none() {
            return Err(raw.invalid(d, "image_cache_dir", "", "required by the caching flavors"));
        }
        let driver_name = raw.string(d, "image_cache_driver").unwrap_or_else(|| "sqlite".into());
        let image_cache_driver = crate::cache::CacheDriver::parse(&driver_name)
            .ok_or_else(|| raw.invalid(d, "image_cache_driver", &driver_name, "must be sqlite or xattr"))?;
        Ok(Self {
            server: ServerOptions::from_raw(raw, DEFAULT_PORT)?,
            registry_host,
            registry_port: raw.get(d, "registry_port", 9191)?,
            registry_timeout: Duration::from_secs(raw.get(d, "registry_client_timeout", 600)?),
            enable_v1_api: raw.bool(d, "enable_v1_api", true)?,
            enable_v2_api: raw.bool(d, "enable_v2_api", true)?,
            auth: AuthOptions::from_raw(raw)?,
            default_store: if default_store == "filesystem" { "file".into() } else { default_store },
            swift,
            s3,
            cache_mode: caching,
            image_cache_dir: raw.path(d, "image_cache_dir"),
            image_cache_driver,
            image_cache_sqlite_db: raw.string(d, "image_cache_sqlite_db").unwrap_or_else(|| "cache.db".into()),
            image_cache_max_size: raw.get(d, "image_cache_max_size", 10_737_418_240)?,
            image_cache_stall_time: raw.get(d, "image_cache_stall_time", 86_400)?,
            location_strategy: location_strategy(raw)?,
            show_image_direct_url: raw.bool(d, "show_image_direct_url", false)?,
            show_multiple_locations: raw.bool(d, "show_multiple_locations", false)?,
            filesystem_store_datadir: PathBuf::from(datadir),
            image_size_cap: raw.get(d, "image_size_cap", 1_099_511_627_776)?,
            image_property_quota: raw.get(d, "image_property_quota", 128)?,
            image_member_quota: raw.get(d, "image_member_quota", 128)?,
            image_tag_quota: raw.get(d, "image_tag_quota", 128)?,
            image_location_quota: raw.get(d, "image_location_quota", 10)?,
            metadata_encryption_key: match raw.string(d, "metadata_encryption_key") {
                None => None,
                Some(key) => {
                    glance_common::location_cipher::LocationCipher::new(&key)
                        .map_err(|e| raw.invalid(d, "metadata_encryption_key", "***", e))?;
                    Some(glance_common::keystone::Secret(key))
                }
            },
            delayed_delete: match raw.bool(d, "delayed_delete", false)? {
                true => Some(Duration::from_secs(raw.get(d, "scrub_time", 0)?)),
                false => None,
            },
            user_storage_quota: match raw.string(d, "user_storage_quota") {
                None => 0,
                Some(v) => parse_bytes(&v).map_err(|e| raw.invalid(d, "user_storage_quota", &v, e))?,
            },
            property_protection: match raw.path(d, "property_protection_file") {
                None => None,
                Some(file) => {
                    let format = raw.string(d, "property_protection_rule_format").unwrap_or_else(|| "roles".into());
                    let format = crate::protections::Format::parse(&format)
                        .map_err(|e| raw.invalid(d, "property_protection_rule_format", &format, e))?;
                    Some((file, format))
                }
            },
            policy_file,
            policy_default_rule: raw
                .string("oslo_policy", "policy_default_rule")
                .or_else(|| raw.string(d, "policy_default_rule"))
                .unwrap_or_else(|| "default".into()),
            disk_formats: list("disk_formats", DEFAULT_DISK_FORMATS),
            container_formats: list("container_formats", DEFAULT_CONTAINER_FORMATS),
            client_socket_timeout: Duration::from_secs(raw.get(d, "client_socket_timeout", 900)?),
            tls: match (raw.path(d, "cert_file"), raw.path(d, "key_file")) {
                (Some(cert_file), Some(key_file)) => Some(crate::tls::TlsFiles { cert_file, key_file }),
                (None, None) => None,
                (Some(_), None) => {
                    return Err(raw.invalid(d, "key_file", "", "cert_file is set, so key_file must be too"));
                }
                (None, Some(_)) => {
                    return Err(raw.invalid(d, "cert_file", "", "key_file is set, so cert_file must be too"));
                }
            },
        })
    }

    pub fn registry_url(&self) -> String {
        format!("http://{}:{}", self.registry_host, self.registry_port)
    }

    /// Options in the files that glance-api does not read (yet).
    pub fn unknown_options(raw: &RawConfig) -> Vec<String> {
        let stores = crate::store::swift::KEYS
            .iter()
            .chain(crate::store::s3::KEYS)
            .chain([crate::store::stall::KEY].iter())
            .flat_map(|k| [("default", *k), ("glance_store", *k)]);
        let known: Vec<(&str, &str)> =
            KEYS.iter().chain(SERVER_KEYS).chain(glance_common::keystone::KEYS).copied().chain(stores).collect();
        raw.unknown(&known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_glance() {
        let c = ApiConfig::from_raw(&RawConfig::default()).expect("config");
        assert_eq!((c.server.bind_port, c.registry_port, c.default_store.as_str()), (9292, 9191, "file"));
        assert_eq!((c.image_size_cap, c.image_property_quota, c.image_member_quota), (1 << 40, 128, 128));
        assert_eq!((c.image_tag_quota, c.image_location_quota), (128, 10));
        assert_eq!(c.registry_host, "127.0.0.1");
    }

    #[test]
    fn malformed_safety_options_stop_start_up() {
        for (key, value) in [
            ("property_protection_rule_format", "acl"),
            ("user_storage_quota", "5 parsecs"),
            ("delayed_delete", "maybe"),
        ] {
            let raw =
                RawConfig::from_pairs([("DEFAULT", key, value), ("DEFAULT", "property_protection_file", "pp.conf")]);
            assert!(ApiConfig::from_raw(&raw).unwrap_err().to_string().contains(key), "{key}");
        }
        let defaults = RawConfig::from_pairs([
            ("DEFAULT", "property_protection_file", ""),
            ("DEFAULT", "user_storage_quota", "0"),
            ("DEFAULT", "delayed_delete", "False"),
        ]);
        assert!(ApiConfig::from_raw(&defaults).is_ok());
    }

    #[test]
    fn sizes_take_glance_units() {
        assert_eq!(parse_bytes("0"), Ok(0));
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert_eq!(parse_bytes("5 kb"), Ok(5 * 1024));
        assert_eq!(parse_bytes("10MB"), Ok(10 << 20));
        assert_eq!(parse_bytes("2GB"), Ok(2 << 30));
        assert_eq!(parse_bytes("1TB"), Ok(1 << 40));
        assert!(parse_bytes("5 PB").is_err() && parse_bytes("-1").is_err() && parse_bytes("").is_err());
        let raw = RawConfig::from_pairs([("DEFAULT", "user_storage_quota", "3MB")]);
        assert_eq!(ApiConfig::from_raw(&raw).expect("config").user_storage_quota, 3 << 20);
    }

    #[test]
    fn unknown_store_and_flavor_stop_start_up() {
        let raw = RawConfig::from_pairs([("DEFAULT", "default_store", "rbd")]);
        assert!(ApiConfig::from_raw(&raw).unwrap_err().to_string().contains("default_store"));
        let raw = RawConfig::from_pairs([("paste_deploy", "flavor", "bogus")]);
        assert!(ApiConfig::from_raw(&raw).unwrap_err().to_string().contains("flavor"));
    }

    #[test]
    fn the_annotated_sample_is_valid_and_fully_known() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/etc/glance-api.conf");
        let raw = RawConfig::load(&[path]).expect("sample loads");
        let c = ApiConfig::from_raw(&raw).expect("sample is valid");
        assert_eq!((c.server.bind_port, c.server.workers), (9292, 0));
        assert!(ApiConfig::unknown_options(&raw).is_empty(), "{:?}", ApiConfig::unknown_options(&raw));
    }
}
