//! The S3 store (`default_store = s3`): AWS S3 or a compatible service (Ceph RGW, MinIO, Swift's
//! s3api), through the `object_store` crate (signing, retries, multipart).
//!
//! An upload is buffered one part at a time (`s3_store_large_object_chunk_size`, at least S3's
//! 5 MiB minimum): an image that ends within its first part is one PUT, anything longer is a
//! multipart upload with at most two parts in flight, aborted (parts deleted) if the upload
//! fails. Memory per upload is bounded by about three parts, whatever the image's size.
//! Locations are `s3+http(s)://<host>/<bucket>/<id>` without credentials (Glance's
//! `s3://key:secret@host/...` form is read too, with the store's own credentials).

use super::{ByteRange, Chunk, Download, Md5Thread, StoreError, Stored, Upload};
use bytes::Bytes;
use futures_util::StreamExt;
use glance_common::config::{ConfigError, DEFAULT_SECTION, RawConfig};
use glance_common::keystone::Secret;
use object_store::aws::{AmazonS3, AmazonS3Builder, AwsAuthorizer, AwsCredential};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Options of `[glance_store]` (or `[DEFAULT]`) the S3 store reads.
pub const KEYS: &[&str] = &[
    "s3_store_host",
    "s3_store_access_key",
    "s3_store_secret_key",
    "s3_store_bucket",
    "s3_store_create_bucket_on_put",
    "s3_store_bucket_url_format",
    "s3_store_large_object_size",
    "s3_store_large_object_chunk_size",
    "s3_store_region_name",
    "s3_store_thread_pools",
];

/// S3's smallest part (all but the last).
const MIN_PART: u64 = 5 << 20;
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Options {
    /// `http(s)://host[:port]`; a bare host means https.
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: Secret,
    pub bucket: String,
    pub create_bucket_on_put: bool,
    /// Virtual-hosted-style bucket URLs (`bucket.host`) instead of path-style (`host/bucket`).
    pub virtual_hosted: bool,
    pub chunk_size: u64,
    pub region: String,
    /// `remote_store_timeout`: the longest S3 may keep us waiting.
    pub timeout: std::time::Duration,
}

impl S3Options {
    /// The S3 options, when `s3_store_host` is set; wrong values name their key.
    pub fn from_raw(raw: &RawConfig) -> Result<Option<Self>, ConfigError> {
        let get = |key: &str| raw.string("glance_store", key).or_else(|| raw.string(DEFAULT_SECTION, key));
        let invalid = |key: &str, value: &str, msg: &str| {
            let section = if raw.string("glance_store", key).is_some() { "glance_store" } else { DEFAULT_SECTION };
            raw.invalid(section, key, value, msg)
        };
        let Some(host) = get("s3_store_host") else { return Ok(None) };
        let endpoint = if host.contains("://") { host } else { format!("https://{host}") };
        let parsed = url::Url::parse(&endpoint).map_err(|e| invalid("s3_store_host", &endpoint, &e.to_string()))?;
        let required = |key: &str| get(key).ok_or_else(|| invalid(key, "", "required with s3_store_host"));
        let virtual_hosted = match get("s3_store_bucket_url_format").as_deref().unwrap_or("auto") {
            "path" => false,
            "virtual" => true,
            // As glance_store: virtual-hosted unless the host is an IP address.
            "auto" => !matches!(parsed.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) | None),
            other => return Err(invalid("s3_store_bucket_url_format", other, "must be auto, path or virtual")),
        };
        let chunk = match get("s3_store_large_object_chunk_size") {
            None => 10 << 20,
            Some(v) => v.parse::<u64>().ok().map(|mb| mb << 20).filter(|b| *b >= MIN_PART).ok_or_else(|| {
                invalid("s3_store_large_object_chunk_size", &v, "expected a number of MB, at least 5")
            })?,
        };
        let create = match get("s3_store_create_bucket_on_put") {
            None => false,
            Some(v) => match v.to_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => return Err(invalid("s3_store_create_bucket_on_put", &v, "expected True or False")),
            },
        };
        Ok(Some(Self {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            access_key: required("s3_store_access_key")?,
            secret_key: Secret(required("s3_store_secret_key")?),
            bucket: required("s3_store_bucket")?,
            create_bucket_on_put: create,
            virtual_hosted,
            chunk_size: chunk,
            region: get("s3_store_region_name").unwrap_or_else(|| "us-east-1".into()),
            timeout: super::stall::timeout_from_raw(raw)?,
        }))
    }
}

