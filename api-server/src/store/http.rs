//! The read-only HTTP store: images served by a web server (`x-image-meta-location` or
//! `x-glance-api-copy-from` with http/https).
//!
//! These URLs come from users and the API node fetches them, so every destination is checked
//! first (server-side request forgery): never the registry or this API itself (the registry
//! trusts API nodes), never link-local, unspecified, multicast or broadcast addresses (cloud
//! metadata services live at 169.254.169.254). Names are checked by the DNS resolver, on every
//! lookup including redirects; literal addresses are checked by the URL and redirect checks.

use super::{Download, StoreError};
use futures_util::TryStreamExt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Where user-supplied URLs may not lead.
#[derive(Debug, Clone, Default)]
pub struct Denied {
    /// host:port pairs of our own services (registry, this API).
    pub endpoints: Vec<(String, u16)>,
}

impl Denied {
    fn address(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast(),
            IpAddr::V6(v6) => {
                v6.is_unspecified() || v6.is_multicast() || (v6.segments()[0] & 0xffc0) == 0xfe80 // fe80::/10
                    || v6.to_ipv4_mapped().is_some_and(|v4| self.address(IpAddr::V4(v4)))
            }
        }
    }

    /// An own endpoint: same port, and the host is the configured name or a local address.
    fn endpoint(&self, host: &str, ip: Option<IpAddr>, port: u16) -> bool {
        self.endpoints.iter().any(|(h, p)| {
            *p == port && (h.eq_ignore_ascii_case(host) || ip.is_some_and(|ip| ip.is_loopback() || ip.is_unspecified()))
        })
    }

    /// Whether a URL may be fetched, as far as can be told without DNS.
    fn url_allowed(&self, url: &reqwest::Url) -> bool {
        let Some(host) = url.host_str() else { return false };
        let port = url.port_or_known_default().unwrap_or(80);
        let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
        !literal.is_some_and(|ip| self.address(ip)) && !self.endpoint(host, literal, port)
    }
}

/// A DNS resolver that drops denied addresses, so no name can lead to them.
struct FilteringResolver(Arc<Denied>);

impl reqwest::dns::Resolve for FilteringResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let denied = self.0.clone();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs.into_iter().filter(|a| !denied.address(a.ip())).collect();
            if allowed.is_empty() {
                return Err("the external source resolves to an address that is not allowed".into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[derive(Clone)]
pub struct HttpStore {
    client: reqwest::Client,
    denied: Arc<Denied>,
}

impl std::fmt::Debug for HttpStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HttpStore({:?})", self.denied)
    }
}

impl HttpStore {
    pub fn new(denied: Denied) -> Result<Self, StoreError> {
        let denied = Arc::new(denied);
        let for_redirects = denied.clone();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 {
                    attempt.error("too many redirects")
                } else if !for_redirects.url_allowed(attempt.url()) {
                    attempt.error("redirect to a destination that is not allowed")
                } else {
                    attempt.follow()
                }
            }))
            .dns_resolver(Arc::new(FilteringResolver(denied.clone())))
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        Ok(Self { client, denied })
    }

    /// Refuses URLs the server must not fetch (see the module documentation). Names are
    /// resolved here too, so a name for the registry's address is refused on the registry's port.
    pub async fn check(&self, uri: &str) -> Result<(), StoreError> {
        let url = reqwest::Url::parse(uri)
            .map_err(|_| StoreError::BadLocation(format!("Invalid location {}", super::redact(uri))))?;
        let refused = || StoreError::BadLocation(format!("External source is not allowed: '{}'", super::redact(uri)));
        if !matches!(url.scheme(), "http" | "https") || !self.denied.url_allowed(&url) {
            return Err(refused());
        }
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else { return Err(refused()) };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let resolved: Vec<IpAddr> = match tokio::net::lookup_host((host, port)).await {
            Ok(addrs) => addrs.map(|a| a.ip()).collect(),
            Err(_) => return Ok(()), // fails later with "could not reach", like any dead source
        };
        for (own_host, own_port) in self.denied.endpoints.iter().filter(|(_, p)| *p == port) {
            let own: Vec<IpAddr> = tokio::net::lookup_host((own_host.as_str(), *own_port))
                .await
                .map(|a| a.map(|a| a.ip()).collect())
                .unwrap_or_default();
            let ours = |ip: &IpAddr| {
                own.contains(ip) || ip.is_loopback() && own.iter().any(|o| o.is_loopback() || o.is_unspecified())
            };
            if resolved.iter().any(ours) {
                return Err(refused());
            }
        }
        if resolved.iter().any(|ip| self.denied.address(*ip)) {
            return Err(refused());
        }
        Ok(())
    }

    pub async fn get(&self, uri: &str, range: Option<super::ByteRange>) -> Result<Download, StoreError> {
        self.check(uri).await?;
        let request = self.client.get(uri);
        let request = match range {
            Some(range) => request.header(reqwest::header::RANGE, range.header()),
            None => request,
        };
        let response = request.send().await.map_err(|e| unreachable(uri, e))?;
        check_status(uri, response.status())?;
        let size = response.content_length();
        let body = response.bytes_stream().map_err(std::io::Error::other);
        Ok(Download { body: Box::pin(body), size })
    }

    /// The size the server announces for `uri` (HEAD); 0 when it does not say.
    pub async fn size(&self, uri: &str) -> Result<u64, StoreError> {
        self.check(uri).await?;
        let response = self.client.head(uri).send().await.map_err(|e| unreachable(uri, e))?;
        check_status(uri, response.status())?;
        Ok(response
            .headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0))
    }
}

fn check_status(uri: &str, status: reqwest::StatusCode) -> Result<(), StoreError> {
    match status.as_u16() {
        200..=299 => Ok(()),
        404 => Err(StoreError::NotFound("HTTP datastore could not find image at URI.".into())),
        code => {
            log::info!("external source {} answered {code}", super::redact(uri));
            Err(StoreError::BadLocation(format!("The external source answered with status {code}.")))
        }
    }
}

/// The details (refused, timed out, which address) go to the log, not to the client: they
/// would make the API a port scanner.
fn unreachable(uri: &str, e: reqwest::Error) -> StoreError {
    log::info!("external source {} unreachable: {e}", super::redact(uri));
    StoreError::BadLocation("Could not reach the external source.".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn destinations() {
        let store =
            HttpStore::new(Denied { endpoints: vec![("127.0.0.1".into(), 9191), ("registry.internal".into(), 9191)] })
                .expect("store");
        for refused in [
            "http://169.254.169.254/latest/meta-data/",
            "http://127.0.0.1:9191/images/detail",
            "http://registry.internal:9191/images",
            "http://localhost:9191/images",
            "http://0.0.0.0/x",
            "http://[fe80::1]/x",
            "http://[::ffff:169.254.169.254]/x",
            "ftp://example.com/x",
            "file:///etc/passwd",
        ] {
            assert!(store.check(refused).await.is_err(), "{refused} was allowed");
        }
        for allowed in ["http://127.0.0.1:8080/images/x", "https://example.com/cirros.img", "http://10.0.0.5/img"] {
            assert!(store.check(allowed).await.is_ok(), "{allowed} was refused");
        }
    }
}
