//! Environment variables and secrets end to end: applied by zero-downtime redeploys, sealed
//! under a master key that can be rotated, refused with the wrong key.

use std::time::Duration;

use helvetia_test_support::load::Load;
use helvetia_test_support::{FixtureRepo, TestServer, eventually, unique};
use reqwest::Method;
use serde_json::json;

use crate::deploy::Cleanup;

async fn set(server: &TestServer, project: &str, vars: serde_json::Value) -> serde_json::Value {
    let (status, body) = server
        .api(
            Method::PUT,
            &format!("/api/v1/projects/{project}/services/web/env"),
            Some(json!({"vars": vars})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn an_env_change_is_applied_by_a_zero_downtime_redeploy() {
    let server = TestServer::start(crate::BINARY).await;
    let project = unique("envzdt");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    set(
        &server,
        &project,
        json!([{"name": "GREETING", "value": "hello"}]),
    )
    .await;
    assert_eq!(server.deploy(&project, "web").await["status"], "live");
    let host = format!("web.{project}.localhost");
    assert!(
        server
            .through_edge(&host, "/cgi-bin/env")
            .await
            .unwrap()
            .1
            .contains("GREETING=hello\n")
    );

    let load = Load::start(server.http_port, &host, "/", 8, 200.0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let changed = set(
        &server,
        &project,
        json!([{"name": "GREETING", "value": "bonjour", "secret": true}]),
    )
    .await;
    let redeploy = &changed["redeployments"][0];
    assert_eq!(redeploy["cause"], "settings");
    let finished = server.wait_finished(redeploy["id"].as_i64().unwrap()).await;
    assert_eq!(finished["status"], "live", "{finished}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = load.stop().await;
    assert_eq!(report.failed(), 0, "{:?}", report.errors);
    assert!(report.sent() > 100);
    assert!(
        server
            .through_edge(&host, "/cgi-bin/env")
            .await
            .unwrap()
            .1
            .contains("GREETING=bonjour\n")
    );

    // With auto-redeploy off, a change waits for the next deploy and says so.
    let (status, _) = server
        .api(
            Method::PATCH,
            &format!("/api/v1/projects/{project}/services/web"),
            Some(json!({"runtime": {"auto_redeploy": false}})),
        )
        .await;
    assert_eq!(status, 200);
    let held = set(
        &server,
        &project,
        json!([{"name": "GREETING", "value": "hola"}]),
    )
    .await;
    assert!(held["redeployments"].as_array().unwrap().is_empty());
    let service = server
        .get(&format!("/api/v1/projects/{project}/services/web"))
        .await;
    assert_eq!(service["status"]["env_pending"], true);
    assert!(
        server
            .through_edge(&host, "/cgi-bin/env")
            .await
            .unwrap()
            .1
            .contains("GREETING=bonjour\n")
    );
    assert_eq!(server.deploy(&project, "web").await["status"], "live");
    assert!(
        server
            .through_edge(&host, "/cgi-bin/env")
            .await
            .unwrap()
            .1
            .contains("GREETING=hola\n")
    );
    let service = server
        .get(&format!("/api/v1/projects/{project}/services/web"))
        .await;
    assert_eq!(service["status"]["env_pending"], false);

    // The CLI's `.env` round trip, and a variable named like a bulk route is an ordinary one.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prod.env");
    std::fs::write(&file, "import=yes\nQUOTED=\"two words\"\n").unwrap();
    let target = format!("{project}/web");
    server.cli_ok(&["env", "import", &target, file.to_str().unwrap()]);
    let exported = server.cli_ok(&["env", "export", &target]);
    assert!(exported.contains("import=yes\n"), "{exported}");
    assert!(exported.contains("QUOTED="), "{exported}");
    server.cli_ok(&["env", "unset", &target, "import"]);
    assert!(
        !server
            .cli_ok(&["env", "export", &target])
            .contains("import=")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rotating_the_master_key_keeps_secrets_and_a_wrong_key_is_refused() {
    let mut server = TestServer::start(crate::BINARY).await;
    let project = unique("rotate");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    set(
        &server,
        &project,
        json!([{"name": "DB_PASSWORD", "value": "correct-horse-battery", "secret": true}]),
    )
    .await;
    let key_file = server.data_dir().join("master.key");
    let original_key = std::fs::read_to_string(&key_file).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    assert!(server.terminate().success());
    let rotated = server.server_action(&server.data_dir(), "rotate-key");
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let new_key = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(new_key, original_key);

    server.launch().await;
    let reveal = format!("/api/v1/projects/{project}/services/web/env/DB_PASSWORD/reveal");
    let revealed = server.get(&reveal).await;
    assert_eq!(revealed["value"], "correct-horse-battery");
    assert_eq!(server.deploy(&project, "web").await["status"], "live");
    let (_, env) = server
        .through_edge(&format!("web.{project}.localhost"), "/cgi-bin/env")
        .await
        .unwrap();
    assert!(env.contains("DB_PASSWORD=correct-horse-battery"), "{env}");

    // The old key (or no key) is refused at start-up, and nothing is overwritten.
    assert!(server.terminate().success());
    let database_before = std::fs::read(server.data_dir().join("helvetia.db")).unwrap();
    for (key, expected) in [
        (Some(original_key.trim().to_owned()), "does not match"),
        (None, "is missing"),
    ] {
        if key.is_none() {
            std::fs::rename(&key_file, server.dir.path().join("stashed.key")).unwrap();
        }
        let mut start = server.another_server_command();
        if let Some(key) = &key {
            start.env("HELVETIA_MASTER_KEY", key);
        }
        let refused = start.output().unwrap();
        assert!(!refused.status.success());
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains(expected) && stderr.contains("nothing was changed"),
            "{stderr}"
        );
        assert!(!stderr.contains("correct-horse-battery"));
    }
    assert!(!key_file.exists(), "no new key was created");
    std::fs::rename(server.dir.path().join("stashed.key"), &key_file).unwrap();
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), new_key);
    let database_after = std::fs::read(server.data_dir().join("helvetia.db")).unwrap();
    assert_eq!(
        database_before, database_after,
        "a refused start changed the database"
    );

    server.launch().await;
    eventually(
        Duration::from_secs(10),
        "the secret to read back",
        || async { (server.get(&reveal).await["value"] == "correct-horse-battery").then_some(()) },
    )
    .await;
}

/// A release command's line longer than the 64 KiB a log line is cut at, with a secret across
/// the cut: the cut keeps the secret whole, so it is redacted rather than shown in two halves.
#[tokio::test(flavor = "multi_thread")]
async fn a_secret_across_the_cut_of_a_long_release_line_is_redacted() {
    let server = TestServer::start(crate::BINARY).await;
    let project = unique("envcut");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    // Capitals only, so a dozen of them in a row in the log came from the secret.
    let secret: String = (0..140u8).map(|i| char::from(b'A' + i % 26)).collect();
    set(
        &server,
        &project,
        json!([{"name": "LONG_SECRET", "value": secret, "secret": true}]),
    )
    .await;
    // The engine frames output in 16 KiB pieces, each led by a timestamp of 21 to 31 bytes, so
    // the 64 KiB cut lands 84 to 124 bytes of output before offset 65,536 (21 to 31 bytes were
    // the line framed whole): the secret, at 65,380 to 65,520, spans all of these and ends
    // before the engine's own boundary at 65,536, which a timestamp splits.
    server.cli_ok(&[
        "services",
        "update",
        &format!("{project}/web"),
        "--release-command",
        "sh -c 'printf \"%65380s\" \"\" | tr \" \" x; printf \"%s\" \"$LONG_SECRET\"; printf \"%100s\n\" \"\" | tr \" \" y'",
    ]);
    let deployed = server.deploy(&project, "web").await;
    let log = server.deploy_log(deployed["id"].as_i64().unwrap()).await;
    assert_eq!(deployed["status"], "live", "{deployed}");
    assert!(
        log.contains(&"x".repeat(16_000)),
        "the long line is not in the log"
    );
    for piece in secret.as_bytes().windows(12) {
        let piece = std::str::from_utf8(piece).unwrap();
        assert!(!log.contains(piece), "{piece} of the secret is in the log");
    }
    assert!(
        log.contains("[REDACTED]yyyy"),
        "the secret is not redacted at the start of the cut line's rest"
    );
}

/// A build argument reaches the Dockerfile's `ARG`; a secret build variable reaches its secret
/// mount but neither the image's history nor its configuration; a secret build argument is
/// refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_build_argument_reaches_arg_and_a_secret_build_variable_stays_out_of_the_image() {
    let server = TestServer::start(crate::BINARY).await;
    let project = unique("buildarg");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    repo.write(
        "Dockerfile",
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCOPY www /www\n\
         ARG PUBLIC_GREETING\n\
         RUN echo \"$PUBLIC_GREETING\" > /www/greeting.txt\n\
         RUN --mount=type=secret,id=API_TOKEN test \"$(wc -c < /run/secrets/API_TOKEN)\" -eq 18 && echo token-was-readable\n\
         CMD [\"/bin/sh\", \"-c\", \"exec httpd -f -p ${PORT:-8080} -h /www\"]\n",
        "a build argument and a build secret",
    );
    server.service(&project, "web", &repo).await;
    let (status, body) = server
        .api(
            Method::PUT,
            &format!("/api/v1/projects/{project}/services/web/env"),
            Some(json!({"vars": [
                {"name": "LEAK", "value": "x", "secret": true, "build_arg": true}
            ]})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("vars[0].build_arg"), "{body}");
    server.cli_ok(&[
        "env",
        "set",
        &format!("{project}/web"),
        "PUBLIC_GREETING=hello from the build",
        "--build-arg",
        "--detach",
    ]);
    set(
        &server,
        &project,
        json!([{"name": "API_TOKEN", "value": "s3cr3t-token-value", "secret": true, "build": true}]),
    )
    .await;
    let listed = server.cli_ok(&["env", "list", &format!("{project}/web")]);
    assert!(listed.contains("build-arg"), "{listed}");
    let deployment = server.deploy(&project, "web").await;
    let log = server.deploy_log(deployment["id"].as_i64().unwrap()).await;
    assert_eq!(deployment["status"], "live", "{log}");
    assert!(log.contains("token-was-readable"), "{log}");
    let host = format!("web.{project}.localhost");
    let (_, greeting) = server.through_edge(&host, "/greeting.txt").await.unwrap();
    assert_eq!(greeting, "hello from the build\n");

    let image = deployment["image"].as_str().unwrap();
    let docker = |args: &[&str]| {
        let output = std::process::Command::new("/usr/bin/docker")
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let history = docker(&["history", "--no-trunc", image]);
    // Build arguments are in the history by design; build secrets never.
    assert!(
        history.contains("PUBLIC_GREETING=hello from the build"),
        "{history}"
    );
    let inspected = docker(&["image", "inspect", image]);
    // (The step checks the secret's length: its command is in the history too.)
    for text in [&history, &inspected, &log] {
        assert!(!text.contains("s3cr3t-token-value"), "{text}");
    }
}
