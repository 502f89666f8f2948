//! What can go wrong while replicating: Glance's replicator exception kinds, plus the usage,
//! transport and local-file failures its Python version left to tracebacks.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400 or 500 (and any other failure status but 401/403/409): Glance's `ServerErrorException`.
    #[error("{server} answered {status}: {body}")]
    ServerError { server: String, status: u16, body: String },
    /// 401 or 403: Glance's `AuthenticationException`.
    #[error("{server} refused the request ({status}, check the token): {body}")]
    Authentication { server: String, status: u16, body: String },
    /// 409: Glance's `ImageAlreadyPresentException`.
    #[error("{server} already has the image: {body}")]
    ImageAlreadyPresent { server: String, body: String },
    /// An upload answered with neither a status header nor JSON: Glance's `UploadException`.
    #[error("Image upload problem: {0}")]
    Upload(String),
    /// Missing or malformed command-line arguments (Glance's TypeError / ValueError).
    #[error("{0}")]
    Usage(String),
    #[error("cannot reach glance at {host}: {reason}")]
    Unreachable { host: String, reason: String },
    /// The connection failed after the request went out (a transfer cut short, say).
    #[error("{server}: {reason}")]
    Transfer { server: String, reason: String },
    /// Metadata that cannot be sent or a listing that cannot be read.
    #[error("{0}")]
    Invalid(String),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

impl Error {
    /// Glance's mapping of a failure status to an exception kind (`test_rest_errors`).
    pub fn from_status(server: &str, status: u16, body: String) -> Self {
        let server = server.to_string();
        match status {
            401 | 403 => Self::Authentication { server, status, body },
            409 => Self::ImageAlreadyPresent { server, body },
            _ => Self::ServerError { server, status, body },
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}

/// An error and its causes on one line: reqwest's own message names only the URL.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_glance_exception_kinds() {
        let kind = |status| match Error::from_status("h:1", status, String::new()) {
            Error::ServerError { .. } => "server",
            Error::Authentication { .. } => "auth",
            Error::ImageAlreadyPresent { .. } => "present",
            _ => "other",
        };
        for (status, expected) in [(400, "server"), (401, "auth"), (403, "auth"), (409, "present"), (500, "server")] {
            assert_eq!(kind(status), expected, "status {status}");
        }
        assert_eq!(kind(404), "server");
        let message = Error::from_status("glance:9292", 403, "Forbidden".into()).to_string();
        assert!(message.contains("glance:9292") && message.contains("403") && message.contains("Forbidden"));
    }
}
