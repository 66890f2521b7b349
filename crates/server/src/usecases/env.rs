//! Environment variables of a project (shared by its services) or of one service: one code
//! path for both, told apart by the [`EnvTarget`].
//!
//! Values of secret variables are sealed before they reach the store and never come back —
//! except through [`reveal`], which the API guards with the `secrets:reveal` scope and which
//! is audited. A change reaches running apps only through a zero-downtime redeploy of the
//! live image: at once when the service's `auto_redeploy` is on (the default), else at its
//! next deploy (shown as `env_pending` on the service).

use helvetia_api_types::{EnvChanged, EnvVarView, ImportEnv, RevealedVar, SetEnv, VarScope};
use helvetia_core::audit::AuditAction;
use helvetia_core::auth::{Actor, Caller, Scope};
use helvetia_core::deployment::DeploymentCause;
use helvetia_core::env::{EnvVarInput, check_name, check_vars, format_dotenv_line, parse_dotenv};
use helvetia_core::service::Service;
use helvetia_core::validation::{FieldErrors, Invalid};
use helvetia_store::env::{EnvRecord, EnvScope, StoredValue};

use super::access::{self, OwnedService, require};
use super::deployments::redeploy_image;
use super::{App, Result, UseCaseError};
use crate::vault::binding;

/// Whose variables an operation reads or changes, resolved for the caller, and which
/// services a change reaches.
pub struct EnvTarget {
    actor: Actor,
    scope: EnvScope,
    /// `project` or `project/service`, for messages and the audit log.
    label: String,
    services: Vec<Service>,
}

/// A project's shared variables, if the caller owns the project.
pub async fn project_target(app: &App, caller: &Caller, project: &str) -> Result<EnvTarget> {
    let (project, actor) = access::project(app, caller, project).await?.into_parts();
    let name = project.name.clone();
    let services = app
        .store
        .list_services(Some(&[actor.team]), Some(&name))
        .await?;
    Ok(EnvTarget {
        actor,
        scope: EnvScope::Project {
            project_id: project.id,
        },
        label: name.to_string(),
        services,
    })
}

/// One service's own variables.
pub fn service_target(service: OwnedService) -> EnvTarget {
    let (service, actor) = service.into_parts();
    EnvTarget {
        actor,
        scope: EnvScope::Service {
            project_id: service.project_id,
            service_id: service.id,
        },
        label: format!("{}/{}", service.project, service.name),
        services: vec![service],
    }
}

/// A service's variables for its previews, which its previews' next deploys get over its own.
pub async fn previews_target(app: &App, service: OwnedService) -> Result<EnvTarget> {
    if let Some(of) = &service.preview {
        return Err(UseCaseError::Conflict(format!(
            "`{}` is a preview: set its variables for previews on `{}`",
            service.name, of.parent
        )));
    }
    let previews = app.store.previews(Some(service.id)).await?;
    let (service, actor) = service.into_parts();
    Ok(EnvTarget {
        actor,
        scope: EnvScope::Previews {
            project_id: service.project_id,
            service_id: service.id,
        },
        label: format!("{}/{} (previews)", service.project, service.name),
        services: previews
            .into_iter()
            .map(|preview| preview.service)
            .collect(),
    })
}

fn view(record: &EnvRecord, overridden: bool) -> EnvVarView {
    EnvVarView {
        name: record.name.clone(),
        value: (!record.secret).then(|| record.value.clone()),
        secret: record.secret,
        build: record.build,
        build_arg: record.build_arg,
        scope: match (record.service_id, record.preview) {
            (Some(_), true) => VarScope::Previews,
            (Some(_), false) => VarScope::Service,
            (None, _) => VarScope::Project,
        },
        overridden,
        updated_at: record.updated_at,
    }
}

/// The target's variables; for a service, with its project's (marked when overridden).
/// Secret values are never shown.
pub async fn list(app: &App, target: &EnvTarget) -> Result<Vec<EnvVarView>> {
    let own = app.store.env(target.scope).await?;
    let mut views: Vec<EnvVarView> = vec![];
    if let EnvScope::Service { project_id, .. } = target.scope {
        for record in app.store.env(EnvScope::Project { project_id }).await? {
            let overridden = own.iter().any(|o| o.name == record.name);
            views.push(view(&record, overridden));
        }
    }
    views.extend(own.iter().map(|r| view(r, false)));
    Ok(views)
}

/// Sets variables (others are kept): secrets sealed, everything stored in one transaction,
/// then applied to the live services.
pub async fn set(app: &App, target: &EnvTarget, input: SetEnv) -> Result<EnvChanged> {
    store_vars(app, target, &input.vars).await
}

/// Sets variables from a `.env` file: all of them or, on any error, none.
pub async fn import(app: &App, target: &EnvTarget, input: ImportEnv) -> Result<EnvChanged> {
    let parsed = parse_dotenv(&input.dotenv).map_err(|e| FieldErrors::single("dotenv", e))?;
    let vars: Vec<EnvVarInput> = parsed
        .into_iter()
        .map(|(name, value)| EnvVarInput {
            name,
            value,
            secret: input.secret,
            build: input.build,
            build_arg: input.build_arg,
        })
        .collect();
    store_vars(app, target, &vars).await
}

