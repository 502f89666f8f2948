//! The end-to-end test harness: the Rust counterpart of Glance's functional-test harness.
//!
//! A [`TestEnv`] owns a temp dir and a database of its own (a SQLite file, or a uniquely named
//! PostgreSQL / MariaDB database dropped afterwards). Servers are the real binaries, started
//! with config files written into the temp dir, on free 127.0.0.1 ports; they are stopped with
//! SIGTERM when dropped, and their logs are printed when a test fails.

pub mod bench;
pub mod db;
pub mod http_source;
pub mod keystone;
pub mod process;
pub mod proxy;
pub mod services;
pub mod swift;

pub use db::{Engine, TestDb};
pub use process::{Server, bin_path};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One test's world: a temp dir and a database.
pub struct TestEnv {
    pub db: TestDb,
    dir: tempfile::TempDir,
    /// Options every API of this environment starts with (a store, say).
    api_defaults: Vec<(String, String)>,
}

impl TestEnv {
    /// A fresh environment on `engine`, or `None` (after a loud message) when that engine's
    /// server is not reachable here and `GLANCE_TEST_REQUIRE_SERVICES` is unset. In CI it is
    /// set, and a missing server fails the test.
    pub fn new(engine: Engine) -> Option<Self> {
        let dir = tempfile::Builder::new().prefix("glance-test-").tempdir().expect("create a temp dir");
        let db = TestDb::create(engine, dir.path())?;
        Some(Self { db, dir, api_defaults: Vec::new() })
    }

    /// A SQLite environment whose APIs keep images in the real Swift (`scripts/swift.sh`), in a
    /// container of their own; `None` (loudly) when Swift cannot start outside CI.
    pub fn with_swift() -> Option<Self> {
        let swift = swift::swift()?;
        let mut env = Self::new(Engine::Sqlite)?;
        env.api_defaults = swift.store_options(&format!("glance-{}", uuid::Uuid::new_v4().simple()));
        Some(env)
    }

    /// As [`TestEnv::with_swift`], with the S3 store on Swift's S3 API, in a bucket of its own.
    pub fn with_s3() -> Option<Self> {
        let swift = swift::swift()?;
        let mut env = Self::new(Engine::Sqlite)?;
        env.api_defaults = swift.s3_store_options(&format!("glance-{}", uuid::Uuid::new_v4().simple()));
        Some(env)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the environment's store holds: files (and staging files) in the images
    /// directory, and the objects, segments and multipart parts of its Swift container or
    /// S3 bucket.
    pub async fn stored_objects(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir().join("images"))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let option = |key: &str| self.api_defaults.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let containers = match (option("glance_store.swift_store_container"), option("glance_store.s3_store_bucket")) {
            (Some(container), _) => vec![container],
            (None, Some(bucket)) => vec![format!("{bucket}+segments"), bucket],
            (None, None) => Vec::new(),
        };
        if let (false, Some(swift)) = (containers.is_empty(), swift::swift()) {
            for container in containers {
                names.extend(swift.list(&container, "").await.into_iter().map(|n| format!("{container}/{n}")));
            }
        }
        names
    }

