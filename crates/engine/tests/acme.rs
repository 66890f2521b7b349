//! The ACME client against a real CA: Pebble and pebble-challtestsrv on loopback (one pair per
//! test), HTTP-01 served by the test, DNS-01 through the `httpreq` and Cloudflare providers
//! (the latter against a fake of Cloudflare's API), and the CA's reasons when it refuses.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use helvetia_core::outbound::DestinationPolicy;
use helvetia_engine::acme::dns::{Cloudflare, Dns01Responder, DnsProvider, HttpReq};
use helvetia_engine::acme::{
    AcmeClient, AcmeError, Challenge, ChallengeKind, ChallengeResponder, Directory,
    ExternalAccountBinding, IssuedCertificate, OrderRequest, ResponderError,
};
use helvetia_engine::outbound::{Outbound, ResolverSetting};
use helvetia_test_support::cloudflare::FakeCloudflare;
use helvetia_test_support::pebble::{Http01Server, HttpReqReceiver, Pebble, PebbleOptions};

/// Every destination here is a loopback address written as such: nothing is looked up.
fn outbound() -> Arc<Outbound> {
    let policy = DestinationPolicy {
        allow_private: true,
    };
    Arc::new(Outbound::new(policy, ResolverSetting::System).unwrap())
}

fn client(pebble: &Pebble) -> AcmeClient {
    let directory = Directory::Url(pebble.directory_url().parse().unwrap());
    AcmeClient::new(outbound(), directory, pebble.api_ca_pem()).unwrap()
}

/// Serves HTTP-01 answers where Pebble looks for them; `serve: false` presents nothing, so
/// the CA finds no answer.
struct Http01 {
    server: Http01Server,
    serve: bool,
}

impl ChallengeResponder for Http01 {
    fn present<'a>(
        &'a self,
        challenge: &'a Challenge,
    ) -> BoxFuture<'a, Result<(), ResponderError>> {
        Box::pin(async move {
            match challenge {
                Challenge::Http01 {
                    token,
                    key_authorization,
                    ..
                } if self.serve => self.server.set(token, key_authorization),
                Challenge::Http01 { .. } => {}
                Challenge::Dns01 { .. } => return Err(ResponderError("HTTP-01 only".into())),
            }
            Ok(())
        })
    }

    fn clean_up<'a>(
        &'a self,
        challenge: &'a Challenge,
    ) -> BoxFuture<'a, Result<(), ResponderError>> {
        Box::pin(async move {
            if let Challenge::Http01 { token, .. } = challenge {
                self.server.remove(token);
            }
            Ok(())
        })
    }
}

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

/// The certificate is Pebble's, valid now, for `validity` when given.
fn assert_issued_by_pebble(certificate: &IssuedCertificate, validity: Option<Duration>) {
    let info = &certificate.info;
    assert!(
        info.issuer.starts_with("CN=Pebble Intermediate CA"),
        "{info:?}"
    );
    let now = jiff::Timestamp::now();
    assert!(info.not_before <= now && now < info.not_after, "{info:?}");
    if let Some(validity) = validity {
        let lifetime = info.not_after.duration_since(info.not_before);
        let expected = jiff::SignedDuration::try_from(validity).unwrap();
        assert!(
            (lifetime - expected).abs() <= jiff::SignedDuration::from_secs(2),
            "{lifetime:?} for {validity:?}"
        );
    }
    assert!(certificate.chain_pem.matches("BEGIN CERTIFICATE").count() >= 2);
    assert!(certificate.private_key_pem.contains("BEGIN PRIVATE KEY"));
}

#[tokio::test]
async fn http01_issues_a_certificate_from_a_stored_account() {
    let validity = Duration::from_secs(600);
    let pebble = Pebble::start_with(PebbleOptions {
        validity: Some(validity),
        ..PebbleOptions::default()
    })
    .await;
    let acme = client(&pebble);
    let (created, credentials) = acme
        .create_account(&["mailto:ops@example.test".to_owned()], None)
        .await
        .unwrap();
    assert!(!format!("{credentials:?}").contains("key"));
    // What the caller sealed and opened again: the same account.
    let account = acme.load_account(&credentials).await.unwrap();
    assert_eq!(account.id(), created.id());

    let responder = Http01 {
        server: Http01Server::start(pebble.http_port()).await,
        serve: true,
    };
    let request = OrderRequest::new(
        names(&["shop.example.test", "www.shop.example.test"]),
        ChallengeKind::Http01,
    );
    let certificate = account.order(&request, &responder).await.unwrap();
    assert_issued_by_pebble(&certificate, Some(validity));
    assert_eq!(responder.server.tokens(), Vec::<String>::new());
    assert_serves_as(
        &certificate,
        &pebble.issuing_root_pem().await,
        &request.identifiers,
    );
}

