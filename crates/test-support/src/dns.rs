//! A DNS server on a loopback UDP port answering A and AAAA queries from a fixed table, so
//! tests resolve names through a resolver they control and never ask one off this machine.
//!
//! It hands out loopback addresses (what a test may connect to) and link-local ones (which the
//! outbound policy refuses always): any other address would let a test that the policy fails
//! send traffic off this machine, so the table refuses it.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

const NO_ERROR: u8 = 0;
const NAME_ERROR: u8 = 3;
const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;

/// A running test DNS server; stops when dropped.
pub struct TestDns {
    address: SocketAddr,
    records: Arc<Mutex<Vec<(String, IpAddr)>>>,
    queries: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestDns {
    /// Answers each `(name, address)`; names not listed get NXDOMAIN.
    pub async fn start(records: &[(&str, IpAddr)]) -> TestDns {
        records
            .iter()
            .for_each(|(name, address)| allowed(name, *address));
        let records: Vec<(String, IpAddr)> = records
            .iter()
            .map(|(name, address)| (name.to_ascii_lowercase(), *address))
            .collect();
        let records = Arc::new(Mutex::new(records));
        let table = records.clone();
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        let queries = Arc::new(Mutex::new(vec![]));
        let seen = queries.clone();
        let task = tokio::spawn(async move {
            let mut buffer = [0u8; 1500];
            loop {
                let Ok((len, from)) = socket.recv_from(&mut buffer).await else {
                    continue;
                };
                let answered = answer(&buffer[..len], &table.lock().unwrap());
                if let Some((name, answer)) = answered {
                    seen.lock().unwrap().push(name);
                    let _ = socket.send_to(&answer, from).await;
                }
            }
        });
        TestDns {
            address,
            records,
            queries,
            task,
        }
    }

    /// Answers `name` with `address` from now on (besides what it answered before).
    pub fn add(&self, name: &str, address: IpAddr) {
        allowed(name, address);
        let record = (name.to_ascii_lowercase(), address);
        self.records.lock().unwrap().push(record);
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Every name asked for so far, lowercase, without the trailing dot.
    pub fn queries(&self) -> Vec<String> {
        self.queries.lock().unwrap().clone()
    }
}

/// Panics unless `address` is one a test may hand out.
fn allowed(name: &str, address: IpAddr) {
    let link_local = match address {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    };
    assert!(
        address.is_loopback() || link_local,
        "{name} → {address}: a test resolver answers only addresses on this machine \
         or refused by every policy"
    );
}

/// The name asked for and the response to one query; `None` for a packet that is not one.
fn answer(query: &[u8], records: &[(String, IpAddr)]) -> Option<(String, Vec<u8>)> {
    let mut labels = vec![];
    let mut at = 12;
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question_end = at + 4;
    let name = labels.join(".");
    let matching: Vec<IpAddr> = records
        .iter()
        .filter(|(record, _)| *record == name)
        .map(|(_, address)| *address)
        .collect();
    let rcode = if matching.is_empty() {
        NAME_ERROR
    } else {
        NO_ERROR
    };
    let answers: Vec<Vec<u8>> = matching
        .iter()
        .filter_map(|address| match (address, qtype) {
            (IpAddr::V4(v4), TYPE_A) => Some(v4.octets().to_vec()),
            (IpAddr::V6(v6), TYPE_AAAA) => Some(v6.octets().to_vec()),
            _ => None,
        })
        .collect();
    let mut response = query.get(..2)?.to_vec();
    // A response, recursion desired and available.
    response.extend([0x81, 0x80 | rcode]);
    response.extend(1u16.to_be_bytes());
    response.extend((answers.len() as u16).to_be_bytes());
    response.extend([0, 0, 0, 0]);
    response.extend(query.get(12..question_end)?);
    for data in answers {
        // The name is a pointer to the question's; class IN; TTL 1 s.
        response.extend([0xc0, 12]);
        response.extend(qtype.to_be_bytes());
        response.extend([0, 1, 0, 0, 0, 1]);
        response.extend((data.len() as u16).to_be_bytes());
        response.extend(data);
    }
    Some((name, response))
}
