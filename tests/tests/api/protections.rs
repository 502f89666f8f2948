//! Property protections end to end, in both rule formats, with fakeauth identities
//! (`X-Auth-Token: user:tenant:role`).

use super::{Api, As};
use glance_tests::{Engine, Server, TestEnv, bin_path};
use reqwest::Method;

/// Glance's sample roles file, as shipped in deploy/etc.
const ROLES: &str = include_str!("../../../deploy/etc/property-protections-roles.conf");

async fn cluster(env: &TestEnv, file: &str, format: &str) -> (Server, Server) {
    let path = env.dir().join("property-protections.conf");
    std::fs::write(&path, file).expect("write protections");
    let registry = env.registry().flavor("fakeauth").start().await;
    let api = env
        .api(&registry)
        .option("paste_deploy.flavor", "fakeauth")
        .option("DEFAULT.property_protection_file", path.to_str().expect("utf-8"))
        .option("DEFAULT.property_protection_rule_format", format)
        .start()
        .await;
    (registry, api)
}

fn with_properties(name: &str, properties: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut headers = vec![
        ("X-Image-Meta-Name".to_string(), name.to_string()),
        ("X-Image-Meta-Is-Public".to_string(), "True".to_string()),
    ];
    headers.extend(properties.iter().map(|(k, v)| (format!("X-Image-Meta-Property-{k}"), v.to_string())));
    headers
}

impl As<'_> {
    async fn post(&self, name: &str, properties: &[(&str, &str)]) -> super::Reply {
        let headers = with_properties(name, properties);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.send(Method::POST, "/v1/images", &headers, None).await
    }

    /// PUT of metadata; Glance purges properties the request leaves out.
    async fn put(&self, id: &str, properties: &[(&str, &str)]) -> super::Reply {
        let headers = with_properties("renamed", properties);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.send(Method::PUT, &format!("/v1/images/{id}"), &headers, None).await
    }

    async fn properties(&self, id: &str) -> Vec<(String, String)> {
        let res = self.head(&format!("/v1/images/{id}")).await.expect(200);
        let mut props: Vec<(String, String)> = res
            .headers
            .iter()
            .filter_map(|(k, v)| {
                let key = k.as_str().strip_prefix("x-image-meta-property-")?;
                Some((key.to_string(), v.to_str().ok()?.to_string()))
            })
            .collect();
        props.sort();
        props
    }
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test]
async fn roles_format() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    let (_registry, api) = cluster(&env, ROLES, "roles").await;
    let http = Api::new(api.url());
    let admin = As { api: &http, token: "root:t1:admin".into() };
    let member = As { api: &http, token: "ann:t1:member".into() };
    let special = As { api: &http, token: "sam:t1:spl_role".into() };

    // create
    member.post("ok", &[("x_owner_foo", "bar")]).await.expect(201);
    member.post("no", &[("spl_update_prop", "x")]).await.expect_error(403, "Property 'spl_update_prop' is protected");
    admin.post("no", &[("x_none_permitted_a", "x")]).await.expect_error(403, "is protected");
    member.post("no", &[("unmatched", "x")]).await.expect_error(403, "Property 'unmatched' is protected");

    // read: hidden from whoever may not read it, in every response
    let created = admin
        .post(
            "read",
            &[("spl_read_only_prop", "r"), ("x_none_read", "secret"), ("x_owner_foo", "o"), ("spl_delete_prop", "d")],
        )
        .await
        .expect(201)
        .json();
    assert!(created["image"]["properties"].get("x_none_read").is_none(), "x_none_read is readable by nobody");
    let id = created["image"]["id"].as_str().expect("id").to_string();
    assert_eq!(special.properties(&id).await, pairs(&[("spl_delete_prop", "d"), ("spl_read_only_prop", "r")]));
    assert_eq!(member.properties(&id).await, pairs(&[("x_owner_foo", "o")]));
    let detail = member.send(Method::GET, "/v1/images/detail", &[], None).await.expect(200).json();
    let listed = detail["images"].as_array().expect("images").iter().find(|i| i["id"] == id.as_str()).expect("listed");
    assert_eq!(listed["properties"], serde_json::json!({"x_owner_foo": "o"}));

    // update: readable and updatable to change; an unchanged value needs only read
    special
        .put(&id, &[("spl_read_only_prop", "changed"), ("spl_delete_prop", "d")])
        .await
        .expect_error(403, "Property 'spl_read_only_prop' is protected");
    let sent = [("spl_read_only_prop", "r"), ("spl_delete_prop", "d"), ("x_owner_foo", "o")];
    special.put(&id, &sent).await.expect_error(403, "Property 'x_owner_foo' is protected");
    // Purging: what the caller cannot read stays; what it reads but may not delete refuses.
    special.put(&id, &[("spl_read_only_prop", "r")]).await.expect(200);
    assert_eq!(admin.properties(&id).await, pairs(&[("spl_read_only_prop", "r"), ("x_owner_foo", "o")]));
    member.put(&id, &[("x_owner_foo", "o2")]).await.expect(200);
    assert_eq!(admin.properties(&id).await, pairs(&[("spl_read_only_prop", "r"), ("x_owner_foo", "o2")]));
    admin.put(&id, &[("x_none_read", "secret"), ("x_owner_foo", "o2")]).await.expect_error(403, "x_none_read");

    let image = member.post("delete", &[("x_none_delete", "keep"), ("x_owner_foo", "o")]).await.expect(201).json();
    let image = image["image"]["id"].as_str().expect("id").to_string();
    member.put(&image, &[("x_owner_foo", "o")]).await.expect_error(403, "Property 'x_none_delete' is protected");
    member.put(&image, &[("x_none_delete", "keep"), ("x_owner_foo", "new")]).await.expect(200);
    assert_eq!(member.properties(&image).await, pairs(&[("x_none_delete", "keep"), ("x_owner_foo", "new")]));
}

