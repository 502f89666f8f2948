//! Image stores: where image bits live. A small streaming interface, dispatched through an
//! enum; every store hashes while it writes, so no image is ever held in memory.
//!
//! Uploads arrive as a bounded channel of chunks ([`Upload`]) fed by the request; the store
//! consumes it (on a blocking thread for local disks) and either commits the whole image or
//! leaves nothing behind.

pub mod fs;
pub mod http;
pub mod s3;
pub mod stall;
pub mod swift;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use glance_common::Error;
use std::fmt;

/// Image bytes being read from a store.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// What a store says about a finished upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub location: String,
    pub size: u64,
    /// md5 of the bytes written, hex.
    pub checksum: String,
}

/// Part of an image: bytes `start..end` (`end` exclusive; open-ended without it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: Option<u64>,
}

impl ByteRange {
    /// As an HTTP `Range` header value.
    pub fn header(&self) -> String {
        match self.end {
            Some(end) => format!("bytes={}-{}", self.start, end.saturating_sub(1)),
            None => format!("bytes={}-", self.start),
        }
    }
}

/// An image being read: its bytes and, when the store knows it, its size.
pub struct Download {
    pub body: ByteStream,
    pub size: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    StorageFull(String),
    #[error("{0}")]
    WriteDenied(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    BadLocation(String),
    /// The sender went away before [`Chunk::End`] (client gone, cap reached); nothing was kept.
    #[error("upload aborted")]
    Aborted,
    #[error("{0}")]
    Other(String),
}

impl StoreError {
    /// The API's answer for a store failure, as Glance words them.
    pub fn into_error(self) -> Error {
        use glance_common::ErrorKind as K;
        match self {
            StoreError::NotFound(m) => Error::not_found(m),
            StoreError::AlreadyExists(m) => Error::conflict(format!("Attempt to upload duplicate image: {m}")),
            StoreError::StorageFull(m) => Error::new(K::TooLarge, format!("Image storage media is full: {m}")),
            StoreError::WriteDenied(m) => {
                Error::unavailable(format!("Insufficient permissions on image storage media: {m}"))
            }
            StoreError::Unavailable(m) => Error::unavailable(m),
            StoreError::BadLocation(m) => Error::bad_request(m),
            StoreError::Aborted => Error::bad_request("Client disconnected before sending all data to backend"),
            StoreError::Other(m) => Error::internal(m),
        }
    }
}

/// md5 of an upload, computed on a blocking thread as the chunks are handed to it (hashing
/// never runs on the async executor's threads).
pub struct Md5Thread {
    chunks: tokio::sync::mpsc::Sender<Bytes>,
    digest: tokio::task::JoinHandle<String>,
}

impl Md5Thread {
    pub fn start() -> Self {
        use md5::{Digest, Md5};
        let (chunks, mut incoming) = tokio::sync::mpsc::channel::<Bytes>(4);
        let digest = tokio::task::spawn_blocking(move || {
            let mut md5 = Md5::new();
            while let Some(chunk) = incoming.blocking_recv() {
                md5.update(&chunk);
            }
            hex::encode(md5.finalize())
        });
        Self { chunks, digest }
    }

    /// Another handle to feed it; the digest is ready once every handle is dropped.
    pub fn sender(&self) -> tokio::sync::mpsc::Sender<Bytes> {
        self.chunks.clone()
    }

    pub async fn update(&self, chunk: Bytes) {
        let _ = self.chunks.send(chunk).await;
    }

