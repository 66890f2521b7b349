//! What every Server-Sent Events route shares: resuming where a reconnecting client left off,
//! and the keep-alive that holds idle streams open through proxies.

use std::convert::Infallible;
use std::str::FromStr;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use futures::Stream;

use super::error::ApiError;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The position a reconnecting client asks for: its `Last-Event-ID`, parsed as `T` (`what`
/// names the form for the error), or `None` on a first connection.
pub(super) fn resume_from<T: FromStr>(
    headers: &HeaderMap,
    what: &str,
) -> Result<Option<T>, ApiError> {
    headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(|value| {
            value
                .parse()
                .map_err(|_| ApiError::BadRequest(format!("Last-Event-ID must be {what}")))
        })
        .transpose()
}

/// `events` as a response, with the shared keep-alive.
pub(crate) fn respond<S>(events: S) -> Sse<KeepAliveStream<S>>
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}
