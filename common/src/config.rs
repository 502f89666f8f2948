//! Glance's oslo.config INI files, read with the `config` crate.
//!
//! `--config-file` may be given several times; later files win, then environment variables
//! of the form `GLANCE__<SECTION>__<KEY>` (for example `GLANCE__DEFAULT__BIND_PORT=9292`).
//! Options are looked up by `(section, key)`, case-insensitively. A value that does not parse
//! stops start-up with an error naming the option; an option nobody reads is only a warning,
//! because real glance-*.conf files carry many options for other services.

use config::{Config, Environment, File, FileFormat, Map, Value, ValueKind};
use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub const DEFAULT_SECTION: &str = "default";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("invalid value {value:?} for option [{section}] {key}: {message}")]
    Invalid { section: String, key: String, value: String, message: String },
}

/// Every option set by the config files and the environment, flattened to strings.
#[derive(Debug, Clone, Default)]
pub struct RawConfig {
    values: BTreeMap<(String, String), String>,
    files: Vec<PathBuf>,
}

impl RawConfig {
    /// Reads `files` in order (later ones override earlier ones), then the environment.
    pub fn load(files: &[PathBuf]) -> Result<Self, ConfigError> {
        let mut raw = Self { files: files.to_vec(), ..Self::default() };
        for path in files {
            let config = Config::builder()
                .add_source(File::from(path.as_path()).format(FileFormat::Ini).required(true))
                .build()
                .map_err(|e| ConfigError::File { path: path.clone(), message: e.to_string() })?;
            let table = config
                .try_deserialize::<Map<String, Value>>()
                .map_err(|e| ConfigError::File { path: path.clone(), message: e.to_string() })?;
            raw.merge(table);
        }
        let env = Config::builder()
            .add_source(Environment::with_prefix("GLANCE").prefix_separator("__").separator("__"))
            .build()
            .and_then(|c| c.try_deserialize::<Map<String, Value>>())
            .unwrap_or_default();
        raw.merge(env);
        Ok(raw)
    }

    /// A configuration built from literal `(section, key, value)` triples (tests, tools).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>) -> Self {
        let mut raw = Self::default();
        for (section, key, value) in pairs {
            raw.set(section, key, value);
        }
        raw
    }

    pub fn set(&mut self, section: &str, key: &str, value: &str) {
        self.values.insert((section.to_lowercase(), key.to_lowercase()), value.to_string());
    }

    fn merge(&mut self, table: Map<String, Value>) {
        for (name, value) in table {
            match value.kind {
                ValueKind::Table(options) => {
                    for (key, value) in options {
                        self.set(&name, &key, &value_text(value));
                    }
                }
                // Options before any section header belong to [DEFAULT], as in oslo.config.
                other => self.set(DEFAULT_SECTION, &name, &value_text(Value::from(other))),
            }
        }
    }

    /// The directory of the last config file: where Glance looks for policy.json and friends.
    pub fn config_dir(&self) -> Option<&Path> {
        self.files.last().and_then(|f| f.parent())
    }

    /// A path option; relative paths resolve against [`RawConfig::config_dir`].
    pub fn path(&self, section: &str, key: &str) -> Option<PathBuf> {
        let value = PathBuf::from(self.string(section, key)?);
        match self.config_dir() {
            Some(dir) if value.is_relative() => Some(dir.join(value)),
            _ => Some(value),
        }
    }

    /// The raw text of an option, if it is set.
    pub fn text(&self, section: &str, key: &str) -> Option<&str> {
        self.values.get(&(section.to_lowercase(), key.to_lowercase())).map(String::as_str)
    }

    /// The option parsed as `T`, or `default` when unset or empty.
    pub fn get<T>(&self, section: &str, key: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.text(section, key).map(str::trim) {
            None | Some("") => Ok(default),
            Some(v) => v.parse().map_err(|e: T::Err| self.invalid(section, key, v, e)),
        }
    }

    /// A string option; empty means unset.
    pub fn string(&self, section: &str, key: &str) -> Option<String> {
        self.text(section, key).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
    }

    /// A boolean as oslo.config reads it: true/false, 1/0, yes/no, on/off (any case).
    pub fn bool(&self, section: &str, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.text(section, key).map(|v| v.trim().to_lowercase()) {
            None => Ok(default),
            Some(v) if v.is_empty() => Ok(default),
            Some(v) => match v.as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(self.invalid(section, key, &v, "expected True or False")),
            },
        }
    }

    pub fn invalid(&self, section: &str, key: &str, value: &str, message: impl Display) -> ConfigError {
        ConfigError::Invalid {
            section: section.to_string(),
            key: key.to_string(),
            value: value.to_string(),
            message: message.to_string(),
        }
    }

    /// Options present in the files that are not in `known` (lower-case `(section, key)`).
    pub fn unknown(&self, known: &[(&str, &str)]) -> Vec<String> {
        self.values
            .keys()
            .filter(|(s, k)| !known.iter().any(|(ks, kk)| ks == s && kk == k))
            .map(|(s, k)| format!("[{s}] {k}"))
            .collect()
    }
}

