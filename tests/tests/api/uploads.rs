//! Uploads and downloads: streaming, verification, limits, and what failures leave behind.

use super::{Cluster, DATA5K_MD5, FIVE_KB, as_refs, data5k, files_in, md5_hex, minimal_headers};
use glance_tests::{Engine, TestEnv, engine_and_store_tests};
use std::io::{Read, Write};
use std::time::Duration;

engine_and_store_tests!(
    checksum_or_size_mismatch_kills_the_image,
    chunked_upload_over_the_cap_is_refused,
    upload_cut_off_mid_stream_leaves_nothing
);

async fn checksum_or_size_mismatch_kills_the_image(env: TestEnv) {
    let c = Cluster::start(&env).await;
    for (header, value, attr) in [
        ("X-Image-Meta-Checksum", "0123456789abcdef0123456789abcdef", "checksum"),
        ("X-Image-Meta-Size", "5121", "size"),
    ] {
        let mut headers = minimal_headers("bad");
        headers.push((header, value.into()));
        c.http
            .post_image(&as_refs(&headers), Some(data5k()))
            .await
            .expect_error(400, &format!("Supplied {attr} ({value}) and {attr} generated from uploaded image"));
    }
    // Killed images are hidden, and no data was kept.
    assert!(c.http.ids("/v1/images").await.is_empty());
    let killed = c.http.get("/v1/images/detail?is_public=none&changes-since=2000-01-01").await.expect(200).json();
    assert!(killed["images"].as_array().expect("list").iter().all(|i| i["status"] == "killed"));
    assert_eq!(killed["images"].as_array().expect("list").len(), 2);
    assert!(env.stored_objects().await.is_empty(), "{:?}", env.stored_objects().await);
}

async fn chunked_upload_over_the_cap_is_refused(env: TestEnv) {
    let c = Cluster::start_with(&env, &[("DEFAULT.image_size_cap", "128")]).await;
    // Declared too big: 400 before anything is stored.
    let headers = minimal_headers("declared");
    c.http
        .post_image(&as_refs(&headers), Some(vec![b'x'; 129]))
        .await
        .expect_error(400, "Denying attempt to upload image larger than 128 bytes.");
    // Chunked, no length: stopped at the cap with 413, image killed, nothing kept.
    let stream =
        futures_util::stream::iter((0..4).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'y'; 64]))));
    let mut r = c.http.request(reqwest::Method::POST, "/v1/images");
    for (k, v) in minimal_headers("chunked") {
        r = r.header(k, v);
    }
    let reply = c.http.send(r.body(reqwest::Body::wrap_stream(stream))).await;
    reply.expect_error(413, "Denying attempt to upload image larger than 128 bytes.");
    assert!(c.http.ids("/v1/images").await.is_empty());
    assert!(env.stored_objects().await.is_empty(), "{:?}", env.stored_objects().await);
    // Within the cap it works.
    c.http.post_image(&as_refs(&minimal_headers("small")), Some(vec![b'z'; 100])).await.expect(201);
}

