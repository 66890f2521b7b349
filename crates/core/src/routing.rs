//! The routing table: which hostnames go to which backends. The edge router (Traefik today, a
//! built-in proxy later) is driven by nothing else — it is told the whole table, never patched.

use std::collections::BTreeMap;
use std::fmt;

use crate::domain::Hsts;

/// One backend a route balances over: a container's address on its project network.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Backend {
    pub address: String,
    pub port: u16,
}

impl Backend {
    pub fn url(&self) -> String {
        if self.address.contains(':') {
            format!("http://[{}]:{}", self.address, self.port)
        } else {
            format!("http://{}:{}", self.address, self.port)
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}

/// A service's route: its hostnames and the backends serving it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Route {
    /// A stable, unique name: `<project>_<service>` (`_` cannot appear in either name, so two
    /// services never share one), `<project>_<service>_domain<id>` for a domain routed apart.
    pub name: String,
    pub hostnames: Vec<String>,
    /// Only requests whose path starts with this (`/api`): a domain shared between services.
    /// With no hostnames, the path on every host (Helvetia's own `/.well-known/…`).
    pub path_prefix: Option<String>,
    /// Every request is answered with a permanent redirect to this host, path and query kept
    /// (an alias to its primary domain); the backends are not used.
    pub redirect_to: Option<String>,
    /// Requests need these credentials (a domain's HTTP basic auth).
    pub basic_auth: Option<BasicAuth>,
    /// The HSTS header its HTTPS answers carry, once all its hosts have a certificate.
    pub hsts: Option<Hsts>,
    pub backends: Vec<Backend>,
}

/// The credentials a route asks for: a user and the bcrypt hash of its password.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct BasicAuth {
    pub user: String,
    /// bcrypt (`$2y$…`), which the edge router checks requests against; not in debug output
    /// nor serialised, as hashes of short passwords can be brute-forced.
    #[serde(skip)]
    pub hash: String,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A certificate the edge router serves (chosen by SNI) for its hostnames.
#[derive(Clone, PartialEq, Eq)]
pub struct ServedCertificate {
    pub hostnames: Vec<String>,
    pub chain_pem: String,
    /// The private key, in PEM: never in debug output.
    pub key_pem: String,
}

impl fmt::Debug for ServedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServedCertificate")
            .field("hostnames", &self.hostnames)
            .finish_non_exhaustive()
    }
}

/// Every route the edge router should serve, keyed by route name so rendering is stable, and
/// the certificates it serves them with over HTTPS.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RoutingTable {
    routes: BTreeMap<String, Route>,
    #[serde(skip)]
    certificates: Vec<ServedCertificate>,
}

impl RoutingTable {
    pub fn new() -> RoutingTable {
        RoutingTable::default()
    }

    /// Adds or replaces a route. Hostnames and backends are sorted and deduplicated so equal
    /// tables render identically.
    pub fn insert(&mut self, mut route: Route) {
        route.hostnames.sort();
        route.hostnames.dedup();
        route.backends.sort();
        route.backends.dedup();
        self.routes.insert(route.name.clone(), route);
    }

    /// Adds a certificate to serve.
    pub fn serve_certificate(&mut self, certificate: ServedCertificate) {
        self.certificates.push(certificate);
    }

    pub fn certificates(&self) -> &[ServedCertificate] {
        &self.certificates
    }

    /// The hostnames of `route` that have a certificate — their own, or a wildcard's one
    /// label up: their plain HTTP requests are redirected to HTTPS.
    pub fn secured_hostnames(&self, route: &Route) -> Vec<String> {
        route
            .hostnames
            .iter()
            .filter(|host| {
                self.certificates.iter().any(|certificate| {
                    certificate
                        .hostnames
                        .iter()
                        .any(|name| crate::certificate::covers(name, host))
                })
            })
            .cloned()
            .collect()
    }

    pub fn route(&self, name: &str) -> Option<&Route> {
        self.routes.get(name)
    }

    pub fn route_mut(&mut self, name: &str) -> Option<&mut Route> {
        self.routes.get_mut(name)
    }

    /// Routes the edge router publishes: every route with a hostname or a path. One without backends —
    /// a service not deployed yet, stopped, restarting, or between the stop and the start of a
    /// `recreate` deploy — is published too, so its address answers 503 (try again later)
    /// rather than 404 (no such site).
    pub fn published(&self) -> impl Iterator<Item = &Route> {
        self.routes
            .values()
            .filter(|route| !route.hostnames.is_empty() || route.path_prefix.is_some())
    }
}

/// The route name of a service.
pub fn route_name(project: &str, service: &str) -> String {
    format!("{project}_{service}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_certificate_secures_the_hosts_one_label_under_it() {
        let mut table = RoutingTable::new();
        table.serve_certificate(ServedCertificate {
            hostnames: vec!["*.shop.example".into(), "exact.example".into()],
            chain_pem: String::new(),
            key_pem: String::new(),
        });
        let route = Route {
            name: "p_web".into(),
            hostnames: vec![
                "a.shop.example".into(),
                "*.shop.example".into(),
                "a.b.shop.example".into(),
                "shop.example".into(),
                "exact.example".into(),
                "other.example".into(),
            ],
            path_prefix: None,
            redirect_to: None,
            basic_auth: None,
            hsts: None,
            backends: vec![],
        };
        assert_eq!(
            table.secured_hostnames(&route),
            ["a.shop.example", "*.shop.example", "exact.example"]
        );
    }
}
