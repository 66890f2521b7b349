use std::time::Duration;

use helvetia_core::Timestamp;
use helvetia_core::container::{ContainerState, ServiceEventKind};
use helvetia_core::deployment::DeploymentStatus::*;
use helvetia_core::metrics::{Resolution, Retention, Usage};
use helvetia_store::metrics::{NewSample, SeriesQuery};

use crate::backend::TestDb;
use crate::deployments::{build_main, demo_service};
use crate::runtime::ready_deployment;

/// A whole hour, so minute and hour buckets start at `T0`.
fn t0() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn at(seconds: i64) -> Timestamp {
    t0() + jiff::SignedDuration::from_secs(seconds)
}

fn usage(cpu: f64, memory: u64) -> Usage {
    Usage {
        cpu_percent: cpu,
        cpu_limit_percent: cpu * 2.0,
        memory_bytes: memory,
        memory_limit_bytes: 1000,
        net_rx_bytes_per_second: cpu * 10.0,
        net_tx_bytes_per_second: 1.0,
        block_read_bytes_per_second: 0.0,
        block_write_bytes_per_second: 2.0,
        pids: 4,
    }
}

fn sample(service_id: i64, deployment_id: i64, container: &str, usage: Usage) -> NewSample<'_> {
    NewSample {
        service_id,
        deployment_id,
        container,
        usage,
        restarts: 1,
    }
}

async fn points(db: &TestDb, query: &SeriesQuery<'_>) -> Vec<helvetia_core::metrics::SeriesPoint> {
    db.store.service_metrics(query).await.unwrap()
}

fn series(
    service_id: i64,
    resolution: Resolution,
    step: u64,
    from: Timestamp,
    to: Timestamp,
) -> SeriesQuery<'static> {
    SeriesQuery {
        service_id,
        from,
        to,
        step: Duration::from_secs(step),
        resolution,
        deployment_id: None,
        container: None,
    }
}

/// Every 10 s for two hours, container `c1` uses the CPU of its minute's number (0, 1, 2, …)
/// and 1000 × its hour's number + 100 bytes of memory.
async fn two_hours_of_samples(db: &TestDb, service_id: i64) {
    for k in 0..720 {
        let minute = k / 6;
        let memory = 1000 * u64::try_from(minute / 60).unwrap() + 100;
        db.store
            .insert_container_samples(
                at(k * 10),
                &[sample(service_id, 1, "c1", usage(minute as f64, memory))],
            )
            .await
            .unwrap();
    }
}

pub async fn samples_roll_up_once_and_expire(db: &TestDb) {
    let web = demo_service(db, "web").await;
    two_hours_of_samples(db, web.id).await;
    let raw = db.store.service_samples_since(web.id, t0()).await.unwrap();
    assert_eq!(raw.len(), 720);
    assert_eq!(raw[6].usage.cpu_percent, 1.0);

    // Nothing is complete 30 s in: the first minute may still get samples.
    assert_eq!(db.store.roll_up_metrics(at(30)).await.unwrap(), 0);
    // At 3 minutes the first two minutes are complete (a minute settles for one more).
    assert_eq!(db.store.roll_up_metrics(at(180)).await.unwrap(), 2);
    let minutes = points(db, &series(web.id, Resolution::Minute, 60, t0(), at(7200))).await;
    assert_eq!(minutes.len(), 2);
    assert_eq!((minutes[0].at, minutes[1].at), (t0(), at(60)));
    assert_eq!(minutes[1].usage.cpu_percent, 1.0);
    assert_eq!(minutes[1].usage.memory_bytes, 100);
    // Running again at the same time, or a little later, counts nothing twice.
    assert_eq!(db.store.roll_up_metrics(at(180)).await.unwrap(), 0);
    assert_eq!(db.store.roll_up_metrics(at(190)).await.unwrap(), 0);
    assert_eq!(
        points(db, &series(web.id, Resolution::Minute, 60, t0(), at(7200))).await,
        minutes
    );

    // Two hours later every minute and both hours are done, each once.
    let written = db.store.roll_up_metrics(at(7200 + 120)).await.unwrap();
    assert_eq!(written, 118 + 2);
    assert_eq!(db.store.roll_up_metrics(at(7200 + 120)).await.unwrap(), 0);
    let hours = points(db, &series(web.id, Resolution::Hour, 3600, t0(), at(7200))).await;
    assert_eq!(hours.len(), 2);
    // The first hour's minutes average 0…59: 29.5; the second's 60…119: 89.5.
    assert_eq!(hours[0].usage.cpu_percent, 29.5);
    assert_eq!(hours[1].usage.cpu_percent, 89.5);
    assert_eq!(hours[1].usage.memory_bytes, 1100);
    assert_eq!(hours[1].usage.net_rx_bytes_per_second, 895.0);
    assert_eq!(hours[1].restarts, 1);
    let all_minutes = points(db, &series(web.id, Resolution::Minute, 60, t0(), at(7200))).await;
    assert_eq!(all_minutes.len(), 120);
    assert!(all_minutes.iter().all(|m| m.containers == 1));

    // Retention: raw samples older than an hour go; the averages stay.
    let retention = Retention {
        raw: Duration::from_secs(3600),
        ..Retention::default()
    };
    let now = at(7200 + 120);
    let deleted = db.store.prune_metrics(now, &retention).await.unwrap();
    assert_eq!(deleted, 372, "samples before 1:02");
    let kept = db.store.service_samples_since(web.id, t0()).await.unwrap();
    assert_eq!(kept.first().unwrap().at, at(3720));
    assert_eq!(db.store.prune_metrics(now, &retention).await.unwrap(), 0);
    // 91 days later even the hourly averages are gone.
    let later = at(91 * 86_400);
    db.store.prune_metrics(later, &retention).await.unwrap();
    for resolution in Resolution::ALL {
        let left = points(db, &series(web.id, resolution, 3600, t0(), later)).await;
        assert!(left.is_empty(), "{resolution:?}: {left:?}");
    }
}

