//! The collector: every `interval`, one reading of each running container of this
//! installation, turned into a sample and stored.
//!
//! Which containers to read comes from the store every round (active containers the engine
//! created), so containers that start or stop are picked up at the next round without a
//! restart; one that is not running answers with no counters and is skipped. The engine's one-shot
//! stats carry no previous reading, so the collector keeps each container's last one: a
//! container's first round only primes it, and every later round yields a sample of what it
//! used since. Restart counts and CPU limits come from inspecting the container, at most once
//! a minute each.
//!
//! A round stays cheap with many containers: the readings wait together for the engine's next
//! pass over reused connections, and one multi-row `INSERT` stores all samples.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use helvetia_core::Timestamp;
use helvetia_core::metrics::{Reading, StatsDocument, Usage};
use helvetia_engine::docker::{Allotment, Engine, EngineError, StatsReader};
use helvetia_store::StoreError;
use helvetia_store::metrics::{MetricTarget, NewSample};
use metrics::{Label, SharedString};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::platform::Platform;

/// Readings in flight at once. The engine (20.10) answers a one-shot reading at its next
/// collection pass, once a second, for every waiting reader together: with 4 at a time a
/// round of 50 containers took 13 s (measured by `bench/collector`). With all of a round in
/// flight it takes about a second, and the engine reads every cgroup in one pass.
const CONCURRENCY: usize = 64;
/// How often a container's restart count and CPU limit are read again.
const ALLOTMENT_REFRESH: Duration = Duration::from_secs(60);
/// A reading the engine has not answered by then is skipped this round.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What the collector remembers about a container between rounds.
struct Tracked {
    previous: Option<Reading>,
    allotment: Option<Allotment>,
    allotment_read: Option<Instant>,
    /// Its Prometheus labels, built once: project, service, deployment, container.
    labels: Vec<Label>,
}

impl Tracked {
    fn new(target: &MetricTarget) -> Tracked {
        let label = |key: &'static str, value: String| {
            Label::new(key, SharedString::from(Arc::<str>::from(value)))
        };
        Tracked {
            previous: None,
            allotment: None,
            allotment_read: None,
            labels: vec![
                label("project", target.project.clone()),
                label("service", target.service.clone()),
                label("deployment", target.deployment_id.to_string()),
                label("container", target.container.clone()),
            ],
        }
    }

    fn allotment_due(&self) -> bool {
        self.allotment_read
            .is_none_or(|read| read.elapsed() >= ALLOTMENT_REFRESH)
    }

    /// Sets the container's gauges. Gauges of containers that are gone stop being set and
    /// leave the exposition after the recorder's idle timeout.
    fn export(&self, usage: &Usage, restarts: i64) {
        let values = [
            ("helvetia_container_cpu_percent", usage.cpu_percent),
            (
                "helvetia_container_cpu_limit_percent",
                usage.cpu_limit_percent,
            ),
            ("helvetia_container_memory_bytes", usage.memory_bytes as f64),
            (
                "helvetia_container_memory_limit_bytes",
                usage.memory_limit_bytes as f64,
            ),
            (
                "helvetia_container_network_receive_bytes_per_second",
                usage.net_rx_bytes_per_second,
            ),
            (
                "helvetia_container_network_transmit_bytes_per_second",
                usage.net_tx_bytes_per_second,
            ),
            (
                "helvetia_container_block_read_bytes_per_second",
                usage.block_read_bytes_per_second,
            ),
            (
                "helvetia_container_block_write_bytes_per_second",
                usage.block_write_bytes_per_second,
            ),
            ("helvetia_container_pids", usage.pids as f64),
            ("helvetia_container_restarts", restarts as f64),
        ];
        for (name, value) in values {
            metrics::gauge!(name, self.labels.clone()).set(value);
        }
    }
}

/// One container's answers in one round.
struct Answers {
    stats: StatsDocument,
    allotment: Option<Allotment>,
}

struct Collector {
    platform: Arc<Platform>,
    reader: Arc<StatsReader>,
    /// By engine id.
    tracked: HashMap<String, Tracked>,
}

