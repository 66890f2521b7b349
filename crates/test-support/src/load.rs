//! A steady HTTP load through the edge router, recording every failure and latency.
//!
//! `connections` tasks each keep one client (one kept-alive connection) and send at an equal
//! share of `rate`. A failure is any connection error or non-2xx answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// One finished request: when it started (since the load began), how long it took, and
/// whether it succeeded.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub started: Duration,
    pub latency: Duration,
    pub ok: bool,
    /// The answer's HTTP status; `None` when no answer came (a connection error).
    pub status: Option<u16>,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    errors: Arc<Mutex<Vec<String>>>,
    tasks: Vec<JoinHandle<()>>,
    pub began: Instant,
    /// When the load began, in milliseconds since the Unix epoch, to compare samples with the
    /// server's timestamps.
    pub began_unix_ms: f64,
}

/// What a load run saw.
#[derive(Debug)]
pub struct Report {
    pub samples: Vec<Sample>,
    pub began_unix_ms: f64,
    /// The first failures, for assertion messages.
    pub errors: Vec<String>,
}

impl Report {
    pub fn sent(&self) -> usize {
        self.samples.len()
    }

    pub fn failed(&self) -> usize {
        self.samples.iter().filter(|s| !s.ok).count()
    }

    /// The requests started within `[start, end]` (since the load began): (sent, failed).
    pub fn between(&self, start: Duration, end: Duration) -> (usize, usize) {
        let inside = self
            .samples
            .iter()
            .filter(|s| s.started >= start && s.started <= end);
        inside.fold((0, 0), |(sent, failed), s| {
            (sent + 1, failed + usize::from(!s.ok))
        })
    }

    /// The longest time without an answer around `[start, end]` (since the load began): between
    /// the last answer before `start`, the answers inside, and the first answer after `end`.
    pub fn longest_gap(&self, start: Duration, end: Duration) -> Duration {
        let mut answered: Vec<Duration> = self
            .samples
            .iter()
            .filter(|s| s.ok)
            .map(|s| s.started + s.latency)
            .collect();
        answered.sort();
        let inside = answered.iter().filter(|at| **at >= start && **at <= end);
        let before = answered.iter().rev().find(|at| **at < start);
        let after = answered.iter().find(|at| **at > end);
        let points: Vec<Duration> = before
            .into_iter()
            .chain(inside)
            .chain(after)
            .copied()
            .collect();
        points
            .windows(2)
            .map(|pair| pair[1] - pair[0])
            .max()
            .unwrap_or_default()
    }
}

/// Where a load's requests go.
#[derive(Debug, Clone)]
pub enum Target {
    /// Plain HTTP to the edge router's `port` on the loopback, with `Host: host`.
    Http { port: u16, host: String },
    /// HTTPS to `host` itself, resolved to the edge router's `port` on the loopback (so SNI is
    /// `host`), trusting the certificates `root_pem` signed.
    Https {
        port: u16,
        host: String,
        root_pem: String,
    },
}

impl Target {
    pub fn url(&self, path: &str) -> String {
        match self {
            Target::Http { port, .. } => format!("http://127.0.0.1:{port}{path}"),
            Target::Https { port, host, .. } => format!("https://{host}:{port}{path}"),
        }
    }

    /// A client with one kept-alive connection to the target.
    fn client(&self) -> reqwest::Client {
        self.client_builder().build().expect("client")
    }

    /// A builder of such a client, to set more.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(30));
        match self {
            Target::Http { .. } => builder,
            Target::Https {
                port,
                host,
                root_pem,
            } => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let root = reqwest::Certificate::from_pem(root_pem.as_bytes()).expect("root");
                builder
                    .add_root_certificate(root)
                    .resolve(host, std::net::SocketAddr::from(([127, 0, 0, 1], *port)))
            }
        }
    }

    pub fn request(&self, client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
        match self {
            Target::Http { host, .. } => client.get(url).header("Host", host),
            Target::Https { .. } => client.get(url),
        }
    }
}

impl Load {
    pub fn start(port: u16, host: &str, path: &str, connections: usize, rate: f64) -> Load {
        let target = Target::Http {
            port,
            host: host.to_owned(),
        };
        Load::start_to(target, path, connections, rate)
    }

    pub fn start_to(target: Target, path: &str, connections: usize, rate: f64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let began = Instant::now();
        let began_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or_default();
        let interval = Duration::from_secs_f64(connections as f64 / rate);
        let url = target.url(path);
        let tasks = (0..connections)
            .map(|i| {
                let (stop, samples, errors) = (stop.clone(), samples.clone(), errors.clone());
                let (url, target) = (url.clone(), target.clone());
                tokio::spawn(async move {
                    let client = target.client();
                    // Spread the connections' requests evenly over the interval.
                    tokio::time::sleep(interval.mul_f64(i as f64 / connections as f64)).await;
                    let mut ticks = tokio::time::interval(interval);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    while !stop.load(Ordering::Relaxed) {
                        ticks.tick().await;
                        let started = Instant::now();
                        let result = target.request(&client, &url).send().await;
                        let status = result.as_ref().ok().map(|r| r.status().as_u16());
                        let outcome = match result {
                            Ok(response) if response.status().is_success() => response
                                .bytes()
                                .await
                                .map(|_| ())
                                .map_err(|e| e.to_string()),
                            Ok(response) => Err(format!("HTTP {}", response.status())),
                            Err(error) => Err(error.to_string()),
                        };
                        let sample = Sample {
                            started: started - began,
                            latency: started.elapsed(),
                            ok: outcome.is_ok(),
                            status,
                        };
                        samples.lock().await.push(sample);
                        if let Err(error) = outcome {
                            let mut errors = errors.lock().await;
                            if errors.len() < 20 {
                                errors.push(format!("at {:?}: {error}", sample.started));
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            samples,
            errors,
            tasks,
            began,
            began_unix_ms,
        }
    }

    /// Requests sent so far.
    pub async fn sent(&self) -> usize {
        self.samples.lock().await.len()
    }

    pub async fn stop(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        let samples = std::mem::take(&mut *self.samples.lock().await);
        let errors = std::mem::take(&mut *self.errors.lock().await);
        Report {
            samples,
            began_unix_ms: self.began_unix_ms,
            errors,
        }
    }
}
