//! `/images`: list, show, create, update and delete image records.

use super::{json, json_body, query_pairs};
use crate::AppState;
use crate::db::models::ImageRow;
use crate::db::queries::listing::{ListQuery, list};
use crate::db::queries::{images, listing, quota};
use actix_web::{HttpRequest, HttpResponse, web};
use glance_common::Error;
use glance_common::context::RequestContext;
use glance_common::model::{ImagePatch, ReservationRequest};
use serde::Deserialize;

#[derive(Deserialize)]
struct CreateBody {
    image: ImagePatch,
}

#[derive(Deserialize)]
struct UpdateBody {
    image: ImagePatch,
    #[serde(default)]
    from_state: Option<String>,
}

async fn page(req: &HttpRequest, ctx: &RequestContext, st: &AppState) -> Result<(ListQuery, RequestContext), Error> {
    Ok((listing::ListQuery::parse(&query_pairs(req), ctx, st.config.limits)?, ctx.clone()))
}

/// `GET /images`: id, name, size, formats and checksum of each image.
pub async fn index(req: HttpRequest, ctx: RequestContext, st: web::Data<AppState>) -> Result<HttpResponse, Error> {
    let (query, ctx) = page(&req, &ctx, &st).await?;
    let rows = st.db.read(move |c| list(c, &ctx, &query)).await?;
    Ok(json("images", &rows.iter().map(ImageRow::summary).collect::<Vec<_>>()))
}

/// `GET /images/detail`: full records with properties.
pub async fn detail(req: HttpRequest, ctx: RequestContext, st: web::Data<AppState>) -> Result<HttpResponse, Error> {
    let (query, ctx) = page(&req, &ctx, &st).await?;
    let images = st
        .db
        .read(move |c| {
            let rows = list(c, &ctx, &query)?;
            images::with_details(c, rows)
        })
        .await?;
    Ok(json("images", &images))
}

pub async fn show(id: web::Path<String>, ctx: RequestContext, st: web::Data<AppState>) -> Result<HttpResponse, Error> {
    let image = st.db.read(move |c| images::get(c, &ctx, &id)).await?;
    Ok(json("image", &image))
}

pub async fn create(body: web::Bytes, ctx: RequestContext, st: web::Data<AppState>) -> Result<HttpResponse, Error> {
    let body: CreateBody = json_body(&body, "Failed to add image metadata. Got error")?;
    let rules = st.config.rules.clone();
    let request_id = ctx.request_id.clone();
    let image = st.db.write(move |c| images::create(c, &ctx, body.image, &rules)).await?;
    log::info!(req = request_id.as_str(); "created image {} ({})", image.id, image.status);
    Ok(json("image", &image))
}

pub async fn update(
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
    ctx: RequestContext,
    st: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let body: UpdateBody = json_body(&body, "Failed to update image metadata. Got error")?;
    // Glance purges only on the exact lower-case value `true`.
    let purge = req.headers().get("x-glance-registry-purge-props").is_some_and(|v| v.as_bytes() == b"true");
    let rules = st.config.rules.clone();
    let id = id.into_inner();
    let image = st
        .db
        .write(move |c| images::update(c, &ctx, &id, body.image, purge, body.from_state.as_deref(), &rules))
        .await?;
    Ok(json("image", &image))
}

/// `DELETE /images/{id}`: soft-deletes the image. `?scrub_after=<seconds>` (an API node with
/// delayed_delete; not part of Glance's registry API) queues its data for the scrubber.
pub async fn delete(
    req: HttpRequest,
    id: web::Path<String>,
    ctx: RequestContext,
    st: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let scrub_after = match query_pairs(&req).into_iter().find(|(k, _)| k == "scrub_after") {
        Some((_, v)) => Some(
            v.parse::<u32>()
                .map(|s| chrono::Duration::seconds(s.into()))
                .map_err(|_| Error::bad_request(format!("Invalid scrub_after: {v}")))?,
        ),
        None => None,
    };
    let image = st.db.write(move |c| images::destroy(c, &ctx, &id, scrub_after)).await?;
    Ok(json("image", &image))
}

/// `PUT /images/{id}/reservation`: grants an upload in progress more of its owner's
/// `user_storage_quota` (an API node's call; not part of Glance's registry API).
pub async fn reserve(
    id: web::Path<String>,
    body: web::Bytes,
    ctx: RequestContext,
    st: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let body: ReservationRequest = json_body(&body, "Invalid reservation")?;
    if body.bytes < 0 || body.quota < 0 || body.needed < 0 || body.needed > body.bytes {
        return Err(Error::bad_request("Invalid reservation: 0 <= needed <= bytes and 0 <= quota"));
    }
    let grant = st.db.write(move |c| quota::reserve(c, &ctx, &id, body)).await?;
    Ok(json("reservation", &grant))
}
