//! Deploys from CI without a stored secret: a local OpenID Connect issuer (its discovery
//! document and key set served by a small axum server, its keys made here) signs tokens as a
//! CI job would get them; a token that a service's trust covers queues a deployment of that
//! service, and every other one is refused with its reason and queues nothing.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use helvetia_core::auth::Actor;
use helvetia_core::edge::PublicUrl;
use helvetia_core::git::RepoPolicy;
use helvetia_core::name::{ProjectName, ServiceName};
use helvetia_core::service::{GitHubLink, ServiceInput, ServiceSettings};
use helvetia_store::services::NewService;
use helvetia_test_support::oidc::{SHA, TestIssuer, TestKey};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::harness::Api;

/// This server's public URL: the audience tokens must name.
const AUDIENCE: &str = "https://helvetia.example.com";

/// An API with a public URL whose outbound requests may reach the loopback issuer, a project
/// `demo` with services `web` and `api`.
async fn api() -> Api {
    let api = Api::configured(|settings| {
        settings.public_url = Some(PublicUrl::parse(AUDIENCE).unwrap());
        settings.repo_policy.destinations.allow_private = true;
    })
    .await;
    let admin = Some(api.admin.as_str());
    api.expect(
        StatusCode::CREATED,
        admin,
        (Method::POST, "/api/v1/projects"),
        Some(json!({"name": "demo"})),
    )
    .await;
    for name in ["web", "api"] {
        api.expect(
            StatusCode::CREATED,
            admin,
            (Method::POST, "/api/v1/projects/demo/services"),
            Some(json!({"name": name, "repo": "https://git.example.org/acme.git"})),
        )
        .await;
    }
    api
}

/// Makes `service` trust `issuer`'s tokens for `repository` on `main`.
async fn trust(api: &Api, service: &str, issuer: &TestIssuer, repository: &str) -> Value {
    api.expect(
        StatusCode::CREATED,
        Some(&api.admin),
        (
            Method::POST,
            &format!("/api/v1/projects/demo/services/{service}/trusts"),
        ),
        Some(json!({"issuer": issuer.url, "repository": repository, "ref": "refs/heads/main"})),
    )
    .await
}

/// A CI job's deploy of `service` with `token`.
async fn deploy(api: &Api, service: &str, token: &str) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/oidc/deploy")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"project": "demo", "service": service}).to_string(),
        ))
        .unwrap();
    api.send(request).await
}

/// The deployments queued for `service`.
async fn deployments(api: &Api, service: &str) -> Vec<Value> {
    let path = format!("/api/v1/projects/demo/services/{service}/deployments");
    let list = api
        .expect(StatusCode::OK, Some(&api.admin), (Method::GET, &path), None)
        .await;
    list.as_array().unwrap().clone()
}

