//! Looking at an app from outside its container: is it ready, and is anyone still connected?
//!
//! Readiness is checked the way the edge router will use the app — a TCP connection to its
//! port, then an HTTP request — so an image needs no curl and no `HEALTHCHECK` to be deployed
//! safely. Draining counts the TCP connections open on the app's port inside its network
//! namespace, so an old container is stopped as soon as nobody uses it rather than after a
//! fixed wait.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a readiness probe checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The port accepts connections.
    Tcp,
    /// `GET path` answers with a status in `statuses` (inclusive).
    Http {
        path: String,
        host: String,
        statuses: (u16, u16),
    },
}

/// Why a probe failed, phrased for the deployment log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeFailure {
    #[error("connection refused or unreachable: {0}")]
    Connect(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("did not answer with HTTP: {0}")]
    Protocol(String),
}

/// Largest response head read from an app; enough for any status line.
const MAX_HEAD: usize = 8 * 1024;

/// Probes `address` once, within `timeout`.
pub async fn probe(
    address: SocketAddr,
    probe: &Probe,
    timeout: Duration,
) -> Result<(), ProbeFailure> {
    tokio::time::timeout(timeout, probe_inner(address, probe))
        .await
        .map_err(|_| ProbeFailure::Timeout(timeout))?
}

async fn probe_inner(address: SocketAddr, probe: &Probe) -> Result<(), ProbeFailure> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|e| ProbeFailure::Connect(e.to_string()))?;
    let (path, host, statuses) = match probe {
        Probe::Tcp => return Ok(()),
        Probe::Http {
            path,
            host,
            statuses,
        } => (path, host, *statuses),
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: helvetia-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| ProbeFailure::Connect(e.to_string()))?;
    let mut head = Vec::with_capacity(256);
    let mut buffer = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < MAX_HEAD {
        let read = stream
            .read(&mut buffer)
            .await
            .map_err(|e| ProbeFailure::Protocol(e.to_string()))?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let status = parse_status(&head)?;
    if (statuses.0..=statuses.1).contains(&status) {
        Ok(())
    } else {
        Err(ProbeFailure::Status(status))
    }
}

fn parse_status(head: &[u8]) -> Result<u16, ProbeFailure> {
    let line = head
        .split(|&b| b == b'\n')
        .next()
        .map(|line| String::from_utf8_lossy(line).trim().to_owned())
        .unwrap_or_default();
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/") => code
            .parse()
            .map_err(|_| ProbeFailure::Protocol(line.clone())),
        _ if line.is_empty() => Err(ProbeFailure::Protocol("closed without answering".into())),
        _ => Err(ProbeFailure::Protocol(line)),
    }
}

/// Connections currently open on `port` inside the network namespace of process `pid`
/// (established, or being established). Reads `/proc/<pid>/net/tcp{,6}`, which needs the
/// same privileges as talking to the engine.
pub fn open_connections(pid: i64, port: u16) -> std::io::Result<usize> {
    let mut count = 0;
    for table in ["tcp", "tcp6"] {
        match std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) {
            Ok(text) => count += count_open(&text, port),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && table == "tcp6" => {}
            Err(error) => return Err(error),
        }
    }
    Ok(count)
}

/// Counts sockets in `/proc/net/tcp` format whose local port is `port` and whose state is
/// ESTABLISHED (01) or SYN_RECV (03).
fn count_open(table: &str, port: u16) -> usize {
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1).unwrap_or_default();
            let state = fields.nth(1).unwrap_or_default();
            let local_port = local
                .rsplit_once(':')
                .and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok());
            local_port == Some(port) && matches!(state, "01" | "03")
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 204 No Content\r\n"), Ok(204));
        assert_eq!(
            parse_status(b"HTTP/1.0 302 Found\r\nLocation: /\r\n"),
            Ok(302)
        );
        assert!(parse_status(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(parse_status(b"").is_err());
    }

    #[test]
    fn counts_only_open_connections_on_the_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0200000A:1F90 0100000A:A2C4 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1
   2: 0200000A:1F90 0100000A:A2C6 06 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1
   3: 0200000A:0050 0100000A:A2C8 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 20 4 30 10 -1";
        // Port 8080 is 0x1F90: one listening (0A), one established, one in TIME_WAIT (06).
        assert_eq!(count_open(table, 8080), 1);
        assert_eq!(count_open(table, 80), 1);
        assert_eq!(count_open(table, 443), 0);
    }

    #[tokio::test]
    async fn http_probe_checks_the_status() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            for status in ["200 OK", "503 Service Unavailable"] {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut request = [0u8; 1024];
                let read = socket.read(&mut request).await.unwrap();
                assert!(
                    String::from_utf8_lossy(&request[..read]).contains("Host: web.demo.localhost")
                );
                socket
                    .write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await
                    .unwrap();
            }
        });
        let check = Probe::Http {
            path: "/".into(),
            host: "web.demo.localhost".into(),
            statuses: (200, 399),
        };
        let timeout = Duration::from_secs(2);
        assert_eq!(probe(address, &check, timeout).await, Ok(()));
        assert_eq!(
            probe(address, &check, timeout).await,
            Err(ProbeFailure::Status(503))
        );
        // Once the listener is gone (not merely done answering), nothing accepts.
        server.await.unwrap();
        assert!(matches!(
            probe(address, &check, timeout).await,
            Err(ProbeFailure::Connect(_))
        ));
    }
}
