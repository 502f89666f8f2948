//! `/v1/images`: Glance's v1 image API.

use super::upload::{self, Expected};
use super::{json_response, policy_target};
use crate::AppState;
use crate::meta::{RequestMeta, write_headers};
use crate::protections::Op;
use crate::store::{Scheme, redact};
use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, web};
use glance_common::context::RequestContext;
use glance_common::model::{Image, ImagePatch, ImageSummary, Keyed, PublicImage, validate_formats};
use glance_common::{Error, ErrorKind};
use std::collections::HashMap;

/// Query parameters the API checks before passing them to the registry.
const INT_FILTERS: &[&str] = &["min_ram", "size_min", "size_max"];
const BOOL_FILTERS: &[&str] = &["is_public", "protected"];

fn list_params(req: &HttpRequest) -> Result<Vec<(String, String)>, Error> {
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect();
    for (key, value) in &params {
        let bad = || Error::bad_request(format!("Bad value passed to filter {key} got {value}"));
        if INT_FILTERS.contains(&key.as_str()) && value.trim().parse::<u64>().is_err() {
            return Err(bad());
        }
        if BOOL_FILTERS.contains(&key.as_str())
            && !matches!(value.to_lowercase().as_str(), "none" | "true" | "false" | "1" | "0")
        {
            return Err(bad());
        }
    }
    // `deleted` is a registry-only filter.
    Ok(params.into_iter().filter(|(k, _)| k != "deleted").collect())
}

/// `GET /v1/images`: id, name, size, formats and checksum of the visible images.
pub async fn index(req: HttpRequest, ctx: RequestContext, st: web::Data<AppState>) -> Result<HttpResponse, Error> {
    st.policy.enforce("get_images", &ctx, &Default::default())?;
    let images: Vec<ImageSummary> = st.registry.list(&ctx, &list_params(&req)?).await?;
    Ok(json_response(200, &Keyed("images", &images)))
}

/// `GET /v1/images/detail`: full records, without locations.
pub async fn detail(req: HttpRequest, ctx: RequestContext, st: web::Data<AppState>) -> Result<HttpResponse, Error> {
    st.policy.enforce("get_images", &ctx, &Default::default())?;
    let mut images = st.registry.list_detail(&ctx, &list_params(&req)?).await?;
    for image in &mut images {
        hide_unreadable(&st, &ctx, image);
    }
    let public: Vec<PublicImage<'_>> = images.iter().map(PublicImage).collect();
    Ok(json_response(200, &Keyed("images", &public)))
}

async fn fetch(st: &AppState, ctx: &RequestContext, id: &str) -> Result<Image, Error> {
    st.registry.get(ctx, id).await.map_err(|e| match e.kind() {
        ErrorKind::NotFound => Error::not_found(format!("Image with identifier {id} not found")),
        ErrorKind::Forbidden => Error::forbidden("Forbidden image access"),
        _ => e,
    })
}

fn image_url(req: &HttpRequest, id: &str) -> String {
    let info = req.connection_info();
    format!("{}://{}/v1/images/{id}", info.scheme(), info.host())
}

fn with_image_headers(req: &HttpRequest, image: &Image, status: u16) -> actix_web::HttpResponseBuilder {
    let mut builder = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default());
    builder.insert_header((header::LOCATION, image_url(req, &image.id)));
    if let Some(checksum) = &image.checksum {
        builder.insert_header((header::ETAG, checksum.clone()));
    }
    builder
}

/// `HEAD /v1/images/{id}`: metadata as headers.
pub async fn head(
    req: HttpRequest,
    id: web::Path<String>,
    ctx: RequestContext,
    st: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    st.policy.enforce("get_image", &ctx, &Default::default())?;
    let mut image = fetch(&st, &ctx, &id).await?;
    hide_unreadable(&st, &ctx, &mut image);
    let mut builder = with_image_headers(&req, &image, 200);
    write_headers(&mut builder, &image);
    Ok(builder.finish())
}

