use helvetia_core::account::Email;
use helvetia_core::runtime::RuntimeSettings;
use helvetia_core::service::GitHubLink;
use helvetia_store::audit::AuditBy;
use helvetia_store::github::{GitHubApp, PendingManifest};
use helvetia_store::services::NewService;
use helvetia_store::users::NewUser;
use jiff::{SignedDuration, Timestamp};

use crate::backend::TestDb;
use crate::projects::{hostname, project, service, settings};

pub async fn the_github_app_is_one_row_and_a_manifest_state_works_once(db: &TestDb) {
    let store = &db.store;
    assert_eq!(store.github_app().await.unwrap(), None);
    let mut app = GitHubApp {
        app_id: 7,
        slug: Some("helvetia".into()),
        client_id: "Iv1.abc".into(),
        sealed_private_key: "sealed-key".into(),
        sealed_client_secret: "sealed-secret".into(),
        sealed_webhook_secret: "sealed-hook".into(),
        created_at: Timestamp::from_millisecond(1_700_000_000_000).unwrap(),
    };
    store
        .save_github_app(&app, AuditBy::default())
        .await
        .unwrap();
    app.app_id = 8;
    app.slug = None;
    store
        .save_github_app(&app, AuditBy::default())
        .await
        .unwrap();
    assert_eq!(store.github_app().await.unwrap(), Some(app.clone()));
    assert!(!format!("{app:?}").contains("sealed"), "{app:?}");

    let user = store
        .create_user(
            AuditBy::default(),
            &NewUser {
                email: Email::parse("ada@example.com").unwrap(),
                name: "Ada".into(),
                password_hash: None,
                instance_admin: true,
            },
        )
        .await
        .unwrap();
    let now = Timestamp::now();
    let later = |secs| now + SignedDuration::from_secs(secs);
    store
        .add_github_manifest_state("h1", Some(user.id), later(600), now)
        .await
        .unwrap();
    store
        .add_github_manifest_state("h2", None, later(600), now)
        .await
        .unwrap();
    assert_eq!(
        store.take_github_manifest_state("nope", now).await.unwrap(),
        None
    );
    assert_eq!(
        store.take_github_manifest_state("h1", now).await.unwrap(),
        Some(PendingManifest {
            user: Some(user.id)
        })
    );
    assert_eq!(
        store.take_github_manifest_state("h1", now).await.unwrap(),
        None
    );
    // Expired: refused, and spent all the same.
    assert_eq!(
        store
            .take_github_manifest_state("h2", later(601))
            .await
            .unwrap(),
        None
    );
}

pub async fn a_service_created_from_a_github_repository_is_found_by_its_id_until_its_repo_changes(
    db: &TestDb,
) {
    let admin = db.admin().await;
    let store = &db.store;
    let (demo, web, api) = (project("demo"), service("web"), service("api"));
    store.create_project(&admin, &demo).await.unwrap();
    let link = GitHubLink {
        installation_id: 42,
        repository_id: 7001,
        full_name: "acme/shop".into(),
    };
    let repo = settings("https://github.example/acme/shop.git");
    let runtime = RuntimeSettings::default();
    let new = |name, github| NewService {
        project: &demo,
        name,
        settings: &repo,
        runtime: &runtime,
        hostname: "",
        github,
    };
    let linked = store
        .create_service(
            &admin,
            &NewService {
                hostname: &hostname(&demo, &web),
                ..new(&web, Some(&link))
            },
        )
        .await
        .unwrap();
    assert_eq!(linked.github.as_ref(), Some(&link));
    store
        .create_service(
            &admin,
            &NewService {
                hostname: &hostname(&demo, &api),
                ..new(&api, None)
            },
        )
        .await
        .unwrap();
    let found = store.services_linked_to_repository(7001).await.unwrap();
    assert_eq!(
        found.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![linked.id]
    );
    assert!(
        store
            .services_linked_to_repository(7002)
            .await
            .unwrap()
            .is_empty()
    );

    // Other settings keep the link; another repository ends it.
    let mut changed = linked.settings.clone();
    changed.branch = helvetia_core::git::GitRef::parse("next").unwrap();
    let kept = store
        .update_service(&admin, &linked, &changed, &linked.runtime)
        .await
        .unwrap();
    assert_eq!(kept.github.as_ref(), Some(&link));
    let elsewhere = settings("https://example.org/other.git");
    let unlinked = store
        .update_service(&admin, &kept, &elsewhere, &kept.runtime)
        .await
        .unwrap();
    assert_eq!(unlinked.github, None);
    assert!(
        store
            .services_linked_to_repository(7001)
            .await
            .unwrap()
            .is_empty()
    );
}
