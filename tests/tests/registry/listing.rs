use super::{Http, id_of};
use glance_tests::{TestEnv, engine_tests};
use serde_json::{Value, json};

engine_tests!(
    every_filter,
    sort_keys_and_marker_paging,
    limits_default_and_cap,
    short_form_and_killed_hidden,
    visibility_scope_for_admins
);

async fn every_filter(env: TestEnv) {
    let reg = env.registry().start().await;
    let http = Http::new(reg.url());
    let a = id_of(
        &http
            .create(json!({"name": "a", "status": "active", "disk_format": "raw", "container_format": "bare",
        "size": 100, "min_ram": 256, "min_disk": 1, "is_public": true, "protected": true,
        "properties": {"distro": "ubuntu", "arch": "x86_64"}}))
            .await,
    );
    let b = id_of(&http.create(json!({"name": "b", "status": "queued", "disk_format": "qcow2", "container_format": "ovf",
        "size": 2000, "min_ram": 512, "min_disk": 2, "is_public": true, "properties": {"distro": "fedora", "arch": "x86_64"}})).await);
    let c = id_of(
        &http
            .create(json!({"name": "c", "status": "saving", "disk_format": "iso", "container_format": "bare",
        "is_public": true}))
            .await,
    );
    let set = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let ids = |q: &'static str| {
        let http = http.clone();
        async move { set(http.ids(&format!("/images/detail?{q}")).await) }
    };
    assert_eq!(ids("name=a").await, set(vec![a.clone()]));
    assert_eq!(ids("status=queued").await, set(vec![b.clone()]));
    assert_eq!(ids("disk_format=iso").await, set(vec![c.clone()]));
    assert_eq!(ids("container_format=bare").await, set(vec![a.clone(), c.clone()]));
    assert_eq!(ids("min_ram=512").await, set(vec![b.clone()]));
    assert_eq!(ids("min_disk=1").await, set(vec![a.clone()]));
    assert_eq!(ids("size_min=100").await, set(vec![a.clone(), b.clone()]));
    assert_eq!(ids("size_min=101").await, set(vec![b.clone()]));
    assert_eq!(ids("size_max=100").await, set(vec![a.clone()]));
    assert_eq!(ids("size_min=50&size_max=5000").await, set(vec![a.clone(), b.clone()]));
    assert_eq!(ids("protected=true").await, set(vec![a.clone()]));
    assert_eq!(ids("protected=False").await, set(vec![b.clone(), c.clone()]));
    assert_eq!(ids("property-distro=ubuntu").await, set(vec![a.clone()]));
    assert_eq!(ids("property-arch=x86_64").await, set(vec![a.clone(), b.clone()]));
    assert_eq!(ids("property-arch=x86_64&property-distro=fedora").await, set(vec![b.clone()]));
    assert_eq!(ids("property-distro=debian").await, Vec::<String>::new());
    assert_eq!(ids("property-nonexistent=x").await, Vec::<String>::new());
    assert_eq!(ids("unknown_param=1").await.len(), 3, "unknown parameters are ignored");

    // changes-since includes deleted and killed images; the default listing does not.
    let before =
        http.get(&format!("/images/{a}")).await.json()["image"]["updated_at"].as_str().expect("ts").to_string();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    http.delete(&format!("/images/{b}")).await.expect(200);
    http.put_json(&format!("/images/{c}"), &json!({"image": {"status": "killed"}})).await.expect(200);
    assert_eq!(ids("").await, set(vec![a.clone()]));
    let since = ids_with(&http, &format!("changes-since={before}")).await;
    assert_eq!(since, set(vec![b.clone(), c.clone()]));
    assert_eq!(ids("changes-since=2000-01-01").await, set(vec![a.clone(), b.clone(), c.clone()]));
    assert_eq!(ids("changes-since=2000-01-01T00:00:00%2B01:00").await.len(), 3);
    // deleted (admin only) shows soft-deleted rows.
    assert_eq!(ids("deleted=true").await, set(vec![b.clone()]));
}

async fn ids_with(http: &Http, query: &str) -> Vec<String> {
    let mut v = http.ids(&format!("/images/detail?{}", query.replace('+', "%2B"))).await;
    v.sort();
    v
}

