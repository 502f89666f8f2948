//! `GET /images[/detail]`: filters, visibility, sort order and marker paging.

use crate::db::models::ImageRow;
use crate::db::schema::{image_members, image_properties, images};
use crate::db::{DbConn, MultiBackend, QueryResult};
use chrono::NaiveDateTime;
use diesel::expression::BoxableExpression;
use diesel::prelude::*;
use diesel::sql_types::Bool;
use glance_common::context::RequestContext;
use glance_common::model::bool_from_string;
use glance_common::{Error, timeutil};

const SORT_KEYS: &str = "name, status, container_format, disk_format, size, id, created_at, updated_at";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Status,
    ContainerFormat,
    DiskFormat,
    Size,
    Id,
    CreatedAt,
    UpdatedAt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDir {
    Asc,
    Desc,
}

/// Which images a caller's listing starts from, before filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// What a user sees: public images, their own, and those shared with them. Admins get this
    /// too unless they ask for `is_public=none|false` (Glance's `admin_as_user`).
    AsUser,
    All,
    PublicOnly(bool),
}

/// A validated listing request.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub scope: Scope,
    pub name: Option<String>,
    pub status: Option<String>,
    pub container_format: Option<String>,
    pub disk_format: Option<String>,
    pub min_ram: Option<i32>,
    pub min_disk: Option<i32>,
    pub size_min: Option<i64>,
    pub size_max: Option<i64>,
    pub protected: Option<bool>,
    pub changes_since: Option<NaiveDateTime>,
    pub deleted: Option<bool>,
    pub properties: Vec<(String, String)>,
    pub limit: i64,
    pub marker: Option<String>,
    pub sort_key: SortKey,
    pub sort_dir: SortDir,
}

/// Paging limits from the config.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub default: i64,
    pub max: i64,
}

impl ListQuery {
    /// Reads the query string as Glance's registry does; unknown parameters are ignored.
    pub fn parse(params: &[(String, String)], ctx: &RequestContext, limits: Limits) -> Result<Self, Error> {
        let get = |key: &str| params.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let bad = |msg: String| Error::bad_request(msg);
        let int_filter = |key: &str| -> Result<Option<i64>, Error> {
            match get(key) {
                None => Ok(None),
                Some(v) => match v.trim().parse::<i64>() {
                    Ok(n) if n >= 0 => Ok(Some(n)),
                    _ => Err(bad(format!("Bad value passed to filter {key} got {v}"))),
                },
            }
        };
        let small_int = |key: &str| -> Result<Option<i32>, Error> {
            int_filter(key)?
                .map(|n| i32::try_from(n).map_err(|_| bad(format!("Bad value passed to filter {key} got {n}"))))
                .transpose()
        };

        let limit = match get("limit") {
            None => limits.default,
            Some(v) => {
                let n: i64 = v.trim().parse().map_err(|_| bad("limit param must be an integer".into()))?;
                if n < 0 {
                    return Err(bad("limit param must be positive".into()));
                }
                n
            }
        }
        .min(limits.max);

        let marker = get("marker").map(str::to_string);
        if let Some(m) = &marker
            && uuid::Uuid::parse_str(m).is_err()
        {
            return Err(bad("Invalid marker format".into()));
        }

        let sort_key = match get("sort_key").unwrap_or("created_at") {
            "name" => SortKey::Name,
            "status" => SortKey::Status,
            "container_format" => SortKey::ContainerFormat,
            "disk_format" => SortKey::DiskFormat,
            "size" => SortKey::Size,
            "id" => SortKey::Id,
            "created_at" => SortKey::CreatedAt,
            "updated_at" => SortKey::UpdatedAt,
            _ => return Err(bad(format!("Unsupported sort_key. Acceptable values: {SORT_KEYS}"))),
        };
        let sort_dir = match get("sort_dir").unwrap_or("desc") {
            "asc" => SortDir::Asc,
            "desc" => SortDir::Desc,
            _ => return Err(bad("Unsupported sort_dir. Acceptable values: asc, desc".into())),
        };

        // is_public and deleted are admin-only; everybody else gets what a user sees.
        let scope = match get("is_public").filter(|_| ctx.is_admin) {
            None => Scope::AsUser,
            Some(v) => match v.to_lowercase().as_str() {
                "none" => Scope::All,
                "true" | "1" => Scope::AsUser,
                "false" | "0" => Scope::PublicOnly(false),
                _ => return Err(bad("is_public must be None, True, or False".into())),
            },
        };
        let deleted = get("deleted").filter(|_| ctx.is_admin).map(bool_from_string);

        let protected = match get("protected") {
            None => None,
            Some(v) => match v.to_lowercase().as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => return Err(bad("protected must be True, or False".into())),
            },
        };
        let changes_since = match get("changes-since") {
            None => None,
            Some(v) => {
                Some(timeutil::parse_isotime(v).ok_or_else(|| bad(format!("Unrecognized changes-since value: {v}")))?)
            }
        };
        let properties = params
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("property-").map(|name| (name.to_string(), v.clone())))
            .collect();

        Ok(Self {
            scope,
            name: get("name").map(str::to_string),
            status: get("status").map(str::to_string),
            container_format: get("container_format").map(str::to_string),
            disk_format: get("disk_format").map(str::to_string),
            min_ram: small_int("min_ram")?,
            min_disk: small_int("min_disk")?,
            size_min: int_filter("size_min")?,
            size_max: int_filter("size_max")?,
            protected,
            changes_since,
            deleted,
            properties,
            limit,
            marker,
            sort_key,
            sort_dir,
        })
    }
}