async fn store_vars(app: &App, target: &EnvTarget, vars: &[EnvVarInput]) -> Result<EnvChanged> {
    let actor = require(&target.actor, Scope::Write)?;
    check_vars(vars)?;
    let vault = &app.platform.vault;
    let stored: Vec<StoredValue> = vars
        .iter()
        .map(|var| StoredValue {
            name: var.name.clone(),
            value: if var.secret {
                let binding = binding(
                    target.scope.project_id(),
                    target.scope.service_id(),
                    &var.name,
                );
                vault.seal(&binding, &var.value)
            } else {
                var.value.clone()
            },
            secret: var.secret,
            build: var.build,
            build_arg: var.build_arg,
            key_id: var.secret.then(|| vault.key_id().to_owned()),
        })
        .collect();
    app.store
        .set_env(actor, target.scope, &target.label, &stored)
        .await?;
    changed(app, target).await
}

/// The variables a removal names: one in the request's path (a resource of its own: when it is
/// not set, 404) or a list in its body (one that is not set is a problem of that list, under
/// `names[i]`, like an invalid name).
pub enum Unset<'a> {
    One(&'a str),
    Many(&'a [String]),
}

/// Removes variables: all of them, in one change (so a live service redeploys once), or, when
/// one is not set, none.
pub async fn unset(app: &App, target: &EnvTarget, unset: Unset<'_>) -> Result<EnvChanged> {
    let actor = require(&target.actor, Scope::Write)?;
    let names: Vec<String> = match unset {
        Unset::One(name) => vec![name.to_owned()],
        Unset::Many(names) => names.to_vec(),
    };
    let field = |index: usize| match unset {
        Unset::One(_) => "name".to_owned(),
        Unset::Many(_) => format!("names[{index}]"),
    };
    let mut errors = FieldErrors::new();
    for (index, name) in names.iter().enumerate() {
        errors.check(&field(index), check_name(name));
    }
    if names.is_empty() {
        errors.add("names", Invalid::new("name at least one variable"));
    }
    errors.finish(|| Some(()))?;
    let set = app.store.env(target.scope).await?;
    let is_set = |name: &String| set.iter().any(|record| &record.name == name);
    match unset {
        Unset::One(name) if !is_set(&names[0]) => {
            return Err(UseCaseError::NotFound(format!(
                "variable {name} of {}",
                target.label
            )));
        }
        Unset::One(_) => {}
        Unset::Many(_) => {
            let mut unknown = FieldErrors::new();
            for (index, name) in names.iter().enumerate() {
                if !is_set(name) {
                    unknown.add(
                        &field(index),
                        Invalid::new(format!("{name} is not set on {}", target.label)),
                    );
                }
            }
            unknown.finish(|| Some(()))?;
        }
    }
    app.store
        .unset_env(actor, target.scope, &target.label, &names)
        .await?;
    changed(app, target).await
}

/// The target's variables now, and the redeployments that apply a change to its live
/// services with `auto_redeploy`.
async fn changed(app: &App, target: &EnvTarget) -> Result<EnvChanged> {
    let mut redeployments = vec![];
    for service in &target.services {
        if !service.runtime.auto_redeploy {
            continue;
        }
        if let Some(live) = app.store.live_deployment(service.id).await? {
            redeployments.push(
                redeploy_image(
                    app,
                    &target.actor,
                    service,
                    &live,
                    DeploymentCause::Settings,
                )
                .await?,
            );
        }
    }
    Ok(EnvChanged {
        vars: list(app, target).await?,
        redeployments,
    })
}

/// The target's own variables in the `.env` format; secrets appear as comments, without
/// values.
pub async fn export(app: &App, target: &EnvTarget) -> Result<String> {
    let mut text = format!(
        "# Environment of {} exported by Helvetia; secret values are not exported.\n",
        target.label
    );
    for record in app.store.env(target.scope).await? {
        let value = (!record.secret).then_some(record.value.as_str());
        text.push_str(&format_dotenv_line(&record.name, value));
        text.push('\n');
    }
    Ok(text)
}

/// One variable's value, secret or not. Audited.
pub async fn reveal(app: &App, target: &EnvTarget, name: &str) -> Result<RevealedVar> {
    let actor = require(&target.actor, Scope::SecretsReveal)?;
    check_name(name).map_err(|e| FieldErrors::single("name", e))?;
    let record = app
        .store
        .env(target.scope)
        .await?
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| UseCaseError::NotFound(format!("variable {name} of {}", target.label)))?;
    let value = if record.secret {
        app.platform
            .vault
            .open_record(&record)
            .map_err(|e| UseCaseError::Internal(format!("opening {name} failed: {e}")))?
    } else {
        record.value
    };
    app.store
        .record_audit(
            actor,
            AuditAction::EnvReveal,
            &format!("{} {name}", target.label),
        )
        .await?;
    Ok(RevealedVar {
        name: name.to_owned(),
        value,
    })
}
