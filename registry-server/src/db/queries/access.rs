//! Who may see, change and share an image (Glance's `is_image_visible`, `is_image_mutable`,
//! `is_image_sharable`).

use crate::db::DbConn;
use crate::db::QueryResult;
use crate::db::models::ImageRow;
use crate::db::schema::image_members;
use diesel::prelude::*;
use glance_common::context::RequestContext;

/// Admins, public images, images without owner, the owner, and tenants it is shared with.
pub fn is_visible(conn: &mut DbConn, ctx: &RequestContext, image: &ImageRow) -> QueryResult<bool> {
    if ctx.is_admin || image.owner.is_none() || image.is_public {
        return Ok(true);
    }
    let Some(owner) = ctx.owner() else { return Ok(false) };
    if image.owner.as_deref() == Some(owner) {
        return Ok(true);
    }
    Ok(membership(conn, &image.id, owner)?.is_some())
}

/// Admins, and the owner when both image and caller have one.
pub fn is_mutable(ctx: &RequestContext, image: &ImageRow) -> bool {
    if ctx.is_admin {
        return true;
    }
    match (image.owner.as_deref(), ctx.owner()) {
        (Some(image_owner), Some(owner)) => image_owner == owner,
        _ => false,
    }
}

/// Admins, the owner, and members allowed to share.
pub fn is_sharable(conn: &mut DbConn, ctx: &RequestContext, image: &ImageRow) -> QueryResult<bool> {
    if ctx.is_admin {
        return Ok(true);
    }
    let Some(owner) = ctx.owner() else { return Ok(false) };
    if image.owner.as_deref() == Some(owner) {
        return Ok(true);
    }
    Ok(membership(conn, &image.id, owner)?.is_some_and(|can_share| can_share))
}

/// `Some(can_share)` when `member` has a live membership of the image.
pub fn membership(conn: &mut DbConn, image_id: &str, member: &str) -> QueryResult<Option<bool>> {
    Ok(image_members::table
        .filter(image_members::image_id.eq(image_id))
        .filter(image_members::member.eq(member))
        .filter(image_members::deleted.eq(false))
        .select(image_members::can_share)
        .first::<bool>(conn)
        .optional()?)
}
