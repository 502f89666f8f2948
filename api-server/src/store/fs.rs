//! The filesystem store: `<filesystem_store_datadir>/<image id>`, location `file://<path>`.
//!
//! An upload is written to a hidden staging file beside its final name, fsynced, then renamed:
//! a crash or an aborted upload never leaves a partial image under the image's name.

use super::{ByteRange, Chunk, Download, StoreError, Stored, Upload};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use md5::{Digest, Md5};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct FsStore {
    dir: PathBuf,
}

/// Write buffer of uploads.
const CHUNK: usize = 1024 * 1024;
/// Read size of downloads.
const READ_CHUNK: usize = 1024 * 1024;

impl FsStore {
    /// A store in `dir`, created if missing (glance-api, which writes there).
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// A store in `dir` as it is (the tools): where `dir` does not exist, this node does not
    /// see the store, which is not the same as the store not holding an image.
    pub fn existing(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, location: &str) -> Result<PathBuf, StoreError> {
        let path = location
            .strip_prefix("file://")
            .or_else(|| location.strip_prefix("filesystem://"))
            .ok_or_else(|| StoreError::BadLocation(format!("Invalid location {location}")))?;
        let path = PathBuf::from(path);
        // Only files this store wrote: a location can never name a file elsewhere on the node.
        if path.parent() != Some(self.dir.as_path()) {
            return Err(StoreError::BadLocation(format!("Location {location} is outside the image store")));
        }
        Ok(path)
    }

    pub async fn put(&self, id: &str, mut upload: Upload) -> Result<Stored, StoreError> {
        let final_path = self.dir.join(id);
        let staging = self.dir.join(format!(".{id}.partial"));
        tokio::task::spawn_blocking(move || {
            if final_path.exists() {
                return Err(StoreError::AlreadyExists(format!("Image file {} already exists", final_path.display())));
            }
            let written = (|| {
                let file = std::fs::File::create(&staging).map_err(write_error)?;
                let mut out = std::io::BufWriter::with_capacity(CHUNK, file);
                // md5 runs on a thread of its own, so hashing and writing use two cores.
                let (to_hasher, chunks) = std::sync::mpsc::sync_channel::<Bytes>(4);
                let hasher = std::thread::spawn(move || {
                    let mut md5 = Md5::new();
                    for chunk in chunks {
                        md5.update(&chunk);
                    }
                    hex::encode(md5.finalize())
                });
                let mut size = 0u64;
                loop {
                    match upload.blocking_recv() {
                        Some(Chunk::Data(bytes)) => {
                            size += bytes.len() as u64;
                            let _ = to_hasher.send(bytes.clone());
                            out.write_all(&bytes).map_err(write_error)?;
                        }
                        Some(Chunk::End) => break,
                        None => return Err(StoreError::Aborted),
                    }
                }
                drop(to_hasher);
                let file = out.into_inner().map_err(|e| write_error(e.into_error()))?;
                file.sync_all().map_err(write_error)?;
                let checksum = hasher.join().map_err(|_| StoreError::Other("the md5 thread failed".into()))?;
                std::fs::rename(&staging, &final_path).map_err(write_error)?;
                Ok(Stored { location: format!("file://{}", final_path.display()), size, checksum })
            })();
            if written.is_err() {
                let _ = std::fs::remove_file(&staging);
            }
            written
        })
        .await
        .map_err(|e| StoreError::Other(e.to_string()))?
    }

    /// The file, or the part of it `range` names, streamed by [`read_file`].
    pub async fn get(&self, location: &str, range: Option<ByteRange>) -> Result<Download, StoreError> {
        let path = self.path_of(location)?;
        let (file, total) = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path).map_err(|e| not_found(&path, e))?;
            let size = file.metadata().map_err(|e| not_found(&path, e))?.len();
            Ok::<_, StoreError>((file, size))
        })
        .await
        .map_err(|e| StoreError::Other(e.to_string()))??;
        let (start, end) = match range {
            None => (0, total),
            Some(r) if r.start < total && r.end.is_none_or(|e| e > r.start) => {
                (r.start, r.end.unwrap_or(total).min(total))
            }
            Some(_) => return Err(StoreError::BadLocation("Requested range not satisfiable".into())),
        };
        let size = end - start;
        Ok(Download { body: read_file(file, start, size), size: Some(size) })
    }

    pub async fn size(&self, location: &str) -> Result<u64, StoreError> {
        let path = self.path_of(location)?;
        tokio::fs::metadata(&path).await.map(|m| m.len()).map_err(|e| not_found(&path, e))
    }

    /// Deletes the file. Without the store's directory nothing can be told about it (the
    /// wrong node, a share not mounted): unavailable, never "already gone".
    pub async fn delete(&self, location: &str) -> Result<(), StoreError> {
        let path = self.path_of(location)?;
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() == ErrorKind::NotFound && !tokio::fs::try_exists(&self.dir).await.unwrap_or(false) => {
                Err(StoreError::Unavailable(format!(
                    "The file store's directory {} does not exist on this node",
                    self.dir.display()
                )))
            }
            done => done.map_err(|e| not_found(&path, e)),
        }
    }
}

