//! Preview deployments per pull request, against the fake GitHub and a real engine and
//! Traefik: a pull request's preview goes live at its own hostname and follows its pushes
//! with one comment updated in place; a fork's waits for an approval of its head commit (a
//! label from an unlinked GitHub user does nothing, one from a linked deployer deploys it, a
//! later push waits again, the CLI approves it); closing removes everything; a preview runs
//! the release command and mounts volumes only when its service's settings say so; a branch's
//! preview is deployed on request, and the oldest preview goes beyond the maximum.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use helvetia_test_support::github::FakeGitHub;
use helvetia_test_support::{FixtureRepo, TestServer, eventually, unique};
use serde_json::{Value, json};

use crate::deploy::Cleanup;

/// A `pull_request` delivery as GitHub sends it (the fields Helvetia reads, and a few more).
struct PullRequests {
    repository_id: i64,
    fork_id: i64,
}

impl PullRequests {
    fn event(
        &self,
        action: &str,
        number: u64,
        sha: &str,
        fork: bool,
        sender: (i64, &str),
    ) -> Value {
        let head_repo = if fork {
            json!({"id": self.fork_id, "full_name": "mallory/shop"})
        } else {
            json!({"id": self.repository_id, "full_name": "acme/shop"})
        };
        json!({
            "action": action,
            "number": number,
            "pull_request": {
                "number": number,
                "title": format!("Change #{number}"),
                "head": {"ref": format!("feature-{number}"), "sha": sha, "repo": head_repo},
                "base": {"ref": "main", "repo": {"id": self.repository_id}},
            },
            "repository": {"id": self.repository_id, "full_name": "acme/shop"},
            "sender": {"id": sender.0, "login": sender.1},
        })
    }

    fn labeled(&self, number: u64, sha: &str, sender: (i64, &str)) -> Value {
        let mut event = self.event("labeled", number, sha, true, sender);
        event["label"] = json!({"name": "deploy-preview"});
        event
    }
}

async fn previews(server: &TestServer, project: &str) -> Vec<Value> {
    let listed = server
        .get(&format!(
            "/api/v1/projects/{project}/services/shop/previews"
        ))
        .await;
    listed.as_array().unwrap().clone()
}

async fn preview(server: &TestServer, project: &str, name: &str) -> Value {
    previews(server, project)
        .await
        .into_iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no preview {name}"))
}

/// Waits until preview `name`'s newest deployment is live with `sha`; answers its id.
async fn live_with(server: &TestServer, project: &str, name: &str, sha: &str) -> i64 {
    eventually(
        Duration::from_secs(120),
        "the preview to go live",
        || async {
            let found = preview(server, project, name).await;
            let latest = &found["latest_deployment"];
            assert_ne!(latest["status"], "failed", "{found}");
            (latest["status"] == "live" && latest["commit_sha"] == sha)
                .then(|| latest["id"].as_i64().unwrap())
        },
    )
    .await
}

