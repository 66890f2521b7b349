//! Bodies of `…/metrics`: a service's container metrics.

use helvetia_core::metrics::{ContainerSample, Resolution, SeriesPoint};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A service's usage over time.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MetricsSeries {
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    /// The width of each point, in seconds.
    pub step_seconds: u64,
    /// What the points were averaged from.
    pub resolution: Resolution,
    /// Oldest first; steps in which no container reported are left out.
    pub points: Vec<SeriesPoint>,
}

/// What a service uses now, and whether that needs attention.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CurrentMetrics {
    /// The latest sample of each container that reported recently.
    pub containers: Vec<ContainerSample>,
    pub health: MetricsHealth,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MetricsHealth {
    /// Nothing below needs attention.
    pub ok: bool,
    /// Containers using at least 90 % of their memory limit.
    pub memory_near_limit: Vec<String>,
    /// Times the engine restarted one of the service's containers in the last hour.
    pub restarts_last_hour: i64,
}