type BoolExpr = Box<dyn BoxableExpression<images::table, MultiBackend, SqlType = Bool>>;
type Query = images::BoxedQuery<'static, MultiBackend>;

/// One page of images, in order.
pub fn list(conn: &mut DbConn, ctx: &RequestContext, q: &ListQuery) -> QueryResult<Vec<ImageRow>> {
    let marker = match &q.marker {
        None => None,
        Some(id) => Some(
            // A listing that shows deleted rows must accept a deleted marker too.
            super::images::get_row_showing(conn, ctx, id, q.changes_since.is_some() || q.deleted == Some(true))
                .map_err(|_| Error::bad_request("Invalid marker. Image could not be found."))?,
        ),
    };
    let mut query: Query = images::table.into_boxed();

    match &q.scope {
        Scope::All => {}
        Scope::PublicOnly(public) => query = query.filter(images::is_public.eq(*public)),
        Scope::AsUser => {
            let live_members = image_members::table.filter(image_members::deleted.eq(false));
            query = match ctx.owner() {
                Some(owner) => query.filter(
                    images::is_public.eq(true).or(images::owner.assume_not_null().eq(owner.to_string())).or(images::id
                        .eq_any(
                            live_members
                                .filter(image_members::member.eq(owner.to_string()))
                                .select(image_members::image_id),
                        )),
                ),
                // No tenant, not admin: public images only.
                None if !ctx.is_admin => query.filter(images::is_public.eq(true)),
                // The unauthenticated admin (no tenant): public images and any image shared at all,
                // as Glance lists for it.
                None => query.filter(
                    images::is_public.eq(true).or(images::id.eq_any(live_members.select(image_members::image_id))),
                ),
            };
        }
    }

    // Killed and deleted images are hidden unless the caller asks about changes or deletions.
    // (`<> 'killed'` rather than an IN list: diesel caches the prepared statement only when
    // its SQL never varies, and an IN list of binds or a literal fragment opts out.)
    if q.changes_since.is_none() && q.deleted.is_none() {
        query = query.filter(images::deleted.eq(false)).filter(images::status.ne("killed"));
    }
    if let Some(deleted) = q.deleted {
        query = query.filter(images::deleted.eq(deleted));
    }
    if let Some(t) = q.changes_since {
        query = query.filter(images::updated_at.gt(t));
    }
    if let Some(v) = &q.name {
        query = query.filter(images::name.eq(v.clone()));
    }
    if let Some(v) = &q.status {
        query = query.filter(images::status.eq(v.clone()));
    }
    if let Some(v) = &q.container_format {
        query = query.filter(images::container_format.eq(v.clone()));
    }
    if let Some(v) = &q.disk_format {
        query = query.filter(images::disk_format.eq(v.clone()));
    }
    if let Some(v) = q.min_ram {
        query = query.filter(images::min_ram.eq(v));
    }
    if let Some(v) = q.min_disk {
        query = query.filter(images::min_disk.eq(v));
    }
    if let Some(v) = q.size_min {
        query = query.filter(images::size.ge(v));
    }
    if let Some(v) = q.size_max {
        query = query.filter(images::size.le(v));
    }
    if let Some(v) = q.protected {
        query = query.filter(images::protected.eq(v));
    }
    for (name, value) in &q.properties {
        query = query.filter(
            images::id.eq_any(
                image_properties::table
                    .filter(image_properties::name.eq(name.clone()))
                    .filter(image_properties::value.eq(value.clone()))
                    .filter(image_properties::deleted.eq(false))
                    .select(image_properties::image_id),
            ),
        );
    }

    let keys = sort_keys(q.sort_key);
    for key in &keys {
        query = order_by(query, *key, q.sort_dir);
    }
    if let Some(marker) = &marker {
        query = query.filter(after(&keys, q.sort_dir, marker));
    }
    Ok(query.limit(q.limit).select(ImageRow::as_select()).load(conn)?)
}

