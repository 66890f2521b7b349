//! A service's privileges: the capabilities it gets back and its read-only root are settings
//! of their own, checked against the engine's default set, and every change is audited.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::Api;

async fn patch(api: &Api, body: Value) -> (StatusCode, Value) {
    api.call(
        Method::PATCH,
        "/api/v1/projects/demo/services/web",
        Some(&api.admin),
        Some(body),
    )
    .await
}

/// The audit log's entries, newest first, as `action target`.
async fn audit(api: &Api) -> Vec<String> {
    let (_, entries) = api.get("/api/v1/audit").await;
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn capabilities_come_from_a_known_list_and_every_change_is_audited() {
    let api = Api::new().await;
    let created = api.demo_service("web").await;
    assert_eq!(
        created["runtime"]["security"],
        json!({"read_only_root": false, "cap_add": []})
    );
    let before = audit(&api).await;

    // Nothing beyond the engine's default set, and only by its own names.
    for refused in [
        json!({"cap_add": ["SYS_ADMIN"]}),
        json!({"cap_add": ["chown"]}),
        json!({"cap_add": "CHOWN"}),
        json!({"privileged": true}),
    ] {
        let (status, body) = patch(&api, json!({"runtime": {"security": refused}})).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{refused}: {body}"
        );
    }
    assert_eq!(audit(&api).await, before, "a refused change writes nothing");

    let (status, patched) = patch(
        &api,
        json!({"runtime": {"security": {"cap_add": ["SETUID", "CHOWN"], "read_only_root": true}}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["runtime"]["security"],
        json!({"read_only_root": true, "cap_add": ["CHOWN", "SETUID"]})
    );
    let entries = audit(&api).await;
    assert_eq!(
        entries[..2],
        [
            "service.privileges demo/web: read-only root, added CHOWN, SETUID",
            "service.update demo/web",
        ]
    );

    // Other settings change without a privileges entry; taking the override back has one.
    patch(&api, json!({"branch": "release"})).await;
    assert_eq!(audit(&api).await[0], "service.update demo/web");
    let (status, _) = patch(&api, json!({"runtime": {"security": null}})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        audit(&api).await[0],
        "service.privileges demo/web: writable root, no capability added"
    );
}
