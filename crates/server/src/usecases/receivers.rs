//! Receiving webhook deliveries (public: a delivery proves itself by its signature).
//!
//! A service's own receiver (`/api/v1/hooks/{hook}/{source}`) and the GitHub App's
//! (`/api/v1/github/webhook`) both: check the body's size, then the signature over the raw
//! body, before reading anything else; then, per service the delivery reaches, decide with
//! the core's rules what the push does and do it — requesting the deployment as the API
//! does, with an [`Actor`] that stands for the hook and may only deploy. Every delivery lands
//! in the delivery log with what it did. The answer does not wait for the build (it is
//! queued), nor for a diff when watch paths need one (the delivery is `waiting` meanwhile).

use std::time::Duration;

use helvetia_api_types::{HookReceipt, HookResult};
use helvetia_core::auth::{Actor, TeamId};
use helvetia_core::git::CommitSha;
use helvetia_core::service::Service;
use helvetia_core::webhook::{
    self, Decision, Event, Outcome, PushEvent, PushSettings, Source, Verdict, signature,
};
use helvetia_store::hooks::NewDelivery;
use jiff::Timestamp;

use super::{App, Refusal, Result, UseCaseError, deployments, hooks};

/// The largest delivery a receiver reads. GitHub's own limit is 25 MB, but a push payload
/// lists at most 2048 commits: a few MiB at most.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// How long a diff of `before..after` may take before the push deploys anyway.
const DIFF_TIMEOUT: Duration = Duration::from_secs(120);

/// A delivery's body, or the fact that it was over [`MAX_BODY_BYTES`] (and not read).
pub enum Body<'a> {
    Read(&'a [u8]),
    TooLarge,
}

/// What a delivery is, before any service is concerned: for the log and the decisions.
#[derive(Clone)]
struct Received {
    source: Source,
    event: Event,
    delivery_id: Option<String>,
}

impl Received {
    fn read<'a>(source: Source, header: impl Fn(&str) -> Option<&'a str> + Copy) -> Received {
        Received {
            source,
            event: source.event(header),
            delivery_id: source.delivery_id(header),
        }
    }

    /// A log entry for `service_id` with `signature`; the rest filled by the caller.
    fn entry(&self, service_id: Option<i64>, signature: Verdict) -> NewDelivery {
        NewDelivery {
            service_id,
            source: Some(self.source),
            event: self.event.name().to_owned(),
            delivery_id: self.delivery_id.clone(),
            signature: Some(signature),
            ..NewDelivery::default()
        }
    }

    /// Records a delivery refused before it reached `service_id`'s rules.
    async fn refuse(
        &self,
        app: &App,
        service_id: Option<i64>,
        verdict: Verdict,
        reason: &str,
    ) -> Result<()> {
        let mut entry = self.entry(service_id, verdict);
        entry.outcome = Some(Outcome::Refused);
        entry.reason = reason.to_owned();
        app.store.record_delivery(&entry).await?;
        Ok(())
    }
}

/// A service a delivery reached, with what deciding and deploying need.
struct Target {
    service: Service,
    team: TeamId,
    settings: PushSettings,
}

/// A delivery to a service's own receiver.
pub async fn receive_service_hook<'a>(
    app: &App,
    hook_id: &str,
    source: Source,
    header: impl Fn(&str) -> Option<&'a str> + Copy,
    body: Body<'_>,
) -> Result<HookReceipt> {
    let not_found = || UseCaseError::NotFound("webhook receiver".into());
    if source == Source::Github {
        // GitHub delivers to the App's receiver, signed with the App's secret.
        return Err(not_found());
    }
    let (hook, service, team) = app
        .store
        .hook_target(hook_id)
        .await?
        .ok_or_else(not_found)?;
    let sealed = hook.sealed_secret.ok_or_else(not_found)?;
    let received = Received::read(source, header);
    let Body::Read(body) = body else {
        let verdict = Verdict::Unchecked;
        received
            .refuse(
                app,
                Some(service.id),
                verdict,
                verdict.refusal().unwrap_or_default(),
            )
            .await?;
        return Err(UseCaseError::TooLarge(MAX_BODY_BYTES));
    };
    let secret = app
        .platform
        .vault
        .open(&hooks::binding(service.id), &sealed)
        .map_err(|error| UseCaseError::Internal(format!("a hook secret does not open: {error}")))?;
    let verdict = signature::verify(source, secret.as_bytes(), header, body, Timestamp::now());
    if let Some(refusal) = verdict.refusal() {
        received
            .refuse(app, Some(service.id), verdict, refusal)
            .await?;
        return Err(UseCaseError::Unauthenticated(Refusal::Signature));
    }
    let target = Target {
        service,
        team,
        settings: hook.settings,
    };
    let push = match received.event {
        Event::Push => match source.parse_push(body) {
            Ok(push) => Some(push),
            Err(error) => {
                let reason = error.to_string();
                received
                    .refuse(app, Some(target.service.id), verdict, &reason)
                    .await?;
                return Err(UseCaseError::Refused(reason));
            }
        },
        Event::Ping | Event::Other(_) => None,
    };
    let result = act(app, &received, push.as_ref(), target).await?;
    Ok(HookReceipt {
        results: vec![result],
    })
}

