//! Image metadata as the replicator sees it: a dict (a detail-listing entry, a dump file, or a
//! HEAD response turned into one), Glance's header ⇄ dict conversions, and its one-way diff.

use super::Error;
use serde_json::{Map, Value};

/// An image's metadata, keyed as Glance's replicator keys it.
pub type Meta = Map<String, Value>;

const META: &str = "x-image-meta-";
const PROPERTY: &str = "x-image-meta-property-";

/// Glance's `_header_list_to_dict`: `x-image-meta-property-<k>` → `properties[k]`,
/// `x-image-meta-<k>` → `k`, and every other header under its own name (`etag`, `date`).
pub fn header_list_to_dict<K: AsRef<str>>(headers: impl IntoIterator<Item = (K, String)>) -> Meta {
    let mut meta = Meta::new();
    for (name, value) in headers {
        let name = name.as_ref();
        if let Some(key) = name.strip_prefix(PROPERTY) {
            if let Value::Object(properties) = meta.entry("properties").or_insert_with(|| Value::Object(Map::new())) {
                properties.insert(key.to_string(), Value::String(value));
            }
        } else {
            meta.insert(name.strip_prefix(META).unwrap_or(name).to_string(), Value::String(value));
        }
    }
    meta
}

/// Glance's `_dict_to_headers`: every key as `x-image-meta-<k>`, properties as
/// `x-image-meta-property-<k>`. None is sent as an empty header, which Glance reads as None.
pub fn dict_to_headers(meta: &Meta) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    for (key, value) in meta {
        match (key.as_str(), value) {
            ("properties", Value::Object(properties)) => {
                headers.extend(properties.iter().map(|(k, v)| (format!("{PROPERTY}{k}"), header_text(v))));
            }
            _ => headers.push((format!("{META}{key}"), header_text(value))),
        }
    }
    headers
}

fn header_text(value: &Value) -> String {
    if value.is_null() { String::new() } else { py_str(value) }
}

/// A value as Python's `str()` renders it, which is how headers carry it: `True`, `100`, `None`.
pub fn py_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// Whether the master's value is what the slave has, compared as text (headers are text;
/// listings carry ints and bools). Properties compare as a map, and no property headers at
/// all means no properties.
fn same(master: &Value, slave: Option<&Value>) -> bool {
    match (master, slave) {
        (Value::Object(m), None) => m.is_empty(),
        (_, None) => false,
        (Value::Object(m), Some(Value::Object(s))) => {
            m.len() == s.len() && m.iter().all(|(k, v)| s.get(k).is_some_and(|sv| py_str(v) == py_str(sv)))
        }
        (m, Some(s)) => py_str(m) == py_str(s),
    }
}

/// The master's keys whose value the slave lacks or has otherwise; keys only the slave has
/// do not matter.
pub fn differing_keys<'a>(master: &'a Meta, slave: &Meta) -> Vec<&'a str> {
    master.iter().filter(|(k, v)| !same(v, slave.get(k.as_str()))).map(|(k, _)| k.as_str()).collect()
}

/// Glance's `_dict_diff`: true when `a` has a key `b` lacks or a value that differs.
pub fn dict_diff(a: &Meta, b: &Meta) -> bool {
    let keys = differing_keys(a, b);
    for key in &keys {
        match b.get(*key) {
            None => log::debug!("metadata diff -- master has extra key: {key}"),
            Some(slave) => log::debug!(
                "metadata diff -- value differs for key {key}: master \"{}\" vs slave \"{}\"",
                py_str(&a[*key]),
                py_str(slave)
            ),
        }
    }
    !keys.is_empty()
}

/// Removes the `--dontreplicate` keys; `whose` names the side in the debug log.
pub fn strip(meta: &mut Meta, keys: &[String], whose: &str) {
    for key in keys {
        if meta.remove(key).is_some() {
            log::debug!("Stripping {key} from {whose} metadata");
        }
    }
}

/// Drops the fields that are None. A HEAD leaves them out, so keeping them would make every
/// image differ; and sending them would set nothing, or be refused for `virtual_size`, which
/// a v1 request may not carry.
pub fn without_nulls(mut meta: Meta) -> Meta {
    meta.retain(|_, v| !v.is_null());
    meta
}

/// An image is on a server when its HEAD yields a status (a 404 yields none).
pub fn present(head: &Meta) -> bool {
    head.contains_key("status")
}

pub fn status(meta: &Meta) -> Option<&str> {
    meta.get("status").and_then(Value::as_str)
}

pub fn is_active(meta: &Meta) -> bool {
    status(meta) == Some("active")
}

