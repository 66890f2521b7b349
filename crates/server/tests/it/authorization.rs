//! Authorization, decided once: a user of one team walks every operation of the API against
//! another team's things and reaches none of them; roles and token scopes limit what a member
//! may do.

use axum::http::{Method, StatusCode};
use helvetia_server::api::auth::{PUBLIC_ROUTES, operations};
use serde_json::{Value, json};

use crate::harness::Api;

/// What one user owns: a project with a service, a deployment, a secret variable, a token,
/// an invitation, a trust in an OpenID Connect issuer, a notification channel.
struct Holdings {
    token: String,
    email: String,
    team: String,
    project: String,
    deployment: i64,
    token_id: i64,
    invitation: i64,
    trust: i64,
    user_id: i64,
}

async fn holdings(api: &Api, local: &str, project: &str) -> Holdings {
    let email = format!("{local}@example.com");
    let (token, user) = api.user(&email).await;
    let call = |method: Method, path: String, body: Value| {
        let token = token.clone();
        async move {
            let (status, reply) = api.call(method, &path, Some(&token), Some(body)).await;
            assert!(status.is_success(), "{path}: {status} {reply}");
            reply
        }
    };
    call(
        Method::POST,
        "/api/v1/projects".into(),
        json!({"name": project}),
    )
    .await;
    let base = format!("/api/v1/projects/{project}/services/web");
    call(
        Method::POST,
        format!("/api/v1/projects/{project}/services"),
        json!({"name": "web", "repo": "https://e.org/a.git"}),
    )
    .await;
    let deployment = call(Method::POST, format!("{base}/deployments"), json!({})).await;
    let secret = format!("{project}-secret-value");
    call(
        Method::PUT,
        format!("{base}/env"),
        json!({"vars": [{"name": "API_KEY", "value": secret, "secret": true}]}),
    )
    .await;
    call(
        Method::PUT,
        format!("/api/v1/projects/{project}/env"),
        json!({"vars": [{"name": "SHARED", "value": secret, "secret": true}]}),
    )
    .await;
    call(
        Method::POST,
        format!("{base}/volumes"),
        json!({"name": "data", "path": "/data"}),
    )
    .await;
    let created = call(
        Method::POST,
        "/api/v1/tokens".into(),
        json!({"name": format!("{local}-ci"), "scopes": ["deploy"]}),
    )
    .await;
    let invitation = call(
        Method::POST,
        format!("/api/v1/teams/{local}/invitations"),
        json!({"role": "member"}),
    )
    .await;
    let trust = call(
        Method::POST,
        format!("{base}/trusts"),
        json!({"repository": format!("{local}/web"), "ref": "refs/heads/main"}),
    )
    .await;
    call(
        Method::POST,
        format!("/api/v1/projects/{project}/notifications"),
        json!({"name": "ops", "kind": "slack", "events": ["deploy_failed"],
               "url": "https://hooks.invalid/services/secret"}),
    )
    .await;
    Holdings {
        token,
        email,
        team: local.to_owned(),
        project: project.to_owned(),
        deployment: deployment["id"].as_i64().unwrap(),
        token_id: created["id"].as_i64().unwrap(),
        invitation: invitation["invitation"]["id"].as_i64().unwrap(),
        trust: trust["id"].as_i64().unwrap(),
        user_id: user.0,
    }
}

/// Operations that name nothing of a team in their path and answer for the caller alone: B
/// calling them must see only B's things.
const PER_CALLER: &[(Method, &str)] = &[
    (Method::GET, "/api/v1/me"),
    (Method::GET, "/api/v1/tokens"),
    (Method::POST, "/api/v1/tokens"),
    (Method::GET, "/api/v1/projects"),
    (Method::POST, "/api/v1/projects"),
    (Method::GET, "/api/v1/services"),
    (Method::GET, "/api/v1/teams"),
    (Method::POST, "/api/v1/teams"),
    (Method::GET, "/api/v1/audit"),
    (Method::GET, "/metrics"),
    (Method::POST, "/api/v1/invitations/accept"),
    // Approves a device login for the caller itself: the token it yields is the caller's.
    (Method::POST, "/api/v1/auth/device/approve"),
    // The caller's own account: its password and second factor.
    (Method::POST, "/api/v1/me/password"),
    (Method::POST, "/api/v1/me/totp"),
    (Method::POST, "/api/v1/me/totp/confirm"),
    (Method::DELETE, "/api/v1/me/totp"),
    // Linking the caller's own account to GitHub, and what the caller reaches on GitHub (with
    // the caller's own GitHub authorization: GitHub decides, by installation).
    (Method::POST, "/api/v1/me/github"),
    (Method::GET, "/api/v1/github/installations"),
    (
        Method::GET,
        "/api/v1/github/installations/{installation}/repositories",
    ),
];

