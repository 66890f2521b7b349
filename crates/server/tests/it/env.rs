use axum::http::{Method, StatusCode};
use helvetia_core::auth::Scope;
use serde_json::json;

use crate::harness::Api;

const SECRET: &str = "sk_live_5fd3a8b1c9e7d2f4a6b8c0e2";

async fn demo(api: &Api) {
    api.demo_service("web").await;
}

async fn put(api: &Api, path: &str, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
    api.call(Method::PUT, path, Some(&api.admin.clone()), Some(body))
        .await
}

/// Secrets never leave the API once written, and never reach the database in plain text.
async fn secrets_are_sealed_and_masked(api: &Api) -> String {
    demo(api).await;
    let service_env = "/api/v1/projects/demo/services/web/env";
    let (status, changed) = put(
        api,
        service_env,
        json!({"vars": [
            {"name": "API_TOKEN", "value": SECRET, "secret": true},
            {"name": "MODE", "value": "production"},
        ]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert!(
        changed["redeployments"].as_array().unwrap().is_empty(),
        "nothing is live"
    );
    let (status, _) = put(api, "/api/v1/projects/demo/env", json!({"vars": [{"name": "SHARED", "value": "from-project"}, {"name": "MODE", "value": "overridden"}]})).await;
    assert_eq!(status, StatusCode::OK);

    let (_, listed) = api.get(service_env).await;
    assert!(!listed.to_string().contains(SECRET), "{listed}");
    let token = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "API_TOKEN")
        .unwrap();
    assert_eq!(token["secret"], true);
    assert!(token["value"].is_null());
    assert!(token["updated_at"].is_string());
    let mode_from_project = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "MODE" && v["scope"] == "project")
        .unwrap();
    assert_eq!(mode_from_project["overridden"], true);

    let (_, export) = api.get("/api/v1/projects/demo/services/web/dotenv").await;
    let export = export.as_str().unwrap().to_owned();
    assert!(
        export.contains("MODE=production") && export.contains("# API_TOKEN is a secret"),
        "{export}"
    );
    assert!(!export.contains(SECRET));

    // Revealing needs its own scope and leaves an audit entry.
    let reveal = format!("{service_env}/API_TOKEN/reveal");
    let writer = api.token(&[Scope::Write]).await;
    let (status, _) = api.call(Method::GET, &reveal, Some(&writer), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let revealer = api.token(&[Scope::SecretsReveal]).await;
    let (status, revealed) = api.call(Method::GET, &reveal, Some(&revealer), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(revealed["value"], SECRET);
    let (_, audit) = api.get("/api/v1/audit").await;
    assert!(audit.to_string().contains("env.reveal"), "{audit}");
    assert!(!audit.to_string().contains(SECRET));
    export
}

#[tokio::test]
async fn secrets_on_sqlite() {
    let api = Api::new().await;
    secrets_are_sealed_and_masked(&api).await;
    // The database file and its write-ahead log hold no plaintext secret.
    for entry in std::fs::read_dir(api.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("db.sqlite") {
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(SECRET),
                "{} holds the secret",
                path.display()
            );
            assert!(
                !text.contains("sk_live_"),
                "{} holds part of the secret",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn secrets_on_postgres() {
    let api = Api::on_postgres().await;
    secrets_are_sealed_and_masked(&api).await;
    let dump = api.postgres.as_ref().unwrap().dump();
    assert!(dump.contains("API_TOKEN"), "the dump covers the variables");
    assert!(!dump.contains(SECRET), "pg_dump shows the secret");
    assert!(!dump.contains("sk_live_"));
}

#[tokio::test]
async fn invalid_variables_and_imports_write_nothing() {
    let api = Api::new().await;
    demo(&api).await;
    let service_env = "/api/v1/projects/demo/services/web/env";
    let big = "x".repeat(64 * 1024 + 1);
    for body in [
        json!({"vars": [{"name": "1BAD", "value": "x"}]}),
        json!({"vars": [{"name": "PORT", "value": "80"}]}),
        json!({"vars": [{"name": "HELVETIA_X", "value": "x"}]}),
        json!({"vars": [{"name": "BAD-NAME", "value": "x"}]}),
        json!({"vars": [{"name": "OK", "value": "x"}, {"name": "BIG", "value": big}]}),
        json!({"vars": [{"name": "DUP", "value": "1"}, {"name": "DUP", "value": "2"}]}),
        json!({"vars": [{"name": "NUL", "value": "a\u{0}b"}]}),
    ] {
        let (status, reply) = put(&api, service_env, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body} -> {reply}"
        );
    }
    let too_many: Vec<_> = (0..201)
        .map(|i| json!({"name": format!("V{i}"), "value": "x"}))
        .collect();
    let (status, _) = put(&api, service_env, json!({"vars": too_many})).await;
    assert!(status.is_client_error());
    for dotenv in [
        "GOOD=1\nBAD LINE",
        "GOOD=1\nA=\"never closed",
        "GOOD=1\nPORT=80",
        "GOOD=1\n9X=1",
    ] {
        let (status, reply) = api
            .post(
                "/api/v1/projects/demo/services/web/dotenv",
                json!({"dotenv": dotenv}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{dotenv:?} -> {reply}"
        );
        assert!(reply["error"]["fields"]["dotenv"].is_string());
    }
    let (_, listed) = api.get(service_env).await;
    assert!(
        listed.as_array().unwrap().is_empty(),
        "a refused request wrote something: {listed}"
    );

    let (status, imported) = api
        .post(
            "/api/v1/projects/demo/services/web/dotenv",
            json!({"dotenv": "A=1\n# comment\nB=\"two\\nlines\"\n", "secret": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{imported}");
    assert_eq!(imported["vars"].as_array().unwrap().len(), 2);
    assert!(
        imported["vars"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["secret"] == true && v["value"].is_null())
    );
}

/// Every valid name can be set, read and removed: no name collides with another route.
#[tokio::test]
async fn variables_named_like_the_bulk_routes_are_ordinary_variables() {
    let api = Api::new().await;
    demo(&api).await;
    let reveal = api.token(&[Scope::SecretsReveal]).await;
    for owner in [
        "/api/v1/projects/demo",
        "/api/v1/projects/demo/services/web",
    ] {
        let env = format!("{owner}/env");
        let names = ["import", "export", "dotenv", "reveal"];
        let vars: Vec<_> = names
            .iter()
            .map(|name| json!({"name": name, "value": format!("value of {name}")}))
            .collect();
        let (status, reply) = put(&api, &env, json!({ "vars": vars })).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        for name in names {
            let (status, revealed) = api
                .call(
                    Method::GET,
                    &format!("{env}/{name}/reveal"),
                    Some(&reveal),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{name}: {revealed}");
            assert_eq!(revealed["value"], format!("value of {name}"));
            let (status, reply) = api
                .call(
                    Method::DELETE,
                    &format!("{env}/{name}"),
                    Some(&api.admin.clone()),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{name}: {reply}");
        }
        let (_, listed) = api.get(&env).await;
        assert_eq!(listed.as_array().unwrap().len(), 0, "{listed}");
    }
}

#[tokio::test]
async fn several_variables_are_removed_in_one_change_or_none_is() {
    let api = Api::new().await;
    demo(&api).await;
    for owner in [
        "/api/v1/projects/demo",
        "/api/v1/projects/demo/services/web",
    ] {
        let env = format!("{owner}/env");
        let vars: Vec<_> = ["A", "B", "C"]
            .iter()
            .map(|name| json!({"name": name, "value": "v"}))
            .collect();
        let (status, reply) = put(&api, &env, json!({ "vars": vars })).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        let unset = |names: serde_json::Value| {
            api.call(
                Method::DELETE,
                &env,
                Some(&api.admin),
                Some(json!({ "names": names })),
            )
        };

        // One name that is not set: nothing is removed, and the problem is that name (a 404
        // would say the project or service is gone).
        let (status, reply) = unset(json!(["A", "MISSING"])).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
        let problem = reply["error"]["fields"]["names[1]"]
            .as_str()
            .unwrap_or_default();
        assert!(problem.contains("MISSING is not set"), "{reply}");
        let (status, reply) = unset(json!(["A", "not a name"])).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
        assert!(reply["error"]["fields"]["names[1]"].is_string(), "{reply}");
        let (_, listed) = api.get(&env).await;
        let own = |listed: &serde_json::Value| {
            listed
                .as_array()
                .unwrap()
                .iter()
                .filter(|v| owner.ends_with("web") == (v["scope"] == "service"))
                .count()
        };
        assert_eq!(own(&listed), 3, "{listed}");

        let (status, changed) = unset(json!(["A", "C"])).await;
        assert_eq!(status, StatusCode::OK, "{changed}");
        let left: Vec<_> = changed["vars"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| owner.ends_with("web") == (v["scope"] == "service"))
            .map(|v| v["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(left, ["B"], "{changed}");
        let (_, audit) = api.get("/api/v1/audit?limit=1").await;
        assert_eq!(audit[0]["action"], "env.unset", "{audit}");
        assert!(
            audit[0]["target"].as_str().unwrap().ends_with(" A,C"),
            "{audit}"
        );
    }
}