/// `GET /v1/images/{id}`: the image data, streamed from its store.
pub async fn download(
    req: HttpRequest,
    id: web::Path<String>,
    ctx: RequestContext,
    st: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    st.policy.enforce("get_image", &ctx, &Default::default())?;
    let image = match fetch(&st, &ctx, &id).await {
        Ok(image) if image.status == "active" => image,
        // Policy first: a caller who may not download learns nothing about the image.
        Ok(image) => {
            st.policy.enforce("download_image", &ctx, &policy_target(&image))?;
            return Err(Error::not_found(format!("Image {id} is not active")));
        }
        Err(e) => {
            st.policy.enforce("download_image", &ctx, &Default::default())?;
            return Err(e);
        }
    };
    st.policy.enforce("download_image", &ctx, &policy_target(&image))?;
    let mut image = image;
    hide_unreadable(&st, &ctx, &mut image);
    let mut builder = with_image_headers(&req, &image, 200);
    write_headers(&mut builder, &image);
    builder.content_type("application/octet-stream");
    if image.size == Some(0) {
        return Ok(builder.finish());
    }
    // A cached copy, after the same registry, visibility and policy checks as the store.
    if let Some(cache) = &st.cache
        && let Some((file, size)) = cache.lookup(&image.id, image.size).await
    {
        builder.no_chunking(size);
        let (cache, hit) = (cache.clone(), image.id.clone());
        let body = crate::store::on_complete(crate::store::fs::read_file(file, 0, size), async move {
            cache.record_hit(&hit).await;
        });
        return Ok(builder.streaming(body));
    }
    let locations = st.stores.ordered(&image, &st.config.location_strategy);
    if locations.is_empty() {
        return Err(Error::not_found(format!("Image {id} has no data")));
    }
    // Each location in the configured order until one answers. Store errors name the location;
    // users never see locations (LP #755916), so log it and answer with fixed texts.
    let mut data = None;
    let mut all_missing = true;
    let mut unavailable = None;
    let stores = st.stores.acting_for(&ctx);
    for location in locations {
        match stores.get(location).await {
            Ok(found) => {
                data = Some(found);
                break;
            }
            Err(e) => {
                log::warn!(req = ctx.request_id.as_str(); "image {id}: data at {} unavailable: {e}", redact(location));
                all_missing &= matches!(e, crate::store::StoreError::NotFound(_));
                if let crate::store::StoreError::Unavailable(why) = e {
                    unavailable.get_or_insert(why);
                }
            }
        }
    }
    let data = data.ok_or_else(|| {
        match unavailable {
            _ if all_missing => Error::not_found(format!("Image {id} data not found")),
            // The store's own words name it ("The Swift store is unavailable: ...").
            Some(why) => Error::unavailable(format!("Image {id} data is unavailable: {why}")),
            None => Error::new(ErrorKind::BadGateway, format!("Image {id} data is unavailable")),
        }
    })?;
    let size = data.size.or(image.size.map(|s| s as u64)).unwrap_or(0);
    builder.no_chunking(size);
    // RFC 3230: a client that asks for the md5 digest gets it, and the bytes are checked
    // against it on the way out (a mismatch cuts the transfer short instead of completing it).
    let wants_md5 = req.headers().get("want-digest").and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(',').any(|d| d.split(';').next().is_some_and(|a| a.trim().eq_ignore_ascii_case("md5")))
    });
    // The first download of an active image fills the cache on its way to the client.
    let body = match &st.cache {
        Some(cache) => cache.tee(&image.id, data.body, image.checksum.clone()),
        None => data.body,
    };
    let body = match image.checksum.as_deref().filter(|_| wants_md5).and_then(|c| Some((c, hex::decode(c).ok()?))) {
        Some((checksum, raw)) => {
            use base64::Engine;
            builder.insert_header(("Digest", format!("md5={}", base64::engine::general_purpose::STANDARD.encode(raw))));
            crate::store::verify_md5(body, checksum.to_string())
        }
        None => body,
    };
    Ok(builder.streaming(body))
}

/// The patch a request's metadata makes. `create` decides the fields only POST may set.
fn patch_from(meta: &RequestMeta, ctx: &RequestContext) -> ImagePatch {
    let text = |f: &str| meta.has(f).then(|| meta.get(f).map(str::to_string));
    ImagePatch {
        id: meta.get("id").map(str::to_string),
        name: text("name"),
        disk_format: text("disk_format"),
        container_format: text("container_format"),
        size: meta.has("size").then(|| meta.int("size")),
        checksum: text("checksum"),
        min_disk: meta.int("min_disk"),
        min_ram: meta.int("min_ram"),
        is_public: meta.bool("is_public"),
        protected: meta.bool("protected"),
        // Only admins choose owners; Glance drops the header for everybody else.
        owner: text("owner").filter(|_| ctx.is_admin),
        created_at: meta.get("created_at").and_then(glance_common::timeutil::parse_isotime),
        updated_at: meta.get("updated_at").and_then(glance_common::timeutil::parse_isotime),
        properties: Some(meta.properties.clone()),
        ..ImagePatch::default()
    }
}

