//! obrestore: an embedded async task-DAG scheduler that models OceanBase tenant restore.
//!
//! This crate is the facade: it re-exports the workspace crates.

pub use obrestore_backup as backup;
pub use obrestore_dag as dag;
pub use obrestore_restore as restore;
