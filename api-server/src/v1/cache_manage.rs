//! `/v1/cached_images` and `/v1/queued_images` (flavor `cachemanagement`): Glance's cache
//! management API, each call guarded by the `manage_image_cache` policy rule. Without that
//! flavor the paths do not exist (404), as in Glance.

use super::json_response;
use crate::AppState;
use crate::cache::{CacheMode, ImageCache};
use actix_web::{HttpResponse, web};
use glance_common::Error;
use glance_common::context::RequestContext;
use glance_common::model::Keyed;

/// The cache, once the caller passed the policy; 404 when the API does not manage a cache.
fn managed<'a>(st: &'a AppState, ctx: &RequestContext) -> Result<&'a ImageCache, Error> {
    let cache = st
        .cache
        .as_ref()
        .filter(|_| st.config.cache_mode == CacheMode::Management)
        .ok_or_else(|| Error::not_found("The resource could not be found."))?;
    st.policy.enforce("manage_image_cache", ctx, &Default::default())?;
    Ok(cache)
}

fn io(e: std::io::Error) -> Error {
    Error::internal(e)
}

fn num_deleted(n: usize) -> HttpResponse {
    json_response(200, &Keyed("num_deleted", &n))
}

fn null() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body("null")
}

pub async fn list_cached(ctx: RequestContext, st: web::Data<AppState>) -> Result<HttpResponse, Error> {
    let images = managed(&st, &ctx)?.list().await.map_err(io)?;
    Ok(json_response(200, &Keyed("cached_images", &images)))
}

pub async fn delete_cached(
    id: web::Path<String>,
    ctx: RequestContext,
    st: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    managed(&st, &ctx)?.delete(&id).await.map_err(io)?;
    Ok(null())
}

pub async fn delete_all_cached(ctx: RequestContext, st: web::Data<AppState>) -> Result<HttpResponse, Error> {
    Ok(num_deleted(managed(&st, &ctx)?.delete_all().await.map_err(io)?))
}

pub async fn list_queued(ctx: RequestContext, st: web::Data<AppState>) -> Result<HttpResponse, Error> {
    let ids = managed(&st, &ctx)?.queued().await.map_err(io)?;
    Ok(json_response(200, &Keyed("queued_images", &ids)))
}

/// Queues an image for the prefetcher: it must exist, be visible and be active (Glance's later
/// cache API checks this; Icehouse queued anything and the prefetcher skipped it).
pub async fn queue(id: web::Path<String>, ctx: RequestContext, st: web::Data<AppState>) -> Result<HttpResponse, Error> {
    let cache = managed(&st, &ctx)?;
    let image = st.registry.get(&ctx, &id).await.map_err(|e| match e.kind() {
        glance_common::ErrorKind::NotFound => Error::not_found(format!("Image {id} not found")),
        _ => e,
    })?;
    if image.status != "active" || image.deleted {
        return Err(Error::bad_request(format!(
            "Only active images can be queued for caching; image {id} is {}",
            image.status
        )));
    }
    cache.queue(&id).await.map_err(io)?;
    Ok(null())
}

pub async fn dequeue(
    id: web::Path<String>,
    ctx: RequestContext,
    st: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    managed(&st, &ctx)?.dequeue(&id).await.map_err(io)?;
    Ok(null())
}

pub async fn dequeue_all(ctx: RequestContext, st: web::Data<AppState>) -> Result<HttpResponse, Error> {
    Ok(num_deleted(managed(&st, &ctx)?.dequeue_all().await.map_err(io)?))
}
