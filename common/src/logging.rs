//! Logging through `log` + env_logger, in oslo.log's line format:
//! `<date> <time>.<ms> <pid> <LEVEL> <logger> [<request id>] <message>`.
//!
//! `debug = True` logs glance-rs at DEBUG, `verbose = True` at INFO, otherwise WARNING (as
//! oslo.log did); `RUST_LOG` overrides both. With `log_file` the lines go to that file, which
//! is re-opened when it is moved away (logrotate), as Python's WatchedFileHandler does.
//! A line about a request carries its id: `log::info!(req = ctx.request_id.as_str(); "...")`.

use crate::config::LogOptions;
use log::LevelFilter;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Installs the global logger; call once, first thing in `main`.
pub fn init(opts: &LogOptions) -> io::Result<()> {
    let level = if opts.debug {
        LevelFilter::Debug
    } else if opts.verbose {
        LevelFilter::Info
    } else {
        LevelFilter::Warn
    };
    let mut builder = env_logger::Builder::new();
    builder.filter_level(LevelFilter::Warn);
    // Every glance-rs crate and binary (glance_api, glance_scrubber, glance_cache_pruner…):
    // module filters match by prefix.
    builder.filter_module("glance", level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    let pid = std::process::id();
    builder.format(move |out, record| {
        let now = chrono::Local::now();
        let mut request = None;
        let _ = record.key_values().visit(&mut RequestId(&mut request));
        writeln!(
            out,
            "{} {} {} {} [{}] {}",
            now.format("%Y-%m-%d %H:%M:%S%.3f"),
            pid,
            level_name(record.level()),
            logger_name(record.target()),
            request.as_deref().unwrap_or("-"),
            record.args()
        )
    });
    if let Some(path) = &opts.log_file {
        builder.target(env_logger::Target::Pipe(Box::new(WatchedFile::open(path)?)));
    } else {
        builder.target(env_logger::Target::Stderr);
    }
    builder.try_init().map_err(io::Error::other)
}

fn level_name(level: log::Level) -> &'static str {
    match level {
        log::Level::Error => "ERROR",
        log::Level::Warn => "WARNING",
        log::Level::Info => "INFO",
        log::Level::Debug => "DEBUG",
        log::Level::Trace => "TRACE",
    }
}

/// `glance_registry::db::queries` → `glance.registry.db.queries`, the dotted names Glance's
/// log filters expect.
pub fn logger_name(target: &str) -> String {
    let dotted = target.replace("::", ".");
    match dotted.strip_prefix("glance_") {
        Some(rest) => format!("glance.{rest}"),
        None => dotted,
    }
}

struct RequestId<'a>(&'a mut Option<String>);

impl<'kvs> log::kv::VisitSource<'kvs> for RequestId<'_> {
    fn visit_pair(&mut self, key: log::kv::Key<'kvs>, value: log::kv::Value<'kvs>) -> Result<(), log::kv::Error> {
        if key.as_str() == "req" {
            *self.0 = Some(value.to_string());
        }
        Ok(())
    }
}

/// A log file that is re-opened when it is renamed or deleted under us.
pub struct WatchedFile {
    path: PathBuf,
    file: File,
    id: (u64, u64),
}

impl WatchedFile {
    pub fn open(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let meta = file.metadata()?;
        Ok(Self { path: path.to_path_buf(), file, id: (meta.dev(), meta.ino()) })
    }

    fn reopen_if_moved(&mut self) {
        let moved = match std::fs::metadata(&self.path) {
            Ok(meta) => (meta.dev(), meta.ino()) != self.id,
            Err(_) => true,
        };
        if moved && let Ok(fresh) = Self::open(&self.path) {
            *self = fresh;
        }
    }
}

impl Write for WatchedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.reopen_if_moved();
        self.file.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logger_names_are_dotted() {
        assert_eq!(logger_name("glance_registry::db::queries"), "glance.registry.db.queries");
        assert_eq!(logger_name("actix_server::builder"), "actix_server.builder");
    }

    #[test]
    fn a_moved_log_file_is_recreated() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("api.log");
        let mut file = WatchedFile::open(&path).expect("open");
        file.write_all(b"one\n").expect("write");
        std::fs::rename(&path, dir.path().join("api.log.1")).expect("rename");
        file.write_all(b"two\n").expect("write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "two\n");
        assert_eq!(std::fs::read_to_string(dir.path().join("api.log.1")).expect("read"), "one\n");
    }
}
