//! Races made to happen on purpose: the server is held at a failpoint
//! (`helvetia_server::failpoint`) while something else runs.

use helvetia_test_support::{FixtureRepo, TestServer, unique};
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
    assert_eq!(deployment["status"], "live", "{deployment}");
}
