//! The engine's event stream, narrowed to this installation's containers.

use bollard::query_parameters::EventsOptions;
use futures::{Stream, StreamExt};

use super::{Engine, EngineError, ImageHealth};

/// Something that happened to a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    pub id: String,
    pub name: String,
    pub action: ContainerAction,
    pub exit_code: Option<i64>,
}

/// What happened, among the engine's actions the health monitor reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerAction {
    /// Started: for the first time, or again after its process exited.
    Start,
    Restart,
    /// Its process exited.
    Die,
    /// The kernel killed a process of it for using more memory than its limit.
    Oom,
    /// The image's own `HEALTHCHECK` changed status.
    HealthStatus(ImageHealth),
}

/// The actions asked of the engine: the same as [`ContainerAction::parse`] knows.
const ACTIONS: [&str; 5] = ["start", "die", "oom", "health_status", "restart"];

impl ContainerAction {
    /// The engine's action (`start`, `die`, `oom`, `health_status: healthy`, …); `None` for one
    /// the health monitor does not react to.
    fn parse(action: &str) -> Option<ContainerAction> {
        match action {
            "start" => Some(ContainerAction::Start),
            "restart" => Some(ContainerAction::Restart),
            "die" => Some(ContainerAction::Die),
            "oom" => Some(ContainerAction::Oom),
            other => {
                let status = other.strip_prefix("health_status:")?;
                ImageHealth::parse(status.trim()).map(ContainerAction::HealthStatus)
            }
        }
    }
}

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
        self.docker.events(Some(options)).filter_map(|message| {
            let event = match message {
                Err(error) => Some(Err(EngineError::from_bollard(error))),
                Ok(message) => {
                    let action = message.action.as_deref().and_then(ContainerAction::parse);
                    action.map(|action| {
                        let actor = message.actor.unwrap_or_default();
                        let attributes = actor.attributes.unwrap_or_default();
                        Ok(ContainerEvent {
                            id: actor.id.unwrap_or_default(),
                            name: attributes.get("name").cloned().unwrap_or_default(),
                            action,
                            exit_code: attributes
                                .get("exitCode")
                                .and_then(|code| code.parse().ok()),
                        })
                    })
                }
            };
            futures::future::ready(event)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_actions_parse_once_into_what_the_monitor_reacts_to() {
        assert_eq!(ContainerAction::parse("die"), Some(ContainerAction::Die));
        assert_eq!(ContainerAction::parse("oom"), Some(ContainerAction::Oom));
        assert_eq!(
            ContainerAction::parse("health_status: unhealthy"),
            Some(ContainerAction::HealthStatus(ImageHealth::Unhealthy))
        );
        assert_eq!(
            ContainerAction::parse("health_status: healthy"),
            Some(ContainerAction::HealthStatus(ImageHealth::Healthy))
        );
        assert_eq!(ContainerAction::parse("exec_start: sh"), None);
        assert_eq!(ContainerAction::parse("health_status: bogus"), None);
    }

    #[test]
    fn every_action_asked_of_the_engine_parses() {
        for action in ACTIONS {
            let action = if action == "health_status" {
                "health_status: healthy"
            } else {
                action
            };
            assert!(ContainerAction::parse(action).is_some(), "{action}");
        }
    }
}
