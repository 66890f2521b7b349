//! `helvetia notifications …`: where a project hears about its deploys — Slack- and
//! Discord-compatible incoming webhooks, a signed generic webhook, e-mail — a test message to
//! one, and the log of a channel's messages with every attempt.

use clap::{ArgGroup, Args, Subcommand};
use helvetia_api_types::{
    ChannelKind, ChannelView, CreateChannel, CreatedChannel, EventKind, MessageView, SmtpInput,
    SmtpTls, TestQueued,
};

use crate::GlobalArgs;
use crate::client::Client;
use crate::output;
use crate::target;

#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// A project's channels.
    List { project: String },
    /// Add a channel: `--slack URL`, `--discord URL`, `--webhook URL` or `--smtp-host HOST`.
    Add(AddArgs),
    /// Remove a channel and its messages.
    Remove { project: String, channel: String },
    /// Send a test message to a channel; `log` shows how it went.
    Test { project: String, channel: String },
    /// A channel's messages, newest first, with every attempt.
    Log {
        project: String,
        channel: String,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("kind").required(true).args(["slack", "discord", "webhook", "smtp_host"])))]
pub struct AddArgs {
    project: String,
    /// The channel's name in the project.
    name: String,
    /// What it hears about, comma-separated: deploy_succeeded, deploy_failed, preview_ready,
    /// certificate_failing, certificate_expiring, backup_failed.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "deploy_succeeded,deploy_failed"
    )]
    events: Vec<EventKind>,
    /// A Slack-compatible incoming webhook's URL (a secret: shown never again).
    #[arg(long)]
    slack: Option<String>,
    /// A Discord-compatible incoming webhook's URL (a secret: shown never again).
    #[arg(long)]
    discord: Option<String>,
    /// A generic webhook: JSON signed with HMAC-SHA256; the signing secret is shown once.
    #[arg(long)]
    webhook: Option<String>,
    /// E-mail: the SMTP server's host.
    #[arg(long)]
    smtp_host: Option<String>,
    #[arg(long, default_value_t = 587)]
    smtp_port: u16,
    /// `none`, `starttls` or `tls`.
    #[arg(long, default_value = "starttls", value_parser = parse_tls)]
    smtp_tls: SmtpTls,
    /// The SMTP user; its password comes from `HELVETIA_SMTP_PASSWORD` (never the command
    /// line, where other users of the machine could read it).
    #[arg(long)]
    smtp_user: Option<String>,
    /// The sender's address.
    #[arg(long, requires = "smtp_host")]
    from: Option<String>,
    /// A recipient (repeat the flag).
    #[arg(long, requires = "smtp_host")]
    to: Vec<String>,
}

fn parse_tls(raw: &str) -> Result<SmtpTls, String> {
    match raw {
        "none" => Ok(SmtpTls::None),
        "starttls" => Ok(SmtpTls::Starttls),
        "tls" => Ok(SmtpTls::Tls),
        _ => Err(format!("`{raw}` is not none, starttls or tls")),
    }
}

fn channel_body(args: AddArgs) -> CreateChannel {
    let (kind, url) = match (args.slack, args.discord, args.webhook) {
        (Some(url), _, _) => (ChannelKind::Slack, Some(url)),
        (_, Some(url), _) => (ChannelKind::Discord, Some(url)),
        (_, _, Some(url)) => (ChannelKind::Webhook, Some(url)),
        (None, None, None) => (ChannelKind::Email, None),
    };
    let smtp = args.smtp_host.map(|host| SmtpInput {
        host,
        port: args.smtp_port,
        tls: args.smtp_tls,
        username: args.smtp_user,
        password: std::env::var("HELVETIA_SMTP_PASSWORD")
            .ok()
            .filter(|password| !password.is_empty()),
        from: args.from.unwrap_or_default(),
        to: args.to,
    });
    CreateChannel {
        name: args.name,
        kind,
        events: args.events,
        url,
        smtp,
    }
}

fn events(events: &[EventKind]) -> String {
    let names: Vec<&str> = events.iter().map(|kind| kind.as_str()).collect();
    names.join(",")
}

pub async fn run(command: NotificationsCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    let base = |project: &str| -> anyhow::Result<String> {
        Ok(format!(
            "/api/v1/projects/{}/notifications",
            target::project(project)?
        ))
    };
    match command {
        NotificationsCommand::List { project } => {
            let channels = client.get::<Vec<ChannelView>>(&base(&project)?).await?;
            if global.json {
                return output::json(&channels.json);
            }
            output::table(
                ["NAME", "KIND", "EVENTS", "ENABLED", "DESTINATION"],
                channels.body.iter().map(|channel| {
                    [
                        channel.name.clone(),
                        channel.kind.as_str().to_owned(),
                        events(&channel.events),
                        channel.enabled.to_string(),
                        channel.destination.clone(),
                    ]
                }),
            );
            Ok(())
        }
        NotificationsCommand::Add(args) => {
            let path = base(&args.project)?;
            let created = client
                .post::<CreatedChannel>(&path, &channel_body(args))
                .await?;
            if global.json {
                return output::json(&created.json);
            }
            let channel = &created.body.channel;
            println!(
                "Added {} channel `{}` ({}) for {}.",
                channel.kind.as_str(),
                channel.name,
                channel.destination,
                events(&channel.events)
            );
            if let Some(secret) = &created.body.signing_secret {
                println!("Signing secret (shown once): {secret}");
            }
            Ok(())
        }
        NotificationsCommand::Remove { project, channel } => {
            client
                .delete::<()>(&format!("{}/{channel}", base(&project)?), None::<&()>)
                .await?;
            println!("Removed channel `{channel}`.");
            Ok(())
        }
        NotificationsCommand::Test { project, channel } => {
            let queued = client
                .post::<TestQueued>(&format!("{}/{channel}/test", base(&project)?), &())
                .await?;
            if global.json {
                return output::json(&queued.json);
            }
            println!(
                "Queued test message {} for `{channel}`: `helvetia notifications log {project} \
                 {channel}` shows how it went.",
                queued.body.message_id
            );
            Ok(())
        }
        NotificationsCommand::Log {
            project,
            channel,
            limit,
        } => {
            let path = format!("{}/{channel}/messages?limit={limit}", base(&project)?);
            let messages = client.get::<Vec<MessageView>>(&path).await?;
            if global.json {
                return output::json(&messages.json);
            }
            output::table(
                [
                    "ID",
                    "CREATED",
                    "EVENT",
                    "STATUS",
                    "ATTEMPTS",
                    "LAST RESULT",
                    "NEXT",
                ],
                messages.body.iter().map(|message| {
                    let last = message.attempts.last().map(|attempt| {
                        match (&attempt.error, attempt.http_status) {
                            (Some(error), _) => error.clone(),
                            (None, Some(status)) => format!("HTTP {status}"),
                            (None, None) => "accepted".to_owned(),
                        }
                    });
                    [
                        message.id.to_string(),
                        output::time(message.created_at),
                        message.event.kind.as_str().to_owned(),
                        message.status.as_str().to_owned(),
                        message.attempts.len().to_string(),
                        output::or_dash(last),
                        output::maybe_time(message.next_attempt_at),
                    ]
                }),
            );
            Ok(())
        }
    }
}
