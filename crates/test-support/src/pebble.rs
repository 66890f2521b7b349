//! Pebble (Let's Encrypt's test CA) and pebble-challtestsrv (its programmable DNS server), one
//! pair per test on free loopback ports (Debian's `pebble` package; `scripts/dev-setup.sh`).
//!
//! Pebble's API is HTTPS with a certificate made here (a CA of the test's and a leaf for
//! `localhost`/`127.0.0.1`): a client trusts [`Pebble::api_ca_pem`]. Pebble resolves every name
//! through challtestsrv, which answers 127.0.0.1 unless told otherwise ([`Pebble::add_a`]), so
//! an HTTP-01 challenge is validated at `127.0.0.1:<`[`Pebble::http_port`]`>` — serve it with
//! [`Http01Server`]. DNS-01 records are set through challtestsrv's management API
//! ([`Pebble::set_txt`]). `PEBBLE_VA_NOSLEEP=1`: validation starts at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;

use crate::{eventually, free_port};

/// Pebble's settings a test may change.
#[derive(Debug, Clone, Default)]
pub struct PebbleOptions {
    /// `certificateValidityPeriod`: short-lived certificates for renewal tests.
    pub validity: Option<Duration>,
    /// External Account Binding required, with this key id and base64url MAC key.
    pub external_account: Option<(String, String)>,
    /// The port Pebble validates HTTP-01 challenges on (a server's HTTP entry point); a free
    /// one when `None`.
    pub http_port: Option<u16>,
}

/// A running Pebble and challtestsrv; both are killed when dropped.
pub struct Pebble {
    dir: tempfile::TempDir,
    pebble: Child,
    challtestsrv: Child,
    listen_port: u16,
    management_port: u16,
    challtestsrv_port: u16,
    dns_port: u16,
    http_port: u16,
    api_ca_pem: String,
    http: reqwest::Client,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in [&mut self.pebble, &mut self.challtestsrv] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Pebble {
    pub async fn start() -> Pebble {
        Pebble::start_with(PebbleOptions::default()).await
    }

    pub async fn start_with(options: PebbleOptions) -> Pebble {
        let dir = tempfile::tempdir().unwrap();
        let api_ca_pem = write_api_certificate(dir.path());
        let [
            listen_port,
            management_port,
            tls_port,
            dns_port,
            challtestsrv_port,
        ] = std::array::from_fn(|_| free_port());
        let http_port = options.http_port.unwrap_or_else(free_port);

        let challtestsrv = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{challtestsrv_port}")])
            .stdout(log_file(dir.path(), "challtestsrv.log"))
            .stderr(log_file(dir.path(), "challtestsrv.err"))
            .spawn()
            .expect("pebble-challtestsrv runs (apt-get install pebble)");

        let mut config = serde_json::json!({
            "listenAddress": format!("127.0.0.1:{listen_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": dir.path().join("api.pem"),
            "privateKey": dir.path().join("api.key"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": options.external_account.is_some(),
        });
        if let Some(validity) = options.validity {
            config["certificateValidityPeriod"] = validity.as_secs().into();
        }
        if let Some((key_id, key)) = &options.external_account {
            config["externalAccountMACKeys"] = serde_json::json!({ key_id: key });
        }
        let config_path = dir.path().join("pebble.json");
        std::fs::write(
            &config_path,
            serde_json::json!({ "pebble": config }).to_string(),
        )
        .unwrap();
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            // Pebble refuses 5% of nonces by default to exercise clients' retries; a test
            // should not depend on luck.
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(log_file(dir.path(), "pebble.log"))
            .stderr(log_file(dir.path(), "pebble.err"))
            .spawn()
            .expect("pebble runs (apt-get install pebble)");

        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([reqwest::Certificate::from_pem(api_ca_pem.as_bytes()).unwrap()])
            .build()
            .unwrap();
        let pebble = Pebble {
            dir,
            pebble,
            challtestsrv,
            listen_port,
            management_port,
            challtestsrv_port,
            dns_port,
            http_port,
            api_ca_pem,
            http,
        };
        for port in [listen_port, management_port, challtestsrv_port] {
            eventually(Duration::from_secs(10), "Pebble to listen", || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .ok()
                    .map(|_| ())
            })
            .await;
        }
        pebble
    }

    /// The ACME directory.
    pub fn directory_url(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.listen_port)
    }

    /// The CA that signed Pebble's API certificate: what a client must trust to reach it.
    pub fn api_ca_pem(&self) -> &str {
        &self.api_ca_pem
    }

    /// The port Pebble validates HTTP-01 challenges on (at the address challtestsrv answers
    /// for the name: 127.0.0.1).
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// challtestsrv's DNS server (UDP and TCP), which Pebble resolves through: every name is
    /// 127.0.0.1 unless [`Pebble::add_a`] said otherwise. A server's `--resolver` in tests.
    pub fn dns_address(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.dns_port))
    }

    /// Pebble's log so far, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// The root of the chains Pebble issues (PEM); a new one each start.
    pub async fn issuing_root_pem(&self) -> String {
        let url = format!("https://127.0.0.1:{}/roots/0", self.management_port);
        let response = self.http.get(url).send().await.unwrap();
        assert!(response.status().is_success(), "{response:?}");
        response.text().await.unwrap()
    }

    /// challtestsrv's management API, for a fake DNS provider that writes through to it.
    pub fn challtestsrv_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.challtestsrv_port)
    }

    /// Adds TXT `value` at `host` (`_acme-challenge.example.com.`).
    pub async fn set_txt(&self, host: &str, value: &str) {
        challtestsrv(
            &self.challtestsrv_url(),
            "set-txt",
            serde_json::json!({ "host": host, "value": value }),
        )
        .await;
    }

    /// Removes every TXT record at `host`.
    pub async fn clear_txt(&self, host: &str) {
        challtestsrv(
            &self.challtestsrv_url(),
            "clear-txt",
            serde_json::json!({ "host": host }),
        )
        .await;
    }

    /// Answers `host`'s A queries with `addresses` (loopback ones only: nothing a test does
    /// may reach off this machine).
    pub async fn add_a(&self, host: &str, addresses: &[IpAddr]) {
        assert!(addresses.iter().all(IpAddr::is_loopback), "{addresses:?}");
        challtestsrv(
            &self.challtestsrv_url(),
            "add-a",
            serde_json::json!({ "host": host, "addresses": addresses }),
        )
        .await;
    }
}

