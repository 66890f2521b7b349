//! Holding the managed entry point's port while a new Traefik loads its routes.
//!
//! Traefik starts its entry points before its providers (traefik/traefik#7347): for a moment
//! after it listens — ~0.1–0.3 s here — it answers 404 for every host. So the managed entry
//! point listens with `SO_REUSEPORT`, and before Helvetia starts a Traefik it joins the port's
//! reuse-port group with a socket of its own, the gate, and attaches a classic BPF program to
//! the group that hands every new connection to the gate (the group's first socket) rather
//! than to the Traefik that joins after it. New connections wait in the gate's queue instead
//! of being refused or answered 404. Once the new Traefik's API shows this installation's
//! configuration, the program hands new connections to Traefik (the group's second socket),
//! the connections that queued at the gate are passed on to Traefik (Helvetia copies their
//! bytes for as long as their clients keep them open), and the gate closes.
//!
//! A Traefik replaced by another (how it is started changed: an HTTPS entry point added) is
//! gated the same way: the gate joins the old Traefik's group first and takes every new
//! connection from it, the old Traefik finishes its requests and leaves, and the gate hands
//! the port to the new one as above — so the replacement refuses no connection either.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::libc;
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, bind, listen, setsockopt, socket,
    sockopt,
};
use tokio::net::{TcpListener, TcpStream};

/// The classic BPF instruction `ret #k` (`BPF_RET | BPF_K`).
const BPF_RET_K: u16 = 0x06;
/// Where the gate is in the reuse-port group: it joins first, Traefik after it.
const GATE_INDEX: u32 = 0;
const TRAEFIK_INDEX: u32 = 1;
/// How long the gate keeps accepting after it handed the port to Traefik: a connection whose
/// handshake began at the gate is queued there when it completes.
const HANDOVER_GRACE: Duration = Duration::from_millis(200);

/// A held port; see the module documentation.
pub(super) struct Gate {
    /// The entry point's `address`, as configured.
    entry_point: String,
    listener: TcpListener,
    /// Where the queued connections are passed on to: the entry point, on loopback when it
    /// listens on every address.
    target: SocketAddr,
}

impl Gate {
    /// Holds `entry_point` (Traefik's `address`, such as `:80` or `127.0.0.1:8080`) until
    /// [`Gate::hand_over`], taking every new connection from the `ahead` sockets already in
    /// the port's group (a running Traefik's: 0 or 1). Fails when the port is held without
    /// `SO_REUSEPORT` or the address is a name; Traefik is then started without a gate.
    pub(super) fn hold(entry_point: &str, ahead: u32) -> std::io::Result<Gate> {
        let (address, target) = listening_address(entry_point)?;
        let family = match address {
            SocketAddr::V4(_) => AddressFamily::Inet,
            SocketAddr::V6(_) => AddressFamily::Inet6,
        };
        let socket: OwnedFd = socket(
            family,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        setsockopt(&socket, sockopt::ReuseAddr, &true)?;
        setsockopt(&socket, sockopt::ReusePort, &true)?;
        if address.is_ipv6() {
            // As Go listens on a wildcard address: one socket for IPv4 and IPv6.
            setsockopt(&socket, sockopt::Ipv6V6Only, &false)?;
        }
        bind(socket.as_raw_fd(), &SockaddrStorage::from(address))?;
        listen(&socket, Backlog::MAXCONN)?;
        // The group's sockets are numbered in the order they joined.
        steer(&socket, GATE_INDEX + ahead)?;
        let listener = TcpListener::from_std(std::net::TcpListener::from(socket))?;
        Ok(Gate {
            entry_point: entry_point.to_owned(),
            listener,
            target,
        })
    }

    pub(super) fn entry_point(&self) -> &str {
        &self.entry_point
    }

    /// Keeps the port once the sockets that were ahead of the gate have closed: the kernel
    /// renumbers the group, so the gate is its first socket again, before a new Traefik joins.
    pub(super) fn alone(&self) {
        let socket = std::os::fd::AsFd::as_fd(&self.listener);
        if let Err(error) = steer(&socket, GATE_INDEX) {
            tracing::error!(%error, entry_point = %self.entry_point, "steering the entry point's port to the gate failed");
        }
    }

    /// Hands the port to the Traefik that joined its group after the gate, passes on the
    /// connections queued at the gate, and closes it.
    pub(super) async fn hand_over(self) {
        let socket = std::os::fd::AsFd::as_fd(&self.listener);
        if let Err(error) = steer(&socket, TRAEFIK_INDEX) {
            tracing::error!(%error, "handing the entry point's port to Traefik failed");
        }
        let mut passed = 0;
        while let Ok(Ok((client, _))) =
            tokio::time::timeout(HANDOVER_GRACE, self.listener.accept()).await
        {
            passed += 1;
            tokio::spawn(pass_on(client, self.target));
        }
        if passed > 0 {
            tracing::info!(
                connections = passed,
                "passed the connections that waited for Traefik on to it"
            );
        }
    }
}

/// Copies one connection that waited at the gate to Traefik and back, until either closes.
async fn pass_on(mut client: TcpStream, target: SocketAddr) {
    match TcpStream::connect(target).await {
        Ok(mut traefik) => {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut traefik).await;
        }
        Err(error) => tracing::warn!(%error, "passing a waiting connection on to Traefik failed"),
    }
}

