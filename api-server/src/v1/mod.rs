//! Glance's v1 API (`/v1`).

mod cache_manage;
mod images;
mod members;
mod store_acls;
pub mod upload;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use glance_common::model::Image;
use std::collections::HashMap;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // One resource per path with its methods: fewer patterns for the router to try per request.
    let not_allowed = || web::route().to(glance_common::server::method_not_allowed);
    cfg.service(
        web::scope("/v1")
            .service(web::resource(["", "/"]).route(web::get().to(images::index)))
            .service(
                web::resource("/images")
                    .route(web::get().to(images::index))
                    .route(web::post().to(images::create))
                    .route(not_allowed()),
            )
            .service(
                web::resource("/images/detail")
                    .route(web::get().to(images::detail))
                    .route(web::head().to(detail_head))
                    .route(not_allowed()),
            )
            .service(
                web::resource("/images/{id}")
                    .route(web::head().to(images::head))
                    .route(web::get().to(images::download))
                    .route(web::put().to(images::update))
                    .route(web::delete().to(images::delete))
                    .route(not_allowed()),
            )
            .service(
                web::resource("/images/{id}/members")
                    .route(web::get().to(members::index))
                    .route(web::put().to(members::replace))
                    .route(not_allowed()),
            )
            .service(
                web::resource("/images/{id}/members/{member}")
                    .route(web::put().to(members::add))
                    .route(web::delete().to(members::remove))
                    .route(not_allowed()),
            )
            .service(web::resource("/shared-images/{member}").route(web::route().to(members::shared_images)))
            .service(
                web::resource("/cached_images")
                    .route(web::get().to(cache_manage::list_cached))
                    .route(web::delete().to(cache_manage::delete_all_cached))
                    .route(not_allowed()),
            )
            .service(
                web::resource("/cached_images/{id}")
                    .route(web::delete().to(cache_manage::delete_cached))
                    .route(not_allowed()),
            )
            .service(
                web::resource("/queued_images")
                    .route(web::get().to(cache_manage::list_queued))
                    .route(web::delete().to(cache_manage::dequeue_all))
                    .route(not_allowed()),
            )
            .service(
                web::resource("/queued_images/{id}")
                    .route(web::put().to(cache_manage::queue))
                    .route(web::delete().to(cache_manage::dequeue))
                    .route(not_allowed()),
            )
            .default_service(web::to(glance_common::server::not_found)),
    );
}

/// `HEAD /v1/images/detail` is not a thing: 405 with `Allow: GET`, as Glance answers.
async fn detail_head() -> HttpResponse {
    HttpResponse::MethodNotAllowed().insert_header(("Allow", "GET")).finish()
}

/// A JSON response in Python's spacing (clients compare some bodies as strings).
pub fn json_response<T: serde::Serialize + ?Sized>(status: u16, value: &T) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .content_type("application/json")
        .body(glance_common::pyjson::to_string(value))
}

/// The target policy rules see: the image's properties, then its core fields (which win over a
/// property of the same name), rendered as Glance renders them (`True`, `None`, numbers).
pub fn policy_target(image: &Image) -> HashMap<&str, String> {
    let mut target: HashMap<&str, String> =
        image.properties.iter().map(|(k, v)| (k.as_str(), v.clone().unwrap_or_else(|| "None".into()))).collect();
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "None".into());
    let number = |v: Option<i64>| v.map_or_else(|| "None".into(), |n| n.to_string());
    let boolean = |b: bool| if b { "True" } else { "False" }.to_string();
    target.insert("id", image.id.clone());
    target.insert("name", text(&image.name));
    target.insert("status", image.status.clone());
    target.insert("size", number(image.size));
    target.insert("disk_format", text(&image.disk_format));
    target.insert("container_format", text(&image.container_format));
    target.insert("checksum", text(&image.checksum));
    target.insert("min_disk", image.min_disk.to_string());
    target.insert("min_ram", image.min_ram.to_string());
    target.insert("is_public", boolean(image.is_public));
    target.insert("protected", boolean(image.protected));
    target.insert("deleted", boolean(image.deleted));
    target.insert("owner", text(&image.owner));
    target
}
