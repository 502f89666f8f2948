//! A store that cannot be used, seen through glance-api: wrong credentials, nothing listening,
//! a container or bucket missing with create-on-put off, a store that stops answering. The
//! caller gets 503 with a message naming the store (never a hang, never a location), the
//! image is killed and nothing is kept.

use super::{Api, as_refs, minimal_headers};
use bytes::Bytes;
use futures_util::StreamExt;
use glance_tests::proxy::FaultProxy;
use glance_tests::{Server, TestEnv};
use std::time::Duration;

/// An API on `registry` with the environment's store, `options` changed.
async fn api(env: &TestEnv, registry: &Server, options: &[(&str, &str)]) -> (Server, Api) {
    let mut builder = env.api(registry);
    for (k, v) in options {
        builder = builder.option(k, v);
    }
    let api = builder.start().await;
    let http = Api::new(api.url());
    (api, http)
}

/// An upload to a store that refuses it: 503 naming the store (`names`), image killed, no data.
async fn upload_refused(env: &TestEnv, http: &Api, names: &str) {
    let headers = minimal_headers("refused");
    let reply = http.post_image(&as_refs(&headers), Some(vec![b'r'; 4096])).await.expect_error(503, names);
    assert!(!reply.text().contains("127.0.0.1"), "no address in the answer: {}", reply.text());
    let all = http.get("/v1/images/detail?is_public=none&changes-since=2000-01-01").await.expect(200).json();
    let statuses: Vec<&str> =
        all["images"].as_array().expect("list").iter().filter_map(|i| i["status"].as_str()).collect();
    assert!(statuses.iter().all(|s| *s == "killed"), "{statuses:?}");
    assert!(env.stored_objects().await.is_empty(), "{:?}", env.stored_objects().await);
}

/// Each store's ways of being unusable: `(option, value)` changes with the words the 503
/// must name (`{dead}` and `{absent}` filled in: a port nothing listens on, a fresh name).
type Cases = [(&'static [(&'static str, &'static str)], &'static str); 3];

const SWIFT_CASES: Cases = [
    (&[("swift_store_key", "not-the-key")], "The Swift store refused its credentials"),
    (&[("swift_store_auth_address", "http://{dead}/auth/v1.0")], "The Swift store is unavailable"),
    (&[("swift_store_container", "{absent}"), ("swift_store_create_container_on_put", "False")], "{absent}"),
];

const S3_CASES: Cases = [
    (&[("s3_store_secret_key", "not-the-secret")], "The S3 store refused its credentials"),
    (&[("s3_store_host", "http://{dead}")], "The S3 store is unavailable"),
    (&[("s3_store_bucket", "{absent}"), ("s3_store_create_bucket_on_put", "False")], "{absent}"),
];

async fn unusable_store_answers_503(env: TestEnv, cases: &Cases) {
    let registry = env.registry().start().await;
    let dead = format!("127.0.0.1:{}", glance_tests::process::free_port());
    let absent = format!("absent-{}", uuid::Uuid::new_v4().simple());
    let fill = |text: &str| text.replace("{dead}", &dead).replace("{absent}", &absent);
    for (changes, names) in cases {
        let options: Vec<(String, String)> =
            changes.iter().map(|(k, v)| (format!("glance_store.{k}"), fill(v))).collect();
        let options: Vec<(&str, &str)> = options.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (_api, http) = api(&env, &registry, &options).await;
        upload_refused(&env, &http, &fill(names)).await;
    }
}

#[tokio::test]
async fn swift_that_cannot_be_used_answers_503() {
    let Some(env) = TestEnv::with_swift() else { return };
    unusable_store_answers_503(env, &SWIFT_CASES).await;
}

#[tokio::test]
async fn s3_that_cannot_be_used_answers_503() {
    let Some(env) = TestEnv::with_s3() else { return };
    unusable_store_answers_503(env, &S3_CASES).await;
}

/// A client slower than `remote_store_timeout` (pausing mid-upload, pausing while it
/// downloads) is not the store being silent: both transfers complete.
async fn slow_clients_are_not_cut_off(env: TestEnv) {
    let registry = env.registry().start().await;
    let (_api, http) = api(&env, &registry, &[("glance_store.remote_store_timeout", "1")]).await;
    let pause = Duration::from_millis(2500);
    // More than the sockets between client, API and store can hold, so that they fill up.
    let data: Vec<u8> = (0..24usize << 20).map(|i| (i * 31 % 251) as u8).collect();
    let pieces: Vec<Bytes> = data.chunks(1 << 20).map(Bytes::copy_from_slice).collect();
    let paused = futures_util::stream::iter(pieces.into_iter().enumerate()).then(move |(n, piece)| async move {
        if n == 4 {
            tokio::time::sleep(pause).await;
        }
        Ok::<_, std::io::Error>(piece)
    });
    let mut request = http.request(reqwest::Method::POST, "/v1/images");
    for (k, v) in minimal_headers("slow client") {
        request = request.header(k, v);
    }
    let created = http.send(request.body(reqwest::Body::wrap_stream(paused))).await.expect(201).json();
    let id = created["image"]["id"].as_str().expect("id").to_string();
    assert_eq!(created["image"]["checksum"], super::md5_hex(&data));

    let response = reqwest::get(format!("{}/v1/images/{id}", http.base)).await.expect("download");
    let mut body = response.bytes_stream();
    let (mut got, mut paused) = (Vec::with_capacity(data.len()), false);
    while let Some(piece) = body.next().await {
        got.extend_from_slice(&piece.expect("the download goes on"));
        if !paused && got.len() >= 2 << 20 {
            paused = true;
            tokio::time::sleep(pause).await;
        }
    }
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the download is the upload");
}

glance_tests::swift_store_tests!(slow_clients_are_not_cut_off);
glance_tests::s3_store_tests!(slow_clients_are_not_cut_off);

/// The data is stored, then the store goes silent (frozen behind a proxy): a download answers
/// 503 naming the store once `remote_store_timeout` has passed, and so does an upload.
#[tokio::test]
async fn silent_swift_answers_503() {
    let Some(env) = TestEnv::with_swift() else { return };
    // A broken limit would hang here: fail instead.
    tokio::time::timeout(Duration::from_secs(120), silent_swift(env)).await.expect("a silent store hung the API");
}

async fn silent_swift(env: TestEnv) {
    let swift = glance_tests::swift::swift().expect("swift");
    let real = url::Url::parse(&swift.auth_url).expect("auth url");
    let proxy = FaultProxy::start(format!("127.0.0.1:{}", real.port().expect("port")).parse().expect("addr")).await;
    let mut through = real.clone();
    through.set_port(Some(proxy.port)).expect("port");
    let registry = env.registry().start().await;
    let options =
        [("glance_store.swift_store_auth_address", through.as_str()), ("glance_store.remote_store_timeout", "1")];
    let (_api, http) = api(&env, &registry, &options).await;
    let headers = minimal_headers("stored");
    let created = http.post_image(&as_refs(&headers), Some(vec![b's'; 8192])).await.expect(201).json();
    let id = created["image"]["id"].as_str().expect("id").to_string();
    http.get(&format!("/v1/images/{id}")).await.expect(200);

    proxy.freeze();
    let reply = http.get(&format!("/v1/images/{id}")).await.expect_error(503, "The Swift store is unavailable");
    assert!(reply.text().contains("remote_store_timeout"), "{}", reply.text());
    http.post_image(&as_refs(&headers), Some(vec![b's'; 8192])).await.expect_error(503, "remote_store_timeout");
}
