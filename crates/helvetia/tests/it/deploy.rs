//! Deploying from git to a running, routed container on the real engine and Traefik.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use helvetia_test_support::dns::TestDns;
use helvetia_test_support::http::{Serve, TestHttp};
use helvetia_test_support::{
    FixtureRepo, TestServer, eventually, project_containers, remove_project_objects, unique,
};

/// Removes a test project's engine objects even when the test fails.
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        remove_project_objects(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deploys_from_git_and_redeploys_a_new_commit() {
    let server = TestServer::start(crate::BINARY).await;
    let project = unique("web");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let host = format!("web.{project}.localhost");

    // The CLI follows the deployment and exits 0 once it is live.
    let output = server.cli(&["deploy", &format!("{project}/web")]);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(printed.contains("==> building"), "{printed}");
    assert!(
        printed.contains("#3 [1/3] COPY busybox /bin/busybox"),
        "build output is streamed: {printed}"
    );
    assert!(
        printed.contains(&format!(
            "is live at http://web.{project}.localhost:{}",
            server.http_port
        )),
        "{printed}"
    );
    let (status, body) = server.through_edge(&host, "/").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "hello from version 1\n"));

    let history = server
        .get(&format!(
            "/api/v1/projects/{project}/services/web/deployments"
        ))
        .await;
    let first = &history[0];
    assert_eq!(first["status"], "live", "{first}");
    assert_eq!(first["commit_message"], "web: first version");
    assert_eq!(first["commit_author"], "Test Author <test@example.org>");
    assert_eq!(first["commit_sha"].as_str().unwrap().len(), 40);
    assert_eq!(
        first["image"],
        format!(
            "{}:{}",
            server.scope().await.image_repository(&project, "web"),
            first["id"]
        )
    );

    // The container: named, labelled, no published port, limits, restart policy, log rotation.
    let name = server
        .scope()
        .await
        .container(&project, "web", first["id"].as_i64().unwrap(), 0);
    let inspect = std::process::Command::new("/usr/bin/docker")
        .args(["inspect", &name])
        .output()
        .unwrap();
    let inspect: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let container = &inspect[0];
    assert_eq!(
        container["Config"]["Labels"]["io.helvetia.project"],
        project.as_str()
    );
    assert_eq!(
        container["HostConfig"]["RestartPolicy"]["Name"],
        "unless-stopped"
    );
    assert_eq!(
        container["HostConfig"]["LogConfig"]["Config"]["max-size"],
        "10m"
    );
    assert_eq!(container["HostConfig"]["Memory"], 512 * 1024 * 1024);
    // No privileges it was not given: see the README's "Security".
    assert_eq!(
        container["HostConfig"]["SecurityOpt"],
        serde_json::json!(["no-new-privileges"])
    );
    assert_eq!(
        container["HostConfig"]["CapDrop"],
        serde_json::json!(["ALL"])
    );
    assert_eq!(
        container["HostConfig"]["CapAdd"],
        serde_json::json!(["NET_BIND_SERVICE"])
    );
    assert_eq!(container["HostConfig"]["ReadonlyRootfs"], false);
    assert!(
        container["HostConfig"]["PortBindings"]
            .as_object()
            .is_none_or(|p| p.is_empty())
    );
    assert!(
        container["Config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "PORT=8080")
    );
    assert_eq!(
        container["HostConfig"]["NetworkMode"],
        server.scope().await.network(&project)
    );

    // A new commit: built, switched, and the old container is gone once drained. What its
    // `.dockerignore` excludes never reaches the engine.
    repo.write("www/draft.html", "not for publication\n", "a draft");
    repo.write(
        ".dockerignore",
        "# drafts stay local\nwww/draft*\n",
        "ignore drafts",
    );
    repo.write("www/index.html", "hello from version 2\n", "second version");
    let second = server.deploy(&project, "web").await;
    let second_log = server.deploy_log(second["id"].as_i64().unwrap()).await;
    assert_eq!(second["status"], "live", "{second_log}");
    assert!(
        second_log.contains("(1 path left out by .dockerignore)"),
        "{second_log}"
    );
    assert_eq!(
        server.through_edge(&host, "/").await.unwrap().1,
        "hello from version 2\n"
    );
    assert_eq!(
        server.through_edge(&host, "/draft.html").await.unwrap().0,
        404
    );
    let live_name =
        server
            .scope()
            .await
            .container(&project, "web", second["id"].as_i64().unwrap(), 0);
    eventually(
        Duration::from_secs(30),
        "only the live container to remain",
        || {
            let live_name = live_name.clone();
            let project = project.clone();
            async move { (project_containers(&project) == [live_name]).then_some(()) }
        },
    )
    .await;
    let retired = server
        .get(&format!("/api/v1/deployments/{}", first["id"]))
        .await;
    assert_eq!(retired["status"], "retired");

    // The same commit again: the image is reused, and the log says so.
    let third = server.deploy(&project, "web").await;
    assert_eq!(third["status"], "live", "{third}");
    let log = server.deploy_log(third["id"].as_i64().unwrap()).await;
    assert!(log.contains("reused, no rebuild"), "{log}");
    assert!(!log.contains("COPY busybox"), "{log}");
    assert_eq!(
        server.through_edge(&host, "/").await.unwrap().1,
        "hello from version 2\n"
    );

    let show = server.cli_ok(&["services", "show", &format!("{project}/web")]);
    assert!(
        show.contains(&format!("#{}", third["id"])) && show.contains("second version"),
        "{show}"
    );
    let deployments = server.cli_ok(&["deployments", &format!("{project}/web")]);
    assert_eq!(deployments.lines().count(), 4, "{deployments}");
    assert!(
        deployments.contains("retired") && deployments.contains("live"),
        "{deployments}"
    );
}

