//! Who is calling and what they may touch: the one place a decision to allow is made.
//!
//! An entry point (the API's auth layer, a webhook receiver, a dashboard page) turns a
//! credential into a [`Caller`]. A use case that names something of a team asks the caller for
//! an [`Actor`] in that team ([`Caller::actor`]): a team the caller is not in is "not found"
//! (names do not leak), a role or credential short of the operation is "forbidden". The store
//! takes only `Actor`s, so a write without that check cannot be written.

use std::collections::BTreeMap;

use crate::auth::{Role, Scope, Scopes, TeamId};

/// A user account's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct UserId(pub i64);

/// On whose behalf a request acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A signed-in user.
    User {
        id: UserId,
        email: String,
        /// May manage the instance's users.
        instance_admin: bool,
    },
    /// A server-administration token (`helvetia server admin-token`, or the bootstrap token
    /// before the first user exists): belongs to no user and acts as an owner of every team.
    System,
    /// A CI job that proved itself with an OpenID Connect token one of a service's trusts
    /// covers (`usecases::oidc`): a member of that service's team whose credential carries
    /// `deploy` alone, used for that one service.
    CiJob {
        /// The trust that covered the token.
        trust: i64,
        /// The token's claims as the audit log names them ([`crate::oidc::CiClaims::describe`]).
        claims: String,
    },
}

/// What proved who the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Token {
        id: i64,
        name: String,
    },
    /// A session's access token; `session` is its refresh-token family.
    Session {
        session: i64,
    },
    /// An OpenID Connect token of `issuer`, verified for one request.
    IdToken {
        issuer: String,
    },
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    pub credential: Credential,
    /// The credential's ceiling: everything it does also needs the caller's role.
    pub scopes: Scopes,
    /// The teams the caller may act in, with its role in each (for [`Principal::System`],
    /// empty: it is an owner everywhere).
    pub teams: BTreeMap<TeamId, Role>,
    /// The address the request came from, as the trusted-proxy rules resolved it.
    pub client: Option<String>,
}

/// Why a caller may not act in a team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// Not a member: to the caller the team's things do not exist.
    NotMember,
    /// A member, but its role does not allow the operation.
    Role { role: Role, needs: Scope },
    /// The role allows it but the credential does not carry the scope.
    Scope { needs: Scope },
}

impl Caller {
    /// How the audit log names this caller.
    pub fn label(&self) -> String {
        let who = match &self.principal {
            Principal::User { id, email, .. } => format!("user:{}({email})", id.0),
            Principal::System => "system".to_owned(),
            Principal::CiJob { trust, claims } => format!("trust:{trust}({claims})"),
        };
        match &self.credential {
            Credential::Token { id, name } => format!("{who} token:{id}({name})"),
            Credential::IdToken { issuer } => format!("{who} oidc:{issuer}"),
            Credential::Session { .. } => who,
        }
    }

    pub fn user(&self) -> Option<UserId> {
        match &self.principal {
            Principal::User { id, .. } => Some(*id),
            Principal::System | Principal::CiJob { .. } => None,
        }
    }

    pub fn token_id(&self) -> Option<i64> {
        match &self.credential {
            Credential::Token { id, .. } => Some(*id),
            Credential::Session { .. } | Credential::IdToken { .. } => None,
        }
    }

    pub fn is_system(&self) -> bool {
        self.principal == Principal::System
    }

    /// May manage the instance (its users, sign-up): an instance administrator, or the system,
    /// with an `admin`-scoped credential.
    pub fn is_instance_admin(&self) -> bool {
        let admin = match &self.principal {
            Principal::User { instance_admin, .. } => *instance_admin,
            Principal::System => true,
            Principal::CiJob { .. } => false,
        };
        admin && self.scopes.allows(Scope::Admin)
    }

    /// The caller's role in `team`, if it is in it.
    pub fn role(&self, team: TeamId) -> Option<Role> {
        match self.principal {
            Principal::System => Some(Role::Owner),
            Principal::User { .. } | Principal::CiJob { .. } => self.teams.get(&team).copied(),
        }
    }

