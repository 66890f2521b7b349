//! Receiving webhook deliveries (public: a delivery proves itself by its signature).
//!
//! A service's own receiver (`/api/v1/hooks/{hook}/{source}`) and the GitHub App's
//! (`/api/v1/github/webhook`) both: check the body's size, then the signature over the raw
//! body, before reading anything else; then, per service the delivery reaches, decide with
//! the core's rules what the push does and do it — requesting the deployment as the API
//! does, with an [`Actor`] that stands for the hook and may only deploy. Every delivery lands
//! in the delivery log with what it did. The answer does not wait for the build (it is
//! queued), nor for a diff when watch paths need one (the delivery is `waiting` meanwhile).

use helvetia_store::sealed::GithubAppSecret;
use std::time::Duration;

use helvetia_api_types::{HookReceipt, HookResult};
use helvetia_core::git::CommitSha;
use helvetia_core::service::Service;
use helvetia_core::webhook::{
    self, Decision, Event, Outcome, PushEvent, PushSettings, Source, Verdict, signature,
};
use helvetia_store::deliveries::NewDelivery;
use jiff::Timestamp;

use super::push_deploys::{self, CHECKS_TIMEOUT, Pushed, Settled, Target, deploy_or_wait, short};
use super::{App, Refusal, Result, UseCaseError, pull_requests};

mod image;

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

    /// The body, once its size and then its signature with `secret` are checked; a refusal
    /// is logged for `service_id` and answered.
    async fn verify<'a, 'b>(
        &self,
        app: &App,
        service_id: Option<i64>,
        secret: &str,
        header: impl Fn(&str) -> Option<&'a str> + Copy,
        body: Body<'b>,
    ) -> Result<&'b [u8]> {
        let (verdict, body) = match body {
            Body::Read(body) => {
                let now = Timestamp::now();
                let verdict = signature::verify(self.source, secret.as_bytes(), header, body, now);
                (verdict, body)
            }
            Body::TooLarge => (Verdict::Unchecked, &[][..]),
        };
        let Some(refusal) = verdict.refusal() else {
            return Ok(body);
        };
        self.refuse(app, service_id, verdict, refusal).await?;
        Err(match verdict {
            Verdict::Unchecked => UseCaseError::TooLarge(MAX_BODY_BYTES),
            _ => UseCaseError::Unauthenticated(Refusal::Signature),
        })
    }

    /// `body` read as a push, or the refusal logged for `service_id` and answered.
    async fn push(&self, app: &App, service_id: Option<i64>, body: &[u8]) -> Result<PushEvent> {
        match self.source.parse_push(body) {
            Ok(push) => Ok(push),
            Err(error) => {
                let reason = error.to_string();
                self.refuse(app, service_id, Verdict::Valid, &reason)
                    .await?;
                Err(UseCaseError::Refused(reason))
            }
        }
    }
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
    let secret = app
        .platform
        .vault
        .open(&crate::vault::hook_binding(service.id), &sealed)
        .map_err(|error| UseCaseError::Internal(format!("a hook secret does not open: {error}")))?;
    let body = received
        .verify(app, Some(service.id), &secret, header, body)
        .await?;
    if let (Some(image), Event::Push) = (service.settings.image().cloned(), &received.event) {
        let target = Target {
            service,
            team,
            settings: hook.settings,
        };
        let acted = image::act(app, &received, &image, body, target).await?;
        return Ok(HookReceipt {
            results: vec![acted],
        });
    }
    let push = match received.event {
        Event::Push => Some(received.push(app, Some(service.id), body).await?),
        Event::Ping | Event::Other(_) => None,
    };
    let target = Target {
        service,
        team,
        settings: hook.settings,
    };
    let mut log = Vec::new();
    let acted = act(app, &received, push.as_ref(), target, &mut log).await;
    write_log(app, log).await?;
    Ok(HookReceipt {
        results: vec![acted?],
    })
}

