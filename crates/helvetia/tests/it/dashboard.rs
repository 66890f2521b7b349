//! The dashboard in a real browser: `tests/browser/dashboard.mjs` drives Chromium against a
//! server with the fake GitHub as its GitHub (sign in with a password and with GitHub, create
//! a service from a repository, watch it build and go live, a secret, the CPU chart, a
//! rollback). Screenshots of every screen land in `target/browser-artifacts/`.

use std::path::PathBuf;
use std::process::Command;

use helvetia_test_support::github::FakeGitHub;
use helvetia_test_support::{FixtureRepo, unique};
use reqwest::Method;
use serde_json::json;

use crate::deploy::Cleanup;

const OWNER_EMAIL: &str = "owner@example.com";
const OWNER_PASSWORD: &str = "correct horse battery staple";

#[tokio::test(flavor = "multi_thread")]
async fn in_a_browser_people_sign_in_deploy_watch_it_live_and_roll_back() {
    let github = FakeGitHub::start().await;
    let created = github.create_app("helvetia").await;
    let repo = FixtureRepo::new("web");
    github.add_user("octo", "octo@acme.example", &["acme"]);
    github.add_installation("acme", &[("shop", Some(PathBuf::from(repo.url())), true)]);
    github.sign_in_as("octo");
    let server = github
        .server_with_app(crate::BINARY, &created, "acme")
        .await;
    // The first owner signs up with the link the server printed.
    let link = server
        .log()
        .lines()
        .filter_map(|line| line.split("/signup?token=").nth(1))
        .map(|token| token.trim().to_owned())
        .next_back()
        .expect("a sign-up link in the server's log");
    let sign_up = json!({"token": link, "email": OWNER_EMAIL, "name": "Owner",
                         "password": OWNER_PASSWORD});
    let (status, body) = server
        .api_anonymous(Method::POST, "/api/v1/auth/signup", sign_up)
        .await;
    assert_eq!(status, 201, "{body}");

    let project = unique("dash");
    let _cleanup = Cleanup(project.clone());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let artifacts = root.join("target/browser-artifacts");
    let output = Command::new("node")
        .arg(root.join("tests/browser/dashboard.mjs"))
        .env("HELVETIA_URL", server.url())
        .env("OWNER_EMAIL", OWNER_EMAIL)
        .env("OWNER_PASSWORD", OWNER_PASSWORD)
        .env("PROJECT", &project)
        .env("REPOSITORY", "acme/shop")
        .env("REPO_DIR", repo.url())
        .env("ARTIFACTS_DIR", &artifacts)
        .output()
        .expect("node runs");
    let printed = String::from_utf8_lossy(&output.stdout);
    let errors = String::from_utf8_lossy(&output.stderr);
    println!("{printed}");
    assert!(
        output.status.success(),
        "the browser test failed:\n{printed}\n{errors}\nserver log:\n{}",
        server.log()
    );
    for screen in [
        "signin",
        "overview",
        "service",
        "deployment",
        "env",
        "metrics",
    ] {
        assert!(
            artifacts.join(format!("{screen}-375.png")).exists(),
            "{screen} was photographed"
        );
    }
}
