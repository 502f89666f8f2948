//! Keystone token validation: the `authtoken` filter of Glance's `keystone` pipelines.
//!
//! Options are keystonemiddleware's, from `[keystone_authtoken]`. The service logs in with its
//! own credentials, then checks each user token with `GET /v3/auth/tokens`. Answers are kept in
//! a bounded cache keyed by a SHA-256 of the token (the token itself is never stored or logged)
//! until the token expires or `token_cache_time` passes, whichever is sooner. When Keystone
//! cannot be asked, the request fails with 503: an outage never lets a request through.

use crate::config::{ConfigError, RawConfig};
use crate::context::Identity;
use crate::error::Error;
use chrono::{DateTime, Utc};
use lru::LruCache;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const SECTION: &str = "keystone_authtoken";
/// Options of `[keystone_authtoken]` that glance-rs reads.
pub const KEYS: &[(&str, &str)] = &[
    (SECTION, "www_authenticate_uri"),
    (SECTION, "auth_uri"),
    (SECTION, "auth_url"),
    (SECTION, "auth_type"),
    (SECTION, "username"),
    (SECTION, "password"),
    (SECTION, "project_name"),
    (SECTION, "user_domain_name"),
    (SECTION, "project_domain_name"),
    (SECTION, "token_cache_time"),
    (SECTION, "http_connect_timeout"),
    (SECTION, "memcached_servers"),
    (SECTION, "region_name"),
];

/// Keystone's base URL from an auth URL as people write it (`…`, `…/`, `…/v3`, `…/v2.0`).
pub fn base_url(auth_url: &str) -> String {
    auth_url.trim_end_matches('/').trim_end_matches("/v3").trim_end_matches("/v2.0").trim_end_matches('/').to_string()
}

/// A domain or project, by id or by name.
#[derive(Debug, Clone, Copy)]
pub enum Ref<'a> {
    Id(&'a str),
    Name(&'a str),
}

impl Ref<'_> {
    fn json(self) -> serde_json::Value {
        match self {
            Ref::Id(id) => serde_json::json!({"id": id}),
            Ref::Name(name) => serde_json::json!({"name": name}),
        }
    }
}

/// The body of a project-scoped password login (`POST /v3/auth/tokens`). A project given by
/// name is looked up in `domain`, as is the user.
pub fn password_login(
    user: &str,
    password: &str,
    domain: Ref<'_>,
    project: Ref<'_>,
    project_domain: Ref<'_>,
) -> serde_json::Value {
    let mut scope = project.json();
    if let Ref::Name(_) = project {
        scope["domain"] = project_domain.json();
    }
    serde_json::json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {"name": user, "password": password, "domain": domain.json()}}},
        "scope": {"project": scope}
    }})
}

/// How many validated tokens a process remembers.
const CACHE_ENTRIES: usize = 10_000;
/// A service token is renewed this long before Keystone says it expires.
const RENEW_MARGIN: Duration = Duration::from_secs(60);

/// A configuration value that must never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeystoneOptions {
    /// Keystone's base URL (without `/v3`).
    pub auth_url: String,
    /// What a 401 names in `WWW-Authenticate: Keystone uri="..."`.
    pub www_authenticate_uri: String,
    pub username: String,
    pub password: Secret,
    pub project_name: String,
    pub user_domain_name: String,
    pub project_domain_name: String,
    pub token_cache_time: Duration,
    pub http_connect_timeout: Duration,
}

impl KeystoneOptions {
    /// `[keystone_authtoken]`, which the keystone flavor needs: a missing option is a start-up
    /// error that names it.
    pub fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        let required = |key: &str| {
            raw.string(SECTION, key).ok_or_else(|| raw.invalid(SECTION, key, "", "required by flavor keystone"))
        };
        let auth_url = required("auth_url")?;
        let parsed = url::Url::parse(&auth_url).map_err(|e| raw.invalid(SECTION, "auth_url", &auth_url, e))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(raw.invalid(SECTION, "auth_url", &auth_url, "must be an http or https URL"));
        }
        if let Some(auth_type) = raw.string(SECTION, "auth_type").filter(|t| t != "password") {
            return Err(raw.invalid(SECTION, "auth_type", &auth_type, "only 'password' is supported"));
        }
        let base = base_url(&auth_url);
        let www = raw.string(SECTION, "www_authenticate_uri").or_else(|| raw.string(SECTION, "auth_uri"));
        Ok(Self {
            www_authenticate_uri: www.unwrap_or_else(|| base.clone()),
            auth_url: base,
            username: required("username")?,
            password: Secret(required("password")?),
            project_name: required("project_name")?,
            user_domain_name: raw.string(SECTION, "user_domain_name").unwrap_or_else(|| "Default".into()),
            project_domain_name: raw.string(SECTION, "project_domain_name").unwrap_or_else(|| "Default".into()),
            token_cache_time: Duration::from_secs(raw.get(SECTION, "token_cache_time", 300)?),
            http_connect_timeout: Duration::from_secs_f64(raw.get(SECTION, "http_connect_timeout", 5.0)?),
        })
    }

    /// The `WWW-Authenticate` value of a 401.
    pub fn challenge(&self) -> String {
        format!("Keystone uri=\"{}\"", self.www_authenticate_uri)
    }
}

