//! `swift_store_multi_tenant = True` against the real Keystone and Swift (keystoneauth
//! accounts `KEY_<project>`): each image lives in its owner's own account, in a container of
//! its own, readable straight from Swift only by the projects Glance lets read it.

use super::{Api, As, data5k};
use glance_tests::keystone::{Keystone, keystone};
use glance_tests::swift::swift;
use glance_tests::{Engine, Server, TestEnv};
use reqwest::Method;

async fn cluster(env: &TestEnv, ks: &Keystone, extra: &[(&str, &str)]) -> (Server, Server) {
    let mut options = ks.authtoken_options();
    let auth_address = format!("{}/v3", ks.url);
    for (k, v) in [
        ("glance_store.default_store", "swift"),
        ("glance_store.swift_store_auth_address", auth_address.as_str()),
        ("glance_store.swift_store_auth_version", "3"),
        ("glance_store.swift_store_user", "service:glance"),
        ("glance_store.swift_store_key", "glance-secret"),
        ("glance_store.swift_store_container", "glance"),
        ("glance_store.swift_store_multi_tenant", "True"),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        options.push((k.to_string(), v.to_string()));
    }
    let mut registry = env.registry().flavor("keystone");
    for (k, v) in ks.authtoken_options() {
        registry = registry.option(&k, &v);
    }
    let registry = registry.start().await;
    let mut api = env.api(&registry).option("paste_deploy.flavor", "keystone");
    for (k, v) in &options {
        api = api.option(k, v);
    }
    (registry, api.start().await)
}

fn headers(name: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/octet-stream".into()),
        ("X-Image-Meta-Name", name.into()),
        ("X-Image-Meta-disk_format", "raw".into()),
        ("X-Image-Meta-container_format", "bare".into()),
    ]
}

fn refs<'a>(headers: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    headers.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The image's location as the registry keeps it (asked with an admin token).
async fn location(registry: &Server, admin: &str, id: &str) -> String {
    let registry = Api::new(registry.url());
    let reply = registry.send(registry.request(Method::GET, &format!("/images/{id}")).header("x-auth-token", admin));
    let record = reply.await.expect(200).json();
    record["image"]["location"].as_str().expect("a location").to_string()
}

/// Swift's own answer to `method` on `url` with `token`.
async fn swift_status(method: Method, url: &str, token: &str) -> u16 {
    let res = reqwest::Client::new().request(method, url).header("x-auth-token", token).send().await;
    res.expect("Swift answers").status().as_u16()
}

#[tokio::test]
async fn images_live_in_their_owners_accounts_behind_acls() {
    let (Some(ks), Some(_swift)) = (keystone(), swift()) else { return };
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let (registry, api) = cluster(&env, ks, &[]).await;
    let http = Api::new(api.url());
    let alice_token = ks.token("alice", "alpha").await;
    let bob_token = ks.token("bob", "beta").await;
    let admin_token = ks.token("admin", "admin").await;
    let alice = As { api: &http, token: alice_token.token.clone() };
    let bob = As { api: &http, token: bob_token.token.clone() };
    let admin = As { api: &http, token: admin_token.token.clone() };

    let created = alice.send(Method::POST, "/v1/images", &refs(&headers("alpha's")), Some(data5k())).await;
    let id = created.expect(201).json()["image"]["id"].as_str().expect("id").to_string();
    let location = location(&registry, &admin_token.token, &id).await;
    let account = format!("/v1/KEY_{}", alice_token.project_id);
    assert!(location.ends_with(&format!("{account}/glance_{id}/{id}")), "{location}");
    assert!(location.starts_with("swift+http://"), "{location}");
    let object = location.replacen("swift+http", "http", 1);
    let container = object.rsplit_once('/').expect("container").0.to_string();

    // Private: only alpha reaches the object, through Glance or Swift.
    assert_eq!(swift_status(Method::GET, &object, &alice_token.token).await, 200);
    assert_eq!(swift_status(Method::GET, &object, &bob_token.token).await, 403);
    assert_eq!(alice.send(Method::GET, &format!("/v1/images/{id}"), &[], None).await.expect(200).body, data5k());

    // Sharing with beta opens the container to it; unsharing closes it again.
    let member = format!("/v1/images/{id}/members/{}", bob_token.project_id);
    alice.send(Method::PUT, &member, &[], None).await.expect(204);
    assert_eq!(swift_status(Method::GET, &object, &bob_token.token).await, 200);
    assert_eq!(bob.send(Method::GET, &format!("/v1/images/{id}"), &[], None).await.expect(200).body, data5k());
    alice.send(Method::DELETE, &member, &[], None).await.expect(204);
    assert_eq!(swift_status(Method::GET, &object, &bob_token.token).await, 403);
    bob.send(Method::GET, &format!("/v1/images/{id}"), &[], None).await.expect(404);

    // Public: everyone with a token reads it.
    alice.send(Method::PUT, &format!("/v1/images/{id}"), &[("X-Image-Meta-Is-Public", "True")], None).await.expect(200);
    assert_eq!(swift_status(Method::GET, &object, &bob_token.token).await, 200);
    alice
        .send(Method::PUT, &format!("/v1/images/{id}"), &[("X-Image-Meta-Is-Public", "False")], None)
        .await
        .expect(200);
    assert_eq!(swift_status(Method::GET, &object, &bob_token.token).await, 403);

    // An admin of another project is served with the service's (reseller admin) credentials.
    assert_eq!(admin.send(Method::GET, &format!("/v1/images/{id}"), &[], None).await.expect(200).body, data5k());

    // Deleting removes the object and the image's container.
    alice.send(Method::DELETE, &format!("/v1/images/{id}"), &[], None).await.expect(200);
    assert_eq!(swift_status(Method::HEAD, &container, &alice_token.token).await, 404);
    assert!(!api.logs().contains(&alice_token.token), "a token reached the log");
}

