//! Bodies of `/api/v1/disk`: the disk budget and what Helvetia's objects take.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Bytes of Helvetia's objects, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DiskBytes {
    /// Runtime images in the host engine, each counted by its own layers.
    pub images: u64,
    /// The registry between build and run.
    pub registry: u64,
    /// Images in the builder engine (base images).
    pub builder_images: u64,
    /// The builder's build cache, cache mounts included.
    pub build_cache: u64,
    pub total: u64,
}

/// The disk budget, and what its last sweep found and freed.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DiskView {
    /// `--disk-budget`.
    pub budget_bytes: u64,
    /// When the last sweep ran; `null` before the first.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub swept_at: Option<Timestamp>,
    /// What was left after the last sweep.
    pub used: Option<DiskBytes>,
    /// What the last sweep freed.
    pub freed: Option<DiskBytes>,
}
