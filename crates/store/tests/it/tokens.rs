use helvetia_core::auth::{Caller, Scope, Scopes, token_hash, token_hint};
use helvetia_store::StoreError;
use helvetia_store::audit::AuditLog;
use helvetia_store::tokens::{NewToken, TokenListing};
use jiff::{Timestamp, ToSpan};

use crate::backend::TestDb;
use crate::projects::project;

fn new_token(secret: &str, scopes: Scopes, expires_at: Option<Timestamp>) -> NewToken {
    NewToken {
        name: format!("token-{}", &secret[..6]),
        hash: token_hash(secret),
        hint: token_hint(secret),
        scopes,
        expires_at,
        user: None,
        team: None,
    }
}

/// A server-administration token stored with `secret`, and the caller it authenticates as.
async fn system_caller(db: &TestDb, secret: &str, scopes: Scopes) -> Caller {
    db.store
        .issue_system_token(&new_token(secret, scopes, None))
        .await
        .unwrap();
    db.store
        .authenticate(&token_hash(secret), Timestamp::now())
        .await
        .unwrap()
        .unwrap()
}

pub async fn bootstrap_happens_once(db: &TestDb) {
    let team = db.store.default_team().await.unwrap();
    assert_eq!(db.store.default_team().await.unwrap(), team);
    let first = db
        .store
        .bootstrap_admin_token(team, &new_token("hlv_first_secret", Scopes::admin(), None))
        .await
        .unwrap()
        .expect("first start stores a token");
    assert_eq!(first.hint, "hlv_firs");
    let second = db
        .store
        .bootstrap_admin_token(team, &new_token("hlv_second_secret", Scopes::admin(), None))
        .await
        .unwrap();
    assert!(second.is_none());
    let reopened = db.reopen().await;
    assert!(
        reopened
            .authenticate(&token_hash("hlv_first_secret"), Timestamp::now())
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        reopened
            .authenticate(&token_hash("hlv_second_secret"), Timestamp::now())
            .await
            .unwrap()
            .is_none()
    );
    reopened.close().await;
}

pub async fn a_system_token_is_an_audited_admin_token(db: &TestDb) {
    let admin = db.admin().await;
    let issued = db
        .store
        .issue_system_token(&new_token("hlv_recovered_secret", Scopes::admin(), None))
        .await
        .unwrap();
    let caller = db
        .store
        .authenticate(&token_hash("hlv_recovered_secret"), Timestamp::now())
        .await
        .unwrap()
        .expect("the issued token authenticates");
    assert_eq!(caller.token_id(), Some(issued.id));
    assert_eq!(caller.scopes, Scopes::admin());
    assert!(caller.is_system());
    assert_eq!(
        caller.role(admin.team),
        Some(helvetia_core::auth::Role::Owner)
    );
    let listed = db.store.list_tokens(TokenListing::System).await.unwrap();
    assert!(
        listed
            .iter()
            .any(|token| token.id == issued.id && token.owner.is_none())
    );
    let entries = db
        .store
        .audit_log(AuditLog::Instance, None, 1)
        .await
        .unwrap();
    assert_eq!(entries[0].actor, "system (helvetia server admin-token)");
    assert_eq!(entries[0].action, "token.create");
    assert_eq!(
        entries[0].target,
        format!("token:{}({})", issued.id, issued.name)
    );
}

