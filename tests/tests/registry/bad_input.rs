//! Bad requests get a 400 with Glance's message, and write nothing.

use super::{Http, id_of};
use glance_tests::{TestEnv, engine_tests};
use reqwest::Method;
use serde_json::json;

engine_tests!(bad_creates_write_nothing, bad_updates_change_nothing, bad_list_parameters);

async fn bad_creates_write_nothing(env: TestEnv) {
    let reg = env.registry().start().await;
    let http = Http::new(reg.url());
    let cases = [
        (json!({"image": {"name": "x".repeat(256)}}), "Image name too long: 256"),
        (json!({"image": {"size": -1}}), "Image size must be >= 0"),
        (json!({"image": {"min_ram": -1}}), "Image min_ram must be >= 0"),
        (json!({"image": {"min_disk": 2147483648_i64}}), "must not exceed 2147483647"),
        (json!({"image": {"id": "1"}}), "Invalid image id format"),
        (json!({"image": {"status": "bogus"}}), "Invalid image status 'bogus' for image."),
        (json!({"image": {"disk_format": "Invalid"}}), "Invalid disk format 'Invalid' for image."),
        (json!({"image": {"container_format": "box"}}), "Invalid container format 'box' for image."),
        (
            json!({"image": {"disk_format": "aki", "container_format": "bare"}}),
            "Invalid mix of disk and container formats",
        ),
        (json!({"image": {"checksum": "c".repeat(33)}}), "can't exceed 32 characters"),
        (json!({"image": {"size": "big"}}), "Failed to add image metadata"),
        (json!({"image": {"properties": {"": "empty name"}}}), "Property name must be 1 to 255 characters"),
        (json!({"name": "no image key"}), "Failed to add image metadata"),
    ];
    for (body, message) in cases {
        http.post_json("/images", &body).await.expect_error(400, message);
    }
    http.send(http.request(Method::POST, "/images").body("{\"image\": "))
        .await
        .expect_error(400, "Malformed JSON in request body.");
    // Nothing was written.
    assert_eq!(http.get("/images/detail?is_public=none&changes-since=2000-01-01").await.json(), json!({"images": []}));
}

async fn bad_updates_change_nothing(env: TestEnv) {
    let reg = env.registry().start().await;
    let http = Http::new(reg.url());
    let image = http.create(json!({"name": "keep", "status": "queued", "properties": {"a": "1"}})).await;
    let id = id_of(&image);
    let path = format!("/images/{id}");
    for (body, message) in [
        (json!({"image": {"name": "changed", "size": -5}}), "Image size must be >= 0"),
        (json!({"image": {"name": "changed", "status": "sleeping"}}), "Invalid image status"),
        (json!({"image": {"name": "changed", "properties": {"b": "2", "": "x"}}}), "Property name must be"),
        (json!({"image": {"name": "y".repeat(300)}}), "Image name too long"),
        (json!({"image": {"name": "changed", "min_ram": 9999999999_i64}}), "must not exceed 2147483647"),
    ] {
        http.put_json(&path, &body).await.expect_error(400, message);
    }
    http.send(http.request(Method::PUT, &path).body("nope")).await.expect_error(400, "Malformed JSON in request body.");
    assert_eq!(http.get(&path).await.json()["image"], image, "a rejected update leaves the image untouched");
    http.put_json("/images/0f0e0d0c-0b0a-4908-8706-050403020100", &json!({"image": {"name": "x"}}))
        .await
        .expect_error(404, "Image not found");
    http.delete("/images/0f0e0d0c-0b0a-4908-8706-050403020100").await.expect(404);
    http.get("/nowhere").await.expect(404);
}

async fn bad_list_parameters(env: TestEnv) {
    let reg = env.registry().start().await;
    let http = Http::new(reg.url());
    for (query, message) in [
        (
            "sort_key=owner",
            "Unsupported sort_key. Acceptable values: name, status, container_format, disk_format, size, id, created_at, updated_at",
        ),
        ("sort_dir=sideways", "Unsupported sort_dir. Acceptable values: asc, desc"),
        ("limit=ten", "limit param must be an integer"),
        ("limit=-1", "limit param must be positive"),
        ("marker=not-a-uuid", "Invalid marker format"),
        ("marker=0f0e0d0c-0b0a-4908-8706-050403020100", "Invalid marker. Image could not be found."),
        ("size_min=-1", "Bad value passed to filter size_min got -1"),
        ("size_max=many", "Bad value passed to filter size_max got many"),
        ("min_ram=-5", "Bad value passed to filter min_ram"),
        ("protected=maybe", "protected must be True, or False"),
        ("is_public=perhaps", "is_public must be None, True, or False"),
        ("changes-since=", "Unrecognized changes-since value"),
        ("changes-since=last-tuesday", "Unrecognized changes-since value"),
    ] {
        http.get(&format!("/images/detail?{query}")).await.expect_error(400, message);
        http.get(&format!("/images?{query}")).await.expect_error(400, message);
    }
}