/// Glance's `validate_image_meta`: formats (amazon formats fill each other in) and name length.
fn validate(st: &AppState, patch: &mut ImagePatch) -> Result<(), Error> {
    let amazon =
        |f: &Option<Option<String>>| matches!(f.as_ref().and_then(|v| v.as_deref()), Some("aki" | "ari" | "ami"));
    if amazon(&patch.disk_format) && patch.container_format.is_none() {
        patch.container_format = patch.disk_format.clone();
    }
    if amazon(&patch.container_format) && patch.disk_format.is_none() {
        patch.disk_format = patch.container_format.clone();
    }
    let check = |value: &Option<Option<String>>, allowed: &[String], what: &str| -> Result<(), Error> {
        match value {
            Some(v) if !v.as_ref().is_some_and(|v| allowed.contains(v)) => Err(Error::bad_request(format!(
                "Invalid {what} format '{}' for image.",
                v.as_deref().unwrap_or("None")
            ))),
            _ => Ok(()),
        }
    };
    check(&patch.disk_format, &st.config.disk_formats, "disk")?;
    check(&patch.container_format, &st.config.container_formats, "container")?;
    validate_formats(
        patch.disk_format.clone().flatten().as_deref(),
        patch.container_format.clone().flatten().as_deref(),
        &st.config.disk_formats,
        &st.config.container_formats,
    )
    .map_err(Error::bad_request)?;
    if let Some(Some(name)) = &patch.name
        && name.chars().count() > 255
    {
        return Err(Error::bad_request(format!("Image name too long: {}", name.chars().count())));
    }
    Ok(())
}

/// Before data or a location makes an image active, it must have formats (stored or given).
fn validate_for_activation(st: &AppState, patch: &ImagePatch, current: Option<&Image>) -> Result<(), Error> {
    let pick = |given: &Option<Option<String>>, stored: Option<&Option<String>>| {
        given.clone().unwrap_or_else(|| stored.cloned().flatten())
    };
    let disk = pick(&patch.disk_format, current.map(|i| &i.disk_format));
    let container = pick(&patch.container_format, current.map(|i| &i.container_format));
    let disk = disk.ok_or_else(|| Error::bad_request("Invalid disk format 'None' for image."))?;
    let container = container.ok_or_else(|| Error::bad_request("Invalid container format 'None' for image."))?;
    validate_formats(Some(&disk), Some(&container), &st.config.disk_formats, &st.config.container_formats)
        .map_err(Error::bad_request)
}

/// A request carries image data when it is chunked or has a non-zero Content-Length.
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

/// The size a request announces: a non-zero Content-Length, else `x-image-meta-size`.
fn declared_size(headers: &HeaderMap, meta: &RequestMeta) -> Option<u64> {
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    length.filter(|n: &u64| *n > 0).or(meta.int("size").map(|s| s as u64))
}

/// An external source (location or copy-from) must be a store we read, and never the API
/// node's own files or Swift credentials from its config (LP #942118, #1334196, #1400966).
async fn check_external_source(st: &AppState, source: &str) -> Result<Scheme, Error> {
    // Glance's wording, kept as is (sic): clients and tests match on it.
    let refused = || Error::bad_request(format!("External source are not supported: '{}'", redact(source)));
    let scheme = source.split_once("://").map(|(s, _)| s.to_ascii_lowercase()).ok_or_else(refused)?;
    // Credentials in a URL end up in the database and in every copy of the record; refused
    // rather than stored (the message never repeats them).
    if url::Url::parse(source).is_ok_and(|u| !u.username().is_empty() || u.password().is_some()) {
        return Err(Error::bad_request("Credentials are not allowed in image locations or copy-from URLs"));
    }
    match Scheme::parse(&scheme) {
        // A missing source answers 404 at once (Glance Liberty's test_copy_from_http_nonexistent_
        // location_url, seed 000) rather than Icehouse's 201 then `killed`: the client learns of
        // its mistake immediately and no dead record is left behind.
        Some(Scheme::Http) => {
            st.stores.http.check(source).await.map_err(crate::store::StoreError::into_error)?;
            Ok(Scheme::Http)
        }
        _ => Err(refused()),
    }
}

