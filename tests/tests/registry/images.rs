use super::{Http, id_of};
use glance_tests::{TestEnv, engine_tests};
use serde_json::json;

engine_tests!(
    create_show_update_delete,
    create_defaults_ids_and_duplicates,
    properties_purge_merge_and_revive,
    locations_are_replaced,
    values_round_trip_exactly
);

async fn create_show_update_delete(env: TestEnv) {
    let reg = env.registry().start().await;
    let http = Http::new(reg.url());
    let image = http
        .create(json!({"name": "Image1", "status": "queued", "disk_format": "raw", "container_format": "ovf",
                       "is_public": true, "properties": {"distro": "Ubuntu", "arch": "x86_64"}}))
        .await;
    let id = id_of(&image);
    assert_eq!(image["status"], "queued");
    assert_eq!(image["properties"], json!({"distro": "Ubuntu", "arch": "x86_64"}));
    assert_eq!((image["deleted"].clone(), image["deleted_at"].clone()), (json!(false), json!(null)));
    assert_eq!(
        (image["min_ram"].clone(), image["min_disk"].clone(), image["protected"].clone()),
        (json!(0), json!(0), json!(false))
    );

    let shown = http.get(&format!("/images/{id}")).await.expect(200).json()["image"].clone();
    assert_eq!(shown, image);

    // A purging update makes the supplied properties the whole set.
    let updated = http
        .send(
            http.request(reqwest::Method::PUT, &format!("/images/{id}"))
                .header("x-glance-registry-purge-props", "true")
                .json(&json!({"image": {"name": "Image1b", "properties": {"distro": "Fedora"}}})),
        )
        .await
        .expect(200)
        .json()["image"]
        .clone();
    assert_eq!(updated["name"], "Image1b");
    assert_eq!(updated["properties"], json!({"distro": "Fedora"}));
    assert_ne!(updated["updated_at"], image["updated_at"]);
    assert_eq!(updated["created_at"], image["created_at"]);

    // from_state guards the transition: wrong state → 409 with Glance's literal body.
    let conflict = http
        .put_json(&format!("/images/{id}"), &json!({"image": {"status": "active"}, "from_state": "saving"}))
        .await
        .expect(409);
    assert_eq!(conflict.text, "Image operation conflicts");
    assert_eq!(http.get(&format!("/images/{id}")).await.json()["image"]["status"], "queued");
    let saving = http
        .put_json(&format!("/images/{id}"), &json!({"image": {"status": "saving"}, "from_state": "queued"}))
        .await
        .expect(200)
        .json();
    assert_eq!(saving["image"]["status"], "saving");

    let deleted = http.delete(&format!("/images/{id}")).await.expect(200).json()["image"].clone();
    assert_eq!(deleted["deleted"], true);
    assert!(deleted["deleted_at"].is_string());
    // The admin still sees it, without properties; listings do not.
    let shown = http.get(&format!("/images/{id}")).await.expect(200).json()["image"].clone();
    assert_eq!((shown["deleted"].clone(), shown["properties"].clone()), (json!(true), json!({})));
    assert!(http.ids("/images/detail").await.is_empty());
    http.get("/images/71c675ab-d94f-49cd-a114-e12490b328d9").await.expect_error(404, "Image not found");
}

async fn create_defaults_ids_and_duplicates(env: TestEnv) {
    let reg = env.registry().start().await;
    let http = Http::new(reg.url());
    let image = http.create(json!({})).await;
    assert_eq!(image["status"], "active", "the registry defaults status to active");
    assert!(glance_common::model::is_canonical_uuid(image["id"].as_str().expect("id")));

    let id = "0f0e0d0c-0b0a-4908-8706-050403020100";
    let image = http.create(json!({"id": id, "name": "fixed", "status": "queued"})).await;
    assert_eq!(image["id"], id);
    http.post_json("/images", &json!({"image": {"id": id}}))
        .await
        .expect_error(409, &format!("Image with identifier {id} already exists!"));
    http.post_json("/images", &json!({"image": {"id": "not-a-uuid"}}))
        .await
        .expect_error(400, "Invalid image id format");
    http.post_json("/images", &json!({"image": {"id": "0F0E0D0C-0B0A-4908-8706-050403020100"}}))
        .await
        .expect_error(400, "Invalid image id format");
}

