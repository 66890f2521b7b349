//! A push, as GitHub, Gitea/Forgejo, GitLab or a generic sender describes it, read into one
//! [`PushEvent`]. Only the fields deploying needs are read; the rest of a payload is ignored,
//! so a sender adding fields changes nothing.

use serde::Deserialize;

use crate::git::CommitSha;

/// GitHub's push payloads list at most 20 commits (its documentation): a push of 20 or more
/// may have changed files the payload does not show.
const GITHUB_LISTED_COMMITS: usize = 20;
/// Bounds on what is kept of a payload's free text.
const MAX_TEXT: usize = 1000;
const MAX_FILES: usize = 10_000;

/// One push, in the terms every source shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEvent {
    /// The full ref pushed: `refs/heads/main`, `refs/tags/v1`.
    pub git_ref: String,
    /// The ref's commit before the push (all zeros when the push created it).
    pub before: String,
    /// The ref's commit after the push (all zeros when the push deleted it).
    pub after: String,
    /// Who pushed, as the sender names them.
    pub pusher: Option<String>,
    /// The message of the pushed head commit.
    pub message: Option<String>,
    /// Where the sender shows the change.
    pub compare_url: Option<String>,
    /// The files the listed commits added, removed or modified, each once.
    pub changed_files: Vec<String>,
    pub forced: bool,
    pub created: bool,
    pub deleted: bool,
    /// The payload lists only some of the pushed commits, so `changed_files` may miss some.
    pub truncated: bool,
    /// The sender's id of the repository (GitHub: `repository.id`).
    pub repository_id: Option<i64>,
}

/// A payload that is not a push this module can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the payload is not a push Helvetia can read: {0}")]
pub struct PayloadError(pub String);

/// Whether `sha` is the all-zero id senders use for "no commit".
pub fn is_zero(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

impl PushEvent {
    /// Whether `changed_files` lists every file the push changed: not for a force push (the
    /// commits listed are not the difference), a new ref (no `before`) or a truncated list.
    pub fn lists_every_change(&self) -> bool {
        !(self.forced || self.created || is_zero(&self.before) || self.truncated)
    }

    /// GitHub's push payload; Gitea's and Forgejo's share its shape (with `compare_url` and
    /// `total_commits`, and a pusher named by `login`).
    pub fn from_github(body: &[u8]) -> Result<PushEvent, PayloadError> {
        let payload: GitHubPush = read(body)?;
        let listed = payload.commits.len();
        let truncated = match payload.total_commits {
            Some(total) => total > listed,
            None => listed >= GITHUB_LISTED_COMMITS,
        };
        let head_message = payload
            .head_commit
            .as_ref()
            .and_then(|commit| commit.message.clone())
            .or_else(|| payload.commits.last().and_then(|c| c.message.clone()));
        let pusher = payload.pusher.and_then(|pusher| {
            [pusher.name, pusher.login, pusher.username]
                .into_iter()
                .flatten()
                .find(|name| !name.is_empty())
        });
        let changed_files = files(
            payload
                .commits
                .iter()
                .chain(payload.head_commit.iter().filter(|_| listed == 0)),
        );
        finish(PushEvent {
            git_ref: payload.git_ref,
            before: payload.before,
            after: payload.after,
            pusher,
            message: head_message,
            compare_url: payload.compare.or(payload.compare_url),
            changed_files,
            forced: payload.forced,
            created: payload.created,
            deleted: payload.deleted,
            truncated,
            repository_id: payload.repository.and_then(|repository| repository.id),
        })
    }

    /// GitLab's push (and tag push) payload.
    pub fn from_gitlab(body: &[u8]) -> Result<PushEvent, PayloadError> {
        let payload: GitLabPush = read(body)?;
        let truncated = payload
            .total_commits_count
            .is_some_and(|total| total > payload.commits.len());
        let compare_url = payload
            .project
            .and_then(|project| project.web_url)
            .map(|web| {
                format!(
                    "{}/-/compare/{}...{}",
                    web.trim_end_matches('/'),
                    payload.before,
                    payload.after
                )
            });
        let message = payload
            .commits
            .iter()
            .find(|commit| commit.id.as_deref() == Some(payload.after.as_str()))
            .or(payload.commits.last())
            .and_then(|commit| commit.message.clone());
        finish(PushEvent {
            created: is_zero(&payload.before),
            deleted: is_zero(&payload.after),
            changed_files: files(payload.commits.iter()),
            git_ref: payload.git_ref,
            before: payload.before,
            after: payload.after,
            pusher: payload.user_username.or(payload.user_name),
            message,
            compare_url,
            forced: false,
            truncated,
            repository_id: None,
        })
    }

    /// Helvetia's generic push: `{"ref": "refs/heads/main" or "main", "after": "<sha>"}` and
    /// optionally `before`, `pusher`, `message`, `compare_url` and `changed_files` (without
    /// it, the changed files are unknown).
    pub fn from_generic(body: &[u8]) -> Result<PushEvent, PayloadError> {
        let payload: GenericPush = read(body)?;
        let git_ref = if payload.git_ref.starts_with("refs/") {
            payload.git_ref
        } else {
            format!("refs/heads/{}", payload.git_ref)
        };
        let before = payload.before.unwrap_or_default();
        finish(PushEvent {
            git_ref,
            created: before.is_empty() || is_zero(&before),
            deleted: is_zero(&payload.after),
            truncated: payload.changed_files.is_none(),
            changed_files: payload.changed_files.unwrap_or_default(),
            before,
            after: payload.after,
            pusher: payload.pusher,
            message: payload.message,
            compare_url: payload.compare_url,
            forced: false,
            repository_id: None,
        })
    }
}

fn read<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, PayloadError> {
    serde_json::from_slice(body).map_err(|error| PayloadError(error.to_string()))
}

/// Checks the commit ids and bounds the free text.
fn finish(mut push: PushEvent) -> Result<PushEvent, PayloadError> {
    let full = |sha: &str| CommitSha::parse(sha).is_ok_and(|sha| sha.is_full());
    if !full(&push.after) {
        return Err(PayloadError("`after` is not a full commit id".into()));
    }
    if !(push.before.is_empty() || full(&push.before)) {
        return Err(PayloadError("`before` is not a full commit id".into()));
    }
    if push.git_ref.is_empty()
        || push.git_ref.ends_with('/')
        || push.git_ref.len() > 255
        || push.git_ref.chars().any(char::is_control)
    {
        return Err(PayloadError("`ref` is not a git ref".into()));
    }
    let bound = |text: Option<String>| {
        text.map(|text| text.trim().chars().take(MAX_TEXT).collect::<String>())
            .filter(|text| !text.is_empty())
    };
    push.after = push.after.to_ascii_lowercase();
    push.before = push.before.to_ascii_lowercase();
    push.pusher = bound(push.pusher);
    push.message = bound(push.message);
    push.compare_url = bound(push.compare_url);
    if push.changed_files.len() > MAX_FILES {
        push.changed_files.truncate(MAX_FILES);
        push.truncated = true;
    }
    Ok(push)
}

/// The files `commits` touched, each once, in the order first met.
fn files<'a>(commits: impl Iterator<Item = &'a Commit>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut files = Vec::new();
    for commit in commits {
        for file in commit
            .added
            .iter()
            .chain(&commit.removed)
            .chain(&commit.modified)
        {
            if seen.insert(file.as_str()) {
                files.push(file.clone());
            }
        }
    }
    files
}

