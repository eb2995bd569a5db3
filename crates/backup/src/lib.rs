//! OceanBase-shaped backup storage.

pub mod uri;

pub use uri::{StorageUri, UriError};
