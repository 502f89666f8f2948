//! Delayed delete and glance-scrubber (Glance's `test_scrubber.py`, and more): DELETE leaves
//! the image `pending_delete` with its data in place; the real glance-scrubber binary deletes
//! the data once `scrub_time` has passed and the image becomes `deleted`. The queue is in the
//! registry's database, so these run on every engine; the store cases on Swift and S3 too.

use super::{Api, As, Cluster, as_refs, files_in, minimal_headers};
use glance_tests::{Engine, TestEnv};
use reqwest::Method;
use serde_json::json;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// An API with delayed delete on, `scrub_time` seconds before data may go.
async fn cluster(env: &TestEnv, scrub_time: u64) -> Cluster {
    let scrub_time = scrub_time.to_string();
    Cluster::start_with(env, &[("DEFAULT.delayed_delete", "True"), ("DEFAULT.scrub_time", &scrub_time)]).await
}

/// glance-scrubber's config: glance-api.conf (store options and registry address, as an
/// operator may share them) then `glance-scrubber-<name>.conf` with its own log and `extra`.
fn scrubber_config(env: &TestEnv, name: &str, extra: &str) -> Vec<PathBuf> {
    let own = env.dir().join(format!("glance-scrubber-{name}.conf"));
    let log = env.dir().join(format!("scrubber-{name}.log"));
    std::fs::write(
        &own,
        format!(
            "[DEFAULT]\nverbose = True\ndebug = True\nlog_file = {}\nscrubber_datadir = {}\nwakeup_time = 2\n{extra}",
            log.display(),
            env.dir().join("scrubber").display()
        ),
    )
    .expect("write the scrubber config");
    vec![env.dir().join("glance-api.conf"), own]
}

fn scrubber_command(files: &[PathBuf]) -> Command {
    let mut command = Command::new(glance_tests::bin_path("glance-scrubber"));
    for file in files {
        command.arg("--config-file").arg(file);
    }
    command
}

/// One pass of glance-scrubber (`daemon = False`); it must exit 0 within 60 s.
async fn scrub_once(env: &TestEnv, name: &str, extra: &str) -> Output {
    let mut command = scrubber_command(&scrubber_config(env, name, extra));
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || command.output()).await.expect("join").expect("run glance-scrubber");
    assert!(started.elapsed() < Duration::from_secs(60), "a pass took {:?}", started.elapsed());
    assert!(out.status.success(), "glance-scrubber failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn scrubber_log(env: &TestEnv, name: &str) -> String {
    std::fs::read_to_string(env.dir().join(format!("scrubber-{name}.log"))).unwrap_or_default()
}

async fn upload(api: &Api, name: &str, data: Vec<u8>) -> String {
    let headers = minimal_headers(name);
    let created = api.post_image(&as_refs(&headers), Some(data)).await.expect(201).json();
    created["image"]["id"].as_str().expect("id").to_string()
}

/// Where the registry keeps the image's data (admin view).
async fn location_of(c: &Cluster, id: &str) -> String {
    let registry = Api::new(c.registry.url());
    let record = registry.get(&format!("/images/{id}")).await.expect(200).json();
    record["image"]["location"].as_str().expect("a location").to_string()
}

/// Whether `location` still holds data, asked of the store glance-api is configured with.
async fn stored(env: &TestEnv, location: &str) -> bool {
    let raw = glance_common::config::RawConfig::load(&[env.dir().join("glance-api.conf")]).expect("api config");
    let config = glance_api::config::ApiConfig::from_raw(&raw).expect("api config");
    let state = glance_api::AppState::new(config).expect("stores");
    match state.stores.get(location).await {
        Ok(_) => true,
        Err(glance_api::store::StoreError::NotFound(_)) => false,
        Err(e) => panic!("cannot tell whether {location} exists: {e}"),
    }
}

