//! Custom domains of services: one service per domain (and path prefix) across the
//! installation, a primary per service, what each check found; verified ones join the routing
//! table (`runtime.rs`).

use helvetia_core::audit::AuditAction;
use helvetia_core::auth::Actor;
use helvetia_core::domain::{
    BasicAuthUser, Domain, DomainName, Hsts, RECHECKS_STOPPED, Verification, recheck_wait,
};
use helvetia_core::routing::BasicAuth;
use helvetia_core::service::Service;
use jiff::Timestamp;

use crate::audit::audit;
use crate::certificates::CertificateColumns;
use crate::services::{domain_target, require_team_service, target};
use crate::{Result, Store, StoreError, WritePool, millis, now_millis, timestamp, with_pool};

/// A domain to add to a service.
pub struct NewDomain<'a> {
    pub name: &'a DomainName,
    pub path_prefix: Option<&'a str>,
    pub redirect: bool,
    pub token: &'a str,
}

#[derive(sqlx::FromRow)]
struct DomainRow {
    id: i64,
    service_id: i64,
    name: String,
    path_prefix: String,
    is_primary: bool,
    redirect: bool,
    token: String,
    verification: Option<String>,
    verified_at: Option<i64>,
    last_check: Option<String>,
    checked_at: Option<i64>,
    created_at: i64,
    basic_auth_user: Option<String>,
    hsts_max_age: Option<i64>,
    hsts_include_subdomains: bool,
    hsts_preload: bool,
    next_check_at: Option<i64>,
    #[sqlx(flatten)]
    certificate: CertificateColumns,
}

impl TryFrom<DomainRow> for Domain {
    type Error = StoreError;
    fn try_from(row: DomainRow) -> Result<Domain> {
        let corrupt = |what| move |e| StoreError::corrupt(what, e);
        Ok(Domain {
            id: row.id,
            service_id: row.service_id,
            name: DomainName::parse(&row.name, true).map_err(corrupt("domain name"))?,
            path_prefix: Some(row.path_prefix).filter(|prefix| !prefix.is_empty()),
            primary: row.is_primary,
            redirect: row.redirect,
            verification: row
                .verification
                .map(|text| {
                    Verification::parse(&text).ok_or_else(|| {
                        StoreError::corrupt("domain verification", format!("`{text}`"))
                    })
                })
                .transpose()?,
            verified_at: row.verified_at.map(timestamp).transpose()?,
            last_check: row.last_check,
            checked_at: row.checked_at.map(timestamp).transpose()?,
            token: row.token,
            created_at: timestamp(row.created_at)?,
            basic_auth: row.basic_auth_user.map(|user| BasicAuthUser { user }),
            hsts: row.hsts_max_age.map(|max_age| Hsts {
                max_age_seconds: u64::try_from(max_age).unwrap_or_default(),
                include_subdomains: row.hsts_include_subdomains,
                preload: row.hsts_preload,
            }),
            next_check_at: row.next_check_at.map(timestamp).transpose()?,
            certificate: row.certificate.into_certificate()?,
        })
    }
}

const SELECT_DOMAINS: &str = "SELECT d.id, d.service_id, d.name, d.path_prefix, d.is_primary, \
     d.redirect, d.token, d.verification, d.verified_at, d.last_check, d.checked_at, d.created_at, \
     d.basic_auth_user, d.hsts_max_age, d.hsts_include_subdomains, d.hsts_preload, \
     d.next_check_at, \
     c.state AS certificate_state, c.uploaded, c.issuer, c.not_before, c.not_after, c.reason, c.failures, \
     c.next_attempt_at, c.updated_at AS certificate_updated_at \
     FROM domains d LEFT JOIN certificates c ON c.domain_id = d.id";

/// A change of a domain's settings.
enum DomainChange<'a> {
    BasicAuth(Option<&'a BasicAuth>),
    Hsts(Option<Hsts>),
}

impl DomainChange<'_> {
    /// What the audit log says of it (never the hash).
    fn describe(&self) -> String {
        match self {
            DomainChange::BasicAuth(Some(auth)) => format!("basic auth for {}", auth.user),
            DomainChange::BasicAuth(None) => "no basic auth".to_owned(),
            DomainChange::Hsts(Some(hsts)) => format!("HSTS max-age {}", hsts.max_age_seconds),
            DomainChange::Hsts(None) => "no HSTS".to_owned(),
        }
    }
}

