//! The Swift store (`default_store = swift`), as Glance's. Single-tenant (the default): one
//! service account, one container, one object per image. Multi-tenant
//! (`swift_store_multi_tenant`): each image in its owner's own account (the caller's token and
//! the object-store URL of its service catalog), in a container of its own
//! (`<swift_store_container>_<id>`) whose read ACL follows the image's visibility: its member
//! projects, or everyone when public.
//!
//! Images whose size is unknown or above `swift_store_large_object_size` are written as
//! segments of `swift_store_large_object_chunk_size` (`<id>-00001`, ...) under a dynamic large
//! object manifest `<id>` (`X-Object-Manifest: <container>/<id>-`), as Glance does; each segment
//! is streamed as it arrives, so nothing is held in memory. An upload that fails or is cut off
//! deletes whatever it wrote. Single-tenant locations are
//! `swift+http(s)://<auth address>/<container>/<id>` without credentials (the store's own are
//! used; Glance's `user:key@` form is read too); multi-tenant ones are
//! `swift+http(s)://<storage URL>/<container>_<id>/<id>`.

use super::{ByteRange, Caller, Chunk, Download, Md5Thread, StoreError, Stored, Upload, stall};
use bytes::Bytes;
use futures_util::StreamExt;
use glance_common::config::{ConfigError, DEFAULT_SECTION, RawConfig};
use glance_common::keystone::{self, Ref, Secret};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;

