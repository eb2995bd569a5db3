//! The injectable clock is the engine's (one `Clock` for the whole workspace).

pub use obrestore_dag::clock::{Clock, ManualClock, SystemClock};
