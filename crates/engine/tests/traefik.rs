#![allow(clippy::unwrap_used)]
//! The Traefik adapter against the real `traefik` binary on loopback: routing through a
//! managed Traefik, confirming changes through its API, adopting it after Helvetia "restarts",
//! replacing it when its static configuration changes, and restarting it when it dies.
//!
//! One Traefik serves the whole scenario, because starting and stopping one takes seconds.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use helvetia_core::routing::{Backend, Route, RoutingTable};
use helvetia_engine::routing::{EdgeRouter, RoutingError};
use helvetia_engine::traefik::{
    Traefik, TraefikApi, TraefikMode, TraefikSettings, start_or_adopt, stop_traefik,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const HOST: &str = "web.demo.localhost";
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);
const DEADLINE: Duration = Duration::from_secs(20);

/// A port that was free a moment ago. Traefik must bind it itself, so it is released first.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `HELVETIA_TRAEFIK_BIN` (what `scripts/dev-setup.sh` installs), else the `traefik` on
/// `PATH`, as a full path: Traefik runs with a minimal `PATH`.
fn traefik_binary() -> PathBuf {
    if let Some(binary) = std::env::var_os("HELVETIA_TRAEFIK_BIN") {
        return PathBuf::from(binary);
    }
    let path = std::env::var_os("PATH").unwrap();
    std::env::split_paths(&path)
        .map(|directory| directory.join("traefik"))
        .find(|candidate| candidate.is_file())
        .expect("HELVETIA_TRAEFIK_BIN is set or traefik is on PATH (scripts/dev-setup.sh)")
}

/// An HTTP backend that answers every request with its own name, and `GET /headers` with the
/// request's header lines.
async fn start_backend(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => request.extend_from_slice(&buffer[..read]),
                    }
                }
                let request = String::from_utf8_lossy(&request).into_owned();
                let body = match request.strip_prefix("GET /headers ") {
                    Some(rest) => rest.split_once("\r\n").map_or("", |(_, headers)| headers),
                    None => name,
                };
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    address
}

/// Sends `GET /` for `host` to `entry_point`; returns the status and the body.
async fn get(entry_point: SocketAddr, host: &str) -> Option<(u16, String)> {
    get_with(entry_point, host, "/", "").await
}

/// Sends `GET path` for `host` with `headers` (`Name: value\r\n` lines) to `entry_point`.
async fn get_with(
    entry_point: SocketAddr,
    host: &str,
    path: &str,
    headers: &str,
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(entry_point).await.ok()?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// Waits until `condition` holds, failing the test after [`DEADLINE`].
async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn route_to(backend: SocketAddr) -> Route {
    Route {
        name: "demo_web".into(),
        path_prefix: None,
        redirect_to: None,
        basic_auth: None,
        hsts: None,
        hostnames: vec![HOST.into()],
        backends: vec![Backend {
            address: backend.ip().to_string(),
            port: backend.port(),
        }],
    }
}

fn recorded_pid(state_dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(state_dir.join("traefik.pid")).ok()?;
    text.lines().next()?.parse().ok()
}

fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !matches!(
            stat.rsplit_once(") ").map(|(_, s)| &s[..1]),
            Some("Z" | "X")
        )
    })
}

/// The process group of `pid`, the fifth field of `/proc/<pid>/stat`.
fn process_group(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, fields) = stat.rsplit_once(") ").unwrap();
    fields.split_whitespace().nth(2).unwrap().parse().unwrap()
}

fn kill(pid: u32) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
}

/// Kills the Traefik of a failed test, which would otherwise outlive it.
struct KillOnPanic(PathBuf);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(pid) = recorded_pid(&self.0)
            && is_running(pid)
        {
            kill(pid);
        }
    }
}

