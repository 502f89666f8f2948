//! Rows as stored, and their conversion to the wire model. Rows never leave `db`.

use super::schema::{image_locations, image_members, image_properties, images};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use glance_common::model::{Image, ImageSummary, LocationData};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = images)]
pub struct ImageRow {
    pub id: String,
    pub name: Option<String>,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub size: Option<i64>,
    pub virtual_size: Option<i64>,
    pub status: String,
    pub is_public: bool,
    pub checksum: Option<String>,
    pub min_disk: i32,
    pub min_ram: i32,
    pub owner: Option<String>,
    pub protected: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub deleted_at: Option<NaiveDateTime>,
    pub deleted: bool,
}

/// Column changes for an image; `None` leaves a column alone, `Some(None)` sets NULL.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = images)]
pub struct ImageChanges {
    pub name: Option<Option<String>>,
    pub disk_format: Option<Option<String>>,
    pub container_format: Option<Option<String>>,
    pub size: Option<Option<i64>>,
    pub virtual_size: Option<Option<i64>>,
    pub status: Option<String>,
    pub is_public: Option<bool>,
    pub checksum: Option<Option<String>>,
    pub min_disk: Option<i32>,
    pub min_ram: Option<i32>,
    pub owner: Option<Option<String>>,
    pub protected: Option<bool>,
    pub updated_at: Option<NaiveDateTime>,
    pub deleted_at: Option<Option<NaiveDateTime>>,
    pub deleted: Option<bool>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = image_properties)]
pub struct PropertyRow {
    pub id: i32,
    pub image_id: String,
    pub name: String,
    pub value: Option<String>,
    pub deleted: bool,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = image_properties)]
pub struct NewProperty<'a> {
    pub image_id: &'a str,
    pub name: &'a str,
    pub value: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub deleted: bool,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = image_locations)]
pub struct LocationRow {
    pub image_id: String,
    pub value: String,
    pub meta_data: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = image_locations)]
pub struct NewLocation<'a> {
    pub image_id: &'a str,
    pub value: &'a str,
    pub meta_data: Option<String>,
    pub status: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub deleted: bool,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = image_members)]
pub struct MemberRow {
    pub id: i32,
    pub image_id: String,
    pub member: String,
    pub can_share: bool,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = image_members)]
pub struct NewMember<'a> {
    pub image_id: &'a str,
    pub member: &'a str,
    pub can_share: bool,
    pub status: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub deleted: bool,
}

impl ImageRow {
    pub fn summary(&self) -> ImageSummary {
        ImageSummary {
            id: self.id.clone(),
            name: self.name.clone(),
            size: self.size,
            disk_format: self.disk_format.clone(),
            container_format: self.container_format.clone(),
            checksum: self.checksum.clone(),
        }
    }

    /// The registry's `image_dict`: the row, its live properties and its live locations.
    pub fn into_image(self, properties: Vec<PropertyRow>, locations: Vec<LocationRow>) -> Image {
        let location_data: Vec<LocationData> = locations
            .into_iter()
            .map(|l| LocationData {
                url: l.value,
                metadata: l
                    .meta_data
                    .and_then(|m| serde_json::from_str(&m).ok())
                    .unwrap_or_else(|| serde_json::json!({})),
            })
            .collect();
        Image {
            location: location_data.first().map(|l| l.url.clone()),
            location_data,
            properties: properties
                .into_iter()
                .filter(|p| !p.deleted)
                .map(|p| (p.name, p.value))
                .collect::<BTreeMap<_, _>>(),
            id: self.id,
            name: self.name,
            status: self.status,
            size: self.size,
            virtual_size: self.virtual_size,
            disk_format: self.disk_format,
            container_format: self.container_format,
            checksum: self.checksum,
            min_disk: self.min_disk,
            min_ram: self.min_ram,
            is_public: self.is_public,
            owner: self.owner,
            protected: self.protected,
            deleted: self.deleted,
            deleted_at: self.deleted_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}
