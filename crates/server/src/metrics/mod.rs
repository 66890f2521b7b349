//! Container and platform metrics: collected, stored, and exported to Prometheus.
//!
//! - [`collector`] samples every running container of this installation at the configured
//!   interval through the engine's stats API and writes each round in one statement.
//! - [`rollup`] averages complete minutes and hours and deletes what outlived its retention,
//!   once a minute.
//! - [`exposition`] renders the Prometheus text format: the container gauges the collector
//!   sets, platform figures read from the store at scrape time (deployments by status, queue
//!   depth, build and deploy durations), the API's own (request latency, SSE clients) and the
//!   restarts of supervised tasks (`crate::supervisor`). It is served at `GET /metrics` behind
//!   a `read` token, and optionally without a token on a loopback address of its own
//!   (`--metrics-listen`).
//!
//! The store is the source of truth for the series and the API reads them from there (see
//! `api/metrics.rs`); Prometheus gauges and histograms live in the process-wide recorder of
//! the `metrics` crate, installed once ([`exporter`]).

use std::sync::OnceLock;
use std::time::Duration;

use helvetia_core::metrics::Retention;
use helvetia_core::validation::Invalid;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use metrics_util::MetricKindMask;

pub mod collector;
pub mod exposition;
pub mod rollup;

/// How metrics are collected and kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsSettings {
    /// How often every running container is sampled.
    pub interval: Duration,
    pub retention: Retention,
}

impl MetricsSettings {
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
    /// Container gauges not updated for this long leave the exposition (their container is
    /// gone), so the interval must stay well below it.
    const GAUGE_IDLE: Duration = Duration::from_secs(90);
    const MAX_INTERVAL: Duration = Duration::from_secs(30);

    pub fn validate(&self) -> Result<(), Invalid> {
        if self.interval < Duration::from_secs(1) || self.interval > Self::MAX_INTERVAL {
            return Err(Invalid::new(
                "the metrics interval must be between 1 s and 30 s",
            ));
        }
        self.retention.validate()
    }
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            interval: Self::DEFAULT_INTERVAL,
            retention: Retention::default(),
        }
    }
}

/// Histogram buckets, in seconds: builds and deploys take seconds to minutes, API requests
/// milliseconds.
const DURATION_BUCKETS: [f64; 12] = [
    0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The process's Prometheus recorder, installed on first use (when the task supervisor is
/// built, so at start-up). `metrics`' macros record into it from anywhere; the
/// exposition renders it.
pub fn exporter() -> &'static exposition::Exporter {
    static EXPORTER: OnceLock<exposition::Exporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let idle = |builder: PrometheusBuilder| {
            builder.idle_timeout(MetricKindMask::GAUGE, Some(MetricsSettings::GAUGE_IDLE))
        };
        let histograms = [
            (exposition::BUILD_DURATION, &DURATION_BUCKETS),
            (exposition::DEPLOY_DURATION, &DURATION_BUCKETS),
            (exposition::REQUEST_DURATION, &LATENCY_BUCKETS),
        ]
        .into_iter()
        .try_fold(
            idle(PrometheusBuilder::new()),
            |builder, (name, buckets)| {
                builder.set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets)
            },
        );
        let builder = histograms.unwrap_or_else(|error| {
            tracing::warn!(%error, "histograms are exported as summaries");
            idle(PrometheusBuilder::new())
        });
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(error) = metrics::set_global_recorder(recorder) {
            // Whoever embeds the server installed their own; ours then renders nothing.
            tracing::warn!(%error, "another metrics recorder is installed; /metrics stays empty");
        }
        exposition::Exporter::new(handle)
    })
}
