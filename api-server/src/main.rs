//! glance-api: `glance-api --config-file /etc/glance/glance-api.conf`.

use clap::Parser;
use glance_api::config::ApiConfig;
use glance_common::cli::ConfigArgs;
use glance_common::config::RawConfig;
use std::process::ExitCode;

/// The Glance image API server.
#[derive(Parser)]
#[command(name = "glance-api", version)]
struct Args {
    #[command(flatten)]
    config: ConfigArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (raw, config) = match RawConfig::load(&args.config.config_file)
        .and_then(|raw| ApiConfig::from_raw(&raw).map(|config| (raw, config)))
    {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("glance-api: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = glance_common::logging::init(&config.server.log) {
        eprintln!("glance-api: cannot open the log: {e}");
        return ExitCode::FAILURE;
    }
    let unknown = ApiConfig::unknown_options(&raw);
    if !unknown.is_empty() {
        log::warn!("ignoring options glance-api does not use: {}", unknown.join(", "));
    }
    log::debug!(
        "configuration: bind {}:{}, workers {}, registry {}, flavor {:?}",
        config.server.bind_host,
        config.server.bind_port,
        config.server.workers,
        config.registry_url(),
        config.context.flavor
    );
    match actix_web::rt::System::new().block_on(glance_api::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("glance-api stopped: {e}");
            eprintln!("glance-api: {e}");
            ExitCode::FAILURE
        }
    }
}
