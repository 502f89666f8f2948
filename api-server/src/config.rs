//! glance-api.conf, as a typed value.

use glance_common::config::{ConfigError, DEFAULT_SECTION, RawConfig, SERVER_KEYS, ServerOptions};
use glance_common::context::{AuthFlavor, ContextBuilder};
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
    pub context: ContextBuilder,
}

const KEYS: &[(&str, &str)] = &[
    ("default", "registry_host"),
    ("default", "registry_port"),
    ("default", "registry_client_timeout"),
    ("default", "enable_v1_api"),
    ("default", "enable_v2_api"),
    ("default", "owner_is_tenant"),
    ("default", "admin_role"),
    ("paste_deploy", "flavor"),
    ("paste_deploy", "config_file"),
];

impl ApiConfig {
    pub fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        let d = DEFAULT_SECTION;
        let flavor = raw.string("paste_deploy", "flavor");
        let auth = AuthFlavor::parse(flavor.as_deref())
            .map_err(|e| raw.invalid("paste_deploy", "flavor", flavor.as_deref().unwrap_or(""), e))?;
        let registry_host = match raw.string(d, "registry_host") {
            // Glance's default 0.0.0.0 means "this host" to a client.
            None => "127.0.0.1".to_string(),
            Some(h) if h == "0.0.0.0" => "127.0.0.1".to_string(),
            Some(h) => h,
        };
        Ok(Self {
            server: ServerOptions::from_raw(raw, DEFAULT_PORT)?,
            registry_host,
            registry_port: raw.get(d, "registry_port", 9191)?,
            registry_timeout: Duration::from_secs(raw.get(d, "registry_client_timeout", 600)?),
            enable_v1_api: raw.bool(d, "enable_v1_api", true)?,
            enable_v2_api: raw.bool(d, "enable_v2_api", true)?,
            context: ContextBuilder {
                flavor: auth,
                owner_is_tenant: raw.bool(d, "owner_is_tenant", true)?,
                admin_role: raw.string(d, "admin_role").unwrap_or_else(|| "admin".into()).to_lowercase(),
            },
        })
    }

    pub fn registry_url(&self) -> String {
        format!("http://{}:{}", self.registry_host, self.registry_port)
    }

    /// Options in the files that glance-api does not read (yet).
    pub fn unknown_options(raw: &RawConfig) -> Vec<String> {
        let known: Vec<(&str, &str)> = KEYS.iter().chain(SERVER_KEYS).copied().collect();
        raw.unknown(&known)
    }
}
