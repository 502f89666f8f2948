//! Glance's `functional/v1/test_misc.py`.

use super::{Cluster, DATA5K_MD5, FIVE_KB, as_refs, data5k, minimal_headers};
use glance_tests::{TestEnv, engine_tests};

engine_tests!(api_response_when_image_deleted_from_filesystem, exception_not_eaten_from_registry_to_api);

/// LP #781410: data removed behind the server's back gives clean answers, not a sick server.
async fn api_response_when_image_deleted_from_filesystem(env: TestEnv) {
    let c = Cluster::start(&env).await;
    let headers = minimal_headers("Image1");
    let image = c.http.post_image(&as_refs(&headers), Some(data5k())).await.expect(201).json()["image"].clone();
    assert_eq!(
        (image["checksum"].clone(), image["size"].clone()),
        (serde_json::json!(DATA5K_MD5), serde_json::json!(FIVE_KB))
    );
    let id = image["id"].as_str().expect("id");
    std::fs::remove_file(env.dir().join("images").join(id)).expect("remove the image file");
    assert_eq!(c.http.head(&format!("/v1/images/{id}")).await.expect(200).header("x-image-meta-name"), Some("Image1"));
    c.http.get("/v1/images/1").await.expect(404);
    // The real image's data is gone: a 404 naming the file, and the server stays healthy.
    c.http.get(&format!("/v1/images/{id}")).await.expect_error(404, "not found");
    c.http.get("/v1/images").await.expect(200);
    c.http.delete(&format!("/v1/images/{id}")).await.expect(200);
}

/// LP #704854: validation errors reach the client with their message.
async fn exception_not_eaten_from_registry_to_api(env: TestEnv) {
    let c = Cluster::start(&env).await;
    assert_eq!(c.http.get("/v1/images").await.expect(200).text(), r#"{"images": []}"#);
    c.http
        .post_image(
            &[
                ("Content-Type", "application/octet-stream"),
                ("X-Image-Meta-Name", "ImageName"),
                ("X-Image-Meta-Disk-Format", "Invalid"),
            ],
            None,
        )
        .await
        .expect_error(400, "Invalid disk format");
}
