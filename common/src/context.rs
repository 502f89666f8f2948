//! The request context: who is asking, taken from the request as `[paste_deploy] flavor` says.

use crate::error::Error;
use crate::keystone::{KeystoneOptions, Secret, TokenValidator};
use actix_web::http::header::HeaderMap;
use std::fmt;
use std::sync::Arc;

pub const REQUEST_ID_HEADER: &str = "x-openstack-request-id";
/// Carries `registry_shared_secret` from API nodes to the registry.
pub const REGISTRY_SECRET_HEADER: &str = "x-glance-registry-secret";
/// The API's admin decision (its `admin_role` and `context_is_admin` policy), which a registry
/// honours only from callers that presented the shared secret.
pub const ADMIN_HEADER: &str = "x-glance-admin";

/// Which of Glance's paste pipelines builds the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFlavor {
    /// No flavor: every request is an admin with no user, tenant or roles (`unauthenticated-context`).
    Unauthenticated,
    /// `trusted-auth` (or `noauth`): trust the identity headers set by whatever sits in front.
    TrustedAuth,
    /// `fakeauth` (tests): `X-Auth-Token: user:tenant:role`, then as `trusted-auth`.
    FakeAuth,
    /// `keystone`: the X-Auth-Token is validated by Keystone (`authtoken` + `context`).
    Keystone,
}

impl AuthFlavor {
    /// The authentication part of a flavor (`caching`, `cachemanagement` add to it elsewhere).
    pub fn parse(flavor: Option<&str>) -> Result<Self, String> {
        let flavor = flavor.unwrap_or("").trim().to_lowercase();
        let auth = flavor.split('+').next().unwrap_or("");
        match auth {
            "" | "caching" | "cachemanagement" => Ok(Self::Unauthenticated),
            "trusted-auth" | "noauth" => Ok(Self::TrustedAuth),
            "fakeauth" => Ok(Self::FakeAuth),
            "keystone" => Ok(Self::Keystone),
            other => Err(format!("unknown [paste_deploy] flavor '{other}'")),
        }
    }
}

/// Who is asking and what they may do.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub request_id: String,
    pub user: Option<String>,
    pub tenant: Option<String>,
    pub roles: Vec<String>,
    pub is_admin: bool,
    pub owner_is_tenant: bool,
    /// Never logged: `Debug` prints only whether it is set.
    pub auth_token: Option<String>,
    /// The caller's service catalog (from Keystone, or `X-Service-Catalog` with trusted-auth):
    /// where the caller's own accounts are, for the multi-tenant Swift store.
    pub service_catalog: Arc<Vec<CatalogEndpoint>>,
    /// The anonymous context of `allow_anonymous_access`: reads only (Glance's `read_only`).
    pub read_only: bool,
}

impl fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestContext")
            .field("request_id", &self.request_id)
            .field("user", &self.user)
            .field("tenant", &self.tenant)
            .field("roles", &self.roles)
            .field("is_admin", &self.is_admin)
            .field("auth_token", &self.auth_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl RequestContext {
    /// The unauthenticated admin of Glance's default pipeline.
    pub fn admin(request_id: String) -> Self {
        Self {
            request_id,
            user: None,
            tenant: None,
            roles: Vec::new(),
            is_admin: true,
            owner_is_tenant: true,
            auth_token: None,
            service_catalog: Arc::default(),
            read_only: false,
        }
    }

    /// Who a request without credentials is when `allow_anonymous_access` is on: nobody, with
    /// no roles, allowed to read what is public and nothing else.
    pub fn anonymous(request_id: String, owner_is_tenant: bool) -> Self {
        Self { is_admin: false, owner_is_tenant, read_only: true, ..Self::admin(request_id) }
    }

    /// The owner an image created in this context gets: the tenant, or the user.
    pub fn owner(&self) -> Option<&str> {
        if self.owner_is_tenant { self.tenant.as_deref() } else { self.user.as_deref() }
    }

    /// Admins see soft-deleted images; nobody else does.
    pub fn show_deleted(&self) -> bool {
        self.is_admin
    }
}

/// How a service decides who is asking: a value read from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthOptions {
    pub flavor: AuthFlavor,
    pub owner_is_tenant: bool,
    pub admin_role: String,
    /// `[keystone_authtoken]`, present exactly when the flavor is `keystone`.
    pub keystone: Option<KeystoneOptions>,
    /// `registry_shared_secret`: on the registry, callers must present it; on API nodes, it is
    /// sent with every registry request.
    pub shared_secret: Option<Secret>,
    /// Requests without credentials get a read-only anonymous context instead of a 401.
    pub allow_anonymous_access: bool,
}

