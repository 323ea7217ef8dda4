//! `wirelens serve`: MCP over Streamable HTTP at `/mcp` (rmcp's `StreamableHttpService`: SSE or
//! JSON replies, protocol versions 2024-11-05 … 2026-07-28, stateless 2026-07-28 requests and
//! legacy sessions for older clients), plus `/healthz`, `/readyz` and Prometheus `/metrics`.
//!
//! Security, in order of the checks a request meets:
//! - the listener binds 127.0.0.1 by default; a non-loopback address is refused unless a bearer
//!   token is configured;
//! - with a token, `/mcp`, `/metrics` and the downloads (`/exports/FILE`,
//!   `/snapshots/NAME/packets.pcapng`) need `Authorization: Bearer <token>`, compared in
//!   constant time (401 otherwise); `/healthz` and `/readyz` stay open for probes;
//! - rmcp validates `Host` (loopback names plus the listen address and `--allowed-host`) and
//!   `Origin` (localhost origins plus `--allowed-origin`; 403 otherwise) and caps request bodies
//!   (413);
//! - optional TLS (rustls, ring provider) with `--tls-cert` / `--tls-key`.
//!
//! Every accepted socket gets `TCP_NODELAY`: with Nagle on, a small SSE reply waits for the
//! client's delayed ACK (about 40 ms per call).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::loading::Phase;
use crate::server::WirelensServer;
use crate::state::AppState;

/// Default request body cap: tool arguments are small; 1 MiB leaves room for long filters.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// Browser origins accepted by default: pages served from this machine only.
pub const DEFAULT_ORIGINS: [&str; 6] = [
    "http://localhost:*",
    "http://127.0.0.1:*",
    "http://[::1]:*",
    "https://localhost:*",
    "https://127.0.0.1:*",
    "https://[::1]:*",
];

/// How to serve.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub listen: SocketAddr,
    /// Bearer token required on `/mcp` and `/metrics`.
    pub token: Option<String>,
    /// PEM certificate chain and private key.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Extra allowed `Origin`s (scheme://host:port, `:*` for any port).
    pub allowed_origins: Vec<String>,
    /// Extra allowed `Host` names (or host:port).
    pub allowed_hosts: Vec<String>,
    pub max_body_bytes: usize,
    /// Prefer `application/json` replies over SSE for plain request/response calls.
    pub json_response: bool,
}

impl HttpOptions {
    pub fn new(listen: SocketAddr) -> Self {
        HttpOptions {
            listen,
            token: None,
            tls: None,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            json_response: false,
        }
    }

    /// Refuses configurations that would expose captured traffic: a non-loopback bind without a
    /// token, an empty token, half a TLS pair.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(t) = &self.token
            && t.trim().is_empty()
        {
            bail!("the bearer token is empty; put a long random string in --token-file or WIRELENS_TOKEN");
        }
        if !self.listen.ip().is_loopback() && self.token.is_none() {
            bail!(
                "refusing to listen on {} without a bearer token: captured traffic holds secrets. Configure \
                 --token-file FILE or WIRELENS_TOKEN, or listen on 127.0.0.1",
                self.listen
            );
        }
        Ok(())
    }

    /// `Host` values accepted (names, or name:port).
    fn hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
        if !self.listen.ip().is_unspecified() {
            hosts.push(self.listen.ip().to_string());
        }
        hosts.extend(self.allowed_hosts.iter().cloned());
        hosts
    }

    /// Browser `Origin`s accepted (`:*` for any port).
    fn origins(&self) -> Vec<String> {
        let mut origins: Vec<String> = DEFAULT_ORIGINS.map(String::from).to_vec();
        origins.extend(self.allowed_origins.iter().cloned());
        origins
    }

    fn rmcp_config(&self, cancel: CancellationToken) -> StreamableHttpServerConfig {
        let (hosts, origins) = (self.hosts(), self.origins());
        StreamableHttpServerConfig::default()
            .with_allowed_hosts(hosts)
            .with_allowed_origins(origins)
            .with_max_request_body_bytes(self.max_body_bytes)
            .with_json_response(self.json_response)
            .with_cancellation_token(cancel)
    }
}

