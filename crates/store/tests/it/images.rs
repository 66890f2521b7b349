//! Services run from a registry image: the reference is stored in place of the repository,
//! the login apart (the password sealed, found and written back by a key rotation).

use helvetia_core::git::RepoPolicy;
use helvetia_core::outbound::DestinationPolicy;
use helvetia_core::service::{ServiceInput, ServiceSettings};
use helvetia_store::env::Resealed;
use helvetia_store::sealed::SealedAt;
use helvetia_store::services::NewService;

use crate::backend::TestDb;
use crate::projects::{hostname, project, service, settings};

pub async fn an_image_service_keeps_its_reference_and_its_sealed_login(db: &TestDb) {
    let admin = db.admin().await;
    let store = &db.store;
    store
        .create_project(&admin, &project("demo"))
        .await
        .unwrap();
    let open = RepoPolicy {
        allow_local: false,
        destinations: DestinationPolicy {
            allow_private: true,
        },
    };
    let input = ServiceInput {
        image: Some("127.0.0.1:5000/team/app:v1".into()),
        ..ServiceInput::default()
    };
    let image = ServiceSettings::create(&input, open).unwrap();
    let app = service("app");
    let created = store
        .create_service(
            &admin,
            &NewService {
                project: &project("demo"),
                name: &app,
                settings: &image,
                runtime: &Default::default(),
                hostname: &hostname(&project("demo"), &app),
                github: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(created.settings, image);
    assert_eq!(created.registry_user, None);
    assert_eq!(store.registry_password(created.id).await.unwrap(), None);

    store
        .set_registry_login(&admin, &created, Some(("ci", "sealed-password")))
        .await
        .unwrap();
    let kept = store.service_by_id(created.id).await.unwrap();
    assert_eq!(kept.registry_user.as_deref(), Some("ci"));
    assert_eq!(
        store
            .registry_password(created.id)
            .await
            .unwrap()
            .as_deref(),
        Some("sealed-password")
    );

    // A master key rotation finds the sealed password and writes it back.
    let sealed = store.sealed_values().await.unwrap();
    let at = SealedAt::RegistryPassword(created.id);
    assert!(sealed.contains(&(at.clone(), "sealed-password".into())));
    let resealed = Resealed {
        elsewhere: vec![(at, "re-sealed".into())],
        ..Resealed::default()
    };
    store.reseal_secrets(&resealed, "next").await.unwrap();
    assert_eq!(
        store
            .registry_password(created.id)
            .await
            .unwrap()
            .as_deref(),
        Some("re-sealed")
    );

    // Back to a repository, and to an image again.
    let repo = settings("https://example.org/a.git");
    let runtime = kept.runtime.clone();
    let moved = store
        .update_service(&admin, &kept, &repo, &runtime)
        .await
        .unwrap();
    assert_eq!(moved.settings, repo);
    let back = store
        .update_service(&admin, &moved, &image, &runtime)
        .await
        .unwrap();
    assert_eq!(back.settings, image);

    store.set_registry_login(&admin, &back, None).await.unwrap();
    assert_eq!(
        store.service_by_id(back.id).await.unwrap().registry_user,
        None
    );
    assert_eq!(store.registry_password(back.id).await.unwrap(), None);
}
