//! `user_storage_quota`: what an owner's images use, and the bytes granted to its uploads in
//! progress. Grants are taken in one transaction per owner (its image rows locked on
//! PostgreSQL and MariaDB; SQLite serializes writers anyway), so concurrent uploads of one
//! owner can never be granted more than the quota together.

use super::access::is_mutable;
use super::image_not_found;
use super::images::get_row;
use crate::db::schema::{image_locations, image_reservations, images};
use crate::db::{DbConn, QueryResult};
use chrono::Duration;
use diesel::expression::BoxableExpression;
use diesel::prelude::*;
use diesel::sql_types::Text;
use glance_common::context::RequestContext;
use glance_common::model::{Grant, ReservationRequest};
use glance_common::{Error, ErrorKind, timeutil};

/// A grant not renewed for this long belongs to an upload that died with its API node.
const STALE_AFTER: Duration = Duration::hours(1);

/// Statuses whose data no longer counts (Glance's `user_get_storage_usage`).
const NOT_COUNTED: [&str; 3] = ["killed", "pending_delete", "deleted"];

/// Grants the upload into `id` up to `ask.bytes` in all, within `ask.quota` for its owner:
/// the owner's stored images (size × live locations, as Glance counts) and the grants of its
/// other uploads come first. When not even `ask.needed` fits, the upload is refused and its
/// grant dropped in the same transaction, so that of two uploads racing for the last bytes
/// the one asking next gets them.
pub fn reserve(conn: &mut DbConn, ctx: &RequestContext, id: &str, ask: ReservationRequest) -> QueryResult<Grant> {
    // Locks first, so that everything read below is what the previous grant committed.
    lock_owner_of(conn, id)?;
    let image = get_row(conn, ctx, id)?;
    if !is_mutable(ctx, &image) {
        return Err(image_not_found().into());
    }
    if image.status != "saving" {
        return Err(Error::new(ErrorKind::Conflict, format!("Image {id} is not being uploaded")).into());
    }
    let owner = image.owner.unwrap_or_default();
    let now = timeutil::now();
    let used = usage(conn, &owner, id)?;
    let others: Vec<i64> = image_reservations::table
        .filter(image_reservations::owner.eq(&owner))
        .filter(image_reservations::image_id.ne(id))
        .filter(image_reservations::updated_at.gt(now - STALE_AFTER))
        .select(image_reservations::bytes)
        .load(conn)?;
    let remaining = ask.quota - used - others.iter().sum::<i64>();
    release(conn, id)?;
    if remaining < ask.needed {
        return Ok(Grant { granted: 0, remaining });
    }
    let granted = ask.bytes.min(remaining);
    diesel::insert_into(image_reservations::table)
        .values((
            image_reservations::image_id.eq(id),
            image_reservations::owner.eq(&owner),
            image_reservations::bytes.eq(granted),
            image_reservations::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(Grant { granted, remaining })
}

/// Drops the grant of an upload that ended (activated, killed or deleted).
pub fn release(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    diesel::delete(image_reservations::table.filter(image_reservations::image_id.eq(id))).execute(conn)?;
    Ok(())
}

/// What `owner`'s stored images use, leaving out `except` (the upload asking).
fn usage(conn: &mut DbConn, owner: &str, except: &str) -> QueryResult<i64> {
    let counted = images::table
        .filter(owned_by(owner))
        .filter(images::id.ne(except))
        .filter(images::deleted.eq(false))
        .filter(images::size.gt(0))
        .filter(images::status.ne_all(NOT_COUNTED));
    let sizes: Vec<(String, Option<i64>)> = counted.select((images::id, images::size)).load(conn)?;
    let mut total = 0;
    // In slices: an IN list must stay under every engine's limit on bound parameters.
    for slice in sizes.chunks(500) {
        let ids: Vec<&str> = slice.iter().map(|(id, _)| id.as_str()).collect();
        let located: Vec<String> = image_locations::table
            .filter(image_locations::deleted.eq(false))
            .filter(image_locations::image_id.eq_any(&ids))
            .select(image_locations::image_id)
            .load(conn)?;
        total += slice
            .iter()
            .map(|(id, size)| size.unwrap_or(0) * located.iter().filter(|l| *l == id).count() as i64)
            .sum::<i64>();
    }
    Ok(total)
}

/// `images.owner = owner`, where the empty string stands for images without owner.
fn owned_by(
    owner: &str,
) -> Box<dyn BoxableExpression<images::table, crate::db::MultiBackend, SqlType = diesel::sql_types::Bool>> {
    if owner.is_empty() {
        Box::new(images::owner.is_null())
    } else {
        Box::new(images::owner.assume_not_null().eq(owner.to_string()))
    }
}

/// Locks all image rows of the image's owner, in id order (so two grants never wait for each
/// other), until the transaction ends: grants for one owner are decided one at a time.
/// SQLite needs nothing: its writers already take turns.
fn lock_owner_of(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    if matches!(conn, DbConn::Sqlite(_)) {
        return Ok(());
    }
    let owner: Option<String> = images::table
        .filter(images::id.eq(id))
        .select(images::owner)
        .first(conn)
        .optional()?
        .ok_or_else(image_not_found)?;
    macro_rules! lock {
        ($c:expr, $owned:literal) => {
            match owner {
                Some(owner) => diesel::sql_query($owned).bind::<Text, _>(owner).execute($c)?,
                None => {
                    diesel::sql_query("SELECT id FROM images WHERE owner IS NULL ORDER BY id FOR UPDATE").execute($c)?
                }
            }
        };
    }
    match conn {
        DbConn::Sqlite(_) => 0,
        DbConn::Postgresql(c) => lock!(c, "SELECT id FROM images WHERE owner = $1 ORDER BY id FOR UPDATE"),
        DbConn::Mysql(c) => lock!(c, "SELECT id FROM images WHERE owner = ? ORDER BY id FOR UPDATE"),
    };
    Ok(())
}
