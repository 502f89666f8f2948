//! glance-replicator end to end (Glance's `test_glance_replicator.py`, seed 004, against real
//! servers): two glance-rs installations, each a registry and an API on a database of its own,
//! and the real glance-replicator binary copying images between them.

use glance_tests::{Engine, Server, TestEnv};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// One glance installation: a registry and an API on their own environment.
struct Glance {
    api: Server,
    _registry: Server,
    env: TestEnv,
    http: reqwest::Client,
}

impl Glance {
    async fn start() -> Self {
        let env = TestEnv::new(Engine::Sqlite).expect("SQLite is always available");
        let registry = env.registry().start().await;
        let api = env.api(&registry).start().await;
        Self { api, _registry: registry, env, http: reqwest::Client::new() }
    }

    /// The address the replicator takes.
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.api.port)
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.api.url()))
    }

    /// Creates an image with `data` (or a queued one without) and returns its id.
    async fn create(&self, name: &str, data: Option<Vec<u8>>, headers: &[(&str, &str)]) -> String {
        let mut request = self
            .request(Method::POST, "/v1/images")
            .header("Content-Type", "application/octet-stream")
            .header("X-Image-Meta-Name", name)
            .header("X-Image-Meta-Disk-Format", "raw")
            .header("X-Image-Meta-Container-Format", "bare")
            .header("X-Image-Meta-Is-Public", "True");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(data) = data {
            request = request.body(data);
        }
        let response = request.send().await.expect("POST");
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.expect("JSON");
        body["image"]["id"].as_str().expect("id").to_string()
    }

    /// The image's `x-image-meta-*` headers without the prefix; `None` when it is absent.
    async fn meta(&self, id: &str) -> Option<BTreeMap<String, String>> {
        let response = self.request(Method::HEAD, &format!("/v1/images/{id}")).send().await.expect("HEAD");
        if response.status() == StatusCode::NOT_FOUND {
            return None;
        }
        assert_eq!(response.status(), StatusCode::OK);
        Some(
            response
                .headers()
                .iter()
                .filter_map(|(k, v)| {
                    let key = k.as_str().strip_prefix("x-image-meta-")?;
                    Some((key.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                })
                .collect(),
        )
    }

    async fn data(&self, id: &str) -> Vec<u8> {
        let response = self.request(Method::GET, &format!("/v1/images/{id}")).send().await.expect("GET");
        assert_eq!(response.status(), StatusCode::OK);
        response.bytes().await.expect("body").to_vec()
    }

    async fn update(&self, id: &str, headers: &[(&str, &str)]) {
        let mut request = self.request(Method::PUT, &format!("/v1/images/{id}"));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        assert_eq!(request.send().await.expect("PUT").status(), StatusCode::OK);
    }

    async fn delete(&self, id: &str) {
        let response = self.request(Method::DELETE, &format!("/v1/images/{id}")).send().await.expect("DELETE");
        assert_eq!(response.status(), StatusCode::OK);
    }
}

/// What a glance-replicator run printed and how it ended.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}", self.code, self.stdout, self.stderr)
    }
}

async fn replicator(args: &[&str]) -> Run {
    let mut command = Command::new(glance_tests::bin_path("glance-replicator"));
    command.args(args);
    let out = tokio::task::spawn_blocking(move || command.output()).await.expect("join").expect("run replicator");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[track_caller]
fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "{run}");
    run
}

/// `n` bytes that are not all alike.
fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add((i / 251) as u8).wrapping_add(seed)).collect()
}

fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(data))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("dump file")).expect("JSON")
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The fields a replica must share with its original.
const REPLICATED: &[&str] =
    &["id", "name", "status", "size", "checksum", "disk_format", "container_format", "is_public", "min_ram"];

#[track_caller]
fn assert_replica(original: &BTreeMap<String, String>, replica: &BTreeMap<String, String>) {
    for key in REPLICATED {
        assert_eq!(original.get(*key), replica.get(*key), "{key}");
    }
    let properties = |m: &BTreeMap<String, String>| {
        m.iter().filter(|(k, _)| k.starts_with("property-")).map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>()
    };
    assert_eq!(properties(original), properties(replica));
}

