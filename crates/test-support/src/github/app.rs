//! The App's side of the fake: the manifest flow (`POST {web}/settings/apps/new` →
//! `POST {api}/app-manifests/{code}/conversions`), App JWTs (RS256, checked against the App's
//! public key the way GitHub checks them) and the installation tokens they mint.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
use rsa::signature::Verifier;
use serde::Deserialize;
use serde_json::{Value, json};

use super::state::{self, App, Installation, InstallationToken, Shared, account_json};
use super::{AppCredentials, GitHubError, NOT_FOUND, Page, bearer, with_link};

/// The size of the App keys GitHub generates.
const APP_KEY_BITS: usize = 2048;
/// How long a manifest code may wait for its conversion, as on GitHub.
const MANIFEST_CODE_LIFETIME_SECONDS: i64 = 3600;
/// An installation token's lifetime, as on GitHub.
const INSTALLATION_TOKEN_LIFETIME_SECONDS: i64 = 3600;
/// The longest App JWT GitHub accepts (`exp` − `iat`).
const APP_JWT_MAX_LIFETIME_SECONDS: i64 = 600;
/// How far in the future an App JWT's `iat` may lie (clock drift).
const APP_JWT_CLOCK_SKEW_SECONDS: i64 = 60;

pub(super) fn web_routes() -> Router<Shared> {
    Router::new()
        .route("/settings/apps/new", post(new_app_form))
        .route(
            "/organizations/{org}/settings/apps/new",
            post(new_org_app_form),
        )
}

pub(super) fn api_routes() -> Router<Shared> {
    Router::new()
        .route("/app-manifests/{code}/conversions", post(convert_manifest))
        .route("/app", get(this_app))
        .route("/app/installations", get(app_installations))
        .route("/app/installations/{id}", get(app_installation))
        .route(
            "/app/installations/{id}/access_tokens",
            post(create_installation_token),
        )
}

/// The parts of an App manifest the fake keeps.
#[derive(Deserialize)]
pub(super) struct Manifest {
    name: String,
    url: Option<String>,
    redirect_url: Option<String>,
    #[serde(default)]
    callback_urls: Vec<String>,
    #[serde(default)]
    default_permissions: Value,
    #[serde(default)]
    default_events: Vec<String>,
}

impl Manifest {
    pub(super) fn named(name: &str) -> Manifest {
        Manifest {
            name: name.to_owned(),
            url: Some("https://example.org".into()),
            redirect_url: None,
            callback_urls: vec![],
            default_permissions: json!({"contents": "read", "metadata": "read"}),
            default_events: vec![],
        }
    }
}

/// Creates an App with a fresh 2048-bit key; `owner` defaults to a stand-in account.
pub(super) async fn create(
    shared: &Shared,
    manifest: Manifest,
    owner: Option<String>,
) -> AppCredentials {
    // Key generation is CPU-heavy: keep it off the runtime's worker threads.
    let key = tokio::task::spawn_blocking(|| {
        rsa::PrivateKey::new(&mut rand::rng(), APP_KEY_BITS).expect("generating an RSA key")
    })
    .await
    .expect("the key generation task");
    let pem = key
        .to_pkcs1_pem(LineEnding::LF)
        .expect("encoding an RSA key")
        .to_string();
    let mut state = shared.lock();
    let owner = owner
        .or_else(|| {
            let id = state.signed_in?;
            Some(state.user(id)?.login.clone())
        })
        .unwrap_or_else(|| "app-owner".to_owned());
    state.account(&owner);
    let id = state.next_id();
    let slug: String = manifest
        .name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let app = App {
        id,
        slug: slug.clone(),
        name: manifest.name,
        owner,
        url: manifest.url,
        created_at: state::now(),
        client_id: format!("Iv23li{}", &state::random_token("")[..14]),
        client_secret: hex::encode(rand::random::<[u8; 20]>()),
        webhook_secret: hex::encode(rand::random::<[u8; 20]>()),
        pem: pem.clone(),
        public_key: key.to_public_key(),
        callback_urls: manifest.callback_urls,
        permissions: manifest.default_permissions,
        events: manifest.default_events,
    };
    let credentials = AppCredentials {
        id,
        slug,
        client_id: app.client_id.clone(),
        client_secret: app.client_secret.clone(),
        webhook_secret: app.webhook_secret.clone(),
        pem,
    };
    state.apps.push(app);
    credentials
}

#[derive(Deserialize)]
struct StateQuery {
    state: Option<String>,
}

async fn new_app_form(
    State(shared): State<Shared>,
    Query(query): Query<StateQuery>,
    body: Bytes,
) -> Response {
    manifest_form(shared, None, query, body).await
}

async fn new_org_app_form(
    State(shared): State<Shared>,
    Path(org): Path<String>,
    Query(query): Query<StateQuery>,
    body: Bytes,
) -> Response {
    manifest_form(shared, Some(org), query, body).await
}

