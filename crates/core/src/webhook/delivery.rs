//! The delivery log's vocabulary: what a received delivery did, as a user debugging a push
//! that deployed nothing reads it.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;

use super::{Source, Verdict};
use crate::validation::Invalid;

/// How long the delivery log keeps a delivery.
pub const RETENTION: jiff::SignedDuration = jiff::SignedDuration::from_hours(30 * 24);
/// A delivery `waiting` longer than this lost its diff (the server restarted): a diff gives up
/// after 2 minutes.
pub const STALE_WAITING: jiff::SignedDuration = jiff::SignedDuration::from_mins(10);

/// What a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It requested a deployment (`deployment_id`).
    Deployed,
    /// Acknowledged, nothing to do (another branch, a tag, auto-deploy off, no watched file).
    Ignored,
    /// Not accepted: no valid signature, or a body Helvetia cannot read.
    Refused,
    /// A delivery id that already requested a deployment: nothing done again.
    Duplicate,
    /// Accepted; Helvetia is still finding out which files the push changed.
    Waiting,
    /// Accepted, but requesting the deployment failed; a redelivery tries again.
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Deployed,
        Outcome::Ignored,
        Outcome::Refused,
        Outcome::Duplicate,
        Outcome::Waiting,
        Outcome::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Deployed => "deployed",
            Outcome::Ignored => "ignored",
            Outcome::Refused => "refused",
            Outcome::Duplicate => "duplicate",
            Outcome::Waiting => "waiting",
            Outcome::Failed => "failed",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        Outcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == s)
            .ok_or_else(|| Invalid::new(format!("unknown delivery outcome `{s}`")))
    }
}

/// One delivery received, and what it did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    pub id: i64,
    pub source: Source,
    /// The event the sender named (`push`, `ping`, …).
    pub event: String,
    /// The sender's id of the delivery (a redelivery repeats it).
    pub delivery_id: Option<String>,
    pub signature: Verdict,
    pub outcome: Outcome,
    /// Why: the deployment requested, the reason it was ignored or refused.
    pub reason: String,
    /// The deployment it requested; absent when none (not `null`: a contract test follows
    /// the field to the deployment's operations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<i64>,
    /// The ref pushed, the commit it pointed to after the push, who pushed it, the head
    /// commit's message and where the sender shows the change.
    pub git_ref: Option<String>,
    pub commit: Option<String>,
    pub pusher: Option<String>,
    pub message: Option<String>,
    pub compare_url: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub received_at: Timestamp,
}