fn host_of(url: &str) -> String {
    let host = url.trim_start_matches("http://");
    host.split(':').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_requests_get_previews_and_a_fork_runs_only_what_a_deployer_approved() {
    let github = FakeGitHub::start().await;
    let created = github.create_app("helvetia").await;
    let repo = FixtureRepo::new("web");
    let octo_id = github.add_user("octo", "octo@acme.example", &["acme"]);
    let mallory_id = github.add_user("mallory", "mallory@elsewhere.example", &[]);
    github.add_installation("acme", &[("shop", Some(PathBuf::from(repo.url())), true)]);
    let server = github
        .server_with_app(crate::BINARY, &created, "acme")
        .await;
    let token = github
        .user_token(&server.url(), "octo", &["read", "deploy", "write"])
        .await;
    let project = unique("pr");
    let _cleanup = Cleanup(project.clone());
    let octo = |args: &[&str]| server.cli_ok_with(&token, args);
    octo(&["projects", "create", &project]);
    let target = format!("{project}/shop");
    octo(&["services", "create", &target, "--github", "acme/shop"]);
    // Production has a release command and a volume: previews get neither by default.
    octo(&["volumes", "add", &target, "data", "--path", "/data"]);
    octo(&[
        "services",
        "update",
        &target,
        "--release-command",
        "sh -c 'echo RELEASE-RAN-$HELVETIA_DEPLOYMENT_ID'",
    ]);
    let settings = octo(&["previews", "settings", &target, "--enabled", "true"]);
    assert!(
        settings
            .lines()
            .any(|line| line.contains("pull-request previews") && line.ends_with("true")),
        "{settings}"
    );
    let service = server
        .get(&format!("/api/v1/projects/{project}/services/shop"))
        .await;
    let prs = PullRequests {
        repository_id: service["github"]["repository_id"].as_i64().unwrap(),
        fork_id: 999_001,
    };
    let webhook = format!("{}/api/v1/github/webhook", server.url());
    let deliver = |event: Value| {
        let (github, webhook) = (&github, &webhook);
        async move {
            let status = github.deliver(webhook, "pull_request", event).await;
            assert!(status.is_success(), "{status}");
        }
    };

    // Opened: the preview goes live at its own hostname, without the release or the volume.
    let first = repo.pull_request(1, "www/index.html", "pull request one\n");
    deliver(prs.event("opened", 1, &first, false, (octo_id, "octo"))).await;
    let deployment = live_with(&server, &project, "pr-1", &first).await;
    let pr1 = preview(&server, &project, "pr-1").await;
    let host = host_of(pr1["url"].as_str().unwrap());
    assert!(host.starts_with(&format!("pr-1.shop.{project}.")), "{pr1}");
    server.wait_answering(&host, Duration::from_secs(20)).await;
    let (_, body) = server.through_edge(&host, "/").await.unwrap();
    assert_eq!(body, "pull request one\n");
    let log = server.deploy_log(deployment).await;
    assert!(!log.contains("RELEASE-RAN"), "{log}");
    let volumes = server
        .get(&format!(
            "/api/v1/projects/{project}/services/shop--pr-1/volumes"
        ))
        .await;
    assert_eq!(volumes, json!([]));

    // Pushed to: redeployed; still one comment, now naming the new commit.
    let second = repo.pull_request(1, "www/index.html", "pull request one, again\n");
    deliver(prs.event("synchronize", 1, &second, false, (octo_id, "octo"))).await;
    live_with(&server, &project, "pr-1", &second).await;
    eventually(Duration::from_secs(20), "the new version", || async {
        let (_, body) = server.through_edge(&host, "/").await?;
        (body == "pull request one, again\n").then_some(())
    })
    .await;
    let comment = eventually(Duration::from_secs(10), "the comment", || async {
        let comments = github.comments("acme/shop", 1);
        assert!(comments.len() <= 1, "{comments:?}");
        let body = comments.first()?["body"].as_str()?.to_owned();
        (body.contains("Live") && body.contains(&second[..7])).then_some(body)
    })
    .await;
    assert!(comment.contains(&host), "{comment}");
    let context = format!("helvetia/{project}/shop--pr-1");
    // A commit status per preview deploy (set after the comment).
    eventually(Duration::from_secs(10), "the preview's status", || async {
        github
            .statuses("acme/shop", &second)
            .iter()
            .any(|s| s["context"] == context.as_str() && s["state"] == "success")
            .then_some(())
    })
    .await;

    // A fork's pull request waits; a label from a GitHub user no deployer is linked to does
    // nothing; the same label from octo deploys that head commit.
    let forked = repo.pull_request(2, "www/index.html", "from a fork\n");
    deliver(prs.event("opened", 2, &forked, true, (mallory_id, "mallory"))).await;
    let waiting = preview(&server, &project, "pr-2").await;
    assert_eq!(waiting["awaiting_approval"], true, "{waiting}");
    assert!(waiting["latest_deployment"].is_null(), "{waiting}");
    deliver(prs.labeled(2, &forked, (mallory_id, "mallory"))).await;
    let still = preview(&server, &project, "pr-2").await;
    assert!(still["latest_deployment"].is_null(), "{still}");
    let waiting_comment = github.comments("acme/shop", 2);
    assert_eq!(waiting_comment.len(), 1);
    assert!(
        waiting_comment[0]["body"]
            .as_str()
            .unwrap()
            .contains("Waiting for approval")
    );
    deliver(prs.labeled(2, &forked, (octo_id, "octo"))).await;
    live_with(&server, &project, "pr-2", &forked).await;
    let approved = preview(&server, &project, "pr-2").await;
    assert_eq!(approved["approved_commit"], forked.as_str(), "{approved}");

    // A later push to the fork waits again, until approved through the CLI.
    let pushed = repo.pull_request(2, "www/index.html", "from a fork, changed\n");
    deliver(prs.event("synchronize", 2, &pushed, true, (mallory_id, "mallory"))).await;
    let again = preview(&server, &project, "pr-2").await;
    assert_eq!(again["awaiting_approval"], true, "{again}");
    assert_eq!(again["latest_deployment"]["commit_sha"], forked.as_str());
    let stale = server.cli_with(
        &token,
        &["previews", "approve", &target, "pr-2", "--commit", &forked],
    );
    assert!(
        !stale.status.success(),
        "an approval of a commit no longer the head"
    );
    octo(&["previews", "approve", &target, "pr-2", "--commit", &pushed]);
    live_with(&server, &project, "pr-2", &pushed).await;
    assert_eq!(
        github.comments("acme/shop", 2).len(),
        1,
        "one comment, updated"
    );

    // Opting in: a preview runs the release command and gets its own volume.
    octo(&[
        "previews",
        "settings",
        &target,
        "--release-command",
        "true",
        "--volumes",
        "true",
    ]);
    let third = repo.pull_request(3, "www/index.html", "pull request three\n");
    deliver(prs.event("opened", 3, &third, false, (octo_id, "octo"))).await;
    let deployment = live_with(&server, &project, "pr-3", &third).await;
    let log = server.deploy_log(deployment).await;
    assert!(log.contains(&format!("RELEASE-RAN-{deployment}")), "{log}");
    let volumes = server
        .get(&format!(
            "/api/v1/projects/{project}/services/shop--pr-3/volumes"
        ))
        .await;
    assert_eq!(volumes[0]["path"], "/data", "{volumes}");

    // Closed: the preview's containers, images, route and service go.
    let listed = octo(&["previews", "list", &target]);
    assert!(listed.contains("pr-1") && listed.contains("#1"), "{listed}");
    let image_repository = |service: &str| {
        let output = Command::new("docker")
            .args(["image", "ls", "--format", "{{.Repository}}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|line| line.ends_with(&format!("-{project}-{service}")))
            .count()
    };
    assert!(image_repository("shop--pr-1") > 0, "the preview's image");
    deliver(prs.event("closed", 1, &second, false, (octo_id, "octo"))).await;
    eventually(Duration::from_secs(60), "the preview removed", || async {
        let (status, _) = server
            .api(
                reqwest::Method::GET,
                &format!("/api/v1/projects/{project}/services/shop--pr-1"),
                None,
            )
            .await;
        (status == 404).then_some(())
    })
    .await;
    // The route goes once the removal has published the table without it.
    eventually(Duration::from_secs(10), "the route gone", || async {
        let (status, _) = server.through_edge(&host, "/").await?;
        (status == 404).then_some(())
    })
    .await;
    assert_eq!(image_repository("shop--pr-1"), 0, "the images are gone");
    let comments = github.comments("acme/shop", 1);
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(comments[0]["body"].as_str().unwrap().contains("Removed"));
    let containers = Command::new("docker")
        .args(["ps", "--all", "--format", "{{.Names}}"])
        .output()
        .unwrap();
    let containers = String::from_utf8_lossy(&containers.stdout);
    assert!(
        !containers.contains(&format!("{project}-shop--pr-1")),
        "{containers}"
    );
    assert_eq!(previews(&server, &project).await.len(), 2);

    // A preview of any branch, on request — reusing the image the service built from that
    // commit; beyond the maximum, the oldest preview goes.
    let production = server.deploy(&project, "shop").await;
    assert_eq!(production["status"], "live", "{production}");
    octo(&["previews", "settings", &target, "--max", "2"]);
    let deployed = octo(&[
        "previews", "deploy", &target, "--branch", "main", "--name", "staging",
    ]);
    assert!(
        deployed.contains("is live at http://staging.shop."),
        "{deployed}"
    );
    assert!(deployed.contains("no rebuild"), "{deployed}");
    eventually(
        Duration::from_secs(60),
        "the oldest preview removed",
        || async {
            let names: Vec<String> = previews(&server, &project)
                .await
                .iter()
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect();
            (names == ["pr-3", "staging"]).then_some(())
        },
    )
    .await;
}
