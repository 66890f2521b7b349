//! The routing table rendered as Traefik's dynamic configuration, in the TOML the file provider
//! reads. Rendering is pure and deterministic — equal tables give byte-identical files — so the
//! file is always derived from the table and never edited in place.

use std::collections::BTreeMap;

use helvetia_core::routing::{Route, RoutingTable};
use serde::Serialize;

/// The servers transport every Helvetia service uses; it also marks a Traefik service as
/// Helvetia's when confirming through the API.
pub(super) const SERVERS_TRANSPORT: &str = "helvetia";

/// How long Traefik keeps an idle keep-alive connection to a backend open.
///
/// The deploy pipeline drains an old container until it has no open TCP connections. Traefik's
/// default of 90 s would keep pooled, idle connections to the old container open for that long,
/// so every drain would wait for its deadline instead of finishing as soon as the last request
/// has been answered.
pub const BACKEND_IDLE_CONN_TIMEOUT: &str = "2s";

/// The middleware every router uses: a request whose backend cannot be reached (a replica
/// that just crashed, before the monitor has taken it off the route) is sent to the next
/// backend instead of failing. Only connection failures are retried — a request a backend
/// received is never sent twice.
///
/// Its name carries the installation's id, so it also marks the configuration as this
/// installation's: a Traefik that has loaded it reads this installation's files, and only
/// such a Traefik confirms a change ([`super::TraefikApi`]).
pub(super) fn retry_middleware(instance: &str) -> String {
    format!("helvetia-retry-{instance}")
}
const RETRY_ATTEMPTS: u32 = 3;
const RETRY_INTERVAL: &str = "50ms";

