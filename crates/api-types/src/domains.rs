//! A service's custom domains.

use serde::{Deserialize, Serialize};

/// A domain to add to a service.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDomain {
    /// The domain (Unicode or ASCII; `*.example.com` for a wildcard, verified by its DNS).
    #[schema(min_length = 1, max_length = 253)]
    pub name: String,
    /// Only requests under this path go to the service (`/api`): the rest of the domain may
    /// be another service's.
    #[schema(pattern = "^/[A-Za-z0-9._~%/-]+$", max_length = 200)]
    pub path_prefix: Option<String>,
    /// Answer every request with a permanent redirect to the service's primary domain (an
    /// alias: `www` to the apex, or the other way).
    #[serde(default)]
    pub redirect: bool,
    /// Route it without a check (team admins).
    #[serde(default)]
    pub force: bool,
}
