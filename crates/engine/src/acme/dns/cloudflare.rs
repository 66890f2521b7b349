//! Cloudflare's DNS API (v4, documented at developers.cloudflare.com/api): the zone is found by
//! name (the longest suffix of the record's name that is a zone of the token's account), the
//! TXT record is created in it, and removed after by listing the zone's TXT records at that
//! name. A bearer API token with `Zone:Read` and `DNS:Edit` is the credential.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{DnsError, DnsProvider, REQUEST_TIMEOUT, transport_error};
use crate::outbound::Outbound;

/// Where Cloudflare's API is.
pub const CLOUDFLARE_API: &str = "https://api.cloudflare.com/client/v4";
/// The TTL of challenge records: Cloudflare's minimum, so a retried order sees a new value soon.
const TXT_TTL: u32 = 120;

/// Cloudflare's DNS API with an API token.
pub struct Cloudflare {
    api: url::Url,
    token: String,
    outbound: Arc<Outbound>,
    /// Zone ids by zone name, as found once.
    zones: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for Cloudflare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cloudflare")
            .field("api", &self.api.as_str())
            .finish_non_exhaustive()
    }
}

/// Cloudflare's answer envelope.
#[derive(Deserialize)]
struct Envelope<T> {
    success: bool,
    #[serde(default)]
    errors: Vec<ApiMessage>,
    result: Option<T>,
}

#[derive(Deserialize)]
struct ApiMessage {
    code: i64,
    message: String,
}

#[derive(Deserialize)]
struct Zone {
    id: String,
    name: String,
}

#[derive(Deserialize)]
struct DnsRecord {
    id: String,
    name: String,
    content: String,
}

impl Cloudflare {
    /// Cloudflare at `api` ([`CLOUDFLARE_API`] but in tests) with API token `token`.
    pub fn new(outbound: Arc<Outbound>, api: url::Url, token: String) -> Cloudflare {
        crate::acme::install_crypto_provider();
        Cloudflare {
            api,
            token,
            outbound,
            zones: Mutex::new(HashMap::new()),
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Result<T, DnsError> {
        let mut url = self.api.clone();
        let full = format!("{}{path}", url.path().trim_end_matches('/'));
        url.set_path(&full);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let client = self
            .outbound
            .http_client(&url, REQUEST_TIMEOUT)
            .await
            .map_err(|e| DnsError(format!("Cloudflare: {e}")))?;
        let mut request = client.request(method, url.clone()).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| transport_error("Cloudflare", &e))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| transport_error("Cloudflare", &e))?;
        let envelope: Envelope<T> = serde_json::from_str(&text).map_err(|_| {
            let text: String = text.trim().chars().take(300).collect();
            DnsError(format!("Cloudflare answered {status}: {text}"))
        })?;
        match envelope {
            Envelope {
                success: true,
                result: Some(result),
                ..
            } => Ok(result),
            Envelope { errors, .. } => {
                let reasons: Vec<String> = errors
                    .iter()
                    .map(|e| format!("{} (code {})", e.message, e.code))
                    .collect();
                Err(DnsError(format!(
                    "Cloudflare answered {status}: {}",
                    if reasons.is_empty() {
                        "no result".to_owned()
                    } else {
                        reasons.join("; ")
                    }
                )))
            }
        }
    }

    /// The zone holding `name` (no trailing dot): its longest suffix Cloudflare has as a zone.
    async fn zone_of(&self, name: &str) -> Result<String, DnsError> {
        let labels: Vec<&str> = name.split('.').collect();
        // Down to two labels: a zone is never a top-level domain.
        for start in 0..labels.len().saturating_sub(1) {
            let candidate = labels[start..].join(".");
            if let Some(id) = self.cached_zones().get(&candidate) {
                return Ok(id.clone());
            }
            let zones: Vec<Zone> = self
                .call(Method::GET, "/zones", &[("name", &candidate)], None)
                .await?;
            if let Some(zone) = zones.into_iter().find(|z| z.name == candidate) {
                self.cached_zones().insert(zone.name, zone.id.clone());
                return Ok(zone.id);
            }
        }
        Err(DnsError(format!(
            "Cloudflare: no zone of this API token holds {name}"
        )))
    }

    fn cached_zones(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        // A panic while holding the lock leaves only a cache behind: keep using it.
        self.zones
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn add(&self, fqdn: &str, value: &str) -> Result<(), DnsError> {
        let name = fqdn.trim_end_matches('.');
        let zone = self.zone_of(name).await?;
        let _: serde_json::Value = self
            .call(
                Method::POST,
                &format!("/zones/{zone}/dns_records"),
                &[],
                Some(serde_json::json!({
                    "type": "TXT", "name": name, "content": value, "ttl": TXT_TTL,
                })),
            )
            .await?;
        Ok(())
    }

    async fn remove(&self, fqdn: &str, value: &str) -> Result<(), DnsError> {
        let name = fqdn.trim_end_matches('.');
        let zone = self.zone_of(name).await?;
        let records: Vec<DnsRecord> = self
            .call(
                Method::GET,
                &format!("/zones/{zone}/dns_records"),
                &[("type", "TXT"), ("name", name)],
                None,
            )
            .await?;
        // Filtered here too, so a filter the API ignored cannot delete another record; and
        // Cloudflare may keep a TXT value quoted: either way it is ours.
        for record in records
            .iter()
            .filter(|r| r.name.eq_ignore_ascii_case(name) && r.content.trim_matches('"') == value)
        {
            let _: serde_json::Value = self
                .call(
                    Method::DELETE,
                    &format!("/zones/{zone}/dns_records/{}", record.id),
                    &[],
                    None,
                )
                .await?;
        }
        Ok(())
    }
}

impl DnsProvider for Cloudflare {
    fn present<'a>(&'a self, fqdn: &'a str, value: &'a str) -> BoxFuture<'a, Result<(), DnsError>> {
        Box::pin(self.add(fqdn, value))
    }

    fn clean_up<'a>(
        &'a self,
        fqdn: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), DnsError>> {
        Box::pin(self.remove(fqdn, value))
    }
}
