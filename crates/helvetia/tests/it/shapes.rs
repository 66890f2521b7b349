//! Service shapes: replicas, workers without a port, release commands, persistent volumes.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use helvetia_test_support::load::Load;
use helvetia_test_support::{
    FixtureRepo, TestServer, eventually, project_containers, project_volumes, unique,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::deploy::Cleanup;

async fn patch(server: &TestServer, project: &str, service: &str, body: Value) -> Value {
    let (status, body) = server
        .api(
            Method::PATCH,
            &format!("/api/v1/projects/{project}/services/{service}"),
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Deploys and expects the deployment to go live; returns its id and log.
async fn deploy_live(server: &TestServer, project: &str, service: &str) -> (i64, String) {
    let deployed = server.deploy(project, service).await;
    let id = deployed["id"].as_i64().unwrap();
    let log = server.deploy_log(id).await;
    assert_eq!(deployed["status"], "live", "{log}");
    (id, log)
}

/// The serving containers of a service, as the API reports them.
async fn serving(server: &TestServer, project: &str, service: &str) -> Vec<Value> {
    let view = server
        .get(&format!("/api/v1/projects/{project}/services/{service}"))
        .await;
    view["status"]["containers"].as_array().unwrap().clone()
}

/// Hostnames answering through the edge router over `requests` requests.
async fn hostnames(server: &TestServer, host: &str, requests: usize) -> HashSet<String> {
    let mut seen = HashSet::new();
    for _ in 0..requests {
        let (status, body) = server
            .through_edge(host, "/cgi-bin/hostname")
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        seen.insert(body.trim().to_owned());
    }
    seen
}

/// The container's main process id on the host.
fn host_pid(container: &str) -> String {
    let output = Command::new("/usr/bin/docker")
        .args(["inspect", "--format", "{{.State.Pid}}", container])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_the_traffic_redeploy_without_loss_and_a_killed_one_comes_back() {
    let server = TestServer::start(crate::BINARY).await;
    let project = unique("replicas");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    patch(
        &server,
        &project,
        "web",
        json!({"runtime": {"replicas": 3, "timeouts": {"drain_ms": 5000}}}),
    )
    .await;
    let first = server.deploy(&project, "web").await;
    assert_eq!(first["status"], "live", "{first}");
    let containers = serving(&server, &project, "web").await;
    assert_eq!(containers.len(), 3, "{containers:?}");

    // Each answer carries the container's hostname (its short engine id): all three serve.
    let host = format!("web.{project}.localhost");
    let expected: HashSet<String> = containers
        .iter()
        .map(|c| c["engine_id"].as_str().unwrap()[..12].to_owned())
        .collect();
    assert_eq!(hostnames(&server, &host, 30).await, expected);

    let load = Load::start(server.http_port, &host, "/", 8, 200.0);
    repo.write("www/index.html", "hello from version 2\n", "second version");
    let second = server.deploy(&project, "web").await;
    assert_eq!(second["status"], "live", "{second}");
    assert_eq!(serving(&server, &project, "web").await.len(), 3);
    let redeployed_at = load.began.elapsed();

    // Kill one replica's process from the host, as a crash would.
    let victim = server
        .scope()
        .await
        .container(&project, "web", second["id"].as_i64().unwrap(), 1);
    let pid = host_pid(&victim);
    let killed_at = load.began.elapsed();
    assert!(
        Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap()
            .success()
    );
    eventually(
        Duration::from_secs(30),
        "the killed replica to serve again",
        || async {
            let events = server
                .get(&format!("/api/v1/projects/{project}/services/web/events"))
                .await;
            let back = events.as_array().unwrap().iter().any(|e| {
                e["container"] == victim.as_str()
                    && e["message"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("back on its route")
            });
            let restarted = host_pid(&victim);
            (back && restarted != pid && !restarted.is_empty() && restarted != "0").then_some(())
        },
    )
    .await;
    let sent_before = load.sent().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let report = load.stop().await;
    assert!(report.sent() > sent_before, "traffic stopped flowing");
    let failed: Vec<Duration> = report
        .samples
        .iter()
        .filter(|s| !s.ok)
        .map(|s| s.started)
        .collect();
    let context = format!(
        "failed requests: {:?} (redeployed at {redeployed_at:?}, killed at {killed_at:?})",
        report.errors
    );
    // Nothing fails during the redeploy. The kill can only lose the requests the killed
    // process was answering at that instant (at most one per connection): requests that
    // reached it are never sent twice. Everything after goes to the other replicas, then to
    // all three again.
    assert!(
        failed
            .iter()
            .all(|at| *at >= killed_at - Duration::from_millis(100)),
        "{context}"
    );
    assert!(failed.len() <= 8, "{context}");
    assert!(
        failed
            .iter()
            .all(|at| *at <= killed_at + Duration::from_millis(500)),
        "{context}"
    );
    let after_kill = serving(&server, &project, "web").await;
    assert_eq!(after_kill.len(), 3);
    assert!(
        after_kill.iter().all(|c| c["health"] == "healthy"),
        "{after_kill:?}"
    );
    assert_eq!(hostnames(&server, &host, 30).await.len(), 3);

    // Scaling runs the live image again, no rebuild, in the new number of containers.
    let scaled = server.cli_ok(&["services", "scale", &format!("{project}/web"), "2"]);
    assert!(scaled.contains("live"), "{scaled}");
    assert_eq!(serving(&server, &project, "web").await.len(), 2);
    let deployments = server
        .get(&format!(
            "/api/v1/projects/{project}/services/web/deployments?limit=1"
        ))
        .await;
    let latest = &deployments.as_array().unwrap()[0];
    assert_eq!(latest["cause"], "scale");
    assert_eq!(latest["source_deployment_id"], second["id"]);
    assert_eq!(hostnames(&server, &host, 20).await.len(), 2);
    let show = server.cli_ok(&["services", "show", &format!("{project}/web")]);
    assert!(show.contains("Replicas") && show.contains('2'), "{show}");
    let (status, body) = server
        .api(
            Method::PATCH,
            &format!("/api/v1/projects/{project}/services/web"),
            Some(json!({"runtime": {"replicas": 1000}})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
}

/// The starts and deaths of a service's containers, as `(action, container name)`, followed
/// live from when it is made. Not `docker events --until`: for a past window the engine
/// replays only its last 256 events, which a busy engine has overwritten by the time the
/// window is read.
struct ContainerEvents {
    follower: std::process::Child,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl ContainerEvents {
    fn follow(project: &str, service: &str) -> ContainerEvents {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let mut follower = Command::new("/usr/bin/docker")
            .args([
                "events",
                "--format",
                "{{.Action}} {{.Actor.Attributes.name}}",
            ])
            // From now, to the nanosecond: what happens before the follower is connected is
            // replayed.
            .args([
                "--since",
                &format!("{}.{:09}", now.as_secs(), now.subsec_nanos()),
            ])
            .args(["--filter", "type=container", "--filter", "event=start"])
            .args(["--filter", "event=die"])
            .arg("--filter")
            .arg(format!("label=io.helvetia.project={project}"))
            .arg("--filter")
            .arg(format!("label=io.helvetia.service={service}"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let output = follower.stdout.take().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let collected = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(output).lines().map_while(Result::ok) {
                if let Some((action, name)) = line.split_once(' ') {
                    collected
                        .lock()
                        .unwrap()
                        .push((action.to_owned(), name.to_owned()));
                }
            }
        });
        ContainerEvents { follower, seen }
    }

    /// The events so far, once they include each of `expected`.
    async fn including(&self, expected: &[(&str, &str)]) -> Vec<(String, String)> {
        eventually(Duration::from_secs(30), "the engine's events", || async {
            let seen = self.seen.lock().unwrap().clone();
            expected
                .iter()
                .all(|(action, name)| seen.iter().any(|(a, n)| a == action && n == name))
                .then_some(seen)
        })
        .await
    }
}

impl Drop for ContainerEvents {
    fn drop(&mut self) {
        let _ = self.follower.kill();
        let _ = self.follower.wait();
    }
}

/// The most containers running at once, replaying start/die events. A container whose first
/// event is `die` was running before the events began.
fn most_running_at_once(events: &[(String, String)]) -> usize {
    let mut seen = HashSet::new();
    let mut running: HashSet<String> = events
        .iter()
        .filter(|(_, name)| seen.insert(name.clone()))
        .filter(|(action, _)| action == "die")
        .map(|(_, name)| name.clone())
        .collect();
    let mut most = running.len();
    for (action, name) in events {
        if action == "start" {
            running.insert(name.clone());
        } else {
            running.remove(name);
        }
        most = most.max(running.len());
    }
    most
}

/// `/cgi-bin/notes` of the `web` fixture: appends the query to `/data/notes`, prints it.
async fn notes(server: &TestServer, host: &str, query: &str) -> String {
    let (status, body) = server
        .through_edge(host, &format!("/cgi-bin/notes{query}"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_without_a_port_goes_live_and_recreate_never_overlaps() {
    let server = TestServer::start(crate::BINARY).await;
    let project = unique("worker");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("worker");
    server.cli_ok(&["projects", "create", &project]);
    server.cli_ok(&[
        "services",
        "create",
        &format!("{project}/jobs"),
        "--repo",
        &repo.url(),
        "--port",
        "none",
        "--worker-ready",
        "2s",
    ]);
    let (_, log) = deploy_live(&server, &project, "jobs").await;
    assert!(log.contains("keep running for 2s"), "{log}");
    let show = server.cli_ok(&["services", "show", &format!("{project}/jobs")]);
    assert!(show.contains("none (a worker"), "{show}");
    // No route: the edge router does not know the worker's hostname.
    let answer = server
        .through_edge(&format!("jobs.{project}.localhost"), "/")
        .await;
    assert_eq!(answer.map(|(status, _)| status), Some(404));
    // Its output is its runtime log.
    eventually(Duration::from_secs(30), "the worker's output", || async {
        let output = server.cli(&["logs", &format!("{project}/jobs")]);
        String::from_utf8_lossy(&output.stdout)
            .contains("tick 2")
            .then_some(())
    })
    .await;

    // The default for a service without volumes overlaps old and new: the events show it,
    // so the check below can tell the difference.
    let [first] = <[String; 1]>::try_from(project_containers(&project)).unwrap();
    let events = ContainerEvents::follow(&project, "jobs");
    assert_eq!(server.deploy(&project, "jobs").await["status"], "live");
    let one_left = || async { (project_containers(&project).len() == 1).then_some(()) };
    eventually(Duration::from_secs(30), "the old worker to stop", one_left).await;
    let [second] = <[String; 1]>::try_from(project_containers(&project)).unwrap();
    let overlapping = events
        .including(&[("start", &second), ("die", &first)])
        .await;
    assert_eq!(most_running_at_once(&overlapping), 2, "{overlapping:?}");

    server.cli_ok(&[
        "services",
        "update",
        &format!("{project}/jobs"),
        "--strategy",
        "recreate",
    ]);
    let events = ContainerEvents::follow(&project, "jobs");
    let recreated = server.deploy(&project, "jobs").await;
    assert_eq!(recreated["status"], "live", "{recreated}");
    // The old worker, stopped before the new one started, is removed once this one is live.
    eventually(
        Duration::from_secs(30),
        "the old worker's removal",
        one_left,
    )
    .await;
    let [third] = <[String; 1]>::try_from(project_containers(&project)).unwrap();
    let events = events
        .including(&[("die", &second), ("start", &third)])
        .await;
    assert_eq!(most_running_at_once(&events), 1, "{events:?}");
    assert_eq!(
        events
            .iter()
            .filter(|(action, _)| action == "start")
            .count(),
        1,
        "{events:?}"
    );
    let log = server.deploy_log(recreated["id"].as_i64().unwrap()).await;
    assert!(log.contains("Strategy `recreate`"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn release_commands_and_volumes_keep_data_across_deployments_and_restarts() {
    let mut server = TestServer::start(crate::BINARY).await;
    let project = unique("volumes");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let target = format!("{project}/web");
    let added = server.cli_ok(&["volumes", "add", &target, "data", "--path", "/data"]);
    assert!(added.contains("Added volume data"), "{added}");
    server.cli_ok(&[
            "services",
            "update",
            &target,
            "--release-command",
            "sh -c 'echo \"migrating for deployment $HELVETIA_DEPLOYMENT_ID\"; echo release-$HELVETIA_DEPLOYMENT_ID >> /data/notes'",
        ],
    );
    let (first_id, log) = deploy_live(&server, &project, "web").await;
    assert!(
        log.contains(&format!("migrating for deployment {first_id}")),
        "{log}"
    );

    let host = format!("web.{project}.localhost");
    assert_eq!(
        notes(&server, &host, "?written-by-the-first").await,
        format!("release-{first_id}\nwritten-by-the-first\n")
    );

    repo.write("www/index.html", "hello from version 2\n", "second version");
    let second = server.deploy(&project, "web").await;
    let second_id = second["id"].as_i64().unwrap();
    assert_eq!(second["status"], "live", "{second}");
    let log = server.deploy_log(second_id).await;
    assert!(log.contains("Strategy `recreate`"), "{log}");
    // The release ran exactly once per deployment, and the first one's data is there.
    assert_eq!(
        notes(&server, &host, "").await,
        format!("release-{first_id}\nwritten-by-the-first\nrelease-{second_id}\n")
    );
    let listed = server.cli_ok(&["volumes", "list", &target]);
    assert!(
        listed.contains("/data") && listed.contains(" B"),
        "{listed}"
    );
    let volumes = server
        .get(&format!("/api/v1/projects/{project}/services/web/volumes"))
        .await;
    assert!(volumes[0]["size_bytes"].as_u64().unwrap() > 0, "{volumes}");

    // A server restart changes nothing about the data.
    server.terminate();
    server.launch().await;
    let expected = format!("release-{first_id}\nwritten-by-the-first\nrelease-{second_id}\n");
    assert_eq!(notes(&server, &host, "").await, expected);

    // A failing release command fails the deployment with its output; version 2 keeps serving.
    server.cli_ok(&[
        "services",
        "update",
        &target,
        "--release-command",
        "sh -c 'echo \"migration 42 failed: table exists\" >&2; exit 3'",
    ]);
    repo.write("www/index.html", "hello from version 3\n", "third version");
    let failed = server.deploy(&project, "web").await;
    assert_eq!(failed["status"], "failed");
    let log = server.deploy_log(failed["id"].as_i64().unwrap()).await;
    assert!(log.contains("migration 42 failed: table exists"), "{log}");
    assert!(log.contains("exited with code 3"), "{log}");
    assert_eq!(
        server.through_edge(&host, "/").await.unwrap().1,
        "hello from version 2\n"
    );
    assert_eq!(notes(&server, &host, "").await, expected);

    // Removing a volume asks first; once confirmed, the live service is redeployed without
    // it and its data goes once no container mounts it.
    server.cli_ok(&[
        "services",
        "update",
        &target,
        "--release-command",
        "default",
    ]);
    let added = server.cli_ok(&["volumes", "add", &target, "scratch", "--path", "/scratch"]);
    assert!(added.contains("live"), "{added}");
    assert_eq!(project_volumes(&project).len(), 2);
    let refused = server.cli(&["volumes", "remove", &target, "scratch"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    server.cli_ok(&["volumes", "remove", &target, "scratch", "--yes"]);
    eventually(
        Duration::from_secs(30),
        "the removed volume to be deleted",
        || async { (project_volumes(&project).len() == 1).then_some(()) },
    )
    .await;
    assert_eq!(notes(&server, &host, "").await, expected);

    // Deleting the service asks before deleting the volume's data.
    let refused = server.cli(&["services", "delete", &target]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("delete_volumes") || message.contains("volumes (data)"),
        "{message}"
    );
    assert_eq!(project_volumes(&project).len(), 1);
    server.cli_ok(&["services", "delete", &target, "--delete-volumes"]);
    eventually(
        Duration::from_secs(30),
        "the volume to be deleted",
        || async { project_volumes(&project).is_empty().then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_crash_during_a_recreate_deploy_brings_the_previous_version_back() {
    let mut server = TestServer::start(crate::BINARY).await;
    let project = unique("recrash");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let target = format!("{project}/web");
    server.cli_ok(&["volumes", "add", &target, "data", "--path", "/data"]);
    server.cli_ok(&["services", "update", &target, "--startup-timeout", "2m"]);
    deploy_live(&server, &project, "web").await;
    let host = format!("web.{project}.localhost");
    assert_eq!(notes(&server, &host, "?kept").await, "kept\n");

    // The new version never gets ready: the server dies while the old one is stopped for it.
    repo.overlay("never-ready");
    let id = server.request_deploy(&project, "web").await;
    server.wait_status(id, "health_checking").await;
    assert_eq!(
        server
            .through_edge(&host, "/")
            .await
            .map(|(status, _)| status),
        Some(503),
        "a recreate deploy takes the old version off its route first (503: try again later)"
    );
    server.kill();
    server.launch().await;

    let failed = server.wait_finished(id).await;
    assert_eq!(failed["status"], "failed");
    let log = server.deploy_log(id).await;
    assert!(log.contains("started again and serves"), "{log}");
    eventually(
        Duration::from_secs(30),
        "the previous version to serve",
        || async {
            let answer = server.through_edge(&host, "/").await;
            (answer == Some((200, "hello from version 1\n".to_owned()))).then_some(())
        },
    )
    .await;
    assert_eq!(notes(&server, &host, "").await, "kept\n");
    let containers = serving(&server, &project, "web").await;
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert_eq!(containers[0]["health"], "healthy");
}

#[tokio::test(flavor = "multi_thread")]
async fn first_deploys_of_two_services_of_a_new_project_at_once_share_one_network() {
    let server = TestServer::start(crate::BINARY).await;
    let project = unique("pair");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "one", &repo).await;
    server.service(&project, "two", &repo).await;
    let one = server.request_deploy(&project, "one").await;
    let two = server.request_deploy(&project, "two").await;
    for id in [one, two] {
        let deployed = server.wait_finished(id).await;
        assert_eq!(
            deployed["status"],
            "live",
            "{}",
            server.deploy_log(id).await
        );
    }
    let networks = Command::new("/usr/bin/docker")
        .args(["network", "ls", "--quiet", "--filter"])
        .arg(format!("label=io.helvetia.project={project}"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&networks.stdout).lines().count(), 1);
}
