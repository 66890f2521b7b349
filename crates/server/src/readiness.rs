//! Readiness: does a container answer the way its service's health check asks? One probe
//! ([`Check`]) and one pace for repeating it until the container answers ([`Attempts`]),
//! shared by a deploy waiting for its new containers and by the health monitor (its periodic
//! probes, and a restarted container waiting to be routed again).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use helvetia_core::runtime::HealthCheck;
use helvetia_core::service::Service;
use helvetia_engine::probe::{self, Probe, ProbeFailure};

use crate::platform::PlatformSettings;

/// A service's health check, ready to probe its containers from outside.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    probe: Probe,
    timeout: Duration,
}

impl Check {
    pub(crate) fn new(health: &HealthCheck, hostname: &str) -> Check {
        let probe = if health.tcp {
            Probe::Tcp
        } else {
            Probe::Http {
                path: health.path.clone(),
                host: hostname.to_owned(),
                statuses: (health.status_min, health.status_max),
            }
        };
        Check {
            probe,
            timeout: health.timeout,
        }
    }

    /// The check of `service`, whose HTTP probe names the service's own hostname.
    pub(crate) fn of(settings: &PlatformSettings, service: &Service) -> Check {
        let hostname = settings.hostname(service.project.as_str(), service.name.as_str());
        Check::new(&service.runtime.health, &hostname)
    }

    /// Probes one container once.
    pub(crate) async fn probe(&self, address: SocketAddr) -> Result<(), ProbeFailure> {
        probe::probe(address, &self.probe, self.timeout).await
    }
}

/// The pace of a readiness loop: the first attempt at once, then after 50 ms, each pause
/// 1.5 times the previous one (at most a second), so a quick app is ready in well under a
/// second and a slow one is not hammered — until a time limit counted from `started`.
#[derive(Debug)]
pub(crate) struct Attempts {
    started: Instant,
    limit: Duration,
    delay: Option<Duration>,
}

impl Attempts {
    const FIRST_DELAY: Duration = Duration::from_millis(50);
    const MAX_DELAY: Duration = Duration::from_secs(1);

    pub(crate) fn new(started: Instant, limit: Duration) -> Attempts {
        Attempts {
            started,
            limit,
            delay: None,
        }
    }

    /// Waits until the next attempt is due; false once the time limit has passed (an attempt
    /// already under way when it passes is still the last one).
    pub(crate) async fn next(&mut self) -> bool {
        let Some(delay) = self.delay else {
            self.delay = Some(Self::FIRST_DELAY);
            return true;
        };
        if self.started.elapsed() >= self.limit {
            return false;
        }
        tokio::time::sleep(delay).await;
        self.delay = Some(Self::after(delay));
        true
    }

    /// The pause that follows a pause of `delay`.
    fn after(delay: Duration) -> Duration {
        (delay * 3 / 2).min(Self::MAX_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_from_50_ms_by_half_up_to_a_second() {
        let pauses: Vec<u128> =
            std::iter::successors(Some(Attempts::FIRST_DELAY), |&d| Some(Attempts::after(d)))
                .take(10)
                .map(|d| d.as_millis())
                .collect();
        assert_eq!(pauses, [50, 75, 112, 168, 253, 379, 569, 854, 1000, 1000]);
    }

    #[tokio::test]
    async fn the_first_attempt_is_immediate_and_a_passed_limit_ends_after_it() {
        let mut attempts = Attempts::new(Instant::now(), Duration::ZERO);
        assert!(attempts.next().await);
        assert!(!attempts.next().await);
    }
}
