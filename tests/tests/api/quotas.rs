//! user_storage_quota: at and just over the limit, per owner, enforced while streaming, and
//! held by concurrent uploads of one owner together.

use super::{Api, As, Reply, files_in};
use glance_tests::{Server, TestEnv, engine_tests};
use reqwest::Method;
use std::time::Duration;

engine_tests!(storage_quota_at_and_over_the_limit, concurrent_uploads_share_one_quota);

const MIB: usize = 1 << 20;

async fn cluster(env: &TestEnv, quota: &str) -> (Server, Server) {
    let registry = env.registry().flavor("fakeauth").start().await;
    let api = env
        .api(&registry)
        .option("paste_deploy.flavor", "fakeauth")
        .option("DEFAULT.user_storage_quota", quota)
        .start()
        .await;
    (registry, api)
}

/// A chunked upload (no declared size) of `size` bytes in 256 KiB pieces, `pause` apart.
async fn upload(user: &As<'_>, name: &str, size: usize, pause: Duration) -> Reply {
    let pieces = size.div_ceil(256 * 1024);
    let stream = futures_util::stream::unfold(0, move |i| async move {
        if i == pieces {
            return None;
        }
        tokio::time::sleep(pause).await;
        let len = (size - i * 256 * 1024).min(256 * 1024);
        Some((Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'q'; len])), i + 1))
    });
    let r = user
        .api
        .request(Method::POST, "/v1/images")
        .header("x-auth-token", &user.token)
        .header("Content-Type", "application/octet-stream")
        .header("X-Image-Meta-Name", name)
        .header("X-Image-Meta-disk_format", "raw")
        .header("X-Image-Meta-container_format", "bare")
        .body(reqwest::Body::wrap_stream(stream));
    user.api.send(r).await
}

async fn storage_quota_at_and_over_the_limit(env: TestEnv) {
    let (_registry, api) = cluster(&env, "10KB").await;
    let http = Api::new(api.url());
    let t1 = As { api: &http, token: "ann:t1:member".into() };
    let t2 = As { api: &http, token: "bob:t2:member".into() };
    let images = env.dir().join("images");

    let first = upload(&t1, "a", 5120, Duration::ZERO).await.expect(201).json();
    upload(&t1, "b", 5120, Duration::ZERO).await.expect(201); // exactly at the quota
    upload(&t1, "c", 1, Duration::ZERO)
        .await
        .expect_error(413, "Denying attempt to upload image because it exceeds the quota");
    assert_eq!(files_in(&images).len(), 2, "the refused upload left no data");
    let killed = t1.send(Method::GET, "/v1/images/detail?changes-since=2000-01-01", &[], None).await.json();
    assert!(killed["images"].as_array().expect("list").iter().any(|i| i["name"] == "c" && i["status"] == "killed"));

    // Quotas are per owner.
    upload(&t2, "other", 10240, Duration::ZERO).await.expect(201);
    upload(&t2, "over", 1, Duration::ZERO).await.expect(413);

    // A declared size over what is left is refused before any data is read.
    let declared = t1
        .send(
            Method::POST,
            "/v1/images",
            &[
                ("Content-Type", "application/octet-stream"),
                ("X-Image-Meta-Name", "declared"),
                ("X-Image-Meta-disk_format", "raw"),
                ("X-Image-Meta-container_format", "bare"),
                ("X-Image-Meta-Size", "4096"),
            ],
            Some(vec![b'd'; 4096]),
        )
        .await;
    declared.expect_error(413, "0 bytes remaining");

    // Deleting frees the space.
    let id = first["image"]["id"].as_str().expect("id");
    t1.send(Method::DELETE, &format!("/v1/images/{id}"), &[], None).await.expect(200);
    upload(&t1, "again", 5120, Duration::ZERO).await.expect(201);
    upload(&t1, "streamed over", 2 * MIB, Duration::ZERO).await.expect(413);
    assert_eq!(files_in(&images).len(), 3, "t1 keeps b and again, t2 keeps other");
}

async fn concurrent_uploads_share_one_quota(env: TestEnv) {
    let (_registry, api) = cluster(&env, "12MB").await;
    let http = Api::new(api.url());
    let t1 = As { api: &http, token: "ann:t1:member".into() };
    let pause = Duration::from_millis(5);

    // Two that fit together both succeed while they overlap.
    let (a, b) = tokio::join!(upload(&t1, "a", 5 * MIB, pause), upload(&t1, "b", 5 * MIB, pause));
    for r in [a.expect(201), b.expect(201)] {
        let id = r.json()["image"]["id"].as_str().expect("id").to_string();
        t1.send(Method::DELETE, &format!("/v1/images/{id}"), &[], None).await.expect(200);
    }

    // Two that would pass it together: one is stopped, and what is stored stays within the quota.
    let (c, d) = tokio::join!(upload(&t1, "c", 7 * MIB, pause), upload(&t1, "d", 7 * MIB, pause));
    let statuses = [c.status.as_u16(), d.status.as_u16()];
    assert!(statuses.contains(&201) && statuses.contains(&413), "{statuses:?}: {} / {}", c.text(), d.text());
    let active = t1.send(Method::GET, "/v1/images/detail", &[], None).await.json();
    let stored: i64 = active["images"].as_array().expect("list").iter().map(|i| i["size"].as_i64().unwrap_or(0)).sum();
    assert_eq!(stored, 7 * MIB as i64);
    assert_eq!(files_in(&env.dir().join("images")).len(), 1, "the stopped upload left no data");
}