#[derive(Clone)]
pub struct S3Store {
    inner: Arc<Inner>,
}

struct Inner {
    opts: S3Options,
    s3: AmazonS3,
    /// For the bucket's own HEAD and PUT (object_store has no bucket API).
    http: reqwest::Client,
    bucket_ready: AtomicBool,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Store({}/{})", self.inner.opts.endpoint, self.inner.opts.bucket)
    }
}

fn error(e: object_store::Error) -> StoreError {
    match e {
        object_store::Error::NotFound { path, .. } => StoreError::NotFound(format!("S3 could not find object {path}")),
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            log::error!("the S3 store's credentials (s3_store_access_key) were refused: {e}");
            StoreError::Unavailable("The S3 store refused its credentials".into())
        }
        // Its text names the request's URL: the log gets it, the caller does not.
        other => {
            log::warn!("a request to the S3 store failed: {other}");
            StoreError::Unavailable("The S3 store is unavailable".into())
        }
    }
}

/// The part being filled from an upload, and the upload's size so far.
#[derive(Default)]
struct Filling {
    buffer: Vec<Bytes>,
    buffered: usize,
    size: u64,
}

impl Filling {
    /// Takes the upload's next chunk (hashed on the way): `false` once it has ended.
    async fn take(&mut self, upload: &mut Upload, md5: &Md5Thread) -> Result<bool, StoreError> {
        match upload.recv().await {
            Some(Chunk::Data(bytes)) => {
                self.size += bytes.len() as u64;
                self.buffered += bytes.len();
                md5.update(bytes.clone()).await;
                self.buffer.push(bytes);
                Ok(true)
            }
            Some(Chunk::End) => Ok(false),
            None => Err(StoreError::Aborted),
        }
    }

    /// What is buffered, as one payload; the buffer starts over.
    fn payload(&mut self) -> PutPayload {
        self.buffered = 0;
        PutPayload::from_iter(std::mem::take(&mut self.buffer))
    }
}

/// A part's upload, as the join set hands it back.
fn part_done(joined: Option<Result<Result<(), StoreError>, tokio::task::JoinError>>) -> Result<(), StoreError> {
    match joined {
        Some(Ok(sent)) => sent,
        Some(Err(e)) => Err(StoreError::Other(format!("a part's upload stopped: {e}"))),
        None => Ok(()),
    }
}

/// S3 kept us waiting `limit`.
fn stalled(limit: std::time::Duration) -> StoreError {
    StoreError::Unavailable(format!(
        "The S3 store is unavailable: no answer within {} s (remote_store_timeout)",
        limit.as_secs()
    ))
}

impl S3Store {
    pub fn new(opts: S3Options) -> Result<Self, String> {
        // No total timeout (object_store's default of 30 s would cut off any long download)
        // and no reqwest read timeout (it would count a slow client's pauses): waits on S3
        // are bounded by `remote_store_timeout` around each call and between download pieces.
        let client = object_store::ClientOptions::new()
            .with_timeout_disabled()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_pool_idle_timeout(std::time::Duration::from_secs(30));
        let s3 = AmazonS3Builder::new()
            .with_client_options(client)
            .with_endpoint(&opts.endpoint)
            .with_allow_http(opts.endpoint.starts_with("http://"))
            .with_region(&opts.region)
            .with_bucket_name(&opts.bucket)
            .with_access_key_id(&opts.access_key)
            .with_secret_access_key(&opts.secret_key.0)
            .with_virtual_hosted_style_request(opts.virtual_hosted)
            .with_retry(object_store::RetryConfig {
                max_retries: 2,
                retry_timeout: std::time::Duration::from_secs(20),
                ..Default::default()
            })
            .build()
            .map_err(|e| format!("S3 store: {e}"))?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(opts.timeout)
            .build()
            .map_err(|e| format!("S3 store: {e}"))?;
        Ok(Self { inner: Arc::new(Inner { opts, s3, http, bucket_ready: AtomicBool::new(false) }) })
    }

    fn opts(&self) -> &S3Options {
        &self.inner.opts
    }

    fn location_of(&self, id: &str) -> String {
        let (scheme, host) = self.opts().endpoint.split_once("://").unwrap_or(("https", &self.opts().endpoint));
        format!("s3+{scheme}://{host}/{}/{id}", self.opts().bucket)
    }

