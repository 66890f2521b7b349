//! Previews: the operations on a service's previews (list, deploy a branch, approve a fork's
//! head commit, remove) and its preview settings, and what pull-request events, the API and
//! the idle sweep share — making or refreshing a preview from its parent, deploying it, taking
//! it apart.
//!
//! A preview is a service of its own (`<service>--<label>`), so its deployments, logs, events
//! and metrics are the service operations' as they are. It takes its parent's settings at every
//! deploy, without the release command and with one replica; it gets no volumes unless the
//! parent's preview settings say so (then its own, empty ones).

use helvetia_api_types::{ApprovePreview, DeployPreview, PreviewDeployed, PreviewView};
use helvetia_core::audit::AuditAction;
use helvetia_core::auth::{Actor, Scope};
use helvetia_core::deployment::Deployment;
use helvetia_core::git::{CommitSha, GitRef};
use helvetia_core::job::JobKind;
use helvetia_core::preview::{PreviewLabel, PreviewSettings, PreviewSettingsInput};
use helvetia_core::runtime::RuntimeSettings;
use helvetia_core::service::{Service, ServiceSettings};
use helvetia_core::validation::{FieldErrors, Invalid};
use helvetia_store::StoreError;
use helvetia_store::previews::{NewPreview, Preview, PreviewHead};
use jiff::Timestamp;

use super::access::OwnedService;
use super::deployments::deploy_commit;
use super::volumes;
use super::{App, Result, UseCaseError};

/// The previews of a service, oldest first.
pub async fn list(app: &App, service: &OwnedService) -> Result<Vec<PreviewView>> {
    let parent = parent(service)?;
    let mut views = vec![];
    for preview in app.store.previews(Some(parent.id)).await? {
        views.push(view(app, preview).await?);
    }
    Ok(views)
}

/// A service's preview settings.
pub async fn settings(app: &App, service: &OwnedService) -> Result<PreviewSettings> {
    Ok(app.store.preview_settings(parent(service)?.id).await?)
}

/// Changes a service's preview settings; fields left out keep their value. They apply to its
/// previews' next deploys.
pub async fn update_settings(
    app: &App,
    service: &OwnedService,
    input: PreviewSettingsInput,
) -> Result<PreviewSettings> {
    let actor = service.act(Scope::Write)?;
    let parent = parent(service)?;
    let current = app.store.preview_settings(parent.id).await?;
    let settings = current.merged(&input)?;
    if settings.enabled && parent.github.is_none() {
        return Err(FieldErrors::single(
            "enabled",
            Invalid::new(
                "pull-request previews need a service created from a GitHub repository; \
                 previews of branches (`POST …/previews`) work for every service",
            ),
        )
        .into());
    }
    app.store
        .set_preview_settings(actor, parent, &settings)
        .await?;
    Ok(settings)
}

/// Makes (or refreshes) the preview of a branch and deploys the branch as it is now.
pub async fn deploy_branch(
    app: &App,
    service: &OwnedService,
    input: DeployPreview,
) -> Result<PreviewDeployed> {
    let actor = service.act(Scope::Deploy)?;
    let parent = parent(service)?;
    let mut errors = FieldErrors::new();
    let branch = errors.check("branch", GitRef::parse(&input.branch));
    let label = match &input.name {
        Some(name) => errors.check("name", PreviewLabel::parse(name)),
        None => errors.check("branch", PreviewLabel::for_branch(&input.branch)),
    };
    let (branch, label) = errors.finish(|| Some((branch?, label?)))?;
    let settings = app.store.preview_settings(parent.id).await?;
    let head = PreviewHead {
        pull_request: None,
        title: branch.as_str(),
        branch: branch.as_str(),
        head_sha: None,
        fork: false,
    };
    let preview = upsert(app, actor, parent, &settings, &label, &head).await?;
    let deployment = deploy_commit(app, actor, &preview, None, true).await?;
    deployed(app, preview, deployment).await
}