/// Where a POST or PUT gets its data from: the body, a copy-from URL or a location.
struct Sources {
    body: bool,
    copy_from: Option<String>,
    location: Option<String>,
}

impl Sources {
    fn of(headers: &HeaderMap, meta: &RequestMeta) -> Self {
        Self {
            body: has_body(headers),
            copy_from: headers.get("x-glance-api-copy-from").and_then(|v| v.to_str().ok()).map(str::to_string),
            location: meta.get("location").map(str::to_string),
        }
    }

    /// The policy rules the request needs beyond its action (`add_image`, `modify_image`).
    fn enforce(
        &self,
        st: &AppState,
        ctx: &RequestContext,
        target: &HashMap<&str, String>,
        publicize: bool,
    ) -> Result<(), Error> {
        if publicize {
            st.policy.enforce("publicize_image", ctx, target)?;
        }
        if self.copy_from.is_some() {
            st.policy.enforce("copy_from", ctx, target)?;
        }
        if self.body || self.copy_from.is_some() {
            st.policy.enforce("upload_image", ctx, target)?;
        }
        if self.location.is_some() {
            st.policy.enforce("set_image_location", ctx, target)?;
        }
        Ok(())
    }

    /// At most one source, and an external one must be allowed; returns the external one.
    async fn check(&self, st: &AppState) -> Result<Option<&str>, Error> {
        if [self.body, self.copy_from.is_some(), self.location.is_some()].iter().filter(|b| **b).count() > 1 {
            return Err(Error::bad_request("It's invalid to provide multiple image sources."));
        }
        let source = self.location.as_deref().or(self.copy_from.as_deref());
        if let Some(source) = source {
            check_external_source(st, source).await?;
        }
        Ok(source)
    }
}

fn chosen_store(st: &AppState, meta: &RequestMeta) -> Result<Scheme, Error> {
    match meta.get("store") {
        Some(name) => match Scheme::parse(name) {
            Some(Scheme::Http) => Err(Error::bad_request(format!("Store for scheme {name} is read-only"))),
            Some(scheme) if st.stores.writable(scheme) => Ok(scheme),
            Some(_) => Err(Error::bad_request(format!("Required store {name} is invalid"))),
            None => Err(Error::bad_request(format!("Required store {name} is invalid"))),
        },
        None => Ok(st.default_scheme()),
    }
}

fn check_property_quota(st: &AppState, count: usize) -> Result<(), Error> {
    let quota = st.config.image_property_quota;
    if quota >= 0 && count as i64 > quota {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!(
                "The limit has been exceeded on the number of allowed image properties. Attempted: {count}, Maximum: {quota}"
            ),
        ));
    }
    Ok(())
}

fn check_size_cap(st: &AppState, declared: Option<u64>) -> Result<(), Error> {
    if let Some(size) = declared
        && size > st.config.image_size_cap
    {
        return Err(Error::bad_request(format!(
            "Denying attempt to upload image larger than {} bytes.",
            st.config.image_size_cap
        )));
    }
    Ok(())
}

fn check_octet_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/octet-stream")))
}

