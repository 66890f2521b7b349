//! `/signup` and `/reset`: the pages a single-use link opens. Each is one static form whose
//! few lines of script read the link's token from the address and post it, with what the
//! person typed, to `/api/v1/auth/signup` or `/api/v1/auth/password-reset`. Nothing from the
//! request is written into the page, so there is nothing to inject; the page is not cached
//! and sends no `Referer`, so the token goes nowhere else. The dashboard proper comes later.

use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup_page))
        .routes(routes!(reset_page))
}

/// Only this page's own inline script and style, talking only to this server.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; \
     base-uri 'none'";

/// The page around a form: `{title}`, `{fields}` and the API `{endpoint}` are filled in at
/// compile time by `page!`.
macro_rules! page {
    ($title:literal, $fields:literal, $endpoint:literal, $done:literal) => {
        concat!(
            r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Helvetia — "#,
            $title,
            r#"</title>
<style>body{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem}
label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.4rem;box-sizing:border-box}
button{margin-top:1rem;padding:.5rem 1rem}#message{margin-top:1rem}</style></head>
<body><h1>"#,
            $title,
            r#"</h1>
<form id="form">"#,
            $fields,
            r#"
<label for="password">Password (at least 12 characters)</label>
<input id="password" name="password" type="password" autocomplete="new-password" minlength="12" required>
<button type="submit">Continue</button></form>
<p id="message" role="status"></p>
<script>
const form = document.getElementById("form");
const message = document.getElementById("message");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = Object.fromEntries(new FormData(form));
  for (const key of Object.keys(body)) { if (body[key] === "") delete body[key]; }
  body.token = new URLSearchParams(location.search).get("token");
  const answer = await fetch(""#,
            $endpoint,
            r#"", {method: "POST", headers: {"Content-Type": "application/json"},
                               body: JSON.stringify(body)});
  if (answer.ok) { form.remove(); message.textContent = ""#,
            $done,
            r#""; return; }
  const error = (await answer.json().catch(() => ({}))).error || {};
  const fields = Object.entries(error.fields || {}).map(([f, m]) => f + ": " + m).join("; ");
  message.textContent = (error.message || "The server refused.") + (fields ? " (" + fields + ")" : "");
});
</script></body></html>
"#
        )
    };
}

const SIGNUP: &str = page!(
    "Create your account",
    r#"
<label for="email">E-mail address (leave empty if your invitation names one)</label>
<input id="email" name="email" type="email" autocomplete="email">
<label for="name">Name</label>
<input id="name" name="name" autocomplete="name" maxlength="100" required>"#,
    "/api/v1/auth/signup",
    "Your account is ready. Sign in with `helvetia login`."
);

const RESET: &str = page!(
    "Set your password",
    "",
    "/api/v1/auth/password-reset",
    "Your password is set. Sign in with `helvetia login`."
);

fn html(page: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        page,
    )
}

/// The page a sign-up link or an invitation opens (`/signup?token=…`). Public.
#[utoipa::path(
    get, path = "/signup", tag = "users",
    responses((status = OK, description = "The sign-up form", content_type = "text/html"))
)]
async fn signup_page() -> impl IntoResponse {
    html(SIGNUP)
}

/// The page a password reset link opens (`/reset?token=…`). Public.
#[utoipa::path(
    get, path = "/reset", tag = "users",
    responses((status = OK, description = "The form that sets a password", content_type = "text/html"))
)]
async fn reset_page() -> impl IntoResponse {
    html(RESET)
}
