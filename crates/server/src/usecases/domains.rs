//! Custom domains of a service: add (checked at once), list, check again, make primary,
//! remove; and the public answer to the HTTP check.
//!
//! A domain is routed once verified: its DNS answers with the server's public addresses
//! (`--public-addresses`), or the token Helvetia serves at `/.well-known/helvetia/<token>`
//! comes back when fetched through the domain (so a domain behind a proxy passes too), or a
//! team admin forced it. A failed check says what it found and routes nothing; an unverified
//! domain is checked again by itself (a supervised task, `recheck_periodically`) with growing
//! waits, and routed once a check passes.

use std::time::Duration;

use helvetia_api_types::{AddDomain, SetBasicAuth, SetHsts};
use helvetia_core::auth::{Actor, Scope};
use helvetia_core::domain::{self, Domain, DomainName, Hsts, Verification, WELL_KNOWN_PATH};
use helvetia_core::routing::BasicAuth;
use helvetia_core::service::Service;
use helvetia_core::validation::{FieldErrors, Invalid};
use helvetia_store::domains::NewDomain;
use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::access::OwnedService;
use super::tokens::random_secret;
use super::{App, Result, UseCaseError};

/// How often due re-checks of unverified domains are looked for (the first is due a minute
/// after a failed check).
const RECHECK_PERIOD: Duration = Duration::from_secs(60);

/// How long the HTTP check waits for the domain to answer.
const HTTP_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// bcrypt's cost for basic-auth passwords. Traefik checks the hash on every request, so the
/// cost is paid per request (cost 8: a few milliseconds on one core); htpasswd's default is
/// 5. The password rules (8 characters at least) carry the rest.
const BASIC_AUTH_COST: u32 = 8;

/// A service's domains, the primary first.
pub async fn list(app: &App, service: &OwnedService) -> Result<Vec<Domain>> {
    Ok(app.store.domains(service.id).await?)
}

/// Adds a domain and checks it at once (or routes it unchecked with `force`, for a team
/// admin). Answers it with what the check found.
pub async fn add(app: &App, service: &OwnedService, input: AddDomain) -> Result<Domain> {
    let actor = if input.force {
        service.act(Scope::Admin)?
    } else {
        service.act(Scope::Write)?
    };
    let mut errors = FieldErrors::new();
    let name = errors.check("name", DomainName::parse(&input.name, true));
    let prefix = errors.check_optional("path_prefix", input.path_prefix.as_deref(), |p| {
        domain::check_path_prefix(p).map(|()| p.to_owned())
    });
    let (name, prefix) = errors.finish(|| Some((name?, prefix?)))?;
    refuse_reserved(app, &name)?;
    if input.redirect && prefix.is_some() {
        return Err(FieldErrors::single(
            "redirect",
            Invalid::new("a redirect takes the whole domain: no path prefix"),
        )
        .into());
    }
    let token = random_secret();
    let new = NewDomain {
        name: &name,
        path_prefix: prefix.as_deref(),
        redirect: input.redirect,
        token: &token,
    };
    let added = app.store.add_domain(actor, service, &new).await?;
    let checked = if input.force {
        let by = format!("forced by {}", actor.label);
        let forced = Some(Verification::Forced);
        app.store
            .record_domain_check(actor, service, &added, forced, &by, false)
            .await?
    } else {
        check(app, actor, service, &added).await?
    };
    publish(app, &checked).await?;
    Ok(checked)
}

/// Checks a domain again (DNS, then HTTP); a verified one is routed from then on.
pub async fn verify(app: &App, service: &OwnedService, name: &str) -> Result<Domain> {
    let actor = service.act(Scope::Write)?;
    let domain = find(app, service, name).await?;
    let checked = check(app, actor, service, &domain).await?;
    publish(app, &checked).await?;
    Ok(checked)
}

/// Puts HTTP basic auth in front of a domain (replacing any it had): only a bcrypt hash of
/// the password is kept.
pub async fn set_basic_auth(
    app: &App,
    service: &OwnedService,
    name: &str,
    input: SetBasicAuth,
) -> Result<Domain> {
    let actor = service.act(Scope::Write)?;
    let mut errors = FieldErrors::new();
    errors.check("user", domain::check_basic_auth_user(&input.user));
    errors.check(
        "password",
        domain::check_basic_auth_password(&input.password),
    );
    errors.finish(|| Some(()))?;
    let domain = find(app, service, name).await?;
    let password = input.password;
    let hash = tokio::task::spawn_blocking(move || {
        bcrypt::hash_with_result(password, BASIC_AUTH_COST)
            .map(|hash| hash.format_for_version(bcrypt::Version::TwoY))
    })
    .await
    .map_err(|e| UseCaseError::Internal(format!("hashing the password failed: {e}")))?
    .map_err(|e| UseCaseError::Internal(format!("hashing the password failed: {e}")))?;
    let auth = BasicAuth {
        user: input.user,
        hash,
    };
    let changed = app
        .store
        .set_domain_basic_auth(actor, service, &domain, Some(&auth))
        .await?;
    republish(app, &changed).await?;
    Ok(changed)
}