/// Options of `[glance_store]` (or `[DEFAULT]`) the Swift store reads.
pub const KEYS: &[&str] = &[
    "swift_store_auth_address",
    "swift_store_user",
    "swift_store_key",
    "swift_store_auth_version",
    "swift_store_container",
    "swift_store_create_container_on_put",
    "swift_store_large_object_size",
    "swift_store_large_object_chunk_size",
    "swift_store_multi_tenant",
    "swift_store_admin_tenants",
    "swift_store_region",
    "swift_store_endpoint_type",
    "swift_store_service_type",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthVersion {
    /// tempauth / swauth: `GET <auth address>` with X-Auth-User and X-Auth-Key.
    V1,
    /// Keystone v3: a project-scoped password token; the storage URL from its catalog.
    V3,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwiftOptions {
    pub auth_address: String,
    /// `account:user` (v1) or `project:user` (v3).
    pub user: String,
    pub key: Secret,
    pub auth_version: AuthVersion,
    pub container: String,
    pub create_container_on_put: bool,
    pub large_object_size: u64,
    pub large_object_chunk_size: u64,
    pub region: Option<String>,
    /// The catalog interface: `public`, `internal` or `admin` (from `publicURL`...).
    pub interface: String,
    pub service_type: String,
    /// Images in their owners' accounts (`swift_store_multi_tenant`).
    pub multi_tenant: bool,
    /// Projects given write access to every multi-tenant container (`swift_store_admin_tenants`).
    pub admin_tenants: Vec<String>,
    /// `remote_store_timeout`: the longest Swift (or its auth service) may keep us waiting.
    pub timeout: Duration,
}

impl SwiftOptions {
    /// The Swift options, when `swift_store_auth_address` is set; wrong values name their key.
    pub fn from_raw(raw: &RawConfig) -> Result<Option<Self>, ConfigError> {
        let get = |key: &str| raw.string("glance_store", key).or_else(|| raw.string(DEFAULT_SECTION, key));
        let section =
            |key: &str| if raw.string("glance_store", key).is_some() { "glance_store" } else { DEFAULT_SECTION };
        let Some(auth_address) = get("swift_store_auth_address") else { return Ok(None) };
        let invalid = |key: &str, value: &str, msg: &str| raw.invalid(section(key), key, value, msg);
        let auth_address = if auth_address.contains("://") { auth_address } else { format!("https://{auth_address}") };
        url::Url::parse(&auth_address)
            .map_err(|e| invalid("swift_store_auth_address", &auth_address, &e.to_string()))?;
        let auth_version = match get("swift_store_auth_version").as_deref().unwrap_or("2") {
            "1" => AuthVersion::V1,
            "2" | "3" => AuthVersion::V3,
            other => return Err(invalid("swift_store_auth_version", other, "must be 1, 2 or 3")),
        };
        let boolean = |key: &str| -> Result<bool, ConfigError> {
            match get(key) {
                None => Ok(false),
                Some(v) => glance_common::model::bool_from_string(&v)
                    .then_some(true)
                    .or_else(|| ["false", "0", "no", "off"].contains(&v.to_lowercase().as_str()).then_some(false))
                    .ok_or_else(|| invalid(key, &v, "expected True or False")),
            }
        };
        let mebibytes = |key: &str, default: u64| -> Result<u64, ConfigError> {
            match get(key) {
                None => Ok(default << 20),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .map(|n| n << 20)
                    .ok_or_else(|| invalid(key, &v, "expected a positive number of MB")),
            }
        };
        let required = |key: &str| get(key).ok_or_else(|| invalid(key, "", "required with swift_store_auth_address"));
        let interface = match get("swift_store_endpoint_type").as_deref().unwrap_or("publicURL") {
            "publicURL" | "public" => "public",
            "internalURL" | "internal" => "internal",
            "adminURL" | "admin" => "admin",
            other => return Err(invalid("swift_store_endpoint_type", other, "publicURL, internalURL or adminURL")),
        };
        Ok(Some(Self {
            auth_address: auth_address.trim_end_matches('/').to_string(),
            user: required("swift_store_user")?,
            key: Secret(required("swift_store_key")?),
            auth_version,
            container: get("swift_store_container").unwrap_or_else(|| "glance".into()),
            create_container_on_put: boolean("swift_store_create_container_on_put")?,
            large_object_size: mebibytes("swift_store_large_object_size", 5120)?,
            large_object_chunk_size: mebibytes("swift_store_large_object_chunk_size", 200)?,
            region: get("swift_store_region"),
            interface: interface.to_string(),
            service_type: get("swift_store_service_type").unwrap_or_else(|| "object-store".into()),
            multi_tenant: boolean("swift_store_multi_tenant")?,
            admin_tenants: get("swift_store_admin_tenants")
                .map(|v| v.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect())
                .unwrap_or_default(),
            timeout: stall::timeout_from_raw(raw)?,
        }))
    }
}

#[derive(Clone)]
struct Session {
    token: Secret,
    storage_url: String,
    /// When to log in again: before the token ends, if the auth service said when it does.
    renew_at: Option<tokio::time::Instant>,
}

/// A service token is renewed this long before it expires (or half its life, if shorter), so
/// that a request (a segment's upload, which cannot be replayed after a 401) never starts with
/// a token about to end.
const RENEW_BEFORE: Duration = Duration::from_secs(600);

/// When a token that has `left` to live should be replaced.
fn renew_at(left: Duration) -> tokio::time::Instant {
    tokio::time::Instant::now() + left - RENEW_BEFORE.min(left / 2)
}

impl Session {
    /// The caller's own token on `account` (its lifetime is the caller's business).
    fn of_user(token: &Secret, account: &Account) -> Self {
        Self { token: token.clone(), storage_url: account.base.clone().unwrap_or_default(), renew_at: None }
    }

    fn fresh(&self) -> bool {
        self.renew_at.is_none_or(|at| tokio::time::Instant::now() < at)
    }
}

/// The account an operation addresses and whose token it carries. Single-tenant: the service's
/// own (both `None`). Multi-tenant: the image's account (`base`), with the caller's token or,
/// when the caller is not the account's owner and must write (an admin, a tool), the service's.
struct Account {
    base: Option<String>,
    user_token: Option<Secret>,
}

impl Account {
    fn service() -> Self {
        Self { base: None, user_token: None }
    }
}

#[derive(Clone)]
pub struct SwiftStore {
    inner: Arc<Inner>,
}

struct Inner {
    opts: SwiftOptions,
    http: reqwest::Client,
    session: Mutex<Option<Session>>,
    container_ready: AtomicBool,
}

impl std::fmt::Debug for SwiftStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SwiftStore({})", self.inner.opts.auth_address)
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("The Swift store is unavailable: {e}"))
}

/// A request that failed on its way (refused, reset, no such host): the whole error goes to
/// the log; the caller's message leaves out the URL, which is the deployment's business.
fn transport(e: reqwest::Error) -> StoreError {
    log::warn!("a request to the Swift store failed: {e}");
    unavailable(e.without_url())
}

