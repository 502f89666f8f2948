//! The request context: who is asking, taken from the request as `[paste_deploy] flavor` says.

use crate::error::Error;
use actix_web::http::header::HeaderMap;
use std::fmt;

pub const REQUEST_ID_HEADER: &str = "x-openstack-request-id";

/// Which of Glance's paste pipelines builds the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFlavor {
    /// No flavor: every request is an admin with no user, tenant or roles (`unauthenticated-context`).
    Unauthenticated,
    /// `trusted-auth` (or `noauth`): trust the identity headers set by whatever sits in front.
    TrustedAuth,
    /// `fakeauth` (tests): `X-Auth-Token: user:tenant:role`, then as `trusted-auth`.
    FakeAuth,
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
            "keystone" => {
                Err("flavor 'keystone' is not supported yet; use trusted-auth behind an authenticating proxy".into())
            }
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
        }
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

/// Builds request contexts from headers, as configured.
#[derive(Debug, Clone)]
pub struct ContextBuilder {
    pub flavor: AuthFlavor,
    pub owner_is_tenant: bool,
    pub admin_role: String,
}

impl ContextBuilder {
    pub fn build(&self, headers: &HeaderMap) -> Result<RequestContext, Error> {
        let request_id = request_id_from(headers);
        let header = |name: &str| {
            headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
        };
        let mut ctx = match self.flavor {
            AuthFlavor::Unauthenticated => RequestContext::admin(request_id),
            AuthFlavor::TrustedAuth | AuthFlavor::FakeAuth => {
                let identity = if self.flavor == AuthFlavor::FakeAuth {
                    header("x-auth-token").as_deref().and_then(fake_identity)
                } else if header("x-identity-status").is_some_and(|s| s.eq_ignore_ascii_case("confirmed")) {
                    Some(Identity {
                        user: header("x-user-id"),
                        tenant: header("x-tenant-id").or_else(|| header("x-project-id")),
                        roles: header("x-roles").map(|r| split_roles(&r)).unwrap_or_default(),
                    })
                } else {
                    None
                };
                let Some(identity) = identity else {
                    return Err(Error::unauthorized(
                        "This server could not verify that you are authorized to access the document you requested.",
                    ));
                };
                let is_admin = identity.roles.contains(&self.admin_role);
                RequestContext {
                    request_id,
                    user: identity.user,
                    tenant: identity.tenant,
                    roles: identity.roles,
                    is_admin,
                    owner_is_tenant: true,
                    auth_token: header("x-auth-token"),
                }
            }
        };
        ctx.owner_is_tenant = self.owner_is_tenant;
        Ok(ctx)
    }
}

struct Identity {
    user: Option<String>,
    tenant: Option<String>,
    roles: Vec<String>,
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

    fn builder(flavor: AuthFlavor) -> ContextBuilder {
        ContextBuilder { flavor, owner_is_tenant: true, admin_role: "admin".into() }
    }

    #[test]
    fn unauthenticated_is_admin_without_tenant() {
        let ctx = builder(AuthFlavor::Unauthenticated).build(&HeaderMap::new()).expect("ctx");
        assert!(ctx.is_admin && ctx.owner().is_none() && ctx.show_deleted());
        assert!(ctx.request_id.starts_with("req-"));
    }

    #[test]
    fn trusted_auth_needs_confirmed_identity() {
        let b = builder(AuthFlavor::TrustedAuth);
        assert!(b.build(&headers(&[("x-tenant-id", "t1")])).is_err());
        let ctx = b
            .build(&headers(&[
                ("x-identity-status", "Confirmed"),
                ("x-tenant-id", "t1"),
                ("x-user-id", "u"),
                ("x-roles", " Member, ADMIN"),
            ]))
            .expect("ctx");
        assert_eq!(ctx.owner(), Some("t1"));
        assert_eq!(ctx.roles, vec!["member", "admin"]);
        assert!(ctx.is_admin);
    }

    #[test]
    fn fakeauth_parses_user_tenant_role() {
        let b = builder(AuthFlavor::FakeAuth);
        let ctx = b.build(&headers(&[("x-auth-token", "user:NONE:")])).expect("ctx");
        assert!(ctx.tenant.is_none() && !ctx.is_admin && ctx.roles.is_empty());
        let ctx = b.build(&headers(&[("x-auth-token", "createuser:t2:admin")])).expect("ctx");
        assert!(ctx.is_admin && ctx.owner() == Some("t2"));
        assert!(b.build(&headers(&[("x-auth-token", "a:b")])).is_err());
        assert!(b.build(&HeaderMap::new()).is_err());
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
    }
}