#[derive(Deserialize)]
struct GitHubPush {
    #[serde(rename = "ref")]
    git_ref: String,
    before: String,
    after: String,
    #[serde(default)]
    created: bool,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    forced: bool,
    compare: Option<String>,
    /// Gitea's and Forgejo's name for `compare`.
    compare_url: Option<String>,
    #[serde(default)]
    commits: Vec<Commit>,
    head_commit: Option<Commit>,
    pusher: Option<Pusher>,
    repository: Option<Repository>,
    /// Gitea and Forgejo: how many commits the push had, listed or not.
    total_commits: Option<usize>,
}

#[derive(Deserialize)]
struct Commit {
    id: Option<String>,
    message: Option<String>,
    #[serde(default)]
    added: Vec<String>,
    #[serde(default)]
    removed: Vec<String>,
    #[serde(default)]
    modified: Vec<String>,
}

#[derive(Deserialize)]
struct Pusher {
    name: Option<String>,
    login: Option<String>,
    username: Option<String>,
}

#[derive(Deserialize)]
struct Repository {
    id: Option<i64>,
}

#[derive(Deserialize)]
struct GitLabPush {
    #[serde(rename = "ref")]
    git_ref: String,
    before: String,
    after: String,
    user_username: Option<String>,
    user_name: Option<String>,
    project: Option<GitLabProject>,
    #[serde(default)]
    commits: Vec<Commit>,
    total_commits_count: Option<usize>,
}

#[derive(Deserialize)]
struct GitLabProject {
    web_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericPush {
    #[serde(rename = "ref")]
    git_ref: String,
    after: String,
    before: Option<String>,
    pusher: Option<String>,
    message: Option<String>,
    compare_url: Option<String>,
    changed_files: Option<Vec<String>>,
}
