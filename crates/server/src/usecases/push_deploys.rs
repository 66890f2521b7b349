//! A push that should deploy: its deployment requested at once — as the hook, which may only
//! deploy — or, for a service that waits for CI, once its commit's checks have passed.
//!
//! A push waiting for its checks is a `waiting` delivery with a deadline. GitHub's
//! `check_suite` and `status` events about its commit (to the App's receiver) ask again; the
//! first that finds every check passed deploys it, one that finds a failure settles it as not
//! deployed, with the reason; the deadline settles the rest (the hourly retention task).

use helvetia_core::auth::{Actor, TeamId};
use helvetia_core::checks::Verdict;
use helvetia_core::git::CommitSha;
use helvetia_core::service::Service;
use helvetia_core::webhook::{Outcome, PushSettings, Source};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use super::{App, Result, UseCaseError, deployments};

/// How long a push waits for its commit's checks.
pub const CHECKS_TIMEOUT: SignedDuration = SignedDuration::from_hours(1);

/// A service a delivery reached, with what deciding and deploying need.
pub(super) struct Target {
    pub service: Service,
    pub team: TeamId,
    pub settings: PushSettings,
}

/// The commit a push deploys and who pushed it.
#[derive(Clone, Copy)]
pub(super) struct Pushed<'a> {
    pub source: Source,
    pub after: &'a str,
    pub pusher: Option<&'a str>,
}

/// What became of a push that should deploy.
pub(super) enum Settled {
    /// Its deployment is requested.
    Deployed { deployment: i64, reason: String },
    /// It waits for its commit's checks: which.
    Waiting(String),
    /// It will not deploy: why.
    NotDeployed(String),
}

impl Settled {
    pub fn outcome(&self) -> Outcome {
        match self {
            Settled::Deployed { .. } => Outcome::Deployed,
            Settled::Waiting(_) => Outcome::Waiting,
            Settled::NotDeployed(_) => Outcome::Ignored,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Settled::Deployed { reason, .. } | Settled::Waiting(reason) => reason,
            Settled::NotDeployed(reason) => reason,
        }
    }

    pub fn deployment(&self) -> Option<i64> {
        match self {
            Settled::Deployed { deployment, .. } => Some(*deployment),
            Settled::Waiting(_) | Settled::NotDeployed(_) => None,
        }
    }
}

/// The first 12 digits of a commit id, as the log shows it.
pub(super) fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Whether a push to `target` may deploy now, as far as CI is concerned.
enum Gate {
    Open,
    Wait(String),
    Closed(String),
}

/// What `target`'s CI says about commit `after` (open when the service does not wait for it).
async fn gate(app: &App, target: &Target, after: &str) -> Gate {
    if !target.settings.wait_for_ci {
        return Gate::Open;
    }
    let Some(link) = &target.service.github else {
        return Gate::Closed(
            "not deployed: waiting for CI needs a service created from a GitHub repository".into(),
        );
    };
    match app.platform.commit_checks(link, after).await {
        Ok(Verdict::Passed) => Gate::Open,
        Ok(Verdict::Failed(why)) => Gate::Closed(format!("not deployed: {why}")),
        Ok(Verdict::Running(names)) => Gate::Wait(format!("waiting for checks: {names}")),
        Ok(Verdict::NothingReported) => Gate::Wait("waiting for checks: none reported yet".into()),
        Err(error) => Gate::Wait(format!(
            "waiting for checks: GitHub could not be asked ({error})"
        )),
    }
}

/// Deploys `pushed` to `target` now, or — waiting for CI — once its checks have passed.
pub(super) async fn deploy_or_wait(
    app: &App,
    target: &Target,
    pushed: Pushed<'_>,
) -> Result<Settled> {
    match gate(app, target, pushed.after).await {
        Gate::Open => request(app, target, pushed).await,
        Gate::Wait(why) => Ok(Settled::Waiting(why)),
        Gate::Closed(why) => Ok(Settled::NotDeployed(why)),
    }
}

