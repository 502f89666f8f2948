//! The typed client API nodes use to reach glance-registry: the only path to the database.
//!
//! It keeps pooled keep-alive connections, forwards the caller's identity and request id, and
//! turns every registry error into an [`Error`] with the registry's status and message, so the
//! API can pass it on instead of swallowing it.

use crate::context::{ADMIN_HEADER, REGISTRY_SECRET_HEADER, REQUEST_ID_HEADER, RequestContext};
use crate::error::{Error, ErrorKind, Result, message_from_body};
use crate::keystone::Secret;
use crate::location_cipher::LocationCipher;
use crate::model::{
    Grant, Image, ImagePatch, ImageSummary, Member, Membership, ReservationRequest, ScrubClaim, ScrubJob, ScrubRenewal,
    SharedImage,
};
use reqwest::header::HeaderValue;
use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RegistryClient {
    base: String,
    http: reqwest::Client,
    /// `registry_shared_secret`, marked sensitive.
    secret: Option<HeaderValue>,
    /// `metadata_encryption_key`: locations leave encrypted and come back decrypted.
    cipher: Option<Arc<LocationCipher>>,
}

#[derive(Deserialize)]
struct ImageBody {
    image: Image,
}
#[derive(Serialize)]
struct PatchBody<'a> {
    image: &'a ImagePatch,
    #[serde(skip_serializing_if = "Option::is_none")]
    from_state: Option<&'a str>,
}
#[derive(Deserialize)]
struct ImagesBody<T> {
    images: Vec<T>,
}
#[derive(Deserialize)]
struct MembersBody {
    members: Vec<Member>,
}
#[derive(Serialize)]
struct MembershipsBody<'a> {
    memberships: &'a [Membership],
}
#[derive(Deserialize)]
struct SharedBody {
    shared_images: Vec<SharedImage>,
}

