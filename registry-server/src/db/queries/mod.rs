//! Queries: free functions on `&mut DbConn`, run inside `Db::read` / `Db::write`.

pub mod access;
pub mod images;
pub mod listing;
pub mod members;
pub mod quota;
pub mod scrub;

use glance_common::{Error, ErrorKind};

/// Glance's registry answers a missing or invisible image with this literal body.
pub fn image_not_found() -> Error {
    Error::literal(ErrorKind::NotFound, "Image not found")
}
