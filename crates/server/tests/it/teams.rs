//! Users, teams, members, invitations and single-use links.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::harness::{Api, SIGNUP_DOMAIN};

#[tokio::test]
async fn members_roles_invitations_and_the_last_owner() {
    let api = Api::new().await;
    let (alice, _) = api.user("alice@example.com").await;
    let call = |method: Method, path: &str, token: &str, body: Option<Value>| {
        let path = path.to_owned();
        let token = token.to_owned();
        let api = &api;
        async move { api.call(method, &path, Some(&token), body).await }
    };
    let (status, team) = call(
        Method::POST,
        "/api/v1/teams",
        &alice,
        Some(json!({"name": "crew"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    assert_eq!(team["role"], "owner");
    let (status, reply) = call(
        Method::POST,
        "/api/v1/teams",
        &alice,
        Some(json!({"name": "crew"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not available")
    );
    let (status, _) = call(
        Method::POST,
        "/api/v1/teams",
        &alice,
        Some(json!({"name": "Not A Label"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // An invitation for one address: another cannot use it; it works once.
    let (_, invitation) = call(
        Method::POST,
        "/api/v1/teams/crew/invitations",
        &alice,
        Some(json!({"role": "admin", "email": "bob@example.com"})),
    )
    .await;
    let link = invitation["link"]["token"].as_str().unwrap().to_owned();
    assert!(
        invitation["link"]["path"]
            .as_str()
            .unwrap()
            .starts_with("/signup?token=hlvl_")
    );
    let (_, open) = call(Method::GET, "/api/v1/teams/crew/invitations", &alice, None).await;
    assert_eq!(open.as_array().unwrap().len(), 1);
    let signup = |email: &str| json!({"token": link, "email": email, "name": "Bob", "password": "correct horse battery"});
    let (status, _) = api
        .call(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(signup("eve@example.com")),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "another address");
    let (status, _) = api
        .call(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(signup("bob@example.com")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = api
        .call(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(signup("bob@example.com")),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a used link");
    let (bob, _) = api.user_token("bob@example.com").await;
    let (_, members) = call(Method::GET, "/api/v1/teams/crew/members", &bob, None).await;
    let roles: Vec<(&str, &str)> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["email"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        roles,
        [("alice@example.com", "owner"), ("bob@example.com", "admin")]
    );

    // An admin manages up to admin; only owners touch owners.
    let (status, _) = call(
        Method::PUT,
        "/api/v1/teams/crew/members/alice@example.com",
        &bob,
        Some(json!({"role": "member"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        Method::PUT,
        "/api/v1/teams/crew/members/bob@example.com",
        &bob,
        Some(json!({"role": "owner"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(Method::DELETE, "/api/v1/teams/crew", &bob, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an admin deletes the team");

    // The last owner can neither be demoted nor leave.
    let (status, reply) = call(
        Method::PUT,
        "/api/v1/teams/crew/members/alice@example.com",
        &alice,
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    let (status, _) = call(
        Method::DELETE,
        "/api/v1/teams/crew/members/alice@example.com",
        &alice,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // With a second owner, she can.
    let (status, _) = call(
        Method::PUT,
        "/api/v1/teams/crew/members/bob@example.com",
        &alice,
        Some(json!({"role": "owner"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        Method::DELETE,
        "/api/v1/teams/crew/members/alice@example.com",
        &alice,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "alice leaves");
    let (status, _) = call(Method::GET, "/api/v1/teams/crew", &alice, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A signed-in user accepts an invitation; a personal team cannot be deleted; a team with
    // no projects can.
    let (_, invitation) = call(
        Method::POST,
        "/api/v1/teams/crew/invitations",
        &bob,
        Some(json!({"role": "viewer"})),
    )
    .await;
    let (status, joined) = call(
        Method::POST,
        "/api/v1/invitations/accept",
        &alice,
        Some(json!({"token": invitation["link"]["token"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    assert_eq!(joined["role"], "viewer");
    let (status, _) = call(Method::DELETE, "/api/v1/teams/alice", &alice, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "a personal team");
    let (status, _) = call(Method::DELETE, "/api/v1/teams/crew", &bob, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (_, audit) = call(Method::GET, "/api/v1/audit", &alice, None).await;
    let actions = audit.to_string();
    for action in ["team.create", "team.invitation_create", "team.member_role"] {
        assert!(actions.contains(action), "{action} missing: {actions}");
    }
}

#[tokio::test]
async fn users_sign_up_and_reset_passwords_only_through_links_or_open_domains() {
    let api = Api::new().await;
    // Before any user, the system (bootstrap) token creates the owner without a password: the
    // answer carries the link to set one.
    let (status, created) = api
        .post("/api/v1/users", json!({"email": "Owner@Example.com"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["user"]["email"], "owner@example.com");
    assert_eq!(created["user"]["instance_admin"], true, "the first user");
    let link = created["password_link"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        created["password_link"]["path"]
            .as_str()
            .unwrap()
            .starts_with("/reset?token=")
    );
    let reset = |password: &str| json!({"token": link, "password": password});
    let (status, _) = api
        .call(
            Method::POST,
            "/api/v1/auth/password-reset",
            None,
            Some(reset("short")),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = api
        .call(
            Method::POST,
            "/api/v1/auth/password-reset",
            None,
            Some(reset("correct horse battery")),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api
        .call(
            Method::POST,
            "/api/v1/auth/password-reset",
            None,
            Some(reset("correct horse battery")),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a link works once");
    let (_, users) = api.get("/api/v1/users").await;
    assert_eq!(users[0]["has_password"], true, "{users}");
    // The link opens a page with no token written into it, that no one may frame or cache.
    let response = api
        .router
        .clone()
        .oneshot(
            Request::get(format!("/reset?token={link}%3Cscript%3E"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");
    let page = response.into_body().collect().await.unwrap().to_bytes();
    let page = String::from_utf8_lossy(&page);
    assert!(page.contains("/api/v1/auth/password-reset") && !page.contains(&link));

    // Sign-up without a link: closed except to the configured domain.
    let body =
        |email: &str| json!({"email": email, "name": "N", "password": "correct horse battery"});
    let (status, reply) = api
        .call(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(body("x@elsewhere.example")),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    let (status, user) = api
        .call(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(body(&format!("x@{SIGNUP_DOMAIN}"))),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(user["instance_admin"], false);
    let (status, _) = api
        .call(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(body(&format!("x@{SIGNUP_DOMAIN}"))),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // A user who is not an instance administrator manages no users.
    let (x, _) = api.user_token(&format!("x@{SIGNUP_DOMAIN}")).await;
    let (status, _) = api.call(Method::GET, "/api/v1/users", Some(&x), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, link) = api
        .call(
            Method::POST,
            &format!("/api/v1/users/x@{SIGNUP_DOMAIN}/reset-link"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/api/v1/users/x@{SIGNUP_DOMAIN}/disable"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api.call(Method::GET, "/api/v1/me", Some(&x), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a disabled user's token");
}