/// Requests `host` in a loop until stopped; counts answers that were not the expected body.
pub fn keep_requesting(
    server: &TestServer,
    host: String,
    expected: &'static str,
) -> (
    Arc<AtomicBool>,
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
    tokio::task::JoinHandle<()>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let bad = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://127.0.0.1:{}/", server.http_port);
    let task = {
        let (stop, ok, bad) = (stop.clone(), ok.clone(), bad.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let answer = client.get(&url).header("Host", &host).send().await;
                let good = match answer {
                    Ok(response) if response.status() == 200 => {
                        response.text().await.is_ok_and(|body| body == expected)
                    }
                    _ => false,
                };
                if good {
                    ok.fetch_add(1, Ordering::Relaxed)
                } else {
                    bad.fetch_add(1, Ordering::Relaxed)
                };
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    (stop, ok, bad, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_deployments_leave_the_live_version_serving() {
    let server = TestServer::start(crate::BINARY).await;
    let project = unique("fail");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    // The pipeline's notifications, to a channel made with the CLI: queued (its host resolves
    // nowhere, so they stay pending; the server tests cover delivery).
    let added = server.cli_ok(&[
        "notifications",
        "add",
        &project,
        "ops",
        "--webhook",
        "https://hooks.invalid/ops",
    ]);
    assert!(added.contains("Signing secret (shown once): "), "{added}");
    let listed = server.cli_ok(&["notifications", "list", &project]);
    assert!(
        listed.contains("deploy_succeeded,deploy_failed"),
        "{listed}"
    );
    let host = format!("web.{project}.localhost");
    let live = server.deploy(&project, "web").await;
    assert_eq!(live["status"], "live", "{live}");
    let mut notified = vec![("deploy_succeeded".to_owned(), live["id"].clone())];
    let live_container =
        server
            .scope()
            .await
            .container(&project, "web", live["id"].as_i64().unwrap(), 0);
    let (stop, ok, bad, requests) =
        keep_requesting(&server, host.clone(), "hello from version 1\n");
    let (status, _) = server
        .api(
            Method::PATCH,
            &format!("/api/v1/projects/{project}/services/web"),
            Some(json!({"port": 8080})),
        )
        .await;
    assert_eq!(status, 200);

    // Each case: the variant to commit, what the deployment's reason says, what its log holds.
    let cases = [
        (
            "broken-build",
            "build failed",
            "error: this build fails on purpose",
        ),
        (
            "crash-on-start",
            "exited with code 3",
            "fatal: DATABASE_URL is not set",
        ),
    ];
    for (variant, reason, logged) in cases {
        repo.overlay(variant);
        let failed = server.deploy(&project, "web").await;
        notified.push(("deploy_failed".to_owned(), failed["id"].clone()));
        let id = failed["id"].as_i64().unwrap();
        let log = server.deploy_log(id).await;
        assert_eq!(failed["status"], "failed", "{variant}: {log}");
        assert!(
            failed["status_reason"].as_str().unwrap().contains(reason),
            "{variant}: {failed}"
        );
        assert!(log.contains(logged), "{variant}: {log}");
        assert!(
            log.contains("the previous version keeps serving"),
            "{variant}: {log}"
        );
        assert_eq!(
            server.through_edge(&host, "/").await.unwrap().1,
            "hello from version 1\n"
        );
        assert_eq!(
            project_containers(&project),
            [live_container.as_str()],
            "{variant}"
        );
    }

    // Never ready: the start-up timeout (shortened from its 60 s default) runs out.
    let (status, body) = server
        .api(
            Method::PATCH,
            &format!("/api/v1/projects/{project}/services/web"),
            Some(json!({"runtime": {"timeouts": {"startup_ms": 4000}}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["redeployment"].is_null(),
        "a timeout change needs no new containers"
    );
    repo.overlay("never-ready");
    let failed = server.deploy(&project, "web").await;
    let log = server.deploy_log(failed["id"].as_i64().unwrap()).await;
    assert_eq!(failed["status"], "failed", "{log}");
    assert!(
        failed["status_reason"]
            .as_str()
            .unwrap()
            .contains("did not become ready within 4s"),
        "{failed}"
    );
    assert!(
        log.contains("listening on 9999"),
        "the app's output is in the log: {log}"
    );
    assert_eq!(project_containers(&project), [live_container.as_str()]);

    stop.store(true, Ordering::Relaxed);
    requests.await.unwrap();
    assert_eq!(
        bad.load(Ordering::Relaxed),
        0,
        "requests failed while deployments failed"
    );
    assert!(ok.load(Ordering::Relaxed) > 50);
    let service = server
        .get(&format!("/api/v1/projects/{project}/services/web"))
        .await;
    assert_eq!(service["status"]["live_deployment"]["id"], live["id"]);
    notified.push(("deploy_failed".to_owned(), failed["id"].clone()));
    let messages = server
        .get(&format!(
            "/api/v1/projects/{project}/notifications/ops/messages"
        ))
        .await;
    let mut events: Vec<(String, serde_json::Value)> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let event = &m["event"];
            (
                event["kind"].as_str().unwrap().to_owned(),
                event["deployment_id"].clone(),
            )
        })
        .collect();
    events.reverse();
    assert_eq!(events, notified, "{messages}");
    let log = server.cli_ok(&["notifications", "log", &project, "ops"]);
    assert!(
        log.contains("deploy_failed") && log.contains("pending"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_input_never_reaches_a_process() {
    let server = TestServer::start(crate::BINARY).await;
    let project = unique("evil");
    let marker = server.dir.path().join("pwned");
    let marker = marker.to_string_lossy();
    let (status, _) = server
        .api(
            Method::POST,
            "/api/v1/projects",
            Some(json!({"name": project})),
        )
        .await;
    assert_eq!(status, 201);
    let services = format!("/api/v1/projects/{project}/services");
    for repo in [
        format!("ext::sh -c touch% {marker}"),
        format!("--upload-pack=touch {marker}"),
        format!("-oProxyCommand=touch {marker}:repo"),
        format!("ssh://-oProxyCommand=touch%20{marker}/repo"),
    ] {
        let (status, body) = server
            .api(
                Method::POST,
                &services,
                Some(json!({"name": "web", "repo": repo})),
            )
            .await;
        assert_eq!(status, 422, "{repo}: {body}");
    }
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let deployments = format!("{services}/web/deployments");
    for body in [
        json!({"branch": format!("--upload-pack=touch {marker}")}),
        json!({"commit": "-oX"}),
    ] {
        let (status, reply) = server.api(Method::POST, &deployments, Some(body)).await;
        assert_eq!(status, 422, "{reply}");
    }
    // A branch that is legal for git but looks like shell is passed as one argument: git
    // reports it missing; no shell ever sees it.
    let (status, reply) = server
        .api(
            Method::POST,
            &deployments,
            Some(json!({"branch": format!("$(touch {marker})")})),
        )
        .await;
    assert_eq!(status, 422, "spaces make it an invalid branch: {reply}");
    let (status, reply) = server
        .api(Method::POST, &deployments, Some(json!({"branch": "$(id)"})))
        .await;
    assert_eq!(status, 202, "{reply}");
    let failed = server.wait_finished(reply["id"].as_i64().unwrap()).await;
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["status_reason"]
            .as_str()
            .unwrap()
            .contains("branch `$(id)` does not exist"),
        "{failed}"
    );
    let history = server.get(&deployments).await;
    assert_eq!(
        history.as_array().unwrap().len(),
        1,
        "refused requests created no deployment"
    );
    assert!(!std::path::Path::new(&*marker).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_app_on_the_debian_base_image() {
    let server = TestServer::start(crate::BINARY).await;
    let project = unique("py");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("python");
    server.service(&project, "app", &repo).await;
    let deployed = server.deploy(&project, "app").await;
    let log = server.deploy_log(deployed["id"].as_i64().unwrap()).await;
    assert_eq!(deployed["status"], "live", "{log}");
    let (status, body) = server
        .through_edge(&format!("app.{project}.localhost"), "/")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(body.starts_with("hello from python on "), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_running_build_stops_it_promptly() {
    let server = TestServer::start(crate::BINARY).await;
    let project = unique("cancel");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let live = server.deploy(&project, "web").await;
    assert_eq!(live["status"], "live", "{live}");

    repo.overlay("slow-build");
    let id = server.request_deploy(&project, "web").await;
    server
        .wait_for_log(id, "a slow build step starts", Duration::from_secs(60))
        .await;
    let asked = std::time::Instant::now();
    let output = server.cli(&["deployments", "cancel", &id.to_string()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let finished = server.wait_finished(id).await;
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "cancellation took {:?}",
        asked.elapsed()
    );
    assert_eq!(finished["status"], "cancelled", "{finished}");
    let transitions = finished["transitions"].as_array().unwrap();
    assert!(
        transitions.last().unwrap()["reason"]
            .as_str()
            .unwrap()
            .contains("cancelled")
    );
    // The service is not stuck: the next deployment runs.
    repo.overlay("web");
    let next = server.deploy(&project, "web").await;
    assert_eq!(next["status"], "live", "{next}");
    assert_eq!(
        server
            .through_edge(&format!("web.{project}.localhost"), "/")
            .await
            .unwrap()
            .1,
        "hello from version 1\n"
    );
}

/// `--resolver` is the resolver outbound requests check names through: a repository name that
/// resolves to a refused address is accepted (it may be public later) but fails its deployment
/// before any connection, saying why.
#[tokio::test(flavor = "multi_thread")]
async fn a_repository_name_resolving_to_an_internal_address_fails_before_connecting() {
    let dns = TestDns::start(&[("git.internal.test", "127.0.0.1".parse().unwrap())]).await;
    let watched = TestHttp::start(Serve::Files(std::env::temp_dir().join(unique("none")))).await;
    let resolver = dns.address().to_string();
    let server = TestServer::start_with(crate::BINARY, &["--resolver", &resolver]).await;
    let project = unique("outbound");
    let repo = format!("http://git.internal.test:{}/app.git", watched.port());
    server
        .api(
            Method::POST,
            "/api/v1/projects",
            Some(json!({"name": project})),
        )
        .await;
    let (status, body) = server
        .api(
            Method::POST,
            &format!("/api/v1/projects/{project}/services"),
            Some(json!({"name": "web", "repo": repo})),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let failed = server.deploy(&project, "web").await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(
        failed["status_reason"],
        "destination not allowed: `git.internal.test` resolves to 127.0.0.1, which is this \
         machine (loopback); this server refuses it (see --allow-private-destinations)",
        "{failed}"
    );
    assert!(dns.queries().contains(&"git.internal.test".to_owned()));
    assert_eq!(watched.requests(), Vec::<String>::new(), "it connected");
}