/// What a verified delivery does to one service; recorded in its log.
async fn act(
    app: &App,
    received: &Received,
    push: Option<&PushEvent>,
    target: Target,
) -> Result<HookResult> {
    let mut entry = received.entry(Some(target.service.id), Verdict::Valid);
    let named = format!("{}/{}", target.service.project, target.service.name);
    let Some(push) = push else {
        entry.outcome = Some(Outcome::Ignored);
        entry.reason = match &received.event {
            Event::Ping => "ping: the hook reaches Helvetia".to_owned(),
            other => format!("`{}` events do not deploy", other.name()),
        };
        return record(app, entry, named).await;
    };
    entry.git_ref = Some(push.git_ref.clone());
    entry.commit = Some(push.after.clone());
    entry.pusher = push.pusher.clone();
    entry.message = push.message.clone();
    entry.compare_url = push.compare_url.clone();
    if let Some(id) = &received.delivery_id
        && let Some(earlier) = app
            .store
            .delivery_acted(target.service.id, received.source, id)
            .await?
    {
        entry.outcome = Some(Outcome::Duplicate);
        entry.deployment_id = earlier.deployment_id;
        entry.reason = match earlier.deployment_id {
            Some(deployment) => format!("delivery {id} already requested deployment #{deployment}"),
            None => format!("delivery {id} already requested a deployment"),
        };
        return record(app, entry, named).await;
    }
    let decision = match webhook::decide(
        push,
        target.service.settings.branch.as_str(),
        &target.settings,
    ) {
        Decision::Diff if push.before.is_empty() || webhook::push::is_zero(&push.before) => {
            // A new branch has no `before` to diff against: the changed files are unknown.
            webhook::decide_with_files(None, &target.settings.watch_paths)
        }
        decision => decision,
    };
    match decision {
        Decision::Ignore(reason) => {
            entry.outcome = Some(Outcome::Ignored);
            entry.reason = reason;
            record(app, entry, named).await
        }
        Decision::Deploy => deploy(app, entry, named, received.source, &target, push).await,
        Decision::Diff => {
            entry.outcome = Some(Outcome::Waiting);
            entry.reason = format!(
                "finding which files changed between {} and {} for the watch paths",
                short(&push.before),
                short(&push.after)
            );
            let id = app.store.record_delivery(&entry).await?;
            let result = result_of(&entry, named);
            let (app, push, source) = (app.clone(), push.clone(), received.source);
            // The diff fetches from the repository: it runs after the answer is sent.
            tokio::spawn(async move {
                if let Err(error) = diff_then_deploy(&app, id, source, &target, &push).await {
                    tracing::warn!(%error, delivery = id, "a push waiting for its diff failed");
                }
            });
            Ok(result)
        }
    }
}

/// The first 12 digits of a commit id, as the log shows it.
fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Requests the deployment of the push's `after` and records it — or its failure, which a
/// redelivery may retry.
async fn deploy(
    app: &App,
    mut entry: NewDelivery,
    named: String,
    source: Source,
    target: &Target,
    push: &PushEvent,
) -> Result<HookResult> {
    match request(app, source, target, push).await {
        Ok(deployment) => {
            entry.outcome = Some(Outcome::Deployed);
            entry.deployment_id = Some(deployment);
            entry.reason = deployed_reason(deployment, push);
            record(app, entry, named).await
        }
        Err(error) => {
            entry.outcome = Some(Outcome::Failed);
            entry.reason = format!("requesting the deployment failed: {error}");
            record(app, entry, named).await?;
            Err(error)
        }
    }
}

