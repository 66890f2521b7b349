//! What the fake GitHub knows: its users and organizations, the Apps it created, their
//! installations and repositories, the tokens and codes it issued, what Apps wrote back, and
//! the requests it saw. One mutex; every handler holds it briefly and never across an await.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use rand::RngExt;
use serde_json::{Value, json};

/// The state shared by the fake's handlers and its test-facing methods.
#[derive(Clone)]
pub(crate) struct Shared {
    inner: Arc<Mutex<State>>,
    /// `http://127.0.0.1:PORT`, the github.com role.
    pub(crate) web_url: String,
}

impl Shared {
    pub(crate) fn new(web_url: String) -> Shared {
        Shared {
            inner: Arc::new(Mutex::new(State::default())),
            web_url,
        }
    }

    pub(crate) fn api_url(&self) -> String {
        format!("{}/api/v3", self.web_url)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A handler that panicked mid-update leaves test data at worst half-written; the test
        // that caused it fails anyway, so poisoning is not worth propagating.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Default)]
pub(crate) struct State {
    next_id: i64,
    pub(crate) accounts: Vec<Account>,
    pub(crate) users: Vec<User>,
    /// The user the browser is signed in to GitHub as (authorizations approve as them).
    pub(crate) signed_in: Option<i64>,
    pub(crate) apps: Vec<App>,
    /// Manifest flow codes not yet converted: code → (index into `apps`, when issued).
    pub(crate) manifest_codes: HashMap<String, (usize, i64)>,
    pub(crate) installations: Vec<Installation>,
    pub(crate) installation_tokens: Vec<InstallationToken>,
    pub(crate) authorization_codes: HashMap<String, AuthorizationGrant>,
    /// User access tokens (`ghu_…`) → GitHub user id.
    pub(crate) user_tokens: HashMap<String, i64>,
    pub(crate) requests: Vec<SeenRequest>,
    /// What Apps wrote on repositories, oldest first.
    pub(crate) written: Vec<Written>,
    /// Webhook deliveries sent: (GUID, event, raw body), for redeliveries.
    pub(crate) deliveries: Vec<(String, String, Vec<u8>)>,
}

/// A GitHub account: a user or an organization.
#[derive(Clone)]
pub(crate) struct Account {
    pub(crate) id: i64,
    pub(crate) login: String,
    pub(crate) organization: bool,
}

pub(crate) struct User {
    pub(crate) id: i64,
    pub(crate) login: String,
    pub(crate) email: String,
    pub(crate) orgs: Vec<String>,
}

/// An App the fake created through the manifest flow (or [`super::FakeGitHub::create_app`]).
pub(crate) struct App {
    pub(crate) id: i64,
    pub(crate) slug: String,
    pub(crate) name: String,
    pub(crate) owner: String,
    pub(crate) url: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) webhook_secret: String,
    pub(crate) pem: String,
    pub(crate) public_key: rsa::PublicKey,
    pub(crate) callback_urls: Vec<String>,
    pub(crate) permissions: Value,
    pub(crate) events: Vec<String>,
}

pub(crate) struct Installation {
    pub(crate) id: i64,
    pub(crate) account: Account,
    pub(crate) repos: Vec<Repo>,
    pub(crate) created_at: i64,
}

pub(crate) struct Repo {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) private: bool,
    /// The bare repository served over git's smart HTTP, if any.
    pub(crate) dir: Option<PathBuf>,
}

pub(crate) struct InstallationToken {
    pub(crate) token: String,
    pub(crate) installation_id: i64,
    /// Unix seconds.
    pub(crate) expires_at: i64,
    /// The repositories the token was narrowed to when it was requested, if it was.
    pub(crate) repositories: Option<Vec<String>>,
}

/// An authorization code handed to a redirect URI, waiting to be exchanged.
pub(crate) struct AuthorizationGrant {
    pub(crate) client_id: String,
    pub(crate) user_id: i64,
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: Option<String>,
    pub(crate) issued_at: i64,
}

/// Something an App wrote on a repository.
pub(crate) struct Written {
    pub(crate) kind: WrittenKind,
    /// `owner/name`.
    pub(crate) repo: String,
    /// What it is listed under: the commit (statuses, check runs) or the issue number.
    pub(crate) key: String,
    pub(crate) value: Value,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum WrittenKind {
    Status,
    CheckRun,
    Comment,
}

/// A request the fake saw, with credentials elided.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: String,
    /// Path and query, as sent.
    pub uri: String,
    /// Every header; `authorization`'s value reduced to its scheme (`Bearer ***`).
    pub headers: Vec<(String, String)>,
}

