use helvetia_store::StoreError;

use crate::backend::TestDb;
use crate::deployments::demo_service;

pub async fn add_list_remove_and_cascade(db: &TestDb) {
    let admin = db.admin().await;
    let web = demo_service(db, "web").await;
    let worker = demo_service(db, "worker").await;
    let data = db
        .store
        .add_volume(&admin, &web, "data", "/data", "engine-web-data")
        .await
        .unwrap();
    assert_eq!(
        (
            data.name.as_str(),
            data.path.as_str(),
            data.engine_name.as_str()
        ),
        ("data", "/data", "engine-web-data")
    );
    db.store
        .add_volume(&admin, &web, "cache", "/var/cache/app", "engine-web-cache")
        .await
        .unwrap();
    db.store
        .add_volume(&admin, &worker, "data", "/data", "engine-worker-data")
        .await
        .unwrap();
    // A name or a mount path is taken once per service.
    for (name, path, engine_name) in [
        ("data", "/elsewhere", "engine-other-1"),
        ("other", "/data", "engine-other-2"),
        ("other", "/other", "engine-web-data"),
    ] {
        let taken = db
            .store
            .add_volume(&admin, &web, name, path, engine_name)
            .await;
        assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    }
    let names: Vec<String> = db
        .store
        .volumes(web.id)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(names, ["cache", "data"]);

    let mut engine_names = db.store.all_engine_volume_names().await.unwrap();
    engine_names.sort();
    assert_eq!(
        engine_names,
        ["engine-web-cache", "engine-web-data", "engine-worker-data"]
    );

    db.store.remove_volume(&admin, &web, "cache").await.unwrap();
    let gone = db.store.remove_volume(&admin, &web, "cache").await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
    let audit = db
        .store
        .audit_log(helvetia_store::audit::AuditLog::Team(admin.team), None, 10)
        .await
        .unwrap();
    assert!(audit.iter().any(|e| e.action == "volume.remove"));
    assert!(audit.iter().any(|e| e.action == "volume.add"));

    // Deleting a service leaves nothing of its volumes for the engine to keep.
    db.store.delete_service(&admin, &web).await.unwrap();
    assert_eq!(
        db.store.all_engine_volume_names().await.unwrap(),
        ["engine-worker-data"]
    );
}