/// The browser's form post: GitHub would show a confirmation page; the fake creates the App at
/// once and sends the browser on to `redirect_url?code=…&state=…`.
async fn manifest_form(
    shared: Shared,
    owner: Option<String>,
    query: StateQuery,
    body: Bytes,
) -> Response {
    #[derive(Deserialize)]
    struct Form {
        manifest: String,
        state: Option<String>,
    }
    let form: Form = match serde_urlencoded::from_bytes(&body) {
        Ok(form) => form,
        Err(error) => {
            return (StatusCode::BAD_REQUEST, format!("bad form: {error}")).into_response();
        }
    };
    let manifest: Manifest = match serde_json::from_str(&form.manifest) {
        Ok(manifest) => manifest,
        Err(error) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("bad manifest: {error}"),
            )
                .into_response();
        }
    };
    let (Some(redirect_url), Some(_)) = (manifest.redirect_url.clone(), manifest.url.as_ref())
    else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            "the manifest needs url and redirect_url",
        )
            .into_response();
    };
    create(&shared, manifest, owner).await;
    let code = state::random_token("");
    {
        let mut state = shared.lock();
        let index = state.apps.len() - 1;
        state
            .manifest_codes
            .insert(code.clone(), (index, state::now()));
    }
    let mut parameters = vec![("code", code)];
    if let Some(browser_state) = form.state.or(query.state) {
        parameters.push(("state", browser_state));
    }
    let separator = if redirect_url.contains('?') { '&' } else { '?' };
    let location = format!(
        "{redirect_url}{separator}{}",
        serde_urlencoded::to_string(&parameters).unwrap_or_default()
    );
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// `POST {api}/app-manifests/{code}/conversions`: the App's id and secrets, once per code.
async fn convert_manifest(
    State(shared): State<Shared>,
    Path(code): Path<String>,
) -> Result<Response, GitHubError> {
    let mut state = shared.lock();
    let (index, created) = state.manifest_codes.remove(&code).ok_or(NOT_FOUND)?;
    if state::now() - created > MANIFEST_CODE_LIFETIME_SECONDS {
        return Err(NOT_FOUND);
    }
    let (web_url, api_url) = (shared.web_url.clone(), shared.api_url());
    let app = &state.apps[index];
    let mut body = app_json(&state, app, &web_url, &api_url);
    body["client_id"] = json!(app.client_id);
    body["client_secret"] = json!(app.client_secret);
    body["webhook_secret"] = json!(app.webhook_secret);
    body["pem"] = json!(app.pem);
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

fn app_json(state: &state::State, app: &App, web_url: &str, api_url: &str) -> Value {
    let owner = state
        .accounts
        .iter()
        .find(|a| a.login == app.owner)
        .map(|a| account_json(a, web_url, api_url));
    json!({
        "id": app.id,
        "slug": app.slug,
        "node_id": format!("MDM6QXBw{}", app.id),
        "owner": owner,
        "name": app.name,
        "description": "",
        "external_url": app.url,
        "html_url": format!("{web_url}/apps/{}", app.slug),
        "created_at": state::timestamp(app.created_at),
        "updated_at": state::timestamp(app.created_at),
        "permissions": app.permissions,
        "events": app.events,
    })
}

/// The claims of an App JWT GitHub looks at.
#[derive(Deserialize)]
struct AppClaims {
    iat: i64,
    exp: i64,
    /// The App's id (a number or a numeric string) or its client id.
    iss: Value,
}

/// The App whose JWT authorizes this request, or GitHub's 401.
fn authenticate_app(state: &state::State, headers: &HeaderMap) -> Result<usize, GitHubError> {
    let unauthorized = |message: &'static str| GitHubError(StatusCode::UNAUTHORIZED, message);
    let jwt =
        bearer(headers).ok_or_else(|| unauthorized("A JSON web token could not be decoded"))?;
    let mut parts = jwt.split('.');
    let (Some(header_part), Some(claims_part), Some(signature_part), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(unauthorized("A JSON web token could not be decoded"));
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).ok();
    let jwt_header: Value = decode(header_part)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| unauthorized("A JSON web token could not be decoded"))?;
    if jwt_header["alg"] != "RS256" {
        return Err(unauthorized("A JSON web token could not be decoded"));
    }
    let claims: AppClaims = decode(claims_part)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| unauthorized("A JSON web token could not be decoded"))?;
    let issuer = match &claims.iss {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    let index = state
        .apps
        .iter()
        .position(|a| a.id.to_string() == issuer || a.client_id == issuer)
        .ok_or_else(|| unauthorized("'Issuer' claim ('iss') must be an Integer"))?;
    let signature = decode(signature_part)
        .and_then(|bytes| rsa::pkcs1v15::Signature::try_from(bytes.as_slice()).ok())
        .ok_or_else(|| unauthorized("A JSON web token could not be decoded"))?;
    let verifier =
        rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(state.apps[index].public_key.clone());
    let signed = format!("{header_part}.{claims_part}");
    if verifier.verify(signed.as_bytes(), &signature).is_err() {
        return Err(unauthorized("A JSON web token could not be decoded"));
    }
    let now = state::now();
    if claims.exp - claims.iat > APP_JWT_MAX_LIFETIME_SECONDS {
        return Err(unauthorized(
            "'Expiration time' claim ('exp') is too far in the future",
        ));
    }
    if claims.exp <= now {
        return Err(unauthorized(
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
        ));
    }
    if claims.iat > now + APP_JWT_CLOCK_SKEW_SECONDS {
        return Err(unauthorized(
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
        ));
    }
    Ok(index)
}

