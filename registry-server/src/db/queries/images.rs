//! Reading and writing one image with its properties and locations.

use super::access::{is_mutable, is_visible};
use super::image_not_found;
use crate::db::models::{ImageChanges, ImageRow, LocationRow, NewLocation, NewProperty, PropertyRow};
use crate::db::schema::{image_locations, image_members, image_properties, image_tags, images};
use crate::db::{DbConn, QueryResult};
use chrono::NaiveDateTime;
use diesel::expression::BoxableExpression;
use diesel::prelude::*;
use glance_common::context::RequestContext;
use glance_common::model::{
    Image, ImagePatch, LocationData, MAX_SQL_INT, STATUSES, is_canonical_uuid, validate_formats,
};
use glance_common::{Error, ErrorKind, timeutil};
use std::collections::{BTreeMap, HashMap};

/// What values the registry accepts (`[image_format]`).
#[derive(Debug, Clone)]
pub struct Rules {
    pub disk_formats: Vec<String>,
    pub container_formats: Vec<String>,
}

/// The image if it exists and the caller may see it; soft-deleted images only for admins.
pub fn get_row(conn: &mut DbConn, ctx: &RequestContext, id: &str) -> QueryResult<ImageRow> {
    get_row_showing(conn, ctx, id, false)
}

/// As [`get_row`]; `show_deleted` also shows soft-deleted images to non-admins.
pub fn get_row_showing(conn: &mut DbConn, ctx: &RequestContext, id: &str, show_deleted: bool) -> QueryResult<ImageRow> {
    // Fixed SQL (no boxed query), so diesel reuses the prepared statement: this is the hottest query.
    let row = images::table
        .filter(images::id.eq(id))
        .select(ImageRow::as_select())
        .first(conn)
        .optional()?
        .filter(|row| !row.deleted || show_deleted || ctx.show_deleted())
        .ok_or_else(image_not_found)?;
    if !is_visible(conn, ctx, &row)? {
        return Err(image_not_found().into());
    }
    Ok(row)
}

pub fn get(conn: &mut DbConn, ctx: &RequestContext, id: &str) -> QueryResult<Image> {
    let row = get_row(conn, ctx, id)?;
    Ok(with_details(conn, vec![row])?.remove(0))
}

/// Pages up to this many images look up their properties and locations with `id = ? OR ...`
/// over a fixed number of binds. diesel prepares an `IN (...)` list afresh on every request
/// (its SQL varies with the count); fixed SQL is prepared once per connection and reused.
const FIXED_LOOKUP_MAX: usize = 32;

/// `ids` padded (by repeating the last) to the next power of two, or `None` for large pages.
fn padded<'a>(ids: &[&'a str]) -> Option<Vec<&'a str>> {
    let last = *ids.last()?;
    if ids.len() > FIXED_LOOKUP_MAX {
        return None;
    }
    let mut padded = ids.to_vec();
    padded.resize(ids.len().next_power_of_two(), last);
    Some(padded)
}

/// `column = ids[0] OR column = ids[1] OR ...` as one boxed filter.
macro_rules! any_of {
    ($column:expr, $ids:expr) => {{
        let mut ids = $ids.iter();
        let first = ids.next().copied().unwrap_or_default();
        let mut filter: Box<dyn BoxableExpression<_, crate::db::MultiBackend, SqlType = diesel::sql_types::Bool>> =
            Box::new($column.eq(first));
        for id in ids {
            filter = Box::new(filter.or($column.eq(*id)));
        }
        filter
    }};
}

/// How a lookup of properties or locations names its images.
enum IdFilter<'a> {
    /// One image (show): plain `image_id = ?`.
    One(&'a str),
    /// A page small enough for [`padded`].
    Fixed(Vec<&'a str>),
    /// A large page: `IN (...)`, prepared each time.
    Many(&'a [&'a str]),
}

impl<'a> IdFilter<'a> {
    fn of(ids: &'a [&'a str]) -> Self {
        match (ids, padded(ids)) {
            ([id], _) => Self::One(id),
            (_, Some(fixed)) => Self::Fixed(fixed),
            (ids, None) => Self::Many(ids),
        }
    }
}

