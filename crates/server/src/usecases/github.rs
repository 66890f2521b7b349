//! The instance's GitHub App (instance administrators): reading what is configured, entering
//! an App by hand, and creating one in a click through GitHub's manifest flow — a form the
//! browser posts to GitHub, and the public callback GitHub sends the browser back to with a
//! code. Every secret is sealed before it reaches the store and never answered.

use helvetia_api_types::{GitHubAppInput, GitHubAppView, GitHubManifestForm, StartGitHubManifest};
use helvetia_core::auth::{Caller, token_hash};
use helvetia_core::validation::{FieldErrors, Invalid};
use helvetia_engine::github::jwt::AppKey;
use helvetia_store::audit::AuditBy;
use helvetia_store::github::GitHubApp;
use jiff::{SignedDuration, Timestamp};

use super::tokens::random_secret;
use super::{App, Result, UseCaseError};
use crate::vault::github_app_binding;
use helvetia_store::sealed::GithubAppSecret;

/// How long an administrator has to confirm the App on GitHub.
const STATE_LIFETIME: SignedDuration = SignedDuration::from_secs(10 * 60);
/// Where GitHub sends the browser back with the manifest's code.
pub const CALLBACK_PATH: &str = "/api/v1/github/app/callback";
/// Where GitHub will deliver the App's webhooks.
pub const WEBHOOK_PATH: &str = "/api/v1/github/webhook";
/// Where users come back after authorizing the App (signing in with GitHub).
pub const SIGNIN_CALLBACK_PATH: &str = "/api/v1/auth/github/callback";

fn require_admin(caller: &Caller) -> Result<()> {
    if caller.is_instance_admin() {
        Ok(())
    } else {
        Err(UseCaseError::Forbidden(
            "only instance administrators configure the GitHub App".into(),
        ))
    }
}

/// What is configured, without a secret.
pub async fn app_config(app: &App, caller: &Caller) -> Result<GitHubAppView> {
    require_admin(caller)?;
    Ok(view(app.store.github_app().await?.as_ref()))
}

fn view(stored: Option<&GitHubApp>) -> GitHubAppView {
    GitHubAppView {
        configured: stored.is_some(),
        app_id: stored.map(|app| app.app_id),
        slug: stored.and_then(|app| app.slug.clone()),
        client_id: stored.map(|app| app.client_id.clone()),
        secrets_set: stored.is_some(),
    }
}

