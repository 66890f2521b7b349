//! The engine's event stream, narrowed to this installation's containers.

use bollard::query_parameters::EventsOptions;
use futures::{Stream, StreamExt};

use super::{Engine, EngineError};

/// Something that happened to a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    pub id: String,
    pub name: String,
    /// The engine's action: `start`, `die`, `oom`, `health_status: healthy`, …
    pub action: String,
    pub exit_code: Option<i64>,
}

/// The actions the health monitor reacts to.
const ACTIONS: [&str; 5] = ["start", "die", "oom", "health_status", "restart"];

impl Engine {
    /// Container events from now on. The stream ends (or errs) when the engine goes away;
    /// callers reconnect, and should assume they missed events in between.
    pub fn container_events(&self) -> impl Stream<Item = Result<ContainerEvent, EngineError>> + '_ {
        let mut filters = self.owned_filters(&[]);
        filters.insert("type".to_owned(), vec!["container".to_owned()]);
        filters.insert(
            "event".to_owned(),
            ACTIONS.iter().map(|a| (*a).to_owned()).collect(),
        );
        let options = EventsOptions {
            filters: Some(filters),
            ..EventsOptions::default()
        };
        self.docker.events(Some(options)).map(|message| {
            let message = message.map_err(EngineError::from_bollard)?;
            let actor = message.actor.unwrap_or_default();
            let attributes = actor.attributes.unwrap_or_default();
            Ok(ContainerEvent {
                id: actor.id.unwrap_or_default(),
                name: attributes.get("name").cloned().unwrap_or_default(),
                action: message.action.unwrap_or_default(),
                exit_code: attributes
                    .get("exitCode")
                    .and_then(|code| code.parse().ok()),
            })
        })
    }
}
