//! Helvetia as the ACME client of its domains, against Pebble: adding the HTTPS entry point
//! replaces Traefik without a failed request; a routed domain gets a
//! certificate from Pebble's CA, through HTTP-01 answered by Helvetia on the HTTP entry
//! point, and is served with it on the HTTPS entry point (plain HTTP redirected; HSTS, opted
//! into, only over HTTPS); a restart of Helvetia and Traefik with the master key rotated keeps
//! it (not ordered again, still served); a wildcard is proved by DNS-01 through the `httpreq`
//! DNS provider and served for any name under it; the generated hostname and the public URL's
//! host get theirs once asked for; a domain whose challenge cannot succeed is `failed` with the
//! CA's reason, and the app stays reachable over HTTP.

use std::net::IpAddr;
use std::time::Duration;

use helvetia_test_support::load::Load;
use helvetia_test_support::pebble::{HttpReqReceiver, Pebble, PebbleOptions};
use helvetia_test_support::{FixtureRepo, TestServer, eventually, unique};
use serde_json::Value;

use crate::deploy::Cleanup;

async fn domain(server: &TestServer, project: &str, name: &str) -> Value {
    let listed = server
        .get(&format!("/api/v1/projects/{project}/services/web/domains"))
        .await;
    listed
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no domain {name}: {listed}"))
}

