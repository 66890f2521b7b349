//! Where a request came from: the address the audit log records and rate limits key on.
//!
//! The peer address of the connection, as the listener saw it. (Requests relayed by a proxy
//! carry their client's address in `X-Forwarded-For`; which proxies are believed is the
//! `--trusted-proxies` setting's business, decided in [`resolve`] and nowhere else.)

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

/// The client's address, when known (a request handed to the router in a test has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    /// As the audit log writes it.
    pub fn label(self) -> Option<String> {
        self.0.map(|addr| addr.to_string())
    }
}

/// The layer: works out the client's address once, for every route, and leaves it in the
/// request's extensions.
pub async fn resolve(mut request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    request.extensions_mut().insert(ClientAddr(peer));
    next.run(request).await
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientAddr>()
            .copied()
            .unwrap_or_default())
    }
}