/// Operations for instance administrators only.
const INSTANCE: &[(Method, &str)] = &[
    (Method::GET, "/api/v1/users"),
    (Method::POST, "/api/v1/users"),
    (Method::POST, "/api/v1/signing-keys"),
    (Method::GET, "/api/v1/github/app"),
    (Method::PUT, "/api/v1/github/app"),
    (Method::POST, "/api/v1/github/app/manifest"),
    (Method::GET, "/api/v1/github/deliveries"),
    (Method::GET, "/api/v1/certificates"),
    (Method::GET, "/api/v1/disk"),
    (Method::POST, "/api/v1/disk/sweep"),
];

/// A body that passes validation, so a refusal is about whose the thing is.
fn valid_body(method: &Method, path: &str, a: &Holdings) -> Option<Value> {
    let body = match (method.as_str(), path.rsplit('/').next().unwrap_or_default()) {
        ("POST", "services") => json!({"name": "api", "repo": "https://e.org/a.git"}),
        ("PATCH", "{service}") => json!({"branch": "dev"}),
        ("PUT", "env") => json!({"vars": [{"name": "X", "value": "y"}]}),
        ("DELETE", "env") => json!({"names": ["API_KEY"]}),
        ("POST", "dotenv") => json!({"dotenv": "X=y\n"}),
        ("POST", "volumes") => json!({"name": "cache", "path": "/cache"}),
        ("POST", "notifications") => json!({
            "name": "mine", "kind": "webhook", "events": ["deploy_failed"],
            "url": "https://hooks.invalid/b",
        }),
        ("POST", "trusts") => json!({"repository": "bob/web", "ref": "refs/heads/main"}),
        ("POST", "previews") => json!({"branch": "main"}),
        ("POST", "domains") => json!({"name": "shop.example.test", "force": true}),
        ("PUT", "basic-auth") => json!({"user": "bob", "password": "bobs-password"}),
        ("PUT", "hsts") => json!({"include_subdomains": true}),
        // A CI job's deploy of A's service, with B's API token instead of a CI token.
        ("POST", "deploy") => json!({"project": a.project, "service": "web"}),
        ("PUT", "{member}") => json!({"role": "viewer"}),
        ("POST", "invitations") => json!({"role": "viewer"}),
        ("POST", "projects") => json!({"name": a.project}),
        ("POST", "teams") => json!({"name": a.team}),
        ("POST", "tokens") => json!({"name": "mine", "scopes": ["read"], "team": a.team}),
        ("POST", "accept") => json!({"token": "hlvl_not-an-invitation"}),
        ("POST", "users") => json!({"email": "new@example.com"}),
        ("PUT", "app") => json!({
            "app_id": 1, "client_id": "c", "client_secret": "s", "private_key": "k",
            "webhook_secret": "w",
        }),
        ("POST" | "PUT" | "PATCH", _) => json!({}),
        _ => return None,
    };
    Some(body)
}

/// `path` with its parameters naming A's things.
fn aimed_at(path: &str, a: &Holdings) -> String {
    let mut url = path.to_owned();
    for (parameter, value) in [
        ("{project}", a.project.clone()),
        ("{service}", "web".to_owned()),
        ("{team}", a.team.clone()),
        ("{member}", a.email.clone()),
        ("{user}", a.email.clone()),
        ("{name}", "API_KEY".to_owned()),
        ("{volume}", "data".to_owned()),
        ("{installation}", "1".to_owned()),
        ("{trust}", a.trust.to_string()),
        ("{channel}", "ops".to_owned()),
        ("{hook}", "no-such-hook".to_owned()),
        ("{source}", "gitea".to_owned()),
        ("{preview}", "pr-1".to_owned()),
        ("{domain}", "shop.example.test".to_owned()),
        ("{token}", "no-such-token".to_owned()),
    ] {
        url = url.replace(parameter, &value);
    }
    let id = if path.starts_with("/api/v1/deployments/") {
        a.deployment
    } else if path.starts_with("/api/v1/tokens/") {
        a.token_id
    } else {
        a.invitation
    };
    let url = url.replace("{id}", &id.to_string());
    assert!(
        !url.contains('{'),
        "the walk does not know a parameter of {path}"
    );
    url
}

