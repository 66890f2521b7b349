//! Signing in: passwords (argon2id), the lockout and its back-off, TOTP codes and their
//! replay, recovery codes, and changing the password.

use axum::http::{Method, StatusCode};
use helvetia_server::sessions::totp;
use helvetia_store::audit::{AuditBy, AuditLog};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::harness::Api;
use crate::sessions::{PASSWORD, account, me, session, sign_in};

fn credentials(email: &str, password: &str) -> Value {
    json!({"email": email, "password": password})
}

#[tokio::test]
async fn wrong_passwords_lock_the_account_until_the_back_off_has_passed() {
    let api = Api::new().await;
    let user = account(&api, "ada@example.com").await;
    let record = api
        .store
        .sign_in_record(&helvetia_core::account::Email::parse("ada@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(
        record.password_hash.unwrap().starts_with("$argon2id$"),
        "passwords are hashed with argon2id"
    );

    let (status, refused) = sign_in(&api, credentials("ada@example.com", "wrong password!")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused["error"]["code"], "invalid_credentials");
    // An unknown account answers exactly the same.
    let unknown = sign_in(&api, credentials("nobody@example.com", PASSWORD)).await;
    assert_eq!(unknown, (status, refused.clone()));
    for _ in 1..5 {
        let answer = sign_in(&api, credentials("ada@example.com", "wrong password!")).await;
        assert_eq!(answer, (status, refused.clone()));
    }
    // Five failures in a row: locked. The right password is refused, the same way.
    let locked = sign_in(&api, credentials("ada@example.com", PASSWORD)).await;
    assert_eq!(locked, (status, refused.clone()));

    // A sixth failure, counted two hours ago, locked the account for two minutes from then:
    // the lock has passed.
    let long_ago = Timestamp::now() - SignedDuration::from_hours(2);
    let until = api
        .store
        .record_failed_sign_in(user, AuditBy::default(), "in the past", long_ago)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        until,
        long_ago + SignedDuration::from_mins(2),
        "the back-off doubles"
    );
    let (status, body) = sign_in(&api, credentials("ada@example.com", PASSWORD)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The audit log says why each attempt failed; the unknown address is in the instance's.
    let log = api
        .store
        .audit_log(AuditLog::User(user), None, 50)
        .await
        .unwrap();
    let targets: Vec<_> = log
        .iter()
        .filter(|entry| entry.action == "auth.signin_failed")
        .map(|entry| entry.target.as_str())
        .collect();
    assert!(targets.contains(&"account locked"), "{targets:?}");
    assert!(
        targets
            .iter()
            .any(|target| target.starts_with("wrong password; locked until")),
        "{targets:?}"
    );
    assert!(log.iter().any(|entry| entry.action == "auth.signin"));
    let instance = api
        .store
        .audit_log(AuditLog::Instance, None, 50)
        .await
        .unwrap();
    assert!(
        instance
            .iter()
            .any(|entry| entry.target == "nobody@example.com: no such account"),
        "{instance:?}"
    );
}

/// A code that matches no step near `step`.
fn wrong_code(secret: &[u8], step: i64) -> String {
    let near: Vec<String> = (step - 2..=step + 3)
        .map(|s| totp::code(secret, s))
        .collect();
    [
        "000000", "111111", "222222", "333333", "444444", "555555", "666666",
    ]
    .into_iter()
    .find(|candidate| !near.iter().any(|code| code == candidate))
    .unwrap()
    .to_owned()
}

#[tokio::test]
async fn totp_codes_work_once_and_recovery_codes_once_each() {
    let api = Api::new().await;
    account(&api, "ada@example.com").await;
    let (access, _) = session(&api, "ada@example.com").await;
    let (status, enrolment) = api
        .call(Method::POST, "/api/v1/me/totp", Some(&access), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{enrolment}");
    let secret = totp::decode(enrolment["secret"].as_str().unwrap()).unwrap();
    assert!(
        enrolment["uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    // At rest the secret is sealed, not kept as shown.
    let email = helvetia_core::account::Email::parse("ada@example.com").unwrap();
    let record = api.store.sign_in_record(&email).await.unwrap().unwrap();
    let sealed = record.totp_secret.unwrap();
    assert!(!sealed.contains(enrolment["secret"].as_str().unwrap()));

    let step = totp::step_at(Timestamp::now());
    let wrong = wrong_code(&secret, step);
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/me/totp/confirm",
            Some(&access),
            Some(json!({"code": wrong})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let confirmed = totp::code(&secret, step);
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/me/totp/confirm",
            Some(&access),
            Some(json!({"code": confirmed})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let recovery: Vec<String> = serde_json::from_value(body["recovery_codes"].clone()).unwrap();
    assert_eq!(recovery.len(), 10);

    let with = |extra: Value| {
        let mut body = credentials("ada@example.com", PASSWORD);
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    let (status, body) = sign_in(&api, with(json!({}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "second_factor_required");
    // The code that confirmed the enrolment was used up by it.
    let (status, body) = sign_in(&api, with(json!({"totp_code": confirmed}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "invalid_credentials");
    let (status, _) = sign_in(&api, with(json!({"totp_code": wrong}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The next step's code (within the accepted skew) works, once.
    let next = totp::code(&secret, step + 1);
    let (status, body) = sign_in(&api, with(json!({"totp_code": next}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = sign_in(&api, with(json!({"totp_code": next}))).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a replayed code is refused"
    );

    // A recovery code, typed loosely, works once.
    let typed = recovery[0].to_lowercase().replace('-', " ");
    let (status, body) = sign_in(&api, with(json!({"recovery_code": typed}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = sign_in(&api, with(json!({"recovery_code": recovery[0]}))).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a used recovery code is refused"
    );
    let (status, body) = sign_in(&api, with(json!({"recovery_code": recovery[1]}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Turning TOTP off takes the password.
    let (status, _) = api
        .call(
            Method::DELETE,
            "/api/v1/me/totp",
            Some(&access),
            Some(json!({"password": "not the password"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = api
        .call(
            Method::DELETE,
            "/api/v1/me/totp",
            Some(&access),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = sign_in(&api, with(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions() {
    let api = Api::new().await;
    account(&api, "ada@example.com").await;
    let (here, _) = session(&api, "ada@example.com").await;
    let (elsewhere, _) = session(&api, "ada@example.com").await;
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/me/password",
            Some(&here),
            Some(change("not the password", "a brand new passphrase")),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["fields"]["current_password"].is_string(),
        "{body}"
    );
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/me/password",
            Some(&here),
            Some(change(PASSWORD, "short")),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/me/password",
            Some(&here),
            Some(change(PASSWORD, "a brand new passphrase")),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(me(&api, &here).await, StatusCode::OK);
    assert_eq!(me(&api, &elsewhere).await, StatusCode::UNAUTHORIZED);
    let old = sign_in(&api, credentials("ada@example.com", PASSWORD)).await;
    assert_eq!(old.0, StatusCode::UNAUTHORIZED);
    let new = sign_in(
        &api,
        credentials("ada@example.com", "a brand new passphrase"),
    )
    .await;
    assert_eq!(new.0, StatusCode::OK, "{}", new.1);
}

#[tokio::test]
async fn sign_in_attempts_per_account_are_rate_limited_whether_it_exists_or_not() {
    let api = Api::new().await;
    account(&api, "ada@example.com").await;
    for email in ["ada@example.com", "nobody@example.com"] {
        for _ in 0..10 {
            let (status, _) = sign_in(&api, credentials(email, "wrong password!")).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        let (status, body) = sign_in(&api, credentials(email, PASSWORD)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{email}: {body}");
    }
}

/// A disabled account cannot sign in — it is refused like a wrong password — and its live
/// sessions stop at once.
#[tokio::test]
async fn a_disabled_account_cannot_sign_in_and_its_sessions_end() {
    let api = Api::new().await;
    let user = account(&api, "ada@example.com").await;
    let (live, _) = session(&api, "ada@example.com").await;
    assert_eq!(me(&api, &live).await, StatusCode::OK);
    let wrong = sign_in(&api, credentials("ada@example.com", "wrong password!")).await;
    api.store
        .disable_user(AuditBy::default(), user)
        .await
        .unwrap();
    let refused = sign_in(&api, credentials("ada@example.com", PASSWORD)).await;
    assert_eq!(
        refused, wrong,
        "a disabled account is refused like a wrong password"
    );
    assert_eq!(me(&api, &live).await, StatusCode::UNAUTHORIZED);
}