/// A delivery to the GitHub App's receiver, signed with the App's webhook secret: `ping` is
/// answered, a push goes to every service linked to its repository (by GitHub's repository
/// id, which survives renames), each deciding for itself.
pub async fn receive_github<'a>(
    app: &App,
    header: impl Fn(&str) -> Option<&'a str> + Copy,
    body: Body<'_>,
) -> Result<HookReceipt> {
    let received = Received::read(Source::Github, header);
    let Some(stored) = app.store.github_app().await? else {
        let reason = "no GitHub App is configured";
        received.refuse(app, None, Verdict::Missing, reason).await?;
        return Err(UseCaseError::NotFound("GitHub App".into()));
    };
    let secret = crate::github::open(
        &app.platform.vault,
        GithubAppSecret::WebhookSecret,
        &stored.sealed_webhook_secret,
    )
    .map_err(|error| UseCaseError::Internal(format!("the App's webhook secret: {error}")))?;
    let body = received.verify(app, None, &secret, header, body).await?;
    let ignore = |reason: String| async {
        let mut entry = received.entry(None, Verdict::Valid);
        entry.outcome = Some(Outcome::Ignored);
        entry.reason = reason;
        app.store.record_delivery(&entry).await?;
        Ok(HookReceipt { results: vec![] })
    };
    let push = match &received.event {
        Event::Ping => return ignore("ping: the App's webhook reaches Helvetia".into()).await,
        Event::Other(name) if name == "check_suite" || name == "status" => {
            return ignore(push_deploys::checks_reported(app, body).await?).await;
        }
        Event::Other(name) if name == "pull_request" => {
            return pull_request(app, &received, body).await;
        }
        Event::Other(name) => return ignore(format!("`{name}` events do not deploy")).await,
        Event::Push => received.push(app, None, body).await?,
    };
    let Some(repository) = push.repository_id else {
        let reason = "the push names no repository";
        received.refuse(app, None, Verdict::Valid, reason).await?;
        return Err(UseCaseError::Refused(reason.into()));
    };
    let services = app.store.services_linked_to_repository(repository).await?;
    if services.is_empty() {
        return ignore(format!("no service is linked to repository {repository}")).await;
    }
    let mut settings = app.store.push_settings_of_repository(repository).await?;
    let mut results = Vec::with_capacity(services.len());
    let mut log = Vec::with_capacity(services.len());
    let mut failure = None;
    for service in services {
        // A service linked since the settings were read has the defaults: it was just made.
        let (team, settings) = match settings.remove(&service.id) {
            Some(found) => found,
            None => (
                app.store.service_team(&service).await?,
                PushSettings::default(),
            ),
        };
        let target = Target {
            team,
            settings,
            service,
        };
        // One service's failure (logged as `failed`) does not keep the others from their push.
        match act(app, &received, Some(&push), target, &mut log).await {
            Ok(result) => results.push(result),
            Err(error) => failure = Some(error),
        }
    }
    write_log(app, log).await?;
    match failure {
        // GitHub shows the delivery failed, so it can be redelivered: the services it reached
        // see a duplicate then, the others try again.
        Some(error) => Err(error),
        None => Ok(HookReceipt { results }),
    }
}

/// A verified `pull_request` delivery: each linked service's previews act on it, logged per
/// service (once, as ignored, when none has previews enabled).
async fn pull_request(app: &App, received: &Received, body: &[u8]) -> Result<HookReceipt> {
    let (event, handled) = match pull_requests::received(app, body).await {
        Ok(done) => done,
        Err(error) => {
            received
                .refuse(app, None, Verdict::Valid, &error.to_string())
                .await?;
            return Err(error);
        }
    };
    let mut log = Vec::with_capacity(handled.len().max(1));
    let mut results = Vec::with_capacity(handled.len());
    for done in handled {
        let mut entry = received.entry(Some(done.service.id), Verdict::Valid);
        entry.outcome = Some(done.outcome);
        entry.reason = done.reason;
        entry.deployment_id = done.deployment_id;
        entry.git_ref = Some(event.head_ref.clone());
        entry.commit = Some(event.head_sha.to_string());
        entry.pusher = Some(event.sender.1.clone());
        entry.message = Some(event.title.clone());
        let named = format!("{}/{}", done.service.project, done.service.name);
        results.push(defer(&mut log, entry, named));
    }
    if log.is_empty() {
        let mut entry = received.entry(None, Verdict::Valid);
        entry.outcome = Some(Outcome::Ignored);
        entry.reason = format!(
            "pull request #{}: no service of repository {} has previews enabled",
            event.number, event.repository_id
        );
        log.push(entry);
    }
    write_log(app, log).await?;
    Ok(HookReceipt { results })
}

