//! `/v1/images/{id}/members` and `/v1/shared-images/{member}`.

use super::{json_response, policy_target};
use crate::AppState;
use actix_web::{HttpResponse, web};
use glance_common::context::RequestContext;
use glance_common::model::{Image, Keyed, Membership};
use glance_common::{Error, ErrorKind};
use serde_json::Value;

/// The image, unless it is gone: deleted images have no members to show or change.
async fn live_image(st: &AppState, ctx: &RequestContext, id: &str) -> Result<Image, Error> {
    let image = st.registry.get(ctx, id).await.map_err(|e| match e.kind() {
        ErrorKind::NotFound => Error::not_found(format!("Image with identifier {id} not found")),
        _ => e,
    })?;
    if image.status == "deleted" || image.deleted {
        return Err(Error::not_found(format!("Image with identifier {id} has been deleted.")));
    }
    Ok(image)
}

/// The live image whose members a mutation changes: the caller must be somebody (an admin or
/// a caller with a tenant) and pass the policy `rule`.
async fn image_to_share(st: &AppState, ctx: &RequestContext, id: &str, rule: &str) -> Result<Image, Error> {
    if !ctx.is_admin && ctx.owner().is_none() {
        return Err(Error::unauthorized("No authenticated user"));
    }
    let image = live_image(st, ctx, id).await?;
    st.policy.enforce(rule, ctx, &policy_target(&image))?;
    Ok(image)
}

fn check_quota(st: &AppState, count: usize) -> Result<(), Error> {
    let quota = st.config.image_member_quota;
    if quota >= 0 && count as i64 > quota {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!(
                "The limit has been exceeded on the number of allowed image members for this image. Attempted: {count}, Maximum: {quota}"
            ),
        ));
    }
    Ok(())
}

/// The registry refuses sharing it does not allow with 403; v1 answers 404, as Glance does.
fn sharing_error(e: Error) -> Error {
    match e.kind() {
        ErrorKind::Forbidden => Error::not_found(e.message().to_string()),
        _ => e,
    }
}

pub async fn index(id: web::Path<String>, ctx: RequestContext, st: web::Data<AppState>) -> Result<HttpResponse, Error> {
    st.policy.enforce("get_members", &ctx, &Default::default())?;
    live_image(&st, &ctx, &id).await?;
    let members = st.registry.members(&ctx, &id).await?;
    Ok(json_response(200, &Keyed("members", &members)))
}

/// `PUT /v1/images/{id}/members/{member}`, with an optional `{"member": {"can_share": b}}`.
pub async fn add(
    path: web::Path<(String, String)>,
    body: web::Bytes,
    ctx: RequestContext,
    st: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let (id, member) = path.into_inner();
    image_to_share(&st, &ctx, &id, "modify_member").await?;
    let can_share = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let value: Value =
            serde_json::from_slice(&body).map_err(|_| Error::bad_request("Malformed JSON in request body."))?;
        value.get("member").and_then(|m| m.get("can_share")).and_then(Value::as_bool)
    };
    // Glance counts the new member even when it already exists.
    let current = st.registry.members(&ctx, &id).await?.len();
    check_quota(&st, current + 1)?;
    st.registry.add_member(&ctx, &id, &member, can_share).await.map_err(sharing_error)?;
    super::store_acls::sync_id(&st, &ctx, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `PUT /v1/images/{id}/members` with `{"memberships": [...]}`: replaces the member list.
pub async fn replace(
    id: web::Path<String>,
    body: web::Bytes,
    ctx: RequestContext,
    st: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    // Clients send this JSON without a Content-Type; read it whatever the header says.
    let value: Value =
        serde_json::from_slice(&body).map_err(|_| Error::bad_request("Malformed JSON in request body."))?;
    let list = match value.get("memberships") {
        Some(list) => list.clone(),
        // Glance's client wraps a lone membership object.
        None => Value::Array(vec![value.clone()]),
    };
    let memberships: Vec<Membership> =
        serde_json::from_value(list).map_err(|e| Error::bad_request(format!("Invalid membership association: {e}")))?;
    image_to_share(&st, &ctx, &id, "modify_member").await?;
    if value.get("memberships").is_some() {
        check_quota(&st, memberships.len())?;
    }
    st.registry.replace_members(&ctx, &id, &memberships).await.map_err(sharing_error)?;
    super::store_acls::sync_id(&st, &ctx, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn remove(
    path: web::Path<(String, String)>,
    ctx: RequestContext,
    st: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let (id, member) = path.into_inner();
    image_to_share(&st, &ctx, &id, "delete_member").await?;
    let removed = st.registry.delete_member(&ctx, &id, &member).await.map_err(sharing_error);
    // Also when the member was gone already: a removal whose ACL update failed is repaired by
    // repeating it.
    super::store_acls::sync_id(&st, &ctx, &id).await?;
    removed?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn shared_images(
    member: web::Path<String>,
    ctx: RequestContext,
    st: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let shared = st.registry.shared_images(&ctx, &member).await?;
    Ok(json_response(200, &Keyed("shared_images", &shared)))
}