/// Approves the head commit of a fork's pull request for its preview, and deploys it.
pub async fn approve(
    app: &App,
    service: &OwnedService,
    name: &str,
    input: ApprovePreview,
) -> Result<PreviewDeployed> {
    let actor = service.act(Scope::Deploy)?;
    let preview = find(app, service, name).await?;
    let head = preview.head_sha.clone().ok_or_else(|| {
        UseCaseError::Conflict("a branch's preview deploys without approval".into())
    })?;
    if let Some(commit) = &input.commit
        && !commit.eq_ignore_ascii_case(&head)
    {
        return Err(UseCaseError::Conflict(format!(
            "the pull request's head is {head} now, not {commit}: look at the new commits first"
        )));
    }
    let by = actor.label.clone();
    let deployment = approve_and_deploy(app, actor, &preview.service, &head, &by).await?;
    deployed(app, preview.service, deployment).await
}

/// Removes a preview: its containers, images, volumes, route and history.
pub async fn remove(app: &App, service: &OwnedService, name: &str) -> Result<()> {
    let actor = service.act(Scope::Deploy)?;
    let preview = find(app, service, name).await?;
    take_apart(app, actor, &preview.service).await
}

/// The service `service` is, as a parent of previews: a preview has none of its own.
fn parent(service: &OwnedService) -> Result<&Service> {
    match &service.preview {
        Some(of) => Err(UseCaseError::Conflict(format!(
            "`{}` is a preview of `{}`: previews have no previews",
            service.name, of.parent
        ))),
        None => Ok(service),
    }
}

/// The preview of `service` called `name`.
async fn find(app: &App, service: &OwnedService, name: &str) -> Result<Preview> {
    let parent = parent(service)?;
    let label =
        PreviewLabel::parse_stored(name).map_err(|error| FieldErrors::single("preview", error))?;
    let not_found = || UseCaseError::NotFound(format!("preview `{label}` of `{}`", parent.name));
    service.act(Scope::Read)?;
    app.store
        .preview_named(parent.id, &label.service_name(&parent.name))
        .await?
        .ok_or_else(not_found)
}

async fn deployed(app: &App, preview: Service, deployment: Deployment) -> Result<PreviewDeployed> {
    let record = app
        .store
        .preview(preview.id)
        .await?
        .ok_or_else(|| UseCaseError::NotFound(format!("preview `{}`", preview.name)))?;
    Ok(PreviewDeployed {
        preview: view(app, record).await?,
        deployment,
    })
}

async fn view(app: &App, preview: Preview) -> Result<PreviewView> {
    let service = &preview.service;
    let live_deployment = app.store.live_deployment(service.id).await?;
    let latest_deployment = app
        .store
        .list_deployments(service, None, 1)
        .await?
        .into_iter()
        .next();
    let awaiting_approval = preview.fork && preview.head_sha != preview.approved_sha;
    Ok(PreviewView {
        name: service
            .preview
            .as_ref()
            .map(|of| of.label.to_string())
            .unwrap_or_default(),
        service: service.name.to_string(),
        url: app.platform.settings.service_url(service),
        pull_request: preview.pull_request,
        title: preview.title,
        branch: preview.branch,
        head_commit: preview.head_sha,
        fork: preview.fork,
        approved_commit: preview.approved_sha,
        approved_by: preview.approved_by,
        awaiting_approval,
        live_deployment,
        latest_deployment,
        created_at: preview.created_at,
    })
}

/// The settings a preview of `parent` deploys with: the parent's, on `branch` when it is one
/// Helvetia takes, without the release command unless allowed, with one replica.
fn preview_settings_of(
    parent: &Service,
    settings: &PreviewSettings,
    branch: &str,
) -> (ServiceSettings, RuntimeSettings) {
    let mut service_settings = parent.settings.clone();
    if let Ok(branch) = GitRef::parse(branch) {
        service_settings.branch = branch;
    }
    let mut runtime = parent.runtime.clone();
    if !settings.release_command {
        runtime.release_command = None;
    }
    runtime.replicas = 1;
    (service_settings, runtime)
}