pub(crate) fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// GitHub's timestamp format, `2026-11-28T14:00:00Z`.
pub(crate) fn timestamp(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// A random token with GitHub's prefix for its kind (`ghs_`, `ghu_`, …).
pub(crate) fn random_token(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let body: String = (0..36)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{body}")
}

impl State {
    pub(crate) fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        // Distinct ranges would hide mix-ups between kinds of ids; GitHub's ids are large.
        1_000 + self.next_id
    }

    /// The account called `login`, created as an organization when nobody has it yet.
    pub(crate) fn account(&mut self, login: &str) -> Account {
        if let Some(account) = self.accounts.iter().find(|a| a.login == login) {
            return account.clone();
        }
        let account = Account {
            id: self.next_id(),
            login: login.to_owned(),
            organization: true,
        };
        self.accounts.push(account.clone());
        account
    }

    pub(crate) fn user(&self, id: i64) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    pub(crate) fn installation(&self, id: i64) -> Option<&Installation> {
        self.installations.iter().find(|i| i.id == id)
    }

    /// The installations a user reaches: on their own account or their organizations'.
    pub(crate) fn user_installations(&self, user_id: i64) -> Vec<&Installation> {
        let Some(user) = self.user(user_id) else {
            return vec![];
        };
        self.installations
            .iter()
            .filter(|i| i.account.login == user.login || user.orgs.contains(&i.account.login))
            .collect()
    }

    /// The installation an unexpired installation token belongs to.
    pub(crate) fn token_installation(&self, token: &str) -> Option<&InstallationToken> {
        let now = now();
        self.installation_tokens
            .iter()
            .find(|t| crate::github::same_secret(&t.token, token) && t.expires_at > now)
    }

    /// What was written of `kind` on `repo` (`owner/name`) under `key` (any key if None),
    /// oldest first.
    pub(crate) fn written(&self, kind: WrittenKind, repo: &str, key: Option<&str>) -> Vec<Value> {
        self.written
            .iter()
            .filter(|w| w.kind == kind && w.repo == repo && key.is_none_or(|k| w.key == k))
            .map(|w| w.value.clone())
            .collect()
    }

    /// The App installations act for: the last one created.
    pub(crate) fn app(&self) -> Option<&App> {
        self.apps.last()
    }
}

pub(crate) fn account_json(account: &Account, web_url: &str, api_url: &str) -> Value {
    json!({
        "login": account.login,
        "id": account.id,
        "node_id": format!("MDQ6VXNlcj{}", account.id),
        "avatar_url": format!("{web_url}/{}.png", account.login),
        "url": format!("{api_url}/users/{}", account.login),
        "html_url": format!("{web_url}/{}", account.login),
        "type": if account.organization { "Organization" } else { "User" },
        "site_admin": false,
    })
}

pub(crate) fn repo_json(
    installation: &Installation,
    repo: &Repo,
    web_url: &str,
    api_url: &str,
) -> Value {
    let owner = &installation.account.login;
    let full_name = format!("{owner}/{}", repo.name);
    json!({
        "id": repo.id,
        "node_id": format!("MDEwOlJlcG9zaXRvcnk{}", repo.id),
        "name": repo.name,
        "full_name": full_name,
        "private": repo.private,
        "visibility": if repo.private { "private" } else { "public" },
        "owner": account_json(&installation.account, web_url, api_url),
        "html_url": format!("{web_url}/{full_name}"),
        "description": null,
        "fork": false,
        "url": format!("{api_url}/repos/{full_name}"),
        "clone_url": format!("{web_url}/{full_name}.git"),
        "default_branch": default_branch(repo),
        "archived": false,
        "disabled": false,
    })
}

/// The branch the bare repository's HEAD names (`main` without a repository).
fn default_branch(repo: &Repo) -> String {
    repo.dir
        .as_ref()
        .and_then(|dir| std::fs::read_to_string(dir.join("HEAD")).ok())
        .and_then(|head| {
            head.trim()
                .strip_prefix("ref: refs/heads/")
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "main".to_owned())
}
