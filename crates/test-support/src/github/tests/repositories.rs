//! The git endpoint, write-backs, webhook deliveries and the control API.

use super::super::{AppCredentials, FakeGitHub};
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{client, json_of, mint_token};

fn bare_repository() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let git = |cwd: &std::path::Path, args: &[&str]| {
        let output = std::process::Command::new("git")
            .args(["-c", "user.name=T", "-c", "user.email=t@example.org"])
            .args(args)
            .current_dir(cwd)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
    };
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(work.join("README"), "hello\n").unwrap();
    git(&work, &["init", "--quiet", "--initial-branch=main"]);
    git(&work, &["add", "README"]);
    git(&work, &["commit", "--quiet", "--message", "first"]);
    git(
        dir.path(),
        &["clone", "--quiet", "--bare", "work", "site.git"],
    );
    let bare = dir.path().join("site.git");
    (dir, bare)
}

/// How a clone hands git the installation token.
enum Credentials<'a> {
    None,
    /// `http.extraHeader`, sent with every request.
    Header(&'a str),
    /// A credential helper, asked after the first 401.
    Helper(&'a str),
}

/// `git clone url` into a fresh directory, credentials given through the environment; whether
/// it succeeded.
async fn clone(url: &str, credentials: Credentials<'_>) -> bool {
    let into = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new("git");
    command
        .args(["clone", "--quiet", url])
        .arg(into.path().join("clone"))
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    match credentials {
        Credentials::None => {}
        Credentials::Header(token) => {
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
            command
                .env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env(
                    "GIT_CONFIG_VALUE_0",
                    format!("Authorization: Basic {basic}"),
                );
        }
        Credentials::Helper(token) => {
            let helper = "!f() { echo username=x-access-token; echo \"password=$FAKE_TOKEN\"; }; f";
            command
                .env("FAKE_TOKEN", token)
                .env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "credential.helper")
                .env("GIT_CONFIG_VALUE_0", helper);
        }
    }
    let output = command.output().await.unwrap();
    output.status.success() && into.path().join("clone/README").exists()
}

#[tokio::test]
async fn a_private_repository_clones_with_an_unexpired_installation_token_only() {
    let github = FakeGitHub::start().await;
    let (_dir, bare) = bare_repository();
    let installation = github.add_installation(
        "acme",
        &[
            ("site", Some(bare.clone()), true),
            ("open", Some(bare), false),
        ],
    );
    let other = github.add_installation("elsewhere", &[]);
    let app = github.create_app("Helvetia").await;
    let mint = |installation| mint_token(&github, &app, installation);
    let token = mint(installation).await;
    let private = format!("{}/acme/site.git", github.web_url());

    assert!(!clone(&private, Credentials::None).await, "anonymous");
    let unknown = Credentials::Header("ghs_madeup");
    assert!(!clone(&private, unknown).await, "an unknown token");
    let elsewhere = mint(other).await;
    let elsewhere = Credentials::Header(&elsewhere);
    assert!(
        !clone(&private, elsewhere).await,
        "another installation's token"
    );
    assert!(clone(&private, Credentials::Header(&token)).await);
    assert!(clone(&private, Credentials::Helper(&token)).await);
    let public = format!("{}/acme/open.git", github.web_url());
    assert!(clone(&public, Credentials::None).await);
    github.expire_tokens();
    assert!(
        !clone(&private, Credentials::Header(&token)).await,
        "an expired token"
    );
    assert!(
        github.requests().iter().all(|r| !r.uri.contains(&token)),
        "the token never travels in a URL"
    );
}