/// Where Traefik listens for `entry_point`, as Go's `net.Listen("tcp", …)` does (a wildcard
/// address is one dual-stack IPv6 socket), and where to reach it.
fn listening_address(entry_point: &str) -> std::io::Result<(SocketAddr, SocketAddr)> {
    let invalid = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{entry_point} is not an IP address and port"),
        )
    };
    let address: SocketAddr = match entry_point.strip_prefix(':') {
        Some(port) => SocketAddr::new(
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            port.parse().map_err(|_| invalid())?,
        ),
        None => entry_point.parse().map_err(|_| invalid())?,
    };
    if address.ip().is_unspecified() {
        let port = address.port();
        return Ok((
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            SocketAddr::from(([127, 0, 0, 1], port)),
        ));
    }
    Ok((address, address))
}

/// Makes the reuse-port group of `socket` hand every new connection to its `index`th socket.
fn steer(socket: &impl std::os::fd::AsFd, index: u32) -> nix::Result<()> {
    let mut program = [libc::sock_filter {
        code: BPF_RET_K,
        jt: 0,
        jf: 0,
        k: index,
    }];
    let program = libc::sock_fprog {
        len: 1,
        filter: program.as_mut_ptr(),
    };
    setsockopt(socket, sockopt::AttachReusePortCbpf, &program)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_entry_points_listen_dual_stack_and_are_reached_on_loopback() {
        let (listen, target) = listening_address(":80").unwrap();
        assert_eq!(listen, "[::]:80".parse().unwrap());
        assert_eq!(target, "127.0.0.1:80".parse().unwrap());
        let (listen, _) = listening_address("0.0.0.0:8080").unwrap();
        assert_eq!(listen, "[::]:8080".parse().unwrap());
        let (listen, target) = listening_address("127.0.0.1:8080").unwrap();
        assert_eq!(
            (listen, target),
            ("127.0.0.1:8080".parse().unwrap(), listen)
        );
        assert!(listening_address("localhost:80").is_err());
    }

    /// A Traefik's socket, as Go opens it with `reusePort`.
    fn traefik_socket(address: &str) -> TcpListener {
        let (at, _) = listening_address(address).unwrap();
        let traefik: OwnedFd = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK,
            None,
        )
        .unwrap();
        setsockopt(&traefik, sockopt::ReusePort, &true).unwrap();
        bind(traefik.as_raw_fd(), &SockaddrStorage::from(at)).unwrap();
        listen(&traefik, Backlog::MAXCONN).unwrap();
        TcpListener::from_std(std::net::TcpListener::from(traefik)).unwrap()
    }

    fn free_address() -> String {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        format!("127.0.0.1:{port}")
    }

    async fn accepts(listener: &TcpListener, within: Duration) -> bool {
        tokio::time::timeout(within, listener.accept())
            .await
            .is_ok()
    }

    /// A replaced Traefik: the gate joins the old one's group and takes every new connection
    /// from it, keeps the port once the old one closed, and hands it to the new one.
    #[tokio::test]
    async fn the_gate_holds_the_port_from_an_old_traefik_to_a_new_one() {
        let address = free_address();
        let old = traefik_socket(&address);
        let gate = Gate::hold(&address, 1).unwrap();
        let mut waiting = Vec::new();
        for _ in 0..4 {
            waiting.push(TcpStream::connect(&address).await.unwrap());
        }
        assert!(
            !accepts(&old, Duration::from_millis(100)).await,
            "the old Traefik got one"
        );
        drop(old);
        gate.alone();
        for _ in 0..4 {
            waiting.push(TcpStream::connect(&address).await.unwrap());
        }
        let new = traefik_socket(&address);
        assert!(
            !accepts(&new, Duration::from_millis(100)).await,
            "the new Traefik got one early"
        );
        gate.hand_over().await;
        for _ in 0..waiting.len() {
            assert!(accepts(&new, Duration::from_secs(5)).await);
        }
    }

    /// Only the socket the program names gets new connections, whichever joined the group.
    #[tokio::test]
    async fn the_gate_takes_every_connection_until_it_hands_the_port_over() {
        let address = free_address();
        let gate = Gate::hold(&address, 0).unwrap();
        let traefik = traefik_socket(&address);
        let mut early = Vec::new();
        for _ in 0..8 {
            early.push(TcpStream::connect(&address).await.unwrap());
        }
        assert!(
            !accepts(&traefik, Duration::from_millis(100)).await,
            "Traefik got a connection before the handover"
        );

        gate.hand_over().await;
        // The early connections were passed on, new ones go straight to Traefik.
        let mut late = Vec::new();
        for _ in 0..8 {
            late.push(TcpStream::connect(&address).await.unwrap());
        }
        for _ in 0..early.len() + late.len() {
            assert!(accepts(&traefik, Duration::from_secs(5)).await);
        }
    }
}
