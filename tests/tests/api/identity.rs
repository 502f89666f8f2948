//! Who is asking: the keystone flavor against a real Keystone, Keystone outages, and the
//! registry's shared secret between API nodes and the registry.

use super::{Api, As, DATA5K_MD5, data5k};
use glance_tests::keystone::keystone;
use glance_tests::process::free_port;
use glance_tests::{Engine, Server, TestEnv};
use reqwest::Method;

fn image_headers(name: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/octet-stream".into()),
        ("X-Image-Meta-Name", name.into()),
        ("X-Image-Meta-disk_format", "raw".into()),
        ("X-Image-Meta-container_format", "bare".into()),
    ]
}

async fn keystone_cluster(env: &TestEnv, options: &[(String, String)]) -> (Server, Server) {
    let mut registry = env.registry().flavor("keystone");
    for (k, v) in options {
        registry = registry.option(k, v);
    }
    let registry = registry.start().await;
    let mut api = env.api(&registry).option("paste_deploy.flavor", "keystone");
    for (k, v) in options {
        api = api.option(k, v);
    }
    (registry, api.start().await)
}

#[tokio::test]
async fn keystone_tokens_decide_who_sees_what() {
    let Some(ks) = keystone() else { return };
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let mut options = ks.authtoken_options();
    options.push(("keystone_authtoken.token_cache_time".into(), "1".into()));
    let (registry, api) = keystone_cluster(&env, &options).await;
    let http = Api::new(api.url());

    // No token, or one Keystone does not know: 401 naming where to get one.
    let res = http.get("/v1/images").await.expect(401);
    assert_eq!(res.header("www-authenticate"), Some(format!("Keystone uri=\"{}\"", ks.url).as_str()));
    let bogus = As { api: &http, token: "gAAAAAB-not-a-token".into() };
    bogus.send(Method::GET, "/v1/images", &[], None).await.expect(401);

    let alice_token = ks.token("alice", "alpha").await;
    let alpha = alice_token.project_id.clone();
    let alice = As { api: &http, token: alice_token.token };
    let beta = ks.token("bob", "beta").await;
    let bob = As { api: &http, token: beta.token };
    let carol = As { api: &http, token: ks.token("carol", "alpha").await.token };
    let admin = As { api: &http, token: ks.token("admin", "admin").await.token };

    // Alice's image belongs to her project, whatever owner she asks for.
    let mut headers = image_headers("alpha-private");
    headers.push(("X-Image-Meta-Owner", "someone-else".into()));
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let created = alice.send(Method::POST, "/v1/images", &headers, Some(data5k())).await.expect(201).json();
    assert_eq!(created["image"]["owner"], alpha.as_str());
    assert_eq!(created["image"]["checksum"], DATA5K_MD5);
    let id = created["image"]["id"].as_str().expect("id").to_string();
    let path = format!("/v1/images/{id}");

    // The owner's project (alice, and carol who only reads) and the admin see it.
    for user in [&alice, &carol, &admin] {
        user.head(&path).await.expect(200);
    }
    assert_eq!(alice.send(Method::GET, &path, &[], None).await.expect(200).body, data5k());
    assert!(alice.ids("/v1/images/detail").await.contains(&id));
    assert!(admin.ids("/v1/images/detail?is_public=none").await.contains(&id));

    // Another project learns nothing: 404 everywhere, never 403.
    bob.head(&path).await.expect(404);
    bob.send(Method::GET, &path, &[], None).await.expect(404);
    bob.send(Method::PUT, &path, &[("X-Image-Meta-Name", "mine")], None).await.expect(404);
    bob.send(Method::DELETE, &path, &[], None).await.expect(404);
    bob.send(Method::GET, &format!("{path}/members"), &[], None).await.expect(404);
    assert!(!bob.ids("/v1/images/detail").await.contains(&id));

    // Shared with beta: bob may read and download, not change or delete.
    alice.send(Method::PUT, &format!("{path}/members/{}", beta.project_id), &[], None).await.expect(204);
    bob.head(&path).await.expect(200);
    assert_eq!(bob.send(Method::GET, &path, &[], None).await.expect(200).body, data5k());
    assert!(bob.ids("/v1/images/detail").await.contains(&id));
    let update = bob.send(Method::PUT, &path, &[("X-Image-Meta-Name", "mine")], None).await;
    assert!(matches!(update.status.as_u16(), 403 | 404), "a member changed the image: {}", update.text());
    let delete = bob.send(Method::DELETE, &path, &[], None).await;
    assert!(matches!(delete.status.as_u16(), 403 | 404), "a member deleted the image: {}", delete.text());
    let share = bob.send(Method::PUT, &format!("{path}/members/someone-else"), &[], None).await;
    assert!(matches!(share.status.as_u16(), 403 | 404), "a member shared the image: {}", share.text());
    assert_eq!(alice.head(&path).await.header("x-image-meta-name"), Some("alpha-private"));
    let members = alice.send(Method::GET, &format!("{path}/members"), &[], None).await.expect(200).json();
    assert_eq!(members["members"].as_array().expect("members").len(), 1);

    // A revoked token stops working once its cache entry (token_cache_time = 1 s) lapses.
    let short = ks.token("alice", "alpha").await;
    let short_lived = As { api: &http, token: short.token.clone() };
    short_lived.head(&path).await.expect(200);
    ks.revoke(&short.token).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    short_lived.head(&path).await.expect(401);

    // The owner may delete it.
    alice.send(Method::DELETE, &path, &[], None).await.expect(200);

    // Tokens never reach the logs.
    let logs = format!("{}{}", api.logs(), registry.logs());
    for token in [&alice.token, &bob.token, &admin.token, &short.token] {
        assert!(!logs.contains(token.as_str()), "a token was logged");
    }
}