/// `POST /v1/images`: register an image, with data, a location or a copy-from source.
pub async fn create(
    req: HttpRequest,
    body: web::Payload,
    ctx: RequestContext,
    st: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let headers = req.headers();
    let meta = RequestMeta::parse(headers)?;
    let mut patch = patch_from(&meta, &ctx);
    validate(&st, &mut patch)?;
    check_size_cap(&st, declared_size(headers, &meta))?;
    let sources = Sources::of(headers, &meta);
    let (body_present, location) = (sources.body, sources.location.clone());
    let target = Default::default();
    st.policy.enforce("add_image", &ctx, &target)?;
    sources.enforce(&st, &ctx, &target, patch.is_public == Some(true))?;
    check_property_quota(&st, meta.properties.len())?;
    if let Some(protections) = &st.protections {
        for key in meta.properties.keys() {
            protections.enforce(key, Op::Create, &ctx, &st.policy)?;
        }
    }
    let source = sources.check(&st).await?;
    let scheme = chosen_store(&st, &meta)?;
    if body_present || location.is_some() {
        validate_for_activation(&st, &patch, None)?;
    }

    // Reserve: a size given as 0 makes an image that needs no data; the status header is ignored.
    let supplied_size = meta.int("size");
    let mut size = supplied_size.unwrap_or(0);
    if let Some(source) = source
        && supplied_size.is_none()
    {
        size = st.stores.size(source).await.map_err(crate::store::StoreError::into_error)? as i64;
    }
    patch.size = Some(Some(size));
    patch.status =
        Some(if supplied_size == Some(0) && source.is_none() && !body_present { "active" } else { "queued" }.into());
    let image = st.registry.create(&ctx, &patch).await.map_err(|e| match e.kind() {
        ErrorKind::Conflict => Error::conflict(format!(
            "An image with identifier {} already exists",
            patch.id.as_deref().unwrap_or_default()
        )),
        ErrorKind::BadRequest => Error::bad_request(format!("Failed to reserve image. Got error: {}", e.message())),
        ErrorKind::Forbidden => Error::forbidden("Forbidden to reserve image."),
        _ => e,
    })?;
    log::info!(req = ctx.request_id.as_str(); "image {} reserved ({})", image.id, image.status);

    let expected = Expected { size: supplied_size, checksum: meta.get("checksum").map(str::to_string) };
    let image = if body_present {
        if !check_octet_stream(headers) {
            upload::kill(&st, &ctx, &image.id, "queued").await;
            return Err(Error::bad_request("Content-Type must be application/octet-stream"));
        }
        upload::upload(&st, &ctx, &image, scheme, &expected, body).await?
    } else if let Some(location) = &location {
        set_location(&st, &ctx, &image, location).await?
    } else if let Some(source) = sources.copy_from {
        actix_web::rt::spawn(upload::copy_from(st.get_ref().clone(), ctx.clone(), image.clone(), source, expected));
        image
    } else {
        image
    };
    let mut image = image;
    hide_unreadable(&st, &ctx, &mut image);
    let mut builder = with_image_headers(&req, &image, 201);
    Ok(builder
        .content_type("application/json")
        .body(glance_common::pyjson::to_string(&Keyed("image", &PublicImage(&image)))))
}

/// Drops the properties the caller may not read (property protections).
fn hide_unreadable(st: &AppState, ctx: &RequestContext, image: &mut Image) {
    if let Some(protections) = &st.protections {
        image.properties.retain(|key, _| protections.allows(key, Op::Read, ctx, &st.policy));
    }
}

/// Property protections on a PUT, as Glance applies them: a property that exists and is sent
/// must be readable, and updatable if its value changes; a new one must be creatable; when
/// purging, one left out must be deletable, or is kept (returned) if the caller cannot read it.
fn protect_update(
    protections: &crate::protections::Protections,
    st: &AppState,
    ctx: &RequestContext,
    current: &Image,
    sent: &std::collections::BTreeMap<String, Option<String>>,
    purge: bool,
) -> Result<Vec<(String, Option<String>)>, Error> {
    let allows = |key: &str, op| protections.allows(key, op, ctx, &st.policy);
    for (key, value) in sent {
        match current.properties.get(key) {
            Some(old) if !allows(key, Op::Read) || (old != value && !allows(key, Op::Update)) => {
                return Err(crate::protections::protected(key));
            }
            Some(_) => {}
            None if !allows(key, Op::Create) => return Err(crate::protections::protected(key)),
            None => {}
        }
    }
    let mut kept = Vec::new();
    if purge {
        for (key, value) in current.properties.iter().filter(|(k, _)| !sent.contains_key(*k)) {
            if !allows(key, Op::Read) {
                kept.push((key.clone(), value.clone()));
            } else if !allows(key, Op::Delete) {
                return Err(crate::protections::protected(key));
            }
        }
    }
    Ok(kept)
}

/// Points a queued image at data that already exists elsewhere and activates it.
async fn set_location(st: &AppState, ctx: &RequestContext, image: &Image, location: &str) -> Result<Image, Error> {
    let stored_size = st.stores.size(location).await.map_err(crate::store::StoreError::into_error)?;
    if let Some(size) = image.size
        && size > 0
        && stored_size > 0
        && size as u64 != stored_size
    {
        return Err(Error::conflict(format!(
            "Provided image size must match the stored image size. (provided size: {size}, stored size: {stored_size})"
        )));
    }
    let patch = ImagePatch {
        location: Some(Some(location.to_string())),
        status: Some("active".into()),
        size: (image.size.unwrap_or(0) == 0 && stored_size > 0).then_some(Some(stored_size as i64)),
        ..ImagePatch::default()
    };
    st.registry.update(ctx, &image.id, &patch, false, Some("queued")).await
}

