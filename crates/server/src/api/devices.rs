//! `/api/v1/auth/device…` and `/device`: `helvetia login` through the browser (RFC 8628).
//!
//! Starting a login and polling for its token are public (the CLI has no credential yet);
//! the token endpoint answers errors in OAuth's shape (RFC 6749 §5.2: `{"error": "…"}` with
//! 400), not the API's usual body, so generic device-flow clients understand it. Approving
//! takes a signed-in user. `/device` is the page the CLI sends the user to: plain HTML, one
//! form and a few lines of inline script (no build) that call the approval API as the
//! browser's session — documented in the OpenAPI document (`text/html`) like every route.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use helvetia_api_types::{
    DEVICE_CODE_GRANT, DecideDeviceLogin, DeviceLogin, DeviceLoginDecided, DeviceToken,
    DeviceTokenError, PollDeviceLogin, StartDeviceLogin,
};
use jiff::Timestamp;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::client::ClientAddr;
use super::error::{ApiError, ApiResult};
use super::json::{ApiJson, ApiQuery};
use crate::usecases::devices::{self, Polled};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_device_login))
        .routes(routes!(poll_device_login))
        .routes(routes!(decide_device_login))
        .routes(routes!(device_page))
}

/// Where people approve a login: the page below at the public URL when one is configured, else
/// on the address the CLI reached the server at.
fn verification_uri(public: Option<&url::Url>, headers: &HeaderMap) -> String {
    if let Some(public) = public {
        return format!("{}/device", public.as_str().trim_end_matches('/'));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .filter(|host| {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("127.0.0.1");
    format!("http://{host}/device")
}

/// Start a device login (RFC 8628 §3.1): show the user code and the verification URI to the
/// user, then poll for the token. Public.
#[utoipa::path(
    post, path = "/api/v1/auth/device", tag = "auth",
    request_body = StartDeviceLogin,
    responses((status = OK, body = DeviceLogin))
)]
async fn start_device_login(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<StartDeviceLogin>,
) -> ApiResult<Json<DeviceLogin>> {
    let started = devices::start(&state.app, &body.client_name, Timestamp::now()).await?;
    let public = state.app.platform.settings.public_url();
    let verification_uri = verification_uri(public, &headers);
    Ok(Json(DeviceLogin {
        verification_uri_complete: format!("{verification_uri}?code={}", started.user_code),
        verification_uri,
        device_code: started.device_code,
        user_code: started.user_code,
        expires_in: devices::LIFETIME.as_secs(),
        interval: devices::INTERVAL_SECS,
    }))
}

/// Poll for a device login's token (RFC 8628 §3.4), as JSON or as the RFC's form. The token is
/// handed out once. Errors are OAuth's (RFC 6749 §5.2), not the API's usual body: 400 with
/// `error` = `authorization_pending`, `slow_down`, `access_denied`, `expired_token`,
/// `invalid_grant`, `invalid_request` or `unsupported_grant_type`. Public.
#[utoipa::path(
    post, path = "/api/v1/auth/device/token", tag = "auth",
    request_body(content(
        (PollDeviceLogin = "application/json"),
        (PollDeviceLogin = "application/x-www-form-urlencoded")
    )),
    responses(
        (status = OK, body = DeviceToken),
        (status = BAD_REQUEST, body = DeviceTokenError, description = "No token (yet), in OAuth's error shape (RFC 6749 §5.2), not the API's usual error body"),
    )
)]
async fn poll_device_login(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = match read_poll(&headers, &body) {
        Ok(poll) => {
            devices::poll(
                &state.app,
                &poll.device_code,
                Timestamp::now(),
                client.label(),
            )
            .await
        }
        Err(refused) => return refused.into_response(),
    };
    let (error, description): (_, String) = match answer {
        Ok(Polled::Token(access_token)) => {
            let token = DeviceToken {
                access_token,
                token_type: "Bearer".into(),
            };
            return no_store((StatusCode::OK, Json(token)).into_response());
        }
        Ok(Polled::Pending) => (
            "authorization_pending",
            "the user has not decided yet".into(),
        ),
        Ok(Polled::SlowDown { interval_secs }) => (
            "slow_down",
            format!("polled too often: poll every {interval_secs} s from now on"),
        ),
        Ok(Polled::Denied) => ("access_denied", "the user denied this login".into()),
        Ok(Polled::Expired) => (
            "expired_token",
            "this login expired: start a new one".into(),
        ),
        Ok(Polled::Invalid) => (
            "invalid_grant",
            "unknown or already redeemed device code".into(),
        ),
        Err(error) => return ApiError::from(error).into_response(),
    };
    OAuthError(error, description).into_response()
}

/// An error in OAuth's shape.
struct OAuthError(&'static str, String);

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = DeviceTokenError {
            error: self.0.into(),
            error_description: self.1,
        };
        no_store((StatusCode::BAD_REQUEST, Json(body)).into_response())
    }
}

