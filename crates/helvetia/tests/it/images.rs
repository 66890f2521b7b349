//! Services run from a registry image, end to end: a local registry with a login (Debian's
//! `docker-registry`, htpasswd auth, on a free loopback port), images pushed to it with the
//! docker CLI, deployed by tag and by digest; a tag moved and redeployed through the API and
//! through the signed generic hook runs (and records) the new digest; a rollback runs the
//! recorded image; a wrong password fails the deployment clearly without leaking it while
//! the live version keeps serving.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hmac::{KeyInit, Mac};
use reqwest::Method;
use serde_json::{Value, json};

use helvetia_test_support::fault::busybox_httpd_image;
use helvetia_test_support::{TestServer, eventually, free_port, http_client, unique};

use crate::deploy::Cleanup;

const USER: &str = "ci-bot";
const PASSWORD: &str = "Reg1stry-Pa55word-f0r-tests";
const WRONG: &str = "Wr0ng-Pa55word-n0t-t0-leak";

/// A registry that wants a login, removed with its storage when dropped.
struct Registry {
    child: Child,
    address: String,
    dir: tempfile::TempDir,
}

impl Registry {
    async fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let hash = bcrypt::hash(PASSWORD, 4).unwrap();
        std::fs::write(dir.path().join("htpasswd"), format!("{USER}:{hash}\n")).unwrap();
        let config = format!(
            "version: 0.1\nlog: {{ level: warn }}\n\
             storage: {{ filesystem: {{ rootdirectory: {root} }}, delete: {{ enabled: true }} }}\n\
             http: {{ addr: 127.0.0.1:{port} }}\n\
             auth: {{ htpasswd: {{ realm: helvetia-test, path: {htpasswd} }} }}\n",
            root = dir.path().join("storage").display(),
            htpasswd = dir.path().join("htpasswd").display(),
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("registry.log")).unwrap())
            .spawn()
            .unwrap();
        let address = format!("127.0.0.1:{port}");
        let url = format!("http://{address}/v2/");
        eventually(Duration::from_secs(10), "the registry to answer", || {
            let url = url.clone();
            async move {
                let response = http_client().get(&url).send().await.ok()?;
                (response.status() == 401).then_some(())
            }
        })
        .await;
        let registry = Registry {
            child,
            address,
            dir,
        };
        // The docker CLI logs in with a configuration of its own, not the user's.
        let mut login = registry
            .docker(&["login", "-u", USER, "--password-stdin", &registry.address])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        login
            .stdin
            .take()
            .unwrap()
            .write_all(PASSWORD.as_bytes())
            .unwrap();
        assert!(login.wait().unwrap().success(), "docker login failed");
        registry
    }

    fn docker(&self, args: &[&str]) -> Command {
        let mut command = Command::new("/usr/bin/docker");
        command
            .env("DOCKER_CONFIG", self.dir.path().join("docker"))
            .args(args);
        command
    }

    /// Builds an image answering `page` and pushes it as `reference`; returns its digest.
    fn push(&self, reference: &str, page: &str) -> String {
        let context = tempfile::tempdir().unwrap();
        std::fs::write(
            context.path().join("Dockerfile"),
            format!(
                "FROM {}\nCOPY index.html /www/index.html\n",
                busybox_httpd_image()
            ),
        )
        .unwrap();
        std::fs::write(context.path().join("index.html"), page).unwrap();
        let built = self
            .docker(&["build", "-q", "-t", reference])
            .arg(context.path())
            .env("DOCKER_BUILDKIT", "1")
            .output()
            .unwrap();
        assert!(built.status.success(), "{built:?}");
        let pushed = self.docker(&["push", reference]).output().unwrap();
        assert!(pushed.status.success(), "{pushed:?}");
        let text = String::from_utf8_lossy(&pushed.stdout);
        // Not left on the host: the deploy must pull it.
        let _ = self.docker(&["rmi", reference]).output();
        text.split("digest: ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no digest in {text}"))
            .to_owned()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A generic delivery to `receiver`, signed with `secret` as Helvetia's generic hook wants.
