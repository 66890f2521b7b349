//! The cookies a browser session lives in, and the CSRF check on cookie-authenticated writes.
//!
//! Signing in and refreshing set three cookies: `helvetia_session` (the access token, HttpOnly,
//! path `/`), `helvetia_refresh` (the refresh token, HttpOnly, only sent to `/api/v1/auth`) and
//! `helvetia_csrf` (a random value scripts may read). All are `SameSite=Lax`, and `Secure` when
//! the public URL is `https` or the API is reached over HTTPS ([`cookie_secure`]). A
//! cookie-authenticated request that is not GET, HEAD or OPTIONS must echo `helvetia_csrf` in
//! `X-CSRF-Token` (double submit, compared in constant time): a page on another origin can make
//! a browser send the cookies, but cannot read them. Requests with `Authorization: Bearer` carry no ambient credential and need no
//! CSRF token.

use axum::http::header::{COOKIE, HeaderValue};
use axum::http::{HeaderMap, Method};
use subtle::ConstantTimeEq;

use crate::sessions::{SESSION_LIFETIME, random_token};
use crate::usecases::account::Issued;

pub const SESSION_COOKIE: &str = "helvetia_session";
pub const REFRESH_COOKIE: &str = "helvetia_refresh";
pub const CSRF_COOKIE: &str = "helvetia_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Where the refresh cookie is sent: refreshing and signing out only.
const REFRESH_PATH: &str = "/api/v1/auth";

/// The value of the cookie `name`, if the request carries it.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_owned())
        .filter(|value| !value.is_empty())
}

/// Whether cookies get `Secure`: when the public URL is `https`, or the request reached the
/// API over HTTPS as the proxy in front of it says (a forged header can only make the
/// answer's cookies stricter).
pub fn cookie_secure(public_url: Option<&url::Url>, headers: &HeaderMap) -> bool {
    public_url.is_some_and(|url| url.scheme() == "https")
        || headers
            .get("x-forwarded-proto")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// Whether a cookie-authenticated request may proceed: safe methods always; others when
/// `X-CSRF-Token` equals the `helvetia_csrf` cookie.
pub fn csrf_ok(method: &Method, headers: &HeaderMap) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    echoes_csrf(headers, headers.get(CSRF_HEADER).map(HeaderValue::as_bytes))
}

/// Whether `sent` (a header's or a form field's value) is the request's `helvetia_csrf` cookie.
pub fn echoes_csrf(headers: &HeaderMap, sent: Option<&[u8]>) -> bool {
    match (sent, read(headers, CSRF_COOKIE)) {
        (Some(sent), Some(cookie)) => bool::from(sent.ct_eq(cookie.as_bytes())),
        _ => false,
    }
}

fn cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
    http_only: bool,
    secure: bool,
) -> String {
    let mut cookie = format!("{name}={value}; Path={path}; Max-Age={max_age}; SameSite=Lax");
    if http_only {
        cookie.push_str("; HttpOnly");
    }
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// The `Set-Cookie` values of a session's tokens and a new CSRF token.
pub fn session_cookies(issued: &Issued, secure: bool) -> Vec<String> {
    let session = SESSION_LIFETIME.as_secs();
    vec![
        cookie(
            SESSION_COOKIE,
            &issued.access_token,
            "/",
            issued.expires_in,
            true,
            secure,
        ),
        cookie(
            REFRESH_COOKIE,
            &issued.refresh_token,
            REFRESH_PATH,
            session,
            true,
            secure,
        ),
        csrf_cookie(&random_token(), secure),
    ]
}

/// The `Set-Cookie` values of a dashboard session that an API token proves (someone signed in
/// with one): the token stands in for the access token, until it expires or is revoked.
pub fn token_cookies(token: &str, secure: bool) -> Vec<String> {
    let session = SESSION_LIFETIME.as_secs();
    vec![
        cookie(SESSION_COOKIE, token, "/", session, true, secure),
        csrf_cookie(&random_token(), secure),
    ]
}

/// The `Set-Cookie` value of a CSRF token, for a page whose form is sent before any session
/// exists (signing in).
pub fn csrf_cookie(value: &str, secure: bool) -> String {
    cookie(
        CSRF_COOKIE,
        value,
        "/",
        SESSION_LIFETIME.as_secs(),
        false,
        secure,
    )
}

/// The `Set-Cookie` values that remove the session's cookies.
pub fn cleared(secure: bool) -> Vec<String> {
    vec![
        cookie(SESSION_COOKIE, "", "/", 0, true, secure),
        cookie(REFRESH_COOKIE, "", REFRESH_PATH, 0, true, secure),
        cookie(CSRF_COOKIE, "", "/", 0, false, secure),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_cookie_among_several_headers() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; helvetia_csrf=xyz"));
        headers.append(COOKIE, HeaderValue::from_static("helvetia_session=abc"));
        assert_eq!(read(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(read(&headers, CSRF_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(read(&headers, REFRESH_COOKIE), None);
    }

    #[test]
    fn cookies_are_secure_under_an_https_public_url_or_a_proxy_saying_https() {
        let https = url::Url::parse("https://helvetia.example.com").unwrap();
        let http = url::Url::parse("http://helvetia.example.com").unwrap();
        let mut headers = HeaderMap::new();
        assert!(cookie_secure(Some(&https), &headers));
        assert!(!cookie_secure(Some(&http), &headers));
        assert!(!cookie_secure(None, &headers));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(cookie_secure(None, &headers));
    }

    #[test]
    fn writes_need_the_csrf_cookie_echoed() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("helvetia_csrf=xyz"));
        assert!(csrf_ok(&Method::GET, &headers));
        assert!(!csrf_ok(&Method::POST, &headers));
        headers.insert(CSRF_HEADER, HeaderValue::from_static("xy"));
        assert!(!csrf_ok(&Method::POST, &headers));
        headers.insert(CSRF_HEADER, HeaderValue::from_static("xyz"));
        assert!(csrf_ok(&Method::DELETE, &headers));
    }
}