/// Swift (`who`: "it" or "its auth service") kept us waiting `limit`.
fn stalled(who: &str, limit: Duration) -> StoreError {
    unavailable(format!("{who} did not answer within {} s (remote_store_timeout)", limit.as_secs()))
}

impl SwiftStore {
    pub fn new(opts: SwiftOptions) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("Swift client: {e}"))?;
        Ok(Self {
            inner: Arc::new(Inner { opts, http, session: Mutex::new(None), container_ready: AtomicBool::new(false) }),
        })
    }

    fn opts(&self) -> &SwiftOptions {
        &self.inner.opts
    }

    pub fn multi_tenant(&self) -> bool {
        self.opts().multi_tenant
    }

    /// Where object `name` in `container` is, as a location URI: under the auth address
    /// (single-tenant) or the account's storage URL (multi-tenant).
    fn location_of(&self, base: &str, container: &str, name: &str) -> String {
        let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
        format!("swift+{scheme}://{rest}/{container}/{name}")
    }

    /// `(container, object)` of a location this store can read.
    fn object_of(location: &str) -> Result<(String, String), StoreError> {
        Self::parts_of(location).map(|(_, container, object)| (container, object))
    }

    /// `(storage URL, container, object)` of a location: the URL is the account's for
    /// multi-tenant locations (for single-tenant ones it is the auth address, and unused).
    fn parts_of(location: &str) -> Result<(String, String, String), StoreError> {
        let bad = || StoreError::BadLocation("Invalid Swift location".into());
        let url = url::Url::parse(&super::without_credentials(location)).map_err(|_| bad())?;
        let mut segments: Vec<&str> = url.path_segments().ok_or_else(bad)?.filter(|s| !s.is_empty()).collect();
        let object = segments.pop().ok_or_else(bad)?;
        let container = segments.pop().ok_or_else(bad)?;
        let scheme = if url.scheme() == "swift+http" { "http" } else { "https" };
        let host = url.host_str().ok_or_else(bad)?;
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let base = format!("{scheme}://{host}{port}/{}", segments.join("/"));
        Ok((base.trim_end_matches('/').to_string(), container.to_string(), object.to_string()))
    }

    /// The caller's own account: the object-store URL of its service catalog.
    fn own_account(&self, caller: &Caller) -> Option<String> {
        let o = self.opts();
        caller.endpoint(&o.service_type, &o.interface, o.region.as_deref()).map(|u| u.trim_end_matches('/').to_string())
    }

    /// The account of an existing location and the token to reach it with (see [`Account`]).
    /// Readers use their own token (member projects read through the container's ACL);
    /// admins and tools that are not the owner use the service's, which must be a reseller
    /// admin of Swift.
    fn account_for(&self, location: &str, caller: &Caller, write: bool) -> Result<Account, StoreError> {
        if !self.opts().multi_tenant {
            return Ok(Account::service());
        }
        let (base, _, _) = Self::parts_of(location)?;
        if base == self.opts().auth_address {
            // Written before the store became multi-tenant: in the service's container.
            return Ok(Account::service());
        }
        let own = self.own_account(caller).is_some_and(|own| own == base);
        let user_token = caller.token.clone().filter(|_| own || (!write && !caller.is_admin));
        Ok(Account { base: Some(base), user_token })
    }

    /// The service's session: the one held unless `renew` or it is about to expire. Logins
    /// are one at a time (the lock) and bounded by `remote_store_timeout`.
    async fn session(&self, renew: bool) -> Result<Session, StoreError> {
        let mut slot = self.inner.session.lock().await;
        if let Some(session) = slot.as_ref().filter(|s| !renew && s.fresh()) {
            return Ok(session.clone());
        }
        let limit = self.opts().timeout;
        let login = async {
            match self.opts().auth_version {
                AuthVersion::V1 => self.auth_v1().await,
                AuthVersion::V3 => self.auth_v3().await,
            }
        };
        let session = stall::within(limit, login, || stalled("its auth service", limit)).await?;
        *slot = Some(session.clone());
        Ok(session)
    }

    async fn auth_v1(&self) -> Result<Session, StoreError> {
        let o = self.opts();
        let res = self
            .inner
            .http
            .get(&o.auth_address)
            .header("x-auth-user", &o.user)
            .header("x-auth-key", &o.key.0)
            .send()
            .await
            .map_err(transport)?;
        if !res.status().is_success() {
            return Err(refused(res.status()));
        }
        let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        // tempauth says how many seconds the token has left.
        let renew_at = header("x-auth-token-expires")
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| renew_at(Duration::from_secs_f64(s.min(1e9))));
        match (header("x-auth-token"), header("x-storage-url")) {
            (Some(token), Some(storage_url)) => Ok(Session { token: Secret(token), storage_url, renew_at }),
            _ => Err(unavailable("the auth answer carried no token or storage URL")),
        }
    }

    async fn auth_v3(&self) -> Result<Session, StoreError> {
        let o = self.opts();
        let (project, user) = o.user.split_once(':').unwrap_or(("", o.user.as_str()));
        let default = Ref::Id("default");
        let body = keystone::password_login(user, &o.key.0, default, Ref::Name(project), default);
        let base = keystone::base_url(&o.auth_address);
        let res = self.inner.http.post(format!("{base}/v3/auth/tokens")).json(&body).send().await.map_err(transport)?;
        if !res.status().is_success() {
            return Err(refused(res.status()));
        }
        let token = res
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| unavailable("Keystone answered without a token"))?;
        let doc: serde_json::Value = res.json().await.map_err(transport)?;
        let catalog = glance_common::context::parse_catalog(&doc["token"]["catalog"]);
        let storage_url =
            glance_common::context::find_endpoint(&catalog, &o.service_type, &o.interface, o.region.as_deref())
                .map(str::to_string)
                .ok_or_else(|| {
                    unavailable(format!("no {} endpoint of type {} in the catalog", o.interface, o.service_type))
                })?;
        let renew_at = doc["token"]["expires_at"]
            .as_str()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .map(|at| (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO))
            .map(|left| renew_at(left.min(Duration::from_secs(1_000_000_000))));
        Ok(Session { token: Secret(token), storage_url, renew_at })
    }

    /// Sends a request to `account`: with the caller's token as it is, or with the service's
    /// session, renewed once when it expired.
    async fn send(
        &self,
        account: &Account,
        build: impl Fn(&Session) -> RequestBuilder,
    ) -> Result<Response, StoreError> {
        if let Some(token) = &account.user_token {
            let session = Session::of_user(token, account);
            return self.answer(build(&session)).await;
        }
        let at = |mut session: Session| {
            if let Some(base) = &account.base {
                session.storage_url = base.clone();
            }
            session
        };
        let res = self.answer(build(&at(self.session(false).await?))).await?;
        if res.status() != StatusCode::UNAUTHORIZED {
            return Ok(res);
        }
        self.answer(build(&at(self.session(true).await?))).await
    }

    /// `request` sent, its answer (the head) awaited at most `remote_store_timeout`.
    async fn answer(&self, request: RequestBuilder) -> Result<Response, StoreError> {
        self.bounded(request.send()).await
    }

    /// One exchange with Swift (an answer, a listing's body), bounded by `remote_store_timeout`.
    async fn bounded<T>(&self, call: impl Future<Output = reqwest::Result<T>>) -> Result<T, StoreError> {
        let limit = self.opts().timeout;
        stall::within(limit, async { call.await.map_err(transport) }, || stalled("it", limit)).await
    }

    fn request(&self, session: &Session, method: Method, path: &str) -> RequestBuilder {
        self.inner
            .http
            .request(method, format!("{}/{path}", session.storage_url))
            .header("x-auth-token", &session.token.0)
    }

    /// Makes sure the single-tenant container exists, creating it when allowed (checked once
    /// per process).
    async fn ensure_container(&self) -> Result<(), StoreError> {
        if self.inner.container_ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        let container = self.opts().container.clone();
        let account = Account::service();
        let res = self.send(&account, |s| self.request(s, Method::HEAD, &container)).await?;
        match res.status() {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND if self.opts().create_container_on_put => {
                let res = self.send(&account, |s| self.request(s, Method::PUT, &container)).await?;
                if !res.status().is_success() {
                    return Err(unavailable(format!("could not create container {container}: {}", res.status())));
                }
            }
            StatusCode::NOT_FOUND => {
                return Err(StoreError::Unavailable(format!(
                    "The Swift container {container} does not exist and swift_store_create_container_on_put is off"
                )));
            }
            other => return Err(unavailable(format!("container {container}: {other}"))),
        }
        self.inner.container_ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Where an upload of image `id` goes: the account, its base URL for the location, and the
    /// container. Multi-tenant: the caller's own account and a new, private container of the
    /// image's own (made here: it cannot exist beforehand, so create-on-put does not apply).
    async fn target(&self, id: &str, caller: &Caller) -> Result<(Account, String, String), StoreError> {
        let o = self.opts();
        if !o.multi_tenant {
            self.ensure_container().await?;
            return Ok((Account::service(), o.auth_address.clone(), o.container.clone()));
        }
        let (Some(token), Some(base)) = (caller.token.clone(), self.own_account(caller)) else {
            return Err(StoreError::Unavailable(format!(
                "The multi-tenant Swift store needs the caller's Keystone token and a {} {} endpoint in its catalog",
                o.interface, o.service_type
            )));
        };
        let container = format!("{}_{id}", o.container);
        let account = Account { base: Some(base.clone()), user_token: Some(token) };
        let res = self.send(&account, |s| self.request(s, Method::PUT, &container)).await?;
        if !res.status().is_success() {
            return Err(unavailable(format!("could not create container {container}: {}", res.status())));
        }
        Ok((account, base, container))
    }

    /// Streams an upload into the container: one object when `size_hint` says it is small,
    /// else segments and a manifest. Anything written is deleted again if the upload fails.
    pub async fn put(
        &self,
        id: &str,
        upload: Upload,
        size_hint: Option<u64>,
        caller: &Caller,
    ) -> Result<Stored, StoreError> {
        let (account, base, container) = self.target(id, caller).await?;
        let md5 = Md5Thread::start();
        let to_hasher = md5.sender();
        let feed =
            Arc::new(Mutex::new(Feed { upload, leftover: None, ended: false, aborted: false, size: 0, to_hasher }));
        let mut written: Vec<String> = Vec::new();
        let at = Place { account: &account, container: &container };
        let result = self.write(id, &at, &feed, size_hint, &mut written).await;
        let size = {
            let mut feed = feed.lock().await;
            // Closing the hasher's channel lets it finish.
            feed.to_hasher = tokio::sync::mpsc::channel(1).0;
            feed.size
        };
        let checksum = md5.finish().await?;
        match result {
            Ok(()) => Ok(Stored { location: self.location_of(&base, &container, id), size, checksum }),
            Err(e) => {
                self.discard(&at, &written).await;
                Err(e)
            }
        }
    }

    /// Deletes what a failed upload wrote (and, multi-tenant, its container). The caller's
    /// token may have expired during a long upload: what it cannot delete is deleted with the
    /// service's credentials.
    async fn discard(&self, at: &Place<'_>, written: &[String]) {
        let service = Account { base: at.account.base.clone(), user_token: None };
        let accounts = if at.account.user_token.is_some() { vec![at.account, &service] } else { vec![at.account] };
        for name in written.iter().rev() {
            let mut outcome = Ok(());
            for account in &accounts {
                outcome = self.delete_object(&Place { account, container: at.container }, name).await;
                if matches!(outcome, Ok(()) | Err(StoreError::NotFound(_))) {
                    break;
                }
            }
            if let Err(e) = outcome.or_else(|e| if matches!(e, StoreError::NotFound(_)) { Ok(()) } else { Err(e) }) {
                log::error!("Swift object {}/{name} of a failed upload not deleted: {e}", at.container);
            }
        }
        if self.opts().multi_tenant {
            for account in &accounts {
                let res = self.send(account, |s| self.request(s, Method::DELETE, at.container)).await;
                if res.is_ok_and(|r| r.status().is_success() || r.status() == StatusCode::NOT_FOUND) {
                    return;
                }
            }
            log::error!("Swift container {} of a failed upload not deleted", at.container);
        }
    }

    async fn write(
        &self,
        id: &str,
        at: &Place<'_>,
        feed: &Arc<Mutex<Feed>>,
        size_hint: Option<u64>,
        written: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        let o = self.opts().clone();
        if size_hint.is_some_and(|s| s < o.large_object_size) {
            written.push(id.to_string());
            self.put_object(at, id, feed, u64::MAX).await?;
            return finished(feed).await;
        }
        for n in 1.. {
            if !more(feed).await? {
                break;
            }
            let name = format!("{id}-{n:05}");
            written.push(name.clone());
            self.put_object(at, &name, feed, o.large_object_chunk_size).await?;
        }
        finished(feed).await?;
        let manifest = format!("{}/{id}-", at.container);
        written.push(id.to_string());
        let path = format!("{}/{id}", at.container);
        let res = self
            .send(at.account, |s| {
                self.request(s, Method::PUT, &path).header("x-object-manifest", &manifest).header("content-length", "0")
            })
            .await?;
        check_written(res, id)
    }

    /// One PUT streaming up to `limit` bytes of the feed (sent once: a stream cannot be
    /// replayed, so the service session is not renewed here).
    async fn put_object(
        &self,
        at: &Place<'_>,
        name: &str,
        feed: &Arc<Mutex<Feed>>,
        limit: u64,
    ) -> Result<(), StoreError> {
        let session = match &at.account.user_token {
            Some(token) => Session::of_user(token, at.account),
            None => self.session(false).await?,
        };
        let path = format!("{}/{name}", at.container);
        let watch = stall::UploadWatch::new();
        let body = watch.watch(Box::pin(segment(feed.clone(), limit)));
        let send = self.request(&session, Method::PUT, &path).body(reqwest::Body::wrap_stream(body)).send();
        let timeout = self.opts().timeout;
        let res = watch.limit(timeout, async { send.await.map_err(transport) }, || stalled("it", timeout)).await;
        if feed.lock().await.aborted {
            return Err(StoreError::Aborted);
        }
        check_written(res?, name)
    }

    pub async fn get(&self, location: &str, range: Option<ByteRange>, caller: &Caller) -> Result<Download, StoreError> {
        let (container, object) = Self::object_of(location)?;
        let account = self.account_for(location, caller, false)?;
        let path = format!("{container}/{object}");
        let res = self
            .send(&account, |s| {
                let r = self.request(s, Method::GET, &path);
                match range {
                    Some(range) => r.header("range", range.header()),
                    None => r,
                }
            })
            .await?;
        match res.status() {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND => return Err(StoreError::NotFound(format!("Swift could not find object {object}"))),
            StatusCode::RANGE_NOT_SATISFIABLE => {
                return Err(StoreError::BadLocation("Requested range not satisfiable".into()));
            }
            other => return Err(unavailable(format!("GET {object}: {other}"))),
        }
        let size = res.content_length();
        let body = res.bytes_stream().map(|chunk| chunk.map_err(std::io::Error::other));
        Ok(Download { body: Box::pin(stall::quiet_limited(Box::pin(body), self.opts().timeout)), size })
    }

    pub async fn size(&self, location: &str, caller: &Caller) -> Result<u64, StoreError> {
        let (container, object) = Self::object_of(location)?;
        let account = self.account_for(location, caller, false)?;
        let path = format!("{container}/{object}");
        let res = self.send(&account, |s| self.request(s, Method::HEAD, &path)).await?;
        match res.status() {
            // A HEAD answer has no body, so reqwest's content_length() would say 0: read the header.
            s if s.is_success() => Ok(res
                .headers()
                .get(reqwest::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .unwrap_or(0)),
            StatusCode::NOT_FOUND => Err(StoreError::NotFound(format!("Swift could not find object {object}"))),
            other => Err(unavailable(format!("HEAD {object}: {other}"))),
        }
    }

    /// Deletes the object and, for a large object, its segments; multi-tenant, the image's
    /// container too.
    pub async fn delete(&self, location: &str, caller: &Caller) -> Result<(), StoreError> {
        let (container, object) = Self::object_of(location)?;
        let account = self.account_for(location, caller, true)?;
        let path = format!("{container}/{object}");
        let res = self.send(&account, |s| self.request(s, Method::HEAD, &path)).await?;
        let found = match res.status() {
            s if s.is_success() => true,
            StatusCode::NOT_FOUND => false,
            other => return Err(unavailable(format!("HEAD {object}: {other}"))),
        };
        // Pieces already gone (an earlier attempt, a listing that lags) are skipped, never
        // taken for the whole object being gone.
        let gone = |r: Result<(), StoreError>| match r {
            Ok(()) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        };
        let at = Place { account: &account, container: &container };
        if found {
            if let Some(manifest) = res.headers().get("x-object-manifest").and_then(|v| v.to_str().ok()) {
                let (segment_container, prefix) = manifest.split_once('/').unwrap_or((container.as_str(), manifest));
                let segments = Place { account: &account, container: segment_container };
                let names = self.list(&segments, prefix).await.or_else(|e| gone(Err(e)).map(|()| Vec::new()))?;
                for name in names {
                    gone(self.delete_object(&segments, &name).await)?;
                }
            }
            gone(self.delete_object(&at, &object).await)?;
        }
        if self.image_container(&account, &container, &object) {
            // The image's own container: whatever an interrupted attempt left in it goes too,
            // then the container. The data is gone by now, so a container Swift will not delete
            // yet (its listing lags: 409) is only logged.
            for name in self.list(&at, "").await.or_else(|e| gone(Err(e)).map(|()| Vec::new()))? {
                gone(self.delete_object(&at, &name).await)?;
            }
            let res = self.send(&account, |s| self.request(s, Method::DELETE, &container)).await?;
            if !(res.status().is_success() || res.status() == StatusCode::NOT_FOUND) {
                log::warn!("Swift container {container} not deleted ({}); it holds no data", res.status());
            }
        }
        if found { Ok(()) } else { Err(StoreError::NotFound(format!("Swift could not find object {object}"))) }
    }

    /// Whether `container` is the multi-tenant container of image `object` alone (never a
    /// shared one: a single-tenant container, or a location naming someone else's).
    fn image_container(&self, account: &Account, container: &str, object: &str) -> bool {
        let o = self.opts();
        o.multi_tenant && account.base.is_some() && container == format!("{}_{object}", o.container)
    }

    /// Multi-tenant: the read ACL of the image's container follows its visibility (everyone
    /// when public, else its member projects), and `swift_store_admin_tenants` may write.
    /// Containers shared by several images (written before the store became multi-tenant)
    /// are left alone: opening one would open every image in it.
    pub async fn set_acls(
        &self,
        location: &str,
        public: bool,
        read_tenants: &[String],
        caller: &Caller,
    ) -> Result<(), StoreError> {
        if !self.opts().multi_tenant {
            return Ok(());
        }
        let (container, object) = Self::object_of(location)?;
        let account = self.account_for(location, caller, true)?;
        if !self.image_container(&account, &container, &object) {
            log::warn!("Swift container {container} is not an image's own: its ACLs are left as they are");
            return Ok(());
        }
        let acl = |tenants: &[String]| tenants.iter().map(|t| format!("{t}:*")).collect::<Vec<_>>().join(",");
        let read = if public { "*:*".to_string() } else { acl(read_tenants) };
        let write = acl(&self.opts().admin_tenants);
        let res = self
            .send(&account, |s| {
                self.request(s, Method::POST, &container)
                    .header("x-container-read", &read)
                    .header("x-container-write", &write)
            })
            .await?;
        match res.status() {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Err(StoreError::NotFound(format!("Swift could not find container {container}"))),
            other => Err(unavailable(format!("setting the ACLs of container {container}: {other}"))),
        }
    }

    /// Names in the container starting with `prefix`, every page.
    async fn list(&self, at: &Place<'_>, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = Vec::new();
        loop {
            let marker = names.last().cloned().unwrap_or_default();
            let res = self
                .send(at.account, |s| {
                    self.request(s, Method::GET, at.container).query(&[
                        ("format", "json"),
                        ("prefix", prefix),
                        ("marker", marker.as_str()),
                    ])
                })
                .await?;
            if res.status() == StatusCode::NOT_FOUND {
                return Err(StoreError::NotFound(format!("Swift could not find container {}", at.container)));
            }
            if !res.status().is_success() {
                return Err(unavailable(format!("listing {}: {}", at.container, res.status())));
            }
            let page: Vec<serde_json::Value> = self.bounded(res.json()).await?;
            if page.is_empty() {
                return Ok(names);
            }
            names.extend(page.iter().filter_map(|o| o["name"].as_str().map(str::to_string)));
        }
    }

    async fn delete_object(&self, at: &Place<'_>, name: &str) -> Result<(), StoreError> {
        let path = format!("{}/{name}", at.container);
        let res = self.send(at.account, |s| self.request(s, Method::DELETE, &path)).await?;
        match res.status() {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Err(StoreError::NotFound(format!("Swift could not find object {name}"))),
            other => Err(unavailable(format!("DELETE {name}: {other}"))),
        }
    }
}

/// A container in an account.
struct Place<'a> {
    account: &'a Account,
    container: &'a str,
}