/// Calls challtestsrv's management API at `base` (`set-txt`, `clear-txt`, `add-a`, …).
pub async fn challtestsrv(base: &str, action: &str, body: serde_json::Value) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{base}/{action}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "challtestsrv /{action}: {response:?}"
    );
}

fn log_file(dir: &Path, name: &str) -> Stdio {
    Stdio::from(std::fs::File::create(dir.join(name)).unwrap())
}

/// Writes `api.pem`/`api.key` (a leaf for `localhost` and `127.0.0.1`) signed by a CA made
/// here, and answers the CA's PEM. A CA rather than a self-signed leaf: webpki takes a trust
/// anchor to be a CA.
fn write_api_certificate(dir: &Path) -> String {
    let made = TestCertificates::make(&["localhost", "127.0.0.1"], |_| {});
    std::fs::write(dir.join("api.pem"), made.leaf_pem).unwrap();
    std::fs::write(dir.join("api.key"), made.leaf_key_pem).unwrap();
    made.ca_pem
}

/// A CA (`CN=Helvetia test CA`) and a leaf it signed.
pub struct TestCertificates {
    pub ca_pem: String,
    pub leaf_pem: String,
    pub leaf_key_pem: String,
}

impl TestCertificates {
    /// A leaf for `names` valid since yesterday and until `days` from today (midnight UTC;
    /// negative: expired).
    pub fn ending_in(names: &[&str], days: i64) -> Self {
        let date = |days: i64| {
            let day = jiff::tz::Offset::UTC
                .to_datetime(jiff::Timestamp::now())
                .date()
                .checked_add(jiff::Span::new().days(days))
                .unwrap();
            rcgen::date_time_ymd(i32::from(day.year()), day.month() as u8, day.day() as u8)
        };
        TestCertificates::make(names, |leaf| {
            leaf.not_before = date(-1);
            leaf.not_after = date(days);
        })
    }

