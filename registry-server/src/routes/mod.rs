//! The registry's v1 REST API (Glance's `glance/registry/api/v1`): JSON for the registry client.

mod images;
mod members;
mod scrub;

use actix_web::{HttpRequest, HttpResponse, web};
use glance_common::Error;
use serde::de::DeserializeOwned;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // One resource per path with its methods: fewer patterns for the router to try per request.
    let not_allowed = || web::route().to(glance_common::server::method_not_allowed);
    cfg.service(web::resource("/").route(web::get().to(images::index)))
        .service(
            web::resource("/images")
                .route(web::get().to(images::index))
                .route(web::post().to(images::create))
                .route(not_allowed()),
        )
        .service(web::resource("/images/detail").route(web::get().to(images::detail)).route(not_allowed()))
        .service(
            web::resource("/images/{id}")
                .route(web::get().to(images::show))
                .route(web::put().to(images::update))
                .route(web::delete().to(images::delete))
                .route(not_allowed()),
        )
        .service(web::resource("/images/{id}/reservation").route(web::put().to(images::reserve)).route(not_allowed()))
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
        .service(web::resource("/shared-images/{member}").route(web::get().to(members::shared_images)))
        .service(web::resource("/scrub-jobs/claim").route(web::post().to(scrub::claim)).route(not_allowed()))
        .service(web::resource("/scrub-jobs/renew").route(web::post().to(scrub::renew)).route(not_allowed()))
        .service(web::resource("/scrub-jobs/{job}").route(web::delete().to(scrub::finish)).route(not_allowed()))
        .service(web::resource("/scrub-jobs/{job}/release").route(web::post().to(scrub::release)).route(not_allowed()))
        .default_service(web::to(glance_common::server::not_found));
}

/// Every query parameter in order, repeated keys included.
fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect()
}

/// A JSON request body: 400 `Malformed JSON in request body.` when it is not JSON, and
/// `<context>: <reason>` when it is JSON of the wrong shape.
fn json_body<T: DeserializeOwned>(body: &[u8], context: &str) -> Result<T, Error> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| Error::bad_request("Malformed JSON in request body."))?;
    serde_json::from_value(value).map_err(|e| Error::bad_request(format!("{context}: {e}")))
}

/// `{"<key>": value}` as the 200 response, serialized straight from the typed value.
fn json<T: serde::Serialize + ?Sized>(key: &'static str, value: &T) -> HttpResponse {
    match serde_json::to_vec(&glance_common::model::Keyed(key, value)) {
        Ok(body) => HttpResponse::Ok().content_type("application/json").body(body),
        Err(e) => actix_web::ResponseError::error_response(&Error::internal(e)),
    }
}