async fn apply_and_confirm(traefik: &Traefik, table: &RoutingTable) {
    traefik.apply(table).await.unwrap();
    traefik.confirm(table, CONFIRM_TIMEOUT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_traefik_routes_outlives_helvetia_and_is_restarted() {
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().join("traefik");
    let _guard = KillOnPanic(state_dir.clone());
    let entry_point: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let settings = TraefikSettings {
        binary: traefik_binary(),
        state_dir: state_dir.clone(),
        entry_point_address: entry_point.to_string(),
        secure_address: None,
        api_address: format!("127.0.0.1:{}", free_port()),
        extra_env: vec![],
        trusted_ips: vec![],
        instance: "0a1b".into(),
    };
    let supervisor = start_or_adopt(settings.clone(), &RoutingTable::new())
        .await
        .unwrap();
    let first_pid = supervisor.pid().unwrap();
    assert_eq!(recorded_pid(&state_dir), Some(first_pid));
    // In its own process group, a Ctrl-C or a signal to Helvetia's group does not reach it.
    assert_eq!(process_group(first_pid), first_pid);
    let traefik = supervisor.edge_router().unwrap();

    // Routing to a backend, then switching to another.
    let one = start_backend("backend one").await;
    let two = start_backend("backend two").await;
    let mut table = RoutingTable::new();
    table.insert(route_to(one));
    apply_and_confirm(&traefik, &table).await;
    assert_eq!(
        get(entry_point, HOST).await,
        Some((200, "backend one".into()))
    );
    // A header whose name aliases one Traefik sets never reaches the app; others do.
    let (status, headers) = get_with(
        entry_point,
        HOST,
        "/headers",
        "X_Forwarded_For: 6.6.6.6\r\nX.Real.Ip: 6.6.6.6\r\nX-Request-Tag: kept\r\n",
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert!(headers.contains("X-Request-Tag: kept"), "{headers}");
    assert!(headers.contains("X-Forwarded-For: 127.0.0.1"), "{headers}");
    assert!(!headers.contains("6.6.6.6"), "{headers}");

    table.insert(route_to(two));
    apply_and_confirm(&traefik, &table).await;
    assert_eq!(
        get(entry_point, HOST).await,
        Some((200, "backend two".into()))
    );

    // A table Traefik was never given is not confirmed, and the detail says why.
    let mut unapplied = table.clone();
    unapplied.insert(route_to(one));
    let error = traefik
        .confirm(&unapplied, Duration::from_millis(200))
        .await
        .unwrap_err();
    match error {
        RoutingError::NotConfirmed { detail, .. } => {
            assert!(
                detail.contains("service demo_web@file balances over"),
                "{detail}"
            )
        }
        other => panic!("expected NotConfirmed, got {other}"),
    }

    // A route without backends stays published and answers 503 (try again later); a route
    // taken out of the table is removed, confirmed, and its hostname answers 404.
    table.route_mut("demo_web").unwrap().backends.clear();
    apply_and_confirm(&traefik, &table).await;
    assert_eq!(
        get(entry_point, HOST).await.map(|(status, _)| status),
        Some(503)
    );
    apply_and_confirm(&traefik, &RoutingTable::new()).await;
    assert_eq!(
        get(entry_point, HOST).await.map(|(status, _)| status),
        Some(404)
    );

    table.insert(route_to(one));
    apply_and_confirm(&traefik, &table).await;

    // Helvetia exits; the next one adopts the running Traefik, which never stopped serving.
    drop(supervisor);
    assert_eq!(
        get(entry_point, HOST).await,
        Some((200, "backend one".into()))
    );
    let supervisor = start_or_adopt(settings.clone(), &table).await.unwrap();
    assert_eq!(supervisor.pid(), Some(first_pid));
    assert_eq!(
        get(entry_point, HOST).await,
        Some((200, "backend one".into()))
    );

    // A changed static configuration replaces Traefik, which loads the routes from its files.
    drop(supervisor);
    let moved_entry_point: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let settings = TraefikSettings {
        entry_point_address: moved_entry_point.to_string(),
        secure_address: None,
        ..settings
    };
    let supervisor = start_or_adopt(settings.clone(), &table).await.unwrap();
    let second_pid = supervisor.pid().unwrap();
    assert_ne!(second_pid, first_pid);
    assert!(!is_running(first_pid));
    traefik.confirm(&table, CONFIRM_TIMEOUT).await.unwrap();
    assert_eq!(
        get(moved_entry_point, HOST).await,
        Some((200, "backend one".into()))
    );

    // Traefik dies while watched by a Helvetia that adopted it; the watch restarts it.
    drop(supervisor);
    let mut supervisor = start_or_adopt(settings.clone(), &table).await.unwrap();
    assert_eq!(supervisor.pid(), Some(second_pid));
    let shutdown = CancellationToken::new();
    let watching = shutdown.clone();
    let watch = tokio::spawn(async move { supervisor.watch(watching).await });
    kill(second_pid);
    wait_until("Traefik has been restarted", || async {
        recorded_pid(&state_dir).is_some_and(|pid| pid != second_pid && is_running(pid))
    })
    .await;
    let third_pid = recorded_pid(&state_dir).unwrap();
    assert!(!is_running(second_pid));
    traefik.confirm(&table, CONFIRM_TIMEOUT).await.unwrap();
    assert_eq!(
        get(moved_entry_point, HOST).await,
        Some((200, "backend one".into()))
    );

    // Helvetia shuts down: Traefik keeps serving.
    shutdown.cancel();
    watch.await.unwrap();
    assert!(is_running(third_pid));
    assert_eq!(
        get(moved_entry_point, HOST).await,
        Some((200, "backend one".into()))
    );

    // Uninstalling stops it.
    stop_traefik(&state_dir).await.unwrap();
    assert!(!is_running(third_pid));
    assert!(recorded_pid(&state_dir).is_none());
    let api = TraefikApi::new(settings.api_url(), "0a1b").unwrap();
    assert!(!api.ping().await);
    assert_eq!(get(moved_entry_point, HOST).await, None);
}

fn settings_in(state_dir: &Path, instance: &str) -> TraefikSettings {
    TraefikSettings {
        binary: traefik_binary(),
        state_dir: state_dir.to_owned(),
        entry_point_address: format!("127.0.0.1:{}", free_port()),
        secure_address: None,
        api_address: format!("127.0.0.1:{}", free_port()),
        extra_env: vec![],
        trusted_ips: vec![],
        instance: instance.into(),
    }
}

/// A Traefik that exits at start (its entry point's port is taken) is reported with its own
/// error, and a deploy's confirmation fails with that error at once instead of timing out.
#[tokio::test]
async fn a_traefik_that_cannot_start_is_reported_with_its_own_error() {
    let state = tempfile::tempdir().unwrap();
    let _guard = KillOnPanic(state.path().to_owned());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let settings = TraefikSettings {
        entry_point_address: taken.local_addr().unwrap().to_string(),
        secure_address: None,
        ..settings_in(state.path(), "0a1b")
    };
    let supervisor = start_or_adopt(settings, &RoutingTable::new())
        .await
        .unwrap();
    let down = supervisor.down().expect("Traefik is reported down");
    assert!(down.contains("Traefik exited while starting"), "{down}");
    assert!(down.contains("address already in use"), "{down}");
    let started = Instant::now();
    let error = supervisor
        .edge_router()
        .unwrap()
        .confirm(&RoutingTable::new(), CONFIRM_TIMEOUT)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(
        matches!(&error, RoutingError::Unavailable(why) if why.contains("address already in use")),
        "{error}"
    );
}

/// Another installation's Traefik answering on the same API port (both on default ports)
/// neither passes for ours at start nor confirms our routes, even identical ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_installations_traefik_is_never_taken_for_ours() {
    let theirs = tempfile::tempdir().unwrap();
    let _theirs_guard = KillOnPanic(theirs.path().to_owned());
    let their_settings = settings_in(theirs.path(), "a0a0");
    let mut table = RoutingTable::new();
    table.insert(route_to(start_backend("backend one").await));
    let their_supervisor = start_or_adopt(their_settings.clone(), &table)
        .await
        .unwrap();
    assert_eq!(their_supervisor.down(), None);
    their_supervisor
        .edge_router()
        .unwrap()
        .confirm(&table, CONFIRM_TIMEOUT)
        .await
        .unwrap();

    // Ours starts on their API port: it exits, and their answer does not count.
    let ours = tempfile::tempdir().unwrap();
    let _ours_guard = KillOnPanic(ours.path().to_owned());
    let our_settings = TraefikSettings {
        api_address: their_settings.api_address.clone(),
        ..settings_in(ours.path(), "b1b1")
    };
    let supervisor = start_or_adopt(our_settings, &table).await.unwrap();
    let down = supervisor.down().expect("our Traefik is reported down");
    assert!(down.contains("address already in use"), "{down}");

    // Routes written for us are never confirmed through theirs.
    let dynamic = tempfile::tempdir().unwrap();
    let router = Traefik::new(TraefikMode::External {
        dynamic_dir: dynamic.path().to_owned(),
        entry_point: "web".into(),
        api_url: Some(their_settings.api_url()),
        instance: "b1b1".into(),
    })
    .unwrap();
    router.apply(&table).await.unwrap();
    match router.confirm(&table, Duration::from_millis(300)).await {
        Err(RoutingError::NotConfirmed { detail, .. }) => assert!(
            detail.contains("has not loaded this installation's configuration"),
            "{detail}"
        ),
        other => panic!("expected NotConfirmed, got {other:?}"),
    }
    stop_traefik(theirs.path()).await.unwrap();
}

#[tokio::test]
async fn confirming_without_a_running_traefik_reports_it_unavailable() {
    let api = TraefikApi::new(format!("http://127.0.0.1:{}", free_port()), "0a1b").unwrap();
    assert!(!api.ping().await);
    let error = api
        .confirm(&RoutingTable::new(), Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(error, RoutingError::Unavailable(_)), "{error}");
}
