//! The health monitor: watches live containers after their deployment is done.
//!
//! Two loops:
//! - **events**: the engine's container events (start, die, oom, health_status). A restarted
//!   container may come back with a new address: the address is updated in the store and the
//!   routes are published at once. Deaths, restarts and OOM kills are recorded as service
//!   events. When the stream breaks (the engine restarted) it reconnects with back-off, and
//!   reconciles first, since events were missed meanwhile.
//! - **probes**: every serving container is probed from outside, like the readiness probe of
//!   a deploy, at its service's health-check interval; crossing the healthy or unhealthy
//!   threshold is recorded. The serving containers are listed at every tick; each service's
//!   health check is read again every 30 s and when a container of it is new.
//!
//! Containers that are not serving (starting, draining) belong to a job and are ignored.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use helvetia_core::container::{ContainerRecord, ContainerState, Health, ServiceEventKind};
use helvetia_core::runtime::HealthCheck;
use helvetia_engine::docker::{ContainerAction, ContainerEvent, ImageHealth};
use tokio_util::sync::CancellationToken;

use crate::containers;
use crate::platform::Platform;
use crate::readiness::{Attempts, Check};
use crate::reconcile;

const FIRST_RECONNECT_DELAY: Duration = Duration::from_millis(500);
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(10);
/// How often the probe loop looks for containers whose probe is due.
const PROBE_TICK: Duration = Duration::from_millis(500);
/// How long the probe loop trusts what it read of a service (its health check).
const SERVICE_REFRESH: Duration = Duration::from_secs(30);

pub async fn run(platform: Arc<Platform>, shutdown: CancellationToken) {
    tokio::join!(
        watch_events(platform.clone(), shutdown.clone()),
        probe_forever(platform, shutdown)
    );
}

async fn watch_events(platform: Arc<Platform>, shutdown: CancellationToken) {
    let mut delay = FIRST_RECONNECT_DELAY;
    let mut first = true;
    loop {
        let mut events = Box::pin(platform.engine.container_events());
        if !first {
            // Whatever happened while the stream was down, the store and the router must
            // match the engine again.
            match reconcile::converge(&platform).await {
                Ok(()) => tracing::info!("reconnected to the engine's events and reconciled"),
                Err(error) => tracing::warn!(%error, "reconciling after reconnecting failed"),
            }
        }
        first = false;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                next = events.next() => match next {
                    Some(Ok(event)) => {
                        delay = FIRST_RECONNECT_DELAY;
                        if let Err(error) = on_event(&platform, &event).await {
                            tracing::warn!(%error, ?event, "handling an engine event failed");
                        }
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, "the engine's event stream failed");
                        break;
                    }
                    None => {
                        tracing::warn!("the engine's event stream ended");
                        break;
                    }
                },
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_RECONNECT_DELAY);
    }
}

