//! obrestore on etcd (issue 13): a synchronous etcd client ([`Etcd`]), the etcd setup
//! the store needs ([`store`]), and a harness that runs real etcd members for tests
//! ([`testing`]).
//!
//! The crate keeps tonic and the rest of the gRPC stack out of the other crates: they
//! see only the blocking facade.

mod client;
pub mod store;
pub mod testing;

pub use client::{Compare, Etcd, EtcdError, Fence, KeyValue, Op, REQUEST_TIMEOUT};
