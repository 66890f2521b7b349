//! `helvetia logs`: a service's runtime output, or a deployment's log; `-f` follows.

use std::io::IsTerminal;
use std::ops::ControlFlow;

use clap::Args;
use helvetia_api_types::{LogLine, LogLines, OutputLine, StatusEvent};
use jiff::Timestamp;
use serde::Serialize;

use crate::GlobalArgs;
use crate::client::Client;
use crate::output;
use crate::sse;
use crate::target::ServiceTarget;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// PROJECT/SERVICE
    target: ServiceTarget,
    /// Keep printing new output as it comes.
    #[arg(short, long)]
    follow: bool,
    /// Show this deployment's log (build, start, switch) instead of the app's output.
    #[arg(long, value_name = "ID")]
    deployment: Option<i64>,
    /// Only output since then: a duration ago (10m, 2h) or a timestamp.
    #[arg(long)]
    since: Option<String>,
    /// Lines from before now, per container (`all` for everything).
    #[arg(long, default_value = "100")]
    tail: String,
    /// Prefix each line with its time.
    #[arg(long)]
    timestamps: bool,
}

pub async fn run(args: LogsArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    let printer = Printer::new(global.json, args.timestamps);
    match args.deployment {
        Some(id) if args.follow => {
            follow_deployment_log(&client, id, Some(&printer), Until::End).await
        }
        Some(id) => deployment_log(&client, id, &printer).await,
        None => runtime_output(&client, &args, &printer).await,
    }
}

/// Prints lines for people (colours kept only on a terminal) or as JSON lines.
pub struct Printer {
    json: bool,
    timestamps: bool,
    keep_colours: bool,
}

impl Printer {
    pub fn new(json: bool, timestamps: bool) -> Printer {
        Printer {
            json,
            timestamps,
            keep_colours: std::io::stdout().is_terminal(),
        }
    }

    /// Prints one line: `record` (a log or output line) as JSON, or its `text` for people.
    pub fn print(&self, record: &impl Serialize, at: Timestamp, text: &str, prefix: Option<&str>) {
        if self.json {
            match serde_json::to_string(record) {
                Ok(json) => println!("{json}"),
                Err(error) => eprintln!("a line could not be printed as JSON: {error}"),
            }
            return;
        }
        let text = terminal_safe(text, self.keep_colours);
        let time = if self.timestamps {
            format!("{} ", output::time(at))
        } else {
            String::new()
        };
        match prefix {
            Some(prefix) => println!("{time}{prefix} | {text}"),
            None => println!("{time}{text}"),
        }
    }
}

/// What output from the server may do to a terminal: on one, colours (SGR, `ESC [ … m`) stay
/// and every other escape sequence goes — cursor movement, screen clearing, and OSC strings
/// that set the title or write the clipboard are the app's, not the operator's, business.
/// Control characters other than tab go too, so a carriage return or backspace cannot
/// overwrite what the CLI printed before the line. Off a terminal, colours go as well.
pub fn terminal_safe(text: &str, keep_colours: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            if c == '\t' || !c.is_control() {
                out.push(c);
            }
            continue;
        }
        match chars.next() {
            // CSI: parameters and intermediates up to a final byte in @..~.
            Some('[') => {
                let mut sequence = String::new();
                for c in chars.by_ref() {
                    sequence.push(c);
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
                let colour = sequence.strip_suffix('m').is_some_and(|parameters| {
                    parameters
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == ';' || c == ':')
                });
                if keep_colours && colour {
                    out.push_str("\u{1b}[");
                    out.push_str(&sequence);
                }
            }
            // OSC, DCS, SOS, PM, APC: a string up to BEL or ST (`ESC \\`).
            Some(']' | 'P' | 'X' | '^' | '_') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            // Any other escape: intermediates (` ` to `/`) up to one final character.
            Some(c) if (' '..='/').contains(&c) => {
                for c in chars.by_ref() {
                    if !(' '..='/').contains(&c) {
                        break;
                    }
                }
            }
            Some(_) | None => {}
        }
    }
    out
}

/// Where following a deployment's log stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// At the first status after which the deployment no longer changes what serves: live,
    /// failed, cancelled (a deploy waits for this, not for the old version's drain).
    Settled,
    /// When the deployment's job is done and its log complete.
    End,
}

