//! One conformance suite for every writable store (file, Swift, S3), and the read-only HTTP
//! store where it applies: each store is driven directly, as glance-api drives it, against the
//! real backend (Swift and its S3 API, from `scripts/swift.sh`).

use bytes::Bytes;
use futures_util::StreamExt;
use glance_api::store::s3::{S3Options, S3Store};
use glance_api::store::swift::{AuthVersion, SwiftOptions, SwiftStore};
use glance_api::store::{ByteRange, Chunk, Scheme, StoreError, Stored, Stores, fs, http};
use glance_common::keystone::Secret;
use glance_tests::proxy::FaultProxy;
use glance_tests::swift::{Swift, swift};
use std::time::Duration;

const MIB: usize = 1 << 20;

/// A store under test and a way to see what it left in its backend.
struct Subject {
    stores: Stores,
    scheme: Scheme,
    backend: Backend,
    _dir: tempfile::TempDir,
}

enum Backend {
    File(std::path::PathBuf),
    Swift {
        swift: Swift,
        container: String,
    },
    /// An S3 bucket is a Swift container; multipart parts wait in `<bucket>+segments`.
    S3 {
        swift: Swift,
        bucket: String,
    },
}

fn stores(dir: &std::path::Path, swift: Option<SwiftStore>, s3: Option<S3Store>) -> Stores {
    Stores {
        fs: fs::FsStore::new(dir.join("images")).expect("file store"),
        http: http::HttpStore::new(http::Denied { endpoints: Vec::new() }).expect("http store"),
        swift,
        s3,
        default_scheme: "file".into(),
        caller: Default::default(),
    }
}

fn file_subject() -> Subject {
    let dir = tempfile::tempdir().expect("dir");
    let images = dir.path().join("images");
    Subject { stores: stores(dir.path(), None, None), scheme: Scheme::File, backend: Backend::File(images), _dir: dir }
}

fn s3_options(s: &Swift, bucket: &str, endpoint: &str) -> S3Options {
    S3Options {
        endpoint: endpoint.to_string(),
        access_key: s.user.clone(),
        secret_key: Secret(s.key.clone()),
        bucket: bucket.to_string(),
        create_bucket_on_put: true,
        virtual_hosted: false,
        chunk_size: 5 * MIB as u64,
        region: "us-east-1".into(),
        timeout: Duration::from_secs(60),
    }
}

fn s3_subject() -> Option<Subject> {
    let s = swift()?;
    let dir = tempfile::tempdir().expect("dir");
    let bucket = format!("conformance-{}", uuid::Uuid::new_v4().simple());
    let store = S3Store::new(s3_options(s, &bucket, &s.s3_endpoint)).expect("s3 store");
    Some(Subject {
        stores: stores(dir.path(), None, Some(store)),
        scheme: Scheme::S3,
        backend: Backend::S3 { swift: s.clone(), bucket },
        _dir: dir,
    })
}

fn swift_options(s: &Swift, container: &str, auth_address: &str) -> SwiftOptions {
    SwiftOptions {
        auth_address: auth_address.to_string(),
        user: s.user.clone(),
        key: Secret(s.key.clone()),
        auth_version: AuthVersion::V1,
        container: container.to_string(),
        create_container_on_put: true,
        // Small thresholds, so that a few MiB cross them.
        large_object_size: 2 * MIB as u64,
        large_object_chunk_size: MIB as u64,
        region: None,
        interface: "public".into(),
        service_type: "object-store".into(),
        multi_tenant: false,
        admin_tenants: Vec::new(),
        timeout: Duration::from_secs(60),
    }
}

fn swift_subject() -> Option<Subject> {
    let s = swift()?;
    let dir = tempfile::tempdir().expect("dir");
    let container = format!("conformance-{}", uuid::Uuid::new_v4().simple());
    let store = SwiftStore::new(swift_options(s, &container, &s.auth_url)).expect("swift store");
    Some(Subject {
        stores: stores(dir.path(), Some(store), None),
        scheme: Scheme::Swift,
        backend: Backend::Swift { swift: s.clone(), container },
        _dir: dir,
    })
}

