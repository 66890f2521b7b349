use axum::http::{Method, StatusCode};
use helvetia_core::auth::Scope;
use helvetia_server::api::auth::{PUBLIC_ROUTES, ScopeTable, operations};
use helvetia_server::api::rate_limit::RATE_LIMITED_ROUTES;
use serde_json::{Value, json};

use crate::harness::Api;
use crate::refusals::refused;

/// The broadest set of scopes that still does not include `required`.
fn scopes_lacking(required: Scope) -> Vec<Scope> {
    Scope::ALL
        .into_iter()
        .filter(|held| !held.includes(required))
        .collect()
}

fn concrete(path: &str) -> String {
    path.replace("{project}", "demo")
        .replace("{service}", "web")
        .replace("{id}", "999999")
        .replace("{team}", "demo")
        .replace("{member}", "999999")
        .replace("{user}", "999999")
}

#[tokio::test]
async fn every_operation_is_routed_and_guarded_by_its_declared_scope() {
    let api = Api::new().await;
    let document = helvetia_server::api::openapi();
    let table = ScopeTable::from_openapi(&document);
    let ops = operations(&document);
    assert!(ops.len() >= 18, "only {} operations documented", ops.len());
    for (path, method, operation) in &ops {
        let url = concrete(path);
        let public = PUBLIC_ROUTES.iter().any(|(m, p)| m == method && p == path);
        let body = matches!(*method, Method::POST | Method::PATCH).then(|| json!({}));

        // The router serves every documented operation (an unrouted path would be a bodyless
        // 404 or a 405).
        let (status, reply) = api
            .call(method.clone(), &url, Some(&api.admin), body.clone())
            .await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        // (A public route may refuse an empty body for its own reasons: a sign-in without
        // credentials.)
        assert!(
            public || (status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN),
            "{method} {path} refused the admin token: {status}"
        );
        if status == StatusCode::NOT_FOUND {
            assert_eq!(
                reply["error"]["code"], "not_found",
                "{method} {path} is not routed"
            );
            assert_ne!(
                reply["error"]["message"], "route not found",
                "{method} {path} is not routed"
            );
        }

        if public {
            assert!(
                operation
                    .get("security")
                    .is_none_or(|security| *security == json!([{}])),
                "{method} {path} is public but declares a scope"
            );
            // Without a token and a body: a public route answers, or refuses the (missing)
            // body, never the (missing) credential.
            let (status, _) = api.call(method.clone(), &url, None, None).await;
            // (A callback without its required query parameters is refused as a bad request.)
            let needs_query = operation["parameters"]
                .as_array()
                .is_some_and(|parameters| {
                    parameters
                        .iter()
                        .any(|p| p["in"] == "query" && p["required"] == true)
                });
            match *method {
                // No GitHub App here: a sign-in with GitHub has nowhere to go (404), and its
                // callback without GitHub's parameters is refused (400).
                Method::GET if path.starts_with("/api/v1/auth/github") => assert!(
                    status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST,
                    "{method} {path}: {status}"
                ),
                // A token nobody has (a domain's check, a CA's challenge) is not found.
                Method::GET if path.starts_with("/.well-known/") => {
                    assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}")
                }
                // Renewing a browser's session without its cookie sends it to sign in.
                Method::GET if path == "/api/v1/auth/renew" => {
                    assert_eq!(status, StatusCode::SEE_OTHER, "{method} {path}")
                }
                Method::GET if needs_query => {
                    assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}")
                }
                Method::GET => assert_eq!(status, StatusCode::OK, "{method} {path}"),
                _ => assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{method} {path} refused a caller without a token: {status}"
                ),
            }
            continue;
        }
        let declared = operation
            .pointer("/security/0/token/0")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{method} {path} declares no scope"));
        let required: Scope = declared.parse().unwrap();
        assert_eq!(table.required(method, path), required);

        let (status, reply) = api.call(method.clone(), &url, None, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} without a token"
        );
        assert_eq!(reply["error"]["code"], "unauthenticated");

        let (status, _) = api
            .call(
                method.clone(),
                &url,
                Some("hlv_not_a_real_token"),
                body.clone(),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} with a bogus token"
        );

        let weaker = api.token(&scopes_lacking(required)).await;
        let (status, reply) = api
            .call(method.clone(), &url, Some(&weaker), body.clone())
            .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{method} {path} without `{required}`"
        );
        assert_eq!(reply["error"]["code"], "forbidden");
    }
    // Nothing was created by all those refused calls.
    assert!(
        api.get("/api/v1/projects")
            .await
            .1
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn undocumented_routes_do_not_exist() {
    let api = Api::new().await;
    for (method, path) in [
        (Method::GET, "/api/v1/secrets"),
        (Method::PUT, "/api/v1/projects"),
        (Method::DELETE, "/api/v1/audit"),
        (Method::GET, "/admin"),
    ] {
        let (status, _) = api.call(method.clone(), path, Some(&api.admin), None).await;
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} answered {status}"
        );
    }
}

