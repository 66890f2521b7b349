use helvetia_core::git::RepoPolicy;
use helvetia_core::name::{ProjectName, ServiceName};
use helvetia_core::service::{ServiceInput, ServiceSettings};
use helvetia_store::StoreError;
use helvetia_store::services::NewService;

use crate::backend::{TestDb, caller};

pub fn project(name: &str) -> ProjectName {
    ProjectName::parse(name).unwrap()
}

pub fn service(name: &str) -> ServiceName {
    ServiceName::parse(name).unwrap()
}

pub fn hostname(project: &ProjectName, service: &ServiceName) -> String {
    format!("{service}.{project}.localhost")
}

pub fn settings(repo: &str) -> ServiceSettings {
    let input = ServiceInput {
        repo: Some(repo.into()),
        ..ServiceInput::default()
    };
    ServiceSettings::create(&input, RepoPolicy::default()).unwrap()
}

pub async fn create_list_get_delete(db: &TestDb) {
    let admin = db.admin().await;
    let store = &db.store;
    let demo = store
        .create_project(&admin, &project("demo"))
        .await
        .unwrap();
    store
        .create_project(&admin, &project("alpha"))
        .await
        .unwrap();
    let names: Vec<_> = store
        .list_projects(Some(&[admin.team]))
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name.to_string())
        .collect();
    assert_eq!(names, ["alpha", "demo"]);
    assert_eq!(
        store.project(admin.team, &project("demo")).await.unwrap(),
        demo
    );
    store
        .delete_project(&admin, &project("demo"))
        .await
        .unwrap();
    assert!(matches!(
        store.project(admin.team, &project("demo")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_project(&admin, &project("demo")).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn names_are_unique(db: &TestDb) {
    let admin = db.admin().await;
    let store = &db.store;
    store
        .create_project(&admin, &project("demo"))
        .await
        .unwrap();
    let again = store.create_project(&admin, &project("demo")).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    // Hostnames are global, so project names are unique across teams too.
    let other = caller(store.create_team("other").await.unwrap(), 99);
    let theirs = store.create_project(&other, &project("demo")).await;
    assert!(matches!(theirs, Err(StoreError::Conflict(_))), "{theirs:?}");

    let web = service("web");
    store
        .create_service(
            &admin,
            &NewService {
                project: &project("demo"),
                name: &web,
                settings: &settings("https://example.org/a.git"),
                runtime: &Default::default(),
                hostname: &hostname(&project("demo"), &web),
                github: None,
            },
        )
        .await
        .unwrap();
    let again = store
        .create_service(
            &admin,
            &NewService {
                project: &project("demo"),
                name: &web,
                settings: &settings("https://example.org/b.git"),
                runtime: &Default::default(),
                hostname: &hostname(&project("demo"), &web),
                github: None,
            },
        )
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let kept = store
        .service(admin.team, &project("demo"), &web)
        .await
        .unwrap();
    assert_eq!(
        kept.settings.repo().unwrap().as_str(),
        "https://example.org/a.git"
    );
}

pub async fn other_teams_see_nothing(db: &TestDb) {
    let admin = db.admin().await;
    let store = &db.store;
    store
        .create_project(&admin, &project("demo"))
        .await
        .unwrap();
    let svc = store
        .create_service(
            &admin,
            &NewService {
                project: &project("demo"),
                name: &service("web"),
                settings: &settings("https://e.org/a"),
                runtime: &Default::default(),
                hostname: &hostname(&project("demo"), &service("web")),
                github: None,
            },
        )
        .await
        .unwrap();

    let other = caller(store.create_team("other").await.unwrap(), 99);
    assert!(
        store
            .list_projects(Some(&[other.team]))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_services(Some(&[other.team]), None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.project(other.team, &project("demo")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .service(other.team, &project("demo"), &service("web"))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_project(&other, &project("demo")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_service(&other, &svc).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .create_service(
                &other,
                &NewService {
                    project: &project("demo"),
                    name: &service("evil"),
                    settings: &settings("https://e.org/b"),
                    runtime: &Default::default(),
                    hostname: &hostname(&project("demo"), &service("evil")),
                    github: None
                }
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    // The owner still has everything.
    assert_eq!(
        store
            .list_services(Some(&[admin.team]), None)
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn services_crud(db: &TestDb) {
    let admin = db.admin().await;
    let store = &db.store;
    store
        .create_project(&admin, &project("demo"))
        .await
        .unwrap();
    store
        .create_project(&admin, &project("empty"))
        .await
        .unwrap();
    let web = store
        .create_service(
            &admin,
            &NewService {
                project: &project("demo"),
                name: &service("web"),
                settings: &settings("https://e.org/web"),
                runtime: &Default::default(),
                hostname: &hostname(&project("demo"), &service("web")),
                github: None,
            },
        )
        .await
        .unwrap();
    store
        .create_service(
            &admin,
            &NewService {
                project: &project("demo"),
                name: &service("api"),
                settings: &settings("https://e.org/api"),
                runtime: &Default::default(),
                hostname: &hostname(&project("demo"), &service("api")),
                github: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(web.settings.port.map(|p| p.get()), Some(8080));
    assert_eq!(web.project.as_str(), "demo");

    let all = store
        .list_services(Some(&[admin.team]), None)
        .await
        .unwrap();
    let names: Vec<_> = all.iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names, ["api", "web"]);
    assert!(
        store
            .list_services(Some(&[admin.team]), Some(&project("empty")))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store
            .list_services(Some(&[admin.team]), Some(&project("nope")))
            .await,
        Err(StoreError::NotFound(_))
    ));

    let mut changed = web.settings.clone();
    changed.port = Some(helvetia_core::service::Port::new(3000).unwrap());
    let updated = store
        .update_service(&admin, &web, &changed, &web.runtime)
        .await
        .unwrap();
    assert_eq!(updated.settings.port.map(|p| p.get()), Some(3000));
    assert!(updated.updated_at >= web.updated_at);

    let conflict = store.delete_project(&admin, &project("demo")).await;
    assert!(
        matches!(conflict, Err(StoreError::Conflict(_))),
        "{conflict:?}"
    );
    store.delete_service(&admin, &web).await.unwrap();
    assert!(matches!(
        store
            .service(admin.team, &project("demo"), &service("web"))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn migrations_are_idempotent(db: &TestDb) {
    let admin = db.admin().await;
    db.store
        .create_project(&admin, &project("kept"))
        .await
        .unwrap();
    let again = db.reopen().await;
    assert_eq!(
        again
            .list_projects(Some(&[admin.team]))
            .await
            .unwrap()
            .len(),
        1
    );
    again.close().await;
}

/// Two changes made from one read of a service: exactly one applies, atomically, and the
/// other is refused as stale — it never overwrites the first.
pub async fn a_service_changes_only_from_the_revision_it_was_read_at(db: &TestDb) {
    let store = &db.store;
    let admin = db.admin().await;
    let web = crate::deployments::demo_service(db, "web").await;
    assert_eq!(web.revision, 1);
    let mut on_port = web.settings.clone();
    on_port.port = Some(helvetia_core::service::Port::new(3000).unwrap());
    let mut on_branch = web.settings.clone();
    on_branch.branch = helvetia_core::git::GitRef::parse("release").unwrap();
    let (first, second) = tokio::join!(
        store.update_service(&admin, &web, &on_port, &web.runtime),
        store.update_service(&admin, &web, &on_branch, &web.runtime),
    );
    let (applied, refused) = match (first, second) {
        (Ok(applied), Err(refused)) | (Err(refused), Ok(applied)) => (applied, refused),
        other => panic!("exactly one change applies: {other:?}"),
    };
    assert!(matches!(refused, StoreError::Stale(_)), "{refused:?}");
    assert_eq!(applied.revision, 2);
    let stored = store.service_by_id(web.id).await.unwrap();
    assert_eq!(stored, applied);

    let again = store
        .update_service(&admin, &web, &on_branch, &web.runtime)
        .await;
    assert!(matches!(again, Err(StoreError::Stale(_))), "{again:?}");
    assert_eq!(store.service_by_id(web.id).await.unwrap(), applied);
    let current = store
        .update_service(&admin, &applied, &on_branch, &web.runtime)
        .await
        .unwrap();
    assert_eq!((current.revision, current.settings), (3, on_branch));
}
