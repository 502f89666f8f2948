//! Multi-tenant Swift keeps each image in its owner's account, in a container of its own:
//! that container's read ACL must say who may read the image (its member projects, or
//! everyone when public). Called whenever either changes: upload, PUT, member changes.

use crate::AppState;
use crate::store::{Scheme, StoreError};
use glance_common::Error;
use glance_common::context::RequestContext;
use glance_common::model::Image;

/// Brings the ACLs of the image's Swift data in line with its visibility (no-op unless the
/// Swift store is multi-tenant and the image has data there).
pub async fn sync(st: &AppState, ctx: &RequestContext, image: &Image) -> Result<(), Error> {
    let locations = swift_locations(st, image);
    if locations.is_empty() {
        return Ok(());
    }
    let readers: Vec<String> = if image.is_public {
        Vec::new()
    } else {
        st.registry.members(ctx, &image.id).await?.into_iter().map(|m| m.member_id).collect()
    };
    let stores = st.stores.acting_for(ctx);
    for location in locations {
        stores.set_acls(location, image.is_public, &readers).await.map_err(StoreError::into_error)?;
    }
    log::info!(req = ctx.request_id.as_str(); "image {}: store ACLs set (public: {}, {} member projects)",
        image.id, image.is_public, readers.len());
    Ok(())
}

/// A deleted image's data waits for the scrubber in a container nobody but its owner (and the
/// service) may read any more. Failures are logged: the image is deleted already.
pub async fn close(st: &AppState, ctx: &RequestContext, image: &Image) {
    let stores = st.stores.acting_for(ctx);
    for location in swift_locations(st, image) {
        if let Err(e) = stores.set_acls(location, false, &[]).await {
            log::error!(req = ctx.request_id.as_str(); "image {}: store ACLs not closed: {e}", image.id);
        }
    }
}

fn swift_locations<'a>(st: &AppState, image: &'a Image) -> Vec<&'a str> {
    if !st.stores.multi_tenant() {
        return Vec::new();
    }
    let mut locations: Vec<&str> = image.location_data.iter().map(|l| l.url.as_str()).collect();
    if locations.is_empty() {
        locations.extend(image.location.as_deref());
    }
    locations.retain(|l| Scheme::of_uri(l) == Some(Scheme::Swift));
    locations
}

/// [`sync`] after a change that already happened in the registry: the image is read again.
pub async fn sync_id(st: &AppState, ctx: &RequestContext, id: &str) -> Result<(), Error> {
    if !st.stores.multi_tenant() {
        return Ok(());
    }
    let image = st.registry.get(ctx, id).await?;
    sync(st, ctx, &image).await
}
