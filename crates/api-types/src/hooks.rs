//! Deploys on push: a service's settings for them, its own webhook receiver (whose secret is
//! shown once, when made or replaced), the delivery log, and what a receiver answers a sender.

use helvetia_core::webhook::Outcome;
use serde::{Deserialize, Serialize};

/// A service's deploy-on-push settings and receiver, without its secret.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HookView {
    /// Pushes to the tracked branch deploy.
    pub auto_deploy: bool,
    /// Globs over repository paths: a push deploys only when a changed file matches one
    /// (empty: every push).
    pub watch_paths: Vec<String>,
    /// A push cancels a running build of an older commit.
    pub cancel_running: bool,
    /// A pushed commit deploys only once its CI checks (GitHub's check runs and commit
    /// statuses) have passed; one whose checks fail, or do not finish within an hour, does
    /// not deploy. Only for a service created from a GitHub repository.
    pub wait_for_ci: bool,
    /// The service's own receiver, `…/api/v1/hooks/<hook id>`: senders post to it with
    /// `/gitea`, `/forgejo`, `/gitlab` or `/generic` appended. `null` until a secret is made.
    pub receiver_url: Option<String>,
}

/// Changes to the deploy-on-push settings; absent fields stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateHook {
    pub auto_deploy: Option<bool>,
    /// At most 50 globs of at most 200 characters: `*` and `?` within a directory, `**`
    /// across directories, a trailing `/` for everything under a directory.
    #[schema(max_items = 50)]
    pub watch_paths: Option<Vec<String>>,
    pub cancel_running: Option<bool>,
    pub wait_for_ci: Option<bool>,
}

/// A new receiver secret: shown this once, never again.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HookSecret {
    /// Where senders post, with their source appended (`/gitea`, `/forgejo`, `/gitlab`,
    /// `/generic`). The previous URL and secret no longer work.
    pub receiver_url: String,
    /// The secret to give the sender (GitLab's "secret token", Gitea's and Forgejo's
    /// "secret", the generic scheme's HMAC key).
    pub secret: String,
}

impl std::fmt::Debug for HookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookSecret")
            .field("receiver_url", &self.receiver_url)
            .finish_non_exhaustive()
    }
}

/// What a receiver did with a delivery, per service it reached.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HookReceipt {
    pub results: Vec<HookResult>,
}

/// What a delivery did to one service.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HookResult {
    /// `project/service`.
    pub service: String,
    pub outcome: Outcome,
    pub reason: String,
    /// The deployment requested; absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<i64>,
}