/// Reads a token file: its first line, trimmed.
pub fn read_token_file(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the token file {}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        bail!("the token file {} is empty", path.display());
    }
    Ok(token)
}

type Mcp = StreamableHttpService<WirelensServer, LocalSessionManager>;

struct App {
    /// Set when serving starts; `/readyz` answers 503 until the sources are read.
    state: OnceLock<(Arc<AppState>, Mcp)>,
    /// SHA-256 of the token: comparing digests keeps the comparison constant-time whatever the
    /// lengths.
    token_digest: Option<[u8; 32]>,
    /// `Host` and `Origin` values the downloads accept (rmcp checks them for `/mcp`).
    hosts: Vec<String>,
    origins: Vec<String>,
}

/// Whether a `Host` header names one of `hosts` (a bare name matches any port).
fn host_allowed(host: &str, hosts: &[String]) -> bool {
    let name = match host.rsplit_once(':') {
        Some((n, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !n.ends_with(':') => n,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    hosts.iter().any(|h| {
        h.eq_ignore_ascii_case(host)
            || h.trim_start_matches('[')
                .trim_end_matches(']')
                .eq_ignore_ascii_case(name)
    })
}

/// Whether an `Origin` matches one of `origins` (`scheme://host:*` for any port).
fn origin_allowed(origin: &str, origins: &[String]) -> bool {
    origins.iter().any(|o| match o.strip_suffix(":*") {
        Some(prefix) => {
            origin.eq_ignore_ascii_case(prefix)
                || origin
                    .get(..prefix.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
                    && origin[prefix.len()..]
                        .strip_prefix(':')
                        .is_some_and(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        }
        None => origin.eq_ignore_ascii_case(o),
    })
}

/// The checks rmcp makes on `/mcp` (DNS rebinding, foreign pages), for the downloads.
fn download_allowed(app: &App, req: &axum::http::HeaderMap) -> Result<(), &'static str> {
    let host = req.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !host_allowed(host, &app.hosts) {
        return Err("Host not allowed\n");
    }
    if let Some(o) = req.get(header::ORIGIN)
        && !o.to_str().is_ok_and(|o| origin_allowed(o, &app.origins))
    {
        return Err("Origin not allowed\n");
    }
    Ok(())
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut r = (status, body.into()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The bearer token's other header, for clients behind a proxy that consumes `Authorization`.
pub const TOKEN_HEADER: &str = "x-wirelens-token";

async fn auth(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if let Some(want) = &app.token_digest {
        // `X-Wirelens-Token` carries the same token through the Kubernetes API server's proxy
        // (`wirelens mcp --kube`), which removes `Authorization` once it has authenticated the
        // user.
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .or_else(|| req.headers().get(TOKEN_HEADER).and_then(|v| v.to_str().ok()))
            .map(|t| <[u8; 32]>::from(Sha256::digest(t.trim().as_bytes())));
        let ok = given.is_some_and(|g| bool::from(g.ct_eq(want)));
        if !ok {
            let mut r = text(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token: send `Authorization: Bearer <token>`\n",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"wirelens\""),
            );
            return r;
        }
    }
    next.run(req).await
}

async fn mcp(State(app): State<Arc<App>>, req: Request) -> Response {
    match app.state.get() {
        Some((_, svc)) => {
            let delete = req.method() == axum::http::Method::DELETE;
            match svc.clone().oneshot(req).await {
                Ok(mut r) => {
                    // rmcp ends a session with 202; clients (the Python SDK among them) expect
                    // 200 or 204 and log a failure otherwise.
                    if delete && r.status() == StatusCode::ACCEPTED {
                        *r.status_mut() = StatusCode::OK;
                    }
                    r.map(Body::new)
                }
                Err(never) => match never {},
            }
        }
        None => not_ready(&app),
    }
}

fn not_ready(app: &App) -> Response {
    let phase = app.state.get().map(|(s, _)| s.loading.phase());
    match phase {
        Some(Phase::Failed(e)) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the sources could not be loaded: {e}\n"),
        ),
        _ => {
            let mut r = text(StatusCode::SERVICE_UNAVAILABLE, "loading the capture sources\n");
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
    }
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n")
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    match app.state.get() {
        Some((s, _)) if s.loading.is_ready() => text(StatusCode::OK, "ready\n"),
        _ => not_ready(&app),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    match app.state.get() {
        Some((state, _)) => {
            let mut r = crate::metrics::render(state).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        None => not_ready(&app),
    }
}

/// `GET /exports/{file}`: a file export_pcap or export_har wrote.
async fn export_file(
    State(app): State<Arc<App>>,
    headers: axum::http::HeaderMap,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Response {
    if let Err(why) = download_allowed(&app, &headers) {
        return text(StatusCode::FORBIDDEN, why);
    }
    match app.state.get() {
        Some((state, _)) => send_file(&state.forensics.export_dir, &file, &file).await,
        None => not_ready(&app),
    }
}

/// `GET /snapshots/{name}/packets.pcapng`: a snapshot's packets.
async fn snapshot_file(
    State(app): State<Arc<App>>,
    headers: axum::http::HeaderMap,
    axum::extract::Path((name, file)): axum::extract::Path<(String, String)>,
) -> Response {
    if let Err(why) = download_allowed(&app, &headers) {
        return text(StatusCode::FORBIDDEN, why);
    }
    match app.state.get() {
        Some((state, _)) if file == capture_core::forensics::snapshot::PACKETS_FILE => {
            if capture_core::forensics::snapshot::check_name(&name).is_err() {
                return text(StatusCode::NOT_FOUND, "no such snapshot\n");
            }
            let dir = state.forensics.snapshots.dir().join(&name);
            send_file(&dir, &file, &format!("{name}.pcapng")).await
        }
        Some(_) => text(StatusCode::NOT_FOUND, "only a snapshot's packets.pcapng is served\n"),
        None => not_ready(&app),
    }
}

/// Streams `dir/name`. Only names like those wirelens gives its files are served (letters,
/// digits, `.`, `_`, `-`, no leading `.`, ending in `.pcapng` or `.har`), so no path leaves the
/// directory.
pub(crate) async fn send_file(dir: &std::path::Path, name: &str, download_name: &str) -> Response {
    let ours = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !name.starts_with('.');
    let path = dir.join(name);
    let kind = if name.ends_with(".pcapng") {
        "application/x-pcapng"
    } else if name.ends_with(".har") {
        "application/json"
    } else {
        ""
    };
    if !ours || kind.is_empty() {
        return text(StatusCode::NOT_FOUND, "no such export\n");
    }
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(_) => {
            return text(
                StatusCode::NOT_FOUND,
                "no such export (deleted, or made by another process)\n",
            );
        }
    };
    let len = file.metadata().await.map(|m| m.len()).ok();
    let mut r = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 16)).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{download_name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

fn router(app: Arc<App>) -> Router {
    let protected = Router::new()
        .route("/mcp", any(mcp))
        .route("/metrics", get(metrics))
        .route("/exports/{file}", get(export_file))
        .route("/snapshots/{name}/{file}", get(snapshot_file))
        .route_layer(middleware::from_fn_with_state(app.clone(), auth));
    Router::new()
        .merge(protected)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(app)
}

fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading the certificate {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing the certificate {}", cert.display()))?;
    if certs.is_empty() {
        bail!("no certificate in {}", cert.display());
    }
    let key =
        PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading the private key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the certificate and key do not form a usable pair")?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// A bound server: call [`Server::run`] to serve.
pub struct Server {
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    opts: HttpOptions,
    cancel: CancellationToken,
}

impl Server {
    /// Checks the options, loads TLS material and binds the listener. Fails before any source is
    /// read, so a misconfiguration is reported at once.
    pub async fn bind(opts: HttpOptions, cancel: CancellationToken) -> anyhow::Result<Server> {
        opts.check()?;
        let tls = match &opts.tls {
            Some((c, k)) => Some(tls_acceptor(c, k)?),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .with_context(|| format!("listening on {}", opts.listen))?;
        let app = Arc::new(App {
            state: OnceLock::new(),
            token_digest: opts.token.as_ref().map(|t| Sha256::digest(t.trim().as_bytes()).into()),
            hosts: opts.hosts(),
            origins: opts.origins(),
        });
        Ok(Server {
            listener,
            router: router(app.clone()),
            app,
            tls,
            opts,
            cancel,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Makes the loaded state live: `/mcp` and `/readyz` start answering.
    fn set_state(&self, state: Arc<AppState>) {
        // Built once and cloned per session (and per request in stateless 2026-07-28 mode):
        // `WirelensServer::new` generates every tool's JSON Schemas, which cost more than the call.
        let template = WirelensServer::new(state.clone());
        let svc = StreamableHttpService::new(
            move || Ok(template.clone()),
            LocalSessionManager::default().into(),
            self.opts.rmcp_config(self.cancel.child_token()),
        );
        let _ = self.app.state.set((state, svc));
    }

    /// Serves at once and reads the sources in the background: `/readyz` answers 503 until they
    /// are read, tool calls wait for them (with progress notifications). What can fail fast
    /// (files, descriptors, interfaces) fails before serving.
    pub async fn run(self, args: crate::state::SourceArgs) -> anyhow::Result<()> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let (state, pending) = {
            let args = args.clone();
            tokio::task::spawn_blocking(move || AppState::prepare(&args)).await??
        };
        let state = Arc::new(state);
        let mut addr = self.local_addr()?;
        if addr.ip().is_unspecified() {
            // Bound to every address: name loopback; remote clients use the host they reach.
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let _ = state.forensics.download_base.set(format!("{scheme}://{addr}"));
        tracing::info!("serving MCP on {scheme}://{}/mcp", self.local_addr()?);
        let server = Arc::new(self);
        server.set_state(state.clone());
        let loader = tokio::task::spawn_blocking(move || {
            if let Err(e) = state.fill(&args, pending) {
                tracing::error!("loading sources failed: {e:#}");
            }
        });
        loop {
            let (stream, peer) = tokio::select! {
                _ = server.cancel.cancelled() => break,
                r = server.listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let router = server.router.clone();
            let tls = server.tls.clone();
            let cancel = server.cancel.clone();
            tokio::spawn(async move {
                let svc = hyper_util::service::TowerToHyperService::new(router);
                let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                let result = match tls {
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(s) => {
                            let conn = builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(s), svc);
                            tokio::select! { r = conn => r, _ = cancel.cancelled() => Ok(()) }
                        }
                        Err(e) => {
                            tracing::debug!(%peer, "TLS handshake failed: {e}");
                            Ok(())
                        }
                    },
                    None => {
                        let conn = builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(stream), svc);
                        tokio::select! { r = conn => r, _ = cancel.cancelled() => Ok(()) }
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(%peer, "connection ended with an error: {e}");
                }
            });
        }
        loader.abort();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_loopback_needs_a_token() {
        let mut o = HttpOptions::new("0.0.0.0:8898".parse().unwrap());
        let e = o.check().unwrap_err().to_string();
        assert!(e.contains("without a bearer token"), "{e}");
        o.token = Some("  ".into());
        assert!(o.check().unwrap_err().to_string().contains("empty"));
        o.token = Some("s3cret".into());
        o.check().unwrap();
        HttpOptions::new("127.0.0.1:0".parse().unwrap()).check().unwrap();
        HttpOptions::new("[::1]:0".parse().unwrap()).check().unwrap();
    }

    #[test]
    fn download_host_and_origin_checks() {
        let hosts = HttpOptions::new("127.0.0.1:8898".parse().unwrap()).hosts();
        for ok in ["127.0.0.1:8898", "localhost", "LOCALHOST:1", "[::1]:8898"] {
            assert!(host_allowed(ok, &hosts), "{ok}");
        }
        for bad in ["evil.example:8898", "", "127.0.0.2"] {
            assert!(!host_allowed(bad, &hosts), "{bad}");
        }
        let origins = HttpOptions::new("127.0.0.1:8898".parse().unwrap()).origins();
        assert!(origin_allowed("http://localhost:3000", &origins));
        assert!(origin_allowed("https://127.0.0.1", &origins));
        assert!(!origin_allowed("http://localhost.evil.example:3000", &origins));
        assert!(!origin_allowed("http://evil.example", &origins));
    }

    #[test]
    fn token_file_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        std::fs::write(&p, "abc123\n").unwrap();
        assert_eq!(read_token_file(&p).unwrap(), "abc123");
        std::fs::write(&p, "\n").unwrap();
        assert!(read_token_file(&p).is_err());
    }
}
