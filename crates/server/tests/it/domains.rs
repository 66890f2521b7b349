//! Custom domains through the API (each publish waits out the external Traefik's reload,
//! about 2.5 s, as this harness has no Traefik API to confirm with): names checked and reserved ones refused, one service per
//! domain, the DNS check (through the server's resolver) routes a domain whose DNS points
//! here and says what it answered otherwise, team admins force, aliases redirect to the
//! primary, a path prefix routes part of a domain to another service, the HTTP check's token
//! is public.

use std::net::IpAddr;

use axum::http::{Method, StatusCode};
use helvetia_core::auth::Scope;
use helvetia_engine::outbound::ResolverSetting;
use helvetia_test_support::dns::TestDns;
use serde_json::{Value, json};

use crate::harness::Api;

const WEB: &str = "/api/v1/projects/demo/services/web/domains";
const API: &str = "/api/v1/projects/demo/services/api/domains";

/// The published Traefik configuration, as text.
fn published(api: &Api) -> String {
    let dir = api.dir.path().join("traefik");
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    text
}

#[tokio::test]
async fn domains_are_checked_routed_redirected_and_split_by_path() {
    let here: IpAddr = "127.0.0.1".parse().unwrap();
    let elsewhere: IpAddr = "127.0.0.2".parse().unwrap();
    let dns = TestDns::start(&[
        ("shop.example.test", here),
        ("www.shop.example.test", here),
        ("moved.example.test", elsewhere),
    ])
    .await;
    let api = Api::resolving_with(ResolverSetting::Server(dns.address()), |settings| {
        settings.public_addresses = vec![here];
    })
    .await;
    api.demo_service("web").await;
    api.demo_service("api").await;
    let add = |path: &'static str, body: Value| api.post(path, body);

    // Checked names; the base domain's and addresses are not domains one adds.
    for bad in [
        "web.demo.localhost",
        "localhost",
        "10.0.0.1",
        "a..b",
        "*.x.*.test",
    ] {
        let (status, reply) = add(WEB, json!({"name": bad})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {reply}");
    }
    let (status, _) = add(WEB, json!({"name": "a.test", "path_prefix": "api"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // DNS pointing here: verified and routed, primary.
    let (status, shop) = add(WEB, json!({"name": "Shop.Example.test"})).await;
    assert_eq!(status, StatusCode::CREATED, "{shop}");
    assert_eq!(shop["name"], "shop.example.test");
    assert_eq!(shop["verification"], "dns", "{shop}");
    assert_eq!(shop["primary"], true);
    assert!(published(&api).contains("Host(`shop.example.test`)"));

    // One service per domain.
    let (status, _) = add(API, json!({"name": "shop.example.test"})).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // DNS pointing elsewhere, or nowhere: not routed, and the check says what it found.
    let (_, moved) = add(WEB, json!({"name": "moved.example.test"})).await;
    assert!(moved["verification"].is_null(), "{moved}");
    let found = moved["last_check"].as_str().unwrap();
    assert!(
        found.contains("127.0.0.2") && found.contains("HTTP check"),
        "{found}"
    );
    let (_, nowhere) = add(WEB, json!({"name": "nowhere.example.test"})).await;
    assert!(
        nowhere["last_check"]
            .as_str()
            .unwrap()
            .contains("could not be resolved"),
        "{nowhere}"
    );
    assert!(!published(&api).contains("nowhere.example.test"));

    // Forcing needs the admin scope; a writer is refused.
    let writer = api.token(&[Scope::Read, Scope::Write]).await;
    let (status, reply) = api
        .call(
            Method::POST,
            WEB,
            Some(&writer),
            Some(json!({"name": "forced.example.test", "force": true})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    let (_, forced) = add(WEB, json!({"name": "forced.example.test", "force": true})).await;
    assert_eq!(forced["verification"], "forced", "{forced}");

    // An alias redirects to the primary; a path prefix sends part of a domain elsewhere.
    let (_, www) = add(
        WEB,
        json!({"name": "www.shop.example.test", "redirect": true}),
    )
    .await;
    assert_eq!(www["verification"], "dns", "{www}");
    let (_, split) = add(
        API,
        json!({"name": "shop.example.test", "path_prefix": "/api", "force": true}),
    )
    .await;
    assert_eq!(split["path_prefix"], "/api", "{split}");
    let config = published(&api);
    assert!(config.contains("Host(`www.shop.example.test`)"), "{config}");
    // The alias's requests come to the API, which answers a 308 to the primary.
    let request = axum::http::Request::builder()
        .uri("/a/b?c=d")
        .header("host", "www.shop.example.test:8000")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(api.router.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        response.headers()["location"],
        "http://shop.example.test:8000/a/b?c=d"
    );
    assert!(
        config.contains("Host(`shop.example.test`) && PathPrefix(`/api`)"),
        "{config}"
    );

    // The HTTP check's token is public; an unknown one is not found.
    let token = moved["token"].as_str().unwrap();
    let (status, _) = api
        .call(
            Method::GET,
            &format!("/.well-known/helvetia/{token}"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api
        .call(Method::GET, "/.well-known/helvetia/nope", None, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Removing the primary passes it on and takes its route away.
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("{WEB}/shop.example.test"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, listed) = api.get(WEB).await;
    let primary: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["primary"] == true)
        .collect();
    assert_eq!(primary.len(), 1, "{listed}");
    assert!(!published(&api).contains("Host(`shop.example.test`) ||"));
}

#[tokio::test]
async fn an_unverified_domain_is_checked_again_by_itself_and_routed_once_it_passes() {
    let here: IpAddr = "127.0.0.1".parse().unwrap();
    let dns = TestDns::start(&[]).await;
    let api = Api::resolving_with(ResolverSetting::Server(dns.address()), |settings| {
        settings.public_addresses = vec![here];
    })
    .await;
    api.demo_service("web").await;
    let app = helvetia_server::usecases::App::new(
        api.platform.clone(),
        helvetia_server::worker::WorkerHandle::default(),
        std::sync::Arc::new(tokio::sync::Notify::new()),
    );
    let recheck = |at: jiff::Timestamp| {
        let app = app.clone();
        async move {
            helvetia_server::usecases::domains::recheck_due(&app, at)
                .await
                .unwrap()
        }
    };

    // Not resolving yet: not routed, its re-check due a minute on.
    let (_, later) = api.post(WEB, json!({"name": "later.example.test"})).await;
    assert!(later["verification"].is_null(), "{later}");
    let next: jiff::Timestamp = later["next_check_at"].as_str().unwrap().parse().unwrap();
    let now = jiff::Timestamp::now();
    assert!(
        next > now && next <= now + jiff::SignedDuration::from_secs(61),
        "{later}"
    );
    assert_eq!(recheck(now).await, 0, "not due yet");

    // Still failing when due: the next wait is longer.
    assert_eq!(recheck(next).await, 0);
    let (_, listed) = api.get(WEB).await;
    let after: jiff::Timestamp = listed[0]["next_check_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        after >= now + jiff::SignedDuration::from_secs(119),
        "{listed}"
    );

    // Its DNS points here now: the re-check routes it, with no one asking.
    dns.add("later.example.test", here);
    assert_eq!(recheck(after).await, 1);
    let (_, listed) = api.get(WEB).await;
    assert_eq!(listed[0]["verification"], "dns", "{listed}");
    assert!(listed[0]["next_check_at"].is_null(), "{listed}");
    assert!(published(&api).contains("Host(`later.example.test`)"));
    assert_eq!(recheck(after).await, 0, "nothing left to check");
}
