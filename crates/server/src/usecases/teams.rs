//! Teams, their members and invitations.
//!
//! Every decision goes through [`access::actor`]: a team the caller is not in is "not found";
//! managing members and invitations needs the `admin` scope (admins and owners), and
//! [`Role::may_manage`] keeps everything about owners to owners. A team always keeps an owner
//! (the store checks, in the transaction of the change).

use helvetia_api_types::{
    CreateInvitation, CreateTeam, CreatedInvitation, InvitationView, MemberView, TeamView,
};
use helvetia_core::account::{Email, Member, Team};
use helvetia_core::auth::{Actor, Caller, Role, Scope};
use helvetia_core::name::TeamName;
use helvetia_core::validation::FieldErrors;
use helvetia_store::audit::AuditBy;
use helvetia_store::links::{Invitation, LinkKind};

use super::access;
use super::links::{self, LinkFor};
use super::{App, Result, UseCaseError};

fn view(team: Team, role: Role) -> TeamView {
    TeamView {
        name: team.name.to_string(),
        role,
        personal: team.personal_of.is_some(),
        created_at: team.created_at,
    }
}

fn member_view(member: Member) -> MemberView {
    MemberView {
        user_id: member.user.0,
        email: member.email.to_string(),
        name: member.name,
        role: member.role,
        since: member.since,
    }
}

fn invitation_view(invitation: Invitation) -> InvitationView {
    InvitationView {
        id: invitation.id,
        role: invitation.role,
        email: invitation.email.map(|email| email.to_string()),
        created_by: invitation.created_by,
        created_at: invitation.created_at,
        expires_at: invitation.expires_at,
    }
}

/// The team `name` names and the caller acting in it for what needs `scope`.
async fn team(app: &App, caller: &Caller, name: &str, scope: Scope) -> Result<(Team, Actor)> {
    access::team(app, caller, &access::team_name(name)?, scope).await
}

/// The teams the caller is in, with its role in each.
pub async fn list(app: &App, caller: &Caller) -> Result<Vec<TeamView>> {
    Ok(app
        .store
        .list_teams()
        .await?
        .into_iter()
        .filter_map(|team| caller.role(team.id).map(|role| view(team, role)))
        .collect())
}

/// Creates a team owned by the caller. A taken name is "not available", whoever has it.
pub async fn create(app: &App, caller: &Caller, input: CreateTeam) -> Result<TeamView> {
    let name = TeamName::parse(&input.name).map_err(|e| FieldErrors::single("name", e))?;
    if caller.user().is_none() {
        return Err(UseCaseError::Forbidden(
            "a team is owned by a user: a server-administration token cannot create one".into(),
        ));
    }
    let team = app.store.create_team_for(caller, &name).await?;
    Ok(view(team, Role::Owner))
}

pub async fn get(app: &App, caller: &Caller, name: &str) -> Result<TeamView> {
    let (team, actor) = team(app, caller, name, Scope::Read).await?;
    Ok(view(team, actor.role))
}

/// Deletes a team that owns no projects; owners only, and never a personal team.
pub async fn delete(app: &App, caller: &Caller, name: &str) -> Result<()> {
    let (_, actor) = team(app, caller, name, Scope::Admin).await?;
    if actor.role != Role::Owner {
        return Err(UseCaseError::Forbidden(
            "only the team's owners may delete it".into(),
        ));
    }
    Ok(app.store.delete_team(&actor).await?)
}

pub async fn members(app: &App, caller: &Caller, name: &str) -> Result<Vec<MemberView>> {
    let (team, _) = team(app, caller, name, Scope::Read).await?;
    Ok(app
        .store
        .members(team.id)
        .await?
        .into_iter()
        .map(member_view)
        .collect())
}

/// The member of `team` that `who` names (a user id or an e-mail address).
async fn member(app: &App, team: &Team, who: &str) -> Result<Member> {
    let email = Email::parse(who).ok();
    let id = who.parse::<i64>().ok();
    app.store
        .members(team.id)
        .await?
        .into_iter()
        .find(|m| Some(m.user.0) == id || email.as_ref() == Some(&m.email))
        .ok_or_else(|| UseCaseError::NotFound(format!("member `{who}` of team `{}`", team.name)))
}

