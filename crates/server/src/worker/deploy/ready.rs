//! Ready: each new container is probed from outside until it answers (a worker: until it kept
//! running long enough); a container that dies fails the deployment with its last output.
//! The engine restarts a container only once it is ready: before, an exit must stay visible
//! with its exit code, which a restart replaces.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use helvetia_core::routing::Backend;
use helvetia_core::service::Port;
use helvetia_engine::docker::{ContainerStatus, ImageHealth};

use helvetia_core::deployment::FailureCause;

use super::{Deploy, Failure, Ready, Started};
use crate::readiness::{Attempts, Check};

impl Deploy<'_> {
    /// Waits until a container is ready: a worker once it has kept running for the worker
    /// period; a web container once it answers its probe from outside, at the pace of
    /// [`Attempts`]. Gives up when it dies or the start-up timeout (counted from its start)
    /// passes. A ready container is restarted by the engine whenever it exits from then on.
    pub(super) async fn wait_ready(&self, container: &Started) -> Result<Ready, Failure> {
        let (engine_id, started) = (container.engine_id.as_str(), container.at);
        let ready = match self.service.settings.port.map(Port::get) {
            None => self.wait_worker(engine_id, started).await?,
            Some(port) => self.wait_answering(engine_id, started, port).await?,
        };
        self.platform.engine.restart_on_exit(engine_id).await?;
        // An exit between the last look and the new restart policy is not restarted: it stays
        // visible here, with its code.
        let status = self.platform.engine.inspect_container(engine_id).await?;
        if let Some(how) = ended(&status) {
            self.log_container_output(engine_id).await;
            return Err(Failure::failed(
                FailureCause::NotReady,
                format!("the app {how} before it went live"),
            ));
        }
        Ok(ready)
    }

    /// Waits until a web container answers its probe on `port`.
    async fn wait_answering(
        &self,
        engine_id: &str,
        started: Instant,
        port: u16,
    ) -> Result<Ready, Failure> {
        let platform = self.platform;
        let health = &self.service.runtime.health;
        let startup = self.service.runtime.timeouts.startup;
        let check = Check::of(&platform.settings, &self.service);
        let mut attempts = Attempts::new(started, startup);
        let mut successes = 0;
        let mut last_failure = String::from("no probe yet");
        let mut last_reported: Option<Instant> = None;
        while attempts.next().await {
            let status = platform.engine.inspect_container(engine_id).await?;
            if let Some(how) = ended(&status) {
                self.log_container_output(engine_id).await;
                return Err(Failure::failed(
                    FailureCause::NotReady,
                    format!("the app {how} before it was ready"),
                ));
            }
            if let Some(address) = status.address.clone() {
                let socket = address
                    .parse()
                    .map(|ip| SocketAddr::new(ip, port))
                    .map_err(|_| {
                        Failure::failed(
                            FailureCause::NotReady,
                            format!("unusable container address {address}"),
                        )
                    })?;
                match check.probe(socket).await {
                    Ok(()) => {
                        successes += 1;
                        let image_health_ok = match status.health {
                            None | Some(ImageHealth::Healthy) => true,
                            Some(ImageHealth::Starting | ImageHealth::Unhealthy) => false,
                        };
                        if status.health == Some(ImageHealth::Unhealthy) {
                            self.log_container_output(engine_id).await;
                            return Err(Failure::failed(
                                FailureCause::NotReady,
                                "the image's own HEALTHCHECK reports it unhealthy",
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
        }
        self.log_container_output(engine_id).await;
        Err(Failure::failed(
            FailureCause::NotReady,
            format!(
                "the app did not become ready within {}s (last probe: {last_failure})",
                startup.as_secs()
            ),
        ))
    }

    /// A worker is ready once it has kept running, without exiting or restarting, for the
    /// worker period.
    async fn wait_worker(&self, engine_id: &str, started: Instant) -> Result<Ready, Failure> {
        let period = self.service.runtime.timeouts.worker_ready;
        loop {
            let status = self.platform.engine.inspect_container(engine_id).await?;
            if let Some(how) = ended(&status) {
                self.log_container_output(engine_id).await;
                return Err(Failure::failed(
                    FailureCause::NotReady,
                    format!(
                        "the worker {how} before it had run for {}s",
                        period.as_secs()
                    ),
                ));
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
}

/// How a container's run ended, if it did, as its state tells. Only a stopped container's
/// state (exited, or waiting for the engine to restart it) holds the code it exited with: one
/// the engine has already started again reports its new run's code, 0, which is not its exit.
fn ended(status: &ContainerStatus) -> Option<String> {
    let stopped = status.exited || status.restarting;
    if stopped && status.oom_killed {
        Some("was killed for using more memory than its limit".to_owned())
    } else if stopped {
        Some(format!(
            "exited with code {}",
            status.exit_code.unwrap_or(-1)
        ))
    } else if status.restart_count > 0 {
        Some("exited and was restarted by the engine".to_owned())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(exited: bool, restarting: bool, exit_code: i64, restarts: i64) -> ContainerStatus {
        ContainerStatus {
            id: "c".into(),
            name: "helvetia-p-web-1-0".into(),
            running: !exited && !restarting,
            restarting,
            exited,
            exit_code: Some(exit_code),
            oom_killed: false,
            restart_count: restarts,
            address: None,
            pid: None,
            labels: Default::default(),
            health: None,
        }
    }

    #[test]
    fn a_stopped_container_ended_with_its_exit_code() {
        assert_eq!(
            ended(&status(true, false, 3, 0)).as_deref(),
            Some("exited with code 3")
        );
        assert_eq!(
            ended(&status(false, true, 3, 1)).as_deref(),
            Some("exited with code 3")
        );
        let killed = ContainerStatus {
            oom_killed: true,
            ..status(true, false, 137, 0)
        };
        assert_eq!(
            ended(&killed).as_deref(),
            Some("was killed for using more memory than its limit")
        );
        assert_eq!(ended(&status(false, false, 0, 0)), None);
    }

    /// The engine started the container again after it exited 3: its state now says "running,
    /// exit code 0", which a deployment once reported as its failure.
    #[test]
    fn a_container_the_engine_restarted_is_never_said_to_have_exited_with_its_new_runs_code() {
        let how = ended(&status(false, false, 0, 1)).unwrap();
        assert!(!how.contains("code 0"), "{how}");
        assert_eq!(how, "exited and was restarted by the engine");
    }
}
