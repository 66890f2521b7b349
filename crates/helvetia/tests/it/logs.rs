//! Deployment logs: redaction before anything is stored or streamed, streams that resume
//! without loss, many followers, persistence across restarts.

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use helvetia_cli::client::Client;
use helvetia_cli::sse;
use helvetia_test_support::{FixtureRepo, TestServer, unique};
use reqwest::Method;
use serde_json::{Value, json};

use crate::deploy::Cleanup;

const TOKEN: &str = "tok_9f8e7d6c5b4a3210fedcba";
const QUOTED: &str = "pa\"ss\\word&key=v@lue/42";
const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSj\nAoIBAQC7VJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1G\n-----END PRIVATE KEY-----";

/// Everything a secret must never be seen as.
fn forbidden() -> Vec<String> {
    let mut forms = vec![TOKEN.to_owned(), QUOTED.to_owned()];
    forms.extend(PEM.lines().filter(|l| l.len() > 30).map(str::to_owned));
    forms
}

fn assert_clean(what: &str, text: &str) {
    for secret in forbidden() {
        assert!(
            !text.contains(&secret),
            "{what} contains {secret:?}:\n{text}"
        );
    }
    for prefix in ["", "a", "ab"] {
        let encoded = STANDARD.encode(format!("{prefix}{TOKEN}"));
        let core = &encoded[4..encoded.len() - 4];
        assert!(
            !text.contains(core),
            "{what} contains the base64 of the token ({prefix:?}):\n{text}"
        );
    }
}

fn client(server: &TestServer) -> Client {
    Client::new(&server.url(), &server.token).unwrap()
}

