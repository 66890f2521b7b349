use helvetia_core::account::Email;
use helvetia_core::auth::{Principal, Role, Scopes, TeamId, token_hash, token_hint};
use helvetia_store::StoreError;
use helvetia_store::audit::AuditBy;
use helvetia_store::tokens::NewToken;
use helvetia_store::users::NewUser;
use jiff::Timestamp;

use crate::backend::TestDb;
use crate::projects::project;

fn new_user(email: &str) -> NewUser {
    NewUser {
        email: Email::parse(email).unwrap(),
        name: email.into(),
        password_hash: None,
        instance_admin: false,
    }
}

/// The first user takes over what existed before accounts: the default team (its projects
/// stay put) and the bootstrap token, which then acts as that user.
pub async fn the_first_user_adopts_the_pre_accounts_team(db: &TestDb) {
    let admin = db.admin().await;
    db.store
        .create_project(&admin, &project("legacy"))
        .await
        .unwrap();
    let bootstrap = NewToken {
        name: "admin (first start)".into(),
        hash: token_hash("hlv_bootstrap"),
        hint: token_hint("hlv_bootstrap"),
        scopes: Scopes::admin(),
        expires_at: None,
        user: None,
        team: None,
    };
    db.store
        .bootstrap_admin_token(admin.team, &bootstrap)
        .await
        .unwrap()
        .unwrap();
    let before = db
        .store
        .authenticate(&token_hash("hlv_bootstrap"), Timestamp::now())
        .await
        .unwrap()
        .unwrap();
    assert!(before.is_system());

    let owner = db
        .store
        .create_user(AuditBy::default(), &new_user("Ada@Example.com"))
        .await
        .unwrap();
    assert!(
        owner.instance_admin,
        "the first user administers the instance"
    );
    assert_eq!(owner.email.as_str(), "ada@example.com");
    let team = db.store.team(admin.team).await.unwrap();
    assert_eq!(team.name.as_str(), "ada");
    assert_eq!(team.personal_of, Some(owner.id));
    assert_eq!(
        db.store.personal_team(owner.id).await.unwrap(),
        Some(admin.team)
    );

    let after = db
        .store
        .authenticate(&token_hash("hlv_bootstrap"), Timestamp::now())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(after.principal, Principal::User { id, .. } if id == owner.id));
    assert_eq!(after.role(admin.team), Some(Role::Owner));
    let visible: Vec<TeamId> = after.teams.keys().copied().collect();
    let projects = db.store.list_projects(Some(&visible)).await.unwrap();
    assert_eq!(projects.len(), 1, "the legacy project is the owner's");
}

/// Later users get a personal team of their own, named after them and never clashing.
pub async fn later_users_get_their_own_teams(db: &TestDb) {
    let first = db
        .store
        .create_user(AuditBy::default(), &new_user("ada@one.example"))
        .await
        .unwrap();
    let second = db
        .store
        .create_user(AuditBy::default(), &new_user("ada@two.example"))
        .await
        .unwrap();
    assert!(!second.instance_admin);
    let first_team = db.store.personal_team(first.id).await.unwrap().unwrap();
    let second_team = db.store.personal_team(second.id).await.unwrap().unwrap();
    assert_ne!(first_team, second_team);
    assert_eq!(
        db.store.team(second_team).await.unwrap().name.as_str(),
        "ada-2"
    );
    let memberships = db.store.memberships(second.id).await.unwrap();
    assert_eq!(memberships.get(&second_team), Some(&Role::Owner));
    assert_eq!(memberships.len(), 1);

    let again = db
        .store
        .create_user(AuditBy::default(), &new_user("ADA@one.example"))
        .await;
    assert!(
        matches!(&again, Err(StoreError::Conflict(m)) if m.contains("already exists")),
        "{again:?}"
    );
    assert_eq!(db.store.count_users().await.unwrap(), 2);
}

/// A user's token limited to one team acts only there, whatever else its user may do.
pub async fn a_token_limited_to_a_team_acts_only_there(db: &TestDb) {
    let user = db
        .store
        .create_user(AuditBy::default(), &new_user("ada@example.com"))
        .await
        .unwrap();
    let personal = db.store.personal_team(user.id).await.unwrap().unwrap();
    let other = db.store.create_team("shared").await.unwrap();
    let owner_there = helvetia_core::auth::Actor::system(other, "test");
    db.store
        .set_member(&owner_there, user.id, Role::Viewer)
        .await
        .unwrap();
    let limited = NewToken {
        name: "ci".into(),
        hash: token_hash("hlv_limited"),
        hint: token_hint("hlv_limited"),
        scopes: Scopes::admin(),
        expires_at: None,
        user: Some(user.id),
        team: Some(other),
    };
    let by_user = helvetia_core::auth::Caller {
        principal: Principal::User {
            id: user.id,
            email: "ada@example.com".into(),
            instance_admin: true,
        },
        credential: helvetia_core::auth::Credential::Session { session: 0 },
        scopes: Scopes::admin(),
        teams: Default::default(),
        client: Some("192.0.2.7".into()),
    };
    let created = db.store.create_token(&by_user, &limited).await.unwrap();
    assert_eq!(created.team.as_deref(), Some("shared"));
    assert_eq!(created.owner.as_deref(), Some("ada@example.com"));
    let caller = db
        .store
        .authenticate(&token_hash("hlv_limited"), Timestamp::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(caller.role(other), Some(Role::Viewer));
    assert_eq!(caller.role(personal), None, "limited to the shared team");
}