impl Subject {
    /// Big enough to cross the store's large-object threshold (Swift segments of 1 MiB here,
    /// S3 parts of at least 5 MiB).
    fn large(&self) -> usize {
        match self.backend {
            Backend::S3 { .. } => 12 * MIB,
            _ => 5 * MIB / 2,
        }
    }

    /// Names the backend holds for image `id` (objects, segments, parts, files, staging files).
    async fn leftovers(&self, id: &str) -> Vec<String> {
        if let Backend::S3 { swift, bucket } = &self.backend {
            let mut names = swift.list(bucket, id).await;
            names.extend(swift.list(&format!("{bucket}+segments"), id).await);
            return names;
        }
        match &self.backend {
            Backend::File(dir) => std::fs::read_dir(dir)
                .map(|d| {
                    d.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect::<Vec<String>>()
                })
                .unwrap_or_default()
                .into_iter()
                .filter(|n: &String| n.contains(id))
                .collect(),
            Backend::Swift { swift, container } | Backend::S3 { swift, bucket: container } => {
                swift.list(container, id).await
            }
        }
    }

    /// Uploads `data` in `chunk`-sized pieces; `end` false cuts it off before the end.
    async fn put(
        &self,
        id: &str,
        data: &[u8],
        chunk: usize,
        hint: Option<u64>,
        end: bool,
    ) -> Result<Stored, StoreError> {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let pieces: Vec<Bytes> = data.chunks(chunk).map(Bytes::copy_from_slice).collect();
        let feed = async move {
            for piece in pieces {
                if tx.send(Chunk::Data(piece)).await.is_err() {
                    return;
                }
            }
            if end {
                let _ = tx.send(Chunk::End).await;
            }
        };
        let (stored, ()) = tokio::join!(self.stores.put(self.scheme, id, rx, hint), feed);
        stored
    }

    async fn read(&self, location: &str, range: Option<ByteRange>) -> Result<Vec<u8>, StoreError> {
        let mut body = self.stores.get_range(location, range).await?.body;
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk.expect("chunk"));
        }
        Ok(out)
    }
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(data))
}

async fn put_get_delete(s: Subject) {
    let id = uuid::Uuid::new_v4().to_string();
    let bytes = data(300_000);
    let stored = s.put(&id, &bytes, 64 * 1024, Some(bytes.len() as u64), true).await.expect("put");
    assert_eq!((stored.size, stored.checksum.as_str()), (bytes.len() as u64, md5_hex(&bytes).as_str()));
    assert_eq!(s.stores.size(&stored.location).await.expect("size"), bytes.len() as u64);
    assert_eq!(s.read(&stored.location, None).await.expect("get"), bytes);
    s.stores.delete(&stored.location).await.expect("delete");
    assert!(matches!(s.stores.get(&stored.location).await, Err(StoreError::NotFound(_))));
    assert!(matches!(s.stores.delete(&stored.location).await, Err(StoreError::NotFound(_))));
    assert!(s.leftovers(&id).await.is_empty());
}

async fn range_reads(s: Subject) {
    let id = uuid::Uuid::new_v4().to_string();
    let bytes = data(100_000);
    let stored = s.put(&id, &bytes, 10_000, Some(bytes.len() as u64), true).await.expect("put");
    let part = |start, end| s.read(&stored.location, Some(ByteRange { start, end }));
    assert_eq!(part(0, Some(10)).await.expect("head"), &bytes[..10]);
    assert_eq!(part(99_990, None).await.expect("tail"), &bytes[99_990..]);
    assert_eq!(part(40_000, Some(60_001)).await.expect("middle"), &bytes[40_000..60_001]);
    assert!(part(200_000, None).await.is_err(), "a range past the end is refused");
    s.stores.delete(&stored.location).await.expect("delete");
}