    /// The hex digest of everything fed (other senders must be dropped first).
    pub async fn finish(self) -> Result<String, StoreError> {
        drop(self.chunks);
        self.digest.await.map_err(|e| StoreError::Other(format!("the md5 thread failed: {e}")))
    }
}

/// `body` as it streams, with its md5 checked against `expected` (hex): the last chunk is held
/// back until the digest is known, so on a mismatch the stream fails *before* its end and the
/// client sees a short, failed transfer instead of corrupt data that looks complete.
pub fn verify_md5(body: ByteStream, expected: String) -> ByteStream {
    struct State {
        body: ByteStream,
        md5: Option<Md5Thread>,
        held: Option<Bytes>,
        expected: String,
    }
    let state = State { body, md5: Some(Md5Thread::start()), held: None, expected };
    Box::pin(futures_util::stream::unfold(state, |mut s| async move {
        loop {
            let md5 = s.md5.as_ref()?;
            match futures_util::StreamExt::next(&mut s.body).await {
                Some(Ok(chunk)) => {
                    md5.update(chunk.clone()).await;
                    if let Some(previous) = s.held.replace(chunk) {
                        return Some((Ok(previous), s));
                    }
                }
                Some(Err(e)) => {
                    s.md5 = None;
                    return Some((Err(e), s));
                }
                None => {
                    let actual = s.md5.take()?.finish().await.unwrap_or_default();
                    if actual != s.expected {
                        log::error!("image data does not match its checksum ({actual}, recorded {})", s.expected);
                        return Some((Err(std::io::Error::other("image data does not match its checksum")), s));
                    }
                    let last = s.held.take()?;
                    return Some((Ok(last), s));
                }
            }
        }
    }))
}

/// `body`, then `done` once it has been read to its end (not when the reader gives up).
pub fn on_complete(body: ByteStream, done: impl std::future::Future<Output = ()> + Send + 'static) -> ByteStream {
    let done = Box::pin(done);
    Box::pin(futures_util::stream::unfold((body, Some(done)), |(mut body, done)| async move {
        match futures_util::StreamExt::next(&mut body).await {
            Some(item) => Some((item, (body, done))),
            None => {
                if let Some(done) = done {
                    done.await;
                }
                None
            }
        }
    }))
}

/// One message of an upload. Only `End` commits: a channel that closes without it (the
/// request failed or was dropped) aborts the upload, so a cut-off upload can never be kept.
pub enum Chunk {
    Data(Bytes),
    End,
}

/// The receiving end of an upload.
pub type Upload = tokio::sync::mpsc::Receiver<Chunk>;

/// The configured stores, by scheme.
#[derive(Clone)]
pub struct Stores {
    pub fs: fs::FsStore,
    pub http: http::HttpStore,
    /// When `swift_store_auth_address` is configured.
    pub swift: Option<swift::SwiftStore>,
    /// When `s3_store_host` is configured.
    pub s3: Option<s3::S3Store>,
    pub default_scheme: String,
    /// Whom operations act for (see [`Stores::acting_for`]); the service by default.
    pub caller: Caller,
}

/// Who a store operation acts for. Only the multi-tenant Swift store uses it: it keeps each
/// image in its owner's own account, reached with the caller's token and service catalog.
/// Tools (scrubber, prefetcher) act as the service.
#[derive(Clone, Default)]
pub struct Caller {
    pub token: Option<glance_common::keystone::Secret>,
    pub catalog: std::sync::Arc<Vec<glance_common::context::CatalogEndpoint>>,
    pub is_admin: bool,
}

impl Caller {
    pub fn of(ctx: &glance_common::context::RequestContext) -> Self {
        Self {
            token: ctx.auth_token.clone().map(glance_common::keystone::Secret),
            catalog: ctx.service_catalog.clone(),
            is_admin: ctx.is_admin,
        }
    }

    /// The caller's URL of `service_type` at `interface` (in `region` if given).
    pub fn endpoint(&self, service_type: &str, interface: &str, region: Option<&str>) -> Option<&str> {
        glance_common::context::find_endpoint(&self.catalog, service_type, interface, region)
    }
}

impl fmt::Debug for Stores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Stores(default={})", self.default_scheme)
    }
}

/// The store a location URI belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    File,
    Http,
    Swift,
    S3,
}

impl Scheme {
    /// Store names and URI schemes Glance registers (`x-image-meta-store`, location URIs).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "file" | "filesystem" => Some(Self::File),
            "http" | "https" => Some(Self::Http),
            "swift" | "swift+http" | "swift+https" => Some(Self::Swift),
            "s3" | "s3+http" | "s3+https" => Some(Self::S3),
            _ => None,
        }
    }

    pub fn of_uri(uri: &str) -> Option<Self> {
        Self::parse(uri.split_once("://")?.0)
    }
}

/// The order in which a download tries an image's locations (`location_strategy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocationStrategy {
    /// As the image lists them.
    LocationOrder,
    /// By store, in this order (`[store_type_location_strategy] store_type_preference`); stores
    /// not named come last, in the image's order.
    StoreType(Vec<Scheme>),
}

impl Scheme {
    /// The store's name in `store_type_preference` and `x-image-meta-store`.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::File => "file",
            Scheme::Http => "http",
            Scheme::Swift => "swift",
            Scheme::S3 => "s3",
        }
    }
}

impl Stores {
    /// These stores acting for the request's caller (its token and catalog), as a request
    /// handler's store operations must.
    pub fn acting_for(&self, ctx: &glance_common::context::RequestContext) -> Stores {
        Stores { caller: Caller::of(ctx), ..self.clone() }
    }

    /// Whether image data lives in its owners' own Swift accounts, guarded by container ACLs.
    pub fn multi_tenant(&self) -> bool {
        self.swift.as_ref().is_some_and(|s| s.multi_tenant())
    }

    /// Lets `read_tenants` (or everyone, when `public`) read the data at `location`, and no one
    /// else; a no-op except in the multi-tenant Swift store, whose per-image containers carry
    /// the image's visibility.
    pub async fn set_acls(&self, location: &str, public: bool, read_tenants: &[String]) -> Result<(), StoreError> {
        match Self::scheme_of(location)? {
            Scheme::Swift => self.swift()?.set_acls(location, public, read_tenants, &self.caller).await,
            _ => Ok(()),
        }
    }