pub async fn the_callers_own_last_admin_token_is_revoked_only_with_force(db: &TestDb) {
    db.admin().await;
    let first = system_caller(db, "hlv_first_admin", Scopes::admin()).await;
    let second = system_caller(db, "hlv_second_admin", Scopes::admin()).await;
    system_caller(db, "hlv_just_reader", Scopes::new([Scope::Read]).unwrap()).await;
    let own = |caller: &Caller| caller.token_id().unwrap();

    // Another admin token is left: no force needed.
    db.store
        .revoke_token(&first, own(&first), false, None)
        .await
        .unwrap();
    // The last one (a read token does not count) only with force.
    let refused = db
        .store
        .revoke_token(&second, own(&second), false, None)
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Conflict(m)) if m.contains("last admin token")),
        "{refused:?}"
    );
    let hash = token_hash("hlv_second_admin");
    assert!(
        db.store
            .authenticate(&hash, Timestamp::now())
            .await
            .unwrap()
            .is_some()
    );
    db.store
        .revoke_token(&second, own(&second), true, None)
        .await
        .unwrap();
    assert!(
        db.store
            .authenticate(&hash, Timestamp::now())
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn authenticate_revoke_expire(db: &TestDb) {
    let admin = system_caller(db, "hlv_admin_secret", Scopes::admin()).await;
    let now = Timestamp::now();
    let reader = db
        .store
        .create_token(
            &admin,
            &new_token(
                "hlv_reader_secret",
                Scopes::new([Scope::Read]).unwrap(),
                None,
            ),
        )
        .await
        .unwrap();
    let caller = db
        .store
        .authenticate(&token_hash("hlv_reader_secret"), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(caller.token_id(), Some(reader.id));
    assert!(caller.scopes.allows(Scope::Read));
    assert!(!caller.scopes.allows(Scope::Write));
    assert!(
        db.store.list_tokens(TokenListing::System).await.unwrap()[1]
            .last_used_at
            .is_some()
    );

    db.store
        .revoke_token(&admin, reader.id, false, None)
        .await
        .unwrap();
    assert!(
        db.store
            .authenticate(&token_hash("hlv_reader_secret"), now)
            .await
            .unwrap()
            .is_none()
    );
    let twice = db.store.revoke_token(&admin, reader.id, false, None).await;
    assert!(matches!(twice, Err(StoreError::NotFound(_))));

    let expiring = new_token("hlv_expiring_secret", Scopes::admin(), Some(now + 1.hour()));
    db.store.create_token(&admin, &expiring).await.unwrap();
    let hash = token_hash("hlv_expiring_secret");
    assert!(db.store.authenticate(&hash, now).await.unwrap().is_some());
    assert!(
        db.store
            .authenticate(&hash, now + 2.hours())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        db.store
            .authenticate(&token_hash("hlv_unknown"), now)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn mutations_are_audited(db: &TestDb) {
    let admin = db.admin().await;
    db.store
        .create_project(&admin, &project("demo"))
        .await
        .unwrap();
    db.store
        .delete_project(&admin, &project("demo"))
        .await
        .unwrap();
    let entries = db
        .store
        .audit_log(helvetia_store::audit::AuditLog::Team(admin.team), None, 10)
        .await
        .unwrap();
    let actions: Vec<_> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["project.delete", "project.create"]);
    assert!(
        entries
            .iter()
            .all(|e| e.target == "demo" && e.actor == admin.label)
    );
    let older = db
        .store
        .audit_log(
            helvetia_store::audit::AuditLog::Team(admin.team),
            Some(entries[0].id),
            10,
        )
        .await
        .unwrap();
    assert_eq!(older.len(), 1);
}

/// The audit log's filters: an action by prefix, an actor or a target by any part, ignoring
/// case; `%` and `_` in a filter are plain characters.
pub async fn the_audit_log_filters_by_action_actor_and_target(db: &TestDb) {
    use helvetia_core::audit::AuditAction;
    use helvetia_store::audit::{AuditBy, AuditFilter};
    let team = db.admin().await.team;
    let by = |actor: &str| AuditBy {
        team: Some(team),
        actor: actor.into(),
        ..AuditBy::default()
    };
    let entries = [
        (
            "user:1(Ada@Example.com)",
            AuditAction::DeploymentCreate,
            "shop/web#1",
        ),
        (
            "user:2(bob@example.com)",
            AuditAction::EnvReveal,
            "shop/web API_KEY",
        ),
        (
            "user:1(Ada@Example.com)",
            AuditAction::TokenCreate,
            "token:3(ci_100%)",
        ),
    ];
    for (actor, action, target) in entries {
        db.store
            .record_audit(by(actor), action, target)
            .await
            .unwrap();
    }
    let read = |action: &str, actor: &str, target: &str| {
        let given = |text: &str| Some(text.to_owned()).filter(|t| !t.is_empty());
        let filter = AuditFilter {
            action: given(action),
            actor: given(actor),
            target: given(target),
        };
        async move {
            db.store
                .audit_log_filtered(AuditLog::Team(team), &filter, None, 50)
                .await
                .unwrap()
                .into_iter()
                .map(|entry| entry.action)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(read("", "", "").await.len(), 3);
    assert_eq!(read("DEPLOYMENT", "", "").await, ["deployment.create"]);
    assert_eq!(
        read("", "ada@example", "").await,
        ["token.create", "deployment.create"]
    );
    assert_eq!(
        read("", "", "shop/web").await,
        ["env.reveal", "deployment.create"]
    );
    assert_eq!(read("env", "ada", "").await, Vec::<String>::new());
    assert_eq!(read("", "", "100%").await, ["token.create"]);
    assert_eq!(
        read("", "", "ci_1").await,
        ["token.create"],
        "`_` is itself"
    );
    assert_eq!(
        read("", "", "c%1").await,
        Vec::<String>::new(),
        "`%` is itself"
    );
}
