//! Registry benchmark: requests/s and latency of `GET /images/detail?limit=25` and
//! `GET /images/{id}` with N images registered, per SQL engine. Not a test: it prints figures.
//!
//! Run through `scripts/bench-registry.sh`, which builds the release binaries first.

use clap::Parser;
use futures_util::future::join_all;
use glance_tests::{Engine, TestEnv};
use serde_json::json;
use std::time::{Duration, Instant};

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
    println!(
        "{:<9} {:<34} {:>7} {:>10} {:>9} {:>9} {:>7}",
        "engine", "request", "clients", "req/s", "p50 ms", "p99 ms", "errors"
    );
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
            let report = measure(&http, clients, args.seconds, |_| detail.clone()).await;
            report.print(name, "GET /images/detail?limit=25", clients);
            let report =
                measure(&http, clients, args.seconds, |i| format!("{base}/images/{}", ids[i % ids.len()])).await;
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

struct Report {
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

impl Report {
    fn print(mut self, engine: &str, request: &str, clients: usize) {
        self.latencies.sort();
        let pct = |p: f64| {
            let i = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len().saturating_sub(1));
            self.latencies.get(i).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(f64::NAN)
        };
        println!(
            "{:<9} {:<34} {:>7} {:>10.0} {:>9.2} {:>9.2} {:>7}",
            engine,
            request,
            clients,
            self.latencies.len() as f64 / self.elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.99),
            self.errors
        );
    }
}

/// `clients` loops, each sending requests back to back for `seconds`.
async fn measure(http: &reqwest::Client, clients: usize, seconds: f64, url: impl Fn(usize) -> String) -> Report {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let url = &url;
    let loops = (0..clients).map(|c| async move {
        let (mut latencies, mut errors, mut n) = (Vec::new(), 0, c * 7919);
        while Instant::now() < deadline {
            let t = Instant::now();
            match http.get(url(n)).send().await {
                Ok(r) if r.status().is_success() => {
                    let _ = r.bytes().await;
                    latencies.push(t.elapsed());
                }
                _ => errors += 1,
            }
            n += 1;
        }
        (latencies, errors)
    });
    let mut report = Report { latencies: Vec::new(), errors: 0, elapsed: Duration::ZERO };
    for (latencies, errors) in join_all(loops).await {
        report.latencies.extend(latencies);
        report.errors += errors;
    }
    report.elapsed = started.elapsed();
    report
}