/// Follows a deployment's log stream, printing every line with `printer` (phases, build
/// output, probes, the switch) when given; reconnects without losing or repeating a line if
/// the connection drops.
pub async fn follow_deployment_log(
    client: &Client,
    id: i64,
    printer: Option<&Printer>,
    until: Until,
) -> anyhow::Result<()> {
    sse::follow_checked(
        client,
        &format!("/api/v1/deployments/{id}/logs/stream"),
        |event| {
            Ok(match event.event.as_str() {
                "line" => {
                    let line: LogLine = event.data()?;
                    if let Some(printer) = printer {
                        printer.print(&line, line.at, &line.line, None);
                    }
                    ControlFlow::Continue(())
                }
                "end" => ControlFlow::Break(()),
                "status" => {
                    let StatusEvent { status } = event.data()?;
                    if until == Until::Settled && !status.is_in_progress() {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                }
                _ => ControlFlow::Continue(()),
            })
        },
    )
    .await
}

/// Prints a deployment's log as it is now, page by page.
async fn deployment_log(client: &Client, id: i64, printer: &Printer) -> anyhow::Result<()> {
    let mut after = 0;
    loop {
        let page = client
            .get::<LogLines>(&format!(
                "/api/v1/deployments/{id}/logs?after={after}&limit=10000"
            ))
            .await?;
        if page.body.lines.is_empty() {
            return Ok(());
        }
        for line in &page.body.lines {
            after = line.seq;
            printer.print(line, line.at, &line.line, None);
        }
    }
}

/// The part of a container name after the service's: `<deployment>-<n>` of
/// `helvetia-<installation>-<project>-<service>-<deployment>-<n>` (or of a name from before
/// names carried the installation).
fn short_container<'a>(target: &ServiceTarget, name: &'a str) -> &'a str {
    let service = format!("-{}-{}-", target.project, target.service);
    name.rfind(&service)
        .map_or(name, |at| &name[at + service.len()..])
}

async fn runtime_output(client: &Client, args: &LogsArgs, printer: &Printer) -> anyhow::Result<()> {
    let mut query = format!("tail={}", args.tail);
    if let Some(since) = &args.since {
        query.push_str(&format!("&since={since}"));
    }
    let print = |line: &OutputLine| {
        let container = short_container(&args.target, &line.container);
        printer.print(line, line.at, &line.line, Some(container));
    };
    if args.follow {
        return sse::follow_checked(
            client,
            &format!("{}/logs/stream?{query}", args.target.path()),
            |event| {
                if event.event == "line" {
                    print(&event.data()?);
                }
                Ok(ControlFlow::Continue(()))
            },
        )
        .await;
    }
    let lines = client
        .get::<Vec<OutputLine>>(&format!("{}/logs?{query}", args.target.path()))
        .await?;
    for line in &lines.body {
        print(line);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::terminal_safe;

    #[test]
    fn off_a_terminal_every_escape_goes() {
        assert_eq!(
            terminal_safe("\u{1b}[1;32mok\u{1b}[0m done\u{1b}[2K", false),
            "ok done"
        );
        assert_eq!(terminal_safe("\u{1b}]0;title\u{7}text", false), "text");
        assert_eq!(terminal_safe("\u{1b}]0;title\u{1b}\\text", false), "text");
        assert_eq!(terminal_safe("plain\ttext", false), "plain\ttext");
    }

    #[test]
    fn on_a_terminal_only_colours_stay() {
        // Colours, 256-colour and truecolour included.
        assert_eq!(
            terminal_safe(
                "\u{1b}[1;32mok\u{1b}[0m \u{1b}[38;5;208mx\u{1b}[38:2::1:2:3my\u{1b}[m",
                true
            ),
            "\u{1b}[1;32mok\u{1b}[0m \u{1b}[38;5;208mx\u{1b}[38:2::1:2:3my\u{1b}[m"
        );
        // A clipboard write (OSC 52), with either terminator.
        assert_eq!(terminal_safe("a\u{1b}]52;c;ZWNobyBoaQ==\u{7}b", true), "ab");
        assert_eq!(
            terminal_safe("a\u{1b}]52;c;ZWNobyBoaQ==\u{1b}\\b", true),
            "ab"
        );
        // Title changes, and a hyperlink.
        assert_eq!(terminal_safe("\u{1b}]0;pwned\u{7}text", true), "text");
        assert_eq!(terminal_safe("\u{1b}]2;pwned\u{1b}\\text", true), "text");
        assert_eq!(
            terminal_safe("\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\", true),
            "link"
        );
        // Cursor moves, clearing the screen or line, private modes, a DCS string, and
        // two-character escapes (reset, charset).
        assert_eq!(
            terminal_safe(
                "\u{1b}[2J\u{1b}[H\u{1b}[10;5Ha\u{1b}[3Ab\u{1b}[2K\u{1b}[?1049hc\u{1b}Pq#0\u{1b}\\d\u{1b}ce\u{1b}(Bf",
                true
            ),
            "abcdef"
        );
        // A colour sequence with anything but numbers is not a colour.
        assert_eq!(terminal_safe("\u{1b}[?25m\u{1b}[>4;2mx", true), "x");
        // Control characters that move the cursor or ring the bell.
        assert_eq!(terminal_safe("ab\rc\u{8}d\u{7}\u{9b}2Je", true), "abcd2Je");
        // An unfinished sequence at the end of a line leaves nothing behind.
        assert_eq!(terminal_safe("x\u{1b}[31", true), "x");
        assert_eq!(terminal_safe("x\u{1b}]0;tit", true), "x");
    }
}
