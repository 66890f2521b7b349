//! Bodies of `…/volumes`: a service's persistent volumes.

use helvetia_core::deployment::Deployment;
use helvetia_core::volume::Volume;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddVolume {
    /// Unique within the service.
    #[schema(value_type = helvetia_core::volume::VolumeName)]
    pub name: String,
    /// Absolute path where the containers mount it: not `/`, no `..` component, no `:`, at
    /// most 1024 characters.
    #[schema(
        min_length = 2,
        max_length = 1024,
        pattern = r"^(?!/$)(?!.*/\.\.(/|$))/[^:\x00-\x1f\x7f-\x9f]*$"
    )]
    pub path: String,
}

/// A volume with what it holds.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VolumeView {
    #[serde(flatten)]
    pub volume: Volume,
    /// Bytes stored; 0 before the first deployment that mounts it.
    pub size_bytes: u64,
}

/// A change to a service's volumes, with the redeployment that applies it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VolumeChange {
    pub volumes: Vec<VolumeView>,
    /// Started when the service is live, so its containers mount the new set.
    pub redeployment: Option<Deployment>,
}
