//! The deploy job: one deployment from `queued` to `live`, or to `failed`/`cancelled` with the
//! previously live version untouched.
//!
//! The sequence is kamal-proxy's — target, health check, switch, drain — and nothing more:
//!
//! 1. **Prepare** (cancellable): fetch and build the commit, or reuse an image; start the new
//!    container on the project network; probe it from outside until it answers.
//! 2. **Switch**: with the routing lock held, publish a table whose route for this service
//!    points at the new container only, wait for the edge router to confirm it, then record
//!    the deployment `live` (which marks the new containers serving and the old ones
//!    draining) in one transaction.
//! 3. **Drain**: each old container is stopped once it has no open connections (or at the
//!    drain timeout), then removed.
//!
//! Anything failing before the switch removes what this deployment started; the old version
//! never stopped serving. A deployment cut off by a crash is never resumed half-way: the next
//! attempt cleans up and fails it as interrupted.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use helvetia_core::container::{
    ContainerRecord, ContainerState, Health, container_name, image_repository, network_name,
};
use helvetia_core::deployment::{Deployment, DeploymentCause, DeploymentKind, DeploymentStatus};
use helvetia_core::git::{CommitSha, GitRef, RepoUrl};
use helvetia_core::redact::{LineRedactor, Redactor};
use helvetia_core::routing::{Backend, route_name};
use helvetia_core::runtime::DeployStrategy;
use helvetia_core::service::{Port, Service};
use helvetia_core::volume::engine_volume_name;
use helvetia_engine::docker::{
    BuildRequest, ContainerSpec, EngineError, Limits, NetworkSpec, labels,
};
use helvetia_engine::probe;
use helvetia_store::StoreError;
use sha2::{Digest, Sha256};

use super::{JobContext, JobOutcome, StopReason};
use crate::logs::DeployLog;
use crate::platform::{Platform, ServiceEnvironment};

