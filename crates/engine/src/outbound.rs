//! The one way out: every connection to an address a user chose resolves its host here, has
//! every address checked against the core's [`DestinationPolicy`], and connects only to the
//! addresses this answered — never resolving the name again, so a second DNS answer (a
//! rebinding) cannot point the connection somewhere the check did not see.
//!
//! The git adapter pins git to them (`git.rs`). An HTTP client (OIDC key sets, webhooks, a
//! registry) does the same with `reqwest::ClientBuilder::resolve_to_addrs(host, &addresses)`
//! and redirects off (or each redirect's target passed through [`Outbound::resolve`] again).
//! Domain checks use the same resolver, so "what Helvetia sees" is one answer everywhere.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use helvetia_core::outbound::{DestinationPolicy, HostCheck, Refused};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

/// Which DNS server answers for outbound requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ResolverSetting {
    /// The system's (`/etc/resolv.conf`, `/etc/hosts`).
    #[default]
    System,
    /// This server alone, over UDP and TCP; `/etc/hosts` is not read.
    Server(SocketAddr),
}

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("destination not allowed: {0}")]
    Refused(#[from] Refused),
    #[error("`{host}` could not be resolved")]
    Unresolved { host: String },
    #[error("the DNS resolver could not be set up: {0}")]
    Resolver(String),
    #[error("`{0}` names no host and port to connect to")]
    NoHost(String),
    #[error("an HTTP client could not be set up: {0}")]
    Client(String),
}

/// The destination policy with the resolver it checks names through.
pub struct Outbound {
    policy: DestinationPolicy,
    resolver: TokioResolver,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Outbound {
    pub fn new(
        policy: DestinationPolicy,
        resolver: ResolverSetting,
    ) -> Result<Outbound, OutboundError> {
        let setup = |e: hickory_resolver::net::NetError| OutboundError::Resolver(e.to_string());
        let mut builder = match resolver {
            ResolverSetting::System => TokioResolver::builder_tokio().map_err(setup)?,
            ResolverSetting::Server(address) => {
                let mut server = NameServerConfig::udp_and_tcp(address.ip());
                for connection in &mut server.connections {
                    connection.port = address.port();
                }
                let mut builder = TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    TokioRuntimeProvider::default(),
                );
                builder.options_mut().use_hosts_file = ResolveHosts::Never;
                builder
            }
        };
        // Both families, so an address of either that the policy refuses is seen.
        builder.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        Ok(Outbound {
            policy,
            resolver: builder.build().map_err(setup)?,
        })
    }