/// Creates images with chosen values, then checks each sort order against one computed here.
async fn sort_keys_and_marker_paging(env: TestEnv) {
    let reg = env.registry().start().await;
    let http = Http::new(reg.url());
    let specs = [
        json!({"name": "delta", "size": 30, "disk_format": "raw", "container_format": "bare", "status": "active"}),
        json!({"name": "alpha", "size": 10, "disk_format": "qcow2", "container_format": "ovf", "status": "queued"}),
        json!({"name": null, "size": null, "disk_format": null, "container_format": null, "status": "saving"}),
        json!({"name": "charlie", "size": 10, "disk_format": "raw", "container_format": "bare", "status": "active"}),
        json!({"name": "bravo", "size": 20, "disk_format": "iso", "container_format": "bare", "status": "queued"}),
        json!({"name": "alpha", "size": 40, "disk_format": "vmdk", "container_format": "ova", "status": "active"}),
    ];
    let mut images: Vec<Value> = Vec::new();
    for spec in specs {
        let mut spec = spec;
        spec["is_public"] = json!(true);
        images.push(http.create(spec).await);
        // Distinct created_at values; ties are still broken by id.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    for key in ["name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at"] {
        for dir in ["asc", "desc"] {
            let expected = expected_order(&images, key, dir);
            let all = http.ids(&format!("/images/detail?sort_key={key}&sort_dir={dir}&limit=100")).await;
            assert_eq!(all, expected, "sort_key={key} sort_dir={dir}");
            // Paging two at a time with markers walks the same sequence.
            let mut paged = Vec::new();
            let mut marker = String::new();
            loop {
                let page = http.ids(&format!("/images?sort_key={key}&sort_dir={dir}&limit=2{marker}")).await;
                if page.is_empty() {
                    break;
                }
                marker = format!("&marker={}", page.last().expect("last"));
                paged.extend(page);
                assert!(paged.len() <= images.len(), "paging does not end: {paged:?}");
            }
            assert_eq!(paged, expected, "paged sort_key={key} sort_dir={dir}");
        }
    }
    // Default: newest first.
    let newest_first: Vec<String> = images.iter().rev().map(id_of).collect();
    assert_eq!(http.ids("/images").await, newest_first);
}

/// The order glance-rs promises: the key (NULL lowest), then created_at, then id, all in `dir`.
fn expected_order(images: &[Value], key: &str, dir: &str) -> Vec<String> {
    let mut sorted: Vec<&Value> = images.iter().collect();
    let rank = |v: &Value| -> (u8, String, i64) {
        match &v[key] {
            Value::Null => (0, String::new(), 0),
            Value::Number(n) => (1, String::new(), n.as_i64().expect("int")),
            other => (1, other.as_str().expect("str").to_string(), 0),
        }
    };
    sorted.sort_by(|a, b| {
        let ord = rank(a)
            .cmp(&rank(b))
            .then_with(|| a["created_at"].as_str().cmp(&b["created_at"].as_str()))
            .then_with(|| a["id"].as_str().cmp(&b["id"].as_str()));
        if dir == "asc" { ord } else { ord.reverse() }
    });
    sorted.into_iter().map(id_of).collect()
}

async fn limits_default_and_cap(env: TestEnv) {
    let reg =
        env.registry().option("DEFAULT.api_limit_max", "5").option("DEFAULT.limit_param_default", "3").start().await;
    let http = Http::new(reg.url());
    for i in 0..7 {
        http.create(json!({"name": format!("i{i}"), "is_public": true})).await;
    }
    assert_eq!(http.ids("/images").await.len(), 3, "limit_param_default");
    assert_eq!(http.ids("/images?limit=4").await.len(), 4);
    assert_eq!(http.ids("/images?limit=100").await.len(), 5, "capped at api_limit_max");
    assert_eq!(http.ids("/images/detail?limit=0").await.len(), 0);
}

async fn short_form_and_killed_hidden(env: TestEnv) {
    let reg = env.registry().start().await;
    let http = Http::new(reg.url());
    assert_eq!(http.get("/images").await.expect(200).json(), json!({"images": []}));
    assert_eq!(http.get("/images/detail").await.expect(200).json(), json!({"images": []}));
    assert_eq!(http.get("/").await.expect(200).json(), json!({"images": []}));
    let image = http
        .create(json!({"name": "n", "size": 5, "disk_format": "raw", "container_format": "bare", "checksum": "abc",
                       "is_public": true, "properties": {"p": "v"}}))
        .await;
    http.create(json!({"name": "dead", "status": "killed", "is_public": true})).await;
    let index = http.get("/images").await.expect(200).json();
    assert_eq!(
        index,
        json!({"images": [{"id": image["id"], "name": "n", "size": 5, "disk_format": "raw", "container_format": "bare", "checksum": "abc"}]})
    );
}

/// Admins list as users unless they ask for is_public=none or false (Glance's admin_as_user).
async fn visibility_scope_for_admins(env: TestEnv) {
    let reg = env.registry().start().await;
    let http = Http::new(reg.url());
    let public = id_of(&http.create(json!({"name": "pub", "is_public": true})).await);
    let private = id_of(&http.create(json!({"name": "priv", "is_public": false, "owner": "t1"})).await);
    let shared = id_of(&http.create(json!({"name": "shared", "is_public": false, "owner": "t1"})).await);
    http.send(http.request(reqwest::Method::PUT, &format!("/images/{shared}/members/t2"))).await.expect(204);
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(sorted(http.ids("/images/detail").await), sorted(vec![public.clone(), shared.clone()]));
    assert_eq!(sorted(http.ids("/images/detail?is_public=true").await), sorted(vec![public.clone(), shared.clone()]));
    assert_eq!(
        sorted(http.ids("/images/detail?is_public=none").await),
        sorted(vec![public.clone(), private.clone(), shared.clone()])
    );
    assert_eq!(sorted(http.ids("/images/detail?is_public=false").await), sorted(vec![private.clone(), shared.clone()]));
    // Every image can still be shown by id.
    http.get(&format!("/images/{private}")).await.expect(200);
}
