//! Bodies of `/api/v1/projects`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    #[schema(value_type = helvetia_core::name::ProjectName)]
    pub name: String,
}
