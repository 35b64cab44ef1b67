//! Metrics in Prometheus' text exposition format (0.0.4), and the minimal
//! HTTP server that answers a scraper's `GET /metrics`: used by the
//! coordinator ([`crate::coordinator::Coordinator::metrics`]) and by nodes
//! ([`crate::node::Node::metrics`]).
//!
//! The server answers `GET /metrics` and nothing else (404 for another
//! path, 405 for another method, 431 for a request head over 8 KiB), one
//! request per connection, within 5 s, without TLS: bind it to a private
//! address.

use std::fmt::{Display, Write as _};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::net::{self, Stream};

/// Text in the exposition format, a family at a time.
#[derive(Debug, Default)]
pub struct Exposition(String);

impl Exposition {
    /// Starts the family `name` of `kind` (`counter`, `gauge`).
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    /// One sample of the family just started.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (key, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{key}=\"{}\"", escape(val));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// The text.
    pub fn into_text(self) -> String {
        self.0
    }
}

/// A label value as the format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// What a metrics server renders on each scrape.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// The longest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// How long a scraper may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A metrics server; it stops when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    /// Where it listens.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `render()` at `GET /metrics` on `addr` (port 0 picks one).
pub async fn serve(
    addr: impl tokio::net::ToSocketAddrs,
    render: Render,
) -> std::io::Result<MetricsServer> {
    let listener = net::bind(addr).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of descriptors, say: try again shortly.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let render = render.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, &render)).await;
            });
        }
    });
    Ok(MetricsServer { addr, task })
}

/// Reads one request head and answers it.
async fn answer(mut stream: Stream, render: &Render) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return respond(&mut stream, "431 Request Header Fields Too Large", "").await;
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    match (parts.next(), parts.next()) {
        (Some(b"GET"), Some(b"/metrics")) => respond(&mut stream, "200 OK", &render()).await,
        (Some(b"GET"), _) => respond(&mut stream, "404 Not Found", "only /metrics is here\n").await,
        _ => respond(&mut stream, "405 Method Not Allowed", "").await,
    }
}

async fn respond(stream: &mut Stream, status: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_escape_their_labels() {
        let mut text = Exposition::default();
        text.family("x_total", "counter", "Xs.");
        text.sample("x_total", &[("a", "q\"uo\\te\nd"), ("b", "2")], 3);
        text.sample("x_total", &[], 1.5);
        assert_eq!(
            text.into_text(),
            "# HELP x_total Xs.\n# TYPE x_total counter\n\
             x_total{a=\"q\\\"uo\\\\te\\nd\",b=\"2\"} 3\nx_total 1.5\n"
        );
    }
}
