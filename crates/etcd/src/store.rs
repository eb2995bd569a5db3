//! The etcd setup the engine's store needs.
//!
//! etcd refuses a transaction with more than `--max-txn-ops` operations (default 128)
//! or a request over `--max-request-bytes` (default 1.5 MiB). One engine commit is one
//! transaction (that is what makes it atomic), so the documented setup raises both;
//! the test harness starts etcd with these values.

/// `--max-txn-ops` of the documented setup.
pub const SETUP_MAX_TXN_OPS: usize = 8192;
/// `--max-request-bytes` of the documented setup (16 MiB).
pub const SETUP_MAX_REQUEST_BYTES: usize = 16 << 20;
