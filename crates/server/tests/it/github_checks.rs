//! What Helvetia writes on and reads from a commit through the App: its own commit statuses,
//! and CI's verdict (statuses and check runs) for services that wait for CI.

use helvetia_core::checks::Verdict;
use helvetia_core::commit_status::{CommitState, CommitStatus};
use helvetia_core::service::GitHubLink;
use helvetia_test_support::github::FakeGitHub;
use serde_json::{Value, json};

use crate::github_signin::setup;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

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
