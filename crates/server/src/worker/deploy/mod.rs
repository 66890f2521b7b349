//! The deploy job: one deployment from `queued` to `live`, or to `failed`/`cancelled` with the
//! previously live version untouched.
//!
//! The sequence is kamal-proxy's — target, health check, switch, drain — and nothing more:
//!
//! 1. **Prepare** (cancellable): fetch and build the commit, or reuse an image ([`build`]); run
//!    the release command ([`release`]); start the new containers on the project network
//!    ([`start`]); probe them from outside until they answer ([`ready`]).
//! 2. **Switch** ([`switch`]): with the routing lock held, publish a table whose route for this
//!    service points at the new containers only, wait for the edge router to confirm it, then
//!    record the deployment `live` (which marks the new containers serving and the old ones
//!    draining) in one transaction.
//! 3. **Drain** ([`drain`]): each old container is stopped once it has no open connections (or
//!    at the drain timeout), then removed ([`crate::containers`]); old images are pruned.
//!
//! Anything failing before the switch removes what this deployment started; the old version
//! never stopped serving. A deployment cut off by a crash before its switch was recorded is
//! never resumed half-way: the next attempt cleans up and fails it as interrupted. One cut off
//! after it is live stays live: the next attempt finishes the drain.
//!
//! This module holds the [`Deploy`] itself: the order of the phases, the recorded state
//! changes, and the ends of a deployment that does not go live.

use std::time::Instant;

use helvetia_core::container::{ContainerRecord, ContainerState};
use helvetia_core::deployment::{
    DeployFailure, Deployment, DeploymentCause, DeploymentKind, DeploymentStatus, FailureCause,
};
use helvetia_core::routing::Backend;
use helvetia_core::runtime::DeployStrategy;
use helvetia_core::service::Service;
use helvetia_engine::docker::EngineError;
use helvetia_store::StoreError;

use super::{JobContext, JobOutcome, StopReason};
use crate::containers::remove_deployment_containers;
use crate::failpoint::{self, Failpoint};
use crate::logs::DeployLog;
use crate::platform::{Platform, ServiceEnvironment};

mod build;
mod detect;
mod drain;
mod git;
mod pull;
mod ready;
mod release;
mod report;
mod start;
mod switch;

pub async fn run(context: &JobContext) -> JobOutcome {
    let platform = &context.platform;
    let Some(id) = context.job.deployment_id else {
        return JobOutcome::Failed("deploy job without a deployment".into());
    };
    let deployment = match platform.store.deployment_by_id(id).await {
        Ok(deployment) => deployment,
        Err(error) => return JobOutcome::Failed(error.to_string()),
    };
    // A later attempt of a deployment whose switch was recorded finishes it (below).
    let switched = context.job.attempt > 1 && deployment.status == DeploymentStatus::Live;
    if !deployment.status.is_in_progress() && !switched {
        return JobOutcome::Cancelled(format!("deployment #{id} is already {}", deployment.status));
    }
    let service = match platform.store.service_by_id(deployment.service_id).await {
        Ok(service) => service,
        Err(error) => return JobOutcome::Failed(error.to_string()),
    };
    let environment = platform.environment(&service).await;
    let redactor = match &environment {
        Ok(environment) => platform.redactor_with(environment),
        Err(_) => platform.server_redactor(),
    };
    let log = DeployLog::open(
        platform.store.clone(),
        platform.logs.clone(),
        id,
        redactor,
        platform.settings.log_limits,
    )
    .await;
    let (environment, unreadable) = match environment {
        Ok(environment) => (Some(environment), None),
        Err(error) => (
            None,
            Some(format!(
                "the service's environment could not be read: {error}"
            )),
        ),
    };
    let mut deploy = Deploy {
        platform,
        deployment,
        service,
        log: &log,
        environment,
    };
    let outcome = if switched {
        deploy.finish_switched().await
    } else if let Some(reason) = unreadable {
        deploy
            .abort(Failure::failed(FailureCause::Environment, reason))
            .await
    } else if context.job.attempt > 1 && deploy.deployment.status != DeploymentStatus::Queued {
        deploy.recover_interrupted().await
    } else {
        deploy.run(context).await
    };
    report::final_commit_status(platform, &deploy.service, id, &log).await;
    crate::notifications::deployment_ended(platform, &deploy.service, id, &log).await;
    log.finish().await;
    outcome
}