impl AuthOptions {
    /// The options both services share: `[paste_deploy] flavor`, `owner_is_tenant`,
    /// `admin_role`, `registry_shared_secret` and, for keystone, `[keystone_authtoken]`.
    pub fn from_raw(raw: &crate::config::RawConfig) -> Result<Self, crate::config::ConfigError> {
        let d = crate::config::DEFAULT_SECTION;
        let flavor = raw.string("paste_deploy", "flavor");
        let auth = AuthFlavor::parse(flavor.as_deref())
            .map_err(|e| raw.invalid("paste_deploy", "flavor", flavor.as_deref().unwrap_or(""), e))?;
        let keystone = match auth {
            AuthFlavor::Keystone => Some(KeystoneOptions::from_raw(raw)?),
            _ => None,
        };
        Ok(Self {
            flavor: auth,
            owner_is_tenant: raw.bool(d, "owner_is_tenant", true)?,
            admin_role: raw.string(d, "admin_role").unwrap_or_else(|| "admin".into()).trim().to_lowercase(),
            keystone,
            shared_secret: raw.string(d, "registry_shared_secret").map(Secret),
            allow_anonymous_access: raw.bool(d, "allow_anonymous_access", false)?,
        })
    }
}

/// The rest of the admin decision after `admin_role`: Glance's `context_is_admin` policy rule.
pub trait AdminRule: Send + Sync {
    fn is_admin(&self, ctx: &RequestContext) -> bool;
}

/// Builds request contexts from headers, as configured; one per process.
#[derive(Clone)]
pub struct ContextBuilder {
    options: AuthOptions,
    keystone: Option<Arc<TokenValidator>>,
    admin_rule: Option<Arc<dyn AdminRule>>,
    /// Registry side: whether callers must present the shared secret.
    require_secret: bool,
}

impl fmt::Debug for ContextBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextBuilder").field("options", &self.options).finish_non_exhaustive()
    }
}

/// Which side of the API → registry hop a builder serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Api,
    Registry,
}

impl ContextBuilder {
    pub fn new(options: AuthOptions, service: Service, admin_rule: Option<Arc<dyn AdminRule>>) -> Result<Self, String> {
        let keystone = match &options.keystone {
            Some(o) => Some(Arc::new(TokenValidator::new(o.clone())?)),
            None => None,
        };
        let require_secret = service == Service::Registry && options.shared_secret.is_some();
        Ok(Self { options, keystone, admin_rule, require_secret })
    }

    pub fn flavor(&self) -> AuthFlavor {
        self.options.flavor
    }

    /// The `WWW-Authenticate` challenge a 401 carries (keystone flavor).
    pub fn challenge(&self) -> Option<String> {
        self.options.keystone.as_ref().map(KeystoneOptions::challenge)
    }

