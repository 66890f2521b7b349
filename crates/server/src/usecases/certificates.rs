//! The installation's certificates of every kind — custom domains', generated hostnames',
//! wildcards', the public URL's — with their states: for instance administrators, since they
//! name every team's hosts. A domain's certificate is also shown with the domain.

use helvetia_api_types::CertificateView;
use helvetia_core::auth::Caller;

use super::{App, Result, UseCaseError};

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
