//! Reading a service's container metrics: a time series, what it uses now with a health
//! summary, and its samples as they come. The live stream's framing belongs to the entry
//! point.

use std::collections::{BTreeMap, VecDeque};

use helvetia_api_types::{ContainerSample, CurrentMetrics, MetricsHealth, MetricsSeries};
use helvetia_core::Timestamp;
use helvetia_core::auth::Caller;
use helvetia_core::container::ServiceEventKind;
use helvetia_core::metrics::{memory_near_limit, plan_series};
use helvetia_core::units::{parse_duration, parse_time};
use helvetia_core::validation::FieldErrors;
use helvetia_store::Store;
use helvetia_store::metrics::SeriesQuery;

use super::access::OwnedService;
use super::{App, Result, UseCaseError};

/// The range a series covers when none is asked for.
const DEFAULT_RANGE: jiff::SignedDuration = jiff::SignedDuration::from_secs(3600);
/// The engine restarts counted in the health summary are those of the last hour.
const RESTARTS_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_secs(3600);

/// Which series to read, as a client writes it.
#[derive(Debug, Default)]
pub struct SeriesRange<'a> {
    /// Start: a duration ago (`1h`) or a timestamp. Default: an hour ago.
    pub from: Option<&'a str>,
    /// End, like `from`. Default: now.
    pub to: Option<&'a str>,
    /// The width of each point (`30s`). Default: the range in about 120 points.
    pub step: Option<&'a str>,
    /// Only this deployment's containers.
    pub deployment: Option<i64>,
    /// Only this container.
    pub container: Option<&'a str>,
}

/// The service's usage over time: per step, each container's average, added up over the
/// service's containers.
pub async fn series(
    app: &App,
    service: &OwnedService,
    range: SeriesRange<'_>,
) -> Result<MetricsSeries> {
    let now = Timestamp::now();
    let mut errors = FieldErrors::new();
    let from = errors.check(
        "from",
        range
            .from
            .map_or(Ok(now - DEFAULT_RANGE), |from| parse_time(from, now)),
    );
    let to = errors.check("to", range.to.map_or(Ok(now), |to| parse_time(to, now)));
    let step = errors.check("step", range.step.map(parse_duration).transpose());
    let (from, to, step) = errors.finish(|| Some((from?, to?, step?)))?;
    let settings = &app.platform.settings.metrics;
    let plan = plan_series(from, to, step, settings.interval, now, &settings.retention)
        .map_err(|e| FieldErrors::single("to", e))?;
    let points = app
        .store
        .service_metrics(&SeriesQuery {
            service_id: service.id,
            from,
            to,
            step: plan.step,
            resolution: plan.resolution,
            deployment_id: range.deployment,
            container: range.container,
        })
        .await?;
    Ok(MetricsSeries {
        from,
        to,
        step_seconds: plan.step.as_secs(),
        resolution: plan.resolution,
        points,
    })
}

/// The service's current usage per container, with a health summary: containers near their
/// memory limit, restarts in the last hour.
pub async fn current(app: &App, service: &OwnedService) -> Result<CurrentMetrics> {
    let now = Timestamp::now();
    // Three rounds, so a slow round does not make a running container vanish.
    let recent = jiff::SignedDuration::try_from(app.platform.settings.metrics.interval * 3)
        .unwrap_or(jiff::SignedDuration::from_secs(15));
    let mut latest = BTreeMap::new();
    for sample in app
        .store
        .service_samples_since(service.id, now - recent)
        .await?
    {
        // Oldest first: each container ends with its newest sample.
        latest.insert(sample.container.clone(), sample);
    }
    let containers: Vec<ContainerSample> = latest.into_values().collect();
    let near_limit: Vec<String> = containers
        .iter()
        .filter(|c| memory_near_limit(c.usage.memory_bytes, c.usage.memory_limit_bytes))
        .map(|c| c.container.clone())
        .collect();
    let restarts_last_hour = app
        .store
        .count_service_events(
            service.id,
            ServiceEventKind::Restarted,
            now - RESTARTS_WINDOW,
        )
        .await?;
    Ok(CurrentMetrics {
        health: MetricsHealth {
            ok: near_limit.is_empty() && restarts_last_hour == 0,
            memory_near_limit: near_limit,
            restarts_last_hour,
        },
        containers,
    })
}

/// A service's samples as the collector stores them, from a given time on.
pub struct SampleFollower {
    store: Store,
    service_id: i64,
    /// Samples up to this time were handed out.
    sent_until: Timestamp,
    pending: VecDeque<ContainerSample>,
    polls: tokio::time::Interval,
}

/// Follows the service's samples taken after `sent_until`, polling the store at the
/// collection interval.
pub fn follow(app: &App, service: &OwnedService, sent_until: Timestamp) -> SampleFollower {
    SampleFollower {
        store: app.store.clone(),
        service_id: service.id,
        sent_until,
        pending: VecDeque::new(),
        polls: tokio::time::interval(app.platform.settings.metrics.interval),
    }
}

impl SampleFollower {
    /// The next sample, waiting for the collector's next round when all were handed out;
    /// `None` ends the stream (the store failed).
    pub async fn next(&mut self) -> Option<ContainerSample> {
        loop {
            if let Some(sample) = self.pending.pop_front() {
                return Some(sample);
            }
            self.polls.tick().await;
            let after = self.sent_until + jiff::SignedDuration::from_millis(1);
            match self
                .store
                .service_samples_since(self.service_id, after)
                .await
            {
                Ok(samples) => {
                    if let Some(last) = samples.last() {
                        self.sent_until = last.at;
                    }
                    self.pending.extend(samples);
                }
                Err(error) => {
                    tracing::warn!(%error, "reading metrics for a stream failed");
                    return None;
                }
            }
        }
    }
}

/// The Prometheus exposition of the whole instance: every team's series, so only for an
/// instance administrator (or the system).
pub async fn prometheus(app: &App, caller: &Caller) -> Result<String> {
    if !caller.is_instance_admin() {
        return Err(UseCaseError::Forbidden(
            "/metrics shows every team's services: it is for instance administrators".into(),
        ));
    }
    Ok(crate::metrics::exporter().scrape(&app.store).await?)
}
