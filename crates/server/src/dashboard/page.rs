//! What every page shares: who is looking ([`Viewer`]), the frame around the content
//! ([`Chrome`]), rendering ([`render`]) and how a failure is shown ([`PageError`]).

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::header::REFERER;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use helvetia_core::auth::{Caller, Principal};
use jiff::Timestamp;

use super::assets::{self, Urls};
use crate::api::AppState;
use crate::api::auth::token_caller;
use crate::api::auth_routes::{see_other, sign_in_page};
use crate::api::client::ClientAddr;
use crate::api::cookies;
use crate::api::error::ApiError;
use crate::usecases::UseCaseError;

/// The signed-in person looking at a page, with the CSRF token their forms carry.
pub struct Viewer {
    pub caller: Caller,
    pub csrf: String,
}

impl Viewer {
    /// The frame of a page titled `title`.
    pub fn chrome(&self, title: impl Into<String>) -> Chrome {
        let who = match &self.caller.principal {
            Principal::User { email, .. } => email.clone(),
            Principal::System => "server administrator".to_owned(),
            Principal::CiJob { claims, .. } => claims.clone(),
        };
        Chrome {
            title: title.into(),
            who,
            csrf: self.csrf.clone(),
            assets: assets::urls(),
        }
    }
}

/// Without a session the browser goes to the sign-in page; with an expired one, to renew it
/// (the refresh cookie is only sent under `/api/v1/auth`) and back.
impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let back = return_path(parts);
        let Some(token) = cookies::read(&parts.headers, cookies::SESSION_COOKIE) else {
            return Err(see_other(&sign_in_page(&back)));
        };
        let mut caller = match token_caller(state, &token, Timestamp::now()).await {
            Ok(Some(caller)) => caller,
            Ok(None) => {
                let next: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
                return Err(see_other(&format!("/api/v1/auth/renew?next={next}")));
            }
            Err(error) => return Err(PageError::from(error).into_response()),
        };
        caller.client = parts
            .extensions
            .get::<ClientAddr>()
            .copied()
            .unwrap_or_default()
            .label();
        let csrf = cookies::read(&parts.headers, cookies::CSRF_COOKIE).unwrap_or_default();
        Ok(Viewer { caller, csrf })
    }
}

/// Where to come back to after signing in: the page asked for, or for a form's submission the
/// page it was sent from (its data is lost either way; the page is not).
fn return_path(parts: &Parts) -> String {
    if parts.method == Method::GET {
        return parts
            .uri
            .path_and_query()
            .map_or("/", |path| path.as_str())
            .to_owned();
    }
    parts
        .headers
        .get(REFERER)
        .and_then(|referer| referer.to_str().ok())
        .and_then(|referer| url::Url::parse(referer).ok())
        .map_or_else(|| "/".to_owned(), |url| url.path().to_owned())
}

/// The frame around every signed-in page: title, who is signed in, the CSRF token of its
/// forms, the assets' addresses.
pub struct Chrome {
    pub title: String,
    pub who: String,
    pub csrf: String,
    pub assets: &'static Urls,
}

/// A page as HTML, or the error page if the template cannot render.
pub fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            PageError(ApiError::Internal(format!("rendering a page: {error}"))).into_response()
        }
    }
}

/// A failure shown as a page: the API's status and message (one mapping from error to
/// status, `api::error`), in the dashboard's frame.
pub struct PageError(pub ApiError);

impl From<UseCaseError> for PageError {
    fn from(error: UseCaseError) -> Self {
        PageError(error.into())
    }
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        PageError(error)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: StatusCode,
    message: String,
    assets: &'a Urls,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.0.log();
        let status = self.0.status();
        let page = ErrorPage {
            status,
            message: self.0.to_string(),
            assets: assets::urls(),
        };
        let html = page
            .render()
            .unwrap_or_else(|_| format!("{status}: {}", self.0));
        (status, Html(html)).into_response()
    }
}

pub type PageResult<T = Response> = Result<T, PageError>;
