//! The database goes away under a running registry, and comes back.

use super::Http;
use glance_tests::proxy::FaultProxy;
use glance_tests::{Engine, TestEnv, engine_tests};
use serde_json::json;
use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

engine_tests!(database_outage_answers_503_then_recovers);

async fn database_outage_answers_503_then_recovers(env: TestEnv) {
    if env.db.engine == Engine::Sqlite {
        // An embedded database has no server to lose.
        return;
    }
    let mut url = url::Url::parse(&env.db.sql_connection).expect("url");
    let target = (url.host_str().expect("host"), url.port().expect("port"))
        .to_socket_addrs()
        .expect("addr")
        .next()
        .expect("addr");
    let proxy = FaultProxy::start(target).await;
    url.set_port(Some(proxy.port)).expect("port");
    let reg = env.registry().sql_connection(url.as_str()).start().await;
    let http = Http::new(reg.url());
    http.create(json!({"name": "before", "is_public": true})).await;

    proxy.cut();
    let down = http.get("/images/detail").await;
    assert_eq!(down.status.as_u16(), 503, "{}", down.text);
    assert!(down.text.contains("database is unavailable"), "{}", down.text);
    http.post_json("/images", &json!({"image": {"name": "during"}})).await.expect(503);

    proxy.restore().await;
    let started = Instant::now();
    loop {
        let reply = http.get("/images/detail").await;
        if reply.status.as_u16() == 200 {
            let names: Vec<String> = reply.json()["images"]
                .as_array()
                .expect("list")
                .iter()
                .map(|i| i["name"].as_str().expect("name").to_string())
                .collect();
            assert_eq!(names, vec!["before"], "nothing was written during the outage");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "registry did not recover: {}", reply.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    http.create(json!({"name": "after"})).await;
}
