//! Races made to happen on purpose: the server is held or killed at a failpoint
//! (`helvetia_server::failpoint`) while something else runs.

use std::time::Duration;

use helvetia_test_support::{FixtureRepo, TestServer, eventually, unique};
use reqwest::Method;

use crate::deploy::Cleanup;

/// Deletes a service, which wakes the reconciler.
async fn delete_service(server: &TestServer, project: &str, service: &str) {
    let path = format!("/api/v1/projects/{project}/services/{service}");
    let (status, body) = server.api(Method::DELETE, &path, None).await;
    assert_eq!(status, 204, "{body}");
}

/// A deploy that starts its container while the reconciler is between its look at the store
/// and its clean-up keeps it: the reconciler removes only containers the store did not want
/// when it listed the engine's.
#[tokio::test(flavor = "multi_thread")]
async fn the_reconciler_leaves_the_containers_of_a_running_deploy_alone() {
    const CLEANUP: &str = "reconcile-cleanup";
    let server = TestServer::start(crate::BINARY).await;
    let project = unique("race");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    for service in ["web", "spare1", "spare2"] {
        server.service(&project, service, &repo).await;
    }
    server.arm(CLEANUP, "pause");
    delete_service(&server, &project, "spare1").await;
    server.wait_paused(CLEANUP).await;
    let id = server.request_deploy(&project, "web").await;
    server.wait_status(id, "live").await;
    server.release(CLEANUP).await;
    // Passes run one after the other: once the next one is held, this one has ended.
    server.arm(CLEANUP, "pause");
    delete_service(&server, &project, "spare2").await;
    server.wait_paused(CLEANUP).await;
    server.release(CLEANUP).await;

    let host = format!("web.{project}.localhost");
    assert_eq!(
        server.through_edge(&host, "/").await,
        Some((200, "hello from version 1\n".to_owned())),
        "{}",
        server.log()
    );
    let deployment = server.get(&format!("/api/v1/deployments/{id}")).await;
    assert_eq!(deployment["status"], "live");
}

async fn status_of(server: &TestServer, deployment: i64) -> String {
    let deployment = server
        .get(&format!("/api/v1/deployments/{deployment}"))
        .await;
    deployment["status"].as_str().unwrap().to_owned()
}

/// Requests a deployment of `project/web`, kills the server when that deployment reaches
/// `point`, and starts it again. Returns the deployment's id.
async fn deploy_killed_at(server: &mut TestServer, project: &str, point: &str) -> i64 {
    // Armed once this deployment runs: the previous one's job has ended by then.
    server.arm("deploy-after-build", "pause");
    let id = server.request_deploy(project, "web").await;
    server.wait_paused("deploy-after-build").await;
    server.arm(point, "kill");
    server.release("deploy-after-build").await;
    server.wait_exited().await;
    server.release(point).await;
    server.launch().await;
    id
}

/// A server killed around a switch leaves history as the store recorded it: killed after the
/// edge router confirmed the new routes but before the switch was recorded, the new
/// deployment fails as interrupted and the old one keeps serving; killed while the new one
/// drains its predecessor, the new one stays live and serves, the predecessor (which served
/// until then) is retired, and the drain is finished.
#[tokio::test(flavor = "multi_thread")]
async fn a_kill_around_the_switch_never_rewrites_history() {
    let mut server = TestServer::start(crate::BINARY).await;
    let project = unique("switchkill");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    server.service(&project, "web", &repo).await;
    let host = format!("web.{project}.localhost");
    let first = server.deploy(&project, "web").await;
    assert_eq!(first["status"], "live");
    let first = first["id"].as_i64().unwrap();
    repo.write("www/index.html", "version 2\n", "v2");

    let second = deploy_killed_at(&mut server, &project, "deploy-after-confirm").await;
    let second = server.wait_finished(second).await;
    assert_eq!(second["status"], "failed", "{second}");
    assert!(
        second["status_reason"]
            .as_str()
            .unwrap()
            .starts_with("interrupted"),
        "{second}"
    );
    assert_eq!(status_of(&server, first).await, "live");
    assert_eq!(
        server.through_edge(&host, "/").await,
        Some((200, "hello from version 1\n".to_owned()))
    );

    let third = deploy_killed_at(&mut server, &project, "deploy-drain").await;
    let finished = server.wait_finished(third).await;
    assert_eq!(finished["status"], "live", "{}", server.log());
    server
        .wait_for_log(third, "finishing the drain", Duration::from_secs(30))
        .await;
    assert_eq!(status_of(&server, first).await, "retired");
    assert_eq!(
        status_of(&server, second["id"].as_i64().unwrap()).await,
        "failed"
    );
    let service = server
        .get(&format!("/api/v1/projects/{project}/services/web"))
        .await;
    assert_eq!(service["status"]["live_deployment"]["id"], third);
    assert_eq!(
        server.through_edge(&host, "/").await,
        Some((200, "version 2\n".to_owned()))
    );
    eventually(Duration::from_secs(30), "the drain to finish", || async {
        (helvetia_test_support::project_containers(&project).len() == 1).then_some(())
    })
    .await;
}
