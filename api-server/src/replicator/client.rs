//! Glance's `ImageService`: the v1 image API calls the replicator makes, over reqwest. Image
//! bits are streams end to end, so memory does not grow with image size.

use super::Error;
use super::cli::Server;
use super::error::chain;
use super::meta::{self, Meta};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Response, Url};
use std::time::Duration;

/// Image bits on their way through, and their length when the sender said it.
pub struct ImageData {
    pub length: Option<u64>,
    pub body: BoxStream<'static, std::io::Result<Bytes>>,
}

/// What the commands need from a glance server. The commands take any implementation so that
/// the tests can give them Glance's fake one.
pub(crate) trait ImageService {
    /// One page of `GET /v1/images/detail?is_public=None`, after `marker` when given.
    async fn image_page(&self, marker: Option<&str>) -> Result<Vec<Meta>, Error>;
    /// `HEAD /v1/images/<id>` as a dict; empty when the server does not have the image.
    async fn image_meta(&self, id: &str) -> Result<Meta, Error>;
    /// `GET /v1/images/<id>`: the image bits.
    async fn image_data(&self, id: &str) -> Result<ImageData, Error>;
    /// `POST /v1/images` with the metadata as headers and the bits as body.
    async fn add_image(&self, meta: &Meta, data: ImageData) -> Result<(Meta, Bytes), Error>;
    /// `PUT /v1/images/<id>` with the metadata as headers.
    async fn add_image_meta(&self, meta: &Meta) -> Result<(Meta, Bytes), Error>;
}

/// Error bodies and upload answers are short; a misbehaving server cannot make us buffer more.
const MAX_ANSWER: usize = 1 << 20;

/// One glance server over HTTP, with the token to send (never logged).
pub struct HttpImageService {
    server: String,
    base: Url,
    token: Option<HeaderValue>,
    http: reqwest::Client,
}

impl HttpImageService {
    pub fn new(server: &Server, token: Option<&str>) -> Result<Self, Error> {
        let base = Url::parse(&format!("http://{server}/"))
            .map_err(|e| Error::Usage(format!("Bad format of the given arguments. ({server}: {e})")))?;
        let token = match token.filter(|t| !t.is_empty()) {
            Some(t) => {
                let mut value =
                    HeaderValue::from_str(t).map_err(|_| Error::Usage("The token is not a valid header.".into()))?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        // No overall timeout: an image may take hours. A stalled peer still ends the transfer.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(600))
            // Glance's replicator does not follow redirects, and the token must not either.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Invalid(format!("cannot build the HTTP client: {}", chain(&e))))?;
        Ok(Self { server: server.to_string(), base, token, http })
    }

    fn url(&self, id: Option<&str>) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["v1", "images"]);
            if let Some(id) = id {
                path.push(id);
            }
        }
        url
    }

    /// Sends a request and maps a failure status to Glance's exception kinds.
    async fn send(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<reqwest::Body>,
    ) -> Result<Response, Error> {
        log::debug!("Request: {method} {url} with headers {:?}", Shown(&headers));
        let mut request = self.http.request(method, url).headers(headers);
        if let Some(token) = &self.token {
            request = request.header("x-auth-token", token.clone());
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.map_err(|e| self.transport(&e))?;
        let status = response.status();
        log::debug!("Response: {status} {:?}", Shown(response.headers()));
        // Anything but 2xx (a redirect included) is the server saying no.
        if !status.is_success() {
            let body = self.answer(response).await.unwrap_or_default();
            let body = String::from_utf8_lossy(&body).split_whitespace().collect::<Vec<_>>().join(" ");
            return Err(Error::from_status(&self.server, status.as_u16(), body));
        }
        Ok(response)
    }

    fn transport(&self, e: &reqwest::Error) -> Error {
        if e.is_connect() || (e.is_timeout() && !e.is_body()) {
            Error::Unreachable { host: self.server.clone(), reason: chain(e) }
        } else {
            Error::Transfer { server: self.server.clone(), reason: chain(e) }
        }
    }

    /// A response body of at most [`MAX_ANSWER`] bytes.
    async fn answer(&self, response: Response) -> Result<Bytes, Error> {
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.transport(&e))?;
            body.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER - body.len())]);
            if body.len() >= MAX_ANSWER {
                break;
            }
        }
        Ok(body.into())
    }

    async fn upload(
        &self,
        method: Method,
        url: Url,
        meta: &Meta,
        body: Option<ImageData>,
    ) -> Result<(Meta, Bytes), Error> {
        let mut headers = meta_headers(meta)?;
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        let body = body.map(|data| {
            // A known length goes out as Content-Length (hyper keeps it), otherwise chunked.
            if let Some(length) = data.length {
                headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
            }
            reqwest::Body::wrap_stream(data.body)
        });
        let response = self.send(method, url, headers, body).await?;
        let headers = response_dict(response.headers());
        log::debug!("Image post done");
        Ok((headers, self.answer(response).await?))
    }
}

