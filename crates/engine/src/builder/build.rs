//! A build on the builder engine: one at a time (the control group's caps are the build's
//! caps), the base images the Dockerfile names copied in from the host engine when the builder
//! lacks them (it pulls nothing: there may be no registry), the caps set, the build run, the
//! image copied to the host engine, which runs it. A failed build is checked against the
//! group's counters, so that a build stopped by a cap says which.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Semaphore, SemaphorePermit};

use super::cgroup::{BuildCaps, BuildGroup, CapHit};
use crate::docker::{BuildLine, BuildRequest, Engine, EngineError};
use crate::registry::Registry;

/// The builder engine as the deploy pipeline uses it. Cheap to clone; clones share the queue.
#[derive(Clone)]
pub struct Builder {
    engine: Engine,
    group: BuildGroup,
    /// Where built images go on their way to the host engine; none: copied directly.
    registry: Option<Registry>,
    /// One build at a time: the group's caps hold for all its steps together.
    turn: Arc<Semaphore>,
    /// Builds waiting or running, for "N ahead".
    queued: Arc<AtomicUsize>,
}

/// A build's failure: the engine's, or a cap that stopped it.
pub type BuildFailure = EngineError;

/// An image built on the builder, now in the host engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// Its id in the host engine.
    pub image: String,
    /// Its digest in the registry it came through, if it did.
    pub digest: Option<String>,
}

/// A place in the builder's queue; the build runs while it is held.
pub struct Turn<'a> {
    builder: &'a Builder,
    _permit: SemaphorePermit<'a>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.builder.queued.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Builder {
    pub(super) fn new(engine: Engine, group: BuildGroup) -> Builder {
        Builder {
            engine,
            group,
            registry: None,
            turn: Arc::new(Semaphore::new(1)),
            queued: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Hands built images to the host engine through `registry`.
    pub fn with_registry(mut self, registry: Option<Registry>) -> Builder {
        self.registry = registry;
        self
    }

    /// The builder engine itself.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Builds waiting for the builder or running on it.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// Waits for this build's turn (first come, first served); `waiting` hears how many builds
    /// are ahead when there are any.
    pub async fn turn(&self, waiting: impl FnOnce(usize)) -> Result<Turn<'_>, EngineError> {
        let ahead = self.queued.fetch_add(1, Ordering::SeqCst);
        // Counted before waiting, so that a cancelled wait is uncounted by the guard below.
        struct Uncount<'a>(&'a AtomicUsize, bool);
        impl Drop for Uncount<'_> {
            fn drop(&mut self) {
                if self.1 {
                    self.0.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
        let mut uncount = Uncount(&self.queued, true);
        if ahead > 0 {
            waiting(ahead);
        }
        let permit = self
            .turn
            .acquire()
            .await
            .map_err(|_| EngineError::Api("the builder's queue is closed".into()))?;
        uncount.1 = false;
        Ok(Turn {
            builder: self,
            _permit: permit,
        })
    }
}

impl Builder {
    /// Waits until no build runs and keeps the builder to itself while the guard lives, for
    /// upkeep that must not race a build or a push (the cache's prune, the registry's garbage
    /// collection). Not counted in the queue builds see.
    pub async fn exclusive(&self) -> Result<SemaphorePermit<'_>, EngineError> {
        self.turn
            .acquire()
            .await
            .map_err(|_| EngineError::Api("the builder's queue is closed".into()))
    }

    /// The registry built images go through, if there is one.
    pub fn registry(&self) -> Option<&Registry> {
        self.registry.as_ref()
    }
}

impl Builder {
    /// Waits until the builder engine answers: it may be restarting after it died (its
    /// watcher starts it again within seconds).
    async fn answering(&self, on_line: &mut impl FnMut(BuildLine)) -> Result<(), EngineError> {
        let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
        let mut said = false;
        loop {
            match self.engine.ping().await {
                Ok(_) => return Ok(()),
                Err(error) if tokio::time::Instant::now() >= deadline => {
                    return Err(EngineError::Unreachable(format!(
                        "the builder engine did not answer within {ANSWER_TIMEOUT:?}: {error}"
                    )));
                }
                Err(_) => {
                    if !said {
                        on_line("waiting for the builder engine to answer".to_owned());
                        said = true;
                    }
                    tokio::time::sleep(ANSWER_POLL).await;
                }
            }
        }
    }
}

/// How long a build waits for a builder engine that does not answer (restarting).
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
const ANSWER_POLL: std::time::Duration = std::time::Duration::from_millis(100);

