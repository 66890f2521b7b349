//! Preview deployments: a running copy of a service per pull request (or per branch asked for),
//! at `<label>.<service>.<project>.<base-domain>`.
//!
//! A preview is a service of its own (named `<service>--<label>`, marked as the preview of its
//! parent), so it deploys, logs and routes through the same pipeline. What is particular to
//! previews is decided here: a service's preview settings, the labels, and what a pull-request
//! event does — above all that a fork's code runs only once someone with deploy rights approved
//! that exact head commit.

use serde::Deserialize;

use crate::deployment::DeploymentStatus;
use crate::git::CommitSha;
use crate::name::ServiceName;
use crate::validation::{FieldErrors, Invalid, is_control};

/// Bounds on the previews a service may keep.
pub const MAX_PREVIEWS: u32 = 50;
/// The longest idle time that can be set: 30 days.
pub const MAX_IDLE_MINUTES: u32 = 30 * 24 * 60;
const MAX_LABEL_NAME: usize = 50;
/// The longest preview label: leaves room for a service name in a 63-character DNS label.
const MAX_LABEL_LEN: usize = 24;

/// A service's preview settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewSettings {
    /// Pull requests of the service's linked GitHub repository get previews.
    pub enabled: bool,
    /// Previews get the service's secret variables too. Off by default: a pull request's code
    /// would read production's credentials.
    pub secrets: bool,
    /// Previews run the service's release command. Off by default: with production's database
    /// URL inherited, a migration would migrate production.
    pub release_command: bool,
    /// Previews get volumes at the service's mount paths (their own, empty, removed with the
    /// preview). Off by default.
    pub volumes: bool,
    /// At most this many previews per service; the least recently active goes first.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 50))]
    pub max_previews: u32,
    /// A preview not deployed or started for this long is stopped (0: never).
    #[cfg_attr(feature = "openapi", schema(maximum = 43200))]
    pub idle_minutes: u32,
    /// The pull-request label that approves a fork's head commit, when a GitHub user linked
    /// to a Helvetia user with deploy rights on the service applies it.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 50))]
    pub approve_label: String,
}

impl Default for PreviewSettings {
    fn default() -> Self {
        PreviewSettings {
            enabled: false,
            secrets: false,
            release_command: false,
            volumes: false,
            max_previews: 5,
            idle_minutes: 24 * 60,
            approve_label: "deploy-preview".into(),
        }
    }
}

/// A change of preview settings: fields left out keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PreviewSettingsInput {
    pub enabled: Option<bool>,
    pub secrets: Option<bool>,
    pub release_command: Option<bool>,
    pub volumes: Option<bool>,
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 50))]
    pub max_previews: Option<u32>,
    #[cfg_attr(feature = "openapi", schema(maximum = 43200))]
    pub idle_minutes: Option<u32>,
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 50,
            pattern = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*\S[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"
        )
    )]
    pub approve_label: Option<String>,
}

impl PreviewSettings {
    /// These settings with `input` applied, or every field it got wrong.
    pub fn merged(&self, input: &PreviewSettingsInput) -> Result<PreviewSettings, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut merged = self.clone();
        merged.enabled = input.enabled.unwrap_or(merged.enabled);
        merged.secrets = input.secrets.unwrap_or(merged.secrets);
        merged.release_command = input.release_command.unwrap_or(merged.release_command);
        merged.volumes = input.volumes.unwrap_or(merged.volumes);
        if let Some(max) = input.max_previews {
            match max {
                1..=MAX_PREVIEWS => merged.max_previews = max,
                _ => errors.add(
                    "max_previews",
                    Invalid::new(format!("must be between 1 and {MAX_PREVIEWS}")),
                ),
            }
        }
        if let Some(minutes) = input.idle_minutes {
            match minutes {
                0..=MAX_IDLE_MINUTES => merged.idle_minutes = minutes,
                _ => errors.add(
                    "idle_minutes",
                    Invalid::new(format!("must be at most {MAX_IDLE_MINUTES} (30 days)")),
                ),
            }
        }
        if let Some(label) = &input.approve_label {
            match check_label_name(label) {
                Ok(()) => merged.approve_label = label.clone(),
                Err(error) => errors.add("approve_label", error),
            }
        }
        errors.finish(|| Some(merged))
    }
}

fn check_label_name(label: &str) -> Result<(), Invalid> {
    if label.trim().is_empty() {
        return Err(Invalid::new("must not be blank"));
    }
    if label.chars().count() > MAX_LABEL_NAME {
        return Err(Invalid::new(format!(
            "must be at most {MAX_LABEL_NAME} characters"
        )));
    }
    if label.chars().any(is_control) {
        return Err(Invalid::new("must not contain control characters"));
    }
    Ok(())
}

