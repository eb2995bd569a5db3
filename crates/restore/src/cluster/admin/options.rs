//! Create-tenant options: what obshell's create-tenant request sets beyond the pools
//! ([`TenantOptions`]), checked and rendered into the new tenant's settings before the
//! create transaction starts, so a refused option writes nothing.

use std::collections::BTreeMap;

use crate::cluster::catalog::{
    self, BoolStyle, SetAt, ValueKind, VARIABLE_CHARACTER_SET_SERVER, VARIABLE_COLLATION_SERVER,
    VARIABLE_READ_ONLY, VARIABLE_WHITELIST,
};
use crate::cluster::error::{ClusterError, ClusterResult};
use crate::cluster::model::{PasswordVerifier, TenantMode, TenantOptions};
use crate::cluster::password;

/// What [`TenantOptions`] make of a new tenant, checked and normalized.
pub(in crate::cluster) struct TenantSettings {
    pub mode: TenantMode,
    pub charset: String,
    pub collation: String,
    pub comment: String,
    pub read_only: bool,
    pub variables: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
    pub root_password: Option<PasswordVerifier>,
}

impl TenantSettings {
    /// Applies obshell's create-tenant rendering: the charset and collation become the
    /// server variables, `read_only` sets the variable unless `variables` does, the
    /// whitelist (the option, else the variable) is merged with `127.0.0.1`, and a
    /// non-empty root password becomes a verifier.
    ///
    /// # Errors
    /// `CharsetCollationInvalid`, `VariableEmpty`, `VariableNotExist`,
    /// `VariableInvalid`, `ParameterEmpty`, `ParameterNotExist`, `ParameterInvalid`.
    pub(in crate::cluster) fn new(
        options: &TenantOptions,
        kdf_iterations: u32,
    ) -> ClusterResult<Self> {
        let (charset, collation) =
            catalog::resolve_charset(options.charset.as_deref(), options.collation.as_deref())?;
        let checked_variables = catalog::check_variables(&options.variables, SetAt::Creation)?;
        let parameters = catalog::check_parameters(&options.parameters)?
            .into_iter()
            .map(|(def, value)| (def.name.to_string(), value))
            .collect();
        let mut variables = BTreeMap::new();
        variables.insert(VARIABLE_CHARACTER_SET_SERVER.to_string(), charset.clone());
        variables.insert(VARIABLE_COLLATION_SERVER.to_string(), collation.clone());
        if options.read_only {
            variables.insert(VARIABLE_READ_ONLY.to_string(), "1".to_string());
        }
        let mut whitelist = options.whitelist.clone().unwrap_or_default();
        for (def, value) in checked_variables {
            if def.name == VARIABLE_WHITELIST {
                if options.whitelist.is_none() {
                    whitelist = value;
                }
            } else {
                variables.insert(def.name.to_string(), value);
            }
        }
        let whitelist = ValueKind::Whitelist
            .normalize(&catalog::merge_whitelist(&whitelist), BoolStyle::Digit)
            .map_err(|reason| ClusterError::VariableInvalid {
                name: VARIABLE_WHITELIST.to_string(),
                reason,
            })?;
        variables.insert(VARIABLE_WHITELIST.to_string(), whitelist);
        let read_only = variables
            .get(VARIABLE_READ_ONLY)
            .is_some_and(|value| value == "1");
        let root_password = options
            .root_password
            .as_ref()
            .map(|secret| secret.expose())
            .filter(|password| !password.is_empty())
            .map(|password| password::new_verifier(password, kdf_iterations));
        Ok(TenantSettings {
            mode: options.mode,
            charset,
            collation,
            comment: options.comment.clone(),
            read_only,
            variables,
            parameters,
            root_password,
        })
    }
}

/// Checks create-tenant options as [`crate::TenantService::create_tenant_with`] does
/// (charset and collation, variables at creation, parameters, whitelist), writing
/// nothing; the root password is not looked at.
///
/// # Errors
/// `CharsetCollationInvalid`, `VariableEmpty`, `VariableNotExist`, `VariableInvalid`,
/// `ParameterEmpty`, `ParameterNotExist`, `ParameterInvalid`.
pub fn check_tenant_options(options: &TenantOptions) -> ClusterResult<()> {
    let without_password = TenantOptions {
        root_password: None,
        ..options.clone()
    };
    TenantSettings::new(&without_password, 1).map(|_| ())
}
