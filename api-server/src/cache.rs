//! The image cache (`[paste_deploy] flavor` with `caching` or `cachemanagement`): hot images
//! kept on the API node's disk, in Glance's layout under `image_cache_dir`:
//! `<id>` complete files, `incomplete/<id>` being written, `invalid/<id>` failed checks,
//! `queue/<id>` markers for the prefetcher, and the sqlite driver's index `cache.db`
//! (`cached_images`: hits, size, last access and modification, as Glance's).
//!
//! The first download of an active image streams to the client and into `incomplete/<id>` at
//! once (one read of the store); only a complete file whose md5 matches the image's checksum is
//! moved into place. Later downloads are served from the file. Downloads pass the same
//! registry, visibility and policy checks whether they hit the cache or not.

use crate::store::ByteStream;
use bytes::Bytes;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Text};
use futures_util::StreamExt;
use md5::{Digest, Md5};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// `[paste_deploy] flavor` beyond authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    Off,
    /// `caching`: transparent caching of downloads.
    Caching,
    /// `cachemanagement`: caching plus `/v1/cached_images` and `/v1/queued_images`.
    Management,
}

impl CacheMode {
    pub fn of_flavor(flavor: Option<&str>) -> Self {
        let parts: Vec<String> = flavor.unwrap_or("").split('+').map(|p| p.trim().to_lowercase()).collect();
        if parts.iter().any(|p| p == "cachemanagement") {
            Self::Management
        } else if parts.iter().any(|p| p == "caching") {
            Self::Caching
        } else {
            Self::Off
        }
    }
}

/// One row of `GET /v1/cached_images`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, QueryableByName)]
pub struct CachedImage {
    #[diesel(sql_type = Text)]
    pub image_id: String,
    #[diesel(sql_type = BigInt)]
    pub hits: i64,
    #[diesel(sql_type = Double)]
    pub last_accessed: f64,
    #[diesel(sql_type = Double)]
    pub last_modified: f64,
    #[diesel(sql_type = BigInt)]
    pub size: i64,
}

/// `image_cache_driver`: where hits and access times are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheDriver {
    /// `cached_images` in `image_cache_sqlite_db`.
    Sqlite,
    /// Extended attributes of each cached file (`user.glance.hits`, `user.glance.last_accessed`);
    /// the filesystem must support user xattrs.
    Xattr,
}

impl CacheDriver {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "sqlite" => Some(Self::Sqlite),
            "xattr" => Some(Self::Xattr),
            _ => None,
        }
    }
}

#[derive(Clone)]
enum Index {
    Sqlite(Arc<Mutex<SqliteConnection>>),
    Xattr,
}

const HITS: &str = "user.glance.hits";
const LAST_ACCESSED: &str = "user.glance.last_accessed";
const COMMITTED: &str = "user.glance.committed";

#[derive(Clone)]
pub struct ImageCache {
    dir: PathBuf,
    index: Index,
}

impl std::fmt::Debug for ImageCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ImageCache({})", self.dir.display())
    }
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn db_error(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("image cache index: {e}"))
}

