//! A deploy from CI without a stored secret, end to end: a service trusts a local OpenID
//! Connect issuer (`helvetia trusts add`), and a CI job's token from it — no Helvetia
//! credential — deploys the service until it is live.

use helvetia_test_support::oidc::{TestIssuer, TestKey};
use helvetia_test_support::{FixtureRepo, TestServer, answer, http_client, unique};
use serde_json::json;

use crate::deploy::Cleanup;

const PUBLIC_URL: &str = "http://helvetia.localhost";

#[tokio::test(flavor = "multi_thread")]
async fn a_ci_jobs_token_deploys_a_trusting_service_until_it_is_live() {
    let server = TestServer::start_with(
        crate::BINARY,
        // The issuer listens on loopback.
        &["--public-url", PUBLIC_URL, "--allow-private-destinations"],
    )
    .await;
    let project = unique("ci");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let key = TestKey::es256("ci-key");
    let issuer = TestIssuer::start(&[&key]).await;
    let target = format!("{project}/web");
    let added = server.cli_ok(&[
        "trusts",
        "add",
        &target,
        "--repository",
        "acme/web",
        "--issuer",
        &issuer.url,
    ]);
    assert!(added.contains("acme/web on refs/heads/main"), "{added}");
    let listed = server.cli_ok(&["trusts", "list", &target]);
    assert!(listed.contains(&issuer.url), "{listed}");

    // The job deploys the head of its branch (its token names no commit).
    let token = key.sign(&issuer.claims(PUBLIC_URL, json!({"sha": null})));
    let request = http_client()
        .post(format!("{}/api/v1/oidc/deploy", server.url()))
        .bearer_auth(token)
        .json(&json!({"project": project, "service": "web"}));
    let (status, queued) = answer(request).await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["id"].as_i64().unwrap();
    let deployment = server.wait_finished(id).await;
    assert_eq!(
        deployment["status"],
        "live",
        "{}",
        server.deploy_log(id).await
    );
    assert!(
        deployment["created_by"]
            .as_str()
            .unwrap()
            .contains("repository=acme/web"),
        "{deployment}"
    );
}
