use helvetia_core::volume::engine_volume_name;
use helvetia_store::StoreError;

use crate::backend::TestDb;
use crate::deployments::demo_service;

pub async fn add_list_remove_and_cascade(db: &TestDb) {
    let admin = db.admin().await;
    let web = demo_service(db, "web").await;
    let worker = demo_service(db, "worker").await;
    let data = db
        .store
        .add_volume(&admin, &web, "data", "/data")
        .await
        .unwrap();
    assert_eq!((data.name.as_str(), data.path.as_str()), ("data", "/data"));
    db.store
        .add_volume(&admin, &web, "cache", "/var/cache/app")
        .await
        .unwrap();
    db.store
        .add_volume(&admin, &worker, "data", "/data")
        .await
        .unwrap();
    // A name or a mount path is taken once per service.
    for (name, path) in [("data", "/elsewhere"), ("other", "/data")] {
        let taken = db.store.add_volume(&admin, &web, name, path).await;
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
    let mut expected = vec![
        engine_volume_name("demo", "web", web.id, "cache"),
        engine_volume_name("demo", "web", web.id, "data"),
        engine_volume_name("demo", "worker", worker.id, "data"),
    ];
    expected.sort();
    assert_eq!(engine_names, expected);

    db.store.remove_volume(&admin, &web, "cache").await.unwrap();
    let gone = db.store.remove_volume(&admin, &web, "cache").await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
    let audit = db.store.audit_log(admin.team, None, 10).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "volume.remove"));
    assert!(audit.iter().any(|e| e.action == "volume.add"));

    // Deleting a service leaves nothing of its volumes for the engine to keep.
    db.store.delete_service(&admin, &web).await.unwrap();
    assert_eq!(
        db.store.all_engine_volume_names().await.unwrap(),
        [engine_volume_name("demo", "worker", worker.id, "data")]
    );
}