/// `(status, deleted)` as an admin's v1 HEAD shows them.
async fn status(api: &Api, id: &str) -> (String, String) {
    let head = api.head(&format!("/v1/images/{id}")).await.expect(200);
    let get = |name: &str| head.header(name).unwrap_or_default().to_string();
    (get("x-image-meta-status"), get("x-image-meta-deleted"))
}

fn pending() -> (String, String) {
    ("pending_delete".into(), "True".into())
}

fn deleted() -> (String, String) {
    ("deleted".into(), "True".into())
}

/// Glance's `test_delayed_delete` and `test_scrubber_app`: the data outlives the DELETE
/// until `scrub_time`, then one scrubber pass removes it and the image is `deleted`.
async fn delayed_delete_then_scrub(env: TestEnv) {
    let c = cluster(&env, 3).await;
    let id = upload(&c.http, "Image1", vec![b'*'; 5120]).await;
    let location = location_of(&c, &id).await;
    c.http.delete(&format!("/v1/images/{id}")).await.expect(200);
    assert_eq!(status(&c.http, &id).await, pending());
    assert!(stored(&env, &location).await, "data must stay until scrub_time");
    // Deleting again is refused, as Glance does.
    c.http.delete(&format!("/v1/images/{id}")).await.expect_error(403, "pending_delete");
    let listed = c.http.ids("/v1/images").await;
    assert!(!listed.contains(&id), "a pending_delete image is not listed: {listed:?}");

    // Not due yet: the pass leaves it alone.
    scrub_once(&env, "early", "").await;
    assert_eq!(status(&c.http, &id).await, pending());
    assert!(stored(&env, &location).await);

    tokio::time::sleep(Duration::from_secs(3)).await;
    scrub_once(&env, "due", "").await;
    assert_eq!(status(&c.http, &id).await, deleted());
    assert!(!stored(&env, &location).await, "the scrubber deletes the data");
    assert!(scrubber_log(&env, "due").contains(&format!("image {id} scrubbed")));

    // Nothing left to do: another pass succeeds and changes nothing.
    scrub_once(&env, "idle", "").await;
    assert_eq!(status(&c.http, &id).await, deleted());
}

/// A queued image has no data: it is deleted at once, delayed delete or not.
async fn queued_image_is_deleted_at_once(env: TestEnv) {
    let c = cluster(&env, 3600).await;
    let headers = minimal_headers("queued");
    let created = c.http.post_image(&as_refs(&headers), None).await.expect(201).json();
    let id = created["image"]["id"].as_str().expect("id").to_string();
    c.http.delete(&format!("/v1/images/{id}")).await.expect(200);
    assert_eq!(status(&c.http, &id).await, deleted());
}

/// Data removed behind Glance's back: the pass still succeeds and the image is `deleted`.
async fn missing_data_is_scrubbed_too(env: TestEnv) {
    let c = cluster(&env, 0).await;
    let id = upload(&c.http, "gone", vec![b'g'; 1024]).await;
    c.http.delete(&format!("/v1/images/{id}")).await.expect(200);
    std::fs::remove_file(env.dir().join("images").join(&id)).expect("remove the data");
    scrub_once(&env, "once", "").await;
    assert_eq!(status(&c.http, &id).await, deleted());
}

/// A scrubber on a node that does not see the file store (its directory is not there: the
/// wrong node, a share not mounted) deletes nothing and marks nothing `deleted`; run where the
/// store is, the next pass does.
async fn scrubber_without_the_file_store_keeps_the_job(env: TestEnv) {
    let c = cluster(&env, 0).await;
    let id = upload(&c.http, "elsewhere", vec![b'e'; 1024]).await;
    c.http.delete(&format!("/v1/images/{id}")).await.expect(200);
    // The share is not mounted here: its directory is not there.
    let (images, away) = (env.dir().join("images"), env.dir().join("images.away"));
    std::fs::rename(&images, &away).expect("unmount");
    scrub_once(&env, "wrong-node", "").await;
    assert_eq!(status(&c.http, &id).await, pending());
    assert!(!images.exists(), "the scrubber does not create the store's directory");
    assert!(scrubber_log(&env, "wrong-node").contains("does not exist on this node"));
    std::fs::rename(&away, &images).expect("mount");
    scrub_once(&env, "right-node", "").await;
    assert_eq!(status(&c.http, &id).await, deleted());
    assert!(files_in(&env.dir().join("images")).is_empty());
}

