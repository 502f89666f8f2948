//! glance-manage, start-up, configuration, signals and logs.

use super::Http;
use glance_tests::process::run_ok;
use glance_tests::{TestEnv, bin_path, engine_tests};
use std::collections::BTreeMap;
use std::process::Command;

engine_tests!(db_sync_is_idempotent, auto_create_without_manage);

fn conf(pairs: &[(&str, &str, &str)]) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (section, key, value) in pairs {
        sections.entry(section.to_string()).or_default().insert(key.to_string(), value.to_string());
    }
    sections
}

async fn db_sync_is_idempotent(env: TestEnv) {
    let path = env.write_config("glance-manage.conf", &conf(&[("DEFAULT", "sql_connection", &env.db.sql_connection)]));
    let manage = bin_path("glance-manage");
    let conf = path.to_str().expect("utf-8");
    assert_eq!(run_ok(&manage, &["--config-file", conf, "db_version"]).trim(), "0");
    run_ok(&manage, &["--config-file", conf, "db_sync"]);
    run_ok(&manage, &["--config-file", conf, "db_sync"]);
    run_ok(&manage, &["--config-file", conf, "db", "sync"]);
    let version = run_ok(&manage, &["--config-file", conf, "db", "version"]);
    // The newest migration of the tree: `<date>-<serial>_<name>` → `<date><serial>`.
    let newest = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../registry-server/migrations/sqlite"))
        .expect("migrations")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .max()
        .expect("a migration");
    let expected: String = newest.split('_').next().expect("version").chars().filter(char::is_ascii_digit).collect();
    assert_eq!(version.trim(), expected);
    let out = Command::new(&manage).args(["--config-file", conf, "db_explode"]).output().expect("spawn");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown command"));
}

async fn auto_create_without_manage(env: TestEnv) {
    let reg = env.registry().option("DEFAULT.db_auto_create", "True").start().await;
    let http = Http::new(reg.url());
    http.create(serde_json::json!({"name": "x"})).await;
}

#[test]
fn sqlite_schema_has_glance_tables_without_bigint() {
    let env = TestEnv::new(glance_tests::Engine::Sqlite).expect("sqlite");
    let path = env.write_config("glance-manage.conf", &conf(&[("DEFAULT", "sql_connection", &env.db.sql_connection)]));
    run_ok(&bin_path("glance-manage"), &["--config-file", path.to_str().expect("utf-8"), "db_sync"]);
    let out = Command::new("python3")
        .args(["-c", "import sqlite3,sys; print('\\n'.join(r[0] for r in sqlite3.connect(sys.argv[1]).execute(\"select sql from sqlite_master where sql is not null\")))"])
        .arg(env.dir().join("tests.sqlite"))
        .output();
    let Some(out) = out.ok().filter(|o| o.status.success()) else {
        eprintln!("python3 with sqlite3 not available; the schema is also checked by the registry's unit tests");
        return;
    };
    let ddl = String::from_utf8_lossy(&out.stdout);
    for table in ["images", "image_tags", "image_locations", "image_members", "image_properties", "tasks", "task_info"]
    {
        assert!(ddl.contains(&format!("CREATE TABLE {table} ")), "{table} missing from:\n{ddl}");
    }
    assert!(!ddl.to_uppercase().contains("BIGINT"), "{ddl}");
}