#[tokio::test]
async fn policies_format() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    env.set_policy_rules(&serde_json::json!({
        "context_is_admin": "role:admin", "default": "", "billing": "role:billing or role:admin"
    }));
    let file = "[^x_billing_.*]\ncreate = billing\nread = @\nupdate = billing\ndelete = !\n\n[.*]\ncreate = @\nread = @\nupdate = @\ndelete = @\n";
    let (_registry, api) = cluster(&env, file, "policies").await;
    let http = Api::new(api.url());
    let member = As { api: &http, token: "ann:t1:member".into() };
    let billing = As { api: &http, token: "bill:t1:billing".into() };

    member.post("no", &[("x_billing_code", "1")]).await.expect_error(403, "Property 'x_billing_code' is protected");
    let image = billing.post("yes", &[("x_billing_code", "1"), ("other", "x")]).await.expect(201).json();
    let id = image["image"]["id"].as_str().expect("id").to_string();
    assert_eq!(member.properties(&id).await, pairs(&[("other", "x"), ("x_billing_code", "1")]));
    member.put(&id, &[("x_billing_code", "2"), ("other", "x")]).await.expect_error(403, "x_billing_code");
    billing.put(&id, &[("x_billing_code", "2"), ("other", "y")]).await.expect(200);
    billing.put(&id, &[("other", "y")]).await.expect_error(403, "x_billing_code");
    assert_eq!(member.properties(&id).await, pairs(&[("other", "y"), ("x_billing_code", "2")]));
}

/// Runs glance-api with a protection file (or a missing one) and returns what it printed; it
/// must not start.
fn refused_start(env: &TestEnv, file: Option<&str>, format: &str) -> String {
    let path = env.dir().join("pp.conf");
    match file {
        Some(text) => std::fs::write(&path, text).expect("write"),
        None => {
            let _ = std::fs::remove_file(&path);
        }
    }
    let config = env.dir().join("bad-api.conf");
    std::fs::write(
        &config,
        format!(
            "[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {}\nproperty_protection_file = {}\n\
             property_protection_rule_format = {format}\nfilesystem_store_datadir = {}\n",
            glance_tests::process::free_port(),
            path.display(),
            env.dir().join("images").display()
        ),
    )
    .expect("write config");
    let out =
        std::process::Command::new(bin_path("glance-api")).arg("--config-file").arg(&config).output().expect("run");
    assert!(!out.status.success(), "glance-api started with {file:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn malformed_protection_files_stop_start_up() {
    let env = TestEnv::new(Engine::Sqlite).expect("sqlite");
    for (file, format, expected) in [
        (Some("[a]\ncreate = @,!\n"), "roles", "mutually exclusive"),
        (Some("[a]\ncreate = one,two\n"), "policies", "Multiple policies"),
        (Some("[x(]\nread = @\n"), "roles", "malformed property protection rule"),
        (Some("[a]\ncreate = @\n"), "acl", "property_protection_rule_format"),
        (None, "roles", "Couldn't find property protection file"),
    ] {
        let stderr = refused_start(&env, file, format);
        assert!(stderr.contains(expected), "{expected:?} not in: {stderr}");
    }
}
