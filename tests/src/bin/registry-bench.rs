//! Registry benchmark: requests/s and latency of `GET /images/detail?limit=25` and
//! `GET /images/{id}` with N images registered, per SQL engine. Not a test: it prints figures.
//!
//! Run through `scripts/bench-registry.sh`, which builds the release binaries first.

use clap::Parser;
use futures_util::future::join_all;
use glance_tests::bench::measure;
use glance_tests::{Engine, TestEnv};
use serde_json::json;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// sqlite, postgres or mysql; repeatable.
    #[arg(long = "engine", default_values = ["sqlite", "postgres"])]
    engines: Vec<String>,
    /// Images registered before measuring.
    #[arg(long, default_value_t = 10_000)]
    images: usize,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Concurrent clients; repeatable.
    #[arg(long = "clients", default_values = ["1", "16"])]
    clients: Vec<usize>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    glance_tests::bench::print_header();
    for name in &args.engines {
        let engine = match name.as_str() {
            "sqlite" => Engine::Sqlite,
            "postgres" | "postgresql" => Engine::Postgres,
            "mysql" | "mariadb" => Engine::Mysql,
            other => panic!("unknown engine {other}"),
        };
        let Some(env) = TestEnv::new(engine) else { continue };
        let registry = env
            .registry()
            .option("DEFAULT.debug", "False")
            .option("DEFAULT.verbose", "False")
            .option("DEFAULT.workers", "2")
            .start()
            .await;
        let http = reqwest::Client::new();
        let base = registry.url();
        let started = Instant::now();
        let ids = seed(&http, &base, args.images).await;
        eprintln!("{name}: registered {} images in {:.1}s", ids.len(), started.elapsed().as_secs_f64());
        analyze(&env);
        for &clients in &args.clients {
            let detail = format!("{base}/images/detail?limit=25");
            let report = measure(&http, reqwest::Method::GET, clients, args.seconds, |_| detail.clone()).await;
            report.print(name, "GET /images/detail?limit=25", clients);
            let report = measure(&http, reqwest::Method::GET, clients, args.seconds, |i| {
                format!("{base}/images/{}", ids[i % ids.len()])
            })
            .await;
            report.print(name, "GET /images/{id}", clients);
        }
    }
}

/// Refreshes the planner's statistics, as autovacuum would shortly after a bulk load.
fn analyze(env: &TestEnv) {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, MysqlConnection, PgConnection};
    let url = &env.db.sql_connection;
    let done = match env.db.engine {
        Engine::Postgres => PgConnection::establish(url).map(|mut c| c.batch_execute("ANALYZE")),
        Engine::Mysql => MysqlConnection::establish(url)
            .map(|mut c| c.batch_execute("ANALYZE TABLE images, image_properties, image_members, image_locations")),
        Engine::Sqlite => return,
    };
    if let Err(e) = done.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
        eprintln!("ANALYZE failed: {e}");
    }
}

/// Registers `count` public images with two properties each, 16 at a time.
async fn seed(http: &reqwest::Client, base: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(16) {
        let posts = chunk.iter().map(|i| {
            let body = json!({"image": {"name": format!("bench-{i}"), "status": "active", "is_public": true,
                "disk_format": "qcow2", "container_format": "bare", "size": 4096 * (*i as i64 + 1),
                "checksum": format!("{:032x}", i), "properties": {"os_distro": "cirros", "index": i.to_string()}}});
            http.post(format!("{base}/images")).json(&body).send()
        });
        for reply in join_all(posts).await {
            let body: serde_json::Value = reply.expect("POST").json().await.expect("json");
            ids.push(body["image"]["id"].as_str().expect("id").to_string());
        }
    }
    ids
}
