//! What an App does on one repository with an installation token: reads it, writes back and
//! reads CI's results — commit statuses and the combined status, check runs (create, update,
//! list) and issue comments (create, update in place, list) — in GitHub's formats, on
//! repositories the token grants.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::state::{self, Shared, Written, WrittenKind, repo_json};
use super::{GitHubError, NOT_FOUND, Page, bearer, with_link};

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/repos/{owner}/{repo}", get(repository))
        .route("/repos/{owner}/{repo}/statuses/{sha}", post(create_status))
        .route(
            "/repos/{owner}/{repo}/commits/{reference}/statuses",
            get(list_statuses),
        )
        .route(
            "/repos/{owner}/{repo}/commits/{reference}/status",
            get(combined_status),
        )
        .route("/repos/{owner}/{repo}/check-runs", post(create_check_run))
        .route(
            "/repos/{owner}/{repo}/check-runs/{id}",
            patch(update_check_run),
        )
        .route(
            "/repos/{owner}/{repo}/commits/{reference}/check-runs",
            get(list_check_runs),
        )
        .route(
            "/repos/{owner}/{repo}/issues/{number}/comments",
            post(create_comment).get(list_comments),
        )
        .route(
            "/repos/{owner}/{repo}/issues/comments/{id}",
            patch(update_comment),
        )
}