#[tokio::test]
async fn size_counts_active_images_only() {
    let source = Glance::start().await;
    source.create("a", Some(bytes(100, 1)), &[]).await;
    source.create("b", Some(bytes(300, 2)), &[("X-Image-Meta-Is-Public", "False")]).await;
    let deleted = source.create("c", Some(bytes(200, 3)), &[]).await;
    source.delete(&deleted).await;
    source.create("queued", None, &[]).await;
    let run = ok(replicator(&["size", &source.addr()]).await);
    assert_eq!(run.stdout, "Total size is 400 bytes across 2 images\n");
    // The `\w+:\w+` form Glance's own check accepts.
    let run = ok(replicator(&["size", &format!("localhost:{}", source.api.port), "-S", "token"]).await);
    assert_eq!(run.stdout, "Total size is 400 bytes across 2 images\n");
}

#[tokio::test]
async fn dump_writes_metadata_and_the_data_of_active_images() {
    let source = Glance::start().await;
    let small = bytes(5 * 1024, 1);
    let large = bytes(3 << 20, 2);
    let a = source.create("a", Some(small.clone()), &[("X-Image-Meta-Property-Distro", "Ubuntu")]).await;
    let b = source.create("b", Some(large.clone()), &[("X-Image-Meta-Is-Public", "False")]).await;
    let queued = source.create("queued", None, &[]).await;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().to_str().expect("utf-8");
    ok(replicator(&["dump", &source.addr(), path, "-c", "4096"]).await);

    let mut expected = vec![a.clone(), format!("{a}.img"), b.clone(), format!("{b}.img"), queued.clone()];
    expected.sort();
    assert_eq!(files_in(dir.path()), expected);
    for id in [&a, &b, &queued] {
        let d = read_json(&dir.path().join(id));
        assert_eq!(d["id"], id.as_str());
        assert!(d.get("status").is_some() && d.get("size").is_some(), "{d}");
    }
    assert_eq!(read_json(&dir.path().join(&a))["properties"], json!({"distro": "Ubuntu"}));
    assert_eq!(read_json(&dir.path().join(&queued))["status"], "queued");
    assert_eq!(std::fs::read(dir.path().join(format!("{a}.img"))).expect("a.img"), small);
    assert_eq!(md5_hex(&std::fs::read(dir.path().join(format!("{b}.img"))).expect("b.img")), md5_hex(&large));

    // What is dumped already is skipped: a rename on the source does not reach the dump.
    source.update(&a, &[("X-Image-Meta-Name", "renamed")]).await;
    let c = source.create("c", Some(bytes(10, 3)), &[]).await;
    ok(replicator(&["dump", &source.addr(), path]).await);
    assert_eq!(read_json(&dir.path().join(&a))["name"], "a");
    assert!(dir.path().join(&c).exists() && dir.path().join(format!("{c}.img")).exists());

    // --metaonly: metadata files only.
    let meta_only = tempfile::tempdir().expect("dir");
    ok(replicator(&["dump", "-m", &source.addr(), meta_only.path().to_str().expect("utf-8")]).await);
    assert_eq!(files_in(meta_only.path()).len(), 4);
    assert!(files_in(meta_only.path()).iter().all(|f| !f.ends_with(".img")));

    // A dump directory that is not there is an error naming it.
    let run = replicator(&["dump", &source.addr(), "/nonexistent/glance-dump"]).await;
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("/nonexistent/glance-dump"), "{run}");
}

