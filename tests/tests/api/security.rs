//! What users may not make the API do: fetch internal addresses, learn locations, see others' images.

use super::Cluster;
use glance_tests::http_source::HttpSource;
use glance_tests::{Engine, TestEnv};
use reqwest::Method;

fn copy_headers(uri: &str) -> Vec<(&'static str, String)> {
    vec![
        ("X-Image-Meta-Name", "ssrf".into()),
        ("X-Image-Meta-disk_format", "raw".into()),
        ("X-Image-Meta-container_format", "bare".into()),
        ("X-Image-Meta-Size", "0".into()),
        ("X-Glance-API-Copy-From", uri.into()),
    ]
}

#[tokio::test]
async fn copy_from_and_locations_cannot_reach_internal_services() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let c = Cluster::start(&env).await;
    let registry = c.registry.port;
    for uri in [
        format!("http://127.0.0.1:{registry}/images/detail?is_public=none"),
        format!("http://localhost:{registry}/images/detail"),
        format!("http://127.0.0.1:{}/v1/images", c.api.port),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://[::ffff:169.254.169.254]/latest".to_string(),
    ] {
        let headers = copy_headers(&uri);
        c.http.post_image(&super::as_refs(&headers), None).await.expect_error(400, "is not allowed");
        let location = [
            ("X-Image-Meta-Name", "loc"),
            ("X-Image-Meta-disk_format", "raw"),
            ("X-Image-Meta-container_format", "bare"),
            ("X-Image-Meta-Location", uri.as_str()),
        ];
        c.http.post_image(&location, None).await.expect_error(400, "is not allowed");
    }
    assert!(c.http.ids("/v1/images?is_public=none").await.is_empty(), "nothing was registered");
}

#[tokio::test]
async fn a_dead_location_is_not_revealed_on_download() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let c = Cluster::start(&env).await;
    let source = HttpSource::start().await;
    let location = format!("{}?temp_url_sig=secret-token", source.uri("remote"));
    let image = c
        .http
        .post_image(
            &[
                ("X-Image-Meta-Name", "remote"),
                ("X-Image-Meta-disk_format", "raw"),
                ("X-Image-Meta-container_format", "bare"),
                ("X-Image-Meta-Location", &location),
                ("X-Image-Meta-Is-Public", "True"),
            ],
            None,
        )
        .await
        .expect(201)
        .json();
    let id = image["image"]["id"].as_str().expect("id").to_string();
    drop(source); // the web server goes away
    let reply = c.http.get(&format!("/v1/images/{id}")).await;
    assert!(reply.status.is_client_error() || reply.status.is_server_error(), "{}", reply.text());
    assert!(!reply.text().contains("secret-token") && !reply.text().contains("127.0.0.1"), "{}", reply.text());
}

#[tokio::test]
async fn utf8_names_and_properties_round_trip() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let c = Cluster::start(&env).await;
    let name = reqwest::header::HeaderValue::from_bytes("Ünïcödé café ☃".as_bytes()).expect("utf-8 header");
    let r = c.http.request(Method::POST, "/v1/images").header("X-Image-Meta-Name", name.clone()).header(
        "X-Image-Meta-Property-Description",
        reqwest::header::HeaderValue::from_bytes("déjà vu".as_bytes()).expect("h"),
    );
    let image = c.http.send(r).await.expect(201).json();
    assert_eq!(image["image"]["name"], "Ünïcödé café ☃");
    assert_eq!(image["image"]["properties"]["description"], "déjà vu");
    let head = c.http.head(&format!("/v1/images/{}", image["image"]["id"].as_str().expect("id"))).await.expect(200);
    assert_eq!(head.headers.get("x-image-meta-name").map(|v| v.as_bytes()), Some(name.as_bytes()));
}

#[tokio::test]
async fn locations_with_credentials_or_unknown_schemes_are_refused() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let c = Cluster::start(&env).await;
    let source = HttpSource::start().await;
    let with_credentials = source.uri("img").replace("http://", "http://user:s3cret@");
    for (uri, expected) in [
        (with_credentials.as_str(), "Credentials are not allowed"),
        ("gopher://example.com/img", "External source are not supported"),
        ("s3://key:secret@s3.example.com/bucket/img", "Credentials are not allowed"),
        ("swift+https://example.com/v1/AUTH_x/glance/img", "External source are not supported"),
    ] {
        let location = [
            ("X-Image-Meta-Name", "loc"),
            ("X-Image-Meta-disk_format", "raw"),
            ("X-Image-Meta-container_format", "bare"),
            ("X-Image-Meta-Location", uri),
        ];
        let res = c.http.post_image(&location, None).await.expect_error(400, expected);
        assert!(!res.text().contains("s3cret") && !res.text().contains("secret@"), "{}", res.text());
        let headers = copy_headers(uri);
        c.http.post_image(&super::as_refs(&headers), None).await.expect_error(400, expected);
    }
    assert!(c.http.ids("/v1/images?is_public=none").await.is_empty(), "nothing was registered");
    assert!(!c.api.logs().contains("s3cret"), "a credential was logged");
}