/// Why a deployment did not go live.
enum Failure {
    /// It failed: why, and what its status reason and log say.
    Failed(DeployFailure),
    Stopped(StopReason),
    /// Someone else finished the deployment first (cancelled or superseded while queued).
    Overtaken(DeploymentStatus),
}

impl Failure {
    fn failed(cause: FailureCause, message: impl Into<String>) -> Failure {
        Failure::Failed(DeployFailure::new(cause, message))
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Failure {
        Failure::failed(FailureCause::Store, format!("the store failed: {error}"))
    }
}

impl From<EngineError> for Failure {
    fn from(error: EngineError) -> Failure {
        Failure::failed(FailureCause::Engine, error.to_string())
    }
}

/// A started container that passed its readiness check; `backend` is where it serves
/// (`None` for a worker).
struct Ready {
    backend: Option<Backend>,
}

/// A container this deployment started.
struct Started {
    record: ContainerRecord,
    engine_id: String,
    /// When Helvetia asked the engine to start it: readiness is counted from here.
    at: Instant,
}

struct Deploy<'a> {
    platform: &'a Platform,
    deployment: Deployment,
    service: Service,
    log: &'a DeployLog,
    /// The service's environment, read once at the start (`None` only when that failed).
    environment: Option<ServiceEnvironment>,
}