    /// A leaf for `names` (DNS names or IP addresses), its parameters (dates) adjusted by
    /// `leaf`.
    pub fn make(names: &[&str], leaf: impl FnOnce(&mut rcgen::CertificateParams)) -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(vec![]).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "Helvetia test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        leaf(&mut params);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf_cert = params.signed_by(&leaf_key, &issuer).unwrap();
        TestCertificates {
            ca_pem: ca_cert.pem(),
            leaf_pem: leaf_cert.pem(),
            leaf_key_pem: leaf_key.serialize_pem(),
        }
    }
}

/// Serves HTTP-01 key authorizations at `/.well-known/acme-challenge/<token>` on a port (the
/// one Pebble validates on); stops when dropped.
pub struct Http01Server {
    tokens: Arc<Mutex<HashMap<String, String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Http01Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Http01Server {
    pub async fn start(port: u16) -> Http01Server {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let tokens = Arc::new(Mutex::new(HashMap::new()));
        let router = axum::Router::new()
            .route(
                "/.well-known/acme-challenge/{token}",
                axum::routing::get(
                    |State(tokens): State<Arc<Mutex<HashMap<String, String>>>>,
                     UrlPath(token): UrlPath<String>| async move {
                        match tokens.lock().unwrap().get(&token) {
                            Some(answer) => Ok(answer.clone()),
                            None => Err(StatusCode::NOT_FOUND),
                        }
                    },
                ),
            )
            .with_state(tokens.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Http01Server { tokens, task }
    }

    pub fn set(&self, token: &str, key_authorization: &str) {
        self.tokens
            .lock()
            .unwrap()
            .insert(token.to_owned(), key_authorization.to_owned());
    }

    pub fn remove(&self, token: &str) {
        self.tokens.lock().unwrap().remove(token);
    }

    /// The tokens served now.
    pub fn tokens(&self) -> Vec<String> {
        self.tokens.lock().unwrap().keys().cloned().collect()
    }
}

/// A receiver of lego's `httpreq` calls (`POST /present`, `POST /cleanup` with
/// `{"fqdn","value"}`, HTTP basic auth) that sets and clears the TXT records in challtestsrv:
/// what a user's small DNS-updating service does. Stops when dropped.
pub struct HttpReqReceiver {
    port: u16,
    calls: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HttpReqReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Receiver {
    challtestsrv: String,
    /// `Basic <base64(user:password)>`.
    authorization: String,
    calls: Arc<Mutex<Vec<String>>>,
}

impl HttpReqReceiver {
    /// Forwards to challtestsrv at `challtestsrv_url`; wants `user`/`password`.
    pub async fn start(challtestsrv_url: &str, user: &str, password: &str) -> HttpReqReceiver {
        use base64::Engine as _;
        let calls = Arc::new(Mutex::new(vec![]));
        let receiver = Receiver {
            challtestsrv: challtestsrv_url.to_owned(),
            authorization: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            ),
            calls: calls.clone(),
        };
        let router = axum::Router::new()
            .route("/{action}", axum::routing::post(receive))
            .with_state(receiver);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        HttpReqReceiver { port, calls, task }
    }

    /// The endpoint to configure the provider with.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// `<action> <fqdn>` of every call accepted so far.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

#[derive(serde::Deserialize)]
struct HttpReqBody {
    fqdn: String,
    value: String,
}

async fn receive(
    State(receiver): State<Receiver>,
    UrlPath(action): UrlPath<String>,
    headers: axum::http::HeaderMap,
    axum::Json(body): axum::Json<HttpReqBody>,
) -> StatusCode {
    let authorized = headers
        .get("authorization")
        .is_some_and(|value| value.as_bytes() == receiver.authorization.as_bytes());
    if !authorized {
        return StatusCode::UNAUTHORIZED;
    }
    match action.as_str() {
        "present" => {
            let json = serde_json::json!({ "host": body.fqdn, "value": body.value });
            challtestsrv(&receiver.challtestsrv, "set-txt", json).await;
        }
        "cleanup" => {
            let json = serde_json::json!({ "host": body.fqdn });
            challtestsrv(&receiver.challtestsrv, "clear-txt", json).await;
        }
        _ => return StatusCode::NOT_FOUND,
    }
    receiver
        .calls
        .lock()
        .unwrap()
        .push(format!("{action} {}", body.fqdn));
    StatusCode::OK
}
