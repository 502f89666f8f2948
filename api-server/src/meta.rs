//! v1 image metadata in HTTP headers: `x-image-meta-*` in requests and responses
//! (Glance's `get_image_meta_from_headers` and `image_meta_to_http_headers`).

use actix_web::HttpResponseBuilder;
use actix_web::http::header::HeaderMap;
use glance_common::model::{Image, MAX_SQL_INT, bool_from_string};
use glance_common::{Error, timeutil};
use std::collections::BTreeMap;

const META: &str = "x-image-meta-";
const PROPERTY: &str = "x-image-meta-property-";
/// Fields a request may set through `x-image-meta-<field>`.
const FIELDS: &[&str] = &[
    "location",
    "size",
    "is_public",
    "disk_format",
    "container_format",
    "name",
    "status",
    "copy_from",
    "uri",
    "checksum",
    "created_at",
    "updated_at",
    "deleted_at",
    "min_ram",
    "min_disk",
    "owner",
    "store",
    "id",
    "protected",
    "deleted",
];

/// What a request's headers say about an image. A field present with an empty value is
/// `Some(None)`, as Glance turns empty headers into None.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestMeta {
    pub fields: BTreeMap<String, Option<String>>,
    pub properties: BTreeMap<String, Option<String>>,
}

impl RequestMeta {
    pub fn parse(headers: &HeaderMap) -> Result<Self, Error> {
        let mut meta = Self::default();
        for (name, value) in headers {
            let name = name.as_str();
            let Some(rest) = name.strip_prefix(META) else { continue };
            // UTF-8, not just visible ASCII: image names and properties are often not English.
            let value = std::str::from_utf8(value.as_bytes())
                .map_err(|_| Error::bad_request(format!("Bad header: {name}")))?
                .trim();
            let value = (!value.is_empty()).then(|| value.to_string());
            if let Some(key) = name.strip_prefix(PROPERTY) {
                meta.properties.insert(key.replace('-', "_"), value);
            } else {
                let field = rest.replace('-', "_");
                if !FIELDS.contains(&field.as_str()) {
                    return Err(Error::bad_request(format!("Bad header: {name}")));
                }
                meta.fields.insert(field, value);
            }
        }
        meta.check_integers()?;
        if let Some(Some(checksum)) = meta.fields.get("checksum")
            && checksum.len() > 32
        {
            return Err(Error::bad_request(format!("Invalid checksum '{checksum}': can't exceed 32 characters")));
        }
        Ok(meta)
    }

    fn check_integers(&self) -> Result<(), Error> {
        for key in ["size", "min_ram", "min_disk"] {
            let Some(Some(v)) = self.fields.get(key) else { continue };
            let invalid = |why: String| Error::bad_request(format!("Invalid value '{v}' for parameter '{key}': {why}"));
            let n: i128 = v.parse().map_err(|_| invalid(format!("Cannot convert image {key} '{v}' to an integer.")))?;
            if n < 0 {
                return Err(invalid(format!("Image {key} must be >= 0 ('{v}' specified).")));
            }
            let max = if key == "size" { i64::MAX as i128 } else { MAX_SQL_INT as i128 };
            if n > max {
                return Err(Error::bad_request(format!("'{key}' value out of range, must not exceed {max}")));
            }
        }
        Ok(())
    }

    /// The field's value: `None` when absent or empty.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).and_then(|v| v.as_deref())
    }

    pub fn has(&self, field: &str) -> bool {
        self.fields.contains_key(field)
    }

    pub fn int(&self, field: &str) -> Option<i64> {
        self.get(field).and_then(|v| v.parse().ok())
    }

    pub fn bool(&self, field: &str) -> Option<bool> {
        self.fields.get(field).map(|v| v.as_deref().is_some_and(bool_from_string))
    }
}

/// `x-image-meta-*` response headers for `image` (None values and locations left out).
pub fn write_headers(builder: &mut HttpResponseBuilder, image: &Image) {
    let bool_text = |b: bool| if b { "True" } else { "False" };
    let mut put = |name: &str, value: String| {
        builder.insert_header((format!("{META}{name}"), value));
    };
    put("id", image.id.clone());
    if let Some(v) = &image.name {
        put("name", v.clone());
    }
    put("status", image.status.clone());
    if let Some(v) = image.size {
        put("size", v.to_string());
    }
    if let Some(v) = image.virtual_size {
        put("virtual_size", v.to_string());
    }
    if let Some(v) = &image.disk_format {
        put("disk_format", v.clone());
    }
    if let Some(v) = &image.container_format {
        put("container_format", v.clone());
    }
    if let Some(v) = &image.checksum {
        put("checksum", v.clone());
    }
    put("min_disk", image.min_disk.to_string());
    put("min_ram", image.min_ram.to_string());
    put("is_public", bool_text(image.is_public).into());
    if let Some(v) = &image.owner {
        put("owner", v.clone());
    }
    put("protected", bool_text(image.protected).into());
    put("deleted", bool_text(image.deleted).into());
    put("created_at", timeutil::isoformat(&image.created_at));
    put("updated_at", timeutil::isoformat(&image.updated_at));
    if let Some(v) = &image.deleted_at {
        put("deleted_at", timeutil::isoformat(v));
    }
    for (key, value) in &image.properties {
        if let Some(value) = value {
            put(&format!("property-{key}"), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(HeaderName::from_bytes(k.as_bytes()).expect("name"), HeaderValue::from_str(v).expect("value"));
        }
        map
    }

    #[test]
    fn fields_and_properties() {
        let meta = RequestMeta::parse(&headers(&[
            ("X-Image-Meta-Disk-Format", "raw"),
            ("x-image-meta-is_public", "True"),
            ("X-Image-Meta-Property-Distro-Name", "Ubuntu"),
            ("X-Image-Meta-Name", ""),
        ]))
        .expect("meta");
        assert_eq!(meta.get("disk_format"), Some("raw"));
        assert_eq!(meta.bool("is_public"), Some(true));
        assert_eq!(meta.properties.get("distro_name"), Some(&Some("Ubuntu".to_string())));
        assert!(meta.has("name") && meta.get("name").is_none());
    }

    #[test]
    fn bad_headers_and_values() {
        let err = |pairs: &[(&str, &str)]| RequestMeta::parse(&headers(pairs)).unwrap_err().message().to_string();
        assert_eq!(err(&[("x-image-meta-virtual_size", "1")]), "Bad header: x-image-meta-virtual_size");
        assert!(err(&[("x-image-meta-size", "big")]).contains("Cannot convert image size 'big' to an integer."));
        assert!(err(&[("x-image-meta-min_ram", "-1")]).contains("Image min_ram must be >= 0"));
        assert_eq!(
            err(&[("x-image-meta-min_disk", "9223372036854775808")]),
            "'min_disk' value out of range, must not exceed 2147483647"
        );
        assert!(err(&[("x-image-meta-checksum", &"x".repeat(42))]).starts_with("Invalid checksum"));
        assert!(RequestMeta::parse(&headers(&[("x-image-meta-min_ram", "2147483647")])).is_ok());
    }
}