#[derive(Clone)]
enum Verdict {
    Valid(Identity),
    Invalid,
}

struct Cached {
    verdict: Verdict,
    until: Instant,
}

/// Validates user tokens against Keystone; one per process, shared by every request.
pub struct TokenValidator {
    options: KeystoneOptions,
    http: reqwest::Client,
    service_token: tokio::sync::Mutex<Option<(Secret, Instant)>>,
    cache: Mutex<LruCache<[u8; 32], Cached>>,
}

impl fmt::Debug for TokenValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenValidator").field("auth_url", &self.options.auth_url).finish_non_exhaustive()
    }
}

/// The parts of Keystone's token document that make a request context.
#[derive(Deserialize)]
struct TokenDoc {
    token: TokenBody,
}

#[derive(Deserialize)]
struct TokenBody {
    expires_at: DateTime<Utc>,
    user: Option<Named>,
    project: Option<Named>,
    #[serde(default)]
    roles: Vec<Named>,
    /// Kept for the multi-tenant Swift store (the caller's own object-store account).
    #[serde(default)]
    catalog: serde_json::Value,
}

#[derive(Deserialize)]
struct Named {
    id: Option<String>,
    name: Option<String>,
}

impl TokenValidator {
    pub fn new(options: KeystoneOptions) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(options.http_connect_timeout)
            .timeout(options.http_connect_timeout * 6)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("Keystone client: {e}"))?;
        let cache = LruCache::new(NonZeroUsize::new(CACHE_ENTRIES).unwrap_or(NonZeroUsize::MIN));
        Ok(Self { options, http, service_token: tokio::sync::Mutex::new(None), cache: Mutex::new(cache) })
    }

    pub fn options(&self) -> &KeystoneOptions {
        &self.options
    }

    /// Who `token` belongs to: 401 when Keystone says it is not valid, 503 when Keystone
    /// cannot be asked.
    pub async fn validate(&self, token: &str) -> Result<Identity, Error> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(verdict) = self.cached(&key) {
            return verdict_result(verdict);
        }
        let (verdict, expires) = match self.check(token, false).await? {
            Some(doc) => (Verdict::Valid(identity(&doc.token)), Some(doc.token.expires_at)),
            None => (Verdict::Invalid, None),
        };
        let mut until = Instant::now() + self.options.token_cache_time;
        if let Some(expires) = expires {
            let left = (expires - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            until = until.min(Instant::now() + left);
        }
        self.lock_cache().put(key, Cached { verdict: verdict.clone(), until });
        verdict_result(verdict)
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Verdict> {
        let mut cache = self.lock_cache();
        match cache.get(key) {
            Some(entry) if entry.until > Instant::now() => Some(entry.verdict.clone()),
            Some(_) => {
                cache.pop(key);
                None
            }
            None => None,
        }
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, LruCache<[u8; 32], Cached>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `GET /v3/auth/tokens`: the token document, or `None` when Keystone does not know the
    /// token (or it expired). A rejected service token is renewed once.
    async fn check(&self, token: &str, renewed: bool) -> Result<Option<TokenDoc>, Error> {
        let service = self.service_token(renewed).await?;
        let url = format!("{}/v3/auth/tokens", self.options.auth_url);
        let res = self
            .http
            .get(&url)
            .header("x-auth-token", &service.0)
            .header("x-subject-token", token)
            .send()
            .await
            .map_err(|e| unavailable(&self.options, e))?;
        match res.status().as_u16() {
            200 => res.json().await.map(Some).map_err(|e| unavailable(&self.options, e)),
            404 => Ok(None),
            401 if !renewed => Box::pin(self.check(token, true)).await,
            status => {
                log::error!("Keystone at {} answered {status} to a token validation", self.options.auth_url);
                Err(Error::unavailable("The identity service could not validate the token."))
            }
        }
    }

    /// The service's own token, fetched when missing, near expiry or rejected (also what
    /// glance-rs tools present to a keystone-flavored registry).
    pub async fn service_token(&self, renew: bool) -> Result<Secret, Error> {
        let mut slot = self.service_token.lock().await;
        if let Some((token, until)) = slot.as_ref()
            && !renew
            && *until > Instant::now()
        {
            return Ok(token.clone());
        }
        let o = &self.options;
        let body = password_login(
            &o.username,
            &o.password.0,
            Ref::Name(&o.user_domain_name),
            Ref::Name(&o.project_name),
            Ref::Name(&o.project_domain_name),
        );
        let res = self
            .http
            .post(format!("{}/v3/auth/tokens?nocatalog", o.auth_url))
            .json(&body)
            .send()
            .await
            .map_err(|e| unavailable(o, e))?;
        if res.status().as_u16() != 201 {
            log::error!(
                "Keystone at {} refused the service credentials of [{SECTION}] (user {}): {}",
                o.auth_url,
                o.username,
                res.status()
            );
            return Err(Error::unavailable("The identity service refused this service's credentials."));
        }
        let token = res
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| Error::unavailable("The identity service answered without a token."))?;
        let doc: TokenDoc = res.json().await.map_err(|e| unavailable(o, e))?;
        let left = (doc.token.expires_at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        let until = Instant::now() + left.saturating_sub(RENEW_MARGIN);
        *slot = Some((Secret(token.clone()), until));
        Ok(Secret(token))
    }
}

fn verdict_result(verdict: Verdict) -> Result<Identity, Error> {
    match verdict {
        Verdict::Valid(identity) => Ok(identity),
        Verdict::Invalid => Err(Error::unauthorized("The request you have made requires authentication.")),
    }
}

fn identity(token: &TokenBody) -> Identity {
    Identity {
        user: token.user.as_ref().and_then(|u| u.id.clone()),
        tenant: token.project.as_ref().and_then(|p| p.id.clone()),
        roles: token.roles.iter().filter_map(|r| r.name.as_deref()).map(|r| r.trim().to_lowercase()).collect(),
        catalog: crate::context::parse_catalog(&token.catalog),
    }
}

fn unavailable(options: &KeystoneOptions, err: impl fmt::Display) -> Error {
    log::error!("Keystone at {} is unreachable: {err}", options.auth_url);
    Error::unavailable("The identity service is unavailable.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> RawConfig {
        RawConfig::from_pairs(pairs.iter().map(|(k, v)| (SECTION, *k, *v)))
    }

    #[test]
    fn options_need_credentials_and_normalise_the_url() {
        let full = [
            ("auth_url", "http://ks:5000/v3/"),
            ("username", "glance"),
            ("password", "pw"),
            ("project_name", "service"),
        ];
        let o = KeystoneOptions::from_raw(&raw(&full)).expect("options");
        assert_eq!(o.auth_url, "http://ks:5000");
        assert_eq!(o.challenge(), "Keystone uri=\"http://ks:5000\"");
        assert_eq!((o.user_domain_name.as_str(), o.token_cache_time.as_secs()), ("Default", 300));
        assert!(!format!("{o:?}").contains("pw"), "the password never reaches Debug output");
        let err = KeystoneOptions::from_raw(&raw(&full[..3])).unwrap_err().to_string();
        assert!(err.contains("project_name"), "{err}");
        let mut bad = full.to_vec();
        bad[0] = ("auth_url", "ftp://ks");
        assert!(KeystoneOptions::from_raw(&raw(&bad)).unwrap_err().to_string().contains("auth_url"));
    }

    #[test]
    fn identity_takes_ids_and_lowercased_roles() {
        let doc: TokenDoc = serde_json::from_str(
            r#"{"token": {"expires_at": "2030-01-01T00:00:00.000000Z", "user": {"id": "u1", "name": "alice"},
                "project": {"id": "p1", "name": "alpha"}, "roles": [{"id": "r", "name": " Member"}, {"name": "reader"}]}}"#,
        )
        .expect("doc");
        let id = identity(&doc.token);
        assert_eq!((id.user.as_deref(), id.tenant.as_deref()), (Some("u1"), Some("p1")));
        assert_eq!(id.roles, vec!["member", "reader"]);
    }
}
