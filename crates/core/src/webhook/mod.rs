//! Webhooks that deploy on push, without I/O: where a delivery comes from ([`Source`]), whether
//! its signature holds ([`signature`]), what a push says ([`push::PushEvent`]), and whether
//! a service should deploy it ([`decide`], with the service's [`watch::WatchPaths`]).
//!
//! The server's receivers read the headers and the raw body, ask this module, and act; every
//! rule a test wants to pin down without a server lives here.

pub mod delivery;
pub mod push;
pub mod registry;
pub mod signature;
pub mod watch;

use std::fmt;
use std::str::FromStr;

use crate::validation::Invalid;

pub use delivery::{Delivery, Outcome};
pub use push::{PayloadError, PushEvent};
pub use signature::Verdict;
pub use watch::WatchPaths;

/// Who sent a delivery, and so how it is signed and what its payload looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The instance's GitHub App (`X-Hub-Signature-256`).
    Github,
    /// Gitea (`X-Gitea-Signature`: hex HMAC-SHA256 of the body).
    Gitea,
    /// Forgejo (`X-Forgejo-Signature`, or Gitea's header, which it also sends).
    Forgejo,
    /// GitLab (`X-Gitlab-Token`: the secret itself).
    Gitlab,
    /// Anything else, signed with Helvetia's own scheme (see [`signature::generic`]).
    Generic,
}

impl Source {
    pub const ALL: [Source; 5] = [
        Source::Github,
        Source::Gitea,
        Source::Forgejo,
        Source::Gitlab,
        Source::Generic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Github => "github",
            Source::Gitea => "gitea",
            Source::Forgejo => "forgejo",
            Source::Gitlab => "gitlab",
            Source::Generic => "generic",
        }
    }

    /// The headers naming the event, most specific first.
    fn event_headers(self) -> &'static [&'static str] {
        match self {
            Source::Github => &["x-github-event"],
            Source::Gitea => &["x-gitea-event"],
            Source::Forgejo => &["x-forgejo-event", "x-gitea-event"],
            Source::Gitlab => &["x-gitlab-event"],
            Source::Generic => &["x-helvetia-event"],
        }
    }

    /// The headers carrying the delivery's id, which a redelivery repeats. GitLab's
    /// `Idempotency-Key` stays the same across its retries, unlike its event UUID.
    fn delivery_headers(self) -> &'static [&'static str] {
        match self {
            Source::Github => &["x-github-delivery"],
            Source::Gitea => &["x-gitea-delivery"],
            Source::Forgejo => &["x-forgejo-delivery", "x-gitea-delivery"],
            Source::Gitlab => &["idempotency-key", "x-gitlab-event-uuid"],
            Source::Generic => &["x-helvetia-delivery"],
        }
    }

    /// The event a delivery announces. A generic hook without the header is a push.
    pub fn event<'a>(self, header: impl Fn(&str) -> Option<&'a str>) -> Event {
        let name = self.event_headers().iter().find_map(|name| header(name));
        match (self, name) {
            (Source::Generic, None) => Event::Push,
            (_, None) => Event::Other(String::new()),
            (_, Some(name)) => Event::parse(self, name),
        }
    }

    /// The delivery's id, if the sender gave one (at most 100 characters kept).
    pub fn delivery_id<'a>(self, header: impl Fn(&str) -> Option<&'a str>) -> Option<String> {
        self.delivery_headers()
            .iter()
            .find_map(|name| header(name))
            .map(|id| id.chars().filter(|c| !c.is_control()).take(100).collect())
    }

    /// Parses a push delivery's body in this source's format.
    pub fn parse_push(self, body: &[u8]) -> Result<PushEvent, PayloadError> {
        match self {
            Source::Github | Source::Gitea | Source::Forgejo => PushEvent::from_github(body),
            Source::Gitlab => PushEvent::from_gitlab(body),
            Source::Generic => PushEvent::from_generic(body),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Source {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        Source::ALL
            .into_iter()
            .find(|source| source.as_str() == s)
            .ok_or_else(|| Invalid::new(format!("unknown webhook source `{s}`")))
    }
}

/// What a delivery is about, as far as deploying goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Commits pushed (or a ref created or deleted); GitLab's tag pushes too, whose ref says so.
    Push,
    /// A hook being set up or tested.
    Ping,
    /// Anything else, by the name the sender gave it.
    Other(String),
}

