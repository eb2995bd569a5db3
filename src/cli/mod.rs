//! Subcommands of `obagent`, one module per area.

pub mod backup;
pub mod client;
pub mod cluster;
pub mod demo;
pub mod restore;
pub mod serve;
