//! Every policy rule v1 enforces, denied and allowed on real servers, with fakeauth identities.

use super::{Api, As, Reply, data5k};
use glance_tests::http_source::HttpSource;
use glance_tests::{Engine, TestEnv};
use reqwest::Method;
use serde_json::{Value, json};

/// The v1 rules and what each guards.
const RULES: &[&str] = &[
    "get_images",
    "get_image",
    "download_image",
    "add_image",
    "modify_image",
    "publicize_image",
    "copy_from",
    "upload_image",
    "set_image_location",
    "delete_image",
    "get_members",
    "modify_member",
    "delete_member",
];

/// Everything allowed except `rule`, which needs the role `member`.
fn rules_with(rule: Option<&str>) -> Value {
    let mut rules = serde_json::Map::new();
    rules.insert("context_is_admin".into(), json!("role:admin"));
    rules.insert("default".into(), json!(""));
    for r in RULES {
        rules.insert(r.to_string(), json!(if Some(*r) == rule { "role:member" } else { "" }));
    }
    Value::Object(rules)
}

fn image_headers(name: &str) -> Vec<(&'static str, String)> {
    vec![
        ("X-Image-Meta-Name", name.into()),
        ("X-Image-Meta-disk_format", "raw".into()),
        ("X-Image-Meta-container_format", "bare".into()),
        ("Content-Type", "application/octet-stream".into()),
    ]
}

/// Does what `rule` guards to the image `id` (owned by the caller's tenant, shared with `t2`);
/// `remote` is an image URL on a fake HTTP server.
async fn attempt(user: &As<'_>, rule: &str, id: &str, remote: &str) -> Reply {
    let path = format!("/v1/images/{id}");
    let post = |extra: Vec<(&'static str, String)>, body: Option<Vec<u8>>| async move {
        let mut headers = image_headers("attempt");
        headers.extend(extra);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        user.send(Method::POST, "/v1/images", &headers, body).await
    };
    match rule {
        "get_images" => user.send(Method::GET, "/v1/images/detail", &[], None).await,
        "get_image" => user.head(&path).await,
        "download_image" => user.send(Method::GET, &path, &[], None).await,
        "add_image" => post(vec![], None).await,
        "modify_image" => user.send(Method::PUT, &path, &[("X-Image-Meta-Name", "renamed")], None).await,
        "publicize_image" => post(vec![("X-Image-Meta-Is-Public", "True".into())], None).await,
        "copy_from" => post(vec![("X-Glance-API-Copy-From", remote.into())], None).await,
        "upload_image" => post(vec![], Some(data5k())).await,
        "set_image_location" => post(vec![("X-Image-Meta-Location", remote.into())], None).await,
        "delete_image" => user.send(Method::DELETE, &path, &[], None).await,
        "get_members" => user.send(Method::GET, &format!("{path}/members"), &[], None).await,
        "modify_member" => user.send(Method::PUT, &format!("{path}/members/t3"), &[], None).await,
        "delete_member" => user.send(Method::DELETE, &format!("{path}/members/t2"), &[], None).await,
        other => panic!("no attempt for {other}"),
    }
}

#[tokio::test]
async fn every_v1_rule_denies_and_allows() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let registry = env.registry().flavor("fakeauth").start().await;
    let api = env.api(&registry).option("paste_deploy.flavor", "fakeauth").start().await;
    let http = Api::new(api.url());
    let member = As { api: &http, token: "ann:t1:member".into() };
    let reader = As { api: &http, token: "rita:t1:reader".into() };
    let source = HttpSource::start().await;
    let remote = source.uri("policy");

    for rule in RULES {
        // A fresh image of t1, shared with t2, made while everything is allowed.
        env.set_policy_rules(&rules_with(None));
        let headers = image_headers("fixture");
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let created = member.send(Method::POST, "/v1/images", &headers, Some(data5k())).await.expect(201).json();
        let id = created["image"]["id"].as_str().expect("id").to_string();
        member.send(Method::PUT, &format!("/v1/images/{id}/members/t2"), &[], None).await.expect(204);

        env.set_policy_rules(&rules_with(Some(rule)));
        let denied = attempt(&reader, rule, &id, &remote).await;
        assert_eq!(denied.status.as_u16(), 403, "{rule} let a reader through: {}", denied.text());
        let allowed = attempt(&member, rule, &id, &remote).await;
        assert!(allowed.status.is_success(), "{rule} refused a member: {} {}", allowed.status, allowed.text());
    }
}

#[tokio::test]
async fn context_is_admin_makes_admins() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    env.set_policy_rules(&json!({"context_is_admin": "role:admin or role:cloud_ops", "default": ""}));
    let registry = env.registry().flavor("trusted-auth").option("DEFAULT.registry_shared_secret", "s").start().await;
    let api = env
        .api(&registry)
        .option("paste_deploy.flavor", "fakeauth")
        .option("DEFAULT.registry_shared_secret", "s")
        .start()
        .await;
    let http = Api::new(api.url());
    let owner = As { api: &http, token: "ann:t1:member".into() };
    let headers = image_headers("private");
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let created = owner.send(Method::POST, "/v1/images", &headers, None).await.expect(201).json();
    let path = format!("/v1/images/{}", created["image"]["id"].as_str().expect("id"));

    As { api: &http, token: "olga:t9:cloud_ops".into() }.head(&path).await.expect(200);
    As { api: &http, token: "max:t9:member".into() }.head(&path).await.expect(404);
    // The rule is re-read when the file changes.
    env.set_policy_rules(&json!({"context_is_admin": "role:admin", "default": ""}));
    As { api: &http, token: "olga:t9:cloud_ops".into() }.head(&path).await.expect(404);
}

#[tokio::test]
async fn yaml_policies_and_broken_files() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let registry = env.registry().start().await;
    let yaml = env.dir().join("policy.yaml");
    std::fs::write(&yaml, "# oslo.policy YAML\n\"context_is_admin\": \"role:admin\"\ndownload_image: '!'\n")
        .expect("write");
    let api = env.api(&registry).option("DEFAULT.policy_file", yaml.to_str().expect("utf-8")).start().await;
    let http = Api::new(api.url());
    let headers = image_headers("yaml");
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let created = http.post_image(&headers, Some(data5k())).await.expect(201).json();
    let path = format!("/v1/images/{}", created["image"]["id"].as_str().expect("id"));
    http.get(&path).await.expect(403);
    http.head(&path).await.expect(200);

    // A file that breaks while the server runs: the old rules stay, and the log says why.
    std::fs::write(&yaml, "download_image: [unclosed\n").expect("write");
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(2);
    std::fs::File::options().write(true).open(&yaml).and_then(|f| f.set_modified(later)).expect("touch");
    http.get(&path).await.expect(403);
    assert!(api.logs().contains("not reloaded, previous rules stay in force"), "{}", api.logs());

    // A broken file at start-up stops the server with the line named.
    let config = env.dir().join("broken-policy-api.conf");
    std::fs::write(
        &config,
        format!(
            "[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {}\npolicy_file = {}\nfilesystem_store_datadir = {}\n",
            glance_tests::process::free_port(),
            yaml.display(),
            env.dir().join("images").display()
        ),
    )
    .expect("write config");
    let out = std::process::Command::new(glance_tests::bin_path("glance-api"))
        .arg("--config-file")
        .arg(&config)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("policy.yaml") && stderr.contains("line"), "{stderr}");
}
