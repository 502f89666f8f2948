//! Version negotiation and the version document (Glance's `functional/test_api.py`).

use super::Cluster;
use glance_tests::{Engine, TestEnv};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn version_variations() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let c = Cluster::start(&env).await;
    let api = &c.http;
    let port = c.api.port;
    let doc = |v2: bool| {
        let entry = |status: &str, id: &str, major: u8| json!({"status": status, "id": id, "links": [{"href": format!("http://127.0.0.1:{port}/v{major}/"), "rel": "self"}]});
        let mut versions = Vec::new();
        if v2 {
            versions.extend([
                entry("CURRENT", "v2.2", 2),
                entry("SUPPORTED", "v2.1", 2),
                entry("SUPPORTED", "v2.0", 2),
            ]);
        }
        versions.extend([entry("CURRENT", "v1.1", 1), entry("SUPPORTED", "v1.0", 1)]);
        json!({ "versions": versions })
    };
    let get = |path: &'static str, accept: Option<&'static str>| {
        let mut r = api.request(Method::GET, path);
        if let Some(a) = accept {
            r = r.header("Accept", a);
        }
        api.send(r)
    };
    for (path, accept, status) in [
        ("/", None, 300),
        ("/images", None, 300),
        ("/v1/images", None, 200),
        ("/", Some("unknown"), 300),
        ("/images", Some("application/vnd.openstack.images-v1"), 200),
        ("/images", Some("application/vnd.openstack.compute-v1"), 300),
        ("/v1.a/images", None, 300),
        ("/va.1/images", None, 300),
        ("/v1.2/images", None, 300),
        ("/v10", None, 300),
        ("/v1.0/images", None, 200),
        ("/versions", None, 300),
        ("/versions", Some("application/vnd.openstack.images-v1"), 300),
        ("/v1/versions", None, 404),
        ("/v3/versions", None, 300),
        ("/images", Some("application/vnd.openstack.images-v10"), 300),
    ] {
        let reply = get(path, accept).await;
        assert_eq!(reply.status.as_u16(), status, "{path} with Accept {accept:?}: {}", reply.text());
        if status == 300 {
            assert_eq!(reply.json(), doc(true), "{path}");
        }
    }
    // Python's spacing, byte for byte.
    let text = get("/", None).await.text();
    assert!(text.starts_with(r#"{"versions": [{"status": "CURRENT", "id": "v2.2", "links": [{"href": "#), "{text}");
    let log = std::fs::read_to_string(&c.api.log_file).expect("api log");
    assert!(log.contains("Unknown version. Returning version choices"), "{log}");

    let env2 = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let c2 = Cluster::start_with(&env2, &[("DEFAULT.enable_v2_api", "False")]).await;
    let reply = c2.http.get("/v2/images").await.expect(300);
    assert_eq!(reply.json()["versions"].as_array().expect("list").len(), 2);
}

#[tokio::test]
async fn request_ids_on_every_response() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let c = Cluster::start(&env).await;
    for path in ["/v1/images", "/v1/images/nope", "/v1/nowhere", "/", "/versions"] {
        let reply = c.http.get(path).await;
        assert!(reply.header("x-openstack-request-id").is_some_and(|id| id.starts_with("req-")), "{path}");
    }
}
