//! The delayed-delete queue (`scrub_jobs`). Rows are added in the transaction that
//! soft-deletes an image (`images::destroy`), claimed by scrubbers for a lease, and removed
//! once their data is gone; the image becomes `deleted` with its last row. Every step is a
//! conditional UPDATE or DELETE, so concurrent scrubbers on any engine never take one row
//! twice, and a scrubber that died only delays its rows until their lease lapses.

use crate::db::schema::{image_locations, images, scrub_jobs};
use crate::db::{DbConn, MultiBackend, QueryResult};
use chrono::{Duration, NaiveDateTime};
use diesel::expression::BoxableExpression;
use diesel::prelude::*;
use diesel::sql_types::Bool;
use glance_common::model::{ScrubClaim, ScrubJob, ScrubRenewal};
use glance_common::timeutil;

/// Queues every `(image_id, value)` location for deletion at `due_at`.
pub fn enqueue(conn: &mut DbConn, image_id: &str, values: &[String], due_at: NaiveDateTime) -> QueryResult<()> {
    let now = timeutil::now();
    for value in values {
        diesel::insert_into(scrub_jobs::table)
            .values((
                scrub_jobs::image_id.eq(image_id),
                scrub_jobs::value.eq(value),
                scrub_jobs::due_at.eq(due_at),
                scrub_jobs::attempts.eq(0),
                scrub_jobs::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Rows no scrubber holds now: never claimed, released, or their lease lapsed.
fn free(now: NaiveDateTime) -> Box<dyn BoxableExpression<scrub_jobs::table, MultiBackend, SqlType = Bool>> {
    Box::new(scrub_jobs::claimed_until.is_null().or(scrub_jobs::claimed_until.assume_not_null().le(now)))
}

/// Claims up to `ask.limit` due rows above `ask.after` for `ask.worker`. Only rows of images
/// still in `pending_delete` are handed out: data of an image in any other state is never
/// deleted from here.
pub fn claim(conn: &mut DbConn, ask: &ScrubClaim) -> QueryResult<Vec<ScrubJob>> {
    if let (0, Some(age)) = (ask.after, ask.cleanup_after_seconds) {
        settle_orphans(conn, timeutil::now() - Duration::seconds(age))?;
    }
    // After settling, so that what it queued "due at once" is due now.
    let now = timeutil::now();
    let pending = images::table.filter(images::status.eq("pending_delete")).select(images::id);
    let candidates: Vec<i32> = scrub_jobs::table
        .filter(scrub_jobs::due_at.le(now))
        .filter(scrub_jobs::id.gt(ask.after))
        .filter(free(now))
        .filter(scrub_jobs::image_id.eq_any(pending))
        .order(scrub_jobs::id)
        .limit(ask.limit)
        .select(scrub_jobs::id)
        .load(conn)?;
    let until = now + Duration::seconds(ask.lease_seconds);
    let mut claimed = Vec::with_capacity(candidates.len());
    for id in candidates {
        // Taken only if still free when our UPDATE gets the row: another scrubber's claim
        // commits first or ours does, never both.
        let taken = diesel::update(scrub_jobs::table.find(id).filter(free(now)))
            .set((scrub_jobs::claimed_by.eq(&ask.worker), scrub_jobs::claimed_until.eq(until)))
            .execute(conn)?;
        if taken == 1 {
            claimed.push(id);
        }
    }
    let rows: Vec<(i32, String, String, i32)> = scrub_jobs::table
        .filter(scrub_jobs::id.eq_any(&claimed))
        .order(scrub_jobs::id)
        .select((scrub_jobs::id, scrub_jobs::image_id, scrub_jobs::value, scrub_jobs::attempts))
        .load(conn)?;
    Ok(rows.into_iter().map(|(id, image_id, url, attempts)| ScrubJob { id, image_id, url, attempts }).collect())
}

/// Extends the lease of the rows `ask.worker` still holds; returns how many it holds.
pub fn renew(conn: &mut DbConn, ask: &ScrubRenewal) -> QueryResult<usize> {
    let until = timeutil::now() + Duration::seconds(ask.lease_seconds);
    let held = scrub_jobs::table.filter(scrub_jobs::id.eq_any(&ask.ids)).filter(scrub_jobs::claimed_by.eq(&ask.worker));
    Ok(diesel::update(held).set(scrub_jobs::claimed_until.eq(until)).execute(conn)?)
}

/// The row's data is gone: drops the row and, with the image's last one, marks the image
/// `deleted`. Returns the image's status afterwards. Finishing a row twice (a lease that
/// lapsed while its scrubber was slow) is harmless.
pub fn finish(conn: &mut DbConn, id: i32) -> QueryResult<Option<String>> {
    let Some(image_id) = scrub_jobs::table.find(id).select(scrub_jobs::image_id).first::<String>(conn).optional()?
    else {
        return Ok(None);
    };
    // One image's jobs finish one at a time, so that the last one always sees that it is.
    super::images::lock_image(conn, &image_id)?;
    diesel::delete(scrub_jobs::table.find(id)).execute(conn)?;
    let left: i64 = scrub_jobs::table.filter(scrub_jobs::image_id.eq(&image_id)).count().get_result(conn)?;
    if left == 0 {
        diesel::update(images::table.filter(images::id.eq(&image_id)).filter(images::status.eq("pending_delete")))
            .set((images::status.eq("deleted"), images::updated_at.eq(timeutil::now())))
            .execute(conn)?;
    }
    let status = images::table.filter(images::id.eq(&image_id)).select(images::status).first(conn).optional()?;
    Ok(status)
}

/// The row's data could not be deleted: it stays queued for the next pass, with the error.
/// Only the claim's holder releases it; a row another scrubber took over (or finished) is
/// left alone.
pub fn release(conn: &mut DbConn, id: i32, worker: &str, error: &str) -> QueryResult<()> {
    diesel::update(scrub_jobs::table.find(id).filter(scrub_jobs::claimed_by.eq(worker)))
        .set((
            scrub_jobs::claimed_by.eq(None::<String>),
            scrub_jobs::claimed_until.eq(None::<NaiveDateTime>),
            scrub_jobs::attempts.eq(scrub_jobs::attempts + 1),
            scrub_jobs::last_error.eq(error),
        ))
        .execute(conn)?;
    Ok(())
}

/// Images in `pending_delete` with nothing queued, soft-deleted before `deleted_before`
/// (deleted by an older Glance, whose queue was a local file, or queue rows removed by hand):
/// their locations not yet marked deleted are queued now, due at once; with none, the image
/// becomes `deleted`. Glance's `cleanup_scrubber` pass. One image at a time, under its row
/// lock, so concurrent passes cannot both act on one.
pub fn settle_orphans(conn: &mut DbConn, deleted_before: NaiveDateTime) -> QueryResult<usize> {
    let queued = scrub_jobs::table.select(scrub_jobs::image_id);
    let orphans: Vec<String> = images::table
        .filter(images::status.eq("pending_delete"))
        .filter(images::deleted.eq(true))
        .filter(images::deleted_at.le(deleted_before))
        .filter(images::id.ne_all(queued))
        .select(images::id)
        .load(conn)?;
    let now = timeutil::now();
    for id in &orphans {
        super::images::lock_image(conn, id)?;
        let still_orphan = images::table
            .filter(images::id.eq(id))
            .filter(images::status.eq("pending_delete"))
            .count()
            .get_result::<i64>(conn)?
            == 1
            && scrub_jobs::table.filter(scrub_jobs::image_id.eq(id)).count().get_result::<i64>(conn)? == 0;
        if !still_orphan {
            continue;
        }
        let values: Vec<String> = image_locations::table
            .filter(image_locations::image_id.eq(id))
            .filter(image_locations::status.ne("deleted"))
            .order(image_locations::id)
            .select(image_locations::value)
            .load(conn)?;
        if values.is_empty() {
            diesel::update(images::table.filter(images::id.eq(id)))
                .set((images::status.eq("deleted"), images::updated_at.eq(now)))
                .execute(conn)?;
        } else {
            enqueue(conn, id, &values, now)?;
        }
    }
    Ok(orphans.len())
}
