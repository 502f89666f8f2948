//! Load generation shared by the bench binaries: closed-loop clients, latency percentiles.

use futures_util::future::join_all;
use std::time::{Duration, Instant};

pub struct Report {
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub elapsed: Duration,
}

impl Report {
    pub fn requests_per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// The `p` quantile of the latencies, in milliseconds.
    pub fn percentile_ms(&mut self, p: f64) -> f64 {
        self.latencies.sort();
        let i = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len().saturating_sub(1));
        self.latencies.get(i).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(f64::NAN)
    }

    pub fn print(mut self, engine: &str, request: &str, clients: usize) {
        let (p50, p99) = (self.percentile_ms(0.50), self.percentile_ms(0.99));
        println!(
            "{:<9} {:<34} {:>7} {:>10.0} {:>9.2} {:>9.2} {:>7}",
            engine,
            request,
            clients,
            self.requests_per_second(),
            p50,
            p99,
            self.errors
        );
    }
}

/// The header line matching [`Report::print`].
pub fn print_header() {
    println!(
        "{:<9} {:<34} {:>7} {:>10} {:>9} {:>9} {:>7}",
        "engine", "request", "clients", "req/s", "p50 ms", "p99 ms", "errors"
    );
}

/// `clients` loops, each sending requests back to back for `seconds`.
pub async fn measure(
    http: &reqwest::Client,
    method: reqwest::Method,
    clients: usize,
    seconds: f64,
    url: impl Fn(usize) -> String,
) -> Report {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let url = &url;
    let method = &method;
    let loops = (0..clients).map(|c| async move {
        let (mut latencies, mut errors, mut n) = (Vec::new(), 0, c * 7919);
        while Instant::now() < deadline {
            let t = Instant::now();
            match http.request(method.clone(), url(n)).send().await {
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

/// Peak resident memory of a process (VmHWM), in MiB.
pub fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Uploads `mib` MiB of generated data to the API at `base` as a chunked stream (nothing held
/// in memory); returns the image id.
pub async fn upload(http: &reqwest::Client, base: &str, name: &str, mib: u64) -> Result<String, String> {
    let chunk = bytes::Bytes::from(vec![0x5au8; 1 << 20]);
    let body = futures_util::stream::iter((0..mib).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let reply = http
        .post(format!("{base}/v1/images"))
        .header("Content-Type", "application/octet-stream")
        .header("X-Image-Meta-Name", name)
        .header("X-Image-Meta-disk_format", "raw")
        .header("X-Image-Meta-container_format", "bare")
        .header("X-Image-Meta-Is-Public", "True")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if reply.status().as_u16() != 201 {
        return Err(format!("upload answered {}", reply.status()));
    }
    let body: serde_json::Value = reply.json().await.map_err(|e| e.to_string())?;
    body["image"]["id"].as_str().map(str::to_string).ok_or_else(|| "no id".to_string())
}

/// Downloads an image, counting its bytes as they stream; returns how many arrived.
pub async fn download(http: &reqwest::Client, base: &str, id: &str) -> u64 {
    use futures_util::StreamExt;
    let mut stream = http.get(format!("{base}/v1/images/{id}")).send().await.expect("download").bytes_stream();
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        received += chunk.expect("chunk").len() as u64;
    }
    received
}

/// A registry and an API on `env` that log warnings only (the bench's own I/O stays out of the
/// figures), the API with `api_options` too.
pub async fn quiet_installation(env: &crate::TestEnv, api_options: &[(&str, &str)]) -> (crate::Server, crate::Server) {
    let quiet = [("DEFAULT.debug", "False"), ("DEFAULT.verbose", "False")];
    let mut registry = env.registry();
    for (k, v) in quiet {
        registry = registry.option(k, v);
    }
    let registry = registry.start().await;
    let mut api = env.api(&registry);
    for (k, v) in quiet.iter().chain(api_options) {
        api = api.option(k, v);
    }
    let api = api.start().await;
    (registry, api)
}
