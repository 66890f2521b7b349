//! `helvetia teams …`: teams, members, roles and invitations.

use clap::Subcommand;
use helvetia_api_types::{
    AcceptInvitation, CreateInvitation, CreateTeam, CreatedInvitation, Me, MemberView, Role,
    SetRole, TeamView,
};
use serde_json::json;

use super::users::link_url;
use crate::GlobalArgs;
use crate::client::Client;
use crate::output;

#[derive(Debug, Subcommand)]
pub enum TeamsCommand {
    /// The teams you are in, with your role in each.
    List,
    /// Create a team; you become its owner.
    Create { name: String },
    /// A team's members and their roles.
    Members { team: String },
    /// Print a single-use invitation link (valid 7 days) to join a team with a role.
    Invite {
        team: String,
        /// viewer, member, admin or owner.
        #[arg(long, default_value = "member")]
        role: Role,
        /// Only this address may use it.
        #[arg(long)]
        email: Option<String>,
    },
    /// Join a team with an invitation link's token.
    Accept { token: String },
    /// Change a member's role (admins manage up to admin; only owners touch owners).
    Role {
        team: String,
        /// The member's e-mail address or user id.
        member: String,
        role: Role,
    },
    /// Remove a member from a team.
    Remove { team: String, member: String },
    /// Leave a team (its last owner cannot).
    Leave { team: String },
    /// Delete a team that owns no projects (owners only).
    Delete { team: String },
}

pub async fn run(command: TeamsCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    match command {
        TeamsCommand::List => {
            let teams = client.get::<Vec<TeamView>>("/api/v1/teams").await?;
            if global.json {
                return output::json(&teams.json);
            }
            output::table(
                ["TEAM", "ROLE", "PERSONAL", "CREATED"],
                teams.body.iter().map(|t| {
                    [
                        t.name.clone(),
                        t.role.to_string(),
                        if t.personal { "yes" } else { "no" }.to_owned(),
                        output::time(t.created_at),
                    ]
                }),
            );
        }
        TeamsCommand::Create { name } => {
            let team = client
                .post::<TeamView>("/api/v1/teams", &CreateTeam { name })
                .await?;
            if global.json {
                return output::json(&team.json);
            }
            println!("Created team {}; you own it.", team.body.name);
        }
        TeamsCommand::Members { team } => {
            let members = client
                .get::<Vec<MemberView>>(&format!("/api/v1/teams/{team}/members"))
                .await?;
            if global.json {
                return output::json(&members.json);
            }
            output::table(
                ["ID", "EMAIL", "NAME", "ROLE", "SINCE"],
                members.body.iter().map(|m| {
                    [
                        m.user_id.to_string(),
                        m.email.clone(),
                        m.name.clone(),
                        m.role.to_string(),
                        output::time(m.since),
                    ]
                }),
            );
        }
        TeamsCommand::Invite { team, role, email } => {
            let created = client
                .post::<CreatedInvitation>(
                    &format!("/api/v1/teams/{team}/invitations"),
                    &CreateInvitation { role, email },
                )
                .await?;
            if global.json {
                return output::json(&created.json);
            }
            println!("{}", link_url(&client, &created.body.link));
            eprintln!(
                "Invitation #{} to {team} as {role}: single use, valid until {}. Someone signed in \
                 accepts it with `helvetia teams accept <token>`.",
                created.body.invitation.id,
                output::time(created.body.link.expires_at)
            );
        }
        TeamsCommand::Accept { token } => {
            let team = client
                .post::<TeamView>("/api/v1/invitations/accept", &AcceptInvitation { token })
                .await?;
            if global.json {
                return output::json(&team.json);
            }
            println!("You joined {} as {}.", team.body.name, team.body.role);
        }
        TeamsCommand::Role { team, member, role } => {
            let changed = client
                .put::<MemberView>(
                    &format!("/api/v1/teams/{team}/members/{member}"),
                    &SetRole { role },
                )
                .await?;
            if global.json {
                return output::json(&changed.json);
            }
            println!("{} is now {role} of {team}.", changed.body.email);
        }
        TeamsCommand::Remove { team, member } => {
            remove(&client, &team, &member).await?;
            if global.json {
                return output::json(&json!({ "removed": member, "team": team }));
            }
            println!("Removed {member} from {team}.");
        }
        TeamsCommand::Leave { team } => {
            let me = client.get::<Me>("/api/v1/me").await?;
            let user = me
                .body
                .user
                .ok_or_else(|| anyhow::anyhow!("a server-administration token is in no team"))?;
            remove(&client, &team, &user.id.to_string()).await?;
            if global.json {
                return output::json(&json!({ "left": team }));
            }
            println!("You left {team}.");
        }
        TeamsCommand::Delete { team } => {
            client
                .delete::<()>(&format!("/api/v1/teams/{team}"), None::<&()>)
                .await?;
            if global.json {
                return output::json(&json!({ "deleted": team }));
            }
            println!("Deleted team {team}.");
        }
    }
    Ok(())
}

async fn remove(client: &Client, team: &str, member: &str) -> anyhow::Result<()> {
    client
        .delete::<()>(
            &format!("/api/v1/teams/{team}/members/{member}"),
            None::<&()>,
        )
        .await?;
    Ok(())
}
