//! The GitHub App's webhook: verified with the App's secret (GitHub's documented test
//! vector), `ping` answered, a push routed to every service linked to its repository, a
//! redelivery of an acted-on delivery a duplicate.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use helvetia_core::auth::Actor;
use helvetia_core::git::{GitRef, RepoPolicy, RepoUrl};
use helvetia_core::name::{ProjectName, ServiceName};
use helvetia_core::runtime::RuntimeSettings;
use helvetia_core::service::{GitHubLink, RepoPath, ServiceSettings};
use helvetia_core::webhook::signature;
use helvetia_store::services::NewService;
use serde_json::{Value, json};

use crate::harness::Api;

const PRIVATE_KEY: &str = include_str!("../../../engine/src/github/test-app-key.pem");
const SECRET: &str = "It's a Secret to Everybody";
pub(crate) const WEBHOOK: &str = "/api/v1/github/webhook";
const B: &str = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";

pub(crate) async fn deliver(
    api: &Api,
    event: &str,
    guid: &str,
    signature: &str,
    body: &[u8],
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(Method::POST)
        .uri(WEBHOOK)
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", guid)
        .header("x-hub-signature-256", signature)
        .body(Body::from(body.to_vec()))
        .unwrap();
    api.send(request).await
}

/// Services `demo/web` and `demo/api` linked to GitHub repository 7001, `demo/other` to 7002.
async fn linked_services(api: &Api) {
    api.post("/api/v1/projects", json!({"name": "demo"})).await;
    let team = api.store.default_team().await.unwrap();
    let actor = Actor::system(team, "test");
    let demo = ProjectName::parse("demo").unwrap();
    let settings = ServiceSettings {
        source: helvetia_core::service::ServiceSource::Repository(
            RepoUrl::parse("https://github.com/acme/shop.git", RepoPolicy::default()).unwrap(),
        ),
        branch: GitRef::parse("main").unwrap(),
        dockerfile: RepoPath::parse("Dockerfile").unwrap(),
        context: RepoPath::parse(".").unwrap(),
        port: None,
    };
    let runtime = RuntimeSettings::default();
    for (name, repository_id) in [("web", 7001), ("api", 7001), ("other", 7002)] {
        let link = GitHubLink {
            installation_id: 1,
            repository_id,
            full_name: "acme/shop".into(),
        };
        let name = ServiceName::parse(name).unwrap();
        let new = NewService {
            project: &demo,
            name: &name,
            settings: &settings,
            runtime: &runtime,
            hostname: &format!("{name}.demo.localhost"),
            github: Some(&link),
        };
        api.store.create_service(&actor, &new).await.unwrap();
    }
}

#[tokio::test]
async fn the_apps_webhook_verifies_answers_ping_and_routes_pushes_by_repository() {
    let api = Api::new().await;
    let app = json!({
        "app_id": 1, "client_id": "Iv1.c", "client_secret": "s", "private_key": PRIVATE_KEY,
        "webhook_secret": SECRET,
    });
    let (status, reply) = api
        .call(
            Method::PUT,
            "/api/v1/github/app",
            Some(&api.admin),
            Some(app),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");

    // GitHub's documented test vector, delivered as a ping.
    let vector = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let (status, reply) = deliver(&api, "ping", "g-0", vector, b"Hello, World!").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let (status, reply) = deliver(&api, "ping", "g-0", vector, b"Hello, World?").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");

    linked_services(&api).await;
    let push = |repository: i64, branch: &str| {
        json!({
            "ref": format!("refs/heads/{branch}"),
            "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246", "after": B,
            "created": false, "deleted": false, "forced": false,
            "compare": "https://github.com/acme/shop/compare/6113728f27ae...0d1a26e67d8f",
            "commits": [{"id": B, "message": "Ship it", "added": ["a"], "removed": [], "modified": []}],
            "head_commit": {"id": B, "message": "Ship it"},
            "pusher": {"name": "octocat", "email": "octocat@example.com"},
            "repository": {"id": repository, "full_name": "acme/shop"},
            "installation": {"id": 1}
        })
        .to_string()
        .into_bytes()
    };
    // `demo/api` watches a directory the push does not touch.
    let (status, reply) = api
        .call(
            Method::PATCH,
            "/api/v1/projects/demo/services/api/hook",
            Some(&api.admin),
            Some(json!({"watch_paths": ["docs/"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let body = push(7001, "main");
    let signed = signature::github(SECRET.as_bytes(), &body);
    let (status, reply) = deliver(&api, "push", "g-1", &signed, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let reached: Vec<(&str, &str)> = reply["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["service"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(reached, [("demo/web", "deployed"), ("demo/api", "ignored")]);
    let (_, deployments) = api
        .get("/api/v1/projects/demo/services/web/deployments")
        .await;
    assert_eq!(deployments[0]["requested_commit"], B, "{deployments}");
    assert_eq!(deployments[0]["created_by"], "github push by octocat");
    for service in ["api", "other"] {
        let path = format!("/api/v1/projects/demo/services/{service}/deployments");
        assert_eq!(api.get(&path).await.1, json!([]), "{service}");
    }

    // GitHub's "Redeliver" reuses the GUID: nothing is deployed again.
    let (_, reply) = deliver(&api, "push", "g-1", &signed, &body).await;
    assert_eq!(reply["results"][0]["outcome"], "duplicate", "{reply}");
    let (_, log) = api
        .get("/api/v1/projects/demo/services/web/hook/deliveries")
        .await;
    let outcomes: Vec<_> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["outcome"].clone())
        .collect();
    assert_eq!(outcomes, [json!("duplicate"), json!("deployed")]);
    assert_eq!(log[1]["source"], "github");
    assert_eq!(log[1]["pusher"], "octocat");

    // A push to another branch is acknowledged and ignored, with the reason in each log.
    let body = push(7001, "feature");
    let signed = signature::github(SECRET.as_bytes(), &body);
    let (_, reply) = deliver(&api, "push", "g-2", &signed, &body).await;
    assert_eq!(
        reply["results"][0]["reason"],
        "pushed to branch `feature`; the service deploys `main`"
    );
    // A repository no service is linked to reaches nobody.
    let body = push(9999, "main");
    let signed = signature::github(SECRET.as_bytes(), &body);
    let (status, reply) = deliver(&api, "push", "g-3", &signed, &body).await;
    assert_eq!(
        (status, reply["results"].clone()),
        (StatusCode::ACCEPTED, json!([]))
    );

    // What reached no service is in the App's own log, for instance administrators.
    let (status, log) = api.get("/api/v1/github/deliveries").await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let seen: Vec<(&str, &str)> = log
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|d| {
            (
                d["outcome"].as_str().unwrap(),
                d["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("ignored", "ping: the App's webhook reaches Helvetia"),
            ("refused", "the signature does not match"),
            ("ignored", "no service is linked to repository 9999"),
        ]
    );
}
