//! Bodies of `…/env` and `…/dotenv`: environment variables of a project or a service.

use helvetia_core::deployment::Deployment;
use helvetia_core::env::EnvVarInput;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A variable as the API shows it: a secret's value never.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnvVarView {
    pub name: String,
    /// The value of a plain variable; `null` for a secret.
    pub value: Option<String>,
    pub secret: bool,
    pub build: bool,
    /// Passed to builds as a build argument.
    pub build_arg: bool,
    pub scope: VarScope,
    /// For a project variable listed on a service: a service variable of the same name
    /// replaces it.
    pub overridden: bool,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// Whose variable it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VarScope {
    /// Shared by the project's services.
    Project,
    /// One service's own.
    Service,
    /// One service's, for its previews only (over its own).
    Previews,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetEnv {
    /// Variables to set; others are kept.
    pub vars: Vec<EnvVarInput>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnsetEnv {
    /// Variables to remove, all of them or, if one is not set, none.
    #[schema(value_type = Vec<helvetia_core::env::EnvName>, min_items = 1)]
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportEnv {
    /// Variables in the `.env` format.
    pub dotenv: String,
    /// Store every imported variable as a secret.
    #[serde(default)]
    pub secret: bool,
    /// Make every imported variable available at build time.
    #[serde(default)]
    pub build: bool,
    /// Pass every imported variable to builds as a build argument (not with `secret` or
    /// `build`).
    #[serde(default)]
    pub build_arg: bool,
}

/// The result of a change.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnvChanged {
    /// The variables now set on the scope.
    pub vars: Vec<EnvVarView>,
    /// Redeployments that apply the change to live services (services with `auto_redeploy`
    /// off keep the change pending).
    pub redeployments: Vec<Deployment>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevealedVar {
    pub name: String,
    pub value: String,
}