impl Deploy<'_> {
    async fn run(&mut self, context: &JobContext) -> JobOutcome {
        let prepared = tokio::select! {
            biased;
            () = context.stopped() => Err(Failure::Stopped(context.stop_reason().unwrap_or(StopReason::Cancelled))),
            prepared = self.prepare() => prepared,
        };
        let ready = match prepared {
            Ok(ready) => ready,
            Err(failure) => return self.abort(failure).await,
        };
        if let Err(failure) = self.switch(&ready).await {
            return self.abort(failure).await;
        }
        self.after_switch().await
    }

    /// What follows a recorded switch: the previous containers drain, old images go.
    async fn after_switch(&mut self) -> JobOutcome {
        self.drain_previous().await;
        self.prune_images().await;
        // The previous containers may have held the last mount of a removed volume.
        if let Err(error) = self.platform.remove_unused_volumes().await {
            tracing::warn!(%error, "deleting unused volumes failed");
        }
        JobOutcome::Succeeded
    }

    /// Records a state change and says so in the log.
    async fn to(&mut self, status: DeploymentStatus, reason: &str) -> Result<(), Failure> {
        let reason = self.log.redact(reason);
        match self
            .platform
            .store
            .transition_deployment(self.deployment.id, self.deployment.status, status, &reason)
            .await
        {
            Ok(updated) => {
                self.deployment = updated;
                self.log.line(format!("==> {status}: {reason}"));
                self.log.status(status);
                Ok(())
            }
            Err(StoreError::Conflict(_)) => {
                let current = self
                    .platform
                    .store
                    .deployment_by_id(self.deployment.id)
                    .await?;
                Err(Failure::Overtaken(current.status))
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn prepare(&mut self) -> Result<Vec<Ready>, Failure> {
        let image = match self.deployment.kind {
            // A service run from a registry image is pulled, not built.
            DeploymentKind::Build if self.service.settings.image().is_some() => self.pull().await?,
            DeploymentKind::Build => self.build().await?,
            DeploymentKind::Image => {
                let recorded = self
                    .deployment
                    .image
                    .clone()
                    .ok_or_else(|| Failure::failed(FailureCause::Request, "no image to run"))?;
                let source = self.deployment.source_deployment_id.unwrap_or_default();
                self.to(
                    DeploymentStatus::Starting,
                    &format!("running the image of deployment #{source} ({recorded})"),
                )
                .await?;
                self.recorded_image(&recorded).await?
            }
        };
        failpoint::reached(Failpoint::AfterBuild).await;
        if let Some(environment) = &self.environment {
            self.platform
                .store
                .record_env_digest(self.deployment.id, &environment.digest)
                .await?;
        }
        let network = self.network().await?;
        let mounts = self.volumes().await?;
        let runtime = self.service.runtime.clone();
        // Scaling runs more or fewer copies of the same release: nothing to migrate.
        if let Some(argv) = &runtime.release_command
            && self.deployment.cause != DeploymentCause::Scale
        {
            self.release(&image, &network, &mounts, argv).await?;
        }
        if DeployStrategy::effective(runtime.strategy, !mounts.is_empty())
            == DeployStrategy::Recreate
        {
            self.stop_previous_first().await?;
        }
        let replicas = runtime.replicas.max(1);
        let starts =
            (0..replicas).map(|index| self.start_container(&image, &network, &mounts, index));
        let started = futures::future::try_join_all(starts).await?;
        let waiting_for = match self.service.settings.port {
            Some(port) => format!("waiting for {replicas} container(s) to answer on port {port}"),
            None => format!(
                "waiting for {replicas} worker container(s) to keep running for {}s",
                runtime.timeouts.worker_ready.as_secs()
            ),
        };
        self.to(DeploymentStatus::HealthChecking, &waiting_for)
            .await?;
        failpoint::reached(Failpoint::HealthCheck).await;
        let checks = started.iter().map(|container| self.wait_ready(container));
        let ready = futures::future::try_join_all(checks).await?;
        for container in &started {
            self.platform
                .store
                .set_container_state(container.record.id, ContainerState::Ready)
                .await?;
        }
        Ok(ready)
    }

    /// Ends a deployment that did not go live: removes what it started and records why.
    async fn abort(&mut self, failure: Failure) -> JobOutcome {
        let (status, reason) = match failure {
            Failure::Overtaken(status) => {
                self.log
                    .line(format!("==> {status} before it started: nothing to do"));
                return JobOutcome::Cancelled(format!("deployment is {status}"));
            }
            // Another worker owns the job now; it will clean up. Write nothing.
            Failure::Stopped(StopReason::LeaseLost) => {
                return JobOutcome::Failed("lease lost".into());
            }
            Failure::Stopped(StopReason::Cancelled) => (
                DeploymentStatus::Cancelled,
                "cancelled on request".to_owned(),
            ),
            Failure::Stopped(StopReason::Shutdown) => (
                DeploymentStatus::Failed,
                "interrupted: the server shut down before the deployment finished".to_owned(),
            ),
            Failure::Failed(failure) => {
                tracing::warn!(deployment = self.deployment.id, cause = %failure.cause, "the deployment failed");
                (DeploymentStatus::Failed, failure.message)
            }
        };
        self.log.line(format!("!!! {reason}"));
        remove_deployment_containers(self.platform, self.deployment.id).await;
        self.restore_previous().await;
        self.log
            .line("Removed this deployment's containers; the previous version keeps serving.");
        self.finish_as(status, &reason).await;
        if status == DeploymentStatus::Cancelled {
            JobOutcome::Cancelled(reason)
        } else {
            JobOutcome::Failed(reason)
        }
    }

    /// Moves the deployment, from whatever state it is in now, to `status`.
    async fn finish_as(&mut self, status: DeploymentStatus, reason: &str) {
        let reason = &self.log.redact(reason);
        let store = &self.platform.store;
        let current = match store.deployment_by_id(self.deployment.id).await {
            Ok(current) => current,
            Err(error) => {
                tracing::error!(deployment = self.deployment.id, %error, "reading the deployment failed");
                return;
            }
        };
        if !current.status.is_in_progress() {
            return;
        }
        match store
            .transition_deployment(current.id, current.status, status, reason)
            .await
        {
            Ok(_) => self.log.status(status),
            Err(error) => {
                tracing::error!(deployment = current.id, %error, "recording the deployment's end failed")
            }
        }
    }

    /// A later attempt of a deployment cut off after its switch was recorded: it is live and
    /// its predecessor retired, so recovery only finishes what follows the switch. Undoing the
    /// switch, or recording the deployment as anything but live, would rewrite history.
    async fn finish_switched(&mut self) -> JobOutcome {
        failpoint::reached(Failpoint::Recovery).await;
        self.log.line(
            "!!! The server stopped after this deployment went live; finishing the drain of the previous containers.",
        );
        self.after_switch().await
    }

    /// A later attempt of a deployment cut off before its switch was recorded.
    async fn recover_interrupted(&mut self) -> JobOutcome {
        failpoint::reached(Failpoint::Recovery).await;
        let was = self.deployment.status;
        let reason = format!("interrupted: the server stopped while the deployment was {was}");
        self.log.line(format!(
            "!!! The server stopped while this deployment was {was}. A deployment is never resumed half-way; cleaning up."
        ));
        remove_deployment_containers(self.platform, self.deployment.id).await;
        self.restore_previous().await;
        self.finish_as(DeploymentStatus::Failed, &reason).await;
        JobOutcome::Failed(reason)
    }
}