/// The preview `label` of `parent`, made with its volumes (if allowed) when new — then the
/// oldest previews beyond the maximum go — or refreshed with the parent's current settings
/// and `head`.
pub(super) async fn upsert(
    app: &App,
    actor: &Actor,
    parent: &Service,
    settings: &PreviewSettings,
    label: &PreviewLabel,
    head: &PreviewHead<'_>,
) -> Result<Service> {
    let name = label.service_name(&parent.name);
    let (service_settings, runtime) = preview_settings_of(parent, settings, head.branch);
    match app.store.service(actor.team, &parent.project, &name).await {
        Ok(existing) => {
            if existing.preview.as_ref().map(|of| of.parent_id) != Some(parent.id) {
                return Err(UseCaseError::Conflict(format!(
                    "service `{}/{name}` exists and is not this preview: rename or delete it",
                    parent.project
                )));
            }
            Ok(app
                .store
                .update_preview(&existing, head, &service_settings, &runtime)
                .await?)
        }
        Err(StoreError::NotFound(_)) => {
            let settings_host = &app.platform.settings;
            let hostname = label
                .hostname(&settings_host.hostname(parent.project.as_str(), parent.name.as_str()));
            let new = NewPreview {
                parent,
                label,
                name: &name,
                hostname: &hostname,
                settings: &service_settings,
                runtime: &runtime,
                head: head.clone(),
            };
            let preview = app.store.create_preview(actor, &new).await?;
            if settings.volumes {
                for volume in app.store.volumes(parent.id).await? {
                    volumes::record(app, actor, &preview, &volume.name, &volume.path).await?;
                }
            }
            let previews = app.store.previews(Some(parent.id)).await?;
            let excess = previews
                .len()
                .saturating_sub(settings.max_previews as usize);
            for oldest in previews.iter().take(excess) {
                take_apart(app, actor, &oldest.service).await?;
            }
            Ok(preview)
        }
        Err(error) => Err(error.into()),
    }
}

/// Records `sha` as approved for `preview` by `by`, then deploys it.
pub(super) async fn approve_and_deploy(
    app: &App,
    actor: &Actor,
    preview: &Service,
    sha: &str,
    by: &str,
) -> Result<Deployment> {
    app.store.approve_preview(actor, preview, sha, by).await?;
    let commit = CommitSha::parse(sha).map_err(|e| UseCaseError::Internal(e.to_string()))?;
    deploy_commit(app, actor, preview, Some(commit), true).await
}

/// Takes a preview apart: its deployments in progress are cancelled, then a job stops it and
/// removes its images, volumes, route and service.
pub(super) async fn take_apart(app: &App, actor: &Actor, preview: &Service) -> Result<()> {
    for deployment in app.store.list_deployments(preview, None, 20).await? {
        // One that ended meanwhile has nothing left to cancel.
        if deployment.status.is_in_progress()
            && app
                .store
                .cancel_deployment(actor, deployment.id)
                .await
                .is_ok()
        {
            app.worker.cancel_deployment(deployment.id);
        }
    }
    app.store
        .enqueue_service_job(
            actor,
            preview,
            JobKind::RemovePreview,
            AuditAction::PreviewRemove,
        )
        .await?;
    app.worker.wake();
    Ok(())
}

/// Stops every preview whose live deployment is older than its parent's idle time. Answers
/// how many it stopped.
pub async fn stop_idle(app: &App, now: Timestamp) -> Result<usize> {
    let mut stopped = 0;
    for preview in app.store.previews(None).await? {
        let service = &preview.service;
        let Some(of) = &service.preview else { continue };
        let settings = app.store.preview_settings(of.parent_id).await?;
        if settings.idle_minutes == 0 {
            continue;
        }
        let Some(live) = app.store.live_deployment(service.id).await? else {
            continue;
        };
        let idle = jiff::SignedDuration::from_mins(i64::from(settings.idle_minutes));
        if live.created_at + idle > now {
            continue;
        }
        let team = app.store.service_team(service).await?;
        let actor = Actor::system(team, "preview idle sweep");
        app.store
            .enqueue_service_job(&actor, service, JobKind::Stop, AuditAction::ServiceStop)
            .await?;
        stopped += 1;
    }
    if stopped > 0 {
        app.worker.wake();
    }
    Ok(stopped)
}
