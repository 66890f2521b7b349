//! Previews of a service: one per pull request (or per branch asked for), each a service of
//! its own at its own hostname; and the service's preview settings.

use helvetia_core::deployment::Deployment;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A preview: what it previews, the commit it runs or waits to run, and where it answers.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PreviewView {
    /// `pr-<number>` for a pull request, else the name chosen for a branch.
    pub name: String,
    /// The preview's own service, for its deployments, logs and metrics.
    pub service: String,
    pub url: String,
    pub pull_request: Option<u64>,
    pub title: String,
    pub branch: String,
    /// The pull request's head commit last seen (`null` for a branch's preview).
    pub head_commit: Option<String>,
    /// The pull request comes from a fork: each head commit runs only once approved.
    pub fork: bool,
    /// The fork's head commit approved last, and by whom.
    pub approved_commit: Option<String>,
    pub approved_by: Option<String>,
    /// A fork's head commit that nobody approved yet: nothing of it runs.
    pub awaiting_approval: bool,
    /// What runs now, if anything.
    pub live_deployment: Option<Deployment>,
    /// The newest deployment, whatever its state.
    pub latest_deployment: Option<Deployment>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// A preview of a branch, asked for through the API.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployPreview {
    /// The branch to deploy, as it is now.
    #[schema(value_type = helvetia_core::git::GitRef)]
    pub branch: String,
    /// The preview's name (its hostname's first label): a DNS label of at most 24
    /// characters, not `pr-<number>`. Default: made from the branch's name.
    #[schema(value_type = Option<String>, pattern = "^[a-z0-9]([a-z0-9-]{0,22}[a-z0-9])?$", max_length = 24)]
    pub name: Option<String>,
}

/// An approval of a fork's head commit.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovePreview {
    /// The commit approved: it must be the pull request's head, so an approval never covers
    /// a commit pushed after the person looked. Default: the head as Helvetia last saw it.
    #[schema(pattern = "^[0-9a-fA-F]{40}$")]
    pub commit: Option<String>,
}

/// What an approval or a branch's preview request did.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PreviewDeployed {
    pub preview: PreviewView,
    pub deployment: Deployment,
}
