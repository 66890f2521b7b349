//! instant-acme's HTTP client, on Helvetia's one way out: every request's host is resolved and
//! checked through [`Outbound`], and the connection goes to the checked addresses only. The
//! CA's certificate is verified against the system's roots plus the configured extra ones (a
//! private CA such as Pebble, whose API certificate is self-made).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};

use crate::outbound::Outbound;

/// How long one resolution of the CA's host is used before it is resolved (and checked) again.
const RESOLVED_FOR: Duration = Duration::from_secs(300);
/// The most a CA's answer may hold: a directory, an order or a certificate chain is a few KiB.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// An [`HttpClient`] for instant-acme that reaches the CA through [`Outbound`].
#[derive(Clone)]
pub(super) struct OutboundHttp(Arc<Inner>);

struct Inner {
    outbound: Arc<Outbound>,
    roots: Vec<reqwest::Certificate>,
    timeout: Duration,
    /// One client per `scheme://host:port`, pinned to the addresses resolved for it.
    clients: Mutex<HashMap<String, (Instant, reqwest::Client)>>,
}

impl OutboundHttp {
    pub(super) fn new(
        outbound: Arc<Outbound>,
        roots: Vec<reqwest::Certificate>,
        timeout: Duration,
    ) -> OutboundHttp {
        super::install_crypto_provider();
        OutboundHttp(Arc::new(Inner {
            outbound,
            roots,
            timeout,
            clients: Mutex::new(HashMap::new()),
        }))
    }
}

impl Inner {
    async fn client(&self, url: &url::Url) -> Result<reqwest::Client, String> {
        let authority = format!(
            "{}://{}:{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        );
        if let Some((at, client)) = self.lock().get(&authority)
            && at.elapsed() < RESOLVED_FOR
        {
            return Ok(client.clone());
        }
        let client = self
            .outbound
            .http_client_builder(url, self.timeout)
            .await
            .map_err(|e| e.to_string())?
            // RFC 8555 §6.1: ACME is HTTPS only.
            .https_only(true)
            .tls_certs_merge(self.roots.iter().cloned())
            .build()
            .map_err(|e| format!("an HTTP client could not be set up: {e}"))?;
        self.lock()
            .insert(authority, (Instant::now(), client.clone()));
        Ok(client)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, reqwest::Client)>> {
        // A panic while holding the lock leaves only a cache behind: keep using it.
        self.clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn send(
        &self,
        request: http::Request<BodyWrapper<Bytes>>,
    ) -> Result<BytesResponse, String> {
        let (parts, body) = request.into_parts();
        let url = url::Url::parse(&parts.uri.to_string())
            .map_err(|e| format!("the CA named an invalid URL `{}`: {e}", parts.uri))?;
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        };
        let client = self.client(&url).await?;
        let mut response = client
            .request(parts.method, url.clone())
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|e| super::with_causes(&e))?;
        let mut head = http::Response::builder()
            .status(response.status())
            .body(())
            .map_err(|e| e.to_string())?
            .into_parts()
            .0;
        head.headers = std::mem::take(response.headers_mut());
        let mut answer = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| super::with_causes(&e))? {
            if answer.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(format!("{url} answered more than {MAX_ANSWER_BYTES} bytes"));
            }
            answer.extend_from_slice(&chunk);
        }
        Ok(BytesResponse {
            parts: head,
            body: Box::new(Bytes::from(answer)),
        })
    }
}

/// The CA not reached: the outbound policy refused it, or the connection failed. Told apart
/// from instant-acme's other failures, which also come as `Error::Other`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct TransportError(String);

impl HttpClient for OutboundHttp {
    fn request(
        &self,
        request: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let inner = self.0.clone();
        Box::pin(async move {
            inner
                .send(request)
                .await
                .map_err(|text| instant_acme::Error::Other(Box::new(TransportError(text))))
        })
    }
}