/// Collects until `shutdown`, reading through `reader` (shared by the runs of the task).
pub async fn run(platform: Arc<Platform>, reader: Arc<StatsReader>, shutdown: CancellationToken) {
    // Installs the recorder before the first gauge is set.
    super::exporter();
    let mut ticks = tokio::time::interval(platform.settings.metrics.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut collector = Collector {
        platform,
        reader,
        tracked: HashMap::new(),
    };
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(error) = collector.collect(Timestamp::now()).await {
            tracing::warn!(%error, "collecting container metrics failed");
        }
    }
}

impl Collector {
    /// One round: reads every active container and stores the samples as taken at `now`.
    async fn collect(&mut self, now: Timestamp) -> Result<(), StoreError> {
        let round = Instant::now();
        let store = &self.platform.store;
        let engine = &self.platform.engine;
        let targets = store.metric_targets().await?;
        let current: HashSet<&str> = targets.iter().map(|t| t.engine_id.as_str()).collect();
        self.tracked.retain(|id, _| current.contains(id.as_str()));

        // Built up front: a lazy iterator of futures borrowing `targets` would not be `Send`
        // for every lifetime, which the spawned task needs.
        let reads: Vec<_> = targets
            .iter()
            .map(|target| {
                let due = self
                    .tracked
                    .get(&target.engine_id)
                    .is_none_or(Tracked::allotment_due);
                read(&self.reader, engine, &target.engine_id, due)
            })
            .collect();
        let answers: Vec<Result<Answers, EngineError>> = futures::stream::iter(reads)
            .buffered(CONCURRENCY)
            .collect()
            .await;

        let mut samples = Vec::with_capacity(targets.len());
        for (target, answers) in targets.iter().zip(answers) {
            let tracked = self
                .tracked
                .entry(target.engine_id.clone())
                .or_insert_with(|| Tracked::new(target));
            let answers = match answers {
                Ok(answers) => answers,
                Err(error) => {
                    tracing::debug!(container = %target.container, %error, "no reading this round");
                    continue;
                }
            };
            if let Some(allotment) = answers.allotment {
                tracked.allotment = Some(allotment);
                tracked.allotment_read = Some(Instant::now());
            }
            let Some(reading) = answers.stats.reading() else {
                // Not running (exited, or restarting): its counters start again with it.
                tracked.previous = None;
                continue;
            };
            let cpus = tracked.allotment.and_then(|a| a.cpus);
            let usage = tracked
                .previous
                .and_then(|previous| reading.usage_since(&previous, cpus));
            tracked.previous = Some(reading);
            let Some(usage) = usage else { continue };
            let restarts = tracked.allotment.map_or(0, |a| a.restart_count);
            tracked.export(&usage, restarts);
            samples.push(NewSample {
                service_id: target.service_id,
                deployment_id: target.deployment_id,
                container: &target.container,
                usage,
                restarts,
            });
        }
        if !samples.is_empty() {
            store.insert_container_samples(now, &samples).await?;
        }
        tracing::debug!(
            containers = targets.len(),
            samples = samples.len(),
            took_ms = round.elapsed().as_millis(),
            "container metrics collected"
        );
        Ok(())
    }
}

/// Reads one container's stats, and its allotment when `with_allotment`, within
/// [`READ_TIMEOUT`].
async fn read(
    reader: &StatsReader,
    engine: &Engine,
    id: &str,
    with_allotment: bool,
) -> Result<Answers, EngineError> {
    let answers = async {
        if with_allotment {
            let (stats, allotment) =
                tokio::try_join!(reader.read(id), engine.container_allotment(id))?;
            Ok(Answers {
                stats,
                allotment: Some(allotment),
            })
        } else {
            Ok(Answers {
                stats: reader.read(id).await?,
                allotment: None,
            })
        }
    };
    tokio::time::timeout(READ_TIMEOUT, answers)
        .await
        .unwrap_or_else(|_| {
            Err(EngineError::Unreachable(format!(
                "no stats for {id} in time"
            )))
        })
}
