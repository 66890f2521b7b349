//! How Helvetia itself is reached from outside: its public URL (`--public-url`, the host at
//! which the edge router serves Helvetia's own API), and the proxies whose `X-Forwarded-For`
//! it believes (`--trusted-proxies`) when it works out a client's address.
//!
//! The client address is what the audit log records and rate limits key on, so it must never
//! be something a client can choose: [`TrustedProxies::client`] believes a forwarded address
//! only as far as a chain of trusted proxies vouches for it.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use url::Url;

/// The name of the control plane's route in the routing table. Service routes are named
/// `<project>_<service>` and always hold a `_`, so none can take this name.
pub const CONTROL_PLANE_ROUTE: &str = "helvetia";

/// Helvetia's public URL: an `http` or `https` origin (a scheme, a host, maybe a port; no
/// path, query, fragment or credentials), e.g. `https://helvetia.example.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(Url);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublicUrlError {
    #[error("`{0}` is not a URL (e.g. https://helvetia.example.com)")]
    NotAUrl(String),
    #[error("`{0}` must start with http:// or https://")]
    Scheme(String),
    #[error("`{0}` must name a host by its DNS name (e.g. https://helvetia.example.com)")]
    Host(String),
    #[error("`{0}` must be an origin only: no path, query or fragment")]
    Path(String),
    #[error("`{0}` must not carry a user name or password")]
    Credentials(String),
    #[error(
        "`{url}` has the form of a service's address (<service>.<project>.{base_domain}), which \
         a project could take; use a host that is not two labels under the base domain, e.g. \
         helvetia.{base_domain}"
    )]
    ServiceAddress { url: String, base_domain: String },
}

impl PublicUrl {
    pub fn parse(text: &str) -> Result<PublicUrl, PublicUrlError> {
        let url = Url::parse(text).map_err(|_| PublicUrlError::NotAUrl(text.to_owned()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(PublicUrlError::Scheme(text.to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(PublicUrlError::Credentials(text.to_owned()));
        }
        // The edge router matches the route by its host name; an address has none to match.
        if !matches!(url.host(), Some(url::Host::Domain(_))) {
            return Err(PublicUrlError::Host(text.to_owned()));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(PublicUrlError::Path(text.to_owned()));
        }
        Ok(PublicUrl(url))
    }

    pub fn url(&self) -> &Url {
        &self.0
    }

    /// The host name, lower-cased, as the edge router matches it.
    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }

    /// Refuses a host that a service could also be given (`<service>.<project>.<base
    /// domain>`): whoever named a project so would take Helvetia's own address.
    pub fn check_base_domain(&self, base_domain: &str) -> Result<(), PublicUrlError> {
        let labels_above_base = self
            .host()
            .strip_suffix(base_domain)
            .and_then(|rest| rest.strip_suffix('.'))
            .map(|rest| rest.split('.').count());
        if labels_above_base == Some(2) {
            return Err(PublicUrlError::ServiceAddress {
                url: self.to_string(),
                base_domain: base_domain.to_owned(),
            });
        }
        Ok(())
    }

    /// Whether clients reach it over TLS (cookies are then `Secure`).
    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }
}

impl fmt::Display for PublicUrl {
    /// Without the trailing `/` the parser adds: `https://helvetia.example.com`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str().trim_end_matches('/'))
    }
}

/// A block of addresses: `10.0.0.0/8`, `2001:db8::/32`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IP address or a CIDR block (e.g. 10.0.0.0/8, 2001:db8::/32, 192.0.2.7)")]
pub struct CidrError(String);

impl Cidr {
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, canonical(address)) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Cidr, CidrError> {
        let error = || CidrError(text.to_owned());
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let network = canonical(address.parse::<IpAddr>().map_err(|_| error())?);
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) if prefix.bytes().all(|b| b.is_ascii_digit()) => {
                prefix.parse::<u8>().map_err(|_| error())?
            }
            Some(_) => return Err(error()),
            None => width,
        };
        if prefix > width {
            return Err(error());
        }
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// An IPv4 address written as IPv6 (`::ffff:192.0.2.7`, what a dual-stack listener reports)
/// is the IPv4 address: lists and limits treat both alike.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

