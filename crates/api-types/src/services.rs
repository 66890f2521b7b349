//! Bodies of `/api/v1/projects/{project}/services` and `/api/v1/services`.

use helvetia_core::container::{ContainerRecord, Health, ServiceEvent};
use helvetia_core::deployment::Deployment;
use helvetia_core::runtime::RuntimeSettings;
use helvetia_core::service::PortInput;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateService {
    /// Unique within the project.
    #[schema(value_type = helvetia_core::name::ServiceName)]
    pub name: String,
    /// Git repository URL: https, http, ssh, git or `user@host:path`. Never with credentials.
    /// Which locations are accepted is the server's policy (local paths only with
    /// `--allow-local-repos`; loopback and private addresses only with
    /// `--allow-private-destinations`; link-local and metadata addresses never): a refused one
    /// is a 422. Required unless `github` names the repository or `image` is given instead.
    #[schema(
        min_length = 1,
        max_length = 2048,
        pattern = r"^[^-\s\x00-\x1f\x7f-\x9f][^\s\x00-\x1f\x7f-\x9f]*$"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// A registry image to run instead of building a repository:
    /// `registry[:port]/path:tag` or `registry[:port]/path@sha256:…`. Each deploy pulls it
    /// (a tag resolved to its digest, recorded on the deployment); no clone, no build.
    #[schema(value_type = Option<helvetia_core::image::ImageRef>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The user `image` is pulled as, for a registry that wants a login.
    #[schema(min_length = 1, max_length = 255, pattern = r"^[!-9;-~]+$")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_user: Option<String>,
    /// The password or token of `registry_user`: sealed at rest, never shown again.
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_password: Option<String>,
    /// A repository the instance's GitHub App reaches, instead of `repo`: its clone URL and
    /// default branch are filled in, and private clones use the App installation's tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github: Option<GitHubSource>,
    /// Branch deployed by default. Default: the GitHub repository's default branch, else `main`.
    #[schema(value_type = Option<helvetia_core::git::GitRef>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Dockerfile path inside the repository. Default: `Dockerfile`.
    #[schema(value_type = Option<helvetia_core::service::RepoPath>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// Build context inside the repository. Default: `.`.
    #[schema(value_type = Option<helvetia_core::service::RepoPath>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Port the app listens on (default 8080), or `"none"` for a worker.
    #[schema(value_type = Option<PortInput>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<PortInput>,
    /// Health check, timeouts and limits; defaults for whatever is left out.
    #[schema(value_type = Option<RuntimeSettings>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<serde_json::Value>,
}

/// A repository on GitHub a service is created from.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GitHubSource {
    /// `owner/name`, as listed by `GET /api/v1/github/installations/{id}/repositories`.
    #[schema(min_length = 3, max_length = 200)]
    pub repository: String,
    /// The App installation that grants it. Default: the caller's installation on the
    /// repository's owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installation_id: Option<i64>,
}

/// The GitHub repository a service was created from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceGitHub {
    pub installation_id: i64,
    /// GitHub's id of the repository (unchanged by renames).
    pub repository_id: i64,
    /// `owner/name` when the service was created.
    pub repository: String,
}

impl From<&helvetia_core::service::GitHubLink> for ServiceGitHub {
    fn from(link: &helvetia_core::service::GitHubLink) -> Self {
        ServiceGitHub {
            installation_id: link.installation_id,
            repository_id: link.repository_id,
            repository: link.full_name.clone(),
        }
    }
}

/// A service's settings as the API shows them: the core's `ServiceSettings` as plain values,
/// since a client cannot re-check a repository URL against the server's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceSettings {
    /// The repository it is built from; `null` for a service run from `image`.
    pub repo: Option<String>,
    /// The registry image it runs (`registry/path:tag` or `…@sha256:…`); `null` for a
    /// service built from `repo`.
    pub image: Option<String>,
    pub branch: String,
    pub dockerfile: String,
    pub context: String,
    /// `None` for a worker: a service that serves no HTTP and gets no route.
    pub port: Option<u16>,
}

impl From<&helvetia_core::service::ServiceSettings> for ServiceSettings {
    fn from(settings: &helvetia_core::service::ServiceSettings) -> Self {
        ServiceSettings {
            repo: settings.repo().map(ToString::to_string),
            image: settings.image().map(ToString::to_string),
            branch: settings.branch.to_string(),
            dockerfile: settings.dockerfile.to_string(),
            context: settings.context.to_string(),
            port: settings.port.map(u16::from),
        }
    }
}

/// A service as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceView {
    pub id: i64,
    pub project: String,
    pub name: String,
    #[serde(flatten)]
    pub settings: ServiceSettings,
    /// Health check, deploy timeouts and resource limits.
    pub runtime: RuntimeSettings,
    /// Where the service is reachable once deployed.
    pub url: String,
    /// The GitHub repository it was created from, whose App installation's tokens clone it;
    /// `null` otherwise (changing `repo` ends the link).
    pub github: Option<ServiceGitHub>,
    /// The user its image is pulled as, when its registry wants a login (the password is
    /// never shown).
    pub registry_user: Option<String>,
    /// What runs now (only in single-service responses).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ServiceStatus>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// A service's running state.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceStatus {
    /// The deployment serving traffic now.
    pub live_deployment: Option<Deployment>,
    /// The worst health among the serving containers; `None` when nothing serves.
    pub health: Option<Health>,
    /// The containers serving traffic.
    pub containers: Vec<ContainerRecord>,
    /// The most recent events (health changes, restarts, OOM kills), newest first.
    pub events: Vec<ServiceEvent>,
    /// The environment changed since the live deployment started; the next deploy applies
    /// it (set when `auto_redeploy` is off).
    pub env_pending: bool,
    /// Its custom domains, the primary first: how each was verified (or what its last check
    /// found) and its certificate's state.
    pub domains: Vec<helvetia_core::domain::Domain>,
}

/// A service after a change, with the redeployment that applies it, if one was needed.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UpdatedService {
    #[serde(flatten)]
    pub service: ServiceView,
    /// Started when the change needs new containers (port, limits) and the service is live.
    pub redeployment: Option<Deployment>,
}

/// What a service's repository would be built with (`GET …/services/{service}/detect`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DetectedStack {
    /// The repository's own Dockerfile, when it has one (then nothing is generated).
    pub dockerfile_path: Option<String>,
    /// The stack detected, when the repository has no Dockerfile.
    #[schema(value_type = Option<helvetia_core::stack::StackKind>)]
    pub stack: Option<helvetia_core::stack::StackKind>,
    /// What the detection found: marker files, lockfiles, the start command's source.
    pub found: Vec<String>,
    /// The Dockerfile Helvetia generates; commit it as `Dockerfile` to own it.
    pub dockerfile: Option<String>,
    /// Why nothing could be generated: what was looked for.
    pub problem: Option<String>,
}
