//! Where a request came from: the address the audit log records and rate limits key on.
//!
//! The peer address of the connection, as the listener saw it — unless the peer is a trusted
//! proxy (`--trusted-proxies`), whose `X-Forwarded-For` names the client
//! ([`TrustedProxies::client`] has the rule). Decided in [`resolve`] and nowhere else.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use helvetia_core::edge::TrustedProxies;

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
pub async fn resolve(
    State(trusted): State<Arc<TrustedProxies>>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| {
            let forwarded = request
                .headers()
                .get_all(X_FORWARDED_FOR)
                .iter()
                // A value that is not text cannot be read as addresses: it ends the walk.
                .map(|value| value.to_str().unwrap_or("?"));
            trusted.client(peer.ip(), forwarded)
        });
    request.extensions_mut().insert(ClientAddr(client));
    next.run(request).await
}

const X_FORWARDED_FOR: &str = "x-forwarded-for";

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