async fn properties_purge_merge_and_revive(env: TestEnv) {
    let reg = env.registry().start().await;
    let http = Http::new(reg.url());
    let id = id_of(&http.create(json!({"status": "queued", "properties": {"a": "1", "b": "2"}})).await);
    let put = |purge: &'static str, body: serde_json::Value| {
        let http = http.clone();
        let id = id.clone();
        async move {
            http.send(
                http.request(reqwest::Method::PUT, &format!("/images/{id}"))
                    .header("x-glance-registry-purge-props", purge)
                    .json(&json!({ "image": body })),
            )
            .await
            .expect(200)
            .json()["image"]["properties"]
                .clone()
        }
    };
    // Without purge, properties merge.
    assert_eq!(put("false", json!({"properties": {"c": "3"}})).await, json!({"a": "1", "b": "2", "c": "3"}));
    // Only the exact lower-case "true" purges, as in Glance.
    assert_eq!(put("True", json!({"properties": {"a": "9"}})).await, json!({"a": "9", "b": "2", "c": "3"}));
    assert_eq!(put("true", json!({"properties": {"a": "1"}})).await, json!({"a": "1"}));
    // A purged property comes back on the same (image_id, name) row.
    assert_eq!(put("true", json!({"properties": {"a": "1", "b": "again"}})).await, json!({"a": "1", "b": "again"}));
    // Purging with no properties supplied removes them all; null values are kept as null.
    assert_eq!(put("true", json!({"name": "x"})).await, json!({}));
    assert_eq!(put("false", json!({"properties": {"n": null}})).await, json!({"n": null}));
}

async fn locations_are_replaced(env: TestEnv) {
    let reg = env.registry().start().await;
    let http = Http::new(reg.url());
    let image = http.create(json!({"status": "queued", "location": "file:///var/lib/glance/images/one"})).await;
    let id = id_of(&image);
    assert_eq!(image["location"], "file:///var/lib/glance/images/one");
    assert_eq!(image["location_data"], json!([{"url": "file:///var/lib/glance/images/one", "metadata": {}}]));
    let data = json!([{"url": "http://a/x", "metadata": {"k": "v"}}, {"url": "http://b/x", "metadata": {}}]);
    let image =
        http.put_json(&format!("/images/{id}"), &json!({"image": {"location_data": data}})).await.expect(200).json();
    assert_eq!(image["image"]["location"], "http://a/x");
    assert_eq!(image["image"]["location_data"], data);
    let image = http.put_json(&format!("/images/{id}"), &json!({"image": {"location": null}})).await.expect(200).json();
    assert_eq!(image["image"]["location"], json!(null));
    assert_eq!(image["image"]["location_data"], json!([]));
}

async fn values_round_trip_exactly(env: TestEnv) {
    let reg = env.registry().start().await;
    let http = Http::new(reg.url());
    let five_gib = 5_i64 << 30;
    let image = http
        .create(json!({"name": "Ünïcödé ☃", "size": five_gib, "virtual_size": five_gib * 2, "min_ram": 2147483647,
                       "checksum": "c2e5db72bd7fd153f53ede5da5a06de3", "owner": "tenant-x", "protected": true,
                       "created_at": "2014-06-01T10:00:00.123456", "updated_at": "2014-06-01T10:00:00.123456"}))
        .await;
    let shown = http.get(&format!("/images/{}", id_of(&image))).await.expect(200).json()["image"].clone();
    assert_eq!(shown, image);
    assert_eq!(shown["size"], five_gib);
    assert_eq!(shown["name"], "Ünïcödé ☃");
    assert_eq!(shown["created_at"], "2014-06-01T10:00:00.123456");
    assert_eq!((shown["owner"].clone(), shown["protected"].clone()), (json!("tenant-x"), json!(true)));
    // Names compare exactly (MySQL's default collation would not).
    let other = http.create(json!({"name": "image", "is_public": true})).await;
    http.create(json!({"name": "IMAGE", "is_public": true})).await;
    assert_eq!(http.ids("/images?name=image").await, vec![id_of(&other)]);
}