#[tokio::test]
async fn another_teams_things_are_out_of_reach_through_every_operation() {
    let api = Api::new().await;
    let a = holdings(&api, "alice", "alpha").await;
    let b = holdings(&api, "bob", "bravo").await;
    let markers = [
        a.project.as_str(),
        a.email.as_str(),
        "alpha-secret-value",
        "alice-ci",
    ];
    let document = helvetia_server::api::openapi();
    let ops = operations(&document);
    let mut aimed = 0;
    for (path, method, _) in &ops {
        let public = PUBLIC_ROUTES.iter().any(|(m, p)| m == method && p == path);
        // Public routes name nothing of a team either: they too must show B nothing of A's.
        let per_caller = public || PER_CALLER.iter().any(|(m, p)| m == method && p == path);
        let instance = INSTANCE.iter().any(|(m, p)| m == method && p == path);
        let url = aimed_at(path, &a);
        let body = valid_body(method, path, &a);
        let (status, reply) = api.call(method.clone(), &url, Some(&b.token), body).await;
        let text = reply.to_string();
        if per_caller && status == StatusCode::CONFLICT {
            // Creating a name A has: taken, without saying by whom.
            let message = reply["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("not available"),
                "{method} {path}: {message}"
            );
            assert!(!message.contains('@'), "{method} {path}: {message}");
        } else if per_caller {
            assert!(
                !status.is_server_error(),
                "{method} {path}: {status} {reply}"
            );
            for marker in markers {
                assert!(
                    !text.contains(marker),
                    "{method} {path} showed B `{marker}`: {text}"
                );
            }
        } else if instance {
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {reply}");
        } else {
            assert!(
                path.contains('{'),
                "{method} {path} is not classified: add it to PER_CALLER or INSTANCE"
            );
            assert!(
                status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN,
                "B reached A's thing: {method} {url}: {status} {reply}"
            );
            aimed += 1;
        }
    }
    assert!(aimed >= 50, "only {aimed} operations aimed at A's things");
    // A's things are all still there, unchanged.
    let (_, services) = api
        .call(
            Method::GET,
            &format!("/api/v1/projects/{}/services", a.project),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(services.as_array().unwrap().len(), 1, "{services}");
    let (status, secret) = api
        .call(
            Method::GET,
            "/api/v1/projects/alpha/services/web/env/API_KEY/reveal",
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(secret.to_string().contains("alpha-secret-value"));
    let (_, members) = api
        .call(
            Method::GET,
            "/api/v1/teams/alice/members",
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(members.as_array().unwrap().len(), 1, "{members}");
    let (_, tokens) = api
        .call(Method::GET, "/api/v1/tokens", Some(&a.token), None)
        .await;
    assert!(tokens.to_string().contains("alice-ci"));
    assert_ne!(a.user_id, b.user_id);
}

/// Signs up `email` through invitation `link` and answers an admin token of theirs.
async fn join(api: &Api, link: &Value, email: &str) -> String {
    let token = link["token"].as_str().unwrap();
    let (status, reply) = api
        .call(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(json!({"token": token, "email": email, "name": "Someone", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let (token, _) = api.user_token(email).await;
    token
}

#[tokio::test]
async fn roles_limit_deploys_member_management_and_secrets() {
    let api = Api::new().await;
    let a = holdings(&api, "alice", "alpha").await;
    let invite = |role: &'static str| {
        let token = a.token.clone();
        let api = &api;
        async move {
            let (status, reply) = api
                .call(
                    Method::POST,
                    "/api/v1/teams/alice/invitations",
                    Some(&token),
                    Some(json!({"role": role})),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{reply}");
            reply["link"].clone()
        }
    };
    let viewer = join(&api, &invite("viewer").await, "vera@example.com").await;
    let member = join(&api, &invite("member").await, "max@example.com").await;
    let deploy = "/api/v1/projects/alpha/services/web/deployments";
    let (status, reply) = api
        .call(Method::POST, deploy, Some(&viewer), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a viewer deploys: {reply}");
    let (status, _) = api.call(Method::GET, deploy, Some(&viewer), None).await;
    assert_eq!(status, StatusCode::OK, "a viewer reads");
    let (status, _) = api
        .call(Method::POST, deploy, Some(&member), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "a member deploys");
    let (status, reply) = api
        .call(
            Method::PUT,
            "/api/v1/teams/alice/members/vera@example.com",
            Some(&member),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a member manages members: {reply}"
    );
    let (status, _) = api
        .call(
            Method::POST,
            "/api/v1/teams/alice/invitations",
            Some(&member),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a member invites");
    let reveal = "/api/v1/projects/alpha/services/web/env/API_KEY/reveal";
    let (status, _) = api.call(Method::GET, reveal, Some(&member), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a member reveals a secret");
    let channels = "/api/v1/projects/alpha/notifications";
    let (status, _) = api
        .call(
            Method::POST,
            channels,
            Some(&viewer),
            Some(
                json!({"name": "mine", "kind": "slack", "events": ["deploy_failed"],
                        "url": "https://hooks.invalid/x"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a viewer adds a channel");
    let (status, _) = api
        .call(
            Method::POST,
            &format!("{channels}/ops/test"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a viewer sends a test");
    let (status, _) = api.call(Method::GET, channels, Some(&viewer), None).await;
    assert_eq!(status, StatusCode::OK, "a viewer reads the channels");

    // The owner's deploy-scoped token deploys but cannot reveal secrets.
    let (_, created) = api
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&a.token),
            Some(json!({"name": "deployer", "scopes": ["deploy"]})),
        )
        .await;
    let deployer = created["token"].as_str().unwrap();
    let (status, _) = api
        .call(Method::POST, deploy, Some(deployer), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, reply) = api.call(Method::GET, reveal, Some(deployer), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    assert!(!reply.to_string().contains("alpha-secret-value"));
}