/// Larger than the Swift store's large-object threshold, size unknown: segments + manifest,
/// read back whole, and deleted with every segment.
async fn large_objects(s: Subject) {
    let id = uuid::Uuid::new_v4().to_string();
    let bytes = data(s.large());
    let stored = s.put(&id, &bytes, 100_000, None, true).await.expect("put");
    assert_eq!(stored.checksum, md5_hex(&bytes));
    if let Backend::Swift { .. } = s.backend {
        let mut names = s.leftovers(&id).await;
        names.sort();
        assert_eq!(names, vec![id.clone(), format!("{id}-00001"), format!("{id}-00002"), format!("{id}-00003")]);
    }
    assert_eq!(s.read(&stored.location, None).await.expect("get"), bytes);
    // Across the first segment or part boundary.
    let edge = if let Backend::S3 { .. } = s.backend { 5 * MIB } else { MIB };
    let across = ByteRange { start: (edge - 10) as u64, end: Some((edge + 10) as u64) };
    assert_eq!(s.read(&stored.location, Some(across)).await.expect("range"), &bytes[edge - 10..edge + 10]);
    s.stores.delete(&stored.location).await.expect("delete");
    let left = match &s.backend {
        // Swift's s3api hands a deleted multipart object's parts to its expirer (async delete):
        // the object is gone at once, its parts are Swift's to remove.
        Backend::S3 { swift, bucket } => swift.list(bucket, &id).await,
        _ => s.leftovers(&id).await,
    };
    assert!(left.is_empty(), "segments were left behind: {left:?}");
}

/// Cut off mid-stream (the client went away): an error, and nothing kept.
async fn cut_off_put_leaves_nothing(s: Subject) {
    for hint in [None, Some(10 * MIB as u64)] {
        let id = uuid::Uuid::new_v4().to_string();
        let result = s.put(&id, &data(s.large()), 100_000, hint, false).await;
        assert!(matches!(result, Err(StoreError::Aborted)), "{result:?}");
        assert!(s.leftovers(&id).await.is_empty(), "{:?} left for a cut-off upload", s.leftovers(&id).await);
    }
}

/// Bytes reach the backend while the upload is still arriving (nothing waits for the end).
async fn streams_without_buffering(s: Subject) {
    let id = uuid::Uuid::new_v4().to_string();
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let put = tokio::spawn({
        let stores = s.stores.clone();
        let (scheme, id) = (s.scheme, id.clone());
        async move { stores.put(scheme, &id, rx, None).await }
    });
    let total = s.large();
    for piece in data(total).chunks(256 * 1024) {
        tx.send(Chunk::Data(Bytes::copy_from_slice(piece))).await.expect("send");
    }
    // Before End: the file store's staging file or the Swift segments already hold data.
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = s.leftovers(&id).await;
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!seen.is_empty(), "nothing reached the backend before the upload ended");
    tx.send(Chunk::End).await.expect("end");
    let stored = put.await.expect("join").expect("put");
    assert_eq!(stored.size, total as u64);
    s.stores.delete(&stored.location).await.expect("delete");
}

