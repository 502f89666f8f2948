//! Glance's image model as it travels between the API and the registry (v1 registry wire format).

use crate::timeutil;
use chrono::NaiveDateTime;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// Every status an image can have.
pub const STATUSES: &[&str] = &["active", "saving", "queued", "killed", "pending_delete", "deleted"];
/// Statuses listed by default: everything but `killed`.
pub const DEFAULT_DISK_FORMATS: &[&str] = &["ami", "ari", "aki", "vhd", "vmdk", "raw", "qcow2", "vdi", "iso"];
pub const DEFAULT_CONTAINER_FORMATS: &[&str] = &["ami", "ari", "aki", "bare", "ovf", "ova"];
/// Columns that must fit a signed 32-bit SQL INTEGER on every engine.
pub const MAX_SQL_INT: i64 = 2_147_483_647;

/// An image as the registry returns it (`make_image_dict`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    pub id: String,
    pub name: Option<String>,
    pub status: String,
    pub size: Option<i64>,
    pub virtual_size: Option<i64>,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub checksum: Option<String>,
    pub min_disk: i32,
    pub min_ram: i32,
    pub is_public: bool,
    pub owner: Option<String>,
    pub protected: bool,
    pub deleted: bool,
    #[serde(with = "timeutil::iso_opt")]
    pub deleted_at: Option<NaiveDateTime>,
    #[serde(with = "timeutil::iso")]
    pub created_at: NaiveDateTime,
    #[serde(with = "timeutil::iso")]
    pub updated_at: NaiveDateTime,
    pub properties: BTreeMap<String, Option<String>>,
    /// The first location's URL. The API never shows it to users.
    pub location: Option<String>,
    #[serde(default)]
    pub location_data: Vec<LocationData>,
}

/// An image as users see it: every field but the locations (LP #755916).
pub struct PublicImage<'a>(pub &'a Image);

impl Serialize for PublicImage<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let i = self.0;
        let time = |t: &NaiveDateTime| timeutil::isoformat(t);
        let mut m = s.serialize_struct("Image", 18)?;
        m.serialize_field("id", &i.id)?;
        m.serialize_field("name", &i.name)?;
        m.serialize_field("status", &i.status)?;
        m.serialize_field("size", &i.size)?;
        m.serialize_field("virtual_size", &i.virtual_size)?;
        m.serialize_field("disk_format", &i.disk_format)?;
        m.serialize_field("container_format", &i.container_format)?;
        m.serialize_field("checksum", &i.checksum)?;
        m.serialize_field("min_disk", &i.min_disk)?;
        m.serialize_field("min_ram", &i.min_ram)?;
        m.serialize_field("is_public", &i.is_public)?;
        m.serialize_field("owner", &i.owner)?;
        m.serialize_field("protected", &i.protected)?;
        m.serialize_field("deleted", &i.deleted)?;
        m.serialize_field("deleted_at", &i.deleted_at.as_ref().map(time))?;
        m.serialize_field("created_at", &time(&i.created_at))?;
        m.serialize_field("updated_at", &time(&i.updated_at))?;
        m.serialize_field("properties", &i.properties)?;
        m.end()
    }
}

/// `{"<key>": value}` without building a JSON tree first (bodies such as `{"images": [...]}`).
pub struct Keyed<'a, T: ?Sized>(pub &'static str, pub &'a T);

impl<T: Serialize + ?Sized> Serialize for Keyed<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(self.0, self.1)?;
        m.end()
    }
}

/// One of an image's locations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationData {
    pub url: String,
    #[serde(default)]
    pub metadata: serde_json::Value,
}

/// The short form in `GET /images`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageSummary {
    pub id: String,
    pub name: Option<String>,
    pub size: Option<i64>,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub checksum: Option<String>,
}

impl From<&Image> for ImageSummary {
    fn from(i: &Image) -> Self {
        Self {
            id: i.id.clone(),
            name: i.name.clone(),
            size: i.size,
            disk_format: i.disk_format.clone(),
            container_format: i.container_format.clone(),
            checksum: i.checksum.clone(),
        }
    }
}

/// Values to create an image with, or to change: absent fields are left alone, `Some(None)`
/// sets a nullable column to NULL. Unknown keys are ignored, as Glance's registry did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImagePatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub name: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub size: Option<Option<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub virtual_size: Option<Option<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub disk_format: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub container_format: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub checksum: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_disk: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ram: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_public: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub owner: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "timeutil::iso_opt")]
    pub created_at: Option<NaiveDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "timeutil::iso_opt")]
    pub updated_at: Option<NaiveDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<BTreeMap<String, Option<String>>>,
    /// Replaces every location with this one (`null` removes them all).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub location: Option<Option<String>>,
    /// Replaces every location; wins over `location`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_data: Option<Vec<LocationData>>,
}

/// Tells a JSON `null` (Some(None)) from an absent key (None, via `default`).
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A membership as `GET /images/{id}/members` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub member_id: String,
    pub can_share: bool,
}

/// One entry of `PUT /images/{id}/members`; `can_share` left out keeps the current value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub member_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_share: Option<bool>,
}

/// An image shared with a tenant, as `GET /shared-images/{member}` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedImage {
    pub image_id: String,
    pub can_share: bool,
}

/// `True`/`False` the way Glance's `bool_from_string` reads headers and query strings.
pub fn bool_from_string(value: &str) -> bool {
    matches!(value.trim().to_lowercase().as_str(), "1" | "t" | "true" | "on" | "y" | "yes")
}

/// A canonical UUID string (`str(uuid.UUID(v)) == v`), the only id form Glance accepts.
pub fn is_canonical_uuid(value: &str) -> bool {
    uuid::Uuid::parse_str(value).is_ok_and(|u| u.hyphenated().to_string() == value)
}