impl ImageCache {
    /// Opens (creating) the cache in `dir`; a directory that cannot be written is a start-up
    /// error that names it.
    pub fn open(dir: &Path, db_name: &str, driver: CacheDriver) -> Result<Self, String> {
        let fail = |e: &dyn std::fmt::Display| format!("image_cache_dir {}: {e}", dir.display());
        for sub in ["", "incomplete", "invalid", "queue"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| fail(&e))?;
        }
        let probe = dir.join("incomplete").join(".writable");
        std::fs::write(&probe, b"").map_err(|e| fail(&e))?;
        if driver == CacheDriver::Xattr {
            let supported = xattr::set(&probe, HITS, b"0");
            let _ = std::fs::remove_file(&probe);
            supported.map_err(|e| {
                fail(&format!("the xattr driver needs user extended attributes on this filesystem: {e}"))
            })?;
            return Ok(Self { dir: dir.to_path_buf(), index: Index::Xattr });
        }
        std::fs::remove_file(&probe).map_err(|e| fail(&e))?;
        let db = dir.join(db_name);
        let mut conn = SqliteConnection::establish(&db.display().to_string()).map_err(|e| fail(&e))?;
        diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            "PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY; PRAGMA busy_timeout = 2000;
             CREATE TABLE IF NOT EXISTS cached_images (image_id TEXT PRIMARY KEY, last_accessed REAL DEFAULT 0.0,
               last_modified REAL DEFAULT 0.0, size INTEGER DEFAULT 0, hits INTEGER DEFAULT 0, checksum TEXT);",
        )
        .map_err(|e| fail(&e))?;
        Ok(Self { dir: dir.to_path_buf(), index: Index::Sqlite(Arc::new(Mutex::new(conn))) })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn complete(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn incomplete(&self, id: &str) -> PathBuf {
        self.dir.join("incomplete").join(id)
    }

    /// Runs `f` on the sqlite index, off the async executor.
    async fn with_index<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> QueryResult<T> + Send + 'static,
    ) -> std::io::Result<T> {
        let Index::Sqlite(index) = &self.index else {
            return Err(std::io::Error::other("the xattr driver has no index database"));
        };
        let index = index.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = index.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn).map_err(db_error)
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// The cached file of an image and its size, when there is a complete one.
    ///
    /// The file was checked against the image's checksum when it was cached; a file changed
    /// since (its size is not the image's, or it was written after it was committed) is evicted
    /// and `None` returned, so the download goes to the store (and caches a good copy again).
    pub async fn lookup(&self, id: &str, expected_size: Option<i64>) -> Option<(std::fs::File, u64)> {
        if !is_image_id(id) {
            return None;
        }
        let path = self.complete(id);
        let committed = self.committed_at(id).await;
        let (file, size, intact) = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path).ok()?;
            let meta = file.metadata().ok()?;
            let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
            let size_ok = expected_size.is_none_or(|s| s <= 0 || s as u64 == meta.len());
            let untouched = committed.is_some_and(|at| modified <= at + 1.0);
            Some((file, meta.len(), size_ok && untouched))
        })
        .await
        .ok()
        .flatten()?;
        if !intact {
            log::warn!("image {id}: the cached file changed after it was verified; evicted, served from the store");
            drop(file);
            let _ = self.delete(id).await;
            return None;
        }
        Some((file, size))
    }

    /// When a cached file was verified and moved into place (epoch seconds).
    async fn committed_at(&self, id: &str) -> Option<f64> {
        if let Index::Xattr = self.index {
            let path = self.complete(id);
            return tokio::task::spawn_blocking(move || read_number(&path, COMMITTED)).await.ok().flatten();
        }
        #[derive(QueryableByName)]
        struct Modified {
            #[diesel(sql_type = Double)]
            last_modified: f64,
        }
        let id = id.to_string();
        let rows: Vec<Modified> = self
            .with_index(move |c| {
                diesel::sql_query("SELECT last_modified FROM cached_images WHERE image_id = ?")
                    .bind::<Text, _>(id)
                    .load(c)
            })
            .await
            .ok()?;
        rows.first().map(|r| r.last_modified)
    }

    /// Counts a hit once a cached file has been served.
    pub async fn record_hit(&self, id: &str) {
        if let Index::Xattr = self.index {
            let path = self.complete(id);
            let _ = tokio::task::spawn_blocking(move || {
                let hits = read_number(&path, HITS).unwrap_or(0.0) as i64 + 1;
                let _ = xattr::set(&path, HITS, hits.to_string().as_bytes());
                let _ = xattr::set(&path, LAST_ACCESSED, now().to_string().as_bytes());
            })
            .await;
            return;
        }
        let id = id.to_string();
        let counted = self
            .with_index(move |c| {
                diesel::sql_query("UPDATE cached_images SET hits = hits + 1, last_accessed = ? WHERE image_id = ?")
                    .bind::<Double, _>(now())
                    .bind::<Text, _>(id)
                    .execute(c)
            })
            .await;
        if let Err(e) = counted {
            log::warn!("{e}");
        }
    }

    /// `body` on its way to the client, written into the cache as it passes when the image is
    /// neither cached nor being cached. At the end the file is kept only if its md5 is
    /// `checksum`; otherwise it goes to `invalid/` and the stream fails, so the client never
    /// takes bad data for whole. A write error only stops the caching.
    pub fn tee(&self, id: &str, body: ByteStream, checksum: Option<String>) -> ByteStream {
        let path = self.incomplete(id);
        let file = match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => file,
            Err(_) => return body, // being cached by another download, or not writable
        };
        let (to_writer, mut chunks) = tokio::sync::mpsc::channel::<Bytes>(4);
        let cache = self.clone();
        let id = id.to_string();
        // The writer (and md5) on a blocking thread; its verdict comes back before the last chunk.
        let writer = tokio::task::spawn_blocking(move || {
            let mut out = std::io::BufWriter::new(file);
            let mut md5 = Md5::new();
            let mut size = 0u64;
            let mut failed = false;
            while let Some(chunk) = chunks.blocking_recv() {
                md5.update(&chunk);
                size += chunk.len() as u64;
                failed = failed || out.write_all(&chunk).is_err();
            }
            let flushed = !failed && out.flush().is_ok();
            (flushed, size, hex::encode(md5.finalize()))
        });
        struct State {
            body: ByteStream,
            to_writer: Option<tokio::sync::mpsc::Sender<Bytes>>,
            writer: Option<tokio::task::JoinHandle<(bool, u64, String)>>,
            held: Option<Bytes>,
            done: bool,
        }
        let state = State { body, to_writer: Some(to_writer), writer: Some(writer), held: None, done: false };
        Box::pin(futures_util::stream::unfold(state, move |mut s| {
            let (cache, id, checksum) = (cache.clone(), id.clone(), checksum.clone());
            async move {
                if s.done {
                    return None;
                }
                loop {
                    match s.body.next().await {
                        Some(Ok(chunk)) => {
                            if let Some(tx) = &s.to_writer {
                                let _ = tx.send(chunk.clone()).await;
                            }
                            if let Some(previous) = s.held.replace(chunk) {
                                return Some((Ok(previous), s));
                            }
                        }
                        Some(Err(e)) => {
                            s.to_writer = None;
                            s.done = true;
                            cache.discard(&id, "incomplete fetch").await;
                            return Some((Err(e), s));
                        }
                        None => {
                            s.to_writer = None;
                            s.done = true;
                            let writer = s.writer.take()?;
                            let (written, size, md5) = writer.await.unwrap_or((false, 0, String::new()));
                            let matches = checksum.as_deref().is_none_or(|c| c == md5);
                            if written && matches {
                                cache.commit(&id, size).await;
                            } else if !matches {
                                cache.discard(&id, "checksum mismatch").await;
                                log::error!("image {id}: data does not match its checksum; not cached");
                                return Some((Err(std::io::Error::other("image data does not match its checksum")), s));
                            } else {
                                cache.discard(&id, "write error").await;
                            }
                            let last = s.held.take()?;
                            return Some((Ok(last), s));
                        }
                    }
                }
            }
        }))
    }

    /// A complete, verified file: into place and into the index.
    async fn commit(&self, id: &str, size: u64) {
        let (from, to) = (self.incomplete(id), self.complete(id));
        let moved = tokio::task::spawn_blocking(move || std::fs::rename(from, to)).await;
        if !matches!(moved, Ok(Ok(()))) {
            log::warn!("image {id}: cached file not moved into place");
            return;
        }
        let queued = self.dir.join("queue").join(id);
        let _ = std::fs::remove_file(queued);
        if let Index::Xattr = self.index {
            let path = self.complete(id);
            let _ = xattr::set(&path, HITS, b"0");
            let _ = xattr::set(&path, LAST_ACCESSED, b"0");
            let _ = xattr::set(&path, COMMITTED, now().to_string().as_bytes());
            log::info!("image {id} cached ({size} bytes)");
            return;
        }
        let id_owned = id.to_string();
        let indexed = self
            .with_index(move |c| {
                diesel::sql_query(
                    "INSERT OR REPLACE INTO cached_images (image_id, last_accessed, last_modified, size, hits) \
                     VALUES (?, 0.0, ?, ?, 0)",
                )
                .bind::<Text, _>(id_owned)
                .bind::<Double, _>(now())
                .bind::<BigInt, _>(size as i64)
                .execute(c)
            })
            .await;
        match indexed {
            Ok(_) => log::info!("image {id} cached ({size} bytes)"),
            Err(e) => log::warn!("image {id}: {e}"),
        }
    }

    /// Moves a failed file to `invalid/` (the cleaner removes it).
    async fn discard(&self, id: &str, why: &str) {
        let (from, to) = (self.incomplete(id), self.dir.join("invalid").join(id));
        let _ = tokio::task::spawn_blocking(move || std::fs::rename(from, to)).await;
        log::info!("image {id}: not cached ({why})");
    }

    /// Removes an image from the cache (file and index row).
    pub async fn delete(&self, id: &str) -> std::io::Result<()> {
        if !is_image_id(id) {
            return Ok(());
        }
        let path = self.complete(id);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if let Index::Xattr = self.index {
            return Ok(());
        }
        let id = id.to_string();
        self.with_index(move |c| {
            diesel::sql_query("DELETE FROM cached_images WHERE image_id = ?").bind::<Text, _>(id).execute(c)
        })
        .await
        .map(|_| ())
    }

    /// Every cached image, by id.
    pub async fn list(&self) -> std::io::Result<Vec<CachedImage>> {
        if let Index::Xattr = self.index {
            let dir = self.dir.clone();
            return tokio::task::spawn_blocking(move || list_xattr(&dir)).await.map_err(std::io::Error::other)?;
        }
        self.with_index(|c| {
            diesel::sql_query(
                "SELECT image_id, hits, last_accessed, last_modified, size FROM cached_images ORDER BY image_id",
            )
            .load(c)
        })
        .await
    }

    /// Empties the cache; returns how many images were removed.
    pub async fn delete_all(&self) -> std::io::Result<usize> {
        let cached = self.list().await?;
        for image in &cached {
            self.delete(&image.image_id).await?;
        }
        Ok(cached.len())
    }

    /// Marks an image for the prefetcher; already cached, being cached or queued → no-op.
    pub async fn queue(&self, id: &str) -> std::io::Result<bool> {
        if !is_image_id(id) || self.complete(id).exists() || self.incomplete(id).exists() {
            return Ok(false);
        }
        let marker = self.dir.join("queue").join(id);
        if marker.exists() {
            return Ok(false);
        }
        // The queue is ordered by the markers' mtimes: stamp them to the nanosecond, finer than
        // the filesystem's clock tick, so markers written in a row keep their order.
        tokio::task::spawn_blocking(move || {
            let file = std::fs::File::create(&marker)?;
            file.set_modified(SystemTime::now())?;
            Ok(true)
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Queued ids, oldest first.
    pub async fn queued(&self) -> std::io::Result<Vec<String>> {
        let dir = self.dir.join("queue");
        tokio::task::spawn_blocking(move || {
            let mut entries: Vec<(SystemTime, String)> = std::fs::read_dir(dir)?
                .filter_map(|e| e.ok())
                .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.file_name().into_string().ok()?)))
                .collect();
            entries.sort();
            Ok(entries.into_iter().map(|(_, id)| id).collect())
        })
        .await
        .map_err(std::io::Error::other)?
    }

    pub async fn dequeue(&self, id: &str) -> std::io::Result<()> {
        if !is_image_id(id) {
            return Ok(());
        }
        match tokio::fs::remove_file(self.dir.join("queue").join(id)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub async fn dequeue_all(&self) -> std::io::Result<usize> {
        let queued = self.queued().await?;
        for id in &queued {
            self.dequeue(id).await?;
        }
        Ok(queued.len())
    }
}

impl ImageCache {
    /// Bytes held by complete cached files (regular files directly in the cache dir, the index
    /// excepted), as Glance counts them.
    pub fn size_on_disk(&self, db_name: &str) -> std::io::Result<u64> {
        let mut total = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_file() && entry.file_name() != db_name {
                total += meta.len();
            }
        }
        Ok(total)
    }

    /// The least recently read image (never-read images first), if any.
    pub async fn least_recently_used(&self) -> std::io::Result<Option<String>> {
        if let Index::Xattr = self.index {
            let mut images = self.list().await?;
            images.sort_by(|a, b| a.last_accessed.total_cmp(&b.last_accessed).then(a.image_id.cmp(&b.image_id)));
            return Ok(images.into_iter().next().map(|i| i.image_id));
        }
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = Text)]
            image_id: String,
        }
        let found: Vec<Id> = self
            .with_index(|c| {
                diesel::sql_query("SELECT image_id FROM cached_images ORDER BY last_accessed, image_id LIMIT 1").load(c)
            })
            .await?;
        Ok(found.into_iter().next().map(|i| i.image_id))
    }

    /// Evicts least recently used images until the cache holds at most `max` bytes; returns
    /// how many were evicted (`max` 0 empties it).
    pub async fn prune(&self, max: u64, db_name: &str) -> std::io::Result<usize> {
        let mut evicted = 0;
        while self.size_on_disk(db_name)? > max {
            let Some(id) = self.least_recently_used().await? else { break };
            self.delete(&id).await?;
            log::info!("pruned image {id} from the cache");
            evicted += 1;
        }
        Ok(evicted)
    }

    /// Removes every file in `invalid/` and the files in `incomplete/` not written to for
    /// `stall`; returns how many files were removed.
    pub fn clean(&self, stall: std::time::Duration) -> std::io::Result<usize> {
        let mut removed = 0;
        for (sub, older_than) in [("invalid", None), ("incomplete", Some(stall))] {
            for entry in std::fs::read_dir(self.dir.join(sub))? {
                let entry = entry?;
                let age = entry.metadata()?.modified()?.elapsed().unwrap_or_default();
                if older_than.is_none_or(|limit| age >= limit) {
                    std::fs::remove_file(entry.path())?;
                    log::info!("cleaned {sub}/{}", entry.file_name().to_string_lossy());
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// A number kept in an extended attribute (as text, as Glance's xattr driver keeps them).
fn read_number(path: &Path, name: &str) -> Option<f64> {
    let raw = xattr::get(path, name).ok()??;
    String::from_utf8(raw).ok()?.trim().parse().ok()
}

/// The cached images of the xattr driver: the complete files, by id.
fn list_xattr(dir: &Path) -> std::io::Result<Vec<CachedImage>> {
    let mut images = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let Ok(id) = entry.file_name().into_string() else { continue };
        if !meta.is_file() || !is_image_id(&id) {
            continue;
        }
        let path = entry.path();
        let modified = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs_f64());
        images.push(CachedImage {
            hits: read_number(&path, HITS).unwrap_or(0.0) as i64,
            last_accessed: read_number(&path, LAST_ACCESSED).unwrap_or(0.0),
            last_modified: modified.unwrap_or(0.0),
            size: meta.len() as i64,
            image_id: id,
        });
    }
    images.sort_by(|a, b| a.image_id.cmp(&b.image_id));
    Ok(images)
}

/// Ids become file names: only plain names (no `/`, no `..`) are ever used as one.
fn is_image_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
