//! Unit configs and resource pools (`/api/v1/unit/config`, `/api/v1/resource-pool`):
//! the create request with obshell's checks in obshell's order, and the listings.

use obrestore_restore::cluster::{parse_capacity, NewUnitConfig, ResourcePool, UnitConfig};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::time;
use crate::envelope::AppError;

/// A number or an OceanBase capacity string (`"5GB"`, `"512M"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Capacity {
    Bytes(u64),
    Text(String),
}

impl Capacity {
    fn bytes(&self, field: &str) -> Result<u64, AppError> {
        match self {
            Capacity::Bytes(bytes) => Ok(*bytes),
            Capacity::Text(text) => {
                parse_capacity(text).map_err(|_| AppError::illegal(field, text))
            }
        }
    }
}

/// Body of `POST /api/v1/unit/config` (`param.CreateResourceUnitConfigParams`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UnitConfigParam {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub memory_size: Option<Capacity>,
    #[serde(default)]
    pub max_cpu: Option<f64>,
    #[serde(default)]
    pub min_cpu: Option<f64>,
    #[serde(default)]
    pub log_disk_size: Option<Capacity>,
    #[serde(default)]
    pub data_disk_size: Option<Capacity>,
    #[serde(default)]
    pub max_iops: Option<i64>,
    #[serde(default)]
    pub min_iops: Option<i64>,
}

fn positive_iops(field: &str, value: Option<i64>) -> Result<Option<u64>, AppError> {
    match value {
        None => Ok(None),
        Some(iops) if iops <= 0 => Err(AppError::illegal(
            field,
            format!("{field} should be positive."),
        )),
        Some(iops) => Ok(Some(iops as u64)),
    }
}

impl UnitConfigParam {
    /// The domain request, with obshell's checks in obshell's order
    /// (`executor/unit/unit.go`); the cluster adds OceanBase's own limits.
    ///
    /// # Errors
    /// 400 naming the field.
    pub fn to_new(&self) -> Result<NewUnitConfig, AppError> {
        self.check_required()?;
        let name = self.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(AppError::illegal("name", "Resource unit name is empty."));
        }
        let memory_size = self
            .memory_size
            .as_ref()
            .map(|size| size.bytes("memory_size"))
            .transpose()?
            .unwrap_or_default();
        let log_disk_size = self
            .log_disk_size
            .as_ref()
            .map(|size| size.bytes("log_disk_size"))
            .transpose()?;
        if self.data_disk_size.is_some() {
            return Err(AppError::illegal(
                "data_disk_size",
                "DATA_DISK_SIZE is only supported in shared storage mode.",
            ));
        }
        let max_cpu = self.positive_cpus()?;
        let min_iops = positive_iops("min_iops", self.min_iops)?;
        let max_iops = positive_iops("max_iops", self.max_iops)?;
        self.check_limits(max_cpu, max_iops, min_iops)?;
        Ok(NewUnitConfig {
            name,
            memory_size,
            max_cpu,
            min_cpu: self.min_cpu,
            log_disk_size,
            max_iops,
            min_iops,
        })
    }

    /// gin's `required` binding: every missing field listed, the first one named.
    fn check_required(&self) -> Result<(), AppError> {
        let mut missing = Vec::new();
        if self.name.is_none() {
            missing.push("name");
        }
        if self.memory_size.is_none() {
            missing.push("memory_size");
        }
        if self.max_cpu.is_none() {
            missing.push("max_cpu");
        }
        let Some(first) = missing.first() else {
            return Ok(());
        };
        let detail = missing
            .iter()
            .map(|field| format!("Key: '{field}' Error:Field validation for '{field}' failed on the 'required' tag"))
            .collect::<Vec<_>>()
            .join("\n");
        Err(AppError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "Common.BindJsonFailed",
            format!("Bind JSON failed: {detail}"),
        )
        .with_field(*first))
    }

    /// `max_cpu`, after checking it and `min_cpu` are finite and positive.
    fn positive_cpus(&self) -> Result<f64, AppError> {
        let max_cpu = self.max_cpu.unwrap_or_default();
        if !max_cpu.is_finite() || max_cpu <= 0.0 {
            return Err(AppError::illegal("max_cpu", "max_cpu should be positive."));
        }
        if let Some(min_cpu) = self.min_cpu {
            if !min_cpu.is_finite() || min_cpu <= 0.0 {
                return Err(AppError::illegal("min_cpu", "min_cpu should be positive."));
            }
        }
        Ok(max_cpu)
    }

    /// min ≤ max for CPU and IOPS, and at least one CPU.
    fn check_limits(
        &self,
        max_cpu: f64,
        max_iops: Option<u64>,
        min_iops: Option<u64>,
    ) -> Result<(), AppError> {
        if let Some(min_cpu) = self.min_cpu {
            if max_cpu < min_cpu {
                return Err(AppError::illegal(
                    "min_cpu",
                    "min_cpu should not be greater than max_cpu.",
                ));
            }
        }
        if max_cpu < 1.0 {
            return Err(AppError::illegal("max_cpu", "min value is 1."));
        }
        if self.min_cpu.is_some_and(|min_cpu| min_cpu < 1.0) {
            return Err(AppError::illegal("min_cpu", "min value is 1."));
        }
        if let (Some(max), Some(min)) = (max_iops, min_iops) {
            if max < min {
                return Err(AppError::illegal(
                    "min_iops",
                    "min_iops should not be greater than max_iops.",
                ));
            }
        }
        Ok(())
    }
}

