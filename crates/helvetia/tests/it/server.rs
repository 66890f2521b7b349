//! The server process: restarts, shutdown, tokens across restarts.

use reqwest::Method;
use serde_json::json;

use helvetia_test_support::{TestServer, unique};

/// The tokens of the sign-up links a server printed, in order.
fn signup_links(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| line.split("/signup?token=").nth(1))
        .map(|token| token.trim().to_owned())
        .collect()
}

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
    // While nobody has signed up, each start prints a new sign-up link for the first owner;
    // the one printed before stops working.
    let links = signup_links(&server.log());
    assert_eq!(links.len(), 2, "{}", server.log());
    let sign_up = |token: &str| {
        json!({"token": token, "email": "owner@example.com", "name": "Owner",
               "password": "correct horse battery"})
    };
    let (status, _) = server
        .api_anonymous(Method::POST, "/api/v1/auth/signup", sign_up(&links[0]))
        .await;
    assert_eq!(status, 404, "the first start's link was replaced");
    let (status, owner) = server
        .api_anonymous(Method::POST, "/api/v1/auth/signup", sign_up(&links[1]))
        .await;
    assert_eq!(status, 201, "{owner}");
    assert_eq!(owner["instance_admin"], true);
    // The owner inherited the bootstrap token and everything made with it.
    let me = server.get("/api/v1/me").await;
    assert_eq!(me["user"]["email"], "owner@example.com", "{me}");
    // The owner shares with a team of their own through the CLI.
    server.cli_ok(&["teams", "create", "crew"]);
    let link = server.cli_ok(&["teams", "invite", "crew", "--role", "viewer"]);
    assert!(link.contains("/signup?token=hlvl_"), "{link}");
    let members = server.cli_ok(&["teams", "members", "crew"]);
    assert!(
        members.contains("owner@example.com") && members.contains("owner"),
        "{members}"
    );
    let teams = server.cli_ok(&["teams", "list"]);
    assert!(teams.contains("crew") && teams.contains("owner"), "{teams}");
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

#[tokio::test(flavor = "multi_thread")]
async fn after_the_last_admin_token_is_revoked_the_server_command_lets_the_operator_back_in() {
    let mut server = TestServer::start(crate::BINARY).await;
    let tokens = server.get("/api/v1/tokens").await;
    let tokens = tokens.as_array().unwrap();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let own = tokens[0]["id"].as_i64().unwrap();
    // The CLI refuses to revoke the caller's own last admin token without `--force`.
    let refused = server.cli(&["tokens", "revoke", &own.to_string()]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("last admin token"), "{stderr}");
    server.cli_ok(&["tokens", "revoke", &own.to_string(), "--force"]);
    let (status, _) = server.api(Method::GET, "/api/v1/projects", None).await;
    assert_eq!(status, 401);

    // Beside the running server, on its data dir.
    let issued = server.server_action(&server.data_dir(), "admin-token");
    let stderr = String::from_utf8_lossy(&issued.stderr);
    assert!(issued.status.success(), "{stderr}");
    let token = String::from_utf8(issued.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("hlv_"), "{token}");
    assert!(!stderr.contains(&token), "the token goes to stdout only");

    server.token = token;
    let (status, _) = server.api(Method::GET, "/api/v1/projects", None).await;
    assert_eq!(status, 200);
    let audit = server.get("/api/v1/audit?instance=true").await;
    let issued_entry = &audit.as_array().unwrap()[0];
    assert_eq!(issued_entry["action"], "token.create", "{audit}");
    assert_eq!(
        issued_entry["actor"], "system (helvetia server admin-token)",
        "{audit}"
    );

    // The owner, created with that token, is locked out: a reset link, made on the server.
    let created = server.cli_ok(&["users", "create", "owner@example.com", "--owner"]);
    assert!(created.contains("/reset?token=hlvl_"), "{created}");
    let reset = std::process::Command::new(crate::BINARY)
        .args(["server", "--data-dir"])
        .arg(server.data_dir())
        .args(["admin-token", "--reset-link", "owner@example.com"])
        .output()
        .unwrap();
    assert!(
        reset.status.success(),
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    let link = String::from_utf8(reset.stdout).unwrap();
    let token = link.trim().split("/reset?token=").nth(1).unwrap();
    let (status, reply) = server
        .api_anonymous(
            Method::POST,
            "/api/v1/auth/password-reset",
            json!({"token": token, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(status, 204, "{reply}");

    // A mistyped data dir gets no fresh database (and no token for nothing).
    let missing = server.dir.path().join("no-such-data-dir");
    let refused = server.server_action(&missing, "admin-token");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("there is no Helvetia database"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(refused.stdout.is_empty());
    assert!(!missing.exists());
}
