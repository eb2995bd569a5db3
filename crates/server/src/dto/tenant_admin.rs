//! Tenant administration bodies (obshell's `param/tenant.go`): rename, replicas,
//! primary zone, whitelist, root password, variables and parameters. Every request
//! refuses what obshell refuses with obshell's code, naming the field.

use std::collections::BTreeMap;

use obrestore_restore::cluster::{
    ReplicaModify, ReplicaSpec, ReplicaType, TenantParameter, TenantVariable,
};
use obrestore_restore::{ClusterError, Secret};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::envelope::AppError;

/// gin's `required` binding failure for `fields` (in declaration order).
pub fn required(fields: Vec<&'static str>) -> AppError {
    obrestore_restore::RestoreParamError::Required { fields }.into()
}

/// Body of `PUT /api/v1/tenant/:name/name` (`param.RenameTenantParam`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RenameTenantParam {
    /// Required.
    #[serde(default)]
    pub new_name: Option<String>,
}

/// Body of `POST /api/v1/tenant/:name/replicas` (`param.ScaleOutTenantReplicasParam`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ScaleOutReplicasParam {
    /// Required: one replica per zone.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub zone_list: Option<Vec<obrestore_restore::ZoneParam>>,
}

impl ScaleOutReplicasParam {
    /// The replicas to add, each zone's replica type parsed as obshell renders it.
    ///
    /// # Errors
    /// 400: `zone_list` missing, an unknown replica type, a unit num below 1.
    pub fn to_specs(&self) -> Result<Vec<ReplicaSpec>, AppError> {
        let Some(zones) = &self.zone_list else {
            return Err(required(vec!["zone_list"]));
        };
        zones
            .iter()
            .enumerate()
            .map(|(index, zone)| {
                Ok(ReplicaSpec {
                    zone: zone.name.clone(),
                    replica_type: parse_replica_type(
                        index,
                        &zone.name,
                        zone.replica_type.as_deref(),
                    )?,
                    unit_config_name: zone.unit_config_name.clone(),
                    unit_num: unit_num(zone.unit_num)?,
                })
            })
            .collect()
    }
}

/// obshell's `RenderZoneParams` + `CheckReplicaType`: empty → FULL.
fn parse_replica_type(
    index: usize,
    zone: &str,
    value: Option<&str>,
) -> Result<ReplicaType, AppError> {
    match value
        .filter(|value| !value.is_empty())
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("FULL") => Ok(ReplicaType::Full),
        Some("READONLY") => Ok(ReplicaType::Readonly),
        Some(upper) => Err(obrestore_restore::RestoreParamError::ReplicaTypeInvalid {
            index,
            zone: zone.to_string(),
            value: upper.to_string(),
        }
        .into()),
    }
}

/// A unit num as the cluster takes it: 0 and below are `OB.Tenant.UnitNum.Invalid`.
fn unit_num(value: i64) -> Result<u32, AppError> {
    u32::try_from(value.max(0)).map_err(|_| {
        AppError::from(ClusterError::UnitNumInvalid {
            unit_num: u32::MAX,
            reason: "unit num is too large".to_string(),
        })
    })
}

/// Body of `DELETE /api/v1/tenant/:name/replicas` (`param.ScaleInTenantReplicasParam`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ScaleInReplicasParam {
    /// Required: the zones whose replicas go.
    #[serde(default)]
    pub zones: Option<Vec<String>>,
}

/// One zone of `PATCH /api/v1/tenant/:name/replicas` (`param.ModifyReplicaZoneParam`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ModifyReplicaZoneParam {
    #[serde(default)]
    pub zone_name: String,
    #[serde(default)]
    pub replica_type: Option<String>,
    #[serde(default)]
    pub unit_config_name: Option<String>,
    #[serde(default)]
    pub unit_num: Option<i64>,
}

/// Body of `PATCH /api/v1/tenant/:name/replicas` (`param.ModifyReplicasParam`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ModifyReplicasParam {
    /// Required.
    #[serde(default)]
    pub zone_list: Option<Vec<ModifyReplicaZoneParam>>,
}

