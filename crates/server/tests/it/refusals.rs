//! Refusals: input the API turns away answers an error body and changes nothing.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

use crate::harness::Api;

pub async fn refused(api: &Api, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
    let (status, reply) = api
        .call(method.clone(), path, Some(&api.admin), Some(body.clone()))
        .await;
    assert!(
        status.is_client_error(),
        "{method} {path} {body} answered {status}"
    );
    assert!(
        reply["error"]["code"].is_string(),
        "no JSON error body: {reply}"
    );
    assert!(reply["error"]["message"].is_string());
    (status, reply)
}

#[tokio::test]
async fn invalid_input_is_refused_and_writes_nothing() {
    let api = Api::new().await;
    for name in [
        "",
        "Demo",
        "-demo",
        "demo-",
        "de mo",
        "démo",
        "a_b",
        "../x",
        &"a".repeat(64),
    ] {
        let (status, reply) = refused(
            &api,
            Method::POST,
            "/api/v1/projects",
            json!({"name": name}),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply["error"]["fields"]["name"].is_string(), "{reply}");
    }
    let (status, _) = refused(&api, Method::POST, "/api/v1/projects", json!({"name": 5})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, reply) = refused(
        &api,
        Method::POST,
        "/api/v1/projects",
        json!({"name": "ok", "owner": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field")
    );

    let malformed = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/projects")
        .header(header::AUTHORIZATION, format!("Bearer {}", api.admin))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"name\": "))
        .unwrap();
    let (status, reply) = api.send(malformed).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reply["error"]["code"], "bad_request");

    let not_json = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/projects")
        .header(header::AUTHORIZATION, format!("Bearer {}", api.admin))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("name=demo"))
        .unwrap();
    let (status, reply) = api.send(not_json).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(reply["error"]["code"], "unsupported_media_type");

    let huge = json!({"name": "x".repeat(2 * 1024 * 1024)});
    let (status, reply) = refused(&api, Method::POST, "/api/v1/projects", huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{reply}");

    assert_eq!(
        api.post("/api/v1/projects", json!({"name": "demo"}))
            .await
            .0,
        StatusCode::CREATED
    );
    let services = "/api/v1/projects/demo/services";
    for repo in [
        "ext::sh -c touch% /tmp/pwned",
        "--upload-pack=touch /tmp/pwned",
        "-oProxyCommand=x:repo",
        "ssh://-oProxyCommand=touch%20x/a",
        "https://user:secret@github.com/a/b",
        "file:///etc",
        "/srv/git/app.git",
        "https://github.com/a b",
        "https://github.com/a\nb",
        "fd::17",
    ] {
        let (status, reply) = refused(
            &api,
            Method::POST,
            services,
            json!({"name": "web", "repo": repo}),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{repo}");
        assert!(reply["error"]["fields"]["repo"].is_string(), "{reply}");
        // The refusal never echoes credentials back.
        assert!(!reply.to_string().contains("secret@"), "{reply}");
    }
    for branch in [
        "-b",
        "--upload-pack=x",
        "a..b",
        "a b",
        "a\nb",
        "a~1",
        "a:b",
        "@{-1}",
        ".hidden",
    ] {
        let body = json!({"name": "web", "repo": "https://e.org/a.git", "branch": branch});
        let (status, reply) = refused(&api, Method::POST, services, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{branch}");
        assert!(reply["error"]["fields"]["branch"].is_string(), "{reply}");
    }
    for (field, value) in [
        ("port", json!(0)),
        ("port", json!(65536)),
        ("port", json!(-1)),
        ("dockerfile", json!("../Dockerfile")),
        ("dockerfile", json!("/etc/passwd")),
        ("context", json!("a/../../b")),
    ] {
        let mut body = json!({"name": "web", "repo": "https://e.org/a.git"});
        body[field] = value.clone();
        let (status, reply) = refused(&api, Method::POST, services, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}={value}");
        assert!(reply["error"]["fields"][field].is_string(), "{reply}");
    }
    // Several bad fields are reported together.
    let (_, reply) = refused(
        &api,
        Method::POST,
        services,
        json!({"name": "Web", "repo": "ext::x", "port": 0}),
    )
    .await;
    assert_eq!(reply["error"]["fields"].as_object().unwrap().len(), 3);

    assert_eq!(
        api.post(
            services,
            json!({"name": "web", "repo": "https://e.org/a.git"})
        )
        .await
        .0,
        StatusCode::CREATED
    );
    let deployments = "/api/v1/projects/demo/services/web/deployments";
    for body in [
        json!({"branch": "-x"}),
        json!({"branch": "a..b"}),
        json!({"commit": "not-a-sha"}),
        json!({"commit": "--all"}),
        json!({"ref": "main"}),
    ] {
        refused(&api, Method::POST, deployments, body).await;
    }
    let (status, _) = refused(
        &api,
        Method::PATCH,
        "/api/v1/projects/demo/services/web",
        json!({"repo": "ext::sh -c x"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = api.get("/api/v1/projects/Bad_Name/services/web").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Nothing of the refused requests was written.
    let (_, projects) = api.get("/api/v1/projects").await;
    assert_eq!(projects.as_array().unwrap().len(), 1);
    let (_, services) = api.get("/api/v1/services").await;
    assert_eq!(services.as_array().unwrap().len(), 1);
    assert_eq!(services[0]["repo"], "https://e.org/a.git");
    let (_, history) = api.get(deployments).await;
    assert!(history.as_array().unwrap().is_empty());
    let (_, audit) = api.get("/api/v1/audit").await;
    assert_eq!(audit.as_array().unwrap().len(), 3, "{audit}");
}

#[tokio::test]
async fn repositories_at_internal_addresses_are_refused_when_the_service_is_created() {
    let api = Api::new().await;
    api.post("/api/v1/projects", json!({"name": "demo"})).await;
    let services = "/api/v1/projects/demo/services";
    for (repo, says) in [
        ("http://169.254.169.254/latest/meta-data", "cloud metadata"),
        ("http://[fd00:ec2::254]/x", "cloud metadata"),
        ("https://metadata.google.internal/x", "cloud metadata"),
        ("http://169.254.10.1/x.git", "link-local"),
        ("http://127.0.0.1:6379/x", "--allow-private-destinations"),
        ("git://10.0.0.5:6379/x", "--allow-private-destinations"),
        ("ssh://git@[::1]/x.git", "--allow-private-destinations"),
        (
            "git@192.168.0.2:team/app.git",
            "--allow-private-destinations",
        ),
    ] {
        let body = json!({"name": "web", "repo": repo});
        let (status, reply) = refused(&api, Method::POST, services, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{repo}");
        let field = reply["error"]["fields"]["repo"].as_str().unwrap();
        assert!(field.contains(says), "{repo}: {field}");
    }
    let web = json!({"name": "web", "repo": "https://git.example.org/a.git"});
    assert_eq!(api.post(services, web).await.0, StatusCode::CREATED);
    let moved = json!({"repo": "http://100.100.100.200/x"});
    let path = "/api/v1/projects/demo/services/web";
    let (status, _) = refused(&api, Method::PATCH, path, moved).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn every_refusal_is_an_error_body_and_whole_floats_are_integers() {
    let api = Api::new().await;
    for (path, status) in [
        ("/api/v1/deployments/abc", StatusCode::BAD_REQUEST),
        ("/api/v1/deployments/1.5/logs", StatusCode::BAD_REQUEST),
        ("/api/v1/audit?limit=many", StatusCode::BAD_REQUEST),
        ("/api/v1/audit?unknown=1", StatusCode::BAD_REQUEST),
        (
            "/api/v1/projects/Not_A_Label",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/api/v1/nowhere", StatusCode::NOT_FOUND),
    ] {
        let (got, reply) = api.get(path).await;
        assert_eq!(got, status, "GET {path}: {reply}");
        assert!(reply["error"]["code"].is_string(), "GET {path}: {reply}");
        assert!(reply["error"]["message"].is_string(), "GET {path}: {reply}");
    }

    let (status, reply) = api.post("/api/v1/projects", json!({"name": "demo"})).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let (status, reply) = api
        .post(
            "/api/v1/projects/demo/services",
            json!({
                "name": "web",
                "repo": "https://git.example.org/demo.git",
                "port": 3000.0,
                "runtime": {"replicas": 2.0, "health": {"timeout_ms": 1500.0}},
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["port"], 3000);
    assert_eq!(reply["runtime"]["replicas"], 2);
    assert_eq!(reply["runtime"]["health"]["timeout_ms"], 1500);
    let (status, reply) = api
        .post(
            "/api/v1/projects/demo/services/web/rollback",
            json!({"deployment": 2.5}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");

    // serde would read a struct from an array of its fields: the documented objects only.
    let (status, reply) = api
        .post(
            "/api/v1/projects/demo/services/web/deployments",
            json!([null, null]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    let (status, reply) = api
        .call(
            Method::PATCH,
            "/api/v1/projects/demo/services/web",
            Some(&api.admin),
            Some(json!({"runtime": {"limits": [null, null]}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert!(reply["error"]["fields"]["limits"].is_string(), "{reply}");
    let (status, reply) = api
        .call(
            Method::PUT,
            "/api/v1/projects/demo/env",
            Some(&api.admin),
            Some(json!({"vars": [["NAME", "value"]]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
}