    /// The caller acting in `team` for an operation that needs `scope`.
    pub fn actor(&self, team: TeamId, scope: Scope) -> Result<Actor, Denied> {
        let actor = self.member(team)?;
        actor.require(scope)?;
        Ok(actor)
    }

    /// The caller in `team`, if it is a member: every role may see the team's things (what the
    /// credential may do with them is for each operation to [`require`](Actor::require)).
    pub fn member(&self, team: TeamId) -> Result<Actor, Denied> {
        let role = self.role(team).ok_or(Denied::NotMember)?;
        Ok(Actor {
            team,
            role,
            scopes: self.scopes.clone(),
            user: self.user(),
            label: self.label(),
            client: self.client.clone(),
        })
    }
}

/// A caller acting in one team, a member there. Made only by [`Caller::member`]; what the store writes on its behalf is audited with its `label`, `user`
/// and `client`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub team: TeamId,
    pub role: Role,
    scopes: Scopes,
    pub user: Option<UserId>,
    pub label: String,
    pub client: Option<String>,
}

impl Actor {
    /// Whether this actor may do something that needs `scope` in its team.
    pub fn require(&self, scope: Scope) -> Result<(), Denied> {
        if !self.role.allows(scope) {
            return Err(Denied::Role {
                role: self.role,
                needs: scope,
            });
        }
        if !self.scopes.allows(scope) {
            return Err(Denied::Scope { needs: scope });
        }
        Ok(())
    }

    /// A verified webhook delivery acting for a service of `team`: a member whose credential
    /// allows deploying only, so a receiver can do nothing else with it.
    pub fn hook(team: TeamId, label: impl Into<String>) -> Actor {
        Actor {
            team,
            role: Role::Member,
            scopes: Scopes::deploy(),
            user: None,
            label: label.into(),
            client: None,
        }
    }

    /// The system acting on its own (a bootstrap, a maintenance command): an owner of `team`.
    pub fn system(team: TeamId, label: impl Into<String>) -> Actor {
        Actor {
            team,
            role: Role::Owner,
            scopes: Scopes::admin(),
            user: None,
            label: label.into(),
            client: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(teams: &[(i64, Role)], scopes: &[Scope]) -> Caller {
        Caller {
            principal: Principal::User {
                id: UserId(7),
                email: "ada@example.com".into(),
                instance_admin: false,
            },
            credential: Credential::Token {
                id: 3,
                name: "ci".into(),
            },
            scopes: Scopes::new(scopes.iter().copied()).unwrap(),
            teams: teams.iter().map(|(t, r)| (TeamId(*t), *r)).collect(),
            client: Some("192.0.2.1".into()),
        }
    }

    #[test]
    fn another_team_is_not_found() {
        let caller = user(&[(1, Role::Owner)], &[Scope::Admin]);
        assert_eq!(caller.actor(TeamId(2), Scope::Read), Err(Denied::NotMember));
    }

    #[test]
    fn role_and_scope_both_decide() {
        let viewer = user(&[(1, Role::Viewer)], &[Scope::Admin]);
        assert!(matches!(
            viewer.actor(TeamId(1), Scope::Deploy),
            Err(Denied::Role { .. })
        ));
        let owner_with_deploy_token = user(&[(1, Role::Owner)], &[Scope::Deploy]);
        assert!(
            owner_with_deploy_token
                .actor(TeamId(1), Scope::Deploy)
                .is_ok()
        );
        assert_eq!(
            owner_with_deploy_token.actor(TeamId(1), Scope::SecretsReveal),
            Err(Denied::Scope {
                needs: Scope::SecretsReveal
            })
        );
    }

    #[test]
    fn labels_name_the_user_and_the_token() {
        let caller = user(&[], &[Scope::Read]);
        assert_eq!(caller.label(), "user:7(ada@example.com) token:3(ci)");
    }
}
