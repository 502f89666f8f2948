//! The Swift store (`default_store = swift`), single-tenant as Glance's: one service account,
//! one container, one object per image.
//!
//! Images whose size is unknown or above `swift_store_large_object_size` are written as
//! segments of `swift_store_large_object_chunk_size` (`<id>-00001`, ...) under a dynamic large
//! object manifest `<id>` (`X-Object-Manifest: <container>/<id>-`), as Glance does; each segment
//! is streamed as it arrives, so nothing is held in memory. An upload that fails or is cut off
//! deletes whatever it wrote. Locations are `swift+http(s)://<auth address>/<container>/<id>`
//! without credentials (the store's own are used; Glance's `user:key@` form is read too).

use super::{ByteRange, Chunk, Download, Md5Thread, StoreError, Stored, Upload};
use bytes::Bytes;
use futures_util::StreamExt;
use glance_common::config::{ConfigError, DEFAULT_SECTION, RawConfig};
use glance_common::keystone::{self, Ref, Secret};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;

/// Options of `[glance_store]` (or `[DEFAULT]`) the Swift store reads.
pub const KEYS: &[&str] = &[
    "swift_store_auth_address",
    "swift_store_user",
    "swift_store_key",
    "swift_store_auth_version",
    "swift_store_container",
    "swift_store_create_container_on_put",
    "swift_store_large_object_size",
    "swift_store_large_object_chunk_size",
    "swift_store_multi_tenant",
    "swift_store_region",
    "swift_store_endpoint_type",
    "swift_store_service_type",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthVersion {
    /// tempauth / swauth: `GET <auth address>` with X-Auth-User and X-Auth-Key.
    V1,
    /// Keystone v3: a project-scoped password token; the storage URL from its catalog.
    V3,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwiftOptions {
    pub auth_address: String,
    /// `account:user` (v1) or `project:user` (v3).
    pub user: String,
    pub key: Secret,
    pub auth_version: AuthVersion,
    pub container: String,
    pub create_container_on_put: bool,
    pub large_object_size: u64,
    pub large_object_chunk_size: u64,
    pub region: Option<String>,
    /// The catalog interface: `public`, `internal` or `admin` (from `publicURL`...).
    pub interface: String,
    pub service_type: String,
}

impl SwiftOptions {
    /// The Swift options, when `swift_store_auth_address` is set; wrong values name their key.
    pub fn from_raw(raw: &RawConfig) -> Result<Option<Self>, ConfigError> {
        let get = |key: &str| raw.string("glance_store", key).or_else(|| raw.string(DEFAULT_SECTION, key));
        let section =
            |key: &str| if raw.string("glance_store", key).is_some() { "glance_store" } else { DEFAULT_SECTION };
        let Some(auth_address) = get("swift_store_auth_address") else { return Ok(None) };
        let invalid = |key: &str, value: &str, msg: &str| raw.invalid(section(key), key, value, msg);
        let auth_address = if auth_address.contains("://") { auth_address } else { format!("https://{auth_address}") };
        url::Url::parse(&auth_address)
            .map_err(|e| invalid("swift_store_auth_address", &auth_address, &e.to_string()))?;
        let auth_version = match get("swift_store_auth_version").as_deref().unwrap_or("2") {
            "1" => AuthVersion::V1,
            "2" | "3" => AuthVersion::V3,
            other => return Err(invalid("swift_store_auth_version", other, "must be 1, 2 or 3")),
        };
        let boolean = |key: &str| -> Result<bool, ConfigError> {
            match get(key) {
                None => Ok(false),
                Some(v) => glance_common::model::bool_from_string(&v)
                    .then_some(true)
                    .or_else(|| ["false", "0", "no", "off"].contains(&v.to_lowercase().as_str()).then_some(false))
                    .ok_or_else(|| invalid(key, &v, "expected True or False")),
            }
        };
        if boolean("swift_store_multi_tenant")? {
            return Err(invalid(
                "swift_store_multi_tenant",
                "True",
                "the multi-tenant Swift store is not supported yet",
            ));
        }
        let mebibytes = |key: &str, default: u64| -> Result<u64, ConfigError> {
            match get(key) {
                None => Ok(default << 20),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .map(|n| n << 20)
                    .ok_or_else(|| invalid(key, &v, "expected a positive number of MB")),
            }
        };
        let required = |key: &str| get(key).ok_or_else(|| invalid(key, "", "required with swift_store_auth_address"));
        let interface = match get("swift_store_endpoint_type").as_deref().unwrap_or("publicURL") {
            "publicURL" | "public" => "public",
            "internalURL" | "internal" => "internal",
            "adminURL" | "admin" => "admin",
            other => return Err(invalid("swift_store_endpoint_type", other, "publicURL, internalURL or adminURL")),
        };
        Ok(Some(Self {
            auth_address: auth_address.trim_end_matches('/').to_string(),
            user: required("swift_store_user")?,
            key: Secret(required("swift_store_key")?),
            auth_version,
            container: get("swift_store_container").unwrap_or_else(|| "glance".into()),
            create_container_on_put: boolean("swift_store_create_container_on_put")?,
            large_object_size: mebibytes("swift_store_large_object_size", 5120)?,
            large_object_chunk_size: mebibytes("swift_store_large_object_chunk_size", 200)?,
            region: get("swift_store_region"),
            interface: interface.to_string(),
            service_type: get("swift_store_service_type").unwrap_or_else(|| "object-store".into()),
        }))
    }
}

#[derive(Clone)]
struct Session {
    token: Secret,
    storage_url: String,
}

#[derive(Clone)]
pub struct SwiftStore {
    inner: Arc<Inner>,
}

struct Inner {
    opts: SwiftOptions,
    http: reqwest::Client,
    session: Mutex<Option<Session>>,
    container_ready: AtomicBool,
}

impl std::fmt::Debug for SwiftStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SwiftStore({})", self.inner.opts.auth_address)
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("The Swift store is unavailable: {e}"))
}

