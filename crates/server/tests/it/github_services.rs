//! Services created from a repository the instance's GitHub App reaches: clone URL and
//! default branch filled in, the link kept; a repository the caller does not reach through the
//! App is refused like an invalid field.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::github_signin::{setup, sign_in};

#[tokio::test]
async fn a_service_from_a_github_repository_gets_its_clone_url_default_branch_and_link() {
    let (github, api, _) = setup(&["acme"]).await;
    github.add_user("octo", "octo@acme.example", &["acme"]);
    // The fake reads a repository's default branch from its HEAD.
    let bare = tempfile::tempdir().unwrap();
    std::fs::write(bare.path().join("HEAD"), "ref: refs/heads/release\n").unwrap();
    let installation = github.add_installation(
        "acme",
        &[
            ("shop", Some(bare.path().to_owned()), true),
            ("blog", None, false),
        ],
    );
    let theirs = github.add_installation("elsewhere", &[("secret", None, true)]);
    let session = sign_in(&api, &github, "octo").await;
    let post = |path: &'static str| (Method::POST, path);
    const SERVICES: &str = "/api/v1/projects/demo/services";
    api.expect(
        StatusCode::CREATED,
        Some(&session),
        post("/api/v1/projects"),
        Some(json!({"name": "demo"})),
    )
    .await;

    let shop = api
        .expect(
            StatusCode::CREATED,
            Some(&session),
            post(SERVICES),
            Some(json!({"name": "shop", "github": {"repository": "acme/shop"}})),
        )
        .await;
    assert_eq!(shop["repo"], format!("{}/acme/shop.git", github.web_url()));
    assert_eq!(shop["branch"], "release", "the repository's default branch");
    assert_eq!(shop["github"]["installation_id"], installation, "{shop}");
    assert_eq!(shop["github"]["repository"], "acme/shop");
    assert!(shop["github"]["repository_id"].as_i64().unwrap() > 0);
    // The installation named, the name in another case, the branch chosen.
    let blog = api
        .expect(
            StatusCode::CREATED,
            Some(&session),
            post(SERVICES),
            Some(json!({
                "name": "blog",
                "branch": "next",
                "github": {"repository": "ACME/Blog", "installation_id": installation},
            })),
        )
        .await;
    assert_eq!(blog["branch"], "next");
    assert_eq!(blog["github"]["repository"], "acme/blog");

    let refused = [
        json!({"name": "x1", "github": {"repository": "elsewhere/secret"}}),
        json!({"name": "x2", "github": {"repository": "elsewhere/secret", "installation_id": theirs}}),
        json!({"name": "x3", "github": {"repository": "acme/missing"}}),
        json!({"name": "x4", "github": {"repository": "no-slash"}}),
        json!({"name": "x5", "repo": "https://example.org/a.git", "github": {"repository": "acme/shop"}}),
        json!({"name": "x6"}),
    ];
    for body in refused {
        let answer = api
            .expect(
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&session),
                post(SERVICES),
                Some(body.clone()),
            )
            .await;
        assert!(answer.to_string().contains("repo"), "{body} → {answer}");
    }
    // An account never linked to GitHub lists nothing to create a service from.
    let (dev, _) = api.user("dev@example.com").await;
    api.expect(
        StatusCode::CREATED,
        Some(&dev),
        post("/api/v1/projects"),
        Some(json!({"name": "devs"})),
    )
    .await;
    let answer = api
        .expect(
            StatusCode::CONFLICT,
            Some(&dev),
            post("/api/v1/projects/devs/services"),
            Some(json!({"name": "shop", "github": {"repository": "acme/shop"}})),
        )
        .await;
    assert!(answer.to_string().contains("GitHub"), "{answer}");
    let listed = api
        .expect(
            StatusCode::OK,
            Some(&session),
            (Method::GET, SERVICES),
            None,
        )
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
}
