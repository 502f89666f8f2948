//! glance-api end to end (the v1 image API arrives with its own issue).

use glance_tests::{Engine, TestEnv};
use serde_json::json;

#[tokio::test]
async fn api_starts_and_answers_with_the_version_document() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let registry = env.registry().start().await;
    let api = env.api(&registry).start().await;
    let reply = reqwest::get(format!("{}/", api.url())).await.expect("GET /");
    assert_eq!(reply.status().as_u16(), 300);
    assert!(reply.headers()["x-openstack-request-id"].to_str().expect("id").starts_with("req-"));
    let body: serde_json::Value = reply.json().await.expect("json");
    let href = |v: u8| format!("{}/v{v}/", api.url());
    let ids: Vec<&str> =
        body["versions"].as_array().expect("list").iter().map(|v| v["id"].as_str().expect("id")).collect();
    assert_eq!(ids, ["v2.2", "v2.1", "v2.0", "v1.1", "v1.0"]);
    assert_eq!(
        body["versions"][0],
        json!({"status": "CURRENT", "id": "v2.2", "links": [{"href": href(2), "rel": "self"}]})
    );
    assert_eq!(
        body["versions"][3],
        json!({"status": "CURRENT", "id": "v1.1", "links": [{"href": href(1), "rel": "self"}]})
    );
    let log = std::fs::read_to_string(&api.log_file).expect("api log");
    assert!(log.contains("Unknown version. Returning version choices"), "{log}");
}

#[tokio::test]
async fn disabled_versions_leave_the_document() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let registry = env.registry().start().await;
    let api = env.api(&registry).option("DEFAULT.enable_v2_api", "False").start().await;
    let body: serde_json::Value =
        reqwest::get(format!("{}/versions", api.url())).await.expect("get").json().await.expect("json");
    let ids: Vec<&str> =
        body["versions"].as_array().expect("list").iter().map(|v| v["id"].as_str().expect("id")).collect();
    assert_eq!(ids, ["v1.1", "v1.0"]);
}
