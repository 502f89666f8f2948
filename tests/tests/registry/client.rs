//! The typed registry client (glance-common) against the real registry: results are typed and
//! the registry's errors arrive with their status and message.

use glance_common::ErrorKind;
use glance_common::context::RequestContext;
use glance_common::model::{ImagePatch, Membership};
use glance_common::registry_client::RegistryClient;
use glance_tests::{TestEnv, engine_tests};
use std::collections::BTreeMap;
use std::time::Duration;

engine_tests!(typed_client_round_trip);

fn client(port: u16) -> RegistryClient {
    RegistryClient::new("127.0.0.1", port, Duration::from_secs(5)).expect("client")
}

async fn typed_client_round_trip(env: TestEnv) {
    let reg = env.registry().flavor("trusted-auth").start().await;
    let registry = client(reg.port);
    let owner = RequestContext {
        is_admin: false,
        tenant: Some("t1".into()),
        user: Some("u1".into()),
        roles: vec!["member".into()],
        ..RequestContext::admin(glance_common::context::new_request_id())
    };
    let stranger = RequestContext { tenant: Some("t9".into()), ..owner.clone() };

    let patch = ImagePatch {
        name: Some(Some("typed".into())),
        status: Some("queued".into()),
        disk_format: Some(Some("qcow2".into())),
        container_format: Some(Some("bare".into())),
        properties: Some(BTreeMap::from([("os".to_string(), Some("linux".to_string()))])),
        ..ImagePatch::default()
    };
    let image = registry.create(&owner, &patch).await.expect("create");
    assert_eq!((image.owner.as_deref(), image.status.as_str()), (Some("t1"), "queued"));
    assert_eq!(registry.get(&owner, &image.id).await.expect("get"), image);

    // Errors keep the registry's status and message.
    let err = registry.get(&stranger, &image.id).await.unwrap_err();
    assert_eq!((err.kind(), err.message()), (ErrorKind::NotFound, "Image not found"));
    let bad = ImagePatch { disk_format: Some(Some("Invalid".into())), ..ImagePatch::default() };
    let err = registry.create(&owner, &bad).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest);
    assert_eq!(err.message(), "Failed to add image metadata. Got error: Invalid disk format 'Invalid' for image.");

    let saving = ImagePatch { status: Some("saving".into()), ..ImagePatch::default() };
    let image2 = registry.update(&owner, &image.id, &saving, false, Some("queued")).await.expect("update");
    assert_eq!(image2.status, "saving");
    assert_eq!(image2.properties.get("os"), Some(&Some("linux".to_string())), "no purge keeps properties");
    let err = registry.update(&owner, &image.id, &saving, false, Some("queued")).await.unwrap_err();
    assert_eq!((err.kind(), err.message()), (ErrorKind::Conflict, "Image operation conflicts"));

    let listed = registry.list_detail(&owner, &[("sort_key".into(), "name".into())]).await.expect("list");
    assert_eq!(listed.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), vec![image.id.as_str()]);
    let err = registry.list(&owner, &[("limit".into(), "x".into())]).await.unwrap_err();
    assert_eq!((err.kind(), err.message()), (ErrorKind::BadRequest, "limit param must be an integer"));
    assert!(registry.list(&stranger, &[]).await.expect("list").is_empty());

    registry.add_member(&owner, &image.id, "t9", None).await.expect("add member");
    registry.add_member(&owner, &image.id, "t8", Some(true)).await.expect("add member");
    assert_eq!(registry.members(&owner, &image.id).await.expect("members").len(), 2);
    assert_eq!(registry.get(&stranger, &image.id).await.expect("shared now").id, image.id);
    assert!(registry.shared_images(&owner, "t8").await.expect("shared")[0].can_share);
    registry
        .replace_members(&owner, &image.id, &[Membership { member_id: "t7".into(), can_share: None }])
        .await
        .expect("replace");
    let err = registry.delete_member(&owner, &image.id, "t9").await.unwrap_err();
    assert_eq!((err.kind(), err.message()), (ErrorKind::NotFound, "Membership could not be found."));

    let deleted = registry.delete(&owner, &image.id).await.expect("delete");
    assert!(deleted.deleted);
    assert_eq!(registry.get(&owner, &image.id).await.unwrap_err().kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn unreachable_registry_is_unavailable() {
    let port = glance_tests::process::free_port();
    let err = client(port).get(&RequestContext::admin("req-1".into()), "x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.status().as_u16(), 503);
    assert!(err.message().contains("registry is unavailable"), "{}", err.message());
    assert!(!err.message().contains(&port.to_string()), "the registry's address is not for clients: {}", err.message());
}
