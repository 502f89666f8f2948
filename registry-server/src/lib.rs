//! glance-registry: the only owner of the SQL database. API nodes reach it over HTTP with
//! `glance_common::registry_client`.

pub mod config;
pub mod db;
pub mod routes;

use actix_web::{App, HttpServer, middleware::from_fn, web};
use config::RegistryConfig;
use db::Db;
use glance_common::context::{AuthFlavor, ContextBuilder, Service};
use glance_common::workers::{self, Role};
use std::sync::Arc;

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<RegistryConfig>,
}

/// Checks the database and, with `db_auto_create`, migrates it. Runs once per service (in the
/// supervisor when there are workers), before anything serves.
pub fn prepare(config: &RegistryConfig) -> std::io::Result<()> {
    let db = Db::new(&config.database, &config.pool);
    let prepared = db.check_blocking().and_then(|()| {
        if config.db_auto_create {
            let applied = db.migrate_blocking()?;
            log::info!("auto-created the registry database ({} migrations applied)", applied.len());
        } else {
            log::info!("not auto-creating the registry database");
        }
        Ok(())
    });
    prepared.map_err(|e| std::io::Error::other(format!("database {:?}: {e}", config.database)))
}

/// Serves until SIGTERM (the database was prepared by [`prepare`]).
pub async fn run(config: RegistryConfig, role: Role) -> std::io::Result<()> {
    let db = Db::new(&config.database, &config.pool);
    let state = AppState { db, config: Arc::new(config.clone()) };
    let context = ContextBuilder::new(config.auth.clone(), Service::Registry, None).map_err(std::io::Error::other)?;
    let context = web::Data::new(context);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .app_data(context.clone())
            .app_data(glance_common::server::path_config())
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| glance_common::Error::bad_request(e.to_string()).into()),
            )
            .wrap(from_fn(glance_common::server::request_context))
            .configure(routes::configure)
    })
    .workers(workers::threads(config.server.workers))
    .shutdown_timeout(10)
    // Longer than the registry client's pool idle timeout (30 s): the server never closes a
    // keep-alive connection that a client is about to reuse.
    .keep_alive(std::time::Duration::from_secs(75));
    let server =
        server.listen(workers::listen(&config.server.bind_host, config.server.bind_port, role == Role::Worker)?)?;
    for addr in server.addrs() {
        log::info!("glance-registry listening on http://{addr} ({:?})", config.database);
        let open = config.auth.shared_secret.is_none() && config.auth.flavor != AuthFlavor::Keystone;
        if open && !addr.ip().is_loopback() && role != Role::Worker {
            log::warn!(
                "glance-registry accepts any caller on {addr}: set registry_shared_secret (on the registry and \
                 every API node) or flavor keystone, or keep it on a private network"
            );
        }
    }
    let server = if role == Role::Worker { server.disable_signals() } else { server };
    glance_common::server::run_server(server.run(), role).await
}
