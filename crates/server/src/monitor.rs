//! The health monitor: watches live containers after their deployment is done.
//!
//! Two loops:
//! - **events**: the engine's container events (start, die, oom, health_status). A restarted
//!   container may come back with a new address: the address is updated in the store and the
//!   routes are published at once. Deaths, restarts and OOM kills are recorded as service
//!   events. On every connection to the stream (the first, and each after it broke because
//!   the engine restarted, with back-off) it catches up first: each serving container the
//!   engine reports other than the monitor last saw it (down, up again, at a new address,
//!   restarted) is handled as the event it missed would have been ([`missed`]).
//! - **probes**: every serving container is probed from outside, like the readiness probe of
//!   a deploy, at its service's health-check interval; crossing the healthy or unhealthy
//!   threshold is recorded. The serving containers are listed at every tick; each service's
//!   health check is read again every 30 s and when a container of it is new.
//!
//! Both loops change a container's health through [`set_health`], which publishes the routes
//! whenever that puts the container on its route or takes it off.
//!
//! Containers that are not serving (starting, draining) belong to a job and are ignored.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use helvetia_core::container::{ContainerRecord, ContainerState, Health, ServiceEventKind};
use helvetia_core::runtime::HealthCheck;
use helvetia_engine::docker::{
    ContainerAction, ContainerEvent, ContainerStatus, EngineError, ImageHealth,
};
use helvetia_store::StoreError;
use tokio_util::sync::CancellationToken;