/// What tells a service's previews apart: `pr-<number>` for a pull request, a short DNS label
/// for a branch. The first label of the preview's hostname and the suffix of its service name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct PreviewLabel(String);

impl PreviewLabel {
    pub fn pull_request(number: u64) -> PreviewLabel {
        PreviewLabel(format!("pr-{number}"))
    }

    /// A label a person chose for a branch's preview: a DNS label of at most 24 characters,
    /// not of the `pr-<number>` form pull requests use.
    pub fn parse(value: &str) -> Result<PreviewLabel, Invalid> {
        ServiceName::parse(value)?;
        if value.len() > MAX_LABEL_LEN {
            return Err(Invalid::new(format!(
                "must be at most {MAX_LABEL_LEN} characters"
            )));
        }
        if value.contains("--") {
            return Err(Invalid::new("must not contain `--`"));
        }
        if value
            .strip_prefix("pr-")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(Invalid::new(
                "`pr-<number>` names the preview of a pull request",
            ));
        }
        Ok(PreviewLabel(value.to_owned()))
    }

    /// The label a branch's preview gets unless one is chosen: the branch's last path
    /// component, lowercased, with everything but letters and digits turned into `-`.
    pub fn for_branch(branch: &str) -> Result<PreviewLabel, Invalid> {
        let last = branch.rsplit('/').next().unwrap_or(branch);
        let mut slug = String::new();
        for c in last.chars().flat_map(char::to_lowercase) {
            let c = if c.is_ascii_alphanumeric() { c } else { '-' };
            if !(c == '-' && (slug.is_empty() || slug.ends_with('-'))) {
                slug.push(c);
            }
        }
        slug.truncate(MAX_LABEL_LEN);
        let slug = slug.trim_end_matches('-');
        PreviewLabel::parse(slug).map_err(|error| {
            Invalid::new(format!(
                "no preview name can be made from the branch ({error}): choose one"
            ))
        })
    }

    /// A label as stored: either form.
    pub fn parse_stored(value: &str) -> Result<PreviewLabel, Invalid> {
        match value.strip_prefix("pr-").map(str::parse::<u64>) {
            Some(Ok(number)) => Ok(PreviewLabel::pull_request(number)),
            _ => PreviewLabel::parse(value),
        }
    }

    /// The pull request's number, for a pull request's preview.
    pub fn pull_request_number(&self) -> Option<u64> {
        self.0.strip_prefix("pr-")?.parse().ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The preview's service name: `<parent>--<label>`, the parent's name shortened to fit.
    pub fn service_name(&self, parent: &ServiceName) -> ServiceName {
        let room = 63 - self.0.len() - 2;
        let stem = parent.as_str()[..parent.as_str().len().min(room)].trim_end_matches('-');
        ServiceName::parse(&format!("{stem}--{}", self.0))
            .expect("a DNS label stem, `--` and a DNS label of at most 24 characters is a name")
    }

    /// The preview's hostname under the parent's: `<label>.<parent-hostname>`.
    pub fn hostname(&self, parent_hostname: &str) -> String {
        format!("{}.{parent_hostname}", self.0)
    }
}

impl std::fmt::Display for PreviewLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A pull-request event from GitHub, as far as previews need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestEvent {
    pub action: String,
    pub number: u64,
    pub title: String,
    /// The branch in the head repository.
    pub head_ref: String,
    pub head_sha: CommitSha,
    /// The pull request comes from another repository than the one it targets (or from one
    /// deleted since): its code is not the repository owners'.
    pub fork: bool,
    /// GitHub's id of the repository the pull request targets.
    pub repository_id: i64,
    /// The label applied or removed (`labeled`, `unlabeled`).
    pub label: Option<String>,
    /// Who caused the event: GitHub's user id and login.
    pub sender: (i64, String),
}

