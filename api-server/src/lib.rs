//! glance-api: the public Image API. It owns image bytes and never touches SQL: every piece of
//! metadata goes through the registry (`glance_common::registry_client`).

pub mod cache;
pub mod config;
pub mod meta;
pub mod policy;
pub mod protections;
pub mod replicator;
pub mod routes;
pub mod scrubber;
pub mod store;
pub mod tls;
pub mod tools;
pub mod v1;

use actix_web::middleware::{Compress, from_fn};
use actix_web::{App, HttpServer, web};
use config::ApiConfig;
use glance_common::context::{AdminRule, ContextBuilder, Service};
use glance_common::location_cipher::LocationCipher;
use glance_common::registry_client::RegistryClient;
use glance_common::workers::{self, Role};
use policy::Policy;
use protections::Protections;
use std::sync::Arc;
use store::{Scheme, Stores};

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<ApiConfig>,
    pub registry: RegistryClient,
    pub stores: Stores,
    pub policy: Policy,
    /// Property protections, when `property_protection_file` is set.
    pub protections: Option<Arc<Protections>>,
    /// The image cache, with the caching flavors.
    pub cache: Option<cache::ImageCache>,
}

impl AppState {
    pub fn new(config: ApiConfig) -> std::io::Result<Self> {
        let registry = RegistryClient::new(&config.registry_host, config.registry_port, config.registry_timeout)
            .map_err(std::io::Error::other)?
            .with_shared_secret(config.auth.shared_secret.clone())
            .with_location_cipher(
                config
                    .metadata_encryption_key
                    .as_ref()
                    .map(|key| LocationCipher::new(&key.0))
                    .transpose()
                    .map_err(std::io::Error::other)?,
            );
        // Created by glance-api at start-up (`run`), not by the tools that share this state.
        let fs = store::fs::FsStore::existing(&config.filesystem_store_datadir);
        // User-supplied URLs must not reach the registry (it trusts API nodes) or this API.
        let denied = store::http::Denied {
            endpoints: vec![
                (config.registry_host.clone(), config.registry_port),
                (config.server.bind_host.clone(), config.server.bind_port),
            ],
        };
        let http = store::http::HttpStore::new(denied).map_err(std::io::Error::other)?;
        let policy =
            Policy::load(config.policy_file.clone(), &config.policy_default_rule).map_err(std::io::Error::other)?;
        let protections = match &config.property_protection {
            Some((file, format)) => Some(Arc::new(Protections::load(file, *format).map_err(std::io::Error::other)?)),
            None => None,
        };
        let swift = match &config.swift {
            Some(options) => Some(store::swift::SwiftStore::new(options.clone()).map_err(std::io::Error::other)?),
            None => None,
        };
        let s3 = match &config.s3 {
            Some(options) => Some(store::s3::S3Store::new(options.clone()).map_err(std::io::Error::other)?),
            None => None,
        };
        let stores =
            Stores { fs, http, swift, s3, default_scheme: config.default_store.clone(), caller: Default::default() };
        let cache = match (&config.image_cache_dir, config.cache_mode) {
            (Some(dir), mode) if mode != cache::CacheMode::Off => Some(
                cache::ImageCache::open(dir, &config.image_cache_sqlite_db, config.image_cache_driver)
                    .map_err(std::io::Error::other)?,
            ),
            _ => None,
        };
        Ok(Self { config: Arc::new(config), registry, stores, policy, protections, cache })
    }

    /// The store uploads go to unless the request names one.
    pub fn default_scheme(&self) -> Scheme {
        Scheme::parse(&self.stores.default_scheme).unwrap_or(Scheme::File)
    }
}

/// Serves the API until SIGTERM.
pub async fn run(config: ApiConfig, role: Role) -> std::io::Result<()> {
    std::fs::create_dir_all(&config.filesystem_store_datadir).map_err(|e| {
        std::io::Error::other(format!("filesystem_store_datadir {}: {e}", config.filesystem_store_datadir.display()))
    })?;
    let state = AppState::new(config.clone())?;
    let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
    let admin_rule: Arc<dyn AdminRule> = Arc::new(state.policy.clone());
    let context =
        ContextBuilder::new(config.auth.clone(), Service::Api, Some(admin_rule)).map_err(std::io::Error::other)?;
    let context = web::Data::new(context);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .app_data(context.clone())
            .app_data(glance_common::server::path_config())
            // Outermost first in the request's path: negotiation (as Glance's pipeline), then context.
            .wrap(from_fn(glance_common::server::request_context))
            .wrap(from_fn(routes::versions::negotiation))
            .wrap(Compress::default())
            .configure(routes::configure)
    })
    .workers(workers::threads(config.server.workers))
    .shutdown_timeout(10)
    // Longer than the registry client's pool idle timeout (30 s): the server never closes a
    // keep-alive connection that a client is about to reuse.
    .keep_alive(std::time::Duration::from_secs(75));
    let listener = workers::listen(&config.server.bind_host, config.server.bind_port, role == Role::Worker)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let server = match tls {
        Some(tls) => server.listen_rustls_0_23(listener, tls)?,
        None => server.listen(listener)?,
    };
    for addr in server.addrs() {
        log::info!("glance-api listening on {scheme}://{addr}, registry at {}", config.registry_url());
    }
    let server = if role == Role::Worker { server.disable_signals() } else { server };
    glance_common::server::run_server(server.run(), role).await
}
