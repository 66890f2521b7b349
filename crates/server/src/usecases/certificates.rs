//! The installation's certificates of every kind — custom domains', generated hostnames',
//! wildcards', the public URL's — with their states: for instance administrators, since they
//! name every team's hosts. A domain's certificate is also shown with the domain. And a
//! domain's own certificate, uploaded by its team instead of one Helvetia orders.

use helvetia_api_types::{CertificateView, UploadCertificate};
use helvetia_core::auth::{Caller, Scope};
use helvetia_core::certificate::{CertificateSubject, covers};
use helvetia_core::domain::Domain;
use helvetia_core::validation::{FieldErrors, Invalid};
use helvetia_engine::acme::UploadedCertificate;
use helvetia_store::certificates::Uploaded;
use jiff::Timestamp;

use super::access::OwnedService;
use super::domains::{find, republish};
use super::{App, Result, UseCaseError};
use crate::vault::certificate_key_binding;

pub async fn list(app: &App, caller: &Caller) -> Result<Vec<CertificateView>> {
    if !caller.is_instance_admin() {
        return Err(UseCaseError::Forbidden(
            "the certificates name every team's hosts: they are for instance administrators".into(),
        ));
    }
    let certificates = app.store.certificates().await?;
    Ok(certificates
        .into_iter()
        .map(|stored| CertificateView {
            id: stored.id,
            kind: stored.subject.kind,
            names: stored.subject.names,
            domain_id: stored.subject.domain_id,
            certificate: stored.certificate,
        })
        .collect())
}

/// Serves the uploaded chain and key for a domain from now on, in place of any certificate it
/// had: the key must be the chain's, the certificate must cover the domain and be valid now.
pub async fn upload(
    app: &App,
    service: &OwnedService,
    name: &str,
    input: UploadCertificate,
) -> Result<Domain> {
    let actor = service.act(Scope::Write)?;
    let domain = find(app, service, name).await?;
    if domain.path_prefix.is_some() {
        return Err(UseCaseError::Conflict(
            "a domain with a path prefix is served with its name's certificate: upload it there"
                .into(),
        ));
    }
    let checked = UploadedCertificate::check(&input.chain_pem, &input.key_pem)
        .map_err(|e| FieldErrors::single("chain_pem", Invalid::new(e.to_string())))?;
    if !checked
        .names
        .iter()
        .any(|covered| covers(covered, domain.name.as_str()))
    {
        let names = checked.names.join(", ");
        let refused = format!("the certificate is for {names} — not {}", domain.name);
        return Err(FieldErrors::single("chain_pem", Invalid::new(refused)).into());
    }
    let info = &checked.info;
    let now = Timestamp::now();
    if info.not_after <= now || info.not_before > now {
        let refused = format!(
            "the certificate is valid from {} until {}: not now",
            info.not_before, info.not_after
        );
        return Err(FieldErrors::single("chain_pem", Invalid::new(refused)).into());
    }
    let subject = CertificateSubject::domain(domain.id, domain.name.as_str());
    let sealed_key = app
        .platform
        .vault
        .seal(&certificate_key_binding(&subject), &input.key_pem);
    let uploaded = Uploaded {
        chain_pem: &input.chain_pem,
        sealed_key: &sealed_key,
        issuer: &info.issuer,
        not_before: info.not_before,
        not_after: info.not_after,
    };
    app.store
        .upload_certificate(actor, service, &domain, &uploaded)
        .await?;
    let changed = find(app, service, name).await?;
    republish(app, &changed).await?;
    Ok(changed)
}

/// Stops serving a domain's uploaded certificate: Helvetia orders one for it again when it
/// is the ACME client, otherwise the domain is served over HTTP only.
pub async fn remove_upload(app: &App, service: &OwnedService, name: &str) -> Result<Domain> {
    let actor = service.act(Scope::Write)?;
    let domain = find(app, service, name).await?;
    if !app
        .store
        .remove_uploaded_certificate(actor, service, &domain)
        .await?
    {
        return Err(UseCaseError::NotFound(format!(
            "an uploaded certificate of `{}`",
            domain.name
        )));
    }
    let changed = find(app, service, name).await?;
    republish(app, &changed).await?;
    app.platform.certificates_due.notify_one();
    Ok(changed)
}
