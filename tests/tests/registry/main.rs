//! glance-registry end to end: the real binary on SQLite, PostgreSQL and MariaDB.

mod bad_input;
mod client;
mod images;
mod listing;
mod manage;
mod members;
mod outage;
mod visibility;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

/// A thin HTTP helper over one registry, optionally as a `fakeauth` identity.
#[derive(Clone)]
pub struct Http {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

pub struct Reply {
    pub status: StatusCode,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.text);
        self
    }
    /// The status and that the body contains `text`.
    #[track_caller]
    pub fn expect_error(self, status: u16, text: &str) -> Self {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.text);
        assert!(self.text.contains(text), "{:?} not in body: {}", text, self.text);
        self
    }
}

impl Http {
    pub fn new(base: String) -> Self {
        Self { base, http: reqwest::Client::new(), token: None }
    }

    /// The same registry as `user:tenant:role` (fakeauth flavor).
    pub fn as_user(&self, token: &str) -> Self {
        Self { token: Some(token.to_string()), ..self.clone() }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut r = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            r = r.header("x-auth-token", t);
        }
        r
    }

    pub async fn send(&self, r: RequestBuilder) -> Reply {
        let resp = r.send().await.expect("request reached the registry");
        let status = resp.status();
        Reply { status, text: resp.text().await.expect("body") }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.request(Method::GET, path)).await
    }
    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.request(Method::DELETE, path)).await
    }
    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.send(self.request(Method::POST, path).json(body)).await
    }
    pub async fn put_json(&self, path: &str, body: &Value) -> Reply {
        self.send(self.request(Method::PUT, path).json(body)).await
    }

    /// Registers an image and returns its record.
    pub async fn create(&self, image: Value) -> Value {
        self.post_json("/images", &json!({ "image": image })).await.expect(200).json()["image"].clone()
    }

    /// Ids of `GET path`, in order.
    pub async fn ids(&self, path: &str) -> Vec<String> {
        let body = self.get(path).await.expect(200).json();
        body["images"].as_array().expect("images").iter().map(|i| i["id"].as_str().expect("id").to_string()).collect()
    }
}

pub fn id_of(image: &Value) -> String {
    image["id"].as_str().expect("id").to_string()
}
