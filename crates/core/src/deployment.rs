//! The deployment state machine.
//!
//! ```text
//!            ┌──────── image reused (rollback, env change, restart) ───────┐
//!            │                                                              ▼
//!  queued ──►cloning ──► building ──► starting ──► health_checking ──► live ──► retired
//!    │  │        │            │           │               │
//!    │  └────────┴────────────┴───────────┴───────────────┴──► failed | cancelled
//!    └──► superseded (a newer deployment of the same service was requested first)
//! ```
//!
//! Transitions are checked by [`DeploymentStatus::can_become`]; the store refuses any other and
//! records each accepted one with its time and reason.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;

use crate::name::{ProjectName, ServiceName};
use crate::validation::Invalid;

/// One attempt to put a version of a service live.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deployment {
    pub id: i64,
    /// Internal: the API names the service by `project` and `service` instead, so a
    /// deployment read from the API has 0 here.
    #[serde(skip)]
    pub service_id: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub project: ProjectName,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub service: ServiceName,
    pub kind: DeploymentKind,
    /// What asked for this deployment.
    pub cause: DeploymentCause,
    pub status: DeploymentStatus,
    /// Why the deployment is in its status (the reason of its last transition).
    pub status_reason: Option<String>,
    /// The branch that was asked for, if any.
    pub git_ref: Option<String>,
    /// The commit that was asked for, if any.
    pub requested_commit: Option<String>,
    /// The commit that was fetched and built.
    pub commit_sha: Option<String>,
    pub commit_message: Option<String>,
    pub commit_author: Option<String>,
    /// The image this deployment runs, once built or chosen.
    pub image: Option<String>,
    /// The digest of the image (`sha256:…`): in Helvetia's registry, when it was built on the
    /// isolated builder and pulled from there by digest; in the service's registry, for a
    /// service run from an image (what its tag resolved to when this deployment pulled it).
    pub image_digest: Option<String>,
    /// The deployment whose image this one reuses (rollback, restart, configuration change).
    pub source_deployment_id: Option<i64>,
    /// Who asked for it.
    pub created_by: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub finished_at: Option<Timestamp>,
}

/// One line of a deployment's log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogLine {
    /// Position in the deployment's log, from 1, without gaps.
    pub seq: i64,
    pub at: Timestamp,
    pub line: String,
}

/// One recorded state change of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Transition {
    /// `None` for the creation of the deployment.
    pub from: Option<DeploymentStatus>,
    pub to: DeploymentStatus,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    pub reason: String,
}

/// What caused a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeploymentCause {
    /// A deploy of a branch or commit.
    Deploy,
    /// A rollback to an earlier deployment's image.
    Rollback,
    /// A restart: the live image again, in new containers.
    Restart,
    /// Changed settings (limits, port, environment) applied to the live image.
    Settings,
    /// A stopped service started again.
    Start,
    /// The live image in a different number of replicas.
    Scale,
}

impl DeploymentCause {
    pub const ALL: [DeploymentCause; 6] = [
        DeploymentCause::Deploy,
        DeploymentCause::Rollback,
        DeploymentCause::Restart,
        DeploymentCause::Settings,
        DeploymentCause::Start,
        DeploymentCause::Scale,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentCause::Deploy => "deploy",
            DeploymentCause::Rollback => "rollback",
            DeploymentCause::Restart => "restart",
            DeploymentCause::Settings => "settings",
            DeploymentCause::Start => "start",
            DeploymentCause::Scale => "scale",
        }
    }
}

impl FromStr for DeploymentCause {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        DeploymentCause::ALL
            .into_iter()
            .find(|cause| cause.as_str() == s)
            .ok_or_else(|| Invalid::new(format!("unknown deployment cause `{s}`")))
    }
}

/// Where a deployment's image comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeploymentKind {
    /// Fetch a commit and build it.
    Build,
    /// Run an image an earlier deployment built (rollback, configuration change, restart).
    Image,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    Queued,
    Cloning,
    Building,
    Starting,
    HealthChecking,
    Live,
    Retired,
    Failed,
    Cancelled,
    Superseded,
}

use DeploymentStatus::*;

impl DeploymentStatus {
    pub const ALL: [DeploymentStatus; 10] = [
        Queued,
        Cloning,
        Building,
        Starting,
        HealthChecking,
        Live,
        Retired,
        Failed,
        Cancelled,
        Superseded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Queued => "queued",
            Cloning => "cloning",
            Building => "building",
            Starting => "starting",
            HealthChecking => "health_checking",
            Live => "live",
            Retired => "retired",
            Failed => "failed",
            Cancelled => "cancelled",
            Superseded => "superseded",
        }
    }

    /// True while the deployment's job still has work to do.
    pub fn is_in_progress(self) -> bool {
        match self {
            Queued | Cloning | Building | Starting | HealthChecking => true,
            Live | Retired | Failed | Cancelled | Superseded => false,
        }
    }

    /// True once the deployment can never change again.
    pub fn is_terminal(self) -> bool {
        match self {
            Retired | Failed | Cancelled | Superseded => true,
            Queued | Cloning | Building | Starting | HealthChecking | Live => false,
        }
    }

    /// The states a deployment of `kind` may move to from this one.
    pub fn successors(self, kind: DeploymentKind) -> &'static [DeploymentStatus] {
        match (self, kind) {
            (Queued, DeploymentKind::Build) => &[Cloning, Failed, Cancelled, Superseded],
            (Queued, DeploymentKind::Image) => &[Starting, Failed, Cancelled, Superseded],
            (Cloning, _) => &[Building, Failed, Cancelled],
            (Building, _) => &[Starting, Failed, Cancelled],
            (Starting, _) => &[HealthChecking, Failed, Cancelled],
            (HealthChecking, _) => &[Live, Failed, Cancelled],
            (Live, _) => &[Retired],
            (Retired | Failed | Cancelled | Superseded, _) => &[],
        }
    }

    pub fn can_become(self, next: DeploymentStatus, kind: DeploymentKind) -> bool {
        self.successors(kind).contains(&next)
    }
}