fn message(reply: &Value) -> &str {
    reply["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_token_a_trust_covers_deploys_its_commit_and_every_other_is_refused() {
    let api = api().await;
    let key = TestKey::es256("key-1");
    let issuer = TestIssuer::start(&[&key]).await;
    let trusted = trust(&api, "web", &issuer, "acme/web").await;
    assert_eq!(trusted["ref"], "refs/heads/main");

    let (status, deployed) =
        deploy(&api, "web", &key.sign(&issuer.claims(AUDIENCE, json!({})))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{deployed}");
    assert_eq!(deployed["status"], "queued");
    assert_eq!(deployed["git_ref"], "main");
    assert_eq!(deployed["requested_commit"], SHA);
    let by = deployed["created_by"].as_str().unwrap();
    assert!(
        by.contains(&format!("trust:{}", trusted["id"]))
            && by.contains("repository=acme/web")
            && by.contains("ref=refs/heads/main")
            && by.contains("run_id=4242"),
        "{by}"
    );
    let audit = api
        .expect(
            StatusCode::OK,
            Some(&api.admin),
            (Method::GET, "/api/v1/audit"),
            None,
        )
        .await;
    let entry = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["action"] == "deployment.create")
        .unwrap();
    assert_eq!(entry["actor"], by);

    let stranger = TestKey::es256("key-1");
    let now = Timestamp::now().as_second();
    let refusals = [
        (
            "wrong repository",
            key.sign(&issuer.claims(AUDIENCE, json!({"repository": "acme/other"}))),
            StatusCode::FORBIDDEN,
            "`repository` claim is `acme/other`",
        ),
        (
            "wrong ref",
            key.sign(&issuer.claims(AUDIENCE, json!({"ref": "refs/heads/feature"}))),
            StatusCode::FORBIDDEN,
            "`ref` claim is `refs/heads/feature`",
        ),
        (
            "wrong audience",
            key.sign(&issuer.claims(AUDIENCE, json!({"aud": "https://elsewhere.example.com"}))),
            StatusCode::UNAUTHORIZED,
            "audience",
        ),
        (
            "expired",
            key.sign(&issuer.claims(AUDIENCE, json!({"exp": now - 3600, "nbf": now - 4000}))),
            StatusCode::UNAUTHORIZED,
            "expired",
        ),
        (
            "not yet valid",
            key.sign(&issuer.claims(AUDIENCE, json!({"nbf": now + 3600}))),
            StatusCode::UNAUTHORIZED,
            "not valid yet",
        ),
        (
            "an unknown key",
            TestKey::es256("key-unknown").sign(&issuer.claims(AUDIENCE, json!({}))),
            StatusCode::UNAUTHORIZED,
            "does not publish",
        ),
        (
            "another key under a published kid",
            stranger.sign(&issuer.claims(AUDIENCE, json!({}))),
            StatusCode::UNAUTHORIZED,
            "signature does not verify",
        ),
        (
            "another issuer",
            key.sign(&issuer.claims(
                AUDIENCE,
                json!({"iss": "https://token.actions.githubusercontent.com"}),
            )),
            StatusCode::FORBIDDEN,
            "trusts no token of issuer",
        ),
        (
            "not a JWT",
            "not-a-jwt".to_owned(),
            StatusCode::UNAUTHORIZED,
            "not a JWT",
        ),
    ];
    for (case, token, expected, reason) in refusals {
        let (status, reply) = deploy(&api, "web", &token).await;
        assert_eq!(status, expected, "{case}: {reply}");
        assert!(message(&reply).contains(reason), "{case}: {reply}");
    }
    assert_eq!(
        deployments(&api, "web").await.len(),
        1,
        "only the first deployed"
    );
}

#[tokio::test]
async fn a_trust_of_one_service_does_not_deploy_another() {
    let api = api().await;
    let key = TestKey::es256("key-1");
    let issuer = TestIssuer::start(&[&key]).await;
    trust(&api, "web", &issuer, "acme/web").await;
    let token = key.sign(&issuer.claims(AUDIENCE, json!({})));

    // `api` trusts nothing yet, then trusts another repository of the same issuer.
    let (status, reply) = deploy(&api, "api", &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    assert!(message(&reply).contains("trusts no token"), "{reply}");
    trust(&api, "api", &issuer, "acme/api").await;
    let (status, reply) = deploy(&api, "api", &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    assert!(message(&reply).contains("acme/api"), "{reply}");
    // A service that does not exist reads the same as one that trusts another issuer.
    let (status, reply) = deploy(&api, "nope", &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    assert!(deployments(&api, "api").await.is_empty());

    let (status, reply) = deploy(&api, "web", &token).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
}

#[tokio::test]
async fn a_key_rotation_is_picked_up_and_unknown_keys_refetch_at_a_pace() {
    let api = api().await;
    let old = TestKey::es256("key-old");
    let new = TestKey::rs256("key-new");
    let issuer = TestIssuer::start(&[&old]).await;
    trust(&api, "web", &issuer, "acme/web").await;
    let (status, reply) = deploy(&api, "web", &old.sign(&issuer.claims(AUDIENCE, json!({})))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    assert_eq!(issuer.key_set_reads(), 1);

    // The issuer rotates to an RSA key. Right after a read, a token naming a key the kept
    // set lacks does not make Helvetia read it again…
    let token = new.sign(&issuer.claims(AUDIENCE, json!({})));
    issuer.publish(&[&new]);
    let (status, reply) = deploy(&api, "web", &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
    assert!(message(&reply).contains("key-new"), "{reply}");
    assert_eq!(issuer.key_set_reads(), 1);

    // … once the pace allows, it does, once, and the new key verifies.
    tokio::time::sleep(helvetia_server::oidc::REFETCH_INTERVAL + Duration::from_millis(100)).await;
    let (status, reply) = deploy(&api, "web", &token).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    assert_eq!(issuer.key_set_reads(), 2);
    let (status, _) = deploy(&api, "web", &token).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        issuer.key_set_reads(),
        2,
        "a known key is not fetched again"
    );
    // The old key is gone from the issuer; the set kept no longer has it either.
    let (status, reply) = deploy(&api, "web", &old.sign(&issuer.claims(AUDIENCE, json!({})))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
}

#[tokio::test]
async fn trusts_are_validated_listed_removed_and_need_write() {
    let api = api().await;
    let path = "/api/v1/projects/demo/services/web/trusts";
    let admin = Some(api.admin.as_str());
    let added = api
        .expect(
            StatusCode::CREATED,
            admin,
            (Method::POST, path),
            Some(json!({"repository": "acme/web", "ref": "refs/tags/v*", "environment": "production"})),
        )
        .await;
    assert_eq!(added["issuer"], helvetia_core::oidc::GITHUB_ACTIONS_ISSUER);
    let refused = api
        .expect(
            StatusCode::UNPROCESSABLE_ENTITY,
            admin,
            (Method::POST, path),
            Some(
                json!({"issuer": "http://issuer.example.com", "repository": "acme", "ref": "main"}),
            ),
        )
        .await;
    for field in ["issuer", "repository", "ref"] {
        assert!(refused["error"]["fields"][field].is_string(), "{refused}");
    }
    let reader = api.token(&[helvetia_core::auth::Scope::Deploy]).await;
    api.expect(
        StatusCode::FORBIDDEN,
        Some(&reader),
        (Method::POST, path),
        Some(json!({"repository": "acme/web", "ref": "refs/heads/main"})),
    )
    .await;
    let listed = api
        .expect(StatusCode::OK, Some(&reader), (Method::GET, path), None)
        .await;
    assert_eq!(listed, json!([added]));
    let one = format!("{path}/{}", added["id"]);
    api.expect(StatusCode::NO_CONTENT, admin, (Method::DELETE, &one), None)
        .await;
    api.expect(StatusCode::NOT_FOUND, admin, (Method::DELETE, &one), None)
        .await;
    let listed = api
        .expect(StatusCode::OK, admin, (Method::GET, path), None)
        .await;
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn a_trust_of_a_linked_service_defaults_to_its_repository_and_binds_its_id() {
    let api = api().await;
    let team = api.store.default_team().await.unwrap();
    let project = ProjectName::parse("demo").unwrap();
    let name = ServiceName::parse("linked").unwrap();
    let input = ServiceInput {
        repo: Some("https://github.com/acme/linked.git".into()),
        ..ServiceInput::default()
    };
    let link = GitHubLink {
        installation_id: 1,
        repository_id: 4242,
        full_name: "acme/linked".into(),
    };
    api.store
        .create_service(
            &Actor::system(team, "test"),
            &NewService {
                project: &project,
                name: &name,
                settings: &ServiceSettings::create(&input, RepoPolicy::default()).unwrap(),
                runtime: &Default::default(),
                hostname: "linked.demo.localhost",
                github: Some(&link),
            },
        )
        .await
        .unwrap();
    let key = TestKey::es256("key-1");
    let issuer = TestIssuer::start(&[&key]).await;
    let path = "/api/v1/projects/demo/services/linked/trusts";
    // GitHub Actions' issuer, for the linked repository: its id is bound.
    let github = api
        .expect(
            StatusCode::CREATED,
            Some(&api.admin),
            (Method::POST, path),
            Some(json!({"ref": "refs/heads/main"})),
        )
        .await;
    assert_eq!(github["repository"], "acme/linked");
    assert_eq!(github["repository_id"], 4242);
    // Another issuer is trusted by name alone.
    let local = api
        .expect(
            StatusCode::CREATED,
            Some(&api.admin),
            (Method::POST, path),
            Some(json!({"issuer": issuer.url, "ref": "refs/heads/main"})),
        )
        .await;
    assert_eq!(local["repository_id"], Value::Null);
    // Without a link, the repository must be given.
    let refused = api
        .expect(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(&api.admin),
            (Method::POST, "/api/v1/projects/demo/services/web/trusts"),
            Some(json!({"ref": "refs/heads/main"})),
        )
        .await;
    assert!(
        refused["error"]["fields"]["repository"].is_string(),
        "{refused}"
    );

    let claims = json!({"repository": "acme/linked", "repository_id": "4242"});
    let token = key.sign(&issuer.claims(AUDIENCE, claims));
    let (status, reply) = deploy(&api, "linked", &token).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
}
