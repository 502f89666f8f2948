//! `/scrub-jobs`: the delayed-delete queue as glance-scrubber sees it (not part of Glance's
//! registry API). Admins only: a scrubber acts for the service, with the API nodes' secret.

use super::{json, json_body};
use crate::AppState;
use crate::db::queries::scrub;
use actix_web::{HttpResponse, web};
use glance_common::Error;
use glance_common::context::RequestContext;
use glance_common::model::{MAX_CLEANUP_AGE_SECONDS, ScrubClaim, ScrubRenewal};
use serde::Deserialize;

/// The longest a claim may hold rows: long enough for any single delete, short enough that a
/// crashed scrubber's rows come back the same day.
const MAX_LEASE_SECONDS: i64 = 24 * 3600;

fn admin_only(ctx: &RequestContext) -> Result<(), Error> {
    if ctx.is_admin { Ok(()) } else { Err(Error::forbidden("The scrub queue is for administrators")) }
}

/// `POST /scrub-jobs/claim`: due rows for one scrubber, each held for the lease.
pub async fn claim(body: web::Bytes, ctx: RequestContext, st: web::Data<AppState>) -> Result<HttpResponse, Error> {
    admin_only(&ctx)?;
    let ask: ScrubClaim = json_body(&body, "Invalid claim")?;
    if ask.worker.is_empty()
        || !(1..=MAX_LEASE_SECONDS).contains(&ask.lease_seconds)
        || !(1..=1000).contains(&ask.limit)
        || ask.cleanup_after_seconds.is_some_and(|age| !(0..=MAX_CLEANUP_AGE_SECONDS).contains(&age))
    {
        return Err(Error::bad_request(
            "Invalid claim: a worker, 1 <= lease_seconds <= 86400, 1 <= limit <= 1000, \
             0 <= cleanup_after_seconds <= 3153600000",
        ));
    }
    let jobs = st.db.write(move |c| scrub::claim(c, &ask)).await?;
    Ok(json("jobs", &jobs))
}

/// `POST /scrub-jobs/renew`: a scrubber still at work keeps its claims.
pub async fn renew(body: web::Bytes, ctx: RequestContext, st: web::Data<AppState>) -> Result<HttpResponse, Error> {
    admin_only(&ctx)?;
    let ask: ScrubRenewal = json_body(&body, "Invalid renewal")?;
    if ask.worker.is_empty() || !(1..=MAX_LEASE_SECONDS).contains(&ask.lease_seconds) || ask.ids.len() > 1000 {
        return Err(Error::bad_request("Invalid renewal: a worker, 1 <= lease_seconds <= 86400, at most 1000 ids"));
    }
    let held = st.db.write(move |c| scrub::renew(c, &ask)).await?;
    Ok(json("held", &held))
}

/// `DELETE /scrub-jobs/{job}`: the job's data is gone. Answers the image's status afterwards
/// (`deleted` with its last job).
pub async fn finish(job: web::Path<i32>, ctx: RequestContext, st: web::Data<AppState>) -> Result<HttpResponse, Error> {
    admin_only(&ctx)?;
    let job = job.into_inner();
    let status = st.db.write(move |c| scrub::finish(c, job)).await?;
    Ok(json("image_status", &status))
}

#[derive(Deserialize)]
struct ReleaseBody {
    worker: String,
    error: String,
}

/// `POST /scrub-jobs/{job}/release`: the delete failed; the job waits for the next pass.
pub async fn release(
    job: web::Path<i32>,
    body: web::Bytes,
    ctx: RequestContext,
    st: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    admin_only(&ctx)?;
    let body: ReleaseBody = json_body(&body, "Invalid release")?;
    let job = job.into_inner();
    st.db.write(move |c| scrub::release(c, job, &body.worker, &body.error)).await?;
    Ok(HttpResponse::NoContent().finish())
}
