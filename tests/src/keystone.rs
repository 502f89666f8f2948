//! A real Keystone for the keystone-flavor tests, installed and started by
//! `scripts/keystone.sh` (once per machine; later calls find it running).

use crate::services;
use std::sync::OnceLock;

/// The Keystone that `scripts/keystone.sh` runs, with the accounts it created.
pub struct Keystone {
    pub url: String,
}

/// Keystone, started if needed; `None` (after a loud message) when it cannot start on a laptop,
/// a failure when `GLANCE_TEST_REQUIRE_SERVICES` is set (CI).
pub fn keystone() -> Option<&'static Keystone> {
    static KEYSTONE: OnceLock<Result<Keystone, String>> = OnceLock::new();
    let started = KEYSTONE.get_or_init(|| {
        let env = services::start("keystone.sh")?;
        let url = env.get("KEYSTONE_URL").cloned().ok_or("keystone.sh env printed no KEYSTONE_URL")?;
        Ok(Keystone { url })
    });
    services::available("Keystone", started)
}

impl Keystone {
    /// `[keystone_authtoken]` for a glance-rs service, as `section.key` options.
    pub fn authtoken_options(&self) -> Vec<(String, String)> {
        [
            ("auth_url", self.url.as_str()),
            ("www_authenticate_uri", self.url.as_str()),
            ("auth_type", "password"),
            ("username", "glance"),
            ("password", "glance-secret"),
            ("project_name", "service"),
            ("user_domain_name", "Default"),
            ("project_domain_name", "Default"),
        ]
        .iter()
        .map(|(k, v)| (format!("keystone_authtoken.{k}"), v.to_string()))
        .collect()
    }

    /// A project-scoped token for one of the test users (`<user>-secret` is the password).
    pub async fn token(&self, user: &str, project: &str) -> Token {
        use glance_common::keystone::{Ref, password_login};
        let default = Ref::Id("default");
        let body = password_login(user, &format!("{user}-secret"), default, Ref::Name(project), default);
        let res = reqwest::Client::new()
            .post(format!("{}/v3/auth/tokens?nocatalog", self.url))
            .json(&body)
            .send()
            .await
            .expect("Keystone answers");
        assert_eq!(res.status().as_u16(), 201, "login of {user} failed");
        let token = res.headers()["x-subject-token"].to_str().expect("token").to_string();
        let doc: serde_json::Value = res.json().await.expect("token body");
        let project_id = doc["token"]["project"]["id"].as_str().expect("project id").to_string();
        Token { token, project_id }
    }

    /// Revokes `token` (as its owner logging out would).
    pub async fn revoke(&self, token: &str) {
        let res = reqwest::Client::new()
            .delete(format!("{}/v3/auth/tokens", self.url))
            .header("x-auth-token", token)
            .header("x-subject-token", token)
            .send()
            .await
            .expect("Keystone answers");
        assert_eq!(res.status().as_u16(), 204, "revocation failed");
    }
}

/// A user's token and the id of the project it is scoped to (the owner of what they create).
pub struct Token {
    pub token: String,
    pub project_id: String,
}