#[tokio::test]
async fn bad_config_stops_start_up_naming_the_key() {
    let env = TestEnv::new(glance_tests::Engine::Sqlite).expect("sqlite");
    for (key, value, expect) in [
        ("bind_port", "ninety", "bind_port"),
        ("debug", "perhaps", "debug"),
        ("sql_connection", "oracle://scott:tiger@db/x", "sql_connection"),
        ("api_limit_max", "-3", "api_limit_max"),
    ] {
        let path = env.write_config("bad.conf", &conf(&[("DEFAULT", key, value)]));
        let out = Command::new(bin_path("glance-registry")).arg("--config-file").arg(&path).output().expect("spawn");
        assert!(!out.status.success(), "{key}={value} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "{key}: {stderr}");
        assert!(!stderr.contains("tiger"), "a password reached the output: {stderr}");
    }
    let path = env.write_config("flavor.conf", &conf(&[("paste_deploy", "flavor", "warp-drive")]));
    let out = Command::new(bin_path("glance-registry")).arg("--config-file").arg(&path).output().expect("spawn");
    assert!(String::from_utf8_lossy(&out.stderr).contains("flavor"));
}

#[tokio::test]
async fn logs_follow_debug_verbose_and_log_rotation() {
    let env = TestEnv::new(glance_tests::Engine::Sqlite).expect("sqlite");
    // debug = True: a DEBUG glance line is written before the port listens.
    let mut reg = env.registry().option("DEFAULT.swift_store_admin_tenants", "[]").start().await;
    let log = std::fs::read_to_string(&reg.log_file).expect("log");
    assert!(log.lines().any(|l| l.contains(" DEBUG glance.")), "{log}");
    assert!(log.contains("swift_store_admin_tenants"), "unknown options are warned about: {log}");
    let line = log.lines().next().expect("a line");
    let fields: Vec<&str> = line.splitn(6, ' ').collect();
    assert_eq!(fields[2], reg.pid().to_string(), "line format: <date> <time> <pid> <LEVEL> <logger> ...: {line}");

    // The log file moved away is re-created by the next request.
    let moved = env.dir().join("registry.log.1");
    std::fs::rename(&reg.log_file, &moved).expect("rename");
    let http = Http::new(reg.url());
    http.get("/images").await.expect(200);
    let fresh = std::fs::read_to_string(&reg.log_file).expect("re-created log");
    assert!(fresh.contains("GET /images"), "{fresh}");
    // Request lines carry the request id the response announced.
    let reply = reqwest::get(format!("{}/images", reg.url())).await.expect("get");
    let id = reply.headers()["x-openstack-request-id"].to_str().expect("id").to_string();
    assert!(id.starts_with("req-"));
    let _ = reg.stop();
    assert!(std::fs::read_to_string(&reg.log_file).expect("log").contains(&id));

    // debug = False, verbose = False: no DEBUG lines at all.
    std::fs::remove_file(&reg.log_file).expect("rm");
    drop(reg);
    let quiet = env.registry().option("DEFAULT.debug", "False").option("DEFAULT.verbose", "False").start().await;
    Http::new(quiet.url()).get("/images").await.expect(200);
    let log = std::fs::read_to_string(&quiet.log_file).unwrap_or_default();
    assert!(!log.contains("DEBUG glance"), "{log}");
}

#[tokio::test]
async fn sigterm_stops_and_restart_reuses_the_port() {
    let env = TestEnv::new(glance_tests::Engine::Sqlite).expect("sqlite");
    let mut reg = env.registry().start().await;
    let http = Http::new(reg.url());
    http.create(serde_json::json!({"name": "survives", "is_public": true})).await;
    let started = std::time::Instant::now();
    let status = reg.stop().expect("was running");
    assert!(status.success(), "SIGTERM exit status: {status}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    reg.restart().await;
    assert_eq!(http.ids("/images").await.len(), 1);
}

/// With workers, the schema is created once, by the supervisor, before any worker starts.
#[tokio::test]
async fn auto_create_with_workers_migrates_once() {
    let env = TestEnv::new(glance_tests::Engine::Sqlite).expect("sqlite");
    let reg = env.registry().option("DEFAULT.db_auto_create", "True").option("DEFAULT.workers", "3").start().await;
    let http = Http::new(reg.url());
    for i in 0..6 {
        http.create(serde_json::json!({"name": format!("w{i}"), "is_public": true})).await;
    }
    assert_eq!(http.ids("/images").await.len(), 6);
    let log = std::fs::read_to_string(&reg.log_file).expect("log");
    assert_eq!(log.matches("auto-created the registry database").count(), 1, "{log}");
}
