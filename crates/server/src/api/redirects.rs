//! Alias domains: the edge router relays their requests here, and each is answered with a
//! permanent redirect (308: the method and body are kept) to the service's primary domain,
//! same scheme, port, path and query. Traefik's own redirect answers a `GET` with 301.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::platform::Platform;

/// Answers a request for an alias domain with its redirect; passes every other one on.
pub async fn redirect_aliases(
    State(platform): State<Arc<Platform>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(host) = request
        .headers()
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
    else {
        return next.run(request).await;
    };
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => (name, Some(port)),
        _ => (host, None),
    };
    let Some(target) = platform.redirect_for(&name.to_ascii_lowercase()) else {
        return next.run(request).await;
    };
    // The edge router says which scheme the client used.
    let scheme = match request
        .headers()
        .get("x-forwarded-proto")
        .and_then(|proto| proto.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str());
    let location = match port {
        Some(port) => format!("{scheme}://{target}:{port}{path}"),
        None => format!("{scheme}://{target}{path}"),
    };
    match HeaderValue::from_str(&location) {
        Ok(location) => (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}
