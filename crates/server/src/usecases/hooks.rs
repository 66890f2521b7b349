//! A service's deploy-on-push settings (auto-deploy, watch paths, cancelling older builds),
//! its own webhook receiver — an unguessable URL and a secret, sealed by the vault, shown once
//! when made or replaced — and its delivery log. Receiving deliveries is `receivers`.

use crate::vault::hook_binding;
use helvetia_api_types::{HookSecret, HookView, UpdateHook};
use helvetia_core::auth::{Caller, Scope};
use helvetia_core::validation::{FieldErrors, Invalid};
use helvetia_core::webhook::{Delivery, WatchPaths};
use helvetia_store::hooks::ServiceHook;

use super::access::OwnedService;
use super::tokens::random_secret;
use super::{App, Result, UseCaseError};

/// Where the per-service receivers live; the hook id and the source follow.
pub const RECEIVER_PATH: &str = "/api/v1/hooks";

/// What a receiver's sealed secret is bound to: a sealed value moved to another service's row
/// does not open.
fn view(app: &App, hook: ServiceHook) -> HookView {
    HookView {
        auto_deploy: hook.settings.auto_deploy,
        watch_paths: hook.settings.watch_paths.patterns().to_vec(),
        cancel_running: hook.settings.cancel_running,
        wait_for_ci: hook.settings.wait_for_ci,
        receiver_url: hook.hook_id.map(|id| receiver_url(app, &id)),
    }
}

fn receiver_url(app: &App, hook_id: &str) -> String {
    let base = app.platform.settings.link_base();
    format!(
        "{}{RECEIVER_PATH}/{hook_id}",
        base.as_str().trim_end_matches('/')
    )
}

/// The service's settings and receiver URL (never its secret).
pub async fn get(app: &App, service: &OwnedService) -> Result<HookView> {
    service.act(Scope::Read)?;
    Ok(view(app, app.store.service_hook(service).await?))
}

/// Changes the settings the input names.
pub async fn update(app: &App, service: &OwnedService, input: UpdateHook) -> Result<HookView> {
    let actor = service.act(Scope::Write)?;
    let mut settings = app.store.service_hook(service).await?.settings;
    if let Some(patterns) = &input.watch_paths {
        settings.watch_paths = WatchPaths::parse(patterns)
            .map_err(|invalid| FieldErrors::single("watch_paths", invalid))?;
    }
    settings.auto_deploy = input.auto_deploy.unwrap_or(settings.auto_deploy);
    settings.cancel_running = input.cancel_running.unwrap_or(settings.cancel_running);
    settings.wait_for_ci = input.wait_for_ci.unwrap_or(settings.wait_for_ci);
    if settings.wait_for_ci && service.github.is_none() {
        return Err(FieldErrors::single(
            "wait_for_ci",
            Invalid::new(
                "needs a service created from a GitHub repository: its checks are read \
                 through the GitHub App",
            ),
        )
        .into());
    }
    app.store
        .set_push_settings(actor, service, &settings)
        .await?;
    get(app, service).await
}

/// Makes the service's receiver, or replaces its URL and secret (the old ones stop working):
/// the secret is in this answer only.
pub async fn rotate_secret(app: &App, service: &OwnedService) -> Result<HookSecret> {
    let actor = service.act(Scope::Write)?;
    let hook_id = random_secret();
    let secret = random_secret();
    let sealed = app.platform.vault.seal(&hook_binding(service.id), &secret);
    app.store
        .set_hook_secret(actor, service, &hook_id, &sealed)
        .await?;
    Ok(HookSecret {
        receiver_url: receiver_url(app, &hook_id),
        secret,
    })
}

/// The service's deliveries, newest first: at most `limit` (default 20, at most 200), older
/// than `before` when given.
pub async fn deliveries(
    app: &App,
    service: &OwnedService,
    before: Option<i64>,
    limit: Option<i64>,
) -> Result<Vec<Delivery>> {
    service.act(Scope::Read)?;
    let limit = limit.unwrap_or(20).clamp(1, 200);
    Ok(app.store.deliveries(Some(service), before, limit).await?)
}

/// The deliveries that reached no service — the GitHub App's refused ones, and pushes to a
/// repository no service is linked to — for instance administrators, who configure the App.
pub async fn app_deliveries(
    app: &App,
    caller: &Caller,
    before: Option<i64>,
    limit: Option<i64>,
) -> Result<Vec<Delivery>> {
    if !caller.is_instance_admin() {
        return Err(UseCaseError::Forbidden(
            "only instance administrators read the GitHub App's deliveries".into(),
        ));
    }
    let limit = limit.unwrap_or(20).clamp(1, 200);
    Ok(app.store.deliveries(None, before, limit).await?)
}