    pub async fn build(&self, headers: &HeaderMap) -> Result<RequestContext, Error> {
        let request_id = request_id_from(headers);
        let header = |name: &str| {
            headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
        };
        let unauthorized = || {
            Error::unauthorized(
                "This server could not verify that you are authorized to access the document you requested.",
            )
        };
        let trusted_caller = match (&self.options.shared_secret, self.require_secret) {
            (Some(secret), true) => {
                let presented = header(REGISTRY_SECRET_HEADER).unwrap_or_default();
                if !constant_time_eq(presented.as_bytes(), secret.0.as_bytes()) {
                    log::warn!(req = request_id.as_str(); "refused a caller without the registry shared secret");
                    return Err(unauthorized());
                }
                true
            }
            _ => false,
        };
        let token = header("x-auth-token").or_else(|| header("x-storage-token"));
        // No credentials at all: anonymous when allowed. Credentials that do not check out are
        // still refused, so that a client with an expired token learns it.
        let anonymous = |request_id: String| match self.options.allow_anonymous_access {
            true => Ok(RequestContext::anonymous(request_id, self.options.owner_is_tenant)),
            false => Err(Error::unauthorized("The request you have made requires authentication.")),
        };
        let identity = match self.options.flavor {
            AuthFlavor::Unauthenticated => None,
            AuthFlavor::FakeAuth if token.is_none() && self.options.allow_anonymous_access => {
                return anonymous(request_id);
            }
            AuthFlavor::FakeAuth => Some(token.as_deref().and_then(fake_identity).ok_or_else(unauthorized)?),
            AuthFlavor::TrustedAuth => {
                if !header("x-identity-status").is_some_and(|s| s.eq_ignore_ascii_case("confirmed")) {
                    return match self.options.allow_anonymous_access {
                        true => anonymous(request_id),
                        false => Err(unauthorized()),
                    };
                }
                Some(Identity {
                    user: header("x-user-id"),
                    tenant: header("x-tenant-id").or_else(|| header("x-project-id")),
                    roles: header("x-roles").map(|r| split_roles(&r)).unwrap_or_default(),
                    catalog: header("x-service-catalog")
                        .and_then(|c| serde_json::from_str(&c).ok())
                        .map(|c| parse_catalog(&c))
                        .unwrap_or_default(),
                })
            }
            AuthFlavor::Keystone => {
                let validator = self.keystone.as_ref().ok_or_else(|| Error::internal("keystone is not configured"))?;
                let Some(token) = token.as_deref() else { return anonymous(request_id) };
                Some(validator.validate(token).await?)
            }
        };
        let mut ctx = match identity {
            None => RequestContext::admin(request_id),
            Some(identity) => {
                let mut ctx = RequestContext {
                    is_admin: identity.roles.contains(&self.options.admin_role),
                    request_id,
                    user: identity.user,
                    tenant: identity.tenant,
                    roles: identity.roles,
                    owner_is_tenant: self.options.owner_is_tenant,
                    auth_token: token,
                    service_catalog: Arc::new(identity.catalog),
                    read_only: false,
                };
                if !ctx.is_admin {
                    ctx.is_admin = self.admin_rule.as_ref().is_some_and(|rule| rule.is_admin(&ctx));
                }
                // The API's decision travels with the context; only a caller that proved it is an
                // API node may make it.
                if trusted_caller && self.options.flavor == AuthFlavor::TrustedAuth {
                    ctx.is_admin |= header(ADMIN_HEADER).is_some_and(|v| v.eq_ignore_ascii_case("true"));
                }
                ctx
            }
        };
        ctx.owner_is_tenant = self.options.owner_is_tenant;
        Ok(ctx)
    }
}

/// Compares secrets without an early exit, so response times do not tell how much matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who a request's credentials name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: Option<String>,
    pub tenant: Option<String>,
    pub roles: Vec<String>,
    pub catalog: Vec<CatalogEndpoint>,
}

/// One endpoint of a service catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEndpoint {
    pub service_type: String,
    /// `public`, `internal` or `admin`.
    pub interface: String,
    pub region: Option<String>,
    pub url: String,
}

/// The URL of `service_type` at `interface` (in `region` if given) in a catalog.
pub fn find_endpoint<'a>(
    catalog: &'a [CatalogEndpoint],
    service_type: &str,
    interface: &str,
    region: Option<&str>,
) -> Option<&'a str> {
    catalog
        .iter()
        .find(|e| {
            e.service_type == service_type
                && e.interface == interface
                && region.is_none_or(|r| e.region.as_deref() == Some(r))
        })
        .map(|e| e.url.as_str())
}

/// A service catalog in Keystone v3 shape (`endpoints: [{interface, region_id, url}]`) or in
/// the v2 shape keystonemiddleware puts in `X-Service-Catalog` (`publicURL`, `internalURL`...).
/// Anything else yields no endpoints.
pub fn parse_catalog(catalog: &serde_json::Value) -> Vec<CatalogEndpoint> {
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let mut endpoints = Vec::new();
    for service in catalog.as_array().into_iter().flatten() {
        let Some(service_type) = text(&service["type"]) else { continue };
        for e in service["endpoints"].as_array().into_iter().flatten() {
            let region = text(&e["region_id"]).or_else(|| text(&e["region"]));
            let mut add = |interface: &str, url: Option<String>| {
                if let Some(url) = url {
                    let (service_type, interface, region) =
                        (service_type.clone(), interface.to_string(), region.clone());
                    endpoints.push(CatalogEndpoint { service_type, interface, region, url });
                }
            };
            match text(&e["interface"]) {
                Some(interface) => add(&interface, text(&e["url"])),
                None => {
                    add("public", text(&e["publicURL"]));
                    add("internal", text(&e["internalURL"]));
                    add("admin", text(&e["adminURL"]));
                }
            }
        }
    }
    endpoints
}

/// `X-Roles` as Glance reads it: comma-separated, trimmed and lower-cased.
pub fn split_roles(roles: &str) -> Vec<String> {
    roles.split(',').map(|r| r.trim().to_lowercase()).filter(|r| !r.is_empty()).collect()
}