/// Every event of a deployment's log stream, from `last_id` on, until its `end` event.
async fn stream(
    server: &TestServer,
    id: i64,
    last_id: Option<String>,
    stop_after: Option<usize>,
) -> Vec<sse::SseEvent> {
    let events = Arc::new(Mutex::new(vec![]));
    let seen = events.clone();
    sse::follow_from(
        &client(server),
        &format!("/api/v1/deployments/{id}/logs/stream"),
        last_id,
        move |event| {
            let mut seen = seen.lock().unwrap();
            seen.push(event.clone());
            let lines = seen.iter().filter(|e| e.event == "line").count();
            if event.event == "end" || stop_after.is_some_and(|n| lines >= n) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )
    .await
    .unwrap();
    Arc::try_unwrap(events).unwrap().into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_reach_stored_or_streamed_logs_nor_errors() {
    let server = TestServer::start(crate::BINARY).await;
    let project = unique("redact");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let (status, body) = server
        .api(
            Method::PUT,
            &format!("/api/v1/projects/{project}/services/web/env"),
            Some(json!({"vars": [
                {"name": "TOKEN", "value": TOKEN, "secret": true},
                {"name": "QUOTED", "value": QUOTED, "secret": true},
                {"name": "TLS_KEY", "value": PEM, "secret": true},
            ]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let url_encoded =
        percent_encoding::utf8_percent_encode(QUOTED, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    let json_escaped = serde_json::to_string(QUOTED).unwrap();
    let mut forms = format!(
        "plain: {TOKEN}\nin a URL: https://deploy:{TOKEN}@git.example.org/repo.git\nurl-encoded: ?p={url_encoded}\njson: {{\"password\": {json_escaped}}}\n"
    );
    for prefix in ["", "a", "ab"] {
        forms.push_str(&format!(
            "base64 after {prefix:?}: {}\n",
            STANDARD.encode(format!("{prefix}{TOKEN}"))
        ));
    }
    forms.push_str(PEM);
    forms.push('\n');
    repo.overlay("secret-printer");
    let (first, second) = TOKEN.split_at(9);
    repo.write(
        "split-print.sh",
        &format!("printf 'split: {first}'\nsleep 1\nprintf '{second} done\\n'\n"),
        "print the secret in two writes",
    );
    repo.write(
        "secret-forms.txt",
        &forms,
        "print every form of the secrets",
    );

    let output = server.cli(&["deploy", &format!("{project}/web")]);
    let cli_output = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{cli_output}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        cli_output.contains("split: [REDACTED] done") || cli_output.contains("[REDACTED]"),
        "{cli_output}"
    );
    assert_clean("the CLI's deploy output", &cli_output);
    let deployment = server
        .get(&format!("/api/v1/projects/{project}/services/web"))
        .await["status"]["live_deployment"]
        .clone();
    let id = deployment["id"].as_i64().unwrap();

    let stored = server.deploy_log(id).await;
    assert!(stored.contains("plain: [REDACTED]"), "{stored}");
    assert!(
        stored.contains("in a URL: https://deploy:[REDACTED]@git.example.org"),
        "{stored}"
    );
    assert!(stored.matches("[REDACTED]").count() >= 10, "{stored}");
    assert_clean("the stored log", &stored);

    let streamed: Vec<String> = stream(&server, id, None, None)
        .await
        .into_iter()
        .map(|e| e.data)
        .collect();
    assert_clean("the SSE stream", &streamed.join("\n"));
    let replayed = server.cli_ok(&[
        "logs",
        &format!("{project}/web"),
        "--deployment",
        &id.to_string(),
    ]);
    assert!(replayed.contains("[REDACTED]"));
    assert_clean("`helvetia logs --deployment`", &replayed);

    // The running app has its secrets, and its own output of them is redacted too.
    let (_, env) = server
        .through_edge(&format!("web.{project}.localhost"), "/cgi-bin/env")
        .await
        .unwrap();
    assert!(env.contains(&format!("TOKEN={TOKEN}")), "{env}");

    // A failure whose message carries a secret: the reason the API returns is redacted.
    repo.write(
        "Dockerfile",
        &format!("FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo using {TOKEN}; exit 7\"]\n"),
        "a build that fails showing the secret",
    );
    let failed = server.deploy(&project, "web").await;
    assert_eq!(failed["status"], "failed");
    assert_clean("the deployment the API returns", &failed.to_string());
    let output = server.cli(&["deployments", "show", &failed["id"].to_string()]);
    assert_clean(
        "`deployments show`",
        &String::from_utf8_lossy(&output.stdout),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_resume_exactly_once_and_serve_many_followers() {
    let server = TestServer::start(crate::BINARY).await;
    let project = unique("stream");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    repo.write(
        "Dockerfile",
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY .fixture-id /fixture-id\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"i=0; while [ $i -lt 1500 ]; do echo build line $i; i=$((i+1)); if [ $((i % 100)) = 0 ]; then sleep 0.1; fi; done\"]\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCOPY www /www\nCMD [\"/bin/sh\", \"-c\", \"exec httpd -f -p ${PORT:-8080} -h /www\"]\n",
        "a chatty build",
    );
    server.service(&project, "web", &repo).await;
    let id = server.request_deploy(&project, "web").await;

    // 98 followers from the start, and one that drops after 200 lines and comes back: with
    // its new stream admitted before the server saw the old one go, that is the default
    // --max-log-followers (100).
    let followers: Vec<_> = (0..98)
        .map(|_| {
            let server = &server;
            async move { stream(server, id, None, None).await }
        })
        .collect();
    let interrupted = async {
        let first = stream(&server, id, None, Some(200)).await;
        let last_id = first.iter().rev().find_map(|e| e.id.clone());
        let rest = stream(&server, id, last_id, None).await;
        (first, rest)
    };
    let (all, (first, rest)) = tokio::join!(futures::future::join_all(followers), interrupted);

    let stored = server
        .get(&format!("/api/v1/deployments/{id}/logs?limit=10000"))
        .await;
    let expected: Vec<i64> = stored["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["seq"].as_i64().unwrap())
        .collect();
    assert!(expected.len() > 1500, "{} lines", expected.len());
    let seqs = |events: &[sse::SseEvent]| -> Vec<i64> {
        events
            .iter()
            .filter(|e| e.event == "line")
            .map(|e| e.id.as_ref().unwrap().parse().unwrap())
            .collect()
    };
    for (i, events) in all.iter().enumerate() {
        assert_eq!(
            seqs(events),
            expected,
            "follower {i} missed or repeated lines"
        );
        let end: Value = serde_json::from_str(&events.last().unwrap().data).unwrap();
        assert_eq!(events.last().unwrap().event, "end");
        assert_eq!(end["status"], "live", "{end}");
    }
    let mut resumed = seqs(&first);
    resumed.extend(seqs(&rest));
    assert_eq!(resumed, expected, "a resumed stream lost or repeated lines");
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_survive_a_restart_and_runtime_output_streams() {
    let mut server = TestServer::start(crate::BINARY).await;
    let project = unique("persist");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let deployed = server.deploy(&project, "web").await;
    let id = deployed["id"].as_i64().unwrap();
    let before = server.deploy_log(id).await;
    assert!(before.lines().count() > 10);
    assert!(server.terminate().success());
    server.launch().await;
    assert_eq!(server.deploy_log(id).await, before);

    // Runtime output: what the app printed at start, and its request log.
    let host = format!("web.{project}.localhost");
    server.through_edge(&host, "/cgi-bin/env").await.unwrap();
    helvetia_test_support::eventually(
        std::time::Duration::from_secs(10),
        "the request in the app's output",
        || async {
            let output = server.cli(&["logs", &format!("{project}/web"), "--tail", "all"]);
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            (text.contains(&format!("{id}-0 | serving on port 8080"))
                && text.contains("response:200"))
            .then_some(())
        },
    )
    .await;
    let json = server
        .get(&format!(
            "/api/v1/projects/{project}/services/web/logs?tail=all"
        ))
        .await;
    let first = &json.as_array().unwrap()[0];
    assert_eq!(first["stream"], "stdout");
    assert!(
        first["at"].is_string()
            && first["container"]
                .as_str()
                .unwrap()
                .ends_with(&format!("{id}-0"))
    );
}

/// The server applies the log retention policy (here: logs older than 1 s go, except the
/// latest deployment's) when it starts and hourly after.
#[tokio::test(flavor = "multi_thread")]
async fn the_server_deletes_only_the_logs_its_retention_policy_names() {
    let mut server = TestServer::start_with(
        crate::BINARY,
        &["--log-retention", "1s", "--log-keep-deployments", "1"],
    )
    .await;
    let project = unique("retain");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    // Checked live at once: a first deployment that failed by itself would otherwise read,
    // at the end, as one the restart relabelled.
    let first = server.deploy(&project, "web").await;
    assert_eq!(first["status"], "live", "{first}");
    let first = first["id"].as_i64().unwrap();
    let second = server.deploy(&project, "web").await["id"].as_i64().unwrap();
    assert!(!server.deploy_log(first).await.is_empty());
    let kept = server.deploy_log(second).await;
    assert!(!kept.is_empty());

    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    server.kill();
    server.launch().await;
    helvetia_test_support::eventually(
        std::time::Duration::from_secs(10),
        "the first deployment's log to be deleted",
        || async { server.deploy_log(first).await.is_empty().then_some(()) },
    )
    .await;
    // Kept whole (the drain of the first deployment's container may have added lines since).
    let after = server.deploy_log(second).await;
    assert!(after.starts_with(&kept), "{after}");
    let history = server.get(&format!("/api/v1/deployments/{first}")).await;
    assert_eq!(history["status"], "retired", "the deployment itself stays");
}