impl SwiftStore {
    pub fn new(opts: SwiftOptions) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("Swift client: {e}"))?;
        Ok(Self {
            inner: Arc::new(Inner { opts, http, session: Mutex::new(None), container_ready: AtomicBool::new(false) }),
        })
    }

    fn opts(&self) -> &SwiftOptions {
        &self.inner.opts
    }

    /// Where this store's object `name` is, as a location URI.
    fn location_of(&self, name: &str) -> String {
        let address = &self.opts().auth_address;
        let (scheme, rest) = address.split_once("://").unwrap_or(("https", address));
        format!("swift+{scheme}://{rest}/{}/{name}", self.opts().container)
    }

    /// `(container, object)` of a location this store can read.
    fn object_of(location: &str) -> Result<(String, String), StoreError> {
        let bad = || StoreError::BadLocation("Invalid Swift location".into());
        let url = url::Url::parse(location).map_err(|_| bad())?;
        let mut segments: Vec<&str> = url.path_segments().ok_or_else(bad)?.filter(|s| !s.is_empty()).collect();
        let object = segments.pop().ok_or_else(bad)?;
        let container = segments.pop().ok_or_else(bad)?;
        Ok((container.to_string(), object.to_string()))
    }

    async fn session(&self, renew: bool) -> Result<Session, StoreError> {
        let mut slot = self.inner.session.lock().await;
        if let Some(session) = slot.as_ref().filter(|_| !renew) {
            return Ok(session.clone());
        }
        let session = match self.opts().auth_version {
            AuthVersion::V1 => self.auth_v1().await?,
            AuthVersion::V3 => self.auth_v3().await?,
        };
        *slot = Some(session.clone());
        Ok(session)
    }

    async fn auth_v1(&self) -> Result<Session, StoreError> {
        let o = self.opts();
        let res = self
            .inner
            .http
            .get(&o.auth_address)
            .header("x-auth-user", &o.user)
            .header("x-auth-key", &o.key.0)
            .send()
            .await
            .map_err(unavailable)?;
        if !res.status().is_success() {
            return Err(refused(res.status()));
        }
        let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        match (header("x-auth-token"), header("x-storage-url")) {
            (Some(token), Some(storage_url)) => Ok(Session { token: Secret(token), storage_url }),
            _ => Err(unavailable("the auth answer carried no token or storage URL")),
        }
    }

    async fn auth_v3(&self) -> Result<Session, StoreError> {
        let o = self.opts();
        let (project, user) = o.user.split_once(':').unwrap_or(("", o.user.as_str()));
        let default = Ref::Id("default");
        let body = keystone::password_login(user, &o.key.0, default, Ref::Name(project), default);
        let base = keystone::base_url(&o.auth_address);
        let res =
            self.inner.http.post(format!("{base}/v3/auth/tokens")).json(&body).send().await.map_err(unavailable)?;
        if !res.status().is_success() {
            return Err(refused(res.status()));
        }
        let token = res
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| unavailable("Keystone answered without a token"))?;
        let doc: serde_json::Value = res.json().await.map_err(unavailable)?;
        let storage_url = doc["token"]["catalog"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|service| service["type"] == o.service_type.as_str())
            .flat_map(|service| service["endpoints"].as_array().cloned().unwrap_or_default())
            .find(|e| {
                e["interface"] == o.interface.as_str()
                    && o.region.as_deref().is_none_or(|r| e["region"] == r || e["region_id"] == r)
            })
            .and_then(|e| e["url"].as_str().map(str::to_string))
            .ok_or_else(|| {
                unavailable(format!("no {} endpoint of type {} in the catalog", o.interface, o.service_type))
            })?;
        Ok(Session { token: Secret(token), storage_url })
    }

    /// Sends a request built for the current session; an expired token is renewed once.
    async fn send(&self, build: impl Fn(&Session) -> RequestBuilder) -> Result<Response, StoreError> {
        let session = self.session(false).await?;
        let res = build(&session).send().await.map_err(unavailable)?;
        if res.status() != StatusCode::UNAUTHORIZED {
            return Ok(res);
        }
        let session = self.session(true).await?;
        build(&session).send().await.map_err(unavailable)
    }

    fn request(&self, session: &Session, method: Method, path: &str) -> RequestBuilder {
        self.inner
            .http
            .request(method, format!("{}/{path}", session.storage_url))
            .header("x-auth-token", &session.token.0)
    }

    /// Makes sure the container exists, creating it when allowed (once per process).
    async fn ensure_container(&self) -> Result<(), StoreError> {
        if self.inner.container_ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        let container = self.opts().container.clone();
        let res = self.send(|s| self.request(s, Method::HEAD, &container)).await?;
        match res.status() {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND if self.opts().create_container_on_put => {
                let res = self.send(|s| self.request(s, Method::PUT, &container)).await?;
                if !res.status().is_success() {
                    return Err(unavailable(format!("could not create container {container}: {}", res.status())));
                }
            }
            StatusCode::NOT_FOUND => {
                return Err(StoreError::Unavailable(format!(
                    "The Swift container {container} does not exist and swift_store_create_container_on_put is off"
                )));
            }
            other => return Err(unavailable(format!("container {container}: {other}"))),
        }
        self.inner.container_ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Streams an upload into the container: one object when `size_hint` says it is small,
    /// else segments and a manifest. Anything written is deleted again if the upload fails.
    pub async fn put(&self, id: &str, upload: Upload, size_hint: Option<u64>) -> Result<Stored, StoreError> {
        self.ensure_container().await?;
        let md5 = Md5Thread::start();
        let to_hasher = md5.sender();
        let feed =
            Arc::new(Mutex::new(Feed { upload, leftover: None, ended: false, aborted: false, size: 0, to_hasher }));
        let mut written: Vec<String> = Vec::new();
        let result = self.write(id, &feed, size_hint, &mut written).await;
        let size = {
            let mut feed = feed.lock().await;
            // Closing the hasher's channel lets it finish.
            feed.to_hasher = tokio::sync::mpsc::channel(1).0;
            feed.size
        };
        let checksum = md5.finish().await?;
        match result {
            Ok(()) => Ok(Stored { location: self.location_of(id), size, checksum }),
            Err(e) => {
                for name in written.iter().rev() {
                    self.delete_object(&self.opts().container.clone(), name).await.ok();
                }
                Err(e)
            }
        }
    }

    async fn write(
        &self,
        id: &str,
        feed: &Arc<Mutex<Feed>>,
        size_hint: Option<u64>,
        written: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        let o = self.opts().clone();
        if size_hint.is_some_and(|s| s < o.large_object_size) {
            written.push(id.to_string());
            self.put_object(id, feed, u64::MAX).await?;
            return finished(feed).await;
        }
        for n in 1.. {
            if !more(feed).await? {
                break;
            }
            let name = format!("{id}-{n:05}");
            written.push(name.clone());
            self.put_object(&name, feed, o.large_object_chunk_size).await?;
        }
        finished(feed).await?;
        let manifest = format!("{}/{id}-", o.container);
        written.push(id.to_string());
        let path = format!("{}/{id}", o.container);
        let res = self
            .send(|s| {
                self.request(s, Method::PUT, &path).header("x-object-manifest", &manifest).header("content-length", "0")
            })
            .await?;
        check_written(res, id)
    }

    /// One PUT streaming up to `limit` bytes of the feed.
    async fn put_object(&self, name: &str, feed: &Arc<Mutex<Feed>>, limit: u64) -> Result<(), StoreError> {
        let session = self.session(false).await?;
        let path = format!("{}/{name}", self.opts().container);
        let res = self
            .request(&session, Method::PUT, &path)
            .body(reqwest::Body::wrap_stream(segment(feed.clone(), limit)))
            .send()
            .await;
        if feed.lock().await.aborted {
            return Err(StoreError::Aborted);
        }
        check_written(res.map_err(unavailable)?, name)
    }

    pub async fn get(&self, location: &str, range: Option<ByteRange>) -> Result<Download, StoreError> {
        let (container, object) = Self::object_of(location)?;
        let path = format!("{container}/{object}");
        let res = self
            .send(|s| {
                let r = self.request(s, Method::GET, &path);
                match range {
                    Some(range) => r.header("range", range.header()),
                    None => r,
                }
            })
            .await?;
        match res.status() {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND => return Err(StoreError::NotFound(format!("Swift could not find object {object}"))),
            StatusCode::RANGE_NOT_SATISFIABLE => {
                return Err(StoreError::BadLocation("Requested range not satisfiable".into()));
            }
            other => return Err(unavailable(format!("GET {object}: {other}"))),
        }
        let size = res.content_length();
        let body = res.bytes_stream().map(|chunk| chunk.map_err(std::io::Error::other));
        Ok(Download { body: Box::pin(body), size })
    }

    pub async fn size(&self, location: &str) -> Result<u64, StoreError> {
        let (container, object) = Self::object_of(location)?;
        let path = format!("{container}/{object}");
        let res = self.send(|s| self.request(s, Method::HEAD, &path)).await?;
        match res.status() {
            // A HEAD answer has no body, so reqwest's content_length() would say 0: read the header.
            s if s.is_success() => Ok(res
                .headers()
                .get(reqwest::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .unwrap_or(0)),
            StatusCode::NOT_FOUND => Err(StoreError::NotFound(format!("Swift could not find object {object}"))),
            other => Err(unavailable(format!("HEAD {object}: {other}"))),
        }
    }

    /// Deletes the object and, for a large object, its segments.
    pub async fn delete(&self, location: &str) -> Result<(), StoreError> {
        let (container, object) = Self::object_of(location)?;
        let path = format!("{container}/{object}");
        let res = self.send(|s| self.request(s, Method::HEAD, &path)).await?;
        match res.status() {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND => return Err(StoreError::NotFound(format!("Swift could not find object {object}"))),
            other => return Err(unavailable(format!("HEAD {object}: {other}"))),
        }
        if let Some(manifest) = res.headers().get("x-object-manifest").and_then(|v| v.to_str().ok()) {
            let (segment_container, prefix) = manifest.split_once('/').unwrap_or((container.as_str(), manifest));
            for name in self.list(segment_container, prefix).await? {
                self.delete_object(segment_container, &name).await?;
            }
        }
        self.delete_object(&container, &object).await
    }

    /// Names in `container` starting with `prefix`, every page.
    async fn list(&self, container: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = Vec::new();
        loop {
            let marker = names.last().cloned().unwrap_or_default();
            let res = self
                .send(|s| {
                    self.request(s, Method::GET, container).query(&[
                        ("format", "json"),
                        ("prefix", prefix),
                        ("marker", marker.as_str()),
                    ])
                })
                .await?;
            if !res.status().is_success() {
                return Err(unavailable(format!("listing {container}: {}", res.status())));
            }
            let page: Vec<serde_json::Value> = res.json().await.map_err(unavailable)?;
            if page.is_empty() {
                return Ok(names);
            }
            names.extend(page.iter().filter_map(|o| o["name"].as_str().map(str::to_string)));
        }
    }

    async fn delete_object(&self, container: &str, name: &str) -> Result<(), StoreError> {
        let path = format!("{container}/{name}");
        let res = self.send(|s| self.request(s, Method::DELETE, &path)).await?;
        match res.status() {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Err(StoreError::NotFound(format!("Swift could not find object {name}"))),
            other => Err(unavailable(format!("DELETE {name}: {other}"))),
        }
    }
}

fn refused(status: StatusCode) -> StoreError {
    log::error!("the Swift store's credentials (swift_store_user) were refused: {status}");
    StoreError::Unavailable(format!("The Swift store refused its credentials ({status})"))
}

fn check_written(res: Response, name: &str) -> Result<(), StoreError> {
    match res.status() {
        s if s.is_success() => Ok(()),
        StatusCode::PAYLOAD_TOO_LARGE => {
            Err(StoreError::StorageFull(format!("Swift refused object {name} as too large")))
        }
        StatusCode::INSUFFICIENT_STORAGE => Err(StoreError::StorageFull(format!("Swift is out of space for {name}"))),
        other => Err(unavailable(format!("PUT {name}: {other}"))),
    }
}

/// The upload as the PUTs consume it: chunks cut at segment boundaries, each one counted and
/// handed to the hashing thread as it passes.
struct Feed {
    upload: Upload,
    leftover: Option<Bytes>,
    ended: bool,
    aborted: bool,
    size: u64,
    to_hasher: tokio::sync::mpsc::Sender<Bytes>,
}

impl Feed {
    /// The next bytes: what a segment boundary left over, else the next chunk.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(bytes) = self.leftover.take() {
            return Some(bytes);
        }
        if self.ended || self.aborted {
            return None;
        }
        match self.upload.recv().await {
            Some(Chunk::Data(bytes)) => Some(bytes),
            Some(Chunk::End) => {
                self.ended = true;
                None
            }
            None => {
                self.aborted = true;
                None
            }
        }
    }
}

