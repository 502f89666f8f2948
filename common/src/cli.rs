//! Command-line arguments every glance-rs server takes, as oslo.config spells them.

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Path to a config file; may be repeated, later files override earlier ones.
    #[arg(long = "config-file", value_name = "PATH")]
    pub config_file: Vec<PathBuf>,
}
