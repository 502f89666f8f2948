//! glance-registry.conf, as a typed value.

use crate::db::queries::images::Rules;
use crate::db::queries::listing::Limits;
use crate::db::{DbUrl, PoolOptions};
use glance_common::config::{ConfigError, DEFAULT_SECTION, RawConfig, SERVER_KEYS, ServerOptions};
use glance_common::context::AuthOptions;
use glance_common::model::{DEFAULT_CONTAINER_FORMATS, DEFAULT_DISK_FORMATS};
use std::time::Duration;

pub const DEFAULT_PORT: u16 = 9191;

#[derive(Debug, Clone)]
pub struct RegistryConfig {
    pub server: ServerOptions,
    pub database: DbUrl,
    pub pool: PoolOptions,
    pub db_auto_create: bool,
    pub limits: Limits,
    pub rules: Rules,
    pub auth: AuthOptions,
}

/// Options glance-registry reads; anything else in its files draws a warning.
const KEYS: &[(&str, &str)] = &[
    ("default", "sql_connection"),
    ("database", "connection"),
    ("default", "sql_idle_timeout"),
    ("database", "idle_timeout"),
    ("database", "max_pool_size"),
    ("database", "pool_timeout"),
    ("default", "db_auto_create"),
    ("default", "api_limit_max"),
    ("default", "limit_param_default"),
    ("default", "owner_is_tenant"),
    ("default", "admin_role"),
    ("image_format", "disk_formats"),
    ("image_format", "container_formats"),
    ("default", "disk_formats"),
    ("default", "container_formats"),
    ("paste_deploy", "flavor"),
    ("default", "registry_shared_secret"),
    ("default", "allow_anonymous_access"),
    ("paste_deploy", "config_file"),
];

impl RegistryConfig {
    pub fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        let d = DEFAULT_SECTION;
        let sql_connection = raw
            .string("database", "connection")
            .or_else(|| raw.string(d, "sql_connection"))
            .unwrap_or_else(|| "sqlite:///glance.sqlite".into());
        let database =
            DbUrl::parse(&sql_connection).map_err(|e| raw.invalid(d, "sql_connection", &redact(&sql_connection), e))?;
        let idle: u64 = match raw.string("database", "idle_timeout") {
            Some(_) => raw.get("database", "idle_timeout", 3600)?,
            None => raw.get(d, "sql_idle_timeout", 3600)?,
        };
        let limit_max: i64 = raw.get(d, "api_limit_max", 1000)?;
        let limit_default: i64 = raw.get(d, "limit_param_default", 25)?;
        if limit_max < 1 {
            return Err(raw.invalid(d, "api_limit_max", &limit_max.to_string(), "must be at least 1"));
        }
        if limit_default < 0 {
            return Err(raw.invalid(d, "limit_param_default", &limit_default.to_string(), "must be >= 0"));
        }
        let list = |key: &str, default: &[&str]| -> Vec<String> {
            raw.string("image_format", key)
                .or_else(|| raw.string(d, key))
                .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
                .unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect())
        };
        Ok(Self {
            server: ServerOptions::from_raw(raw, DEFAULT_PORT)?,
            database,
            pool: PoolOptions {
                max_size: raw.get("database", "max_pool_size", 10)?,
                timeout: Duration::from_secs_f64(raw.get("database", "pool_timeout", 5.0)?),
                idle_timeout: Duration::from_secs(idle),
            },
            db_auto_create: raw.bool(d, "db_auto_create", false)?,
            limits: Limits { default: limit_default.min(limit_max), max: limit_max },
            rules: Rules {
                disk_formats: list("disk_formats", DEFAULT_DISK_FORMATS),
                container_formats: list("container_formats", DEFAULT_CONTAINER_FORMATS),
            },
            auth: AuthOptions::from_raw(raw)?,
        })
    }

    /// Options in the files that glance-registry does not read.
    pub fn unknown_options(raw: &RawConfig) -> Vec<String> {
        let known: Vec<(&str, &str)> =
            KEYS.iter().chain(SERVER_KEYS).chain(glance_common::keystone::KEYS).copied().collect();
        raw.unknown(&known)
    }
}

fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_glance() {
        let c = RegistryConfig::from_raw(&RawConfig::default()).expect("config");
        assert_eq!(c.server.bind_port, 9191);
        assert_eq!((c.limits.default, c.limits.max), (25, 1000));
        assert_eq!(c.auth.flavor, glance_common::context::AuthFlavor::Unauthenticated);
        assert!(!c.db_auto_create);
    }

    #[test]
    fn bad_values_name_their_option_without_secrets() {
        let raw = RawConfig::from_pairs([("DEFAULT", "sql_connection", "oracle://u:hunter2@db/x")]);
        let err = RegistryConfig::from_raw(&raw).unwrap_err().to_string();
        assert!(err.contains("sql_connection") && !err.contains("hunter2"), "{err}");
        let raw = RawConfig::from_pairs([("paste_deploy", "flavor", "bogus")]);
        assert!(RegistryConfig::from_raw(&raw).unwrap_err().to_string().contains("flavor"));
        let raw = RawConfig::from_pairs([("DEFAULT", "api_limit_max", "lots")]);
        assert!(RegistryConfig::from_raw(&raw).unwrap_err().to_string().contains("api_limit_max"));
    }

    #[test]
    fn the_annotated_sample_is_valid_and_fully_known() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/etc/glance-registry.conf");
        let raw = RawConfig::load(&[path]).expect("sample loads");
        let c = RegistryConfig::from_raw(&raw).expect("sample is valid");
        assert_eq!(c.server.bind_port, 9191);
        assert!(RegistryConfig::unknown_options(&raw).is_empty(), "{:?}", RegistryConfig::unknown_options(&raw));
    }
}
