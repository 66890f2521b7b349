//! `helvetia login` through the browser (RFC 8628's device flow), `whoami` and `logout`,
//! against a real server, with the test in the browser's place.

use std::process::Stdio;
use std::time::Duration;

use helvetia_core::account::Email;
use helvetia_store::audit::AuditBy;
use helvetia_store::users::NewUser;
use helvetia_store::{Location, Store};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use helvetia_test_support::TestServer;

#[tokio::test(flavor = "multi_thread")]
async fn login_through_the_browser_then_whoami_and_logout() {
    let server = TestServer::start(crate::BINARY).await;
    // The first user inherits the server's first admin token: the test approves with it, as
    // the user's signed-in browser would.
    let store = Store::open(&Location::SqliteFile(server.data_dir().join("helvetia.db")))
        .await
        .unwrap();
    store
        .create_user(
            AuditBy::default(),
            &NewUser {
                email: Email::parse("ada@example.com").unwrap(),
                name: "Ada".into(),
                password_hash: None,
                instance_admin: false,
            },
        )
        .await
        .unwrap();
    store.close().await;

    let config = server.dir.path().join("device-login");
    let cli = |args: &[&str]| {
        let mut command = tokio::process::Command::new(crate::BINARY);
        command
            .args(args)
            .env("HELVETIA_CONFIG_DIR", &config)
            .env_remove("HELVETIA_SERVER")
            .env_remove("HELVETIA_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };
    let mut login = cli(&["login", "--server", &server.url(), "--name", "e2e"])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(login.stderr.take().unwrap()).lines();
    let mut shown = String::new();
    let code = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            shown.push_str(&line);
            shown.push('\n');
            if let Some(code) = line.strip_prefix("and approve the code ") {
                return code.to_owned();
            }
        }
        panic!("login ended without showing a code:\n{shown}");
    })
    .await
    .expect("login shows a code");
    assert!(
        shown.contains(&format!("open {}/device", server.url())),
        "{shown}"
    );

    let (status, decided) = server
        .api(
            reqwest::Method::POST,
            "/api/v1/auth/device/approve",
            Some(json!({"user_code": code, "approve": true})),
        )
        .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["client_name"], "e2e");

    // The CLI collects the token at its next poll, five seconds after the first.
    let output = tokio::time::timeout(Duration::from_secs(20), login.wait_with_output())
        .await
        .expect("login finishes once approved")
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}");
    assert!(printed.contains("as ada@example.com"), "{printed}");

    let whoami = cli(&["whoami"]).output().await.unwrap();
    let printed = String::from_utf8_lossy(&whoami.stdout);
    assert!(whoami.status.success(), "{printed}");
    for expected in ["ada@example.com", "CLI: e2e", "admin", "owner, personal"] {
        assert!(printed.contains(expected), "{expected} in {printed}");
    }
    let whoami = cli(&["whoami", "--json"]).output().await.unwrap();
    let me: Value = serde_json::from_slice(&whoami.stdout).unwrap();
    assert_eq!(me["token_name"], "CLI: e2e");
    let saved = std::fs::read_to_string(config.join("credentials.toml")).unwrap();
    let token: toml::Value = toml::from_str(&saved).unwrap();
    let token = token["token"].as_str().unwrap().to_owned();

    let logout = cli(&["logout"]).output().await.unwrap();
    assert!(
        logout.status.success(),
        "{}",
        String::from_utf8_lossy(&logout.stderr)
    );
    assert!(!config.join("credentials.toml").exists());
    let after = reqwest::Client::new()
        .get(format!("{}/api/v1/me", server.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401, "the token is revoked");
}
