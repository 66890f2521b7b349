//! Bodies of `/api/v1/projects`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    #[schema(value_type = helvetia_core::name::ProjectName)]
    pub name: String,
    /// The team that will own it. Default: the caller's personal team (or, for a token limited
    /// to one team, that team).
    #[serde(default)]
    #[schema(value_type = Option<helvetia_core::name::TeamName>)]
    pub team: Option<String>,
}