/// `user:tenant:role` as upstream's FakeAuthMiddleware took it; a tenant of `none` means none.
fn fake_identity(token: &str) -> Option<Identity> {
    let parts: Vec<&str> = token.split(':').collect();
    let [user, tenant, role] = parts.as_slice() else { return None };
    Some(Identity {
        user: Some(user.to_string()),
        tenant: (!tenant.eq_ignore_ascii_case("none")).then(|| tenant.to_string()),
        roles: split_roles(role),
        catalog: Vec::new(),
    })
}

/// The caller's request id when it is one of ours (`req-<uuid>`), so that a request keeps one
/// id from API to registry; anything else gets a fresh id.
pub fn request_id_from(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.strip_prefix("req-").is_some_and(|u| uuid::Uuid::parse_str(u).is_ok()))
        .map(str::to_string)
        .unwrap_or_else(new_request_id)
}

pub fn new_request_id() -> String {
    format!("req-{}", uuid::Uuid::new_v4())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(HeaderName::from_static(k), HeaderValue::from_str(v).expect("header"));
        }
        map
    }

    fn options(flavor: AuthFlavor) -> AuthOptions {
        AuthOptions {
            flavor,
            owner_is_tenant: true,
            admin_role: "admin".into(),
            keystone: None,
            shared_secret: None,
            allow_anonymous_access: false,
        }
    }

    fn builder(flavor: AuthFlavor) -> ContextBuilder {
        ContextBuilder::new(options(flavor), Service::Api, None).expect("builder")
    }

    #[actix_web::test]
    async fn unauthenticated_is_admin_without_tenant() {
        let ctx = builder(AuthFlavor::Unauthenticated).build(&HeaderMap::new()).await.expect("ctx");
        assert!(ctx.is_admin && ctx.owner().is_none() && ctx.show_deleted());
        assert!(ctx.request_id.starts_with("req-"));
    }

    #[actix_web::test]
    async fn trusted_auth_needs_confirmed_identity() {
        let b = builder(AuthFlavor::TrustedAuth);
        assert!(b.build(&headers(&[("x-tenant-id", "t1")])).await.is_err());
        let ctx = b
            .build(&headers(&[
                ("x-identity-status", "Confirmed"),
                ("x-tenant-id", "t1"),
                ("x-user-id", "u"),
                ("x-roles", " Member, ADMIN"),
            ]))
            .await
            .expect("ctx");
        assert_eq!(ctx.owner(), Some("t1"));
        assert_eq!(ctx.roles, vec!["member", "admin"]);
        assert!(ctx.is_admin);
    }

    #[actix_web::test]
    async fn fakeauth_parses_user_tenant_role() {
        let b = builder(AuthFlavor::FakeAuth);
        let ctx = b.build(&headers(&[("x-auth-token", "user:NONE:")])).await.expect("ctx");
        assert!(ctx.tenant.is_none() && !ctx.is_admin && ctx.roles.is_empty());
        let ctx = b.build(&headers(&[("x-auth-token", "createuser:t2:admin")])).await.expect("ctx");
        assert!(ctx.is_admin && ctx.owner() == Some("t2"));
        assert!(b.build(&headers(&[("x-auth-token", "a:b")])).await.is_err());
        assert!(b.build(&HeaderMap::new()).await.is_err());
    }

    #[actix_web::test]
    async fn registry_secret_gates_callers_and_admin_claims() {
        let mut o = options(AuthFlavor::TrustedAuth);
        o.shared_secret = Some(Secret("s3cret".into()));
        let registry = ContextBuilder::new(o.clone(), Service::Registry, None).expect("builder");
        let confirmed = [("x-identity-status", "Confirmed"), ("x-tenant-id", "t1"), ("x-glance-admin", "True")];
        assert!(registry.build(&headers(&confirmed)).await.is_err(), "no secret, no entry");
        let mut wrong = confirmed.to_vec();
        wrong.push(("x-glance-registry-secret", "s3creT"));
        assert!(registry.build(&headers(&wrong)).await.is_err());
        let mut right = confirmed.to_vec();
        right.push(("x-glance-registry-secret", "s3cret"));
        assert!(registry.build(&headers(&right)).await.expect("ctx").is_admin);
        // On the API side the secret is only sent, never demanded, and the admin header means nothing.
        let api = ContextBuilder::new(o, Service::Api, None).expect("builder");
        assert!(!api.build(&headers(&confirmed)).await.expect("ctx").is_admin);
    }

    #[actix_web::test]
    async fn context_is_admin_rule_decides_after_admin_role() {
        struct Ops;
        impl AdminRule for Ops {
            fn is_admin(&self, ctx: &RequestContext) -> bool {
                ctx.roles.iter().any(|r| r == "ops")
            }
        }
        let b = ContextBuilder::new(options(AuthFlavor::FakeAuth), Service::Api, Some(Arc::new(Ops))).expect("b");
        assert!(b.build(&headers(&[("x-auth-token", "u:t:ops")])).await.expect("ctx").is_admin);
        assert!(!b.build(&headers(&[("x-auth-token", "u:t:member")])).await.expect("ctx").is_admin);
    }

    #[actix_web::test]
    async fn anonymous_access_is_read_only_and_only_without_credentials() {
        for flavor in [AuthFlavor::TrustedAuth, AuthFlavor::FakeAuth] {
            assert!(builder(flavor).build(&HeaderMap::new()).await.is_err(), "off by default");
            let open = ContextBuilder::new(
                AuthOptions { allow_anonymous_access: true, ..options(flavor) },
                Service::Api,
                None,
            )
            .expect("builder");
            let ctx = open.build(&HeaderMap::new()).await.expect("anonymous");
            assert!(ctx.read_only && !ctx.is_admin && ctx.tenant.is_none() && ctx.user.is_none());
            assert!(ctx.roles.is_empty());
        }
        let open = ContextBuilder::new(
            AuthOptions { allow_anonymous_access: true, ..options(AuthFlavor::FakeAuth) },
            Service::Api,
            None,
        )
        .expect("builder");
        assert!(open.build(&headers(&[("x-auth-token", "not-three-fields")])).await.is_err(), "bad credentials");
        let ctx = open.build(&headers(&[("x-auth-token", "u:t:member")])).await.expect("ctx");
        assert!(!ctx.read_only);
    }

    #[test]
    fn catalogs_in_both_keystone_shapes() {
        let v3 = serde_json::json!([{"type": "object-store", "endpoints": [
            {"interface": "public", "region_id": "RegionOne", "url": "http://swift/v1/KEY_p"},
            {"interface": "internal", "region": "RegionTwo", "url": "http://swift-int/v1/KEY_p"}]},
            {"type": "identity"}]);
        let parsed = parse_catalog(&v3);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].url, "http://swift/v1/KEY_p");
        assert_eq!((parsed[1].interface.as_str(), parsed[1].region.as_deref()), ("internal", Some("RegionTwo")));
        let v2 = serde_json::json!([{"type": "object-store", "endpoints": [
            {"region": "RegionOne", "publicURL": "http://pub/v1/AUTH_p", "adminURL": "http://adm/v1/AUTH_p"}]}]);
        let parsed = parse_catalog(&v2);
        let urls: Vec<(&str, &str)> = parsed.iter().map(|e| (e.interface.as_str(), e.url.as_str())).collect();
        assert_eq!(urls, vec![("public", "http://pub/v1/AUTH_p"), ("admin", "http://adm/v1/AUTH_p")]);
        assert!(parse_catalog(&serde_json::json!({"not": "a list"})).is_empty());
    }

    #[actix_web::test]
    async fn trusted_auth_takes_the_service_catalog_header() {
        let catalog = r#"[{"type": "object-store", "endpoints": [{"publicURL": "http://swift/v1/AUTH_t1"}]}]"#;
        let ctx = builder(AuthFlavor::TrustedAuth)
            .build(&headers(&[
                ("x-identity-status", "Confirmed"),
                ("x-tenant-id", "t1"),
                ("x-service-catalog", catalog),
            ]))
            .await
            .expect("ctx");
        assert_eq!(ctx.service_catalog.len(), 1);
        assert_eq!(ctx.service_catalog[0].url, "http://swift/v1/AUTH_t1");
    }

    #[test]
    fn request_ids_are_kept_only_when_well_formed() {
        let id = new_request_id();
        assert_eq!(request_id_from(&headers(&[("x-openstack-request-id", &id)])), id);
        assert_ne!(request_id_from(&headers(&[("x-openstack-request-id", "req-evil")])), "req-evil");
    }

    #[test]
    fn flavors() {
        assert_eq!(AuthFlavor::parse(None), Ok(AuthFlavor::Unauthenticated));
        assert_eq!(AuthFlavor::parse(Some("trusted-auth+cachemanagement")), Ok(AuthFlavor::TrustedAuth));
        assert!(AuthFlavor::parse(Some("bogus")).is_err());
        assert_eq!(AuthFlavor::parse(Some("keystone+caching")), Ok(AuthFlavor::Keystone));
    }
}