impl PullRequestEvent {
    /// GitHub's `pull_request` payload.
    pub fn parse(body: &[u8]) -> Result<PullRequestEvent, Invalid> {
        #[derive(Deserialize)]
        struct Payload {
            action: String,
            number: u64,
            pull_request: PullRequest,
            repository: Repository,
            label: Option<Label>,
            sender: Sender,
        }
        #[derive(Deserialize)]
        struct PullRequest {
            title: String,
            head: Head,
        }
        #[derive(Deserialize)]
        struct Head {
            #[serde(rename = "ref")]
            git_ref: String,
            sha: String,
            repo: Option<Repository>,
        }
        #[derive(Deserialize)]
        struct Repository {
            id: i64,
        }
        #[derive(Deserialize)]
        struct Label {
            name: String,
        }
        #[derive(Deserialize)]
        struct Sender {
            id: i64,
            login: String,
        }
        let payload: Payload = serde_json::from_slice(body)
            .map_err(|e| Invalid::new(format!("not a pull_request payload: {e}")))?;
        let head_sha = CommitSha::parse(&payload.pull_request.head.sha)
            .ok()
            .filter(|sha| sha.is_full())
            .ok_or_else(|| Invalid::new("the pull request's head is not a full commit id"))?;
        let fork = payload
            .pull_request
            .head
            .repo
            .is_none_or(|head| head.id != payload.repository.id);
        Ok(PullRequestEvent {
            action: payload.action,
            number: payload.number,
            title: payload.pull_request.title.chars().take(200).collect(),
            head_ref: payload.pull_request.head.git_ref,
            head_sha,
            fork,
            repository_id: payload.repository.id,
            label: payload.label.map(|label| label.name),
            sender: (payload.sender.id, payload.sender.login),
        })
    }

    /// What this event does to the pull request's preview, given the service's settings and
    /// the head commit approved so far (for a fork).
    pub fn decide(&self, settings: &PreviewSettings, approved: Option<&str>) -> PreviewAction {
        let approved_head = approved == Some(self.head_sha.as_str());
        match self.action.as_str() {
            "closed" => PreviewAction::Remove,
            "opened" | "reopened" | "synchronize" => {
                if self.fork && !approved_head {
                    PreviewAction::AwaitApproval
                } else {
                    PreviewAction::Deploy
                }
            }
            "labeled" if self.label.as_deref() == Some(settings.approve_label.as_str()) => {
                if self.fork && !approved_head {
                    PreviewAction::ApproveIfDeployer
                } else {
                    PreviewAction::Ignore("the head commit needs no approval")
                }
            }
            _ => PreviewAction::Ignore("this pull-request action changes no preview"),
        }
    }
}

/// What a pull-request event does to its preview.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewAction {
    /// Deploy the head commit.
    Deploy,
    /// Record the head commit; deploy nothing until it is approved.
    AwaitApproval,
    /// The approval label was applied: the head commit is approved if the sender is a GitHub
    /// user linked to a Helvetia user with deploy rights on the service.
    ApproveIfDeployer,
    /// Remove the preview with everything it has.
    Remove,
    Ignore(&'static str),
}

/// Where a preview stands, as its pull-request comment shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentState<'a> {
    AwaitingApproval {
        label: &'a str,
    },
    Deploying,
    Live,
    Failed {
        reason: &'a str,
    },
    /// The pull request closed: the preview is gone.
    Removed,
}

impl<'a> CommentState<'a> {
    /// What the comment says of a deployment at `status` (`reason`: why); `None` for one that
    /// ended without a verdict (cancelled, superseded, retired), which leaves the comment as is.
    pub fn of_deployment(status: DeploymentStatus, reason: &'a str) -> Option<CommentState<'a>> {
        use DeploymentStatus::*;
        match status {
            Queued | Cloning | Building | Starting | HealthChecking => {
                Some(CommentState::Deploying)
            }
            Live => Some(CommentState::Live),
            Failed => Some(CommentState::Failed { reason }),
            Cancelled | Superseded | Retired => None,
        }
    }
}

/// The body of a preview's one pull-request comment. The hidden marker names the service, so
/// a person reading the raw comment knows where it comes from.
pub fn comment_body(
    service: (&str, &str),
    label: &PreviewLabel,
    sha: &str,
    url: &str,
    state: CommentState<'_>,
) -> String {
    let (project, name) = service;
    let short = &sha[..sha.len().min(7)];
    let status = match state {
        CommentState::AwaitingApproval { label: approve } => format!(
            "⏸ **Waiting for approval**: this pull request comes from a fork. Someone with deploy \
             rights approves commit `{short}` by applying the `{approve}` label or with \
             `helvetia previews approve {project}/{name} {label}`; every new commit needs a new \
             approval."
        ),
        CommentState::Deploying => format!("⏳ **Deploying** commit `{short}`…"),
        CommentState::Live => format!("✅ **Live** at {url} (commit `{short}`)"),
        CommentState::Failed { reason } => {
            format!("❌ **Failed** to deploy commit `{short}`: {reason}")
        }
        CommentState::Removed => "🗑 **Removed**: the pull request is closed.".to_owned(),
    };
    format!(
        "<!-- helvetia-preview {project}/{name} {label} -->\n### Helvetia preview of `{project}/{name}`\n\n{status}\n\nPreview: {url}"
    )
}

#[cfg(test)]
mod tests;