async fn deliver(receiver: &str, secret: &str, body: &Value) -> Value {
    let body = body.to_string();
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let response = http_client()
        .post(format!("{receiver}/generic"))
        .header("content-type", "application/json")
        .header("x-helvetia-delivery", unique("delivery"))
        .header("x-helvetia-timestamp", timestamp.to_string())
        .header("x-helvetia-signature-256", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    response.json().await.unwrap()
}

async fn page(server: &TestServer, host: &str) -> String {
    let (status, body) = server.through_edge(host, "/").await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn images_deploy_by_tag_and_digest_follow_a_moved_tag_and_keep_their_login_secret() {
    let registry = Registry::start().await;
    let server = TestServer::start_with(crate::BINARY, &["--allow-private-destinations"]).await;
    let project = unique("images");
    let _cleanup = Cleanup(project.clone());
    let repository = format!("{}/{project}/app", registry.address);
    let tagged = format!("{repository}:stable");
    let first = registry.push(&tagged, "one\n");

    let (status, body) = server
        .api(
            Method::POST,
            "/api/v1/projects",
            Some(json!({"name": project})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let target = format!("{project}/app");
    server.cli_ok_input(
        &[
            "services",
            "create",
            &target,
            "--image",
            &tagged,
            "--registry-user",
            USER,
            "--registry-password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    let shown = server
        .get(&format!("/api/v1/projects/{project}/services/app"))
        .await;
    assert_eq!(shown["image"], tagged.as_str(), "{shown}");
    assert_eq!(shown["repo"], Value::Null);
    assert_eq!(shown["registry_user"], USER);
    assert!(!shown.to_string().contains(PASSWORD), "{shown}");

    // By tag: pulled, resolved to the pushed digest, recorded, served.
    let host = format!("app.{project}.localhost");
    let deployed = server.deploy(&project, "app").await;
    assert_eq!(deployed["status"], "live", "{deployed}");
    assert_eq!(deployed["image_digest"], first.as_str(), "{deployed}");
    assert_eq!(page(&server, &host).await, "one\n");
    let first_id = deployed["id"].as_i64().unwrap();
    let log = server.deploy_log(first_id).await;
    assert!(log.contains(&format!("{repository}@{first}")), "{log}");
    assert!(!log.contains(PASSWORD), "{log}");

    // The tag moves; a redeploy through the API resolves it anew.
    let second = registry.push(&tagged, "two\n");
    assert_ne!(first, second);
    let deployed = server.deploy(&project, "app").await;
    assert_eq!(deployed["status"], "live", "{deployed}");
    assert_eq!(deployed["image_digest"], second.as_str());
    assert_eq!(page(&server, &host).await, "two\n");

    // It moves again; the registry's notification, signed, redeploys it. One about another
    // tag does nothing.
    let third = registry.push(&tagged, "three\n");
    let made: Value =
        serde_json::from_str(&server.cli_ok(&["hooks", "secret", &target, "--json"])).unwrap();
    let (receiver, secret) = (
        made["receiver_url"].as_str().unwrap(),
        made["secret"].as_str().unwrap(),
    );
    let other = json!({"events": [{"action": "push",
        "target": {"repository": format!("{project}/app"), "tag": "canary"}}]});
    let receipt = deliver(receiver, secret, &other).await;
    assert_eq!(receipt["results"][0]["outcome"], "ignored", "{receipt}");
    let moved = json!({"events": [{"action": "push",
        "target": {"repository": format!("{project}/app"), "tag": "stable",
                   "digest": third}}]});
    let receipt = deliver(receiver, secret, &moved).await;
    assert_eq!(receipt["results"][0]["outcome"], "deployed", "{receipt}");
    let id = receipt["results"][0]["deployment_id"].as_i64().unwrap();
    let deployed = server.wait_finished(id).await;
    assert_eq!(deployed["status"], "live", "{deployed}");
    assert_eq!(deployed["image_digest"], third.as_str());
    assert_eq!(page(&server, &host).await, "three\n");
    let deliveries = server.cli_ok(&["hooks", "deliveries", &target]);
    assert!(
        deliveries.contains(&format!("deployed #{id}")),
        "{deliveries}"
    );

    // A rollback runs the image the first deployment recorded, without pulling.
    let (status, body) = server
        .api(
            Method::POST,
            &format!("/api/v1/projects/{project}/services/app/rollback"),
            Some(json!({"deployment": first_id})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let rolled = server.wait_finished(body["id"].as_i64().unwrap()).await;
    assert_eq!(rolled["status"], "live", "{rolled}");
    assert_eq!(page(&server, &host).await, "one\n");

    // By digest: always that image, whatever the tag says.
    let pinned = format!("{repository}@{second}");
    server.cli_ok_input(
        &[
            "services",
            "create",
            &format!("{project}/pinned"),
            "--image",
            &pinned,
            "--registry-user",
            USER,
            "--registry-password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    let deployed = server.deploy(&project, "pinned").await;
    assert_eq!(deployed["status"], "live", "{deployed}");
    assert_eq!(deployed["image_digest"], second.as_str());
    assert_eq!(
        page(&server, &format!("pinned.{project}.localhost")).await,
        "two\n"
    );

    // A wrong password: the deployment fails saying so, the password appears nowhere, and
    // the live version keeps serving.
    server.cli_ok_input(
        &[
            "services",
            "update",
            &target,
            "--registry-user",
            USER,
            "--registry-password-stdin",
        ],
        &format!("{WRONG}\n"),
    );
    let failed = server.deploy(&project, "app").await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let reason = failed["status_reason"].to_string() + &failed.to_string();
    assert!(reason.contains("refused the login"), "{failed}");
    assert!(
        !reason.contains(WRONG) && !reason.contains(PASSWORD),
        "{failed}"
    );
    let log = server.deploy_log(failed["id"].as_i64().unwrap()).await;
    assert!(log.contains("refused the login"), "{log}");
    assert!(!log.contains(WRONG), "{log}");
    let shown = server
        .get(&format!("/api/v1/projects/{project}/services/app"))
        .await;
    assert!(!shown.to_string().contains(WRONG), "{shown}");
    assert!(
        !server.log().contains(WRONG),
        "the server's log has the password"
    );
    assert_eq!(page(&server, &host).await, "one\n");
}