impl Store {
    /// Adds a domain to `service`: the service's first one that does not redirect becomes its
    /// primary. A domain (with the same path prefix) of another service, or a generated
    /// hostname, is refused.
    pub async fn add_domain(
        &self,
        actor: &Actor,
        service: &Service,
        new: &NewDomain<'_>,
    ) -> Result<Domain> {
        let name = new.name.as_str();
        let id: i64 = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let owner = format!("service `{}`", target(&service.project, &service.name));
            require_team_service!(tx, service.id, actor.team, owner);
            let generated: Option<i64> =
                sqlx::query_scalar("SELECT id FROM hostnames WHERE hostname = $1")
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await?;
            if generated.is_some() {
                return Err(StoreError::Conflict(format!(
                    "`{name}` is a service's generated hostname"
                )));
            }
            let has_primary: Option<i64> =
                sqlx::query_scalar("SELECT id FROM domains WHERE service_id = $1 AND is_primary")
                    .bind(service.id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let primary = has_primary.is_none() && !new.redirect && new.path_prefix.is_none();
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO domains (service_id, name, path_prefix, is_primary, redirect, token,
                                      created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(service.id)
            .bind(name)
            .bind(new.path_prefix.unwrap_or_default())
            .bind(primary)
            .bind(new.redirect)
            .bind(new.token)
            .bind(now_millis())
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::unique(format!(
                "domain `{name}{}` is already in use",
                new.path_prefix.unwrap_or_default()
            )))?;
            audit!(
                tx,
                actor,
                AuditAction::DomainAdd,
                domain_target(service, name)
            );
            tx.commit().await?;
            id
        });
        self.domain(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("domain `{name}`")))
    }

    pub async fn domain(&self, id: i64) -> Result<Option<Domain>> {
        let query = format!("{SELECT_DOMAINS} WHERE d.id = $1");
        let row: Option<DomainRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(query.clone()))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(Domain::try_from).transpose()
    }

    /// `domain` as stored now, after a change.
    async fn domain_again(&self, domain: &Domain) -> Result<Domain> {
        self.domain(domain.id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("domain `{}`", domain.name)))
    }

    /// A service's domains, the primary first, then by name.
    pub async fn domains(&self, service_id: i64) -> Result<Vec<Domain>> {
        let query = format!(
            "{SELECT_DOMAINS} WHERE d.service_id = $1 ORDER BY d.is_primary DESC, d.name, d.path_prefix"
        );
        let rows: Vec<DomainRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(query.clone()))
                .bind(service_id)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(Domain::try_from).collect()
    }

    /// The domain whose HTTP-check token is `token`.
    pub async fn domain_by_token(&self, token: &str) -> Result<Option<Domain>> {
        let query = format!("{SELECT_DOMAINS} WHERE d.token = $1");
        let row: Option<DomainRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(query.clone()))
                .bind(token)
                .fetch_optional(pool)
                .await?
        });
        row.map(Domain::try_from).transpose()
    }

    /// Records what a check of `domain` found; `verified` routes it (a later failed check
    /// leaves a routed domain routed: it only says what it found). An unverified domain is
    /// checked again by itself: a person's check (`automatic` false) starts the waits over, an
    /// automatic one waits longer ([`recheck_wait`]) — and the last one gives up, saying so.
    pub async fn record_domain_check(
        &self,
        actor: &Actor,
        service: &Service,
        domain: &Domain,
        verified: Option<Verification>,
        found: &str,
        automatic: bool,
    ) -> Result<Domain> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let now = now_millis();
            let done: i64 = sqlx::query_scalar("SELECT rechecks FROM domains WHERE id = $1")
                .bind(domain.id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("domain `{}`", domain.name)))?;
            let (rechecks, next_check_at, found) =
                if verified.is_some() || domain.verification.is_some() {
                    (0, None, found.to_owned())
                } else {
                    let rechecks = if automatic {
                        u32::try_from(done).unwrap_or(u32::MAX).saturating_add(1)
                    } else {
                        0
                    };
                    match recheck_wait(rechecks) {
                        Some(wait) => {
                            let wait = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
                            (rechecks, Some(now.saturating_add(wait)), found.to_owned())
                        }
                        None => (rechecks, None, format!("{found}; {RECHECKS_STOPPED}")),
                    }
                };
            sqlx::query(
                "UPDATE domains SET last_check = $1, checked_at = $2,
                        verification = COALESCE(verification, $3),
                        verified_at = COALESCE(verified_at, CASE WHEN $3 IS NULL THEN NULL ELSE $2 END),
                        rechecks = $6, next_check_at = $7
                 WHERE id = $4 AND service_id = $5",
            )
            .bind(&found)
            .bind(now)
            .bind(verified.map(Verification::as_str))
            .bind(domain.id)
            .bind(service.id)
            .bind(i64::from(rechecks))
            .bind(next_check_at)
            .execute(&mut *tx)
            .await?;
            if let (Some(how), None) = (verified, domain.verification) {
                let entry = format!(
                    "{} ({})",
                    domain_target(service, domain.name.as_str()),
                    how.as_str()
                );
                audit!(tx, actor, AuditAction::DomainVerify, entry);
            }
            tx.commit().await?;
        });
        self.domain_again(domain).await
    }

    /// Unverified domains whose automatic re-check is due at `now`, the longest waiting first.
    pub async fn domains_due_for_check(&self, now: Timestamp) -> Result<Vec<Domain>> {
        let query = format!(
            "{SELECT_DOMAINS} WHERE d.verification IS NULL AND d.next_check_at <= $1 \
             ORDER BY d.next_check_at, d.id"
        );
        let rows: Vec<DomainRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(query.clone()))
                .bind(millis(now))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(Domain::try_from).collect()
    }

    /// Sets (or with `None` clears) the HTTP basic auth in front of `domain`: a user and the
    /// bcrypt hash of its password.
    pub async fn set_domain_basic_auth(
        &self,
        actor: &Actor,
        service: &Service,
        domain: &Domain,
        auth: Option<&BasicAuth>,
    ) -> Result<Domain> {
        self.change_domain(actor, service, domain, DomainChange::BasicAuth(auth))
            .await
    }

    /// Sets (or with `None` clears) the HSTS header of `domain`.
    pub async fn set_domain_hsts(
        &self,
        actor: &Actor,
        service: &Service,
        domain: &Domain,
        hsts: Option<Hsts>,
    ) -> Result<Domain> {
        self.change_domain(actor, service, domain, DomainChange::Hsts(hsts))
            .await
    }

    async fn change_domain(
        &self,
        actor: &Actor,
        service: &Service,
        domain: &Domain,
        change: DomainChange<'_>,
    ) -> Result<Domain> {
        let entry = format!(
            "{}: {}",
            domain_target(service, domain.name.as_str()),
            change.describe()
        );
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let query = match change {
                DomainChange::BasicAuth(auth) => sqlx::query(
                    "UPDATE domains SET basic_auth_user = $1, basic_auth_hash = $2
                     WHERE id = $3 AND service_id = $4",
                )
                .bind(auth.map(|auth| auth.user.clone()))
                .bind(auth.map(|auth| auth.hash.clone())),
                DomainChange::Hsts(hsts) => sqlx::query(
                    "UPDATE domains SET hsts_max_age = $1, hsts_include_subdomains = $2,
                            hsts_preload = $3
                     WHERE id = $4 AND service_id = $5",
                )
                .bind(hsts.map(|hsts| i64::try_from(hsts.max_age_seconds).unwrap_or(i64::MAX)))
                .bind(hsts.is_some_and(|hsts| hsts.include_subdomains))
                .bind(hsts.is_some_and(|hsts| hsts.preload)),
            };
            query
                .bind(domain.id)
                .bind(service.id)
                .execute(&mut *tx)
                .await?;
            audit!(tx, actor, AuditAction::DomainSettings, entry.clone());
            tx.commit().await?;
        });
        self.domain_again(domain).await
    }

    /// Makes `domain` its service's primary (the one the service's URL names).
    pub async fn set_primary_domain(
        &self,
        actor: &Actor,
        service: &Service,
        domain: &Domain,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("UPDATE domains SET is_primary = (id = $1) WHERE service_id = $2")
                .bind(domain.id)
                .bind(service.id)
                .execute(&mut *tx)
                .await?;
            audit!(
                tx,
                actor,
                AuditAction::DomainPrimary,
                domain_target(service, domain.name.as_str())
            );
            tx.commit().await?;
        });
        Ok(())
    }

    /// Removes a domain; a removed primary passes to the oldest remaining domain that neither
    /// redirects nor has a path prefix.
    pub async fn remove_domain(
        &self,
        actor: &Actor,
        service: &Service,
        domain: &Domain,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let removed = sqlx::query("DELETE FROM domains WHERE id = $1 AND service_id = $2")
                .bind(domain.id)
                .bind(service.id)
                .execute(&mut *tx)
                .await?;
            if removed.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("domain `{}`", domain.name)));
            }
            if domain.primary {
                sqlx::query(
                    "UPDATE domains SET is_primary = TRUE WHERE id = (
                         SELECT id FROM domains
                         WHERE service_id = $1 AND NOT redirect AND path_prefix = ''
                         ORDER BY created_at, id LIMIT 1)",
                )
                .bind(service.id)
                .execute(&mut *tx)
                .await?;
            }
            audit!(
                tx,
                actor,
                AuditAction::DomainRemove,
                domain_target(service, domain.name.as_str())
            );
            tx.commit().await?;
        });
        Ok(())
    }
}
