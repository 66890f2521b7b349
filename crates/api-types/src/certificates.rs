//! The installation's certificates, of every kind (instance administrators).

use helvetia_core::certificate::{Certificate, CertificateKind};
use serde::{Deserialize, Serialize};

/// A certificate: what it is for and where it stands (never its key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CertificateView {
    pub id: i64,
    pub kind: CertificateKind,
    /// The names it is for (usually one; `*.…` for a wildcard).
    pub names: Vec<String>,
    /// The custom domain's id, for a domain's certificate.
    pub domain_id: Option<i64>,
    pub certificate: Certificate,
}