    /// The object key of a location in this store's bucket.
    fn key_of(&self, location: &str) -> Result<Path, StoreError> {
        let bad = || StoreError::BadLocation("Invalid S3 location".into());
        let url = url::Url::parse(&super::without_credentials(location)).map_err(|_| bad())?;
        let segments: Vec<&str> = url.path_segments().ok_or_else(bad)?.filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            [.., bucket, key] if *bucket == self.opts().bucket => Ok(Path::from(*key)),
            [.., bucket, _] => Err(StoreError::BadLocation(format!("S3 bucket {bucket} is not this store's"))),
            _ => Err(bad()),
        }
    }

    /// Makes sure the bucket exists, creating it when allowed (once per process).
    async fn ensure_bucket(&self) -> Result<(), StoreError> {
        if self.inner.bucket_ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        let bucket = &self.opts().bucket;
        let status = self.bucket_request(reqwest::Method::HEAD).await?;
        match status.as_u16() {
            200..=299 => {}
            404 if self.opts().create_bucket_on_put => {
                let created = self.bucket_request(reqwest::Method::PUT).await?;
                // 409: somebody (another API node) created it meanwhile.
                if !created.is_success() && created.as_u16() != 409 {
                    return Err(StoreError::Unavailable(format!("could not create S3 bucket {bucket}: {created}")));
                }
            }
            404 => {
                return Err(StoreError::Unavailable(format!(
                    "The S3 bucket {bucket} does not exist and s3_store_create_bucket_on_put is off"
                )));
            }
            401 | 403 => {
                log::error!("the S3 store's credentials (s3_store_access_key) were refused: {status}");
                return Err(StoreError::Unavailable("The S3 store refused its credentials".into()));
            }
            _ => {
                return Err(StoreError::Unavailable(format!("The S3 store is unavailable: bucket {bucket}: {status}")));
            }
        }
        self.inner.bucket_ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// `HEAD` or `PUT` of the bucket itself, signed with SigV4 (object_store has no bucket API).
    async fn bucket_request(&self, method: reqwest::Method) -> Result<reqwest::StatusCode, StoreError> {
        let o = self.opts();
        let url = if o.virtual_hosted {
            let (scheme, host) = o.endpoint.split_once("://").unwrap_or(("https", &o.endpoint));
            format!("{scheme}://{}.{host}/", o.bucket)
        } else {
            format!("{}/{}", o.endpoint, o.bucket)
        };
        let credential =
            AwsCredential { key_id: o.access_key.clone(), secret_key: o.secret_key.0.clone(), token: None };
        let mut request = http::Request::builder()
            .method(method.as_str())
            .uri(&url)
            .body(object_store::client::HttpRequestBody::from(Bytes::new()))
            .map_err(|e| StoreError::Other(e.to_string()))?;
        AwsAuthorizer::new(&credential, "s3", &o.region)
            .with_sign_payload(false)
            .try_authorize(&mut request, None)
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let mut outgoing = self.inner.http.request(method, &url);
        for (name, value) in request.headers() {
            outgoing = outgoing.header(name, value);
        }
        let res = outgoing.send().await.map_err(|e| {
            log::warn!("a request to the S3 store failed: {e}");
            StoreError::Unavailable(format!("The S3 store is unavailable: {}", e.without_url()))
        })?;
        Ok(res.status())
    }

    pub async fn put(&self, id: &str, mut upload: Upload) -> Result<Stored, StoreError> {
        self.ensure_bucket().await?;
        let key = Path::from(id);
        let part = self.opts().chunk_size as usize;
        let md5 = Md5Thread::start();
        // The first part decides: an image that ends within it is a single PUT.
        let mut filling = Filling::default();
        let mut ended = false;
        while filling.buffered < part && !ended {
            ended = !filling.take(&mut upload, &md5).await?;
        }
        if ended {
            let limit = self.transfer_limit(filling.buffered);
            let put = async { self.inner.s3.put(&key, filling.payload()).await.map_err(error) };
            if let Err(e) = super::stall::within(limit, put, || stalled(limit)).await {
                // A PUT cut off by the limit may still land: take it back.
                if let Err(left) = self.bounded(self.inner.s3.delete(&key)).await {
                    log::warn!("S3 object {id} of a failed upload not deleted: {left}");
                }
                return Err(e);
            }
        } else {
            let mut multipart = self.bounded(self.inner.s3.put_multipart(&key)).await?;
            let sent = self.send_parts(multipart.as_mut(), &mut filling, &mut upload, &md5).await;
            if let Err(e) = sent {
                if let Err(abort) = self.bounded(multipart.abort()).await {
                    log::warn!("S3 multipart upload of {id} not aborted: {abort}");
                }
                return Err(e);
            }
        }
        let size = filling.size;
        let checksum = md5.finish().await?;
        Ok(Stored { location: self.location_of(id), size, checksum })
    }

    pub async fn get(&self, location: &str, range: Option<ByteRange>) -> Result<Download, StoreError> {
        let key = self.key_of(location)?;
        let options = GetOptions {
            range: range.map(|r| match r.end {
                Some(end) => GetRange::Bounded(r.start..end),
                None => GetRange::Offset(r.start),
            }),
            ..Default::default()
        };
        let get = async {
            self.inner.s3.get_opts(&key, options).await.map_err(|e| match e {
                object_store::Error::Generic { .. } if range.is_some() => {
                    StoreError::BadLocation("Requested range not satisfiable".into())
                }
                e => error(e),
            })
        };
        let limit = self.opts().timeout;
        let result = super::stall::within(limit, get, || stalled(limit)).await?;
        let size = result.range.end - result.range.start;
        let body = result.into_stream().map(|chunk| chunk.map_err(std::io::Error::other));
        Ok(Download { body: Box::pin(super::stall::quiet_limited(body, limit)), size: Some(size) })
    }

    pub async fn size(&self, location: &str) -> Result<u64, StoreError> {
        let key = self.key_of(location)?;
        Ok(self.bounded(self.inner.s3.head(&key)).await?.size)
    }

    pub async fn delete(&self, location: &str) -> Result<(), StoreError> {
        let key = self.key_of(location)?;
        // S3 deletes of missing keys succeed; Glance reports them as not found.
        self.bounded(self.inner.s3.head(&key)).await?;
        self.bounded(self.inner.s3.delete(&key)).await
    }

    /// The rest of a multipart upload after its first part's worth of bytes: parts of at least
    /// `s3_store_large_object_chunk_size`, two uploading while the next one fills, then the
    /// completion. The caller aborts the upload when this fails.
    async fn send_parts(
        &self,
        multipart: &mut dyn MultipartUpload,
        filling: &mut Filling,
        upload: &mut Upload,
        md5: &Md5Thread,
    ) -> Result<(), StoreError> {
        let part = self.opts().chunk_size as usize;
        let mut uploading = tokio::task::JoinSet::new();
        let filled: Result<(), StoreError> = async {
            let mut ended = false;
            loop {
                if filling.buffered >= part || (ended && filling.buffered > 0) {
                    let limit = self.transfer_limit(filling.buffered);
                    let sending = multipart.put_part(filling.payload());
                    let sent = async { sending.await.map_err(error) };
                    uploading.spawn(super::stall::within(limit, sent, move || stalled(limit)));
                }
                if ended {
                    return Ok(());
                }
                // With two parts uploading the client waits: memory stays at two parts and
                // the one filling, whatever the image's size.
                while uploading.len() >= 2 {
                    part_done(uploading.join_next().await)?;
                }
                ended = !filling.take(upload, md5).await?;
            }
        }
        .await;
        // Parts under way finish (each within its limit) even when the upload failed: one
        // cancelled mid-request could still land in the store after the caller's abort.
        let mut outcome = filled;
        while !uploading.is_empty() {
            let done = part_done(uploading.join_next().await);
            outcome = outcome.and(done);
        }
        outcome?;
        self.bounded(multipart.complete()).await.map(drop)
    }

    /// How long a call carrying `bytes` to S3 may take: `remote_store_timeout`, and a second
    /// per MiB on top (a slow link is not a silent store).
    fn transfer_limit(&self, bytes: usize) -> std::time::Duration {
        self.opts().timeout + std::time::Duration::from_secs((bytes >> 20) as u64)
    }

    /// One call to S3, bounded by `remote_store_timeout`.
    async fn bounded<T>(&self, call: impl Future<Output = object_store::Result<T>>) -> Result<T, StoreError> {
        let limit = self.opts().timeout;
        super::stall::within(limit, async { call.await.map_err(error) }, || stalled(limit)).await
    }
}
