//! The read-only HTTP store: images served by a web server (`x-image-meta-location` or
//! `x-glance-api-copy-from` with http/https).
//!
//! These URLs come from users and the API node fetches them, so every destination is checked
//! first (server-side request forgery): never the registry or this API itself (the registry
//! trusts API nodes), never link-local, unspecified, multicast or broadcast addresses (cloud
//! metadata services live at 169.254.169.254). Names are checked by the DNS resolver, on every
//! lookup including redirects; literal addresses are checked by the URL and redirect checks.

use super::{Download, StoreError, stall};
use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
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
        let response = answer(uri, request).await?;
        check_status(uri, response.status())?;
        let partial = response.status() == reqwest::StatusCode::PARTIAL_CONTENT;
        let size = response.content_length();
        let body = stall::quiet_limited(response.bytes_stream().map_err(std::io::Error::other), TIMEOUT);
        match range {
            // A server that ignores Range sends the whole object: cut the range out of it.
            Some(range) if !partial => {
                if size.is_some_and(|total| range.start >= total) {
                    return Err(StoreError::BadLocation("Requested range not satisfiable".into()));
                }
                let end = match (range.end, size) {
                    (Some(end), Some(total)) => Some(end.min(total)),
                    (end, total) => end.or(total),
                };
                let wanted = end.map(|end| end.saturating_sub(range.start));
                Ok(Download { body: Box::pin(cut(body, range)), size: wanted })
            }
            _ => Ok(Download { body: Box::pin(body), size }),
        }
    }

    /// The size the server announces for `uri` (HEAD); 0 when it does not say.
    pub async fn size(&self, uri: &str) -> Result<u64, StoreError> {
        self.check(uri).await?;
        let response = answer(uri, self.client.head(uri)).await?;
        check_status(uri, response.status())?;
        Ok(response
            .headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0))
    }
}

/// Bytes `range.start..range.end` of a whole object's `body`; reading stops at `end`.
fn cut<S>(body: S, range: super::ByteRange) -> impl Stream<Item = std::io::Result<Bytes>>
where
    S: Stream<Item = std::io::Result<Bytes>> + Unpin,
{
    futures_util::stream::unfold((body, 0u64), move |(mut body, mut offset)| async move {
        loop {
            if range.end.is_some_and(|end| offset >= end) {
                return None;
            }
            let mut chunk = match body.next().await? {
                Ok(chunk) => chunk,
                Err(e) => return Some((Err(e), (body, u64::MAX))),
            };
            let at = offset;
            offset += chunk.len() as u64;
            let len = chunk.len() as u64;
            let to = range.end.map_or(len, |end| end.saturating_sub(at).min(len)) as usize;
            let from = (range.start.saturating_sub(at).min(len) as usize).min(to);
            chunk.truncate(to);
            let kept = chunk.split_off(from);
            if !kept.is_empty() {
                return Some((Ok(kept), (body, offset)));
            }
        }
    })
}

/// How long an external source may keep us waiting for its answer or its next bytes.
const TIMEOUT: Duration = stall::DEFAULT_TIMEOUT;

async fn answer(uri: &str, request: reqwest::RequestBuilder) -> Result<reqwest::Response, StoreError> {
    let sent = async { request.send().await.map_err(|e| unreachable(uri, e)) };
    stall::within(TIMEOUT, sent, || {
        log::info!("external source {} did not answer within {} s", super::redact(uri), TIMEOUT.as_secs());
        StoreError::BadLocation("Could not reach the external source.".into())
    })
    .await
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

    #[tokio::test]
    async fn a_range_is_cut_from_a_whole_body() {
        let data: Vec<u8> = (0..=255).collect();
        let body =
            || futures_util::stream::iter(data.chunks(7).map(|c| Ok(Bytes::copy_from_slice(c))).collect::<Vec<_>>());
        for (start, end) in [(0, Some(1)), (3, Some(20)), (7, Some(14)), (250, None), (0, None), (100, Some(300))] {
            let range = super::super::ByteRange { start, end };
            let got: Vec<Bytes> = cut(body(), range).try_collect().await.expect("cut");
            let want = &data[start as usize..end.map_or(data.len(), |e| (e as usize).min(data.len()))];
            assert_eq!(got.concat(), want, "{start}..{end:?}");
        }
    }
}
