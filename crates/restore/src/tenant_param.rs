//! obshell's create-tenant request (`param.CreateTenantParam`) and its checks, in the
//! order of obshell's `executor/tenant/create_tenant.go` (`CreateTenant`,
//! `renderCreateTenantParam`, `checkCreateTenantParam`, `CheckResourceEnough`). The
//! zone rules are the restore request's ([`crate::param`]), which obshell shares too.
//!
//! 1. `name` and `zone_list` present (binding); `name` not empty.
//! 2. The name: no `$`, not reserved, obshell's character set.
//! 3. The tenant does not exist (`sys` always does).
//! 4. Rendering: `primary_zone` defaults to `RANDOM`, `mode` to `MYSQL`; the whitelist
//!    comes from `whitelist`, else the variable `ob_tcp_invited_nodes`; `time_zone`
//!    moves from the variables to its own step.
//! 5. `zone_list` not empty; `mode` is `MYSQL`.
//! 6. Each zone's static checks, then each zone in the cluster.
//! 7. A FULL replica; the primary zone over the zones, then its region rules.
//! 8. Charset and collation, variables, parameters (the cluster's catalogue).
//! 9. Free capacity for every unit.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cluster::{
    check_tenant_options, ClusterError, TenantMode, TenantOptions, TenantService,
};
use crate::param::{
    check_capacity, check_tenant_name, check_zone_list, normalize_primary_zone, null_as_default,
    validated_zones, RestoreParamError, ValidatedZone, ZoneParam,
};
use crate::secret::Secret;

/// The variable obshell sets in its own `Set tenant time zone` step.
pub const VARIABLE_TIME_ZONE: &str = "time_zone";
/// The whitelist's variable.
const VARIABLE_WHITELIST: &str = crate::cluster::catalog::VARIABLE_WHITELIST;
/// Variables only `CREATE TENANT` sets (obshell's `CREATE_TENANT_STATEMENT_VARIABLES`).
const CREATE_STATEMENT_VARIABLES: &[&str] = &["lower_case_table_names"];

/// The body of `POST /api/v1/tenant`, as sent. `Debug` never shows `root_password`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateTenantParam {
    /// Required (`null` or missing is a binding error, `""` is "name is empty").
    #[serde(default)]
    pub name: Option<String>,
    /// Required: `null` or missing is a binding error, `[]` is "zone list is empty".
    #[serde(default)]
    pub zone_list: Option<Vec<ZoneParam>>,
    /// `MYSQL` (default, any case).
    #[serde(default, deserialize_with = "null_as_default")]
    pub mode: String,
    /// `RANDOM` (default; also for "" and any case of "random") or `z1;z2,z3`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub primary_zone: String,
    /// Merged with `127.0.0.1`; `None` takes the variable `ob_tcp_invited_nodes`.
    #[serde(default)]
    pub whitelist: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_password: Option<Secret>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub charset: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub collation: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub read_only: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub comment: String,
    /// Values are strings, numbers or booleans, as in obshell's `map[string]interface{}`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub variables: BTreeMap<String, Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub parameters: BTreeMap<String, Value>,
    /// Accepted and ignored: the embedded cluster has no scenario templates.
    #[serde(default, deserialize_with = "null_as_default")]
    pub scenario: String,
    /// Accepted and ignored: the embedded cluster has no scripts to import.
    #[serde(default, deserialize_with = "null_as_default")]
    pub import_script: bool,
}

/// A checked create-tenant request: what the `Create tenant <name>` DAG stores (without
/// the root password, which the DAG keeps sealed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateTenantPlan {
    pub name: String,
    pub zone_list: Vec<ValidatedZone>,
    pub primary_zone: String,
    /// What `CREATE TENANT` itself sets: mode, charset, collation, comment, read only
    /// and the create-only variables (no whitelist, parameters or other variables).
    pub create: TenantOptions,
    /// `Set tenant parameters` (empty: no such step).
    pub parameters: BTreeMap<String, String>,
    /// `Modify tenant whitelist`: the request's whitelist, before merging.
    pub whitelist: String,
    /// `Set tenant time zone`.
    pub time_zone: Option<String>,
    /// `Set tenant variables` (empty: no such step).
    pub variables: BTreeMap<String, String>,
    /// Whether there is a `Set root password` step.
    pub has_root_password: bool,
    #[serde(skip)]
    root_password: Option<Secret>,
}

impl CreateTenantPlan {
    /// The root password, if the request set one (not kept when serialized).
    pub fn root_password(&self) -> Option<&Secret> {
        self.root_password.as_ref()
    }
}

/// A JSON variable or parameter value as the text OceanBase is given (obshell formats
/// Go's `interface{}`): strings as they are, numbers and booleans spelled out; `None`
/// for null, arrays and objects.
pub fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(on) => Some(on.to_string()),
        _ => None,
    }
}

/// A create-tenant request after obshell's rendering (rule 4).
struct Rendered {
    primary_zone: String,
    mode: String,
    /// Lower-cased names, without the whitelist and the time zone.
    variables: BTreeMap<String, String>,
    whitelist: String,
    time_zone: Option<String>,
    parameters: BTreeMap<String, String>,
}

/// [`value_text`], or the cluster's refusal naming the variable or parameter.
fn checked_text(name: &str, value: &Value, variable: bool) -> Result<String, ClusterError> {
    value_text(value).ok_or_else(|| {
        let (name, reason) = (name.to_string(), "Incorrect type".to_string());
        if variable {
            ClusterError::VariableInvalid { name, reason }
        } else {
            ClusterError::ParameterInvalid { name, reason }
        }
    })
}

