//! Ready: each new container is probed from outside until it answers (a worker: until it kept
//! running long enough); a container that dies fails the deployment with its last output.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use helvetia_core::routing::Backend;
use helvetia_core::service::Port;
use helvetia_engine::docker::ImageHealth;

use helvetia_core::deployment::FailureCause;

use super::{Deploy, Failure, Ready, Started};
use crate::readiness::{Attempts, Check};

impl Deploy<'_> {
    /// Waits until a container is ready: a worker once it has kept running for the worker
    /// period; a web container once it answers its probe from outside, at the pace of
    /// [`Attempts`]. Gives up when it dies or the start-up timeout (counted from its start)
    /// passes.
    pub(super) async fn wait_ready(&self, container: &Started) -> Result<Ready, Failure> {
        let (engine_id, started) = (container.engine_id.as_str(), container.at);
        let Some(port) = self.service.settings.port.map(Port::get) else {
            return self.wait_worker(engine_id, started).await;
        };
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
            if status.exited || status.restarting || status.restart_count > 0 {
                let why = if status.oom_killed {
                    "was killed for using more memory than its limit".to_owned()
                } else {
                    format!("exited with code {}", status.exit_code.unwrap_or(-1))
                };
                self.log_container_output(engine_id).await;
                return Err(Failure::failed(
                    FailureCause::NotReady,
                    format!("the app {why} before it was ready"),
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
            if status.exited || status.restarting || status.restart_count > 0 {
                self.log_container_output(engine_id).await;
                return Err(Failure::failed(
                    FailureCause::NotReady,
                    format!(
                        "the worker exited with code {} before it had run for {}s",
                        status.exit_code.unwrap_or(-1),
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
