//! The image cache (seed 003), every test on both drivers (`sqlite_driver::…`, `xattr_driver::…`):
//! transparent caching, remote images, hits, the cache management API and the cache tools.

use super::{Api, Cluster, DATA5K_MD5, FIVE_KB, as_refs, data5k, minimal_headers};
use glance_tests::http_source::HttpSource;
use glance_tests::{Engine, TestEnv};
use reqwest::Method;
use std::path::PathBuf;

/// Each listed `async fn name(driver)` once per cache driver.
macro_rules! both_drivers {
    ($($name:ident),* $(,)?) => {
        mod sqlite_driver {
            $( #[tokio::test] async fn $name() { super::$name("sqlite").await } )*
        }
        mod xattr_driver {
            $( #[tokio::test] async fn $name() { super::$name("xattr").await } )*
        }
    };
}

both_drivers!(
    cache_middleware_transparent,
    cache_remote_image,
    cache_manage_get_cached_images_and_hits,
    cache_manage_delete_cached_and_queued_images,
    cache_manage_needs_the_policy_and_cache_obeys_download_policy,
    corrupt_store_data_is_not_cached,
    queue_and_prefetch,
    pruner_keeps_the_most_recently_read,
    cleaner_removes_invalid_and_stalled_files,
    cache_tools_report_errors,
    glance_cache_manage_commands,
    glance_cache_manage_without_the_middleware,
    concurrent_and_cut_off_downloads,
    tampered_cached_file_is_evicted,
    cache_obeys_visibility
);

async fn cluster(env: &TestEnv, flavor: &str, driver: &str) -> (Cluster, PathBuf) {
    let dir = env.dir().join("image-cache");
    let c = Cluster::start_with(
        env,
        &[
            ("paste_deploy.flavor", flavor),
            ("DEFAULT.image_cache_dir", dir.to_str().expect("utf-8")),
            ("DEFAULT.image_cache_driver", driver),
        ],
    )
    .await;
    (c, dir)
}

async fn add_image(api: &Api, name: &str) -> String {
    let image = api.post_image(&as_refs(&minimal_headers(name)), Some(data5k())).await.expect(201).json();
    assert_eq!(image["image"]["checksum"], DATA5K_MD5);
    image["image"]["id"].as_str().expect("id").to_string()
}

async fn cached(api: &Api) -> Vec<serde_json::Value> {
    api.get("/v1/cached_images").await.expect(200).json()["cached_images"].as_array().expect("list").clone()
}

async fn cache_middleware_transparent(driver: &'static str) {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let (c, dir) = cluster(&env, "caching", driver).await;
    let id = add_image(&c.http, "Image1").await;
    let path = dir.join(&id);
    assert!(!path.exists(), "not cached before a download");
    assert_eq!(c.http.get(&format!("/v1/images/{id}")).await.expect(200).body, data5k());
    assert!(path.exists(), "cached by the first download");
    // Served from the cache: the store's file can go and the image still downloads.
    std::fs::remove_file(env.dir().join("images").join(&id)).expect("remove the store's copy");
    let again = c.http.get(&format!("/v1/images/{id}")).await.expect(200);
    assert_eq!((again.body.len(), again.header("content-length")), (FIVE_KB, Some("5120")));
    c.http.delete(&format!("/v1/images/{id}")).await.expect(200);
    assert!(!path.exists(), "deleting the image empties the cache");
    // Without the management flavor its API does not exist.
    c.http.get("/v1/cached_images").await.expect(404);
}

async fn cache_remote_image(driver: &'static str) {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let (c, dir) = cluster(&env, "caching", driver).await;
    let source = HttpSource::start().await;
    let remote = source.uri("2");
    let headers = [
        ("X-Image-Meta-Name", "Image2"),
        ("X-Image-Meta-disk_format", "raw"),
        ("X-Image-Meta-container_format", "ovf"),
        ("X-Image-Meta-Is-Public", "True"),
        ("X-Image-Meta-Location", remote.as_str()),
    ];
    let image = c.http.post_image(&headers, None).await.expect(201).json();
    assert_eq!(image["image"]["size"], FIVE_KB);
    let id = image["image"]["id"].as_str().expect("id");
    c.http.get(&format!("/v1/images/{id}")).await.expect(200);
    let again = c.http.get(&format!("/v1/images/{id}")).await.expect(200);
    assert_eq!(again.header("content-length"), Some("5120"));
    assert!(dir.join(id).exists());
}

async fn cache_manage_get_cached_images_and_hits(driver: &'static str) {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let (c, _) = cluster(&env, "cachemanagement", driver).await;
    assert!(c.http.ids("/v1/images").await.is_empty());
    let id = add_image(&c.http, "Image1").await;
    assert!(cached(&c.http).await.is_empty(), "not cached before a download");
    c.http.get(&format!("/v1/images/{id}")).await.expect(200);
    let list = cached(&c.http).await;
    assert_eq!((list.len(), list[0]["image_id"].as_str(), list[0]["hits"].as_i64()), (1, Some(id.as_str()), Some(0)));
    assert_eq!(list[0]["size"], FIVE_KB);
    c.http.get(&format!("/v1/images/{id}")).await.expect(200);
    assert_eq!(cached(&c.http).await[0]["hits"], 1);
}

async fn cache_manage_delete_cached_and_queued_images(driver: &'static str) {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let (c, dir) = cluster(&env, "cachemanagement", driver).await;
    let mut ids = Vec::new();
    for x in 0..4 {
        ids.push(add_image(&c.http, &format!("Image{x}")).await);
    }
    assert!(cached(&c.http).await.is_empty());
    for id in &ids {
        c.http.get(&format!("/v1/images/{id}")).await.expect(200);
    }
    assert_eq!(cached(&c.http).await.len(), 4);
    let deleted = c.http.delete(&format!("/v1/cached_images/{}", ids[2])).await.expect(200);
    assert_eq!(deleted.text(), "null");
    let left: Vec<String> =
        cached(&c.http).await.iter().map(|i| i["image_id"].as_str().expect("id").to_string()).collect();
    assert_eq!(left.len(), 3);
    assert!(!left.contains(&ids[2]) && !dir.join(&ids[2]).exists());
    assert_eq!(c.http.delete("/v1/cached_images").await.expect(200).json()["num_deleted"], 3);
    assert!(cached(&c.http).await.is_empty());

    // The queue: PUT marks, GET lists, DELETE one or all (a second delete-all finds none).
    for id in &ids[..2] {
        let queued = c.http.send(c.http.request(Method::PUT, &format!("/v1/queued_images/{id}"))).await.expect(200);
        assert_eq!(queued.text(), "null");
    }
    let queued = c.http.get("/v1/queued_images").await.expect(200).json();
    assert_eq!(queued["queued_images"], serde_json::json!([ids[0], ids[1]]));
    // Only images that exist and are active can be queued.
    let missing = uuid::Uuid::new_v4();
    c.http.send(c.http.request(Method::PUT, &format!("/v1/queued_images/{missing}"))).await.expect(404);
    let reserved = c.http.post_image(&[("X-Image-Meta-Name", "queued")], None).await.expect(201).json();
    let reserved = reserved["image"]["id"].as_str().expect("id").to_string();
    c.http
        .send(c.http.request(Method::PUT, &format!("/v1/queued_images/{reserved}")))
        .await
        .expect_error(400, "active");
    c.http.delete(&format!("/v1/queued_images/{}", ids[0])).await.expect(200);
    assert_eq!(c.http.delete("/v1/queued_images").await.expect(200).json()["num_deleted"], 1);
    assert_eq!(c.http.delete("/v1/queued_images").await.expect(200).json()["num_deleted"], 0);
}

async fn cache_manage_needs_the_policy_and_cache_obeys_download_policy(driver: &'static str) {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let (c, dir) = cluster(&env, "cachemanagement", driver).await;
    let id = add_image(&c.http, "Image1").await;
    env.set_policy_rules(&serde_json::json!({"context_is_admin": "role:admin", "default": "",
        "manage_image_cache": "!", "download_image": "!"}));
    c.http.get("/v1/cached_images").await.expect(403);
    c.http.delete("/v1/cached_images").await.expect(403);
    c.http.delete(&format!("/v1/cached_images/{id}")).await.expect(403);
    c.http.send(c.http.request(Method::PUT, &format!("/v1/queued_images/{id}"))).await.expect(403);
    // Not allowed to download: 403, and nothing cached.
    c.http.get(&format!("/v1/images/{id}")).await.expect(403);
    assert!(!dir.join(&id).exists());
    c.http.delete(&format!("/v1/images/{id}")).await.expect(200);
}

async fn corrupt_store_data_is_not_cached(driver: &'static str) {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let (c, dir) = cluster(&env, "caching", driver).await;
    let id = add_image(&c.http, "Image1").await;
    std::fs::write(env.dir().join("images").join(&id), vec![b'#'; FIVE_KB]).expect("corrupt the store's copy");
    let client = reqwest::Client::new();
    // The server cuts the answer off: before its head when the image fits in one chunk (the
    // client sees an incomplete message), or part-way through the body.
    if let Ok(res) = client.get(format!("{}/v1/images/{id}", c.http.base)).send().await
        && let Ok(body) = res.bytes().await
    {
        assert!(body.len() < FIVE_KB, "corrupt data was served whole");
    }
    assert!(!dir.join(&id).exists(), "corrupt data was cached");
    assert!(dir.join("invalid").join(&id).exists(), "kept aside for the cleaner");
}

/// Writes glance-cache.conf for the cluster's cache and runs a cache tool with it; returns
/// (exit code, stdout, stderr).
fn run_tool(
    env: &TestEnv,
    c: &Cluster,
    dir: &std::path::Path,
    tool: &str,
    extra: &str,
    driver: &str,
) -> (i32, String, String) {
    let conf = env.dir().join("glance-cache.conf");
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\ndebug = True\nverbose = True\nimage_cache_dir = {}\nimage_cache_driver = {driver}\n\
             registry_host = 0.0.0.0\nregistry_port = {}\nfilesystem_store_datadir = {}\n\
             metadata_encryption_key = 012345678901234567890123456789ab\nlog_file = {}\n{extra}",
            dir.display(),
            c.registry.port,
            env.dir().join("images").display(),
            env.dir().join("cache.log").display()
        ),
    )
    .expect("write glance-cache.conf");
    let out = std::process::Command::new(glance_tests::bin_path(tool))
        .arg("--config-file")
        .arg(&conf)
        .output()
        .expect("run the tool");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn queue_and_prefetch(driver: &'static str) {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let (c, dir) = cluster(&env, "cachemanagement", driver).await;
    let mut ids = Vec::new();
    for x in 0..4 {
        ids.push(add_image(&c.http, &format!("Image{x}")).await);
    }
    c.http.send(c.http.request(Method::PUT, &format!("/v1/queued_images/{}", ids[0]))).await.expect(200);
    assert!(cached(&c.http).await.is_empty());
    let (code, out, err) = run_tool(&env, &c, &dir, "glance-cache-prefetcher", "", driver);
    assert_eq!((code, out.trim()), (0, ""), "{err}");
    let list = cached(&c.http).await;
    assert!(list.iter().any(|i| i["image_id"] == ids[0].as_str()), "{list:?}");
    assert!(
        c.http.get("/v1/queued_images").await.expect(200).json()["queued_images"].as_array().expect("ids").is_empty()
    );
}

async fn pruner_keeps_the_most_recently_read(driver: &'static str) {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let (c, dir) = cluster(&env, "cachemanagement", driver).await;
    let mut ids = Vec::new();
    for x in 0..10 {
        let mut headers = minimal_headers(&format!("small{x}"));
        headers.push(("X-Image-Meta-Size", "1024".into()));
        let image = c.http.post_image(&as_refs(&headers), Some(vec![b'x'; 1024])).await.expect(201).json();
        let id = image["image"]["id"].as_str().expect("id").to_string();
        c.http.get(&format!("/v1/images/{id}")).await.expect(200);
        ids.push(id);
    }
    // Read the last five again: they are the most recently used.
    for id in &ids[5..] {
        c.http.get(&format!("/v1/images/{id}")).await.expect(200);
    }
    let (code, _, err) = run_tool(&env, &c, &dir, "glance-cache-pruner", "image_cache_max_size = 5120\n", driver);
    assert_eq!(code, 0, "{err}");
    let mut left: Vec<String> =
        cached(&c.http).await.iter().map(|i| i["image_id"].as_str().expect("id").to_string()).collect();
    left.sort();
    let mut expected = ids[5..].to_vec();
    expected.sort();
    assert_eq!(left, expected);
    assert!(ids[..5].iter().all(|id| !dir.join(id).exists()));
}

async fn cleaner_removes_invalid_and_stalled_files(driver: &'static str) {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let (c, dir) = cluster(&env, "caching", driver).await;
    std::fs::write(dir.join("invalid").join("bad"), b"x").expect("write");
    let stalled = dir.join("incomplete").join("stalled");
    std::fs::write(&stalled, b"x").expect("write");
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options().write(true).open(&stalled).and_then(|f| f.set_modified(long_ago)).expect("age");
    std::fs::write(dir.join("incomplete").join("fresh"), b"x").expect("write");
    let (code, out, err) = run_tool(&env, &c, &dir, "glance-cache-cleaner", "image_cache_stall_time = 3600\n", driver);
    assert_eq!((code, out.trim()), (0, ""), "{err}");
    assert!(!dir.join("invalid").join("bad").exists() && !stalled.exists());
    assert!(dir.join("incomplete").join("fresh").exists(), "a file still being written stays");
}

async fn cache_tools_report_errors(driver: &'static str) {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let (c, _) = cluster(&env, "caching", driver).await;
    let unwritable = std::path::Path::new("/proc/glance-cache");
    let (code, _, err) = run_tool(&env, &c, unwritable, "glance-cache-pruner", "", driver);
    assert_eq!(code, 1);
    assert!(err.starts_with("ERROR: ") && err.contains("image_cache_dir"), "{err}");
}

/// glance-cache-manage against the API on `port`: (exit code, stdout).
fn manage(port: u16, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(glance_tests::bin_path("glance-cache-manage"))
        .arg("--host=127.0.0.1")
        .arg(format!("--port={port}"))
        .args(args)
        .env("OS_AUTH_STRATEGY", "noauth")
        .env_remove("OS_AUTH_URL")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run glance-cache-manage");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn glance_cache_manage_commands(driver: &'static str) {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let (c, _) = cluster(&env, "cachemanagement", driver).await;
    let port = c.api.port;
    let (code, out) = manage(port, &["list-cached"]);
    assert_eq!((code, out.trim()), (0, "No cached images."));
    let (code, out) = manage(port, &["list-queued"]);
    assert_eq!((code, out.trim()), (0, "No queued images."));

    let id = add_image(&c.http, "Image1").await;
    let other = add_image(&c.http, "Image2").await;
    c.http.get(&format!("/v1/images/{id}")).await.expect(200);
    let (code, out) = manage(port, &["list-cached"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("Found 1 cached images...") && out.contains(&id), "{out}");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(
        out.contains(&format!("{today}T")) && out.contains("N/A"),
        "modified today, never read from the cache: {out}"
    );

    assert_eq!(manage(port, &["--force", "queue-image", &other]).0, 0);
    let (code, out) = manage(port, &["list-queued"]);
    assert!(code == 0 && out.starts_with("Found 1 queued images...") && out.contains(&other), "{out}");
    assert_eq!(manage(port, &["--force", "delete-queued-image", &other]).0, 0);
    assert_eq!(manage(port, &["--force", "delete-all-queued-images"]).0, 0);
    assert_eq!(manage(port, &["list-queued"]).1.trim(), "No queued images.");
    let (code, out) = manage(port, &["-v", "--force", "delete-cached-image", &id]);
    assert!(code == 0 && out.contains(&format!("Deleted cached image {id}")), "{out}");

    for command in ["queue-image", "delete-queued-image", "delete-cached-image"] {
        let (code, out) = manage(port, &["--force", command, &id, &other]);
        assert_eq!(code, 1);
        assert!(out.contains("Please specify one and only ID of the image you wish to"), "{out}");
    }
    let (code, out) = manage(port, &["explode"]);
    assert!(code == 1 && out.contains("Unknown command: explode"), "{out}");
    assert_eq!(manage(port, &[]).0, 0, "no command prints the help");

    env.set_policy_rules(
        &serde_json::json!({"context_is_admin": "role:admin", "default": "", "manage_image_cache": "!"}),
    );
    let (code, out) = manage(port, &["list-cached"]);
    assert_eq!((code, out.trim()), (1, "Not authorized to make this request."));
}

async fn glance_cache_manage_without_the_middleware(_driver: &'static str) {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let c = Cluster::start(&env).await;
    let (code, out) = manage(c.api.port, &["list-cached"]);
    assert_eq!(code, 1);
    assert!(out.contains("Cache management middleware not enabled on host 127.0.0.1"), "{out}");
}

/// Two clients fetch the same uncached image at once: both get every byte, and it is cached
/// once. A download that was cut off mid-caching leaves nothing a later download would serve.
/// A cached file changed behind the cache's back is evicted and the image served from the
/// store (and cached again, good).
async fn tampered_cached_file_is_evicted(driver: &'static str) {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let (c, dir) = cluster(&env, "caching", driver).await;
    let id = add_image(&c.http, "Image1").await;
    c.http.get(&format!("/v1/images/{id}")).await.expect(200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    std::fs::write(dir.join(&id), vec![b'#'; FIVE_KB]).expect("tamper with the cached copy");
    assert_eq!(c.http.get(&format!("/v1/images/{id}")).await.expect(200).body, data5k(), "served from the store");
    assert_eq!(std::fs::read(dir.join(&id)).expect("cached again"), data5k());
    std::fs::write(dir.join(&id), b"short").expect("truncate the cached copy");
    assert_eq!(c.http.get(&format!("/v1/images/{id}")).await.expect(200).body, data5k());
}

/// The cache obeys visibility: another tenant's private image is a 404 even when it is cached.
async fn cache_obeys_visibility(driver: &'static str) {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let dir = env.dir().join("image-cache");
    let registry = env.registry().flavor("fakeauth").start().await;
    let api = env
        .api(&registry)
        .option("paste_deploy.flavor", "fakeauth+caching")
        .option("DEFAULT.image_cache_dir", dir.to_str().expect("utf-8"))
        .option("DEFAULT.image_cache_driver", driver)
        .start()
        .await;
    let http = Api::new(api.url());
    let owner = super::As { api: &http, token: "ann:t1:member".into() };
    let stranger = super::As { api: &http, token: "sam:t2:member".into() };
    let headers = [
        ("Content-Type", "application/octet-stream"),
        ("X-Image-Meta-Name", "private"),
        ("X-Image-Meta-disk_format", "raw"),
        ("X-Image-Meta-container_format", "bare"),
    ];
    let image = owner.send(Method::POST, "/v1/images", &headers, Some(data5k())).await.expect(201).json();
    let path = format!("/v1/images/{}", image["image"]["id"].as_str().expect("id"));
    assert_eq!(owner.send(Method::GET, &path, &[], None).await.expect(200).body, data5k());
    assert!(dir.join(image["image"]["id"].as_str().expect("id")).exists(), "cached for its owner");
    stranger.send(Method::GET, &path, &[], None).await.expect(404);
}

async fn concurrent_and_cut_off_downloads(driver: &'static str) {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let (c, dir) = cluster(&env, "cachemanagement", driver).await;
    let big = vec![b'b'; 8 << 20];
    let mut headers = minimal_headers("big");
    headers.push(("X-Image-Meta-Size", (8 << 20).to_string()));
    let image = c.http.post_image(&as_refs(&headers), Some(big.clone())).await.expect(201).json();
    let id = image["image"]["id"].as_str().expect("id").to_string();
    let path = format!("/v1/images/{id}");
    let (a, b) = tokio::join!(c.http.get(&path), c.http.get(&path));
    assert!(a.body == big && b.body == big, "both downloads got every byte");
    let list = cached(&c.http).await;
    assert_eq!((list.len(), list[0]["size"].as_i64()), (1, Some(8 << 20)));
    assert!(std::fs::read_dir(dir.join("incomplete")).expect("dir").next().is_none(), "nothing left half written");

    // Cut off mid-caching: a second image, read one chunk, hang up.
    let mut headers = minimal_headers("cut");
    headers.push(("X-Image-Meta-Size", (8 << 20).to_string()));
    let image = c.http.post_image(&as_refs(&headers), Some(big.clone())).await.expect(201).json();
    let cut = image["image"]["id"].as_str().expect("id").to_string();
    {
        let res = reqwest::Client::new().get(format!("{}/v1/images/{cut}", c.http.base)).send().await.expect("answer");
        let mut stream = res.bytes_stream();
        use futures_util::StreamExt;
        let _ = stream.next().await;
    } // dropped: the connection closes
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!dir.join(&cut).exists(), "a cut-off download was cached as complete");
    assert_eq!(c.http.get(&format!("/v1/images/{cut}")).await.expect(200).body, big, "later downloads are whole");
}

/// glance-cache-manage logs in to Keystone (`OS_*`, as Glance's tool) against an API whose
/// flavor is `keystone+cachemanagement`; without credentials, or with wrong ones, it fails.
#[tokio::test]
async fn glance_cache_manage_logs_in_to_keystone() {
    let Some(ks) = glance_tests::keystone::keystone() else { return };
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let mut registry = env.registry().flavor("keystone");
    for (k, v) in ks.authtoken_options() {
        registry = registry.option(&k, &v);
    }
    let registry = registry.start().await;
    let mut api = env
        .api(&registry)
        .option("paste_deploy.flavor", "keystone+cachemanagement")
        .option("DEFAULT.image_cache_dir", env.dir().join("image-cache").to_str().expect("utf-8"));
    for (k, v) in ks.authtoken_options() {
        api = api.option(&k, &v);
    }
    let api = api.start().await;
    let run = |password: Option<&str>| {
        let mut command = std::process::Command::new(glance_tests::bin_path("glance-cache-manage"));
        command.arg("--host=127.0.0.1").arg(format!("--port={}", api.port)).arg("list-cached");
        command.env_remove("OS_AUTH_TOKEN").env_remove("OS_AUTH_URL").env("OS_AUTH_STRATEGY", "noauth");
        if let Some(password) = password {
            command
                .env("OS_AUTH_URL", format!("{}/v3", ks.url))
                .env("OS_USERNAME", "admin")
                .env("OS_PASSWORD", password)
                .env("OS_TENANT_NAME", "admin");
        }
        let out = command.stdin(std::process::Stdio::null()).output().expect("run glance-cache-manage");
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), text)
    };
    let (code, out) = run(Some("admin-secret"));
    assert_eq!((code, out.trim()), (0, "No cached images."));
    let (code, out) = run(Some("wrong"));
    assert_eq!(code, 1, "{out}");
    let (code, out) = run(None);
    assert_eq!(code, 1, "{out}");
    assert!(!out.contains("admin-secret"), "{out}");
}
