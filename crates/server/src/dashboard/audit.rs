//! `/audit`: an audit log — the viewer's own, a team's (its admins) or the instance's
//! (instance administrators) — filtered by action, actor and target, a page at a time. A plain
//! `GET` form: the filters are in the address, so a filtered view can be shared.

use askama::Template;
use axum::extract::{Query, State};
use helvetia_store::audit::AuditFilter;
use serde::Deserialize;

use super::page::{Chrome, PageResult, Viewer, render};
use super::views::{actor_label, moment};
use crate::api::AppState;
use crate::usecases::audit::{self, Whose};

/// Entries per page.
const PAGE: i64 = 50;

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    team: String,
    instance: Option<String>,
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    target: String,
    before: Option<i64>,
}

impl AuditQuery {
    fn whose(&self) -> Whose<'_> {
        match (self.team.trim(), &self.instance) {
            ("", Some(_)) => Whose::Instance,
            ("", None) => Whose::Own,
            (team, _) => Whose::Team(team),
        }
    }

    fn filter(&self) -> AuditFilter {
        let given = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
        AuditFilter {
            action: given(&self.action),
            actor: given(&self.actor),
            target: given(&self.target),
        }
    }

    /// This query's address for the entries older than `before`.
    fn older(&self, before: i64) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("team", self.team.as_str()),
            ("action", &self.action),
            ("actor", &self.actor),
            ("target", &self.target),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        if self.instance.is_some() {
            query.append_pair("instance", "on");
        }
        query.append_pair("before", &before.to_string());
        format!("/audit?{}", query.finish())
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    query: AuditQuery,
    entries: Vec<EntryRow>,
    older: Option<String>,
}

struct EntryRow {
    at: String,
    actor: String,
    action: String,
    target: String,
    client: String,
}

/// `GET /audit`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<AuditQuery>,
) -> PageResult {
    let entries = audit::log(
        &state.app,
        &viewer.caller,
        query.whose(),
        &query.filter(),
        query.before,
        Some(PAGE),
    )
    .await?;
    let older = (entries.len() as i64 == PAGE)
        .then(|| entries.last().map(|entry| query.older(entry.id)))
        .flatten();
    let entries = entries
        .into_iter()
        .map(|entry| EntryRow {
            at: moment(entry.at),
            actor: actor_label(&entry.actor),
            action: entry.action,
            target: entry.target,
            client: entry.client.unwrap_or_default(),
        })
        .collect();
    Ok(render(&AuditPage {
        chrome: viewer.chrome("Audit log"),
        query,
        entries,
        older,
    }))
}
