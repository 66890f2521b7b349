//! Confirmation through Traefik's API: reads back the routers and services Traefik actually
//! loaded (`/api/http/routers`, `/api/http/services`, served when `api.insecure` is on) and
//! compares them with the routing table, so a deploy switches traffic only once Traefik serves
//! the new backends — and knows when it does not.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use helvetia_core::routing::{Route, RoutingTable};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::TraefikError;
use super::render::{
    SERVERS_TRANSPORT, https_redirect, https_router, is_own_middleware, retry_middleware,
    route_middlewares, router_rule, tls_router,
};
use crate::routing::RoutingError;

/// The suffix Traefik gives the names of everything loaded by its file provider.
const FILE_PROVIDER: &str = "@file";

/// The first pause between two looks at the API; it doubles up to [`MAX_POLL_INTERVAL`]. Traefik
/// usually loads a new file within tens of milliseconds, so early looks are cheap and often
/// enough.
const FIRST_POLL_INTERVAL: Duration = Duration::from_millis(5);
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A bound on one request, so a hung Traefik cannot stall a caller past its own deadline by much.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// How many items to ask for per page; Traefik pages its lists (100 by default) and says where
/// the next page is in `X-Next-Page`.
const PAGE_SIZE: usize = 500;

/// A client for the API of the Traefik that serves one installation's routes.
#[derive(Debug, Clone)]
pub struct TraefikApi {
    base_url: String,
    /// The middleware only this installation's configuration defines.
    marker: String,
    /// Each route also has a router on the HTTPS entry point (`<route>-tls`).
    tls: bool,
    client: reqwest::Client,
}

#[derive(Debug, Deserialize)]
struct ApiRouter {
    name: String,
    #[serde(default)]
    rule: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    error: Vec<String>,
    #[serde(default)]
    middlewares: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiService {
    name: String,
    #[serde(default)]
    load_balancer: Option<ApiLoadBalancer>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiLoadBalancer {
    #[serde(default)]
    servers: Vec<ApiServer>,
    #[serde(default)]
    servers_transport: String,
}

#[derive(Debug, Deserialize)]
struct ApiServer {
    url: String,
}

impl TraefikApi {
    /// This client expecting a router on the HTTPS entry point beside each route's.
    pub fn with_tls(self, tls: bool) -> TraefikApi {
        TraefikApi { tls, ..self }
    }

    /// A client for the API at `base_url`, e.g. `http://127.0.0.1:7301`, of the Traefik that
    /// loads installation `instance`'s configuration.
    pub fn new(base_url: impl Into<String>, instance: &str) -> Result<TraefikApi, TraefikError> {
        // The API is plain HTTP on loopback.
        let client = crate::loopback::client(REQUEST_TIMEOUT).map_err(TraefikError::HttpClient)?;
        Ok(TraefikApi {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            tls: false,
            marker: format!("{}{FILE_PROVIDER}", retry_middleware(instance)),
            client,
        })
    }

    /// Whether the Traefik answering is this installation's: it answers `/ping` and has loaded
    /// the installation's marker. Another Traefik on the same API port (another installation
    /// with default ports) answers too, but never has the marker.
    pub async fn is_ours(&self) -> bool {
        self.ping().await && matches!(self.has_marker().await, Ok(true))
    }

    async fn has_marker(&self) -> Result<bool, reqwest::Error> {
        let response = self
            .client
            .get(format!(
                "{}/api/http/middlewares/{}",
                self.base_url, self.marker
            ))
            .send()
            .await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(false);
        }
        response.error_for_status().map(|_| true)
    }

    /// Whether Traefik answers its `/ping` endpoint.
    pub async fn ping(&self) -> bool {
        let url = format!("{}/ping", self.base_url);
        match self.client.get(url).send().await {
            Ok(response) => response.status().is_success(),
            Err(_) => false,
        }
    }

    /// Waits until Traefik serves exactly the published routes of `table`: every route's router
    /// is enabled with the expected rule and its service balances over exactly the expected
    /// servers, and no other router or service of Helvetia's is left (so removals are
    /// confirmed too).
    ///
    /// Helvetia's routers and services are recognised by the `@file` suffix and, for those not
    /// in the table, by the servers transport Helvetia's services use — so routers a user's
    /// own files define for the same Traefik do not count as left over. Only a Traefik that
    /// has loaded this installation's marker can confirm anything: one of another installation
    /// may serve routes of the same names.
    pub async fn confirm(
        &self,
        table: &RoutingTable,
        timeout: Duration,
    ) -> Result<(), RoutingError> {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut interval = FIRST_POLL_INTERVAL;
        // What Traefik's last answer lacked, and why a later look failed (if one did); the look
        // cut off by the deadline itself says nothing useful and is not reported.
        let mut differed: Option<String> = None;
        let mut failure: Option<String> = None;
        loop {
            match tokio::time::timeout_at(deadline, self.differences(table)).await {
                Ok(Ok(differences)) if differences.is_empty() => return Ok(()),
                Ok(Ok(differences)) => {
                    differed = Some(differences.join("; "));
                    failure = None;
                }
                Ok(Err(error)) => {
                    failure = Some(format!(
                        "Traefik's API at {} failed: {error}",
                        self.base_url
                    ));
                }
                Err(_) => {}
            }
            let now = Instant::now();
            if now >= deadline {
                let waited = now - started;
                return Err(match (differed, failure) {
                    (Some(detail), None) => RoutingError::NotConfirmed { waited, detail },
                    (Some(detail), Some(failure)) => RoutingError::NotConfirmed {
                        waited,
                        detail: format!("{detail}; then {failure}"),
                    },
                    (None, failure) => RoutingError::Unavailable(failure.unwrap_or_else(|| {
                        format!("Traefik's API at {} did not answer", self.base_url)
                    })),
                });
            }
            tokio::time::sleep_until((now + interval).min(deadline)).await;
            interval = (interval * 2).min(MAX_POLL_INTERVAL);
        }
    }

    async fn differences(&self, table: &RoutingTable) -> Result<Vec<String>, reqwest::Error> {
        if !self.has_marker().await? {
            return Ok(vec![format!(
                "the Traefik answering at {} has not loaded this installation's configuration \
                 (no middleware {}): it is not Helvetia's Traefik of this installation, or it \
                 does not read Helvetia's dynamic configuration directory",
                self.base_url, self.marker
            )]);
        }
        let routers: Vec<ApiRouter> = self.list("routers").await?;
        let services: Vec<ApiService> = self.list("services").await?;
        Ok(differences(table, &routers, &services, self.tls))
    }

    /// Every item of one of the API's paged lists.
    async fn list<T: DeserializeOwned>(&self, kind: &str) -> Result<Vec<T>, reqwest::Error> {
        let mut items = Vec::new();
        let mut page = 1usize;
        loop {
            let response = self
                .client
                .get(format!("{}/api/http/{kind}", self.base_url))
                .query(&[("page", page), ("per_page", PAGE_SIZE)])
                .send()
                .await?
                .error_for_status()?;
            // Traefik names the first page as the next one once there are no more.
            let next = response
                .headers()
                .get("X-Next-Page")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<usize>().ok())
                .unwrap_or(1);
            items.extend(response.json::<Vec<T>>().await?);
            if next <= page {
                return Ok(items);
            }
            page = next;
        }
    }
}

