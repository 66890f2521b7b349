//! Previews through the API: settings and their checks, a branch's preview on request, the
//! variables previews get (secrets only when allowed), what a preview refuses, and the idle
//! sweep.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use helvetia_core::deployment::DeploymentStatus::{self, *};
use helvetia_server::usecases::{App, previews};
use helvetia_server::worker::WorkerHandle;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use tokio::sync::Notify;

use crate::harness::Api;

const WEB: &str = "/api/v1/projects/demo/services/web";

#[tokio::test]
async fn a_branch_preview_gets_the_variables_for_previews_and_secrets_only_when_allowed() {
    let api = Api::new().await;
    api.demo_service("web").await;
    let admin = api.admin.clone();
    let call = |method: Method, path: String, body: Option<serde_json::Value>| {
        let admin = admin.clone();
        let api = &api;
        async move { api.call(method, &path, Some(&admin), body).await }
    };

    // Settings: defaults, per-field checks, pull-request previews only with GitHub.
    let (status, defaults) = call(Method::GET, format!("{WEB}/preview-settings"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(defaults["enabled"], false);
    assert_eq!(defaults["max_previews"], 5);
    let (status, refused) = call(
        Method::PATCH,
        format!("{WEB}/preview-settings"),
        Some(json!({"max_previews": 0, "idle_minutes": 999_999})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let (status, refused) = call(
        Method::PATCH,
        format!("{WEB}/preview-settings"),
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");

    // Variables: the service's own (one secret), and one for previews only.
    let (status, _) = call(
        Method::PUT,
        format!("{WEB}/env"),
        Some(json!({"vars": [
            {"name": "MODE", "value": "production"},
            {"name": "API_KEY", "value": "production-secret", "secret": true},
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        Method::PUT,
        format!("{WEB}/env?previews=true"),
        Some(json!({"vars": [{"name": "MODE", "value": "preview"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, own) = call(Method::GET, format!("{WEB}/env"), None).await;
    assert!(
        own.as_array()
            .unwrap()
            .iter()
            .all(|v| v["scope"] == "service"),
        "{own}"
    );
    let (_, for_previews) = call(Method::GET, format!("{WEB}/env?previews=true"), None).await;
    assert_eq!(for_previews[0]["scope"], "previews", "{for_previews}");

    // A branch's preview, on request: named from the branch, under the service's hostname.
    let (status, deployed) = call(
        Method::POST,
        format!("{WEB}/previews"),
        Some(json!({"branch": "feature/New_Page"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{deployed}");
    assert_eq!(deployed["preview"]["name"], "new-page");
    assert_eq!(deployed["preview"]["service"], "web--new-page");
    assert_eq!(
        deployed["preview"]["url"],
        "http://new-page.web.demo.localhost"
    );
    assert_eq!(deployed["deployment"]["git_ref"], "feature/New_Page");
    let (_, listed) = call(Method::GET, "/api/v1/projects/demo/services".into(), None).await;
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "previews are not listed as services"
    );

    let preview = api.store.previews(None).await.unwrap().remove(0).service;
    let runtime = |environment: helvetia_server::platform::ServiceEnvironment| {
        environment
            .runtime
            .into_iter()
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let environment = runtime(api.platform.environment(&preview).await.unwrap());
    assert_eq!(environment["MODE"], "preview");
    assert!(!environment.contains_key("API_KEY"), "{environment:?}");
    let (status, _) = call(
        Method::PATCH,
        format!("{WEB}/preview-settings"),
        Some(json!({"secrets": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let environment = runtime(api.platform.environment(&preview).await.unwrap());
    assert_eq!(environment["API_KEY"], "production-secret");

    // What a preview refuses: a deploy of its own, previews of its own, an approval it does
    // not need.
    let preview_path = "/api/v1/projects/demo/services/web--new-page";
    let (status, reply) = call(
        Method::POST,
        format!("{preview_path}/deployments"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    let (status, _) = call(Method::GET, format!("{preview_path}/previews"), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, reply) = call(
        Method::POST,
        format!("{WEB}/previews/new-page/approve"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    let (status, _) = call(Method::DELETE, format!("{WEB}/previews/nope"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Idle: a preview whose live deployment is older than the idle time is stopped.
    let id = deployed["deployment"]["id"].as_i64().unwrap();
    let steps: [DeploymentStatus; 6] = [Queued, Cloning, Building, Starting, HealthChecking, Live];
    for pair in steps.windows(2) {
        api.store
            .transition_deployment(id, pair[0], pair[1], "test")
            .await
            .unwrap();
    }
    let app = App::new(
        api.platform.clone(),
        WorkerHandle::default(),
        Arc::new(Notify::new()),
    );
    let now = Timestamp::now();
    assert_eq!(previews::stop_idle(&app, now).await.unwrap(), 0);
    let later = now + SignedDuration::from_hours(25);
    assert_eq!(previews::stop_idle(&app, later).await.unwrap(), 1);

    // Removing it queues its removal.
    let (status, _) = call(Method::DELETE, format!("{WEB}/previews/new-page"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}