    /// The image's locations in the order a download should try them.
    pub fn ordered<'a>(&self, image: &'a glance_common::model::Image, strategy: &LocationStrategy) -> Vec<&'a str> {
        let mut locations: Vec<&str> = image.location_data.iter().map(|l| l.url.as_str()).collect();
        if locations.is_empty() {
            locations.extend(image.location.as_deref());
        }
        if let LocationStrategy::StoreType(preference) = strategy {
            let rank = |location: &&str| {
                Scheme::of_uri(location).and_then(|s| preference.iter().position(|p| *p == s)).unwrap_or(usize::MAX)
            };
            locations.sort_by_key(rank); // stable: ties keep the image's order
        }
        locations
    }

    fn swift(&self) -> Result<&swift::SwiftStore, StoreError> {
        self.swift.as_ref().ok_or_else(|| StoreError::BadLocation("The Swift store is not configured".into()))
    }

    fn s3(&self) -> Result<&s3::S3Store, StoreError> {
        self.s3.as_ref().ok_or_else(|| StoreError::BadLocation("The S3 store is not configured".into()))
    }

    /// Whether uploads can go to `scheme` here.
    pub fn writable(&self, scheme: Scheme) -> bool {
        match scheme {
            Scheme::File => true,
            Scheme::Http => false,
            Scheme::Swift => self.swift.is_some(),
            Scheme::S3 => self.s3.is_some(),
        }
    }

    /// Writes an upload to the store named `scheme` (`x-image-meta-store`, else default_store).
    /// `size_hint` is the size the client declared, if any.
    pub async fn put(
        &self,
        scheme: Scheme,
        id: &str,
        upload: Upload,
        size_hint: Option<u64>,
    ) -> Result<Stored, StoreError> {
        match scheme {
            Scheme::File => self.fs.put(id, upload).await,
            Scheme::Http => Err(StoreError::Other("the http store is read-only".into())),
            Scheme::Swift => self.swift()?.put(id, upload, size_hint, &self.caller).await,
            Scheme::S3 => self.s3()?.put(id, upload).await,
        }
    }

    fn scheme_of(location: &str) -> Result<Scheme, StoreError> {
        Scheme::of_uri(location)
            .ok_or_else(|| StoreError::BadLocation(format!("Unknown scheme in location {}", redact(location))))
    }

    pub async fn get(&self, location: &str) -> Result<Download, StoreError> {
        self.get_range(location, None).await
    }

    /// The data at `location`, or the part of it `range` names.
    pub async fn get_range(&self, location: &str, range: Option<ByteRange>) -> Result<Download, StoreError> {
        match Self::scheme_of(location)? {
            Scheme::File => self.fs.get(location, range).await,
            Scheme::Http => self.http.get(location, range).await,
            Scheme::Swift => self.swift()?.get(location, range, &self.caller).await,
            Scheme::S3 => self.s3()?.get(location, range).await,
        }
    }

    /// The size of the data at `location` (0 when an HTTP server does not say).
    pub async fn size(&self, location: &str) -> Result<u64, StoreError> {
        match Self::scheme_of(location)? {
            Scheme::File => self.fs.size(location).await,
            Scheme::Http => self.http.size(location).await,
            Scheme::Swift => self.swift()?.size(location, &self.caller).await,
            Scheme::S3 => self.s3()?.size(location).await,
        }
    }

    /// Deletes the data at `location`; read-only stores leave it alone.
    pub async fn delete(&self, location: &str) -> Result<(), StoreError> {
        match Self::scheme_of(location)? {
            Scheme::File => self.fs.delete(location).await,
            Scheme::Http => Ok(()),
            Scheme::Swift => self.swift()?.delete(location, &self.caller).await,
            Scheme::S3 => self.s3()?.delete(location).await,
        }
    }
}

/// A location URI without credentials, for messages and logs.
pub fn redact(uri: &str) -> String {
    without_credentials(uri)
}

/// `uri` without credentials. Glance's own locations (`swift+http://account:user:key@host/...`,
/// `s3://key:secret@host/...`) may hold keys with `/` or `@`, which no URL parser takes, so
/// there everything up to the last `@` goes, as Glance reads them; in an http(s) URL only the
/// user info of the host part goes (an `@` in its path stays).
pub fn without_credentials(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else { return uri.to_string() };
    let authority_end = match scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
        true => rest.find(['/', '?', '#']).unwrap_or(rest.len()),
        false => rest.len(),
    };
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_messages() {
        for (uri, shown) in [
            (
                "swift+http://acct:user:key@swift.example:8080/v1/glance/abc",
                "swift+http://swift.example:8080/v1/glance/abc",
            ),
            // Keys with '/' or '@' (no URL parser reads these) are cut at the last '@'.
            ("swift+https://acct:user:pa/ss@host/v1/c/o", "swift+https://host/v1/c/o"),
            ("s3://AKIA:se/cr@et@s3.example/bucket/id", "s3://s3.example/bucket/id"),
            ("file:///var/lib/glance/images/abc", "file:///var/lib/glance/images/abc"),
            ("http://example.com/cirros.img", "http://example.com/cirros.img"),
            ("https://user:pw@example.com/a@b/x?c=d@e", "https://example.com/a@b/x?c=d@e"),
            ("http://example.com/a@b/x", "http://example.com/a@b/x"),
        ] {
            assert_eq!(redact(uri), shown);
        }
    }
}
