//! `/images/{id}/members` and `/shared-images/{member}`.

use super::{json, json_body};
use crate::AppState;
use crate::db::queries::members;
use actix_web::{HttpResponse, web};
use glance_common::Error;
use glance_common::context::RequestContext;
use glance_common::model::Membership;
use serde::Deserialize;

const INVALID: &str = "Invalid membership association";

#[derive(Deserialize)]
struct Memberships {
    memberships: Vec<Membership>,
}

#[derive(Deserialize)]
struct MemberBody {
    member: CanShare,
}

#[derive(Deserialize)]
struct CanShare {
    can_share: bool,
}

pub async fn index(id: web::Path<String>, ctx: RequestContext, st: web::Data<AppState>) -> Result<HttpResponse, Error> {
    let members = st.db.read(move |c| members::list(c, &ctx, &id)).await?;
    Ok(json("members", &members))
}

pub async fn replace(
    id: web::Path<String>,
    body: web::Bytes,
    ctx: RequestContext,
    st: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let body: Memberships = json_body(&body, INVALID)?;
    st.db.write(move |c| members::replace(c, &ctx, &id, &body.memberships)).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn add(
    path: web::Path<(String, String)>,
    body: web::Bytes,
    ctx: RequestContext,
    st: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let (id, member) = path.into_inner();
    // No body: add with can_share false (or keep it). A body must say {"member": {"can_share": b}}.
    let can_share = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(json_body::<MemberBody>(&body, INVALID)?.member.can_share)
    };
    st.db.write(move |c| members::add(c, &ctx, &id, &member, can_share)).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn remove(
    path: web::Path<(String, String)>,
    ctx: RequestContext,
    st: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let (id, member) = path.into_inner();
    st.db.write(move |c| members::remove(c, &ctx, &id, &member)).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn shared_images(
    member: web::Path<String>,
    ctx: RequestContext,
    st: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let shared = st.db.read(move |c| members::shared_with(c, &ctx, &member)).await?;
    Ok(json("shared_images", &shared))
}
