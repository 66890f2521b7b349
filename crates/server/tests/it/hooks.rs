//! Deploys on push through a service's own receiver: signatures (Gitea, Forgejo, GitLab, the
//! generic scheme), refusals that deploy nothing and are logged, duplicates and redeliveries,
//! branches, tags and deletions, watch paths (diffed against a real local repository when the
//! payload cannot tell), and the settings API.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use helvetia_core::webhook::signature;
use helvetia_test_support::FixtureRepo;
use serde_json::{Value, json};

use crate::harness::Api;

pub(crate) const A: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
pub(crate) const B: &str = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";
const ZERO: &str = "0000000000000000000000000000000000000000";
pub(crate) const SERVICE: &str = "/api/v1/projects/demo/services/web";

/// Service `demo/web` with a receiver: its path (without the source) and secret.
pub(crate) async fn receiver(api: &Api) -> (String, String) {
    api.demo_service("web").await;
    new_secret(api).await
}

/// A new receiver URL and secret for `demo/web`.
async fn new_secret(api: &Api) -> (String, String) {
    let made = api
        .expect(
            StatusCode::CREATED,
            Some(&api.admin),
            (Method::POST, &format!("{SERVICE}/hook/secret")),
            None,
        )
        .await;
    let url = made["receiver_url"].as_str().unwrap();
    let path = &url[url.find("/api/v1/hooks/").unwrap()..];
    (path.to_owned(), made["secret"].as_str().unwrap().to_owned())
}

pub(crate) async fn deliver(
    api: &Api,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    api.send(request.body(Body::from(body)).unwrap()).await
}

pub(crate) fn gitea_push(branch: &str, after: &str, files: &[&str]) -> Vec<u8> {
    json!({
        "ref": format!("refs/heads/{branch}"), "before": A, "after": after,
        "compare_url": "https://gitea.example/o/r/compare/6113728f27ae...0d1a26e67d8f",
        "commits": [{"id": after, "message": "Fix the thing\n", "added": files, "removed": [], "modified": []}],
        "total_commits": 1,
        "head_commit": {"id": after, "message": "Fix the thing\n"},
        "pusher": {"login": "ada", "username": "ada"},
        "repository": {"id": 7, "full_name": "o/r"}
    })
    .to_string()
    .into_bytes()
}

/// Gitea's headers for `body` signed with `secret`, as delivery `id`.
pub(crate) fn gitea(secret: &str, id: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![
        ("x-gitea-event", "push".into()),
        ("x-gitea-delivery", id.into()),
        (
            "x-gitea-signature",
            signature::github(secret.as_bytes(), body)[7..].to_owned(),
        ),
    ]
}

async fn deliveries(api: &Api) -> Vec<Value> {
    let (status, log) = api.get(&format!("{SERVICE}/hook/deliveries")).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    log.as_array().unwrap().clone()
}

pub(crate) async fn deployments(api: &Api) -> Vec<Value> {
    let (_, list) = api.get(&format!("{SERVICE}/deployments")).await;
    list.as_array().unwrap().clone()
}

#[tokio::test]
async fn a_signed_push_deploys_exactly_its_commit_once() {
    let api = Api::new().await;
    let (path, secret) = receiver(&api).await;
    let path = format!("{path}/gitea");
    let body = gitea_push("main", B, &["src/a.rs"]);
    let (status, receipt) = deliver(&api, &path, &gitea(&secret, "d-1", &body), body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{receipt}");
    let result = &receipt["results"][0];
    assert_eq!(result["outcome"], "deployed", "{receipt}");
    let deployment = result["deployment_id"].as_i64().unwrap();
    let listed = deployments(&api).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], deployment);
    assert_eq!(listed[0]["requested_commit"], B);
    assert_eq!(listed[0]["git_ref"], "main");
    assert_eq!(listed[0]["created_by"], "gitea push by ada");
    let log = deliveries(&api).await;
    assert_eq!(log[0]["outcome"], "deployed");
    assert_eq!(log[0]["signature"], "valid");
    assert_eq!(log[0]["delivery_id"], "d-1");
    assert_eq!(log[0]["deployment_id"], deployment);
    assert_eq!(log[0]["pusher"], "ada");
    assert_eq!(log[0]["message"], "Fix the thing");
    assert_eq!(log[0]["commit"], B);
    assert!(
        log[0]["compare_url"]
            .as_str()
            .unwrap()
            .starts_with("https://gitea.example/")
    );

    // The same delivery again (a redelivery of one that deployed) does nothing.
    let (status, receipt) = deliver(&api, &path, &gitea(&secret, "d-1", &body), body).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(receipt["results"][0]["outcome"], "duplicate", "{receipt}");
    assert_eq!(deployments(&api).await.len(), 1);
    let log = deliveries(&api).await;
    assert_eq!(log[0]["outcome"], "duplicate");
    assert_eq!(log[0]["deployment_id"], deployment);
}

