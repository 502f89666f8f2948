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

pub async fn queue(id: web::Path<String>, ctx: RequestContext, st: web::Data<AppState>) -> Result<HttpResponse, Error> {
    managed(&st, &ctx)?.queue(&id).await.map_err(io)?;
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
