//! Sessions, refresh-token families, signing keys and the use-once rules of credentials.

use helvetia_core::account::Email;
use helvetia_core::auth::UserId;
use helvetia_store::audit::AuditBy;
use helvetia_store::sessions::{NewSession, Refresh};
use helvetia_store::users::NewUser;
use jiff::{SignedDuration, Timestamp};

use crate::backend::TestDb;

/// Now, to the millisecond: what the store keeps of a time.
fn now_ms() -> Timestamp {
    Timestamp::from_millisecond(Timestamp::now().as_millisecond()).unwrap()
}

async fn user(db: &TestDb, email: &str) -> UserId {
    let new = NewUser {
        email: Email::parse(email).unwrap(),
        name: email.into(),
        password_hash: Some("$argon2id$stored-as-given".into()),
        instance_admin: false,
    };
    db.store
        .create_user(AuditBy::default(), &new)
        .await
        .unwrap()
        .id
}

fn new_session(user: UserId, refresh_hash: &str) -> NewSession {
    NewSession {
        user,
        expires_at: Timestamp::now() + SignedDuration::from_hours(1),
        refresh_hash: refresh_hash.into(),
        client: Some("192.0.2.1".into()),
        user_agent: None,
    }
}

pub async fn refresh_tokens_rotate_and_reuse_revokes_the_family(db: &TestDb) {
    let store = &db.store;
    let ada = user(db, "ada@example.com").await;
    let session = store
        .start_session(AuditBy::default(), &new_session(ada, "r1"))
        .await
        .unwrap();
    let now = Timestamp::now();
    assert!(
        store
            .session_caller(session, ada, now)
            .await
            .unwrap()
            .is_some()
    );
    let rotated = store
        .rotate_refresh_token("r1", "r2", AuditBy::default(), now)
        .await
        .unwrap();
    assert_eq!(rotated, Refresh::Rotated { session, user: ada });
    let unknown = store
        .rotate_refresh_token("nope", "x", AuditBy::default(), now)
        .await
        .unwrap();
    assert_eq!(unknown, Refresh::Invalid);
    let reused = store
        .rotate_refresh_token("r1", "r3", AuditBy::default(), now)
        .await
        .unwrap();
    assert_eq!(reused, Refresh::Reused { session });
    let after = store
        .rotate_refresh_token("r2", "r4", AuditBy::default(), now)
        .await
        .unwrap();
    assert_eq!(after, Refresh::Invalid, "the family is revoked");
    assert!(
        store
            .session_caller(session, ada, now)
            .await
            .unwrap()
            .is_none()
    );

    // A session ends at its absolute expiry, refreshed or not.
    let other = store
        .start_session(AuditBy::default(), &new_session(ada, "s1"))
        .await
        .unwrap();
    let later = Timestamp::now() + SignedDuration::from_hours(2);
    assert!(
        store
            .session_caller(other, ada, later)
            .await
            .unwrap()
            .is_none()
    );
    let expired = store
        .rotate_refresh_token("s1", "s2", AuditBy::default(), later)
        .await
        .unwrap();
    assert_eq!(expired, Refresh::Invalid);
    // And only for its own user.
    let bob = user(db, "bob@example.com").await;
    assert!(
        store
            .session_caller(other, bob, now)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn totp_steps_and_recovery_codes_work_once(db: &TestDb) {
    let store = &db.store;
    let ada = user(db, "ada@example.com").await;
    store.set_totp_secret(ada, "sealed").await.unwrap();
    let codes = ["c1".to_owned(), "c2".to_owned()];
    store
        .enable_totp(ada, 100, &codes, AuditBy::default())
        .await
        .unwrap();
    assert!(store.set_totp_secret(ada, "again").await.is_err());
    assert!(!store.accept_totp_step(ada, 100).await.unwrap());
    assert!(!store.accept_totp_step(ada, 99).await.unwrap());
    assert!(store.accept_totp_step(ada, 101).await.unwrap());
    assert!(!store.accept_totp_step(ada, 101).await.unwrap());
    assert!(
        store
            .use_recovery_code(ada, "c1", AuditBy::default())
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_recovery_code(ada, "c1", AuditBy::default())
            .await
            .unwrap()
    );
    let bob = user(db, "bob@example.com").await;
    assert!(
        !store
            .use_recovery_code(bob, "c2", AuditBy::default())
            .await
            .unwrap()
    );
    store.disable_totp(ada, AuditBy::default()).await.unwrap();
    assert!(
        !store
            .use_recovery_code(ada, "c2", AuditBy::default())
            .await
            .unwrap()
    );
}

pub async fn failures_lock_and_a_password_change_ends_other_sessions(db: &TestDb) {
    let store = &db.store;
    let ada = user(db, "ada@example.com").await;
    let now = now_ms();
    for _ in 0..4 {
        let locked = store
            .record_failed_sign_in(ada, AuditBy::default(), "wrong password", now)
            .await
            .unwrap();
        assert_eq!(locked, None);
    }
    let locked = store
        .record_failed_sign_in(ada, AuditBy::default(), "wrong password", now)
        .await
        .unwrap();
    assert_eq!(locked, Some(now + SignedDuration::from_mins(1)));
    let email = Email::parse("ada@example.com").unwrap();
    let record = store.sign_in_record(&email).await.unwrap().unwrap();
    assert_eq!(record.locked_until, locked);

    let kept = store
        .start_session(AuditBy::default(), &new_session(ada, "k"))
        .await
        .unwrap();
    let ended = store
        .start_session(AuditBy::default(), &new_session(ada, "e"))
        .await
        .unwrap();
    let record = store.sign_in_record(&email).await.unwrap().unwrap();
    assert_eq!(record.locked_until, None, "a sign-in resets the count");
    store
        .set_password(ada, "$argon2id$new", AuditBy::default(), Some(kept))
        .await
        .unwrap();
    assert!(
        store
            .session_caller(kept, ada, now)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .session_caller(ended, ada, now)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn signing_keys_rotate_with_overlap(db: &TestDb) {
    let store = &db.store;
    let now = now_ms();
    assert!(store.signing_keys(now).await.unwrap().is_empty());
    let first = store
        .add_signing_key("k1", "sealed1", now, true, AuditBy::default())
        .await
        .unwrap();
    assert!(first);
    let again = store
        .add_signing_key("k0", "sealed0", now, true, AuditBy::default())
        .await
        .unwrap();
    assert!(!again, "the first start's key is made once");
    let retire = now + SignedDuration::from_mins(20);
    store
        .add_signing_key("k2", "sealed2", retire, false, AuditBy::default())
        .await
        .unwrap();
    let keys = store.signing_keys(now).await.unwrap();
    let kids: Vec<_> = keys.iter().map(|key| key.kid.as_str()).collect();
    assert_eq!(kids, ["k2", "k1"], "the signing key first");
    assert_eq!(keys[0].retires_at, None);
    assert_eq!(keys[1].retires_at, Some(retire));
    let later = store.signing_keys(retire).await.unwrap();
    assert_eq!(later.len(), 1);
}

pub async fn one_refresh_token_used_at_once_rotates_once(db: &TestDb) {
    let store = &db.store;
    let ada = user(db, "ada@example.com").await;
    let session = store
        .start_session(AuditBy::default(), &new_session(ada, "r1"))
        .await
        .unwrap();
    let now = Timestamp::now();
    // Open connections first, so the attempts below run side by side.
    futures::future::join_all((0..8).map(|_| store.ping())).await;
    let next: Vec<String> = (0..8).map(|i| format!("next-{i}")).collect();
    let attempts = next
        .iter()
        .map(|next| store.rotate_refresh_token("r1", next, AuditBy::default(), now));
    let outcomes: Vec<Refresh> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let rotated = outcomes
        .iter()
        .filter(|outcome| **outcome == Refresh::Rotated { session, user: ada })
        .count();
    assert_eq!(rotated, 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|outcome| matches!(outcome, Refresh::Rotated { .. } | Refresh::Reused { .. })),
        "{outcomes:?}"
    );
    assert!(
        store
            .session_caller(session, ada, now)
            .await
            .unwrap()
            .is_none()
    );
}