pub(super) fn installation_json(
    state: &state::State,
    installation: &Installation,
    web_url: &str,
    api_url: &str,
) -> Value {
    let app = state.app();
    json!({
        "id": installation.id,
        "account": account_json(&installation.account, web_url, api_url),
        "app_id": app.map(|a| a.id),
        "app_slug": app.map(|a| a.slug.clone()),
        "client_id": app.map(|a| a.client_id.clone()),
        "target_id": installation.account.id,
        "target_type": if installation.account.organization { "Organization" } else { "User" },
        "repository_selection": "selected",
        "access_tokens_url": format!("{api_url}/app/installations/{}/access_tokens", installation.id),
        "repositories_url": format!("{api_url}/installation/repositories"),
        "html_url": format!("{web_url}/settings/installations/{}", installation.id),
        "permissions": app.map(|a| a.permissions.clone()).unwrap_or_else(|| json!({})),
        "events": app.map(|a| a.events.clone()).unwrap_or_default(),
        "created_at": state::timestamp(installation.created_at),
        "updated_at": state::timestamp(installation.created_at),
        "suspended_at": null,
    })
}

async fn this_app(
    State(shared): State<Shared>,
    headers: HeaderMap,
) -> Result<Response, GitHubError> {
    let state = shared.lock();
    let app = &state.apps[authenticate_app(&state, &headers)?];
    let body = app_json(&state, app, &shared.web_url, &shared.api_url());
    Ok(axum::Json(body).into_response())
}

async fn app_installations(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(page): Query<Page>,
) -> Result<Response, GitHubError> {
    let state = shared.lock();
    authenticate_app(&state, &headers)?;
    let all: Vec<Value> = state
        .installations
        .iter()
        .map(|i| installation_json(&state, i, &shared.web_url, &shared.api_url()))
        .collect();
    let (items, link) = page.of(&all, &shared.api_url(), "/app/installations");
    Ok(with_link(StatusCode::OK, Value::Array(items), link))
}

async fn app_installation(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, GitHubError> {
    let state = shared.lock();
    authenticate_app(&state, &headers)?;
    let installation = state.installation(id).ok_or(NOT_FOUND)?;
    let body = installation_json(&state, installation, &shared.web_url, &shared.api_url());
    Ok(axum::Json(body).into_response())
}

/// `POST {api}/app/installations/{id}/access_tokens`, optionally narrowed to `repositories`.
async fn create_installation_token(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Response, GitHubError> {
    #[derive(Deserialize, Default)]
    struct Narrowing {
        repositories: Option<Vec<String>>,
        repository_ids: Option<Vec<i64>>,
    }
    let narrowing: Narrowing = if body.is_empty() {
        Narrowing::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(narrowing) => narrowing,
            Err(_) => {
                return Err(GitHubError(
                    StatusCode::BAD_REQUEST,
                    "Problems parsing JSON",
                ));
            }
        }
    };
    let mut state = shared.lock();
    let app_index = authenticate_app(&state, &headers)?;
    let installation = state.installation(id).ok_or(NOT_FOUND)?;
    let mut repositories = narrowing.repositories;
    if let Some(ids) = narrowing.repository_ids {
        let names = installation
            .repos
            .iter()
            .filter(|r| ids.contains(&r.id))
            .map(|r| r.name.clone());
        repositories = Some(
            repositories
                .unwrap_or_default()
                .into_iter()
                .chain(names)
                .collect(),
        );
    }
    let granted: Vec<&state::Repo> = installation
        .repos
        .iter()
        .filter(|r| {
            repositories
                .as_ref()
                .is_none_or(|names| names.contains(&r.name))
        })
        .collect();
    if let Some(names) = &repositories
        && granted.len() != names.len()
    {
        return Err(GitHubError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "There is at least one repository that does not exist or is not accessible to the parent installation.",
        ));
    }
    let (web_url, api_url) = (shared.web_url.clone(), shared.api_url());
    let granted_json: Vec<Value> = granted
        .iter()
        .map(|r| state::repo_json(installation, r, &web_url, &api_url))
        .collect();
    let token = InstallationToken {
        token: state::random_token("ghs_"),
        installation_id: id,
        expires_at: state::now() + INSTALLATION_TOKEN_LIFETIME_SECONDS,
        repositories,
    };
    let mut body = json!({
        "token": token.token,
        "expires_at": state::timestamp(token.expires_at),
        "permissions": state.apps[app_index].permissions,
        "repository_selection": "selected",
    });
    if token.repositories.is_some() {
        body["repositories"] = Value::Array(granted_json);
    }
    state.installation_tokens.push(token);
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}
