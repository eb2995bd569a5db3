//! Subcommands of `obagent`, one module per area.

pub mod backup;
pub mod cluster;
pub mod demo;
pub mod restore;