    /// The addresses to connect to for `host` (as a URL spells it) and `port`, each allowed by
    /// the policy. A name with any refused address is refused whole: which of its addresses a
    /// client would pick is not ours to know.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, OutboundError> {
        let name = match self.policy.check_host(host)? {
            HostCheck::Address(address) => return Ok(vec![SocketAddr::new(address, port)]),
            HostCheck::Name(name) => name,
        };
        let unresolved = || OutboundError::Unresolved {
            host: host.to_owned(),
        };
        let addresses: Vec<IpAddr> = match self.resolver.lookup_ip(name.as_str()).await {
            Ok(lookup) => lookup.iter().collect(),
            Err(error) => {
                tracing::debug!(host, %error, "resolving an outbound destination failed");
                return Err(unresolved());
            }
        };
        if addresses.is_empty() {
            return Err(unresolved());
        }
        for address in &addresses {
            self.policy.check_address(host, *address)?;
        }
        Ok(addresses
            .into_iter()
            .map(|address| SocketAddr::new(address, port))
            .collect())
    }

    /// What the resolver answers for `name` (A and AAAA), with no policy applied: only for
    /// comparing the answer (a custom domain's check), never for connecting.
    pub async fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, OutboundError> {
        match self.resolver.lookup_ip(name).await {
            Ok(lookup) => Ok(lookup.iter().collect()),
            Err(error) => {
                tracing::debug!(name, %error, "looking a name up failed");
                Err(OutboundError::Unresolved {
                    host: name.to_owned(),
                })
            }
        }
    }

    /// An HTTP client for `url`'s host that connects only to the addresses
    /// [`Outbound::resolve`] allowed for it, follows no redirect and gives up after `timeout`.
    pub async fn http_client(
        &self,
        url: &url::Url,
        timeout: Duration,
    ) -> Result<reqwest::Client, OutboundError> {
        self.http_client_builder(url, timeout)
            .await?
            .build()
            .map_err(|e| OutboundError::Client(e.to_string()))
    }

    /// What [`Outbound::http_client`] builds, for a caller that adds to it (trusted roots)
    /// before building; the address pinning and the redirect policy must stay as they are.
    pub async fn http_client_builder(
        &self,
        url: &url::Url,
        timeout: Duration,
    ) -> Result<reqwest::ClientBuilder, OutboundError> {
        let no_host = || OutboundError::NoHost(url.as_str().to_owned());
        let host = url.host_str().ok_or_else(no_host)?;
        let port = url.port_or_known_default().ok_or_else(no_host)?;
        let addresses = self.resolve(host, port).await?;
        Ok(reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .resolve_to_addrs(host, &addresses)
            .user_agent("helvetia"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use helvetia_test_support::dns::TestDns;

    use super::*;

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn outbound(dns: &TestDns, allow_private: bool) -> Outbound {
        let policy = DestinationPolicy { allow_private };
        Outbound::new(policy, ResolverSetting::Server(dns.address())).unwrap()
    }

    /// What a test may connect to: nothing off this machine.
    fn on_this_machine(addresses: &[SocketAddr]) -> &[SocketAddr] {
        assert!(
            addresses.iter().all(|a| a.ip().is_loopback()),
            "a test would connect off this machine: {addresses:?}"
        );
        addresses
    }

    #[tokio::test]
    async fn literal_addresses_are_refused_without_a_lookup() {
        let dns = TestDns::start(&[]).await;
        let strict = outbound(&dns, false);
        let private_ok = outbound(&dns, true);
        for host in ["169.254.169.254", "[fe80::1]", "100.100.100.200", "0.0.0.0"] {
            assert!(private_ok.resolve(host, 80).await.is_err(), "{host}");
        }
        for host in ["127.0.0.1", "[::1]", "10.0.0.5", "0x7f.1"] {
            assert!(strict.resolve(host, 80).await.is_err(), "{host}");
        }
        let allowed = private_ok.resolve("127.0.0.1", 8080).await.unwrap();
        assert_eq!(
            on_this_machine(&allowed),
            ["127.0.0.1:8080".parse().unwrap()]
        );
        assert_eq!(dns.queries(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn names_are_checked_as_the_configured_resolver_answers_them() {
        let link_local: IpAddr = "169.254.169.254".parse().unwrap();
        let dns = TestDns::start(&[
            ("internal.test", LOOPBACK),
            ("six.test", "::1".parse().unwrap()),
            ("metadata.test", link_local),
            ("mixed.test", LOOPBACK),
            ("mixed.test", "fe80::1".parse().unwrap()),
        ])
        .await;
        let strict = outbound(&dns, false);
        let private_ok = outbound(&dns, true);

        let refused = strict.resolve("internal.test", 443).await.unwrap_err();
        assert_eq!(
            refused.to_string(),
            "destination not allowed: `internal.test` resolves to 127.0.0.1, which is this machine \
             (loopback); this server refuses it (see --allow-private-destinations)"
        );
        let pinned = private_ok.resolve("Internal.Test.", 443).await.unwrap();
        assert_eq!(on_this_machine(&pinned), ["127.0.0.1:443".parse().unwrap()]);
        let six = private_ok.resolve("six.test", 80).await.unwrap();
        assert_eq!(on_this_machine(&six), ["[::1]:80".parse().unwrap()]);

        // Refused always, and a name with one refused address is refused whole.
        for host in ["metadata.test", "mixed.test"] {
            let error = private_ok.resolve(host, 80).await.unwrap_err();
            assert!(
                matches!(error, OutboundError::Refused(_)),
                "{host}: {error}"
            );
        }
        let missing = private_ok.resolve("nowhere.test", 80).await.unwrap_err();
        assert_eq!(missing.to_string(), "`nowhere.test` could not be resolved");
        assert!(dns.queries().contains(&"internal.test".to_owned()));
    }
}
