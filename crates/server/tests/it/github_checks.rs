//! What Helvetia writes on and reads from a commit through the App: its own commit statuses,
//! and CI's verdict (statuses and check runs) for services that wait for CI — a push held
//! until its checks pass, settled by GitHub's `check_suite` and `status` events.

use axum::http::{Method, StatusCode};
use helvetia_core::auth::Actor;
use helvetia_core::checks::Verdict;
use helvetia_core::commit_status::{CommitState, CommitStatus};
use helvetia_core::git::{GitRef, RepoUrl};
use helvetia_core::name::{ProjectName, ServiceName};
use helvetia_core::runtime::RuntimeSettings;
use helvetia_core::service::GitHubLink;
use helvetia_core::service::{RepoPath, ServiceSettings};
use helvetia_core::webhook::signature;
use helvetia_store::services::NewService;
use helvetia_test_support::github::FakeGitHub;
use serde_json::{Value, json};

use crate::github_hooks::deliver;
use crate::github_signin::setup;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const PASSING: &str = "1111111111111111111111111111111111111111";
const FAILING: &str = "2222222222222222222222222222222222222222";
const HANGING: &str = "3333333333333333333333333333333333333333";

/// CI writing on the commit as GitHub Actions or another App would, with a token of its own
/// installation; answers the created object.
async fn ci(
    github: &FakeGitHub,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Value {
    let response = helvetia_test_support::http_client()
        .request(
            method,
            format!("{}/repos/acme/shop{path}", github.api_url()),
        )
        .bearer_auth(token)
        .header("user-agent", "ci")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_verdict_on_a_commit_follows_its_checks_and_ignores_helvetias_own_status() {
    let (github, api, _) = setup(&[]).await;
    let installation = github.add_installation("acme", &[("shop", None, true)]);
    let link = GitHubLink {
        installation_id: installation,
        repository_id: 1,
        full_name: "acme/shop".into(),
    };
    let platform = &api.platform;
    let verdict = || async { platform.commit_checks(&link, SHA).await.unwrap() };
    assert_eq!(verdict().await, Verdict::NothingReported);

    // Helvetia's own status is not CI.
    let own = CommitStatus::of_deployment(
        ("demo", "shop"),
        1,
        helvetia_core::deployment::DeploymentStatus::Building,
        "",
        "",
    )
    .unwrap();
    assert_eq!(own.state, CommitState::Pending);
    platform.set_commit_status(&link, SHA, &own).await.unwrap();
    assert_eq!(
        github.statuses("acme/shop", SHA)[0]["context"],
        "helvetia/demo/shop"
    );
    assert_eq!(verdict().await, Verdict::NothingReported);

    let token = platform
        .installation_token(installation)
        .await
        .unwrap()
        .token;
    let test = ci(
        &github,
        &token,
        reqwest::Method::POST,
        "/check-runs",
        json!({"name": "test", "head_sha": SHA, "status": "in_progress"}),
    )
    .await;
    ci(
        &github,
        &token,
        reqwest::Method::POST,
        &format!("/statuses/{SHA}"),
        json!({"state": "success", "context": "ci/lint"}),
    )
    .await;
    assert_eq!(verdict().await, Verdict::Running("test".into()));
    let test_run = format!("/check-runs/{}", test["id"]);
    ci(
        &github,
        &token,
        reqwest::Method::PATCH,
        &test_run,
        json!({"status": "completed", "conclusion": "success"}),
    )
    .await;
    assert_eq!(verdict().await, Verdict::Passed);

    // A failing check; then GitHub stops taking the cached token: it is renewed on the way.
    ci(
        &github,
        &token,
        reqwest::Method::POST,
        "/check-runs",
        json!({"name": "e2e", "head_sha": SHA, "status": "completed", "conclusion": "failure"}),
    )
    .await;
    github.expire_tokens();
    let minted = github.issued_tokens().len();
    assert_eq!(
        verdict().await,
        Verdict::Failed("check `e2e` concluded failure".into())
    );
    assert_eq!(github.issued_tokens().len(), minted + 1);
}

/// A push to `demo/web`'s branch of repository 4242, at `after`.
fn push(after: &str) -> Vec<u8> {
    json!({
        "ref": "refs/heads/main", "before": SHA, "after": after,
        "created": false, "deleted": false, "forced": false,
        "compare": "https://github.example/acme/shop/compare/a...b",
        "commits": [{"id": after, "message": "Ship it", "added": ["a"], "removed": [], "modified": []}],
        "head_commit": {"id": after, "message": "Ship it"},
        "pusher": {"name": "octocat"},
        "repository": {"id": 4242, "full_name": "acme/shop"},
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn with_wait_for_ci_a_push_deploys_once_its_checks_pass_and_never_when_one_fails() {
    let (github, api, _) = setup(&[]).await;
    let installation = github.add_installation("acme", &[("shop", None, true)]);
    api.post("/api/v1/projects", json!({"name": "demo"})).await;
    let team = api.store.default_team().await.unwrap();
    let link = GitHubLink {
        installation_id: installation,
        repository_id: 4242,
        full_name: "acme/shop".into(),
    };
    let settings = ServiceSettings {
        source: helvetia_core::service::ServiceSource::Repository(
            RepoUrl::parse_stored(&format!("{}/acme/shop.git", github.web_url())).unwrap(),
        ),
        branch: GitRef::parse("main").unwrap(),
        dockerfile: RepoPath::parse("Dockerfile").unwrap(),
        context: RepoPath::parse(".").unwrap(),
        port: None,
    };
    let (demo, web) = (
        ProjectName::parse("demo").unwrap(),
        ServiceName::parse("web").unwrap(),
    );
    let new = NewService {
        project: &demo,
        name: &web,
        settings: &settings,
        runtime: &RuntimeSettings::default(),
        hostname: "web.demo.localhost",
        github: Some(&link),
    };
    api.store
        .create_service(&Actor::system(team, "test"), &new)
        .await
        .unwrap();
    const SERVICE: &str = "/api/v1/projects/demo/services/web";
    let patch = |path: &'static str, body: Value| {
        api.call(Method::PATCH, path, Some(&api.admin), Some(body))
    };
    let (status, reply) = patch(
        "/api/v1/projects/demo/services/web/hook",
        json!({"wait_for_ci": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["wait_for_ci"], true);
    // Only a service created from a GitHub repository can wait for its checks.
    api.post(
        "/api/v1/projects/demo/services",
        json!({"name": "plain", "repo": "https://example.org/plain.git"}),
    )
    .await;
    let (status, reply) = patch(
        "/api/v1/projects/demo/services/plain/hook",
        json!({"wait_for_ci": true}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");

    let secret = github.webhook_secret();
    let secret = secret.as_bytes();
    let send = |event: &'static str, guid: &'static str, body: Vec<u8>| {
        let signed = signature::github(secret, &body);
        let api = &api;
        async move {
            let (status, reply) = deliver(api, event, guid, &signed, &body).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
            reply
        }
    };
    let deployments = || async {
        let (_, list) = api.get(&format!("{SERVICE}/deployments")).await;
        list.as_array().unwrap().len()
    };
    let api = &api;
    let delivery = |n: usize| async move {
        let (_, log) = api.get(&format!("{SERVICE}/hook/deliveries")).await;
        log.as_array().unwrap().iter().rev().nth(n).unwrap().clone()
    };

    // Nothing reported yet: the push waits.
    let reply = send("push", "p-1", push(PASSING)).await;
    assert_eq!(reply["results"][0]["outcome"], "waiting", "{reply}");
    assert_eq!(deployments().await, 0);
    // A check starts: still waiting.
    let token = api
        .platform
        .installation_token(installation)
        .await
        .unwrap()
        .token;
    let run = ci(
        &github,
        &token,
        reqwest::Method::POST,
        "/check-runs",
        json!({"name": "test", "head_sha": PASSING, "status": "in_progress"}),
    )
    .await;
    let suite = |sha: &str| {
        json!({"action": "completed", "check_suite": {"head_sha": sha}, "repository": {"id": 4242}})
            .to_string()
            .into_bytes()
    };
    send("check_suite", "c-1", suite(PASSING)).await;
    assert_eq!(deployments().await, 0);
    assert_eq!(delivery(0).await["reason"], "waiting for checks: test");
    // It passes: the push deploys, once, however many events say so.
    let run = format!("/check-runs/{}", run["id"]);
    ci(
        &github,
        &token,
        reqwest::Method::PATCH,
        &run,
        json!({"status": "completed", "conclusion": "success"}),
    )
    .await;
    let status_event = json!({"sha": PASSING, "state": "success", "repository": {"id": 4242}})
        .to_string()
        .into_bytes();
    send("status", "s-1", status_event.clone()).await;
    send("check_suite", "c-2", suite(PASSING)).await;
    assert_eq!(deployments().await, 1);
    let deployed = delivery(0).await;
    assert_eq!(deployed["outcome"], "deployed", "{deployed}");
    assert!(deployed["deployment_id"].is_i64(), "{deployed}");

    // A failing check: the push is not deployed, and says why.
    send("push", "p-2", push(FAILING)).await;
    ci(&github, &token, reqwest::Method::POST, "/check-runs", json!({"name": "lint", "head_sha": FAILING, "status": "completed", "conclusion": "failure"})).await;
    send("check_suite", "c-3", suite(FAILING)).await;
    let refused = delivery(1).await;
    assert_eq!(refused["outcome"], "ignored", "{refused}");
    assert_eq!(
        refused["reason"],
        "not deployed: check `lint` concluded failure"
    );
    assert_eq!(deployments().await, 1);

    // Checks that never finish: the deadline settles the push.
    send("push", "p-3", push(HANGING)).await;
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2);
    assert_eq!(api.store.expire_check_waits(later).await.unwrap(), 1);
    let expired = delivery(2).await;
    assert_eq!(expired["outcome"], "ignored", "{expired}");
    assert_eq!(deployments().await, 1);
}
