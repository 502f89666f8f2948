//! Routes of the public API. The v1 image API arrives with its own issue; today every path
//! answers with the version document, as Glance does for versions it does not serve.

mod versions;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.default_service(web::to(versions::choices));
}
