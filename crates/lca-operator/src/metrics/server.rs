//! The metrics endpoint as upstream's manager serves it (`--metrics-bind-address=:6443
//! --metrics-tls-cert-dir=/etc/tls/private`): HTTPS only, every request authorized through
//! the API server (`auth`) before it is routed, `/metrics` the one path. The certificate is
//! the service-ca's `tls.crt`/`tls.key` in the cert dir, re-read when `tls.crt` changes (the
//! service CA rotates it without restarting the pod); without one, a self-signed certificate
//! made at start-up, as controller-runtime does.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use kube::Client;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use super::auth::{self, Refusal};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// A client that has not finished its handshake or headers by then is dropped.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// `--metrics-bind-address`: `0` turns the endpoint off; `:PORT` is every address (IPv6 and
/// IPv4 where the node has IPv6, IPv4 otherwise), as Go's listener takes it.
pub async fn bind(spec: &str) -> Result<Option<TcpListener>, String> {
    if spec == "0" {
        return Ok(None);
    }
    let listen = |addr: SocketAddr| async move { TcpListener::bind(addr).await };
    let listener = match spec.strip_prefix(':') {
        Some(port) => {
            let port: u16 = port
                .parse()
                .map_err(|_| format!("invalid metrics port in {spec:?}"))?;
            match listen(SocketAddr::from(([0u16; 8], port))).await {
                Ok(l) => l,
                Err(_) => listen(SocketAddr::from(([0u8; 4], port)))
                    .await
                    .map_err(|e| e.to_string())?,
            }
        }
        None => {
            let addr: SocketAddr = spec
                .parse()
                .map_err(|_| format!("invalid --metrics-bind-address {spec:?} (HOST:PORT, :PORT or 0)"))?;
            listen(addr).await.map_err(|e| e.to_string())?
        }
    };
    Ok(Some(listener))
}

/// The TLS configuration: the cert dir's key pair when it holds one, else a self-signed one
/// for `names`.
pub fn tls_config(cert_dir: Option<&Path>, names: Vec<String>) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mounted = cert_dir.filter(|d| d.join("tls.crt").exists() && d.join("tls.key").exists());
    if let Some(dir) = cert_dir
        && mounted.is_none()
    {
        warn!(dir = %dir.display(), "no tls.crt/tls.key in the metrics cert dir: serving a self-signed certificate");
    }
    let current = match mounted {
        Some(dir) => (modified(dir), load(dir, &provider)?),
        None => (None, self_signed(names, &provider)?),
    };
    let resolver = Resolver {
        dir: mounted.map(Path::to_path_buf),
        provider: provider.clone(),
        current: Mutex::new((current.0, Arc::new(current.1))),
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("metrics TLS: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn modified(dir: &Path) -> Option<SystemTime> {
    std::fs::metadata(dir.join("tls.crt"))
        .and_then(|m| m.modified())
        .ok()
}

fn load(dir: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let what = |e: &dyn std::fmt::Display| format!("metrics certificate in {}: {e}", dir.display());
    let chain = CertificateDer::pem_file_iter(dir.join("tls.crt"))
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| what(&e))?;
    let key = PrivateKeyDer::from_pem_file(dir.join("tls.key")).map_err(|e| what(&e))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| what(&e))
}

fn self_signed(names: Vec<String>, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let made = rcgen::generate_simple_self_signed(names)
        .map_err(|e| format!("self-signed metrics certificate: {e}"))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    CertifiedKey::from_der(vec![made.cert.der().clone()], key, provider)
        .map_err(|e| format!("self-signed metrics certificate: {e}"))
}

/// Hands out the current key pair, re-reading the cert dir when `tls.crt` changed; a pair
/// that fails to load is reported and the previous one kept.
#[derive(Debug)]
struct Resolver {
    dir: Option<PathBuf>,
    provider: Arc<CryptoProvider>,
    current: Mutex<(Option<SystemTime>, Arc<CertifiedKey>)>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut current = self.current.lock().ok()?;
        if let Some(dir) = &self.dir {
            let mtime = modified(dir);
            if mtime != current.0 {
                match load(dir, &self.provider) {
                    Ok(key) => *current = (mtime, Arc::new(key)),
                    Err(e) => warn!("{e}; keeping the previous certificate"),
                }
            }
        }
        Some(current.1.clone())
    }
}

/// Serve scrapes until the task is dropped.
pub async fn serve(listener: TcpListener, tls: Arc<ServerConfig>, client: Client) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        let (acceptor, client) = (acceptor.clone(), client.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(CLIENT_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return debug!(%peer, error = %e, "metrics: TLS handshake failed"),
                Err(_) => return debug!(%peer, "metrics: TLS handshake timed out"),
            };
            let service = hyper::service::service_fn(move |req| {
                let client = client.clone();
                async move { Ok::<_, Infallible>(respond(req, &client).await) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(CLIENT_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                debug!(%peer, error = %e, "metrics: connection ended");
            }
        });
    }
}

async fn respond(req: Request<Incoming>, client: &Client) -> Response<Full<Bytes>> {
    let token = auth::bearer(req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()));
    let verb = req.method().as_str().to_ascii_lowercase();
    if let Err(refusal) = auth::authorize(client, token, &verb, req.uri().path()).await {
        let status = match refusal {
            Refusal::Unauthenticated => StatusCode::UNAUTHORIZED,
            Refusal::Forbidden => StatusCode::FORBIDDEN,
            Refusal::Unavailable => StatusCode::INTERNAL_SERVER_ERROR,
        };
        return text(
            status,
            "text/plain; charset=utf-8",
            status.canonical_reason().unwrap_or("").into(),
        );
    }
    if req.method() != Method::GET || req.uri().path() != "/metrics" {
        return text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "Not Found".into(),
        );
    }
    text(StatusCode::OK, OPENMETRICS, super::METRICS.render())
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}
