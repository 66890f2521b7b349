//! Background jobs: what the durable queue carries and how a job's life goes.
//!
//! A job is claimed under a time-limited lease that its worker keeps renewing. When a worker
//! dies the lease runs out and another worker claims the job again; [`JobKind::rerun_policy`]
//! decides what that second attempt may do.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::validation::Invalid;

/// A job as a worker sees it after claiming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    pub id: i64,
    pub kind: JobKind,
    pub service_id: Option<i64>,
    pub deployment_id: Option<i64>,
    /// 1 on the first claim; more when an earlier worker's lease expired.
    pub attempt: i64,
    pub cancel_requested: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Take one deployment from `queued` to `live` (or `failed`).
    Deploy,
    /// Stop a service: retire its live deployment, drain and remove its containers.
    Stop,
    /// Take a preview apart: stop it, then remove its images, volumes and service.
    RemovePreview,
}

/// What a reclaimed job (its previous worker's lease expired) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RerunPolicy {
    /// Run it again from the start: the job is idempotent.
    Rerun,
    /// Never redo half-done work: if the previous attempt got started, clean up and fail.
    FailIfStarted,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Deploy => "deploy",
            JobKind::Stop => "stop",
            JobKind::RemovePreview => "remove_preview",
        }
    }

    pub fn rerun_policy(self) -> RerunPolicy {
        match self {
            // A deploy that was cut off half-way may have built or started things that a fresh
            // attempt would race with; the user decides whether to deploy again.
            JobKind::Deploy => RerunPolicy::FailIfStarted,
            // Stopping twice is stopping; removing what is gone already is nothing.
            JobKind::Stop | JobKind::RemovePreview => RerunPolicy::Rerun,
        }
    }
}

impl FromStr for JobKind {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "deploy" => Ok(JobKind::Deploy),
            "stop" => Ok(JobKind::Stop),
            "remove_preview" => Ok(JobKind::RemovePreview),
            other => Err(Invalid::new(format!("unknown job kind `{other}`"))),
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

impl FromStr for JobState {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| Invalid::new(format!("unknown job state `{s}`")))
    }
}

/// How the queue hands out work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// How long a claim stays valid without a heartbeat.
    pub lease: Duration,
    /// How often a worker renews its leases; well below `lease` so one slow write does not lose it.
    pub heartbeat: Duration,
    /// Jobs run at once by one server.
    pub concurrency: usize,
}

impl QueueSettings {
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
    pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);
    pub const DEFAULT_CONCURRENCY: usize = 2;
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            lease: Self::DEFAULT_LEASE,
            heartbeat: Self::DEFAULT_HEARTBEAT,
            concurrency: Self::DEFAULT_CONCURRENCY,
        }
    }
}