/// `len` bytes of `file` from `start`, in 1 MiB positioned reads, each on the blocking pool, two
/// in flight (read-ahead): a slow or stalled client holds no thread while it is not reading.
pub fn read_file(file: std::fs::File, start: u64, len: u64) -> super::ByteStream {
    let file = std::sync::Arc::new(file);
    let chunks = len.div_ceil(READ_CHUNK as u64);
    let body = futures_util::stream::iter(0..chunks)
        .map(move |i| {
            let file = file.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    use std::os::unix::fs::FileExt;
                    let offset = i * READ_CHUNK as u64;
                    let n = (len - offset).min(READ_CHUNK as u64) as usize;
                    let mut buf = BytesMut::zeroed(n);
                    file.read_exact_at(&mut buf, start + offset)?;
                    Ok(buf.freeze())
                })
                .await
                .map_err(std::io::Error::other)
                .and_then(|r| r)
            }
        })
        .buffered(2);
    Box::pin(body)
}

fn not_found(path: &Path, e: std::io::Error) -> StoreError {
    match e.kind() {
        ErrorKind::NotFound => StoreError::NotFound(format!("Image file {} not found", path.display())),
        _ => StoreError::Other(format!("Image file {}: {e}", path.display())),
    }
}

fn write_error(e: std::io::Error) -> StoreError {
    match e.raw_os_error() {
        Some(28 | 27) => StoreError::StorageFull(e.to_string()), // ENOSPC, EFBIG
        Some(13) => StoreError::WriteDenied(e.to_string()),      // EACCES
        _ => StoreError::Other(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn upload(store: &FsStore, id: &str, chunks: Vec<Chunk>) -> Result<Stored, StoreError> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let feed = async move {
            for c in chunks {
                // The store may stop early (the image exists): then nobody listens.
                if tx.send(c).await.is_err() {
                    break;
                }
            }
        };
        let (stored, ()) = tokio::join!(store.put(id, rx), feed);
        stored
    }

    #[tokio::test]
    async fn put_get_delete() {
        let dir = tempfile::tempdir().expect("dir");
        let store = FsStore::new(dir.path()).expect("store");
        let chunks = vec![Chunk::Data(Bytes::from_static(b"da")), Chunk::Data(Bytes::from_static(b"ta")), Chunk::End];
        let stored = upload(&store, "img", chunks).await.expect("put");
        assert_eq!(stored.size, 4);
        assert_eq!(stored.checksum, "8d777f385d3dfec8815d20f7496026dc");
        assert_eq!(stored.location, format!("file://{}/img", dir.path().display()));
        let mut got = Vec::new();
        let mut body = store.get(&stored.location, None).await.expect("get").body;
        while let Some(chunk) = body.next().await {
            got.extend_from_slice(&chunk.expect("chunk"));
        }
        assert_eq!(got, b"data");
        assert!(matches!(upload(&store, "img", vec![Chunk::End]).await, Err(StoreError::AlreadyExists(_))));
        store.delete(&stored.location).await.expect("delete");
        assert!(matches!(store.get(&stored.location, None).await, Err(StoreError::NotFound(_))));
    }

    #[tokio::test]
    async fn an_aborted_upload_leaves_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let store = FsStore::new(dir.path()).expect("store");
        // The sender goes away without End.
        let result = upload(&store, "img", vec![Chunk::Data(Bytes::from_static(b"part"))]).await;
        assert!(matches!(result, Err(StoreError::Aborted)));
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
    }

    #[tokio::test]
    async fn locations_outside_the_store_are_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let store = FsStore::new(dir.path()).expect("store");
        assert!(matches!(store.get("file:///etc/passwd", None).await, Err(StoreError::BadLocation(_))));
        let sneaky = format!("file://{}/../x", dir.path().display());
        assert!(matches!(store.delete(&sneaky).await, Err(StoreError::BadLocation(_))));
    }
}
