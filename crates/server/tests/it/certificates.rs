//! The certificates task through the API, without a CA to reach: a wildcard domain with no DNS
//! provider set is `failed` with the reason at once — the CA is never asked, and the next
//! attempt waits like any failure's; instance administrators list every certificate.

use std::time::Duration;

use axum::http::StatusCode;
use helvetia_core::certificate::GeneratedCertificates;
use helvetia_server::AcmeDirectory;
use helvetia_server::certificates::{self, WILDCARD_NEEDS_DNS};
use helvetia_server::platform::AcmeSettings;
use helvetia_test_support::eventually;
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
