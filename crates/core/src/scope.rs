//! The names of an installation's engine objects. Two installations may share one engine
//! (staging beside production) with the same project, service and volume names, so every name
//! carries the installation's id: `helvetia-<instance>-<…>`. Every kind of object Helvetia
//! names — containers, networks, volumes, image repositories, and any later kind (build
//! cache, registry repositories, Swarm services, secrets) — gets its name from a [`Scope`]
//! method built on [`Scope::name`], the one place the form lives.
//!
//! A name only avoids collisions; the engine adapter also refuses to use an existing object of
//! that name whose labels are not this installation's.

/// The installation a name belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    instance: String,
}

impl Scope {
    /// The scope of the installation with this id (lowercase letters, digits and `-`, as the
    /// store makes it: engine names and image references accept nothing else).
    pub fn new(instance: impl Into<String>) -> Scope {
        Scope {
            instance: instance.into(),
        }
    }

    /// The installation's id, as its objects' `io.helvetia.instance` label carries it.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// `helvetia-<instance>-<parts joined by ->`. Readable in `docker ps`, and never equal to
    /// another installation's name for the same parts.
    fn name(&self, parts: &[&str]) -> String {
        let mut name = format!("helvetia-{}", self.instance);
        for part in parts {
            name.push('-');
            name.push_str(part);
        }
        name
    }

    /// A deployment's `index`-th container. Unique because deployment ids are.
    pub fn container(
        &self,
        project: &str,
        service: &str,
        deployment_id: i64,
        index: u32,
    ) -> String {
        self.name(&[
            project,
            service,
            &deployment_id.to_string(),
            &index.to_string(),
        ])
    }

    /// The one-off container that runs a deployment's release command.
    pub fn release_container(&self, project: &str, service: &str, deployment_id: i64) -> String {
        self.name(&[project, service, &deployment_id.to_string(), "release"])
    }

    /// The container, never started, that makes a deployment's pulled registry image this
    /// installation's (committed with its labels).
    pub fn adoption_container(&self, project: &str, service: &str, deployment_id: i64) -> String {
        self.name(&[project, service, &deployment_id.to_string(), "pull"])
    }

    /// A project's network.
    pub fn network(&self, project: &str) -> String {
        self.name(&[project])
    }

    /// A service's volume. The service's id comes last, so names of different services never
    /// collide even where their dashes line up (`a-b`/`c` and `a`/`b-c`).
    pub fn volume(&self, project: &str, service: &str, service_id: i64, volume: &str) -> String {
        self.name(&[project, service, volume, &service_id.to_string()])
    }

    /// The image repository of a service's builds; tags are deployment ids.
    pub fn image_repository(&self, project: &str, service: &str) -> String {
        self.name(&[project, service])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_installation() {
        let scope = Scope::new("3f9a");
        assert_eq!(
            scope.container("demo", "web", 42, 0),
            "helvetia-3f9a-demo-web-42-0"
        );
        assert_eq!(
            scope.release_container("demo", "web", 42),
            "helvetia-3f9a-demo-web-42-release"
        );
        assert_eq!(scope.network("demo"), "helvetia-3f9a-demo");
        assert_eq!(
            scope.adoption_container("demo", "web", 42),
            "helvetia-3f9a-demo-web-42-pull"
        );
        assert_eq!(
            scope.volume("web", "db", 7, "data"),
            "helvetia-3f9a-web-db-data-7"
        );
        assert_eq!(
            scope.image_repository("demo", "web"),
            "helvetia-3f9a-demo-web"
        );
        let other = Scope::new("77c0");
        assert_ne!(scope.network("demo"), other.network("demo"));
        assert_ne!(
            scope.volume("a-b", "c", 1, "data"),
            scope.volume("a", "b-c", 2, "data")
        );
    }
}