impl Event {
    fn parse(source: Source, name: &str) -> Event {
        let name = name.trim();
        match (source, name) {
            (Source::Gitlab, "Push Hook" | "Tag Push Hook") => Event::Push,
            (Source::Gitlab, "System Hook") => Event::Other(name.to_owned()),
            (_, "push") => Event::Push,
            (_, "ping") => Event::Ping,
            _ => Event::Other(name.chars().take(100).collect()),
        }
    }

    /// The name the delivery log shows.
    pub fn name(&self) -> &str {
        match self {
            Event::Push => "push",
            Event::Ping => "ping",
            Event::Other(name) => name,
        }
    }
}

/// A service's settings for deploys on push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSettings {
    /// Deploy the tracked branch's pushes at all.
    pub auto_deploy: bool,
    /// Deploy only when a changed file matches (none: every push deploys).
    pub watch_paths: WatchPaths,
    /// Cancel a running build of an older commit when a push asks for a newer one.
    pub cancel_running: bool,
    /// Deploy a pushed commit only once its CI checks have passed (a service created from a
    /// GitHub repository: the checks are read through the App).
    pub wait_for_ci: bool,
}

impl Default for PushSettings {
    fn default() -> PushSettings {
        PushSettings {
            auto_deploy: true,
            watch_paths: WatchPaths::default(),
            cancel_running: false,
            wait_for_ci: false,
        }
    }
}

/// What a service does with a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Deploy the push's `after` commit.
    Deploy,
    /// Acknowledge and do nothing, for this reason.
    Ignore(String),
    /// The payload does not list every changed file and the watch paths need them: diff
    /// `before..after`, then [`decide_with_files`].
    Diff,
}

/// Whether `branch`'s service deploys `push`, from the payload alone.
pub fn decide(push: &PushEvent, branch: &str, settings: &PushSettings) -> Decision {
    let Some(pushed) = push.git_ref.strip_prefix("refs/heads/") else {
        let reason = match push.git_ref.strip_prefix("refs/tags/") {
            Some(tag) => format!("tag `{tag}` pushed: only pushes to a branch deploy"),
            None => format!("`{}` is not a branch", push.git_ref),
        };
        return Decision::Ignore(reason);
    };
    if push.deleted || push::is_zero(&push.after) {
        return Decision::Ignore(format!("branch `{pushed}` was deleted"));
    }
    if pushed != branch {
        return Decision::Ignore(format!(
            "pushed to branch `{pushed}`; the service deploys `{branch}`"
        ));
    }
    if !settings.auto_deploy {
        return Decision::Ignore("auto-deploy is off for this service".into());
    }
    if settings.watch_paths.is_empty() {
        return Decision::Deploy;
    }
    if !push.lists_every_change() {
        return Decision::Diff;
    }
    decide_with_files(Some(&push.changed_files), &settings.watch_paths)
}

/// The decision once the changed files are known — or not (`None`: even a diff could not
/// tell, and a deploy too many beats a change that never goes live).
pub fn decide_with_files(files: Option<&[String]>, watch_paths: &WatchPaths) -> Decision {
    match files {
        None => Decision::Deploy,
        Some(files) if watch_paths.matches_any(files) => Decision::Deploy,
        Some(files) => Decision::Ignore(format!(
            "none of the {} changed file(s) matches the watch paths ({})",
            files.len(),
            watch_paths.patterns().join(", ")
        )),
    }
}

#[cfg(test)]
mod tests;