impl ImageService for HttpImageService {
    async fn image_page(&self, marker: Option<&str>) -> Result<Vec<Meta>, Error> {
        let mut url = self.url(Some("detail"));
        url.query_pairs_mut().append_pair("is_public", "None");
        if let Some(marker) = marker {
            url.query_pairs_mut().append_pair("marker", marker);
        }
        let response = self.send(Method::GET, url, HeaderMap::new(), None).await?;
        let body = response.bytes().await.map_err(|e| self.transport(&e))?;
        let listing: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| Error::Invalid(format!("{}: the image list is not JSON: {e}", self.server)))?;
        let Some(images) = listing.get("images").and_then(|i| i.as_array()) else {
            return Err(Error::Invalid(format!("{}: the answer to the image list has no \"images\"", self.server)));
        };
        images
            .iter()
            .map(|image| match image {
                serde_json::Value::Object(image) if meta::id(image).is_some() => Ok(image.clone()),
                _ => Err(Error::Invalid(format!("{}: an image without an id in the list: {image}", self.server))),
            })
            .collect()
    }

    async fn image_meta(&self, id: &str) -> Result<Meta, Error> {
        match self.send(Method::HEAD, self.url(Some(id)), HeaderMap::new(), None).await {
            Ok(response) => Ok(response_dict(response.headers())),
            // Glance's HEAD of a missing image yields headers without a status: not present.
            Err(Error::ServerError { status: 404, .. }) => Ok(Meta::new()),
            Err(e) => Err(e),
        }
    }

    async fn image_data(&self, id: &str) -> Result<ImageData, Error> {
        let response = self.send(Method::GET, self.url(Some(id)), HeaderMap::new(), None).await?;
        let server = self.server.clone();
        let length = response.content_length();
        let body =
            response.bytes_stream().map_err(move |e| std::io::Error::other(format!("{server}: {}", chain(&e)))).boxed();
        Ok(ImageData { length, body })
    }

    async fn add_image(&self, meta: &Meta, data: ImageData) -> Result<(Meta, Bytes), Error> {
        self.upload(Method::POST, self.url(None), meta, Some(data)).await
    }

    async fn add_image_meta(&self, meta: &Meta) -> Result<(Meta, Bytes), Error> {
        let id = meta::id(meta).ok_or_else(|| Error::Invalid("image metadata without an id".into()))?;
        self.upload(Method::PUT, self.url(Some(id)), meta, None).await
    }
}

/// The metadata as request headers; a key or value that HTTP cannot carry is an error that
/// names it.
fn meta_headers(meta: &Meta) -> Result<HeaderMap, Error> {
    let mut headers = HeaderMap::new();
    for (name, value) in meta::dict_to_headers(meta) {
        let invalid =
            || Error::Invalid(format!("image {}: cannot send {name}: {value:?}", meta::id(meta).unwrap_or("?")));
        let name = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(|_| invalid())?;
        let value = HeaderValue::from_str(&value).map_err(|_| invalid())?;
        headers.insert(name, value);
    }
    Ok(headers)
}

/// Response headers as a dict. Values are UTF-8 (image names are often not English).
fn response_dict(headers: &HeaderMap) -> Meta {
    meta::header_list_to_dict(
        headers.iter().map(|(name, value)| (name.as_str(), String::from_utf8_lossy(value.as_bytes()).into_owned())),
    )
}

/// Headers for the debug log, sensitive ones (the token) masked.
struct Shown<'a>(&'a HeaderMap);