/// A location whose delete fails stays queued and is retried; the image is not `deleted`
/// while its data exists.
async fn failed_delete_stays_queued(env: TestEnv) {
    let c = cluster(&env, 0).await;
    let id = upload(&c.http, "stuck", vec![b's'; 1024]).await;
    c.http.delete(&format!("/v1/images/{id}")).await.expect(200);
    // A file the store cannot unlink: a non-empty directory in its place (even root fails).
    let path = env.dir().join("images").join(&id);
    std::fs::remove_file(&path).expect("remove");
    std::fs::create_dir_all(path.join("blocker")).expect("a directory in the way");
    scrub_once(&env, "failing", "").await;
    assert_eq!(status(&c.http, &id).await, pending());
    assert!(scrubber_log(&env, "failing").contains("kept queued"), "{}", scrubber_log(&env, "failing"));
    scrub_once(&env, "failing-again", "").await;
    assert!(scrubber_log(&env, "failing-again").contains("(attempt 2)"), "{}", scrubber_log(&env, "failing-again"));
    assert_eq!(status(&c.http, &id).await, pending());

    std::fs::remove_dir_all(&path).expect("clear the way");
    scrub_once(&env, "fixed", "").await;
    assert_eq!(status(&c.http, &id).await, deleted());
}

/// A scrubber that died holding jobs: another takes them over once the lease lapses.
async fn crashed_scrubber_is_taken_over(env: TestEnv) {
    let c = cluster(&env, 0).await;
    let id = upload(&c.http, "orphaned claim", vec![b'c'; 2048]).await;
    let location = location_of(&c, &id).await;
    c.http.delete(&format!("/v1/images/{id}")).await.expect(200);
    // The crashed scrubber's claim, as it made it, with a 3 s lease.
    let registry = Api::new(c.registry.url());
    let claim = json!({"worker": "crashed:1:x", "lease_seconds": 3, "limit": 10, "after": 0});
    let jobs = registry.send(registry.request(reqwest::Method::POST, "/scrub-jobs/claim").json(&claim)).await;
    let jobs = jobs.expect(200).json();
    assert_eq!(jobs["jobs"].as_array().expect("jobs").len(), 1, "{jobs}");
    assert_eq!(jobs["jobs"][0]["image_id"], id.as_str());

    scrub_once(&env, "while-held", "").await;
    assert_eq!(status(&c.http, &id).await, pending(), "a held job is not taken");
    assert!(stored(&env, &location).await);

    tokio::time::sleep(Duration::from_secs(4)).await;
    scrub_once(&env, "after-lease", "").await;
    assert_eq!(status(&c.http, &id).await, deleted());
    assert!(!stored(&env, &location).await);
}

