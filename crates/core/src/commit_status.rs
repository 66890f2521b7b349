//! What a deployment tells GitHub about the commit it deploys: a commit status per service,
//! pending while the deployment runs, then success once live, failure when it failed, error
//! when it never got to run (cancelled, or superseded by a newer deployment).

use crate::deployment::DeploymentStatus;

/// What every context Helvetia sets starts with.
pub const CONTEXT_PREFIX: &str = "helvetia/";

/// GitHub's description field holds at most this many characters.
const DESCRIPTION_LIMIT: usize = 140;

/// A commit status's `state`, as GitHub names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CommitState {
    Pending,
    Success,
    Failure,
    Error,
}

/// A commit status as GitHub takes it (`POST /repos/{owner}/{repo}/statuses/{sha}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommitStatus {
    pub state: CommitState,
    pub description: String,
    /// One per service: `helvetia/<project>/<service>`, so services deploying the same
    /// repository each keep their own status.
    pub context: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_url: Option<String>,
}

impl CommitStatus {
    /// The status of a commit whose deployment `id` of `project/service` is at `status`
    /// (`reason`: why it is there); `None` for a deployment retired after it was live, whose
    /// success stands. `live_url` is where the service answers once it is live.
    pub fn of_deployment(
        (project, service): (&str, &str),
        id: i64,
        status: DeploymentStatus,
        reason: &str,
        live_url: &str,
    ) -> Option<CommitStatus> {
        use DeploymentStatus::*;
        let (state, description) = match status {
            Queued | Cloning | Building | Starting | HealthChecking => {
                (CommitState::Pending, format!("Deployment #{id}: {status}"))
            }
            Live => (CommitState::Success, format!("Deployment #{id} is live")),
            Failed => (
                CommitState::Failure,
                format!("Deployment #{id} failed: {reason}"),
            ),
            Cancelled | Superseded => (CommitState::Error, format!("Deployment #{id} {status}")),
            Retired => return None,
        };
        Some(CommitStatus {
            state,
            description: shortened(&description),
            context: format!("{CONTEXT_PREFIX}{project}/{service}"),
            target_url: (status == Live).then(|| live_url.to_owned()),
        })
    }
}

/// `text` cut to GitHub's limit at a character boundary, marked with `…` when cut.
fn shortened(text: &str) -> String {
    if text.chars().count() <= DESCRIPTION_LIMIT {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(DESCRIPTION_LIMIT - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(status: DeploymentStatus, reason: &str) -> Option<CommitStatus> {
        CommitStatus::of_deployment(
            ("shop", "web"),
            7,
            status,
            reason,
            "http://web.shop.example",
        )
    }

    #[test]
    fn each_deployment_status_maps_to_one_commit_state() {
        use DeploymentStatus::*;
        for status in DeploymentStatus::ALL {
            let expected = match status {
                Queued | Cloning | Building | Starting | HealthChecking => {
                    Some(CommitState::Pending)
                }
                Live => Some(CommitState::Success),
                Failed => Some(CommitState::Failure),
                Cancelled | Superseded => Some(CommitState::Error),
                Retired => None,
            };
            assert_eq!(of(status, "").map(|s| s.state), expected, "{status}");
        }
        let live = of(Live, "").unwrap();
        assert_eq!(live.context, "helvetia/shop/web");
        assert_eq!(live.target_url.as_deref(), Some("http://web.shop.example"));
        assert_eq!(of(Building, "").unwrap().target_url, None);
    }

    #[test]
    fn a_long_reason_is_cut_to_githubs_limit() {
        let failed = of(DeploymentStatus::Failed, &"é".repeat(300)).unwrap();
        assert_eq!(failed.description.chars().count(), DESCRIPTION_LIMIT);
        assert!(failed.description.ends_with('…'));
        assert!(failed.description.starts_with("Deployment #7 failed: é"));
        let json = serde_json::to_value(&failed).unwrap();
        assert_eq!(json["state"], "failure");
        assert!(json.get("target_url").is_none());
    }
}