/// `PUT /v1/images/{id}`: change metadata, upload data into a queued image, or set its location.
pub async fn update(
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Payload,
    ctx: RequestContext,
    st: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let headers = req.headers();
    let meta = RequestMeta::parse(headers)?;
    let mut patch = patch_from(&meta, &ctx);
    patch.id = None;
    patch.created_at = None;
    patch.updated_at = None;
    validate(&st, &mut patch)?;
    check_size_cap(&st, declared_size(headers, &meta))?;
    let sources = Sources::of(headers, &meta);
    let (body_present, location) = (sources.body, sources.location.clone());

    let current = fetch(&st, &ctx, &id).await?;
    let target = policy_target(&current);
    st.policy.enforce("modify_image", &ctx, &target)?;
    sources.enforce(&st, &ctx, &target, patch.is_public == Some(true))?;
    if current.status == "deleted" {
        return Err(Error::forbidden("Forbidden to update deleted image."));
    }
    // Status changes only through uploads and deletes (Glance bug #1482371).
    if let Some(status) = meta.get("status")
        && status != current.status
    {
        return Err(Error::forbidden("Forbidden to modify 'status' of image."));
    }
    if !ctx.is_admin && current.status == "active" {
        for (key, given, stored) in [
            ("size", meta.get("size").map(str::to_string), current.size.map(|s| s.to_string())),
            ("checksum", meta.get("checksum").map(str::to_string), current.checksum.clone()),
        ] {
            if given.is_some() && given != stored {
                return Err(Error::forbidden(format!("Forbidden to modify '{key}' of active image.")));
            }
        }
    }
    if body_present && current.status != "queued" {
        return Err(Error::conflict("Cannot upload to an unqueued image"));
    }
    if sources.check(&st).await?.is_some() && current.status != "queued" {
        return Err(Error::bad_request("Attempted to update Location field for an image not in queued status."));
    }
    let scheme = chosen_store(&st, &meta)?;
    if body_present || location.is_some() {
        validate_for_activation(&st, &patch, Some(&current))?;
    }

    // Uploading data never purges properties (LP #901534); a metadata PUT does unless told not to.
    let purge = !body_present
        && headers
            .get("x-glance-registry-purge-props")
            .and_then(|v| v.to_str().ok())
            .is_none_or(glance_common::model::bool_from_string);
    let new_keys = meta.properties.len();
    let total = if purge {
        new_keys
    } else {
        current.properties.keys().chain(meta.properties.keys()).collect::<std::collections::BTreeSet<_>>().len()
    };
    check_property_quota(&st, total)?;
    let purge_props = purge;
    if let Some(protections) = &st.protections {
        let kept = protect_update(protections, &st, &ctx, &current, &meta.properties, purge)?;
        if let Some(properties) = patch.properties.as_mut() {
            properties.extend(kept);
        }
    }
    if !purge && meta.properties.is_empty() {
        patch.properties = None;
    }
    if body_present {
        patch.properties = (!meta.properties.is_empty()).then(|| meta.properties.clone());
    }
    let mut image = st.registry.update(&ctx, &id, &patch, purge_props, None).await.map_err(|e| match e.kind() {
        ErrorKind::BadRequest => {
            Error::bad_request(format!("Failed to update image metadata. Got error: {}", e.message()))
        }
        ErrorKind::NotFound => Error::not_found(format!("Failed to find image to update: {}", e.message())),
        ErrorKind::Forbidden => Error::forbidden(format!("Forbidden to update image: {}", e.message())),
        ErrorKind::Conflict => Error::literal(ErrorKind::Conflict, "Image operation conflicts"),
        _ => e,
    })?;
    // Whenever visibility is named, not only when it changed: repeating a request whose ACL
    // update failed repairs it.
    if patch.is_public.is_some() {
        super::store_acls::sync(&st, &ctx, &image).await?;
    }
    if current.status == "queued" {
        let expected = Expected { size: meta.int("size"), checksum: meta.get("checksum").map(str::to_string) };
        if body_present {
            if !check_octet_stream(headers) {
                upload::kill(&st, &ctx, &image.id, "queued").await;
                return Err(Error::bad_request("Content-Type must be application/octet-stream"));
            }
            image = upload::upload(&st, &ctx, &image, scheme, &expected, body).await?;
        } else if let Some(location) = &location {
            image = set_location(&st, &ctx, &image, location).await?;
        } else if let Some(source) = sources.copy_from {
            actix_web::rt::spawn(upload::copy_from(st.get_ref().clone(), ctx.clone(), image.clone(), source, expected));
        }
    }
    hide_unreadable(&st, &ctx, &mut image);
    let mut builder = with_image_headers(&req, &image, 200);
    Ok(builder
        .content_type("application/json")
        .body(glance_common::pyjson::to_string(&Keyed("image", &PublicImage(&image)))))
}

