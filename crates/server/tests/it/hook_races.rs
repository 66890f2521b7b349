//! Pushes that race: a newer push cancels a running build of an older commit (when the service
//! is set to), and copies of one delivery arriving together request one deployment.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::harness::Api;
use crate::hooks::{A, B, SERVICE, deliver, deployments, gitea, gitea_push, receiver};

#[tokio::test]
async fn a_push_cancels_a_running_build_of_an_older_commit_when_set_to() {
    use helvetia_core::deployment::DeploymentStatus::{Cloning, Queued};
    let api = Api::new().await;
    let (path, secret) = receiver(&api).await;
    let path = format!("{path}/gitea");
    let hook = format!("{SERVICE}/hook");
    let body = gitea_push("main", A, &["a"]);
    let (_, reply) = deliver(&api, &path, &gitea(&secret, "1", &body), body).await;
    let running = reply["results"][0]["deployment_id"].as_i64().unwrap();
    // A worker took it (this API runs none).
    api.store
        .transition_deployment(running, Queued, Cloning, "test")
        .await
        .unwrap();

    let body = gitea_push("main", B, &["a"]);
    deliver(&api, &path, &gitea(&secret, "2", &body), body).await;
    let listed = deployments(&api).await;
    assert_eq!(
        (&listed[1]["id"], &listed[1]["status"]),
        (&json!(running), &json!("cloning"))
    );

    api.expect(
        StatusCode::OK,
        Some(&api.admin),
        (Method::PATCH, &hook),
        Some(json!({"cancel_running": true})),
    )
    .await;
    api.store
        .transition_deployment(listed[0]["id"].as_i64().unwrap(), Queued, Cloning, "test")
        .await
        .unwrap();
    let body = gitea_push("main", A, &["a"]);
    deliver(&api, &path, &gitea(&secret, "3", &body), body).await;
    // The build of B is asked to stop (its worker records `cancelled` at its next step); the
    // build of A, the commit pushed again, is left.
    let (_, audit) = api.get("/api/v1/audit").await;
    let cancels: Vec<_> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["action"] == "deployment.cancel")
        .map(|entry| (entry["target"].clone(), entry["actor"].clone()))
        .collect();
    let building_b = listed[0]["id"].as_i64().unwrap();
    assert_eq!(
        cancels,
        [(
            json!(format!("demo/web#{building_b}")),
            json!("gitea push by ada")
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_of_a_delivery_arriving_together_deploy_once() {
    let api = std::sync::Arc::new(Api::new().await);
    let (path, secret) = receiver(&api).await;
    let path = format!("{path}/gitea");
    let body = gitea_push("main", B, &["a"]);
    let headers = gitea(&secret, "again", &body);
    let copies: Vec<_> = (0..4)
        .map(|_| {
            let (api, path, headers, body) =
                (api.clone(), path.clone(), headers.clone(), body.clone());
            tokio::spawn(async move { deliver(&api, &path, &headers, body).await.1 })
        })
        .collect();
    let mut outcomes = Vec::new();
    for copy in copies {
        outcomes.push(copy.await.unwrap()["results"][0]["outcome"].clone());
    }
    outcomes.sort_by_key(ToString::to_string);
    assert_eq!(
        outcomes,
        [
            json!("deployed"),
            json!("duplicate"),
            json!("duplicate"),
            json!("duplicate")
        ]
    );
    assert_eq!(deployments(&api).await.len(), 1);
}