#[tokio::test]
async fn load_replicates_a_dump_into_another_glance() {
    let (source, target) = tokio::join!(Glance::start(), Glance::start());
    let data_a = bytes(64 * 1024, 1);
    let a = source.create("a", Some(data_a.clone()), &[("X-Image-Meta-Property-Distro", "Ubuntu")]).await;
    let b = source.create("b", Some(bytes(1000, 2)), &[("X-Image-Meta-Is-Public", "False")]).await;
    let empty = source.create("empty", Some(Vec::new()), &[("X-Image-Meta-Size", "0")]).await;
    let queued = source.create("queued", None, &[]).await;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().to_str().expect("utf-8");
    ok(replicator(&["dump", &source.addr(), path]).await);

    // An image whose data the dump lacks, a file which should be ignored, and metadata that is
    // not JSON.
    let missing_data = uuid::Uuid::new_v4().to_string();
    let mut copy = read_json(&dir.path().join(&a));
    copy["id"] = json!(missing_data);
    std::fs::write(dir.path().join(&missing_data), copy.to_string()).expect("write");
    std::fs::write(dir.path().join("kjdfhf"), "[1, 2, 3, 4, 5]").expect("write");
    let corrupt = uuid::Uuid::new_v4().to_string();
    std::fs::write(dir.path().join(&corrupt), "{\"id\": ").expect("write");

    let run = ok(replicator(&["load", &target.addr(), path, "-v"]).await);
    assert!(run.stdout.contains(&format!("Skipping {}", dir.path().join(&corrupt).display())), "{run}");
    assert!(run.stdout.contains("corrupt metadata"), "{run}");
    assert!(run.stdout.contains("... dump is missing image data, skipping"), "{run}");
    assert!(run.stdout.contains("3 images loaded or updated"), "{run}");
    for id in [&a, &b, &empty] {
        let original = source.meta(id).await.expect("source image");
        assert_replica(&original, &target.meta(id).await.expect("loaded"));
    }
    assert_eq!(target.data(&a).await, data_a);
    assert!(target.data(&empty).await.is_empty());
    assert_eq!(target.meta(&queued).await, None, "no data in the dump");
    assert_eq!(target.meta(&missing_data).await, None);

    // Loaded again: nothing differs, nothing is updated.
    let before = target.meta(&a).await.expect("a");
    let run = ok(replicator(&["load", &target.addr(), path, "-v"]).await);
    assert!(run.stdout.contains("0 images loaded or updated"), "{run}");
    assert_eq!(target.meta(&a).await.expect("a")["updated_at"], before["updated_at"]);

    // A changed dump: ignored for the fields in --dontreplicate, applied otherwise.
    let mut changed = read_json(&dir.path().join(&a));
    changed["name"] = json!("renamed");
    changed["min_ram"] = json!(512);
    std::fs::write(dir.path().join(&a), changed.to_string()).expect("write");
    let dontreplicate = "created_at date deleted_at location updated_at name min_ram";
    ok(replicator(&["load", "-D", dontreplicate, &target.addr(), path]).await);
    assert_eq!(target.meta(&a).await.expect("a")["name"], "a");
    ok(replicator(&["load", &target.addr(), path]).await);
    let after = target.meta(&a).await.expect("a");
    assert_eq!((after["name"].as_str(), after["min_ram"].as_str()), ("renamed", "512"));
    assert_eq!(after["property-distro"], "Ubuntu");
    assert_eq!(target.data(&a).await, data_a);

    // An image deleted on the target stays deleted, and the rest of the dump still loads.
    target.delete(&b).await;
    let mut changed = read_json(&dir.path().join(&b));
    changed["name"] = json!("renamed");
    std::fs::write(dir.path().join(&b), changed.to_string()).expect("write");
    let run = ok(replicator(&["load", &target.addr(), path]).await);
    assert!(run.stdout.contains(&format!("Image {b} is deleted on the slave: not updated")), "{run}");
}