#[tokio::test]
async fn an_app_writes_statuses_check_runs_and_comments_on_granted_repositories() {
    let github = FakeGitHub::start().await;
    let http = client();
    let app = github.create_app("Helvetia").await;
    let installation = github.add_installation("acme", &[("site", None, true)]);
    let other = github.add_installation("elsewhere", &[("other", None, true)]);
    let mint = |installation| mint_token(&github, &app, installation);
    let token = mint(installation).await;
    let repo = format!("{}/repos/acme/site", github.api_url());
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let send = |method: reqwest::Method, url: String, body: Value, token: &str| {
        let request = http.request(method, url).bearer_auth(token).json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, repository) = send(reqwest::Method::GET, repo.clone(), Value::Null, &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(repository["default_branch"], "main");
    let post = reqwest::Method::POST;
    let statuses = format!("{repo}/statuses/{sha}");
    for (state, context) in [("pending", "ci"), ("success", "ci"), ("failure", "lint")] {
        let body =
            json!({"state": state, "context": context, "target_url": "https://ci.example/1"});
        let (status, created) = send(post.clone(), statuses.clone(), body, &token).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(created["creator"]["login"], format!("{}[bot]", app.slug));
    }
    let (status, _) = send(
        post.clone(),
        statuses.clone(),
        json!({"state": "odd"}),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let combined = http
        .get(format!("{repo}/commits/{sha}/status"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(combined.headers()["x-ratelimit-limit"], "5000");
    let combined = json_of(combined).await;
    assert_eq!(combined["state"], "failure");
    assert_eq!(combined["total_count"], 2, "the latest status per context");
    assert_eq!(combined["statuses"][0]["state"], "failure");
    assert_eq!(combined["statuses"][1]["state"], "success");
    assert_eq!(github.statuses("acme/site", sha).len(), 3);

    let (status, run) = send(
        post.clone(),
        format!("{repo}/check-runs"),
        json!({"name": "build", "head_sha": sha, "status": "in_progress"}),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(run["status"], "in_progress");
    let (status, run) = send(
        reqwest::Method::PATCH,
        format!("{repo}/check-runs/{}", run["id"]),
        json!({"conclusion": "success"}),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (run["status"].as_str(), run["conclusion"].as_str()),
        (Some("completed"), Some("success"))
    );
    let runs = http
        .get(format!("{repo}/commits/{sha}/check-runs"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let runs = json_of(runs).await;
    assert_eq!(runs["total_count"], 1);
    assert_eq!(runs["check_runs"][0]["conclusion"], "success");

    let (status, comment) = send(
        post.clone(),
        format!("{repo}/issues/7/comments"),
        json!({"body": "Deploying…"}),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = send(
        reqwest::Method::PATCH,
        format!("{repo}/issues/comments/{}", comment["id"]),
        json!({"body": "Deployed: https://pr-7.example"}),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let comments = github.comments("acme/site", 7);
    assert_eq!(comments.len(), 1, "updated in place");
    assert_eq!(comments[0]["body"], "Deployed: https://pr-7.example");

    let elsewhere = mint(other).await;
    let (status, _) = send(
        post.clone(),
        statuses.clone(),
        json!({"state": "success"}),
        &elsewhere,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another installation's repository"
    );
    let (status, _) = send(post, statuses, json!({"state": "success"}), "ghs_madeup").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn webhook_deliveries_are_signed_and_redelivered_with_their_guid() {
    use axum::http::HeaderMap;
    use std::sync::{Arc, Mutex};

    let github = FakeGitHub::start().await;
    let app = github.create_app("Helvetia").await;
    let received: Arc<Mutex<Vec<(HeaderMap, axum::body::Bytes)>>> = Arc::default();
    let seen = received.clone();
    let receiver = axum::Router::new().route(
        "/hooks",
        axum::routing::post(
            move |headers: HeaderMap, body: axum::body::Bytes| async move {
                seen.lock().unwrap().push((headers, body));
                StatusCode::ACCEPTED
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let payload = json!({"ref": "refs/heads/main", "after": "abc"});
    let (guid, status) = github
        .deliver_with_guid(&url, "push", payload.clone())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(github.redeliver(&url, &guid).await, StatusCode::ACCEPTED);
    let received = received.lock().unwrap();
    assert_eq!(received.len(), 2);
    for (headers, body) in received.iter() {
        assert_eq!(headers["x-github-event"], "push");
        assert_eq!(headers["x-github-delivery"], guid.as_str());
        assert!(
            headers["user-agent"]
                .to_str()
                .unwrap()
                .starts_with("GitHub-Hookshot/")
        );
        let expected = super::super::signature(&app.webhook_secret, body);
        assert_eq!(headers["x-hub-signature-256"], expected.as_str());
        assert_eq!(serde_json::from_slice::<Value>(body).unwrap(), payload);
    }
}

#[tokio::test]
async fn the_control_api_sets_the_fake_up_for_tests_in_another_process() {
    let github = FakeGitHub::start().await;
    let http = client();
    let control = |path: &str, body: Value| {
        let request = http
            .post(format!("{}/_fake/{path}", github.web_url()))
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, user) = control(
        "users",
        json!({"login": "bob", "email": "bob@example.org", "orgs": ["acme"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(user["id"].is_i64());
    let (status, _) = control("sign-in", json!({"login": "nobody"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = control("sign-in", json!({"login": "bob"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let repos = json!({"account": "acme", "repos": [{"name": "site", "private": true}]});
    let (_, installation) = control("installations", repos).await;
    let (status, app) = control("apps", json!({"name": "Helvetia"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let app = serde_json::from_value::<AppCredentials>(app.clone()).unwrap();
    let token = mint_token(&github, &app, installation["id"].as_i64().unwrap()).await;
    let tokens = json_of(
        http.get(format!("{}/_fake/tokens", github.web_url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(tokens, json!([token]));
    let (status, _) = control("expire-tokens", json!(null)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let listed = http
        .get(format!("{}/installation/repositories", github.api_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::UNAUTHORIZED);
}
