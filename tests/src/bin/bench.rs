//! The benchmark kit: glance-rs measured against this machine's own limits, in one run.
//!
//! It measures the limits of each path first (disk write with fsync and read, loopback TCP,
//! md5 and sha512 on one core), then the service on the embedded default (SQLite + file store,
//! release build): large upload and download with their ratio to the slowest limit of their
//! path, peak RSS, parallel uploads, small-image create rate, HEAD and detail request rates with
//! latency percentiles, and paging time per page at two catalogue sizes. It prints a table and
//! writes JSON. `--quick` shrinks every size so the whole run takes about a minute.
//!
//! Run through `scripts/bench.sh` (builds the release binaries first).

use bytes::Bytes;
use clap::Parser;
use futures_util::StreamExt;
use futures_util::future::join_all;
use glance_tests::bench::{download, measure, peak_rss_mib, upload};
use glance_tests::{Engine, TestEnv};
use md5::{Digest, Md5};
use serde_json::{Value, json};
use sha2::Sha512;
use std::io::{Read, Write};
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// Small sizes everywhere: about a minute in all.
    #[arg(long)]
    quick: bool,
    /// Where to write the JSON results.
    #[arg(long, default_value = "bench-results.json")]
    json: std::path::PathBuf,
}

struct Sizes {
    large_mib: u64,
    parallel: usize,
    parallel_mib: u64,
    small_images: usize,
    catalogue: usize,
    paging: [usize; 2],
    seconds: f64,
    clients: &'static [usize],
}

