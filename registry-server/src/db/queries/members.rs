//! Image memberships: who an image is shared with, and whether they may share it on.

use super::access::{is_sharable, membership};
use super::images::get_row;
use crate::db::models::{MemberRow, NewMember};
use crate::db::schema::{image_members, images};
use crate::db::{DbConn, QueryResult};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use glance_common::context::RequestContext;
use glance_common::model::{Member, Membership, SharedImage};
use glance_common::{Error, timeutil};

/// The live members of a visible image. Owners and admins see them all; a member sees itself.
pub fn list(conn: &mut DbConn, ctx: &RequestContext, image_id: &str) -> QueryResult<Vec<Member>> {
    let image = get_row(conn, ctx, image_id)?;
    let mut query = image_members::table
        .filter(image_members::image_id.eq(image_id))
        .filter(image_members::deleted.eq(false))
        .into_boxed();
    let sees_all = ctx.is_admin || (image.owner.is_some() && image.owner.as_deref() == ctx.owner());
    if !sees_all {
        match ctx.owner() {
            Some(owner) => query = query.filter(image_members::member.eq(owner.to_string())),
            None => return Ok(Vec::new()),
        }
    }
    let rows: Vec<MemberRow> =
        query.order((image_members::created_at, image_members::id)).select(MemberRow::as_select()).load(conn)?;
    Ok(rows.into_iter().map(|m| Member { member_id: m.member, can_share: m.can_share }).collect())
}

/// Checks that the caller may change the memberships of a visible image.
fn sharable_image(conn: &mut DbConn, ctx: &RequestContext, image_id: &str) -> QueryResult<()> {
    if !ctx.is_admin && ctx.owner().is_none() {
        return Err(Error::unauthorized("No authenticated user").into());
    }
    let image = get_row(conn, ctx, image_id)?;
    if !is_sharable(conn, ctx, &image)? {
        return Err(Error::forbidden("No permission to share that image").into());
    }
    Ok(())
}

/// Makes `memberships` the whole member list: listed members are added or updated (a missing
/// `can_share` keeps the current value), the others removed.
pub fn replace(conn: &mut DbConn, ctx: &RequestContext, image_id: &str, memberships: &[Membership]) -> QueryResult<()> {
    sharable_image(conn, ctx, image_id)?;
    let now = timeutil::now();
    let live: Vec<MemberRow> = image_members::table
        .filter(image_members::image_id.eq(image_id))
        .filter(image_members::deleted.eq(false))
        .select(MemberRow::as_select())
        .load(conn)?;
    for row in live.iter().filter(|row| !memberships.iter().any(|m| m.member_id == row.member)) {
        soft_delete(conn, row.id, now)?;
    }
    for m in memberships {
        upsert(conn, image_id, &m.member_id, m.can_share, now)?;
    }
    Ok(())
}

/// Adds one member, or updates its `can_share` when given.
pub fn add(
    conn: &mut DbConn,
    ctx: &RequestContext,
    image_id: &str,
    member: &str,
    can_share: Option<bool>,
) -> QueryResult<()> {
    sharable_image(conn, ctx, image_id)?;
    upsert(conn, image_id, member, can_share, timeutil::now())
}

pub fn remove(conn: &mut DbConn, ctx: &RequestContext, image_id: &str, member: &str) -> QueryResult<()> {
    sharable_image(conn, ctx, image_id)?;
    let row: Option<MemberRow> = image_members::table
        .filter(image_members::image_id.eq(image_id))
        .filter(image_members::member.eq(member))
        .filter(image_members::deleted.eq(false))
        .select(MemberRow::as_select())
        .first(conn)
        .optional()?;
    let row = row.ok_or_else(|| Error::not_found("Membership could not be found."))?;
    soft_delete(conn, row.id, timeutil::now())
}

/// Live images shared with `member`, with its `can_share`. As Glance's registry, only admins
/// see every membership; others see those of `member` when it is themselves, else only
/// memberships of their own images (an anonymous caller sees none).
pub fn shared_with(conn: &mut DbConn, ctx: &RequestContext, member: &str) -> QueryResult<Vec<SharedImage>> {
    let caller = ctx.owner().map(str::to_string);
    if !ctx.is_admin && caller.is_none() {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, bool, Option<String>)> = image_members::table
        .inner_join(images::table)
        .filter(image_members::member.eq(member))
        .filter(image_members::deleted.eq(false))
        .filter(images::deleted.eq(false))
        .order((image_members::created_at, image_members::id))
        .select((image_members::image_id, image_members::can_share, images::owner))
        .load(conn)?;
    let visible = |owner: &Option<String>| ctx.is_admin || caller.as_deref() == Some(member) || *owner == caller;
    Ok(rows
        .into_iter()
        .filter(|(_, _, owner)| visible(owner))
        .map(|(image_id, can_share, _)| SharedImage { image_id, can_share })
        .collect())
}

fn upsert(
    conn: &mut DbConn,
    image_id: &str,
    member: &str,
    can_share: Option<bool>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    if member.is_empty() || member.chars().count() > 255 {
        return Err(Error::bad_request(format!(
            "Invalid membership association: member '{member}' must be 1 to 255 characters"
        ))
        .into());
    }
    match membership(conn, image_id, member)? {
        Some(current) => {
            if let Some(can_share) = can_share.filter(|c| *c != current) {
                diesel::update(
                    image_members::table
                        .filter(image_members::image_id.eq(image_id))
                        .filter(image_members::member.eq(member))
                        .filter(image_members::deleted.eq(false)),
                )
                .set((image_members::can_share.eq(can_share), image_members::updated_at.eq(now)))
                .execute(conn)?;
            }
        }
        None => {
            diesel::insert_into(image_members::table)
                .values(NewMember {
                    image_id,
                    member,
                    can_share: can_share.unwrap_or(false),
                    status: "pending",
                    created_at: now,
                    updated_at: now,
                    deleted: false,
                })
                .execute(conn)?;
        }
    }
    Ok(())
}

fn soft_delete(conn: &mut DbConn, id: i32, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(image_members::table.find(id))
        .set((
            image_members::deleted.eq(true),
            image_members::deleted_at.eq(Some(now)),
            image_members::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}
