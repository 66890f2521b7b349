//! The audit log: who changed what, and when. Written by the store in the same transaction as
//! the change it describes, so a change without an entry cannot exist.

use jiff::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: i64,
    /// Who acted, e.g. `token:3(ci)` or `system`.
    pub actor: String,
    /// What was done, e.g. `service.create`.
    pub action: String,
    /// What it was done to, e.g. `demo/web`.
    pub target: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
}
