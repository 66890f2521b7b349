//! Personal API tokens: owned by a user, listed and revoked by their owner and by the admins of
//! a team they can act in — nobody else.

use axum::http::{Method, StatusCode};
use helvetia_core::auth::{Actor, Role};
use helvetia_core::name::TeamName;

use crate::harness::Api;

#[tokio::test]
async fn team_admins_list_and_revoke_the_tokens_that_act_in_their_team() {
    let api = Api::new().await;
    api.user("owner@example.com").await;
    let (alice, _) = api.user("alice@example.com").await;
    let (bob, bob_id) = api.user("bob@example.com").await;
    let (carol, _) = api.user("carol@example.com").await;
    let alices_team = api
        .store
        .team_by_name(&TeamName::parse("alice").unwrap())
        .await
        .unwrap()
        .unwrap();
    api.store
        .set_member(&Actor::system(alices_team.id, "test"), bob_id, Role::Member)
        .await
        .unwrap();

    // Bob's own listing holds his token, owned by him.
    let (status, own) = api
        .call(Method::GET, "/api/v1/tokens", Some(&bob), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let own = own.as_array().unwrap().clone();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0]["owner"], "bob@example.com");
    let bobs_token = own[0]["id"].as_i64().unwrap();

    // Alice administers her team, where Bob's token can act: she sees it; Bob, a member, may
    // not list the team's tokens; Carol, outside, is told the team does not exist.
    let (status, listed) = api
        .call(Method::GET, "/api/v1/tokens?team=alice", Some(&alice), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<i64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|token| token["id"].as_i64().unwrap())
        .collect();
    assert!(ids.contains(&bobs_token), "{listed}");
    let (status, _) = api
        .call(Method::GET, "/api/v1/tokens?team=alice", Some(&bob), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api
        .call(Method::GET, "/api/v1/tokens?team=alice", Some(&carol), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Carol cannot revoke Bob's token (nor learn it exists); Alice can, and it stops at once.
    let revoke = format!("/api/v1/tokens/{bobs_token}");
    let (status, _) = api.call(Method::DELETE, &revoke, Some(&carol), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.call(Method::GET, "/api/v1/me", Some(&bob), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api.call(Method::DELETE, &revoke, Some(&alice), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api.call(Method::GET, "/api/v1/me", Some(&bob), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The revocation is in Alice's team's log, with who did it.
    let (_, log) = api
        .call(Method::GET, "/api/v1/audit?team=alice", Some(&alice), None)
        .await;
    let revoked = log
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["action"] == "token.revoke")
        .cloned()
        .unwrap_or_default();
    assert!(
        revoked["actor"]
            .as_str()
            .is_some_and(|actor| actor.contains("alice@example.com")),
        "{log}"
    );
}

#[tokio::test]
async fn a_token_cannot_carry_more_than_the_credential_that_makes_it() {
    let api = Api::new().await;
    let (alice, _) = api.user("alice@example.com").await;
    let (status, created) = api
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&alice),
            Some(serde_json::json!({"name": "ci", "scopes": ["deploy"], "team": "alice"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["team"], "alice");
    let (status, me) = api
        .call(Method::GET, "/api/v1/me", created["token"].as_str(), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["user"]["email"], "alice@example.com");
    assert_eq!(me["teams"].as_array().unwrap().len(), 1);
    // A deploy token may not mint tokens at all (the route needs `admin`).
    let (status, _) = api
        .call(
            Method::POST,
            "/api/v1/tokens",
            created["token"].as_str(),
            Some(serde_json::json!({"name": "more", "scopes": ["admin"]})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A team the user is not in cannot be the limit.
    let (status, _) = api
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&alice),
            Some(serde_json::json!({"name": "x", "scopes": ["read"], "team": "nope"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
