//! The certificates task through the API, without a CA to reach: a wildcard domain with no DNS
//! provider set is `failed` with the reason at once — the CA is never asked, and the next
//! attempt waits like any failure's; instance administrators list every certificate. A team's
//! own uploaded certificate: checked, served, its coming expiry notified once.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use helvetia_core::certificate::GeneratedCertificates;
use helvetia_server::AcmeDirectory;
use helvetia_server::certificates::{self, WILDCARD_NEEDS_DNS, notices};
use helvetia_server::platform::AcmeSettings;
use helvetia_test_support::eventually;
use helvetia_test_support::pebble::TestCertificates;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::harness::Api;

const WEB: &str = "/api/v1/projects/demo/services/web/domains";

#[tokio::test]
async fn a_wildcard_without_a_dns_provider_fails_with_the_reason_and_no_order() {
    let api = Api::configured(|settings| {
        settings.acme = Some(AcmeSettings {
            // Nothing listens there: an order would fail with "could not be reached".
            directory: AcmeDirectory::Url("https://127.0.0.1:9/dir".parse().unwrap()),
            contact: None,
            extra_roots_pem: String::new(),
            external_account: None,
            dns: None,
            generated: GeneratedCertificates::None,
        });
    })
    .await;
    api.demo_service("web").await;
    let (_, added) = api
        .post(WEB, json!({"name": "*.wild.example.test", "force": true}))
        .await;
    assert_eq!(added["verification"], "forced", "{added}");
    let stop = CancellationToken::new();
    let task = tokio::spawn(certificates::run(api.platform.clone(), stop.clone()));
    let certificate = eventually(Duration::from_secs(10), "the refusal", || async {
        let (_, listed) = api.get(WEB).await;
        let certificate = listed[0]["certificate"].clone();
        (certificate["state"] == "failed").then_some(certificate)
    })
    .await;
    assert_eq!(certificate["reason"], WILDCARD_NEEDS_DNS, "{certificate}");
    assert_eq!(certificate["failures"], 1);
    assert!(certificate["next_attempt_at"].is_string(), "{certificate}");
    // Every certificate, of every kind, for instance administrators.
    let (status, all) = api.get("/api/v1/certificates").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all[0]["kind"], "domain", "{all}");
    assert_eq!(all[0]["names"], json!(["*.wild.example.test"]));
    assert_eq!(all[0]["certificate"]["reason"], WILDCARD_NEEDS_DNS);
    stop.cancel();
    task.await.unwrap();
}

/// A certificate of the team's own: checked (the key is the chain's, it covers the domain, it
/// is valid now), served without Helvetia as an ACME client, never ordered; ending within 14
/// days it shows `expiring`, is notified once, and `/metrics` says its days left; removed, the
/// domain has none again.
#[tokio::test]
async fn an_uploaded_certificate_is_checked_served_and_its_expiry_notified_once() {
    let api = Api::new().await;
    api.demo_service("web").await;
    let (status, _) = api
        .post(WEB, json!({"name": "own.example.test", "force": true}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, channel) = api
        .post(
            "/api/v1/projects/demo/notifications",
            json!({"name": "ops", "kind": "webhook", "events": ["certificate_expiring"],
                   "url": "https://hooks.invalid/ops"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    let upload = format!("{WEB}/own.example.test/certificate");
    let admin = Some(api.admin.as_str());
    let made = TestCertificates::ending_in(&["own.example.test", "www.own.example.test"], 10);
    let chain = format!("{}{}", made.leaf_pem, made.ca_pem);

    // Refused: another certificate's key, another name, an expired certificate.
    let other = TestCertificates::ending_in(&["elsewhere.example.test"], 30);
    let expired = TestCertificates::ending_in(&["own.example.test"], -2);
    for (chain_pem, key_pem, said) in [
        (chain.clone(), other.leaf_key_pem.clone(), "not the key"),
        (
            other.leaf_pem.clone(),
            other.leaf_key_pem.clone(),
            "not own.example.test",
        ),
        (
            expired.leaf_pem.clone(),
            expired.leaf_key_pem.clone(),
            "not now",
        ),
    ] {
        let body = json!({"chain_pem": chain_pem, "key_pem": key_pem});
        let (status, refused) = api.call(Method::PUT, &upload, admin, Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert!(refused.to_string().contains(said), "{said}: {refused}");
        assert!(!refused.to_string().contains("PRIVATE KEY"), "{refused}");
    }

    let body = json!({"chain_pem": chain, "key_pem": made.leaf_key_pem});
    let (status, domain) = api.call(Method::PUT, &upload, admin, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{domain}");
    let certificate = &domain["certificate"];
    assert_eq!(certificate["source"], "uploaded", "{certificate}");
    assert_eq!(
        certificate["state"], "expiring",
        "10 days left: {certificate}"
    );
    assert_eq!(certificate["issuer"], "CN=Helvetia test CA");
    assert!(!domain.to_string().contains("PRIVATE KEY"), "{domain}");
    // Served (its key opened from the vault), never due for an order.
    let table = api.platform.routing_table().await.unwrap();
    let served = table.certificates();
    assert_eq!(served.len(), 1);
    assert!(served[0].key_pem.contains("PRIVATE KEY"));
    let due = api
        .store
        .certificates_due(jiff::Timestamp::now())
        .await
        .unwrap();
    assert!(due.is_empty(), "{due:?}");

    // Its coming expiry is notified once (and in /metrics).
    let now = jiff::Timestamp::now();
    assert_eq!(notices::warn_due(&api.platform, now).await.unwrap(), 1);
    assert_eq!(notices::warn_due(&api.platform, now).await.unwrap(), 0);
    let (_, messages) = api
        .get("/api/v1/projects/demo/notifications/ops/messages")
        .await;
    let messages = messages.as_array().unwrap();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(
        messages[0]["event"]["kind"], "certificate_expiring",
        "{messages:?}"
    );
    let (_, exposition) = api.get("/metrics").await;
    let exposition = exposition.as_str().unwrap();
    let line = exposition
        .lines()
        .find(|line| line.starts_with("helvetia_certificate_expiry_days{"))
        .unwrap_or_else(|| panic!("{exposition}"));
    assert!(line.contains("names=\"own.example.test\""), "{line}");
    let days: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((8.0..10.0).contains(&days), "{line}");

    // Removed: nothing served, nothing left to remove.
    let (status, domain) = api.call(Method::DELETE, &upload, admin, None).await;
    assert_eq!(status, StatusCode::OK, "{domain}");
    assert!(domain["certificate"].is_null(), "{domain}");
    let table = api.platform.routing_table().await.unwrap();
    assert!(table.certificates().is_empty());
    let (status, _) = api.call(Method::DELETE, &upload, admin, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
