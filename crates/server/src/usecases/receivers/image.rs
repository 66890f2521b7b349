//! A verified delivery to the receiver of a service run from a registry image: a registry's
//! notification that its tag moved, or any other signed delivery, redeploys it (the worker
//! pulls the image again and resolves the tag anew); a notification about another repository
//! or tag is ignored. Logged like every delivery.

use helvetia_api_types::HookResult;
use helvetia_core::auth::Actor;
use helvetia_core::image::ImageRef;
use helvetia_core::webhook::registry::{self, ImageDecision};
use helvetia_core::webhook::{Outcome, Verdict};

use super::super::push_deploys::Target;
use super::super::{App, Result, deployments};
use super::{Received, request_failed, result_of};

/// What the delivery `body` does to `target`, a service run from `image`.
pub(super) async fn act(
    app: &App,
    received: &Received,
    image: &ImageRef,
    body: &[u8],
    target: Target,
) -> Result<HookResult> {
    let mut entry = received.entry(Some(target.service.id), Verdict::Valid);
    entry.message = Some(image.to_string());
    let named = format!("{}/{}", target.service.project, target.service.name);
    let decision = if target.settings.auto_deploy {
        registry::decide(image, body)
    } else {
        ImageDecision::Ignore("auto-deploy is off for this service".into())
    };
    let why = match decision {
        ImageDecision::Ignore(reason) => {
            entry.outcome = Some(Outcome::Ignored);
            entry.reason = reason;
            app.store.record_delivery(&entry).await?;
            return Ok(result_of(&entry, named));
        }
        ImageDecision::Deploy(why) => why,
    };
    // Copies of one delivery arriving together deploy once: the duplicate check and the log
    // row are one step.
    let _acting = app.delivery_log.acting().await;
    if let Some(id) = &received.delivery_id
        && let Some(earlier) = app
            .store
            .delivery_acted(target.service.id, received.source, id)
            .await?
    {
        entry.outcome = Some(Outcome::Duplicate);
        entry.deployment_id = earlier.deployment_id;
        entry.reason = format!("delivery {id} already requested a deployment");
        app.store.record_delivery(&entry).await?;
        return Ok(result_of(&entry, named));
    }
    let actor = Actor::hook(target.team, format!("{} delivery", received.source));
    let requested = deployments::deploy_commit(
        app,
        &actor,
        &target.service,
        None,
        target.settings.cancel_running,
    )
    .await;
    match requested {
        Ok(deployment) => {
            entry.outcome = Some(Outcome::Deployed);
            entry.deployment_id = Some(deployment.id);
            entry.reason = format!("deployed #{}: {why}", deployment.id);
            app.store.record_delivery(&entry).await?;
            Ok(result_of(&entry, named))
        }
        Err(error) => request_failed(app, entry, error).await,
    }
}