/// Large images go as segments into the image's own container, and all of it is deleted.
#[tokio::test]
async fn segmented_images_and_the_scrubber_in_owners_accounts() {
    let (Some(ks), Some(_swift)) = (keystone(), swift()) else { return };
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let (registry, api) = cluster(
        &env,
        ks,
        &[("glance_store.swift_store_large_object_chunk_size", "1"), ("DEFAULT.delayed_delete", "True")],
    )
    .await;
    let http = Api::new(api.url());
    let alice_token = ks.token("alice", "alpha").await;
    let bob_token = ks.token("bob", "beta").await;
    let admin_token = ks.token("admin", "admin").await;
    let alice = As { api: &http, token: alice_token.token.clone() };
    let data: Vec<u8> = (0..(5 << 19)).map(|i: u32| (i % 251) as u8).collect(); // 2.5 MiB
    // No declared size: the store cannot tell it is small, so it writes segments.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = data.chunks(64 << 10).map(|c| Ok(c.to_vec())).collect();
    let mut request = http.request(Method::POST, "/v1/images").header("x-auth-token", &alice_token.token);
    for (k, v) in headers("segmented") {
        request = request.header(k, v);
    }
    let reply = http.send(request.body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))).await;
    let id = reply.expect(201).json()["image"]["id"].as_str().expect("id").to_string();
    let object = location(&registry, &admin_token.token, &id).await.replacen("swift+http", "http", 1);
    let container = object.rsplit_once('/').expect("container").0.to_string();
    let listing = reqwest::Client::new()
        .get(&container)
        .header("x-auth-token", &alice_token.token)
        .send()
        .await
        .expect("Swift answers")
        .text()
        .await
        .expect("listing");
    assert!(listing.contains(&format!("{id}-00003")), "three segments expected: {listing}");
    assert_eq!(alice.send(Method::GET, &format!("/v1/images/{id}"), &[], None).await.expect(200).body, data);

    // Delayed delete: the data stays in alpha's account until glance-scrubber (service
    // credentials, a reseller admin) removes it, segments and container included; meanwhile
    // the container of a public image is closed to others.
    alice.send(Method::PUT, &format!("/v1/images/{id}"), &[("X-Image-Meta-Is-Public", "True")], None).await.expect(200);
    assert_eq!(swift_status(Method::GET, &object, &bob_token.token).await, 200);
    alice.send(Method::DELETE, &format!("/v1/images/{id}"), &[], None).await.expect(200);
    assert_eq!(swift_status(Method::HEAD, &object, &alice_token.token).await, 200);
    assert_eq!(swift_status(Method::GET, &object, &bob_token.token).await, 403);
    let own = env.dir().join("glance-scrubber.conf");
    std::fs::write(&own, format!("[DEFAULT]\nlog_file = {}\n", env.dir().join("scrubber.log").display()))
        .expect("scrubber config");
    let out = std::process::Command::new(glance_tests::bin_path("glance-scrubber"))
        .arg("--config-file")
        .arg(env.dir().join("glance-api.conf"))
        .arg("--config-file")
        .arg(&own)
        .output()
        .expect("run glance-scrubber");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(swift_status(Method::HEAD, &container, &alice_token.token).await, 404);
}

