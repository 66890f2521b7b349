//! Pull-request events from the GitHub App: each service linked to the repository, with
//! previews enabled, gets its pull request's preview made, deployed, held for approval or
//! removed, as the core's [`PullRequestEvent::decide`] says.
//!
//! A fork's code never runs unapproved: its preview waits until someone with deploy rights on
//! the service approves that head commit — through the API, or by applying the approval label
//! as a GitHub user linked to such a Helvetia user. A label from anyone else does nothing, and
//! a new push needs a new approval.

use helvetia_core::auth::{Actor, Scope};
use helvetia_core::preview::{CommentState, PreviewAction, PreviewLabel, PullRequestEvent};
use helvetia_core::service::Service;
use helvetia_core::webhook::Outcome;
use helvetia_store::previews::PreviewHead;

use super::deployments::deploy_commit;
use super::previews::{approve_and_deploy, take_apart, upsert};
use super::{App, Result, UseCaseError};

/// What a pull-request event did to one service's previews, for the delivery log.
pub struct Handled {
    pub service: Service,
    pub outcome: Outcome,
    pub reason: String,
    pub deployment_id: Option<i64>,
}

/// Reads a `pull_request` delivery and acts on every linked service with previews enabled.
pub async fn received(app: &App, body: &[u8]) -> Result<(PullRequestEvent, Vec<Handled>)> {
    let event = PullRequestEvent::parse(body).map_err(|e| UseCaseError::Refused(e.to_string()))?;
    let mut handled = vec![];
    for parent in app
        .store
        .services_linked_to_repository(event.repository_id)
        .await?
    {
        let settings = app.store.preview_settings(parent.id).await?;
        if !settings.enabled {
            continue;
        }
        let (outcome, reason, deployment_id) = match act(app, &event, &parent, &settings).await {
            Ok(done) => done,
            Err(error) => (Outcome::Failed, error.to_string(), None),
        };
        handled.push(Handled {
            service: parent,
            outcome,
            reason,
            deployment_id,
        });
    }
    Ok((event, handled))
}

async fn act(
    app: &App,
    event: &PullRequestEvent,
    parent: &Service,
    settings: &helvetia_core::preview::PreviewSettings,
) -> Result<(Outcome, String, Option<i64>)> {
    let number = event.number;
    let team = app.store.service_team(parent).await?;
    let actor = Actor::hook(team, format!("github pull request #{number}"));
    let label = PreviewLabel::pull_request(number);
    let existing = app
        .store
        .preview_named(parent.id, &label.service_name(&parent.name))
        .await?;
    let approved = existing.as_ref().and_then(|p| p.approved_sha.as_deref());
    let head = PreviewHead {
        pull_request: Some(number),
        title: &event.title,
        branch: &event.head_ref,
        head_sha: Some(event.head_sha.as_str()),
        fork: event.fork,
    };
    let sha = event.head_sha.as_str();
    let short = &sha[..7];
    match event.decide(settings, approved) {
        PreviewAction::Remove => match existing {
            Some(preview) => {
                let state = CommentState::Removed;
                if let Err(error) = app
                    .platform
                    .comment_on_preview(&preview.service, sha, state)
                    .await
                {
                    tracing::warn!(%error, preview = %preview.service.name, "commenting on a pull request failed");
                }
                take_apart(app, &actor, &preview.service).await?;
                let why = format!("pull request #{number} {}: preview removed", event.action);
                Ok((Outcome::Ignored, why, None))
            }
            None => Ok((Outcome::Ignored, "no preview to remove".into(), None)),
        },
        PreviewAction::Deploy => {
            let preview = upsert(app, &actor, parent, settings, &label, &head).await?;
            let deployment =
                deploy_commit(app, &actor, &preview, Some(event.head_sha.clone()), true).await?;
            let why = format!("preview {} deploying {short} (#{})", label, deployment.id);
            Ok((Outcome::Deployed, why, Some(deployment.id)))
        }
        PreviewAction::AwaitApproval => {
            let preview = upsert(app, &actor, parent, settings, &label, &head).await?;
            let state = CommentState::AwaitingApproval {
                label: &settings.approve_label,
            };
            if let Err(error) = app.platform.comment_on_preview(&preview, sha, state).await {
                tracing::warn!(%error, preview = %preview.name, "commenting on a pull request failed");
            }
            let why = format!("a fork's commit {short}: preview {label} waits for an approval");
            Ok((Outcome::Waiting, why, None))
        }
        PreviewAction::ApproveIfDeployer => {
            let (github_id, login) = &event.sender;
            let Some(approver) = deployer(app, parent, *github_id, login).await? else {
                let why = format!(
                    "label `{}` by GitHub user {login}, who is not linked to a Helvetia user \
                     allowed to deploy `{}`: nothing approved",
                    settings.approve_label, parent.name
                );
                return Ok((Outcome::Ignored, why, None));
            };
            let preview = upsert(app, &approver, parent, settings, &label, &head).await?;
            let by = approver.label.clone();
            let deployment = approve_and_deploy(app, &approver, &preview, sha, &by).await?;
            let why = format!(
                "{short} approved by {login} (label `{}`): preview {label} deploying (#{})",
                settings.approve_label, deployment.id
            );
            Ok((Outcome::Deployed, why, Some(deployment.id)))
        }
        PreviewAction::Ignore(why) => Ok((Outcome::Ignored, why.into(), None)),
    }
}

/// The Helvetia user linked to GitHub user `github_id`, acting in `parent`'s team, if they are
/// enabled and their role there allows deploying.
async fn deployer(
    app: &App,
    parent: &Service,
    github_id: i64,
    login: &str,
) -> Result<Option<Actor>> {
    let Some(user) = app.store.user_by_github_id(github_id).await? else {
        return Ok(None);
    };
    if user.disabled {
        return Ok(None);
    }
    let team = app.store.service_team(parent).await?;
    let Some(role) = app.store.memberships(user.id).await?.get(&team).copied() else {
        return Ok(None);
    };
    if !role.allows(Scope::Deploy) {
        return Ok(None);
    }
    let mut actor = Actor::hook(
        team,
        format!(
            "user:{}({}) via GitHub label by {login}",
            user.id.0, user.email
        ),
    );
    actor.user = Some(user.id);
    Ok(Some(actor))
}
