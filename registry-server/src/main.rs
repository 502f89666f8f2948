//! glance-registry: `glance-registry --config-file /etc/glance/glance-registry.conf`.

use clap::Parser;
use glance_common::cli::ConfigArgs;
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
    glance_common::server::main(
        "glance-registry",
        &args.config.config_file,
        RegistryConfig::from_raw,
        |c| &c.server,
        RegistryConfig::unknown_options,
        glance_registry::prepare,
        |config, role| {
            log::debug!(
                "database {:?}, db_auto_create {}, flavor {:?}, api_limit_max {}, limit_param_default {}",
                config.database,
                config.db_auto_create,
                config.auth.flavor,
                config.limits.max,
                config.limits.default
            );
            actix_web::rt::System::new().block_on(glance_registry::run(config, role))
        },
    )
}