/// What Traefik's loaded routers and services lack or have beyond `table`; empty when Traefik
/// serves exactly the table.
fn differences(
    table: &RoutingTable,
    routers: &[ApiRouter],
    services: &[ApiService],
    tls: bool,
) -> Vec<String> {
    let routers: BTreeMap<&str, &ApiRouter> = routers
        .iter()
        .filter_map(|router| Some((router.name.strip_suffix(FILE_PROVIDER)?, router)))
        .collect();
    let services: BTreeMap<&str, &ApiService> = services
        .iter()
        .filter_map(|service| Some((service.name.strip_suffix(FILE_PROVIDER)?, service)))
        .collect();
    let mut found = Vec::new();
    let mut expected_names = BTreeSet::new();
    let tls_names: Vec<String> = table
        .published()
        .filter(|_| tls)
        .map(|route| tls_router(&route.name))
        .collect();
    let redirects: Vec<(String, String)> = table
        .published()
        .filter(|_| tls)
        .filter_map(|route| Some((https_router(&route.name), https_redirect(table, route)?)))
        .collect();
    for (name, rule) in &redirects {
        expected_names.insert(name.as_str());
        match routers.get(name.as_str()) {
            None => found.push(format!("router {name}{FILE_PROVIDER} is missing")),
            Some(router) if router.rule != *rule => found.push(format!(
                "router {name}{FILE_PROVIDER} has rule {:?}, expected {rule:?}",
                router.rule
            )),
            Some(_) => {}
        }
    }
    for (route, name) in table.published().filter(|_| tls).zip(&tls_names) {
        expected_names.insert(name.as_str());
        match routers.get(name.as_str()) {
            None => found.push(format!("router {name}{FILE_PROVIDER} is missing")),
            Some(router) if router.rule != router_rule(route) => found.push(format!(
                "router {name}{FILE_PROVIDER} has rule {:?}, expected {:?}",
                router.rule,
                router_rule(route)
            )),
            Some(router) => found.extend(own_middlewares_differ(table, route, router, true)),
        }
    }
    for route in table.published() {
        let name = route.name.as_str();
        expected_names.insert(name);
        match routers.get(name) {
            None => found.push(format!("router {name}{FILE_PROVIDER} is missing")),
            Some(router) => {
                let rule = router_rule(route);
                if router.rule != rule {
                    found.push(format!(
                        "router {name}{FILE_PROVIDER} has rule {:?}, expected {rule:?}",
                        router.rule
                    ));
                }
                found.extend(own_middlewares_differ(table, route, router, false));
                if router.status != "enabled" {
                    found.push(format!(
                        "router {name}{FILE_PROVIDER} is {} ({})",
                        router.status,
                        router.error.join(", ")
                    ));
                }
            }
        }
        let expected: BTreeSet<String> = route.backends.iter().map(|b| b.url()).collect();
        match services.get(name) {
            None => found.push(format!("service {name}{FILE_PROVIDER} is missing")),
            Some(service) => {
                let loaded: BTreeSet<String> = service
                    .load_balancer
                    .iter()
                    .flat_map(|balancer| balancer.servers.iter().map(|s| s.url.clone()))
                    .collect();
                if loaded != expected {
                    found.push(format!(
                        "service {name}{FILE_PROVIDER} balances over {loaded:?}, expected {expected:?}"
                    ));
                }
            }
        }
    }
    let helvetia_services: BTreeSet<&str> = services
        .iter()
        .filter(|(_, service)| is_helvetias(service))
        .map(|(name, _)| *name)
        .collect();
    for (name, router) in &routers {
        let service = router
            .service
            .strip_suffix(FILE_PROVIDER)
            .unwrap_or(&router.service);
        if !expected_names.contains(name) && helvetia_services.contains(service) {
            found.push(format!("router {name}{FILE_PROVIDER} is still present"));
        }
    }
    for name in &helvetia_services {
        if !expected_names.contains(name) {
            found.push(format!("service {name}{FILE_PROVIDER} is still present"));
        }
    }
    found
}

