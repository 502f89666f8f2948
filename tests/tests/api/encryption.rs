//! metadata_encryption_key: locations are unreadable in the registry's database, readable to
//! the API nodes that hold the key, and never fetched through a wrong key.

use super::{Api, data5k};
use glance_tests::http_source::HttpSource;
use glance_tests::{TestEnv, engine_tests};

engine_tests!(locations_are_encrypted_at_rest);

const KEY: &str = "0123456789abcdef0123456789abcdef";

async fn locations_are_encrypted_at_rest(env: TestEnv) {
    let registry = env.registry().start().await;
    let api = env.api(&registry).option("DEFAULT.metadata_encryption_key", KEY).start().await;
    let http = Api::new(api.url());
    let headers = [
        ("X-Image-Meta-Name", "local"),
        ("X-Image-Meta-disk_format", "raw"),
        ("X-Image-Meta-container_format", "bare"),
        ("X-Image-Meta-Is-Public", "True"),
        ("Content-Type", "application/octet-stream"),
    ];
    let local = http.post_image(&headers, Some(data5k())).await.expect(201).json();
    let local = format!("/v1/images/{}", local["image"]["id"].as_str().expect("id"));
    let source = HttpSource::start().await;
    let remote_url = format!("{}?temp_url_sig=s3cr3t", source.uri("remote"));
    let mut remote_headers = headers.to_vec();
    remote_headers[0] = ("X-Image-Meta-Name", "remote");
    remote_headers.push(("X-Image-Meta-Location", &remote_url));
    let remote = http.post_image(&remote_headers, None).await.expect(201).json();
    let remote = format!("/v1/images/{}", remote["image"]["id"].as_str().expect("id"));

    // The API reads both back.
    assert_eq!(http.get(&local).await.expect(200).body, data5k());
    assert_eq!(http.get(&remote).await.expect(200).body.len(), 5120);

    // The database holds neither URL, nor anything that looks like one.
    let stored = env.db.strings("SELECT value FROM image_locations");
    assert_eq!(stored.len(), 2);
    for value in &stored {
        assert!(!value.contains("://") && !value.contains("s3cr3t") && !value.contains("images"), "{value}");
    }

    // An API node with another key keeps serving metadata but never the data.
    let stranger = env.api(&registry).option("DEFAULT.metadata_encryption_key", "fedcba9876543210").start().await;
    let stranger_http = Api::new(stranger.url());
    stranger_http.head(&local).await.expect(200);
    assert_eq!(stranger_http.get(&local).await.status.as_u16(), 502);
    assert_eq!(stranger_http.get(&remote).await.status.as_u16(), 502);
    assert!(stranger.logs().contains("could not be decrypted"));
    assert!(!stranger.logs().contains("s3cr3t") && !api.logs().contains("s3cr3t"), "a location was logged");

    // The right key still reads them.
    assert_eq!(http.get(&local).await.expect(200).body, data5k());
}
