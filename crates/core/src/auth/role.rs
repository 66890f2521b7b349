//! Roles in a team and what each may do: the permission table, in one place.
//!
//! | Scope needed            | viewer | member | admin | owner |
//! |-------------------------|:------:|:------:|:-----:|:-----:|
//! | `read`                  |   ✓    |   ✓    |   ✓   |   ✓   |
//! | `deploy`                |        |   ✓    |   ✓   |   ✓   |
//! | `write`                 |        |   ✓    |   ✓   |   ✓   |
//! | `secrets:reveal`        |        |        |   ✓   |   ✓   |
//! | `admin` (members, invitations, the team's tokens and audit log) | | | ✓ | ✓ |
//! | owners: make, remove or demote an owner; delete the team | | | | ✓ |
//!
//! A caller's power in a team is its role there *and* its credential's scopes: a token limited to
//! `deploy` held by an owner still cannot reveal secrets.

use std::fmt;
use std::str::FromStr;

use crate::auth::Scope;
use crate::validation::Invalid;

/// A member's role in a team, from least to most powerful.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Member,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Member, Role::Admin, Role::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// True when the role permits operations that need `scope`.
    pub fn allows(self, scope: Scope) -> bool {
        match scope {
            Scope::Read => true,
            Scope::Deploy | Scope::Write => self >= Role::Member,
            Scope::SecretsReveal | Scope::Admin => self >= Role::Admin,
        }
    }

    /// True when a member of this role may give `to` to someone, or change or remove someone
    /// who has `from`: admins manage everyone below owner; only owners touch owners.
    pub fn may_manage(self, from: Role, to: Role) -> bool {
        match self {
            Role::Owner => true,
            Role::Admin => from < Role::Owner && to < Role::Owner,
            Role::Member | Role::Viewer => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| {
                Invalid::new(format!(
                    "unknown role `{s}`; expected one of viewer, member, admin, owner"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_permission_table() {
        let table = [
            (Role::Viewer, [true, false, false, false, false]),
            (Role::Member, [true, true, true, false, false]),
            (Role::Admin, [true, true, true, true, true]),
            (Role::Owner, [true, true, true, true, true]),
        ];
        for (role, expected) in table {
            let scopes = [
                Scope::Read,
                Scope::Deploy,
                Scope::Write,
                Scope::SecretsReveal,
                Scope::Admin,
            ];
            for (scope, allowed) in scopes.into_iter().zip(expected) {
                assert_eq!(role.allows(scope), allowed, "{role} {scope}");
            }
        }
    }

    #[test]
    fn only_owners_touch_owners() {
        assert!(Role::Owner.may_manage(Role::Owner, Role::Member));
        assert!(Role::Admin.may_manage(Role::Member, Role::Admin));
        assert!(!Role::Admin.may_manage(Role::Owner, Role::Admin));
        assert!(!Role::Admin.may_manage(Role::Member, Role::Owner));
        assert!(!Role::Member.may_manage(Role::Viewer, Role::Viewer));
    }

    #[test]
    fn roles_parse_their_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }
}
