//! Where the server may connect on a user's behalf: the rules of the one outbound policy.
//!
//! Every request Helvetia makes to an address a user chose (a repository today; later OIDC key
//! sets, webhooks, registries, …) must pass [`DestinationPolicy`]: a literal address when the
//! user names it, and every address a name resolves to before connecting (the adapter in
//! `engine::outbound` resolves and pins). Link-local and cloud metadata addresses are refused
//! always: from a server they hand out instance credentials. Loopback and private networks are
//! refused unless the operator allows them, because they reach services that trust the host's
//! network (databases, the engine's API, Helvetia's own).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What the operator allows beyond public addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestinationPolicy {
    /// Loopback, private (RFC 1918), shared (CGNAT) and unique-local addresses, for a server
    /// whose repositories live on its own network (`--allow-private-destinations`).
    pub allow_private: bool,
}

/// What kind of network an address belongs to, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    Public,
    Loopback,
    /// RFC 1918, CGNAT (100.64.0.0/10), benchmarking, unique-local (fc00::/7).
    Private,
    LinkLocal,
    /// A cloud provider's instance metadata service.
    Metadata,
    /// Unspecified, multicast, broadcast or reserved: never a server to connect to.
    NotUnicast,
}

/// Addresses of instance metadata services outside the link-local range, and the link-local
/// one, named so the error says what it is.
const METADATA_V4: [Ipv4Addr; 3] = [
    Ipv4Addr::new(169, 254, 169, 254),
    // Alibaba Cloud.
    Ipv4Addr::new(100, 100, 100, 200),
    // Azure's wire server, a public-looking address only the host answers.
    Ipv4Addr::new(168, 63, 129, 16),
];
// AWS's IPv6 metadata endpoint.
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)];

/// Names of metadata services (GCP, AWS), refused without resolving them: the host's resolver
/// answers them with a metadata address even when ours does not.
const METADATA_NAMES: [&str; 5] = [
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
];

pub fn classify(ip: IpAddr) -> AddressKind {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressKind {
    let [a, b, ..] = ip.octets();
    if METADATA_V4.contains(&ip) {
        AddressKind::Metadata
    } else if ip.is_link_local() {
        AddressKind::LinkLocal
    } else if ip.is_loopback() {
        AddressKind::Loopback
    } else if a == 0 || ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        // 0.0.0.0 connects to the host itself on Linux; the rest route nowhere.
        AddressKind::NotUnicast
    } else if ip.is_private()
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (18..20).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
    {
        AddressKind::Private
    } else {
        AddressKind::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressKind {
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    let first = ip.segments()[0];
    if METADATA_V6.contains(&ip) {
        AddressKind::Metadata
    } else if ip.is_loopback() {
        AddressKind::Loopback
    } else if ip.is_unspecified() || ip.is_multicast() {
        AddressKind::NotUnicast
    } else if first & 0xffc0 == 0xfe80 {
        AddressKind::LinkLocal
    } else if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfec0 {
        // Unique-local, and the deprecated site-local range still routed inside some networks.
        AddressKind::Private
    } else {
        AddressKind::Public
    }
}

/// The IPv4 address an IPv6 one reaches: IPv4-mapped (`::ffff:a.b.c.d`, which the kernel
/// sends as IPv4), NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`) carry one inside.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let from = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = ip.to_ipv4_mapped() {
        Some(v4)
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(from(s[6], s[7]))
    } else if s[0] == 0x2002 {
        Some(from(s[1], s[2]))
    } else {
        None
    }
}

/// Why a destination was refused, phrased for the user who configured it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The host as the user wrote it.
    pub host: String,
    /// The address it is or resolved to, when there is one.
    pub address: Option<IpAddr>,
    pub kind: AddressKind,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.host)?;
        if let Some(address) = self.address
            && address.to_string() != self.host.trim_matches(['[', ']'])
        {
            write!(f, " resolves to {address}, which")?;
        }
        let why = match self.kind {
            AddressKind::Metadata => "is a cloud metadata service, never reachable from Helvetia",
            AddressKind::LinkLocal => {
                "is a link-local address (169.254.0.0/16, fe80::/10), never reachable from Helvetia"
            }
            AddressKind::NotUnicast => "is not an address a server can have",
            AddressKind::Loopback => {
                "is this machine (loopback); this server refuses it (see --allow-private-destinations)"
            }
            AddressKind::Private => {
                "is a private network address; this server refuses it (see --allow-private-destinations)"
            }
            AddressKind::Public => "is allowed",
        };
        write!(f, " {why}")
    }
}

impl std::error::Error for Refused {}

impl DestinationPolicy {
    /// Checks one address a connection would go to.
    pub fn check_address(&self, host: &str, address: IpAddr) -> Result<(), Refused> {
        let kind = classify(address);
        let allowed = match kind {
            AddressKind::Public => true,
            AddressKind::Loopback | AddressKind::Private => self.allow_private,
            AddressKind::LinkLocal | AddressKind::Metadata | AddressKind::NotUnicast => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(Refused {
                host: host.to_owned(),
                address: Some(address),
                kind,
            })
        }
    }

