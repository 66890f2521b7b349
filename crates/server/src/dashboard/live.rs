//! Live fragments over Server-Sent Events: the overview's list and a service's status card.
//!
//! A stream sends its fragment as it is now, then again after each change the store announces
//! for what it shows ([`helvetia_store::changes`]) — gathered for a moment, so a burst of
//! changes renders once — and only when the HTML differs. Nothing is polled: an idle page
//! costs nothing but its open connection. A reconnecting browser (`EventSource` resumes by
//! itself) gets the current fragment first, so there is nothing to replay.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAliveStream, Sse};
use futures::Stream;
use helvetia_store::changes::Changed;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use super::overview::OverviewList;
use super::page::{PageResult, Viewer};
use super::services::StatusCard;
use crate::api::AppState;
use crate::api::sse;

/// How long changes are gathered before a fragment is rendered again.
const SETTLE: Duration = Duration::from_millis(150);

/// `GET /live/overview`: `overview` events, the projects and services list.
pub async fn overview(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Sse<KeepAliveStream<impl Stream<Item = Result<Event, Infallible>>>> {
    let app = state.app.clone();
    let caller = viewer.caller;
    fragments(
        "overview",
        state.store.subscribe_changes(),
        |_| true,
        move || {
            let (app, caller) = (app.clone(), caller.clone());
            async move { OverviewList::read(&app, &caller).await }
        },
    )
}

/// `GET /p/{project}/s/{service}/live`: `status` events, the service's status card.
pub async fn service(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, service)): Path<(String, String)>,
) -> PageResult<Sse<KeepAliveStream<impl Stream<Item = Result<Event, Infallible>>>>> {
    let (card, head) = StatusCard::read(&state.app, &viewer.caller, &project, &service).await?;
    let id = head.id;
    let app = state.app.clone();
    let caller = viewer.caller;
    let changes = state.store.subscribe_changes();
    let mut first = Some(card);
    Ok(fragments(
        "status",
        changes,
        move |changed| changed.service_id == id,
        move || {
            let ready = first.take();
            let (app, caller) = (app.clone(), caller.clone());
            let (project, service) = (project.clone(), service.clone());
            async move {
                match ready {
                    Some(card) => Ok(card),
                    None => StatusCard::read(&app, &caller, &project, &service)
                        .await
                        .map(|(card, _)| card),
                }
            }
        },
    ))
}

/// The stream of `event`s carrying what `render` makes, at first and after each wanted change.
/// It ends when rendering fails (what it showed was deleted, or access ended).
fn fragments<T, F, Fut>(
    event: &'static str,
    changes: broadcast::Receiver<Changed>,
    wanted: impl Fn(Changed) -> bool + Send + 'static,
    render: F,
) -> Sse<KeepAliveStream<impl Stream<Item = Result<Event, Infallible>>>>
where
    T: Template,
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = PageResult<T>> + Send,
{
    let state = Fragments {
        changes,
        wanted,
        render,
        last: None,
        started: false,
    };
    let stream = futures::stream::unfold(state, move |mut state| async move {
        loop {
            if state.started {
                state.next_change().await?;
            }
            state.started = true;
            let html = match (state.render)().await {
                Ok(fragment) => fragment.render().ok()?,
                Err(_) => return None,
            };
            if state.last.as_deref() != Some(html.as_str()) {
                let event = Event::default().event(event).data(&html);
                state.last = Some(html);
                return Some((Ok(event), state));
            }
        }
    });
    sse::respond(stream)
}

struct Fragments<W, F> {
    changes: broadcast::Receiver<Changed>,
    wanted: W,
    render: F,
    last: Option<String>,
    started: bool,
}

impl<W: Fn(Changed) -> bool, F> Fragments<W, F> {
    /// Waits for a wanted change (a lag counts: something may have been missed), then lets the
    /// burst it belongs to settle. `None` once the store's announcements end.
    async fn next_change(&mut self) -> Option<()> {
        loop {
            match self.changes.recv().await {
                Ok(changed) if (self.wanted)(changed) => break,
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => break,
                Err(RecvError::Closed) => return None,
            }
        }
        tokio::time::sleep(SETTLE).await;
        loop {
            match self.changes.try_recv() {
                Ok(_) | Err(TryRecvError::Lagged(_)) => {}
                Err(TryRecvError::Empty) => return Some(()),
                Err(TryRecvError::Closed) => return None,
            }
        }
    }
}