#[tokio::test]
async fn livecopy_streams_images_into_another_glance() {
    let (source, target) = tokio::join!(Glance::start(), Glance::start());
    let large = bytes(3 << 20, 7);
    let a = source.create("a", Some(large.clone()), &[("X-Image-Meta-Property-Distro", "Ubuntu")]).await;
    let b = source.create("b", Some(bytes(10, 1)), &[("X-Image-Meta-Is-Public", "False")]).await;
    let queued = source.create("queued", None, &[]).await;

    let run = ok(replicator(&["livecopy", &source.addr(), &target.addr(), "-v"]).await);
    assert!(run.stdout.contains("2 images copied or updated"), "{run}");
    for id in [&a, &b] {
        assert_replica(&source.meta(id).await.expect("source"), &target.meta(id).await.expect("copied"));
    }
    assert_eq!(md5_hex(&target.data(&a).await), md5_hex(&large));
    assert_eq!(target.meta(&a).await.expect("a")["checksum"], md5_hex(&large));
    assert_eq!(target.meta(&queued).await, None, "only active images are copied");

    // Nothing changed: nothing to do.
    let before = target.meta(&a).await.expect("a");
    let run = ok(replicator(&["livecopy", &source.addr(), &target.addr(), "-v"]).await);
    assert!(run.stdout.contains("0 images copied or updated"), "{run}");
    assert_eq!(target.meta(&a).await.expect("a")["updated_at"], before["updated_at"]);

    // Changed metadata follows; --metaonly copies no new image.
    source.update(&a, &[("X-Image-Meta-Name", "renamed"), ("X-Image-Meta-Property-Arch", "x86_64")]).await;
    let c = source.create("c", Some(bytes(10, 2)), &[]).await;
    ok(replicator(&["livecopy", "--metaonly", &source.addr(), &target.addr()]).await);
    let after = target.meta(&a).await.expect("a");
    assert_eq!((after["name"].as_str(), after["property-arch"].as_str()), ("renamed", "x86_64"));
    assert_eq!(target.meta(&c).await, None);
    ok(replicator(&["livecopy", &source.addr(), &target.addr()]).await);
    assert_replica(&source.meta(&c).await.expect("source"), &target.meta(&c).await.expect("copied"));

    // A change only in a field in --dontreplicate is not copied.
    source.update(&b, &[("X-Image-Meta-Name", "local name"), ("X-Image-Meta-Min-Ram", "512")]).await;
    let dontreplicate = "created_at date deleted_at location updated_at name";
    ok(replicator(&["livecopy", "-D", dontreplicate, &source.addr(), &target.addr()]).await);
    let copied = target.meta(&b).await.expect("b");
    assert_eq!((copied["name"].as_str(), copied["min_ram"].as_str()), ("b", "512"), "{copied:?}");
}

/// A status glance would refuse to change over PUT stays as it is on the target (here an
/// image the target holds `queued`, without data); the rest of the metadata follows.
#[tokio::test]
async fn load_leaves_a_status_the_target_cannot_take() {
    let (source, target) = tokio::join!(Glance::start(), Glance::start());
    let a = source.create("a", Some(bytes(10, 1)), &[("X-Image-Meta-Property-Distro", "Ubuntu")]).await;
    target.create("placeholder", None, &[("X-Image-Meta-Id", &a)]).await;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().to_str().expect("utf-8");
    ok(replicator(&["dump", &source.addr(), path]).await);
    let run = ok(replicator(&["load", &target.addr(), path]).await);
    assert!(run.stdout.contains(&format!("Image {a} is active here but queued on the slave")), "{run}");
    let loaded = target.meta(&a).await.expect("a");
    assert_eq!((loaded["status"].as_str(), loaded["name"].as_str()), ("queued", "a"));
    assert_eq!(loaded["property-distro"], "Ubuntu");
}

#[tokio::test]
async fn compare_reports_missing_and_differing_images() {
    let (source, target) = tokio::join!(Glance::start(), Glance::start());
    let a = source.create("a", Some(bytes(10, 1)), &[("X-Image-Meta-Property-Distro", "Ubuntu")]).await;
    let b = source.create("b", Some(bytes(20, 2)), &[]).await;
    ok(replicator(&["livecopy", &source.addr(), &target.addr()]).await);
    let run = ok(replicator(&["compare", &source.addr(), &target.addr()]).await);
    assert_eq!(run.stdout, "", "identical installations");

    let c = source.create("c", Some(bytes(30, 3)), &[]).await;
    source.update(&b, &[("X-Image-Meta-Name", "renamed")]).await;
    let run = ok(replicator(&["compare", &source.addr(), &target.addr()]).await);
    let mut expected = vec![format!("{b}: diff"), format!("{c}: missing")];
    expected.sort();
    assert_eq!(run.stdout.lines().collect::<Vec<_>>(), expected, "{run}");
    assert!(!run.stdout.contains(&a));
    let run = ok(replicator(&["compare", "-v", &source.addr(), &target.addr()]).await);
    assert!(run.stdout.contains(&format!("{b}: field name differs (source is renamed, destination is b)")), "{run}");
    assert!(run.stdout.contains(&format!("{c}: entirely missing from the destination")), "{run}");
    // A field in --dontreplicate is no difference.
    let dontreplicate = "created_at date deleted_at location updated_at name";
    let run = ok(replicator(&["compare", "-D", dontreplicate, &source.addr(), &target.addr()]).await);
    assert_eq!(run.stdout.lines().collect::<Vec<_>>(), [format!("{c}: missing")], "{run}");
}

