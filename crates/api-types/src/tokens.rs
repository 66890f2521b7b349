//! Bodies of `/api/v1/tokens` and `/api/v1/me`.

use helvetia_core::auth::{ApiToken, Scope};
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
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedToken {
    /// The token itself. Shown this once; only its hash is stored.
    pub token: String,
    #[serde(flatten)]
    pub info: ApiToken,
}

/// Who a token belongs to and what it may do.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Me {
    pub token_id: i64,
    pub token_name: String,
    pub scopes: Vec<Scope>,
}