/// Whether the upload has more bytes (waiting for them if needed).
async fn more(feed: &Arc<Mutex<Feed>>) -> Result<bool, StoreError> {
    let mut f = feed.lock().await;
    loop {
        match f.next().await {
            Some(bytes) if bytes.is_empty() => continue,
            Some(bytes) => {
                f.leftover = Some(bytes);
                return Ok(true);
            }
            None if f.aborted => return Err(StoreError::Aborted),
            None => return Ok(false),
        }
    }
}

/// The upload must have ended with [`Chunk::End`] and nothing may be left.
async fn finished(feed: &Arc<Mutex<Feed>>) -> Result<(), StoreError> {
    if more(feed).await? {
        return Err(StoreError::Other("data left after the last segment".into()));
    }
    Ok(())
}

/// A request body of at most `limit` bytes from the feed. A feed whose sender went away
/// without `End` fails the body, so the PUT fails and Swift keeps nothing of it.
fn segment(feed: Arc<Mutex<Feed>>, limit: u64) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> {
    futures_util::stream::unfold((feed, limit), |(feed, left)| async move {
        if left == 0 {
            return None;
        }
        let mut f = feed.lock().await;
        let mut bytes = match f.next().await {
            Some(bytes) => bytes,
            None if f.aborted => {
                drop(f);
                return Some((Err(std::io::Error::other("upload aborted")), (feed, 0)));
            }
            None => return None,
        };
        if bytes.len() as u64 > left {
            f.leftover = Some(bytes.split_off(left as usize));
        }
        f.size += bytes.len() as u64;
        let hashed = f.to_hasher.send(bytes.clone()).await;
        drop(f);
        if hashed.is_err() {
            return Some((Err(std::io::Error::other("the md5 thread stopped")), (feed, 0)));
        }
        let left = left - bytes.len() as u64;
        Some((Ok(bytes), (feed, left)))
    })
}
