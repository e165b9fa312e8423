//! The metrics endpoint: a minimal HTTP/1.1 server on its own listener (`[metrics] address`).
//!
//! It answers `GET /metrics` (and `HEAD`) with the OpenMetrics text of [`super::render`]; any other
//! path is 404, another method on `/metrics` 405. One request per connection (`Connection:
//! close`), a request head of at most [`METRICS_MAX_REQUEST`] bytes, the whole exchange within
//! [`METRICS_REQUEST_SECS`] and at most [`METRICS_MAX_CONNECTIONS`] at once. The scrape is
//! rendered on a blocking thread, so the mail listeners' workers never wait for it.
//!
//! Hand-written rather than hyper: a scrape is one GET answered with one body, and these 200 lines
//! with their limits are easier to check than a general HTTP stack's configuration.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::limits::{METRICS_MAX_CONNECTIONS, METRICS_MAX_REQUEST, METRICS_REQUEST_SECS};
use crate::server::Shared;

/// The content type of the body: OpenMetrics 1.0 text (it ends in `# EOF`), which Prometheus
/// asks for first in its `Accept` header.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds the metrics listener when `[metrics] address` is set (and turns the metrics on); `None`
/// otherwise. Called with the other listeners, before privileges are dropped.
pub async fn bind(config: &Config) -> std::io::Result<Option<TcpListener>> {
    let Some(addr) = config.metrics.socket_addr() else {
        return Ok(None);
    };
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen on {addr} (metrics): {e}"))
    })?;
    super::init(config);
    Ok(Some(listener))
}

/// Serves the bound metrics listener, if any, until the daemon shuts down.
pub fn spawn(listener: Option<TcpListener>, shared: Arc<Shared>) {
    if let Some(listener) = listener {
        tokio::spawn(serve(listener, shared));
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    if let Ok(addr) = listener.local_addr() {
        info!(address = %addr, "metrics listening");
    }
    let permits = Arc::new(Semaphore::new(METRICS_MAX_CONNECTIONS));
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((tcp, peer)) => {
                backoff = Duration::from_millis(10);
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    debug!(remote = %peer, "metrics connection refused: too many at once");
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let limit = Duration::from_secs(METRICS_REQUEST_SECS);
                    match tokio::time::timeout(limit, exchange(tcp, &shared)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => debug!(remote = %peer, error = %e, "metrics request failed"),
                        Err(_) => debug!(remote = %peer, "metrics request timed out"),
                    }
                });
            }
            Err(e) => {
                warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics` (`head_only` for `HEAD`).
    Metrics { head_only: bool },
    /// Another path.
    NotFound,
    /// `/metrics` with a method other than GET or HEAD.
    MethodNotAllowed,
    /// Not an HTTP/1.x request line.
    BadRequest,
    /// The head did not end within [`METRICS_MAX_REQUEST`] bytes.
    TooLarge,
}

/// Routes a request head (the bytes up to the blank line, or all that arrived).
pub fn route(head: &[u8]) -> Route {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let line = head[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&head[..line_end]);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with(b"HTTP/1.") || method.is_empty() || !target.starts_with(b"/") {
        return Route::BadRequest;
    }
    // The query string (`?name[]=...` of a federating Prometheus) is ignored.
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    if path != b"/metrics" {
        return Route::NotFound;
    }
    match method {
        b"GET" => Route::Metrics { head_only: false },
        b"HEAD" => Route::Metrics { head_only: true },
        _ => Route::MethodNotAllowed,
    }
}

/// Reads a request head: up to the first blank line, EOF, or [`METRICS_MAX_REQUEST`] bytes.
async fn read_head(tcp: &mut TcpStream) -> std::io::Result<Route> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            return Ok(route(&buf));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_head_end(&buf) {
            return Ok(route(&buf[..end]));
        }
        if buf.len() >= METRICS_MAX_REQUEST {
            return Ok(Route::TooLarge);
        }
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| buf.windows(2).position(|w| w == b"\n\n"))
}

async fn exchange(mut tcp: TcpStream, shared: &Arc<Shared>) -> std::io::Result<()> {
    let route = read_head(&mut tcp).await?;
    let response = match route {
        Route::Metrics { head_only } => {
            let auth = shared.auth.clone();
            let body = tokio::task::spawn_blocking(move || super::render(&auth))
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| "# EOF\n".to_string());
            response("200 OK", CONTENT_TYPE, &body, head_only, None)
        }
        Route::NotFound => response("404 Not Found", "text/plain", "Not Found\n", false, None),
        Route::MethodNotAllowed => response(
            "405 Method Not Allowed",
            "text/plain",
            "Method Not Allowed\n",
            false,
            Some("Allow: GET, HEAD\r\n"),
        ),
        Route::BadRequest => response(
            "400 Bad Request",
            "text/plain",
            "Bad Request\n",
            false,
            None,
        ),
        Route::TooLarge => response(
            "431 Request Header Fields Too Large",
            "text/plain",
            "Request Header Fields Too Large\n",
            false,
            None,
        ),
    };
    tcp.write_all(&response).await?;
    tcp.shutdown().await
}

fn response(
    status: &str,
    content_type: &str,
    body: &str,
    head_only: bool,
    extra: Option<&str>,
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        body.len(),
        extra.unwrap_or_default()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_and_head_of_metrics_are_served() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            route(b"HEAD /metrics?name[]=up HTTP/1.0"),
            Route::Metrics { head_only: true }
        );
        assert_eq!(route(b"GET / HTTP/1.1\r\n"), Route::NotFound);
        assert_eq!(route(b"GET /metrics/ HTTP/1.1\r\n"), Route::NotFound);
        assert_eq!(route(b"GET /metricsx HTTP/1.1\r\n"), Route::NotFound);
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n"),
            Route::MethodNotAllowed
        );
        assert_eq!(route(b"get /metrics HTTP/1.1\r\n"), Route::MethodNotAllowed);
        assert_eq!(route(b"GET /metrics\r\n"), Route::BadRequest);
        assert_eq!(route(b"GET /metrics SMTP/1.0\r\n"), Route::BadRequest);
        assert_eq!(route(b"GET metrics HTTP/1.1\r\n"), Route::BadRequest);
        assert_eq!(route(b""), Route::BadRequest);
        assert_eq!(route(b"GET  /metrics HTTP/1.1\r\n"), Route::BadRequest);
    }

    #[test]
    fn the_head_ends_at_the_first_blank_line() {
        assert_eq!(
            find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"),
            Some(20)
        );
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\n"), Some(14));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }

    #[test]
    fn responses_carry_length_and_close() {
        let r = String::from_utf8(response("200 OK", CONTENT_TYPE, "x 1\n", true, None)).unwrap();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("Content-Length: 4\r\n") && r.ends_with("Connection: close\r\n\r\n"));
        let r = String::from_utf8(response(
            "405 Method Not Allowed",
            "text/plain",
            "no\n",
            false,
            Some("Allow: GET, HEAD\r\n"),
        ))
        .unwrap();
        assert!(r.contains("Allow: GET, HEAD\r\n\r\nno\n"), "{r}");
    }
}
