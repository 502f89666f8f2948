//! glance-api end to end: the real API and registry binaries, Glance's v1 functional tests
//! ported (seed 000), and the upload/download paths.

mod cache;
mod copy_from;
mod encryption;
mod identity;
mod locations;
mod misc;
mod multi_tenant;
mod policies;
mod process;
mod protections;
mod quotas;
mod scrubber;
mod security;
mod store_failures;
mod uploads;
mod v1_api;
mod versions;

use glance_tests::{Server, TestEnv};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

/// 5 KiB of `*`, the image Glance's functional tests upload, and its md5.
pub const FIVE_KB: usize = 5 * 1024;
pub const DATA5K_MD5: &str = "c2e5db72bd7fd153f53ede5da5a06de3";
pub fn data5k() -> Vec<u8> {
    vec![b'*'; FIVE_KB]
}

/// A registry and an API on one environment.
pub struct Cluster {
    pub registry: Server,
    pub api: Server,
    pub http: Api,
}

impl Cluster {
    pub async fn start(env: &TestEnv) -> Self {
        Self::start_with(env, &[]).await
    }

    pub async fn start_with(env: &TestEnv, api_options: &[(&str, &str)]) -> Self {
        let registry = env.registry().start().await;
        let mut builder = env.api(&registry);
        for (k, v) in api_options {
            builder = builder.option(k, v);
        }
        let api = builder.start().await;
        let http = Api::new(api.url());
        Self { registry, api, http }
    }
}

#[derive(Clone)]
pub struct Api {
    pub base: String,
    http: reqwest::Client,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.text());
        self
    }
    #[track_caller]
    pub fn expect_error(self, status: u16, text: &str) -> Self {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.text());
        assert!(self.text().contains(text), "{text:?} not in body: {}", self.text());
        self
    }
}

impl Api {
    pub fn new(base: String) -> Self {
        Self { base, http: reqwest::Client::builder().no_gzip().build().expect("client") }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{}", self.base, path))
    }

    pub async fn send(&self, r: RequestBuilder) -> Reply {
        let resp = r.send().await.expect("request reached the API");
        let status = resp.status();
        let headers = resp.headers().clone();
        Reply { status, headers, body: resp.bytes().await.expect("body").to_vec() }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.request(Method::GET, path)).await
    }
    pub async fn head(&self, path: &str) -> Reply {
        self.send(self.request(Method::HEAD, path)).await
    }
    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.request(Method::DELETE, path)).await
    }

    /// POST /v1/images with `headers` and an optional body.
    pub async fn post_image(&self, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Reply {
        let mut r = self.request(Method::POST, "/v1/images");
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(body) = body {
            r = r.body(body);
        }
        self.send(r).await
    }

    /// PUT `path` with `headers` and an optional body.
    pub async fn put(&self, path: &str, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Reply {
        let mut r = self.request(Method::PUT, path);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(body) = body {
            r = r.body(body);
        }
        self.send(r).await
    }

    pub async fn ids(&self, path: &str) -> Vec<String> {
        let body = self.get(path).await.expect(200).json();
        body["images"].as_array().expect("images").iter().map(|i| i["id"].as_str().expect("id").to_string()).collect()
    }
}

/// A client that sends one X-Auth-Token with every request.
pub struct As<'a> {
    pub api: &'a Api,
    pub token: String,
}

impl As<'_> {
    pub async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Reply {
        let mut r = self.api.request(method, path).header("x-auth-token", &self.token);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(body) = body {
            r = r.body(body);
        }
        self.api.send(r).await
    }
    pub async fn head(&self, path: &str) -> Reply {
        self.send(Method::HEAD, path, &[], None).await
    }
    pub async fn ids(&self, path: &str) -> Vec<String> {
        let body = self.send(Method::GET, path, &[], None).await.expect(200).json();
        body["images"].as_array().expect("images").iter().map(|i| i["id"].as_str().expect("id").to_string()).collect()
    }
}

/// Glance's `minimal_headers(name)`.
pub fn minimal_headers(name: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/octet-stream".into()),
        ("X-Image-Meta-Name", name.into()),
        ("X-Image-Meta-disk_format", "raw".into()),
        ("X-Image-Meta-container_format", "ovf".into()),
        ("X-Image-Meta-Is-Public", "True".into()),
    ]
}

pub fn as_refs<'a>(headers: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    headers.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The names of the files in `dir` (none if it does not exist).
pub fn files_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

pub fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(data))
}
