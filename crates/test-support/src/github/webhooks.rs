//! Webhook deliveries as GitHub sends them: a JSON body signed with the App's webhook secret
//! (`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`), with `X-GitHub-Event`, a
//! fresh `X-GitHub-Delivery` GUID (a redelivery reuses it) and Hookshot's user agent.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::state::Shared;

/// `sha256=<hex>`, the `X-Hub-Signature-256` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A GUID in GitHub's delivery format (`72d3162e-cc78-11e3-81ab-4c9367dc0958`).
fn delivery_guid() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

impl Shared {
    /// Posts `body` to `url` as delivery `guid` of `event`, signed with the App's webhook
    /// secret; the receiver's status, or why it could not be sent.
    async fn send_delivery(
        &self,
        url: &str,
        guid: &str,
        event: &str,
        body: Vec<u8>,
    ) -> Result<reqwest::StatusCode, String> {
        let (secret, app_id) = {
            let state = self.lock();
            let app = state
                .app()
                .ok_or("no App to sign deliveries: create one first")?;
            (app.webhook_secret.clone(), app.id)
        };
        crate::http_client()
            .post(url)
            .header("content-type", "application/json")
            .header("user-agent", "GitHub-Hookshot/fake")
            .header("x-github-event", event)
            .header("x-github-delivery", guid)
            .header("x-github-hook-installation-target-type", "integration")
            .header("x-github-hook-installation-target-id", app_id.to_string())
            .header("x-hub-signature-256", signature(&secret, &body))
            .body(body)
            .send()
            .await
            .map(|response| response.status())
            .map_err(|error| format!("delivering {event} to {url}: {error}"))
    }

    /// A new delivery of `payload`; its GUID and the receiver's status.
    pub(crate) async fn deliver(
        &self,
        url: &str,
        event: &str,
        payload: &serde_json::Value,
    ) -> Result<(String, reqwest::StatusCode), String> {
        let guid = delivery_guid();
        let body = payload.to_string().into_bytes();
        self.lock()
            .deliveries
            .push((guid.clone(), event.to_owned(), body.clone()));
        let status = self.send_delivery(url, &guid, event, body).await?;
        Ok((guid, status))
    }

    /// Sends delivery `guid` again, byte for byte, as GitHub's "Redeliver" does.
    pub(crate) async fn redeliver(
        &self,
        url: &str,
        guid: &str,
    ) -> Result<reqwest::StatusCode, String> {
        let (event, body) = {
            let state = self.lock();
            let (_, event, body) = state
                .deliveries
                .iter()
                .find(|(g, _, _)| g == guid)
                .ok_or_else(|| format!("no delivery {guid}"))?;
            (event.clone(), body.clone())
        };
        self.send_delivery(url, guid, &event, body).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signatures_match_githubs_documented_example() {
        assert_eq!(
            super::signature("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