/// `allow_anonymous_access = True` (both services): a request without a token reads what is
/// public and nothing else, and may not change anything; a bad token is still a 401.
#[tokio::test]
async fn anonymous_access_reads_public_images_only() {
    let Some(ks) = keystone() else { return };
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let mut options = ks.authtoken_options();
    options.push(("DEFAULT.allow_anonymous_access".into(), "True".into()));
    let (_registry, api) = keystone_cluster(&env, &options).await;
    let http = Api::new(api.url());
    let alice = As { api: &http, token: ks.token("alice", "alpha").await.token };
    let mut ids = Vec::new();
    for public in ["True", "False"] {
        let mut headers = image_headers(&format!("public={public}"));
        headers.push(("X-Image-Meta-Is-Public", public.into()));
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let created = alice.send(Method::POST, "/v1/images", &headers, Some(data5k())).await.expect(201).json();
        ids.push(created["image"]["id"].as_str().expect("id").to_string());
    }
    let (public, private) = (&ids[0], &ids[1]);

    assert_eq!(http.ids("/v1/images").await, vec![public.clone()]);
    assert_eq!(http.get(&format!("/v1/images/{public}")).await.expect(200).body, data5k());
    http.head(&format!("/v1/images/{private}")).await.expect(404);
    http.get(&format!("/v1/images/{private}")).await.expect(404);

    let headers = image_headers("anonymous");
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    http.post_image(&headers, Some(data5k())).await.expect_error(403, "Read-only access");
    http.put(&format!("/v1/images/{public}"), &[("X-Image-Meta-Name", "renamed")], None)
        .await
        .expect_error(403, "Read-only access");
    http.delete(&format!("/v1/images/{public}")).await.expect_error(403, "Read-only access");
    let member = format!("/v1/images/{public}/members/someone");
    http.send(http.request(Method::PUT, &member)).await.expect_error(403, "Read-only access");
    assert_eq!(
        alice.send(Method::HEAD, &format!("/v1/images/{public}"), &[], None).await.header("x-image-meta-name"),
        Some("public=True")
    );

    // Whom a private image is shared with is not for anonymous callers; the member itself and
    // the owner see it.
    let beta = ks.token("bob", "beta").await;
    alice.send(Method::PUT, &format!("/v1/images/{private}/members/{}", beta.project_id), &[], None).await.expect(204);
    let shared = format!("/v1/shared-images/{}", beta.project_id);
    let listed = |reply: super::Reply| reply.expect(200).json()["shared_images"].as_array().expect("list").len();
    assert_eq!(listed(http.get(&shared).await), 0);
    let bob = As { api: &http, token: beta.token };
    assert_eq!(listed(bob.send(Method::GET, &shared, &[], None).await), 1);
    assert_eq!(listed(alice.send(Method::GET, &shared, &[], None).await), 1);

    let bogus = As { api: &http, token: "gAAAAAB-not-a-token".into() };
    bogus.send(Method::GET, "/v1/images", &[], None).await.expect(401);
}