/// `size` as a listing (a number) or a HEAD (text) gives it; none counts as 0.
pub fn size(meta: &Meta) -> u64 {
    match meta.get("size") {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

pub fn id(meta: &Meta) -> Option<&str> {
    meta.get("id").and_then(Value::as_str)
}

/// Glance's `_check_upload_response_headers`: an upload went through if the response has a
/// status header or a JSON body with the image's status. Stricter than Glance, which lets any
/// JSON body through: an answer without the image (a proxy's error page in JSON, say) is not
/// taken for a copied image.
pub fn check_upload_response(headers: &Meta, body: &[u8]) -> Result<(), Error> {
    let has_status = |doc: Value| doc.get("image").is_some_and(|image| image.get("status").is_some());
    if headers.contains_key("status") || serde_json::from_slice::<Value>(body).is_ok_and(has_status) {
        return Ok(());
    }
    Err(Error::Upload(String::from_utf8_lossy(body).trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(value: Value) -> Meta {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn test_rest_header_list_to_dict() {
        let headers = [
            ("x-image-meta-banana", "42".to_string()),
            ("gerkin", "12".to_string()),
            ("x-image-meta-property-frog", "11".to_string()),
            ("x-image-meta-property-duck", "12".to_string()),
        ];
        let o = header_list_to_dict(headers);
        assert!(o.contains_key("banana"));
        assert!(o.contains_key("gerkin"));
        assert!(o.contains_key("properties"));
        assert!(o["properties"].get("frog").is_some());
        assert!(o["properties"].get("duck").is_some());
        assert!(!o.contains_key("x-image-meta-banana"));
    }

    #[test]
    fn test_rest_dict_to_headers() {
        let i = meta(json!({"banana": 42, "gerkin": 12, "properties": {"frog": 1, "kernel_id": null}}));
        let o: Map<String, Value> = dict_to_headers(&i).into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        assert!(o.contains_key("x-image-meta-banana"));
        assert!(o.contains_key("x-image-meta-gerkin"));
        assert!(o.contains_key("x-image-meta-property-frog"));
        assert!(o.contains_key("x-image-meta-property-kernel_id"));
        assert_eq!(o["x-image-meta-property-kernel_id"], "");
        assert!(!o.contains_key("properties"));
        assert_eq!(o["x-image-meta-banana"], "42");
    }

    #[test]
    fn header_text_is_python_str() {
        let i = meta(json!({"is_public": true, "protected": false, "size": 5120, "name": "cirros", "owner": null}));
        let headers = dict_to_headers(&i);
        let get = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(get("x-image-meta-is_public"), Some("True"));
        assert_eq!(get("x-image-meta-protected"), Some("False"));
        assert_eq!(get("x-image-meta-size"), Some("5120"));
        assert_eq!(get("x-image-meta-name"), Some("cirros"));
        assert_eq!(get("x-image-meta-owner"), Some(""));
    }

    #[test]
    fn test_dict_diff() {
        let a = meta(json!({"a": 1, "b": 2, "c": 3}));
        let b = meta(json!({"a": 1, "b": 2}));
        let c = meta(json!({"a": 1, "b": 1, "c": 3}));
        let d = meta(json!({"a": 1, "b": 2, "c": 3, "d": 4}));
        // Only things that the first dict has which the second dict doesn't matter here.
        assert!(!dict_diff(&a, &a));
        assert!(dict_diff(&a, &b));
        assert!(dict_diff(&a, &c));
        assert!(!dict_diff(&a, &d));
    }

    #[test]
    fn a_listing_entry_equals_its_own_head() {
        let listed = meta(json!({"id": "x", "size": 5, "is_public": true, "min_ram": 0, "properties": {}}));
        let head = header_list_to_dict([
            ("x-image-meta-id", "x".to_string()),
            ("x-image-meta-size", "5".into()),
            ("x-image-meta-is_public", "True".into()),
            ("x-image-meta-min_ram", "0".into()),
            ("etag", "abc".into()),
        ]);
        assert!(!dict_diff(&listed, &head));
        let mut with_property = listed.clone();
        with_property.insert("properties".into(), json!({"distro": "Ubuntu"}));
        assert_eq!(differing_keys(&with_property, &head), ["properties"]);
        let head_with_more = header_list_to_dict([("x-image-meta-property-arch", "x86".to_string())]);
        assert!(dict_diff(&meta(json!({"properties": {}})), &head_with_more));
    }

    #[test]
    fn strip_and_nulls() {
        let mut m = meta(json!({"id": "x", "created_at": "t", "virtual_size": null, "owner": null}));
        strip(&mut m, &["created_at".into(), "date".into()], "master");
        assert_eq!(without_nulls(m), meta(json!({"id": "x"})));
    }

    #[test]
    fn sizes_and_statuses() {
        assert_eq!(size(&meta(json!({"size": 100}))), 100);
        assert_eq!(size(&meta(json!({"size": "300"}))), 300);
        assert_eq!(size(&meta(json!({"size": null}))), 0);
        assert!(is_active(&meta(json!({"status": "active"}))));
        assert!(!is_active(&meta(json!({"status": "queued"}))));
        assert!(present(&meta(json!({"status": "deleted"}))));
        assert!(!present(&Meta::new()));
    }

    #[test]
    fn test_check_upload_response_headers() {
        check_upload_response(&meta(json!({"status": "active"})), b"").expect("status header");
        let body = json!({"image": {"status": "active"}}).to_string();
        check_upload_response(&Meta::new(), body.as_bytes()).expect("JSON body");
        let err = check_upload_response(&Meta::new(), b"").expect_err("nothing");
        assert!(matches!(err, Error::Upload(_)));
        let err = check_upload_response(&Meta::new(), b"<html>oops</html>").expect_err("not JSON");
        assert_eq!(err.to_string(), "Image upload problem: <html>oops</html>");
        for other in [json!({}), json!({"images": []}), json!({"image": {"id": "x"}}), json!([1])] {
            let err = check_upload_response(&Meta::new(), other.to_string().as_bytes()).expect_err("no image status");
            assert!(matches!(err, Error::Upload(_)), "{other}");
        }
    }
}