/// The live (not soft-deleted) rows of a per-image table for the images `$ids` names.
macro_rules! live_rows {
    ($conn:expr, $table:ident, $row:ty, $order:expr, $ids:expr) => {{
        let query = $table::table.filter($table::deleted.eq(false)).order($order).select(<$row>::as_select());
        match $ids {
            IdFilter::One(id) => query.filter($table::image_id.eq(*id)).load($conn)?,
            IdFilter::Fixed(ids) => query.filter(any_of!($table::image_id, ids)).load($conn)?,
            IdFilter::Many(ids) => query.filter($table::image_id.eq_any(*ids)).load($conn)?,
        }
    }};
}

/// Rows turned into full images, with live properties and locations loaded in two queries.
pub fn with_details(conn: &mut DbConn, rows: Vec<ImageRow>) -> QueryResult<Vec<Image>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let ids = IdFilter::of(&ids);
    let props: Vec<PropertyRow> = live_rows!(conn, image_properties, PropertyRow, image_properties::name, &ids);
    let locs: Vec<LocationRow> = live_rows!(conn, image_locations, LocationRow, image_locations::id, &ids);
    let mut properties: HashMap<String, Vec<PropertyRow>> = HashMap::new();
    for p in props {
        properties.entry(p.image_id.clone()).or_default().push(p);
    }
    let mut locations: HashMap<String, Vec<LocationRow>> = HashMap::new();
    for l in locs {
        locations.entry(l.image_id.clone()).or_default().push(l);
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let props = properties.remove(&row.id).unwrap_or_default();
            let locs = locations.remove(&row.id).unwrap_or_default();
            row.into_image(props, locs)
        })
        .collect())
}

/// Registers a new image. `status` defaults to `active`, as in Glance's registry.
pub fn create(conn: &mut DbConn, ctx: &RequestContext, patch: ImagePatch, rules: &Rules) -> QueryResult<Image> {
    let invalid = |msg: String| Error::bad_request(format!("Failed to add image metadata. Got error: {msg}"));
    let id = match patch.id.clone() {
        Some(id) if !is_canonical_uuid(&id) => return Err(Error::bad_request("Invalid image id format").into()),
        Some(id) => id,
        None => uuid::Uuid::new_v4().to_string(),
    };
    let exists = images::table.filter(images::id.eq(&id)).count().get_result::<i64>(conn)? > 0;
    if exists {
        return Err(Error::conflict(format!("Image with identifier {id} already exists!")).into());
    }
    let now = timeutil::now();
    // Only admins choose an owner; everybody else owns what they create.
    let owner = match (&patch.owner, ctx.is_admin) {
        (Some(owner), true) => owner.clone(),
        _ => ctx.owner().map(str::to_string),
    };
    let row = ImageRow {
        id: id.clone(),
        name: patch.name.clone().flatten(),
        disk_format: patch.disk_format.clone().flatten(),
        container_format: patch.container_format.clone().flatten(),
        size: patch.size.flatten(),
        virtual_size: patch.virtual_size.flatten(),
        status: patch.status.clone().unwrap_or_else(|| "active".into()),
        is_public: patch.is_public.unwrap_or(false),
        checksum: patch.checksum.clone().flatten(),
        min_disk: int_column("min_disk", patch.min_disk.unwrap_or(0)).map_err(invalid)?,
        min_ram: int_column("min_ram", patch.min_ram.unwrap_or(0)).map_err(invalid)?,
        owner,
        protected: patch.protected.unwrap_or(false),
        created_at: patch.created_at.unwrap_or(now),
        updated_at: patch.updated_at.unwrap_or(now),
        deleted_at: None,
        deleted: false,
    };
    validate(&row, true, rules).map_err(invalid)?;
    let properties = patch.properties.clone().unwrap_or_default();
    validate_properties(&properties).map_err(invalid)?;
    diesel::insert_into(images::table).values(&row).execute(conn)?;
    set_properties(conn, &id, &properties, false, now)?;
    if let Some(locations) = locations_of(&patch) {
        replace_locations(conn, &id, &locations, now)?;
    }
    Ok(with_details(conn, vec![row])?.remove(0))
}