impl std::fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                let v = if v.is_sensitive() { "***".into() } else { String::from_utf8_lossy(v.as_bytes()) };
                (k.as_str(), v)
            }))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    //! Glance's `ImageServiceTestCase`, against a fake server primed with requests and answers
    //! (its `FakeHTTPConnection`).

    use super::*;
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    use std::sync::{Arc, Mutex};

    const TOKEN: &str = "noauth";

    /// Glance's `IMG_RESPONSE_ACTIVE`.
    const IMG_RESPONSE_ACTIVE: &[(&str, &str)] = &[
        ("content-length", "0"),
        ("property-image_state", "available"),
        ("min_ram", "0"),
        ("disk_format", "aki"),
        ("updated_at", "2012-06-25T02:10:36"),
        ("date", "Thu, 28 Jun 2012 07:20:05 GMT"),
        ("owner", "8aef75b5c0074a59aa99188fdb4b9e90"),
        ("id", "6d55dd55-053a-4765-b7bc-b30df0ea3861"),
        ("size", "4660272"),
        ("property-image_location", "ubuntu-bucket/oneiric-server-cloudimg-amd64-vmlinuz-generic.manifest.xml"),
        ("property-architecture", "x86_64"),
        ("etag", "f46cfe7fb3acaff49a3567031b9b53bb"),
        ("location", "http://127.0.0.1:9292/v1/images/6d55dd55-053a-4765-b7bc-b30df0ea3861"),
        ("container_format", "aki"),
        ("status", "active"),
        ("deleted", "False"),
        ("min_disk", "0"),
        ("is_public", "False"),
        ("name", "ubuntu-bucket/oneiric-server-cloudimg-amd64-vmlinuz-generic"),
        ("checksum", "f46cfe7fb3acaff49a3567031b9b53bb"),
        ("created_at", "2012-06-25T02:10:32"),
        ("protected", "False"),
        ("content-type", "text/html; charset=UTF-8"),
    ];
    const QUEUED_ID: &str = "49b2c782-ee10-4692-84f8-3942e9432c4b";

    fn img_response(id: &str, status: &str) -> serde_json::Value {
        let mut image: Meta =
            IMG_RESPONSE_ACTIVE.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect();
        image.insert("id".into(), id.into());
        image.insert("status".into(), status.into());
        image.into()
    }

    /// The answer to one primed request.
    struct Primed {
        method: &'static str,
        uri: String,
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    /// What the fake server was asked.
    struct Seen {
        method: String,
        uri: String,
        headers: actix_web::http::header::HeaderMap,
        body: Vec<u8>,
    }

    #[derive(Clone, Default)]
    struct Fake {
        primed: Arc<Mutex<Vec<Primed>>>,
        seen: Arc<Mutex<Vec<Seen>>>,
    }

    impl Fake {
        fn prime(&self, method: &'static str, uri: &str, status: u16, headers: &[(&str, &str)], body: &[u8]) {
            let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let primed = Primed { method, uri: uri.into(), status, headers, body: body.to_vec() };
            self.primed.lock().expect("lock").retain(|p| (p.method, p.uri.as_str()) != (method, uri));
            self.primed.lock().expect("lock").push(primed);
        }

        fn answer(&self, req: &HttpRequest, body: web::Bytes) -> HttpResponse {
            let uri = req.uri().to_string();
            let method = req.method().to_string();
            self.seen.lock().expect("lock").push(Seen {
                method: method.clone(),
                uri: uri.clone(),
                headers: req.headers().clone(),
                body: body.to_vec(),
            });
            let primed = self.primed.lock().expect("lock");
            let Some(p) = primed.iter().find(|p| p.method == method && p.uri == uri) else {
                return HttpResponse::NotImplemented().body(format!("No such primed request: {method} {uri}"));
            };
            let mut response = HttpResponse::build(actix_web::http::StatusCode::from_u16(p.status).expect("status"));
            for (k, v) in &p.headers {
                response.insert_header((k.as_str(), v.as_str()));
            }
            response.body(p.body.clone())
        }

        fn count(&self) -> usize {
            self.seen.lock().expect("lock").len()
        }

        async fn start(&self) -> (HttpImageService, actix_web::dev::ServerHandle) {
            let fake = self.clone();
            let server = HttpServer::new(move || {
                let fake = fake.clone();
                App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                    let fake = fake.clone();
                    async move { fake.answer(&req, body) }
                }))
            })
            .workers(1)
            .disable_signals()
            .bind(("127.0.0.1", 0))
            .expect("bind");
            let port = server.addrs()[0].port();
            let server = server.run();
            let handle = server.handle();
            actix_web::rt::spawn(server);
            let client =
                HttpImageService::new(&Server { host: "127.0.0.1".into(), port }, Some(TOKEN)).expect("client");
            (client, handle)
        }
    }

    fn prefixed(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (format!("x-image-meta-{k}"), v.to_string())).collect()
    }

    fn refs(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[actix_web::test]
    async fn test_rest_errors() {
        let fake = Fake::default();
        let (c, server) = fake.start().await;
        let id = "5dcddce0-cba5-4f18-9cf4-9853c7b207a6";
        // A redirect is not followed (the token stays with the server it was meant for).
        let cases = [(302, "server"), (400, "server"), (401, "auth"), (403, "auth"), (409, "present"), (500, "server")];
        for (code, kind) in cases {
            fake.prime("GET", &format!("/v1/images/{id}"), code, &[("location", "http://127.0.0.1:9/elsewhere")], b"");
            let got = match c.image_data(id).await {
                Err(Error::ServerError { .. }) => "server",
                Err(Error::Authentication { .. }) => "auth",
                Err(Error::ImageAlreadyPresent { .. }) => "present",
                Err(e) => panic!("{code}: unexpected {e}"),
                Ok(_) => panic!("{code}: no error"),
            };
            assert_eq!(got, kind, "status {code}");
        }
        {
            let seen = fake.seen.lock().expect("lock");
            assert!(seen.iter().all(|s| s.headers.get("x-auth-token").is_some_and(|t| t == TOKEN)));
        }
        server.stop(true).await;
    }

    #[actix_web::test]
    async fn test_rest_get_images() {
        let fake = Fake::default();
        let (c, server) = fake.start().await;
        // Two images, one of which is queued.
        let page = serde_json::json!({"images": [
            img_response("6d55dd55-053a-4765-b7bc-b30df0ea3861", "active"),
            img_response(QUEUED_ID, "queued"),
        ]});
        fake.prime("GET", "/v1/images/detail?is_public=None", 200, &[], page.to_string().as_bytes());
        let next = format!("/v1/images/detail?is_public=None&marker={QUEUED_ID}");
        fake.prime("GET", &next, 200, &[], br#"{"images": []}"#);
        let first = c.image_page(None).await.expect("page 1");
        assert_eq!(first.len(), 2);
        let last = meta::id(&first[1]).expect("id").to_string();
        assert!(c.image_page(Some(&last)).await.expect("page 2").is_empty());
        assert_eq!(fake.count(), 2);
        // JSON that is not an image list is an error, not an empty installation.
        fake.prime("GET", "/v1/images/detail?is_public=None", 200, &[], br#"{"versions": []}"#);
        assert!(matches!(c.image_page(None).await, Err(Error::Invalid(_))));
        server.stop(true).await;
    }

    #[actix_web::test]
    async fn test_rest_get_image() {
        let fake = Fake::default();
        let (c, server) = fake.start().await;
        let id = "6d55dd55-053a-4765-b7bc-b30df0ea3861";
        let headers = prefixed(&IMG_RESPONSE_ACTIVE[1..]);
        fake.prime("GET", &format!("/v1/images/{id}"), 200, &refs(&headers), b"THISISTHEIMAGEBODY");
        let data = c.image_data(id).await.expect("image");
        assert_eq!(data.length, Some(18));
        let body: Vec<Bytes> = data.body.try_collect().await.expect("body");
        assert_eq!(body.concat(), b"THISISTHEIMAGEBODY");
        server.stop(true).await;
    }

    #[actix_web::test]
    async fn test_rest_get_image_meta() {
        let fake = Fake::default();
        let (c, server) = fake.start().await;
        let id = "6d55dd55-053a-4765-b7bc-b30df0ea3861";
        let headers = prefixed(&IMG_RESPONSE_ACTIVE[1..]);
        fake.prime("HEAD", &format!("/v1/images/{id}"), 200, &refs(&headers), b"");
        let header = c.image_meta(id).await.expect("meta");
        assert!(header.contains_key("id"));
        assert_eq!(header["properties"]["architecture"], "x86_64");
        // A missing image is no error: it is not present.
        fake.prime("HEAD", "/v1/images/missing", 404, &[], b"");
        assert!(!meta::present(&c.image_meta("missing").await.expect("404")));
        server.stop(true).await;
    }

    #[actix_web::test]
    async fn test_rest_add_image() {
        let fake = Fake::default();
        let (c, server) = fake.start().await;
        let image_body = b"THISISANIMAGEBODYFORSURE!";
        let response_headers = prefixed(&IMG_RESPONSE_ACTIVE[1..]);
        fake.prime("POST", "/v1/images", 200, &refs(&response_headers), b"");
        let image_meta = match img_response("6d55dd55-053a-4765-b7bc-b30df0ea3861", "active") {
            serde_json::Value::Object(m) => m,
            _ => unreachable!(),
        };
        let data = ImageData {
            length: Some(image_body.len() as u64),
            body: futures_util::stream::once(async { Ok(Bytes::from_static(image_body)) }).boxed(),
        };
        let (headers, _body) = c.add_image(&image_meta, data).await.expect("add");
        // The server's own Date and Content-Type land on the same keys as the primed ones.
        for (key, value) in IMG_RESPONSE_ACTIVE[1..].iter().filter(|(k, _)| !matches!(*k, "date" | "content-type")) {
            match key.strip_prefix("property-") {
                Some(p) => assert_eq!(headers["properties"][p], *value, "{key}"),
                None => assert_eq!(headers[*key], *value, "{key}"),
            }
        }
        assert_eq!(fake.count(), 1);
        {
            let seen = fake.seen.lock().expect("lock");
            let post = &seen[0];
            assert_eq!(post.body, image_body);
            assert_eq!(post.headers.get("content-length").expect("length"), "25");
            assert_eq!(post.headers.get("content-type").expect("type"), "application/octet-stream");
            assert_eq!(post.headers.get("x-auth-token").expect("token"), TOKEN);
            for (key, value) in IMG_RESPONSE_ACTIVE {
                assert_eq!(post.headers.get(format!("x-image-meta-{key}")).expect(key), value, "{key}");
            }
        }
        server.stop(true).await;
    }

    #[actix_web::test]
    async fn test_rest_add_image_meta() {
        let fake = Fake::default();
        let (c, server) = fake.start().await;
        let id = "5dcddce0-cba5-4f18-9cf4-9853c7b207a6";
        fake.prime("PUT", &format!("/v1/images/{id}"), 200, &[], br#"{"image": {"status": "active"}}"#);
        let mut image_meta = Meta::new();
        image_meta.insert("id".into(), id.into());
        let (headers, body) = c.add_image_meta(&image_meta).await.expect("update");
        meta::check_upload_response(&headers, &body).expect("JSON answer");
        {
            let seen = fake.seen.lock().expect("lock");
            let put = &seen[0];
            assert_eq!((put.method.as_str(), put.uri.as_str()), ("PUT", format!("/v1/images/{id}").as_str()));
            assert_eq!(put.headers.get("x-image-meta-id").expect("id"), id);
            assert_eq!(put.headers.get("content-type").expect("type"), "application/octet-stream");
            assert!(put.body.is_empty());
        }
        server.stop(true).await;
    }

    #[test]
    fn metadata_http_cannot_carry_is_an_error() {
        let mut image = Meta::new();
        image.insert("id".into(), "x".into());
        image.insert("name".into(), "two\nlines".into());
        assert!(matches!(meta_headers(&image), Err(Error::Invalid(m)) if m.contains("x-image-meta-name")));
        let mut shown = HeaderMap::new();
        let mut token = HeaderValue::from_static("secret");
        token.set_sensitive(true);
        shown.insert("x-auth-token", token);
        assert!(!format!("{:?}", Shown(&shown)).contains("secret"));
    }
}
