//! Version negotiation and the version document (`300 Multiple Choices`).
//!
//! As Glance's VersionNegotiationFilter: `/versions` (any Accept) lists versions; an Accept of
//! `application/vnd.openstack.images-vN` picks version N for an unversioned path; otherwise the
//! first path segment names the version (`v1`, `v1.0`, `v1.1`, `v2`…`v2.2`). Anything else, or a
//! disabled version, gets the version document.

use crate::AppState;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::Uri;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

#[derive(Debug, PartialEq, Eq)]
pub enum Negotiated {
    Versions,
    /// Serve this path (version prefix normalized to `/v1` or `/v2`).
    Route(String),
}

/// Where a request goes, from its path and Accept header.
pub fn negotiate(path: &str, accept: Option<&str>, v1: bool, v2: bool) -> Negotiated {
    let trimmed = path.trim_start_matches('/');
    let (first, rest) = match trimmed.split_once('/') {
        Some((first, rest)) => (first, format!("/{rest}")),
        None => (trimmed, String::new()),
    };
    if first == "versions" {
        return Negotiated::Versions;
    }
    let (token, remainder) = match accept.and_then(|a| a.strip_prefix("application/vnd.openstack.images-")) {
        Some(token) => (token, path.to_string()),
        None => (first, rest),
    };
    let major = match token {
        "v1" | "v1.0" | "v1.1" if v1 => 1,
        "v2" | "v2.0" | "v2.1" | "v2.2" if v2 => 2,
        _ => return Negotiated::Versions,
    };
    Negotiated::Route(format!("/v{major}{remainder}"))
}

/// Middleware: rewrites the path to its negotiated version, or answers with the document.
pub async fn negotiation(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(st) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let accept = req.headers().get("accept").and_then(|v| v.to_str().ok()).map(str::to_string);
    let negotiated = negotiate(req.path(), accept.as_deref(), st.config.enable_v1_api, st.config.enable_v2_api);
    match negotiated {
        Negotiated::Route(path) => {
            if path != req.path() {
                let path_and_query = match req.uri().query() {
                    Some(q) => format!("{path}?{q}"),
                    None => path,
                };
                let mut parts = req.uri().clone().into_parts();
                parts.path_and_query = path_and_query.parse().ok();
                if let Ok(uri) = Uri::from_parts(parts) {
                    req.match_info_mut().get_mut().update(&uri);
                    req.head_mut().uri = uri;
                }
            }
            Ok(next.call(req).await?.map_into_left_body())
        }
        Negotiated::Versions => {
            log::debug!("Unknown version. Returning version choices.");
            let mut response = document(req.request(), &st);
            // Every response carries a request id, this one too (it never reaches the context).
            if let Ok(id) = actix_web::http::header::HeaderValue::from_str(&glance_common::context::new_request_id()) {
                response.headers_mut().insert(
                    actix_web::http::header::HeaderName::from_static(glance_common::context::REQUEST_ID_HEADER),
                    id,
                );
            }
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}

/// Field order as Glance wrote it (`status`, `id`, `links`): a struct keeps it, a map would not.
#[derive(Serialize)]
struct Document {
    versions: Vec<Version>,
}

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

/// The version document for the enabled versions, with links on the request's host.
pub fn document(req: &HttpRequest, st: &AppState) -> HttpResponse {
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
    HttpResponse::build(StatusCode::MULTIPLE_CHOICES)
        .content_type("application/json")
        .body(glance_common::pyjson::to_string(&Document { versions }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glance_negotiation_matrix() {
        let n = |path: &str, accept: Option<&str>| negotiate(path, accept, true, true);
        let v = Negotiated::Versions;
        let route = |p: &str| Negotiated::Route(p.to_string());
        assert_eq!(n("/", None), v);
        assert_eq!(n("/images", None), v);
        assert_eq!(n("/v1/images", None), route("/v1/images"));
        assert_eq!(n("/v1.0/images", None), route("/v1/images"));
        assert_eq!(n("/v1.1/images/x", None), route("/v1/images/x"));
        assert_eq!(n("/", Some("unknown")), v);
        assert_eq!(n("/images", Some("application/vnd.openstack.images-v1")), route("/v1/images"));
        assert_eq!(n("/images", Some("application/vnd.openstack.compute-v1")), v);
        assert_eq!(n("/v1.a/images", None), v);
        assert_eq!(n("/va.1/images", None), v);
        assert_eq!(n("/v1.2/images", None), v);
        assert_eq!(n("/v10", None), v);
        assert_eq!(n("/versions", None), v);
        assert_eq!(n("/versions", Some("application/vnd.openstack.images-v1")), v);
        assert_eq!(n("/v1/versions", None), route("/v1/versions"));
        assert_eq!(n("/v3/versions", None), v);
        assert_eq!(n("/images", Some("application/vnd.openstack.images-v10")), v);
        assert_eq!(negotiate("/v2/images", None, true, false), v);
    }
}