impl CreateTenantParam {
    /// The fields obshell's binding requires that are missing, in declaration order.
    pub fn missing_required(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.name.is_none() {
            missing.push("name");
        }
        if self.zone_list.is_none() {
            missing.push("zone_list");
        }
        missing
    }

    /// Checks the request against `cluster` in obshell's order (module docs).
    ///
    /// # Errors
    /// The first rule broken: a [`RestoreParamError`] naming its field, or
    /// `RestoreParamError::Cluster` with the cluster's refusal (name, charset, variable
    /// and parameter rules) or failure.
    pub fn validate(
        &self,
        cluster: &dyn TenantService,
    ) -> Result<CreateTenantPlan, RestoreParamError> {
        // 1-3. Binding, the name, existence.
        let name = self.checked_name(cluster)?;
        // 4. Rendering.
        let rendered = self.render()?;
        // 5. Zone list and mode.
        let zones = self.zone_list.clone().unwrap_or_default();
        if zones.is_empty() {
            return Err(RestoreParamError::ZoneListEmpty);
        }
        if rendered.mode != "MYSQL" {
            return Err(RestoreParamError::TenantModeNotSupported {
                mode: rendered.mode,
            });
        }
        // 6-7. Zones, a FULL replica, the primary zone.
        let checked = check_zone_list(&name, &zones, &rendered.primary_zone, cluster)?;
        // 8. Charset, variables, parameters: everything the DAG will set, checked now.
        let (create, later_variables) = self.checked_options(&rendered)?;
        // 9. Capacity (OceanBase, when the pools are created).
        check_capacity(&zones, &checked.found)?;
        let root_password = self
            .root_password
            .clone()
            .filter(|password| !password.expose().is_empty());
        Ok(CreateTenantPlan {
            name,
            zone_list: validated_zones(&zones, checked.replica_types, &checked.found),
            primary_zone: rendered.primary_zone,
            create,
            parameters: rendered.parameters,
            whitelist: rendered.whitelist,
            time_zone: rendered.time_zone,
            variables: later_variables,
            has_root_password: root_password.is_some(),
            root_password,
        })
    }

    /// Rules 1-3: the required fields, a name by obshell's rules, a new tenant.
    fn checked_name(&self, cluster: &dyn TenantService) -> Result<String, RestoreParamError> {
        let missing = self.missing_required();
        if !missing.is_empty() {
            return Err(RestoreParamError::Required { fields: missing });
        }
        let name = self.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(ClusterError::TenantNameEmpty.into());
        }
        if name == "sys" || cluster.tenant(&name)?.is_some() {
            return Err(ClusterError::TenantExists(name).into());
        }
        check_tenant_name(&name).map_err(|err| match err {
            RestoreParamError::TenantNameInvalid { name, reason } => {
                ClusterError::TenantNameInvalid { name, reason }.into()
            }
            other => other,
        })?;
        Ok(name)
    }

    /// Rule 4: obshell's `renderCreateTenantParam`.
    fn render(&self) -> Result<Rendered, RestoreParamError> {
        let primary_zone = normalize_primary_zone(Some(&self.primary_zone));
        let mode = if self.mode.is_empty() {
            "MYSQL".to_string()
        } else {
            self.mode.to_ascii_uppercase()
        };
        let mut variables = BTreeMap::new();
        for (key, value) in &self.variables {
            variables.insert(key.to_ascii_lowercase(), checked_text(key, value, true)?);
        }
        let whitelist = match &self.whitelist {
            Some(whitelist) => whitelist.clone(),
            None => variables
                .get(VARIABLE_WHITELIST)
                .cloned()
                .unwrap_or_default(),
        };
        variables.remove(VARIABLE_WHITELIST);
        let time_zone = variables.remove(VARIABLE_TIME_ZONE);
        let mut parameters = BTreeMap::new();
        for (key, value) in &self.parameters {
            parameters.insert(key.clone(), checked_text(key, value, false)?);
        }
        Ok(Rendered {
            primary_zone,
            mode,
            variables,
            whitelist,
            time_zone,
            parameters,
        })
    }

    /// Rule 8: the options `CREATE TENANT` sets, and the later variables, checked
    /// together with everything the later steps set against the cluster's catalogue.
    fn checked_options(
        &self,
        rendered: &Rendered,
    ) -> Result<(TenantOptions, BTreeMap<String, String>), RestoreParamError> {
        let (create_variables, later_variables): (BTreeMap<_, _>, BTreeMap<_, _>) = rendered
            .variables
            .clone()
            .into_iter()
            .partition(|(key, _)| CREATE_STATEMENT_VARIABLES.contains(&key.as_str()));
        let create = TenantOptions {
            mode: TenantMode::Mysql,
            charset: Some(self.charset.clone()).filter(|charset| !charset.is_empty()),
            collation: Some(self.collation.clone()).filter(|collation| !collation.is_empty()),
            comment: self.comment.clone(),
            read_only: self.read_only,
            variables: create_variables,
            parameters: BTreeMap::new(),
            whitelist: None,
            root_password: None,
        };
        let mut everything = create.clone();
        everything.variables.extend(later_variables.clone());
        if let Some(time_zone) = &rendered.time_zone {
            everything
                .variables
                .insert(VARIABLE_TIME_ZONE.to_string(), time_zone.clone());
        }
        everything.parameters = rendered.parameters.clone();
        everything.whitelist = Some(rendered.whitelist.clone());
        check_tenant_options(&everything)?;
        Ok((create, later_variables))
    }
}
