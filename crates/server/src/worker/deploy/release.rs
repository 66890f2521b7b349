//! Release: the release command, run once in a one-off container from the new image before
//! any new container takes traffic.

use futures::StreamExt;
use helvetia_core::Timestamp;
use helvetia_core::container::ContainerState;

use helvetia_core::deployment::FailureCause;

use super::{Deploy, Failure};
use crate::logs::runtime::container_lines;

impl Deploy<'_> {
    /// Runs the release command once, in a one-off container from the new image, with its
    /// output in the log. A failure (or the release timeout) fails the deployment before any
    /// new container starts; the previous version never stopped.
    pub(super) async fn release(
        &mut self,
        image: &str,
        network: &str,
        mounts: &[(String, String)],
        argv: &[String],
    ) -> Result<(), Failure> {
        let platform = self.platform;
        self.log.line(format!(
            "==> release: running {argv:?} before any new container takes traffic"
        ));
        let name = platform.engine.scope().release_container(
            self.service.project.as_str(),
            self.service.name.as_str(),
            self.deployment.id,
        );
        let record = platform
            .store
            .reserve_container(self.deployment.id, self.service.id, &name, None)
            .await?;
        let mut spec = self.container_spec(name, image, network, mounts);
        spec.command = Some(argv.to_vec());
        spec.port = None;
        let engine_id = platform.engine.run_container(&spec).await?;
        platform
            .store
            .record_container_engine(record.id, &engine_id, None)
            .await?;
        let log = self.log;
        let output = async {
            // The deployment log redacts every line again, but only the line redactor sees
            // where it cuts an over-long line, so it must know the secrets to keep one whole.
            let lines = container_lines(
                &platform.engine,
                &engine_id,
                None,
                None,
                true,
                log.redactor(),
            );
            let mut lines = std::pin::pin!(lines);
            while let Some((_, line)) = lines.next().await {
                // Drop the engine's timestamp: the log line has its own. The rest of a line cut
                // for its length starts with none.
                let text = match line.split_once(' ') {
                    Some((at, text)) if at.parse::<Timestamp>().is_ok() => text,
                    _ => line.as_str(),
                };
                log.line(format!("  | {text}"));
            }
        };
        let timeout = self.service.runtime.timeouts.release;
        let waited = tokio::time::timeout(timeout, async {
            let (code, ()) = tokio::join!(platform.engine.wait_container(&engine_id), output);
            code
        })
        .await;
        // A one-off container left behind is removed by the next reconciliation.
        if let Err(error) = platform.engine.remove_container(&engine_id).await {
            tracing::warn!(%error, "removing the release container failed");
        }
        let code = match waited {
            Ok(code) => code?,
            Err(_) => {
                platform
                    .store
                    .set_container_state(record.id, ContainerState::Failed)
                    .await?;
                return Err(Failure::failed(
                    FailureCause::Release,
                    format!(
                        "the release command did not finish within {}s",
                        timeout.as_secs()
                    ),
                ));
            }
        };
        let state = if code == 0 {
            ContainerState::Stopped
        } else {
            ContainerState::Failed
        };
        platform.store.set_container_state(record.id, state).await?;
        if code != 0 {
            return Err(Failure::failed(
                FailureCause::Release,
                format!("the release command exited with code {code}"),
            ));
        }
        self.log.line("The release command succeeded.");
        Ok(())
    }
}
