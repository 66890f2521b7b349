//! The server process around deploys: killed mid-build, stopped by SIGTERM, restarted with
//! drifted engine state, and driving an external Traefik.

use std::sync::atomic::Ordering;
use std::time::Duration;

use helvetia_test_support::{FixtureRepo, TestServer, eventually, project_containers, unique};

use crate::deploy::{Cleanup, keep_requesting};

#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_mid_build_recovers_without_downtime() {
    let mut server = TestServer::start(crate::BINARY).await;
    let project = unique("kill");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let host = format!("web.{project}.localhost");
    let live = server.deploy(&project, "web").await;
    assert_eq!(live["status"], "live", "{live}");
    let (stop, ok, bad, requests) =
        keep_requesting(&server, host.clone(), "hello from version 1\n");

    repo.overlay("slow-build");
    let id = server.request_deploy(&project, "web").await;
    server.wait_status(id, "building").await;
    server
        .wait_for_log(id, "a slow build step starts", Duration::from_secs(30))
        .await;
    server.kill();
    // The cut-off build's checkout is left in the data dir, not in /tmp…
    let builds = server.data_dir().join("builds");
    let entries = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let left = entries(&builds);
    assert!(
        left.len() == 1 && left[0].starts_with("checkout-"),
        "{left:?}"
    );
    // Traefik outlives the server: the app keeps answering while no server runs.
    let served_while_down = ok.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        ok.load(Ordering::Relaxed) > served_while_down,
        "traffic stopped with the server"
    );

    server.launch().await;
    // …and removed at the next start.
    assert_eq!(entries(&builds), Vec::<String>::new());
    let finished = server.wait_finished(id).await;
    assert_eq!(finished["status"], "failed");
    assert!(
        finished["status_reason"]
            .as_str()
            .unwrap()
            .starts_with("interrupted"),
        "{finished}"
    );
    let log = server.deploy_log(id).await;
    assert!(log.contains("never resumed half-way"), "{log}");
    let live_container =
        server
            .scope()
            .await
            .container(&project, "web", live["id"].as_i64().unwrap(), 0);
    eventually(Duration::from_secs(30), "no orphan containers", || {
        let project = project.clone();
        let live_container = live_container.clone();
        async move { (project_containers(&project) == [live_container]).then_some(()) }
    })
    .await;
    let service = server
        .get(&format!("/api/v1/projects/{project}/services/web"))
        .await;
    assert_eq!(service["status"]["live_deployment"]["id"], live["id"]);

    stop.store(true, Ordering::Relaxed);
    requests.await.unwrap();
    assert_eq!(
        bad.load(Ordering::Relaxed),
        0,
        "the live app stopped answering"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_server_within_its_grace_period() {
    let mut server = TestServer::start(crate::BINARY).await;
    let project = unique("term");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("slow-build-only");
    server.service(&project, "web", &repo).await;
    let id = server.request_deploy(&project, "web").await;
    server
        .wait_for_log(id, "a slow build step starts", Duration::from_secs(60))
        .await;
    let asked = std::time::Instant::now();
    let status = server.terminate();
    // 5 s of grace for the job, then it is told to stop and gets a moment to record that.
    assert!(
        asked.elapsed() < Duration::from_secs(20),
        "shutdown took {:?}",
        asked.elapsed()
    );
    assert!(status.success(), "{status:?}\n{}", server.log());
    server.launch().await;
    let finished = server.get(&format!("/api/v1/deployments/{id}")).await;
    assert_eq!(finished["status"], "failed");
    assert!(
        finished["status_reason"]
            .as_str()
            .unwrap()
            .starts_with("interrupted"),
        "{finished}"
    );
    assert!(project_containers(&project).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_reconciles_engine_and_routes_with_the_store() {
    let mut server = TestServer::start_with(crate::BINARY, &["--images-kept", "2"]).await;
    let project = unique("recon");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let host = format!("web.{project}.localhost");
    for version in 1..=4 {
        repo.write(
            "www/index.html",
            &format!("version {version}\n"),
            &format!("v{version}"),
        );
        let deployed = server.deploy(&project, "web").await;
        assert_eq!(deployed["status"], "live", "{deployed}");
    }
    assert_eq!(
        server.through_edge(&host, "/").await.unwrap().1,
        "version 4\n"
    );
    // Only the images of the last two successful deployments are kept (pruned after the
    // drain, so wait for it).
    let scope = server.scope().await;
    let repository = scope.image_repository(&project, "web");
    eventually(Duration::from_secs(30), "old images to be pruned", || {
        let repository = repository.clone();
        async move {
            let tags = std::process::Command::new("/usr/bin/docker")
                .args(["images", "--format", "{{.Tag}}", &repository])
                .output()
                .unwrap();
            let mut tags: Vec<String> = String::from_utf8_lossy(&tags.stdout)
                .lines()
                .map(str::to_owned)
                .collect();
            tags.sort();
            (tags == ["3", "4"]).then_some(())
        }
    })
    .await;

    // While the server is down: a stray container with Helvetia's labels appears, and the
    // routing file disappears.
    let live = scope.container(&project, "web", 4, 0);
    let labels = std::process::Command::new("/usr/bin/docker")
        .args(["inspect", "--format", "{{json .Config.Labels}}", &live])
        .output()
        .unwrap();
    let labels: serde_json::Value = serde_json::from_slice(&labels.stdout).unwrap();
    server.kill();
    let mut stray = std::process::Command::new("/usr/bin/docker");
    stray.args([
        "run",
        "-d",
        "--name",
        &scope.container(&project, "web", 99, 0),
    ]);
    for (key, value) in labels.as_object().unwrap() {
        stray.args(["--label", &format!("{key}={}", value.as_str().unwrap())]);
    }
    let started = stray.arg(format!("{repository}:4")).output().unwrap();
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    std::fs::remove_file(server.data_dir().join("traefik/dynamic/helvetia.toml")).unwrap();
    eventually(
        Duration::from_secs(10),
        "Traefik to drop the route",
        || async {
            let status = server
                .through_edge(&host, "/")
                .await
                .map(|(status, _)| status);
            (status == Some(404)).then_some(())
        },
    )
    .await;

    server.launch().await;
    // Routes are rendered from the store again, and the stray container is gone.
    assert_eq!(
        server.through_edge(&host, "/").await.unwrap().1,
        "version 4\n"
    );
    assert_eq!(project_containers(&project), [live.as_str()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn external_traefik_mode_only_writes_the_routing_file() {
    let dynamic = tempfile::tempdir().unwrap();
    let dir = dynamic.path().to_string_lossy().into_owned();
    let server = TestServer::start_with(
        crate::BINARY,
        &[
            "--traefik",
            "external",
            "--traefik-dynamic-dir",
            &dir,
            "--traefik-entry-point",
            "websecure",
        ],
    )
    .await;
    let project = unique("ext");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let deployed = server.deploy(&project, "web").await;
    assert_eq!(
        deployed["status"],
        "live",
        "{}",
        server.deploy_log(deployed["id"].as_i64().unwrap()).await
    );
    let config = std::fs::read_to_string(dynamic.path().join("helvetia.toml")).unwrap();
    assert!(
        config.contains(&format!("Host(`web.{project}.localhost`)")),
        "{config}"
    );
    assert!(config.contains("websecure"), "{config}");
    assert!(
        !server.data_dir().join("traefik/traefik.pid").exists(),
        "no Traefik was started"
    );
}

/// A managed Traefik that cannot start (its entry point's port is taken) is reported as what
/// it is — Traefik's own error in `/healthz`, the server's log and the deployment that could
/// not go live — not as a Traefik too slow to load the routes.
#[tokio::test(flavor = "multi_thread")]
async fn a_traefik_that_cannot_start_is_reported_with_its_own_error() {
    let mut server = TestServer::start(crate::BINARY).await;
    let project = unique("edgedown");
    let _cleanup = Cleanup(project.clone());
    server.kill();
    server.stop_traefik();
    let http_port = server.http_port;
    let _taken = eventually(Duration::from_secs(20), "Traefik to free its port", || {
        let taken = std::net::TcpListener::bind(("127.0.0.1", http_port)).ok();
        async move { taken }
    })
    .await;
    server.launch_answering(503).await;
    let (status, health) = server.api(reqwest::Method::GET, "/healthz", None).await;
    assert_eq!(status, 503);
    let down = health["edge_router_down"].as_str().unwrap_or_default();
    assert!(down.contains("address already in use"), "{health}");

    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let deployed = server.deploy(&project, "web").await;
    assert_eq!(deployed["status"], "failed");
    let reason = deployed["status_reason"].as_str().unwrap();
    assert!(reason.contains("address already in use"), "{reason}");
    assert!(!reason.contains("did not load the new routes"), "{reason}");
    assert!(server.log().contains("address already in use"));
}
