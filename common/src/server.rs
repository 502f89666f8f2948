//! actix-web plumbing shared by glance-api and glance-registry: the request-context
//! middleware, extractor error handling and the listener.

use crate::context::{ContextBuilder, REQUEST_ID_HEADER, RequestContext};
use crate::error::Error;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use std::future::{Ready, ready};
use std::time::Instant;

/// Builds the [`RequestContext`] of every request (401 when the flavor demands an identity the
/// request lacks), tags the response with `x-openstack-request-id` and writes an access line.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let started = Instant::now();
    let builder = req.app_data::<web::Data<ContextBuilder>>().cloned();
    let ctx = match &builder {
        Some(builder) => builder.build(req.headers()).await,
        None => Ok(RequestContext::admin(crate::context::request_id_from(req.headers()))),
    };
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let peer = req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_else(|| "-".into());
    let (request_id, mut res) = match ctx {
        // Glance's `mutating` rule: an anonymous (read-only) caller may only read.
        Ok(ctx) if ctx.read_only && !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) => {
            let res = req.error_response(Error::forbidden("Read-only access"));
            (ctx.request_id, res.map_into_right_body())
        }
        Ok(ctx) => {
            let request_id = ctx.request_id.clone();
            req.extensions_mut().insert(ctx);
            (request_id, next.call(req).await?.map_into_left_body())
        }
        Err(err) => {
            let request_id = crate::context::new_request_id();
            let challenge = builder.as_ref().and_then(|b| b.challenge()).filter(|_| err.status().as_u16() == 401);
            let mut res = req.error_response(err);
            // keystonemiddleware's 401 tells the client where to get a token.
            if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
                res.headers_mut().insert(actix_web::http::header::WWW_AUTHENTICATE, value);
            }
            (request_id, res.map_into_right_body())
        }
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    log::info!(
        req = request_id.as_str();
        "{peer} \"{method} {path}\" status: {} time: {:.4}",
        res.status().as_u16(),
        started.elapsed().as_secs_f64()
    );
    Ok(res)
}

impl FromRequest for RequestContext {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<RequestContext>()
                .cloned()
                .ok_or_else(|| Error::internal("request context middleware is not installed")),
        )
    }
}

/// Path and query extractor failures answer 400 in the common error format.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _| Error::bad_request(err.to_string()).into())
}

/// The default route: 404 in the common error format.
pub async fn not_found() -> Result<actix_web::HttpResponse, Error> {
    Err(Error::not_found("The resource could not be found."))
}

/// A route that exists with other methods only.
pub async fn method_not_allowed() -> Result<actix_web::HttpResponse, Error> {
    Err(Error::new(crate::ErrorKind::MethodNotAllowed, "The method is not allowed for this resource."))
}

/// The start of every server binary: `--config-file` → config → logging → warnings →
/// `prepare` (not in workers) → serve in the process role `workers` asks for
/// (see [`crate::workers`]).
pub fn main<C>(
    program: &str,
    files: &[std::path::PathBuf],
    parse: impl FnOnce(&crate::config::RawConfig) -> Result<C, crate::config::ConfigError>,
    options: impl Fn(&C) -> &crate::config::ServerOptions,
    unknown: impl FnOnce(&crate::config::RawConfig) -> Vec<String>,
    prepare: impl FnOnce(&C) -> std::io::Result<()>,
    serve: impl FnOnce(C, crate::workers::Role) -> std::io::Result<()>,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let loaded = crate::config::RawConfig::load(files).and_then(|raw| parse(&raw).map(|config| (raw, config)));
    let (raw, config) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("{program}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = options(&config).clone();
    if let Err(e) = crate::logging::init(&opts.log) {
        eprintln!("{program}: cannot open the log: {e}");
        return ExitCode::FAILURE;
    }
    let ignored = unknown(&raw);
    let role = crate::workers::role(opts.workers);
    if !ignored.is_empty() && role != crate::workers::Role::Worker {
        log::warn!("ignoring options {program} does not use: {}", ignored.join(", "));
    }
    log::debug!("{program} {:?}: bind {}:{}, workers {}", role, opts.bind_host, opts.bind_port, opts.workers);
    // Once per service, before any worker starts (schema migrations must not race each other).
    let prepared = if role == crate::workers::Role::Worker { Ok(()) } else { prepare(&config) };
    let result = prepared.and_then(|()| match role {
        crate::workers::Role::Supervisor(count) => crate::workers::supervise(count),
        role => serve(config, role),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{program} stopped: {e}");
            eprintln!("{program}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Serves `server` on `listener` until SIGTERM (SIGINT too, except in workers, which ignore it).
pub async fn run_server(server: actix_web::dev::Server, role: crate::workers::Role) -> std::io::Result<()> {
    if role == crate::workers::Role::Worker {
        let handle = server.handle();
        actix_web::rt::spawn(async move {
            crate::workers::worker_stop_signal().await;
            handle.stop(true).await;
        });
    }
    server.await
}