use crate::containers;
use crate::platform::Platform;
use crate::readiness::{Attempts, Check};
use crate::reconcile::{self, ReconcileError};

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
    let mut restarts = RestartsSeen::new();
    loop {
        let mut events = Box::pin(platform.engine.container_events());
        // Whatever happened while the stream was down (or before this task started: the
        // supervisor may have restarted it) was not heard. An event in the instant between
        // catching up and the stream's subscription is still seen by the probe loop.
        match catch_up(&platform, &mut restarts).await {
            Ok(()) => {
                // The engine answers again: the next outage starts from the first delay.
                // Waiting for an event to reset it would let quiet restarts (live-restore:
                // nothing stops) double it each time, up to its maximum.
                delay = FIRST_RECONNECT_DELAY;
                tracing::info!("caught up with the engine; following its events");
            }
            Err(error) => tracing::warn!(%error, "catching up with the engine failed"),
        }
        if !first {
            // The containers of running jobs, stale routes and unwanted containers too.
            if let Err(error) = reconcile::converge(&platform).await {
                tracing::warn!(%error, "reconciling after reconnecting failed");
            }
        }
        first = false;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                next = events.next() => match next {
                    Some(Ok(event)) => {
                        delay = FIRST_RECONNECT_DELAY;
                        if let Err(error) = on_event(&platform, &event, &mut restarts).await {
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

/// The engine's restart count of each watched container as the monitor last saw it, by engine
/// id: a restart it did not hear of shows as a higher count.
type RestartsSeen = HashMap<String, i64>;

async fn on_event(
    platform: &Arc<Platform>,
    event: &ContainerEvent,
    restarts: &mut RestartsSeen,
) -> Result<(), StoreError> {
    let store = &platform.store;
    let started = match event.action {
        ContainerAction::Start | ContainerAction::Restart => {
            let Ok(status) = platform.engine.inspect_container(&event.id).await else {
                return Ok(());
            };
            // Noted for every container, before it is looked up: a new deployment's container
            // starts before the store knows its engine id, and serves later still; when the
            // engine restarts it while the stream is down, only a count known from before
            // tells catching up that it did.
            restarts.insert(event.id.clone(), status.restart_count);
            Some(status)
        }
        ContainerAction::Oom | ContainerAction::Die | ContainerAction::HealthStatus(_) => None,
    };
    let Some(container) = store.container_by_engine_id(&event.id).await? else {
        return Ok(());
    };
    if !is_watched(&container) {
        return Ok(());
    }
    let record = async |kind: ServiceEventKind, message: String, health: Option<Health>| {
        if let Some(health) = health {
            set_health(platform, &container, health).await?;
        }
        containers::record_event(platform, &container, kind, &message, None).await
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
        }
        ContainerAction::Start | ContainerAction::Restart => {
            let Some(status) = started else {
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

/// Whether the monitor watches a container: a serving one. Starting and draining containers
/// belong to a job; one a `recreate` deploy stopped is the deploy's business, not a crash.
fn is_watched(container: &ContainerRecord) -> bool {
    container.state == ContainerState::Serving && container.health != Some(Health::Stopped)
}

/// Sets a container's health as the monitor saw it, and publishes the routes when that puts
/// the container on its route or takes it off. Returns its previous health.
async fn set_health(
    platform: &Platform,
    container: &ContainerRecord,
    health: Health,
) -> Result<Option<Health>, StoreError> {
    let previous = platform
        .store
        .set_container_health(container.id, health)
        .await?;
    if previous.is_none_or(Health::is_routed) != health.is_routed()
        && let Err(error) = platform.publish_routes().await
    {
        tracing::error!(container = %container.name, %error, "publishing routes after a health change failed");
    }
    Ok(previous)
}

/// Handles, for each watched container, the event the monitor missed while it was not
/// listening, as if it had heard it.
async fn catch_up(
    platform: &Arc<Platform>,
    restarts: &mut RestartsSeen,
) -> Result<(), ReconcileError> {
    let mut seen = RestartsSeen::new();
    for container in platform.store.active_containers().await? {
        let Some(engine_id) = container.engine_id.as_deref() else {
            continue;
        };
        if !is_watched(&container) {
            // Kept for when it serves (a deployment's container still starting).
            if let Some(&known) = restarts.get(engine_id) {
                seen.insert(engine_id.to_owned(), known);
            }
            continue;
        }
        let status = match platform.engine.inspect_container(engine_id).await {
            Ok(status) => status,
            // The reconciler reports a serving container gone from the engine.
            Err(EngineError::NotFound(_)) => continue,
            Err(error) => return Err(error.into()),
        };
        seen.insert(engine_id.to_owned(), status.restart_count);
        let known = restarts.get(engine_id).copied();
        if let Some(action) = missed(&container, &status, known) {
            tracing::info!(container = %container.name, ?action, "catching up with a missed event");
            let event = ContainerEvent {
                id: engine_id.to_owned(),
                name: container.name.clone(),
                action,
                exit_code: status.exit_code,
            };
            on_event(platform, &event, restarts).await?;
        }
    }
    // Containers no longer active are forgotten.
    *restarts = seen;
    Ok(())
}

/// The event that would have told the monitor what the engine's `status` of a watched
/// container says, if it differs from what the monitor last saw: down while routed, up
/// again while restarting, up at a new address (the engine may give a restarted container
/// another one), or restarted more often than the `known_restarts` it last saw (`None`: it
/// never looked).
fn missed(
    container: &ContainerRecord,
    status: &ContainerStatus,
    known_restarts: Option<i64>,
) -> Option<ContainerAction> {
    let restarting = container.health == Some(Health::Restarting);
    // The engine reports a container it is about to restart as running too.
    if !status.running || status.restarting {
        return (!restarting).then_some(ContainerAction::Die);
    }
    let moved = status.address.is_some() && status.address != container.address;
    let restarted = known_restarts.is_some_and(|known| status.restart_count > known);
    (restarting || moved || restarted).then_some(ContainerAction::Start)
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
    let recorded = match set_health(&platform, &container, health).await {
        Ok(_) => containers::record_event(&platform, &container, kind, message, None).await,
        Err(error) => Err(error),
    };
    if let Err(error) = recorded {
        tracing::warn!(%error, "recording a container back in service failed");
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
                .filter(is_watched)
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
            // Known not to answer while the engine restarts it; unhealthy would route it.
            if tally.failures < health.unhealthy_threshold
                || container.health == Some(Health::Restarting)
            {
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
    match set_health(platform, container, next).await {
        // A first "healthy" is not news: the deploy already said it was ready.
        Ok(previous)
            if previous != Some(next) && !(previous.is_none() && next == Health::Healthy) =>
        {
            tracing::info!(container = %container.name, health = next.as_str(), %message, "health changed");
            if let Err(error) = platform
                .store
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

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(health: Option<Health>) -> ContainerRecord {
        ContainerRecord {
            id: 1,
            deployment_id: 1,
            service_id: 1,
            name: "web-1".into(),
            engine_id: Some("abc".into()),
            address: Some("10.0.0.2".into()),
            port: Some(8080),
            state: ContainerState::Serving,
            health,
        }
    }

    fn engine(running: bool, restarting: bool, address: Option<&str>) -> ContainerStatus {
        ContainerStatus {
            id: "abc".into(),
            name: "web-1".into(),
            running,
            restarting,
            exited: !running,
            exit_code: Some(if running { 0 } else { 137 }),
            oom_killed: false,
            restart_count: 2,
            address: address.map(str::to_owned),
            pid: running.then_some(42),
            labels: HashMap::new(),
            health: None,
        }
    }

    #[test]
    fn catching_up_replays_what_differs_between_the_engine_and_the_monitors_view() {
        use ContainerAction::{Die, Start};
        let here = Some("10.0.0.2");
        let elsewhere = Some("10.0.0.9");
        let healthy = Some(Health::Healthy);
        let restarting = Some(Health::Restarting);
        // The engine's containers below were restarted twice.
        let cases = [
            // As seen: nothing missed.
            (None, engine(true, false, here), Some(2), None),
            (healthy, engine(true, false, here), Some(2), None),
            (
                Some(Health::Unhealthy),
                engine(true, false, None),
                Some(2),
                None,
            ),
            (restarting, engine(false, false, None), Some(2), None),
            (restarting, engine(true, true, here), Some(2), None),
            // Never looked at before (the monitor just started): no restart to tell.
            (healthy, engine(true, false, here), None, None),
            // Died unheard: taken off its route.
            (healthy, engine(false, false, None), Some(2), Some(Die)),
            (None, engine(true, true, here), Some(2), Some(Die)),
            (
                Some(Health::OomKilled),
                engine(false, false, None),
                None,
                Some(Die),
            ),
            // Up again unheard, at its old address or a new one: probed back onto its route.
            (restarting, engine(true, false, here), Some(2), Some(Start)),
            (
                restarting,
                engine(true, false, elsewhere),
                Some(1),
                Some(Start),
            ),
            // Restarted unheard: recorded, and routed at its new address if it has one.
            (healthy, engine(true, false, here), Some(1), Some(Start)),
            (
                healthy,
                engine(true, false, elsewhere),
                Some(2),
                Some(Start),
            ),
        ];
        for (health, status, known, expected) in cases {
            assert_eq!(
                missed(&seen(health), &status, known),
                expected,
                "{health:?} {known:?} {status:?}"
            );
        }
    }
}
