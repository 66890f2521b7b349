//! A private GitHub repository deployed through the instance's GitHub App, against the fake
//! GitHub: a user signs in with GitHub, creates a service from the repository with the CLI,
//! and deploys it; the installation token clones it and is found nowhere it must not be — the
//! deployment log, the server's log, the database (its write-ahead log included), the engine's
//! containers and images, any process's arguments — and an installation token GitHub no longer
//! accepts is renewed without failing the deploy.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use helvetia_test_support::github::FakeGitHub;
use helvetia_test_support::{FixtureRepo, eventually, unique};

use crate::deploy::Cleanup;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn a_private_github_repository_deploys_with_installation_tokens_that_leak_nowhere() {
    let github = FakeGitHub::start().await;
    let created = github.create_app("helvetia").await;
    let repo = FixtureRepo::new("web");
    github.add_user("octo", "octo@acme.example", &["acme"]);
    github.add_installation("acme", &[("shop", Some(PathBuf::from(repo.url())), true)]);
    let web = github.web_url();
    let server = github
        .server_with_app(crate::BINARY, &created, "acme")
        .await;

    // Octo signs in with GitHub, makes a CLI token and creates the service from the repository.
    let token = github
        .user_token(&server.url(), "octo", &["read", "deploy", "write"])
        .await;
    let project = unique("gh");
    let _cleanup = Cleanup(project.clone());
    let octo = |args: &[&str]| server.cli_ok_with(&token, args);
    octo(&["projects", "create", &project]);
    let target = format!("{project}/shop");
    octo(&["services", "create", &target, "--github", "acme/shop"]);
    let service = server
        .get(&format!("/api/v1/projects/{project}/services/shop"))
        .await;
    assert_eq!(service["repo"], format!("{web}/acme/shop.git"), "{service}");
    assert_eq!(service["branch"], "main");
    assert_eq!(service["github"]["repository"], "acme/shop", "{service}");
    assert!(octo(&["services", "show", &target]).contains("acme/shop (App installation"));

    // Every command line on the machine while the deploys run.
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let sampler = tokio::spawn(sample_command_lines(seen.clone()));

    let first = server.deploy(&project, "shop").await;
    assert_eq!(first["status"], "live", "{first}");
    let tokens = github.issued_tokens();
    assert_eq!(tokens.len(), 1, "one token, cached for the deploy's steps");

    // GitHub stops accepting the token before the expiry it announced: the next deploy gets
    // a new one instead of failing.
    // (Once the first deploy's last status is set: a deployment is recorded live before.)
    let sha = first["commit_sha"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(10), "the live status", || async {
        let statuses = github.statuses("acme/shop", &sha);
        statuses
            .iter()
            .any(|s| s["state"] == "success")
            .then_some(())
    })
    .await;
    github.expire_tokens();
    let second = server.deploy(&project, "shop").await;
    assert_eq!(second["status"], "live", "{second}");
    let tokens = github.issued_tokens();
    assert_eq!(tokens.len(), 2, "the refused token was renewed once");
    let second_log = server.deploy_log(second["id"].as_i64().unwrap()).await;
    assert!(second_log.contains("renewed"), "{second_log}");
    sampler.abort();

    // Each deploy set its commit's status, through the App: pending, then success.
    eventually(
        Duration::from_secs(10),
        "the second live status",
        || async {
            let statuses = github.statuses("acme/shop", &sha);
            (statuses.len() == 4).then_some(())
        },
    )
    .await;
    let context = format!("helvetia/{project}/shop");
    let states: Vec<(String, String)> = github
        .statuses("acme/shop", &sha)
        .iter()
        .map(|status| {
            assert_eq!(status["context"], context.as_str(), "{status}");
            let state = status["state"].as_str().unwrap().to_owned();
            (state, status["description"].as_str().unwrap().to_owned())
        })
        .collect();
    let first_id = first["id"].as_i64().unwrap();
    let second_id = second["id"].as_i64().unwrap();
    assert_eq!(
        states,
        [
            ("pending".into(), format!("Deployment #{first_id}: cloning")),
            ("success".into(), format!("Deployment #{first_id} is live")),
            (
                "pending".into(),
                format!("Deployment #{second_id}: cloning")
            ),
            ("success".into(), format!("Deployment #{second_id} is live")),
        ]
        .map(|(state, description): (String, String)| (state, description))
    );
    let live = github.statuses("acme/shop", &sha).pop().unwrap();
    assert_eq!(live["target_url"], service["url"], "{live}");
    // A commit that does not build: its status says so.
    repo.overlay("broken-build");
    let broken = server.deploy(&project, "shop").await;
    assert_eq!(broken["status"], "failed", "{broken}");
    let broken_sha = broken["commit_sha"].as_str().unwrap();
    let failed = eventually(Duration::from_secs(10), "the failure status", || async {
        let last = github.statuses("acme/shop", broken_sha).pop()?;
        (last["state"] != "pending").then_some(last)
    })
    .await;
    assert_eq!(failed["state"], "failure", "{failed}");
    assert!(
        failed["description"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Deployment #{} failed: ", broken["id"])),
        "{failed}"
    );

    let mut places = vec![
        ("the server's log".to_owned(), server.log()),
        (
            "the first deployment's log".to_owned(),
            server.deploy_log(first["id"].as_i64().unwrap()).await,
        ),
        ("the second deployment's log".to_owned(), second_log),
        (
            "the database".to_owned(),
            ["helvetia.db", "helvetia.db-wal"]
                .iter()
                .map(|name| {
                    let bytes = std::fs::read(server.data_dir().join(name)).unwrap_or_default();
                    String::from_utf8_lossy(&bytes).into_owned()
                })
                .collect(),
        ),
        (
            "the engine's objects".to_owned(),
            engine_objects(&[&first, &second]),
        ),
    ];
    let command_lines = seen.lock().unwrap().iter().cloned().collect::<Vec<_>>();
    assert!(
        command_lines
            .iter()
            .any(|line| line.contains("git") && line.contains("http.followRedirects=false")),
        "the sampler saw none of the server's git commands"
    );
    places.push(("a process's arguments".to_owned(), command_lines.join("\n")));
    for token in &tokens {
        for (place, text) in &places {
            assert!(
                !text.contains(token.as_str()),
                "an installation token is in {place}"
            );
        }
    }
}

/// Records every process's command line until aborted.
async fn sample_command_lines(seen: Arc<Mutex<BTreeSet<String>>>) {
    loop {
        if let Ok(entries) = std::fs::read_dir("/proc") {
            let lines: Vec<String> = entries
                .flatten()
                .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
                .filter(|line| !line.is_empty())
                .map(|line| String::from_utf8_lossy(&line).replace('\0', " "))
                .collect();
            seen.lock().unwrap().extend(lines);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// What the engine keeps about the deployments' containers and images: `docker inspect` of
/// every container and of the images, and the images' build history.
fn engine_objects(deployments: &[&Value]) -> String {
    let docker = |args: &[&str]| {
        let output = Command::new("docker").args(args).output().unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let containers = docker(&["ps", "--all", "--quiet", "--no-trunc"]);
    let mut text = String::new();
    for container in containers.lines() {
        text.push_str(&docker(&["inspect", container]));
    }
    for deployment in deployments {
        let image = deployment["image"].as_str().expect("an image");
        text.push_str(&docker(&["image", "inspect", image]));
        text.push_str(&docker(&["history", "--no-trunc", image]));
    }
    assert!(text.contains("io.helvetia.service"), "{text}");
    text
}
