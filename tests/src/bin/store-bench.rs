//! Store benchmark: upload and download MB/s of one large image through glance-api for each
//! store (file, Swift, S3 on Swift's S3 API), with both servers' peak RSS; then the image cache:
//! a download from the store (filling the cache) against one from the cache, and the cache's
//! ratio to reading its file straight from disk. Not a test.
//!
//! Run through `scripts/bench-stores.sh`, which builds the release binaries and starts Swift.

use clap::Parser;
use glance_tests::TestEnv;
use glance_tests::bench::{download, peak_rss_mib, quiet_installation, upload};
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// Size of the image, in MiB.
    #[arg(long, default_value_t = 1024)]
    mib: u64,
    /// Stores to measure; repeatable.
    #[arg(long = "store", default_values = ["file", "swift", "s3"])]
    stores: Vec<String>,
    /// Skip the image cache measurement.
    #[arg(long)]
    no_cache: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    let http = reqwest::Client::builder().no_gzip().build().expect("client");
    println!(
        "{:<8} {:>12} {:>14} {:>16} {:>16}",
        "store", "upload MB/s", "download MB/s", "API peak MiB", "registry MiB"
    );
    for store in &args.stores {
        let env = match store.as_str() {
            "file" => TestEnv::new(glance_tests::Engine::Sqlite),
            "swift" => TestEnv::with_swift(),
            "s3" => TestEnv::with_s3(),
            other => panic!("unknown store {other}: file, swift or s3"),
        };
        let Some(env) = env else { continue };
        let (registry, api) = quiet_installation(&env, &[]).await;
        let base = api.url();
        let started = Instant::now();
        let id = upload(&http, &base, "store-bench", args.mib).await.expect("upload");
        let up = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let received = download(&http, &base, &id).await;
        let down = started.elapsed().as_secs_f64();
        assert_eq!(received, args.mib << 20, "short download from {store}");
        let mb = (args.mib << 20) as f64 / 1e6;
        println!(
            "{store:<8} {:>12.1} {:>14.1} {:>16.1} {:>16.1}",
            mb / up,
            mb / down,
            peak_rss_mib(api.pid()),
            peak_rss_mib(registry.pid())
        );
        // Leave nothing behind in the object stores.
        let _ = http.delete(format!("{base}/v1/images/{id}")).send().await;
    }
    if !args.no_cache {
        cache(&http, args.mib).await;
    }
}

/// GET from the store (through the cache, filling it) and GET from the cache, against a plain
/// read of the cached file.
async fn cache(http: &reqwest::Client, mib: u64) {
    let Some(env) = TestEnv::new(glance_tests::Engine::Sqlite) else { return };
    let registry = env.registry().option("DEFAULT.debug", "False").option("DEFAULT.verbose", "False").start().await;
    let dir = env.dir().join("image-cache");
    let api = env
        .api(&registry)
        .option("DEFAULT.debug", "False")
        .option("DEFAULT.verbose", "False")
        .option("paste_deploy.flavor", "caching")
        .option("DEFAULT.image_cache_dir", dir.to_str().expect("utf-8"))
        .start()
        .await;
    let base = api.url();
    let id = upload(http, &base, "cache-bench", mib).await.expect("upload");
    let mb = (mib << 20) as f64 / 1e6;
    let timed = |started: Instant| mb / started.elapsed().as_secs_f64();
    let started = Instant::now();
    assert_eq!(download(http, &base, &id).await, mib << 20);
    let from_store = timed(started);
    let started = Instant::now();
    assert_eq!(download(http, &base, &id).await, mib << 20);
    let from_cache = timed(started);
    // The same bytes read straight from the cached file, 1 MiB at a time.
    let path = dir.join(&id);
    let started = Instant::now();
    let read = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut file = std::fs::File::open(path).expect("cached file");
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = file.read(&mut buf).expect("read");
            if n == 0 {
                break total;
            }
            total += n as u64;
        }
    })
    .await
    .expect("read");
    assert_eq!(read, mib << 20);
    let disk = timed(started);
    println!();
    println!("image cache ({mib} MiB, file store)");
    println!("  GET from the store, filling the cache   {from_store:>8.1} MB/s");
    println!(
        "  GET from the cache                      {from_cache:>8.1} MB/s = {:.0} % of reading the file ({disk:.1} MB/s)",
        100.0 * from_cache / disk
    );
}
