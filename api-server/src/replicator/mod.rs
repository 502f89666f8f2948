//! glance-replicator: copies images and their metadata between glance installations (regions)
//! over the v1 API, directly (`livecopy`) or through a directory (`dump`, then `load`), and
//! reports what differs (`compare`) or what a dump would take (`size`). Glance's commands,
//! options, outputs and exit codes (`glance/cmd/replicator.py`); image bits are streamed.

pub mod cli;
pub mod client;
pub mod commands;
pub mod error;
pub mod logger;
pub mod meta;
pub mod progress;

pub use error::Error;

use clap::{CommandFactory, Parser};
use cli::{Args, COMMANDS, Command, USAGE};
use client::HttpImageService;
use commands::Options;
use progress::Progress;
use std::process::ExitCode;

/// Runs the command line; the binary's `main`.
pub fn main() -> ExitCode {
    // Glance shows its help when called with nothing at all.
    if std::env::args_os().len() <= 1 {
        let _ = Args::command().print_help();
        return ExitCode::SUCCESS;
    }
    let args = Args::parse();
    let Some(name) = args.command.clone() else {
        print_usage();
        return ExitCode::SUCCESS;
    };
    let progress = Progress::on_terminal();
    let target = match logger::init(args.debug, args.verbose, args.logfile.as_deref(), args.syslog, progress.clone()) {
        Ok(target) => target,
        Err(e) => {
            eprintln!("ERROR: cannot log to {}: {e}", args.logfile.as_deref().unwrap_or("".as_ref()).display());
            return ExitCode::FAILURE;
        }
    };
    if name == "help" {
        return help(&args.args);
    }
    let command = match Command::parse(&name, &args.args) {
        Ok(Some(command)) => command,
        Ok(None) => return unknown(&name),
        Err(e) => {
            log::error!("{}", cli::doc(&name).unwrap_or_default());
            eprintln!("ERROR: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match crate::tools::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(run(command, &args, &progress)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            progress.finish();
            // Logged too when the log is not the terminal, so that it tells the whole story.
            if target == logger::Target::Elsewhere {
                log::error!("{e}");
            }
            eprintln!("ERROR: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command against real servers and prints its result.
async fn run(command: Command, args: &Args, progress: &Progress) -> Result<(), Error> {
    let (master_token, slave_token) = args.tokens();
    let options = Options {
        chunksize: usize::try_from(args.chunksize).unwrap_or(usize::MAX),
        dontreplicate: args.dontreplicate(),
        metaonly: args.metaonly,
    };
    match command {
        Command::Size { server } => {
            let client = HttpImageService::new(&server, Some(&slave_token))?;
            let (total, count) = commands::size(&client).await?;
            println!("Total size is {total} bytes across {count} images");
        }
        Command::Dump { server, path } => {
            let client = HttpImageService::new(&server, Some(&master_token))?;
            let dumped = commands::dump(&client, &path, &options, progress).await?;
            log::info!("{} images dumped to {}", dumped.len(), path.display());
        }
        Command::Load { server, path } => {
            let client = HttpImageService::new(&server, Some(&slave_token))?;
            let updated = commands::load(&client, &path, &options, progress).await?;
            log::info!("{} images loaded or updated: {}", updated.len(), updated.join(" "));
        }
        Command::Livecopy { master, slave } => {
            let master = HttpImageService::new(&master, Some(&master_token))?;
            let slave = HttpImageService::new(&slave, Some(&slave_token))?;
            let updated = commands::livecopy(&master, &slave, &options, progress).await?;
            log::info!("{} images copied or updated: {}", updated.len(), updated.join(" "));
        }
        Command::Compare { master, slave } => {
            let master = HttpImageService::new(&master, Some(&master_token))?;
            let slave = HttpImageService::new(&slave, Some(&slave_token))?;
            for (id, difference) in commands::compare(&master, &slave, &options).await? {
                println!("{id}: {difference}");
            }
        }
    }
    Ok(())
}

fn print_usage() {
    println!("Usage: {USAGE}\n\n{COMMANDS}");
}

fn unknown(name: &str) -> ExitCode {
    print_usage();
    eprintln!("Unknown command: {name}");
    ExitCode::FAILURE
}

/// `help <command>`; anything else lists the commands and fails, as Glance's does.
fn help(args: &[String]) -> ExitCode {
    let [name] = args else {
        println!("{COMMANDS}");
        return ExitCode::FAILURE;
    };
    match cli::doc(name) {
        Some(doc) => {
            println!("{doc}");
            ExitCode::SUCCESS
        }
        None => unknown(name),
    }
}
