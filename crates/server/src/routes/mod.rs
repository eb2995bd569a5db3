//! The handlers, one module per area of obshell's API. Handlers are thin: bind the
//! request, call the agent (the cluster's blocking methods on the blocking pool), wrap
//! the result; errors map to obshell's codes in [`crate::envelope`].

pub mod agent;
pub mod resource;
pub mod restore;
pub mod task;
pub mod tenant;
pub mod tenant_admin;
