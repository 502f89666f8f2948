//! Several locations per image: downloads try them in the configured order and fall over to
//! the next one when a location fails; deleting an image deletes its data in every location.

use super::{Api, Cluster, files_in};
use glance_tests::http_source::HttpSource;
use glance_tests::{Engine, TestEnv};
use serde_json::json;

/// Registers an active 5 KiB image with these locations straight in the registry (the v1 API
/// sets one location; v2 and the replicator set several).
async fn image_at(c: &Cluster, urls: &[String]) -> String {
    let registry = Api::new(c.registry.url());
    let locations: Vec<_> = urls.iter().map(|u| json!({"url": u, "metadata": {}})).collect();
    let body = json!({"image": {"name": "multi", "status": "active", "size": 5120, "disk_format": "raw",
        "container_format": "bare", "is_public": true, "location_data": locations}});
    let reply = registry.send(registry.request(reqwest::Method::POST, "/images").json(&body)).await.expect(200);
    reply.json()["image"]["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn downloads_fall_over_to_the_next_location() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let c = Cluster::start(&env).await;
    let source = HttpSource::start().await;
    let gone = format!("http://127.0.0.1:{}/gone/x", source.port);
    let unreachable = format!("http://127.0.0.1:{}/images/x", glance_tests::process::free_port());
    let live = source.uri("live");

    let id = image_at(&c, &[gone.clone(), unreachable.clone(), live]).await;
    let body = c.http.get(&format!("/v1/images/{id}")).await.expect(200).body;
    assert_eq!(body, vec![b'*'; 5120], "served by the third location");

    let id = image_at(&c, &[gone.clone(), gone.clone()]).await;
    c.http.get(&format!("/v1/images/{id}")).await.expect_error(404, "data not found");
    let id = image_at(&c, &[gone, unreachable]).await;
    let res = c.http.get(&format!("/v1/images/{id}")).await;
    assert_eq!(res.status.as_u16(), 502, "{}", res.text());
    assert!(!res.text().contains("127.0.0.1"), "a location leaked: {}", res.text());
}

#[tokio::test]
async fn store_type_strategy_and_delete_everywhere() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let c = Cluster::start_with(
        &env,
        &[
            ("DEFAULT.location_strategy", "store_type"),
            ("store_type_location_strategy.store_type_preference", "http, file"),
        ],
    )
    .await;
    let source = HttpSource::start().await;
    // An upload to the file store, then an http copy listed after it.
    let headers = [
        ("Content-Type", "application/octet-stream"),
        ("X-Image-Meta-Name", "two places"),
        ("X-Image-Meta-disk_format", "raw"),
        ("X-Image-Meta-container_format", "bare"),
        ("X-Image-Meta-Is-Public", "True"),
    ];
    let created = c.http.post_image(&headers, Some(vec![b'f'; 5120])).await.expect(201).json();
    let id = created["image"]["id"].as_str().expect("id").to_string();
    let registry = Api::new(c.registry.url());
    let record = registry.get(&format!("/images/{id}")).await.expect(200).json();
    let file = record["image"]["location"].as_str().expect("location").to_string();
    let both = json!({"image": {"location_data": [{"url": file, "metadata": {}}, {"url": source.uri("copy"), "metadata": {}}]}});
    registry.send(registry.request(reqwest::Method::PUT, &format!("/images/{id}")).json(&both)).await.expect(200);

    // store_type prefers http, though the file location comes first.
    assert_eq!(c.http.get(&format!("/v1/images/{id}")).await.expect(200).body, vec![b'*'; 5120]);
    // location_order (another API on the same registry) takes the file.
    let ordered = env.api(&c.registry).start().await;
    assert_eq!(Api::new(ordered.url()).get(&format!("/v1/images/{id}")).await.expect(200).body, vec![b'f'; 5120]);

    // Deleting removes the data this deployment owns in every location (the file); the http
    // copy is read-only and stays.
    assert_eq!(files_in(&env.dir().join("images")), vec![id.clone()]);
    c.http.delete(&format!("/v1/images/{id}")).await.expect(200);
    assert!(files_in(&env.dir().join("images")).is_empty());
}