/// Makes an App entered by hand the instance's; its private key must be a usable RSA key.
pub async fn configure(app: &App, caller: &Caller, input: GitHubAppInput) -> Result<GitHubAppView> {
    require_admin(caller)?;
    let mut errors = FieldErrors::new();
    if input.app_id < 1 {
        errors.add("app_id", Invalid::new("must be a positive number"));
    }
    for (field, value, max) in [
        ("client_id", &input.client_id, 100),
        ("client_secret", &input.client_secret, 200),
        ("webhook_secret", &input.webhook_secret, 200),
    ] {
        if value.trim().is_empty() || value.len() > max {
            errors.add(
                field,
                Invalid::new(format!("must be 1 to {max} characters")),
            );
        }
    }
    if let Err(error) = AppKey::from_pem(&input.private_key) {
        errors.add("private_key", Invalid::new(error.to_string()));
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let stored = seal(
        app,
        input.app_id,
        None,
        input.client_id.trim().to_owned(),
        &input.private_key,
        &input.client_secret,
        &input.webhook_secret,
    );
    app.store.save_github_app(&stored, caller).await?;
    Ok(view(Some(&stored)))
}

fn seal(
    app: &App,
    app_id: i64,
    slug: Option<String>,
    client_id: String,
    private_key: &str,
    client_secret: &str,
    webhook_secret: &str,
) -> GitHubApp {
    let vault = &app.platform.vault;
    GitHubApp {
        app_id,
        slug,
        client_id,
        sealed_private_key: vault.seal(
            &github_app_binding(GithubAppSecret::PrivateKey),
            private_key,
        ),
        sealed_client_secret: vault.seal(
            &github_app_binding(GithubAppSecret::ClientSecret),
            client_secret,
        ),
        sealed_webhook_secret: vault.seal(
            &github_app_binding(GithubAppSecret::WebhookSecret),
            webhook_secret,
        ),
        created_at: Timestamp::now(),
    }
}

/// Starts the manifest flow: the form the administrator's browser posts to GitHub, with a
/// single-use state bound to them.
pub async fn start_manifest(
    app: &App,
    caller: &Caller,
    input: StartGitHubManifest,
) -> Result<GitHubManifestForm> {
    require_admin(caller)?;
    let settings = &app.platform.settings;
    let link_base = settings.link_base();
    let base = link_base.as_str().trim_end_matches('/');
    let manifest = serde_json::json!({
        // App names are unique on GitHub: the instance's host tells instances apart.
        "name": format!("Helvetia {}", link_base.host_str().unwrap_or_default()),
        "url": base,
        "hook_attributes": { "url": format!("{base}{WEBHOOK_PATH}"), "active": true },
        "redirect_url": format!("{base}{CALLBACK_PATH}"),
        "callback_urls": [format!("{base}{SIGNIN_CALLBACK_PATH}")],
        "public": false,
        "default_permissions": {
            "contents": "read",
            "metadata": "read",
            "statuses": "write",
            "checks": "read",
            "pull_requests": "write",
            "issues": "write",
        },
        "default_events": [
            "push", "pull_request", "check_suite", "status", "installation",
            "installation_repositories",
        ],
    });
    let state = random_secret();
    let now = Timestamp::now();
    app.store
        .add_github_manifest_state(
            &token_hash(&state),
            caller.user(),
            now + STATE_LIFETIME,
            now,
        )
        .await?;
    let path = match &input.organization {
        Some(org) => {
            if !valid_login(org) {
                return Err(FieldErrors::single(
                    "organization",
                    Invalid::new("is not a GitHub organization name"),
                )
                .into());
            }
            format!("/organizations/{org}/settings/apps/new")
        }
        None => "/settings/apps/new".to_owned(),
    };
    Ok(GitHubManifestForm {
        action: format!("{}?state={state}", settings.github.web_url(&path)),
        manifest: manifest.to_string(),
        state,
    })
}

/// GitHub's rule for account names: letters, digits and inner single hyphens, ≤ 39.
fn valid_login(login: &str) -> bool {
    !login.is_empty()
        && login.len() <= 39
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !login.starts_with('-')
        && !login.ends_with('-')
}

/// The end of the manifest flow (public: GitHub sends the browser here): the state must be a
/// pending one, spent here; the code is converted into the App, stored sealed, audited as the
/// administrator who started the flow.
pub async fn finish_manifest(
    app: &App,
    code: &str,
    state: &str,
    client: Option<String>,
) -> Result<GitHubAppView> {
    let refused = || {
        UseCaseError::NotFound(
            "GitHub App creation with this state (unknown, used or expired: start again)".into(),
        )
    };
    let pending = app
        .store
        .take_github_manifest_state(&token_hash(state), Timestamp::now())
        .await?
        .ok_or_else(refused)?;
    // Whoever started it must still be an administrator (the server's admin token always is).
    let by = match pending.user {
        Some(user) => {
            let admin = app.store.user(user).await?;
            if !admin.instance_admin || admin.disabled {
                return Err(refused());
            }
            AuditBy {
                team: None,
                user: Some(admin.id),
                actor: format!("user:{}({})", admin.id.0, admin.email),
                client,
            }
        }
        None => AuditBy {
            actor: "system".into(),
            client,
            ..AuditBy::default()
        },
    };
    let created = app
        .platform
        .github
        .convert_manifest(code)
        .await
        .map_err(|error| {
            FieldErrors::single("code", Invalid::new(format!("GitHub refused it: {error}")))
        })?;
    let stored = seal(
        app,
        created.id,
        created.slug.clone(),
        created.client_id.clone(),
        &created.pem,
        &created.client_secret,
        created.webhook_secret.as_deref().unwrap_or_default(),
    );
    app.store.save_github_app(&stored, by).await?;
    Ok(view(Some(&stored)))
}