/// The sort key, then `created_at`, then `id`: a total order, so marker paging never skips.
fn sort_keys(key: SortKey) -> Vec<SortKey> {
    let mut keys = vec![key];
    for k in [SortKey::CreatedAt, SortKey::Id] {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys
}

/// Orders by `key`. NULLs sort as the smallest value on every engine (first ascending, last
/// descending), as Glance's marker comparison treats them.
fn order_by(query: Query, key: SortKey, dir: SortDir) -> Query {
    macro_rules! nullable {
        ($col:expr) => {
            match dir {
                SortDir::Asc => query.then_order_by($col.is_not_null().asc()).then_order_by($col.asc()),
                SortDir::Desc => query.then_order_by($col.is_not_null().desc()).then_order_by($col.desc()),
            }
        };
    }
    macro_rules! not_null {
        ($col:expr) => {
            match dir {
                SortDir::Asc => query.then_order_by($col.asc()),
                SortDir::Desc => query.then_order_by($col.desc()),
            }
        };
    }
    match key {
        SortKey::Name => nullable!(images::name),
        SortKey::ContainerFormat => nullable!(images::container_format),
        SortKey::DiskFormat => nullable!(images::disk_format),
        SortKey::Size => nullable!(images::size),
        SortKey::Status => not_null!(images::status),
        SortKey::Id => not_null!(images::id),
        SortKey::CreatedAt => not_null!(images::created_at),
        SortKey::UpdatedAt => not_null!(images::updated_at),
    }
}

/// Rows strictly after `marker` in the order of `keys`:
/// `k1 > m1 OR (k1 = m1 AND (k2 > m2 OR (k2 = m2 AND ...)))`, with "greater" flipped for desc.
fn after(keys: &[SortKey], dir: SortDir, marker: &ImageRow) -> BoolExpr {
    let Some((first, rest)) = keys.split_first() else { return never() };
    let (beyond, equal) = compare(*first, dir, marker);
    if rest.is_empty() { beyond } else { Box::new(beyond.or(equal.and(after(rest, dir, marker)))) }
}

/// A condition no row meets, as a bind so that the statement stays cacheable.
fn never() -> BoolExpr {
    Box::new(false.into_sql::<Bool>())
}

/// `(column is past the marker's value, column equals it)` for one sort key.
fn compare(key: SortKey, dir: SortDir, m: &ImageRow) -> (BoolExpr, BoolExpr) {
    macro_rules! nullable {
        ($col:expr, $value:expr) => {{
            let col = $col;
            match ($value, dir) {
                (Some(v), SortDir::Asc) => (
                    Box::new(col.is_not_null().and(col.assume_not_null().gt(v.clone()))) as BoolExpr,
                    Box::new(col.is_not_null().and(col.assume_not_null().eq(v.clone()))) as BoolExpr,
                ),
                (Some(v), SortDir::Desc) => (
                    Box::new(col.is_null().or(col.assume_not_null().lt(v.clone()))) as BoolExpr,
                    Box::new(col.is_not_null().and(col.assume_not_null().eq(v.clone()))) as BoolExpr,
                ),
                (None, SortDir::Asc) => (Box::new(col.is_not_null()) as BoolExpr, Box::new(col.is_null()) as BoolExpr),
                (None, SortDir::Desc) => (never(), Box::new(col.is_null()) as BoolExpr),
            }
        }};
    }
    macro_rules! not_null {
        ($col:expr, $value:expr) => {{
            let (col, v) = ($col, $value.clone());
            let beyond: BoolExpr = match dir {
                SortDir::Asc => Box::new(col.gt(v.clone())),
                SortDir::Desc => Box::new(col.lt(v.clone())),
            };
            (beyond, Box::new(col.eq(v)) as BoolExpr)
        }};
    }
    match key {
        SortKey::Name => nullable!(images::name, &m.name),
        SortKey::ContainerFormat => nullable!(images::container_format, &m.container_format),
        SortKey::DiskFormat => nullable!(images::disk_format, &m.disk_format),
        SortKey::Size => nullable!(images::size, &m.size),
        SortKey::Status => not_null!(images::status, m.status),
        SortKey::Id => not_null!(images::id, m.id),
        SortKey::CreatedAt => not_null!(images::created_at, m.created_at),
        SortKey::UpdatedAt => not_null!(images::updated_at, m.updated_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glance_common::context::RequestContext;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
    const LIMITS: Limits = Limits { default: 25, max: 1000 };

    fn user() -> RequestContext {
        RequestContext { is_admin: false, tenant: Some("t1".into()), ..RequestContext::admin("req-x".into()) }
    }

    #[test]
    fn defaults() {
        let q = ListQuery::parse(&[], &RequestContext::admin("r".into()), LIMITS).expect("query");
        assert_eq!((q.limit, q.sort_key, q.sort_dir, q.scope), (25, SortKey::CreatedAt, SortDir::Desc, Scope::AsUser));
    }

    #[test]
    fn limits_are_checked_and_capped() {
        let admin = RequestContext::admin("r".into());
        assert_eq!(ListQuery::parse(&params(&[("limit", "5000")]), &admin, LIMITS).expect("q").limit, 1000);
        let err = |p: &[(&str, &str)]| ListQuery::parse(&params(p), &admin, LIMITS).unwrap_err().message().to_string();
        assert_eq!(err(&[("limit", "x")]), "limit param must be an integer");
        assert_eq!(err(&[("limit", "-1")]), "limit param must be positive");
        assert_eq!(err(&[("marker", "nope")]), "Invalid marker format");
        assert!(err(&[("sort_key", "owner")]).starts_with("Unsupported sort_key"));
        assert!(err(&[("sort_dir", "up")]).starts_with("Unsupported sort_dir"));
        assert_eq!(err(&[("is_public", "maybe")]), "is_public must be None, True, or False");
        assert_eq!(err(&[("protected", "none")]), "protected must be True, or False");
        assert!(err(&[("changes-since", "")]).starts_with("Unrecognized changes-since value"));
        assert!(err(&[("size_min", "-1")]).contains("size_min"));
    }

    #[test]
    fn is_public_and_deleted_are_for_admins_only() {
        let q = ListQuery::parse(&params(&[("is_public", "none"), ("deleted", "true")]), &user(), LIMITS).expect("q");
        assert_eq!((q.scope, q.deleted), (Scope::AsUser, None));
        let admin = RequestContext::admin("r".into());
        let q = ListQuery::parse(&params(&[("is_public", "None"), ("deleted", "true")]), &admin, LIMITS).expect("q");
        assert_eq!((q.scope, q.deleted), (Scope::All, Some(true)));
    }

    #[test]
    fn property_filters() {
        let q = ListQuery::parse(&params(&[("property-distro", "Ubuntu"), ("property-arch", "x86")]), &user(), LIMITS)
            .expect("q");
        assert_eq!(q.properties, vec![("distro".into(), "Ubuntu".into()), ("arch".into(), "x86".into())]);
    }
}
