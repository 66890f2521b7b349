//! Signing in with GitHub (the App's user authorization: the authorization-code flow with a
//! single-use `state` bound to the browser and PKCE S256), linking an account to GitHub, and
//! what a user reaches through the App (installations and their repositories).
//!
//! Users are found by GitHub's numeric id, never by e-mail: a known id signs in; an unknown
//! one signs up only if the sign-up policy lets it (its primary verified e-mail at a
//! `--signup-domains` domain, or membership of a `--signup-github-orgs` organization); a
//! signed-in user links their own account by starting the flow from it. The user's GitHub
//! token is sealed at rest; it only lists what the user reaches through the App.

use crate::vault::{github_authorization_binding, github_token_binding};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use helvetia_core::account::{Email, User};
use helvetia_core::audit::AuditAction;
use helvetia_core::auth::{Caller, Principal, UserId, token_hash};
use helvetia_store::audit::AuditBy;
use helvetia_store::github_users::{NewGitHubAuthorization, SealedGitHubToken};
use helvetia_store::sealed::GithubAppSecret;
use helvetia_store::users::NewUser;
use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::account::{Issued, Origin, by_user};
use super::{App, Refusal, Result, UseCaseError, signin};
use crate::github_user::{self as github, AppCredentials, GitHubError, UserApi};
use crate::sessions::random_token;

/// How long a sign-in with GitHub may take from start to callback.
pub const AUTHORIZATION_LIFETIME: SignedDuration = SignedDuration::from_mins(10);
/// Where GitHub sends the browser back.
pub const CALLBACK_PATH: &str = "/api/v1/auth/github/callback";

/// The stored App's user-authorization credentials (its client secret opened) and GitHub's
/// URLs: the one place sign-in reads them from.
pub(super) async fn credentials(app: &App) -> Result<AppCredentials> {
    let stored = app
        .store
        .github_app()
        .await?
        .ok_or_else(|| UseCaseError::NotFound("GitHub App (none is configured)".into()))?;
    let client_secret = crate::github::open(
        &app.platform.vault,
        GithubAppSecret::ClientSecret,
        &stored.sealed_client_secret,
    )
    .map_err(|error| UseCaseError::Internal(format!("the App's client secret: {error}")))?;
    let urls = &app.platform.settings.github;
    Ok(AppCredentials {
        web_url: urls.web.clone(),
        api_url: urls.api.clone(),
        client_id: stored.client_id,
        client_secret,
    })
}

/// A started authorization: where to send the browser, and the value for its cookie.
pub struct Started {
    pub authorize_url: String,
    pub browser_token: String,
}

/// How a callback ended.
pub enum Completed {
    SignedIn(Issued),
    Linked,
}

fn redirect_uri(app: &App) -> String {
    let mut url = app.platform.settings.link_base();
    url.set_path(CALLBACK_PATH);
    url.to_string()
}

/// Whether people can sign in with GitHub: the instance has a GitHub App.
pub async fn available(app: &App) -> Result<bool> {
    Ok(app.store.github_app().await?.is_some())
}