#[tokio::test]
async fn argument_errors_are_usage_errors() {
    let run = ok(replicator(&[]).await);
    assert!(run.stdout.contains("Usage: glance-replicator <command> [options] [args]"), "{run}");
    assert!(run.stdout.contains("livecopy"), "{run}");
    let run = ok(replicator(&["-v"]).await);
    assert!(run.stdout.starts_with("Usage: glance-replicator"), "{run}");

    let too_few: &[&[&str]] =
        &[&["size"], &["dump"], &["dump", "localhost:9292"], &["load"], &["livecopy"], &["compare", "a:1"]];
    for args in too_few {
        let run = replicator(args).await;
        assert_eq!(run.code, 1, "{args:?}: {run}");
        assert_eq!(run.stderr, "ERROR: Too few arguments.\n", "{args:?}");
        assert!(run.stdout.contains(&format!("glance-replicator {} <", args[0])), "{args:?}: {run}");
    }
    let bad: &[&[&str]] = &[
        &["size", "aaa"],
        &["dump", "aaa", "bbb"],
        &["load", "aaa", "bbb"],
        &["livecopy", "aaa", "bbb"],
        &["compare", "aaa", "bbb"],
        &["size", "localhost:port"],
    ];
    for args in bad {
        let run = replicator(args).await;
        assert_eq!(run.code, 1, "{args:?}: {run}");
        assert_eq!(run.stderr, "ERROR: Bad format of the given arguments.\n", "{args:?}");
    }

    let run = replicator(&["bogus"]).await;
    assert_eq!(run.code, 1, "{run}");
    assert_eq!(run.stderr, "Unknown command: bogus\n");
    assert!(run.stdout.starts_with("Usage: glance-replicator"), "{run}");
    let run = replicator(&["help"]).await;
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stdout.starts_with("Commands:"), "{run}");
    let run = ok(replicator(&["help", "livecopy"]).await);
    assert!(run.stdout.starts_with("glance-replicator livecopy <fromserver:port> <toserver:port>"), "{run}");
    // Option values are checked as optparse does: exit 2.
    assert_eq!(replicator(&["size", "-c", "lots", "localhost:9292"]).await.code, 2);
}

#[tokio::test]
async fn an_unreachable_glance_is_named() {
    let port = glance_tests::process::free_port();
    let addr = format!("127.0.0.1:{port}");
    let run = replicator(&["size", &addr]).await;
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.starts_with(&format!("ERROR: cannot reach glance at {addr}")), "{run}");
    let run = replicator(&["livecopy", "no-such-host.invalid:9292", &addr]).await;
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("cannot reach glance at no-such-host.invalid:9292"), "{run}");
}

#[tokio::test]
async fn a_refusing_target_stops_the_copy_with_the_reason() {
    let (source, target) = tokio::join!(Glance::start(), Glance::start());
    source.create("a", Some(bytes(10, 1)), &[]).await;
    target.env.set_policy_rules(&json!({"default": "", "add_image": "!"}));
    let run = replicator(&["livecopy", &source.addr(), &target.addr()]).await;
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains(&format!("{} refused the request (403", target.addr())), "{run}");
    // Logged too when the log is a file.
    let log = target.env.dir().join("replicator.log");
    let run = replicator(&["livecopy", "-l", log.to_str().expect("utf-8"), &source.addr(), &target.addr()]).await;
    assert_eq!(run.code, 1, "{run}");
    assert!(std::fs::read_to_string(&log).expect("log").contains("refused the request (403"));
}
