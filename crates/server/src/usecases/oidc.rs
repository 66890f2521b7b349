//! Deploys from CI without a stored secret: the trusts a service holds in OpenID Connect
//! issuers, and the deploy a CI job asks for with its issuer's token.
//!
//! A token is looked at in this order, so nothing is fetched for an issuer no trust names and
//! a service of another team reads like one that does not exist: the service named, its
//! trusts of the token's (unverified) `iss`, the token verified against that issuer's keys
//! ([`crate::oidc`]), and the claims against each of those trusts. The job then acts as a
//! [`Principal::CiJob`] — a member of the service's team with the `deploy` scope alone — and
//! asks for the deployment through [`deployments::create`], as the API does; the audit log
//! names the trust and the claims.

use std::collections::BTreeMap;

use helvetia_api_types::{CreateDeployment, CreateTrust, OidcDeploy};
use helvetia_core::auth::{Caller, Credential, Principal, Role, Scope, Scopes};
use helvetia_core::deployment::Deployment;
use helvetia_core::name::{ProjectName, ServiceName};
use helvetia_core::oidc::{self, GITHUB_ACTIONS_ISSUER, Trust, TrustRules};
use helvetia_core::validation::{FieldErrors, Invalid};
use serde::Deserialize;

use super::access::{self, OwnedService};
use super::{App, Result, UseCaseError, deployments};

/// A service's trusts, oldest first.
pub async fn list(app: &App, service: &OwnedService) -> Result<Vec<Trust>> {
    service.act(Scope::Read)?;
    Ok(app.store.trusts(service.id).await?)
}

/// Makes the service trust `input.issuer`'s tokens that carry its claims.
pub async fn add(app: &App, service: &OwnedService, input: CreateTrust) -> Result<Trust> {
    let actor = service.act(Scope::Write)?;
    let mut errors = FieldErrors::new();
    let issuer = errors.check(
        "issuer",
        oidc::parse_issuer(input.issuer.as_deref().unwrap_or(GITHUB_ACTIONS_ISSUER)),
    );
    let linked = service.github.as_ref();
    let repository = match (&input.repository, linked) {
        (Some(repository), _) => oidc::parse_repository(repository),
        (None, Some(link)) => Ok(link.full_name.clone()),
        (None, None) => Err(Invalid::new(
            "is required: the service is not linked to a GitHub repository",
        )),
    };
    let repository = errors.check("repository", repository);
    let git_ref = errors.check("ref", oidc::parse_ref_rule(&input.git_ref));
    let environment = errors.check_optional(
        "environment",
        input.environment.as_deref(),
        oidc::parse_environment,
    );
    let (issuer, repository, git_ref, environment) =
        errors.finish(|| Some((issuer?, repository?, git_ref?, environment?)))?;
    // GitHub's tokens name the repository's id too: bind it when the trust is for the
    // repository the service is linked to.
    let repository_id = linked
        .filter(|link| {
            issuer == GITHUB_ACTIONS_ISSUER && link.full_name.eq_ignore_ascii_case(&repository)
        })
        .map(|link| link.repository_id);
    let rules = TrustRules {
        issuer,
        repository,
        repository_id,
        git_ref,
        environment,
    };
    Ok(app.store.add_trust(actor, service, &rules).await?)
}

/// Removes trust `id` of the service.
pub async fn remove(app: &App, service: &OwnedService, id: i64) -> Result<()> {
    let actor = service.act(Scope::Write)?;
    Ok(app.store.remove_trust(actor, service, id).await?)
}

/// The one claim read before the token is verified: which issuer's keys to verify it with.
#[derive(Deserialize)]
struct Issuer {
    iss: String,
}

/// Queues a deployment of `input`'s service for the CI job whose OpenID Connect `token` one
/// of the service's trusts covers; `client` is the request's address.
pub async fn deploy(
    app: &App,
    token: &str,
    input: OidcDeploy,
    client: Option<String>,
) -> Result<Deployment> {
    let audiences = audiences(app)?;
    let mut errors = FieldErrors::new();
    let project = errors.check("project", ProjectName::parse(&input.project));
    let name = errors.check("service", ServiceName::parse(&input.service));
    let (project, name) = errors.finish(|| Some((project?, name?)))?;
    let issuer = jsonwebtoken::dangerous::insecure_decode_claims::<Issuer>(token)
        .map_err(|e| UseCaseError::TokenRefused(format!("the token is not a JWT with `iss`: {e}")))?
        .iss;
    // The same answer whether the service does not exist, is another team's or trusts
    // another issuer: a token does not learn which services exist.
    let untrusted = || {
        UseCaseError::Forbidden(format!(
            "service `{project}/{name}` trusts no token of issuer `{issuer}`"
        ))
    };
    let Some(team) = app.store.project_team(&project).await? else {
        return Err(untrusted());
    };
    let service = match app.store.service(team, &project, &name).await {
        Ok(service) => service,
        Err(helvetia_store::StoreError::NotFound(_)) => return Err(untrusted()),
        Err(error) => return Err(error.into()),
    };
    let trusts: Vec<Trust> = app
        .store
        .trusts(service.id)
        .await?
        .into_iter()
        .filter(|trust| trust.issuer == issuer.trim_end_matches('/'))
        .collect();
    let Some(first) = trusts.first() else {
        return Err(untrusted());
    };
    let claims = app
        .oidc
        .verify(&app.platform.outbound, token, &first.issuer, &audiences)
        .await
        .map_err(|refused| UseCaseError::TokenRefused(refused.to_string()))?;
    let mut mismatches = vec![];
    let mut covering = None;
    for trust in &trusts {
        match trust.check(&claims) {
            Ok(()) => {
                covering = Some(trust);
                break;
            }
            Err(mismatch) => mismatches.push(format!("trust {}: {mismatch}", trust.id)),
        }
    }
    let Some(trust) = covering else {
        return Err(UseCaseError::Forbidden(format!(
            "no trust of service `{project}/{name}` covers this token: {}",
            mismatches.join("; ")
        )));
    };
    let caller = Caller {
        principal: Principal::CiJob {
            trust: trust.id,
            claims: claims.describe(),
        },
        credential: Credential::IdToken {
            issuer: trust.issuer.clone(),
        },
        scopes: Scopes::new([Scope::Deploy])
            .map_err(|e| UseCaseError::Internal(format!("the deploy scope: {}", e.0)))?,
        teams: BTreeMap::from([(team, Role::Member)]),
        client,
    };
    let owned = access::service(app, &caller, project.as_str(), name.as_str()).await?;
    let request = CreateDeployment {
        branch: claims.branch(),
        commit: claims.sha.clone(),
    };
    deployments::create(app, &owned, request).await
}

/// The audiences a token may name: this server's public URL, with or without its trailing
/// `/` (GitHub's `core.getIDToken(audience)` takes it as written).
fn audiences(app: &App) -> Result<Vec<String>> {
    let url = app.platform.settings.public_url().ok_or_else(|| {
        UseCaseError::Refused(
            "this server has no public URL (`--public-url`), which deploys from CI need as \
             their tokens' audience"
                .into(),
        )
    })?;
    let with_slash = url.as_str().to_owned();
    let without = with_slash.trim_end_matches('/').to_owned();
    Ok(vec![without, with_slash])
}
