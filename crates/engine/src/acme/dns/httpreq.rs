//! lego's generic `httpreq` provider, for a DNS that Helvetia has no API client of: a small
//! service of the user's takes `POST <endpoint>/present` and `POST <endpoint>/cleanup` with
//! `{"fqdn": "_acme-challenge.example.com.", "value": "…"}` (lego's default mode), optionally
//! behind HTTP basic authentication. Any 2xx answer is success.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::{DnsError, DnsProvider, REQUEST_TIMEOUT, transport_error};
use crate::outbound::Outbound;

/// The `httpreq` provider at `endpoint`.
pub struct HttpReq {
    endpoint: url::Url,
    basic_auth: Option<(String, String)>,
    outbound: Arc<Outbound>,
}

impl std::fmt::Debug for HttpReq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpReq")
            .field("endpoint", &self.endpoint.as_str())
            .field(
                "basic_auth",
                &self.basic_auth.as_ref().map(|(user, _)| user),
            )
            .finish_non_exhaustive()
    }
}

impl HttpReq {
    /// `endpoint` is the base URL (`/present` and `/cleanup` are appended to its path);
    /// `basic_auth` is a user name and password.
    pub fn new(
        outbound: Arc<Outbound>,
        endpoint: url::Url,
        basic_auth: Option<(String, String)>,
    ) -> HttpReq {
        crate::acme::install_crypto_provider();
        HttpReq {
            endpoint,
            basic_auth,
            outbound,
        }
    }

    async fn call(&self, action: &str, fqdn: &str, value: &str) -> Result<(), DnsError> {
        let mut url = self.endpoint.clone();
        let path = format!("{}/{action}", url.path().trim_end_matches('/'));
        url.set_path(&path);
        let client = self
            .outbound
            .http_client(&url, REQUEST_TIMEOUT)
            .await
            .map_err(|e| DnsError(format!("{url}: {e}")))?;
        let mut request = client
            .post(url.clone())
            .json(&serde_json::json!({ "fqdn": fqdn, "value": value }));
        if let Some((user, password)) = &self.basic_auth {
            request = request.basic_auth(user, Some(password));
        }
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(url.as_str(), &e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let body: String = body.trim().chars().take(300).collect();
        Err(DnsError(format!("{url} answered {status}: {body}")))
    }
}

impl DnsProvider for HttpReq {
    fn present<'a>(&'a self, fqdn: &'a str, value: &'a str) -> BoxFuture<'a, Result<(), DnsError>> {
        Box::pin(self.call("present", fqdn, value))
    }

    fn clean_up<'a>(
        &'a self,
        fqdn: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), DnsError>> {
        Box::pin(self.call("cleanup", fqdn, value))
    }
}