/// Takes the basic auth away from a domain.
pub async fn clear_basic_auth(app: &App, service: &OwnedService, name: &str) -> Result<Domain> {
    let actor = service.act(Scope::Write)?;
    let domain = find(app, service, name).await?;
    let changed = app
        .store
        .set_domain_basic_auth(actor, service, &domain, None)
        .await?;
    republish(app, &changed).await?;
    Ok(changed)
}

/// Turns HSTS on for a domain (or changes it): sent over HTTPS once its certificate is served.
pub async fn set_hsts(
    app: &App,
    service: &OwnedService,
    name: &str,
    input: SetHsts,
) -> Result<Domain> {
    let actor = service.act(Scope::Write)?;
    let domain = find(app, service, name).await?;
    let hsts = Hsts {
        max_age_seconds: input
            .max_age_seconds
            .unwrap_or(Hsts::DEFAULT_MAX_AGE_SECONDS),
        include_subdomains: input.include_subdomains,
        preload: input.preload,
    };
    hsts.check()
        .map_err(|e| FieldErrors::single("max_age_seconds", e))?;
    let changed = app
        .store
        .set_domain_hsts(actor, service, &domain, Some(hsts))
        .await?;
    republish(app, &changed).await?;
    Ok(changed)
}

/// Turns HSTS off for a domain (browsers that saw it keep it for its max age).
pub async fn clear_hsts(app: &App, service: &OwnedService, name: &str) -> Result<Domain> {
    let actor = service.act(Scope::Write)?;
    let domain = find(app, service, name).await?;
    let changed = app
        .store
        .set_domain_hsts(actor, service, &domain, None)
        .await?;
    republish(app, &changed).await?;
    Ok(changed)
}

/// Makes a domain the service's primary: the URL the service shows, where aliases redirect.
pub async fn make_primary(app: &App, service: &OwnedService, name: &str) -> Result<Domain> {
    let actor = service.act(Scope::Write)?;
    let domain = find(app, service, name).await?;
    if domain.redirect || domain.path_prefix.is_some() {
        return Err(UseCaseError::Conflict(
            "a redirecting domain or one with a path prefix cannot be the primary".into(),
        ));
    }
    app.store
        .set_primary_domain(actor, service, &domain)
        .await?;
    app.platform.publish_routes().await.map_err(internal)?;
    find(app, service, name).await
}

/// Removes a domain; its route goes at once.
pub async fn remove(app: &App, service: &OwnedService, name: &str) -> Result<()> {
    let actor = service.act(Scope::Write)?;
    let domain = find(app, service, name).await?;
    app.store.remove_domain(actor, service, &domain).await?;
    app.platform.publish_routes().await.map_err(internal)?;
    Ok(())
}

/// The public answer to the HTTP check: the token itself when a domain has it.
pub async fn well_known(app: &App, token: &str) -> Result<String> {
    match app.store.domain_by_token(token).await? {
        Some(domain) => Ok(domain.token),
        None => Err(UseCaseError::NotFound("token".into())),
    }
}

/// Checks again every unverified domain whose re-check is due at `now` (waits growing from a
/// minute to an hour, given up after about three days: `recheck_wait`), and routes those
/// that pass. Answers how many it routed; a domain whose check could not be recorded is
/// logged and left for the next round.
pub async fn recheck_due(app: &App, now: Timestamp) -> Result<usize> {
    let mut routed = 0;
    for domain in app.store.domains_due_for_check(now).await? {
        match recheck(app, &domain).await {
            Ok(checked) if checked.is_routed() => routed += 1,
            Ok(_) => {}
            Err(error) => tracing::warn!(domain = %domain.name, %error, "re-checking failed"),
        }
    }
    if routed > 0 {
        app.platform.publish_routes().await.map_err(internal)?;
        app.platform.certificates_due.notify_one();
    }
    Ok(routed)
}

async fn recheck(app: &App, domain: &Domain) -> Result<Domain> {
    let service = app.store.service_by_id(domain.service_id).await?;
    let team = app.store.service_team(&service).await?;
    let actor = Actor::system(team, "domain re-check");
    check_as(app, &actor, &service, domain, true).await
}

/// Runs [`recheck_due`] every minute until `stop` (a supervised task).
pub async fn recheck_periodically(app: App, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(RECHECK_PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match recheck_due(&app, Timestamp::now()).await {
            Ok(0) => {}
            Ok(routed) => tracing::info!(routed, "domains verified by their re-check"),
            Err(error) => tracing::warn!(%error, "re-checking domains failed"),
        }
    }
}