const MIB: u64 = 1 << 20;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    let sizes = if args.quick {
        Sizes {
            large_mib: 256,
            parallel: 8,
            parallel_mib: 16,
            small_images: 200,
            catalogue: 2_000,
            paging: [1_000, 4_000],
            seconds: 2.0,
            clients: &[1, 16, 64],
        }
    } else {
        Sizes {
            large_mib: 1024,
            parallel: 8,
            parallel_mib: 128,
            small_images: 1_000,
            catalogue: 10_000,
            paging: [10_000, 100_000],
            seconds: 5.0,
            clients: &[1, 16, 64],
        }
    };
    let mut results = serde_json::Map::new();
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite always works");

    // ---- the machine's limits
    let scratch = env.dir().join("scratch");
    let bytes = sizes.large_mib * MIB;
    let (disk_write, disk_read) = tokio::task::spawn_blocking({
        let scratch = scratch.clone();
        move || disk_speed(&scratch, bytes)
    })
    .await
    .expect("disk");
    let md5_speed = tokio::task::spawn_blocking(move || hash_speed::<Md5>(bytes.min(512 * MIB))).await.expect("md5");
    let sha512_speed =
        tokio::task::spawn_blocking(move || hash_speed::<Sha512>(bytes.min(512 * MIB))).await.expect("sha512");
    let loopback = tokio::task::spawn_blocking(move || loopback_speed(bytes)).await.expect("loopback");
    let loopback_http = loopback_http_speed(bytes).await;
    section("machine limits");
    row("disk write + fsync", format!("{disk_write:.0} MB/s"));
    row("disk read", format!("{disk_read:.0} MB/s"));
    row("loopback TCP", format!("{loopback:.0} MB/s"));
    row("loopback HTTP (from memory)", format!("{loopback_http:.0} MB/s"));
    row("md5, one core", format!("{md5_speed:.0} MB/s"));
    row("sha512, one core", format!("{sha512_speed:.0} MB/s"));
    results.insert(
        "limits".into(),
        json!({"disk_write_mb_s": disk_write, "disk_read_mb_s": disk_read, "loopback_mb_s": loopback, "loopback_http_mb_s": loopback_http, "md5_mb_s": md5_speed, "sha512_mb_s": sha512_speed}),
    );

    // ---- the service
    let registry = env.registry().option("DEFAULT.debug", "False").option("DEFAULT.verbose", "False").start().await;
    let api = env.api(&registry).option("DEFAULT.debug", "False").option("DEFAULT.verbose", "False").start().await;
    let http = reqwest::Client::builder()
        .no_gzip()
        .pool_max_idle_per_host(256)
        .pool_idle_timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client");
    let base = api.url();

    let started = Instant::now();
    let id = upload(&http, &base, "large", sizes.large_mib).await.expect("large upload");
    let upload_mb_s = mb(bytes) / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let received = download(&http, &base, &id).await;
    let download_mb_s = mb(received) / started.elapsed().as_secs_f64();
    assert_eq!(received, bytes, "short download");
    let upload_limit = disk_write.min(md5_speed);
    let (api_rss, registry_rss) = (peak_rss_mib(api.pid()), peak_rss_mib(registry.pid()));
    section(&format!("large image ({} MiB)", sizes.large_mib));
    row(
        "upload",
        format!(
            "{upload_mb_s:.0} MB/s = {:.0} % of min(disk write, md5) {upload_limit:.0} MB/s",
            100.0 * upload_mb_s / upload_limit
        ),
    );
    row(
        "download",
        format!(
            "{download_mb_s:.0} MB/s = {:.0} % of loopback HTTP {loopback_http:.0} MB/s",
            100.0 * download_mb_s / loopback_http
        ),
    );
    row("peak RSS", format!("glance-api {api_rss:.1} MiB, glance-registry {registry_rss:.1} MiB"));
    results.insert(
        "large_image".into(),
        json!({"mib": sizes.large_mib, "upload_mb_s": upload_mb_s, "upload_ratio": upload_mb_s / upload_limit,
               "download_mb_s": download_mb_s, "download_ratio": download_mb_s / loopback_http,
               "api_peak_rss_mib": api_rss, "registry_peak_rss_mib": registry_rss}),
    );

    // ---- parallel uploads
    let started = Instant::now();
    let uploads = join_all((0..sizes.parallel).map(|i| {
        let (http, base) = (&http, &base);
        async move { upload(http, base, &format!("parallel-{i}"), sizes.parallel_mib).await }
    }))
    .await;
    let failures = uploads.iter().filter(|u| u.is_err()).count();
    let aggregate = mb(sizes.parallel as u64 * sizes.parallel_mib * MIB) / started.elapsed().as_secs_f64();
    section(&format!("{} parallel uploads of {} MiB", sizes.parallel, sizes.parallel_mib));
    row(
        "aggregate",
        format!("{aggregate:.0} MB/s = {:.0} % of disk write, {failures} failures", 100.0 * aggregate / disk_write),
    );
    results.insert("parallel_uploads".into(), json!({"count": sizes.parallel, "mib": sizes.parallel_mib, "aggregate_mb_s": aggregate, "ratio_to_disk_write": aggregate / disk_write, "failures": failures}));

    // ---- small images: create + upload + activate
    section("4 KiB images: create + upload + activate");
    let mut small = Vec::new();
    for clients in [1usize, 16] {
        let (rate, errors) = small_images(&http, &base, clients, sizes.small_images).await;
        row(&format!("{clients} clients"), format!("{rate:.0} images/s, {errors} errors"));
        small.push(json!({"clients": clients, "images_per_s": rate, "errors": errors}));
    }
    let orphans = orphaned_files(&http, &base, &env.dir().join("images")).await;
    row("orphaned data files", orphans.to_string());
    results.insert("small_images".into(), json!({"runs": small, "orphaned_files": orphans}));

    // ---- request rates with a catalogue
    fill_catalogue(&http, &base, sizes.catalogue).await;
    section(&format!("request rates with {} images", count(&http, &base).await));
    println!("  {:<32} {:>7} {:>9} {:>8} {:>8} {:>6}", "request", "clients", "req/s", "p50 ms", "p99 ms", "errors");
    let mut rates = Vec::new();
    for &clients in sizes.clients {
        for (name, method, url) in [
            ("HEAD /v1/images/{id}", reqwest::Method::HEAD, format!("{base}/v1/images/{id}")),
            ("GET /v1/images/detail?limit=25", reqwest::Method::GET, format!("{base}/v1/images/detail?limit=25")),
        ] {
            // wrk (C, one thread) when installed: it costs the shared cores far less than a
            // Rust client in this process, so the figures are the servers', not the client's.
            let (rps, p50, p99, errors, generator) = match wrk(method.as_str(), &url, clients, sizes.seconds, env.dir())
            {
                Some((rps, p50, p99, errors)) => (rps, p50, p99, errors, "wrk"),
                None => {
                    let mut report = measure(&http, method, clients, sizes.seconds, |_| url.clone()).await;
                    let (rps, p50, p99) =
                        (report.requests_per_second(), report.percentile_ms(0.5), report.percentile_ms(0.99));
                    (rps, p50, p99, report.errors, "reqwest")
                }
            };
            println!("  {name:<32} {clients:>7} {rps:>9.0} {p50:>8.2} {p99:>8.2} {errors:>6} ({generator})");
            rates.push(json!({"request": name, "clients": clients, "req_per_s": rps, "p50_ms": p50, "p99_ms": p99,
                              "errors": errors, "load_generator": generator}));
        }
    }
    results.insert("request_rates".into(), Value::Array(rates));

    // ---- paging through everything, limit=1000
    section("paging with limit=1000");
    let mut paging = Vec::new();
    for total in sizes.paging {
        fill_catalogue(&http, &base, total).await;
        let (pages, per_page_ms) = page_through(&http, &base).await;
        row(&format!("{total} images"), format!("{pages} pages, {per_page_ms:.1} ms per page"));
        paging.push(json!({"images": total, "pages": pages, "ms_per_page": per_page_ms}));
    }
    results.insert("paging".into(), Value::Array(paging));

    let out = serde_json::to_string_pretty(&Value::Object(results)).expect("json");
    std::fs::write(&args.json, out).expect("write the JSON results");
    println!("\nresults written to {}", args.json.display());
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn section(title: &str) {
    println!("\n{title}");
}

