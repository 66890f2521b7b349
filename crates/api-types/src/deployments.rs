//! Bodies of deployments, roll-backs and deployment logs.

use helvetia_core::deployment::{Deployment, DeploymentStatus, LogLine, Transition};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeployment {
    /// Deploy the head of this branch. Default: the service's branch.
    #[schema(value_type = Option<helvetia_core::git::GitRef>)]
    pub branch: Option<String>,
    /// Deploy exactly this commit (on `branch`): 7 to 64 hexadecimal digits.
    #[schema(pattern = "^[0-9a-fA-F]{7,64}$")]
    pub commit: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// The deployment whose image to run again. Default: the most recent successful
    /// deployment of another commit than the live one (restarts and redeploys of the live
    /// version are skipped).
    pub deployment: Option<i64>,
}

/// A deployment with every state change it went through.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeploymentDetail {
    #[serde(flatten)]
    pub deployment: Deployment,
    pub transitions: Vec<Transition>,
}

/// A page of a deployment's log.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogLines {
    /// Lines in order; `seq` numbers have no gaps.
    #[schema(value_type = Vec<Object>)]
    pub lines: Vec<LogLine>,
    /// The deployment's status when the page was read.
    pub status: DeploymentStatus,
}

/// The data of a deployment log stream's `status` and `end` events.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct StatusEvent {
    pub status: DeploymentStatus,
}
