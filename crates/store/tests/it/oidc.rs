use helvetia_core::oidc::{GITHUB_ACTIONS_ISSUER, TrustRules};
use helvetia_store::StoreError;
use helvetia_store::audit::AuditLog;

use crate::backend::{TestDb, caller};
use crate::deployments::demo_service;

fn rules(repository: &str, environment: Option<&str>) -> TrustRules {
    TrustRules {
        issuer: GITHUB_ACTIONS_ISSUER.into(),
        repository: repository.into(),
        repository_id: None,
        git_ref: "refs/heads/main".into(),
        environment: environment.map(str::to_owned),
    }
}

pub async fn trusts_belong_to_one_service_are_audited_and_go_with_it(db: &TestDb) {
    let admin = db.admin().await;
    let store = &db.store;
    let web = demo_service(db, "web").await;
    let api = demo_service(db, "api").await;
    let first = store
        .add_trust(&admin, &web, &rules("acme/web", None))
        .await
        .unwrap();
    let mut bound = rules("acme/web", Some("production"));
    bound.repository_id = Some(4242);
    let second = store.add_trust(&admin, &web, &bound).await.unwrap();
    store
        .add_trust(&admin, &api, &rules("acme/api", None))
        .await
        .unwrap();
    let listed = store.trusts(web.id).await.unwrap();
    assert_eq!(listed, [first.clone(), second.clone()]);
    assert_eq!(listed[1].environment.as_deref(), Some("production"));
    assert_eq!(listed[1].repository_id, Some(4242));
    assert_eq!(store.trusts(api.id).await.unwrap().len(), 1);

    // Another team reaches neither the service nor its trusts.
    let other = caller(store.create_team("other").await.unwrap(), 99);
    let theirs = store
        .add_trust(&other, &web, &rules("evil/web", None))
        .await;
    assert!(matches!(theirs, Err(StoreError::NotFound(_))), "{theirs:?}");
    let theirs = store.remove_trust(&other, &web, first.id).await;
    assert!(matches!(theirs, Err(StoreError::NotFound(_))), "{theirs:?}");
    // A trust is removed through its own service only.
    let elsewhere = store.remove_trust(&admin, &api, first.id).await;
    assert!(
        matches!(elsewhere, Err(StoreError::NotFound(_))),
        "{elsewhere:?}"
    );

    store.remove_trust(&admin, &web, first.id).await.unwrap();
    assert_eq!(store.trusts(web.id).await.unwrap(), [second]);
    let log = store
        .audit_log(AuditLog::Team(admin.team), None, 50)
        .await
        .unwrap();
    let actions: Vec<&str> = log
        .iter()
        .filter(|entry| entry.action.starts_with("service.trust"))
        .map(|entry| entry.action.as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "service.trust_remove",
            "service.trust_add",
            "service.trust_add",
            "service.trust_add"
        ]
    );
    assert!(
        log[0].target.contains("demo/web trust:") && log[0].target.contains("acme/web"),
        "{:?}",
        log[0]
    );

    // Deleting the service deletes its trusts: a new service of the same name trusts nothing.
    store.delete_service(&admin, &web).await.unwrap();
    let again = demo_service(db, "web").await;
    assert!(store.trusts(again.id).await.unwrap().is_empty());
}