/// Starts a sign-in with GitHub, or (with `linking`) the linking of the caller's account.
pub async fn start(app: &App, linking: Option<&Caller>) -> Result<Started> {
    let credentials = credentials(app).await?;
    let user = match linking.map(|caller| &caller.principal) {
        None => None,
        Some(Principal::User { id, .. }) => Some(*id),
        Some(Principal::System | Principal::CiJob { .. }) => {
            return Err(UseCaseError::NotFound(
                "account (a server-administration token belongs to no one)".into(),
            ));
        }
    };
    let state = random_token();
    let browser_token = random_token();
    let verifier = random_token();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let state_hash = token_hash(&state);
    let expires_at = Timestamp::now()
        .checked_add(AUTHORIZATION_LIFETIME)
        .map_err(|e| UseCaseError::Internal(e.to_string()))?;
    let new = NewGitHubAuthorization {
        verifier_sealed: app
            .platform
            .vault
            .seal(&github_authorization_binding(&state_hash), &verifier),
        state_hash,
        browser_hash: token_hash(&browser_token),
        user,
        expires_at,
    };
    app.store.start_github_authorization(&new).await?;
    let mut url = credentials.web_url.clone();
    let path = format!("{}/login/oauth/authorize", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.query_pairs_mut()
        .append_pair("client_id", &credentials.client_id)
        .append_pair("redirect_uri", &redirect_uri(app))
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    Ok(Started {
        authorize_url: url.to_string(),
        browser_token,
    })
}

fn refused(why: &str) -> UseCaseError {
    UseCaseError::Refused(format!("{why}: start the sign-in with GitHub again"))
}

pub(super) fn from_github(error: GitHubError) -> UseCaseError {
    match error {
        GitHubError::Refused(_) => UseCaseError::Refused(error.to_string()),
        other => UseCaseError::Internal(other.to_string()),
    }
}

/// Finishes a sign-in (or a link) when GitHub sends the browser back with `code` and `state`;
/// `browser` is the value of the browser's cookie.
pub async fn callback(
    app: &App,
    code: &str,
    state: &str,
    browser: Option<&str>,
    origin: Origin,
) -> Result<Completed> {
    let credentials = credentials(app).await?;
    let Some(browser) = browser else {
        return Err(refused(
            "this browser did not start a sign-in with GitHub (its cookie is missing)",
        ));
    };
    let state_hash = token_hash(state);
    let Some(authorization) = app.store.take_github_authorization(&state_hash).await? else {
        return Err(refused(
            "the sign-in's `state` is unknown or was used already",
        ));
    };
    let same_browser = authorization
        .browser_hash
        .as_bytes()
        .ct_eq(token_hash(browser).as_bytes());
    if !bool::from(same_browser) {
        return Err(refused("the sign-in was started in another browser"));
    }
    if authorization.expires_at < Timestamp::now() {
        return Err(refused("the sign-in took too long"));
    }
    let verifier = app
        .platform
        .vault
        .open(
            &github_authorization_binding(&state_hash),
            &authorization.verifier_sealed,
        )
        .map_err(|e| UseCaseError::Internal(e.to_string()))?;
    let outbound = &app.platform.outbound;
    let token = github::exchange_code(outbound, &credentials, code, &redirect_uri(app), &verifier)
        .await
        .map_err(from_github)?;
    let api = UserApi::new(outbound, &credentials.api_url, &token.access_token);
    let github_user = api.user().await.map_err(from_github)?;
    let user = match authorization.user {
        Some(user) => {
            let account = app.store.user(user).await?;
            let by = by_user(&account, origin.client.clone());
            app.store
                .link_github(by, user, github_user.id, &github_user.login)
                .await?;
            account
        }
        None => match app.store.user_by_github_id(github_user.id).await? {
            Some(user) => user,
            None => sign_up(app, &api, &github_user, &origin).await?,
        },
    };
    let by = by_user(&user, origin.client.clone());
    if user.disabled {
        app.store
            .record_audit(by, AuditAction::SignInFailed, "account disabled (GitHub)")
            .await?;
        return Err(UseCaseError::Unauthenticated(Refusal::Credentials));
    }
    keep_token(app, user.id, &token).await?;
    if authorization.user.is_some() {
        return Ok(Completed::Linked);
    }
    let issued = signin::start(app, user.id, by, origin, Timestamp::now()).await?;
    Ok(Completed::SignedIn(issued))
}

/// Keeps the user's GitHub token, sealed, for listing what they reach through the App.
async fn keep_token(app: &App, user: UserId, token: &github::UserToken) -> Result<()> {
    let expires_at = token.expires_in.and_then(|seconds| {
        Timestamp::now()
            .checked_add(SignedDuration::from_secs(seconds))
            .ok()
    });
    let sealed = SealedGitHubToken {
        sealed: app
            .platform
            .vault
            .seal(&github_token_binding(user), &token.access_token),
        expires_at,
    };
    app.store.set_github_token(user, &sealed).await?;
    app.github.forget(user);
    Ok(())
}

/// Creates an account for a GitHub user the sign-up policy lets in.
async fn sign_up(
    app: &App,
    api: &UserApi<'_>,
    github_user: &github::GitHubUser,
    origin: &Origin,
) -> Result<User> {
    let settings = &app.platform.settings;
    let emails = api.emails().await.map_err(from_github)?;
    let email = emails
        .iter()
        .find(|email| email.primary && email.verified)
        .and_then(|email| Email::parse(&email.email).ok());
    let by_domain = email
        .as_ref()
        .is_some_and(|email| settings.signup_domains.iter().any(|d| d == email.domain()));
    let by_org = if settings.signup_github_orgs.is_empty() || by_domain {
        false
    } else {
        let orgs = api.orgs().await.map_err(from_github)?;
        orgs.iter().any(|org| {
            settings
                .signup_github_orgs
                .contains(&org.login.to_lowercase())
        })
    };
    let anonymous = AuditBy {
        actor: format!("github:{}({})", github_user.id, github_user.login),
        client: origin.client.clone(),
        ..AuditBy::default()
    };
    let email = match email {
        Some(email) if by_domain || by_org => email,
        _ => {
            // `by_domain` needs an address: without one, only an organization let them in.
            let (reason, message) = if by_org {
                (
                    "GitHub account without a verified primary e-mail address",
                    "signing up with GitHub needs a verified primary e-mail address on the \
                     GitHub account",
                )
            } else {
                (
                    "GitHub account with no Helvetia account; sign-up not open to it",
                    "this GitHub account has no Helvetia account and may not sign up here: ask \
                     for an invitation, or sign in and link GitHub from your account",
                )
            };
            app.store
                .record_audit(anonymous, AuditAction::SignInFailed, reason)
                .await?;
            return Err(UseCaseError::Forbidden(message.into()));
        }
    };
    let new = NewUser {
        email,
        name: github_user.login.clone(),
        password_hash: None,
        instance_admin: false,
    };
    Ok(app
        .store
        .create_github_user(anonymous, &new, github_user.id, &github_user.login)
        .await?)
}
