//! A service's custom domains (token routes under the service), and the public answer to
//! the HTTP check at `/.well-known/helvetia/{token}`, which the edge router relays from every
//! host.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use helvetia_api_types::{AddDomain, Domain, SetBasicAuth, SetHsts, UploadCertificate};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiResult, ErrorBody};
use super::extract::ServicePath;
use super::json::{ApiJson, ApiPath};
use crate::usecases::{certificates, domains};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_domains, add_domain))
        .routes(routes!(remove_domain))
        .routes(routes!(verify_domain))
        .routes(routes!(make_primary))
        .routes(routes!(set_basic_auth, clear_basic_auth))
        .routes(routes!(set_hsts, clear_hsts))
        .routes(routes!(upload_certificate, remove_uploaded_certificate))
        .routes(routes!(well_known))
        .routes(routes!(acme_challenge))
}

#[derive(serde::Deserialize)]
struct DomainPath {
    domain: String,
}

/// A service's domains, the primary first: each with how it was verified, or what its last
/// check found.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}/domains", tag = "domains",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    security(("token" = ["read"])),
    responses((status = OK, body = Vec<Domain>))
)]
async fn list_domains(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
) -> ApiResult<Json<Vec<Domain>>> {
    Ok(Json(domains::list(&state.app, &service).await?))
}

/// Add a domain: it is checked at once (its DNS, then a token fetched through it) and routed
/// when the check passes; `force` routes it unchecked (team admins).
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/services/{service}/domains", tag = "domains",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    request_body = AddDomain,
    security(("token" = ["write"])),
    responses(
        (status = CREATED, body = Domain),
        (status = CONFLICT, body = ErrorBody, description = "The domain is in use"),
    )
)]
async fn add_domain(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiJson(body): ApiJson<AddDomain>,
) -> ApiResult<(StatusCode, Json<Domain>)> {
    let added = domains::add(&state.app, &service, body).await?;
    Ok((StatusCode::CREATED, Json(added)))
}

/// Remove a domain; its route goes at once.
#[utoipa::path(
    delete, path = "/api/v1/projects/{project}/services/{service}/domains/{domain}", tag = "domains",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("domain" = String, Path, description = "The domain"),
    ),
    security(("token" = ["write"])),
    responses((status = NO_CONTENT, description = "Removed"))
)]
async fn remove_domain(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiPath(path): ApiPath<DomainPath>,
) -> ApiResult<StatusCode> {
    domains::remove(&state.app, &service, &path.domain).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Check a domain again (its DNS, then the HTTP token); it is routed once a check passes.
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/services/{service}/domains/{domain}/verify", tag = "domains",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("domain" = String, Path, description = "The domain"),
    ),
    security(("token" = ["write"])),
    responses((status = OK, body = Domain))
)]
async fn verify_domain(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiPath(path): ApiPath<DomainPath>,
) -> ApiResult<Json<Domain>> {
    Ok(Json(
        domains::verify(&state.app, &service, &path.domain).await?,
    ))
}

/// Make a domain the service's primary: the one aliases redirect to.
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/services/{service}/domains/{domain}/primary", tag = "domains",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("domain" = String, Path, description = "The domain"),
    ),
    security(("token" = ["write"])),
    responses(
        (status = OK, body = Domain),
        (status = CONFLICT, body = ErrorBody, description = "A redirecting domain or one with a path prefix"),
    )
)]
async fn make_primary(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiPath(path): ApiPath<DomainPath>,
) -> ApiResult<Json<Domain>> {
    Ok(Json(
        domains::make_primary(&state.app, &service, &path.domain).await?,
    ))
}

/// Put HTTP basic auth in front of a domain (replacing any): its hosts ask for the credentials,
/// the service's other names do not. Only a bcrypt hash of the password is kept.
#[utoipa::path(
    put, path = "/api/v1/projects/{project}/services/{service}/domains/{domain}/basic-auth", tag = "domains",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("domain" = String, Path, description = "The domain"),
    ),
    request_body = SetBasicAuth,
    security(("token" = ["write"])),
    responses((status = OK, body = Domain))
)]
async fn set_basic_auth(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiPath(path): ApiPath<DomainPath>,
    ApiJson(body): ApiJson<SetBasicAuth>,
) -> ApiResult<Json<Domain>> {
    Ok(Json(
        domains::set_basic_auth(&state.app, &service, &path.domain, body).await?,
    ))
}