pub async fn run(context: &JobContext) -> JobOutcome {
    let platform = &context.platform;
    let Some(id) = context.job.deployment_id else {
        return JobOutcome::Failed("deploy job without a deployment".into());
    };
    let deployment = match platform.store.deployment_by_id(id).await {
        Ok(deployment) => deployment,
        Err(error) => return JobOutcome::Failed(error.to_string()),
    };
    if !deployment.status.is_in_progress() {
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
    let environment = match environment {
        Ok(environment) => environment,
        Err(error) => {
            let reason = format!("the service's environment could not be read: {error}");
            let mut deploy = Deploy {
                platform,
                deployment,
                service,
                log: &log,
                environment: None,
            };
            let outcome = deploy.abort(Failure::Failed(reason)).await;
            log.finish().await;
            return outcome;
        }
    };
    let mut deploy = Deploy {
        platform,
        deployment,
        service,
        log: &log,
        environment: Some(environment),
    };
    let outcome = if context.job.attempt > 1 && deploy.deployment.status != DeploymentStatus::Queued
    {
        deploy.recover_interrupted().await
    } else {
        deploy.run(context).await
    };
    log.finish().await;
    outcome
}

/// Why a deployment did not go live.
enum Failure {
    Failed(String),
    Stopped(StopReason),
    /// Someone else finished the deployment first (cancelled or superseded while queued).
    Overtaken(DeploymentStatus),
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Failure {
        Failure::Failed(format!("the store failed: {error}"))
    }
}

impl From<EngineError> for Failure {
    fn from(error: EngineError) -> Failure {
        Failure::Failed(error.to_string())
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
            DeploymentKind::Build => self.build().await?,
            DeploymentKind::Image => {
                let image = self
                    .deployment
                    .image
                    .clone()
                    .ok_or_else(|| Failure::Failed("no image to run".into()))?;
                let source = self.deployment.source_deployment_id.unwrap_or_default();
                self.to(
                    DeploymentStatus::Starting,
                    &format!("running the image of deployment #{source} ({image})"),
                )
                .await?;
                image
            }
        };
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

    /// What every container of this deployment gets in its environment: the service's
    /// variables, then what the platform sets.
    fn container_env(&self) -> Vec<(String, String)> {
        let service = &self.service;
        let mut env: Vec<(String, String)> = self
            .environment
            .as_ref()
            .map(|e| e.runtime.clone())
            .unwrap_or_default();
        if let Some(port) = service.settings.port {
            env.push(("PORT".into(), port.to_string()));
        }
        env.extend([
            ("HELVETIA_PROJECT".into(), service.project.to_string()),
            ("HELVETIA_SERVICE".into(), service.name.to_string()),
            (
                "HELVETIA_DEPLOYMENT_ID".into(),
                self.deployment.id.to_string(),
            ),
            (
                "HELVETIA_COMMIT_SHA".into(),
                self.deployment.commit_sha.clone().unwrap_or_default(),
            ),
        ]);
        env
    }

    /// The container spec every container of this deployment shares.
    fn container_spec(
        &self,
        name: String,
        image: &str,
        network: &str,
        mounts: &[(String, String)],
    ) -> ContainerSpec {
        let service = &self.service;
        let limits = service
            .runtime
            .limits
            .or(self.platform.settings.default_limits);
        ContainerSpec {
            name,
            image: image.to_owned(),
            network: network.to_owned(),
            port: service.settings.port.map(Port::get),
            env: self.container_env(),
            labels: [
                (labels::PROJECT, service.project.to_string()),
                (labels::SERVICE, service.name.to_string()),
                (labels::SERVICE_ID, service.id.to_string()),
                (labels::DEPLOYMENT, self.deployment.id.to_string()),
                (
                    labels::COMMIT,
                    self.deployment.commit_sha.clone().unwrap_or_default(),
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            limits: Limits {
                memory_bytes: limits.memory_bytes.and_then(|m| i64::try_from(m).ok()),
                nano_cpus: limits.nano_cpus(),
                pids: limits.pids.map(i64::from),
            },
            command: service.runtime.command.clone(),
            stop_grace: service.runtime.timeouts.stop_grace,
            mounts: mounts.to_vec(),
            restart: true,
        }
    }

    /// The service's volumes, created in the engine on first use, as mounts.
    async fn volumes(&self) -> Result<Vec<(String, String)>, Failure> {
        let service = &self.service;
        let mut mounts = vec![];
        for volume in self.platform.store.volumes(service.id).await? {
            let name = engine_volume_name(
                service.project.as_str(),
                service.name.as_str(),
                service.id,
                &volume.name,
            );
            self.platform
                .engine
                .ensure_volume(&name, service.project.as_str())
                .await?;
            mounts.push((name, volume.path));
        }
        Ok(mounts)
    }

    /// Runs the release command once, in a one-off container from the new image, with its
    /// output in the log. A failure (or the release timeout) fails the deployment before any
    /// new container starts; the previous version never stopped.
    async fn release(
        &mut self,
        image: &str,
        network: &str,
        mounts: &[(String, String)],
        argv: &[String],
    ) -> Result<(), Failure> {
        let platform = self.platform;
        self.log.line(format!(
            "==> release: running {argv:?} before any new container takes traffic"
        ));
        let name = format!(
            "helvetia-{}-{}-{}-release",
            self.service.project, self.service.name, self.deployment.id
        );
        let record = platform
            .store
            .reserve_container(self.deployment.id, self.service.id, &name, None)
            .await?;
        let mut spec = self.container_spec(name, image, network, mounts);
        spec.command = Some(argv.to_vec());
        spec.restart = false;
        spec.port = None;
        let engine_id = platform.engine.run_container(&spec).await?;
        platform
            .store
            .record_container_engine(record.id, &engine_id, None)
            .await?;
        let log = self.log;
        let output = async {
            let mut chunks = Box::pin(
                platform
                    .engine
                    .container_output(&engine_id, None, None, true),
            );
            let mut lines = LineRedactor::new(Redactor::default());
            while let Some(Ok(chunk)) = chunks.next().await {
                for line in lines.push(&chunk.bytes) {
                    // Drop the engine's timestamp: the log line has its own.
                    let text = line.split_once(' ').map_or(line.as_str(), |(_, text)| text);
                    log.line(format!("  | {text}"));
                }
            }
            if let Some(rest) = lines.finish() {
                log.line(format!("  | {rest}"));
            }
        };
        let timeout = self.service.runtime.timeouts.release;
        let waited = tokio::time::timeout(timeout, async {
            let (code, ()) = tokio::join!(platform.engine.wait_container(&engine_id), output);
            code
        })
        .await;
        let _ = platform.engine.remove_container(&engine_id).await;
        let code = match waited {
            Ok(code) => code?,
            Err(_) => {
                platform
                    .store
                    .set_container_state(record.id, ContainerState::Failed)
                    .await?;
                return Err(Failure::Failed(format!(
                    "the release command did not finish within {}s",
                    timeout.as_secs()
                )));
            }
        };
        let state = if code == 0 {
            ContainerState::Stopped
        } else {
            ContainerState::Failed
        };
        platform.store.set_container_state(record.id, state).await?;
        if code != 0 {
            return Err(Failure::Failed(format!(
                "the release command exited with code {code}"
            )));
        }
        self.log.line("The release command succeeded.");
        Ok(())
    }

    /// The `recreate` strategy: the previous containers leave the route and stop before the
    /// new ones start, so two copies never run at once. They stay the live deployment's
    /// containers — serving, with health `stopped` — until the new version is live, so that a
    /// failure, or a crash of the server, starts them again ([`Deploy::restore_previous`]).
    async fn stop_previous_first(&mut self) -> Result<(), Failure> {
        let platform = self.platform;
        let previous = platform
            .store
            .service_containers(self.service.id, ContainerState::Serving)
            .await?;
        if previous.is_empty() {
            return Ok(());
        }
        self.log
            .line("Strategy `recreate`: stopping the previous containers before starting new ones");
        {
            let routing = platform.routing().await;
            for container in &previous {
                platform
                    .store
                    .set_container_health(container.id, Health::Stopped)
                    .await?;
            }
            platform
                .publish_routes_locked(&routing)
                .await
                .map_err(|e| {
                    Failure::Failed(format!(
                        "taking the previous version off its route failed: {e}"
                    ))
                })?;
        }
        let grace = self.service.runtime.timeouts.stop_grace;
        for container in &previous {
            let target = container.engine_id.as_deref().unwrap_or(&container.name);
            platform.engine.stop_container(target, grace).await?;
            self.log.line(format!("Stopped {}", container.name));
        }
        Ok(())
    }

    /// Undoes [`Deploy::stop_previous_first`] after a failure or an interruption: the live
    /// deployment's stopped containers run and serve again.
    async fn restore_previous(&mut self) {
        let platform = self.platform;
        let stopped = match platform
            .store
            .service_containers(self.service.id, ContainerState::Serving)
            .await
        {
            Ok(serving) => serving
                .into_iter()
                .filter(|c| c.health == Some(Health::Stopped))
                .collect::<Vec<_>>(),
            Err(error) => {
                self.log
                    .line(format!("Reading the previous containers failed: {error}"));
                return;
            }
        };
        if stopped.is_empty() {
            return;
        }
        for container in &stopped {
            let target = container.engine_id.as_deref().unwrap_or(&container.name);
            if let Err(error) = platform.engine.start_existing(target).await {
                self.log
                    .line(format!("Restarting {} failed: {error}", container.name));
                continue;
            }
            if let Ok(status) = platform.engine.inspect_container(target).await
                && let (Some(engine_id), Some(address)) = (&container.engine_id, status.address)
            {
                let _ = platform
                    .store
                    .update_container_address(engine_id, &address)
                    .await;
            }
            let _ = platform
                .store
                .set_container_health(container.id, Health::Healthy)
                .await;
        }
        if let Err(error) = platform.publish_routes().await {
            self.log.line(format!(
                "Routing to the previous version again failed: {error}"
            ));
        } else {
            self.log
                .line("The previous version was started again and serves.");
        }
    }

    /// Fetches and builds the commit, or reuses the image of an identical earlier build.
    /// Returns the image's tag.
    async fn build(&mut self) -> Result<String, Failure> {
        let platform = self.platform;
        let settings = self.service.settings.clone();
        let branch_name = self
            .deployment
            .git_ref
            .clone()
            .unwrap_or_else(|| settings.branch.to_string());
        self.to(
            DeploymentStatus::Cloning,
            &format!("fetching {} (branch {branch_name})", settings.repo),
        )
        .await?;
        // Checked again against the current policy: it may have changed since the service
        // was created.
        let repo = RepoUrl::parse(settings.repo.as_str(), platform.settings.repo_policy)
            .map_err(|e| Failure::Failed(format!("the repository is not allowed: {e}")))?;
        let branch = GitRef::parse(&branch_name)
            .map_err(|e| Failure::Failed(format!("invalid branch: {e}")))?;
        let requested = self
            .deployment
            .requested_commit
            .as_deref()
            .map(CommitSha::parse)
            .transpose()
            .map_err(|e| Failure::Failed(format!("invalid commit: {e}")))?;
        let known_sha = match &requested {
            Some(sha) if sha.is_full() => Some(sha.to_string()),
            Some(_) => None,
            None => {
                let sha = platform
                    .git
                    .resolve_branch(&repo, &branch)
                    .await
                    .map_err(|e| Failure::Failed(e.to_string()))?;
                self.log.line(format!("Branch {branch} is at {sha}"));
                Some(sha)
            }
        };
        let tag = format!(
            "{}:{}",
            image_repository(self.service.project.as_str(), self.service.name.as_str()),
            self.deployment.id
        );
        if let Some(sha) = &known_sha
            && let Some(tag) = self.reuse_build(sha, &tag).await?
        {
            return Ok(tag);
        }

        let checkout = tempfile::Builder::new()
            .prefix("checkout-")
            .tempdir_in(&platform.builds_dir)
            .map_err(|e| Failure::Failed(format!("cannot create a checkout directory: {e}")))?;
        let commit = platform
            .git
            .checkout(&repo, &branch, requested.as_ref(), checkout.path())
            .await
            .map_err(|e| Failure::Failed(e.to_string()))?;
        platform
            .store
            .record_commit(
                self.deployment.id,
                &commit.sha,
                &commit.message,
                &commit.author,
            )
            .await?;
        self.log.line(format!(
            "Checked out {} \"{}\" by {}",
            &commit.sha,
            commit.message.lines().next().unwrap_or_default(),
            commit.author
        ));
        if known_sha.is_none()
            && let Some(tag) = self.reuse_build(&commit.sha, &tag).await?
        {
            return Ok(tag);
        }

        self.to(
            DeploymentStatus::Building,
            &format!(
                "building {} (context {})",
                settings.dockerfile, settings.context
            ),
        )
        .await?;
        let key = build_key(&commit.sha, &self.service, &self.build_fingerprint());
        let request = BuildRequest {
            checkout: checkout.path().to_owned(),
            context: settings.context.to_string(),
            dockerfile: settings.dockerfile.to_string(),
            tag: tag.clone(),
            labels: [
                (labels::PROJECT, self.service.project.to_string()),
                (labels::SERVICE, self.service.name.to_string()),
                (labels::SERVICE_ID, self.service.id.to_string()),
                (labels::DEPLOYMENT, self.deployment.id.to_string()),
                (labels::COMMIT, commit.sha.clone()),
                (labels::BUILD_KEY, key),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            timeout: self.service.runtime.timeouts.build,
            secrets: self
                .environment
                .as_ref()
                .map(|e| e.build.clone())
                .unwrap_or_default(),
        };
        let started = Instant::now();
        let log = self.log;
        let image = platform
            .engine
            .build_image(&request, |line| log.line(line))
            .await?;
        self.log.line(format!(
            "Built image {} in {} ms",
            short_id(&image),
            started.elapsed().as_millis()
        ));
        platform
            .store
            .record_image(self.deployment.id, &tag)
            .await?;
        self.to(DeploymentStatus::Starting, &format!("starting {tag}"))
            .await?;
        Ok(tag)
    }

    fn build_fingerprint(&self) -> String {
        self.environment
            .as_ref()
            .map(|e| e.build_fingerprint.clone())
            .unwrap_or_default()
    }

    /// If an image was already built from `sha` with the same build settings, tags it for
    /// this deployment and moves on to starting it.
    async fn reuse_build(&mut self, sha: &str, tag: &str) -> Result<Option<String>, Failure> {
        let platform = self.platform;
        let key = build_key(sha, &self.service, &self.build_fingerprint());
        let Some(image) = platform.engine.find_image(self.service.id, &key).await? else {
            return Ok(None);
        };
        let (message, author) = platform
            .store
            .commit_details(self.service.id, sha)
            .await?
            .unwrap_or_default();
        platform
            .store
            .record_commit(self.deployment.id, sha, &message, &author)
            .await?;
        self.to(
            DeploymentStatus::Building,
            &format!("image {} was already built from this commit with these settings: reused, no rebuild", short_id(&image)),
        )
        .await?;
        let (repository, tag_name) = tag.split_once(':').unwrap_or((tag, "latest"));
        platform
            .engine
            .tag_image(&image, repository, tag_name)
            .await?;
        platform.store.record_image(self.deployment.id, tag).await?;
        self.to(DeploymentStatus::Starting, &format!("starting {tag}"))
            .await?;
        Ok(Some(tag.to_owned()))
    }

    /// The project's network, created on first use with a subnet from the pool.
    async fn network(&mut self) -> Result<String, Failure> {
        let platform = self.platform;
        let name = network_name(self.service.project.as_str());
        let _creating = platform.network_lock().await;
        let mut avoid = vec![];
        for _ in 0..16 {
            let subnet = platform
                .store
                .project_network(
                    self.service.project_id,
                    &name,
                    platform.settings.subnets.subnets(),
                    &avoid,
                )
                .await?;
            let spec = NetworkSpec {
                name: name.clone(),
                subnet: subnet.clone(),
                project: self.service.project.to_string(),
            };
            match platform.engine.ensure_network(&spec).await {
                Ok(()) => return Ok(name),
                Err(EngineError::SubnetInUse(subnet)) => {
                    self.log.line(format!("Subnet {subnet} is used by another network on this host; trying the next one"));
                    avoid.push(subnet);
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(Failure::Failed(
            "no free subnet for the project network".into(),
        ))
    }

    async fn start_container(
        &self,
        image: &str,
        network: &str,
        mounts: &[(String, String)],
        index: u32,
    ) -> Result<Started, Failure> {
        let platform = self.platform;
        let service = &self.service;
        let name = container_name(
            service.project.as_str(),
            service.name.as_str(),
            self.deployment.id,
            index,
        );
        let record = platform
            .store
            .reserve_container(
                self.deployment.id,
                service.id,
                &name,
                service.settings.port.map(Port::get),
            )
            .await?;
        let spec = self.container_spec(name.clone(), image, network, mounts);
        // Start-up time is counted from here: creating and starting the container is part of
        // the app's start, as the engine and the image determine it.
        let at = Instant::now();
        let engine_id = platform.engine.run_container(&spec).await?;
        let status = platform.engine.inspect_container(&engine_id).await?;
        platform
            .store
            .record_container_engine(record.id, &engine_id, status.address.as_deref())
            .await?;
        self.log.line(format!(
            "Started container {name} ({}) at {}",
            short_id(&engine_id),
            status.address.as_deref().unwrap_or("no address yet")
        ));
        Ok(Started {
            record,
            engine_id,
            at,
        })
    }

    /// Waits until a container is ready: a worker once it has kept running for the worker
    /// period; a web container once it answers its probe from outside — starting fast (50 ms)
    /// and backing off, so a quick app is live in well under a second. Gives up when it dies
    /// or the start-up timeout (counted from its start) passes.
    async fn wait_ready(&self, container: &Started) -> Result<Ready, Failure> {
        let (engine_id, started) = (container.engine_id.as_str(), container.at);
        let Some(port) = self.service.settings.port.map(Port::get) else {
            return self.wait_worker(engine_id, started).await;
        };
        let platform = self.platform;
        let health = &self.service.runtime.health;
        let startup = self.service.runtime.timeouts.startup;
        let check = crate::monitor::check_for(
            health,
            &platform
                .settings
                .hostname(self.service.project.as_str(), self.service.name.as_str()),
        );
        let mut delay = Duration::from_millis(50);
        let mut successes = 0;
        let mut last_failure = String::from("no probe yet");
        let mut last_reported: Option<Instant> = None;
        loop {
            let status = platform.engine.inspect_container(engine_id).await?;
            if status.exited || status.restarting || status.restart_count > 0 {
                let why = if status.oom_killed {
                    "was killed for using more memory than its limit".to_owned()
                } else {
                    format!("exited with code {}", status.exit_code.unwrap_or(-1))
                };
                self.log_container_output(engine_id).await;
                return Err(Failure::Failed(format!(
                    "the app {why} before it was ready"
                )));
            }
            if let Some(address) = status.address.clone() {
                let socket = address
                    .parse()
                    .map(|ip| SocketAddr::new(ip, port))
                    .map_err(|_| {
                        Failure::Failed(format!("unusable container address {address}"))
                    })?;
                match probe::probe(socket, &check, health.timeout).await {
                    Ok(()) => {
                        successes += 1;
                        let image_health_ok = status
                            .health
                            .as_deref()
                            .is_none_or(|h| h == "healthy" || h == "none");
                        if status.health.as_deref() == Some("unhealthy") {
                            self.log_container_output(engine_id).await;
                            return Err(Failure::Failed(
                                "the image's own HEALTHCHECK reports it unhealthy".into(),
                            ));
                        }
                        if successes >= health.healthy_threshold && image_health_ok {
                            self.log.line(format!(
                                "Ready: {address}:{port} answered {} ms after the container was started",
                                started.elapsed().as_millis()
                            ));
                            return Ok(Ready {
                                backend: Some(Backend { address, port }),
                            });
                        }
                    }
                    Err(failure) => {
                        successes = 0;
                        last_failure = failure.to_string();
                        if last_reported.is_none_or(|at| at.elapsed() >= Duration::from_secs(2)) {
                            self.log.line(format!("Not ready yet: {last_failure}"));
                            last_reported = Some(Instant::now());
                        }
                    }
                }
            }
            if started.elapsed() >= startup {
                self.log_container_output(engine_id).await;
                return Err(Failure::Failed(format!(
                    "the app did not become ready within {}s (last probe: {last_failure})",
                    startup.as_secs()
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 3 / 2).min(Duration::from_secs(1));
        }
    }

    /// A worker is ready once it has kept running, without exiting or restarting, for the
    /// worker period.
    async fn wait_worker(&self, engine_id: &str, started: Instant) -> Result<Ready, Failure> {
        let period = self.service.runtime.timeouts.worker_ready;
        loop {
            let status = self.platform.engine.inspect_container(engine_id).await?;
            if status.exited || status.restarting || status.restart_count > 0 {
                self.log_container_output(engine_id).await;
                return Err(Failure::Failed(format!(
                    "the worker exited with code {} before it had run for {}s",
                    status.exit_code.unwrap_or(-1),
                    period.as_secs()
                )));
            }
            if started.elapsed() >= period {
                self.log.line(format!(
                    "Ready: the worker kept running for {}s",
                    period.as_secs()
                ));
                return Ok(Ready { backend: None });
            }
            tokio::time::sleep(Duration::from_millis(200).min(period)).await;
        }
    }

    /// Copies the last lines a container printed into the deployment log.
    async fn log_container_output(&self, engine_id: &str) {
        match self
            .platform
            .engine
            .container_logs_tail(engine_id, 30)
            .await
        {
            Ok(lines) if !lines.is_empty() => {
                self.log.line("The app's last output:");
                for line in lines {
                    self.log.line(format!("  | {line}"));
                }
            }
            Ok(_) => self.log.line("The app printed nothing."),
            Err(error) => self
                .log
                .line(format!("Could not read the app's output: {error}")),
        }
    }

    /// Points the service's route at the new container, confirms the edge router serves it,
    /// and records the deployment live — all under the routing lock.
    async fn switch(&mut self, ready: &[Ready]) -> Result<(), Failure> {
        let platform = self.platform;
        let guard = platform.routing().await;
        let mut table = platform.store.routing_table().await?;
        let name = route_name(self.service.project.as_str(), self.service.name.as_str());
        let backends: Vec<Backend> = ready.iter().filter_map(|r| r.backend.clone()).collect();
        match table.route_mut(&name) {
            Some(route) => {
                route.backends = backends.clone();
                if !backends.is_empty() {
                    let list: Vec<String> = backends.iter().map(Backend::to_string).collect();
                    self.log.line(format!(
                        "Switching {} to {}",
                        route.hostnames.join(", "),
                        list.join(", ")
                    ));
                }
            }
            // A worker has no route: only the switch of the live deployment is recorded.
            None if backends.is_empty() => {}
            None => return Err(Failure::Failed("the service has no route".into())),
        }
        let started = Instant::now();
        if let Err(error) = platform.apply_and_confirm(&table).await {
            // Put back what the store says is serving: the previous version.
            if let Err(restore) = platform.publish_routes_locked(&guard).await {
                tracing::error!(%restore, "restoring the previous routes failed");
            }
            return Err(Failure::Failed(format!(
                "the edge router did not take the new route: {error}"
            )));
        }
        self.log.line(format!(
            "The edge router serves the new route (confirmed in {} ms)",
            started.elapsed().as_millis()
        ));
        let url = platform
            .settings
            .service_url(self.service.project.as_str(), self.service.name.as_str());
        let result = self
            .to(DeploymentStatus::Live, &format!("serving {url}"))
            .await;
        if result.is_err() {
            // The store still says the previous version serves: make the router agree before
            // this deployment's containers are removed.
            if let Err(restore) = platform.publish_routes_locked(&guard).await {
                tracing::error!(%restore, "restoring the previous routes failed");
            }
        }
        drop(guard);
        result
    }

    /// Stops the service's previous containers once nobody is connected to them.
    async fn drain_previous(&mut self) {
        let platform = self.platform;
        let draining = match platform
            .store
            .service_containers(self.service.id, ContainerState::Draining)
            .await
        {
            Ok(draining) => draining,
            Err(error) => {
                self.log
                    .line(format!("Could not list the previous containers: {error}"));
                return;
            }
        };
        let drain_timeout = self.service.runtime.timeouts.drain;
        let stop_grace = self.service.runtime.timeouts.stop_grace;
        for container in draining {
            let waited = drain(platform, &container, drain_timeout).await;
            self.log
                .line(format!("Previous container {}: {waited}", container.name));
            retire_container(platform, &container, stop_grace).await;
            self.log
                .line(format!("Stopped and removed {}", container.name));
        }
    }

    /// Removes images no recent deployment needs, and build cache nothing refers to.
    ///
    /// Kept: every tag of the images (by id, since redeploys and restarts tag the same image
    /// again) of the service's last `images_kept` distinct successful builds, and whatever a
    /// pending deployment is about to run.
    async fn prune_images(&mut self) {
        let platform = self.platform;
        let kept_count = platform.settings.images_kept;
        let (successful, pending) = match platform
            .store
            .deployment_images(self.service.id, 1000)
            .await
        {
            Ok(images) => images,
            Err(error) => {
                tracing::warn!(%error, "not pruning images: listing the ones in use failed");
                return;
            }
        };
        let images = match platform.engine.service_images(self.service.id).await {
            Ok(images) => images,
            Err(error) => {
                tracing::warn!(%error, "not pruning images: listing them failed");
                return;
            }
        };
        let id_of = |tag: &String| {
            images
                .iter()
                .find(|image| image.tags.contains(tag))
                .map(|image| image.id.clone())
        };
        let mut kept_ids: Vec<String> = vec![];
        for id in successful.iter().filter_map(id_of) {
            if kept_ids.len() >= kept_count {
                break;
            }
            if !kept_ids.contains(&id) {
                kept_ids.push(id);
            }
        }
        kept_ids.extend(pending.iter().filter_map(id_of));
        let mut removed = 0;
        for image in images.iter().filter(|image| !kept_ids.contains(&image.id)) {
            for tag in &image.tags {
                if platform.engine.remove_image(tag).await.is_ok() {
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            self.log.line(format!(
                "Removed {removed} old image tag(s); the images of the last {kept_count} builds are kept for rollback"
            ));
        }
        if let Err(error) = platform.engine.prune_dangling_build_cache().await {
            tracing::warn!(%error, "pruning the build cache failed");
        }
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
            Failure::Failed(reason) => (DeploymentStatus::Failed, reason),
        };
        self.log.line(format!("!!! {reason}"));
        remove_deployment_containers(self.platform, self.deployment.id).await;
        self.restore_previous().await;
        self.log
            .line("Removed this deployment's containers; the previous version keeps serving.");
        self.finish_as(status, &reason).await;
        match status {
            DeploymentStatus::Cancelled => JobOutcome::Cancelled(reason),
            _ => JobOutcome::Failed(reason),
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

    /// The second attempt of a deployment whose first attempt was cut off.
    async fn recover_interrupted(&mut self) -> JobOutcome {
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

/// A hash of everything that determines a build's output: the commit, the Dockerfile and
/// context, and the build-time variables' versions. Equal keys mean an existing image can be
/// reused instead of building again.
fn build_key(sha: &str, service: &Service, build_variables: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [
        "v2",
        sha,
        service.settings.dockerfile.as_str(),
        service.settings.context.as_str(),
        build_variables,
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

/// Waits until a container has no open connections on its port, at most `timeout`. Says how
/// it went, for the log.
pub(crate) async fn drain(
    platform: &Platform,
    container: &ContainerRecord,
    timeout: Duration,
) -> String {
    /// The connection count must stay at zero this long: a request the edge router routed just
    /// before the switch may still be opening its connection.
    const QUIET: Duration = Duration::from_millis(300);
    const POLL: Duration = Duration::from_millis(50);
    let started = Instant::now();
    let Some(engine_id) = &container.engine_id else {
        return "never started".into();
    };
    let Some(port) = container.port else {
        return "a worker serves no connections: stopped without draining".into();
    };
    let pid = match platform.engine.inspect_container(engine_id).await {
        Ok(status) if status.running => status.pid,
        _ => return "already stopped".into(),
    };
    let Some(pid) = pid else {
        return "already stopped".into();
    };
    let mut quiet_since: Option<Instant> = None;
    loop {
        match probe::open_connections(pid, port) {
            Ok(0) => {
                let since = *quiet_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= QUIET {
                    return format!("drained in {:.2}s", started.elapsed().as_secs_f64());
                }
            }
            Ok(_) => quiet_since = None,
            Err(error) => {
                // Without a view of its connections, wait the whole drain timeout: safe, slow.
                tracing::warn!(%error, "cannot count connections; waiting the full drain timeout");
                tokio::time::sleep(timeout.saturating_sub(started.elapsed())).await;
                return format!("waited the drain timeout ({}s)", timeout.as_secs());
            }
        }
        if started.elapsed() >= timeout {
            return format!(
                "drain timeout ({}s) reached with connections still open",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Stops (SIGTERM, then SIGKILL after the grace period) and removes a container, and records
/// it stopped.
pub(crate) async fn retire_container(
    platform: &Platform,
    container: &ContainerRecord,
    grace: Duration,
) {
    let target = container.engine_id.as_deref().unwrap_or(&container.name);
    if let Err(error) = platform.engine.stop_container(target, grace).await {
        tracing::warn!(container = %container.name, %error, "stopping failed; removing anyway");
    }
    if let Err(error) = platform.engine.remove_container(target).await {
        tracing::error!(container = %container.name, %error, "removing a container failed");
        return;
    }
    if let Err(error) = platform
        .store
        .set_container_state(container.id, ContainerState::Stopped)
        .await
    {
        tracing::error!(container = %container.name, %error, "recording a stopped container failed");
    }
}

/// Removes every container a deployment started and records them failed.
pub(crate) async fn remove_deployment_containers(platform: &Platform, deployment_id: i64) {
    let containers = match platform.store.deployment_containers(deployment_id).await {
        Ok(containers) => containers,
        Err(error) => {
            tracing::error!(deployment = deployment_id, %error, "listing a deployment's containers failed");
            return;
        }
    };
    for container in containers.into_iter().filter(|c| c.state.is_active()) {
        let target = container.engine_id.as_deref().unwrap_or(&container.name);
        if let Err(error) = platform.engine.remove_container(target).await {
            tracing::error!(container = %container.name, %error, "removing a container failed");
        }
        if let Err(error) = platform
            .store
            .set_container_state(container.id, ContainerState::Failed)
            .await
        {
            tracing::error!(container = %container.name, %error, "recording a removed container failed");
        }
    }
}
