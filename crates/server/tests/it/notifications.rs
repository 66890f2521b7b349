//! Notifications end to end below the engine: a local receiver (a small axum server) takes
//! Slack-, Discord- and generic-format messages from the server's sender, the generic one's
//! signature is checked here with `hmac` alone (as a receiver would), a receiver that fails
//! twice gets the message once with the three attempts in the API, and an SMTP server
//! (`aiosmtpd`) receives the e-mail.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use helvetia_core::notification::{EventKind, NotificationEvent};
use helvetia_server::notifications;
use helvetia_test_support::eventually;
use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use crate::harness::Api;

/// A request the receiver took.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
    answered: StatusCode,
}

/// A receiver on the loopback interface: records every request; a path listed in `fail`
/// answers 500 that many times first.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    fail: Arc<Mutex<HashMap<String, u32>>>,
}

impl Receiver {
    async fn start(&self) -> String {
        async fn take(
            State(receiver): State<Receiver>,
            Path(path): Path<String>,
            headers: HeaderMap,
            body: axum::body::Bytes,
        ) -> StatusCode {
            let answered = {
                let mut fail = receiver.fail.lock().unwrap();
                match fail.get_mut(&path) {
                    Some(left) if *left > 0 => {
                        *left -= 1;
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                    _ => StatusCode::OK,
                }
            };
            receiver.received.lock().unwrap().push(Received {
                path,
                headers,
                body: body.to_vec(),
                answered,
            });
            answered
        }
        let app = axum::Router::new()
            .route("/{path}", axum::routing::post(take))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}")
    }