/// Changes an image. With `purge`, the supplied properties become the whole set (none
/// supplied: none left). With `from_state`, nothing changes unless the image is in that
/// status (409 `Image operation conflicts`).
pub fn update(
    conn: &mut DbConn,
    ctx: &RequestContext,
    id: &str,
    patch: ImagePatch,
    purge: bool,
    from_state: Option<&str>,
    rules: &Rules,
) -> QueryResult<Image> {
    let invalid = |msg: String| Error::bad_request(format!("Failed to update image metadata. Got error: {msg}"));
    let current = get_row(conn, ctx, id)?;
    if !is_mutable(ctx, &current) {
        return Err(if current.is_public {
            Error::forbidden("Forbidden to update image: you do not own this public image")
        } else {
            image_not_found()
        }
        .into());
    }
    let now = timeutil::now();
    let changes = ImageChanges {
        name: patch.name.clone(),
        disk_format: patch.disk_format.clone(),
        container_format: patch.container_format.clone(),
        size: patch.size,
        virtual_size: patch.virtual_size,
        status: patch.status.clone(),
        is_public: patch.is_public,
        checksum: patch.checksum.clone(),
        min_disk: patch.min_disk.map(|v| int_column("min_disk", v)).transpose().map_err(invalid)?,
        min_ram: patch.min_ram.map(|v| int_column("min_ram", v)).transpose().map_err(invalid)?,
        // Ownership changes are for admins; Glance drops the key for everybody else.
        owner: patch.owner.clone().filter(|_| ctx.is_admin),
        protected: patch.protected,
        updated_at: Some(now),
        deleted_at: None,
        deleted: None,
    };
    let merged = merge(&current, &changes);
    let formats_changed = changes.disk_format.is_some() || changes.container_format.is_some();
    validate(&merged, formats_changed, rules).map_err(invalid)?;
    let properties = patch.properties.clone().unwrap_or_default();
    validate_properties(&properties).map_err(invalid)?;

    let target = images::table.filter(images::id.eq(id));
    let updated = match from_state {
        Some(state) => diesel::update(target.filter(images::status.eq(state))).set(&changes).execute(conn)?,
        None => diesel::update(target).set(&changes).execute(conn)?,
    };
    if updated == 0 {
        log::info!(
            "image {id}: cannot transition from {} to {} (wanted from_state={})",
            current.status,
            merged.status,
            from_state.unwrap_or("-")
        );
        return Err(Error::literal(ErrorKind::Conflict, "Image operation conflicts").into());
    }
    set_properties(conn, id, &properties, purge, now)?;
    if patch.status.as_deref().is_some_and(|s| s != "saving") {
        super::quota::release(conn, id)?;
    }
    if let Some(locations) = locations_of(&patch) {
        replace_locations(conn, id, &locations, now)?;
    }
    let row = images::table.filter(images::id.eq(id)).select(ImageRow::as_select()).first(conn)?;
    Ok(with_details(conn, vec![row])?.remove(0))
}

/// Holds the image's row until the transaction ends (PostgreSQL, MariaDB; SQLite's writers
/// take turns anyway), so that what is read next is what the last writer committed.
pub fn lock_image(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    use diesel::sql_types::Text;
    match conn {
        DbConn::Sqlite(_) => 0,
        DbConn::Postgresql(c) => {
            diesel::sql_query("SELECT id FROM images WHERE id = $1 FOR UPDATE").bind::<Text, _>(id).execute(c)?
        }
        DbConn::Mysql(c) => {
            diesel::sql_query("SELECT id FROM images WHERE id = ? FOR UPDATE").bind::<Text, _>(id).execute(c)?
        }
    };
    Ok(())
}

