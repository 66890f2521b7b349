//! What a test does with a running [`TestServer`]: its CLI, its API, requests through its edge
//! router, and deployments from request to end.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::{FixtureRepo, TestServer, answer, eventually};

/// What a CLI run printed, after asserting it succeeded.
fn succeeded(args: &[&str], output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "helvetia {args:?}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

impl TestServer {
    /// Runs the CLI against this server.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with(&self.token, args)
    }

    /// Runs the CLI against this server with `token`.
    pub fn cli_with(&self, token: &str, args: &[&str]) -> Output {
        self.cli_command(token, args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn cli_command(&self, token: &str, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .args(args)
            .env("HELVETIA_SERVER", self.url())
            .env("HELVETIA_TOKEN", token)
            .env("HELVETIA_CONFIG_DIR", self.dir.path().join("cli"));
        command
    }

    /// Runs the CLI with `input` on its standard input (a password), expects it to succeed,
    /// and returns what it printed.
    pub fn cli_ok_input(&self, args: &[&str], input: &str) -> String {
        use std::io::Write;
        let mut child = self
            .cli_command(&self.token, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        succeeded(args, &child.wait_with_output().unwrap())
    }

    /// Runs the CLI, expects it to succeed, and returns what it printed.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        self.cli_ok_with(&self.token, args)
    }

    /// Runs the CLI with `token`, expects it to succeed, and returns what it printed.
    pub fn cli_ok_with(&self, token: &str, args: &[&str]) -> String {
        succeeded(args, &self.cli_with(token, args))
    }

    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url()))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request).await
    }

    /// A request without a token, to a public route.
    pub async fn api_anonymous(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let request = self
            .http
            .request(method, format!("{}{path}", self.url()))
            .json(&body);
        answer(request).await
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.api(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A request through Traefik's entry point for `host`; `None` when it failed.
    pub async fn through_edge(&self, host: &str, path: &str) -> Option<(u16, String)> {
        let response = self
            .http
            .get(format!("http://127.0.0.1:{}{path}", self.http_port))
            .header("Host", host)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    /// Creates a project and a service deploying `repo`.
    pub async fn service(&self, project: &str, service: &str, repo: &FixtureRepo) {
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                "/api/v1/projects",
                Some(serde_json::json!({"name": project})),
            )
            .await;
        assert!(status == 201 || status == 409, "{body}");
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                &format!("/api/v1/projects/{project}/services"),
                Some(serde_json::json!({"name": service, "repo": repo.url()})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// Requests a deployment and waits until it has finished; returns it.
    pub async fn deploy(&self, project: &str, service: &str) -> Value {
        let id = self.request_deploy(project, service).await;
        self.wait_finished(id).await
    }

    pub async fn request_deploy(&self, project: &str, service: &str) -> i64 {
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                &format!("/api/v1/projects/{project}/services/{service}/deployments"),
                Some(serde_json::json!({})),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        body["id"].as_i64().unwrap()
    }

    /// Waits until deployment `id` is no longer in progress.
    pub async fn wait_finished(&self, id: i64) -> Value {
        eventually(
            Duration::from_secs(120),
            "the deployment to finish",
            || async move {
                let deployment = self.get(&format!("/api/v1/deployments/{id}")).await;
                let status = deployment["status"].as_str().unwrap().to_owned();
                let done = ![
                    "queued",
                    "cloning",
                    "building",
                    "starting",
                    "health_checking",
                ]
                .contains(&status.as_str());
                done.then_some(deployment)
            },
        )
        .await
    }

    pub async fn wait_status(&self, id: i64, wanted: &str) {
        eventually(Duration::from_secs(120), wanted, || async move {
            let deployment = self.get(&format!("/api/v1/deployments/{id}")).await;
            (deployment["status"] == wanted).then_some(())
        })
        .await
    }

    /// The deployment's whole log as text.
    pub async fn deploy_log(&self, id: i64) -> String {
        let page = self
            .get(&format!("/api/v1/deployments/{id}/logs?limit=10000"))
            .await;
        page["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["line"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until deployment `id`'s log has a line containing `text`.
    pub async fn wait_for_log(&self, id: i64, text: &str, timeout: Duration) {
        eventually(
            timeout,
            &format!("{text:?} in the deployment log"),
            || async { self.deploy_log(id).await.contains(text).then_some(()) },
        )
        .await;
    }
}
