//! Start: the project network, the service's volumes, and the new containers (their spec and
//! environment). With the `recreate` strategy, also stopping the previous containers first and
//! starting them again when the deployment does not go live.

use std::time::Instant;

use helvetia_core::container::{ContainerState, Health};
use helvetia_core::service::Port;
use helvetia_engine::docker::{ContainerSpec, EngineError, Limits, NetworkSpec, labels};

use helvetia_core::deployment::FailureCause;

use super::{Deploy, Failure, Started};
use crate::containers::{engine_ref, short_id};

impl Deploy<'_> {
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
    pub(super) fn container_spec(
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
            security: service.runtime.security.clone(),
        }
    }

    /// The service's volumes, created in the engine on first use, as mounts.
    pub(super) async fn volumes(&self) -> Result<Vec<(String, String)>, Failure> {
        let service = &self.service;
        let mut mounts = vec![];
        for volume in self.platform.store.volumes(service.id).await? {
            self.platform
                .engine
                .ensure_volume(&volume.engine_name, service.project.as_str())
                .await?;
            mounts.push((volume.engine_name, volume.path));
        }
        Ok(mounts)
    }

    /// The `recreate` strategy: the previous containers leave the route and stop before the
    /// new ones start, so two copies never run at once. They stay the live deployment's
    /// containers — serving, with health `stopped` — until the new version is live, so that a
    /// failure, or a crash of the server, starts them again ([`Deploy::restore_previous`]).
    pub(super) async fn stop_previous_first(&mut self) -> Result<(), Failure> {
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
                    Failure::failed(
                        FailureCause::Routing,
                        format!("taking the previous version off its route failed: {e}"),
                    )
                })?;
        }
        let grace = self.service.runtime.timeouts.stop_grace;
        for container in &previous {
            let target = engine_ref(container);
            platform.engine.stop_container(target, grace).await?;
            self.log.line(format!("Stopped {}", container.name));
        }
        Ok(())
    }

    /// Undoes [`Deploy::stop_previous_first`] after a failure or an interruption: the live
    /// deployment's stopped containers run and serve again.
    pub(super) async fn restore_previous(&mut self) {
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
            let target = engine_ref(container);
            if let Err(error) = platform.engine.start_existing(target).await {
                self.log
                    .line(format!("Restarting {} failed: {error}", container.name));
                continue;
            }
            if let Ok(status) = platform.engine.inspect_container(target).await
                && let (Some(engine_id), Some(address)) = (&container.engine_id, status.address)
            {
                // The periodic reconciliation corrects the address if this write fails.
                if let Err(error) = platform
                    .store
                    .update_container_address(engine_id, &address)
                    .await
                {
                    tracing::warn!(container = %container.name, %error, "recording a restarted container's address failed");
                }
            }
            if let Err(error) = platform
                .store
                .set_container_health(container.id, Health::Healthy)
                .await
            {
                tracing::warn!(container = %container.name, %error, "recording a restarted container healthy failed");
            }
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

    /// The project's network, created on first use with a subnet from the pool. A network
    /// recorded before names carried the installation keeps its name while it is this
    /// installation's; one that turns out to be another's is left to it, and the project moves
    /// to a network of its own.
    pub(super) async fn network(&mut self) -> Result<String, Failure> {
        let platform = self.platform;
        let scoped = platform
            .engine
            .scope()
            .network(self.service.project.as_str());
        let _creating = platform.network_lock().await;
        let mut avoid = vec![];
        for _ in 0..16 {
            let (name, subnet) = platform
                .store
                .project_network(
                    self.service.project_id,
                    &scoped,
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
                Err(error @ EngineError::NotOurs { .. }) if name != scoped => {
                    self.log.line(format!(
                        "{error}; the project moves to its own network {scoped}"
                    ));
                    avoid.push(subnet);
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(Failure::failed(
            FailureCause::Network,
            "no free subnet for the project network",
        ))
    }

    pub(super) async fn start_container(
        &self,
        image: &str,
        network: &str,
        mounts: &[(String, String)],
        index: u32,
    ) -> Result<Started, Failure> {
        let platform = self.platform;
        let service = &self.service;
        let name = platform.engine.scope().container(
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
}
