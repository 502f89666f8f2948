//! glance-common: what every glance-rs binary and the tests share.
//!
//! One error vocabulary ([`error`]), Glance's INI configuration ([`config`]), the
//! request context ([`context`]), Glance's log format ([`logging`]), the wire model
//! ([`model`]) and the typed registry client ([`registry_client`]): the only path
//! from an API node to the database.

pub mod cli;
pub mod config;
pub mod context;
pub mod error;
pub mod keystone;
pub mod location_cipher;
pub mod logging;
pub mod model;
pub mod pyjson;
pub mod registry_client;
pub mod server;
pub mod timeutil;
pub mod workers;

pub use error::{Error, ErrorKind, Result};