async fn on_event(
    platform: &Arc<Platform>,
    event: &ContainerEvent,
) -> Result<(), helvetia_store::StoreError> {
    let store = &platform.store;
    let Some(container) = store.container_by_engine_id(&event.id).await? else {
        return Ok(());
    };
    // A container a `recreate` deploy stopped is the deploy's business, not a crash.
    if container.state != ContainerState::Serving || container.health == Some(Health::Stopped) {
        return Ok(());
    }
    let record = async |kind: ServiceEventKind, message: String, health: Option<Health>| {
        containers::record_event(platform, &container, kind, &message, health).await
    };
    match event.action {
        ContainerAction::Oom => {
            record(
                ServiceEventKind::OomKilled,
                "killed by the kernel: out of memory (it exceeded its memory limit)".into(),
                Some(Health::OomKilled),
            )
            .await?;
        }
        ContainerAction::Die => {
            let status = platform.engine.inspect_container(&event.id).await.ok();
            let oom = status.as_ref().is_some_and(|s| s.oom_killed);
            let code = event.exit_code.unwrap_or(-1);
            let message = if oom {
                format!("exited with code {code} after being OOM-killed; the engine restarts it")
            } else {
                format!("exited with code {code}; the engine restarts it")
            };
            // Off the route until it answers again, so the other replicas take its traffic.
            record(ServiceEventKind::Exited, message, Some(Health::Restarting)).await?;
            if let Err(error) = platform.publish_routes().await {
                tracing::error!(%error, "taking an exited container off its route failed");
            }
        }
        ContainerAction::Start | ContainerAction::Restart => {
            let Ok(status) = platform.engine.inspect_container(&event.id).await else {
                return Ok(());
            };
            if status.restart_count > 0 && event.action == ContainerAction::Start {
                record(
                    ServiceEventKind::Restarted,
                    format!(
                        "restarted by the engine (restart #{})",
                        status.restart_count
                    ),
                    None,
                )
                .await?;
            }
            if let Some(address) = status.address
                && store.update_container_address(&event.id, &address).await?
            {
                record(
                    ServiceEventKind::AddressChanged,
                    format!("now at {address}; route updated"),
                    None,
                )
                .await?;
                if let Err(error) = platform.publish_routes().await {
                    tracing::error!(%error, "publishing routes after an address change failed");
                }
            }
            if container.health == Some(Health::Restarting) {
                tokio::spawn(back_in_service(platform.clone(), container.clone()));
            }
        }
        ContainerAction::HealthStatus(health) => {
            let (kind, state) = match health {
                ImageHealth::Healthy => (ServiceEventKind::Healthy, Health::Healthy),
                ImageHealth::Unhealthy => (ServiceEventKind::Unhealthy, Health::Unhealthy),
                // No verdict yet (the engine reports a status change, never a start).
                ImageHealth::Starting => return Ok(()),
            };
            record(
                kind,
                format!("the image's HEALTHCHECK reports {kind}"),
                Some(state),
            )
            .await?;
        }
    }
    Ok(())
}

/// Puts a restarted container back on its route once it answers its health check again
/// (probing fast, like a deploy's readiness check, for at most the start-up timeout).
async fn back_in_service(platform: Arc<Platform>, container: ContainerRecord) {
    let Ok(service) = platform.store.service_by_id(container.service_id).await else {
        return;
    };
    let check = Check::of(&platform.settings, &service);
    let mut attempts = Attempts::new(Instant::now(), service.runtime.timeouts.startup);
    let mut answering = false;
    while attempts.next().await {
        let current = platform
            .store
            .container_by_engine_id(container.engine_id.as_deref().unwrap_or_default())
            .await;
        let Ok(Some(current)) = current else { return };
        answering = match (&current.address, current.port) {
            (Some(address), Some(port)) => match address.parse() {
                Ok(ip) => check.probe(SocketAddr::new(ip, port)).await.is_ok(),
                Err(_) => false,
            },
            // A worker has nothing to probe: running is serving.
            _ => true,
        };
        if answering {
            break;
        }
    }
    let (health, kind, message) = if answering {
        (
            Health::Healthy,
            ServiceEventKind::Healthy,
            "answers again after its restart; back on its route",
        )
    } else {
        (
            Health::Unhealthy,
            ServiceEventKind::Unhealthy,
            "does not answer after its restart",
        )
    };
    if let Err(error) =
        containers::record_event(&platform, &container, kind, message, Some(health)).await
    {
        tracing::warn!(%error, "recording a container back in service failed");
    }
    if let Err(error) = platform.publish_routes().await {
        tracing::error!(%error, "putting a restarted container back on its route failed");
    }
}

/// Probe results of one container.
#[derive(Default)]
struct Tally {
    last: Option<Instant>,
    successes: u32,
    failures: u32,
}

/// What the probe loop knows of a service, read again every [`SERVICE_REFRESH`] and whenever
/// one of its containers is new to the loop (a deploy went live, the monitor started).
struct ServiceCheck {
    health: HealthCheck,
    check: Check,
    read_at: Instant,
}

