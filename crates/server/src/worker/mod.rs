//! The job worker: claims jobs from the durable queue and runs them.
//!
//! One [`Worker`] runs inside `helvetia server`. It claims as many jobs as it has free slots
//! ([`QueueSettings::concurrency`]), keeps each claim alive with heartbeats, and runs the job's
//! handler (matched exhaustively on [`JobKind`]). It sleeps until something can be done: a
//! [`WorkerHandle::wake`] from the API after an enqueue, a finished job freeing a slot, or the
//! moment the earliest lease of a dead worker runs out. There is no polling delay.
//!
//! A job stops early for one of the [`StopReason`]s; its handler sees that through
//! [`JobContext::stopped`] and records the outcome itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use helvetia_core::job::{ClaimedJob, JobKind, JobState, QueueSettings};
use helvetia_store::Store;
use helvetia_store::queue::Heartbeat;
use jiff::Timestamp;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::platform::Platform;

mod deploy;
mod remove_preview;
mod stop;

/// Why a job was asked to stop before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A user cancelled the deployment.
    Cancelled,
    /// The server is shutting down and the grace period ran out.
    Shutdown,
    /// The lease was lost: another worker may own the job now, so write nothing more.
    LeaseLost,
}

/// What handlers get: the job, the platform, and a way to learn that they must stop.
pub struct JobContext {
    pub job: ClaimedJob,
    pub platform: Arc<Platform>,
    stop: CancellationToken,
    reason: OnceLock<StopReason>,
}

impl JobContext {
    /// Resolves when the job must stop; then [`JobContext::stop_reason`] says why.
    pub async fn stopped(&self) {
        self.stop.cancelled().await
    }

    pub fn stop_reason(&self) -> Option<StopReason> {
        self.reason.get().copied()
    }

    fn request_stop(&self, reason: StopReason) {
        // The first reason wins: a cancel followed by a shutdown is still a cancel.
        let _ = self.reason.set(reason);
        self.stop.cancel();
    }
}

/// How a handler ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Succeeded,
    Failed(String),
    Cancelled(String),
}

/// The API's way to talk to the worker.
#[derive(Clone, Default)]
pub struct WorkerHandle {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    wake: Notify,
    /// Running deployment jobs by deployment id, so a cancel reaches them at once rather than
    /// at their next heartbeat.
    running: Mutex<HashMap<i64, Arc<JobContext>>>,
}

impl WorkerHandle {
    /// Tells the worker that a job may be waiting.
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// Stops the job running `deployment_id`, if this worker runs it.
    pub fn cancel_deployment(&self, deployment_id: i64) {
        if let Some(context) = lock(&self.shared.running).get(&deployment_id) {
            context.request_stop(StopReason::Cancelled);
        }
    }
}

/// Cloned for each run under the supervisor: a restarted worker keeps its id and handle.
#[derive(Clone)]
pub struct Worker {
    platform: Arc<Platform>,
    store: Store,
    settings: QueueSettings,
    id: String,
    handle: WorkerHandle,
    shutdown_grace: Duration,
}

/// How long an idle worker sleeps when no lease is about to expire; a safety net only, since
/// enqueues wake it directly.
const IDLE_RECHECK: Duration = Duration::from_secs(30);
/// How long handlers get to record their outcome after being told to stop at shutdown.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

impl Worker {
    pub fn new(
        platform: Arc<Platform>,
        settings: QueueSettings,
        shutdown_grace: Duration,
    ) -> Worker {
        Worker {
            store: platform.store.clone(),
            platform,
            settings,
            id: format!("{}-{}", hostname(), rand::random::<u32>()),
            handle: WorkerHandle::default(),
            shutdown_grace,
        }
    }

    pub fn handle(&self) -> WorkerHandle {
        self.handle.clone()
    }

    /// Runs until `shutdown` fires, then lets running jobs finish within the grace period.
    pub async fn run(self, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        tracing::info!(worker = %self.id, concurrency = self.settings.concurrency, "worker started");
        loop {
            self.claim_into_free_slots(&slots, &mut tasks).await;
            let wait = self.idle_wait().await;
            tokio::select! {
                () = self.handle.shared.wake.notified() => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => break,
            }
        }
        self.drain(tasks).await;
    }

    async fn claim_into_free_slots(&self, slots: &Arc<Semaphore>, tasks: &mut JoinSet<()>) {
        while let Ok(permit) = slots.clone().try_acquire_owned() {
            // Taken before the claim's own clock reading, so the worker never believes its
            // lease lasts longer than the store does.
            let claimed_at = Instant::now();
            match self
                .store
                .claim_job(&self.id, Timestamp::now(), self.settings.lease)
                .await
            {
                Ok(Some(job)) => {
                    tracing::info!(job = job.id, kind = %job.kind, attempt = job.attempt, "claimed job");
                    tasks.spawn(self.run_job(job, claimed_at, permit));
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::error!(%error, "claiming a job failed");
                    break;
                }
            }
        }
    }

