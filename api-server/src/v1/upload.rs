//! Putting image data in place: streaming a body or a remote source into a store, verifying
//! it, and activating the image — or killing it and removing the data when anything fails.

use crate::AppState;
use crate::store::{Chunk, Scheme, StoreError, Stored};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use glance_common::context::RequestContext;
use glance_common::model::{Image, ImagePatch};
use glance_common::{Error, ErrorKind};

/// Size of the chunks handed to a store.
const BATCH: usize = 1024 * 1024;

/// What the client declared about the data, checked against what arrived.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub size: Option<i64>,
    pub checksum: Option<String>,
}

/// Streams `body` into the `scheme` store, stopping as soon as it passes `cap` bytes.
/// The store commits only a complete body; any failure leaves nothing behind.
pub async fn stream_to_store<S, E>(st: &AppState, scheme: Scheme, id: &str, body: S, cap: u64) -> Result<Stored, Error>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    // A few batches in flight: enough to keep the writer busy, little memory per upload.
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(4);
    let store = st.stores.put(scheme, id, rx);
    let pump = async move {
        let mut body = body;
        let mut total: u64 = 0;
        // Socket reads arrive in small pieces; batching them into ~1 MiB chunks costs one copy
        // and saves the store (and its hashing thread) thousands of hand-offs per gigabyte.
        let mut batch = bytes::BytesMut::with_capacity(BATCH);
        loop {
            // A client that stops sending is dropped after client_socket_timeout, so a stalled
            // upload cannot hold the store's writer thread forever.
            let next = tokio::time::timeout(st.config.client_socket_timeout, body.next()).await.map_err(|_| {
                log::info!("image {id}: upload stalled for {:?}", st.config.client_socket_timeout);
                Error::bad_request("Client disconnected before sending all data to backend")
            })?;
            let Some(chunk) = next else { break };
            let bytes = chunk.map_err(|e| {
                log::info!("image {id}: upload interrupted: {e}");
                Error::bad_request("Client disconnected before sending all data to backend")
            })?;
            total += bytes.len() as u64;
            if total > cap {
                return Err(Error::new(
                    ErrorKind::TooLarge,
                    format!("Denying attempt to upload image larger than {cap} bytes."),
                ));
            }
            if !batch.is_empty() && batch.len() + bytes.len() > BATCH {
                let full = std::mem::replace(&mut batch, bytes::BytesMut::with_capacity(BATCH));
                if tx.send(Chunk::Data(full.freeze())).await.is_err() {
                    return Ok(()); // the store stopped; its error tells why
                }
            }
            if bytes.len() >= BATCH {
                if tx.send(Chunk::Data(bytes)).await.is_err() {
                    return Ok(());
                }
            } else {
                batch.extend_from_slice(&bytes); // fits: the batch never outgrows BATCH
            }
        }
        if !batch.is_empty() && tx.send(Chunk::Data(batch.freeze())).await.is_err() {
            return Ok(());
        }
        let _ = tx.send(Chunk::End).await;
        Ok(())
    };
    let (stored, pumped) = tokio::join!(store, pump);
    pumped?;
    stored.map_err(StoreError::into_error)
}

/// Uploads `body` into a queued image: queued → saving → (store, verify) → active.
/// On failure the image is `killed` and no data is kept.
pub async fn upload<S, E>(
    st: &AppState,
    ctx: &RequestContext,
    image: &Image,
    scheme: Scheme,
    expected: &Expected,
    body: S,
) -> Result<Image, Error>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let saving = ImagePatch { status: Some("saving".into()), ..ImagePatch::default() };
    st.registry.update(ctx, &image.id, &saving, false, Some("queued")).await.map_err(|e| match e.kind() {
        ErrorKind::Conflict => Error::conflict("Cannot upload to an unqueued image"),
        _ => e,
    })?;
    let stored = match stream_to_store(st, scheme, &image.id, body, st.config.image_size_cap).await {
        Ok(stored) => stored,
        Err(e) => {
            kill(st, ctx, &image.id, "saving").await;
            return Err(e);
        }
    };
    activate(st, ctx, &image.id, stored, expected).await
}