/// Without a Keystone token there is no caller account to write to: a clear 503, no image.
#[tokio::test]
async fn uploads_need_the_callers_account() {
    let (Some(ks), Some(_swift)) = (keystone(), swift()) else { return };
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let registry = env.registry().start().await;
    let api = env
        .api(&registry)
        .option("glance_store.default_store", "swift")
        .option("glance_store.swift_store_auth_address", &format!("{}/v3", ks.url))
        .option("glance_store.swift_store_auth_version", "3")
        .option("glance_store.swift_store_user", "service:glance")
        .option("glance_store.swift_store_key", "glance-secret")
        .option("glance_store.swift_store_multi_tenant", "True")
        .start()
        .await;
    let http = Api::new(api.url());
    let reply = http.post_image(&refs(&headers("anonymous")), Some(data5k())).await;
    reply.expect_error(503, "multi-tenant Swift store needs the caller's Keystone token");
}

/// Images written before the store became multi-tenant stay in the service's shared container:
/// still served, and a visibility change never opens that container (it would open every image
/// in it).
#[tokio::test]
async fn legacy_single_tenant_images_keep_their_shared_container_closed() {
    let (Some(ks), Some(swift)) = (keystone(), swift()) else { return };
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let shared = format!("glance-legacy-{}", uuid::Uuid::new_v4().simple());
    let (registry, multi) = cluster(&env, ks, &[("glance_store.swift_store_container", shared.as_str())]).await;
    // The same deployment before the switch: single-tenant, one container for everyone.
    let mut single = env.api(&registry).option("paste_deploy.flavor", "keystone");
    for (k, v) in ks.authtoken_options() {
        single = single.option(&k, &v);
    }
    for (k, v) in [
        ("glance_store.default_store", "swift"),
        ("glance_store.swift_store_auth_address", format!("{}/v3", ks.url).as_str()),
        ("glance_store.swift_store_auth_version", "3"),
        ("glance_store.swift_store_user", "service:glance"),
        ("glance_store.swift_store_key", "glance-secret"),
        ("glance_store.swift_store_container", shared.as_str()),
        ("glance_store.swift_store_create_container_on_put", "True"),
    ] {
        single = single.option(k, v);
    }
    let single = single.start().await;
    let alice_token = ks.token("alice", "alpha").await;
    let old = Api::new(single.url());
    let alice_before = As { api: &old, token: alice_token.token.clone() };
    let created = alice_before.send(Method::POST, "/v1/images", &refs(&headers("old")), Some(data5k())).await;
    let id = created.expect(201).json()["image"]["id"].as_str().expect("id").to_string();

    let http = Api::new(multi.url());
    let alice = As { api: &http, token: alice_token.token.clone() };
    assert_eq!(alice.send(Method::GET, &format!("/v1/images/{id}"), &[], None).await.expect(200).body, data5k());
    alice.send(Method::PUT, &format!("/v1/images/{id}"), &[("X-Image-Meta-Is-Public", "True")], None).await.expect(200);
    // The shared container, seen by the service user that owns it: no read ACL.
    let glance = ks.token("glance", "service").await;
    let object = location(&registry, &ks.token("admin", "admin").await.token, &id).await;
    let storage = reqwest::Client::new();
    let res = storage
        .head(format!("http://{}/v1/KEY_{}/{shared}", object_host(&swift.auth_url), glance.project_id))
        .header("x-auth-token", &glance.token)
        .send()
        .await
        .expect("Swift answers");
    assert_eq!(res.status().as_u16(), 204, "{object}");
    assert!(res.headers().get("x-container-read").is_none_or(|v| v.is_empty()), "{:?}", res.headers());
    alice.send(Method::DELETE, &format!("/v1/images/{id}"), &[], None).await.expect(200);
}

/// `host:port` of a URL.
fn object_host(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.split('/').next().unwrap_or(rest).to_string()
}
