//! Tools benchmark: glance-replicator's livecopy, dump and load MB/s and peak RSS for images of
//! two sizes (memory must not grow with the image), and glance-scrubber's pass over many
//! delayed deletes (locations scrubbed per second). Not a test.
//!
//! Run through `scripts/bench-tools.sh`, which builds the release binaries.

use clap::Parser;
use glance_tests::bench::{quiet_installation as installation, upload};
use glance_tests::{Engine, Server, TestEnv, bin_path};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Image sizes for the replicator, in MiB; repeatable.
    #[arg(long = "mib", default_values_t = [64, 512])]
    sizes: Vec<u64>,
    /// Images deleted before the scrubber's pass.
    #[arg(long, default_value_t = 1000)]
    scrub_images: usize,
}

/// Runs a command to its end: (seconds, peak RSS in MiB, from /usr/bin/time).
fn timed(program: &str, args: &[String]) -> (f64, f64) {
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("peak-rss-kb=%M")
        .arg(bin_path(program))
        .args(args)
        .output()
        .expect("run /usr/bin/time");
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} {args:?} failed: {stderr}");
    let kb: f64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak-rss-kb="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN);
    (seconds, kb / 1024.0)
}

fn host_port(server: &Server) -> String {
    format!("127.0.0.1:{}", server.port)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    let http = reqwest::Client::builder().no_gzip().build().expect("client");
    println!("{:<10} {:>8} {:>10} {:>14}", "replicator", "MiB", "MB/s", "peak RSS MiB");
    for &mib in &args.sizes {
        let (master_env, slave_env, reload_env) = (env(), env(), env());
        let (_mr, master) = installation(&master_env, &[]).await;
        let (_sr, slave) = installation(&slave_env, &[]).await;
        let (_lr, reload) = installation(&reload_env, &[]).await;
        upload(&http, &master.url(), "replicated", mib).await.expect("upload");
        let mb = (mib << 20) as f64 / 1e6;
        let (s, rss) = timed("glance-replicator", &["livecopy".into(), host_port(&master), host_port(&slave)]);
        println!("{:<10} {mib:>8} {:>10.1} {rss:>14.1}", "livecopy", mb / s);
        let dump = master_env.dir().join("dump");
        std::fs::create_dir_all(&dump).expect("dump dir");
        let dir = dump.display().to_string();
        let (s, rss) = timed("glance-replicator", &["dump".into(), host_port(&master), dir.clone()]);
        println!("{:<10} {mib:>8} {:>10.1} {rss:>14.1}", "dump", mb / s);
        let (s, rss) = timed("glance-replicator", &["load".into(), host_port(&reload), dir]);
        println!("{:<10} {mib:>8} {:>10.1} {rss:>14.1}", "load", mb / s);
    }

    let scrub_env = env();
    let (registry, api) = installation(&scrub_env, &[("DEFAULT.delayed_delete", "True")]).await;
    let base = api.url();
    let headers = [
        ("Content-Type", "application/octet-stream"),
        ("X-Image-Meta-disk_format", "raw"),
        ("X-Image-Meta-container_format", "bare"),
    ];
    for n in 0..args.scrub_images {
        let mut request = http.post(format!("{base}/v1/images")).header("X-Image-Meta-Name", format!("scrub{n}"));
        for (k, v) in headers {
            request = request.header(k, v);
        }
        let created: serde_json::Value =
            request.body(vec![b's'; 4096]).send().await.expect("upload").json().await.expect("json");
        let id = created["image"]["id"].as_str().expect("id");
        http.delete(format!("{base}/v1/images/{id}")).send().await.expect("delete");
    }
    let config = scrub_env.dir().join("glance-scrubber.conf");
    std::fs::write(&config, "[DEFAULT]\ndebug = False\nverbose = False\n").expect("scrubber config");
    let files = ["--config-file".to_string(), scrub_env.dir().join("glance-api.conf").display().to_string()];
    let own = ["--config-file".to_string(), config.display().to_string()];
    let (s, rss) = timed("glance-scrubber", &[files.as_slice(), own.as_slice()].concat());
    println!();
    println!("{:<10} {:>8} {:>10} {:>14}", "scrubber", "images", "images/s", "peak RSS MiB");
    println!("{:<10} {:>8} {:>10.0} {rss:>14.1}", "one pass", args.scrub_images, args.scrub_images as f64 / s);
    let left = std::fs::read_dir(scrub_env.dir().join("images")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "the scrubber left {left} files");
    drop((registry, api));
    tokio::time::sleep(Duration::from_millis(100)).await;
}

fn env() -> TestEnv {
    TestEnv::new(Engine::Sqlite).expect("a SQLite environment")
}
