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
        format!("error: project `{project}` already exists")
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
