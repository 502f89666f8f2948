//! glance-registry: `glance-registry --config-file /etc/glance/glance-registry.conf`.

use clap::Parser;
use glance_common::cli::ConfigArgs;
use glance_common::config::RawConfig;
use glance_registry::config::RegistryConfig;
use std::process::ExitCode;

/// The Glance registry server: image metadata over HTTP, backed by SQL.
#[derive(Parser)]
#[command(name = "glance-registry", version)]
struct Args {
    #[command(flatten)]
    config: ConfigArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match RawConfig::load(&args.config.config_file)
        .and_then(|raw| RegistryConfig::from_raw(&raw).map(|config| (raw, config)))
    {
        Ok((raw, config)) => {
            if let Err(e) = glance_common::logging::init(&config.server.log) {
                eprintln!("glance-registry: cannot open the log: {e}");
                return ExitCode::FAILURE;
            }
            let unknown = RegistryConfig::unknown_options(&raw);
            if !unknown.is_empty() {
                log::warn!("ignoring options glance-registry does not use: {}", unknown.join(", "));
            }
            config
        }
        Err(e) => {
            eprintln!("glance-registry: {e}");
            return ExitCode::FAILURE;
        }
    };
    log::debug!(
        "configuration: bind {}:{}, workers {}, database {:?}, db_auto_create {}, flavor {:?}, api_limit_max {}, \
         limit_param_default {}",
        config.server.bind_host,
        config.server.bind_port,
        config.server.workers,
        config.database,
        config.db_auto_create,
        config.context.flavor,
        config.limits.max,
        config.limits.default
    );
    match actix_web::rt::System::new().block_on(glance_registry::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("glance-registry stopped: {e}");
            eprintln!("glance-registry: {e}");
            ExitCode::FAILURE
        }
    }
}