async fn missing_objects_are_not_found(s: Subject) {
    let location = match &s.backend {
        Backend::File(dir) => format!("file://{}/{}", dir.display(), uuid::Uuid::new_v4()),
        Backend::Swift { swift, container } => {
            // The container must exist for the object to be missing rather than the container.
            let stored = s.put("probe", b"x", 1, Some(1), true).await.expect("put");
            s.stores.delete(&stored.location).await.expect("delete");
            let rest = swift.auth_url.split_once("://").expect("url").1;
            format!("swift+http://{rest}/{container}/{}", uuid::Uuid::new_v4())
        }
        Backend::S3 { swift, bucket } => {
            let stored = s.put("probe", b"x", 1, Some(1), true).await.expect("put");
            s.stores.delete(&stored.location).await.expect("delete");
            let host = swift.s3_endpoint.split_once("://").expect("url").1;
            format!("s3+http://{host}/{bucket}/{}", uuid::Uuid::new_v4())
        }
    };
    assert!(matches!(s.stores.get(&location).await, Err(StoreError::NotFound(_))));
    assert!(matches!(s.stores.size(&location).await, Err(StoreError::NotFound(_))));
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod file {
            $( #[tokio::test] async fn $check() { super::$check(super::file_subject()).await } )*
        }
        mod swift {
            $( #[tokio::test] async fn $check() { if let Some(s) = super::swift_subject() { super::$check(s).await } } )*
        }
        mod s3 {
            $( #[tokio::test] async fn $check() { if let Some(s) = super::s3_subject() { super::$check(s).await } } )*
        }
    };
}

conformance!(
    put_get_delete,
    range_reads,
    large_objects,
    cut_off_put_leaves_nothing,
    streams_without_buffering,
    missing_objects_are_not_found
);

/// A Swift that cannot be reached, or refuses the credentials: a clear error the API answers
/// with 503, never a hang.
#[tokio::test]
async fn swift_unavailable_is_503() {
    let Some(s) = swift() else { return };
    let dead = format!("http://127.0.0.1:{}/auth/v1.0", glance_tests::process::free_port());
    let mut wrong = swift_options(s, "conformance-wrong", &s.auth_url);
    wrong.key = Secret("not-the-key".into());
    for options in [swift_options(s, "conformance-dead", &dead), wrong] {
        let dir = tempfile::tempdir().expect("dir");
        let subject = Subject {
            stores: stores(dir.path(), Some(SwiftStore::new(options).expect("store")), None),
            scheme: Scheme::Swift,
            backend: Backend::File(dir.path().join("images")),
            _dir: tempfile::tempdir().expect("dir"),
        };
        let err = subject.put("x", b"data", 4, Some(4), true).await.expect_err("no store");
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert_eq!(err.into_error().status().as_u16(), 503);
    }
}

/// With create_on_put off, a missing container is a clear error naming it.
#[tokio::test]
async fn swift_missing_container_without_create() {
    let Some(s) = swift() else { return };
    let dir = tempfile::tempdir().expect("dir");
    let mut options = swift_options(s, "conformance-absent", &s.auth_url);
    options.create_container_on_put = false;
    let stores = stores(dir.path(), Some(SwiftStore::new(options).expect("store")), None);
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    drop(tx);
    let err = stores.put(Scheme::Swift, "x", rx, None).await.expect_err("no container");
    assert!(err.to_string().contains("conformance-absent") && err.to_string().contains("does not exist"), "{err}");
}

/// S3 with wrong credentials, or nowhere to be reached: 503; a missing bucket without
/// create-on-put: an error naming it.
#[tokio::test]
async fn s3_unavailable_and_missing_bucket() {
    let Some(s) = swift() else { return };
    let dir = tempfile::tempdir().expect("dir");
    let dead = format!("http://127.0.0.1:{}", glance_tests::process::free_port());
    let mut wrong = s3_options(s, "conformance-wrong", &s.s3_endpoint);
    wrong.secret_key = Secret("not-the-secret".into());
    for options in [s3_options(s, "conformance-dead", &dead), wrong] {
        let stores = stores(dir.path(), None, Some(S3Store::new(options).expect("store")));
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        drop(tx);
        let err = stores.put(Scheme::S3, "x", rx, None).await.expect_err("no store");
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert_eq!(err.into_error().status().as_u16(), 503);
    }
    let mut absent = s3_options(s, "conformance-absent", &s.s3_endpoint);
    absent.create_bucket_on_put = false;
    let stores = stores(dir.path(), None, Some(S3Store::new(absent).expect("store")));
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    drop(tx);
    let err = stores.put(Scheme::S3, "x", rx, None).await.expect_err("no bucket");
    assert!(err.to_string().contains("conformance-absent") && err.to_string().contains("does not exist"), "{err}");
}

/// A store that keeps its connections open and then says nothing (frozen behind a proxy):
/// a download under way fails instead of waiting forever, and every new call fails with an
/// error the API answers 503 with, once `remote_store_timeout` has passed.
#[tokio::test]
async fn silent_stores_fail_instead_of_hanging() {
    let Some(s) = swift() else { return };
    // A broken limit would hang here: fail instead.
    tokio::time::timeout(Duration::from_secs(180), silent_stores(s)).await.expect("a silent store hung a call");
}

async fn silent_stores(s: &Swift) {
    for scheme in [Scheme::Swift, Scheme::S3] {
        let real = url::Url::parse(if scheme == Scheme::Swift { &s.auth_url } else { &s.s3_endpoint }).expect("url");
        let target = format!("{}:{}", real.host_str().expect("host"), real.port().expect("port"));
        let proxy = FaultProxy::start(target.parse().expect("address")).await;
        let mut through = real.clone();
        through.set_port(Some(proxy.port)).expect("port");
        let through = through.as_str().trim_end_matches('/');
        let dir = tempfile::tempdir().expect("dir");
        let name = format!("silent-{}", uuid::Uuid::new_v4().simple());
        let (swift_store, s3_store) = match scheme {
            Scheme::Swift => {
                let options = SwiftOptions { timeout: Duration::from_secs(1), ..swift_options(s, &name, through) };
                (Some(SwiftStore::new(options).expect("store")), None)
            }
            _ => {
                let options = S3Options { timeout: Duration::from_secs(1), ..s3_options(s, &name, through) };
                (None, Some(S3Store::new(options).expect("store")))
            }
        };
        let subject = Subject {
            stores: stores(dir.path(), swift_store, s3_store),
            scheme,
            backend: Backend::File(dir.path().join("images")),
            _dir: tempfile::tempdir().expect("dir"),
        };
        // More than loopback sockets and the proxy can hold, so the reader must wait on the store.
        let bytes = data(48 * MIB);
        let stored = subject.put("big", &bytes, MIB, None, true).await.expect("put through the proxy");
        assert!(stored.location.contains(&format!(":{}/", proxy.port)), "{scheme:?}: {}", stored.location);
        let mut body = subject.stores.get(&stored.location).await.expect("get").body;
        body.next().await.expect("a first piece").expect("a first piece");
        proxy.freeze();
        let mut failed = None;
        while let Some(piece) = body.next().await {
            if let Err(e) = piece {
                failed = Some(e);
                break;
            }
        }
        let failed = failed.unwrap_or_else(|| panic!("{scheme:?}: a frozen store's download ended as if complete"));
        assert_eq!(failed.kind(), std::io::ErrorKind::TimedOut, "{scheme:?}: {failed}");

        let location = stored.location.as_str();
        let outcomes = [
            ("put", subject.put("small", b"data", 4, Some(4), true).await.map(drop)),
            ("get", subject.stores.get(location).await.map(drop)),
            ("size", subject.stores.size(location).await.map(drop)),
            ("delete", subject.stores.delete(location).await),
        ];
        for (call, outcome) in outcomes {
            let err = outcome.expect_err(call);
            assert!(matches!(err, StoreError::Unavailable(_)), "{scheme:?} {call}: {err:?}");
            assert!(err.to_string().contains("remote_store_timeout"), "{scheme:?} {call}: {err}");
            assert_eq!(err.into_error().status().as_u16(), 503);
        }
    }
}

/// The read-only HTTP store, where the suite applies: whole and ranged reads (from a server
/// that ignores Range: the range is cut out here), size, a missing object → not found, nothing
/// listening → a clear error.
#[tokio::test]
async fn http_store_reads() {
    let source = glance_tests::http_source::HttpSource::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let stores = stores(dir.path(), None, None);
    let read = |range| {
        let stores = &stores;
        let uri = source.uri("cirros.img");
        async move {
            let download = stores.get_range(&uri, range).await.expect("get");
            let body: Vec<Bytes> = download.body.map(|c| c.expect("chunk")).collect().await;
            (download.size, body.concat())
        }
    };
    assert_eq!(read(None).await, (Some(5120), vec![b'*'; 5120]));
    assert_eq!(read(Some(ByteRange { start: 100, end: Some(300) })).await, (Some(200), vec![b'*'; 200]));
    assert_eq!(read(Some(ByteRange { start: 5000, end: None })).await, (Some(120), vec![b'*'; 120]));
    assert_eq!(read(Some(ByteRange { start: 5100, end: Some(6000) })).await, (Some(20), vec![b'*'; 20]));
    let past_the_end = stores.get_range(&source.uri("cirros.img"), Some(ByteRange { start: 5120, end: None })).await;
    assert!(matches!(past_the_end, Err(StoreError::BadLocation(_))), "a range past the end is refused");
    assert_eq!(stores.size(&source.uri("cirros.img")).await.expect("size"), 5120);
    let missing = format!("http://127.0.0.1:{}/nothing", source.port);
    assert!(matches!(stores.get(&missing).await, Err(StoreError::NotFound(_))));
    let dead = format!("http://127.0.0.1:{}/images/x", glance_tests::process::free_port());
    let err = stores.get(&dead).await.err().expect("nothing listening");
    assert_eq!(err.to_string(), "Could not reach the external source.");
}
