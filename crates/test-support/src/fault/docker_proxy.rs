//! A proxy in front of the host engine's socket that forwards every connection as it is and
//! can cut the long-lived `/events` connections on demand: the engine's event stream dropped
//! while the engine itself stays up. A server reaches it through `DOCKER_HOST`
//! ([`DockerProxy::docker_host`], `TestServer::start_through`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::{AbortHandle, JoinHandle};

/// The host engine's socket.
const ENGINE_SOCKET: &str = "/var/run/docker.sock";

/// One forwarded connection: aborting its task drops both sockets.
struct Connection {
    task: AbortHandle,
    /// Whether the client asked for the event stream on it.
    events: Arc<AtomicBool>,
}

#[derive(Default)]
struct State {
    connections: Vec<Connection>,
    /// While set, a connection is cut as soon as it asks for the event stream.
    refuse_events: bool,
}

/// Listens on a socket of its own until dropped.
pub struct DockerProxy {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    state: Arc<Mutex<State>>,
    accept: JoinHandle<()>,
}

impl DockerProxy {
    /// Starts forwarding (on the caller's tokio runtime).
    pub fn start() -> DockerProxy {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let accept = tokio::spawn(accept(listener, state.clone()));
        DockerProxy {
            _dir: dir,
            socket,
            state,
            accept,
        }
    }

    /// `DOCKER_HOST` for a server that should talk to the engine through this proxy.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Cuts every event stream open now, and while `refuse` is set, every new one as soon as
    /// it is asked for. Returns how many were cut now.
    pub fn cut_events(&self, refuse: bool) -> usize {
        let mut state = self.state.lock().unwrap();
        state.refuse_events = refuse;
        let mut cut = 0;
        state.connections.retain(|connection| {
            if connection.task.is_finished() {
                return false;
            }
            if connection.events.load(Ordering::SeqCst) {
                connection.task.abort();
                cut += 1;
                return false;
            }
            true
        });
        cut
    }

    /// Lets event streams through again.
    pub fn allow_events(&self) {
        self.state.lock().unwrap().refuse_events = false;
    }
}

impl Drop for DockerProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for connection in &self.state.lock().unwrap().connections {
            connection.task.abort();
        }
    }
}

async fn accept(listener: UnixListener, state: Arc<Mutex<State>>) {
    while let Ok((client, _)) = listener.accept().await {
        let events = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(forward(client, events.clone(), state.clone()));
        state.lock().unwrap().connections.push(Connection {
            task: task.abort_handle(),
            events,
        });
    }
}

/// Copies both ways until either side closes; marks the connection once a request on it
/// names the event stream (the engine's API path `/v<version>/events`).
async fn forward(client: UnixStream, events: Arc<AtomicBool>, state: Arc<Mutex<State>>) {
    let Ok(engine) = UnixStream::connect(ENGINE_SOCKET).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut engine_read, mut engine_write) = engine.into_split();
    // Ends with whether the connection was refused (an event stream asked for while refused).
    let requests = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = client_read.read(&mut buffer).await.unwrap_or(0);
            if read == 0 {
                let _ = engine_write.shutdown().await;
                return false;
            }
            let chunk = &buffer[..read];
            if chunk
                .windows(8)
                .any(|w| w == b"/events?" || w == b"/events ")
            {
                events.store(true, Ordering::SeqCst);
                if state.lock().unwrap().refuse_events {
                    return true;
                }
            }
            if engine_write.write_all(chunk).await.is_err() {
                return false;
            }
        }
    };
    let answers = async {
        let _ = tokio::io::copy(&mut engine_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::pin!(requests, answers);
    tokio::select! {
        refused = &mut requests => {
            // Refused: returning drops both sockets, and the client sees the connection closed.
            if !refused {
                (&mut answers).await;
            }
        }
        () = &mut answers => {}
    }
}