    /// A registry on this environment's database; adjust with [`RegistryBuilder`] methods.
    pub fn registry(&self) -> RegistryBuilder<'_> {
        RegistryBuilder { env: self, options: BTreeMap::new(), sql_connection: None }
    }

    /// A glance-api that talks to `registry`.
    pub fn api(&self, registry: &Server) -> ApiBuilder<'_> {
        ApiBuilder { env: self, registry_port: registry.port, options: BTreeMap::new() }
    }

    /// `<dir>/etc/policy.json`, written with Glance's test policy (everything allowed) on first use.
    pub fn policy_file(&self) -> PathBuf {
        let path = self.dir().join("etc").join("policy.json");
        if !path.exists() {
            std::fs::create_dir_all(path.parent().expect("etc")).expect("etc dir");
            std::fs::write(&path, r#"{"context_is_admin": "role:admin", "default": "", "manage_image_cache": ""}"#)
                .expect("write policy");
        }
        path
    }

    /// Replaces the policy rules, as Glance's `set_policy_rules` does; servers notice the new
    /// mtime on their next request.
    pub fn set_policy_rules(&self, rules: &serde_json::Value) {
        let path = self.policy_file();
        std::fs::write(&path, rules.to_string()).expect("write policy");
        // Make sure the mtime moves even on filesystems with coarse timestamps.
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(2);
        std::fs::File::options().write(true).open(&path).and_then(|f| f.set_modified(later)).expect("touch policy");
    }

    /// Writes a config file into the temp dir and returns its path.
    pub fn write_config(&self, name: &str, sections: &BTreeMap<String, BTreeMap<String, String>>) -> PathBuf {
        let mut text = String::new();
        for (section, options) in sections {
            text.push_str(&format!("[{section}]\n"));
            for (k, v) in options {
                text.push_str(&format!("{k} = {v}\n"));
            }
        }
        let path = self.dir().join(name);
        std::fs::write(&path, text).expect("write config");
        path
    }
}

/// Options for a registry before it starts. Keys are `section.key` (`DEFAULT.debug`).
pub struct RegistryBuilder<'a> {
    env: &'a TestEnv,
    options: BTreeMap<String, String>,
    sql_connection: Option<String>,
}

impl RegistryBuilder<'_> {
    pub fn option(mut self, key: &str, value: &str) -> Self {
        self.options.insert(key.to_string(), value.to_string());
        self
    }

    /// `[paste_deploy] flavor`.
    pub fn flavor(self, flavor: &str) -> Self {
        self.option("paste_deploy.flavor", flavor)
    }

    /// Points the registry at another database URL (a fault proxy, say).
    pub fn sql_connection(mut self, url: &str) -> Self {
        self.sql_connection = Some(url.to_string());
        self
    }

    /// Runs `glance-manage db_sync` (as Glance's harness does), then starts glance-registry and
    /// waits until it listens.
    pub async fn start(self) -> Server {
        let env = self.env;
        let sql = self.sql_connection.clone().unwrap_or_else(|| env.db.sql_connection.clone());
        let defaults = [
            ("DEFAULT.verbose", "True"),
            ("DEFAULT.debug", "True"),
            ("DEFAULT.bind_host", "127.0.0.1"),
            ("DEFAULT.db_auto_create", "False"),
            ("DEFAULT.sql_idle_timeout", "3600"),
            ("DEFAULT.api_limit_max", "1000"),
            ("DEFAULT.limit_param_default", "25"),
            ("DEFAULT.owner_is_tenant", "True"),
            ("DEFAULT.workers", "0"),
            ("database.pool_timeout", "2"),
            ("paste_deploy.flavor", ""),
        ];
        let log_file = env.dir().join("registry.log");
        let mut options: BTreeMap<String, String> =
            defaults.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        options.insert("DEFAULT.sql_connection".into(), sql.clone());
        options.insert("DEFAULT.log_file".into(), log_file.display().to_string());
        options.extend(self.options);
        let mut sections = sections_of(options);
        let manage_conf = env.write_config(
            "glance-manage.conf",
            &BTreeMap::from([("DEFAULT".to_string(), BTreeMap::from([("sql_connection".to_string(), sql)]))]),
        );
        if sections["DEFAULT"]["db_auto_create"] == "False" {
            // Off the runtime thread: the database may sit behind a FaultProxy served by this runtime.
            let manage = bin_path("glance-manage");
            tokio::task::spawn_blocking(move || {
                process::run_ok(&manage, &["--config-file", manage_conf.to_str().expect("utf-8 path"), "db_sync"])
            })
            .await
            .expect("glance-manage db_sync");
        }
        Server::start("glance-registry", env.dir(), log_file, |port| {
            sections.get_mut("DEFAULT").expect("DEFAULT").insert("bind_port".into(), port.to_string());
            env.write_config("glance-registry.conf", &sections)
        })
        .await
    }
}