fn deployed_reason(deployment: i64, push: &PushEvent) -> String {
    match &push.pusher {
        Some(pusher) => format!(
            "deployed #{deployment}: {} pushed by {pusher}",
            short(&push.after)
        ),
        None => format!("deployed #{deployment}: {}", short(&push.after)),
    }
}

/// Requests the deployment of the push's `after` as the hook; the deployment's id.
async fn request(app: &App, source: Source, target: &Target, push: &PushEvent) -> Result<i64> {
    let commit = CommitSha::parse(&push.after)
        .map_err(|invalid| UseCaseError::Refused(format!("`after` {invalid}")))?;
    let label = match &push.pusher {
        Some(pusher) => format!("{source} push by {pusher}"),
        None => format!("{source} push"),
    };
    let actor = Actor::hook(target.team, label);
    let deployment = deployments::deploy_push(
        app,
        &actor,
        &target.service,
        commit,
        target.settings.cancel_running,
    )
    .await?;
    Ok(deployment.id)
}

/// Records `entry` in the log; what the sender is told about it.
async fn record(app: &App, entry: NewDelivery, named: String) -> Result<HookResult> {
    app.store.record_delivery(&entry).await?;
    Ok(result_of(&entry, named))
}

fn result_of(entry: &NewDelivery, service: String) -> HookResult {
    HookResult {
        service,
        outcome: entry.outcome.unwrap_or(Outcome::Failed),
        reason: entry.reason.clone(),
        deployment_id: entry.deployment_id,
    }
}

/// Settles a `waiting` delivery: diffs `before..after` (bounded by [`DIFF_TIMEOUT`]), then
/// deploys or ignores the push as the watch paths say — deploys when the diff failed.
async fn diff_then_deploy(
    app: &App,
    delivery: i64,
    source: Source,
    target: &Target,
    push: &PushEvent,
) -> Result<()> {
    let files = tokio::time::timeout(DIFF_TIMEOUT, changed_files(app, &target.service, push))
        .await
        .unwrap_or_else(|_| Err("the diff took too long".to_owned()));
    let files = match files {
        Ok(files) => Some(files),
        Err(why) => {
            tracing::info!(
                delivery,
                why,
                "the changed files of a push are unknown: deploying"
            );
            None
        }
    };
    match webhook::decide_with_files(files.as_deref(), &target.settings.watch_paths) {
        Decision::Ignore(reason) => {
            app.store
                .settle_delivery(delivery, Outcome::Ignored, &reason, None)
                .await?;
        }
        Decision::Deploy | Decision::Diff => match request(app, source, target, push).await {
            Ok(deployment) => {
                let reason = deployed_reason(deployment, push);
                app.store
                    .settle_delivery(delivery, Outcome::Deployed, &reason, Some(deployment))
                    .await?;
            }
            Err(error) => {
                let reason = format!("requesting the deployment failed: {error}");
                app.store
                    .settle_delivery(delivery, Outcome::Failed, &reason, None)
                    .await?;
            }
        },
    }
    Ok(())
}

/// The files `push` changed, from git itself: fetched through the outbound policy (with the
/// App installation's token for a linked service) into a temporary directory.
async fn changed_files(
    app: &App,
    service: &Service,
    push: &PushEvent,
) -> std::result::Result<Vec<String>, String> {
    let parse = |sha: &str| CommitSha::parse(sha).map_err(|invalid| invalid.to_string());
    let (before, after) = (parse(&push.before)?, parse(&push.after)?);
    let git = match app.platform.clone_installation(service) {
        Some(installation) => {
            let token = app
                .platform
                .installation_token(installation)
                .await
                .map_err(|error| error.to_string())?;
            app.platform.git.with_installation_token(&token.token)
        }
        None => app.platform.git.clone(),
    };
    let dir = tempfile::tempdir().map_err(|error| error.to_string())?;
    git.changed_files(&service.settings.repo, &before, &after, dir.path())
        .await
        .map_err(|error| error.to_string())
}
