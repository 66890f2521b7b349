use helvetia_core::account::Email;
use helvetia_core::auth::{Actor, Role, token_hash};
use helvetia_store::StoreError;
use helvetia_store::audit::AuditBy;
use helvetia_store::links::{LinkKind, NewLink};
use helvetia_store::users::NewUser;
use jiff::{SignedDuration, Timestamp};

use crate::backend::TestDb;

fn email(address: &str) -> Email {
    Email::parse(address).unwrap()
}

async fn user(db: &TestDb, address: &str) -> helvetia_core::account::User {
    let new = NewUser {
        email: email(address),
        name: address.into(),
        password_hash: None,
        instance_admin: false,
    };
    db.store
        .create_user(AuditBy::default(), &new)
        .await
        .unwrap()
}

fn link(kind: LinkKind, secret: &str, valid_for: SignedDuration) -> NewLink {
    NewLink {
        kind,
        hash: token_hash(secret),
        team: None,
        role: None,
        user: None,
        email: None,
        expires_at: Timestamp::now().checked_add(valid_for).unwrap(),
    }
}

fn unusable(result: Result<impl std::fmt::Debug, StoreError>) {
    assert!(matches!(result, Err(StoreError::NotFound(_))), "{result:?}");
}

/// A reset link sets the password once, however many requests race for it; an expired one
/// and one of another kind set nothing; a sign-up link works only while nobody has an account.
pub async fn a_link_works_once_and_not_after_it_expires(db: &TestDb) {
    let hour = SignedDuration::from_hours(1);
    let bootstrap = link(LinkKind::Signup, "hlvl_bootstrap", hour);
    db.store
        .create_link(AuditBy::default(), &bootstrap)
        .await
        .unwrap();
    let owner = user(db, "owner@example.com").await;
    // The first-start link is the first owner's: someone else made that account, so it is spent.
    unusable(
        db.store
            .sign_up_with_link(
                &token_hash("hlvl_bootstrap"),
                Some(email("eve@example.com")),
                "Eve".into(),
                "hash".into(),
                None,
            )
            .await,
    );
    let reset = NewLink {
        user: Some(owner.id),
        ..link(LinkKind::Reset, "hlvl_reset", hour)
    };
    db.store
        .create_link(AuditBy::default(), &reset)
        .await
        .unwrap();
    let attempts = (0..4).map(|n| {
        let store = db.store.clone();
        async move {
            store
                .reset_password(&token_hash("hlvl_reset"), &format!("hash-{n}"), None)
                .await
        }
    });
    let results = futures::future::join_all(attempts).await;
    assert_eq!(
        results.iter().filter(|result| result.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(db.store.user(owner.id).await.unwrap().has_password);

    let expired = NewLink {
        user: Some(owner.id),
        ..link(LinkKind::Reset, "hlvl_expired", -hour)
    };
    db.store
        .create_link(AuditBy::default(), &expired)
        .await
        .unwrap();
    unusable(
        db.store
            .reset_password(&token_hash("hlvl_expired"), "hash", None)
            .await,
    );
    // A sign-up link does not reset a password, nor a reset link sign anyone up.
    db.store
        .create_link(
            AuditBy::default(),
            &link(LinkKind::Signup, "hlvl_signup", hour),
        )
        .await
        .unwrap();
    unusable(
        db.store
            .reset_password(&token_hash("hlvl_signup"), "hash", None)
            .await,
    );
    let new_reset = NewLink {
        user: Some(owner.id),
        ..link(LinkKind::Reset, "hlvl_reset_2", hour)
    };
    db.store
        .create_link(AuditBy::default(), &new_reset)
        .await
        .unwrap();
    unusable(
        db.store
            .sign_up_with_link(
                &token_hash("hlvl_reset_2"),
                Some(email("eve@example.com")),
                "Eve".into(),
                "hash".into(),
                None,
            )
            .await,
    );
}

/// An invitation joins its team with its role, for its address only, once; a revoked one
/// joins no one.
pub async fn invitations_join_once_and_only_their_address(db: &TestDb) {
    let owner = user(db, "owner@example.com").await;
    let team = db.store.personal_team(owner.id).await.unwrap().unwrap();
    let actor = Actor::system(team, "test");
    let week = SignedDuration::from_hours(7 * 24);
    let invitation = NewLink {
        team: Some(team),
        role: Some(Role::Admin),
        email: Some(email("bob@example.com")),
        ..link(LinkKind::Invite, "hlvl_invite", week)
    };
    db.store
        .create_link(AuditBy::from(&actor), &invitation)
        .await
        .unwrap();
    let listed = db.store.invitations(team).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].role, Role::Admin);
    let hash = token_hash("hlvl_invite");
    let sign_up = |address: &str| {
        db.store.sign_up_with_link(
            &hash,
            Some(email(address)),
            "Bob".into(),
            "hash".into(),
            None,
        )
    };
    assert!(matches!(
        sign_up("eve@example.com").await,
        Err(StoreError::Conflict(_))
    ));
    let bob = sign_up("bob@example.com").await.unwrap();
    assert_eq!(
        db.store.memberships(bob.id).await.unwrap().get(&team),
        Some(&Role::Admin)
    );
    unusable(sign_up("bob@example.com").await);
    assert!(db.store.invitations(team).await.unwrap().is_empty());

    let revoked = NewLink {
        team: Some(team),
        role: Some(Role::Viewer),
        ..link(LinkKind::Invite, "hlvl_revoked", week)
    };
    let id = db
        .store
        .create_link(AuditBy::from(&actor), &revoked)
        .await
        .unwrap();
    db.store.revoke_invitation(&actor, id).await.unwrap();
    let carol = user(db, "carol@example.com").await;
    unusable(
        db.store
            .accept_invitation(&token_hash("hlvl_revoked"), &carol, AuditBy::default())
            .await,
    );
    assert!(
        !db.store
            .memberships(carol.id)
            .await
            .unwrap()
            .contains_key(&team)
    );
}