pub async fn series_add_up_containers_and_filter(db: &TestDb) {
    let web = demo_service(db, "web").await;
    let other = demo_service(db, "other").await;
    for (second, cpu) in [(0, 10.0), (5, 20.0), (10, 30.0)] {
        db.store
            .insert_container_samples(
                at(second),
                &[
                    sample(web.id, 1, "old", usage(cpu, 100)),
                    sample(web.id, 2, "new", usage(cpu * 2.0, 300)),
                    sample(other.id, 3, "elsewhere", usage(99.0, 999)),
                ],
            )
            .await
            .unwrap();
    }
    let query = series(web.id, Resolution::Raw, 10, t0(), at(20));
    let steps = points(db, &query).await;
    assert_eq!(steps.len(), 2);
    // 0–10 s: old averages 15, new 30; added up.
    assert_eq!(steps[0].containers, 2);
    assert_eq!(steps[0].usage.cpu_percent, 45.0);
    assert_eq!(
        steps[0].usage.cpu_limit_percent, 45.0,
        "the mean of 30 and 60"
    );
    assert_eq!(steps[0].usage.memory_bytes, 400);
    assert_eq!(steps[0].usage.memory_limit_bytes, 2000);
    assert_eq!(steps[0].restarts, 2);
    assert_eq!(steps[1].usage.cpu_percent, 90.0);

    let one_deployment = SeriesQuery {
        deployment_id: Some(2),
        ..query.clone()
    };
    let steps = points(db, &one_deployment).await;
    assert_eq!(steps[0].usage.cpu_percent, 30.0);
    assert_eq!(steps[0].containers, 1);
    let one_container = SeriesQuery {
        container: Some("old"),
        ..query.clone()
    };
    let steps = points(db, &one_container).await;
    assert_eq!(steps[0].usage.cpu_percent, 15.0);
    let before = SeriesQuery {
        to: at(10),
        ..query
    };
    assert_eq!(points(db, &before).await.len(), 1);

    let latest = db
        .store
        .service_samples_since(web.id, at(10))
        .await
        .unwrap();
    let names: Vec<&str> = latest.iter().map(|s| s.container.as_str()).collect();
    assert_eq!(names, ["new", "old"]);
    assert_eq!(latest[0].deployment_id, 2);
    assert_eq!(latest[0].usage, usage(60.0, 300));
    assert_eq!(latest[0].at, at(10));
}

pub async fn what_the_exposition_reads(db: &TestDb) {
    let admin = db.admin().await;
    let web = demo_service(db, "web").await;
    let started = Timestamp::now() - jiff::SignedDuration::from_secs(1);
    assert!(db.store.metric_targets().await.unwrap().is_empty());
    let d = ready_deployment(db, &web, "10.0.0.2").await;
    let targets = db.store.metric_targets().await.unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].engine_id, format!("engine-{d}"));
    assert_eq!(
        (targets[0].project.as_str(), targets[0].service.as_str()),
        ("demo", "web")
    );
    assert_eq!(targets[0].deployment_id, d);

    let queued = db
        .store
        .create_deployment(&admin, &demo_service(db, "api").await, &build_main())
        .await
        .unwrap();
    let mut counts = db.store.deployment_status_counts().await.unwrap();
    counts.sort_by_key(|(status, _)| status.as_str());
    assert_eq!(counts, [(HealthChecking, 1), (Queued, 1)]);

    db.store
        .transition_deployment(d, HealthChecking, Live, "ok")
        .await
        .unwrap();
    db.store
        .transition_deployment(queued.id, Queued, Cancelled, "no")
        .await
        .unwrap();
    let container = &db.store.deployment_containers(d).await.unwrap()[0];
    db.store
        .set_container_state(container.id, ContainerState::Stopped)
        .await
        .unwrap();
    assert!(db.store.metric_targets().await.unwrap().is_empty());
    let finished = db
        .store
        .finished_deployments(
            started,
            Timestamp::now() + jiff::SignedDuration::from_secs(1),
        )
        .await
        .unwrap();
    assert_eq!(finished.len(), 2);
    let live = finished.iter().find(|f| f.status == Live).unwrap();
    let build = live.build.expect("it went through building");
    assert!(build <= live.total);
    let cancelled = finished.iter().find(|f| f.status == Cancelled).unwrap();
    assert_eq!(cancelled.build, None);
    assert!(
        db.store
            .finished_deployments(
                Timestamp::now() + jiff::SignedDuration::from_secs(1),
                Timestamp::MAX
            )
            .await
            .unwrap()
            .is_empty()
    );

    db.store
        .record_event(
            web.id,
            Some("c"),
            ServiceEventKind::Restarted,
            "restarted by the engine",
        )
        .await
        .unwrap();
    db.store
        .record_event(web.id, Some("c"), ServiceEventKind::Exited, "exited")
        .await
        .unwrap();
    assert_eq!(
        db.store
            .count_service_events(web.id, ServiceEventKind::Restarted, started)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        db.store
            .count_service_events(
                web.id,
                ServiceEventKind::Restarted,
                Timestamp::now() + jiff::SignedDuration::from_secs(1)
            )
            .await
            .unwrap(),
        0
    );
}