fn may_manage(actor: &Actor, from: Role, to: Role) -> Result<()> {
    if actor.role.may_manage(from, to) {
        Ok(())
    } else {
        Err(UseCaseError::Forbidden(format!(
            "as {} of this team you cannot change a {from} into a {to}: only owners manage owners",
            actor.role
        )))
    }
}

/// Changes a member's role (admins manage everyone below owner; owners everyone).
pub async fn set_role(
    app: &App,
    caller: &Caller,
    name: &str,
    who: &str,
    role: Role,
) -> Result<MemberView> {
    let (team, actor) = team(app, caller, name, Scope::Admin).await?;
    let mut member = member(app, &team, who).await?;
    may_manage(&actor, member.role, role)?;
    app.store.change_role(&actor, &member, role).await?;
    member.role = role;
    Ok(member_view(member))
}

/// Removes a member; a member may remove themself (leave). The last owner cannot go.
pub async fn remove(app: &App, caller: &Caller, name: &str, who: &str) -> Result<()> {
    let (team, actor) = team(app, caller, name, Scope::Read).await?;
    let member = member(app, &team, who).await?;
    if Some(member.user) != caller.user() {
        access::require(&actor, Scope::Admin)?;
        may_manage(&actor, member.role, member.role)?;
    }
    Ok(app.store.remove_member(&actor, &member).await?)
}

/// A single-use invitation to join the team with `role`, for anyone holding the link or only
/// for `email`.
pub async fn invite(
    app: &App,
    caller: &Caller,
    name: &str,
    input: CreateInvitation,
) -> Result<CreatedInvitation> {
    let email = match input.email.as_deref() {
        Some(raw) => Some(Email::parse(raw).map_err(|e| FieldErrors::single("email", e))?),
        None => None,
    };
    let (team, actor) = team(app, caller, name, Scope::Admin).await?;
    may_manage(&actor, input.role, input.role)?;
    let link = LinkFor {
        kind: LinkKind::Invite,
        team: Some(team.id),
        role: Some(input.role),
        user: None,
        email,
    };
    let (id, link) = links::issue(&app.store, AuditBy::from(&actor), link).await?;
    let invitation = app
        .store
        .invitations(team.id)
        .await?
        .into_iter()
        .find(|invitation| invitation.id == id)
        .ok_or_else(|| UseCaseError::Internal(format!("invitation #{id} vanished")))?;
    Ok(CreatedInvitation {
        invitation: invitation_view(invitation),
        link,
    })
}

pub async fn invitations(app: &App, caller: &Caller, name: &str) -> Result<Vec<InvitationView>> {
    let (team, _) = team(app, caller, name, Scope::Admin).await?;
    Ok(app
        .store
        .invitations(team.id)
        .await?
        .into_iter()
        .map(invitation_view)
        .collect())
}

pub async fn revoke_invitation(app: &App, caller: &Caller, name: &str, id: i64) -> Result<()> {
    let (_, actor) = team(app, caller, name, Scope::Admin).await?;
    Ok(app.store.revoke_invitation(&actor, id).await?)
}

/// The signed-in caller joins the team of invitation `token`.
pub async fn accept(app: &App, caller: &Caller, token: &str) -> Result<TeamView> {
    let user = caller.user().ok_or_else(|| {
        UseCaseError::Forbidden("an invitation is accepted by a user, not the system".into())
    })?;
    let user = app.store.user(user).await?;
    let team = app
        .store
        .accept_invitation(
            &helvetia_core::auth::token_hash(token),
            &user,
            AuditBy::from(caller),
        )
        .await?;
    let role = app
        .store
        .memberships(user.id)
        .await?
        .get(&team)
        .copied()
        .unwrap_or(Role::Viewer);
    Ok(view(app.store.team(team).await?, role))
}
