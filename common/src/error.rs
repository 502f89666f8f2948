//! One error vocabulary for every service: a kind that decides the HTTP status, a message
//! that is safe to show to clients, and an optional source that only goes to the log.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;
type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, as far as the caller is concerned. Every kind has exactly one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PreconditionFailed,
    TooLarge,
    Internal,
    BadGateway,
    Unavailable,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The kind a peer's status stands for (used by clients of other glance-rs services).
    pub fn from_status(status: u16) -> Self {
        match status {
            400 => Self::BadRequest,
            401 => Self::Unauthorized,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            409 => Self::Conflict,
            412 => Self::PreconditionFailed,
            413 => Self::TooLarge,
            502 => Self::BadGateway,
            503 => Self::Unavailable,
            _ => Self::Internal,
        }
    }
}

/// How the body of an error response is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// WebOb's plain-text page: `<code> <title>`, a blank line, the message.
    WebOb,
    /// The message alone; Glance answers a few errors with a literal body
    /// (`Image operation conflicts`, `Image not found`).
    Literal,
}

#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    body: Body,
    source: Option<BoxError>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), body: Body::WebOb, source: None }
    }

    /// An error whose response body is exactly `message`, as Glance sends for some conflicts.
    pub fn literal(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { body: Body::Literal, ..Self::new(kind, message) }
    }

    /// Keeps `source` for the log; clients only see `message`.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
    /// An unexpected failure: the client gets a generic message, the log gets the cause.
    pub fn internal(source: impl Into<BoxError>) -> Self {
        Self::new(
            ErrorKind::Internal,
            "The server has either erred or is incapable of performing the requested operation.",
        )
        .with_source(source)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// WebOb's plain-text error page, which Glance's clients and tests match substrings of.
pub fn webob_body(status: StatusCode, message: &str) -> String {
    let title = status.canonical_reason().unwrap_or("Error");
    format!("{} {}\n\n{}\n\n   ", status.as_u16(), title, message)
}

/// The message inside an error body written by [`webob_body`] (or a literal body).
pub fn message_from_body(body: &str) -> String {
    let body = body.trim();
    let mut lines = body.splitn(2, "\n\n");
    let first = lines.next().unwrap_or_default();
    let looks_like_status = first.len() > 4
        && first.as_bytes()[..3].iter().all(u8::is_ascii_digit)
        && first.as_bytes()[3] == b' '
        && !first.contains('\n');
    match lines.next() {
        Some(rest) if looks_like_status => rest.trim().to_string(),
        _ => body.to_string(),
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        self.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        // Errors are logged once, here, where the response is built.
        match (&self.source, self.kind) {
            (Some(source), ErrorKind::Internal | ErrorKind::Unavailable | ErrorKind::BadGateway) => {
                log::error!("{}: {source}", self.message)
            }
            (Some(source), _) => log::info!("{}: {source}", self.message),
            (None, ErrorKind::Internal | ErrorKind::Unavailable) => log::error!("{}", self.message),
            (None, _) => log::debug!("{} {}", self.status().as_u16(), self.message),
        }
        let body = match self.body {
            Body::WebOb => webob_body(self.status(), &self.message),
            Body::Literal => self.message.clone(),
        };
        HttpResponse::build(self.status()).content_type("text/plain; charset=UTF-8").body(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webob_body_round_trips_the_message() {
        let body = webob_body(StatusCode::BAD_REQUEST, "Invalid disk format 'x' for image.");
        assert!(body.starts_with("400 Bad Request\n\n"));
        assert_eq!(message_from_body(&body), "Invalid disk format 'x' for image.");
    }

    #[test]
    fn literal_bodies_are_their_own_message() {
        assert_eq!(message_from_body("Image operation conflicts"), "Image operation conflicts");
        assert_eq!(message_from_body(""), "");
    }

    #[test]
    fn statuses_map_both_ways() {
        for kind in [
            ErrorKind::BadRequest,
            ErrorKind::Unauthorized,
            ErrorKind::Forbidden,
            ErrorKind::NotFound,
            ErrorKind::MethodNotAllowed,
            ErrorKind::Conflict,
            ErrorKind::PreconditionFailed,
            ErrorKind::TooLarge,
            ErrorKind::Internal,
            ErrorKind::BadGateway,
            ErrorKind::Unavailable,
        ] {
            assert_eq!(ErrorKind::from_status(kind.status().as_u16()), kind);
        }
    }
}