/// `DELETE /v1/images/{id}`: delete the image and its data.
pub async fn delete(
    id: web::Path<String>,
    ctx: RequestContext,
    st: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    st.policy.enforce("delete_image", &ctx, &Default::default())?;
    let image = fetch(&st, &ctx, &id).await?;
    st.policy.enforce("delete_image", &ctx, &policy_target(&image))?;
    if image.protected {
        return Err(Error::forbidden("Image is protected"));
    }
    match image.status.as_str() {
        "pending_delete" => return Err(Error::forbidden("Forbidden to delete a pending_delete image.")),
        "deleted" => return Err(Error::not_found(format!("Image {id} not found."))),
        _ => {}
    }
    let refused = |e: Error| match e.kind() {
        ErrorKind::Forbidden => Error::forbidden(format!("Forbidden to delete image: {}", e.message())),
        ErrorKind::NotFound => Error::not_found(format!("Failed to find image to delete: {}", e.message())),
        _ => e,
    };
    if let Some(scrub_time) = st.config.delayed_delete {
        // The registry queues the data for glance-scrubber as it soft-deletes the record.
        let queued = st.registry.delete_delayed(&ctx, &id, scrub_time).await.map_err(refused)?;
        super::store_acls::close(&st, &ctx, &image).await;
        forget_cached(&st, &ctx, &id).await;
        log::info!(req = ctx.request_id.as_str(); "image {id} deleted, data {}", match queued.status.as_str() {
            "pending_delete" => "queued for the scrubber",
            _ => "none",
        });
        return Ok(HttpResponse::Ok().finish());
    }
    let deleted = ImagePatch { status: Some("deleted".into()), ..ImagePatch::default() };
    // The update returns the record as it is now: an upload that activated meanwhile is in it,
    // and one that activates later fails its from_state check and removes its own data.
    let marked = st.registry.update(&ctx, &id, &deleted, false, None).await.map_err(refused)?;
    for location in marked.location_data.iter().map(|l| l.url.as_str()) {
        match st.stores.acting_for(&ctx).delete(location).await {
            // Data already gone (removed behind our back) is not an error for a delete.
            Ok(()) | Err(crate::store::StoreError::NotFound(_)) => {}
            Err(e) => {
                // Keep the record while its data exists: put the status back and report.
                log::error!(req = ctx.request_id.as_str(); "image {id}: data at {} not deleted: {e}", redact(location));
                let restore = ImagePatch { status: Some(image.status.clone()), ..ImagePatch::default() };
                if let Err(err) = st.registry.update(&ctx, &id, &restore, false, Some("deleted")).await {
                    log::error!(req = ctx.request_id.as_str(); "image {id}: status not restored: {err}");
                }
                return Err(e.into_error());
            }
        }
    }
    st.registry.delete(&ctx, &id).await?;
    forget_cached(&st, &ctx, &id).await;
    log::info!(req = ctx.request_id.as_str(); "image {id} deleted");
    Ok(HttpResponse::Ok().finish())
}

/// A deleted image leaves this node's cache and cache queue before the DELETE answers.
async fn forget_cached(st: &AppState, ctx: &RequestContext, id: &str) {
    if let Some(cache) = &st.cache {
        if let Err(e) = cache.delete(id).await {
            log::warn!(req = ctx.request_id.as_str(); "image {id}: cached copy not removed: {e}");
        }
        let _ = cache.dequeue(id).await;
    }
}
