//! Resource usage of containers, for the metrics collector: a one-shot reading of a
//! container's counters, and what a reading does not say (its CPU limit and how often the
//! engine restarted it). The collector names the containers by the engine ids its store
//! recorded, so it reads only this installation's.
//!
//! Readings are read from the engine's unix socket straight into the core's
//! [`StatsDocument`], which keeps only the counters Helvetia uses: the parser that runs here
//! is the one the core tests on answers recorded from cgroup v1 and v2 hosts, and a reading
//! allocates little (bollard's typed answer would build a map of every memory statistic and a
//! vector of per-CPU times for each container, every few seconds). Connections are kept open
//! and reused between readings.

use std::path::PathBuf;
use std::sync::Mutex;

use bytes::Bytes;
use helvetia_core::metrics::StatsDocument;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Request;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::HOST;
use hyper_util::rt::TokioIo;

use super::socket::{self, SOCKET_HOST};
use super::{Engine, EngineError, Result};

/// A stats answer is about 3 KiB; anything far larger is not one.
const MAX_STATS_BODY: usize = 256 * 1024;

/// What the collector needs to know about a container besides its counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Allotment {
    /// CPU limit in cores, when the container has one.
    pub cpus: Option<f64>,
    /// How often the engine restarted the container (its restart policy at work).
    pub restart_count: i64,
}

/// Reads containers' counters over a few reused connections to the engine. Cheap to share:
/// concurrent readings each take their own connection.
pub struct StatsReader {
    socket: PathBuf,
    idle: Mutex<Vec<SendRequest<Empty<Bytes>>>>,
}

impl Engine {
    /// A reader of container stats. Needs the engine's local unix socket.
    pub fn stats_reader(&self) -> Result<StatsReader> {
        let socket = self.socket.clone().map_err(|scheme| {
            EngineError::Unreachable(format!(
                "container metrics need the Docker engine's local unix socket, but DOCKER_HOST \
                 is a `{scheme}` address"
            ))
        })?;
        Ok(StatsReader {
            socket,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// A container's CPU limit and restart count.
    pub async fn container_allotment(&self, id: &str) -> Result<Allotment> {
        let inspect = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(EngineError::from_bollard)?;
        let nano_cpus = inspect
            .host_config
            .and_then(|host| host.nano_cpus)
            .filter(|nano| *nano > 0);
        Ok(Allotment {
            cpus: nano_cpus.map(|nano| nano as f64 / 1e9),
            restart_count: inspect.restart_count.unwrap_or(0),
        })
    }
}

impl StatsReader {
    /// One reading of a container's counters, without the engine's second sample
    /// (`one-shot`): the caller computes rates from its own previous reading.
    pub async fn read(&self, id: &str) -> Result<StatsDocument> {
        // Engine ids and names are plain words; anything else must not reach the path.
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(EngineError::NotFound(format!("container `{id}`")));
        }
        let request = Request::get(format!("/containers/{id}/stats?stream=false&one-shot=true"))
            .header(HOST, SOCKET_HOST)
            .body(Empty::new())
            .map_err(|e| EngineError::Api(format!("the stats request: {e}")))?;
        let mut sender = self.connection().await?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| socket::unreachable(&self.socket, &e))?;
        let response = socket::check_status(response).await?;
        let body = Limited::new(response.into_body(), MAX_STATS_BODY)
            .collect()
            .await
            .map_err(|e| EngineError::Unreachable(format!("reading container stats: {e}")))?
            .to_bytes();
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(sender);
        serde_json::from_slice(&body)
            .map_err(|e| EngineError::Api(format!("unreadable container stats: {e}")))
    }

    /// An idle open connection, or a new one.
    async fn connection(&self) -> Result<SendRequest<Empty<Bytes>>> {
        loop {
            let idle = self
                .idle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .pop();
            let Some(mut sender) = idle else { break };
            if !sender.is_closed() && sender.ready().await.is_ok() {
                return Ok(sender);
            }
        }
        let stream = socket::connect(&self.socket).await?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| socket::unreachable(&self.socket, &e))?;
        // The connection lives until its sender is dropped or the engine closes it.
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "a stats connection to the engine ended");
            }
        });
        Ok(sender)
    }
}