fn row(what: &str, figure: String) {
    println!("  {what:<32} {figure}");
}

/// Sequential write of `bytes` in 1 MiB blocks with a final fsync, then a read back.
fn disk_speed(path: &std::path::Path, bytes: u64) -> (f64, f64) {
    let block = vec![0xa5u8; MIB as usize];
    let started = Instant::now();
    let mut file = std::fs::File::create(path).expect("scratch file");
    for _ in 0..bytes / MIB {
        file.write_all(&block).expect("write");
    }
    file.sync_all().expect("fsync");
    let write = mb(bytes) / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut file = std::fs::File::open(path).expect("scratch file");
    let mut buf = vec![0u8; MIB as usize];
    while file.read(&mut buf).expect("read") > 0 {}
    let read = mb(bytes) / started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(path);
    (write, read)
}

fn hash_speed<D: Digest>(bytes: u64) -> f64 {
    let block = vec![0x3cu8; MIB as usize];
    let started = Instant::now();
    let mut digest = D::new();
    for _ in 0..bytes / MIB {
        digest.update(&block);
    }
    std::hint::black_box(digest.finalize());
    mb(bytes) / started.elapsed().as_secs_f64()
}

/// A plain TCP transfer over loopback: the ceiling for any HTTP download on this machine.
fn loopback_speed(bytes: u64) -> f64 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let sink = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n as u64,
            }
        }
    });
    let block = vec![0x11u8; 256 * 1024];
    let started = Instant::now();
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    for _ in 0..bytes / block.len() as u64 {
        conn.write_all(&block).expect("send");
    }
    drop(conn);
    let received = sink.join().expect("sink");
    mb(received) / started.elapsed().as_secs_f64()
}

/// Runs wrk (if installed) for `seconds` with `clients` connections on one thread; returns
/// (requests/s, p50 ms, p99 ms, errors).
fn wrk(method: &str, url: &str, clients: usize, seconds: f64, dir: &std::path::Path) -> Option<(f64, f64, f64, usize)> {
    let script = dir.join(format!("wrk-{method}.lua"));
    std::fs::write(&script, format!("wrk.method = \"{method}\"\n")).ok()?;
    let out = std::process::Command::new("wrk")
        .args(["-t1", &format!("-c{clients}"), &format!("-d{}s", seconds.ceil() as u64), "--latency", "-s"])
        .arg(&script)
        .arg(url)
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let ms = |v: &str| -> Option<f64> {
        let (number, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
        let n: f64 = number.parse().ok()?;
        Some(match unit {
            "us" => n / 1000.0,
            "ms" => n,
            "s" => n * 1000.0,
            _ => return None,
        })
    };
    let percentile = |p: &str| text.lines().find_map(|l| l.trim().strip_prefix(p).and_then(|v| ms(v.trim())));
    let rps = text.lines().find_map(|l| l.strip_prefix("Requests/sec:")).and_then(|v| v.trim().parse().ok())?;
    let errors = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .filter_map(|v| v.trim().parse::<usize>().ok())
        .sum();
    Some((rps, percentile("50%")?, percentile("99%")?, errors))
}

/// A plain HTTP/1.1 download over loopback: a minimal server writes `bytes` from memory and the
/// same client the downloads use reads them. The ceiling for a download through glance-api.
async fn loopback_http_speed(bytes: u64) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.expect("accept");
        let mut request = vec![0u8; 4096];
        let _ = conn.read(&mut request).await;
        let head =
            format!("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {bytes}\r\n\r\n");
        conn.write_all(head.as_bytes()).await.expect("head");
        let block = Bytes::from(vec![0x11u8; MIB as usize]);
        for _ in 0..bytes / MIB {
            conn.write_all(&block).await.expect("body");
        }
    });
    let client = reqwest::Client::builder().no_gzip().build().expect("client");
    let started = Instant::now();
    let mut stream = client.get(format!("http://127.0.0.1:{port}/")).send().await.expect("get").bytes_stream();
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        received += chunk.expect("chunk").len() as u64;
    }
    let speed = mb(received) / started.elapsed().as_secs_f64();
    let _ = server.await;
    speed
}