/// How a router's own middlewares (a route's basic auth, HSTS) differ from what the route
/// wants, if they do. The shared ones (retry, the HTTPS redirect) are checked through the
/// marker and the redirect's router.
fn own_middlewares_differ(
    table: &RoutingTable,
    route: &Route,
    router: &ApiRouter,
    tls: bool,
) -> Option<String> {
    let expected: BTreeSet<String> = route_middlewares(table, route, tls)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let loaded: BTreeSet<String> = router
        .middlewares
        .iter()
        .map(|name| name.strip_suffix(FILE_PROVIDER).unwrap_or(name).to_owned())
        .filter(|name| is_own_middleware(&route.name, name))
        .collect();
    (loaded != expected).then(|| {
        format!(
            "router {}{FILE_PROVIDER} uses middlewares {loaded:?}, expected {expected:?}",
            router
                .name
                .strip_suffix(FILE_PROVIDER)
                .unwrap_or(&router.name)
        )
    })
}

/// Whether a service was rendered by Helvetia: it uses Helvetia's servers transport, which
/// Traefik reports with its provider suffix.
fn is_helvetias(service: &ApiService) -> bool {
    service.load_balancer.as_ref().is_some_and(|balancer| {
        let transport = &balancer.servers_transport;
        transport.strip_suffix(FILE_PROVIDER).unwrap_or(transport) == SERVERS_TRANSPORT
    })
}

#[cfg(test)]
mod tests {
    use helvetia_core::routing::Backend;

    use super::*;

    fn table() -> RoutingTable {
        let mut table = RoutingTable::new();
        table.insert(Route {
            name: "demo_web".into(),
            path_prefix: None,
            redirect_to: None,
            basic_auth: None,
            hsts: None,
            hostnames: vec!["web.demo.localhost".into()],
            backends: vec![Backend {
                address: "172.20.0.2".into(),
                port: 8080,
            }],
        });
        table
    }