fn value_text(value: Value) -> String {
    match value.kind {
        ValueKind::Nil => String::new(),
        _ => value.into_string().unwrap_or_default(),
    }
}

/// Options every server shares: where it listens and how it logs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub bind_host: String,
    pub bind_port: u16,
    /// Worker processes (see `workers`); `0` serves from this process.
    pub workers: usize,
    pub log: LogOptions,
}

/// `debug`, `verbose` and `log_file`, as in oslo.log.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub debug: bool,
    pub verbose: bool,
    pub log_file: Option<PathBuf>,
}

pub const SERVER_KEYS: &[(&str, &str)] = &[
    ("default", "bind_host"),
    ("default", "bind_port"),
    ("default", "workers"),
    ("default", "debug"),
    ("default", "verbose"),
    ("default", "log_file"),
    ("default", "log_dir"),
];

impl ServerOptions {
    pub fn from_raw(raw: &RawConfig, default_port: u16) -> Result<Self, ConfigError> {
        let d = DEFAULT_SECTION;
        let workers = raw.get::<i64>(d, "workers", 0)?;
        if workers < 0 {
            return Err(raw.invalid(d, "workers", &workers.to_string(), "must be >= 0"));
        }
        Ok(Self {
            bind_host: raw.string(d, "bind_host").unwrap_or_else(|| "0.0.0.0".into()),
            bind_port: raw.get(d, "bind_port", default_port)?,
            workers: workers as usize,
            log: LogOptions::from_raw(raw)?,
        })
    }
}

impl LogOptions {
    pub fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        let d = DEFAULT_SECTION;
        let log_file = raw.string(d, "log_file").map(PathBuf::from).map(|file| match raw.string(d, "log_dir") {
            Some(dir) if file.is_relative() => Path::new(&dir).join(file),
            _ => file,
        });
        Ok(Self { debug: raw.bool(d, "debug", false)?, verbose: raw.bool(d, "verbose", false)?, log_file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".conf").tempfile().expect("temp file");
        f.write_all(text.as_bytes()).expect("write");
        f
    }

    #[test]
    fn later_files_win_and_sections_are_case_insensitive() {
        let a = file("[DEFAULT]\nbind_port = 9191\ndebug = True\nkey_file = \n[paste_deploy]\nflavor=\n");
        let b = file("[DEFAULT]\nbind_port=9999\n");
        let raw = RawConfig::load(&[a.path().into(), b.path().into()]).expect("load");
        assert_eq!(raw.get::<u16>("DEFAULT", "bind_port", 1).expect("port"), 9999);
        assert!(raw.bool("default", "debug", false).expect("bool"));
        assert_eq!(raw.string("paste_deploy", "flavor"), None);
        assert_eq!(raw.string("default", "key_file"), None);
    }

    #[test]
    fn a_bad_value_names_the_option() {
        let raw = RawConfig::from_pairs([("DEFAULT", "bind_port", "nine")]);
        let err = raw.get::<u16>("DEFAULT", "bind_port", 1).unwrap_err().to_string();
        assert!(err.contains("bind_port") && err.contains("nine"), "{err}");
        let raw = RawConfig::from_pairs([("DEFAULT", "debug", "maybe")]);
        assert!(raw.bool("DEFAULT", "debug", false).unwrap_err().to_string().contains("debug"));
    }

    #[test]
    fn unknown_options_are_listed() {
        let raw =
            RawConfig::from_pairs([("DEFAULT", "bind_port", "1"), ("DEFAULT", "swift_store_admin_tenants", "[]")]);
        assert_eq!(raw.unknown(SERVER_KEYS), vec!["[default] swift_store_admin_tenants".to_string()]);
    }

    #[test]
    fn a_missing_file_is_an_error() {
        assert!(RawConfig::load(&[PathBuf::from("/nonexistent/glance.conf")]).is_err());
    }
}