#[tokio::test]
async fn forged_unsigned_tampered_oversized_and_other_ref_deliveries_deploy_nothing() {
    let api = Api::new().await;
    let (path, secret) = receiver(&api).await;
    let path = format!("{path}/gitea");
    let body = gitea_push("main", B, &["a"]);
    let unsigned = vec![
        ("x-gitea-event", "push".to_owned()),
        ("x-gitea-delivery", "u".to_owned()),
    ];
    let forged = gitea("not-the-secret", "f", &body);
    let tampered = gitea(&secret, "t", &gitea_push("main", A, &["a"]));
    for (headers, body) in [
        (unsigned, body.clone()),
        (forged, body.clone()),
        (tampered, body.clone()),
    ] {
        let (status, reply) = deliver(&api, &path, &headers, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
        assert_eq!(reply["error"]["code"], "invalid_signature");
    }
    let oversized = vec![b' '; 4 * 1024 * 1024 + 1];
    let (status, reply) = deliver(&api, &path, &gitea(&secret, "o", &oversized), oversized).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{reply}");
    for (id, body) in [
        ("branch", gitea_push("dev", B, &["a"])),
        (
            "tag",
            json!({"ref": "refs/tags/v1", "before": ZERO, "after": B})
                .to_string()
                .into_bytes(),
        ),
        (
            "deleted",
            json!({"ref": "refs/heads/main", "before": B, "after": ZERO})
                .to_string()
                .into_bytes(),
        ),
    ] {
        let (status, reply) = deliver(&api, &path, &gitea(&secret, id, &body), body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
        assert_eq!(reply["results"][0]["outcome"], "ignored", "{reply}");
    }
    assert!(deployments(&api).await.is_empty());
    let log = deliveries(&api).await;
    let seen: Vec<(&str, &str, &str)> = log
        .iter()
        .rev()
        .map(|d| {
            (
                d["outcome"].as_str().unwrap(),
                d["signature"].as_str().unwrap(),
                d["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("refused", "missing", "no signature"),
            ("refused", "invalid", "the signature does not match"),
            ("refused", "invalid", "the signature does not match"),
            (
                "refused",
                "unchecked",
                "the body is over the receiver's limit"
            ),
            (
                "ignored",
                "valid",
                "pushed to branch `dev`; the service deploys `main`"
            ),
            (
                "ignored",
                "valid",
                "tag `v1` pushed: only pushes to a branch deploy"
            ),
            ("ignored", "valid", "branch `main` was deleted"),
        ]
    );

    // The refused forgery's id, redelivered with a valid signature, is processed.
    let (status, reply) = deliver(&api, &path, &gitea(&secret, "f", &body), body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    assert_eq!(reply["results"][0]["outcome"], "deployed", "{reply}");
    assert_eq!(deployments(&api).await.len(), 1);

    // An unknown receiver is a 404, and logs nothing anywhere.
    let (status, _) = deliver(&api, "/api/v1/hooks/nope/gitea", &[], b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn forgejo_gitlab_and_generic_deliveries_verify() {
    let api = Api::new().await;
    let (path, secret) = receiver(&api).await;
    let forgejo = gitea_push("main", B, &["x"]);
    let headers = vec![
        ("x-forgejo-event", "push".to_owned()),
        ("x-forgejo-delivery", "fj-1".to_owned()),
        (
            "x-forgejo-signature",
            signature::github(secret.as_bytes(), &forgejo)[7..].to_owned(),
        ),
    ];
    let (status, reply) = deliver(&api, &format!("{path}/forgejo"), &headers, forgejo).await;
    assert_eq!(
        (status, &reply["results"][0]["outcome"]),
        (StatusCode::ACCEPTED, &json!("deployed")),
        "{reply}"
    );

    let gitlab = json!({
        "object_kind": "push", "ref": "refs/heads/main", "before": A, "after": B,
        "user_username": "grace", "project": {"web_url": "https://gitlab.example/o/r"},
        "commits": [{"id": B, "message": "lab", "added": [], "modified": ["x"], "removed": []}],
        "total_commits_count": 1
    })
    .to_string()
    .into_bytes();
    let token = |value: &str| {
        vec![
            ("x-gitlab-event", "Push Hook".to_owned()),
            ("x-gitlab-token", value.to_owned()),
        ]
    };
    let (status, _) = deliver(
        &api,
        &format!("{path}/gitlab"),
        &token("wrong"),
        gitlab.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, reply) = deliver(&api, &format!("{path}/gitlab"), &token(&secret), gitlab).await;
    assert_eq!(
        (status, &reply["results"][0]["outcome"]),
        (StatusCode::ACCEPTED, &json!("deployed")),
        "{reply}"
    );

    let generic = format!(r#"{{"ref":"main","after":"{B}","pusher":"ci"}}"#).into_bytes();
    let signed = |at: i64| {
        vec![
            ("x-helvetia-timestamp", at.to_string()),
            (
                "x-helvetia-signature-256",
                signature::generic(secret.as_bytes(), at, &generic),
            ),
        ]
    };
    let now = jiff::Timestamp::now().as_second();
    let (status, _) = deliver(
        &api,
        &format!("{path}/generic"),
        &signed(now - 3600),
        generic.clone(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "an old signature is a replay"
    );
    let (status, reply) = deliver(&api, &format!("{path}/generic"), &signed(now), generic).await;
    assert_eq!(
        (status, &reply["results"][0]["outcome"]),
        (StatusCode::ACCEPTED, &json!("deployed")),
        "{reply}"
    );

    let log = deliveries(&api).await;
    let seen: Vec<(&str, &str)> = log
        .iter()
        .rev()
        .map(|d| {
            (
                d["source"].as_str().unwrap(),
                d["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("forgejo", "deployed"),
            ("gitlab", "refused"),
            ("gitlab", "deployed"),
            ("generic", "refused"),
            ("generic", "deployed"),
        ]
    );
    assert_eq!(log[1]["signature"], "expired");
    // Each push superseded the one queued before it.
    let statuses: Vec<_> = deployments(&api)
        .await
        .iter()
        .map(|d| d["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        [json!("queued"), json!("superseded"), json!("superseded")]
    );
}

/// Waits until the newest delivery is no longer `waiting`.
async fn settled(api: &Api) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let newest = deliveries(api).await[0].clone();
        if newest["outcome"] != "waiting" {
            return newest;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still waiting: {newest}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn watch_paths_skip_pushes_outside_them_and_a_force_push_is_diffed() {
    let api = Api::configured(|settings| settings.repo_policy.allow_local = true).await;
    let repo = FixtureRepo::new("web");
    api.post("/api/v1/projects", json!({"name": "demo"})).await;
    let (status, reply) = api
        .post(
            "/api/v1/projects/demo/services",
            json!({"name": "web", "repo": repo.url()}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let (path, secret) = new_secret(&api).await;
    let path = format!("{path}/gitea");
    let (status, reply) = api
        .call(
            Method::PATCH,
            &format!("{SERVICE}/hook"),
            Some(&api.admin),
            Some(json!({"watch_paths": ["src/**"]})),
        )
        .await;
    assert_eq!(
        (status, &reply["watch_paths"]),
        (StatusCode::OK, &json!(["src/**"])),
        "{reply}"
    );

    // The payload lists the files: only docs changed.
    let listed = gitea_push("main", B, &["docs/guide.md"]);
    let (_, reply) = deliver(&api, &path, &gitea(&secret, "l", &listed), listed).await;
    assert_eq!(reply["results"][0]["outcome"], "ignored", "{reply}");
    assert!(
        reply["results"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("watch paths (src/**)")
    );

    // Force pushes list nothing useful: Helvetia diffs the real commits.
    let force = |before: &str, after: &str, id: &str| {
        let body = json!({
            "ref": "refs/heads/main", "before": before, "after": after, "forced": true,
            "commits": [], "total_commits": 0, "pusher": {"login": "ada"}
        })
        .to_string()
        .into_bytes();
        (gitea(&secret, id, &body), body)
    };
    let first = repo.head();
    repo.write("docs/guide.md", "words\n", "docs only");
    let docs = repo.head();
    let (headers, body) = force(&first, &docs, "force-docs");
    let (status, reply) = deliver(&api, &path, &headers, body).await;
    assert_eq!(
        (status, &reply["results"][0]["outcome"]),
        (StatusCode::ACCEPTED, &json!("waiting")),
        "{reply}"
    );
    let done = settled(&api).await;
    assert_eq!(done["outcome"], "ignored", "{done}");
    assert!(deployments(&api).await.is_empty());

    repo.write("src/app.txt", "code\n", "code");
    let code = repo.head();
    let (headers, body) = force(&docs, &code, "force-code");
    deliver(&api, &path, &headers, body).await;
    let done = settled(&api).await;
    assert_eq!(done["outcome"], "deployed", "{done}");
    assert_eq!(
        deployments(&api).await[0]["requested_commit"],
        code.as_str()
    );

    // A commit the repository does not have cannot be diffed: the push deploys.
    let (headers, body) = force(A, B, "force-unknown");
    deliver(&api, &path, &headers, body).await;
    assert_eq!(settled(&api).await["outcome"], "deployed");
}

#[tokio::test]
async fn the_settings_and_the_secret_through_the_api() {
    let api = Api::new().await;
    api.demo_service("web").await;
    let hook = format!("{SERVICE}/hook");
    let view = api
        .expect(StatusCode::OK, Some(&api.admin), (Method::GET, &hook), None)
        .await;
    assert_eq!(
        view,
        json!({"auto_deploy": true, "watch_paths": [], "cancel_running": false, "wait_for_ci": false, "receiver_url": null})
    );
    let (path, secret) = new_secret(&api).await;
    let view = api
        .expect(StatusCode::OK, Some(&api.admin), (Method::GET, &hook), None)
        .await;
    assert!(
        view["receiver_url"]
            .as_str()
            .unwrap()
            .ends_with(path.as_str())
    );
    assert!(
        !view.to_string().contains(&secret),
        "the secret is shown once"
    );

    let invalid = api
        .expect(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(&api.admin),
            (Method::PATCH, &hook),
            Some(json!({"watch_paths": ["src/["]})),
        )
        .await;
    assert!(
        invalid["error"]["fields"]["watch_paths"].is_string(),
        "{invalid}"
    );
    api.expect(
        StatusCode::OK,
        Some(&api.admin),
        (Method::PATCH, &hook),
        Some(json!({"auto_deploy": false})),
    )
    .await;
    let body = gitea_push("main", B, &["a"]);
    let (_, reply) = deliver(
        &api,
        &format!("{path}/gitea"),
        &gitea(&secret, "1", &body),
        body.clone(),
    )
    .await;
    assert_eq!(
        reply["results"][0]["reason"],
        "auto-deploy is off for this service"
    );

    // A new secret: the old URL and secret stop working.
    let reader = api.token(&[helvetia_core::auth::Scope::Read]).await;
    api.expect(
        StatusCode::FORBIDDEN,
        Some(&reader),
        (Method::POST, &format!("{hook}/secret")),
        None,
    )
    .await;
    let (new_path, _) = new_secret(&api).await;
    assert_ne!(new_path, path);
    let (status, _) = deliver(
        &api,
        &format!("{path}/gitea"),
        &gitea(&secret, "2", &body),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
