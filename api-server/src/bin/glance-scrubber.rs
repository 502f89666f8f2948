//! glance-scrubber: deletes the data of images removed with `delayed_delete` once their
//! `scrub_time` has passed, and marks them `deleted`. One pass and exit by default; with
//! `daemon = True` (or `--daemon`) a pass every `wakeup_time` seconds until SIGTERM.
//! `glance-scrubber --config-file /etc/glance/glance-scrubber.conf [--daemon]`.

use clap::Parser;
use glance_api::config::ApiConfig;
use glance_api::scrubber::{Scrubber, ScrubberOptions};
use glance_common::cli::ConfigArgs;
use glance_common::config::RawConfig;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "glance-scrubber", about = "Deletes the data of images in pending_delete once it is due")]
struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Run as a long-lived daemon (overrides `daemon` in the config).
    #[arg(short = 'D', long)]
    daemon: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    glance_api::tools::main(
        "glance-scrubber",
        || {
            let raw = RawConfig::load(&args.config.config_file).map_err(|e| e.to_string())?;
            let config = ApiConfig::from_raw(&raw).map_err(|e| e.to_string())?;
            let mut options = ScrubberOptions::from_raw(&raw).map_err(|e| e.to_string())?;
            options.daemon |= args.daemon;
            glance_common::logging::init(&config.server.log).map_err(|e| format!("cannot open the log: {e}"))?;
            Ok((config, options))
        },
        |(config, options)| run(config, options),
    )
}

async fn run(config: ApiConfig, options: ScrubberOptions) -> Result<(), String> {
    let state = glance_api::AppState::new(config).map_err(|e| e.to_string())?;
    let scrubber = Scrubber::new(state, &options)?;
    log::debug!("glance-scrubber {} starting (daemon: {})", scrubber.worker(), options.daemon);
    if !options.daemon {
        let report = scrubber.run_once().await.map_err(|e| e.to_string())?;
        log::info!("scrub pass: {report:?}");
        return Ok(());
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    loop {
        // A failed pass (registry away) is retried at the next wakeup; the daemon stays up.
        match scrubber.run_once().await {
            Ok(report) => log::info!("scrub pass: {report:?}"),
            Err(e) => log::error!("scrub pass failed, retrying in {:?}: {e}", options.wakeup_time),
        }
        // A signal during a pass ends the daemon after it: claimed jobs are never abandoned.
        tokio::select! {
            _ = tokio::time::sleep(options.wakeup_time) => {}
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    log::info!("glance-scrubber stopping");
    Ok(())
}