/// `total` POSTs of 4 KiB images by `clients` concurrent clients; (images/s, errors).
async fn small_images(http: &reqwest::Client, base: &str, clients: usize, total: usize) -> (f64, usize) {
    let data = Bytes::from(vec![0x42u8; 4096]);
    let started = Instant::now();
    let per_client = total.div_ceil(clients);
    let loops = (0..clients).map(|c| {
        let data = data.clone();
        async move {
            let mut errors = 0;
            for i in 0..per_client {
                let reply = http
                    .post(format!("{base}/v1/images"))
                    .header("Content-Type", "application/octet-stream")
                    .header("X-Image-Meta-Name", format!("small-{c}-{i}"))
                    .header("X-Image-Meta-disk_format", "raw")
                    .header("X-Image-Meta-container_format", "bare")
                    .body(data.clone())
                    .send()
                    .await;
                if !reply.is_ok_and(|r| r.status().as_u16() == 201) {
                    errors += 1;
                }
            }
            errors
        }
    });
    let errors: usize = join_all(loops).await.into_iter().sum();
    ((per_client * clients) as f64 / started.elapsed().as_secs_f64(), errors)
}

/// Walks every page of `list` (a listing URL with `limit`), handing each page's images to `visit`.
/// Returns the number of pages.
async fn for_each_page(http: &reqwest::Client, list: &str, mut visit: impl FnMut(&[Value])) -> usize {
    let (mut pages, mut marker) = (0, String::new());
    loop {
        let page: Value = http.get(format!("{list}{marker}")).send().await.expect("list").json().await.expect("json");
        let images = page["images"].as_array().cloned().unwrap_or_default();
        let Some(last) = images.last() else { return pages };
        pages += 1;
        marker = format!("&marker={}", last["id"].as_str().unwrap_or_default());
        visit(&images);
    }
}

/// Data files that no active image points at (after every upload has finished).
async fn orphaned_files(http: &reqwest::Client, base: &str, dir: &std::path::Path) -> usize {
    let mut active = std::collections::HashSet::new();
    for_each_page(http, &format!("{base}/v1/images/detail?is_public=none&limit=1000"), |images| {
        for image in images.iter().filter(|i| i["status"] == "active") {
            active.insert(image["id"].as_str().unwrap_or_default().to_string());
        }
    })
    .await;
    std::fs::read_dir(dir)
        .map(|d| d.flatten().filter(|e| !active.contains(&*e.file_name().to_string_lossy())).count())
        .unwrap_or(0)
}

/// Number of images the default listing shows (public ones).
async fn count(http: &reqwest::Client, base: &str) -> usize {
    let mut total = 0;
    for_each_page(http, &format!("{base}/v1/images?limit=1000"), |images| total += images.len()).await;
    total
}

/// Registers public metadata-only images until `total` are listed, 32 at a time.
async fn fill_catalogue(http: &reqwest::Client, base: &str, total: usize) {
    let have = count(http, base).await;
    let missing = total.saturating_sub(have);
    let started = Instant::now();
    for chunk in (0..missing).collect::<Vec<_>>().chunks(32) {
        join_all(chunk.iter().map(|i| {
            http.post(format!("{base}/v1/images"))
                .header("X-Image-Meta-Name", format!("catalogue-{}", have + i))
                .header("X-Image-Meta-Is-Public", "True")
                .header("X-Image-Meta-Size", "0")
                .header("X-Image-Meta-Property-Os_distro", "cirros")
                .send()
        }))
        .await;
    }
    if missing > 0 {
        eprintln!("registered {missing} images in {:.1} s", started.elapsed().as_secs_f64());
    }
}

/// Pages through every listed image with limit=1000; (pages, mean ms per page).
async fn page_through(http: &reqwest::Client, base: &str) -> (usize, f64) {
    let started = Instant::now();
    let pages = for_each_page(http, &format!("{base}/v1/images/detail?limit=1000"), |_| {}).await;
    (pages, started.elapsed().as_secs_f64() * 1000.0 / pages.max(1) as f64)
}
