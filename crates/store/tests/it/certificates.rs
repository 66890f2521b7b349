//! Certificates per subject: a routed domain's row is made by the sync, generated hostnames'
//! and wildcards' as the server wants them (and removed when it no longer does); new rows are
//! due at once, failed ones after their wait, issued ones at renewal; issued ones are served
//! with their subject, and their keys listed for a rotation.

use helvetia_core::certificate::{
    CertificateKind, CertificateSource, CertificateState, CertificateSubject,
};
use helvetia_core::domain::{DomainName, Verification};
use helvetia_store::certificates::{Ordered, Uploaded};
use helvetia_store::domains::NewDomain;
use jiff::{SignedDuration, Timestamp};

use crate::backend::TestDb;
use crate::deployments::demo_service;

pub async fn certificates_are_kept_per_subject_ordered_recorded_and_served(db: &TestDb) {
    let store = &db.store;
    let admin = db.admin().await;
    let web = demo_service(db, "web").await;
    let add = |name: &'static str, prefix: Option<&'static str>, routed: bool| {
        let admin = admin.clone();
        let web = web.clone();
        async move {
            let name = DomainName::parse(name, true).unwrap();
            let new = NewDomain {
                name: &name,
                path_prefix: prefix,
                redirect: false,
                token: &format!("token-{name}-{prefix:?}"),
            };
            let domain = store.add_domain(&admin, &web, &new).await.unwrap();
            let verified = routed.then_some(Verification::Forced);
            (store.record_domain_check(&admin, &web, &domain, verified, "checked", false))
                .await
                .unwrap()
        }
    };
    let shop = add("shop.example.test", None, true).await;
    add("shop.example.test", Some("/api"), true).await;
    add("unrouted.example.test", None, false).await;
    let hostnames = store.generated_hostnames().await.unwrap();
    assert_eq!(hostnames, ["web.demo.localhost"]);
    assert_eq!(
        store
            .service_of_hostname("web.demo.localhost")
            .await
            .unwrap(),
        Some(web.id)
    );

    let now = Timestamp::now();
    let host = CertificateSubject::new(CertificateKind::Hostname, "web.demo.localhost");
    let wildcard = CertificateSubject::new(CertificateKind::Wildcard, "*.demo.localhost");
    let wanted = [host.clone(), wildcard.clone()];
    assert!(!store.sync_certificates(&wanted, now).await.unwrap());
    assert!(
        !store.sync_certificates(&wanted, now).await.unwrap(),
        "idempotent"
    );
    let due = store.certificates_due(now).await.unwrap();
    let subjects: Vec<_> = due.iter().map(|due| due.subject.clone()).collect();
    // One per whole routed name: a path prefix shares its name's, an unrouted domain has none.
    assert_eq!(
        subjects,
        [
            CertificateSubject::domain(shop.id, "shop.example.test"),
            host.clone(),
            wildcard.clone(),
        ]
    );
    assert!(
        due.iter()
            .all(|due| due.certificate.state == CertificateState::Pending)
    );
    let listed = store.domains(web.id).await.unwrap();
    let shop_listed = listed.iter().find(|d| d.id == shop.id).unwrap();
    assert_eq!(
        shop_listed.certificate.as_ref().unwrap().state,
        CertificateState::Pending
    );

    // Ordered: the hostname issued, the wildcard refused, the domain still pending.
    let id =
        |subject: &CertificateSubject| due.iter().find(|due| &due.subject == subject).unwrap().id;
    for due in &due {
        store.start_certificate_order(due.id).await.unwrap();
    }
    let renew_at = now + SignedDuration::from_hours(60 * 24);
    let issued = Ordered::Issued {
        chain_pem: "CHAIN",
        sealed_key: "SEALED",
        issuer: "Pebble",
        not_before: now,
        not_after: now + SignedDuration::from_hours(90 * 24),
        renew_at,
    };
    store
        .record_certificate_order(id(&host), &issued)
        .await
        .unwrap();
    let refused = Ordered::Failed {
        reason: "no DNS provider",
        next_attempt_at: now + SignedDuration::from_mins(1),
    };
    store
        .record_certificate_order(id(&wildcard), &refused)
        .await
        .unwrap();
    assert!(store.certificates_due(now).await.unwrap().is_empty());
    let later = store
        .certificates_due(now + SignedDuration::from_mins(2))
        .await
        .unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].subject, wildcard);
    assert_eq!(later[0].certificate.state, CertificateState::Failed);
    assert_eq!(later[0].certificate.failures, 1);
    assert_eq!(
        later[0].certificate.reason.as_deref(),
        Some("no DNS provider")
    );
    store
        .retry_failed_certificates("no DNS provider", now)
        .await
        .unwrap();
    assert_eq!(store.certificates_due(now).await.unwrap().len(), 1);
    let at_renewal = store.certificates_due(renew_at).await.unwrap();
    assert!(at_renewal.iter().any(|due| due.subject == host));

    let served = store.served_certificates().await.unwrap();
    assert_eq!(served.len(), 1);
    assert_eq!(served[0].subject, host);
    assert_eq!(served[0].chain_pem, "CHAIN");
    let keys = store.sealed_certificate_keys().await.unwrap();
    assert_eq!(keys, [(id(&host), host.clone(), "SEALED".to_owned())]);

    // No longer wanted (per-host switched off): removed, and the issued one is said so.
    assert!(store.sync_certificates(&[], now).await.unwrap());
    assert!(store.served_certificates().await.unwrap().is_empty());
    let left: Vec<_> = (store.certificates().await.unwrap())
        .into_iter()
        .map(|stored| stored.subject.kind)
        .collect();
    assert!(
        left.iter().all(|kind| *kind == CertificateKind::Domain),
        "{left:?}"
    );
    // An uploaded certificate replaces the domain's, is never due, is warned of once per end,
    // and goes when removed.
    let ends = now + SignedDuration::from_hours(5 * 24);
    let uploaded = Uploaded {
        chain_pem: "OWN CHAIN",
        sealed_key: "OWN KEY",
        issuer: "CN=Own CA",
        not_before: now - SignedDuration::from_hours(24),
        not_after: ends,
    };
    store
        .upload_certificate(&admin, &web, &shop, &uploaded)
        .await
        .unwrap();
    let own = (store.certificates().await.unwrap())
        .into_iter()
        .find(|stored| stored.subject.domain_id == Some(shop.id))
        .unwrap();
    assert_eq!(own.certificate.source, CertificateSource::Uploaded);
    assert_eq!(own.certificate.state, CertificateState::Expiring);
    let later = now + SignedDuration::from_hours(24 * 365);
    assert!(
        (store.certificates_due(later).await.unwrap())
            .iter()
            .all(|due| due.id != own.id)
    );
    let warned = store.certificates_to_warn_of(now).await.unwrap();
    assert_eq!(warned.iter().map(|w| w.id).collect::<Vec<_>>(), [own.id]);
    store.record_expiry_warning(own.id, ends).await.unwrap();
    assert!(store.certificates_to_warn_of(now).await.unwrap().is_empty());
    assert!(
        store
            .remove_uploaded_certificate(&admin, &web, &shop)
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_uploaded_certificate(&admin, &web, &shop)
            .await
            .unwrap()
    );

    // A removed domain takes its certificate along.
    store.remove_domain(&admin, &web, &shop).await.unwrap();
    let left = store.certificates().await.unwrap();
    assert!(
        left.iter()
            .all(|stored| stored.subject.domain_id != Some(shop.id))
    );
}
