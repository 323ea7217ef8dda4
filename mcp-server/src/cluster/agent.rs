//! `wirelens agent`: captures like `serve` and answers the hub's queries over HTTP/2 with mutual
//! TLS: `GET /v1/info`, `POST /v1/call` and `GET /healthz`. Nothing else is served: no MCP, no
//! unauthenticated route but `/healthz`'s `ok` (a TLS client certificate is still required).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use capture_core::time::Timestamp;
use ipnet::IpNet;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::scope::{self, Locality};
use super::tls::{TlsFiles, agent_acceptor};
use super::{AgentInfo, CallError, CallRequest};
use crate::state::{AppState, SourceArgs};
use crate::tools::{self, work::Work};

/// Largest query the hub sends.
const MAX_REQUEST_BYTES: usize = 1 << 20;
/// A client that does not finish its TLS handshake in this long is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub listen: SocketAddr,
    pub tls: TlsFiles,
    /// `--node-name`: the agent's name, and the node whose pods are local.
    pub node: Option<String>,
    /// `--local-cidr`: networks local to this node besides its interfaces' addresses.
    pub local_cidrs: Vec<IpNet>,
}

struct Agent {
    state: Arc<AppState>,
    name: String,
    instance: String,
    started: Timestamp,
    locality: Locality,
}

/// The addresses of this network namespace's interfaces.
pub fn interface_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we only read and then free exactly once.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr points to a sockaddr whose family says its real type and size.
            let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
            if family == libc::AF_INET {
                // SAFETY: family AF_INET: a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                out.push(IpAddr::from(u32::from_be(sin.sin_addr.s_addr).to_be_bytes()));
            } else if family == libc::AF_INET6 {
                // SAFETY: family AF_INET6: a sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                out.push(IpAddr::from(sin6.sin6_addr.s6_addr));
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out.sort();
    out.dedup();
    out
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "agent".to_string())
}

/// A random id for this process.
fn instance_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(Timestamp::now().0);
    format!("{:016x}", h.finish())
}

impl Agent {
    fn info(&self) -> AgentInfo {
        let shared = &self.state.shared;
        let first = shared.stats.lock().first_ts.unwrap_or(self.started);
        let evicted = shared.store.stats().evicted_until.map_or(0, |t| t.0.saturating_add(1));
        AgentInfo {
            name: self.name.clone(),
            instance: self.instance.clone(),
            started_at: self.started.to_rfc3339(),
            locality: self.locality.clone(),
            holds_since_ns: first.0.max(evicted),
            version: env!("CARGO_PKG_VERSION").to_string(),
            coverage: crate::convert::coverage(shared),
        }
    }
}

fn error(status: StatusCode, error: String, tool_error: bool) -> Response {
    (status, Json(CallError { error, tool_error })).into_response()
}

async fn info(State(a): State<Arc<Agent>>) -> Json<AgentInfo> {
    Json(a.info())
}

async fn call(State(a): State<Arc<Agent>>, Json(req): Json<CallRequest>) -> Response {
    if let Err(e) = a.state.loading.wait().await {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the agent's capture sources could not be read: {e}"),
            false,
        );
    }
    let state = a.state.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let work = Work::new(None, None).with_timeout(Duration::from_millis(state.limits.tool_timeout_ms));
        scope::with_scope(Some(Arc::new(req.scope)), || {
            dispatch(&state, &req.tool, req.args, &work)
        })
    })
    .await;
    match joined {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(tools::CallError::Tool(e))) => error(StatusCode::UNPROCESSABLE_ENTITY, e.0, true),
        Ok(Err(tools::CallError::UnknownTool(e))) => error(StatusCode::NOT_FOUND, e, true),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}"), false),
    }
}

/// Runs a tool, or one of the internal forms the hub merges.
fn dispatch(
    state: &AppState,
    tool: &str,
    args: serde_json::Map<String, Value>,
    work: &Work<'_>,
) -> Result<Value, tools::CallError> {
    let json = |v: Result<Value, serde_json::Error>| v.map_err(|e| tools::ToolError(format!("internal: {e}")).into());
    match tool {
        super::LIST_ENTRIES_KEYED => json(serde_json::to_value(tools::list_entries::run_keyed(state, args, work)?)),
        super::API_STATS_PARTIAL => json(serde_json::to_value(tools::api_stats::collect(state, args, work)?)),
        super::SERVICE_MAP_PARTIAL => json(serde_json::to_value(tools::service_map::collect(state, args, work)?)),
        super::TCP_INSIGHTS_PARTIAL => json(serde_json::to_value(tools::tcp_insights::collect(state, args)?)),
        super::LIST_FLOWS_PARTIAL => json(serde_json::to_value(tools::flows::collect_list(state, args)?)),
        super::FLOW_SUMMARY_PARTIAL => json(serde_json::to_value(tools::flows::collect_summary(state, args)?)),
        other => tools::call(state, other, args),
    }
}

/// `GET /v1/exports/{file}`: a file this agent's export_pcap or export_har wrote, for the hub.
async fn export_file(State(a): State<Arc<Agent>>, axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    crate::http::send_file(&a.state.forensics.export_dir, &file, &file).await
}

fn router(agent: Arc<Agent>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/info", get(info))
        .route("/v1/call", post(call))
        .route("/v1/exports/{file}", get(export_file))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(agent)
}

/// Binds, then captures (in the background) and serves until `cancel`.
pub async fn run(opts: AgentOptions, args: SourceArgs, cancel: CancellationToken) -> anyhow::Result<()> {
    let (state, pending) = {
        let args = args.clone();
        tokio::task::spawn_blocking(move || AppState::prepare(&args)).await??
    };
    let state = Arc::new(state);
    let filler = state.clone();
    let fill = move || {
        if let Err(e) = filler.fill(&args, pending) {
            tracing::error!("loading sources failed: {e:#}");
        }
    };
    serve(opts, state, Some(Box::new(fill)), cancel).await
}

/// Serves `state` (filled by `fill` in the background, if given) until `cancel`: what
/// [`run`] does once the sources are opened, and what benchmarks use over a prepared store.
pub async fn serve(
    opts: AgentOptions,
    state: Arc<AppState>,
    fill: Option<Box<dyn FnOnce() + Send>>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let acceptor = agent_acceptor(&opts.tls)?;
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("listening on {}", opts.listen))?;
    let mut nets: Vec<IpNet> = opts.local_cidrs.clone();
    nets.extend(interface_addresses().into_iter().map(IpNet::from));
    let agent = Arc::new(Agent {
        state: state.clone(),
        name: opts.node.clone().unwrap_or_else(host_name),
        instance: instance_id(),
        started: Timestamp::now(),
        locality: Locality {
            nets,
            node: opts.node.clone(),
        },
    });
    eprintln!(
        "wirelens: agent {} listening on {} (mTLS, HTTP/2)",
        agent.name,
        listener.local_addr()?
    );
    let loader = fill.map(tokio::task::spawn_blocking);
    let app = router(agent);
    loop {
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (app, acceptor, cancel) = (app.clone(), acceptor.clone(), cancel.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::info!(%peer, "refused a client: TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::info!(%peer, "refused a client: no TLS handshake in {HANDSHAKE_TIMEOUT:?}");
                    return;
                }
            };
            let svc = hyper_util::service::TowerToHyperService::new(app);
            let mut builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            builder = builder.http2_only();
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(tls), svc);
            tokio::select! {
                r = conn => if let Err(e) = r { tracing::debug!(%peer, "connection ended: {e}") },
                _ = cancel.cancelled() => {}
            }
        });
    }
    if let Some(l) = loader {
        l.abort();
    }
    Ok(())
}