/// RFC 6749 §5.1: token answers are not to be cached.
fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn read_poll(headers: &HeaderMap, body: &[u8]) -> Result<PollDeviceLogin, OAuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let poll: PollDeviceLogin = if content_type.starts_with("application/x-www-form-urlencoded") {
        serde_urlencoded::from_bytes(body)
            .map_err(|e| OAuthError("invalid_request", format!("the form does not parse: {e}")))?
    } else if content_type.starts_with("application/json") {
        serde_json::from_slice(body)
            .map_err(|e| OAuthError("invalid_request", format!("the JSON does not parse: {e}")))?
    } else {
        return Err(OAuthError(
            "invalid_request",
            "send the body as JSON or as application/x-www-form-urlencoded".into(),
        ));
    };
    match poll.grant_type.as_deref() {
        None | Some(DEVICE_CODE_GRANT) => Ok(poll),
        Some(_) => Err(OAuthError(
            "unsupported_grant_type",
            format!("only {DEVICE_CODE_GRANT} is served here"),
        )),
    }
}

/// Approve or deny a device login by the code its CLI shows. Approving gives that CLI a
/// personal API token of yours (named `CLI: <client name>`, every scope, every team of yours),
/// so it takes a credential with as much: a session or an admin token not limited to one team.
/// A server-administration token belongs to no user and cannot approve (403).
#[utoipa::path(
    post, path = "/api/v1/auth/device/approve", tag = "auth",
    request_body = DecideDeviceLogin,
    security(("token" = ["admin"])),
    responses(
        (status = OK, body = DeviceLoginDecided),
        (status = NOT_FOUND, body = super::error::ErrorBody, description = "No pending login has this code (it expired, or never existed)"),
        (status = CONFLICT, body = super::error::ErrorBody, description = "The login was already approved or denied"),
    )
)]
async fn decide_device_login(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<DecideDeviceLogin>,
) -> ApiResult<Json<DeviceLoginDecided>> {
    let client_name = devices::decide(
        &state.app,
        &caller,
        &body.user_code,
        body.approve,
        Timestamp::now(),
    )
    .await?;
    Ok(Json(DeviceLoginDecided {
        client_name,
        approved: body.approve,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DevicePage {
    /// The user code, filled in from `verification_uri_complete`.
    code: Option<String>,
}

/// What the approval page runs when a button is pressed: the approval API, as the signed-in
/// browser (its session cookie, and the CSRF cookie's value echoed in `X-CSRF-Token` as cookie
/// authentication requires for a write). Results are shown with `textContent`, never as HTML.
const PAGE_SCRIPT: &str = r#"
const form = document.getElementById('decide');
const result = document.getElementById('result');
form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const csrf = (document.cookie.match(/(?:^|; )helvetia_csrf=([^;]*)/) || [])[1] || '';
  const approve = event.submitter && event.submitter.value === 'true';
  result.textContent = 'Sending…';
  try {
    const response = await fetch('/api/v1/auth/device/approve', {
      method: 'POST',
      credentials: 'same-origin',
      headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
      body: JSON.stringify({user_code: form.elements.user_code.value.trim(), approve}),
    });
    const body = await response.json().catch(() => ({}));
    if (response.ok) {
      result.textContent = body.approved
        ? 'Approved: ' + body.client_name + ' is logged in. You can close this page.'
        : 'Denied: ' + body.client_name + ' gets no token.';
    } else if (response.status === 401) {
      result.textContent = 'You are not signed in to Helvetia in this browser: sign in, then try again.';
    } else {
      result.textContent = (body.error && body.error.message) || ('Refused (' + response.status + ').');
    }
  } catch (error) {
    result.textContent = 'The server could not be reached: ' + error;
  }
});
"#;

/// The page where a signed-in user approves a device login: the code, two buttons, and the
/// few lines of script that send the decision to `/api/v1/auth/device/approve`. It looks
/// nothing up (so it tells no one which codes are pending). It may not be framed (a framed
/// "Approve" button could be clicked unknowingly), and runs no script but its own. Public.
#[utoipa::path(
    get, path = "/device", tag = "auth",
    params(DevicePage),
    responses((status = OK, content_type = "text/html", body = String))
)]
async fn device_page(ApiQuery(page): ApiQuery<DevicePage>) -> Response {
    let code = page
        .code
        .as_deref()
        .and_then(devices::normal_user_code)
        .map(|code| format!("{}-{}", &code[..4], &code[4..]))
        .unwrap_or_default();
    let nonce = format!("{:032x}", rand::random::<u128>());
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>Helvetia — log in the CLI</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\">\
         <h1>Log in the Helvetia CLI</h1>\
         <p>Approve only if you just ran <code>helvetia login</code> yourself and it shows this \
         code. Approving gives that CLI a token that can do everything you can.</p>\
         <form id=\"decide\">\
         <label>Code <input name=\"user_code\" value=\"{}\" required autocomplete=\"off\" \
         pattern=\"[A-Za-z]{{4}}-?[A-Za-z]{{4}}\"></label> \
         <button value=\"true\">Approve</button> \
         <button value=\"false\">Deny</button></form>\
         <p id=\"result\" role=\"status\"></p>\
         <script nonce=\"{nonce}\">{PAGE_SCRIPT}</script></body></html>",
        escape(&code)
    );
    let policy = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; connect-src 'self'; \
         style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut response = Html(html).into_response();
    let headers = response.headers_mut();
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Text made safe inside HTML text and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn a_hostile_host_does_not_reach_the_uri() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("evil\"><script>"));
        assert_eq!(verification_uri(None, &headers), "http://127.0.0.1/device");
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7300"));
        assert_eq!(
            verification_uri(None, &headers),
            "http://127.0.0.1:7300/device"
        );
    }
}