impl fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeploymentStatus {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        DeploymentStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| Invalid::new(format!("unknown deployment status `{s}`")))
    }
}

impl DeploymentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentKind::Build => "build",
            DeploymentKind::Image => "image",
        }
    }
}

impl FromStr for DeploymentKind {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "build" => Ok(DeploymentKind::Build),
            "image" => Ok(DeploymentKind::Image),
            other => Err(Invalid::new(format!("unknown deployment kind `{other}`"))),
        }
    }
}

/// A refused state change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {kind} deployment cannot go from {from} to {to}", kind = .kind.as_str())]
pub struct IllegalTransition {
    pub kind: DeploymentKind,
    pub from: DeploymentStatus,
    pub to: DeploymentStatus,
}

/// Checks one state change.
pub fn check_transition(
    kind: DeploymentKind,
    from: DeploymentStatus,
    to: DeploymentStatus,
) -> Result<(), IllegalTransition> {
    if from.can_become(to, kind) {
        Ok(())
    } else {
        Err(IllegalTransition { kind, from, to })
    }
}

/// Why a deployment failed, by kind. The message beside it ([`DeployFailure`]) says the
/// particulars, and is what the deployment's status reason and log show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureCause {
    /// The deployment asks for something invalid or not allowed (a refused repository, an
    /// invalid branch or commit, no image to run).
    Request,
    /// The service's environment could not be read (or its secrets opened).
    Environment,
    /// Fetching the source failed.
    Fetch,
    /// The container engine refused or failed (building, creating, starting).
    Engine,
    /// The project network could not be set up.
    Network,
    /// The release command failed or did not finish in time.
    Release,
    /// A new container died or did not answer in time.
    NotReady,
    /// The edge router did not take a route, or the service has none.
    Routing,
    /// The store failed.
    Store,
}

impl FailureCause {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCause::Request => "request",
            FailureCause::Environment => "environment",
            FailureCause::Fetch => "fetch",
            FailureCause::Engine => "engine",
            FailureCause::Network => "network",
            FailureCause::Release => "release",
            FailureCause::NotReady => "not_ready",
            FailureCause::Routing => "routing",
            FailureCause::Store => "store",
        }
    }
}

impl fmt::Display for FailureCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A deployment that failed: its cause, and the message its status reason and log show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeployFailure {
    pub cause: FailureCause,
    pub message: String,
}

impl DeployFailure {
    pub fn new(cause: FailureCause, message: impl Into<String>) -> DeployFailure {
        DeployFailure {
            cause,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeploymentKind::*;

    fn walk(kind: DeploymentKind, path: &[DeploymentStatus]) -> Result<(), IllegalTransition> {
        path.windows(2)
            .try_for_each(|pair| check_transition(kind, pair[0], pair[1]))
    }

    #[test]
    fn the_happy_paths() {
        walk(
            Build,
            &[
                Queued,
                Cloning,
                Building,
                Starting,
                HealthChecking,
                Live,
                Retired,
            ],
        )
        .unwrap();
        walk(Image, &[Queued, Starting, HealthChecking, Live, Retired]).unwrap();
    }

    #[test]
    fn only_the_right_kind_skips_the_build() {
        assert!(check_transition(Build, Queued, Starting).is_err());
        assert!(check_transition(Image, Queued, Cloning).is_err());
    }

    #[test]
    fn every_unfinished_state_can_fail_or_be_cancelled() {
        for kind in [Build, Image] {
            for from in DeploymentStatus::ALL {
                let expected = from.is_in_progress();
                assert_eq!(from.can_become(Failed, kind), expected, "{from} -> failed");
                assert_eq!(
                    from.can_become(Cancelled, kind),
                    expected,
                    "{from} -> cancelled"
                );
            }
        }
    }

    #[test]
    fn only_queued_can_be_superseded() {
        for from in DeploymentStatus::ALL {
            assert_eq!(from.can_become(Superseded, Build), from == Queued, "{from}");
        }
    }

    #[test]
    fn terminal_states_are_final() {
        for from in DeploymentStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
        {
            for to in DeploymentStatus::ALL {
                assert!(!from.can_become(to, Build), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn nothing_goes_backwards_or_skips_the_health_check() {
        assert!(check_transition(Build, Live, Building).is_err());
        assert!(check_transition(Build, Starting, Live).is_err());
        assert!(check_transition(Build, Failed, Queued).is_err());
        assert!(check_transition(Build, Live, Failed).is_err());
    }

    #[test]
    fn names_round_trip() {
        for status in DeploymentStatus::ALL {
            assert_eq!(status.as_str().parse::<DeploymentStatus>().unwrap(), status);
        }
    }
}
