//! The client's address as the audit log records it (`--trusted-proxies`), and the rate limits
//! keyed on it. Requests carry the connection's address as a listener would give it
//! (`ConnectInfo`).

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use helvetia_core::edge::TrustedProxies;
use serde_json::{Value, json};

use crate::harness::Api;

/// `POST /api/v1/tokens` with `body`, from `peer`, with these `X-Forwarded-For` lines.
fn create_token(token: &str, peer: &str, forwarded_for: &[&str], body: Value) -> Request<Body> {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/tokens")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json");
    for line in forwarded_for {
        request = request.header("x-forwarded-for", *line);
    }
    let mut request = request.body(Body::from(body.to_string())).unwrap();
    let peer: SocketAddr = peer.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

/// The client address of the caller's newest audit entry, after it created a token from
/// `peer` with these `X-Forwarded-For` lines.
async fn recorded_client(api: &Api, token: &str, peer: &str, forwarded_for: &[&str]) -> Value {
    let body = json!({"name": "ci", "scopes": ["read"]});
    let (status, created) = api
        .send(create_token(token, peer, forwarded_for, body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, log) = api
        .call(Method::GET, "/api/v1/audit", Some(token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log[0]["action"], "token.create", "{log}");
    log[0]["client"].clone()
}

/// An API that trusts `proxies`, and a user's token.
async fn behind(proxies: &str) -> (Api, String) {
    let trusted = TrustedProxies::parse(proxies).unwrap();
    let api = Api::configured(|settings| settings.trusted_proxies = trusted).await;
    let (token, _) = api.user("ada@example.com").await;
    (api, token)
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_address_is_ignored() {
    // Trusted proxies exist, but the peer is not one of them.
    let (api, token) = behind("10.0.0.0/8").await;
    let client = recorded_client(&api, &token, "203.0.113.9:40000", &["198.51.100.1"]).await;
    assert_eq!(client, "203.0.113.9");
    // Without any trusted proxy, loopback's header is not believed either.
    let (api, token) = behind("").await;
    let client = recorded_client(&api, &token, "127.0.0.1:40000", &["198.51.100.1"]).await;
    assert_eq!(client, "127.0.0.1");
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client_through_every_trusted_hop() {
    let (api, token) = behind("10.0.0.0/8, 192.0.2.7").await;
    // One hop: the proxy appended its client.
    let client = recorded_client(&api, &token, "10.0.0.2:40000", &["198.51.100.1"]).await;
    assert_eq!(client, "198.51.100.1");
    // The client sent a forged entry; two trusted proxies appended theirs (in two header
    // lines): the right-most untrusted entry is the client.
    let forwarded = ["6.6.6.6, 198.51.100.2", "192.0.2.7"];
    let client = recorded_client(&api, &token, "10.0.0.2:40000", &forwarded).await;
    assert_eq!(client, "198.51.100.2");
    // An IPv4 peer seen by a dual-stack listener.
    let client = recorded_client(&api, &token, "[::ffff:10.0.0.2]:40000", &["198.51.100.3"]).await;
    assert_eq!(client, "198.51.100.3");
}

#[tokio::test]
async fn token_creation_is_limited_per_client_address_with_retry_after() {
    let api = Api::new().await;
    let (token, _) = api.user("ada@example.com").await;
    // Invalid bodies count too: the limit is checked before the operation.
    let invalid = || json!({"name": "", "scopes": []});
    let burst = helvetia_server::limits::TOKENS_PER_ADDRESS.burst;
    for _ in 0..burst {
        let (status, body) = api
            .send(create_token(&token, "203.0.113.9:1", &[], invalid()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let response = tower::ServiceExt::oneshot(
        api.router.clone(),
        create_token(&token, "203.0.113.9:2", &[], invalid()),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
    // Without a token the answer stays 401, as the document says.
    let mut anonymous = create_token("", "203.0.113.9:2", &[], invalid());
    anonymous.headers_mut().remove(header::AUTHORIZATION);
    let (status, body) = api.send(anonymous).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // Another address is not limited, nor other routes from the same one.
    let (status, _) = api
        .send(create_token(&token, "203.0.113.10:1", &[], invalid()))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut listing = Request::builder()
        .uri("/api/v1/tokens")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let peer: SocketAddr = "203.0.113.9:3".parse().unwrap();
    listing.extensions_mut().insert(ConnectInfo(peer));
    let (status, _) = api.send(listing).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_document_lists_429_with_retry_after_on_limited_operations_only() {
    let document = serde_json::to_value(helvetia_server::api::openapi()).unwrap();
    let create = &document["paths"]["/api/v1/tokens"]["post"]["responses"];
    assert_eq!(
        create["429"]["$ref"], "#/components/responses/TooManyRequests",
        "{create}"
    );
    let poll = &document["paths"]["/api/v1/auth/device/token"]["post"]["responses"];
    assert!(poll.get("429").is_some(), "{poll}");
    let list = &document["paths"]["/api/v1/tokens"]["get"]["responses"];
    assert!(list.get("429").is_none(), "{list}");
    let response = &document["components"]["responses"]["TooManyRequests"];
    assert_eq!(
        response["headers"]["Retry-After"]["schema"]["type"], "integer",
        "{response}"
    );
}
