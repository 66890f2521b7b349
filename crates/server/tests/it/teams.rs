//! Users, teams, members, invitations and single-use links.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::harness::{Api, SIGNUP_DOMAIN};

const SIGNUP: (Method, &str) = (Method::POST, "/api/v1/auth/signup");
const RESET: (Method, &str) = (Method::POST, "/api/v1/auth/password-reset");

fn sign_up(token: Option<&str>, email: &str) -> Option<Value> {
    Some(json!({"token": token, "email": email, "name": "N", "password": "correct horse battery"}))
}

#[tokio::test]
async fn members_roles_invitations_and_the_last_owner() {
    use StatusCode as S;
    let api = Api::new().await;
    let (alice, _) = api.user("alice@example.com").await;
    let teams = (Method::POST, "/api/v1/teams");
    let team = api
        .expect(
            S::CREATED,
            Some(&alice),
            teams.clone(),
            Some(json!({"name": "crew"})),
        )
        .await;
    assert_eq!(team["role"], "owner");
    let taken = api
        .expect(
            S::CONFLICT,
            Some(&alice),
            teams.clone(),
            Some(json!({"name": "crew"})),
        )
        .await;
    assert!(taken.to_string().contains("not available"), "{taken}");
    let invalid = Some(json!({"name": "Not A Label"}));
    api.expect(S::UNPROCESSABLE_ENTITY, Some(&alice), teams, invalid)
        .await;

    // An invitation for one address: another cannot use it; it works once.
    let invite = (Method::POST, "/api/v1/teams/crew/invitations");
    let for_bob = Some(json!({"role": "admin", "email": "bob@example.com"}));
    let invitation = api
        .expect(S::CREATED, Some(&alice), invite.clone(), for_bob)
        .await;
    let link = invitation["link"]["token"].as_str().unwrap();
    let path = invitation["link"]["path"].as_str().unwrap();
    assert!(path.starts_with("/signup?token=hlvl_"), "{path}");
    let open = api
        .expect(S::OK, Some(&alice), (Method::GET, invite.1), None)
        .await;
    assert_eq!(open.as_array().unwrap().len(), 1);
    for (address, expected) in [
        ("eve@example.com", S::CONFLICT),
        ("bob@example.com", S::CREATED),
        ("bob@example.com", S::NOT_FOUND),
    ] {
        api.expect(expected, None, SIGNUP, sign_up(Some(link), address))
            .await;
    }
    let (bob, _) = api.user_token("bob@example.com").await;
    let members = (Method::GET, "/api/v1/teams/crew/members");
    let members = api.expect(S::OK, Some(&bob), members, None).await;
    let roles: Vec<(&str, &str)> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["email"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    let expected = [("alice@example.com", "owner"), ("bob@example.com", "admin")];
    assert_eq!(roles, expected);

    let role = |role: &str| Some(json!({"role": role}));
    let alice_in_crew = "/api/v1/teams/crew/members/alice@example.com";
    let bob_in_crew = "/api/v1/teams/crew/members/bob@example.com";
    let steps = [
        // An admin manages up to admin; only owners touch owners, and delete the team.
        (
            &bob,
            Method::PUT,
            alice_in_crew,
            role("member"),
            S::FORBIDDEN,
        ),
        (&bob, Method::PUT, bob_in_crew, role("owner"), S::FORBIDDEN),
        (
            &bob,
            Method::DELETE,
            "/api/v1/teams/crew",
            None,
            S::FORBIDDEN,
        ),
        // The last owner can neither be demoted nor leave…
        (
            &alice,
            Method::PUT,
            alice_in_crew,
            role("admin"),
            S::CONFLICT,
        ),
        (&alice, Method::DELETE, alice_in_crew, None, S::CONFLICT),
        // …until there is another.
        (&alice, Method::PUT, bob_in_crew, role("owner"), S::OK),
        (&alice, Method::DELETE, alice_in_crew, None, S::NO_CONTENT),
        (
            &alice,
            Method::GET,
            "/api/v1/teams/crew",
            None,
            S::NOT_FOUND,
        ),
    ];
    for (token, method, path, body, expected) in steps {
        api.expect(expected, Some(token), (method, path), body)
            .await;
    }

    // A signed-in user accepts an invitation; a personal team cannot be deleted; a team with
    // no projects can.
    let viewer = Some(json!({"role": "viewer"}));
    let invitation = api.expect(S::CREATED, Some(&bob), invite, viewer).await;
    let accept = (Method::POST, "/api/v1/invitations/accept");
    let token = Some(json!({"token": invitation["link"]["token"]}));
    let joined = api.expect(S::OK, Some(&alice), accept, token).await;
    assert_eq!(joined["role"], "viewer");
    let steps = [
        (&alice, "/api/v1/teams/alice", S::CONFLICT),
        (&bob, "/api/v1/teams/crew", S::NO_CONTENT),
    ];
    for (token, path, expected) in steps {
        api.expect(expected, Some(token), (Method::DELETE, path), None)
            .await;
    }

    let audit = api
        .expect(S::OK, Some(&alice), (Method::GET, "/api/v1/audit"), None)
        .await
        .to_string();
    for action in ["team.create", "team.invitation_create", "team.member_role"] {
        assert!(audit.contains(action), "{action} missing: {audit}");
    }
}

#[tokio::test]
async fn users_sign_up_and_reset_passwords_only_through_links_or_open_domains() {
    use StatusCode as S;
    let api = Api::new().await;
    // Before any user, the system (bootstrap) token creates the owner without a password: the
    // answer carries the link to set one.
    let (status, created) = api
        .post("/api/v1/users", json!({"email": "Owner@Example.com"}))
        .await;
    assert_eq!(status, S::CREATED, "{created}");
    assert_eq!(created["user"]["email"], "owner@example.com");
    assert_eq!(created["user"]["instance_admin"], true, "the first user");
    let link = created["password_link"]["token"].as_str().unwrap();
    let path = created["password_link"]["path"].as_str().unwrap();
    assert!(path.starts_with("/reset?token="), "{path}");
    for (password, expected) in [
        ("short", S::UNPROCESSABLE_ENTITY),
        ("correct horse battery", S::NO_CONTENT),
        ("correct horse battery", S::NOT_FOUND),
    ] {
        let body = Some(json!({"token": link, "password": password}));
        api.expect(expected, None, RESET, body).await;
    }
    let (_, users) = api.get("/api/v1/users").await;
    assert_eq!(users[0]["has_password"], true, "{users}");

    // The link opens a page with no token written into it, that no one may frame or cache.
    let request = Request::get(format!("/reset?token={link}%3Cscript%3E"));
    let response = api
        .router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap());
    let response = response.await.unwrap();
    assert_eq!(response.status(), S::OK);
    let headers = response.headers().clone();
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");
    let page = response.into_body().collect().await.unwrap().to_bytes();
    let page = String::from_utf8_lossy(&page);
    assert!(page.contains("/api/v1/auth/password-reset") && !page.contains(link));

    // Sign-up without a link: closed except to the configured domain.
    let open = format!("x@{SIGNUP_DOMAIN}");
    for (address, expected) in [
        ("x@elsewhere.example", S::FORBIDDEN),
        (open.as_str(), S::CREATED),
        (open.as_str(), S::CONFLICT),
    ] {
        let reply = api
            .expect(expected, None, SIGNUP, sign_up(None, address))
            .await;
        if expected == S::CREATED {
            assert_eq!(reply["instance_admin"], false);
        }
    }

    // A user who is not an instance administrator manages no users; one who is disables them,
    // and their tokens stop working.
    let (x, _) = api.user_token(&open).await;
    let users = (Method::GET, "/api/v1/users");
    api.expect(S::FORBIDDEN, Some(&x), users, None).await;
    let admin = Some(api.admin.as_str());
    let reset_link = format!("/api/v1/users/{open}/reset-link");
    let disable = format!("/api/v1/users/{open}/disable");
    api.expect(S::CREATED, admin, (Method::POST, &reset_link), None)
        .await;
    api.expect(S::NO_CONTENT, admin, (Method::POST, &disable), None)
        .await;
    let me = (Method::GET, "/api/v1/me");
    api.expect(S::UNAUTHORIZED, Some(&x), me, None).await;
}