/// The client dies half way: no active image, no data file, no staging file.
async fn upload_cut_off_mid_stream_leaves_nothing(env: TestEnv) {
    let c = Cluster::start(&env).await;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", c.api.port)).expect("connect");
    let head = "POST /v1/images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nX-Image-Meta-Name: cut\r\n\
                X-Image-Meta-disk_format: raw\r\nX-Image-Meta-container_format: bare\r\nX-Image-Meta-Is-Public: True\r\n\
                Content-Length: 10485760\r\n\r\n";
    stream.write_all(head.as_bytes()).expect("head");
    stream.write_all(&vec![b'q'; 3 << 20]).expect("part of the body");
    // Wait until the upload is under way (the image is saving), then vanish.
    let mut saw_saving = false;
    for _ in 0..200 {
        let list = c.http.get("/v1/images/detail").await.expect(200).json();
        if list["images"].as_array().expect("list").iter().any(|i| i["status"] == "saving") {
            saw_saving = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(saw_saving, "the upload never started");
    drop(stream);
    let mut settled = false;
    for _ in 0..200 {
        let all = c.http.get("/v1/images/detail?is_public=none&changes-since=2000-01-01").await.expect(200).json();
        let statuses: Vec<String> = all["images"]
            .as_array()
            .expect("list")
            .iter()
            .map(|i| i["status"].as_str().expect("status").to_string())
            .collect();
        if statuses == ["killed"] {
            settled = true;
            break;
        }
        assert!(!statuses.contains(&"active".to_string()), "a cut-off upload became active");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(settled, "the cut-off upload was not killed");
    assert!(env.stored_objects().await.is_empty(), "{:?}", env.stored_objects().await);
}

#[tokio::test]
async fn zero_size_wrong_content_type_and_locations() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let c = Cluster::start(&env).await;
    let api = &c.http;
    // Size 0: active at once, empty download.
    let zero =
        api.post_image(&[("X-Image-Meta-Name", "zero"), ("X-Image-Meta-Size", "0")], None).await.expect(201).json();
    assert_eq!(zero["image"]["status"], "active");
    let got = api.get(&format!("/v1/images/{}", zero["image"]["id"].as_str().expect("id"))).await.expect(200);
    assert!(got.body.is_empty());
    // Data with the wrong content type: 400, image killed.
    let mut headers = minimal_headers("typed");
    headers[0].1 = "text/plain".into();
    api.post_image(&as_refs(&headers), Some(data5k()))
        .await
        .expect_error(400, "Content-Type must be application/octet-stream");
    // Data without formats: 400.
    api.post_image(&[("Content-Type", "application/octet-stream"), ("X-Image-Meta-Name", "nofmt")], Some(data5k()))
        .await
        .expect_error(400, "Invalid disk format 'None' for image.");
    // A location on an HTTP server: active, data served from there, location never shown.
    let source = glance_tests::http_source::HttpSource::start().await;
    let loc = source.uri("remote");
    let image = api
        .post_image(
            &[
                ("X-Image-Meta-Name", "remote"),
                ("X-Image-Meta-disk_format", "raw"),
                ("X-Image-Meta-container_format", "bare"),
                ("X-Image-Meta-Location", &loc),
            ],
            None,
        )
        .await
        .expect(201)
        .json();
    assert_eq!(image["image"]["status"], "active");
    assert_eq!(image["image"]["size"], 5120);
    assert!(!image.to_string().contains(&loc), "location revealed: {image}");
    let id = image["image"]["id"].as_str().expect("id");
    let got = api.get(&format!("/v1/images/{id}")).await.expect(200);
    assert_eq!(md5_hex(&got.body), DATA5K_MD5);
    let head = api.head(&format!("/v1/images/{id}")).await.expect(200);
    assert!(head.headers.iter().all(|(_, v)| !v.to_str().unwrap_or("").contains(&loc)));
    // A size that disagrees with the location's: 409.
    api.post_image(
        &[
            ("X-Image-Meta-Name", "r2"),
            ("X-Image-Meta-disk_format", "raw"),
            ("X-Image-Meta-container_format", "bare"),
            ("X-Image-Meta-Size", "7"),
            ("X-Image-Meta-Location", &loc),
        ],
        None,
    )
    .await
    .expect_error(409, "Provided image size must match the stored image size.");
    // Two sources at once: 400.
    api.post_image(
        &[("X-Image-Meta-Name", "two"), ("X-Glance-API-Copy-From", &loc), ("X-Image-Meta-Location", &loc)],
        None,
    )
    .await
    .expect_error(400, "It's invalid to provide multiple image sources.");
    // Unknown header, bad store.
    api.post_image(&[("X-Image-Meta-Bogus", "1")], None).await.expect_error(400, "Bad header: x-image-meta-bogus");
    api.post_image(&[("X-Image-Meta-Store", "tape")], None).await.expect_error(400, "Required store tape is invalid");
    // Upload into a queued image, then a second upload is refused.
    let queued = api
        .post_image(
            &[
                ("X-Image-Meta-Name", "q"),
                ("X-Image-Meta-disk_format", "raw"),
                ("X-Image-Meta-container_format", "bare"),
            ],
            None,
        )
        .await
        .expect(201)
        .json();
    let path = format!("/v1/images/{}", queued["image"]["id"].as_str().expect("id"));
    let up = api.put(&path, &[("Content-Type", "application/octet-stream")], Some(data5k())).await.expect(200).json();
    assert_eq!(
        (up["image"]["status"].clone(), up["image"]["checksum"].clone()),
        (serde_json::json!("active"), serde_json::json!(DATA5K_MD5))
    );
    api.put(&path, &[("Content-Type", "application/octet-stream")], Some(data5k()))
        .await
        .expect_error(409, "Cannot upload to an unqueued image");
    // Protected images cannot be deleted.
    api.put(&path, &[("X-Image-Meta-Protected", "True")], None).await.expect(200);
    api.delete(&path).await.expect_error(403, "Image is protected");
}

#[tokio::test]
async fn registry_errors_and_outages_reach_the_client() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let mut c = Cluster::start(&env).await;
    // A registry validation error keeps its message.
    c.http
        .post_image(&[("X-Image-Meta-Id", "not-a-uuid")], None)
        .await
        .expect_error(400, "Failed to reserve image. Got error: Invalid image id format");
    c.registry.stop();
    let reply = c.http.get("/v1/images").await;
    reply.expect_error(503, "registry");
    c.registry.restart().await;
    c.http.get("/v1/images").await.expect(200);
}

#[tokio::test]
async fn large_upload_streams_through() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let c = Cluster::start(&env).await;
    // 64 MiB in 1 MiB chunks, with no Content-Length: streamed, hashed, stored, read back.
    let chunk = bytes::Bytes::from(vec![7u8; 1 << 20]);
    let stream = futures_util::stream::iter((0..64).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let mut r = c.http.request(reqwest::Method::POST, "/v1/images");
    for (k, v) in minimal_headers("big") {
        r = r.header(k, v);
    }
    let image = c.http.send(r.body(reqwest::Body::wrap_stream(stream))).await.expect(201).json();
    assert_eq!(image["image"]["size"], 64 << 20);
    let id = image["image"]["id"].as_str().expect("id");
    let mut file = std::fs::File::open(env.dir().join("images").join(id)).expect("stored file");
    let mut head = [0u8; 16];
    file.read_exact(&mut head).expect("read");
    assert_eq!(head, [7u8; 16]);
    let got = c.http.get(&format!("/v1/images/{id}")).await.expect(200);
    assert_eq!(got.body.len(), 64 << 20);
    assert_eq!(md5_hex(&got.body), image["image"]["checksum"].as_str().expect("checksum"));
}

/// With default_store = swift or s3 the bytes are in that store (a Swift container, or the S3
/// bucket that is one), and the location written for the registry names the object without
/// credentials; deleting the image deletes the object.
async fn object_store_holds_the_data(env: TestEnv, scheme: &str) {
    let c = Cluster::start(&env).await;
    let image = c.http.post_image(&as_refs(&minimal_headers("in a store")), Some(data5k())).await.expect(201).json();
    let id = image["image"]["id"].as_str().expect("id");
    let registry = super::Api::new(c.registry.url());
    let record = registry.get(&format!("/images/{id}")).await.expect(200).json();
    let location = record["image"]["location"].as_str().expect("location");
    assert!(
        location.starts_with(&format!("{scheme}://127.0.0.1:")) && location.ends_with(&format!("/{id}")),
        "{location}"
    );
    assert!(!location.contains("testing") && !location.contains('@'), "credentials in {location}");
    assert_eq!(c.http.get(&format!("/v1/images/{id}")).await.expect(200).body, data5k());
    assert!(files_in(&env.dir().join("images")).is_empty(), "nothing went to the file store");
    let swift = glance_tests::swift::swift().expect("swift");
    let (token, storage) = swift.login().await;
    let container = location.rsplit('/').nth(1).expect("container");
    let object = format!("{storage}/{container}/{id}");
    let client = reqwest::Client::new();
    let head = client.head(&object).header("x-auth-token", &token).send().await.expect("head");
    assert_eq!(head.status().as_u16(), 200);
    c.http.delete(&format!("/v1/images/{id}")).await.expect(200);
    let head = client.head(&object).header("x-auth-token", &token).send().await.expect("head");
    assert_eq!(head.status().as_u16(), 404);
}

#[tokio::test]
async fn swift_store_holds_the_data() {
    let Some(env) = TestEnv::with_swift() else { return };
    object_store_holds_the_data(env, "swift+http").await;
}

#[tokio::test]
async fn s3_store_holds_the_data() {
    let Some(env) = TestEnv::with_s3() else { return };
    object_store_holds_the_data(env, "s3+http").await;
}

/// `Want-Digest: md5` (RFC 3230): the answer carries `Digest: md5=<base64>`, and data that no
/// longer matches its checksum is cut short instead of served as if whole.
#[tokio::test]
async fn downloads_verify_md5_when_asked() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let c = Cluster::start(&env).await;
    let image = c.http.post_image(&as_refs(&minimal_headers("digest")), Some(data5k())).await.expect(201).json();
    let id = image["image"]["id"].as_str().expect("id").to_string();
    let path = format!("/v1/images/{id}");
    let asked =
        c.http.send(c.http.request(reqwest::Method::GET, &path).header("Want-Digest", "sha-256;q=1, md5;q=0.5")).await;
    assert_eq!(asked.status.as_u16(), 200);
    assert_eq!(asked.body, data5k());
    let md5 = hex::decode(DATA5K_MD5).expect("hex");
    let expected = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, md5);
    assert_eq!(asked.header("digest"), Some(format!("md5={expected}").as_str()));

    // The file changes behind the API's back (same size).
    std::fs::write(env.dir().join("images").join(&id), vec![b'#'; FIVE_KB]).expect("corrupt");
    assert_eq!(c.http.get(&path).await.expect(200).body, vec![b'#'; FIVE_KB], "unasked: served as stored");
    let client = reqwest::Client::new();
    let res = client.get(format!("{}{path}", c.http.base)).header("Want-Digest", "md5").send().await.expect("answer");
    assert_eq!(res.status().as_u16(), 200);
    // Either the transfer fails (what a client must see) or it comes up short.
    if let Ok(body) = res.bytes().await {
        assert!(body.len() < FIVE_KB, "corrupt data was served whole");
    }
    assert!(c.api.logs().contains("does not match its checksum"));
}

