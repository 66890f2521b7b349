use helvetia_core::account::Email;
use helvetia_core::auth::{Caller, Credential, Principal, Scopes, token_hash, token_hint};
use helvetia_store::StoreError;
use helvetia_store::audit::AuditBy;
use helvetia_store::devices::{DevicePoll, NewDeviceCode};
use helvetia_store::tokens::NewToken;
use helvetia_store::users::NewUser;
use jiff::{SignedDuration, Timestamp};

use crate::backend::TestDb;

fn code(secret: &str, user_code: &str, expires_at: Timestamp) -> NewDeviceCode {
    NewDeviceCode {
        device_code_hash: token_hash(secret),
        user_code: user_code.into(),
        client_name: "laptop".into(),
        expires_at,
        interval_secs: 5,
    }
}

fn token(secret: &str) -> NewToken {
    NewToken {
        name: "CLI: laptop".into(),
        hash: token_hash(secret),
        hint: token_hint(secret),
        scopes: Scopes::admin(),
        expires_at: None,
        user: None,
        team: None,
    }
}

pub async fn a_device_code_is_redeemed_once_at_the_clock_given(db: &TestDb) {
    let store = &db.store;
    let user = store
        .create_user(
            AuditBy::default(),
            &NewUser {
                email: Email::parse("ada@example.com").unwrap(),
                name: "Ada".into(),
                password_hash: None,
                instance_admin: false,
            },
        )
        .await
        .unwrap();
    let caller = Caller {
        principal: Principal::User {
            id: user.id,
            email: "ada@example.com".into(),
            instance_admin: false,
        },
        credential: Credential::Session { session: 0 },
        scopes: Scopes::admin(),
        teams: Default::default(),
        client: None,
    };
    let now = Timestamp::now();
    let later = |secs| now + SignedDuration::from_secs(secs);
    store
        .create_device_code(&code("device-1", "BCDFGHJK", later(600)))
        .await
        .unwrap();
    let taken = store
        .create_device_code(&code("device-2", "BCDFGHJK", later(600)))
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");

    let hash = token_hash("device-1");
    let poll = |secs, secret: &'static str| {
        store.poll_device_code(&hash, later(secs), None, move |_, _| token(secret))
    };
    assert_eq!(poll(0, "t0").await.unwrap(), DevicePoll::Pending);
    assert_eq!(
        poll(1, "t1").await.unwrap(),
        DevicePoll::SlowDown { interval_secs: 10 }
    );
    assert_eq!(poll(11, "t2").await.unwrap(), DevicePoll::Pending);

    let client = store
        .decide_device_code(&caller, user.id, "BCDFGHJK", true, later(12))
        .await
        .unwrap();
    assert_eq!(client, "laptop");
    let decided_again = store
        .decide_device_code(&caller, user.id, "BCDFGHJK", false, later(13))
        .await;
    assert!(matches!(decided_again, Err(StoreError::Conflict(_))));

    // Two polls at once: one token.
    let (first, second) = tokio::join!(poll(13, "hlv_first"), poll(13, "hlv_second"));
    let answers = [first.unwrap(), second.unwrap()];
    let issued: Vec<_> = answers
        .iter()
        .filter_map(|answer| match answer {
            DevicePoll::Issued(token) => Some(token),
            _ => None,
        })
        .collect();
    assert_eq!(issued.len(), 1, "{answers:?}");
    assert!(answers.contains(&DevicePoll::Redeemed), "{answers:?}");
    assert_eq!(issued[0].owner.as_deref(), Some("ada@example.com"));
    let secret = if issued[0].hint == token_hint("hlv_first") {
        "hlv_first"
    } else {
        "hlv_second"
    };
    let authenticated = store
        .authenticate(&token_hash(secret), Timestamp::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(authenticated.user(), Some(user.id));

    store
        .create_device_code(&code("device-3", "LMNPQRST", later(600)))
        .await
        .unwrap();
    let expired = store
        .poll_device_code(&token_hash("device-3"), later(600), None, |_, _| {
            token("never")
        })
        .await
        .unwrap();
    assert_eq!(expired, DevicePoll::Expired);
    let too_late = store
        .decide_device_code(&caller, user.id, "LMNPQRST", true, later(600))
        .await;
    assert!(matches!(too_late, Err(StoreError::NotFound(_))));
    let unknown = store
        .poll_device_code(&token_hash("device-9"), now, None, |_, _| token("never"))
        .await
        .unwrap();
    assert_eq!(unknown, DevicePoll::Unknown);

    // Logins long expired are removed when another starts.
    store
        .create_device_code(&code("device-old", "VWXZBCDF", later(-2 * 86_400)))
        .await
        .unwrap();
    store
        .create_device_code(&code("device-new", "VWXZBCDG", later(600)))
        .await
        .unwrap();
    let forgotten = store
        .poll_device_code(&token_hash("device-old"), now, None, |_, _| token("never"))
        .await
        .unwrap();
    assert_eq!(forgotten, DevicePoll::Unknown);
}