/// Glance's `validate_image_meta` on the values an image would end up with. `Err` carries
/// Glance's message.
pub fn validate_formats(
    disk_format: Option<&str>,
    container_format: Option<&str>,
    disk_formats: &[String],
    container_formats: &[String],
) -> Result<(), String> {
    if let Some(disk) = disk_format
        && !disk_formats.iter().any(|f| f == disk)
    {
        return Err(format!("Invalid disk format '{disk}' for image."));
    }
    if let Some(container) = container_format
        && !container_formats.iter().any(|f| f == container)
    {
        return Err(format!("Invalid container format '{container}' for image."));
    }
    let amazon = |f: Option<&str>| matches!(f, Some("aki" | "ari" | "ami"));
    if (amazon(disk_format) || amazon(container_format))
        && let (Some(disk), Some(container)) = (disk_format, container_format)
        && disk != container
    {
        return Err("Invalid mix of disk and container formats. When setting a disk or container format to one of \
                    'aki', 'ari', or 'ami', the container and disk formats must match."
            .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formats(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn patch_tells_null_from_absent() {
        let p: ImagePatch = serde_json::from_str(r#"{"name": null, "size": 5, "bogus": 1}"#).expect("patch");
        assert_eq!(p.name, Some(None));
        assert_eq!(p.size, Some(Some(5)));
        assert_eq!(p.disk_format, None);
        let back = serde_json::to_value(&p).expect("json");
        assert_eq!(back, serde_json::json!({"name": null, "size": 5}));
    }

    #[test]
    fn public_view_has_no_locations() {
        let image: Image = serde_json::from_value(serde_json::json!({
            "id": "x", "name": null, "status": "active", "size": 1, "virtual_size": null, "disk_format": "raw",
            "container_format": "bare", "checksum": null, "min_disk": 0, "min_ram": 0, "is_public": true, "owner": null,
            "protected": false, "deleted": false, "deleted_at": null, "created_at": "2014-06-01T10:00:00.123456",
            "updated_at": "2014-06-01T10:00:00", "properties": {"a": "b"}, "location": "file:///secret",
            "location_data": [{"url": "file:///secret", "metadata": {}}]}))
        .expect("image");
        let text = serde_json::to_string(&Keyed("image", &PublicImage(&image))).expect("json");
        assert!(!text.contains("secret") && !text.contains("location"), "{text}");
        assert!(
            text.starts_with(r#"{"image":{"id":"x""#) && text.contains(r#""created_at":"2014-06-01T10:00:00.123456""#),
            "{text}"
        );
    }

    #[test]
    fn format_rules() {
        let (d, c) = (formats(DEFAULT_DISK_FORMATS), formats(DEFAULT_CONTAINER_FORMATS));
        assert!(validate_formats(Some("raw"), Some("bare"), &d, &c).is_ok());
        assert!(validate_formats(None, None, &d, &c).is_ok());
        assert_eq!(
            validate_formats(Some("Invalid"), None, &d, &c).unwrap_err(),
            "Invalid disk format 'Invalid' for image."
        );
        assert!(validate_formats(None, Some("box"), &d, &c).unwrap_err().contains("Invalid container format"));
        assert!(validate_formats(Some("aki"), Some("bare"), &d, &c).unwrap_err().contains("Invalid mix"));
        assert!(validate_formats(Some("aki"), Some("aki"), &d, &c).is_ok());
    }

    #[test]
    fn uuids_must_be_canonical() {
        assert!(is_canonical_uuid("71c675ab-d94f-49cd-a114-e12490b328d9"));
        assert!(!is_canonical_uuid("71C675AB-D94F-49CD-A114-E12490B328D9"));
        assert!(!is_canonical_uuid("71c675abd94f49cda114e12490b328d9"));
        assert!(!is_canonical_uuid("1"));
    }

    #[test]
    fn glance_booleans() {
        assert!(bool_from_string(" True") && bool_from_string("yes") && bool_from_string("1"));
        assert!(!bool_from_string("False") && !bool_from_string("none") && !bool_from_string(""));
    }
}

/// The registry's answer to a storage reservation (`user_storage_quota`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Bytes the upload may now hold in all (at most what it asked for).
    pub granted: i64,
    /// What the quota left for this upload before the grant.
    pub remaining: i64,
}

/// A request for a storage reservation: `bytes` in all for the upload (at least `needed`),
/// within `quota`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationRequest {
    pub bytes: i64,
    pub needed: i64,
    pub quota: i64,
}

/// One location of an image in `pending_delete`, claimed by a glance-scrubber from the
/// registry's delayed-delete queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubJob {
    pub id: i32,
    pub image_id: String,
    /// The location URI (decrypted by the registry client when it has the key).
    pub url: String,
    /// Earlier attempts that failed.
    pub attempts: i32,
}

/// A scrubber keeping its claim on `ids` for another `lease_seconds` (jobs it no longer
/// holds are left alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubRenewal {
    pub worker: String,
    pub lease_seconds: i64,
    pub ids: Vec<i32>,
}

/// The oldest `cleanup_after_seconds` a claim may ask for (a century: any age the clock can
/// subtract).
pub const MAX_CLEANUP_AGE_SECONDS: i64 = 100 * 365 * 24 * 3600;

/// A scrubber's request for due jobs: at most `limit` with ids above `after` (a pass walks
/// the queue once), each held for `lease_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubClaim {
    pub worker: String,
    pub lease_seconds: i64,
    pub limit: i64,
    pub after: i32,
    /// `cleanup_scrubber`: also queue images left `pending_delete` with nothing queued once
    /// they were deleted this many seconds ago (`cleanup_scrubber_time`); `None` leaves them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_after_seconds: Option<i64>,
}