/// A scrubber still at work renews its claims: a lease that would have lapsed is kept, and
/// nobody else may renew or take it.
async fn renewed_claims_are_kept(env: TestEnv) {
    let c = cluster(&env, 0).await;
    let id = upload(&c.http, "slow delete", vec![b'r'; 1024]).await;
    let location = location_of(&c, &id).await;
    c.http.delete(&format!("/v1/images/{id}")).await.expect(200);
    let registry = Api::new(c.registry.url());
    let post = |path: &str, body: serde_json::Value| registry.request(reqwest::Method::POST, path).json(&body);
    let claim = json!({"worker": "busy:1:x", "lease_seconds": 2, "limit": 10, "after": 0});
    let jobs = registry.send(post("/scrub-jobs/claim", claim)).await.expect(200).json();
    let job = jobs["jobs"][0]["id"].as_i64().expect("a job");
    let renew = |worker: &str| json!({"worker": worker, "lease_seconds": 60, "ids": [job]});
    let held = |reply: super::Reply| reply.expect(200).json()["held"].as_i64().expect("held");
    assert_eq!(held(registry.send(post("/scrub-jobs/renew", renew("someone:2:y"))).await), 0);
    assert_eq!(held(registry.send(post("/scrub-jobs/renew", renew("busy:1:x"))).await), 1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    scrub_once(&env, "would-take-over", "").await;
    assert_eq!(status(&c.http, &id).await, pending(), "a renewed claim is not taken over");
    assert!(stored(&env, &location).await);
}

/// An image deleted while its data is still uploading: the DELETE wins (no data yet, so the
/// image is `deleted` at once), the upload is refused when it ends (412) and its data removed;
/// nothing is queued and nothing is left.
async fn delete_during_upload_leaves_nothing(env: TestEnv) {
    let c = cluster(&env, 0).await;
    let created = c.http.post_image(&as_refs(&minimal_headers("racing")), None).await.expect(201).json();
    let id = created["image"]["id"].as_str().expect("id").to_string();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
    let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let request = c
        .http
        .request(reqwest::Method::PUT, &format!("/v1/images/{id}"))
        .header("Content-Type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(body));
    let uploading = tokio::spawn({
        let http = c.http.clone();
        async move { http.send(request).await }
    });
    tx.send(Ok(bytes::Bytes::from(vec![b'u'; 64 * 1024]))).await.expect("first chunk");
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&c.http, &id).await.0 != "saving" {
        assert!(Instant::now() < deadline, "the upload never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.http.delete(&format!("/v1/images/{id}")).await.expect(200);
    assert_eq!(status(&c.http, &id).await, deleted());
    tx.send(Ok(bytes::Bytes::from(vec![b'u'; 64 * 1024]))).await.expect("last chunk");
    drop(tx);
    let reply = uploading.await.expect("join");
    assert_eq!(reply.status.as_u16(), 412, "{}", reply.text());
    assert_eq!(status(&c.http, &id).await, deleted());
    assert!(files_in(&env.dir().join("images")).is_empty(), "{:?}", files_in(&env.dir().join("images")));
    scrub_once(&env, "after-race", "").await;
    assert!(!scrubber_log(&env, "after-race").contains(&id), "nothing was queued for {id}");
}

/// Two scrubbers at once on one queue: every location is deleted exactly once, both exit 0.
async fn two_scrubbers_at_once(env: TestEnv) {
    let c = cluster(&env, 0).await;
    let mut ids = Vec::new();
    for n in 0..16 {
        ids.push(upload(&c.http, &format!("many{n}"), vec![b'm'; 512]).await);
    }
    for id in &ids {
        c.http.delete(&format!("/v1/images/{id}")).await.expect(200);
    }
    tokio::join!(scrub_once(&env, "a", ""), scrub_once(&env, "b", ""));
    for id in &ids {
        assert_eq!(status(&c.http, id).await, deleted(), "{id}");
    }
    let logs = scrubber_log(&env, "a") + &scrubber_log(&env, "b");
    for id in &ids {
        assert_eq!(logs.matches(&format!("image {id}: data at")).count(), 1, "{id} deleted once:\n{logs}");
    }
    assert!(files_in(&env.dir().join("images")).is_empty());
}

/// Images left `pending_delete` with nothing queued (an older Glance's delete, whose queue was
/// a local file): the next pass scrubs their data and marks them deleted.
async fn pending_delete_without_queue_is_settled(env: TestEnv) {
    let c = cluster(&env, 0).await;
    let registry = Api::new(c.registry.url());
    let images = env.dir().join("images");
    std::fs::create_dir_all(&images).expect("images dir");
    std::fs::write(images.join("legacy-data"), b"old bits").expect("legacy data");
    let mut ids = Vec::new();
    for location in [None, Some(format!("file://{}", images.join("legacy-data").display()))] {
        let mut image = json!({"name": "legacy", "status": "active", "size": 8, "disk_format": "raw",
            "container_format": "bare", "is_public": true});
        if let Some(url) = location {
            image["location_data"] = json!([{"url": url, "metadata": {}}]);
        }
        let created = registry.send(registry.request(reqwest::Method::POST, "/images").json(&json!({"image": image})));
        let id = created.await.expect(200).json()["image"]["id"].as_str().expect("id").to_string();
        // What Icehouse's API did: status pending_delete, then the registry's soft delete.
        let body = json!({"image": {"status": "pending_delete"}});
        registry.send(registry.request(reqwest::Method::PUT, &format!("/images/{id}")).json(&body)).await.expect(200);
        registry.send(registry.request(reqwest::Method::DELETE, &format!("/images/{id}"))).await.expect(200);
        assert_eq!(status(&c.http, &id).await, pending());
        ids.push(id);
    }
    // Without cleanup_scrubber (the default), or before cleanup_scrubber_time, they stay.
    scrub_once(&env, "no-cleanup", "").await;
    scrub_once(&env, "too-soon", "cleanup_scrubber = True\ncleanup_scrubber_time = 3600\n").await;
    for id in &ids {
        assert_eq!(status(&c.http, id).await, pending());
    }
    assert_eq!(files_in(&images).len(), 1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    scrub_once(&env, "settle", "cleanup_scrubber = True\ncleanup_scrubber_time = 0\n").await;
    for id in &ids {
        assert_eq!(status(&c.http, id).await, deleted());
    }
    assert!(files_in(&images).is_empty(), "the legacy data is scrubbed: {:?}", files_in(&images));
}

/// The scrubber is the service's admin to registries that authenticate their callers:
/// `fakeauth` (a token naming the admin role) and `trusted-auth` (the admin role header).
#[tokio::test]
async fn scrubber_is_admin_to_authenticating_registries() {
    for flavor in ["fakeauth", "trusted-auth"] {
        let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
        let registry = env.registry().flavor(flavor).start().await;
        let api = env
            .api(&registry)
            .option("paste_deploy.flavor", "fakeauth")
            .option("DEFAULT.delayed_delete", "True")
            .option("DEFAULT.scrub_time", "0")
            .start()
            .await;
        let http = Api::new(api.url());
        let owner = As { api: &http, token: "ann:t1:member".into() };
        let admin = As { api: &http, token: "root:t0:admin".into() };
        // An empty queue: a pass with nothing to do succeeds.
        scrub_once(&env, &format!("{flavor}-idle"), "").await;
        let headers = minimal_headers("owned");
        let created = owner.send(Method::POST, "/v1/images", &as_refs(&headers), Some(vec![b'o'; 2048])).await;
        let id = created.expect(201).json()["image"]["id"].as_str().expect("id").to_string();
        owner.send(Method::DELETE, &format!("/v1/images/{id}"), &[], None).await.expect(200);
        let status_of = |reply: super::Reply| reply.header("x-image-meta-status").unwrap_or_default().to_string();
        assert_eq!(status_of(admin.head(&format!("/v1/images/{id}")).await.expect(200)), "pending_delete");
        scrub_once(&env, flavor, "").await;
        assert_eq!(status_of(admin.head(&format!("/v1/images/{id}")).await.expect(200)), "deleted", "{flavor}");
        assert!(files_in(&env.dir().join("images")).is_empty(), "{flavor}: the data is scrubbed");
    }
}

glance_tests::engine_tests!(
    delete_during_upload_leaves_nothing,
    renewed_claims_are_kept,
    every_location_is_scrubbed,
    pending_delete_without_queue_is_settled,
    delayed_delete_then_scrub,
    queued_image_is_deleted_at_once,
    missing_data_is_scrubbed_too,
    scrubber_without_the_file_store_keeps_the_job,
    failed_delete_stays_queued,
    crashed_scrubber_is_taken_over,
    two_scrubbers_at_once,
);
glance_tests::swift_store_tests!(delayed_delete_then_scrub, crashed_scrubber_is_taken_over);
glance_tests::s3_store_tests!(delayed_delete_then_scrub);

/// `daemon = True`: a pass every `wakeup_time` until SIGTERM, then a clean exit.
#[tokio::test]
async fn daemon_scrubs_until_sigterm() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let c = cluster(&env, 0).await;
    let mut child = scrubber_command(&scrubber_config(&env, "daemon", "daemon = True\nwakeup_time = 1\n"))
        .spawn()
        .expect("start the daemon");
    for round in 0..2 {
        let id = upload(&c.http, &format!("round{round}"), vec![b'd'; 256]).await;
        c.http.delete(&format!("/v1/images/{id}")).await.expect(200);
        let deadline = Instant::now() + Duration::from_secs(30);
        while status(&c.http, &id).await != deleted() {
            assert!(Instant::now() < deadline, "the daemon did not scrub {id}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert!(child.try_wait().expect("wait").is_none(), "the daemon keeps running");
    // kill(1) sends SIGTERM.
    Command::new("kill").arg(child.id().to_string()).status().expect("kill");
    let exit = tokio::task::spawn_blocking(move || child.wait()).await.expect("join").expect("wait");
    assert!(exit.success(), "SIGTERM ends the daemon cleanly: {exit:?}");
    assert!(scrubber_log(&env, "daemon").contains("glance-scrubber stopping"));
}

/// A location the store cannot reach (Swift's auth down) stays queued; with Swift back the
/// next pass deletes it.
#[tokio::test]
async fn unreachable_store_is_retried() {
    let Some(env) = TestEnv::with_swift() else { return };
    let c = cluster(&env, 0).await;
    let id = upload(&c.http, "far away", vec![b'f'; 4096]).await;
    let location = location_of(&c, &id).await;
    c.http.delete(&format!("/v1/images/{id}")).await.expect(200);
    let port = glance_tests::process::free_port();
    let dead = format!("[glance_store]\nswift_store_auth_address = http://127.0.0.1:{port}/auth/v1.0\n");
    scrub_once(&env, "swift-down", &dead).await;
    assert_eq!(status(&c.http, &id).await, pending());
    assert!(stored(&env, &location).await);
    scrub_once(&env, "swift-up", "").await;
    assert_eq!(status(&c.http, &id).await, deleted());
    assert!(!stored(&env, &location).await);
}

/// Data in several locations: every one the deployment owns is deleted (the jobs of one
/// image finish concurrently; the last one marks the image deleted on every engine).
async fn every_location_is_scrubbed(env: TestEnv) {
    let c = cluster(&env, 0).await;
    let images = env.dir().join("images");
    std::fs::create_dir_all(&images).expect("images dir");
    let mut urls = Vec::new();
    for name in ["copy-a", "copy-b", "copy-c", "copy-d"] {
        std::fs::write(images.join(name), vec![b'*'; 5120]).expect("a copy");
        urls.push(format!("file://{}", images.join(name).display()));
    }
    let registry = Api::new(c.registry.url());
    let locations: Vec<_> = urls.iter().map(|u| json!({"url": u, "metadata": {}})).collect();
    let body = json!({"image": {"name": "two copies", "status": "active", "size": 5120, "disk_format": "raw",
        "container_format": "bare", "is_public": true, "location_data": locations}});
    let created = registry.send(registry.request(reqwest::Method::POST, "/images").json(&body)).await.expect(200);
    let id = created.json()["image"]["id"].as_str().expect("id").to_string();

    c.http.delete(&format!("/v1/images/{id}")).await.expect(200);
    assert_eq!(files_in(&images).len(), 4, "data stays until the scrubber runs");
    scrub_once(&env, "all", "").await;
    assert!(files_in(&images).is_empty(), "{:?}", files_in(&images));
    assert_eq!(status(&c.http, &id).await, deleted());
}
