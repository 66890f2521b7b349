//! A submitted form, accepted only with the CSRF token: the `csrf` field (plain forms) or the
//! `X-CSRF-Token` header (htmx), equal to the `helvetia_csrf` cookie — which a page on another
//! origin can make a browser send but cannot read.

use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::page::PageError;
use crate::api::cookies;
use crate::api::error::ApiError;

/// The largest form a page sends (a pasted `.env` file is the largest).
const MAX_FORM_BYTES: usize = 256 * 1024;

/// A form `T` whose CSRF token was checked.
pub struct Checked<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Checked<T> {
    type Rejection = Response;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| PageError(ApiError::PayloadTooLarge(MAX_FORM_BYTES)).into_response())?;
        let sent: Token = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
        if !token_matches(&parts.headers, sent.csrf.as_deref()) {
            return Err(PageError(ApiError::Forbidden(
                "this form is out of date or came from another site: reload the page and try again"
                    .into(),
            ))
            .into_response());
        }
        serde_urlencoded::from_bytes(&bytes)
            .map(Checked)
            .map_err(|error| {
                PageError(ApiError::BadRequest(format!("the form: {error}"))).into_response()
            })
    }
}

/// A form whose only field is its CSRF token (a button that does one thing).
#[derive(serde::Deserialize)]
pub struct NoFields {}

#[derive(Default, serde::Deserialize)]
struct Token {
    csrf: Option<String>,
}

fn token_matches(headers: &HeaderMap, field: Option<&str>) -> bool {
    let sent = field.map(str::as_bytes).or_else(|| {
        headers
            .get(cookies::CSRF_HEADER)
            .map(|value| value.as_bytes())
    });
    cookies::echoes_csrf(headers, sent)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use axum::http::header::COOKIE;

    use super::*;

    #[test]
    fn the_token_must_equal_the_cookie() {
        let mut headers = HeaderMap::new();
        assert!(!token_matches(&headers, Some("abc")), "no cookie");
        headers.insert(COOKIE, HeaderValue::from_static("helvetia_csrf=abc"));
        assert!(token_matches(&headers, Some("abc")));
        assert!(!token_matches(&headers, Some("abd")));
        assert!(!token_matches(&headers, None), "neither field nor header");
        headers.insert(cookies::CSRF_HEADER, HeaderValue::from_static("abc"));
        assert!(token_matches(&headers, None), "htmx's header");
    }
}
