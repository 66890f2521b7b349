//! The Prometheus text exposition, and the API's own measurements that go into it.
//!
//! Platform figures are read from the store when Prometheus scrapes, so they are never staler
//! than the scrape: deployments by status, the queue's depth and the days each served
//! certificate has left as gauges, and the durations
//! of deployments that ended since the last scrape as histograms (recorded from the store's
//! transition history, so the deploy pipeline needs no hook). Request latency is measured by
//! [`track_request`], a layer on every API route, which also counts open Server-Sent Events
//! streams.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use helvetia_core::Timestamp;
use helvetia_core::deployment::DeploymentStatus;
use helvetia_store::{Store, StoreError};
use metrics_exporter_prometheus::PrometheusHandle;

use helvetia_core::disk::{DiskUse, Sweep};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const BUILD_DURATION: &str = "helvetia_build_duration_seconds";
pub const DEPLOY_DURATION: &str = "helvetia_deploy_duration_seconds";
pub const REQUEST_DURATION: &str = "helvetia_http_request_duration_seconds";
const DEPLOYMENTS: &str = "helvetia_deployments";
const QUEUED_JOBS: &str = "helvetia_queued_jobs";
const SSE_CLIENTS: &str = "helvetia_sse_clients";
const CERTIFICATE_EXPIRY: &str = "helvetia_certificate_expiry_days";
const DISK_USED: &str = "helvetia_disk_used_bytes";
const DISK_BUDGET: &str = "helvetia_disk_budget_bytes";
const DISK_FREED: &str = "helvetia_disk_freed_bytes_total";

/// The content type of the text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A deployment's end is stamped before its transaction commits; deployments are observed
/// once they ended this long ago, so none commits behind the scrape that passed its time.
const FINISH_SETTLE: jiff::SignedDuration = jiff::SignedDuration::from_secs(5);

/// The recorder's handle, how far the deployment histograms have been fed, and the open
/// streams.
pub struct Exporter {
    handle: PrometheusHandle,
    /// Server-Sent Events streams open now, across the API. Counted here rather than in a
    /// gauge, which the recorder would drop (and zero) after a quiet [`super::MetricsSettings`]
    /// idle time while streams stay open.
    open_streams: AtomicI64,
    /// Deployments that ended up to this time are in the histograms; those that ended before
    /// the server started are not (Prometheus histograms count from a process's start).
    observed_until: tokio::sync::Mutex<Timestamp>,
    /// What the disk budget's last sweep measured, and the budget: set as gauges at each
    /// scrape, since sweeps are further apart than the recorder keeps an idle gauge.
    disk: std::sync::Mutex<Option<(DiskUse, u64)>>,
}

impl Exporter {
    pub(super) fn new(handle: PrometheusHandle) -> Exporter {
        Exporter {
            handle,
            open_streams: AtomicI64::new(0),
            observed_until: tokio::sync::Mutex::new(Timestamp::now()),
            disk: std::sync::Mutex::new(None),
        }
    }

    /// Drops what the recorder no longer needs (idle gauges, drained histogram samples).
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// Keeps what a disk sweep measured for the gauges, and counts what it freed.
    pub fn record_disk(&self, sweep: &Sweep, budget: u64) {
        for (kind, bytes) in sweep.freed.by_kind() {
            metrics::counter!(DISK_FREED, "kind" => kind).increment(bytes);
        }
        *self
            .disk
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((sweep.used, budget));
    }

    /// Refreshes the platform figures from `store` and renders everything.
    pub async fn scrape(&self, store: &Store) -> Result<String, StoreError> {
        let counts = store.deployment_status_counts().await?;
        for status in DeploymentStatus::ALL {
            let count = counts
                .iter()
                .find(|(counted, _)| *counted == status)
                .map_or(0, |(_, count)| *count);
            metrics::gauge!(DEPLOYMENTS, "status" => status.as_str()).set(count as f64);
        }
        metrics::gauge!(QUEUED_JOBS).set(store.queued_job_count().await? as f64);
        metrics::gauge!(SSE_CLIENTS).set(self.open_streams.load(Ordering::Relaxed) as f64);
        let disk = *self
            .disk
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((used, budget)) = disk {
            for (kind, bytes) in used.by_kind() {
                metrics::gauge!(DISK_USED, "kind" => kind).set(bytes as f64);
            }
            metrics::gauge!(DISK_BUDGET).set(budget as f64);
        }
        let now = Timestamp::now();
        for stored in store.certificates().await? {
            if let Some(not_after) = stored.certificate.not_after {
                let days = not_after.duration_since(now).as_secs_f64() / 86_400.0;
                metrics::gauge!(
                    CERTIFICATE_EXPIRY,
                    "names" => stored.subject.joined_names(),
                    "kind" => stored.subject.kind.as_str(),
                )
                .set(days);
            }
        }
        {
            let mut observed_until = self.observed_until.lock().await;
            let settled = Timestamp::now() - FINISH_SETTLE;
            if settled > *observed_until {
                for finished in store.finished_deployments(*observed_until, settled).await? {
                    metrics::histogram!(DEPLOY_DURATION, "status" => finished.status.as_str())
                        .record(finished.total.as_secs_f64());
                    if let Some(build) = finished.build {
                        metrics::histogram!(BUILD_DURATION).record(build.as_secs_f64());
                    }
                }
                *observed_until = settled;
            }
        }
        Ok(self.handle.render())
    }
}

/// The layer on every API route: records each request's latency by method, route template
/// and status, and counts Server-Sent Events streams while they are open.
pub async fn track_request(matched: Option<MatchedPath>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = matched.map_or_else(String::new, |path| path.as_str().to_owned());
    let response = next.run(request).await;
    metrics::histogram!(
        REQUEST_DURATION,
        "method" => method,
        "route" => route,
        "status" => response.status().as_u16().to_string(),
    )
    .record(started.elapsed().as_secs_f64());
    let is_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|kind| kind.as_bytes().starts_with(b"text/event-stream"));
    if !is_stream {
        return response;
    }
    let open = OpenStream::new();
    // The stream ends (and the count drops) when the client goes away or the server ends it.
    response.map(|body| {
        Body::from_stream(body.into_data_stream().map(move |chunk| {
            let _counted = &open;
            chunk
        }))
    })
}

/// Counts one open stream for as long as it lives.
struct OpenStream(&'static Exporter);

impl OpenStream {
    fn new() -> OpenStream {
        let exporter = super::exporter();
        exporter.open_streams.fetch_add(1, Ordering::Relaxed);
        OpenStream(exporter)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.open_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A rendered exposition as an HTTP answer.
pub fn text_response(text: String) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        text,
    )
        .into_response()
}

/// Serves the exposition without a token at `GET /metrics` on `listener` (a loopback address,
/// checked by the configuration) until `shutdown`.
pub async fn serve(listener: TcpListener, store: Store, shutdown: CancellationToken) {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let store = store.clone();
            async move {
                match super::exporter().scrape(&store).await {
                    Ok(text) => text_response(text),
                    Err(error) => {
                        tracing::error!(%error, "rendering the metrics failed");
                        StatusCode::INTERNAL_SERVER_ERROR.into_response()
                    }
                }
            }
        }),
    );
    if let Err(error) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    {
        tracing::error!(%error, "serving the Prometheus exposition failed");
    }
}
