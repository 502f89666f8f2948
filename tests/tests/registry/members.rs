use super::{Http, id_of};
use glance_tests::{TestEnv, engine_tests};
use reqwest::Method;
use serde_json::json;

engine_tests!(members_add_list_replace_delete, member_requests_are_validated);

async fn members_add_list_replace_delete(env: TestEnv) {
    let reg = env.registry().start().await;
    let http = Http::new(reg.url());
    let id = id_of(&http.create(json!({"name": "shared", "owner": "owner1"})).await);
    let members = format!("/images/{id}/members");
    assert_eq!(http.get(&members).await.expect(200).json(), json!({"members": []}));

    http.send(http.request(Method::PUT, &format!("{members}/pattieblack"))).await.expect(204);
    http.put_json(&format!("{members}/pattiewhite"), &json!({"member": {"can_share": true}})).await.expect(204);
    assert_eq!(
        http.get(&members).await.json(),
        json!({"members": [{"member_id": "pattieblack", "can_share": false}, {"member_id": "pattiewhite", "can_share": true}]})
    );
    // Re-adding without a body keeps can_share; with one, updates it.
    http.send(http.request(Method::PUT, &format!("{members}/pattiewhite"))).await.expect(204);
    assert_eq!(http.get(&members).await.json()["members"][1]["can_share"], true);
    http.put_json(&format!("{members}/pattiewhite"), &json!({"member": {"can_share": false}})).await.expect(204);
    assert_eq!(http.get(&members).await.json()["members"][1]["can_share"], false);

    assert_eq!(
        http.get("/shared-images/pattieblack").await.expect(200).json(),
        json!({"shared_images": [{"image_id": id, "can_share": false}]})
    );
    assert_eq!(http.get("/shared-images/nobody").await.expect(200).json(), json!({"shared_images": []}));

    // Replace-all: listed members kept or added (can_share kept when omitted), others removed.
    http.put_json(
        &members,
        &json!({"memberships": [{"member_id": "pattiewhite"}, {"member_id": "new1", "can_share": true}]}),
    )
    .await
    .expect(204);
    assert_eq!(
        http.get(&members).await.json(),
        json!({"members": [{"member_id": "pattiewhite", "can_share": false}, {"member_id": "new1", "can_share": true}]})
    );
    assert_eq!(http.get("/shared-images/pattieblack").await.json(), json!({"shared_images": []}));

    http.delete(&format!("{members}/new1")).await.expect(204);
    http.delete(&format!("{members}/new1")).await.expect_error(404, "Membership could not be found.");
    // A removed member can be added again.
    http.send(http.request(Method::PUT, &format!("{members}/new1"))).await.expect(204);
    assert_eq!(http.get(&members).await.json()["members"].as_array().expect("list").len(), 2);

    http.put_json(&members, &json!({"memberships": []})).await.expect(204);
    assert_eq!(http.get(&members).await.json(), json!({"members": []}));
    // GET of one member is not a registry operation.
    http.get(&format!("{members}/new1")).await.expect(405);
    // Members of an image that does not exist.
    http.get("/images/0f0e0d0c-0b0a-4908-8706-050403020100/members").await.expect(404);
    http.send(http.request(Method::PUT, "/images/0f0e0d0c-0b0a-4908-8706-050403020100/members/x")).await.expect(404);
    // Deleting the image drops its memberships.
    http.send(http.request(Method::PUT, &format!("{members}/gone"))).await.expect(204);
    http.delete(&format!("/images/{id}")).await.expect(200);
    assert_eq!(http.get("/shared-images/gone").await.json(), json!({"shared_images": []}));
}

async fn member_requests_are_validated(env: TestEnv) {
    let reg = env.registry().start().await;
    let http = Http::new(reg.url());
    let id = id_of(&http.create(json!({"name": "x"})).await);
    let members = format!("/images/{id}/members");
    http.put_json(&format!("{members}/m"), &json!({"member": {}}))
        .await
        .expect_error(400, "Invalid membership association");
    http.put_json(&format!("{members}/m"), &json!({"can_share": true}))
        .await
        .expect_error(400, "Invalid membership association");
    http.put_json(&members, &json!({"memberships": [{"can_share": true}]}))
        .await
        .expect_error(400, "Invalid membership association");
    http.put_json(&members, &json!({"member_id": "x"})).await.expect_error(400, "Invalid membership association");
    http.send(http.request(Method::PUT, &members).body("{not json"))
        .await
        .expect_error(400, "Malformed JSON in request body.");
    http.put_json(&members, &json!({"memberships": [{"member_id": ""}]}))
        .await
        .expect_error(400, "Invalid membership association");
    // Nothing was written by any of them.
    assert_eq!(http.get(&members).await.json(), json!({"members": []}));
}