/// Options for an API server before it starts. Keys are `section.key`.
pub struct ApiBuilder<'a> {
    env: &'a TestEnv,
    registry_port: u16,
    options: BTreeMap<String, String>,
}

impl ApiBuilder<'_> {
    pub fn option(mut self, key: &str, value: &str) -> Self {
        self.options.insert(key.to_string(), value.to_string());
        self
    }

    pub async fn start(self) -> Server {
        let env = self.env;
        let log_file = env.dir().join("api.log");
        let mut options: BTreeMap<String, String> = [
            ("DEFAULT.verbose", "True"),
            ("DEFAULT.debug", "True"),
            ("DEFAULT.bind_host", "127.0.0.1"),
            ("DEFAULT.registry_host", "127.0.0.1"),
            ("DEFAULT.workers", "0"),
            ("paste_deploy.flavor", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        options.insert("DEFAULT.registry_port".into(), self.registry_port.to_string());
        options.insert("DEFAULT.log_file".into(), log_file.display().to_string());
        // As Glance's functional tests configure their API server.
        options.insert("DEFAULT.filesystem_store_datadir".into(), env.dir().join("images").display().to_string());
        options.insert("DEFAULT.default_store".into(), "file".into());
        options.insert("DEFAULT.image_member_quota".into(), "10".into());
        options.insert("DEFAULT.image_property_quota".into(), "10".into());
        options.insert("DEFAULT.policy_file".into(), env.policy_file().display().to_string());
        options.insert("DEFAULT.policy_default_rule".into(), "default".into());
        options.extend(env.api_defaults.iter().cloned());
        options.extend(self.options);
        let mut sections = sections_of(options);
        Server::start("glance-api", env.dir(), log_file, |port| {
            sections.get_mut("DEFAULT").expect("DEFAULT").insert("bind_port".into(), port.to_string());
            env.write_config("glance-api.conf", &sections)
        })
        .await
    }
}

/// `section.key → value` as INI sections.
fn sections_of(options: BTreeMap<String, String>) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (key, value) in options {
        let (section, key) = key.split_once('.').expect("options are section.key");
        sections.entry(section.to_string()).or_default().insert(key.to_string(), value);
    }
    sections
}

/// Declares each listed `async fn name(env: TestEnv)` once more with the API on the Swift
/// store: `swift_store::name`.
#[macro_export]
macro_rules! swift_store_tests {
    ($($name:ident),* $(,)?) => {
        mod swift_store {
            $( #[tokio::test] async fn $name() { if let Some(env) = $crate::TestEnv::with_swift() { super::$name(env).await } } )*
        }
    };
}

/// Declares each listed `async fn name(env: TestEnv)` once more with the API on the S3 store:
/// `s3_store::name`.
#[macro_export]
macro_rules! s3_store_tests {
    ($($name:ident),* $(,)?) => {
        mod s3_store {
            $( #[tokio::test] async fn $name() { if let Some(env) = $crate::TestEnv::with_s3() { super::$name(env).await } } )*
        }
    };
}

/// [`engine_tests!`], [`swift_store_tests!`] and [`s3_store_tests!`] for the same tests.
#[macro_export]
macro_rules! engine_and_store_tests {
    ($($name:ident),* $(,)?) => {
        $crate::engine_tests!($($name),*);
        $crate::swift_store_tests!($($name),*);
        $crate::s3_store_tests!($($name),*);
    };
}

/// Declares each listed `async fn name(env: TestEnv)` once per engine:
/// `sqlite::name`, `postgres::name` and `mysql::name`.
#[macro_export]
macro_rules! engine_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { if let Some(env) = $crate::TestEnv::new($crate::Engine::Sqlite) { super::$name(env).await } } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { if let Some(env) = $crate::TestEnv::new($crate::Engine::Postgres) { super::$name(env).await } } )*
        }
        mod mysql {
            $( #[tokio::test] async fn $name() { if let Some(env) = $crate::TestEnv::new($crate::Engine::Mysql) { super::$name(env).await } } )*
        }
    };
}
