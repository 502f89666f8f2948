//! A real Swift (with its S3 API) for the store tests, installed and started by
//! `scripts/swift.sh` (once per machine; later calls find it running).

use crate::services;
use std::sync::OnceLock;

/// Endpoints and credentials of the Swift that `scripts/swift.sh` runs.
#[derive(Debug, Clone)]
pub struct Swift {
    pub auth_url: String,
    pub user: String,
    pub key: String,
    pub s3_endpoint: String,
}

/// Swift, started if needed; `None` (after a loud message) when it cannot start on a laptop,
/// a failure when `GLANCE_TEST_REQUIRE_SERVICES` is set (CI).
pub fn swift() -> Option<&'static Swift> {
    static SWIFT: OnceLock<Result<Swift, String>> = OnceLock::new();
    let started = SWIFT.get_or_init(|| {
        let env = services::start("swift.sh")?;
        let var = |name: &str| env.get(name).cloned().ok_or_else(|| format!("swift.sh env printed no {name}"));
        Ok(Swift {
            auth_url: var("SWIFT_AUTH_URL")?,
            user: var("SWIFT_USER")?,
            key: var("SWIFT_KEY")?,
            s3_endpoint: var("S3_ENDPOINT")?,
        })
    });
    services::available("Swift", started)
}

impl Swift {
    /// A tempauth login: `(token, storage URL)`, for looking at Swift directly.
    pub async fn login(&self) -> (String, String) {
        let auth = reqwest::Client::new()
            .get(&self.auth_url)
            .header("x-auth-user", &self.user)
            .header("x-auth-key", &self.key)
            .send()
            .await
            .expect("Swift answers");
        let header = |name: &str| auth.headers()[name].to_str().expect("header").to_string();
        (header("x-auth-token"), header("x-storage-url"))
    }

    /// Object names in `container` starting with `prefix` (none if it does not exist).
    pub async fn list(&self, container: &str, prefix: &str) -> Vec<String> {
        let (token, url) = self.login().await;
        let res = reqwest::Client::new()
            .get(format!("{url}/{container}"))
            .query(&[("format", "json"), ("prefix", prefix)])
            .header("x-auth-token", token)
            .send()
            .await
            .expect("list");
        if res.status() == 404 {
            return Vec::new();
        }
        let names: Vec<serde_json::Value> = res.json().await.expect("listing");
        names.iter().map(|o| o["name"].as_str().expect("name").to_string()).collect()
    }

    /// glance-api options for an S3 store (Swift's S3 API) in `bucket` (created on first upload).
    pub fn s3_store_options(&self, bucket: &str) -> Vec<(String, String)> {
        [
            ("default_store", "s3"),
            ("s3_store_host", self.s3_endpoint.as_str()),
            ("s3_store_access_key", self.user.as_str()),
            ("s3_store_secret_key", self.key.as_str()),
            ("s3_store_bucket", bucket),
            ("s3_store_create_bucket_on_put", "True"),
            ("s3_store_bucket_url_format", "path"),
        ]
        .iter()
        .map(|(k, v)| (format!("glance_store.{k}"), v.to_string()))
        .collect()
    }

    /// glance-api options for a Swift store in `container` (created on first upload).
    pub fn store_options(&self, container: &str) -> Vec<(String, String)> {
        [
            ("default_store", "swift"),
            ("swift_store_auth_address", self.auth_url.as_str()),
            ("swift_store_auth_version", "1"),
            ("swift_store_user", self.user.as_str()),
            ("swift_store_key", self.key.as_str()),
            ("swift_store_container", container),
            ("swift_store_create_container_on_put", "True"),
        ]
        .iter()
        .map(|(k, v)| (format!("glance_store.{k}"), v.to_string()))
        .collect()
    }
}
