//! glance-api: the public Image API. It owns image bytes and never touches SQL: every piece of
//! metadata goes through the registry (`glance_common::registry_client`).

pub mod config;
pub mod routes;

use actix_web::{App, HttpServer, middleware::from_fn, web};
use config::ApiConfig;
use glance_common::registry_client::RegistryClient;
use std::sync::Arc;

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<ApiConfig>,
    pub registry: RegistryClient,
}

/// Serves the API until SIGTERM.
pub async fn run(config: ApiConfig) -> std::io::Result<()> {
    let registry = RegistryClient::new(&config.registry_host, config.registry_port, config.registry_timeout)
        .map_err(std::io::Error::other)?;
    let state = AppState { config: Arc::new(config.clone()), registry };
    let context = web::Data::new(config.context.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .app_data(context.clone())
            .wrap(from_fn(glance_common::server::request_context))
            .configure(routes::configure)
    })
    .workers(config.server.workers.max(1))
    .shutdown_timeout(10)
    .bind((config.server.bind_host.as_str(), config.server.bind_port))?;
    for addr in server.addrs() {
        log::info!("glance-api listening on http://{addr}, registry at {}", config.registry_url());
    }
    server.run().await
}
