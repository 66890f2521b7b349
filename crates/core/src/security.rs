//! What a service's containers may do beyond an ordinary process: which Linux capabilities
//! they hold and whether their root filesystem is writable.
//!
//! Every container runs with `no-new-privileges` and without any capability but
//! [`ContainerSecurity::ALWAYS_KEPT`]: a web app needs none to serve, and each one it holds is
//! a step towards its neighbours or the host (`NET_RAW` spoofs packets on the project network,
//! `CHOWN`/`SETUID`/`DAC_OVERRIDE` undo file permissions). Images that set themselves up as
//! another user at start (official database images, nginx's master process) get what they need
//! back through a per-service override, limited to the capabilities the engine grants by
//! default: an override never gives more than a plain `docker run` would.

use std::collections::BTreeSet;
use std::fmt;

/// A capability a service may get back: one of the engine's default set.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Capability {
    AuditWrite,
    Chown,
    DacOverride,
    Fowner,
    Fsetid,
    Kill,
    Mknod,
    NetBindService,
    NetRaw,
    Setfcap,
    Setgid,
    Setpcap,
    Setuid,
    SysChroot,
}

impl Capability {
    /// The engine's (and the kernel's, without `CAP_`) name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::AuditWrite => "AUDIT_WRITE",
            Capability::Chown => "CHOWN",
            Capability::DacOverride => "DAC_OVERRIDE",
            Capability::Fowner => "FOWNER",
            Capability::Fsetid => "FSETID",
            Capability::Kill => "KILL",
            Capability::Mknod => "MKNOD",
            Capability::NetBindService => "NET_BIND_SERVICE",
            Capability::NetRaw => "NET_RAW",
            Capability::Setfcap => "SETFCAP",
            Capability::Setgid => "SETGID",
            Capability::Setpcap => "SETPCAP",
            Capability::Setuid => "SETUID",
            Capability::SysChroot => "SYS_CHROOT",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A service's privileges: the capabilities it gets back and a read-only root filesystem.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ContainerSecurity {
    /// Mount the image's filesystem read-only; `/tmp` stays writable (a tmpfs of
    /// [`ContainerSecurity::TMP_SIZE`], counted against the memory limit) and volumes are
    /// unaffected.
    pub read_only_root: bool,
    /// Capabilities given back to the containers (from the engine's default set; every other
    /// one is dropped). Changing them is audited as `service.privileges`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Capability>))]
    pub cap_add: BTreeSet<Capability>,
}

impl ContainerSecurity {
    /// Kept by every container: binding a port below 1024 lets an app running as root serve
    /// on 80 as many images do, and reaches nothing beyond its own network namespace.
    pub const ALWAYS_KEPT: &[Capability] = &[Capability::NetBindService];
    /// The writable `/tmp` of a read-only container.
    pub const TMP_SIZE: &str = "64m";

    /// The capabilities the containers hold, in the engine's names.
    pub fn capabilities(&self) -> Vec<&'static str> {
        let mut held: BTreeSet<Capability> = self.cap_add.clone();
        held.extend(Self::ALWAYS_KEPT);
        held.into_iter().map(Capability::as_str).collect()
    }
}

/// As the audit log records it: `read-only root, added CHOWN, SETUID`.
impl fmt::Display for ContainerSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.read_only_root {
            "read-only root"
        } else {
            "writable root"
        })?;
        if self.cap_add.is_empty() {
            return f.write_str(", no capability added");
        }
        let added: Vec<&str> = self.cap_add.iter().map(|c| c.as_str()).collect();
        write!(f, ", added {}", added.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_engine_names_and_refuses_others() {
        let security: ContainerSecurity =
            serde_json::from_str(r#"{"cap_add": ["SETUID", "CHOWN", "CHOWN"]}"#).unwrap();
        assert_eq!(
            security.cap_add,
            BTreeSet::from([Capability::Chown, Capability::Setuid])
        );
        assert_eq!(
            security.capabilities(),
            ["CHOWN", "NET_BIND_SERVICE", "SETUID"]
        );
        assert_eq!(security.to_string(), "writable root, added CHOWN, SETUID");
        for bad in [
            r#"{"cap_add": ["SYS_ADMIN"]}"#,
            r#"{"cap_add": ["chown"]}"#,
            r#"{"cap_add": ["CAP_CHOWN"]}"#,
        ] {
            assert!(
                serde_json::from_str::<ContainerSecurity>(bad).is_err(),
                "{bad}"
            );
        }
        for capability in security.cap_add {
            assert_eq!(
                serde_json::to_value(capability).unwrap(),
                serde_json::Value::from(capability.as_str())
            );
        }
    }
}