    /// How long to sleep: until the earliest lease expires (that job is then claimable), or
    /// the idle recheck.
    async fn idle_wait(&self) -> Duration {
        match self.store.next_lease_expiry().await {
            Ok(Some(expiry)) => {
                let until = expiry.duration_since(Timestamp::now());
                Duration::try_from(until)
                    .unwrap_or(Duration::ZERO)
                    .clamp(Duration::from_millis(50), IDLE_RECHECK)
            }
            Ok(None) => IDLE_RECHECK,
            Err(error) => {
                tracing::error!(%error, "reading lease expiries failed");
                Duration::from_secs(1)
            }
        }
    }

    fn run_job(
        &self,
        job: ClaimedJob,
        claimed_at: Instant,
        permit: OwnedSemaphorePermit,
    ) -> impl Future<Output = ()> + Send + 'static {
        let context = Arc::new(JobContext {
            job,
            platform: self.platform.clone(),
            stop: CancellationToken::new(),
            reason: OnceLock::new(),
        });
        let shared = self.handle.shared.clone();
        let worker = self.id.clone();
        let settings = self.settings;
        async move {
            let _permit = permit;
            let job = context.job.clone();
            if job.cancel_requested {
                context.request_stop(StopReason::Cancelled);
            }
            if let Some(deployment) = job.deployment_id {
                lock(&shared.running).insert(deployment, context.clone());
            }
            // Aborted with this job, also when the worker's run panics and drops its jobs.
            let heartbeat = AbortOnDropHandle::new(tokio::spawn({
                let context = context.clone();
                let worker = worker.clone();
                async move {
                    let (context, worker) = (&context, worker.as_str());
                    let beat = move || {
                        context.platform.store.heartbeat_job(
                            &context.job,
                            worker,
                            Timestamp::now(),
                            settings.lease,
                        )
                    };
                    let stop = |reason| context.request_stop(reason);
                    keep_lease(context.job.id, beat, stop, claimed_at, settings).await
                }
            }));
            let outcome = match job.kind {
                JobKind::Deploy => deploy::run(&context).await,
                JobKind::Stop => stop::run(&context).await,
                JobKind::RemovePreview => remove_preview::run(&context).await,
            };
            heartbeat.abort();
            if let Some(deployment) = job.deployment_id {
                // A later attempt of the same job (this worker claimed it again after its
                // lease ran out) may have taken the slot: leave that one's entry alone.
                let mut running = lock(&shared.running);
                if running
                    .get(&deployment)
                    .is_some_and(|entry| Arc::ptr_eq(entry, &context))
                {
                    running.remove(&deployment);
                }
            }
            if context.stop_reason() == Some(StopReason::LeaseLost) {
                tracing::warn!(job = job.id, "lease lost; leaving the job to its new owner");
                return;
            }
            let (state, error) = match &outcome {
                JobOutcome::Succeeded => (JobState::Succeeded, None),
                JobOutcome::Failed(error) => (JobState::Failed, Some(error.as_str())),
                JobOutcome::Cancelled(why) => (JobState::Cancelled, Some(why.as_str())),
            };
            match context
                .platform
                .store
                .finish_job(&job, &worker, state, error, Timestamp::now())
                .await
            {
                Ok(true) => tracing::info!(job = job.id, ?outcome, "job finished"),
                // The job's row went with the preview's service it removed.
                Ok(false)
                    if job.kind == JobKind::RemovePreview
                        && matches!(outcome, JobOutcome::Succeeded) =>
                {
                    tracing::info!(job = job.id, "preview removed")
                }
                Ok(false) => tracing::warn!(job = job.id, "job finished after its lease was lost"),
                Err(error) => {
                    tracing::error!(job = job.id, %error, "recording a job's outcome failed")
                }
            }
            // A finished job may unblock the next job of the same service.
            shared.wake.notify_one();
        }
    }

    /// Waits for running jobs for the grace period, then tells them to stop and gives them a
    /// moment to record that. Whatever still runs after that is abandoned: its lease runs out
    /// and the next start of the server recovers it.
    async fn drain(self, mut tasks: JoinSet<()>) {
        if tasks.is_empty() {
            return;
        }
        tracing::info!(jobs = tasks.len(), grace = ?self.shutdown_grace, "waiting for running jobs");
        let all_done = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(self.shutdown_grace, all_done)
            .await
            .is_ok()
        {
            return;
        }
        for context in lock(&self.handle.shared.running).values() {
            context.request_stop(StopReason::Shutdown);
        }
        let stopped = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(STOP_DEADLINE, stopped).await.is_err() {
            tracing::warn!(
                jobs = tasks.len(),
                "abandoning jobs that did not stop in time"
            );
            tasks.abort_all();
        }
    }
}

