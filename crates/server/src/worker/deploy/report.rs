//! Commit statuses on GitHub: a build of a service created from a GitHub repository reports
//! its state on the commit it deploys — pending once the commit is known, then success,
//! failure or error — through the App installation's token; a pull request's preview shows
//! it in the pull request's one comment too. GitHub not taking a status is
//! written to the deployment's log and changes nothing else: a deploy never fails for it.

use std::time::Duration;

use helvetia_core::commit_status::CommitStatus;
use helvetia_core::deployment::{Deployment, DeploymentKind};
use helvetia_core::git::CommitSha;
use helvetia_core::preview::CommentState;
use helvetia_core::service::Service;

use crate::logs::DeployLog;
use crate::platform::Platform;

/// How long a deploy waits for GitHub to take a status.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

/// Sets the commit status of deployment `id` as it ended (read again: the job's last
/// transition may have been recorded elsewhere), for a service created from a GitHub
/// repository only — no other deployment reads the store once more.
pub(super) async fn final_commit_status(
    platform: &Platform,
    service: &Service,
    id: i64,
    log: &DeployLog,
) {
    if service.github.is_none() {
        return;
    }
    match platform.store.deployment_by_id(id).await {
        Ok(ended) => commit_status(platform, service, &ended, None, log).await,
        Err(error) => tracing::warn!(deployment = id, %error, "reading the deployment failed"),
    }
}

/// Sets the commit status of `deployment` as it stands, at `sha` (default: the commit it
/// fetched, else the full commit it asked for).
pub(super) async fn commit_status(
    platform: &Platform,
    service: &Service,
    deployment: &Deployment,
    sha: Option<&str>,
    log: &DeployLog,
) {
    let Some(link) = &service.github else {
        return;
    };
    if deployment.kind != DeploymentKind::Build {
        // Restarts, scaling and settings changes run an image already reported on.
        return;
    }
    let Some(sha) = sha
        .or(deployment.commit_sha.as_deref())
        .or(deployment.requested_commit.as_deref())
        .filter(|sha| CommitSha::parse(sha).is_ok_and(|sha| sha.is_full()))
    else {
        return;
    };
    let (project, name) = (service.project.as_str(), service.name.as_str());
    let reason = log.redact(deployment.status_reason.as_deref().unwrap_or_default());
    if let Some(state) = CommentState::of_deployment(deployment.status, &reason) {
        let comment = platform.comment_on_preview(service, sha, state);
        match tokio::time::timeout(STATUS_TIMEOUT, comment).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => log.line(format!(
                "GitHub did not take the preview's comment: {error}"
            )),
            Err(_) => log.line(format!(
                "GitHub did not answer within {}s: the preview's comment is not updated",
                STATUS_TIMEOUT.as_secs()
            )),
        }
    }
    let address = platform.service_address(service).await;
    let Some(status) = CommitStatus::of_deployment(
        (project, name),
        deployment.id,
        deployment.status,
        &reason,
        &address,
    ) else {
        return;
    };
    let set = platform.set_commit_status(link, sha, &status);
    match tokio::time::timeout(STATUS_TIMEOUT, set).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => log.line(format!(
            "GitHub did not take the commit status ({}): {error}",
            status.description
        )),
        Err(_) => log.line(format!(
            "GitHub did not answer within {}s: the commit status is not set",
            STATUS_TIMEOUT.as_secs()
        )),
    }
}
