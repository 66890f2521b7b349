//! A service run from a registry image, through the API: the reference is checked (hostile
//! input and refused registries are 422s that write nothing), the registry login's password
//! is sealed and never shown, the user is; a key rotation re-seals the password.

use axum::http::{Method, StatusCode};
use helvetia_server::vault::{self, Vault};
use serde_json::{Value, json};

use crate::harness::Api;

const SERVICES: &str = "/api/v1/projects/demo/services";
const PASSWORD: &str = "registry-pa55word";

async fn project(api: &Api) {
    let (status, body) = api.post("/api/v1/projects", json!({"name": "demo"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn an_image_service_shows_its_login_user_and_never_its_password() {
    let api = Api::new().await;
    project(&api).await;
    for (body, field) in [
        (json!({"name": "a", "image": "nginx:latest"}), "image"),
        (
            json!({"name": "a", "image": "registry.example.org/app"}),
            "image",
        ),
        (
            json!({"name": "a", "image": "registry.example.org/app:1 --privileged"}),
            "image",
        ),
        (
            json!({"name": "a", "image": "169.254.169.254/app:1"}),
            "image",
        ),
        (
            json!({"name": "a", "image": "127.0.0.1:5000/app:1"}),
            "image",
        ),
        (
            json!({"name": "a", "image": "registry.example.org/app:1",
                   "repo": "https://e.org/a.git"}),
            "repo",
        ),
        (
            json!({"name": "a", "repo": "https://e.org/a.git",
                   "registry_user": "ci", "registry_password": PASSWORD}),
            "registry_user",
        ),
        (
            json!({"name": "a", "image": "registry.example.org/app:1", "registry_user": "ci"}),
            "registry_password",
        ),
    ] {
        let (status, reply) = api.post(SERVICES, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {reply}");
        assert!(reply.to_string().contains(field), "{body}: {reply}");
    }
    let (_, listed) = api.get(SERVICES).await;
    assert_eq!(listed, json!([]), "a refused service was written");

    let (status, created) = api
        .post(
            SERVICES,
            json!({"name": "app", "image": "registry.example.org/team/app:1.2",
                   "registry_user": "ci", "registry_password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["image"], "registry.example.org/team/app:1.2");
    assert_eq!(created["repo"], Value::Null);
    assert_eq!(created["registry_user"], "ci");
    let (_, shown) = api.get(&format!("{SERVICES}/app")).await;
    assert_eq!(shown["registry_user"], "ci");
    for reply in [&created, &shown] {
        assert!(!reply.to_string().contains(PASSWORD), "{reply}");
    }
    let (_, audit) = api.get("/api/v1/audit").await;
    assert!(
        audit.to_string().contains("service.registry_login"),
        "{audit}"
    );
    assert!(!audit.to_string().contains(PASSWORD), "{audit}");

    // The password is sealed for this service, and a rotation of the master key re-seals it.
    let id = created["id"].as_i64().unwrap();
    let binding = vault::registry_password_binding(id);
    let sealed = api.store.registry_password(id).await.unwrap().unwrap();
    assert!(!sealed.contains(PASSWORD));
    assert_eq!(
        api.platform.vault.open(&binding, &sealed).unwrap(),
        PASSWORD
    );
    vault::rotate(api.dir.path(), None, &api.store)
        .await
        .unwrap();
    let rotated = Vault::open_for(api.dir.path(), None, &api.store)
        .await
        .unwrap();
    let resealed = api.store.registry_password(id).await.unwrap().unwrap();
    assert_eq!(rotated.open(&binding, &resealed).unwrap(), PASSWORD);

    // A login for a service that would build a repository is refused, and changes nothing.
    let (status, refused) = api
        .call(
            Method::PATCH,
            &format!("{SERVICES}/app"),
            Some(&api.admin.clone()),
            Some(json!({"repo": "https://e.org/a.git", "registry_user": "ci",
                        "registry_password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let (_, kept) = api.get(&format!("{SERVICES}/app")).await;
    assert_eq!(kept["image"], "registry.example.org/team/app:1.2");

    // A change of the reference, then the login removed with an empty user.
    let (status, changed) = api
        .call(
            Method::PATCH,
            &format!("{SERVICES}/app"),
            Some(&api.admin.clone()),
            Some(json!({"image": "registry.example.org/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                        "registry_user": ""})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert!(changed["image"].as_str().unwrap().contains("@sha256:"));
    assert_eq!(changed["registry_user"], Value::Null);
    assert_eq!(api.store.registry_password(id).await.unwrap(), None);
}
