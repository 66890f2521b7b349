//! A fake of Cloudflare's DNS API (v4) on a loopback port, speaking the documented shapes: the
//! `{success, errors, messages, result}` envelope, bearer API tokens, zones listed by `name`,
//! DNS records listed by `type`/`name`, created and deleted. TXT records can be written through
//! to pebble-challtestsrv ([`FakeCloudflare::mirror_to`]), so Pebble sees what the fake holds.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::pebble::challtestsrv;

/// A record the fake holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeRecord {
    pub id: String,
    pub zone_id: String,
    pub kind: String,
    pub name: String,
    pub content: String,
}

#[derive(Default)]
struct Fake {
    token: String,
    /// `(id, name)`.
    zones: Vec<(String, String)>,
    records: Vec<FakeRecord>,
    /// challtestsrv's management URL, when TXT records are mirrored there.
    mirror: Option<String>,
    next_id: u64,
}

type Shared = Arc<Mutex<Fake>>;

/// A running fake; stops when dropped.
pub struct FakeCloudflare {
    port: u16,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeCloudflare {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeCloudflare {
    /// A fake whose API token is `token`, holding `zones` (names, e.g. `example.com`).
    pub async fn start(token: &str, zones: &[&str]) -> FakeCloudflare {
        let state: Shared = Arc::new(Mutex::new(Fake {
            token: token.to_owned(),
            zones: zones
                .iter()
                .enumerate()
                .map(|(i, name)| (format!("{:032x}", 0xc0ffee + i), (*name).to_owned()))
                .collect(),
            ..Fake::default()
        }));
        let router = axum::Router::new()
            .route("/client/v4/zones", get(list_zones))
            .route(
                "/client/v4/zones/{zone}/dns_records",
                get(list_records).post(create_record),
            )
            .route(
                "/client/v4/zones/{zone}/dns_records/{record}",
                delete(delete_record),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        FakeCloudflare { port, state, task }
    }

    /// The API's base URL, in place of `https://api.cloudflare.com/client/v4`.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}/client/v4", self.port)
    }

    /// Writes TXT records through to challtestsrv at `management_url` from now on.
    pub fn mirror_to(&self, management_url: &str) {
        self.state.lock().unwrap().mirror = Some(management_url.to_owned());
    }

    /// The records held now.
    pub fn records(&self) -> Vec<FakeRecord> {
        self.state.lock().unwrap().records.clone()
    }
}

type Answer = (StatusCode, Json<Value>);

fn success(result: Value) -> Answer {
    (
        StatusCode::OK,
        Json(json!({ "success": true, "errors": [], "messages": [], "result": result })),
    )
}

fn failure(status: StatusCode, code: u32, message: &str) -> Answer {
    (
        status,
        Json(json!({
            "success": false,
            "errors": [{ "code": code, "message": message }],
            "messages": [],
            "result": null,
        })),
    )
}

/// Cloudflare's answer to a missing or wrong token, or a zone the token does not reach.
fn check(state: &Fake, headers: &HeaderMap, zone: Option<&str>) -> Result<(), Answer> {
    let presented = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if presented != Some(state.token.as_str()) {
        return Err(failure(
            StatusCode::FORBIDDEN,
            10000,
            "Authentication error",
        ));
    }
    if let Some(zone) = zone
        && !state.zones.iter().any(|(id, _)| id == zone)
    {
        return Err(failure(
            StatusCode::NOT_FOUND,
            7003,
            "Could not route to /zones, perhaps your object identifier is invalid?",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
struct ZoneQuery {
    name: Option<String>,
}

async fn list_zones(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<ZoneQuery>,
) -> Answer {
    let state = state.lock().unwrap();
    if let Err(answer) = check(&state, &headers, None) {
        return answer;
    }
    let zones: Vec<Value> = state
        .zones
        .iter()
        .filter(|(_, name)| query.name.as_ref().is_none_or(|wanted| wanted == name))
        .map(|(id, name)| json!({ "id": id, "name": name, "status": "active" }))
        .collect();
    success(json!(zones))
}

#[derive(Deserialize)]
struct RecordQuery {
    r#type: Option<String>,
    name: Option<String>,
}

fn record_json(record: &FakeRecord) -> Value {
    json!({
        "id": record.id, "zone_id": record.zone_id, "type": record.kind,
        "name": record.name, "content": record.content, "ttl": 120,
    })
}

async fn list_records(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(zone): Path<String>,
    Query(query): Query<RecordQuery>,
) -> Answer {
    let state = state.lock().unwrap();
    if let Err(answer) = check(&state, &headers, Some(&zone)) {
        return answer;
    }
    let records: Vec<Value> = state
        .records
        .iter()
        .filter(|r| r.zone_id == zone)
        .filter(|r| query.r#type.as_ref().is_none_or(|t| *t == r.kind))
        .filter(|r| query.name.as_ref().is_none_or(|n| *n == r.name))
        .map(record_json)
        .collect();
    success(json!(records))
}

#[derive(Deserialize)]
struct NewRecord {
    r#type: String,
    name: String,
    content: String,
}

async fn create_record(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(zone): Path<String>,
    body: Option<Json<NewRecord>>,
) -> Answer {
    let (record, mirror) = {
        let mut state = state.lock().unwrap();
        if let Err(answer) = check(&state, &headers, Some(&zone)) {
            return answer;
        }
        let Some(Json(new)) = body else {
            return failure(StatusCode::BAD_REQUEST, 9207, "Request body is invalid.");
        };
        let zone_name = state
            .zones
            .iter()
            .find(|(id, _)| *id == zone)
            .map(|(_, name)| name.clone())
            .unwrap_or_default();
        if new.name != zone_name && !new.name.ends_with(&format!(".{zone_name}")) {
            return failure(
                StatusCode::BAD_REQUEST,
                9005,
                "Content for DNS record is invalid: the name is not in the zone.",
            );
        }
        state.next_id += 1;
        let record = FakeRecord {
            id: format!("{:032x}", state.next_id),
            zone_id: zone,
            kind: new.r#type,
            name: new.name,
            content: new.content,
        };
        state.records.push(record.clone());
        (record, state.mirror.clone())
    };
    if let Some(base) = mirror
        && record.kind == "TXT"
    {
        let host = format!("{}.", record.name);
        challtestsrv(
            &base,
            "set-txt",
            json!({ "host": host, "value": record.content }),
        )
        .await;
    }
    success(record_json(&record))
}

async fn delete_record(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((zone, id)): Path<(String, String)>,
) -> Answer {
    let (removed, left, mirror) = {
        let mut state = state.lock().unwrap();
        if let Err(answer) = check(&state, &headers, Some(&zone)) {
            return answer;
        }
        let Some(index) = state
            .records
            .iter()
            .position(|r| r.id == id && r.zone_id == zone)
        else {
            return failure(StatusCode::NOT_FOUND, 81044, "Record does not exist.");
        };
        let removed = state.records.remove(index);
        let left: Vec<String> = state
            .records
            .iter()
            .filter(|r| r.kind == "TXT" && r.name == removed.name)
            .map(|r| r.content.clone())
            .collect();
        (removed, left, state.mirror.clone())
    };
    if let Some(base) = mirror
        && removed.kind == "TXT"
    {
        // challtestsrv removes a name's TXT records together: put back the others.
        let host = format!("{}.", removed.name);
        challtestsrv(&base, "clear-txt", json!({ "host": host })).await;
        for value in left {
            challtestsrv(&base, "set-txt", json!({ "host": host, "value": value })).await;
        }
    }
    success(json!({ "id": removed.id }))
}
