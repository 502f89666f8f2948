//! Routes of the public API: version negotiation in front, then the versioned APIs.

pub mod versions;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(crate::v1::configure).default_service(web::to(glance_common::server::not_found));
}