#[derive(Serialize)]
struct DynamicConfig<'a> {
    http: Http<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Http<'a> {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    routers: BTreeMap<&'a str, Router<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    services: BTreeMap<&'a str, Service<'a>>,
    middlewares: BTreeMap<String, Middleware>,
    servers_transports: BTreeMap<&'a str, ServersTransport>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Router<'a> {
    rule: String,
    /// Set for a route with a path prefix ([`priority`]); Traefik otherwise prefers the longer
    /// rule, which a service with many hostnames would win.
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<u32>,
    entry_points: [&'a str; 1],
    middlewares: Vec<String>,
    service: &'a str,
}

/// A route's priority when it has a path prefix: a path on every host (Helvetia's own
/// `/.well-known/…`) above a path of some hosts, which is above every route of whole hosts
/// (ranked by their rule's length); among those, the longer prefix first.
fn priority(route: &Route) -> Option<u32> {
    let prefix = u32::try_from(route.path_prefix.as_ref()?.len()).unwrap_or(u32::MAX / 4);
    let base: u32 = if route.hostnames.is_empty() {
        200_000
    } else {
        100_000
    };
    Some(base + prefix)
}

#[derive(Serialize)]
struct Middleware {
    retry: Retry,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Retry {
    attempts: u32,
    initial_interval: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Service<'a> {
    load_balancer: LoadBalancer<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LoadBalancer<'a> {
    pass_host_header: bool,
    servers_transport: &'a str,
    servers: Vec<Server>,
}

#[derive(Serialize)]
struct Server {
    url: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServersTransport {
    forwarding_timeouts: ForwardingTimeouts,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ForwardingTimeouts {
    idle_conn_timeout: &'static str,
}

/// Traefik's dynamic configuration for every published route of `table`, each router listening
/// on the entry point named `entry_point`, marked as installation `instance`'s. A route without
/// backends gets a service without servers, which Traefik answers with 503.
pub fn render(table: &RoutingTable, entry_point: &str, instance: &str) -> String {
    let retry = retry_middleware(instance);
    let mut routers = BTreeMap::new();
    let mut services = BTreeMap::new();
    for route in table.published() {
        routers.insert(
            route.name.as_str(),
            Router {
                rule: router_rule(route),
                priority: priority(route),
                entry_points: [entry_point],
                middlewares: vec![retry.clone()],
                service: &route.name,
            },
        );
        services.insert(
            route.name.as_str(),
            Service {
                load_balancer: LoadBalancer {
                    pass_host_header: true,
                    servers_transport: SERVERS_TRANSPORT,
                    servers: route
                        .backends
                        .iter()
                        .map(|backend| Server { url: backend.url() })
                        .collect(),
                },
            },
        );
    }
    let config = DynamicConfig {
        http: Http {
            routers,
            services,
            middlewares: BTreeMap::from([(
                retry.clone(),
                Middleware {
                    retry: Retry {
                        attempts: RETRY_ATTEMPTS,
                        initial_interval: RETRY_INTERVAL,
                    },
                },
            )]),
            servers_transports: BTreeMap::from([(
                SERVERS_TRANSPORT,
                ServersTransport {
                    forwarding_timeouts: ForwardingTimeouts {
                        idle_conn_timeout: BACKEND_IDLE_CONN_TIMEOUT,
                    },
                },
            )]),
        },
    };
    // Only strings, booleans, sequences and string-keyed maps are serialised, which TOML can
    // always represent.
    toml::to_string(&config).expect("the dynamic configuration is always representable in TOML")
}

/// The rule Traefik matches a route's requests by. Hostnames are validated DNS names, so they
/// cannot contain the backquotes that delimit them.
pub(super) fn router_rule(route: &Route) -> String {
    let hosts = route
        .hostnames
        .iter()
        .map(|hostname| match hostname.strip_prefix("*.") {
            // A wildcard domain: one label in front of its parent, as TLS wildcards match.
            Some(parent) => format!("HostRegexp(`^[^.]+\\.{}$`)", parent.replace('.', "\\.")),
            None => format!("Host(`{hostname}`)"),
        })
        .collect::<Vec<_>>()
        .join(" || ");
    // Paths are checked where they are accepted: `/`, then URL-safe characters, no backquote.
    match (&route.path_prefix, route.hostnames.len()) {
        (None, _) => hosts,
        (Some(prefix), 0) => format!("PathPrefix(`{prefix}`)"),
        (Some(prefix), 1) => format!("{hosts} && PathPrefix(`{prefix}`)"),
        (Some(prefix), _) => format!("({hosts}) && PathPrefix(`{prefix}`)"),
    }
}

#[cfg(test)]
mod tests {
    use helvetia_core::routing::Backend;

    use super::*;

    fn backend(address: &str, port: u16) -> Backend {
        Backend {
            address: address.into(),
            port,
        }
    }

    fn route(name: &str, hostnames: &[&str], backends: Vec<Backend>) -> Route {
        Route {
            name: name.into(),
            path_prefix: None,
            redirect_to: None,
            hostnames: hostnames.iter().map(|h| h.to_string()).collect(),
            backends,
        }
    }

    #[test]
    fn an_empty_table_renders_only_the_shared_middleware_and_transport() {
        assert_eq!(
            render(&RoutingTable::new(), "web", "0a1b"),
            "[http.middlewares.helvetia-retry-0a1b.retry]\n\
             attempts = 3\n\
             initialInterval = \"50ms\"\n\
             \n\
             [http.serversTransports.helvetia.forwardingTimeouts]\n\
             idleConnTimeout = \"2s\"\n"
        );
    }

    #[test]
    fn renders_a_router_and_a_service_per_published_route() {
        let mut table = RoutingTable::new();
        table.insert(route(
            "shop_web",
            &["www.shop.example", "shop.example"],
            vec![backend("172.20.0.3", 8080), backend("fd00::2", 8080)],
        ));
        table.insert(route("shop_api", &["api.shop.example"], vec![]));
        table.insert(route("blog_web", &[], vec![backend("172.21.0.2", 80)]));
        assert_eq!(
            render(&table, "web", "0a1b"),
            r#"[http.routers.shop_api]
rule = "Host(`api.shop.example`)"
entryPoints = ["web"]
middlewares = ["helvetia-retry-0a1b"]
service = "shop_api"

[http.routers.shop_web]
rule = "Host(`shop.example`) || Host(`www.shop.example`)"
entryPoints = ["web"]
middlewares = ["helvetia-retry-0a1b"]
service = "shop_web"

[http.services.shop_api.loadBalancer]
passHostHeader = true
serversTransport = "helvetia"
servers = []

[http.services.shop_web.loadBalancer]
passHostHeader = true
serversTransport = "helvetia"

[[http.services.shop_web.loadBalancer.servers]]
url = "http://172.20.0.3:8080"

[[http.services.shop_web.loadBalancer.servers]]
url = "http://[fd00::2]:8080"

[http.middlewares.helvetia-retry-0a1b.retry]
attempts = 3
initialInterval = "50ms"

[http.serversTransports.helvetia.forwardingTimeouts]
idleConnTimeout = "2s"
"#
        );
    }

    #[test]
    fn a_path_prefix_narrows_the_rule_and_ranks_the_route_first() {
        let mut table = RoutingTable::new();
        let mut api = route("shop_api_domain3", &["shop.example"], vec![]);
        api.path_prefix = Some("/api".into());
        table.insert(api);
        table.insert(route("shop_web_domain5", &["*.shop.example"], vec![]));
        let mut everywhere = route("helvetia-well-known", &[], vec![]);
        everywhere.path_prefix = Some("/.well-known/helvetia/".into());
        table.insert(everywhere);
        let rendered: toml::Table = toml::from_str(&render(&table, "web", "0a1b")).unwrap();
        let routers = rendered["http"]["routers"].as_table().unwrap();
        assert_eq!(
            routers["shop_api_domain3"]["rule"].as_str(),
            Some("Host(`shop.example`) && PathPrefix(`/api`)")
        );
        assert_eq!(
            routers["helvetia-well-known"]["rule"].as_str(),
            Some("PathPrefix(`/.well-known/helvetia/`)")
        );
        assert_eq!(
            routers["shop_web_domain5"]["rule"].as_str(),
            Some(r"HostRegexp(`^[^.]+\.shop\.example$`)")
        );
        assert_eq!(
            routers["helvetia-well-known"]["priority"].as_integer(),
            Some(200_022)
        );
        assert_eq!(
            routers["shop_api_domain3"]["priority"].as_integer(),
            Some(100_004)
        );
    }

    #[test]
    fn equal_tables_render_identically() {
        let mut first = RoutingTable::new();
        first.insert(route(
            "a_web",
            &["b.example", "a.example"],
            vec![backend("10.0.0.2", 80), backend("10.0.0.1", 80)],
        ));
        first.insert(route(
            "b_web",
            &["c.example"],
            vec![backend("10.0.0.3", 80)],
        ));
        let mut second = RoutingTable::new();
        second.insert(route(
            "b_web",
            &["c.example"],
            vec![backend("10.0.0.3", 80)],
        ));
        second.insert(route(
            "a_web",
            &["a.example", "b.example", "a.example"],
            vec![backend("10.0.0.1", 80), backend("10.0.0.2", 80)],
        ));
        assert_eq!(first, second);
        assert_eq!(
            render(&first, "web", "0a1b"),
            render(&second, "web", "0a1b")
        );
    }

    #[test]
    fn names_that_are_not_bare_keys_cannot_inject_configuration() {
        let mut table = RoutingTable::new();
        let name = "x\"]\n[http.routers.evil]\nrule = \"PathPrefix(`/`)\"\n#";
        table.insert(route(name, &["a.example"], vec![backend("10.0.0.1", 80)]));
        let rendered: toml::Table = toml::from_str(&render(&table, "web", "0a1b")).unwrap();
        let routers = rendered["http"]["routers"].as_table().unwrap();
        assert_eq!(routers.keys().collect::<Vec<_>>(), [name]);
        assert_eq!(routers[name]["service"].as_str(), Some(name));
    }
}
