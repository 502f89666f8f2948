//! The version document: `300 Multiple Choices` listing the enabled API versions.

use crate::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

#[derive(Serialize)]
struct Version {
    status: &'static str,
    id: &'static str,
    links: [Link; 1],
}

#[derive(Serialize)]
struct Link {
    href: String,
    rel: &'static str,
}

pub async fn choices(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    log::debug!("Unknown version. Returning version choices.");
    let info = req.connection_info();
    let host = format!("{}://{}", info.scheme(), info.host());
    let mut versions = Vec::new();
    let entry = |status, id, major: u8| Version {
        status,
        id,
        links: [Link { href: format!("{host}/v{major}/"), rel: "self" }],
    };
    if st.config.enable_v2_api {
        versions.push(entry("CURRENT", "v2.2", 2));
        versions.push(entry("SUPPORTED", "v2.1", 2));
        versions.push(entry("SUPPORTED", "v2.0", 2));
    }
    if st.config.enable_v1_api {
        versions.push(entry("CURRENT", "v1.1", 1));
        versions.push(entry("SUPPORTED", "v1.0", 1));
    }
    HttpResponse::build(StatusCode::MULTIPLE_CHOICES).json(serde_json::json!({ "versions": versions }))
}
