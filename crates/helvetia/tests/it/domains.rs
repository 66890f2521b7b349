//! Custom domains through a real engine and Traefik: a domain whose DNS points at the server
//! is routed to its service; one that resolves to a proxy relaying here is verified by the
//! HTTP check (a token fetched through the domain); one that does not resolve stays
//! unrouted with the DNS answer shown, until forced; basic auth on one domain guards its host
//! alone (not the generated hostname, not Helvetia's own paths); an alias answers a permanent
//! redirect to the primary; a path prefix sends part of a domain to another service.

use std::net::IpAddr;

use helvetia_test_support::dns::TestDns;
use helvetia_test_support::{FixtureRepo, TestServer, unique};
use serde_json::Value;

use crate::deploy::Cleanup;

#[tokio::test(flavor = "multi_thread")]
async fn domains_are_verified_then_routed_redirected_and_split_by_path() {
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    let dns = TestDns::start(&[
        ("shop.example.test", loopback),
        ("www.shop.example.test", loopback),
        ("proxied.example.test", "127.0.0.3".parse().unwrap()),
    ])
    .await;
    let resolver = dns.address().to_string();
    // The public address is where the DNS of `shop` points; `proxied` points at a proxy.
    let server = TestServer::start_with(
        crate::BINARY,
        &[
            "--resolver",
            &resolver,
            "--public-addresses",
            "127.0.0.1",
            "--allow-private-destinations",
        ],
    )
    .await;
    let project = unique("dom");
    let _cleanup = Cleanup(project.clone());
    let web = FixtureRepo::new("web");
    let api = FixtureRepo::new("web");
    api.write("www/api/index.html", "the api service\n", "api");
    server.service(&project, "web", &web).await;
    server.service(&project, "api", &api).await;
    assert_eq!(server.deploy(&project, "web").await["status"], "live");
    assert_eq!(server.deploy(&project, "api").await["status"], "live");
    let web_target = format!("{project}/web");
    let api_target = format!("{project}/api");

    let added = server.cli_ok(&["domains", "add", &web_target, "shop.example.test"]);
    assert!(added.contains("routed (dns)"), "{added}");
    let (status, body) = server.through_edge("shop.example.test", "/").await.unwrap();
    assert_eq!((status, body.contains("hello")), (200, true), "{body}");

    // Resolving elsewhere — to a proxy that relays to this server (a TCP relay on
    // 127.0.0.3, the HTTP port): the DNS check fails, the HTTP check through it passes.
    let relay = tokio::net::TcpListener::bind(("127.0.0.3", server.http_port))
        .await
        .unwrap();
    let port = server.http_port;
    let relaying = tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = relay.accept().await else {
                return;
            };
            tokio::spawn(async move {
                if let Ok(mut upstream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    let proxied = server.cli_ok(&["domains", "add", &web_target, "proxied.example.test"]);
    assert!(proxied.contains("routed (http_token)"), "{proxied}");
    assert!(
        proxied.contains("127.0.0.3"),
        "the DNS answer is shown: {proxied}"
    );
    relaying.abort();
    let (status, _) = server
        .through_edge("proxied.example.test", "/")
        .await
        .unwrap();
    assert_eq!(status, 200, "routed");

    // Not resolving at all: not routed, the answer shown; forced, routed.
    let nowhere = server.cli_ok(&["domains", "add", &web_target, "nowhere.example.test"]);
    assert!(nowhere.contains("could not be resolved"), "{nowhere}");
    server.cli_ok(&["domains", "remove", &web_target, "nowhere.example.test"]);
    let forced = server.cli_ok(&[
        "domains",
        "add",
        &web_target,
        "nowhere.example.test",
        "--force",
    ]);
    assert!(forced.contains("routed (forced)"), "{forced}");
    let (status, _) = server
        .through_edge("nowhere.example.test", "/")
        .await
        .unwrap();
    assert_eq!(status, 200);

    // Basic auth on that domain: its host asks for the credentials; the service's generated
    // hostname, its other domains and Helvetia's own paths on that host do not.
    let guarded = server.cli_ok_input(
        &[
            "domains",
            "auth",
            &web_target,
            "nowhere.example.test",
            "--user",
            "alice",
            "--password-stdin",
        ],
        "open sesame\n",
    );
    assert!(guarded.contains("alice"), "{guarded}");
    let edge = reqwest::Client::new();
    let fetch = |host: &'static str, path: String, credentials: Option<&'static str>| {
        let mut request = edge
            .get(format!("http://127.0.0.1:{}{path}", server.http_port))
            .header("Host", host);
        if let Some(password) = credentials {
            request = request.basic_auth("alice", Some(password));
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let root = || "/".to_owned();
    assert_eq!(fetch("nowhere.example.test", root(), None).await, 401);
    let wrong = Some("not the password");
    assert_eq!(fetch("nowhere.example.test", root(), wrong).await, 401);
    let right = Some("open sesame");
    assert_eq!(fetch("nowhere.example.test", root(), right).await, 200);
    assert_eq!(fetch("shop.example.test", root(), None).await, 200);
    let generated = format!("web.{project}.localhost");
    assert_eq!(server.through_edge(&generated, "/").await.unwrap().0, 200);
    let domains: Value = server
        .get(&format!("/api/v1/projects/{project}/services/web/domains"))
        .await;
    let nowhere = domains
        .as_array()
        .unwrap()
        .iter()
        .find(|domain| domain["name"] == "nowhere.example.test")
        .unwrap();
    assert_eq!(nowhere["basic_auth"]["user"], "alice", "{nowhere}");
    assert!(!nowhere.to_string().contains("$2"), "no hash: {nowhere}");
    let token = nowhere["token"].as_str().unwrap();
    let well_known = format!("/.well-known/helvetia/{token}");
    assert_eq!(fetch("nowhere.example.test", well_known, None).await, 200);
    server.cli_ok(&[
        "domains",
        "auth",
        &web_target,
        "nowhere.example.test",
        "--clear",
    ]);
    assert_eq!(fetch("nowhere.example.test", root(), None).await, 200);

    // An alias redirects permanently to the primary, path and query kept.
    server.cli_ok(&[
        "domains",
        "add",
        &web_target,
        "www.shop.example.test",
        "--redirect",
    ]);
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = raw
        .get(format!("http://127.0.0.1:{}/a/b?c=d", server.http_port))
        .header(
            "Host",
            format!("www.shop.example.test:{}", server.http_port),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        308,
        "a permanent redirect, method kept"
    );
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        location,
        format!("http://shop.example.test:{}/a/b?c=d", server.http_port)
    );

    // A path prefix of the same domain goes to the other service.
    server.cli_ok(&[
        "domains",
        "add",
        &api_target,
        "shop.example.test",
        "--path-prefix",
        "/api",
        "--force",
    ]);
    let (status, body) = server
        .through_edge("shop.example.test", "/api/index.html")
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "the api service\n"));
    let listed: Value = server
        .get(&format!("/api/v1/projects/{project}/services/web/domains"))
        .await;
    assert_eq!(listed[0]["name"], "shop.example.test", "{listed}");
    assert_eq!(listed[0]["primary"], true);
}