/// swift_store_auth_version = 3: the store logs in to Keystone, finds Swift in the catalog
/// and keeps images in the service project's account (KEY_<project id>).
#[tokio::test]
async fn swift_store_with_keystone_auth() {
    let Some(keystone) = glance_tests::keystone::keystone() else { return };
    let Some(_swift) = glance_tests::swift::swift() else { return };
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let container = format!("glance-ks-{}", uuid::Uuid::new_v4().simple());
    let auth_address = format!("{}/v3", keystone.url);
    let c = Cluster::start_with(
        &env,
        &[
            ("glance_store.default_store", "swift"),
            ("glance_store.swift_store_auth_address", &auth_address),
            ("glance_store.swift_store_auth_version", "3"),
            ("glance_store.swift_store_user", "service:glance"),
            ("glance_store.swift_store_key", "glance-secret"),
            ("glance_store.swift_store_container", &container),
            ("glance_store.swift_store_create_container_on_put", "True"),
        ],
    )
    .await;
    let image =
        c.http.post_image(&as_refs(&minimal_headers("keystone swift")), Some(data5k())).await.expect(201).json();
    let id = image["image"]["id"].as_str().expect("id");
    let record = super::Api::new(c.registry.url()).get(&format!("/images/{id}")).await.expect(200).json();
    let location = record["image"]["location"].as_str().expect("location");
    assert_eq!(location, format!("swift+{}/{container}/{id}", auth_address));
    assert_eq!(c.http.get(&format!("/v1/images/{id}")).await.expect(200).body, data5k());
    c.http.delete(&format!("/v1/images/{id}")).await.expect(200);
    assert!(files_in(&env.dir().join("images")).is_empty());
}