/// Renews the job's lease until the job ends; turns a cancellation request or a lost lease
/// into a stop. A lease that could not be renewed for its whole length counts as lost too:
/// the job is claimable again then, by this very worker as well, and two attempts must never
/// run side by side.
async fn keep_lease<F, Fut>(
    job_id: i64,
    mut beat: F,
    stop: impl Fn(StopReason),
    claimed_at: Instant,
    settings: QueueSettings,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = helvetia_store::Result<Heartbeat>>,
{
    let mut ticks = tokio::time::interval(settings.heartbeat);
    ticks.tick().await;
    let mut lease_start = claimed_at;
    loop {
        ticks.tick().await;
        let attempted_at = Instant::now();
        match beat().await {
            Ok(Heartbeat::Renewed { cancel_requested }) => {
                lease_start = attempted_at;
                if cancel_requested {
                    stop(StopReason::Cancelled);
                }
            }
            Ok(Heartbeat::Lost) => {
                stop(StopReason::LeaseLost);
                return;
            }
            Err(error) if lease_start.elapsed() >= settings.lease => {
                tracing::warn!(job = job_id, %error, "heartbeat failed; lease ran out");
                stop(StopReason::LeaseLost);
                return;
            }
            // A failed write is retried at the next tick; the lease outlasts several ticks.
            Err(error) => tracing::warn!(job = job_id, %error, "heartbeat failed"),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "helvetia".to_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use helvetia_core::job::QueueSettings;
    use helvetia_store::StoreError;
    use helvetia_store::queue::Heartbeat;
    use tokio::time::Instant;

    use super::{StopReason, keep_lease};

    const SETTINGS: QueueSettings = QueueSettings {
        lease: Duration::from_millis(300),
        heartbeat: Duration::from_millis(50),
        concurrency: 1,
    };

    /// Runs `keep_lease` with heartbeats answered by `answer(n)` (n counts from 1) until it
    /// stops the job; returns how long that took, how many heartbeats it sent, and why it
    /// stopped. A `keep_lease` that never stops fails the test after 10 s.
    async fn stopped_after(
        answer: impl Fn(u32) -> helvetia_store::Result<Heartbeat>,
    ) -> (Duration, u32, Vec<StopReason>) {
        let start = Instant::now();
        let beats = Mutex::new(0);
        let stops = Mutex::new(Vec::new());
        let beat = || {
            let n = {
                let mut beats = beats.lock().unwrap();
                *beats += 1;
                *beats
            };
            let answer = answer(n);
            async move { answer }
        };
        let stop = |reason| stops.lock().unwrap().push(reason);
        tokio::time::timeout(
            Duration::from_secs(10),
            keep_lease(1, beat, stop, start, SETTINGS),
        )
        .await
        .expect("the attempt was never stopped");
        let beats = beats.into_inner().unwrap();
        (start.elapsed(), beats, stops.into_inner().unwrap())
    }

    fn failed() -> helvetia_store::Result<Heartbeat> {
        Err(StoreError::Config("the database is unreachable".into()))
    }

    #[tokio::test]
    async fn heartbeats_failing_for_a_whole_lease_stop_the_attempt() {
        // The job may be claimed again (by this worker too) once the lease ran out.
        let (after, beats, stops) = stopped_after(|_| failed()).await;
        assert_eq!(stops, [StopReason::LeaseLost]);
        assert!(after >= SETTINGS.lease, "{after:?}");
        assert!(beats >= 6, "{beats}");
    }

    #[tokio::test]
    async fn a_renewal_restarts_the_lease() {
        let (after, _, stops) = stopped_after(|n| {
            if n == 2 {
                Ok(Heartbeat::Renewed {
                    cancel_requested: false,
                })
            } else {
                failed()
            }
        })
        .await;
        assert_eq!(stops, [StopReason::LeaseLost]);
        assert!(
            after >= SETTINGS.heartbeat * 2 + SETTINGS.lease,
            "{after:?}"
        );
    }

    #[tokio::test]
    async fn a_superseded_claim_stops_at_its_next_heartbeat() {
        let (_, beats, stops) = stopped_after(|_| Ok(Heartbeat::Lost)).await;
        assert_eq!(stops, [StopReason::LeaseLost]);
        assert_eq!(beats, 1);
    }
}