/// Soft-deletes an image with its properties, locations, members and tags.
///
/// With `scrub_after` (delayed_delete), the image's live locations are queued for the
/// scrubber, due that long from now, and the image goes to `pending_delete` (to `deleted` when
/// it has none), all in this transaction: no data is ever left without a record of it.
pub fn destroy(
    conn: &mut DbConn,
    ctx: &RequestContext,
    id: &str,
    scrub_after: Option<chrono::Duration>,
) -> QueryResult<Image> {
    // Locked before anything is read: an upload activating meanwhile commits its location
    // first (and is then queued below) or finds the image no longer `saving` and drops its data.
    lock_image(conn, id)?;
    let current = get_row(conn, ctx, id)?;
    if scrub_after.is_some() && current.deleted {
        // Deleted by a concurrent request: its delete queued the data already.
        return Err(image_not_found().into());
    }
    if !is_mutable(ctx, &current) {
        return Err(if current.is_public {
            Error::forbidden("Forbidden to delete image: you do not own this public image")
        } else {
            image_not_found()
        }
        .into());
    }
    let now = timeutil::now();
    if let Some(delay) = scrub_after {
        let values: Vec<String> = image_locations::table
            .filter(image_locations::image_id.eq(id))
            .filter(image_locations::deleted.eq(false))
            .order(image_locations::id)
            .select(image_locations::value)
            .load(conn)?;
        let status = if values.is_empty() { "deleted" } else { "pending_delete" };
        super::scrub::enqueue(conn, id, &values, now + delay)?;
        diesel::update(images::table.filter(images::id.eq(id))).set(images::status.eq(status)).execute(conn)?;
    }
    diesel::update(images::table.filter(images::id.eq(id)))
        .set((images::deleted.eq(true), images::deleted_at.eq(Some(now)), images::updated_at.eq(now)))
        .execute(conn)?;
    macro_rules! soft_delete_children {
        ($($table:ident),*) => {$(
            diesel::update($table::table.filter($table::image_id.eq(id)).filter($table::deleted.eq(false)))
                .set(($table::deleted.eq(true), $table::deleted_at.eq(Some(now)), $table::updated_at.eq(now)))
                .execute(conn)?;
        )*};
    }
    soft_delete_children!(image_properties, image_locations, image_members, image_tags);
    super::quota::release(conn, id)?;
    let row = images::table.filter(images::id.eq(id)).select(ImageRow::as_select()).first(conn)?;
    Ok(row.into_image(Vec::new(), Vec::new()))
}

/// Upserts properties (reviving soft-deleted rows: `(image_id, name)` is unique across them);
/// with `purge`, soft-deletes the live ones not supplied.
fn set_properties(
    conn: &mut DbConn,
    image_id: &str,
    properties: &BTreeMap<String, Option<String>>,
    purge: bool,
    now: NaiveDateTime,
) -> QueryResult<()> {
    if properties.is_empty() && !purge {
        return Ok(());
    }
    let existing: Vec<PropertyRow> = image_properties::table
        .filter(image_properties::image_id.eq(image_id))
        .select(PropertyRow::as_select())
        .load(conn)?;
    for (name, value) in properties {
        match existing.iter().find(|p| &p.name == name) {
            Some(p) if !p.deleted && &p.value == value => {}
            Some(p) => {
                diesel::update(image_properties::table.find(p.id))
                    .set((
                        image_properties::value.eq(value.as_deref()),
                        image_properties::deleted.eq(false),
                        image_properties::deleted_at.eq(None::<NaiveDateTime>),
                        image_properties::updated_at.eq(now),
                    ))
                    .execute(conn)?;
            }
            None => {
                diesel::insert_into(image_properties::table)
                    .values(NewProperty {
                        image_id,
                        name,
                        value: value.as_deref(),
                        created_at: now,
                        updated_at: now,
                        deleted: false,
                    })
                    .execute(conn)?;
            }
        }
    }
    if purge {
        for p in existing.iter().filter(|p| !p.deleted && !properties.contains_key(&p.name)) {
            diesel::update(image_properties::table.find(p.id))
                .set((
                    image_properties::deleted.eq(true),
                    image_properties::deleted_at.eq(Some(now)),
                    image_properties::updated_at.eq(now),
                ))
                .execute(conn)?;
        }
    }
    Ok(())
}

