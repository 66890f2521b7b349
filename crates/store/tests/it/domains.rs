use helvetia_core::domain::{DomainName, Verification};
use helvetia_store::domains::NewDomain;

use crate::backend::TestDb;
use crate::deployments::demo_service;

fn name(text: &str) -> DomainName {
    DomainName::parse(text, true).unwrap()
}

pub async fn verified_domains_are_routed_once_per_name_and_aliases_redirect(db: &TestDb) {
    let store = &db.store;
    let admin = db.admin().await;
    let web = demo_service(db, "web").await;
    let api = demo_service(db, "api").await;
    let add = |service, domain: &'static str, prefix: Option<&'static str>, redirect| {
        let admin = admin.clone();
        async move {
            let domain = name(domain);
            let new = NewDomain {
                name: &domain,
                path_prefix: prefix,
                redirect,
                token: &format!("token-{domain}-{}", prefix.unwrap_or_default()),
            };
            store.add_domain(&admin, service, &new).await
        }
    };
    let shop = add(&web, "shop.example.test", None, false).await.unwrap();
    assert!(shop.primary && !shop.is_routed());
    assert!(
        add(&api, "shop.example.test", None, false).await.is_err(),
        "one service per name"
    );
    assert!(
        add(&web, "web.demo.localhost", None, false).await.is_err(),
        "a generated hostname"
    );
    let www = add(&web, "www.example.test", None, true).await.unwrap();
    assert!(!www.primary);
    let split = add(&api, "shop.example.test", Some("/api"), false)
        .await
        .unwrap();
    assert!(!split.primary, "a path prefix is never the primary");

    // Nothing is routed before it is verified.
    let table = store.routing_table().await.unwrap();
    assert!(
        !table
            .route("demo_web")
            .unwrap()
            .hostnames
            .contains(&"shop.example.test".to_owned())
    );
    for (domain, service) in [(&shop, &web), (&www, &web), (&split, &api)] {
        store
            .record_domain_check(&admin, service, domain, Some(Verification::Dns), "ok")
            .await
            .unwrap();
    }
    let checked = store
        .record_domain_check(&admin, &web, &shop, None, "a later failure")
        .await
        .unwrap();
    assert_eq!(
        checked.verification,
        Some(Verification::Dns),
        "stays routed"
    );
    assert_eq!(checked.last_check.as_deref(), Some("a later failure"));

    let table = store.routing_table().await.unwrap();
    let web_route = table.route("demo_web").unwrap();
    assert!(
        web_route
            .hostnames
            .contains(&"shop.example.test".to_owned())
    );
    let alias = table.route(&format!("demo_web_domain{}", www.id)).unwrap();
    assert_eq!(alias.redirect_to.as_deref(), Some("shop.example.test"));
    let prefixed = table
        .route(&format!("demo_api_domain{}", split.id))
        .unwrap();
    assert_eq!(prefixed.path_prefix.as_deref(), Some("/api"));

    assert_eq!(
        store.domain_by_token(&www.token).await.unwrap().unwrap().id,
        www.id
    );
    store.remove_domain(&admin, &web, &shop).await.unwrap();
    let left = store.domains(web.id).await.unwrap();
    assert_eq!(left.len(), 1);
    assert!(!left[0].primary, "an alias does not become the primary");
}