#[tokio::test]
async fn openapi_document_is_3_1_and_public() {
    let api = Api::new().await;
    let (status, doc) = api
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(
        doc["components"]["securitySchemes"]["token"]["scheme"],
        "bearer"
    );
    let (status, health) = api.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["database"], "sqlite");
}

#[tokio::test]
async fn errors_never_echo_the_servers_secrets() {
    let api = Api::new().await;
    let (status, body) = api.get("/api/v1/projects/server-secret-value").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(!message.contains("server-secret-value"), "{body}");
    assert!(message.contains("not found"), "{body}");
    // Field problems too: the scheme of a refused URL is echoed.
    api.post("/api/v1/projects", json!({"name": "demo"})).await;
    let (status, body) = api
        .post(
            "/api/v1/projects/demo/services",
            json!({"name": "web", "repo": "server-secret-value://example.org/x"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let problem = body["error"]["fields"]["repo"].as_str().unwrap();
    assert!(problem.contains("is not supported"), "{body}");
    assert!(!body.to_string().contains("server-secret-value"), "{body}");
}

#[tokio::test]
async fn project_and_service_lifecycle() {
    let api = Api::new().await;
    let (status, project) = api.post("/api/v1/projects", json!({"name": "demo"})).await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    assert_eq!(project["name"], "demo");
    let (status, dup) = api.post("/api/v1/projects", json!({"name": "demo"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(dup["error"]["code"], "conflict");

    let (status, service) = api
        .post(
            "/api/v1/projects/demo/services",
            json!({"name": "web", "repo": "https://git.example.org/demo.git", "port": 3000}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{service}");
    assert_eq!(service["branch"], "main");
    assert_eq!(service["dockerfile"], "Dockerfile");
    assert_eq!(service["port"], 3000);
    assert_eq!(service["url"], "http://web.demo.localhost");

    let (status, patched) = api
        .call(
            Method::PATCH,
            "/api/v1/projects/demo/services/web",
            Some(&api.admin),
            Some(json!({"branch": "release", "port": 8080})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["branch"], "release");
    assert_eq!(patched["repo"], "https://git.example.org/demo.git");

    let (_, all) = api.get("/api/v1/services").await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    let (_, filtered) = api.get("/api/v1/services?project=demo").await;
    assert_eq!(filtered.as_array().unwrap().len(), 1);
    let (status, _) = api.get("/api/v1/projects/nope/services").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, deployment) = api
        .post("/api/v1/projects/demo/services/web/deployments", json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{deployment}");
    assert_eq!(deployment["status"], "queued");
    assert_eq!(deployment["git_ref"], "release");
    let id = deployment["id"].as_i64().unwrap();
    let (status, detail) = api.get(&format!("/api/v1/deployments/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["transitions"][0]["to"], "queued");
    let (status, cancelled) = api
        .post(&format!("/api/v1/deployments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(cancelled["status"], "cancelled");
    let (status, _) = api
        .post(&format!("/api/v1/deployments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, history) = api
        .get("/api/v1/projects/demo/services/web/deployments")
        .await;
    assert_eq!(history.as_array().unwrap().len(), 1);

    let (status, _) = api
        .call(
            Method::DELETE,
            "/api/v1/projects/demo",
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = api
        .call(
            Method::DELETE,
            "/api/v1/projects/demo/services/web",
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api
        .call(
            Method::DELETE,
            "/api/v1/projects/demo",
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (_, audit) = api.get("/api/v1/audit").await;
    let actions: Vec<_> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "project.delete",
            "service.delete",
            "deployment.cancel",
            "deployment.create",
            "service.update",
            "service.create",
            "project.create",
            "token.create",
        ]
    );
}

/// Sends `body` and checks the answer is a 4xx with a JSON error body.
#[tokio::test]
async fn tokens_scopes_revocation_and_expiry() {
    let api = Api::new().await;
    let (status, created) = api
        .post(
            "/api/v1/tokens",
            json!({"name": "ci", "scopes": ["deploy"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("hlv_"));
    let id = created["id"].as_i64().unwrap();

    let (status, me) = api
        .call(Method::GET, "/api/v1/me", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["token_name"], "ci");
    // `deploy` includes `read` but not `write`.
    let (status, _) = api
        .call(Method::GET, "/api/v1/projects", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api
        .call(
            Method::POST,
            "/api/v1/projects",
            Some(&token),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Listings never show a token's value.
    let (_, list) = api.get("/api/v1/tokens").await;
    assert!(!list.to_string().contains(&token));
    assert_eq!(list[1]["hint"], token[..8]);

    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, reply) = api
        .call(Method::GET, "/api/v1/projects", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply["error"]["code"], "invalid_token");

    for bad in [
        json!({"name": "x", "scopes": []}),
        json!({"name": "x", "scopes": ["root"]}),
        json!({"name": "", "scopes": ["read"]}),
        json!({"name": "x", "scopes": ["read"], "expires_in_days": 0}),
    ] {
        refused(&api, Method::POST, "/api/v1/tokens", bad).await;
    }

    // An expired token is refused.
    let (expired, mut stored) =
        helvetia_server::api::mint_token("old".into(), helvetia_core::auth::Scopes::admin(), None);
    stored.expires_at = Some(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1));
    api.store
        .create_token(&api.admin_caller, &stored)
        .await
        .unwrap();
    let (status, _) = api
        .call(Method::GET, "/api/v1/projects", Some(&expired), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn teams_only_see_their_own_projects() {
    let api = Api::new().await;
    assert_eq!(
        api.post("/api/v1/projects", json!({"name": "mine"}))
            .await
            .0,
        StatusCode::CREATED
    );
    api.user("owner@example.com").await;
    let (other, _) = api.user("other@example.com").await;
    let (_, projects) = api
        .call(Method::GET, "/api/v1/projects", Some(&other), None)
        .await;
    assert!(projects.as_array().unwrap().is_empty());
    let (status, _) = api
        .call(Method::GET, "/api/v1/projects/mine", Some(&other), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .call(Method::DELETE, "/api/v1/projects/mine", Some(&other), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, tokens) = api
        .call(Method::GET, "/api/v1/tokens", Some(&other), None)
        .await;
    assert_eq!(tokens.as_array().unwrap().len(), 1);
    let (_, audit) = api
        .call(Method::GET, "/api/v1/audit", Some(&other), None)
        .await;
    assert!(!audit.to_string().contains("mine"));
}

/// Every refusal has the documented error body — those of malformed path and query parameters
/// and of unrouted paths included — and a whole float is the integer JSON Schema says it is.
#[tokio::test]
async fn the_callers_own_last_admin_token_is_revoked_only_with_force() {
    let api = Api::new().await;
    let (_, me) = api.get("/api/v1/me").await;
    let own = me["token_id"].as_i64().unwrap();
    let (status, reply) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{own}"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    assert_eq!(reply["error"]["code"], "conflict");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("last admin token") && message.contains("force=true"),
        "{message}"
    );
    let (status, _) = api.get("/api/v1/projects").await;
    assert_eq!(status, StatusCode::OK, "the token still works");

    let (status, reply) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{own}?force=true"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{reply}");
    let (status, _) = api.get("/api/v1/projects").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn every_public_and_every_rate_limited_route_is_a_documented_operation() {
    // A typo in either list would leave a route unlimited, or a public one refused, silently.
    let document = helvetia_server::api::openapi();
    let ops = operations(&document);
    let documented = |method: &Method, path: &str| {
        ops.iter()
            .any(|(documented, verb, _)| documented == path && verb == method)
    };
    for (method, path) in PUBLIC_ROUTES {
        assert!(
            documented(method, path),
            "public {method} {path} is not documented"
        );
    }
    for (method, path, _) in RATE_LIMITED_ROUTES {
        assert!(
            documented(method, path),
            "limited {method} {path} is not documented"
        );
    }
}
