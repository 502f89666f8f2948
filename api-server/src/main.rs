//! glance-api: `glance-api --config-file /etc/glance/glance-api.conf`.

use clap::Parser;
use glance_api::config::ApiConfig;
use glance_common::cli::ConfigArgs;
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
    glance_common::server::main(
        "glance-api",
        &args.config.config_file,
        ApiConfig::from_raw,
        |c| &c.server,
        ApiConfig::unknown_options,
        |_| Ok(()),
        |config, role| {
            log::debug!(
                "registry {}, flavor {:?}, default_store {}, filesystem_store_datadir {}, image_size_cap {}, tls {}",
                config.registry_url(),
                config.auth.flavor,
                config.default_store,
                config.filesystem_store_datadir.display(),
                config.image_size_cap,
                config.tls.is_some()
            );
            actix_web::rt::System::new().block_on(glance_api::run(config, role))
        },
    )
}
