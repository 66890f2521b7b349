//! Deploy on push, end to end: a commit pushed to a repository and a signed delivery put the
//! new commit live with no command run, and a burst of pushes ends with the newest live.

use serde_json::{Value, json};

use helvetia_test_support::github::signature;
use helvetia_test_support::{FixtureRepo, TestServer, http_client, unique};

use crate::deploy::Cleanup;

/// Gitea's delivery of a push of `after` onto `before`, changing `www/index.html`.
async fn push(
    server: &TestServer,
    receiver: &str,
    secret: &str,
    before: &str,
    after: &str,
) -> Value {
    let body = json!({
        "ref": "refs/heads/main", "before": before, "after": after,
        "commits": [{"id": after, "message": "new page", "added": [], "removed": [],
                     "modified": ["www/index.html"]}],
        "total_commits": 1,
        "pusher": {"login": "ada"}
    })
    .to_string();
    let response = http_client()
        .post(format!("{receiver}/gitea"))
        .header("content-type", "application/json")
        .header("x-gitea-event", "push")
        .header("x-gitea-delivery", unique("delivery"))
        .header(
            "x-gitea-signature",
            &signature(secret, body.as_bytes())[7..],
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{}", server.log());
    let receipt: Value = response.json().await.unwrap();
    assert_eq!(receipt["results"][0]["outcome"], "deployed", "{receipt}");
    receipt["results"][0]["deployment_id"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_push_goes_live_and_a_burst_ends_with_the_newest() {
    let server = TestServer::start(crate::BINARY).await;
    let project = unique("push");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    // The receiver and its secret, made with the CLI (shown once).
    let target = format!("{project}/web");
    let made: Value =
        serde_json::from_str(&server.cli_ok(&["hooks", "secret", &target, "--json"])).unwrap();
    let (receiver, secret) = (
        made["receiver_url"].as_str().unwrap(),
        made["secret"].as_str().unwrap(),
    );
    let host = format!("web.{project}.localhost");

    let before = repo.head();
    repo.write("www/index.html", "pushed once\n", "one push");
    let after = repo.head();
    let id = push(&server, receiver, secret, &before, &after).await;
    let deployment = server.wait_finished(id.as_i64().unwrap()).await;
    assert_eq!(deployment["status"], "live", "{deployment}");
    assert_eq!(deployment["commit_sha"], after.as_str());
    let (status, body) = server.through_edge(&host, "/").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "pushed once\n"));

    // Five pushes in quick succession: the repository first, then GitHub-style deliveries.
    let mut commits = vec![after];
    for n in 1..=5 {
        repo.write(
            "www/index.html",
            &format!("burst {n}\n"),
            &format!("burst {n}"),
        );
        commits.push(repo.head());
    }
    let mut ids = Vec::new();
    for pair in commits.windows(2) {
        ids.push(
            push(&server, receiver, secret, &pair[0], &pair[1])
                .await
                .as_i64()
                .unwrap(),
        );
    }
    let newest = server.wait_finished(*ids.last().unwrap()).await;
    assert_eq!(newest["status"], "live", "{newest}");
    assert_eq!(newest["commit_sha"], commits.last().unwrap().as_str());
    let (status, body) = server.through_edge(&host, "/").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "burst 5\n"));
    // Each older one never ran (`superseded`: a newer push came while it was queued) or — a
    // delivery is not instant, and the worker takes a queued deployment at once — had
    // started when the next push came, finished and was replaced (`retired`).
    for older in &ids[..4] {
        let deployment = server.wait_finished(*older).await;
        let started = deployment["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["to"] == "cloning");
        let expected: &[&str] = if started {
            &["retired", "superseded"]
        } else {
            &["superseded"]
        };
        let status = deployment["status"].as_str().unwrap();
        assert!(expected.contains(&status), "#{older}: {deployment}");
    }
    let log = server.cli_ok(&["hooks", "deliveries", &target]);
    let deployed = log
        .lines()
        .filter(|line| line.contains("deployed #"))
        .count();
    assert_eq!(deployed, 6, "{log}");
}