    /// Lists as Traefik 3.7 returns them (trimmed), with the internal routers and services
    /// that are always present.
    fn loaded(routers: &str, services: &str) -> (Vec<ApiRouter>, Vec<ApiService>) {
        let routers = format!(
            r#"[{{"entryPoints":["traefik"],"service":"api@internal","rule":"PathPrefix(`/api`)",
                "status":"enabled","name":"api@internal","provider":"internal"}}{routers}]"#
        );
        let services = format!(
            r#"[{{"status":"enabled","usedBy":["api@internal"],"name":"api@internal",
                "provider":"internal"}}{services}]"#
        );
        (
            serde_json::from_str(&routers).unwrap(),
            serde_json::from_str(&services).unwrap(),
        )
    }

    const ROUTER: &str = r#",{"entryPoints":["web"],"service":"demo_web",
        "rule":"Host(`web.demo.localhost`)","status":"enabled","name":"demo_web@file",
        "provider":"file"}"#;

    fn service(name: &str, url: &str, transport: &str) -> String {
        format!(
            r#",{{"loadBalancer":{{"servers":[{{"url":"{url}"}}],"passHostHeader":true,
                "serversTransport":"{transport}"}},"status":"enabled","name":"{name}@file",
                "provider":"file","type":"loadbalancer"}}"#
        )
    }

    #[test]
    fn matching_routes_have_no_differences() {
        let (routers, services) = loaded(
            ROUTER,
            &service("demo_web", "http://172.20.0.2:8080", "helvetia@file"),
        );
        assert_eq!(
            differences(&table(), &routers, &services, false),
            Vec::<String>::new()
        );
    }

    #[test]
    fn reports_missing_and_outdated_routes() {
        let (routers, services) = loaded("", "");
        assert_eq!(
            differences(&table(), &routers, &services, false),
            [
                "router demo_web@file is missing",
                "service demo_web@file is missing"
            ]
        );
        let (routers, services) = loaded(
            ROUTER,
            &service("demo_web", "http://172.20.0.9:8080", "helvetia@file"),
        );
        assert_eq!(
            differences(&table(), &routers, &services, false),
            [
                "service demo_web@file balances over {\"http://172.20.0.9:8080\"}, \
                 expected {\"http://172.20.0.2:8080\"}"
            ]
        );
    }

    #[test]
    fn a_router_must_use_its_routes_own_middlewares() {
        let mut table = table();
        let mut route = table.route("demo_web").unwrap().clone();
        route.basic_auth = Some(helvetia_core::routing::BasicAuth {
            user: "alice".into(),
            hash: "$2y$08$abcdefghijklmnopqrstuu".into(),
        });
        table.insert(route.clone());
        let expected = route_middlewares(&table, &route, false).remove(0).0;
        let services = service("demo_web", "http://172.20.0.2:8080", "helvetia@file");
        let without = ROUTER.replace(
            r#""status""#,
            r#""middlewares":["helvetia-retry-0a1b@file"],"status""#,
        );
        let (routers, loaded_services) = loaded(&without, &services);
        let found = differences(&table, &routers, &loaded_services, false);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains(&expected), "{found:?}");
        let with = ROUTER.replace(
            r#""status""#,
            &format!(r#""middlewares":["{expected}@file","helvetia-retry-0a1b@file"],"status""#),
        );
        let (routers, loaded_services) = loaded(&with, &services);
        assert_eq!(
            differences(&table, &routers, &loaded_services, false),
            Vec::<String>::new()
        );
    }

    #[test]
    fn reports_disabled_routers_with_their_errors() {
        let router = ROUTER.replace(
            r#""status":"enabled""#,
            r#""status":"disabled","error":["the service does not exist"]"#,
        );
        let (routers, services) = loaded(
            &router,
            &service("demo_web", "http://172.20.0.2:8080", "helvetia@file"),
        );
        assert_eq!(
            differences(&table(), &routers, &services, false),
            ["router demo_web@file is disabled (the service does not exist)"]
        );
    }

    #[test]
    fn removed_routes_must_be_gone_but_foreign_file_routes_do_not_count() {
        let foreign = r#",{"service":"own","rule":"Host(`own.example`)","status":"enabled",
            "name":"own@file","provider":"file"}"#;
        let (routers, services) = loaded(
            &format!("{ROUTER}{foreign}"),
            &format!(
                "{}{}",
                service("demo_web", "http://172.20.0.2:8080", "helvetia@file"),
                service("own", "http://10.1.1.1:80", "")
            ),
        );
        assert_eq!(
            differences(&table(), &routers, &services, false),
            Vec::<String>::new()
        );
        assert_eq!(
            differences(&RoutingTable::new(), &routers, &services, false),
            [
                "router demo_web@file is still present",
                "service demo_web@file is still present"
            ]
        );
    }
}
