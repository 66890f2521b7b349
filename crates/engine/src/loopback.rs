//! An HTTP client for daemons Helvetia runs on loopback (Traefik's API, the registry): plain
//! HTTP, never through a proxy.

use std::sync::Arc;
use std::time::Duration;

/// A client for plain HTTP on loopback, each request cut off after `timeout`.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    // The client still needs a TLS configuration; giving it one (with no trusted roots) keeps
    // it independent of a process-wide crypto provider.
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| error.to_string())?
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        // An `HTTP_PROXY` in the environment must not send loopback requests elsewhere.
        .no_proxy()
        .timeout(timeout)
        .build()
        .map_err(|error| error.to_string())
}
