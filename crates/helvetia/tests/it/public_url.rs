//! `--public-url`: Helvetia's own API served by the edge router at the public host, with the
//! client's address taken from the managed Traefik's `X-Forwarded-For` and nobody else's.

use reqwest::Method;
use serde_json::{Value, json};

use helvetia_test_support::{FixtureRepo, TestServer, answer, http_client, unique};

use crate::deploy::Cleanup;

const HOST: &str = "helvetia.localhost";

/// A request to the edge router's entry point for the public host, with the admin token.
async fn through_edge(
    server: &TestServer,
    method: Method,
    path: &str,
    forwarded_for: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http_client()
        .request(
            method,
            format!("http://127.0.0.1:{}{path}", server.http_port),
        )
        .header("Host", HOST)
        .bearer_auth(&server.token);
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("X-Forwarded-For", forwarded_for);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request).await
}

async fn assert_served(server: &TestServer) {
    let (status, health) = through_edge(server, Method::GET, "/healthz", None, None).await;
    assert_eq!(status, 200, "{health}\n{}", server.log());
    let (status, me) = through_edge(server, Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(status, 200, "{me}");
    // Without a token the public host is no way around authentication.
    let anonymous = http_client()
        .get(format!("http://127.0.0.1:{}/api/v1/me", server.http_port))
        .header("Host", HOST)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_is_served_at_the_public_host_and_stays_routed_across_deploys_and_restarts() {
    let public_url = format!("http://{HOST}");
    let mut server = TestServer::start_with(crate::BINARY, &["--public-url", &public_url]).await;
    assert_served(&server).await;

    // A client's forged X-Forwarded-For reaches the edge router, which replaces it with the
    // address it saw (loopback here); Helvetia believes the router, so the audit log records
    // the real address — not the forged one.
    let project = unique("edge");
    let (status, created) = through_edge(
        &server,
        Method::POST,
        "/api/v1/projects",
        Some("203.0.113.9"),
        Some(json!({"name": project})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let log = server.get("/api/v1/audit").await;
    let entry = log
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["target"] == project.as_str())
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(entry["client"], "127.0.0.1", "{entry}");

    // A deploy's switch publishes a table with the app's route and keeps the API's.
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let deployment = server.deploy(&project, "web").await;
    assert_eq!(deployment["status"], "live", "{deployment}");
    let app = server
        .through_edge(&format!("web.{project}.localhost"), "/")
        .await;
    assert_eq!(app.map(|(status, _)| status), Some(200));
    assert_served(&server).await;

    // A restart adopts the running Traefik and publishes the table again; a start with
    // Traefik gone starts a new one from the table: the route is in both.
    assert!(server.terminate().success(), "{}", server.log());
    server.launch().await;
    assert_served(&server).await;
    assert!(server.terminate().success(), "{}", server.log());
    server.stop_traefik();
    server.launch().await;
    assert_served(&server).await;
}
