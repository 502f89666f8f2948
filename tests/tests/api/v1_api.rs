//! Glance's `functional/v1/test_api.py`, step by step.

use super::{Cluster, DATA5K_MD5, FIVE_KB, as_refs, data5k, md5_hex, minimal_headers};
use glance_tests::{TestEnv, engine_and_store_tests};
use reqwest::Method;
use serde_json::json;

engine_and_store_tests!(
    get_head_simple_post,
    checksum_32_chars_at_image_create,
    param_int_too_large_at_create,
    status_cannot_be_manipulated_directly,
    download_of_deleted_image_is_forbidden_by_policy,
    download_of_deleted_image_is_not_found
);

async fn get_head_simple_post(env: TestEnv) {
    let c = Cluster::start(&env).await;
    let api = &c.http;
    // 0-1. No images yet; the bodies are exactly Python's JSON.
    assert_eq!(api.get("/v1/images").await.expect(200).text(), r#"{"images": []}"#);
    assert_eq!(api.get("/v1/images/detail").await.expect(200).text(), r#"{"images": []}"#);

    // 2. POST a public image with data.
    let headers = minimal_headers("Image1");
    let image = api.post_image(&as_refs(&headers), Some(data5k())).await.expect(201).json()["image"].clone();
    assert_eq!(image["checksum"], DATA5K_MD5);
    assert_eq!(image["size"], FIVE_KB);
    assert_eq!(image["name"], "Image1");
    assert_eq!(image["is_public"], true);
    let id1 = image["id"].as_str().expect("id").to_string();
    let path1 = format!("/v1/images/{id1}");

    // 3. HEAD.
    assert_eq!(api.head(&path1).await.expect(200).header("x-image-meta-name"), Some("Image1"));

    // 4. GET: data and headers.
    let got = api.get(&path1).await.expect(200);
    for (name, value) in [
        ("x-image-meta-id", id1.as_str()),
        ("x-image-meta-name", "Image1"),
        ("x-image-meta-is_public", "True"),
        ("x-image-meta-status", "active"),
        ("x-image-meta-disk_format", "raw"),
        ("x-image-meta-container_format", "ovf"),
        ("x-image-meta-size", "5120"),
        ("content-length", "5120"),
        ("content-type", "application/octet-stream"),
    ] {
        assert_eq!(got.header(name), Some(value), "{name}");
    }
    assert_eq!(got.body, data5k());
    assert_eq!(md5_hex(&got.body), DATA5K_MD5);

    // 5. The index has exactly six keys per image.
    assert_eq!(
        api.get("/v1/images").await.expect(200).json(),
        json!({"images": [{"container_format": "ovf", "disk_format": "raw", "id": id1, "name": "Image1", "checksum": DATA5K_MD5, "size": FIVE_KB}]})
    );

    // 6. Detail.
    let detail = api.get("/v1/images/detail").await.expect(200).json()["images"][0].clone();
    let expected = json!({"status": "active", "name": "Image1", "deleted": false, "container_format": "ovf",
        "disk_format": "raw", "id": id1, "is_public": true, "deleted_at": null, "properties": {}, "size": FIVE_KB});
    for (key, value) in expected.as_object().expect("object") {
        assert_eq!(&detail[key], value, "{key}");
    }
    assert!(detail.get("location").is_none(), "locations are never shown in v1");

    // 7. PUT custom properties.
    let reply = api
        .put(&path1, &[("X-Image-Meta-Property-Distro", "Ubuntu"), ("X-Image-Meta-Property-Arch", "x86_64")], None)
        .await
        .expect(200)
        .json();
    assert_eq!(reply["image"]["properties"]["arch"], "x86_64");
    assert_eq!(reply["image"]["properties"]["distro"], "Ubuntu");

    // 8. Too many properties (quota 10) → 413, and nothing changes.
    let many: Vec<(String, &str)> = (0..11).map(|i| (format!("X-Image-Meta-Property-foo{i}"), "bar")).collect();
    let many_refs: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    api.put(&path1, &many_refs, None).await.expect(413);

    // 9. Detail shows the properties of step 7.
    let detail = api.get("/v1/images/detail").await.expect(200).json()["images"][0].clone();
    assert_eq!(detail["properties"], json!({"distro": "Ubuntu", "arch": "x86_64"}));

    // 10. A PUT with a subset purges the others.
    api.put(&path1, &[("X-Image-Meta-Property-Arch", "x86_64")], None).await.expect(200);
    let detail = api.get("/v1/images/detail").await.expect(200).json()["images"][0].clone();
    assert_eq!(detail["properties"], json!({"arch": "x86_64"}));

    // 11. Add the removed property back.
    api.put(&path1, &[("X-Image-Meta-Property-Distro", "Ubuntu"), ("X-Image-Meta-Property-Arch", "x86_64")], None)
        .await
        .expect(200);
    let detail = api.get("/v1/images/detail").await.expect(200).json()["images"][0].clone();
    assert_eq!(detail["properties"], json!({"distro": "Ubuntu", "arch": "x86_64"}));
    assert_ne!(detail["created_at"], detail["updated_at"]);

    // 12-15. Members.
    let members = format!("{path1}/members");
    api.put(&format!("{members}/pattieblack"), &[], None).await.expect(204);
    api.put(&format!("{members}/pattiewhite"), &[], None).await.expect(204);
    let listed = api.get(&members).await.expect(200).json();
    let ids: Vec<&str> =
        listed["members"].as_array().expect("list").iter().map(|m| m["member_id"].as_str().expect("id")).collect();
    assert_eq!(ids, ["pattieblack", "pattiewhite"]);
    api.delete(&format!("{members}/pattieblack")).await.expect(204);

    // 16-17. Member quota (10): 11 → 413, 10 → 204, one more → 413. The JSON has no Content-Type.
    let memberships =
        |n: usize| json!({"memberships": (0..n).map(|i| json!({"member_id": format!("foo{i}")})).collect::<Vec<_>>()});
    api.put(&members, &[], Some(memberships(11).to_string().into_bytes())).await.expect(413);
    api.put(&members, &[], Some(memberships(10).to_string().into_bytes())).await.expect(204);
    api.put(&format!("{members}/fail_me"), &[], None).await.expect(413);

    // 18-19. A second image with three properties.
    let mut headers = minimal_headers("Image2");
    headers.push(("X-Image-Meta-Property-Distro", "Ubuntu".into()));
    headers.push(("X-Image-Meta-Property-Arch", "i386".into()));
    headers.push(("X-Image-Meta-Property-foo", "bar".into()));
    let image2 = api.post_image(&as_refs(&headers), Some(data5k())).await.expect(201).json()["image"].clone();
    assert_eq!(image2["properties"], json!({"distro": "Ubuntu", "arch": "i386", "foo": "bar"}));
    assert_eq!((image2["checksum"].clone(), image2["size"].clone()), (json!(DATA5K_MD5), json!(FIVE_KB)));
    let id2 = image2["id"].as_str().expect("id").to_string();
    assert_eq!(api.head(&format!("/v1/images/{id2}")).await.expect(200).header("x-image-meta-name"), Some("Image2"));

    // 20-26. Listing order and property filters.
    assert_eq!(api.ids("/v1/images").await, [id2.clone(), id1.clone()]);
    assert_eq!(api.ids("/v1/images?property-distro=Ubuntu").await, [id2.clone(), id1.clone()]);
    assert!(api.ids("/v1/images?property-distro=fedora").await.is_empty());
    assert!(api.ids("/v1/images?property-boo=bar").await.is_empty());
    assert_eq!(api.ids("/v1/images?property-arch=i386").await, vec![id2.clone()]);
    assert_eq!(api.ids("/v1/images?property-arch=x86_64").await, vec![id1.clone()]);
    assert_eq!(api.ids("/v1/images?property-foo=bar").await, vec![id2.clone()]);

    // 27-31. Delete image 1; its members are gone with it.
    let deleted = api.delete(&path1).await.expect(200);
    assert!(deleted.body.is_empty());
    api.get(&members).await.expect(404);
    api.put(
        &members,
        &[],
        Some(json!({"memberships": [{"member_id": "pattieblack", "can_share": false}]}).to_string().into_bytes()),
    )
    .await
    .expect(404);
    api.put(&format!("{members}/chickenpattie"), &[], None).await.expect(404);
    api.delete(&format!("{members}/pattieblack")).await.expect(404);

    // 32-33. Delete image 2: nothing listed.
    api.delete(&format!("/v1/images/{id2}")).await.expect(200);
    assert!(api.ids("/v1/images").await.is_empty());

    // 34. HEAD on /images/detail.
    let head = api.send(api.request(Method::HEAD, "/v1/images/detail")).await.expect(405);
    assert_eq!(head.header("allow"), Some("GET"));
}

async fn checksum_32_chars_at_image_create(env: TestEnv) {
    let c = Cluster::start(&env).await;
    let mut headers = minimal_headers("Image1");
    headers.push(("X-Image-Meta-Checksum", "x".repeat(42)));
    c.http.post_image(&as_refs(&headers), Some(data5k())).await.expect_error(400, "Invalid checksum");
    headers.pop();
    headers.push(("X-Image-Meta-Checksum", DATA5K_MD5.into()));
    c.http.post_image(&as_refs(&headers), Some(data5k())).await.expect(201);
}

async fn param_int_too_large_at_create(env: TestEnv) {
    let c = Cluster::start(&env).await;
    for param in ["min_disk", "min_ram"] {
        for (value, status) in [("9223372036854775808", 400), ("2147483648", 400), ("2147483647", 201)] {
            let mut headers = minimal_headers("Image1");
            let name = if param == "min_disk" { "X-Image-Meta-min_disk" } else { "X-Image-Meta-min_ram" };
            headers.push((name, value.into()));
            let reply = c.http.post_image(&as_refs(&headers), Some(data5k())).await.expect(status);
            if status == 400 {
                assert!(reply.text().contains(&format!("'{param}' value out of range")), "{}", reply.text());
            }
        }
    }
    assert_eq!(c.http.ids("/v1/images").await.len(), 2, "only the two valid images exist");
}

async fn status_cannot_be_manipulated_directly(env: TestEnv) {
    let c = Cluster::start(&env).await;
    let api = &c.http;
    let base = [
        ("Content-Type", "application/octet-stream"),
        ("X-Image-Meta-Disk-Format", "raw"),
        ("X-Image-Meta-Container-Format", "bare"),
    ];
    let image = api.post_image(&base, None).await.expect(201).json()["image"].clone();
    assert_eq!(image["status"], "queued");
    let path = format!("/v1/images/{}", image["id"].as_str().expect("id"));
    let status = |api: &super::Api, path: String| {
        let api = api.clone();
        async move { api.head(&path).await.expect(200).header("x-image-meta-status").map(str::to_string) }
    };
    api.put(&path, &[("X-Image-Meta-Status", "active")], None)
        .await
        .expect_error(403, "Forbidden to modify 'status' of image.");
    assert_eq!(status(api, path.clone()).await.as_deref(), Some("queued"));
    api.put(&path, &[("X-Image-Meta-Status", "queued")], None).await.expect(200);
    assert_eq!(status(api, path.clone()).await.as_deref(), Some("queued"));
    let uploaded =
        api.put(&path, &[("Content-Type", "application/octet-stream")], Some(b"data".to_vec())).await.expect(200);
    assert_eq!(uploaded.json()["image"]["status"], "active");
    api.put(&path, &[("X-Image-Meta-Status", "queued")], None).await.expect(403);
    assert_eq!(status(api, path.clone()).await.as_deref(), Some("active"));
    api.put(&path, &[("X-Image-Meta-Status", "active")], None).await.expect(200);
    assert_eq!(status(api, path.clone()).await.as_deref(), Some("active"));
    // On POST the status header is ignored: queued without data, active with it.
    let queued =
        api.post_image(&[("Content-Type", "application/octet-stream"), ("X-Image-Meta-Status", "active")], None).await;
    assert_eq!(queued.expect(201).json()["image"]["status"], "queued");
    let mut with_data = base.to_vec();
    with_data.push(("X-Image-Meta-Status", "queued"));
    let active = api.post_image(&with_data, Some(b"data".to_vec())).await.expect(201);
    assert_eq!(active.json()["image"]["status"], "active");
}

async fn create_then_delete(c: &Cluster) -> String {
    let headers = minimal_headers("Image1");
    let image = c.http.post_image(&as_refs(&headers), Some(data5k())).await.expect(201).json()["image"].clone();
    let id = image["id"].as_str().expect("id").to_string();
    assert_eq!(c.http.head(&format!("/v1/images/{id}")).await.expect(200).header("x-image-meta-name"), Some("Image1"));
    assert_eq!(c.http.ids("/v1/images").await, vec![id.clone()]);
    c.http.delete(&format!("/v1/images/{id}")).await.expect(200);
    id
}

async fn download_of_deleted_image_is_forbidden_by_policy(env: TestEnv) {
    let c = Cluster::start(&env).await;
    let id = create_then_delete(&c).await;
    env.set_policy_rules(&json!({"download_image": "!"}));
    c.http.get(&format!("/v1/images/{id}")).await.expect(403);
}

async fn download_of_deleted_image_is_not_found(env: TestEnv) {
    let c = Cluster::start(&env).await;
    let id = create_then_delete(&c).await;
    c.http.get(&format!("/v1/images/{id}")).await.expect(404);
}