/// Checks what was stored against what was declared and marks the image active.
pub async fn activate(
    st: &AppState,
    ctx: &RequestContext,
    id: &str,
    stored: Stored,
    expected: &Expected,
) -> Result<Image, Error> {
    let mismatch = match (expected.size, &expected.checksum) {
        (Some(size), _) if size > 0 && size as u64 != stored.size => {
            Some(("size", size.to_string(), stored.size.to_string()))
        }
        (_, Some(sum)) if *sum != stored.checksum => Some(("checksum", sum.clone(), stored.checksum.clone())),
        _ => None,
    };
    if let Some((attr, supplied, actual)) = mismatch {
        discard(st, &stored.location).await;
        kill(st, ctx, id, "saving").await;
        return Err(Error::bad_request(format!(
            "Supplied {attr} ({supplied}) and {attr} generated from uploaded image ({actual}) did not match. \
             Setting image status to 'killed'."
        )));
    }
    let active = ImagePatch {
        status: Some("active".into()),
        size: Some(Some(stored.size as i64)),
        checksum: Some(Some(stored.checksum.clone())),
        location: Some(Some(stored.location.clone())),
        ..ImagePatch::default()
    };
    match st.registry.update(ctx, id, &active, false, Some("saving")).await {
        Ok(image) => {
            log::info!(req = ctx.request_id.as_str(); "image {id} uploaded: {} bytes, md5 {}", stored.size, stored.checksum);
            Ok(image)
        }
        Err(e) => {
            discard(st, &stored.location).await;
            // Deleted while we were uploading: Glance answers 412; someone else activated: 409.
            let deleted = match st.registry.get(ctx, id).await {
                Ok(image) => image.deleted || image.status == "deleted",
                Err(err) => err.kind() == ErrorKind::NotFound,
            };
            if deleted {
                Err(Error::new(
                    ErrorKind::PreconditionFailed,
                    format!(
                        "Image {id} could not be found after upload. The image may have been deleted during the upload."
                    ),
                ))
            } else if e.kind() == ErrorKind::Conflict {
                Err(Error::literal(ErrorKind::Conflict, "Image operation conflicts"))
            } else {
                kill(st, ctx, id, "saving").await;
                Err(e)
            }
        }
    }
}

/// Marks the image `killed` if it is still in `from`; a failure to do so is only logged
/// (the image may have been deleted meanwhile).
pub async fn kill(st: &AppState, ctx: &RequestContext, id: &str, from: &str) {
    let killed = ImagePatch { status: Some("killed".into()), ..ImagePatch::default() };
    if let Err(e) = st.registry.update(ctx, id, &killed, false, Some(from)).await {
        log::info!(req = ctx.request_id.as_str(); "image {id} not marked killed: {e}");
    } else {
        log::warn!(req = ctx.request_id.as_str(); "image {id} killed: its upload failed");
    }
}

/// Removes stored data that will not be used.
pub async fn discard(st: &AppState, location: &str) {
    if let Err(e) = st.stores.delete(location).await {
        log::error!("could not remove data at {}: {e}", crate::store::redact(location));
    }
}

/// Copies a remote image (copy-from) into the default store, in the background of a request
/// that already answered 201. Failures kill the image.
pub async fn copy_from(st: AppState, ctx: RequestContext, image: Image, source: String, expected: Expected) {
    let scheme = st.default_scheme();
    let download = match st.stores.get(&source).await {
        Ok(download) => download,
        Err(e) => {
            log::warn!(req = ctx.request_id.as_str(); "image {}: copy from {} failed: {e}", image.id, crate::store::redact(&source));
            kill(&st, &ctx, &image.id, "queued").await;
            return;
        }
    };
    if let Err(e) = upload(&st, &ctx, &image, scheme, &expected, download.body).await {
        log::warn!(req = ctx.request_id.as_str(); "image {}: copy from {} failed: {e}", image.id, crate::store::redact(&source));
        kill(&st, &ctx, &image.id, "queued").await;
    }
}
