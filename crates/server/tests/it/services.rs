//! Changing a service: `ETag` and `If-Match` keep two clients from undoing each other.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::harness::Api;

const WEB: &str = "/api/v1/projects/demo/services/web";

/// A `PATCH` of the service with `If-Match: if_match` (when given): the status, the answer's
/// `ETag` and its body.
async fn patch(api: &Api, if_match: Option<&str>, body: Value) -> (StatusCode, String, Value) {
    let mut request = Request::builder()
        .method(Method::PATCH)
        .uri(WEB)
        .header(header::AUTHORIZATION, format!("Bearer {}", api.admin))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(tag) = if_match {
        request = request.header(header::IF_MATCH, tag);
    }
    let request = request.body(Body::from(body.to_string())).unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let etag = etag_of(&response);
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, etag, serde_json::from_slice(&bytes).unwrap())
}

fn etag_of(response: &axum::response::Response) -> String {
    response
        .headers()
        .get(header::ETAG)
        .map(|tag| tag.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn read(api: &Api) -> (String, Value) {
    let response = api.open(WEB).await;
    assert_eq!(response.status(), StatusCode::OK);
    let etag = etag_of(&response);
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (etag, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn a_change_for_a_state_that_is_gone_is_refused_and_the_first_change_kept() {
    let api = Api::new().await;
    api.demo_service("web").await;
    let (read_tag, _) = read(&api).await;
    assert!(read_tag.starts_with('"'), "a strong ETag: {read_tag}");

    // Two clients read the same state and change it.
    let (status, first_tag, first) =
        patch(&api, Some(&read_tag), json!({"branch": "release"})).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_ne!(first_tag, read_tag);
    let (status, _, refused) = patch(&api, Some(&read_tag), json!({"branch": "hotfix"})).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{refused}");
    assert_eq!(refused["error"]["code"], "precondition_failed");
    let (tag, service) = read(&api).await;
    assert_eq!(service["branch"], "release", "the first change is kept");
    assert_eq!(tag, first_tag);

    // Weak tags never match; a list matches when one of its tags does; `*` and no `If-Match`
    // apply to whatever the service is.
    let weak = format!("W/{first_tag}");
    let (status, _, _) = patch(&api, Some(&weak), json!({"branch": "hotfix"})).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let list = format!("{read_tag}, {first_tag}");
    let (status, listed_tag, _) = patch(&api, Some(&list), json!({"port": 3000})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = patch(&api, Some("*"), json!({"branch": "main"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, service) = patch(&api, None, json!({"dockerfile": "Containerfile"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&service["port"], &service["branch"]),
        (&json!(3000), &json!("main"))
    );
    let (status, _, _) = patch(&api, Some(&listed_tag), json!({"branch": "x"})).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
}

#[tokio::test]
async fn changes_without_if_match_made_at_once_are_all_applied() {
    let api = Api::new().await;
    api.demo_service("web").await;
    let (a, b, c) = tokio::join!(
        patch(&api, None, json!({"branch": "release"})),
        patch(&api, None, json!({"port": 3000})),
        patch(&api, None, json!({"dockerfile": "Containerfile"})),
    );
    for (status, _, body) in [a, b, c] {
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, service) = read(&api).await;
    assert_eq!(
        (&service["branch"], &service["port"], &service["dockerfile"]),
        (&json!("release"), &json!(3000), &json!("Containerfile"))
    );
}
