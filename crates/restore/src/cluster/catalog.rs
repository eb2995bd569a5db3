//! The system variables, tenant parameters and character sets the embedded cluster
//! knows, with OceanBase's names, default values and types.
//!
//! A tenant stores only the variables and parameters set on it
//! ([`crate::cluster::Tenant::variables`], [`crate::cluster::Tenant::parameters`]); the
//! others read as the default here. Setting a name that is not here is refused
//! (`OB.Tenant.Variable.NotExist` / `OB.Tenant.Parameter.NotExist`), as OceanBase refuses
//! an unknown name.
//!
//! Defaults and ranges are OceanBase 4.x's (`ob_system_variable_init.json`,
//! `ob_parameter_seed.ipp`). The `info` texts are OceanBase's where it has one; where
//! OceanBase's is blank (`" "`, as for `autocommit`), a one-line description is given
//! instead. Two deliberate differences: `ob_tcp_invited_nodes` defaults to `127.0.0.1`,
//! what obshell gives every tenant it creates, and charset/collation variables hold
//! names (`utf8mb4`) where OceanBase stores collation ids (`45`).
//!
//! Values are normalized before they are stored: booleans become `1`/`0` for variables
//! and `True`/`False` for parameters (as OceanBase shows them), enumerations take the
//! catalogue's spelling, integers their decimal form.
//!
//! | file | what |
//! |---|---|
//! | `values.rs` | value types ([`ValueKind`]), checking and normalizing a value |
//! | `variables.rs` | the system variables ([`VARIABLES`]) and the check of values to set |
//! | `parameters.rs` | the tenant parameters ([`PARAMETERS`]) and the check of values to set |
//! | `charsets.rs` | character sets and collations ([`CHARSETS`]) |
//! | `tenant_values.rs` | a tenant's values: what it sets, else the default |
//! | `like.rs` | SQL `LIKE` for obshell's listing filters |

mod charsets;
mod like;
mod parameters;
mod tenant_values;
mod values;
mod variables;

pub use charsets::{charset, collation, resolve_charset, Charset, CHARSETS};
pub use like::sql_like;
pub(crate) use parameters::check_parameters;
pub use parameters::{parameter, EditLevel, ParameterDef, PARAMETERS};
pub use values::{merge_whitelist, BoolStyle, ValueKind, SQL_MODES};
pub(crate) use variables::{check_variables, SetAt};
pub use variables::{variable, Mutability, VariableDef, VARIABLES};

/// The whitelist entry obshell always keeps, and a new tenant's whitelist.
pub const DEFAULT_WHITELIST: &str = "127.0.0.1";

/// The variable holding the IP whitelist.
pub const VARIABLE_WHITELIST: &str = "ob_tcp_invited_nodes";
/// The variable mirrored by [`crate::cluster::Tenant::read_only`].
pub const VARIABLE_READ_ONLY: &str = "read_only";
/// The variable that shows the tenant mode.
pub const VARIABLE_COMPATIBILITY_MODE: &str = "ob_compatibility_mode";
/// The server character set variable, set from the tenant's character set.
pub const VARIABLE_CHARACTER_SET_SERVER: &str = "character_set_server";
/// The server collation variable, set from the tenant's collation.
pub const VARIABLE_COLLATION_SERVER: &str = "collation_server";
/// The parameter that must be on to change unit num or first-priority zones.
pub const PARAMETER_ENABLE_REBALANCE: &str = "enable_rebalance";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_sorted_unique_lower_case_and_defaults_are_valid() {
        for names in [
            VARIABLES.iter().map(|def| def.name).collect::<Vec<_>>(),
            PARAMETERS.iter().map(|def| def.name).collect::<Vec<_>>(),
        ] {
            let mut sorted = names.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(names, sorted);
            assert!(names.iter().all(|name| *name == name.to_ascii_lowercase()));
        }
        for def in VARIABLES {
            assert_eq!(
                def.kind
                    .normalize(def.default_value, BoolStyle::Digit)
                    .as_deref(),
                Ok(def.default_value),
                "{}",
                def.name
            );
        }
        for def in PARAMETERS {
            assert_eq!(
                def.kind
                    .normalize(def.default_value, BoolStyle::Word)
                    .as_deref(),
                Ok(def.default_value),
                "{}",
                def.name
            );
        }
    }
}