/// A unit config (`DBA_OB_UNIT_CONFIGS`, obshell's `DbaObUnitConfig`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UnitConfigDto {
    pub unit_config_id: u64,
    pub name: String,
    pub max_cpu: f64,
    pub min_cpu: f64,
    /// Bytes.
    pub memory_size: u64,
    /// Bytes.
    pub log_disk_size: u64,
    /// Bytes (0: shared storage only).
    pub data_disk_size: u64,
    pub max_iops: u64,
    pub min_iops: u64,
    pub create_time: String,
    pub modify_time: String,
}

impl From<&UnitConfig> for UnitConfigDto {
    fn from(config: &UnitConfig) -> UnitConfigDto {
        UnitConfigDto {
            unit_config_id: config.id,
            name: config.name.clone(),
            max_cpu: config.max_cpu,
            min_cpu: config.min_cpu,
            memory_size: config.memory_size,
            log_disk_size: config.log_disk_size,
            data_disk_size: 0,
            max_iops: config.max_iops,
            min_iops: config.min_iops,
            create_time: time(config.created_at),
            modify_time: time(config.modified_at.unwrap_or(config.created_at)),
        }
    }
}

/// A resource pool (`DBA_OB_RESOURCE_POOLS`, obshell's `DbaObResourcePool`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResourcePoolDto {
    pub id: u64,
    pub name: String,
    /// `z1;z2`.
    pub zone_list: String,
    pub unit_num: u32,
    pub unit_config_id: u64,
    /// 0 while the pool is not granted.
    pub tenant_id: u64,
    pub replica_type: String,
    /// Extension.
    pub unit_config_name: String,
    /// Extension.
    pub create_time: String,
}

impl ResourcePoolDto {
    /// The pool, with its unit config's id looked up in `configs`.
    pub fn of(pool: &ResourcePool, configs: &[UnitConfig]) -> ResourcePoolDto {
        ResourcePoolDto {
            id: pool.id,
            name: pool.name.clone(),
            zone_list: pool.zone_list.join(";"),
            unit_num: pool.unit_num,
            unit_config_id: configs
                .iter()
                .find(|config| config.name == pool.unit_config_name)
                .map(|config| config.id)
                .unwrap_or(0),
            tenant_id: pool.tenant_id.unwrap_or(0),
            replica_type: "FULL".to_string(),
            unit_config_name: pool.unit_config_name.clone(),
            create_time: time(pool.created_at),
        }
    }
}
