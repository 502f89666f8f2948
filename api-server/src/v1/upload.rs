//! Putting image data in place: streaming a body or a remote source into a store, verifying
//! it, and activating the image — or killing it and removing the data when anything fails.

use crate::AppState;
use crate::store::{Chunk, Scheme, StoreError, Stored};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use glance_common::context::RequestContext;
use glance_common::model::{Image, ImagePatch, ReservationRequest};
use glance_common::{Error, ErrorKind};

/// Size of the chunks handed to a store.
const BATCH: usize = 1024 * 1024;

/// What the client declared about the data, checked against what arrived.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub size: Option<i64>,
    pub checksum: Option<String>,
}

/// The least room an upload asks its owner's quota for at a time.
const GRANT_STEP: u64 = 4 * 1024 * 1024;

/// An upload's share of its owner's `user_storage_quota`, asked of the registry as the bytes
/// arrive. The registry grants one owner's uploads one at a time, so together they never pass
/// the quota; an upload that needs more than it can get stops at once.
pub struct StorageGrant<'a> {
    st: &'a AppState,
    ctx: &'a RequestContext,
    id: &'a str,
    quota: u64,
    granted: u64,
}

impl<'a> StorageGrant<'a> {
    /// `None` without a quota. A declared size is reserved whole before the first byte (too
    /// big → 413 at once, as Glance); an unknown size needs some room left to start.
    pub async fn start(
        st: &'a AppState,
        ctx: &'a RequestContext,
        id: &'a str,
        declared: Option<u64>,
    ) -> Result<Option<Self>, Error> {
        let quota = st.config.user_storage_quota;
        if quota == 0 {
            return Ok(None);
        }
        let mut grant = Self { st, ctx, id, quota, granted: 0 };
        match declared {
            Some(size) => grant.ask(size, size).await?,
            None => grant.ask(GRANT_STEP.min(quota / 64).max(1), 1).await?,
        }
        Ok(Some(grant))
    }

    /// Makes sure `total` bytes are covered, asking for more room when they pass the grant:
    /// an eighth more (at least a step) for few registry calls, but never more than 1/64 of
    /// the quota, so that headroom held by one upload hardly ever refuses another.
    pub async fn cover(&mut self, total: u64) -> Result<(), Error> {
        if total <= self.granted {
            return Ok(());
        }
        let headroom = GRANT_STEP.max(self.granted / 8).min(self.quota / 64).max(1);
        self.ask(total.max(self.granted + headroom), total).await
    }

    async fn ask(&mut self, wanted: u64, needed: u64) -> Result<(), Error> {
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let ask = ReservationRequest { bytes: clamp(wanted), needed: clamp(needed), quota: clamp(self.quota) };
        let grant = self.st.registry.reserve(self.ctx, self.id, ask).await?;
        self.granted = u64::try_from(grant.granted).unwrap_or(0);
        if self.granted < needed {
            log::info!(req = self.ctx.request_id.as_str(); "image {}: upload stopped at the storage quota", self.id);
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "Denying attempt to upload image because it exceeds the quota: The size of the data {needed} will \
                     exceed the limit. {} bytes remaining.",
                    grant.remaining.max(0)
                ),
            ));
        }
        Ok(())
    }
}

/// Streams `body` into the `scheme` store, stopping as soon as it passes `image_size_cap` or
/// the owner's storage `grant`. The store commits only a complete body; any failure leaves
/// nothing behind.
pub async fn stream_to_store<S, E>(
    st: &AppState,
    ctx: &RequestContext,
    scheme: Scheme,
    id: &str,
    body: S,
    size_hint: Option<u64>,
    mut grant: Option<StorageGrant<'_>>,
) -> Result<Stored, Error>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    // A few batches in flight: enough to keep the writer busy, little memory per upload.
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(4);
    let cap = st.config.image_size_cap;
    let stores = st.stores.acting_for(ctx);
    let store = stores.put(scheme, id, rx, size_hint);
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
            if let Some(grant) = grant.as_mut() {
                grant.cover(total).await?;
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
    let declared = expected.size.and_then(|s| u64::try_from(s).ok()).filter(|s| *s > 0);
    let streamed = match StorageGrant::start(st, ctx, &image.id, declared).await {
        Ok(grant) => stream_to_store(st, ctx, scheme, &image.id, body, declared, grant).await,
        Err(e) => Err(e),
    };
    let stored = match streamed {
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
        discard(st, ctx, &stored.location).await;
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
            // Who else may read the data: until this succeeds only the owner's project can
            // (fails closed), so an error here is reported in the log and not to the uploader.
            if let Err(e) = super::store_acls::sync(st, ctx, &image).await {
                log::error!(req = ctx.request_id.as_str(); "image {id}: store ACLs not set: {e}");
            }
            Ok(image)
        }
        Err(e) => {
            discard(st, ctx, &stored.location).await;
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
pub async fn discard(st: &AppState, ctx: &RequestContext, location: &str) {
    if let Err(e) = st.stores.acting_for(ctx).delete(location).await {
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
