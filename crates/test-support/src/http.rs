//! A small HTTP/1.1 server on a loopback port that serves a directory's files (enough for git's
//! "dumb" HTTP protocol over a bare repository) or redirects every request elsewhere, and
//! records the paths it was asked for.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a [`TestHttp`] answers.
#[derive(Clone)]
pub enum Serve {
    /// The files under this directory; 404 for anything else.
    Files(PathBuf),
    /// 301 to this URL followed by the request's path.
    RedirectTo(String),
}

/// A running test HTTP server; stops when dropped.
pub struct TestHttp {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestHttp {
    pub async fn start(serve: Serve) -> TestHttp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(vec![]));
        let seen = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(handle(stream, serve.clone(), seen.clone()));
            }
        });
        TestHttp {
            port,
            requests,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path (with query) of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

async fn handle(mut stream: TcpStream, serve: Serve, seen: Arc<Mutex<Vec<String>>>) {
    let mut head = vec![];
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65_536 {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split(' ').nth(1).unwrap_or("/").to_owned();
    seen.lock().unwrap().push(target.clone());
    let (status, extra, body) = match serve {
        Serve::RedirectTo(base) => (
            "301 Moved Permanently",
            format!("Location: {base}{target}\r\n"),
            vec![],
        ),
        Serve::Files(root) => {
            let path = target.split('?').next().unwrap_or_default();
            let file = root.join(path.trim_start_matches('/'));
            match (!path.contains("..")).then(|| std::fs::read(&file)) {
                Some(Ok(body)) => ("200 OK", String::new(), body),
                _ => ("404 Not Found", String::new(), vec![]),
            }
        }
    };
    let response = format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.write_all(&body).await;
}