    /// Checks a host as written in a URL, before any resolution: a literal address (in any
    /// spelling a URL parser or `inet_aton` accepts, e.g. `0x7f.1`), a metadata service's name,
    /// and `localhost`. Any other name passes here and is checked once resolved.
    pub fn check_host(&self, host: &str) -> Result<HostCheck, Refused> {
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        if let Some(address) = literal_address(&name) {
            self.check_address(host, address)?;
            return Ok(HostCheck::Address(address));
        }
        let refused = |kind| Refused {
            host: host.to_owned(),
            address: None,
            kind,
        };
        if METADATA_NAMES.contains(&name.as_str()) {
            return Err(refused(AddressKind::Metadata));
        }
        if (name == "localhost" || name.ends_with(".localhost")) && !self.allow_private {
            return Err(refused(AddressKind::Loopback));
        }
        Ok(HostCheck::Name(name))
    }
}

/// A host that passed [`DestinationPolicy::check_host`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostCheck {
    /// A literal address: nothing to resolve.
    Address(IpAddr),
    /// A name (lowercase, without a trailing dot): its addresses must be checked too.
    Name(String),
}

/// The address `host` spells, with or without IPv6 brackets, in the forms URL parsers and the
/// C library accept (`127.1`, `0x7f000001`, `017700000001`).
fn literal_address(host: &str) -> Option<IpAddr> {
    if let Ok(address) = host.parse() {
        return Some(address);
    }
    match url::Host::parse(host).ok()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: DestinationPolicy = DestinationPolicy {
        allow_private: false,
    };
    const PRIVATE_OK: DestinationPolicy = DestinationPolicy {
        allow_private: true,
    };

    fn kind(address: &str) -> AddressKind {
        classify(address.parse().unwrap())
    }

    #[test]
    fn classifies_addresses() {
        for (address, expected) in [
            ("140.82.112.3", AddressKind::Public),
            ("2606:4700::6810:84e5", AddressKind::Public),
            ("127.0.0.1", AddressKind::Loopback),
            ("127.8.9.10", AddressKind::Loopback),
            ("::1", AddressKind::Loopback),
            ("10.0.0.5", AddressKind::Private),
            ("172.16.0.1", AddressKind::Private),
            ("192.168.1.1", AddressKind::Private),
            ("100.64.0.1", AddressKind::Private),
            ("198.18.0.1", AddressKind::Private),
            ("fd12::1", AddressKind::Private),
            ("169.254.1.1", AddressKind::LinkLocal),
            ("fe80::1", AddressKind::LinkLocal),
            ("169.254.169.254", AddressKind::Metadata),
            ("100.100.100.200", AddressKind::Metadata),
            ("168.63.129.16", AddressKind::Metadata),
            ("fd00:ec2::254", AddressKind::Metadata),
            ("0.0.0.0", AddressKind::NotUnicast),
            ("::", AddressKind::NotUnicast),
            ("224.0.0.1", AddressKind::NotUnicast),
            ("255.255.255.255", AddressKind::NotUnicast),
            ("ff02::1", AddressKind::NotUnicast),
            // IPv6 spellings of IPv4 addresses are what they carry.
            ("::ffff:169.254.169.254", AddressKind::Metadata),
            ("::ffff:127.0.0.1", AddressKind::Loopback),
            ("64:ff9b::a00:5", AddressKind::Private),
            ("2002:a9fe:a9fe::1", AddressKind::Metadata),
        ] {
            assert_eq!(kind(address), expected, "{address}");
        }
    }

    #[test]
    fn link_local_and_metadata_are_refused_even_when_private_is_allowed() {
        for host in [
            "169.254.169.254",
            "[fd00:ec2::254]",
            "100.100.100.200",
            "[fe80::1]",
            "169.254.10.1",
            "0.0.0.0",
            "metadata.google.internal",
            "Metadata.Google.Internal.",
            "instance-data",
        ] {
            assert!(PRIVATE_OK.check_host(host).is_err(), "{host}");
            assert!(STRICT.check_host(host).is_err(), "{host}");
        }
    }

    #[test]
    fn loopback_and_private_need_the_setting() {
        for host in [
            "127.0.0.1",
            "127.1",
            "0x7f000001",
            "[::1]",
            "10.0.0.5",
            "100.64.1.1",
            "[fd12::1]",
            "[::ffff:10.0.0.1]",
            "localhost",
            "api.localhost",
        ] {
            assert!(STRICT.check_host(host).is_err(), "{host}");
            assert!(PRIVATE_OK.check_host(host).is_ok(), "{host}");
        }
    }

    #[test]
    fn names_pass_until_resolved_and_public_addresses_pass() {
        assert_eq!(
            STRICT.check_host("GitHub.com."),
            Ok(HostCheck::Name("github.com".into()))
        );
        assert_eq!(
            STRICT.check_host("140.82.112.3"),
            Ok(HostCheck::Address("140.82.112.3".parse().unwrap()))
        );
    }

    #[test]
    fn refusals_say_what_and_how_to_allow_it() {
        let literal = STRICT.check_host("127.0.0.1").unwrap_err().to_string();
        assert_eq!(
            literal,
            "`127.0.0.1` is this machine (loopback); this server refuses it (see \
             --allow-private-destinations)"
        );
        let resolved = PRIVATE_OK
            .check_address("evil.example", "169.254.169.254".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert_eq!(
            resolved,
            "`evil.example` resolves to 169.254.169.254, which is a cloud metadata service, \
             never reachable from Helvetia"
        );
    }
}
