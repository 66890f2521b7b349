//! The server process: restarts, shutdown, tokens across restarts.

use reqwest::Method;
use serde_json::json;

use helvetia_test_support::{TestServer, unique};

#[tokio::test(flavor = "multi_thread")]
async fn restart_keeps_data_and_tokens_and_revocation_is_immediate() {
    let mut server = TestServer::start(crate::BINARY).await;
    let project = unique("keep");
    let (status, _) = server
        .api(
            Method::POST,
            "/api/v1/projects",
            Some(json!({"name": project})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, created) = server
        .api(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "ci", "scopes": ["read"]})),
        )
        .await;
    assert_eq!(status, 201);
    let ci_token = created["token"].as_str().unwrap().to_owned();
    let token_file = std::fs::metadata(server.data_dir().join("admin-token")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&token_file.permissions()) & 0o777,
        0o600
    );

    // A graceful stop, then a start on the same data dir: no new admin token is minted.
    let admin_before = server.token.clone();
    assert!(server.terminate().success(), "{}", server.log());
    server.launch().await;
    assert_eq!(
        std::fs::read_to_string(server.data_dir().join("admin-token"))
            .unwrap()
            .trim(),
        admin_before
    );
    assert_eq!(server.log().matches("Admin token (shown once").count(), 1);
    let projects = server.get("/api/v1/projects").await;
    assert!(
        projects
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == project.as_str())
    );

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let with_ci = |client: &reqwest::Client| {
        client
            .get(format!("{}/api/v1/projects", server.url()))
            .bearer_auth(&ci_token)
            .send()
    };
    assert_eq!(with_ci(&client).await.unwrap().status(), 200);
    let id = created["id"].as_i64().unwrap();
    let (status, _) = server
        .api(Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(with_ci(&client).await.unwrap().status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_server_on_the_same_data_dir_is_refused() {
    let server = TestServer::start(crate::BINARY).await;
    let output = server.another_server_command().output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("another Helvetia server is already using"),
        "{stderr}"
    );
}