const VALIDATION_FAILED: GitHubError =
    GitHubError(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");

/// Checks that the request's installation token grants `owner/repo`; its full name and its
/// JSON (for bodies that embed the repository).
fn authorize(
    state: &state::State,
    shared: &Shared,
    headers: &HeaderMap,
    owner: &str,
    repo: &str,
) -> Result<(String, Value), GitHubError> {
    let token = bearer(headers)
        .and_then(|t| state.token_installation(&t))
        .ok_or(GitHubError(StatusCode::UNAUTHORIZED, "Bad credentials"))?;
    let installation = state
        .installation(token.installation_id)
        .filter(|i| i.account.login == owner)
        .ok_or(NOT_FOUND)?;
    let granted = installation
        .repos
        .iter()
        .find(|r| {
            r.name == repo
                && token
                    .repositories
                    .as_ref()
                    .is_none_or(|names| names.contains(&r.name))
        })
        .ok_or(NOT_FOUND)?;
    let json = repo_json(installation, granted, &shared.web_url, &shared.api_url());
    Ok((format!("{owner}/{repo}"), json))
}

/// The App's bot account, the author of everything written with its installation tokens.
fn bot(state: &state::State, shared: &Shared) -> Value {
    let slug = state.app().map(|a| a.slug.clone()).unwrap_or_default();
    json!({
        "login": format!("{slug}[bot]"),
        "id": state.app().map(|a| a.id + 1_000_000),
        "type": "Bot",
        "html_url": format!("{}/apps/{slug}", shared.web_url),
    })
}

/// `GET {api}/repos/{owner}/{repo}`: the repository (its default branch, clone URL, …).
async fn repository(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
) -> Result<Response, GitHubError> {
    let state = shared.lock();
    let (_, repository) = authorize(&state, &shared, &headers, &owner, &repo)?;
    Ok(axum::Json(repository).into_response())
}

#[derive(Deserialize)]
struct NewStatus {
    state: String,
    target_url: Option<String>,
    description: Option<String>,
    context: Option<String>,
}

async fn create_status(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    axum::Json(new): axum::Json<NewStatus>,
) -> Result<Response, GitHubError> {
    let mut state = shared.lock();
    let (full_name, _) = authorize(&state, &shared, &headers, &owner, &repo)?;
    if !["error", "failure", "pending", "success"].contains(&new.state.as_str()) {
        return Err(VALIDATION_FAILED);
    }
    let id = state.next_id();
    let now = state::timestamp(state::now());
    let status = json!({
        "url": format!("{}/repos/{full_name}/statuses/{sha}", shared.api_url()),
        "id": id,
        "node_id": format!("MDY6U3RhdHVz{id}"),
        "state": new.state,
        "description": new.description,
        "target_url": new.target_url,
        "context": new.context.unwrap_or_else(|| "default".into()),
        "created_at": now,
        "updated_at": now,
        "creator": bot(&state, &shared),
    });
    Ok(created(
        &mut state,
        WrittenKind::Status,
        full_name,
        sha,
        status,
    ))
}

/// Every status of `full_name`'s `reference`, newest first, as GitHub lists them.
fn statuses_of(state: &state::State, full_name: &str, reference: &str) -> Vec<Value> {
    let mut statuses = state.written(WrittenKind::Status, full_name, Some(reference));
    statuses.reverse();
    statuses
}

/// Keeps what was written; GitHub's 201 answer with it.
fn created(
    state: &mut state::State,
    kind: WrittenKind,
    repo: String,
    key: String,
    value: Value,
) -> Response {
    let answer = (StatusCode::CREATED, axum::Json(value.clone())).into_response();
    state.written.push(Written {
        kind,
        repo,
        key,
        value,
    });
    answer
}

/// Applies `change` to the `kind` item `id` of `owner/repo`; GitHub's answer with the result.
fn update_written(
    shared: &Shared,
    headers: &HeaderMap,
    kind: WrittenKind,
    (owner, repo, id): (&str, &str, i64),
    change: impl FnOnce(&mut Value),
) -> Result<Response, GitHubError> {
    let mut state = shared.lock();
    let (full_name, _) = authorize(&state, shared, headers, owner, repo)?;
    let item = state
        .written
        .iter_mut()
        .find(|w| w.kind == kind && w.repo == full_name && w.value["id"] == id)
        .map(|w| &mut w.value)
        .ok_or(NOT_FOUND)?;
    change(item);
    Ok(axum::Json(item.clone()).into_response())
}

/// The total and one page of the `kind` items of `owner/repo` under `key`, listed at
/// `{api}/repos/{owner}/{repo}/{path}`, with their `Link` header.
fn list_written(
    shared: &Shared,
    headers: &HeaderMap,
    kind: WrittenKind,
    (owner, repo, key): (&str, &str, &str),
    page: &Page,
    path: &str,
) -> Result<(usize, Vec<Value>, Option<HeaderValue>), GitHubError> {
    let state = shared.lock();
    let (full_name, _) = authorize(&state, shared, headers, owner, repo)?;
    let all = state.written(kind, &full_name, Some(key));
    let path = format!("/repos/{full_name}/{path}");
    let (items, link) = page.of(&all, &shared.api_url(), &path);
    Ok((all.len(), items, link))
}

async fn list_statuses(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path((owner, repo, reference)): Path<(String, String, String)>,
    Query(page): Query<Page>,
) -> Result<Response, GitHubError> {
    let state = shared.lock();
    let (full_name, _) = authorize(&state, &shared, &headers, &owner, &repo)?;
    let all = statuses_of(&state, &full_name, &reference);
    let path = format!("/repos/{full_name}/commits/{reference}/statuses");
    let (items, link) = page.of(&all, &shared.api_url(), &path);
    Ok(with_link(StatusCode::OK, Value::Array(items), link))
}

/// The latest status per context, and their combination: failure when any failed or
/// errored, pending when any is pending (or there is none), success otherwise.
async fn combined_status(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path((owner, repo, reference)): Path<(String, String, String)>,
) -> Result<Response, GitHubError> {
    let state = shared.lock();
    let (full_name, repository) = authorize(&state, &shared, &headers, &owner, &repo)?;
    let mut latest: Vec<Value> = vec![];
    for status in statuses_of(&state, &full_name, &reference) {
        if !latest.iter().any(|s| s["context"] == status["context"]) {
            latest.push(status);
        }
    }
    let any = |wanted: &[&str]| {
        latest
            .iter()
            .any(|s| wanted.iter().any(|w| s["state"] == *w))
    };
    let combined = if any(&["failure", "error"]) {
        "failure"
    } else if latest.is_empty() || any(&["pending"]) {
        "pending"
    } else {
        "success"
    };
    let api_url = shared.api_url();
    Ok(axum::Json(json!({
        "state": combined,
        "statuses": latest,
        "sha": reference,
        "total_count": latest.len(),
        "repository": repository,
        "commit_url": format!("{api_url}/repos/{full_name}/commits/{reference}"),
        "url": format!("{api_url}/repos/{full_name}/commits/{reference}/status"),
    }))
    .into_response())
}

/// The fields of a check run a create or an update may set.
const CHECK_RUN_FIELDS: [&str; 8] = [
    "name",
    "details_url",
    "external_id",
    "status",
    "conclusion",
    "started_at",
    "completed_at",
    "output",
];

/// Copies the settable fields of `from` onto `run`; a conclusion completes the run.
fn apply_check_run_fields(run: &mut Value, from: &Map<String, Value>) {
    for field in CHECK_RUN_FIELDS {
        if let Some(value) = from.get(field) {
            run[field] = value.clone();
        }
    }
    if from.get("conclusion").is_some_and(|c| !c.is_null()) {
        run["status"] = json!("completed");
        if run["completed_at"].is_null() {
            run["completed_at"] = json!(state::timestamp(state::now()));
        }
    }
}

async fn create_check_run(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
    axum::Json(new): axum::Json<Map<String, Value>>,
) -> Result<Response, GitHubError> {
    let mut state = shared.lock();
    let (full_name, _) = authorize(&state, &shared, &headers, &owner, &repo)?;
    let (Some(name), Some(head_sha)) = (
        new.get("name").and_then(Value::as_str),
        new.get("head_sha").and_then(Value::as_str),
    ) else {
        return Err(VALIDATION_FAILED);
    };
    let id = state.next_id();
    let api_url = shared.api_url();
    let app = state
        .app()
        .map(|a| json!({"id": a.id, "slug": a.slug, "name": a.name}));
    let mut run = json!({
        "id": id,
        "node_id": format!("MDg6Q2hlY2tSdW4{id}"),
        "name": name,
        "head_sha": head_sha,
        "external_id": "",
        "url": format!("{api_url}/repos/{full_name}/check-runs/{id}"),
        "html_url": format!("{}/{full_name}/runs/{id}", shared.web_url),
        "details_url": null,
        "status": "queued",
        "conclusion": null,
        "started_at": state::timestamp(state::now()),
        "completed_at": null,
        "output": {"title": null, "summary": null, "text": null, "annotations_count": 0},
        "check_suite": {"id": id + 1},
        "app": app,
        "pull_requests": [],
    });
    apply_check_run_fields(&mut run, &new);
    Ok(created(
        &mut state,
        WrittenKind::CheckRun,
        full_name,
        head_sha.to_owned(),
        run,
    ))
}

async fn update_check_run(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path((owner, repo, id)): Path<(String, String, i64)>,
    axum::Json(update): axum::Json<Map<String, Value>>,
) -> Result<Response, GitHubError> {
    let target = (owner.as_str(), repo.as_str(), id);
    update_written(&shared, &headers, WrittenKind::CheckRun, target, |run| {
        apply_check_run_fields(run, &update);
    })
}

async fn list_check_runs(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path((owner, repo, reference)): Path<(String, String, String)>,
    Query(page): Query<Page>,
) -> Result<Response, GitHubError> {
    let path = format!("commits/{reference}/check-runs");
    let source = (owner.as_str(), repo.as_str(), reference.as_str());
    let (total, items, link) = list_written(
        &shared,
        &headers,
        WrittenKind::CheckRun,
        source,
        &page,
        &path,
    )?;
    let body = json!({"total_count": total, "check_runs": items});
    Ok(with_link(StatusCode::OK, body, link))
}

#[derive(Deserialize)]
struct CommentBody {
    body: String,
}

async fn create_comment(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    axum::Json(new): axum::Json<CommentBody>,
) -> Result<Response, GitHubError> {
    let mut state = shared.lock();
    let (full_name, _) = authorize(&state, &shared, &headers, &owner, &repo)?;
    let id = state.next_id();
    let now = state::timestamp(state::now());
    let api_url = shared.api_url();
    let comment = json!({
        "id": id,
        "node_id": format!("MDEyOklzc3VlQ29tbWVudA{id}"),
        "url": format!("{api_url}/repos/{full_name}/issues/comments/{id}"),
        "html_url": format!("{}/{full_name}/pull/{number}#issuecomment-{id}", shared.web_url),
        "issue_url": format!("{api_url}/repos/{full_name}/issues/{number}"),
        "body": new.body,
        "user": bot(&state, &shared),
        "created_at": now,
        "updated_at": now,
        "author_association": "NONE",
    });
    Ok(created(
        &mut state,
        WrittenKind::Comment,
        full_name,
        number.to_string(),
        comment,
    ))
}

async fn update_comment(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path((owner, repo, id)): Path<(String, String, i64)>,
    axum::Json(update): axum::Json<CommentBody>,
) -> Result<Response, GitHubError> {
    let target = (owner.as_str(), repo.as_str(), id);
    update_written(&shared, &headers, WrittenKind::Comment, target, |comment| {
        comment["body"] = json!(update.body);
        comment["updated_at"] = json!(state::timestamp(state::now()));
    })
}

async fn list_comments(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Query(page): Query<Page>,
) -> Result<Response, GitHubError> {
    let path = format!("issues/{number}/comments");
    let number = number.to_string();
    let source = (owner.as_str(), repo.as_str(), number.as_str());
    let (_, items, link) = list_written(
        &shared,
        &headers,
        WrittenKind::Comment,
        source,
        &page,
        &path,
    )?;
    Ok(with_link(StatusCode::OK, Value::Array(items), link))
}
