//! glance-manage: `glance-manage --config-file F db_sync` (or `db sync`) and `db_version`.

use clap::Parser;
use glance_common::cli::ConfigArgs;
use glance_common::config::RawConfig;
use glance_registry::config::RegistryConfig;
use glance_registry::db;
use std::process::ExitCode;

/// Manages the Glance registry database.
#[derive(Parser)]
#[command(name = "glance-manage", version)]
struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// `db_sync`, `db sync`, `db_version` or `db version`.
    #[arg(required = true, num_args = 1..=2, value_name = "COMMAND")]
    command: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("glance-manage: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let raw = RawConfig::load(&args.config.config_file)?;
    let config = RegistryConfig::from_raw(&raw)?;
    glance_common::logging::init(&config.server.log)?;
    let command = args.command.join("_");
    let mut conn = config.database.connect().map_err(|e| format!("cannot connect to {:?}: {e}", config.database))?;
    match command.as_str() {
        "db_sync" => {
            let applied = db::migrate(&mut conn)?;
            log::info!("db_sync applied {} migrations to {:?}", applied.len(), config.database);
            Ok(())
        }
        "db_version" => {
            println!("{}", db::current_version(&mut conn)?.unwrap_or_else(|| "0".into()));
            Ok(())
        }
        other => Err(format!("unknown command '{}': use db_sync or db_version", other.replace('_', " ")).into()),
    }
}
