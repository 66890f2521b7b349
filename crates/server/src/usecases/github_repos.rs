//! What a user reaches through the instance's GitHub App — the installations and the
//! repositories they grant, listed with the user's own GitHub token (so nobody sees or links a
//! repository they could not open on GitHub) and kept briefly — and the repository a service
//! is created from.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use helvetia_api_types::{GitHubInstallation, GitHubRepository, GitHubSource};
use helvetia_core::auth::{Caller, Principal, UserId};
use helvetia_core::service::GitHubLink;
use helvetia_core::validation::{FieldErrors, Invalid};
use jiff::Timestamp;

use super::github_users::{credentials, from_github};
use super::{App, Result, UseCaseError};
use crate::github_user::{AppCredentials, GitHubError, UserApi};

/// How long a user's installations and repositories are kept before GitHub is asked again.
const CACHE_LIFETIME: Duration = Duration::from_secs(60);

/// Answers kept until [`CACHE_LIFETIME`] after the instant they were fetched.
type Kept<K, V> = Mutex<HashMap<K, (Instant, V)>>;

/// What users reach through the App, per user, for [`CACHE_LIFETIME`].
#[derive(Default)]
pub struct Cache {
    installations: Kept<UserId, Vec<GitHubInstallation>>,
    repositories: Kept<(UserId, i64), Vec<GitHubRepository>>,
}

impl Cache {
    pub(super) fn forget(&self, user: UserId) {
        if let Ok(mut map) = self.installations.lock() {
            map.remove(&user);
        }
        if let Ok(mut map) = self.repositories.lock() {
            map.retain(|(owner, _), _| *owner != user);
        }
    }
}

fn cached<K: std::hash::Hash + Eq, V: Clone>(map: &Kept<K, V>, key: &K) -> Option<V> {
    let map = map.lock().ok()?;
    map.get(key)
        .filter(|(at, _)| at.elapsed() < CACHE_LIFETIME)
        .map(|(_, value)| value.clone())
}

fn remember<K: std::hash::Hash + Eq, V>(map: &Kept<K, V>, key: K, value: V) {
    if let Ok(mut map) = map.lock() {
        map.retain(|_, (at, _)| at.elapsed() < CACHE_LIFETIME);
        map.insert(key, (Instant::now(), value));
    }
}

/// The account the caller signed in as: whose GitHub authorization lists what it reaches.
fn user_of(caller: &Caller) -> Result<UserId> {
    match &caller.principal {
        Principal::User { id, .. } => Ok(*id),
        _ => Err(UseCaseError::NotFound(
            "account (a server-administration token belongs to no one)".into(),
        )),
    }
}

/// `user`'s GitHub token, opened.
async fn user_token(app: &App, user: UserId) -> Result<String> {
    let not_linked = || {
        UseCaseError::Conflict(
            "no usable GitHub authorization: sign in with GitHub or link GitHub again".into(),
        )
    };
    let sealed = app.store.github_token(user).await?.ok_or_else(not_linked)?;
    if sealed
        .expires_at
        .is_some_and(|expires| expires <= Timestamp::now())
    {
        return Err(not_linked());
    }
    app.platform
        .vault
        .open(&crate::vault::github_token_binding(user), &sealed.sealed)
        .map_err(|e| UseCaseError::Internal(e.to_string()))
}

/// The App's installations the caller reaches on GitHub.
pub async fn installations(app: &App, caller: &Caller) -> Result<Vec<GitHubInstallation>> {
    let user = user_of(caller)?;
    if let Some(hit) = cached(&app.github.installations, &user) {
        return Ok(hit);
    }
    let credentials = credentials(app).await?;
    let token = user_token(app, user).await?;
    let api = UserApi::new(&app.platform.outbound, &credentials.api_url, &token);
    let listed: Vec<GitHubInstallation> = api
        .installations()
        .await
        .map_err(from_github)?
        .into_iter()
        .map(|installation| GitHubInstallation {
            id: installation.id,
            account: installation.account.login,
        })
        .collect();
    remember(&app.github.installations, user, listed.clone());
    Ok(listed)
}

/// The repositories installation `installation` grants that the caller reaches on GitHub.
pub async fn repositories(
    app: &App,
    caller: &Caller,
    installation: i64,
) -> Result<Vec<GitHubRepository>> {
    let user = user_of(caller)?;
    if let Some(hit) = cached(&app.github.repositories, &(user, installation)) {
        return Ok(hit);
    }
    let credentials = credentials(app).await?;
    let token = user_token(app, user).await?;
    let api = UserApi::new(&app.platform.outbound, &credentials.api_url, &token);
    let listed: Vec<GitHubRepository> = match api.repositories(installation).await {
        Err(GitHubError::Status { status, .. }) if status == reqwest::StatusCode::NOT_FOUND => {
            return Err(UseCaseError::NotFound(format!(
                "installation {installation}"
            )));
        }
        other => other.map_err(from_github)?,
    }
    .into_iter()
    .map(|repository| GitHubRepository {
        id: repository.id,
        clone_url: clone_url(&credentials, &repository.full_name),
        full_name: repository.full_name,
        name: repository.name,
        private: repository.private,
        default_branch: repository.default_branch,
    })
    .collect();
    remember(
        &app.github.repositories,
        (user, installation),
        listed.clone(),
    );
    Ok(listed)
}

/// Where git clones `full_name` (`owner/repo`) from.
fn clone_url(credentials: &AppCredentials, full_name: &str) -> String {
    format!(
        "{}/{full_name}.git",
        credentials.web_url.as_str().trim_end_matches('/')
    )
}

/// A repository the service will be created from: where to clone it, its default branch and
/// the link to keep.
pub struct Source {
    pub clone_url: String,
    pub default_branch: Option<String>,
    pub link: GitHubLink,
}

/// The repository `source` names, if the caller reaches it through one of the App's
/// installations: the named one, or the one on the repository's owner.
pub async fn source(app: &App, caller: &Caller, source: &GitHubSource) -> Result<Source> {
    let unknown = || {
        FieldErrors::single(
            "github.repository",
            Invalid::new(format!(
                "`{}` is not a repository the GitHub App's installations give you",
                source.repository
            )),
        )
    };
    let owner = source
        .repository
        .split_once('/')
        .map(|(owner, _)| owner)
        .ok_or_else(|| {
            FieldErrors::single("github.repository", Invalid::new("expected `owner/name`"))
        })?;
    let installation = match source.installation_id {
        Some(id) => id,
        None => {
            installations(app, caller)
                .await?
                .into_iter()
                .find(|installation| installation.account.eq_ignore_ascii_case(owner))
                .ok_or_else(unknown)?
                .id
        }
    };
    let repository = match repositories(app, caller, installation).await {
        Err(UseCaseError::NotFound(_)) => return Err(unknown().into()),
        listed => listed?,
    }
    .into_iter()
    .find(|repository| {
        repository
            .full_name
            .eq_ignore_ascii_case(&source.repository)
    })
    .ok_or_else(unknown)?;
    Ok(Source {
        clone_url: repository.clone_url,
        default_branch: repository.default_branch,
        link: GitHubLink {
            installation_id: installation,
            repository_id: repository.id,
            full_name: repository.full_name,
        },
    })
}