/// A check that `host` answers `path` with 200 over TLS on the HTTPS entry point at `port`
/// (SNI `host`, `root` trusted), with the body.
fn answers_over_tls(
    root: &str,
    (host, path): (&str, &str),
    port: u16,
) -> impl FnMut() -> std::pin::Pin<Box<dyn Future<Output = Option<String>> + Send>> + use<> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(root.as_bytes()).unwrap())
        .resolve(host, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .build()
        .unwrap();
    let url = format!("https://{host}:{port}{path}");
    move || {
        let (client, url) = (client.clone(), url.clone());
        Box::pin(async move {
            let response = client.get(url).send().await.ok()?;
            (response.status() == 200).then_some(())?;
            response.text().await.ok()
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_routed_domain_gets_a_certificate_and_a_refused_one_says_why() {
    let mut server = TestServer::prepare(crate::BINARY);
    let pebble = Pebble::start_with(PebbleOptions {
        http_port: Some(server.http_port),
        ..PebbleOptions::default()
    })
    .await;
    let ca_file = server.dir.path().join("pebble-api-ca.pem");
    std::fs::write(&ca_file, pebble.api_ca_pem()).unwrap();
    let resolver = pebble.dns_address().to_string();
    // A base domain under `.test`: generated hostnames get no certificate unless asked for.
    let plain = [
        "--base-domain",
        "apps.test",
        "--resolver",
        &resolver,
        "--public-addresses",
        "127.0.0.1",
        "--allow-private-destinations",
    ];
    server.launch_with(&plain).await;
    let project = unique("tls");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    assert_eq!(server.deploy(&project, "web").await["status"], "live");

    // Adding the HTTPS entry point replaces Traefik (its static configuration changed): the
    // gate holds the port from the old one to the new one, so no connection is refused. A
    // request sent on a kept-alive connection at the instant the old Traefik closes it may
    // fail (this client does not retry it, as browsers do): at most one per connection.
    let host = format!("web.{project}.apps.test");
    let connections = 4;
    let load = Load::start(server.http_port, &host, "/", connections, 100.0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let traefik_before = server.traefik_pid().expect("Traefik's pid");
    let https_port = helvetia_test_support::free_port();
    let https_address = format!("127.0.0.1:{https_port}");
    let directory = pebble.directory_url();
    // Wildcards are proved by DNS-01 through lego's httpreq format, which the receiver turns
    // into TXT records in challtestsrv (basic auth, from a credentials file).
    let httpreq = HttpReqReceiver::start(&pebble.challtestsrv_url(), "acme", "dns-secret").await;
    let dns_provider = format!("httpreq={}", httpreq.endpoint());
    let dns_credentials = server.dir.path().join("dns-credentials");
    std::fs::write(&dns_credentials, "acme:dns-secret\n").unwrap();
    let secure = [
        "--acme-dns-provider",
        &dns_provider,
        "--acme-dns-credentials-file",
        dns_credentials.to_str().unwrap(),
        "--https-address",
        &https_address,
        "--acme-directory",
        &directory,
        "--acme-ca-file",
        ca_file.to_str().unwrap(),
        "--acme-email",
        "ops@example.test",
    ];
    assert!(server.terminate().success());
    server.extra_args = plain.iter().chain(&secure).map(|a| a.to_string()).collect();
    server.launch().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let replaced = load.stop().await;
    assert_ne!(server.traefik_pid(), Some(traefik_before), "a new Traefik");
    assert!(replaced.sent() > 50, "{} requests", replaced.sent());
    assert!(
        replaced.failed() <= connections,
        "{} failed: {:?}",
        replaced.failed(),
        replaced.errors
    );
    let target = format!("{project}/web");

    // challtestsrv answers every name with 127.0.0.1: the DNS check passes, and Pebble
    // validates on this server's HTTP entry point.
    let added = server.cli_ok(&["domains", "add", &target, "secure.example.test", "--hsts"]);
    assert!(added.contains("routed (dns)"), "{added}");
    assert!(added.contains("max-age 31536000"), "{added}");
    let issued = eventually(Duration::from_secs(60), "the certificate", || async {
        let found = domain(&server, &project, "secure.example.test").await;
        (found["certificate"]["state"] == "issued").then_some(found)
    })
    .await;
    let certificate = &issued["certificate"];
    assert!(
        certificate["issuer"].as_str().unwrap().contains("Pebble"),
        "{certificate}"
    );
    assert!(certificate["not_after"].is_string() && certificate["reason"].is_null());
    // The service's URL is its primary domain over HTTPS now.
    let service = server
        .get(&format!("/api/v1/projects/{project}/services/web"))
        .await;
    assert_eq!(
        service["url"],
        format!("https://secure.example.test:{https_port}"),
        "{service}"
    );

    // Served on the HTTPS entry point (by SNI), trusted through Pebble's root; plain HTTP
    // redirects there.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let root = reqwest::Certificate::from_pem(pebble.issuing_root_pem().await.as_bytes()).unwrap();
    let tls = reqwest::Client::builder()
        .add_root_certificate(root)
        .resolve(
            "secure.example.test",
            std::net::SocketAddr::from(([127, 0, 0, 1], https_port)),
        )
        .build()
        .unwrap();
    let over_tls = || async {
        let response = tls
            .get(format!("https://secure.example.test:{https_port}/"))
            .send()
            .await
            .ok()?;
        (response.status() == 200).then_some(())?;
        response.text().await.ok()
    };
    let body = eventually(Duration::from_secs(20), "the app over TLS", over_tls).await;
    assert!(body.contains("hello"), "{body}");
    let secure = tls
        .get(format!("https://secure.example.test:{https_port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        secure.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{}/a?b", server.http_port))
        .header("Host", "secure.example.test")
        .send()
        .await
        .unwrap();
    let dynamic = std::fs::read_to_string(server.data_dir().join("traefik/dynamic/helvetia.toml"))
        .unwrap_or_default();
    assert!(
        plain.status().is_redirection(),
        "{}\n{dynamic}",
        plain.status()
    );
    assert_eq!(
        plain.headers()["location"],
        format!("https://secure.example.test:{https_port}/a?b").as_str()
    );
    assert!(
        !plain.headers().contains_key("strict-transport-security"),
        "never over plain HTTP"
    );

    // A wildcard, forced by the admin, is proved through the DNS provider (DNS-01) and its
    // certificate serves any name one label under it.
    server.cli_ok(&["domains", "add", &target, "*.wild.example.test", "--force"]);
    let wildcard = eventually(
        Duration::from_secs(60),
        "the wildcard's certificate",
        || async {
            let found = domain(&server, &project, "*.wild.example.test").await;
            (found["certificate"]["state"] == "issued").then_some(found)
        },
    )
    .await;
    let issuer = wildcard["certificate"]["issuer"].as_str().unwrap();
    assert!(issuer.contains("Pebble"), "{wildcard}");
    let calls = httpreq.calls();
    let present = "present _acme-challenge.wild.example.test.".to_owned();
    assert!(calls.contains(&present), "{calls:?}");
    let root_pem = pebble.issuing_root_pem().await;
    let anything = answers_over_tls(&root_pem, ("anything.wild.example.test", "/"), https_port);
    let body = eventually(Duration::from_secs(20), "the wildcard over TLS", anything).await;
    assert!(body.contains("hello"), "{body}");

    // A restart of Helvetia and of Traefik, with the master key rotated meanwhile, keeps the
    // certificate: it is not ordered again, and the new Traefik serves it. The restarted
    // server also asks for the generated hostnames' certificates (`--generated-certificates
    // per-host`, explicit under `.test`) and the public URL's.
    let not_after = certificate["not_after"].clone();
    assert!(server.terminate().success());
    let traefik_before = server.traefik_pid().expect("Traefik's pid");
    server.stop_traefik();
    let stat = format!("/proc/{traefik_before}/stat");
    eventually(Duration::from_secs(20), "Traefik to exit", || async {
        let exited = std::fs::read_to_string(&stat).map_or(true, |s| s.contains(") Z "));
        exited.then_some(())
    })
    .await;
    let rotated = server.server_action(&server.data_dir(), "rotate-key");
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    server.extra_args.extend(
        [
            "--generated-certificates",
            "per-host",
            "--public-url",
            "https://helvetia.example.test",
        ]
        .map(String::from),
    );
    server.launch().await;
    assert_ne!(server.traefik_pid(), Some(traefik_before), "a new Traefik");
    let kept = domain(&server, &project, "secure.example.test").await;
    assert_eq!(kept["certificate"]["not_after"], not_after, "{kept}");
    assert_eq!(kept["certificate"]["state"], "issued");
    let body = eventually(Duration::from_secs(20), "TLS after a restart", over_tls).await;
    assert!(body.contains("hello"), "{body}");
    let generated = answers_over_tls(&root_pem, (&host, "/"), https_port);
    let body = eventually(Duration::from_secs(60), "the generated hostname", generated).await;
    assert!(body.contains("hello"), "{body}");
    let api = answers_over_tls(&root_pem, ("helvetia.example.test", "/healthz"), https_port);
    eventually(Duration::from_secs(60), "the public URL over TLS", api).await;
    let listed = server.cli_ok(&["certificates", "list"]);
    let hostname = |line: &&str| line.trim_start().starts_with("hostname") && line.contains(&host);
    let line = listed.lines().find(hostname).unwrap_or_default();
    assert!(line.contains("issued (CN=Pebble"), "{listed}");
    assert!(listed.contains("public_url"), "{listed}");

    // A name Pebble resolves elsewhere: its challenge cannot succeed. Forced (routed without
    // a check), it fails with the CA's reason and still answers over HTTP.
    let elsewhere: IpAddr = "127.0.0.2".parse().unwrap();
    pebble.add_a("broken.example.test", &[elsewhere]).await;
    server.cli_ok(&["domains", "add", &target, "broken.example.test", "--force"]);
    let failed = eventually(Duration::from_secs(60), "the failure", || async {
        let found = domain(&server, &project, "broken.example.test").await;
        (found["certificate"]["state"] == "failed").then_some(found)
    })
    .await;
    let certificate = &failed["certificate"];
    let reason = certificate["reason"].as_str().unwrap();
    assert!(reason.contains("broken.example.test"), "{reason}");
    assert!(certificate["next_attempt_at"].is_string(), "{certificate}");
    let listed = server.cli_ok(&["domains", "list", &target]);
    assert!(
        listed.contains("failed") && listed.contains("(next attempt "),
        "{listed}"
    );
    // `services show` lists the service's domains with their certificates.
    let shown = server.cli_ok(&["services", "show", &target]);
    for expected in [
        "secure.example.test",
        "issued (CN=Pebble",
        "broken.example.test",
    ] {
        assert!(shown.contains(expected), "{expected}: {shown}");
    }
    assert!(shown.contains("(next attempt "), "{shown}");
    let (status, _) = server
        .through_edge("broken.example.test", "/")
        .await
        .unwrap();
    assert_eq!(status, 200, "reachable over HTTP");
}
