//! The disk budget over the API: shown and swept for instance administrators only.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::harness::Api;

#[tokio::test]
async fn the_disk_budget_is_shown_and_swept_for_instance_administrators_only() {
    let api = Api::new().await;
    let (status, before) = api.get("/api/v1/disk").await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert_eq!(before["budget_bytes"], 20u64 << 30);
    assert!(before["swept_at"].is_null(), "{before}");
    assert!(before["used"].is_null(), "{before}");

    let (status, swept) = api.post("/api/v1/disk/sweep", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{swept}");
    assert!(swept["swept_at"].is_string(), "{swept}");
    let used = &swept["used"];
    // No builder here: only runtime images count.
    assert_eq!(used["registry"], 0, "{swept}");
    assert_eq!(used["build_cache"], 0, "{swept}");
    assert_eq!(used["total"], used["images"], "{swept}");
    let (_, shown) = api.get("/api/v1/disk").await;
    assert_eq!(shown["swept_at"], swept["swept_at"]);

    // The first user adopts the installation (and is its administrator); the second is not.
    api.user("owner@example.com").await;
    let (token, _) = api.user("operator@example.com").await;
    for (method, path) in [
        (Method::GET, "/api/v1/disk"),
        (Method::POST, "/api/v1/disk/sweep"),
    ] {
        let (status, body) = api.call(method, path, Some(&token), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert!(
            body.to_string().contains("instance administrators"),
            "{body}"
        );
    }
}