/// Names Helvetia gives out itself are not domains one adds: the base domain and everything
/// under it, and the control plane's public host.
fn refuse_reserved(app: &App, name: &DomainName) -> Result<()> {
    let settings = &app.platform.settings;
    let reserved = if name.is_within(&settings.base_domain) {
        Some(format!(
            "names under `{}` are the services' generated hostnames",
            settings.base_domain
        ))
    } else {
        settings
            .public_url
            .as_ref()
            .filter(|url| name.covers(url.host()))
            .map(|_| "this is Helvetia's own public host".to_owned())
    };
    match reserved {
        Some(why) => Err(FieldErrors::single("name", Invalid::new(why)).into()),
        None => Ok(()),
    }
}

/// The domain of `service` named `name` (the first, by path prefix, when it has several).
pub(super) async fn find(app: &App, service: &Service, name: &str) -> Result<Domain> {
    let name = DomainName::parse(name, true).map_err(|e| FieldErrors::single("domain", e))?;
    app.store
        .domains(service.id)
        .await?
        .into_iter()
        .find(|domain| domain.name == name)
        .ok_or_else(|| UseCaseError::NotFound(format!("domain `{name}`")))
}

/// Runs the checks — DNS, then HTTP — and records what they found.
async fn check(app: &App, actor: &Actor, service: &Service, domain: &Domain) -> Result<Domain> {
    check_as(app, actor, service, domain, false).await
}

/// [`check`], by a person or (`automatic`) by the periodic re-check.
async fn check_as(
    app: &App,
    actor: &Actor,
    service: &Service,
    domain: &Domain,
    automatic: bool,
) -> Result<Domain> {
    let (verified, found) = match dns_check(app, domain).await {
        Ok(()) => (
            Some(Verification::Dns),
            "its DNS points at this server".to_owned(),
        ),
        Err(dns) => match http_check(app, domain).await {
            Ok(()) => (
                Some(Verification::HttpToken),
                format!("the HTTP check passed ({dns})"),
            ),
            Err(http) => (None, format!("DNS: {dns}; HTTP check: {http}")),
        },
    };
    Ok(app
        .store
        .record_domain_check(actor, service, domain, verified, &found, automatic)
        .await?)
}

async fn dns_check(app: &App, domain: &Domain) -> std::result::Result<(), String> {
    // A wildcard is checked through one name it covers.
    let name = match domain.name.as_str().strip_prefix("*.") {
        Some(parent) => format!("helvetia-check.{parent}"),
        None => domain.name.to_string(),
    };
    let answered = app
        .platform
        .outbound
        .lookup(&name)
        .await
        .map_err(|error| error.to_string())?;
    domain::points_here(&answered, &app.platform.settings.public_addresses)
}

async fn http_check(app: &App, domain: &Domain) -> std::result::Result<(), String> {
    if domain.name.is_wildcard() {
        return Err("a wildcard is verified by its DNS".into());
    }
    let port = app.platform.settings.public_port.unwrap_or(80);
    let url = format!(
        "http://{}:{port}{WELL_KNOWN_PATH}{}",
        domain.name, domain.token
    );
    let url = url::Url::parse(&url).map_err(|e| e.to_string())?;
    let client = app
        .platform
        .outbound
        .http_client(&url, HTTP_CHECK_TIMEOUT)
        .await
        .map_err(|error| error.to_string())?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("no answer ({})", e.without_url()))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status.is_success() && body.trim() == domain.token {
        Ok(())
    } else {
        Err(format!(
            "`{}{WELL_KNOWN_PATH}…` answered {status} without the token",
            domain.name
        ))
    }
}

/// Publishes the routes after a change of a routed domain's settings (an unverified one is
/// not published yet).
pub(super) async fn republish(app: &App, domain: &Domain) -> Result<()> {
    if domain.is_routed() {
        app.platform.publish_routes().await.map_err(internal)?;
    }
    Ok(())
}

/// Publishes the routes when `domain` is routed (an unverified one changes nothing).
async fn publish(app: &App, domain: &Domain) -> Result<()> {
    if domain.is_routed() {
        app.platform.publish_routes().await.map_err(internal)?;
        // Its certificate is ordered now (when a CA is configured), not at the next round.
        app.platform.certificates_due.notify_one();
    }
    Ok(())
}

/// The public answer to a CA's HTTP-01 challenge of an order in progress.
pub fn acme_challenge(app: &App, token: &str) -> Result<String> {
    app.platform
        .acme_challenges
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(token)
        .cloned()
        .ok_or_else(|| UseCaseError::NotFound("challenge".into()))
}

fn internal(error: impl std::fmt::Display) -> UseCaseError {
    UseCaseError::Internal(format!("publishing the routes failed: {error}"))
}
