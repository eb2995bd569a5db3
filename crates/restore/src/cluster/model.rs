//! Records of the embedded cluster. These are domain types; the HTTP layer converts
//! them to obshell-shaped DTOs at its boundary.

//!
//! | file | records |
//! |---|---|
//! | `units.rs` | byte sizes and CPU counts |
//! | `topology.rs` | zones, servers, unit configs, resource pools, units |
//! | `tenant.rs` | tenants, their locality and options, replica requests |
//! | `rows.rs` | rows and row batches |
//! | `restore_job.rs` | restore jobs and their updates |

/// Gives each listed enum `as_str` (its upper-case wire name) and a `Display` of it.
macro_rules! display_as_serde_name {
    ($($ty:ty => { $($variant:ident = $name:literal),+ $(,)? })+) => {$(
        impl $ty {
            /// The upper-case name used on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )+};
}

mod restore_job;
mod rows;
mod tenant;
mod topology;
mod units;

pub use restore_job::*;
pub use rows::*;
pub use tenant::*;
pub use topology::*;
pub use units::*;
