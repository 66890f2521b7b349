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
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<Tls<'a>>,
}

#[derive(Serialize)]
struct Tls<'a> {
    certificates: Vec<CertificateFiles<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CertificateFiles<'a> {
    cert_file: &'a str,
    key_file: &'a str,
}

/// The HTTPS side of the edge: its entry point, the port clients reach it on (for redirects),
/// and the files of the table's certificates (chain, key), in the table's order.
pub struct Secure<'a> {
    pub entry_point: &'a str,
    pub port: u16,
    pub files: &'a [(String, String)],
}

/// The middleware that redirects plain HTTP to HTTPS, for hosts with a certificate.
fn https_middleware(instance: &str) -> String {
    format!("helvetia-https-{instance}")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Http<'a> {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    routers: BTreeMap<String, Router<'a>>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<RouterTls>,
}

/// A router on the HTTPS entry point: Traefik picks the certificate by SNI.
#[derive(Serialize)]
struct RouterTls {}

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

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct Middleware {
    #[serde(skip_serializing_if = "Option::is_none")]
    retry: Option<Retry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect_scheme: Option<RedirectScheme>,
    #[serde(skip_serializing_if = "Option::is_none")]
    basic_auth: Option<BasicAuthMiddleware>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<Headers>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BasicAuthMiddleware {
    /// `user:bcrypt-hash`, as htpasswd writes it.
    users: Vec<String>,
    realm: String,
    /// The credentials stop at the edge: the app never sees the password.
    remove_header: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Headers {
    sts_seconds: u64,
    sts_include_subdomains: bool,
    sts_preload: bool,
}

/// The middlewares of a route's own settings — its basic auth, and on HTTPS its HSTS header
/// once every host of it has a certificate — named by route and content, so a changed setting
/// is a new name the confirmation can tell from the old one. On the router of plain HTTP
/// (`tls` false) only the basic auth.
pub(super) fn route_middlewares(
    table: &RoutingTable,
    route: &Route,
    tls: bool,
) -> Vec<(String, Middleware)> {
    let mut middlewares = Vec::new();
    if let Some(hsts) = route.hsts.filter(|_| tls && fully_secured(table, route)) {
        let content = format!(
            "{}-{}-{}",
            hsts.max_age_seconds, hsts.include_subdomains, hsts.preload
        );
        middlewares.push((
            format!("{}{HSTS}{}", route.name, fingerprint(&content)),
            Middleware {
                headers: Some(Headers {
                    sts_seconds: hsts.max_age_seconds,
                    sts_include_subdomains: hsts.include_subdomains,
                    sts_preload: hsts.preload,
                }),
                ..Middleware::default()
            },
        ));
    }
    if let Some(auth) = &route.basic_auth {
        let user = format!("{}:{}", auth.user, auth.hash);
        middlewares.push((
            format!("{}{BASIC_AUTH}{}", route.name, fingerprint(&user)),
            Middleware {
                basic_auth: Some(BasicAuthMiddleware {
                    users: vec![user],
                    realm: route.hostnames.join(" "),
                    remove_header: true,
                }),
                ..Middleware::default()
            },
        ));
    }
    middlewares
}

const HSTS: &str = "-hsts-";
const BASIC_AUTH: &str = "-basic-auth-";

/// Whether `middleware` is one of [`route_middlewares`] of the route named `route` (whatever
/// its content), rather than a shared one.
pub(super) fn is_own_middleware(route: &str, middleware: &str) -> bool {
    middleware
        .strip_prefix(route)
        .is_some_and(|rest| rest.starts_with(HSTS) || rest.starts_with(BASIC_AUTH))
}

/// Whether every host of `route` has a certificate (and it has hosts).
fn fully_secured(table: &RoutingTable, route: &Route) -> bool {
    !route.hostnames.is_empty() && table.secured_hostnames(route).len() == route.hostnames.len()
}

/// A short digest of a middleware's content, for its name (the content may be a password's
/// hash: the name must not give it away, and does not need to).
fn fingerprint(content: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(content.as_bytes())[..6])
}

#[derive(Serialize)]
struct RedirectScheme {
    scheme: &'static str,
    port: String,
    permanent: bool,
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
pub fn render(
    table: &RoutingTable,
    entry_point: &str,
    secure: Option<&Secure<'_>>,
    instance: &str,
) -> String {
    let retry = retry_middleware(instance);
    let https = https_middleware(instance);
    let mut routers = BTreeMap::new();
    let mut services = BTreeMap::new();
    let mut own_middlewares = BTreeMap::new();
    // A router's own middlewares first (HSTS marks even a refusal; basic auth refuses before
    // anything reaches the app), then the shared retry.
    let mut chain = |own: Vec<(String, Middleware)>| {
        let mut names: Vec<String> = own.iter().map(|(name, _)| name.clone()).collect();
        names.push(retry.clone());
        own_middlewares.extend(own);
        names
    };
    for route in table.published() {
        routers.insert(
            route.name.clone(),
            Router {
                rule: router_rule(route),
                priority: priority(route),
                entry_points: [entry_point],
                middlewares: chain(route_middlewares(table, route, false)),
                service: &route.name,
                tls: None,
            },
        );
        if let Some(redirected) = secure.and_then(|_| https_redirect(table, route)) {
            routers.insert(
                https_router(&route.name),
                Router {
                    priority: Some(HTTPS_REDIRECT_PRIORITY + rule_length(&redirected)),
                    rule: redirected,
                    entry_points: [entry_point],
                    middlewares: vec![https.clone(), retry.clone()],
                    service: &route.name,
                    tls: None,
                },
            );
        }
        if let Some(secure) = secure {
            routers.insert(
                tls_router(&route.name),
                Router {
                    rule: router_rule(route),
                    priority: priority(route),
                    entry_points: [secure.entry_point],
                    middlewares: chain(route_middlewares(table, route, true)),
                    service: &route.name,
                    tls: Some(RouterTls {}),
                },
            );
        }
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
    let mut middlewares = BTreeMap::from([(
        retry.clone(),
        Middleware {
            retry: Some(Retry {
                attempts: RETRY_ATTEMPTS,
                initial_interval: RETRY_INTERVAL,
            }),
            ..Middleware::default()
        },
    )]);
    middlewares.extend(own_middlewares);
    if let Some(secure) = secure {
        middlewares.insert(
            https,
            Middleware {
                redirect_scheme: Some(RedirectScheme {
                    scheme: "https",
                    port: secure.port.to_string(),
                    permanent: true,
                }),
                ..Middleware::default()
            },
        );
    }
    let tls = secure
        .filter(|secure| !secure.files.is_empty())
        .map(|secure| Tls {
            certificates: secure
                .files
                .iter()
                .map(|(cert_file, key_file)| CertificateFiles {
                    cert_file,
                    key_file,
                })
                .collect(),
        });
    let config = DynamicConfig {
        http: Http {
            routers,
            services,
            middlewares,
            servers_transports: BTreeMap::from([(
                SERVERS_TRANSPORT,
                ServersTransport {
                    forwarding_timeouts: ForwardingTimeouts {
                        idle_conn_timeout: BACKEND_IDLE_CONN_TIMEOUT,
                    },
                },
            )]),
        },
        tls,
    };
    // Only strings, booleans, sequences and string-keyed maps are serialised, which TOML can
    // always represent.
    toml::to_string(&config).expect("the dynamic configuration is always representable in TOML")
}

/// The name of a route's router on the HTTPS entry point.
pub(super) fn tls_router(route: &str) -> String {
    format!("{route}-tls")
}

/// The name of a route's router that redirects its hosts with a certificate to HTTPS.
pub(super) fn https_router(route: &str) -> String {
    format!("{route}-to-https")
}

/// Above every whole-host route (ranked by rule length), below routes with a path.
const HTTPS_REDIRECT_PRIORITY: u32 = 50_000;

fn rule_length(rule: &str) -> u32 {
    u32::try_from(rule.len())
        .unwrap_or(u32::MAX / 4)
        .min(40_000)
}

/// The rule of the router that redirects `route`'s hosts with a certificate to HTTPS, if it
/// has any (and takes whole hosts: a path shared between services stays as it is).
pub(super) fn https_redirect(table: &RoutingTable, route: &Route) -> Option<String> {
    if route.path_prefix.is_some() {
        return None;
    }
    let secured = table.secured_hostnames(route);
    if secured.is_empty() {
        return None;
    }
    let redirected = Route {
        hostnames: secured,
        ..route.clone()
    };
    Some(router_rule(&redirected))
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
            basic_auth: None,
            hsts: None,
            hostnames: hostnames.iter().map(|h| h.to_string()).collect(),
            backends,
        }
    }

    #[test]
    fn an_empty_table_renders_only_the_shared_middleware_and_transport() {
        assert_eq!(
            render(&RoutingTable::new(), "web", None, "0a1b"),
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
            render(&table, "web", None, "0a1b"),
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
        let rendered: toml::Table = toml::from_str(&render(&table, "web", None, "0a1b")).unwrap();
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
    fn with_https_each_route_gets_a_tls_router_and_hosts_with_a_certificate_a_redirect() {
        let mut table = RoutingTable::new();
        table.insert(route(
            "shop_web",
            &["shop.example", "web.shop.localhost"],
            vec![backend("10.0.0.1", 80)],
        ));
        table.serve_certificate(helvetia_core::routing::ServedCertificate {
            hostnames: vec!["shop.example".into()],
            chain_pem: "chain".into(),
            key_pem: "PRIVATE-KEY-MATERIAL".into(),
        });
        let files = [("/d/a.crt".to_owned(), "/d/a.key".to_owned())];
        let secure = Secure {
            entry_point: "websecure",
            port: 8443,
            files: &files,
        };
        let text = render(&table, "web", Some(&secure), "0a1b");
        assert!(
            !text.contains("PRIVATE-KEY-MATERIAL"),
            "no key material in the configuration"
        );
        let rendered: toml::Table = toml::from_str(&text).unwrap();
        let routers = rendered["http"]["routers"].as_table().unwrap();
        let tls = &routers["shop_web-tls"];
        assert_eq!(tls["entryPoints"][0].as_str(), Some("websecure"));
        assert!(tls["tls"].is_table());
        let redirect = &routers["shop_web-to-https"];
        assert_eq!(redirect["rule"].as_str(), Some("Host(`shop.example`)"));
        assert_eq!(
            redirect["middlewares"][0].as_str(),
            Some("helvetia-https-0a1b")
        );
        assert!(redirect["priority"].as_integer().unwrap() > 50_000);
        let middleware = &rendered["http"]["middlewares"]["helvetia-https-0a1b"]["redirectScheme"];
        assert_eq!(middleware["port"].as_str(), Some("8443"));
        let certificates = rendered["tls"]["certificates"].as_array().unwrap();
        assert_eq!(certificates[0]["keyFile"].as_str(), Some("/d/a.key"));
    }

    #[test]
    fn basic_auth_guards_both_routers_and_hsts_only_the_secured_tls_one() {
        let mut table = RoutingTable::new();
        table.insert(route("shop_web", &["web.shop.localhost"], vec![]));
        let mut guarded = route("shop_web_domain4", &["shop.example"], vec![]);
        guarded.basic_auth = Some(helvetia_core::routing::BasicAuth {
            user: "alice".into(),
            hash: "$2y$08$abcdefghijklmnopqrstuu".into(),
        });
        guarded.hsts = Some(helvetia_core::domain::Hsts {
            max_age_seconds: 31_536_000,
            include_subdomains: true,
            preload: false,
        });
        table.insert(guarded.clone());
        let files = [("/d/a.crt".to_owned(), "/d/a.key".to_owned())];
        let secure = Secure {
            entry_point: "websecure",
            port: 443,
            files: &files,
        };
        let render_toml = |table: &RoutingTable| -> toml::Table {
            toml::from_str(&render(table, "web", Some(&secure), "0a1b")).unwrap()
        };
        let middlewares_of = |rendered: &toml::Table, router: &str| -> Vec<String> {
            rendered["http"]["routers"][router]["middlewares"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_str().unwrap().to_owned())
                .collect()
        };
        // No certificate yet: basic auth on both routers, no HSTS anywhere.
        let rendered = render_toml(&table);
        let http = middlewares_of(&rendered, "shop_web_domain4");
        assert_eq!(http.len(), 2, "{http:?}");
        assert!(http[0].starts_with("shop_web_domain4-basic-auth-"));
        assert_eq!(http[1], "helvetia-retry-0a1b");
        assert_eq!(middlewares_of(&rendered, "shop_web_domain4-tls"), http);
        let auth = &rendered["http"]["middlewares"][&http[0]]["basicAuth"];
        assert_eq!(
            auth["users"][0].as_str(),
            Some("alice:$2y$08$abcdefghijklmnopqrstuu")
        );
        assert_eq!(auth["removeHeader"].as_bool(), Some(true));
        assert!(!render(&table, "web", Some(&secure), "0a1b").contains("stsSeconds"));
        // The generated hostname's route has none of it.
        assert_eq!(
            middlewares_of(&rendered, "shop_web"),
            ["helvetia-retry-0a1b"]
        );
        assert_eq!(
            middlewares_of(&rendered, "shop_web-tls"),
            ["helvetia-retry-0a1b"]
        );

        // Its certificate served: HSTS on the TLS router only, before the basic auth.
        table.serve_certificate(helvetia_core::routing::ServedCertificate {
            hostnames: vec!["shop.example".into()],
            chain_pem: "chain".into(),
            key_pem: "key".into(),
        });
        let rendered = render_toml(&table);
        assert_eq!(middlewares_of(&rendered, "shop_web_domain4"), http);
        let tls = middlewares_of(&rendered, "shop_web_domain4-tls");
        assert_eq!(tls.len(), 3, "{tls:?}");
        assert!(tls[0].starts_with("shop_web_domain4-hsts-"), "{tls:?}");
        assert_eq!(tls[1..], http[..]);
        let headers = &rendered["http"]["middlewares"][&tls[0]]["headers"];
        assert_eq!(headers["stsSeconds"].as_integer(), Some(31_536_000));
        assert_eq!(headers["stsIncludeSubdomains"].as_bool(), Some(true));
        assert_eq!(headers["stsPreload"].as_bool(), Some(false));
        // The redirect to HTTPS asks for no credentials over plain HTTP.
        assert_eq!(
            middlewares_of(&rendered, "shop_web_domain4-to-https"),
            ["helvetia-https-0a1b", "helvetia-retry-0a1b"]
        );

        // Another password is another middleware's name, so its change can be confirmed.
        guarded.basic_auth = Some(helvetia_core::routing::BasicAuth {
            user: "alice".into(),
            hash: "$2y$08$zyxwvutsrqponmlkjihgfe".into(),
        });
        table.insert(guarded);
        let changed = middlewares_of(&render_toml(&table), "shop_web_domain4");
        assert_ne!(changed[0], http[0]);
        assert!(is_own_middleware("shop_web_domain4", &changed[0]));
        assert!(!is_own_middleware("helvetia", "helvetia-retry-0a1b"));
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
            render(&first, "web", None, "0a1b"),
            render(&second, "web", None, "0a1b")
        );
    }

    #[test]
    fn names_that_are_not_bare_keys_cannot_inject_configuration() {
        let mut table = RoutingTable::new();
        let name = "x\"]\n[http.routers.evil]\nrule = \"PathPrefix(`/`)\"\n#";
        table.insert(route(name, &["a.example"], vec![backend("10.0.0.1", 80)]));
        let rendered: toml::Table = toml::from_str(&render(&table, "web", None, "0a1b")).unwrap();
        let routers = rendered["http"]["routers"].as_table().unwrap();
        assert_eq!(routers.keys().collect::<Vec<_>>(), [name]);
        assert_eq!(routers[name]["service"].as_str(), Some(name));
    }
}