/// What a TLS server with `certificate` proves, checked as a client that trusts `root` would:
/// the chain holds for each name, and the key is the leaf's.
fn assert_serves_as(certificate: &IssuedCertificate, root: &str, names: &[String]) {
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(certificate.chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(certificate.private_key_pem.as_bytes()).unwrap();
    // rustls refuses a key that is not the certificate's.
    rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain.clone(), key)
        .unwrap();

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(root.as_bytes()).unwrap())
        .unwrap();
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
    for name in names {
        let name = ServerName::try_from(name.clone()).unwrap();
        verifier
            .verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now())
            .unwrap();
    }
}

#[tokio::test]
async fn a_wildcard_is_issued_through_dns01_with_the_httpreq_provider() {
    let pebble = Pebble::start().await;
    let receiver = HttpReqReceiver::start(&pebble.challtestsrv_url(), "lego", "s3cret").await;
    // The endpoint by name, resolved through the outbound policy's resolver: challtestsrv's
    // DNS, which answers 127.0.0.1.
    let mut endpoint: url::Url = receiver.endpoint().parse().unwrap();
    endpoint.set_host(Some("dns-hook.example.test")).unwrap();
    let resolving = Arc::new(
        Outbound::new(
            DestinationPolicy {
                allow_private: true,
            },
            ResolverSetting::Server(pebble.dns_address()),
        )
        .unwrap(),
    );
    let acme = client(&pebble);
    let (account, _) = acme.create_account(&[], None).await.unwrap();

    let wrong_password = Dns01Responder::new(
        HttpReq::new(
            resolving.clone(),
            endpoint.clone(),
            Some(("lego".into(), "wrong".into())),
        ),
        Duration::ZERO,
    );
    let request = OrderRequest::new(
        names(&["*.apps.example.test", "apps.example.test"]),
        ChallengeKind::Dns01,
    );
    let refused = account.order(&request, &wrong_password).await.unwrap_err();
    assert!(
        matches!(&refused, AcmeError::Challenge { reason, .. } if reason.contains("401")),
        "{refused}"
    );

    // challtestsrv answers at once; the wait is still waited.
    let propagation = Duration::from_millis(300);
    let provider = Dns01Responder::new(
        HttpReq::new(resolving, endpoint, Some(("lego".into(), "s3cret".into()))),
        propagation,
    );
    let started = std::time::Instant::now();
    let certificate = account.order(&request, &provider).await.unwrap();
    assert!(started.elapsed() >= propagation);
    assert_issued_by_pebble(&certificate, None);
    let root = pebble.issuing_root_pem().await;
    assert_serves_as(
        &certificate,
        &root,
        &names(&["x.apps.example.test", "apps.example.test"]),
    );
    let calls = receiver.calls();
    let fqdn = "_acme-challenge.apps.example.test.";
    assert_eq!(
        calls,
        [
            format!("present {fqdn}"),
            format!("present {fqdn}"),
            format!("cleanup {fqdn}"),
            format!("cleanup {fqdn}"),
        ]
    );
}

#[tokio::test]
async fn the_cloudflare_provider_sets_and_removes_records_through_the_documented_api() {
    let fake = FakeCloudflare::start("cf-token", &["example.test"]).await;
    let api: url::Url = fake.api_url().parse().unwrap();
    let cloudflare = Cloudflare::new(outbound(), api.clone(), "cf-token".into());
    let fqdn = "_acme-challenge.deep.sub.example.test.";
    cloudflare.present(fqdn, "one").await.unwrap();
    cloudflare.present(fqdn, "two").await.unwrap();
    cloudflare.clean_up(fqdn, "one").await.unwrap();
    let held: Vec<(String, String, String)> = fake
        .records()
        .into_iter()
        .map(|r| (r.kind, r.name, r.content))
        .collect();
    assert_eq!(
        held,
        [(
            "TXT".to_owned(),
            "_acme-challenge.deep.sub.example.test".to_owned(),
            "two".to_owned()
        )]
    );
    // A record already gone is no error.
    cloudflare.clean_up(fqdn, "one").await.unwrap();

    let outside = cloudflare
        .present("_acme-challenge.example.org.", "x")
        .await
        .unwrap_err();
    assert_eq!(
        outside.to_string(),
        "Cloudflare: no zone of this API token holds _acme-challenge.example.org"
    );
    let wrong_token = Cloudflare::new(outbound(), api.clone(), "nope".into());
    let refused = wrong_token.present(fqdn, "x").await.unwrap_err();
    assert_eq!(
        refused.to_string(),
        "Cloudflare answered 403 Forbidden: Authentication error (code 10000)"
    );

    // A wildcard issued with the records in the fake, which Pebble sees through challtestsrv.
    let pebble = Pebble::start().await;
    fake.mirror_to(&pebble.challtestsrv_url());
    let (account, _) = client(&pebble).create_account(&[], None).await.unwrap();
    let request = OrderRequest::new(names(&["*.cf.example.test"]), ChallengeKind::Dns01);
    let responder = Dns01Responder::new(cloudflare, Duration::ZERO);
    let certificate = account.order(&request, &responder).await.unwrap();
    assert_issued_by_pebble(&certificate, None);
    assert_eq!(fake.records().len(), 1, "only the earlier record is left");
}

