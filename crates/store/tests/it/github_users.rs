use helvetia_core::account::Email;
use helvetia_core::auth::token_hash;
use helvetia_store::StoreError;
use helvetia_store::audit::AuditBy;
use helvetia_store::env::Resealed;
use helvetia_store::github_users::{NewGitHubAuthorization, SealedGitHubToken};
use helvetia_store::sealed::SealedAt;
use helvetia_store::users::NewUser;
use jiff::{SignedDuration, Timestamp};

use crate::backend::TestDb;

fn new_user(address: &str) -> NewUser {
    NewUser {
        email: Email::parse(address).unwrap(),
        name: address.into(),
        password_hash: None,
        instance_admin: false,
    }
}

/// An authorization's `state` is taken once, however many callbacks race for it; a GitHub
/// account links to one user only, found by its id and never by e-mail.
pub async fn a_github_state_works_once_and_a_github_id_links_one_user(db: &TestDb) {
    let store = &db.store;
    let new = NewGitHubAuthorization {
        state_hash: token_hash("state"),
        browser_hash: token_hash("browser"),
        verifier_sealed: "sealed".into(),
        user: None,
        expires_at: Timestamp::now()
            .checked_add(SignedDuration::from_mins(10))
            .unwrap(),
    };
    store.start_github_authorization(&new).await.unwrap();
    let takes =
        futures::future::join_all((0..4).map(|_| store.take_github_authorization(&new.state_hash)))
            .await;
    let taken: Vec<_> = takes.into_iter().filter_map(Result::unwrap).collect();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].browser_hash, new.browser_hash);
    assert_eq!(taken[0].user, None);

    let ada = store
        .create_github_user(AuditBy::default(), &new_user("ada@example.com"), 42, "ada")
        .await
        .unwrap();
    assert_eq!(
        store.user_by_github_id(42).await.unwrap().unwrap().id,
        ada.id
    );
    assert!(store.user_by_github_id(43).await.unwrap().is_none());
    let bob = store
        .create_user(AuditBy::default(), &new_user("bob@example.com"))
        .await
        .unwrap();
    let taken = store
        .link_github(AuditBy::default(), bob.id, 42, "ada")
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    store
        .link_github(AuditBy::default(), bob.id, 43, "bob")
        .await
        .unwrap();
    assert_eq!(
        store.user_by_github_id(43).await.unwrap().unwrap().id,
        bob.id
    );

    assert!(store.github_token(bob.id).await.unwrap().is_none());
    let token = SealedGitHubToken {
        sealed: "sealed-token".into(),
        expires_at: Some(Timestamp::from_millisecond(1_900_000_000_000).unwrap()),
    };
    store.set_github_token(bob.id, &token).await.unwrap();
    let kept = store.github_token(bob.id).await.unwrap().unwrap();
    assert_eq!(kept.sealed, "sealed-token");
    assert_eq!(kept.expires_at, token.expires_at);

    // A master key rotation finds these sealed values and writes them back in one go.
    let sealed = store.sealed_values().await.unwrap();
    assert!(sealed.contains(&(SealedAt::GithubToken(bob.id.0), "sealed-token".into())));
    assert!(sealed.contains(&(
        SealedAt::GithubAuthorization(new.state_hash.clone()),
        "sealed".into()
    )));
    let resealed = Resealed {
        elsewhere: sealed
            .into_iter()
            .map(|(at, value)| (at, format!("re-{value}")))
            .collect(),
        ..Resealed::default()
    };
    store.reseal_secrets(&resealed, "next").await.unwrap();
    let kept = store.github_token(bob.id).await.unwrap().unwrap();
    assert_eq!(kept.sealed, "re-sealed-token");
    assert_eq!(
        store.master_key_id().await.unwrap().as_deref(),
        Some("next")
    );
}
