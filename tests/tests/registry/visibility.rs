//! Who sees and changes what, with identities from the fakeauth and trusted-auth flavors.

use super::{Http, id_of};
use glance_tests::{TestEnv, engine_tests};
use reqwest::Method;
use serde_json::json;

engine_tests!(admin_owner_member_stranger, trusted_auth_headers);

async fn admin_owner_member_stranger(env: TestEnv) {
    let reg = env.registry().flavor("fakeauth").start().await;
    let base = Http::new(reg.url());
    let admin = base.as_user("root:admins:admin");
    let owner = base.as_user("alice:tenant-a:member");
    let member = base.as_user("bob:tenant-b:member");
    let stranger = base.as_user("carol:tenant-c:member");
    let anonymous = base.clone();

    anonymous.get("/images").await.expect(401);

    // The owner's images are owned by its tenant, whatever it asks for.
    let private = owner.create(json!({"name": "private", "owner": "someone-else"})).await;
    assert_eq!(private["owner"], "tenant-a");
    let private = id_of(&private);
    let public = id_of(&owner.create(json!({"name": "public", "is_public": true})).await);
    let shared = id_of(&owner.create(json!({"name": "shared"})).await);
    owner.send(owner.request(Method::PUT, &format!("/images/{shared}/members/tenant-b"))).await.expect(204);
    let strangers = id_of(&stranger.create(json!({"name": "strangers"})).await);

    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        sorted(owner.ids("/images/detail").await),
        sorted(vec![private.clone(), public.clone(), shared.clone()])
    );
    assert_eq!(sorted(member.ids("/images/detail").await), sorted(vec![public.clone(), shared.clone()]));
    assert_eq!(sorted(stranger.ids("/images/detail").await), sorted(vec![public.clone(), strangers.clone()]));
    // is_public is for admins only: a user asking for it still sees only what it may.
    assert_eq!(sorted(member.ids("/images/detail?is_public=none").await), sorted(vec![public.clone(), shared.clone()]));
    assert_eq!(sorted(admin.ids("/images/detail?is_public=none").await).len(), 4);

    // Show: another tenant's private image is 404, never 403.
    for (who, id, status) in [
        (&owner, &private, 200),
        (&member, &shared, 200),
        (&member, &private, 404),
        (&stranger, &shared, 404),
        (&stranger, &public, 200),
        (&admin, &strangers, 200),
    ] {
        who.get(&format!("/images/{id}")).await.expect(status);
    }

    // Update and delete: owner and admin only; public images say 403, private ones 404.
    member.put_json(&format!("/images/{shared}"), &json!({"image": {"name": "x"}})).await.expect(404);
    stranger.put_json(&format!("/images/{public}"), &json!({"image": {"name": "x"}})).await.expect(403);
    stranger.delete(&format!("/images/{public}")).await.expect(403);
    stranger.delete(&format!("/images/{private}")).await.expect(404);
    owner.put_json(&format!("/images/{shared}"), &json!({"image": {"name": "renamed"}})).await.expect(200);
    // Only admins change owners.
    let kept = owner.put_json(&format!("/images/{shared}"), &json!({"image": {"owner": "tenant-z"}})).await.expect(200);
    assert_eq!(kept.json()["image"]["owner"], "tenant-a");
    admin.put_json(&format!("/images/{strangers}"), &json!({"image": {"name": "by-admin"}})).await.expect(200);

    // Sharing: owner yes; a member only with can_share; strangers no.
    member.send(member.request(Method::PUT, &format!("/images/{shared}/members/tenant-d"))).await.expect(403);
    owner
        .put_json(&format!("/images/{shared}/members/tenant-b"), &json!({"member": {"can_share": true}}))
        .await
        .expect(204);
    member.send(member.request(Method::PUT, &format!("/images/{shared}/members/tenant-d"))).await.expect(204);
    stranger.send(stranger.request(Method::PUT, &format!("/images/{private}/members/tenant-c"))).await.expect(404);
    base.as_user("nobody:none:")
        .send(base.as_user("nobody:none:").request(Method::PUT, &format!("/images/{public}/members/x")))
        .await
        .expect(401);

    // Members see their own membership; the owner sees all.
    assert_eq!(
        owner.get(&format!("/images/{shared}/members")).await.json()["members"].as_array().expect("list").len(),
        2
    );
    assert_eq!(
        member.get(&format!("/images/{shared}/members")).await.json(),
        json!({"members": [{"member_id": "tenant-b", "can_share": true}]})
    );

    // A caller with no tenant and no admin role sees public images only, shared or not.
    let nobody = base.as_user("nobody:none:member");
    assert_eq!(nobody.ids("/images/detail").await, vec![public.clone()]);

    // Deleted images: admins see them, owners get 404.
    owner.delete(&format!("/images/{private}")).await.expect(200);
    owner.get(&format!("/images/{private}")).await.expect(404);
    assert_eq!(admin.get(&format!("/images/{private}")).await.expect(200).json()["image"]["deleted"], true);
    owner.delete(&format!("/images/{private}")).await.expect(404);

    // Paging with changes-since may end a page on a deleted image: it is a valid marker then.
    let since = owner
        .get("/images/detail?changes-since=2000-01-01&sort_key=name&sort_dir=asc&limit=1")
        .await
        .expect(200)
        .json();
    let first = since["images"][0]["id"].as_str().expect("id").to_string();
    assert_eq!(first, private, "the deleted image sorts first by name ('private' < 'public' < 'renamed')");
    owner
        .get(&format!("/images/detail?changes-since=2000-01-01&sort_key=name&sort_dir=asc&limit=1&marker={first}"))
        .await
        .expect(200);
}

async fn trusted_auth_headers(env: TestEnv) {
    let reg = env.registry().flavor("trusted-auth").start().await;
    let http = Http::new(reg.url());
    http.get("/images").await.expect(401);
    let as_tenant = |tenant: &str, roles: &str| {
        http.request(Method::POST, "/images")
            .header("x-identity-status", "Confirmed")
            .header("x-tenant-id", tenant)
            .header("x-user-id", "u1")
            .header("x-roles", roles)
    };
    let created =
        http.send(as_tenant("t1", "member").json(&json!({"image": {"name": "mine"}}))).await.expect(200).json();
    assert_eq!(created["image"]["owner"], "t1");
    let unconfirmed =
        http.request(Method::GET, "/images").header("x-identity-status", "Invalid").header("x-tenant-id", "t1");
    http.send(unconfirmed).await.expect(401);
    let admin = http
        .request(Method::GET, "/images/detail?is_public=none")
        .header("x-identity-status", "Confirmed")
        .header("x-roles", "Admin");
    assert_eq!(http.send(admin).await.expect(200).json()["images"].as_array().expect("list").len(), 1);
}
