//! Glance's v1 API (`/v1`).

mod images;
mod members;
pub mod upload;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use glance_common::model::Image;
use std::collections::HashMap;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            .route("", web::get().to(images::index))
            .route("/", web::get().to(images::index))
            .route("/images", web::get().to(images::index))
            .route("/images", web::post().to(images::create))
            .route("/images/detail", web::get().to(images::detail))
            .route("/images/detail", web::head().to(detail_head))
            .route("/images/{id}", web::head().to(images::head))
            .route("/images/{id}", web::get().to(images::download))
            .route("/images/{id}", web::put().to(images::update))
            .route("/images/{id}", web::delete().to(images::delete))
            .route("/images/{id}/members", web::get().to(members::index))
            .route("/images/{id}/members", web::put().to(members::replace))
            .route("/images/{id}/members/{member}", web::put().to(members::add))
            .route("/images/{id}/members/{member}", web::delete().to(members::remove))
            .route("/images/{id}/members/{member}", web::route().to(glance_common::server::method_not_allowed))
            .route("/shared-images/{member}", web::route().to(members::shared_images))
            .default_service(web::to(glance_common::server::not_found)),
    );
}

/// `HEAD /v1/images/detail` is not a thing: 405 with `Allow: GET`, as Glance answers.
async fn detail_head() -> HttpResponse {
    HttpResponse::MethodNotAllowed().insert_header(("Allow", "GET")).finish()
}

/// A JSON response in Python's spacing (clients compare some bodies as strings).
pub fn json_response(status: u16, value: &serde_json::Value) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .content_type("application/json")
        .body(glance_common::pyjson::to_string(value))
}

/// The fields policy rules may refer to (`%(owner)s` and friends).
pub fn policy_target(image: &Image) -> HashMap<&'static str, String> {
    let mut target = HashMap::new();
    if let Some(owner) = &image.owner {
        target.insert("owner", owner.clone());
    }
    target.insert("id", image.id.clone());
    target.insert("status", image.status.clone());
    target.insert("is_public", if image.is_public { "True" } else { "False" }.to_string());
    target
}