/// The locations a patch sets, if it sets any: `location_data` wins over `location`.
fn locations_of(patch: &ImagePatch) -> Option<Vec<LocationData>> {
    match (&patch.location_data, &patch.location) {
        (Some(data), _) => Some(data.clone()),
        (None, Some(Some(url))) => Some(vec![LocationData { url: url.clone(), metadata: serde_json::json!({}) }]),
        (None, Some(None)) => Some(Vec::new()),
        (None, None) => None,
    }
}

/// Soft-deletes the live locations and inserts `locations` in their place.
fn replace_locations(
    conn: &mut DbConn,
    image_id: &str,
    locations: &[LocationData],
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(
        image_locations::table
            .filter(image_locations::image_id.eq(image_id))
            .filter(image_locations::deleted.eq(false)),
    )
    .set((
        image_locations::deleted.eq(true),
        image_locations::deleted_at.eq(Some(now)),
        image_locations::updated_at.eq(now),
    ))
    .execute(conn)?;
    for location in locations {
        // One row at a time: batch inserts do not compile through diesel's MultiConnection.
        diesel::insert_into(image_locations::table)
            .values(NewLocation {
                image_id,
                value: &location.url,
                meta_data: Some(location.metadata.to_string()),
                status: "active",
                created_at: now,
                updated_at: now,
                deleted: false,
            })
            .execute(conn)?;
    }
    Ok(())
}

fn merge(current: &ImageRow, c: &ImageChanges) -> ImageRow {
    let mut row = current.clone();
    macro_rules! apply {
        ($($field:ident),*) => {$( if let Some(v) = &c.$field { row.$field = v.clone(); } )*};
    }
    apply!(
        name,
        disk_format,
        container_format,
        size,
        virtual_size,
        status,
        is_public,
        checksum,
        min_disk,
        min_ram,
        owner,
        protected
    );
    row
}

fn int_column(key: &str, value: i64) -> Result<i32, String> {
    if value < 0 {
        return Err(format!("Image {key} must be >= 0 ('{value}' specified)."));
    }
    if value > MAX_SQL_INT {
        return Err(format!("'{key}' value out of range, must not exceed {MAX_SQL_INT}"));
    }
    Ok(value as i32)
}

/// The checks Glance applies to image values; `Err` is Glance's message.
fn validate(row: &ImageRow, check_formats: bool, rules: &Rules) -> Result<(), String> {
    if !STATUSES.contains(&row.status.as_str()) {
        return Err(format!("Invalid image status '{}' for image.", row.status));
    }
    if let Some(name) = &row.name
        && name.chars().count() > 255
    {
        return Err(format!("Image name too long: {}", name.chars().count()));
    }
    for (key, value) in [("size", row.size), ("virtual_size", row.virtual_size)] {
        if let Some(v) = value
            && v < 0
        {
            return Err(format!("Image {key} must be >= 0 ('{v}' specified)."));
        }
    }
    if let Some(checksum) = &row.checksum
        && checksum.len() > 32
    {
        return Err(format!("Invalid checksum '{checksum}': can't exceed 32 characters"));
    }
    if let Some(owner) = &row.owner
        && owner.chars().count() > 255
    {
        return Err("Owner can't exceed 255 characters".into());
    }
    if check_formats {
        validate_formats(
            row.disk_format.as_deref(),
            row.container_format.as_deref(),
            &rules.disk_formats,
            &rules.container_formats,
        )?;
    }
    Ok(())
}

fn validate_properties(properties: &BTreeMap<String, Option<String>>) -> Result<(), String> {
    for name in properties.keys() {
        let len = name.chars().count();
        if len == 0 || len > 255 {
            return Err(format!("Property name must be 1 to 255 characters: '{name}'"));
        }
    }
    Ok(())
}
