//! Glance's `functional/v1/test_multiprocessing.py`, gzip, and HTTPS.

use super::{Cluster, as_refs, data5k, minimal_headers};
use glance_tests::{Engine, TestEnv};
use std::process::Command;
use std::time::Duration;

/// Direct children of `pid`, from /proc.
fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        // pid (comm) state ppid ...: comm may contain spaces, so read after the last ')'.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(pid) {
            found.push(child);
        }
    }
    found.sort();
    found
}

#[tokio::test]
async fn multiprocessing_and_interrupt_avoids_respawn_storm() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let registry = env.registry().option("DEFAULT.workers", "2").start().await;
    let api = env.api(&registry).option("DEFAULT.workers", "2").start().await;
    let http = super::Api::new(api.url());
    assert_eq!(http.get("/v1/images").await.expect(200).text(), r#"{"images": []}"#);
    // Both workers serve: several requests in a row all work.
    let headers = minimal_headers("mp");
    for _ in 0..6 {
        http.post_image(&as_refs(&headers), Some(data5k())).await.expect(201);
    }
    assert_eq!(http.ids("/v1/images").await.len(), 6);

    let workers = children(api.pid());
    assert_eq!(workers.len(), 2, "two worker processes under the API: {workers:?}");
    let mut kill = Command::new("kill");
    kill.arg("-INT");
    for pid in &workers {
        kill.arg(pid.to_string());
    }
    assert!(kill.status().expect("kill").success());
    for _ in 0..9 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = children(api.pid());
        assert!(now.len() <= workers.len(), "more workers than before: {now:?}");
        assert!(now.iter().all(|p| workers.contains(p)), "a worker was respawned: {now:?} vs {workers:?}");
    }
    http.get("/v1/images").await.expect(200);

    // A crashed worker is replaced.
    assert!(Command::new("kill").arg("-KILL").arg(workers[0].to_string()).status().expect("kill").success());
    let mut replaced = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = children(api.pid());
        if now.len() == 2 && !now.contains(&workers[0]) {
            replaced = true;
            break;
        }
    }
    assert!(replaced, "the killed worker was not replaced: {:?}", children(api.pid()));

    // SIGTERM stops the supervisor and its workers.
    let supervisor = api.pid();
    let mut api = api;
    let status = api.stop().expect("running");
    assert!(status.success(), "{status}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(children(supervisor).is_empty(), "workers left behind");
}

#[tokio::test]
async fn gzip_only_when_asked() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let c = Cluster::start(&env).await;
    let headers = minimal_headers("gz");
    let id = c.http.post_image(&as_refs(&headers), Some(data5k())).await.expect(201).json()["image"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let plain = c
        .http
        .send(c.http.request(reqwest::Method::GET, "/v1/images").header("Accept-Encoding", "identity"))
        .await
        .expect(200);
    assert_eq!(plain.header("content-encoding"), None);
    let gz = c
        .http
        .send(c.http.request(reqwest::Method::GET, "/v1/images").header("Accept-Encoding", "gzip"))
        .await
        .expect(200);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let data = c
        .http
        .send(c.http.request(reqwest::Method::GET, &format!("/v1/images/{id}")).header("Accept-Encoding", "gzip"))
        .await
        .expect(200);
    assert_eq!(data.header("content-encoding"), Some("gzip"));
    assert!(data.body.len() < 5120, "5 KiB of '*' compresses");
}

#[tokio::test]
async fn https_with_cert_and_key_files() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let (cert, key) = (env.dir().join("cert.pem"), env.dir().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    if !made.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("!!!!! SKIPPED: openssl is needed to make a test certificate");
        return;
    }
    let registry = env.registry().start().await;
    let api = env
        .api(&registry)
        .option("DEFAULT.cert_file", cert.to_str().expect("utf-8"))
        .option("DEFAULT.key_file", key.to_str().expect("utf-8"))
        .start()
        .await;
    let out = Command::new("curl")
        .args(["-sk", "-o", "-", "-w", "\n%{http_code}"])
        .arg(format!("https://127.0.0.1:{}/", api.port))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("300"), "{text}");
    assert!(text.contains(&format!("https://127.0.0.1:{}/v1/", api.port)), "version links use https: {text}");
}
