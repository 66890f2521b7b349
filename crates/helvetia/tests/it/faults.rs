//! The isolated fault targets of `helvetia_test_support::fault`: a second Docker engine in a
//! network namespace and a PostgreSQL cluster of a test's own, which fault scenarios restart and
//! kill without disturbing other tests.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use helvetia_test_support::fault::{
    EngineOptions, PgCluster, SecondEngine, Tmpfs, busybox_httpd_image, cluster_exists,
    engine_leftovers, remove_stale,
};
use helvetia_test_support::{
    FixtureRepo, TestServer, eventually, http_client, project_containers, unique,
};

/// What `GET http://<address>:8080/` answers from the host, if anything.
async fn fetch(address: &str) -> Option<String> {
    let response = http_client()
        .get(format!("http://{address}:8080/"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    response.text().await.ok()
}

async fn answers_hello(address: &str) {
    eventually(Duration::from_secs(10), "the container to answer", || {
        let address = address.to_owned();
        async move { (fetch(&address).await.as_deref() == Some("hello\n")).then_some(()) }
    })
    .await;
}

/// A fixture web server on `engine`, with a restart policy, stopped within a second.
fn run_web(engine: &SecondEngine, name: &str, restart: &str, extra: &[&str]) -> String {
    engine.docker_ok(
        &[
            &["run", "--detach", "--name", name, "--restart", restart][..],
            &["--stop-timeout", "1"],
            extra,
            &[busybox_httpd_image()],
        ]
        .concat(),
    )
}

fn started_at(engine: &SecondEngine, container: &str) -> String {
    engine.docker_ok(&["inspect", "--format", "{{.State.StartedAt}}", container])
}

fn running(engine: &SecondEngine, container: &str) -> bool {
    engine.docker_ok(&["inspect", "--format", "{{.State.Running}}", container]) == "true"
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_engine_keeps_its_containers_over_a_live_restore_restart_and_leaves_nothing() {
    let begin = Instant::now();
    let mut engine = SecondEngine::start(EngineOptions {
        live_restore: true,
        ..EngineOptions::default()
    });
    let started = begin.elapsed();
    engine.load_image(busybox_httpd_image());
    run_web(&engine, "web", "no", &[]);
    let address = engine.container_address("web");
    answers_hello(&address).await;
    let before = started_at(&engine, "web");

    let times = engine.restart();
    assert!(running(&engine, "web"), "{}", engine.log());
    assert_eq!(
        started_at(&engine, "web"),
        before,
        "the container was not restarted"
    );
    assert_eq!(fetch(&address).await.as_deref(), Some("hello\n"));

    // Killed, the engine leaves the container to containerd; started again, it finds it.
    engine.kill_dockerd();
    assert_eq!(fetch(&address).await.as_deref(), Some("hello\n"));
    engine.start_dockerd();
    assert!(running(&engine, "web"));

    let name = engine.name();
    drop(engine);
    assert_eq!(engine_leftovers(&name), Vec::<String>::new());
    eprintln!("second engine: started in {started:?}, restarted in {times:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_live_restore_a_restart_stops_containers_and_restarts_those_with_a_policy() {
    let mut engine = SecondEngine::start(EngineOptions::default());
    engine.load_image(busybox_httpd_image());
    // Published ports are on the namespace's address.
    run_web(
        &engine,
        "kept",
        "unless-stopped",
        &["--publish", "8080:8080"],
    );
    run_web(&engine, "plain", "no", &[]);
    answers_hello(&engine.address()).await;
    let address = engine.container_address("kept");
    answers_hello(&address).await;
    let before = started_at(&engine, "kept");

    engine.restart();
    assert!(!running(&engine, "plain"), "{}", engine.log());
    assert!(running(&engine, "kept"), "{}", engine.log());
    assert_ne!(started_at(&engine, "kept"), before);
    answers_hello(&engine.container_address("kept")).await;
    answers_hello(&engine.address()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_on_the_second_engine_deploys_and_routes_to_its_containers() {
    let engine = SecondEngine::start(EngineOptions::default());
    let server = TestServer::start_on(crate::BINARY, &engine, &[]).await;
    let project = unique("second");
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let deployed = server.deploy(&project, "web").await;
    let log = server.deploy_log(deployed["id"].as_i64().unwrap()).await;
    assert_eq!(deployed["status"], "live", "{log}\n{}", server.log());
    let (status, body) = server
        .through_edge(&format!("web.{project}.localhost"), "/")
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "hello from version 1\n"));
    // On the second engine, not the host's.
    let label = format!("label=io.helvetia.project={project}");
    assert!(
        !engine
            .docker_ok(&["ps", "--quiet", "--filter", &label])
            .is_empty()
    );
    assert!(project_containers(&project).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_on_its_own_postgres_cluster_recovers_from_a_restart() {
    let begin = Instant::now();
    let cluster = PgCluster::create();
    let created = begin.elapsed();
    let server = TestServer::start_with(crate::BINARY, &["--database-url", &cluster.url()]).await;
    let (status, body) = server
        .api(
            Method::POST,
            "/api/v1/projects",
            Some(json!({"name": "kept"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let listed = || {
        eventually(
            Duration::from_secs(30),
            "the API to answer after the database came back",
            || async {
                let (status, body) = server.api(Method::GET, "/api/v1/projects", None).await;
                (status == 200).then_some(body)
            },
        )
    };
    let restarted = cluster.restart();
    let projects = listed().await;
    assert_eq!(projects[0]["name"], "kept", "{projects}");
    // Killed, the cluster recovers from its write-ahead log when it starts again.
    cluster.kill();
    cluster.start();
    let projects = listed().await;
    assert_eq!(projects[0]["name"], "kept", "{projects}");

    let name = cluster.name().to_owned();
    drop(server);
    drop(cluster);
    assert!(!cluster_exists(&name));
    eprintln!("own PostgreSQL cluster: created in {created:?}, restarted in {restarted:?}");
}

/// Set for the child process of `a_crashed_runs_targets_are_removed_by_the_next_run`.
const HOLDER: &str = "HELVETIA_TEST_FAULT_TARGET_HOLDER";

/// In that child only: makes both targets, says which, and waits to be killed.
#[test]
fn holds_fault_targets_until_killed() {
    if std::env::var_os(HOLDER).is_none() {
        return;
    }
    let engine = SecondEngine::start(EngineOptions::default());
    let cluster = PgCluster::create();
    let mount_point = tempfile::tempdir().unwrap().keep();
    let _tmpfs = Tmpfs::mount(&mount_point, 1);
    println!(
        "held {} {} {}",
        engine.name(),
        cluster.name(),
        mount_point.display()
    );
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    unreachable!("the holder is killed before its stdin closes");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_runs_targets_are_removed_by_the_next_run() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let mut holder = Command::new(std::env::current_exe().unwrap())
        .args([
            "faults::holds_fault_targets_until_killed",
            "--exact",
            "--nocapture",
        ])
        .env(HOLDER, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let held = std::io::BufReader::new(holder.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("held ").map(str::to_owned))
        .expect("the holder names its targets");
    let [engine, cluster, mount_point] = held.split(' ').collect::<Vec<_>>()[..] else {
        panic!("{held}");
    };
    let mounted = || {
        std::process::Command::new("mountpoint")
            .args(["--quiet", mount_point])
            .status()
            .unwrap()
            .success()
    };
    // SIGKILL: no destructor runs; dockerd, containerd and the cluster keep running.
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(!engine_leftovers(engine).is_empty());
    assert!(cluster_exists(cluster));
    assert!(mounted());

    remove_stale();
    assert_eq!(engine_leftovers(engine), Vec::<String>::new());
    assert!(!cluster_exists(cluster));
    assert!(!mounted());
    std::fs::remove_dir(mount_point).unwrap();
}