/// Requests the deployment of `pushed` as the hook.
async fn request(app: &App, target: &Target, pushed: Pushed<'_>) -> Result<Settled> {
    let commit = CommitSha::parse(pushed.after)
        .map_err(|invalid| UseCaseError::Refused(format!("`after` {invalid}")))?;
    let source = pushed.source;
    let label = match pushed.pusher {
        Some(pusher) => format!("{source} push by {pusher}"),
        None => format!("{source} push"),
    };
    let actor = Actor::hook(target.team, label);
    let deployment = deployments::deploy_commit(
        app,
        &actor,
        &target.service,
        Some(commit),
        target.settings.cancel_running,
    )
    .await?
    .id;
    let after = short(pushed.after);
    let reason = match pushed.pusher {
        Some(pusher) => format!("deployed #{deployment}: {after} pushed by {pusher}"),
        None => format!("deployed #{deployment}: {after}"),
    };
    Ok(Settled::Deployed { deployment, reason })
}

/// What a `check_suite` or `status` event names: the repository and the commit.
#[derive(Deserialize)]
struct ChecksEvent {
    repository: Repository,
    /// `status` events.
    sha: Option<String>,
    /// `check_suite` events.
    check_suite: Option<CheckSuite>,
}

#[derive(Deserialize)]
struct Repository {
    id: i64,
}

#[derive(Deserialize)]
struct CheckSuite {
    head_sha: String,
}

/// A `check_suite` or `status` event to the App's receiver: the pushes waiting for the
/// checks of its commit are decided again. What it did, for the delivery log.
pub(super) async fn checks_reported(app: &App, body: &[u8]) -> Result<String> {
    let event: ChecksEvent = serde_json::from_slice(body)
        .map_err(|error| UseCaseError::Refused(format!("the payload cannot be read: {error}")))?;
    let Some(sha) = event.sha.or(event.check_suite.map(|suite| suite.head_sha)) else {
        return Ok("the event names no commit".into());
    };
    let services = app
        .store
        .services_linked_to_repository(event.repository.id)
        .await?;
    let mut settings = app
        .store
        .push_settings_of_repository(event.repository.id)
        .await?;
    let now = Timestamp::now();
    let mut decided = 0;
    for service in services {
        let Some((team, settings)) = settings.remove(&service.id) else {
            continue;
        };
        let waiting = app.store.awaiting_checks(service.id, &sha, now).await?;
        if waiting.is_empty() {
            continue;
        }
        let target = Target {
            service,
            team,
            settings,
        };
        for push in waiting {
            let pushed = Pushed {
                source: push.source,
                after: &sha,
                pusher: push.pusher.as_deref(),
            };
            decided += usize::from(settle(app, &target, push.id, pushed).await?);
        }
    }
    Ok(format!(
        "checks of {} reported: {decided} waiting push(es) decided",
        short(&sha)
    ))
}

/// Decides waiting delivery `id` again; whether it is settled now. Another event about the
/// same commit may be deciding it too: the one that takes it acts.
async fn settle(app: &App, target: &Target, id: i64, pushed: Pushed<'_>) -> Result<bool> {
    let store = &app.store;
    match gate(app, target, pushed.after).await {
        Gate::Wait(why) => {
            store.still_waiting(id, &why).await?;
            Ok(false)
        }
        Gate::Closed(why) => Ok(store.take_waiting(id, Outcome::Ignored, &why).await?),
        Gate::Open => {
            let requesting = "checks passed: requesting the deployment";
            if !store
                .take_waiting(id, Outcome::Deployed, requesting)
                .await?
            {
                return Ok(false);
            }
            match request(app, target, pushed).await {
                Ok(settled) => {
                    let deployment = settled.deployment();
                    store
                        .settle_delivery(id, Outcome::Deployed, settled.reason(), deployment)
                        .await?;
                }
                Err(error) => {
                    let reason = format!("requesting the deployment failed: {error}");
                    store
                        .settle_delivery(id, Outcome::Failed, &reason, None)
                        .await?;
                }
            }
            Ok(true)
        }
    }
}
