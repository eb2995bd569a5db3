//! A tenant's variable and parameter values as the catalogue shows them: what the
//! tenant sets, else the catalogue's default.

use super::{
    parameter, variable, ParameterDef, VariableDef, PARAMETERS, PARAMETER_ENABLE_REBALANCE,
    VARIABLES, VARIABLE_COMPATIBILITY_MODE,
};
use crate::cluster::error::{ClusterError, ClusterResult};
use crate::cluster::model::{Tenant, TenantParameter, TenantVariable};

impl Tenant {
    /// The value of system variable `def` on this tenant.
    pub fn variable_value(&self, def: &VariableDef) -> String {
        if def.name == VARIABLE_COMPATIBILITY_MODE {
            return self.mode.as_str().to_string();
        }
        self.variables
            .get(def.name)
            .cloned()
            .unwrap_or_else(|| def.default_value.to_string())
    }

    /// The value of parameter `def` on this tenant.
    pub fn parameter_value(&self, def: &ParameterDef) -> String {
        self.parameters
            .get(def.name)
            .cloned()
            .unwrap_or_else(|| def.default_value.to_string())
    }

    /// Every system variable of the catalogue with this tenant's value, by name.
    pub fn system_variables(&self) -> Vec<TenantVariable> {
        VARIABLES.iter().map(|def| self.variable_row(def)).collect()
    }

    /// The system variable `name` (any case).
    ///
    /// # Errors
    /// `VariableNotExist`.
    pub fn system_variable(&self, name: &str) -> ClusterResult<TenantVariable> {
        variable(name)
            .map(|def| self.variable_row(def))
            .ok_or_else(|| ClusterError::VariableNotExist(name.to_string()))
    }

    /// Every tenant parameter of the catalogue with this tenant's value, by name.
    pub fn tenant_parameters(&self) -> Vec<TenantParameter> {
        PARAMETERS
            .iter()
            .map(|def| self.parameter_row(def))
            .collect()
    }

    /// The tenant parameter `name` (any case).
    ///
    /// # Errors
    /// `ParameterNotExist`.
    pub fn tenant_parameter(&self, name: &str) -> ClusterResult<TenantParameter> {
        parameter(name)
            .map(|def| self.parameter_row(def))
            .ok_or_else(|| ClusterError::ParameterNotExist(name.to_string()))
    }

    /// Whether the parameter `enable_rebalance` is on.
    pub fn rebalance_enabled(&self) -> bool {
        self.parameters
            .get(PARAMETER_ENABLE_REBALANCE)
            .map_or(true, |value| value == "True")
    }

    fn variable_row(&self, def: &VariableDef) -> TenantVariable {
        TenantVariable {
            name: def.name.to_string(),
            value: self.variable_value(def),
            info: def.info.to_string(),
        }
    }

    fn parameter_row(&self, def: &ParameterDef) -> TenantParameter {
        TenantParameter {
            name: def.name.to_string(),
            value: self.parameter_value(def),
            data_type: def.data_type().to_string(),
            info: def.info.to_string(),
            edit_level: def.edit_level.as_str().to_string(),
        }
    }
}