impl RegistryClient {
    /// A client for the registry at `host:port`; `timeout` bounds every request.
    pub fn new(host: &str, port: u16, timeout: Duration) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30)) // below the servers' 75 s keep-alive
            .build()
            .map_err(Error::internal)?;
        let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_string() };
        Ok(Self { base: format!("http://{host}:{port}"), http, secret: None, cipher: None })
    }

    /// Encrypts locations on their way to the registry and decrypts them on the way back.
    pub fn with_location_cipher(mut self, cipher: Option<LocationCipher>) -> Self {
        self.cipher = cipher.map(Arc::new);
        self
    }

    /// The patch as the registry must store it (locations encrypted).
    fn sealed<'a>(&self, patch: &'a ImagePatch) -> std::borrow::Cow<'a, ImagePatch> {
        let Some(cipher) = &self.cipher else { return std::borrow::Cow::Borrowed(patch) };
        if patch.location.is_none() && patch.location_data.is_none() {
            return std::borrow::Cow::Borrowed(patch);
        }
        let mut sealed = patch.clone();
        if let Some(Some(location)) = sealed.location.as_mut() {
            *location = cipher.encrypt(location);
        }
        for data in sealed.location_data.iter_mut().flatten() {
            data.url = cipher.encrypt(&data.url);
        }
        std::borrow::Cow::Owned(sealed)
    }

    /// The image with its locations readable again. A location that does not decrypt (another
    /// key) stays as stored: metadata keeps working, and the data is unreachable (502 on
    /// download) rather than fetched from a wrong URL; the failure is logged.
    fn opened(&self, mut image: Image) -> Image {
        image.location.iter_mut().for_each(|value| self.open(value));
        image.location_data.iter_mut().for_each(|data| self.open(&mut data.url));
        image
    }

    /// One location readable again (see [`Self::opened`]).
    fn open(&self, value: &mut String) {
        if let Some(plain) = self.cipher.as_ref().and_then(|cipher| cipher.decrypt(value).ok()) {
            *value = plain;
        }
    }

    /// Sends `registry_shared_secret` with every request (registries that demand it refuse
    /// anyone else with 401).
    pub fn with_shared_secret(mut self, secret: Option<Secret>) -> Self {
        self.secret = secret.and_then(|s| {
            let mut value = HeaderValue::from_str(&s.0).ok()?;
            value.set_sensitive(true);
            Some(value)
        });
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET /images/detail` with Glance's filter, sort and paging parameters.
    pub async fn list_detail(&self, ctx: &RequestContext, params: &[(String, String)]) -> Result<Vec<Image>> {
        let body: ImagesBody<Image> = self.json(self.request(ctx, Method::GET, "/images/detail").query(params)).await?;
        Ok(body.images.into_iter().map(|image| self.opened(image)).collect())
    }

    /// `GET /images`: the short form.
    pub async fn list(&self, ctx: &RequestContext, params: &[(String, String)]) -> Result<Vec<ImageSummary>> {
        let body: ImagesBody<ImageSummary> = self.json(self.request(ctx, Method::GET, "/images").query(params)).await?;
        Ok(body.images)
    }

    pub async fn get(&self, ctx: &RequestContext, id: &str) -> Result<Image> {
        let body: ImageBody = self.json(self.request(ctx, Method::GET, &image_path(id))).await?;
        Ok(self.opened(body.image))
    }

    pub async fn create(&self, ctx: &RequestContext, patch: &ImagePatch) -> Result<Image> {
        let sealed = self.sealed(patch);
        let body = PatchBody { image: sealed.as_ref(), from_state: None };
        let body: ImageBody = self.json(self.request(ctx, Method::POST, "/images").json(&body)).await?;
        Ok(self.opened(body.image))
    }

    /// Changes an image. `purge_props` makes the supplied properties the whole set;
    /// `from_state` makes the change conditional on the current status (409 otherwise).
    pub async fn update(
        &self,
        ctx: &RequestContext,
        id: &str,
        patch: &ImagePatch,
        purge_props: bool,
        from_state: Option<&str>,
    ) -> Result<Image> {
        let sealed = self.sealed(patch);
        let body = PatchBody { image: sealed.as_ref(), from_state };
        let request = self
            .request(ctx, Method::PUT, &image_path(id))
            .header("x-glance-registry-purge-props", if purge_props { "true" } else { "false" })
            .json(&body);
        let body: ImageBody = self.json(request).await?;
        Ok(self.opened(body.image))
    }

    /// Soft-deletes an image and everything hanging off it; returns the deleted record.
    pub async fn delete(&self, ctx: &RequestContext, id: &str) -> Result<Image> {
        let body: ImageBody = self.json(self.request(ctx, Method::DELETE, &image_path(id))).await?;
        Ok(self.opened(body.image))
    }

    pub async fn members(&self, ctx: &RequestContext, id: &str) -> Result<Vec<Member>> {
        let path = format!("{}/members", image_path(id));
        let body: MembersBody = self.json(self.request(ctx, Method::GET, &path)).await?;
        Ok(body.members)
    }

    /// Makes `memberships` the image's whole member list.
    pub async fn replace_members(&self, ctx: &RequestContext, id: &str, memberships: &[Membership]) -> Result<()> {
        let path = format!("{}/members", image_path(id));
        self.send(self.request(ctx, Method::PUT, &path).json(&MembershipsBody { memberships })).await.map(drop)
    }

    /// Adds `member`, or updates its `can_share` when given.
    pub async fn add_member(
        &self,
        ctx: &RequestContext,
        id: &str,
        member: &str,
        can_share: Option<bool>,
    ) -> Result<()> {
        let path = format!("{}/members/{}", image_path(id), segment(member));
        let mut request = self.request(ctx, Method::PUT, &path);
        if let Some(can_share) = can_share {
            request = request.json(&serde_json::json!({"member": {"can_share": can_share}}));
        }
        self.send(request).await.map(drop)
    }

    pub async fn delete_member(&self, ctx: &RequestContext, id: &str, member: &str) -> Result<()> {
        let path = format!("{}/members/{}", image_path(id), segment(member));
        self.send(self.request(ctx, Method::DELETE, &path)).await.map(drop)
    }

    pub async fn shared_images(&self, ctx: &RequestContext, member: &str) -> Result<Vec<SharedImage>> {
        let path = format!("/shared-images/{}", segment(member));
        let body: SharedBody = self.json(self.request(ctx, Method::GET, &path)).await?;
        Ok(body.shared_images)
    }

    /// Asks for `bytes` (at least `needed`) in all for the upload into `id`, within its owner's
    /// `quota`.
    pub async fn reserve(&self, ctx: &RequestContext, id: &str, ask: ReservationRequest) -> Result<Grant> {
        #[derive(Deserialize)]
        struct Body {
            reservation: Grant,
        }
        let request = self.request(ctx, Method::PUT, &format!("{}/reservation", image_path(id))).json(&ask);
        Ok(self.json::<Body>(request).await?.reservation)
    }

    /// Soft-deletes the image and queues its locations for glance-scrubber, due after
    /// `scrub_after` (delayed_delete): it is then `pending_delete`, or `deleted` when it had
    /// no data.
    pub async fn delete_delayed(&self, ctx: &RequestContext, id: &str, scrub_after: Duration) -> Result<Image> {
        let request =
            self.request(ctx, Method::DELETE, &image_path(id)).query(&[("scrub_after", scrub_after.as_secs())]);
        let body: ImageBody = self.json(request).await?;
        Ok(self.opened(body.image))
    }

    /// Takes due delayed-delete jobs for one scrubber (see `ScrubClaim`), locations decrypted.
    pub async fn claim_scrub_jobs(&self, ctx: &RequestContext, ask: &ScrubClaim) -> Result<Vec<ScrubJob>> {
        #[derive(Deserialize)]
        struct Body {
            jobs: Vec<ScrubJob>,
        }
        let body: Body = self.json(self.request(ctx, Method::POST, "/scrub-jobs/claim").json(ask)).await?;
        let mut jobs = body.jobs;
        jobs.iter_mut().for_each(|job| self.open(&mut job.url));
        Ok(jobs)
    }

    /// Keeps this scrubber's claim on jobs it is still working on; returns how many it holds.
    pub async fn renew_scrub_jobs(&self, ctx: &RequestContext, ask: &ScrubRenewal) -> Result<usize> {
        #[derive(Deserialize)]
        struct Body {
            held: usize,
        }
        Ok(self.json::<Body>(self.request(ctx, Method::POST, "/scrub-jobs/renew").json(ask)).await?.held)
    }

    /// The job's data is deleted; returns the image's status afterwards.
    pub async fn finish_scrub_job(&self, ctx: &RequestContext, job: i32) -> Result<Option<String>> {
        #[derive(Deserialize)]
        struct Body {
            image_status: Option<String>,
        }
        let body: Body = self.json(self.request(ctx, Method::DELETE, &format!("/scrub-jobs/{job}"))).await?;
        Ok(body.image_status)
    }

    /// The job's delete failed with `error`; it stays queued for the next pass (if `worker`
    /// still holds it).
    pub async fn release_scrub_job(&self, ctx: &RequestContext, job: i32, worker: &str, error: &str) -> Result<()> {
        let path = format!("/scrub-jobs/{job}/release");
        let body = serde_json::json!({ "worker": worker, "error": error });
        let request = self.request(ctx, Method::POST, &path).json(&body);
        self.send(request).await.map(drop)
    }

    /// A request carrying the caller's identity (for `trusted-auth` registries) and request id.
    fn request(&self, ctx: &RequestContext, method: Method, path: &str) -> RequestBuilder {
        let mut request = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header(REQUEST_ID_HEADER, &ctx.request_id)
            .header("x-identity-status", "Confirmed")
            .header("x-roles", ctx.roles.join(","));
        if let Some(user) = &ctx.user {
            request = request.header("x-user-id", user);
        }
        if let Some(tenant) = &ctx.tenant {
            request = request.header("x-tenant-id", tenant);
        }
        if let Some(token) = &ctx.auth_token {
            request = request.header("x-auth-token", token);
        }
        if let Some(secret) = &self.secret {
            request = request.header(REGISTRY_SECRET_HEADER, secret.clone());
            if ctx.is_admin {
                request = request.header(ADMIN_HEADER, "True");
            }
        }
        request
    }

    async fn send(&self, request: RequestBuilder) -> Result<Response> {
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        let kind = ErrorKind::from_status(status);
        let message = message_from_body(&body);
        log::debug!("registry answered {status}: {message}");
        // Conflicts and not-found answers carry a literal body in Glance; keep it literal.
        Err(if matches!(kind, ErrorKind::Conflict) { Error::literal(kind, message) } else { Error::new(kind, message) })
    }

    async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T> {
        let response = self.send(request).await?;
        response
            .json()
            .await
            .map_err(|e| Error::new(ErrorKind::BadGateway, "Unexpected response from the registry").with_source(e))
    }

    /// Clients learn that the registry is unavailable; its address goes to the log only.
    fn transport_error(&self, err: reqwest::Error) -> Error {
        let what = if err.is_timeout() { "did not answer in time" } else { "is unavailable" };
        Error::unavailable(format!("The image registry {what}; try again later"))
            .with_source(format!("registry {}: {err}", self.base))
    }
}

fn image_path(id: &str) -> String {
    format!("/images/{}", segment(id))
}

/// Percent-encodes a path segment, so an id can never change the path it is put in.
fn segment(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>().replace('+', "%20")
}
