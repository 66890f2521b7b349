//! The command-line client against a real server.

use serde_json::Value;

use helvetia_test_support::{TestServer, unique};

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn login_create_list_show_delete() {
    let server = TestServer::start(crate::BINARY).await;
    let project = unique("cli");
    let target = format!("{project}/web");

    // `login` saves the credentials; later commands need neither flags nor environment.
    let config = server.dir.path().join("login-config");
    let login = std::process::Command::new(crate::BINARY)
        .args(["login", "--server", &server.url(), "--token", &server.token])
        .env("HELVETIA_CONFIG_DIR", &config)
        .output()
        .unwrap();
    assert!(login.status.success(), "{}", stderr(&login));
    let saved = config.join("credentials.toml");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&saved).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let listed = std::process::Command::new(crate::BINARY)
        .args(["projects", "list"])
        .env("HELVETIA_CONFIG_DIR", &config)
        .env_remove("HELVETIA_SERVER")
        .env_remove("HELVETIA_TOKEN")
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", stderr(&listed));

    let created = server.cli(&["projects", "create", &project]);
    assert!(created.status.success(), "{}", stderr(&created));
    let created = server.cli(&[
        "services",
        "create",
        &target,
        "--repo",
        "https://git.example.org/demo.git",
        "--port",
        "3000",
    ]);
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(stdout(&created).contains(&format!("http://web.{project}.localhost")));

    let table = stdout(&server.cli(&["services", "list", &project]));
    assert!(
        table.contains("SERVICE") && table.contains(&target) && table.contains("3000"),
        "{table}"
    );
    let json: Value =
        serde_json::from_str(&stdout(&server.cli(&["services", "list", "--json"]))).unwrap();
    let ours: Vec<&Value> = json
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["project"] == project.as_str())
        .collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0]["repo"], "https://git.example.org/demo.git");

    let show = stdout(&server.cli(&["services", "show", &target]));
    assert!(
        show.contains("https://git.example.org/demo.git")
            && show.contains("Live:")
            && show.contains("not deployed"),
        "{show}"
    );
    let show: Value = serde_json::from_str(&stdout(
        &server.cli(&["services", "show", &target, "--json"]),
    ))
    .unwrap();
    assert_eq!(show["port"], 3000);

    let projects: Value =
        serde_json::from_str(&stdout(&server.cli(&["projects", "list", "--json"]))).unwrap();
    assert!(
        projects
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == project.as_str())
    );

    // Errors are one clear line and a non-zero exit code.
    let duplicate = server.cli(&["projects", "create", &project]);
    assert!(!duplicate.status.success());
    assert_eq!(
        stderr(&duplicate).trim(),
        format!("error: the project name `{project}` is not available")
    );
    let hostile = server.cli(&[
        "services",
        "create",
        &format!("{project}/evil"),
        "--repo",
        "ext::sh -c id",
    ]);
    assert!(!hostile.status.success());
    assert!(stderr(&hostile).contains("repo"), "{}", stderr(&hostile));
    let bad_name = server.cli(&["services", "show", "Demo/web"]);
    assert!(!bad_name.status.success());
    assert!(stderr(&bad_name).contains("invalid project name"));
    let missing = server.cli(&["services", "show", &format!("{project}/nope")]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("not found"));

    assert!(
        server
            .cli(&["services", "delete", &target])
            .status
            .success()
    );
    assert!(
        server
            .cli(&["projects", "delete", &project])
            .status
            .success()
    );
    let json: Value =
        serde_json::from_str(&stdout(&server.cli(&["projects", "list", "--json"]))).unwrap();
    assert!(
        !json
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == project.as_str())
    );

    let audit = stdout(&server.cli(&["audit"]));
    assert!(
        audit.contains("project.delete") && audit.contains("service.create"),
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_server_is_a_clear_error() {
    let output = std::process::Command::new(crate::BINARY)
        .args(["projects", "list"])
        .env("HELVETIA_SERVER", "http://127.0.0.1:9")
        .env("HELVETIA_TOKEN", "hlv_x")
        .env("HELVETIA_CONFIG_DIR", "/nonexistent")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output)
            .starts_with("error: cannot reach the Helvetia server at http://127.0.0.1:9"),
        "{}",
        stderr(&output)
    );
}

/// Serves every request on `listener` with a 200 and `body`, like a server of another version
/// whose answers have another shape.
async fn answer_every_request_with(listener: tokio::net::TcpListener, body: &'static str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut connection, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match connection.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = connection.write_all(response.as_bytes()).await;
        });
    }
}

/// Runs the CLI against a server that answers every request with `body`.
async fn cli_against_answer(args: &[&str], body: &'static str) -> std::process::Output {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(answer_every_request_with(listener, body));
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(crate::BINARY)
            .args(&args)
            .env("HELVETIA_SERVER", url)
            .env("HELVETIA_TOKEN", "hlv_x")
            .env("HELVETIA_CONFIG_DIR", "/nonexistent")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    server.abort();
    output
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_of_another_shape_is_a_clear_error() {
    // A field the CLI needs was renamed (`name` → `title`).
    let output = cli_against_answer(
        &["projects", "list"],
        r#"[{"id": 1, "title": "demo", "created_at": "2026-11-28T10:00:00Z"}]"#,
    )
    .await;
    assert!(!output.status.success(), "{}", stdout(&output));
    assert!(
        stderr(&output).starts_with(
            "error: the server answered GET /api/v1/projects with a body this CLI does not understand: missing field `name`"
        ),
        "{}",
        stderr(&output)
    );

    // A field that may be empty was renamed (`status_reason` → `reason`): missing, not "-".
    let output = cli_against_answer(
        &["deployments", "show", "7"],
        r#"{"id": 7, "project": "demo", "service": "web", "kind": "build", "cause": "deploy",
            "status": "failed", "reason": "the build failed", "git_ref": "main",
            "requested_commit": null, "commit_sha": null, "commit_message": null,
            "commit_author": null, "image": null, "image_digest": null, "source_deployment_id": null,
            "created_by": "token:1(admin)", "created_at": "2026-11-28T10:00:00Z",
            "updated_at": "2026-11-28T10:00:00Z", "finished_at": null, "transitions": []}"#,
    )
    .await;
    assert!(!output.status.success(), "{}", stdout(&output));
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("does not understand: missing field `status_reason`"),
        "{}",
        stderr(&output)
    );
}
