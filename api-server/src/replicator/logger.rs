//! The replicator's logging, as Glance's: bare messages (Python's default formatter) to stdout,
//! to `--logfile` (re-opened when rotated) or to syslog (`--syslog`); WARNING by default, INFO
//! with `--verbose`, DEBUG with `--debug`. Other crates' records show from WARNING only.

use super::progress::Progress;
use glance_common::logging::WatchedFile;
use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Mutex;

enum Sink {
    Stdout,
    File(WatchedFile),
    Syslog(UnixDatagram),
}

struct Logger {
    level: LevelFilter,
    sink: Mutex<Sink>,
    progress: Progress,
}

/// Where the lines go. `Stdout` means errors also printed to stderr are not repeated there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    Stdout,
    Elsewhere,
}

/// Installs the logger; call once.
pub fn init(
    debug: bool,
    verbose: bool,
    logfile: Option<&Path>,
    syslog: bool,
    progress: Progress,
) -> io::Result<Target> {
    let level = if debug {
        LevelFilter::Debug
    } else if verbose {
        LevelFilter::Info
    } else {
        LevelFilter::Warn
    };
    let sink = if syslog {
        match connect_syslog() {
            Ok(socket) => Sink::Syslog(socket),
            Err(e) => {
                eprintln!("WARNING: cannot log to syslog (/dev/log: {e}); logging to stdout");
                Sink::Stdout
            }
        }
    } else if let Some(path) = logfile.filter(|p| !p.as_os_str().is_empty()) {
        Sink::File(WatchedFile::open(path)?)
    } else {
        Sink::Stdout
    };
    let target = if matches!(sink, Sink::Stdout) { Target::Stdout } else { Target::Elsewhere };
    log::set_boxed_logger(Box::new(Logger { level, sink: Mutex::new(sink), progress })).map_err(io::Error::other)?;
    log::set_max_level(level.max(LevelFilter::Warn));
    Ok(target)
}

fn connect_syslog() -> io::Result<UnixDatagram> {
    let socket = UnixDatagram::unbound()?;
    socket.connect("/dev/log")?;
    Ok(socket)
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        let limit = if metadata.target().starts_with("glance") { self.level } else { LevelFilter::Warn };
        metadata.level() <= limit
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let Ok(mut sink) = self.sink.lock() else { return };
        let message = record.args().to_string();
        // A log line that cannot be written has nowhere else to go.
        let _ = self.progress.suspend(|| match &mut *sink {
            Sink::Stdout => writeln!(io::stdout().lock(), "{message}"),
            Sink::File(file) => writeln!(file, "{message}"),
            // User facility (1 << 3) plus the syslog severity.
            Sink::Syslog(socket) => {
                let severity = match record.level() {
                    Level::Error => 3,
                    Level::Warn => 4,
                    Level::Info => 6,
                    Level::Debug | Level::Trace => 7,
                };
                socket.send(format!("<{}>glance-replicator: {message}", 8 + severity).as_bytes()).map(drop)
            }
        });
    }

    fn flush(&self) {
        if let Ok(mut sink) = self.sink.lock() {
            let _ = match &mut *sink {
                Sink::Stdout => io::stdout().flush(),
                Sink::File(file) => file.flush(),
                Sink::Syslog(_) => Ok(()),
            };
        }
    }
}
