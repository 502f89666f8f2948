//! API benchmark: MB/s for uploading and downloading a large image, the API's and the
//! registry's peak RSS, and requests/s for HEAD and GET /v1/images/detail. Not a test.
//!
//! Run through `scripts/bench-api.sh`, which builds the release binaries first.

use clap::Parser;
use glance_tests::bench::{download, measure, peak_rss_mib, print_header, upload};
use glance_tests::{Engine, TestEnv};
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// Size of the image to upload and download, in MiB.
    #[arg(long, default_value_t = 1024)]
    mib: u64,
    /// Small images registered before the request-rate measurements.
    #[arg(long, default_value_t = 1000)]
    images: usize,
    /// Seconds per request-rate measurement.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Concurrent clients for the request-rate measurements; repeatable.
    #[arg(long = "clients", default_values = ["1", "16"])]
    clients: Vec<usize>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    let Some(env) = TestEnv::new(Engine::Sqlite) else { return };
    let registry = env.registry().option("DEFAULT.debug", "False").option("DEFAULT.verbose", "False").start().await;
    let api = env
        .api(&registry)
        .option("DEFAULT.debug", "False")
        .option("DEFAULT.verbose", "False")
        .option("DEFAULT.workers", "0")
        .start()
        .await;
    let http = reqwest::Client::builder().no_gzip().build().expect("client");
    let base = api.url();
    let (api_idle, registry_idle) = (peak_rss_mib(api.pid()), peak_rss_mib(registry.pid()));

    // Upload: 1 MiB chunks generated on the fly, chunked transfer, nothing buffered.
    let started = Instant::now();
    let id = upload(&http, &base, "bench", args.mib).await.expect("upload");
    let upload_secs = started.elapsed().as_secs_f64();
    let (api_after_upload, registry_after_upload) = (peak_rss_mib(api.pid()), peak_rss_mib(registry.pid()));

    // Download: count the bytes as they stream.
    let started = Instant::now();
    let received = download(&http, &base, &id).await;
    let download_secs = started.elapsed().as_secs_f64();
    assert_eq!(received, args.mib << 20, "short download");
    let api_after_download = peak_rss_mib(api.pid());

    let mb = (args.mib << 20) as f64 / 1e6;
    println!("image size                 {} MiB", args.mib);
    println!("upload                     {:.1} MB/s ({upload_secs:.2} s)", mb / upload_secs);
    println!("download                   {:.1} MB/s ({download_secs:.2} s)", mb / download_secs);
    println!(
        "glance-api peak RSS        {api_idle:.1} MiB idle, {api_after_upload:.1} MiB after upload, {api_after_download:.1} MiB after download"
    );
    println!("glance-registry peak RSS   {registry_idle:.1} MiB idle, {registry_after_upload:.1} MiB after upload");

    // Request rates with `images` small images registered.
    for i in 0..args.images {
        http.post(format!("{base}/v1/images"))
            .header("X-Image-Meta-Name", format!("small-{i}"))
            .header("X-Image-Meta-Is-Public", "True")
            .header("X-Image-Meta-Size", "0")
            .send()
            .await
            .expect("create");
    }
    println!();
    print_header();
    for &clients in &args.clients {
        let head = format!("{base}/v1/images/{id}");
        measure(&http, reqwest::Method::HEAD, clients, args.seconds, |_| head.clone()).await.print(
            "sqlite",
            "HEAD /v1/images/{id}",
            clients,
        );
        let detail = format!("{base}/v1/images/detail?limit=25");
        measure(&http, reqwest::Method::GET, clients, args.seconds, |_| detail.clone()).await.print(
            "sqlite",
            "GET /v1/images/detail?limit=25",
            clients,
        );
    }
}
