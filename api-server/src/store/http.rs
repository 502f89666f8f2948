//! The read-only HTTP store: images served by a web server (`x-image-meta-location` or
//! `x-glance-api-copy-from` with http/https). Redirects are followed up to 5 times.

use super::{Download, StoreError};
use futures_util::TryStreamExt;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct HttpStore {
    client: reqwest::Client,
}

impl HttpStore {
    pub fn new() -> Result<Self, StoreError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(5))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        Ok(Self { client })
    }

    pub async fn get(&self, uri: &str) -> Result<Download, StoreError> {
        let response = self.client.get(uri).send().await.map_err(|e| unreachable(uri, e))?;
        check(uri, response.status())?;
        let size = response.content_length();
        let body = response.bytes_stream().map_err(std::io::Error::other);
        Ok(Download { body: Box::pin(body), size })
    }

    /// The size the server announces for `uri` (HEAD); 0 when it does not say.
    pub async fn size(&self, uri: &str) -> Result<u64, StoreError> {
        let response = self.client.head(uri).send().await.map_err(|e| unreachable(uri, e))?;
        check(uri, response.status())?;
        Ok(response
            .headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0))
    }
}

fn check(uri: &str, status: reqwest::StatusCode) -> Result<(), StoreError> {
    match status.as_u16() {
        200..=299 => Ok(()),
        404 => {
            Err(StoreError::NotFound(format!("HTTP datastore could not find image at URI. ({})", super::redact(uri))))
        }
        code => Err(StoreError::BadLocation(format!("HTTP URL {} returned a {code} status code.", super::redact(uri)))),
    }
}

fn unreachable(uri: &str, e: reqwest::Error) -> StoreError {
    StoreError::BadLocation(format!("Could not reach {}: {e}", super::redact(uri)))
}
