//! The HTTP listener: `GET /health` (the process is up), `GET /ready`
//! (recovery finished, the Kafka listener is bound and the WAL takes
//! writes; otherwise 503 with the reason), `GET /metrics` (Prometheus
//! text format), and `POST /compaction/pause` and `POST
//! /compaction/resume` (hold background compaction back, or let it go on).
//! A minimal HTTP/1.1 responder: one request per connection, headers
//! capped in size.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const MAX_REQUEST_HEAD: usize = 8 * 1024;
const PLAIN: &str = "text/plain; charset=utf-8";
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders the Prometheus text exposition of every metric.
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// Whether the broker is ready to serve: `Err` with the reason when not.
pub type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Pauses (`true`) or resumes (`false`) background compaction.
pub type PauseCompaction = Arc<dyn Fn(bool) + Send + Sync>;

/// What the endpoints answer from.
#[derive(Clone)]
pub struct Endpoints {
    pub ready: Readiness,
    pub metrics: RenderMetrics,
    pub pause_compaction: PauseCompaction,
}

/// Serves the HTTP endpoints until `shutdown` turns true.
pub async fn run(listener: TcpListener, endpoints: Endpoints, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(answer(stream, endpoints.clone()));
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

async fn answer(mut stream: TcpStream, endpoints: Endpoints) {
    let Endpoints {
        ready,
        metrics,
        pause_compaction,
    } = endpoints;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let read_head = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(5), read_head)
        .await
        .is_err()
    {
        return;
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let text = |s: &str| s.to_string();
    let (status, content_type, body) = match (method, path) {
        ("GET", "/health") => ("200 OK", PLAIN, text("ok\n")),
        ("GET", "/ready") => match ready() {
            Ok(()) => ("200 OK", PLAIN, text("ready\n")),
            Err(reason) => (
                "503 Service Unavailable",
                PLAIN,
                format!("not ready: {reason}\n"),
            ),
        },
        ("GET", "/metrics") => match tokio::task::spawn_blocking(move || metrics()).await {
            Ok(body) => ("200 OK", PROMETHEUS, body),
            Err(_) => (
                "500 Internal Server Error",
                PLAIN,
                text("metrics unavailable\n"),
            ),
        },
        ("POST", "/compaction/pause") => {
            pause_compaction(true);
            ("200 OK", PLAIN, text("background compaction paused\n"))
        }
        ("POST", "/compaction/resume") => {
            pause_compaction(false);
            ("200 OK", PLAIN, text("background compaction resumed\n"))
        }
        ("GET" | "POST", _) => ("404 Not Found", PLAIN, text("not found\n")),
        _ => (
            "405 Method Not Allowed",
            PLAIN,
            text("method not allowed\n"),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}