impl Turn<'_> {
    /// Builds `request` on the builder within `caps` and hands the image to `host`.
    pub async fn build(
        &self,
        host: &Engine,
        request: &BuildRequest,
        caps: &BuildCaps,
        mut on_line: impl FnMut(BuildLine) + Send,
    ) -> Result<Built, BuildFailure> {
        let builder = self.builder;
        builder.answering(&mut on_line).await?;
        let dockerfile = request.checkout.join(&request.dockerfile);
        let text = tokio::fs::read_to_string(&dockerfile)
            .await
            .unwrap_or_default();
        for image in base_images(&text) {
            if builder.engine.has_image(&image).await? || !host.has_image(&image).await? {
                continue;
            }
            host.copy_image_to(&builder.engine, &image).await?;
            on_line(format!(
                "base image {image}: copied from the host engine to the builder"
            ));
        }
        let group = &builder.group;
        group.set_caps(caps).map_err(|e| {
            EngineError::Api(format!(
                "setting the build's caps on its control group: {e}"
            ))
        })?;
        on_line(format!(
            "builder: {} memory, {} CPUs, {} processes, {:?} wall time",
            mebibytes(caps.memory_bytes),
            caps.cpus,
            caps.pids,
            request.timeout
        ));
        let before = group.counters();
        let built = builder.engine.build_image(request, &mut on_line).await;
        let error = match built {
            Ok(_) => return self.hand_over(host, request, &mut on_line).await,
            Err(error) => error,
        };
        let (cap, limit) = match group.counters().hit_since(&before, caps) {
            Some(CapHit::Memory) => ("memory", mebibytes(caps.memory_bytes)),
            Some(CapHit::Pids) => ("pids", format!("{} processes", caps.pids)),
            None => return Err(error),
        };
        Err(EngineError::BuildCapped {
            cap,
            limit,
            message: error.to_string(),
        })
    }
}

impl Turn<'_> {
    /// Gets the image built as `request.tag` to `host`: through the registry when there is
    /// one (pushed, then pulled by its digest and tagged), else copied engine to engine.
    async fn hand_over(
        &self,
        host: &Engine,
        request: &BuildRequest,
        on_line: &mut impl FnMut(BuildLine),
    ) -> Result<Built, BuildFailure> {
        let started = std::time::Instant::now();
        let builder = &self.builder.engine;
        let in_builder = builder.image_id(&request.tag).await?;
        let built = match &self.builder.registry {
            None => {
                builder.copy_image_to(host, &request.tag).await?;
                Built {
                    image: host.image_id(&request.tag).await?,
                    digest: None,
                }
            }
            Some(registry) => {
                self.through_registry(registry, host, request, &in_builder, on_line)
                    .await?
            }
        };
        // The host engine has it now; the builder keeps only its cache (and base images).
        // Removed meanwhile: the deployment goes on (the disk sweep removes any left).
        let builder = builder.clone();
        tokio::spawn(async move {
            if let Err(error) = builder.remove_image(&in_builder).await {
                tracing::warn!(%error, "removing a built image from the builder failed");
            }
        });
        on_line(format!(
            "handed to the host engine in {} ms ({})",
            started.elapsed().as_millis(),
            if built.digest.is_some() {
                "through the registry"
            } else {
                "copied"
            }
        ));
        Ok(built)
    }

    /// Pushes the image built as `request.tag` (`built` in the builder) to `registry`, pulls
    /// it into `host` by its digest and tags it there.
    async fn through_registry(
        &self,
        registry: &Registry,
        host: &Engine,
        request: &BuildRequest,
        built: &str,
        on_line: &mut impl FnMut(BuildLine),
    ) -> Result<Built, BuildFailure> {
        let builder = &self.builder.engine;
        let (repository, tag) = request
            .tag
            .rsplit_once(':')
            .ok_or_else(|| EngineError::Api(format!("the tag {} has no tag part", request.tag)))?;
        let remote = registry.repository(repository);
        builder.tag_image(built, &remote, tag).await?;
        let digest = builder.push_image(&remote, tag).await?;
        let reference = format!("{remote}@{digest}");
        on_line(format!("pushed to the registry: {reference}"));
        let image = host.pull_image(&reference).await?;
        host.tag_image(&image, repository, tag).await?;
        // The pulled reference would keep the image alive after its tag is removed (old
        // images beyond the rollback window): only the deployment's own tag names it.
        host.remove_tag(&image, &reference).await?;
        Ok(Built {
            image,
            digest: Some(digest),
        })
    }
}

fn mebibytes(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}

/// The images a Dockerfile's `FROM` lines name, other than `scratch`, its own stages and names
/// made of build arguments (which only the build resolves).
fn base_images(dockerfile: &str) -> Vec<String> {
    let mut stages: Vec<String> = vec![];
    let mut images: Vec<String> = vec![];
    for line in dockerfile.lines() {
        let mut words = line.split_whitespace();
        if !words
            .next()
            .is_some_and(|word| word.eq_ignore_ascii_case("from"))
        {
            continue;
        }
        let mut words = words.skip_while(|word| word.starts_with("--"));
        let Some(image) = words.next() else {
            continue;
        };
        let lower = image.to_ascii_lowercase();
        let own_stage = stages.contains(&lower);
        if let (Some(as_word), Some(stage)) = (words.next(), words.next())
            && as_word.eq_ignore_ascii_case("as")
        {
            stages.push(stage.to_ascii_lowercase());
        }
        if lower == "scratch"
            || image.contains('$')
            || own_stage
            || images.iter().any(|known| known == image)
        {
            continue;
        }
        images.push(image.to_owned());
    }
    images
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_images_are_read_from_the_from_lines() {
        let dockerfile = "\
# a comment FROM nothing
FROM --platform=linux/amd64 helvetia-test/python:bookworm AS deps
RUN pip install x
from deps as app
FROM scratch
FROM ${BASE}
FROM helvetia-test/busybox:httpd
FROM helvetia-test/python:bookworm
COPY --from=deps /x /x
";
        assert_eq!(
            base_images(dockerfile),
            [
                "helvetia-test/python:bookworm",
                "helvetia-test/busybox:httpd"
            ]
        );
        assert!(base_images("FROM scratch\nCOPY busybox /bin/busybox\n").is_empty());
    }
}
