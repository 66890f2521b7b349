use helvetia_core::domain::{DomainName, Hsts, Verification};
use helvetia_core::routing::BasicAuth;
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
            .record_domain_check(
                &admin,
                service,
                domain,
                Some(Verification::Dns),
                "ok",
                false,
            )
            .await
            .unwrap();
    }
    let checked = store
        .record_domain_check(&admin, &web, &shop, None, "a later failure", false)
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

pub async fn basic_auth_and_hsts_route_a_domain_apart_and_unverified_ones_are_rechecked(
    db: &TestDb,
) {
    let store = &db.store;
    let admin = db.admin().await;
    let web = demo_service(db, "web").await;
    let domain = name("private.example.test");
    let new = NewDomain {
        name: &domain,
        path_prefix: None,
        redirect: false,
        token: "token-private",
    };
    let private = store.add_domain(&admin, &web, &new).await.unwrap();
    assert_eq!(private.next_check_at, None, "scheduled by its first check");

    // A person's failed check schedules the first re-check a minute on; automatic ones wait
    // longer each time.
    let before = jiff::Timestamp::now();
    let checked = store
        .record_domain_check(&admin, &web, &private, None, "no answer", false)
        .await
        .unwrap();
    let first = checked.next_check_at.unwrap();
    let wait = first.duration_since(before).as_secs();
    assert!((59..=61).contains(&wait), "{wait}");
    assert!(
        store
            .domains_due_for_check(before)
            .await
            .unwrap()
            .is_empty()
    );
    let due = store.domains_due_for_check(first).await.unwrap();
    assert_eq!(due.len(), 1);
    let rechecked = store
        .record_domain_check(&admin, &web, &due[0], None, "no answer", true)
        .await
        .unwrap();
    let second = rechecked.next_check_at.unwrap();
    assert!(second.duration_since(before).as_secs() >= 119, "{second}");

    // Basic auth and HSTS: the domain gets a route of its own; the hash is never shown.
    let auth = BasicAuth {
        user: "alice".into(),
        hash: "$2y$08$hash".into(),
    };
    store
        .set_domain_basic_auth(&admin, &web, &private, Some(&auth))
        .await
        .unwrap();
    let hsts = Hsts {
        max_age_seconds: 600,
        include_subdomains: false,
        preload: false,
    };
    let set = store
        .set_domain_hsts(&admin, &web, &private, Some(hsts))
        .await
        .unwrap();
    assert_eq!(set.basic_auth.as_ref().unwrap().user, "alice");
    assert_eq!(set.hsts, Some(hsts));
    let verified = store
        .record_domain_check(
            &admin,
            &web,
            &set,
            Some(Verification::Forced),
            "forced",
            false,
        )
        .await
        .unwrap();
    assert_eq!(verified.next_check_at, None, "verified: no more re-checks");
    let table = store.routing_table().await.unwrap();
    let own = table
        .route(&format!("demo_web_domain{}", private.id))
        .unwrap();
    assert_eq!(own.hostnames, ["private.example.test"]);
    assert_eq!(own.basic_auth.as_ref(), Some(&auth));
    assert_eq!(own.hsts, Some(hsts));
    let service_route = table.route("demo_web").unwrap();
    assert!(
        !service_route
            .hostnames
            .contains(&"private.example.test".into())
    );

    // Cleared, it joins the service's route again.
    store
        .set_domain_basic_auth(&admin, &web, &private, None)
        .await
        .unwrap();
    let cleared = store
        .set_domain_hsts(&admin, &web, &private, None)
        .await
        .unwrap();
    assert!(cleared.basic_auth.is_none() && cleared.hsts.is_none());
    let table = store.routing_table().await.unwrap();
    assert!(
        table
            .route("demo_web")
            .unwrap()
            .hostnames
            .contains(&"private.example.test".into())
    );
}
