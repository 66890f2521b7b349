//! Projects group services; they own a Docker network and a slice of the hostname space.

use jiff::Timestamp;

use crate::name::ProjectName;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Project {
    pub id: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "demo"))]
    pub name: ProjectName,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}