fn refused(status: StatusCode) -> StoreError {
    log::error!("the Swift store's credentials (swift_store_user) were refused: {status}");
    StoreError::Unavailable(format!("The Swift store refused its credentials ({status})"))
}

fn check_written(res: Response, name: &str) -> Result<(), StoreError> {
    match res.status() {
        s if s.is_success() => Ok(()),
        StatusCode::PAYLOAD_TOO_LARGE => {
            Err(StoreError::StorageFull(format!("Swift refused object {name} as too large")))
        }
        StatusCode::INSUFFICIENT_STORAGE => Err(StoreError::StorageFull(format!("Swift is out of space for {name}"))),
        other => Err(unavailable(format!("PUT {name}: {other}"))),
    }
}

/// The upload as the PUTs consume it: chunks cut at segment boundaries, each one counted and
/// handed to the hashing thread as it passes.
struct Feed {
    upload: Upload,
    leftover: Option<Bytes>,
    ended: bool,
    aborted: bool,
    size: u64,
    to_hasher: tokio::sync::mpsc::Sender<Bytes>,
}

impl Feed {
    /// The next bytes: what a segment boundary left over, else the next chunk.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(bytes) = self.leftover.take() {
            return Some(bytes);
        }
        if self.ended || self.aborted {
            return None;
        }
        match self.upload.recv().await {
            Some(Chunk::Data(bytes)) => Some(bytes),
            Some(Chunk::End) => {
                self.ended = true;
                None
            }
            None => {
                self.aborted = true;
                None
            }
        }
    }
}

