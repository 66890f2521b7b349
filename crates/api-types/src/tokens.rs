//! Bodies of `/api/v1/tokens` and `/api/v1/me`.

use helvetia_core::auth::{ApiToken, Role, Scope};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// What the token is for, e.g. `ci`: 1 to 100 printable characters once trimmed.
    #[schema(
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// At least one scope.
    #[schema(value_type = Vec<Scope>, min_items = 1)]
    pub scopes: Vec<String>,
    /// Days until the token expires. Default: never.
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<i64>,
    /// Limit the token to this one team. Default: every team of its owner.
    #[serde(default)]
    #[schema(value_type = Option<helvetia_core::name::TeamName>)]
    pub team: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedToken {
    /// The token itself. Shown this once; only its hash is stored.
    pub token: String,
    #[serde(flatten)]
    pub info: ApiToken,
}

/// Who the caller is and what it may do.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Me {
    /// The signed-in user; `null` for a server-administration token, which belongs to no one.
    pub user: Option<MeUser>,
    /// The token presented; `null` for a session.
    pub token_id: Option<i64>,
    pub token_name: Option<String>,
    /// What the credential may do at most; the role in each team limits it further.
    pub scopes: Vec<Scope>,
    /// The teams the caller may act in and its role in each (for the system: every team, as
    /// owner).
    pub teams: Vec<TeamRole>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MeUser {
    pub id: i64,
    pub email: String,
    pub name: String,
    /// May manage the instance's users.
    pub instance_admin: bool,
    pub totp_enabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TeamRole {
    #[schema(value_type = helvetia_core::name::TeamName)]
    pub team: String,
    pub role: Role,
    /// The team made for this user at sign-up.
    pub personal: bool,
}