    fn at(&self, path: &str) -> Vec<Received> {
        let received = self.received.lock().unwrap();
        received
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    async fn wait_for(&self, path: &str, count: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let received = self.at(path);
            if received.len() >= count {
                return received;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path}: {} of {count} requests",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// An API whose outbound requests may reach the loopback interface, with project `demo`, a
/// retry base of 100 ms and the sender running until the token is cancelled.
async fn api() -> (Api, CancellationToken) {
    let api = Api::configured(|settings| {
        settings.repo_policy.destinations.allow_private = true;
        settings.notification_retry_base = Duration::from_millis(100);
    })
    .await;
    api.demo_service("web").await;
    let stop = CancellationToken::new();
    tokio::spawn(notifications::run(api.platform.clone(), stop.clone()));
    (api, stop)
}

async fn add_channel(api: &Api, body: Value) -> Value {
    let (status, created) = api.post("/api/v1/projects/demo/notifications", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

async fn project_id(api: &Api) -> i64 {
    let (_, project) = api.get("/api/v1/projects/demo").await;
    project["id"].as_i64().unwrap()
}

/// What a receiver of the generic webhook does (the README's recipe): the signature over
/// `<timestamp>.<body>`, a timestamp within 5 minutes, a delivery id not seen before.
fn accept(
    secret: &str,
    request: &Received,
    now: i64,
    seen: &mut HashSet<String>,
) -> Result<(), &'static str> {
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
    let timestamp = header("x-helvetia-timestamp").ok_or("no timestamp")?;
    let signature = header("x-helvetia-signature-256")
        .and_then(|s| s.strip_prefix("sha256="))
        .ok_or("no signature")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&request.body);
    let signature = hex::decode(signature).map_err(|_| "bad signature")?;
    mac.verify_slice(&signature).map_err(|_| "bad signature")?;
    let sent: i64 = timestamp.parse().map_err(|_| "bad timestamp")?;
    if (now - sent).abs() > 300 {
        return Err("too old");
    }
    let delivery = header("x-helvetia-delivery").ok_or("no delivery id")?;
    if !seen.insert(delivery.to_owned()) {
        return Err("replayed");
    }
    Ok(())
}

#[tokio::test]
async fn slack_discord_and_signed_generic_messages_reach_their_receivers() {
    let (api, stop) = api().await;
    let receiver = Receiver::default();
    let base = receiver.start().await;
    let deploys = json!(["deploy_succeeded", "deploy_failed"]);
    let slack = add_channel(
        &api,
        json!({"name": "chat", "kind": "slack", "events": deploys, "url": format!("{base}/slack")}),
    )
    .await;
    assert_eq!(slack["signing_secret"], Value::Null);
    // The URL is a secret: views show its origin only.
    assert_eq!(slack["channel"]["destination"], format!("{base}/…"));
    add_channel(
        &api,
        json!({"name": "discord", "kind": "discord", "events": ["deploy_succeeded"],
               "url": format!("{base}/discord")}),
    )
    .await;
    let generic = add_channel(
        &api,
        json!({"name": "hook", "kind": "webhook", "events": ["deploy_succeeded"],
               "url": format!("{base}/generic")}),
    )
    .await;
    let secret = generic["signing_secret"].as_str().unwrap().to_owned();
    let (_, listed) = api.get("/api/v1/projects/demo/notifications").await;
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert!(!listed.to_string().contains("/slack"), "{listed}");
    assert!(!listed.to_string().contains(&secret), "{listed}");

    // Addresses the outbound policy never allows are refused at input.
    let (status, refused) = api
        .post(
            "/api/v1/projects/demo/notifications",
            json!({"name": "meta", "kind": "webhook", "events": ["deploy_failed"],
                   "url": "http://169.254.169.254/latest"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");

    let mut event = NotificationEvent::new(EventKind::DeploySucceeded, "demo", Timestamp::now());
    event.service = Some("web".into());
    event.deployment_id = Some(42);
    event.commit = Some("0123456789abcdef0123456789abcdef01234567".into());
    event.status = Some("live".into());
    event.url = Some("http://web.demo.localhost".into());
    notifications::emit(&api.platform, project_id(&api).await, event).await;

    let slack = receiver.wait_for("slack", 1).await;
    let body: Value = serde_json::from_slice(&slack[0].body).unwrap();
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("demo/web deployed (deployment #42"),
        "{body}"
    );
    assert_eq!(body["blocks"][0]["type"], "section");
    let discord = receiver.wait_for("discord", 1).await;
    let body: Value = serde_json::from_slice(&discord[0].body).unwrap();
    assert!(
        body["content"]
            .as_str()
            .unwrap()
            .contains("demo/web deployed")
    );
    assert_eq!(body["embeds"][0]["url"], "http://web.demo.localhost");

    let generic = receiver.wait_for("generic", 1).await;
    let request = &generic[0];
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["kind"], "deploy_succeeded");
    assert_eq!(body["deployment_id"], 42);
    assert_eq!(
        body["delivery"].as_str(),
        request.headers["x-helvetia-delivery"].to_str().ok()
    );
    let now = Timestamp::now().as_second();
    let mut seen = HashSet::new();
    assert_eq!(accept(&secret, request, now, &mut seen), Ok(()));
    // The same request again is a replay: its delivery id was seen; later, it is too old.
    assert_eq!(accept(&secret, request, now, &mut seen), Err("replayed"));
    assert_eq!(
        accept(&secret, request, now + 600, &mut HashSet::new()),
        Err("too old")
    );
    let mut forged = request.clone();
    forged.body = br#"{"kind":"deploy_failed"}"#.to_vec();
    assert_eq!(
        accept(&secret, &forged, now, &mut HashSet::new()),
        Err("bad signature")
    );
    assert_eq!(
        accept("another secret", request, now, &mut HashSet::new()),
        Err("bad signature")
    );

    // A failure reaches only the channel subscribed to failures.
    let failed = NotificationEvent::new(EventKind::DeployFailed, "demo", Timestamp::now());
    notifications::emit(&api.platform, project_id(&api).await, failed).await;
    receiver.wait_for("slack", 2).await;
    let (_, messages) = api
        .get("/api/v1/projects/demo/notifications/hook/messages")
        .await;
    assert_eq!(messages.as_array().unwrap().len(), 1, "{messages}");
    stop.cancel();
}

#[tokio::test]
async fn a_receiver_that_fails_twice_gets_the_message_once_with_every_attempt_shown() {
    let (api, stop) = api().await;
    let receiver = Receiver::default();
    let base = receiver.start().await;
    receiver.fail.lock().unwrap().insert("flaky".into(), 2);
    add_channel(
        &api,
        json!({"name": "flaky", "kind": "webhook", "events": ["deploy_failed"],
               "url": format!("{base}/flaky")}),
    )
    .await;
    let (status, queued) = api
        .post(
            "/api/v1/projects/demo/notifications/flaky/test",
            json!(null),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let id = queued["message_id"].as_i64().unwrap();

    let received = receiver.wait_for("flaky", 3).await;
    let answers: Vec<u16> = received.iter().map(|r| r.answered.as_u16()).collect();
    assert_eq!(answers, [500, 500, 200]);
    let ids: HashSet<_> = received
        .iter()
        .map(|r| r.headers["x-helvetia-delivery"].clone())
        .collect();
    assert_eq!(ids.len(), 1, "every attempt carries the same delivery id");

    let path = "/api/v1/projects/demo/notifications/flaky/messages";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let message = loop {
        let (_, messages) = api.get(path).await;
        let message = messages[0].clone();
        if message["status"] == "delivered" {
            break message;
        }
        assert!(tokio::time::Instant::now() < deadline, "{messages}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(message["id"], id);
    assert_eq!(message["event"]["kind"], "test");
    let attempts = message["attempts"].as_array().unwrap();
    let statuses: Vec<&Value> = attempts.iter().map(|a| &a["http_status"]).collect();
    assert_eq!(statuses, [&json!(500), &json!(500), &json!(200)]);
    assert_eq!(attempts[0]["ok"], false);
    assert!(
        attempts[0]["error"].as_str().unwrap().contains("HTTP 500"),
        "{message}"
    );
    assert_eq!(attempts[2]["ok"], true);
    // Delivered means done: nothing more arrives, however long the back-off would be.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.at("flaky").len(), 3);

    stop.cancel();
}

/// A free port on the loopback interface (closed again, for a child process to take).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn an_smtp_server_receives_the_email() {
    let (api, stop) = api().await;
    let dir = tempfile::tempdir().unwrap();
    // A maildir the handler makes itself.
    let mail_dir = dir.path().join("mail");
    let port = free_port();
    let python = std::env::var("HELVETIA_AIOSMTPD_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let mut smtp = tokio::process::Command::new(&python)
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(&mail_dir)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{python} (aiosmtpd, see scripts/dev-setup.sh): {e}"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "aiosmtpd did not listen (is it installed? scripts/dev-setup.sh)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    add_channel(
        &api,
        json!({"name": "mail", "kind": "email", "events": ["deploy_failed"], "smtp": {
            "host": "127.0.0.1", "port": port, "tls": "none",
            "from": "helvetia@example.com", "to": ["ops@example.com", "dev@example.com"]}}),
    )
    .await;
    let mut event = NotificationEvent::new(EventKind::DeployFailed, "demo", Timestamp::now());
    event.service = Some("web".into());
    event.reason = Some("the health check did not pass".into());
    notifications::emit(&api.platform, project_id(&api).await, event).await;

    let new = mail_dir.join("new");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mail = loop {
        let files: Vec<_> = std::fs::read_dir(&new)
            .map(|dir| dir.flatten().map(|entry| entry.path()).collect())
            .unwrap_or_default();
        if let Some(file) = files.first() {
            break std::fs::read_to_string(file).unwrap();
        }
        assert!(tokio::time::Instant::now() < deadline, "no e-mail arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        mail.contains("Subject: [Helvetia] demo/web failed to deploy"),
        "{mail}"
    );
    assert!(
        mail.contains("To: ops@example.com, dev@example.com"),
        "{mail}"
    );
    assert!(mail.contains("the health check did not pass"), "{mail}");
    // The server records the delivery once the SMTP server has answered, just after it
    // wrote the mail.
    eventually(Duration::from_secs(10), "the delivery recorded", || async {
        let (_, messages) = api
            .get("/api/v1/projects/demo/notifications/mail/messages")
            .await;
        (messages[0]["status"] == "delivered").then_some(())
    })
    .await;
    smtp.kill().await.unwrap();
    stop.cancel();
}

#[tokio::test]
async fn a_changed_channel_delivers_where_and_what_it_now_says() {
    let (api, stop) = api().await;
    let receiver = Receiver::default();
    let base = receiver.start().await;
    add_channel(
        &api,
        json!({"name": "chat", "kind": "slack", "events": ["deploy_failed"],
               "url": format!("{base}/old")}),
    )
    .await;
    let path = "/api/v1/projects/demo/notifications/chat";
    let (status, changed) = api
        .call(
            axum::http::Method::PATCH,
            path,
            Some(&api.admin),
            Some(json!({"url": format!("{base}/new"), "events": ["deploy_succeeded"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["events"], json!(["deploy_succeeded"]));
    // The kind's own field only.
    let (status, refused) = api
        .call(
            axum::http::Method::PATCH,
            path,
            Some(&api.admin),
            Some(
                json!({"smtp": {"host": "smtp.invalid", "port": 25, "tls": "none",
                                 "from": "a@example.com", "to": ["b@example.com"]}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");

    let project = project_id(&api).await;
    let event = |kind| NotificationEvent::new(kind, "demo", Timestamp::now());
    notifications::emit(&api.platform, project, event(EventKind::DeploySucceeded)).await;
    receiver.wait_for("new", 1).await;
    // Disabled: events are not queued, tests still are.
    let (status, _) = api
        .call(
            axum::http::Method::PATCH,
            path,
            Some(&api.admin),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    notifications::emit(&api.platform, project, event(EventKind::DeploySucceeded)).await;
    api.post(&format!("{path}/test"), json!(null)).await;
    let received = receiver.wait_for("new", 2).await;
    let body: Value = serde_json::from_slice(&received[1].body).unwrap();
    assert!(
        body["text"].as_str().unwrap().contains("test notification"),
        "{body}"
    );
    assert!(receiver.at("old").is_empty());
    let (_, messages) = api.get(&format!("{path}/messages")).await;
    assert_eq!(messages.as_array().unwrap().len(), 2, "{messages}");

    let (status, _) = api
        .call(axum::http::Method::DELETE, path, Some(&api.admin), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api.get(path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    stop.cancel();
}

#[tokio::test]
async fn rotating_the_master_key_reseals_channel_secrets() {
    let (api, stop) = api().await;
    stop.cancel();
    let url = "http://127.0.0.1:9/hooks/token";
    add_channel(
        &api,
        json!({"name": "chat", "kind": "slack", "events": ["deploy_failed"], "url": url}),
    )
    .await;
    let project = project_id(&api).await;
    let before = api.store.channels(project).await.unwrap().remove(0);
    helvetia_server::vault::rotate(api.dir.path(), None, &api.store)
        .await
        .unwrap();
    let after = api.store.channels(project).await.unwrap().remove(0);
    assert_ne!(after.sealed_secret, before.sealed_secret);
    let vault = helvetia_server::vault::Vault::open_for(api.dir.path(), None, &api.store)
        .await
        .unwrap();
    let binding = helvetia_core::notification::secret_binding(project, "chat");
    let opened = vault.open(&binding, after.sealed_secret.as_deref().unwrap());
    assert_eq!(opened.unwrap(), url);
}