async fn probe_forever(platform: Arc<Platform>, shutdown: CancellationToken) {
    let mut tallies: HashMap<i64, Tally> = HashMap::new();
    let mut services: HashMap<i64, ServiceCheck> = HashMap::new();
    let mut ticks = tokio::time::interval(PROBE_TICK);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        // One query a tick finds the serving containers, so a deploy that went live is
        // probed at its next tick.
        let serving = match platform.store.active_containers().await {
            Ok(containers) => containers
                .into_iter()
                .filter(|c| c.state == ContainerState::Serving && c.health != Some(Health::Stopped))
                .collect::<Vec<_>>(),
            Err(error) => {
                tracing::warn!(%error, "listing containers to probe failed");
                continue;
            }
        };
        tallies.retain(|id, _| serving.iter().any(|c| c.id == *id));
        services.retain(|id, _| serving.iter().any(|c| c.service_id == *id));
        let due: HashSet<i64> = serving
            .iter()
            .filter(|c| {
                !tallies.contains_key(&c.id)
                    || services
                        .get(&c.service_id)
                        .is_none_or(|s| s.read_at.elapsed() >= SERVICE_REFRESH)
            })
            .map(|c| c.service_id)
            .collect();
        for service_id in due {
            match platform.store.service_by_id(service_id).await {
                Ok(service) => {
                    let check = ServiceCheck {
                        health: service.runtime.health.clone(),
                        check: Check::of(&platform.settings, &service),
                        read_at: Instant::now(),
                    };
                    services.insert(service_id, check);
                }
                // Not probed until it can be read again (at the next tick).
                Err(error) => {
                    tracing::warn!(service = service_id, %error, "reading a service to probe failed");
                    services.remove(&service_id);
                }
            }
        }
        for container in serving {
            let Some(service) = services.get(&container.service_id) else {
                continue;
            };
            let tally = tallies.entry(container.id).or_default();
            if tally
                .last
                .is_some_and(|at| at.elapsed() < service.health.interval)
            {
                continue;
            }
            tally.last = Some(Instant::now());
            probe_one(
                &platform,
                &container,
                &service.health,
                &service.check,
                tally,
            )
            .await;
        }
    }
}

async fn probe_one(
    platform: &Platform,
    container: &ContainerRecord,
    health: &HealthCheck,
    check: &Check,
    tally: &mut Tally,
) {
    let (Some(address), Some(port)) = (&container.address, container.port) else {
        return;
    };
    let Ok(ip) = address.parse() else { return };
    let result = check.probe(SocketAddr::new(ip, port)).await;
    let (next, kind, message) = match result {
        Ok(()) => {
            tally.successes += 1;
            tally.failures = 0;
            if tally.successes < health.healthy_threshold {
                return;
            }
            (
                Health::Healthy,
                ServiceEventKind::Healthy,
                "answers its health check again".to_owned(),
            )
        }
        Err(failure) => {
            tally.failures += 1;
            tally.successes = 0;
            if tally.failures < health.unhealthy_threshold {
                return;
            }
            (
                Health::Unhealthy,
                ServiceEventKind::Unhealthy,
                format!(
                    "failed {} health checks in a row: {failure}",
                    tally.failures
                ),
            )
        }
    };
    let store = &platform.store;
    match store.set_container_health(container.id, next).await {
        // A first "healthy" is not news: the deploy already said it was ready.
        Ok(previous)
            if previous != Some(next) && !(previous.is_none() && next == Health::Healthy) =>
        {
            tracing::info!(container = %container.name, health = next.as_str(), %message, "health changed");
            if let Err(error) = store
                .record_event(container.service_id, Some(&container.name), kind, &message)
                .await
            {
                tracing::warn!(%error, "recording a health event failed");
            }
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "recording health failed"),
    }
}
