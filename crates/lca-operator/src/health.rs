//! Liveness and readiness probes (`/healthz`, `/readyz`) on a plain TCP listener (`/metrics`
//! is served apart, over HTTPS with authorization: `metrics::server`). The probes
//! are tiny fixed responses, so a minimal HTTP/1.1 responder avoids pulling in a web stack
//! next to real-time workloads.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Readiness flag shared with the controllers.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Bind the probe listener; returns the bound address (useful with port 0).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serve probes until the task is dropped.
pub async fn serve(listener: TcpListener, ready: Readiness) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let ready = ready.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let n = match tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf)).await
            {
                Ok(Ok(n)) => n,
                _ => return,
            };
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let (code, body) = match path {
                "/healthz" => ("200 OK", "ok"),
                "/readyz" if ready.is_ready() => ("200 OK", "ok"),
                "/readyz" => ("503 Service Unavailable", "not ready"),
                _ => ("404 Not Found", "not found"),
            };
            let response = format!(
                "HTTP/1.1 {code}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            // A prober that hung up gets no answer; the next probe asks again.
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}
