//! Persistent volumes: named storage of a service that outlives its containers.

use jiff::Timestamp;

use crate::name::ServiceName;
use crate::validation::Invalid;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Volume {
    pub name: String,
    /// Where it is mounted in the service's containers.
    pub path: String,
    /// The volume's name in the engine (`docker volume inspect …`). Kept from the volume's
    /// creation: volumes cannot be renamed, so one made before names carried the installation
    /// keeps its old name.
    pub engine_name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// A volume's name in the OpenAPI document: what [`check_name`] accepts.
#[cfg(feature = "openapi")]
pub struct VolumeName;

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for VolumeName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::name::dns_label_schema(
            "A volume's name: a DNS label (lowercase letters, digits and `-`, 1–63 characters).",
        )
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for VolumeName {}

/// A volume's name: a DNS label, like service names.
pub fn check_name(name: &str) -> Result<(), Invalid> {
    ServiceName::parse(name).map(|_| ())
}

/// A mount path: absolute, not the root, no `..`, no control characters, no `:` (the engine's
/// mount syntax separator).
pub fn check_path(path: &str) -> Result<(), Invalid> {
    if !path.starts_with('/') || path == "/" {
        return Err(Invalid::new("must be an absolute path other than /"));
    }
    if path.len() > 1024 || path.chars().any(|c| c.is_control() || c == ':') {
        return Err(Invalid::new(
            "must be at most 1024 characters, without `:` or control characters",
        ));
    }
    if path.split('/').any(|part| part == "..") {
        return Err(Invalid::new("must not contain `..`"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert!(check_path("/data").is_ok());
        assert!(check_path("/var/lib/app").is_ok());
        for bad in ["", "data", "/", "/a/../b", "/a:b", "/a\nb"] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
    }
}
