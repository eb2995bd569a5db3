//! obrestore on etcd (issue 13): a synchronous etcd client ([`Etcd`]), the engine's
//! store on etcd fenced by the maintainer's claim ([`EtcdStore`]), maintainer election
//! on a lease ([`Election`]), and a harness that runs real etcd members for tests
//! ([`testing`]).
//!
//! The crate keeps tonic and the rest of the gRPC stack out of the other crates: they
//! see only the blocking facade.

mod client;
pub mod election;
pub mod store;
pub mod testing;

pub use election::{Election, Leadership};
pub use store::EtcdStore;

pub use client::{
    retry_transient, Compare, Etcd, EtcdError, Fence, KeyValue, Op, REQUEST_TIMEOUT, RETRY_FOR,
};