/// Take a domain's basic auth away.
#[utoipa::path(
    delete, path = "/api/v1/projects/{project}/services/{service}/domains/{domain}/basic-auth", tag = "domains",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("domain" = String, Path, description = "The domain"),
    ),
    security(("token" = ["write"])),
    responses((status = OK, body = Domain))
)]
async fn clear_basic_auth(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiPath(path): ApiPath<DomainPath>,
) -> ApiResult<Json<Domain>> {
    Ok(Json(
        domains::clear_basic_auth(&state.app, &service, &path.domain).await?,
    ))
}

/// Serve a certificate of your own for a domain (chain and key), instead of one Helvetia
/// orders: checked (the key is the certificate's, it covers the domain, it is valid now),
/// never renewed; the key is sealed and never shown.
#[utoipa::path(
    put, path = "/api/v1/projects/{project}/services/{service}/domains/{domain}/certificate", tag = "domains",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("domain" = String, Path, description = "The domain"),
    ),
    request_body = UploadCertificate,
    security(("token" = ["write"])),
    responses(
        (status = OK, body = Domain),
        (status = UNPROCESSABLE_ENTITY, description = "The key is not the certificate's, or the certificate does not cover the domain or is not valid now", body = ErrorBody),
    )
)]
async fn upload_certificate(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiPath(path): ApiPath<DomainPath>,
    ApiJson(body): ApiJson<UploadCertificate>,
) -> ApiResult<Json<Domain>> {
    Ok(Json(
        certificates::upload(&state.app, &service, &path.domain, body).await?,
    ))
}

/// Stop serving a domain's uploaded certificate (Helvetia orders one when it is the ACME
/// client).
#[utoipa::path(
    delete, path = "/api/v1/projects/{project}/services/{service}/domains/{domain}/certificate", tag = "domains",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("domain" = String, Path, description = "The domain"),
    ),
    security(("token" = ["write"])),
    responses((status = OK, body = Domain))
)]
async fn remove_uploaded_certificate(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiPath(path): ApiPath<DomainPath>,
) -> ApiResult<Json<Domain>> {
    Ok(Json(
        certificates::remove_upload(&state.app, &service, &path.domain).await?,
    ))
}

/// Turn HSTS on for a domain (or change it): sent over HTTPS once its certificate is served.
#[utoipa::path(
    put, path = "/api/v1/projects/{project}/services/{service}/domains/{domain}/hsts", tag = "domains",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("domain" = String, Path, description = "The domain"),
    ),
    request_body = SetHsts,
    security(("token" = ["write"])),
    responses((status = OK, body = Domain))
)]
async fn set_hsts(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiPath(path): ApiPath<DomainPath>,
    ApiJson(body): ApiJson<SetHsts>,
) -> ApiResult<Json<Domain>> {
    Ok(Json(
        domains::set_hsts(&state.app, &service, &path.domain, body).await?,
    ))
}

/// Turn HSTS off for a domain.
#[utoipa::path(
    delete, path = "/api/v1/projects/{project}/services/{service}/domains/{domain}/hsts", tag = "domains",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("domain" = String, Path, description = "The domain"),
    ),
    security(("token" = ["write"])),
    responses((status = OK, body = Domain))
)]
async fn clear_hsts(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiPath(path): ApiPath<DomainPath>,
) -> ApiResult<Json<Domain>> {
    Ok(Json(
        domains::clear_hsts(&state.app, &service, &path.domain).await?,
    ))
}

/// The HTTP check's token, served on every host the edge router relays here (public: the
/// token proves only that the domain reaches this server).
#[utoipa::path(
    get, path = "/.well-known/helvetia/{token}", tag = "domains",
    params(("token" = String, Path, description = "A domain's check token")),
    responses(
        (status = OK, description = "The token", content_type = "text/plain"),
        (status = NOT_FOUND, body = ErrorBody, description = "No domain has this token"),
    )
)]
async fn well_known(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> ApiResult<impl IntoResponse> {
    let token = domains::well_known(&state.app, &token).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], token))
}

/// A CA's HTTP-01 challenge of a certificate order in progress (public: the CA fetches it
/// through the domain, on every host).
#[utoipa::path(
    get, path = "/.well-known/acme-challenge/{token}", tag = "domains",
    params(("token" = String, Path, description = "The challenge's token")),
    responses(
        (status = OK, description = "The key authorization", content_type = "text/plain"),
        (status = NOT_FOUND, body = ErrorBody, description = "No order in progress has this token"),
    )
)]
async fn acme_challenge(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> ApiResult<impl IntoResponse> {
    let answer = domains::acme_challenge(&state.app, &token)?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        answer,
    ))
}
