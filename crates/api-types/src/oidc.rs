//! Bodies of deploys from CI without a stored secret: a service's trusts in OpenID Connect
//! issuers (`…/trusts`), and the deploy a CI job asks for with its token (`/api/v1/oidc/deploy`).

use serde::{Deserialize, Serialize};

/// A trust to add: tokens of `issuer` whose claims carry this repository and ref (and
/// environment, if given) may deploy the service.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTrust {
    /// The issuer's URL: `https://` (plain `http://` only on the loopback interface); the
    /// server's outbound policy decides which hosts it may reach. Default: GitHub Actions'
    /// `https://token.actions.githubusercontent.com`.
    #[schema(max_length = 512, pattern = r"^https?://[^\s\x00-\x1f\x7f-\x9f]+$")]
    pub issuer: Option<String>,
    /// The `repository` claim tokens must carry: `owner/name` (GitLab: `group/project`).
    /// Default: the GitHub repository the service is linked to. A trust of GitHub Actions'
    /// issuer for that repository also binds its id (`repository_id`), so a repository made
    /// again under the same name does not match.
    #[schema(
        max_length = 255,
        pattern = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)+$"
    )]
    pub repository: Option<String>,
    /// The `ref` claim tokens must carry, in full (`refs/heads/main`); a trailing `*` matches
    /// every ref that starts with what comes before (`refs/tags/v*`).
    #[serde(rename = "ref")]
    #[schema(max_length = 255, pattern = r"^refs/[A-Za-z0-9._/+@-]*\*?$")]
    pub git_ref: String,
    /// The `environment` claim tokens must carry (a GitHub deployment environment, whose
    /// protection rules then apply). Default: any or none.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
    )]
    pub environment: Option<String>,
}

/// What a CI job deploys: the service its token's trust belongs to. The commit is the token's
/// (`sha` claim), on the branch its `ref` names (or the service's branch).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcDeploy {
    #[schema(value_type = helvetia_core::name::ProjectName)]
    pub project: String,
    #[schema(value_type = helvetia_core::name::ServiceName)]
    pub service: String,
}