#[tokio::test]
async fn a_challenge_that_fails_answers_the_cas_reason() {
    let pebble = Pebble::start().await;
    let acme = client(&pebble);
    let (account, _) = acme.create_account(&[], None).await.unwrap();
    let responder = Http01 {
        server: Http01Server::start(pebble.http_port()).await,
        serve: false,
    };
    let request = OrderRequest::new(names(&["nothing.example.test"]), ChallengeKind::Http01);
    let error = account.order(&request, &responder).await.unwrap_err();
    let AcmeError::Refused { domain, problem } = &error else {
        panic!("{error:?}\n{}", pebble.log());
    };
    assert_eq!(domain.as_deref(), Some("nothing.example.test"));
    assert_eq!(
        problem.kind.as_deref(),
        Some("urn:ietf:params:acme:error:unauthorized"),
        "{error}"
    );
    assert!(
        problem.detail.as_deref().unwrap_or("").contains("404"),
        "{error}"
    );

    // A name that points elsewhere (here: a loopback address where nothing listens).
    let responder = Http01 {
        serve: true,
        ..responder
    };
    pebble
        .add_a("elsewhere.example.test", &["127.0.0.2".parse().unwrap()])
        .await;
    let request = OrderRequest::new(names(&["elsewhere.example.test"]), ChallengeKind::Http01);
    let error = account.order(&request, &responder).await.unwrap_err();
    assert!(
        matches!(&error, AcmeError::Refused { problem, .. }
            if problem.kind.as_deref() == Some("urn:ietf:params:acme:error:connection")),
        "{error}"
    );
    assert!(error.to_string().contains("127.0.0.2"), "{error}");

    // A CA whose certificate is not trusted is not reached, and the reason says so.
    let untrusted = AcmeClient::new(
        outbound(),
        Directory::Url(pebble.directory_url().parse().unwrap()),
        "",
    )
    .unwrap();
    let error = untrusted.create_account(&[], None).await.unwrap_err();
    assert!(
        matches!(&error, AcmeError::Unreachable(reason) if reason.contains("certificate")),
        "{error}"
    );

    // Nor one the outbound policy refuses: the CA is reached like any user-chosen address.
    let strict = Arc::new(
        Outbound::new(
            DestinationPolicy {
                allow_private: false,
            },
            ResolverSetting::System,
        )
        .unwrap(),
    );
    let directory = Directory::Url(pebble.directory_url().parse().unwrap());
    let refused = AcmeClient::new(strict, directory, pebble.api_ca_pem()).unwrap();
    let error = refused.create_account(&[], None).await.unwrap_err();
    assert!(
        matches!(&error, AcmeError::Unreachable(reason)
            if reason.starts_with("destination not allowed")),
        "{error}"
    );
}

#[tokio::test]
async fn a_ca_that_requires_external_account_binding_gets_it() {
    let hmac_key = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let pebble = Pebble::start_with(PebbleOptions {
        external_account: Some(("kid-1".into(), hmac_key.into())),
        ..PebbleOptions::default()
    })
    .await;
    let acme = client(&pebble);
    let error = acme.create_account(&[], None).await.unwrap_err();
    let required = Some("urn:ietf:params:acme:error:externalAccountRequired");
    assert!(
        matches!(&error, AcmeError::Refused { problem, .. } if problem.kind.as_deref() == required),
        "{error}"
    );
    let binding = ExternalAccountBinding {
        key_id: "kid-1".into(),
        hmac_key: hmac_key.into(),
    };
    acme.create_account(&[], Some(&binding)).await.unwrap();
}