impl ModifyReplicasParam {
    /// The changes, each replica type parsed as obshell renders it.
    ///
    /// # Errors
    /// 400: `zone_list` missing, an unknown replica type, a unit num below 1.
    pub fn to_changes(&self) -> Result<Vec<ReplicaModify>, AppError> {
        let Some(zones) = &self.zone_list else {
            return Err(required(vec!["zone_list"]));
        };
        zones
            .iter()
            .enumerate()
            .map(|(index, zone)| {
                Ok(ReplicaModify {
                    zone: zone.zone_name.clone(),
                    replica_type: zone
                        .replica_type
                        .as_deref()
                        .map(|kind| parse_replica_type(index, &zone.zone_name, Some(kind)))
                        .transpose()?,
                    unit_config_name: zone.unit_config_name.clone(),
                    unit_num: zone.unit_num.map(unit_num).transpose()?,
                })
            })
            .collect()
    }
}

/// Body of `PUT /api/v1/tenant/:name/primary-zone` (`param.ModifyTenantPrimaryZoneParam`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PrimaryZoneParam {
    /// Required: `RANDOM` (any case) or `z1;z2,z3`.
    #[serde(default)]
    pub primary_zone: Option<String>,
}

/// Body of `PUT /api/v1/tenant/:name/whitelist` (`param.ModifyTenantWhitelistParam`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct WhitelistParam {
    /// Required (may be empty): merged with `127.0.0.1`.
    #[serde(default)]
    pub whitelist: Option<String>,
}

/// Body of `PUT /api/v1/tenant/:name/password` (`param.ModifyTenantRootPasswordParam`).
/// Never logged or echoed.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct RootPasswordParam {
    #[serde(default)]
    #[schema(value_type = String)]
    pub old_password: Option<Secret>,
    /// Required (may be empty).
    #[serde(default)]
    #[schema(value_type = String)]
    pub new_password: Option<Secret>,
}

/// Body of `POST /api/v1/tenant/:name/password/persist`
/// (`param.PersistTenantRootPasswordParam`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct PersistPasswordParam {
    #[serde(default)]
    #[schema(value_type = String)]
    pub password: Option<Secret>,
}

/// Body of `PUT /api/v1/tenant/:name/variables` (`param.SetTenantVariablesParam`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct SetVariablesParam {
    /// Required: name → string, number or boolean.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub variables: Option<BTreeMap<String, Value>>,
    /// The root password, for the variables obshell sets over a tenant connection.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub tenant_password: Option<Secret>,
}

/// Body of `PUT /api/v1/tenant/:name/parameters` (`param.SetTenantParametersParam`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct SetParametersParam {
    /// Required: name → string, number or boolean.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<BTreeMap<String, Value>>,
}

/// Variable or parameter values as OceanBase takes them
/// ([`obrestore_restore::tenant_param::value_text`]).
///
/// # Errors
/// 400 naming the entry whose value is not a string, number or boolean.
pub fn value_texts(
    values: &BTreeMap<String, Value>,
    field: &str,
) -> Result<BTreeMap<String, String>, AppError> {
    values
        .iter()
        .map(|(name, value)| {
            let text = obrestore_restore::tenant_param::value_text(value).ok_or_else(|| {
                AppError::illegal(
                    &format!("{field}.{name}"),
                    "should be a string, a number or a boolean",
                )
            })?;
            Ok((name.clone(), text))
        })
        .collect()
}

/// A system variable (`oceanbase.CdbObSysVariable`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VariableDto {
    pub name: String,
    pub value: String,
    pub info: String,
}

impl From<&TenantVariable> for VariableDto {
    fn from(variable: &TenantVariable) -> VariableDto {
        VariableDto {
            name: variable.name.clone(),
            value: variable.value.clone(),
            info: variable.info.clone(),
        }
    }
}

/// A tenant parameter (`oceanbase.GvObParameter`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ParameterDto {
    pub name: String,
    pub value: String,
    pub data_type: String,
    pub info: String,
    pub edit_level: String,
}

impl From<&TenantParameter> for ParameterDto {
    fn from(parameter: &TenantParameter) -> ParameterDto {
        ParameterDto {
            name: parameter.name.clone(),
            value: parameter.value.clone(),
            data_type: parameter.data_type.clone(),
            info: parameter.info.clone(),
            edit_level: parameter.edit_level.clone(),
        }
    }
}

/// `?filter=` of the variable and parameter listings: a SQL `LIKE` pattern, `%` when
/// absent.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct FilterQuery {
    pub filter: Option<String>,
}