/// The proxies whose `X-Forwarded-For` is believed. None by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn new(blocks: impl IntoIterator<Item = Cidr>) -> TrustedProxies {
        TrustedProxies(blocks.into_iter().collect())
    }

    /// A comma- or space-separated list, as `--trusted-proxies` takes it.
    pub fn parse(list: &str) -> Result<TrustedProxies, CidrError> {
        list.split([',', ' '])
            .filter(|item| !item.trim().is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    /// Adds the loopback addresses: the edge router on this host relays the public URL's
    /// requests from there.
    pub fn with_loopback(mut self) -> TrustedProxies {
        for loopback in ["127.0.0.0/8", "::1/128"] {
            let block: Cidr = loopback.parse().expect("a valid block");
            if !self.0.contains(&block) {
                self.0.push(block);
            }
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn blocks(&self) -> &[Cidr] {
        &self.0
    }

    pub fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|block| block.contains(address))
    }

    /// The client's address, given the connection's `peer` address and the request's
    /// `X-Forwarded-For` values (each header line, in order).
    ///
    /// A peer that is not trusted is the client: what it says about others is ignored. A
    /// trusted peer relays for the address it appended last (the right-most entry); that one
    /// is the client unless it is trusted too, in which case it relayed for the entry before
    /// it — and so on. An entry that is not an address ends the walk at the trusted proxy
    /// that passed it on (the client behind it cannot be named); a chain of trusted proxies
    /// only is reported by its far end.
    pub fn client<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let entries: Vec<&str> = forwarded_for
            .into_iter()
            .flat_map(|line| line.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for entry in entries.iter().rev() {
            let Some(address) = forwarded_address(entry) else {
                return client;
            };
            client = canonical(address);
            if !self.trusts(client) {
                return client;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, maybe with a port (`192.0.2.7:5123`,
/// `[2001:db8::1]:5123`), as proxies write them.
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    if let Ok(address) = entry.parse::<IpAddr>() {
        return Some(address);
    }
    entry
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|address| address.ip())
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let blocks: Vec<String> = self.0.iter().map(Cidr::to_string).collect();
        f.write_str(&blocks.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_public_url_is_an_http_origin_with_a_host_name() {
        let url = PublicUrl::parse("https://Helvetia.Example.com").unwrap();
        assert_eq!(url.host(), "helvetia.example.com");
        assert!(url.is_https());
        assert_eq!(url.to_string(), "https://helvetia.example.com");
        let local = PublicUrl::parse("http://helvetia.localhost:8080/").unwrap();
        assert_eq!(local.to_string(), "http://helvetia.localhost:8080");
        assert!(!local.is_https());
        for (text, expected) in [
            ("helvetia.example.com", PublicUrlError::NotAUrl("".into())),
            (
                "ftp://helvetia.example.com",
                PublicUrlError::Scheme("".into()),
            ),
            ("https://192.0.2.7", PublicUrlError::Host("".into())),
            ("https://[::1]:8080", PublicUrlError::Host("".into())),
            (
                "https://helvetia.example.com/api",
                PublicUrlError::Path("".into()),
            ),
            (
                "https://helvetia.example.com/?a=b",
                PublicUrlError::Path("".into()),
            ),
            (
                "https://helvetia.example.com/#top",
                PublicUrlError::Path("".into()),
            ),
            (
                "https://me:pw@helvetia.example.com",
                PublicUrlError::Credentials("".into()),
            ),
        ] {
            let error = PublicUrl::parse(text).unwrap_err();
            assert_eq!(
                std::mem::discriminant(&error),
                std::mem::discriminant(&expected),
                "{text}: {error}"
            );
            assert!(error.to_string().contains(text), "{error}");
        }
    }

    #[test]
    fn a_public_host_cannot_be_a_service_address() {
        let check = |url: &str| {
            PublicUrl::parse(url)
                .unwrap()
                .check_base_domain("example.com")
        };
        assert!(check("https://helvetia.example.com").is_ok());
        assert!(check("https://a.b.c.example.com").is_ok());
        assert!(check("https://helvetia.example.org").is_ok());
        let error = check("https://web.demo.example.com").unwrap_err();
        assert!(
            error.to_string().contains("helvetia.example.com"),
            "{error}"
        );
    }

    #[test]
    fn blocks_contain_their_addresses_only() {
        let block: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(block.contains(ip("10.1.255.7")));
        assert!(!block.contains(ip("10.2.0.1")));
        assert!(block.contains(ip("::ffff:10.1.0.9")), "IPv4-mapped is IPv4");
        let single: Cidr = "192.0.2.7".parse().unwrap();
        assert!(single.contains(ip("192.0.2.7")) && !single.contains(ip("192.0.2.8")));
        let everything: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(everything.contains(ip("203.0.113.1")) && !everything.contains(ip("::1")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/+8",
            "10.0.0/8",
            "host",
            "10.0.0.0/",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(
            trusted.client(ip("203.0.113.9"), ["198.51.100.1"]),
            ip("203.0.113.9")
        );
        // No list: nobody's header is believed.
        assert_eq!(
            TrustedProxies::default().client(ip("127.0.0.1"), ["198.51.100.1"]),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn a_trusted_peer_relays_for_the_right_most_untrusted_entry() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, 192.0.2.7").unwrap();
        let cases: [(&[&str], &str, &str); 6] = [
            (&["198.51.100.1"], "198.51.100.1", "one hop"),
            (
                &["1.1.1.1, 198.51.100.1", "192.0.2.7:4711"],
                "198.51.100.1",
                "a spoofed entry first, two trusted proxies appended theirs",
            ),
            (&[], "10.0.0.2", "no header: the proxy's own request"),
            (
                &["10.9.9.9, 192.0.2.7"],
                "10.9.9.9",
                "only trusted hops: the far end",
            ),
            (
                &["198.51.100.1, unknown, 10.0.0.3"],
                "10.0.0.3",
                "garbage stops the walk at the trusted hop that passed it on",
            ),
            (
                &["[2001:db8::5]:443"],
                "2001:db8::5",
                "an entry with a port",
            ),
        ];
        for (forwarded_for, client, case) in cases {
            assert_eq!(
                trusted.client(ip("10.0.0.2"), forwarded_for.iter().copied()),
                ip(client),
                "{case}"
            );
        }
    }

    #[test]
    fn loopback_is_added_once() {
        let trusted = TrustedProxies::default().with_loopback().with_loopback();
        assert_eq!(trusted.blocks().len(), 2);
        assert!(trusted.trusts(ip("127.0.0.1")) && trusted.trusts(ip("::1")));
        assert_eq!(trusted.to_string(), "127.0.0.0/8, ::1/128");
    }
}
