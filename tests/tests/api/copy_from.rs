//! Glance's `functional/v1/test_copy_to_file.py`: copy-from over HTTP into the file store.

use super::{Api, Cluster, DATA5K_MD5, FIVE_KB, data5k, md5_hex};
use glance_tests::http_source::HttpSource;
use glance_tests::{TestEnv, engine_and_store_tests};
use std::time::Duration;

engine_and_store_tests!(copy_from_http_store, copy_from_http_exists);

fn copy_headers(uri: &str) -> Vec<(&'static str, String)> {
    vec![
        ("X-Image-Meta-Name", "copied".into()),
        ("X-Image-Meta-disk_format", "raw".into()),
        ("X-Image-Meta-container_format", "ovf".into()),
        ("X-Image-Meta-Is-Public", "True".into()),
        ("X-Glance-API-Copy-From", uri.into()),
    ]
}

/// Polls HEAD until the image reaches `status` (about a second, as Glance's test allows).
async fn await_status(api: &Api, id: &str, status: &str) {
    for _ in 0..100 {
        let head = api.head(&format!("/v1/images/{id}")).await.expect(200);
        if head.header("x-image-meta-status") == Some(status) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("image {id} did not become {status}");
}

async fn copy_from_http_store(env: TestEnv) {
    let c = Cluster::start(&env).await;
    let source = HttpSource::start().await;
    let api = &c.http;
    let original = api
        .post_image(
            &[
                ("Content-Type", "application/octet-stream"),
                ("X-Image-Meta-Name", "external"),
                ("X-Image-Meta-Store", "file"),
                ("X-Image-Meta-disk_format", "raw"),
                ("X-Image-Meta-container_format", "ovf"),
                ("X-Image-Meta-Is-Public", "True"),
            ],
            Some(data5k()),
        )
        .await
        .expect(201)
        .json()["image"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let headers = copy_headers(&source.uri(&original));
    let data = api.post_image(&super::as_refs(&headers), None).await.expect(201).json();
    let copy = data["image"]["id"].as_str().expect("id").to_string();
    assert_ne!(copy, original);
    assert_eq!(
        (data["image"]["size"].clone(), data["image"]["name"].clone()),
        (serde_json::json!(FIVE_KB), serde_json::json!("copied"))
    );
    assert_eq!(data["image"]["status"], "queued");
    await_status(api, &copy, "active").await;
    let got = api.get(&format!("/v1/images/{copy}")).await.expect(200);
    assert_eq!(got.header("content-length"), Some("5120"));
    assert_eq!(md5_hex(&got.body), DATA5K_MD5);
    // The copy does not depend on the original.
    api.delete(&format!("/v1/images/{original}")).await.expect(200);
    let got = api.get(&format!("/v1/images/{copy}")).await.expect(200);
    assert_eq!(got.body, data5k());
    api.delete(&format!("/v1/images/{copy}")).await.expect(200);
}

async fn copy_from_http_exists(env: TestEnv) {
    let c = Cluster::start(&env).await;
    let source = HttpSource::start().await;
    let headers = copy_headers(&source.uri("foobar"));
    let image = c.http.post_image(&super::as_refs(&headers), None).await.expect(201).json()["image"].clone();
    assert_eq!(image["status"], "queued");
    let id = image["id"].as_str().expect("id");
    await_status(&c.http, id, "active").await;
    let got = c.http.get(&format!("/v1/images/{id}")).await.expect(200);
    assert_eq!(got.header("content-length"), Some("5120"));
    assert_eq!(md5_hex(&got.body), DATA5K_MD5);
    c.http.delete(&format!("/v1/images/{id}")).await.expect(200);
}

#[tokio::test]
async fn copy_from_http_nonexistent_location_url() {
    let env = TestEnv::new(glance_tests::Engine::Sqlite).expect("sqlite");
    let c = Cluster::start(&env).await;
    let source = HttpSource::start().await;
    let uri = format!("http://127.0.0.1:{}/snafu/foobar", source.port);
    let headers = copy_headers(&uri);
    c.http
        .post_image(&super::as_refs(&headers), None)
        .await
        .expect_error(404, "HTTP datastore could not find image at URI.");
}

#[tokio::test]
async fn copy_from_file_and_swift_config_are_refused() {
    let env = TestEnv::new(glance_tests::Engine::Sqlite).expect("sqlite");
    let c = Cluster::start(&env).await;
    let secret = env.dir().join("secret");
    std::fs::write(&secret, "XXX").expect("write");
    for uri in [format!("file://{}", secret.display()), "swift+config://xxx".to_string()] {
        let headers = copy_headers(&uri);
        c.http
            .post_image(&super::as_refs(&headers), None)
            .await
            .expect_error(400, &format!("External source are not supported: '{uri}'"));
        // The same rule holds for locations.
        c.http
            .post_image(
                &[
                    ("X-Image-Meta-Name", "loc"),
                    ("X-Image-Meta-disk_format", "raw"),
                    ("X-Image-Meta-container_format", "bare"),
                    ("X-Image-Meta-Location", &uri),
                ],
                None,
            )
            .await
            .expect_error(400, "External source are not supported");
    }
    assert!(c.http.ids("/v1/images?is_public=none").await.is_empty(), "nothing was registered");
}