/// Whether the upload has more bytes (waiting for them if needed).
async fn more(feed: &Arc<Mutex<Feed>>) -> Result<bool, StoreError> {
    let mut f = feed.lock().await;
    loop {
        match f.next().await {
            Some(bytes) if bytes.is_empty() => continue,
            Some(bytes) => {
                f.leftover = Some(bytes);
                return Ok(true);
            }
            None if f.aborted => return Err(StoreError::Aborted),
            None => return Ok(false),
        }
    }
}

/// The upload must have ended with [`Chunk::End`] and nothing may be left.
async fn finished(feed: &Arc<Mutex<Feed>>) -> Result<(), StoreError> {
    if more(feed).await? {
        return Err(StoreError::Other("data left after the last segment".into()));
    }
    Ok(())
}

/// A request body of at most `limit` bytes from the feed. A feed whose sender went away
/// without `End` fails the body, so the PUT fails and Swift keeps nothing of it.
fn segment(feed: Arc<Mutex<Feed>>, limit: u64) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> {
    futures_util::stream::unfold((feed, limit), |(feed, left)| async move {
        if left == 0 {
            return None;
        }
        let mut f = feed.lock().await;
        let mut bytes = match f.next().await {
            Some(bytes) => bytes,
            None if f.aborted => {
                drop(f);
                return Some((Err(std::io::Error::other("upload aborted")), (feed, 0)));
            }
            None => return None,
        };
        if bytes.len() as u64 > left {
            f.leftover = Some(bytes.split_off(left as usize));
        }
        f.size += bytes.len() as u64;
        let hashed = f.to_hasher.send(bytes.clone()).await;
        drop(f);
        if hashed.is_err() {
            return Some((Err(std::io::Error::other("the md5 thread stopped")), (feed, 0)));
        }
        let left = left - bytes.len() as u64;
        Some((Ok(bytes), (feed, left)))
    })
}