/// What a verified delivery does to one service. What is only logged (ignored, duplicate) goes
/// to `log`, which the caller writes at once for every service; a delivery that requested a
/// deployment (or tried to) is written here, before the next copy of it is checked.
async fn act(
    app: &App,
    received: &Received,
    push: Option<&PushEvent>,
    target: Target,
    log: &mut Vec<NewDelivery>,
) -> Result<HookResult> {
    let mut entry = received.entry(Some(target.service.id), Verdict::Valid);
    let named = format!("{}/{}", target.service.project, target.service.name);
    let Some(push) = push else {
        entry.outcome = Some(Outcome::Ignored);
        entry.reason = match &received.event {
            Event::Ping => "ping: the hook reaches Helvetia".to_owned(),
            Event::Other(name) if name.is_empty() => "the delivery names no event".to_owned(),
            other => format!("`{}` events do not deploy", other.name()),
        };
        return Ok(defer(log, entry, named));
    };
    entry.git_ref = Some(push.git_ref.clone());
    entry.commit = Some(push.after.clone());
    entry.pusher = push.pusher.clone();
    entry.message = push.message.clone();
    entry.compare_url = push.compare_url.clone();
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
    // Only a delivery that would deploy can be a duplicate of one that did; its check and its
    // log row are one step for concurrent copies of it.
    let _acting = match &decision {
        Decision::Ignore(_) => None,
        Decision::Deploy | Decision::Diff => Some(app.delivery_log.acting().await),
    };
    let earlier = match (&decision, &received.delivery_id) {
        (Decision::Deploy | Decision::Diff, Some(id)) => app
            .store
            .delivery_acted(target.service.id, received.source, id)
            .await?
            .map(|earlier| (id, earlier)),
        (Decision::Ignore(_), _) | (_, None) => None,
    };
    if let Some((id, earlier)) = earlier {
        entry.outcome = Some(Outcome::Duplicate);
        entry.deployment_id = earlier.deployment_id;
        entry.reason = match earlier.deployment_id {
            Some(deployment) => format!("delivery {id} already requested deployment #{deployment}"),
            None => format!("delivery {id} already requested a deployment"),
        };
        return Ok(defer(log, entry, named));
    }
    match decision {
        Decision::Ignore(reason) => {
            entry.outcome = Some(Outcome::Ignored);
            entry.reason = reason;
            Ok(defer(log, entry, named))
        }
        Decision::Deploy => match deploy_or_wait(app, &target, pushed(received.source, push)).await
        {
            Ok(settled) => {
                entry.outcome = Some(settled.outcome());
                entry.deployment_id = settled.deployment();
                entry.reason = settled.reason().to_owned();
                let id = app.store.record_delivery(&entry).await?;
                if let Settled::Waiting(_) = settled {
                    app.store
                        .await_checks(id, Timestamp::now() + CHECKS_TIMEOUT)
                        .await?;
                }
                Ok(result_of(&entry, named))
            }
            Err(error) => request_failed(app, entry, error).await,
        },
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

/// Logs `entry` as a delivery whose deployment could not be requested, and answers why.
async fn request_failed(
    app: &App,
    mut entry: NewDelivery,
    error: UseCaseError,
) -> Result<HookResult> {
    entry.outcome = Some(Outcome::Failed);
    entry.reason = format!("requesting the deployment failed: {error}");
    app.store.record_delivery(&entry).await?;
    Err(error)
}

/// Writes what [`act`] left to log.
async fn write_log(app: &App, log: Vec<NewDelivery>) -> Result<()> {
    app.delivery_log
        .write(&app.store, log)
        .await
        .map_err(|error| UseCaseError::Internal(format!("writing the delivery log: {error}")))
}

/// Adds `entry` to what the caller logs; what the sender is told about it.
fn defer(log: &mut Vec<NewDelivery>, entry: NewDelivery, named: String) -> HookResult {
    let result = result_of(&entry, named);
    log.push(entry);
    result
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
        Decision::Deploy | Decision::Diff => {
            match deploy_or_wait(app, target, pushed(source, push)).await {
                Ok(settled) => {
                    let (outcome, deployment) = (settled.outcome(), settled.deployment());
                    app.store
                        .settle_delivery(delivery, outcome, settled.reason(), deployment)
                        .await?;
                    if let Settled::Waiting(_) = settled {
                        app.store
                            .await_checks(delivery, Timestamp::now() + CHECKS_TIMEOUT)
                            .await?;
                    }
                }
                Err(error) => {
                    let reason = format!("requesting the deployment failed: {error}");
                    app.store
                        .settle_delivery(delivery, Outcome::Failed, &reason, None)
                        .await?;
                }
            }
        }
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
    let repo = service
        .settings
        .repo()
        .ok_or("the service runs an image: it has no repository to diff")?;
    let dir = tempfile::tempdir().map_err(|error| error.to_string())?;
    git.changed_files(repo, &before, &after, dir.path())
        .await
        .map_err(|error| error.to_string())
}

/// The commit `push` deploys, from `source`.
fn pushed(source: Source, push: &PushEvent) -> Pushed<'_> {
    Pushed {
        source,
        after: &push.after,
        pusher: push.pusher.as_deref(),
    }
}