#[tokio::test]
async fn keystone_unreachable_is_503_never_an_allow() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let dead = format!("http://127.0.0.1:{}", free_port());
    let options: Vec<(String, String)> = [
        ("auth_url", dead.as_str()),
        ("username", "glance"),
        ("password", "glance-secret"),
        ("project_name", "service"),
        ("http_connect_timeout", "1"),
    ]
    .iter()
    .map(|(k, v)| (format!("keystone_authtoken.{k}"), v.to_string()))
    .collect();
    let (_registry, api) = keystone_cluster(&env, &options).await;
    let http = Api::new(api.url());
    http.get("/v1/images").await.expect(401);
    let someone = As { api: &http, token: "some-token".into() };
    someone.send(Method::GET, "/v1/images", &[], None).await.expect(503);
    let headers = image_headers("nope");
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    someone.send(Method::POST, "/v1/images", &headers, Some(data5k())).await.expect(503);
    assert!(!api.logs().contains("some-token"), "a token was logged");
}

#[tokio::test]
async fn registry_admits_only_api_nodes_with_the_shared_secret() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let secret = "correct horse battery staple";
    let registry = env
        .registry()
        .flavor("trusted-auth")
        .option("DEFAULT.registry_shared_secret", secret)
        .option("DEFAULT.bind_host", "127.0.0.1")
        .start()
        .await;
    let api = env
        .api(&registry)
        .option("paste_deploy.flavor", "fakeauth")
        .option("DEFAULT.registry_shared_secret", secret)
        .start()
        .await;
    let http = Api::new(api.url());
    let alice = As { api: &http, token: "alice:tenant-a:member".into() };
    let headers = image_headers("shared-secret");
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let created = alice.send(Method::POST, "/v1/images", &headers, Some(data5k())).await.expect(201).json();
    assert_eq!(created["image"]["owner"], "tenant-a", "the context travelled to the registry");
    let id = created["image"]["id"].as_str().expect("id").to_string();
    let bob = As { api: &http, token: "bob:tenant-b:member".into() };
    bob.head(&format!("/v1/images/{id}")).await.expect(404);

    // Straight to the registry: identity headers (even an admin claim) without the secret are refused.
    let direct = Api::new(registry.url());
    let forged = |secret: Option<&str>| {
        let mut r = direct
            .request(Method::GET, "/images/detail?is_public=none")
            .header("x-identity-status", "Confirmed")
            .header("x-roles", "admin")
            .header("x-glance-admin", "True");
        if let Some(s) = secret {
            r = r.header("x-glance-registry-secret", s);
        }
        r
    };
    direct.send(forged(None)).await.expect(401);
    direct.send(forged(Some("correct horse battery stapler"))).await.expect(401);
    let listed = direct.send(forged(Some(secret))).await.expect(200).json();
    assert_eq!(listed["images"][0]["id"], id.as_str());

    // An API node without the secret gets the registry's 401, not a silent empty answer.
    let outsider = env.api(&registry).option("paste_deploy.flavor", "fakeauth").start().await;
    let outsider = Api::new(outsider.url());
    let res = outsider
        .send(outsider.request(Method::GET, "/v1/images").header("x-auth-token", "alice:tenant-a:member"))
        .await;
    assert_eq!(res.status.as_u16(), 401, "{}", res.text());

    // The unauthenticated admin of the default flavor stays admin across the hop.
    let admin_api = env.api(&registry).option("DEFAULT.registry_shared_secret", secret).start().await;
    Api::new(admin_api.url()).head(&format!("/v1/images/{id}")).await.expect(200);

    for server in [&api, &registry] {
        assert!(!server.logs().contains(secret), "the shared secret was logged by {}", server.name);
    }
}

#[tokio::test]
async fn owner_is_tenant_and_admin_role() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let options = [
        ("DEFAULT.owner_is_tenant", "False"),
        ("DEFAULT.admin_role", "SuperUser"),
        ("paste_deploy.flavor", "fakeauth"),
    ];
    let mut registry = env.registry();
    for (k, v) in options {
        registry = registry.option(k, v);
    }
    let registry = registry.start().await;
    let mut api = env.api(&registry);
    for (k, v) in options {
        api = api.option(k, v);
    }
    let api = api.start().await;
    let http = Api::new(api.url());
    let alice = As { api: &http, token: "alice:t1:member".into() };
    let headers = image_headers("mine");
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let created = alice.send(Method::POST, "/v1/images", &headers, None).await.expect(201).json();
    assert_eq!(created["image"]["owner"], "alice", "owner_is_tenant = False: users own images");
    let path = format!("/v1/images/{}", created["image"]["id"].as_str().expect("id"));
    // Same tenant, another user: a stranger. The configured admin role (any case) sees it.
    As { api: &http, token: "ann:t1:member".into() }.head(&path).await.expect(404);
    As { api: &http, token: "root:t9:superuser".into() }.head(&path).await.expect(200);
    As { api: &http, token: "root:t9:admin".into() }.head(&path).await.expect(404);
}
