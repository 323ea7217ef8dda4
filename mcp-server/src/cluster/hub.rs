//! The hub: finds the agents (a list, a headless Service's DNS name, or pods by label through the
//! Kubernetes API), asks each of them over HTTP/2 with mutual TLS, and merges their answers.
//!
//! Every query first asks every agent `GET /v1/info` (who answers, what each holds), then sends
//! the tool with the scope that says which agent reports a connection both ends of which were
//! captured ([`super::scope`]). An agent that does not answer within the deadline, or refuses,
//! is named in `coverage.agents` with the reason and the answer is marked `partial`. Connections
//! are made again after any failure, so an agent that restarts is back in the next answer; a
//! new instance id is counted as a restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http2::SendRequest;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tools_schema::AgentCoverage;

use super::scope::{Holder, Scope};
use super::tls::{TlsFiles, hub_connector};
use super::{AgentInfo, CallError, CallRequest};
use crate::tools::ToolError;

/// Largest answer read from one agent.
const MAX_REPLY_BYTES: usize = 256 << 20;
/// How long a discovered list of agents is reused.
const DISCOVERY_TTL: Duration = Duration::from_secs(5);

/// Where the agents are (`--agents`, repeatable).
#[derive(Debug, Clone, PartialEq)]
pub enum AgentSource {
    /// `https://HOST:PORT` or `HOST:PORT`.
    Address(String),
    /// `dns:NAME:PORT`: every address the name resolves to (a headless Service).
    Dns(String, u16),
    /// `kube:LABEL_SELECTOR`: running pods with these labels, in `--agents-namespace`, at
    /// `--agent-port`.
    Kube(String),
}

impl std::str::FromStr for AgentSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(sel) = s.strip_prefix("kube:") {
            if sel.trim().is_empty() {
                return Err("`kube:` needs a label selector, e.g. kube:app.kubernetes.io/component=agent".into());
            }
            return Ok(AgentSource::Kube(sel.trim().to_string()));
        }
        if let Some(rest) = s.strip_prefix("dns:") {
            let (name, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| format!("`{s}`: write dns:NAME:PORT, e.g. dns:wirelens-agents.wirelens.svc:9443"))?;
            let port = port.parse().map_err(|_| format!("`{s}`: `{port}` is not a port"))?;
            return Ok(AgentSource::Dns(name.to_string(), port));
        }
        let hostport = s.strip_prefix("https://").unwrap_or(s).trim_end_matches('/');
        match hostport.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => Ok(AgentSource::Address(hostport.to_string())),
            _ => Err(format!(
                "`{s}` is not an agent address: use HOST:PORT, https://HOST:PORT, dns:NAME:PORT or kube:LABEL_SELECTOR"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct HubOptions {
    pub sources: Vec<AgentSource>,
    pub tls: TlsFiles,
    /// The name the agents' certificate must carry (they are dialled by IP).
    pub server_name: String,
    /// Per query: how long an agent may take to answer.
    pub deadline: Duration,
    /// For `kube:` sources: the namespace (default: the hub's own) and the agents' port.
    pub namespace: Option<String>,
    pub agent_port: u16,
    pub kube: capture_core::enrich::kube::KubeOptions,
}

/// One agent address and what the hub knows of it.
struct Member {
    addr: String,
    conn: tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>,
    seen: parking_lot::Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    instance: Option<String>,
    started_at: Option<String>,
    restarts: u64,
    name: Option<String>,
}

pub struct Hub {
    opts: HubOptions,
    connector: tokio_rustls::TlsConnector,
    server_name: rustls_pki_types::ServerName<'static>,
    rt: tokio::runtime::Handle,
    members: parking_lot::Mutex<HashMap<String, Arc<Member>>>,
    discovered: tokio::sync::Mutex<Option<(Instant, Vec<String>)>>,
    kube: tokio::sync::OnceCell<kube::Client>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("sources", &self.opts.sources).finish()
    }
}

/// One agent's answer to one query.
pub struct Answer<T> {
    pub name: String,
    pub reply: Result<T, String>,
}

/// What a fan-out returns: the answers of those that answered, and everyone's coverage.
pub struct Round<T> {
    pub answers: Vec<(String, T)>,
    pub agents: Vec<AgentCoverage>,
    /// (agent, answered, its coverage) of every agent whose info came back.
    pub coverages: Vec<(String, bool, tools_schema::Coverage)>,
    /// Agents whose tool said no (bad arguments, nothing to export): (agent, message). When
    /// every agent that answered said no, the fan-out is that error.
    pub refusals: Vec<(String, String)>,
}

impl Hub {
    /// Must be called inside the Tokio runtime that will run the queries.
    pub fn new(opts: HubOptions) -> anyhow::Result<Hub> {
        if opts.sources.is_empty() {
            bail!("--agents: give at least one agent source");
        }
        let connector = hub_connector(&opts.tls)?;
        let server_name = rustls_pki_types::ServerName::try_from(opts.server_name.clone())
            .with_context(|| format!("--agent-server-name `{}` is not a DNS name", opts.server_name))?;
        Ok(Hub {
            opts,
            connector,
            server_name,
            rt: tokio::runtime::Handle::current(),
            members: parking_lot::Mutex::new(HashMap::new()),
            discovered: tokio::sync::Mutex::new(None),
            kube: tokio::sync::OnceCell::new(),
        })
    }

    fn namespace(&self) -> String {
        self.opts.namespace.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "default".to_string())
        })
    }

    /// The agents' addresses now (cached for [`DISCOVERY_TTL`]).
    async fn discover(&self) -> Result<Vec<String>, String> {
        let mut cache = self.discovered.lock().await;
        if let Some((at, addrs)) = cache.as_ref()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(addrs.clone());
        }
        let mut out = Vec::new();
        for s in &self.opts.sources {
            match s {
                AgentSource::Address(a) => out.push(a.clone()),
                AgentSource::Dns(name, port) => {
                    let addrs = tokio::net::lookup_host((name.as_str(), *port))
                        .await
                        .map_err(|e| format!("looking up the agents at {name}: {e}"))?;
                    out.extend(addrs.map(|a| a.to_string()));
                }
                AgentSource::Kube(selector) => {
                    use k8s_openapi::api::core::v1::Pod;
                    let client = self
                        .kube
                        .get_or_try_init(|| async {
                            capture_core::enrich::kube::client(&self.opts.kube)
                                .await
                                .map_err(|e| format!("connecting to the Kubernetes API to find the agents: {e}"))
                        })
                        .await?;
                    let ns = self.namespace();
                    let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), &ns);
                    let list = pods
                        .list(&kube::api::ListParams::default().labels(selector))
                        .await
                        .map_err(|e| format!("listing the agent pods ({selector}) in {ns}: {e}"))?;
                    for p in list.items {
                        if p.metadata.deletion_timestamp.is_some() {
                            continue;
                        }
                        let Some(st) = p.status else { continue };
                        if st.phase.as_deref() != Some("Running") {
                            continue;
                        }
                        if let Some(ip) = st.pod_ip {
                            let ip: std::net::IpAddr = match ip.parse() {
                                Ok(ip) => ip,
                                Err(_) => continue,
                            };
                            out.push(std::net::SocketAddr::new(ip, self.opts.agent_port).to_string());
                        }
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        *cache = Some((Instant::now(), out.clone()));
        Ok(out)
    }

    fn member(&self, addr: &str) -> Arc<Member> {
        self.members
            .lock()
            .entry(addr.to_string())
            .or_insert_with(|| {
                Arc::new(Member {
                    addr: addr.to_string(),
                    conn: tokio::sync::Mutex::new(None),
                    seen: parking_lot::Mutex::new(Seen::default()),
                })
            })
            .clone()
    }

    async fn connect(&self, addr: &str) -> Result<SendRequest<Full<Bytes>>, String> {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let tls = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| format!("TLS with {addr}: {e}"))?;
        let (send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tls),
        )
        .await
        .map_err(|e| format!("HTTP/2 with {addr}: {e}"))?;
        let addr = addr.to_string();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%addr, "agent connection ended: {e}");
            }
        });
        Ok(send)
    }

    /// One request to one agent, on its open connection or a new one (once more on a new one
    /// when the open one turns out dead).
    async fn request(&self, m: &Member, method: &str, path: &str, body: Option<Vec<u8>>) -> Result<Bytes, String> {
        for attempt in 0..2 {
            let (mut send, fresh) = {
                let mut slot = m.conn.lock().await;
                match slot.as_ref() {
                    Some(s) if !s.is_closed() => (s.clone(), false),
                    _ => {
                        let s = self.connect(&m.addr).await?;
                        *slot = Some(s.clone());
                        (s, true)
                    }
                }
            };
            let req = hyper::Request::builder()
                .method(method)
                .uri(format!("https://{}{path}", self.opts.server_name))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body.clone().unwrap_or_default())))
                .map_err(|e| format!("request: {e}"))?;
            let sent = async {
                send.ready().await?;
                send.send_request(req).await
            }
            .await;
            match sent {
                Ok(resp) => {
                    let status = resp.status();
                    let bytes = Limited::new(resp.into_body(), MAX_REPLY_BYTES)
                        .collect()
                        .await
                        .map_err(|e| format!("reading the reply of {}: {e}", m.addr))?
                        .to_bytes();
                    if !status.is_success() {
                        let e: CallError = serde_json::from_slice(&bytes).unwrap_or(CallError {
                            error: format!("HTTP {status}"),
                            tool_error: false,
                        });
                        return Err(if e.tool_error {
                            format!("\u{0}tool:{}", e.error)
                        } else {
                            e.error
                        });
                    }
                    return Ok(bytes);
                }
                Err(e) if attempt == 0 && !fresh => {
                    tracing::debug!(addr = %m.addr, "reconnecting: {e}");
                    *m.conn.lock().await = None;
                    continue;
                }
                Err(e) => return Err(format!("asking {}: {e}", m.addr)),
            }
        }
        Err(format!("asking {}: the connection failed twice", m.addr))
    }

    /// The agent of this name, as last seen.
    fn member_named(&self, name: &str) -> Option<Arc<Member>> {
        self.members
            .lock()
            .values()
            .find(|m| m.seen.lock().name.as_deref() == Some(name))
            .cloned()
    }

    /// Appends an agent's export file (`GET /v1/exports/NAME`) to `out`, streamed; returns the
    /// bytes written.
    pub async fn fetch_export(&self, agent: &str, file: &str, out: &mut tokio::fs::File) -> Result<u64, String> {
        use tokio::io::AsyncWriteExt;
        let m = self
            .member_named(agent)
            .ok_or_else(|| format!("agent {agent} is no longer known"))?;
        let mut send = {
            let mut slot = m.conn.lock().await;
            match slot.as_ref() {
                Some(s) if !s.is_closed() => s.clone(),
                _ => {
                    let s = self.connect(&m.addr).await?;
                    *slot = Some(s.clone());
                    s
                }
            }
        };
        let req = hyper::Request::builder()
            .method("GET")
            .uri(format!("https://{}/v1/exports/{file}", self.opts.server_name))
            .body(Full::new(Bytes::new()))
            .map_err(|e| format!("request: {e}"))?;
        send.ready()
            .await
            .map_err(|e| format!("fetching {file} from {agent}: {e}"))?;
        let resp = send
            .send_request(req)
            .await
            .map_err(|e| format!("fetching {file} from {agent}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("fetching {file} from {agent}: HTTP {}", resp.status()));
        }
        let mut body = resp.into_body();
        let mut n = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("fetching {file} from {agent}: {e}"))?;
            if let Some(data) = frame.data_ref() {
                out.write_all(data)
                    .await
                    .map_err(|e| format!("writing the export: {e}"))?;
                n += data.len() as u64;
            }
        }
        out.flush().await.map_err(|e| format!("writing the export: {e}"))?;
        Ok(n)
    }

    async fn info(&self, m: &Member) -> Result<AgentInfo, String> {
        let bytes = self.request(m, "GET", "/v1/info", None).await?;
        let info: AgentInfo = serde_json::from_slice(&bytes).map_err(|e| format!("agent info from {}: {e}", m.addr))?;
        let mut seen = m.seen.lock();
        if let Some(old) = &seen.instance
            && *old != info.instance
        {
            seen.restarts += 1;
            tracing::warn!(agent = %info.name, addr = %m.addr, "the agent restarted (new instance); it is queried again");
        }
        seen.instance = Some(info.instance.clone());
        seen.started_at = Some(info.started_at.clone());
        seen.name = Some(info.name.clone());
        Ok(info)
    }

    /// Asks every agent: `args_for(name)` gives each its arguments (cursors differ per agent;
    /// `None`: do not ask that one).
    pub async fn fan_out<T: DeserializeOwned + Send>(
        &self,
        tool: &str,
        args_for: &(dyn Fn(&str) -> Option<Map<String, Value>> + Sync),
    ) -> Result<Round<T>, ToolError> {
        self.fan_out_within(tool, args_for, Duration::ZERO).await
    }

    /// [`Hub::fan_out`] for a tool that may itself wait `extra` (a long poll) before answering.
    pub async fn fan_out_within<T: DeserializeOwned + Send>(
        &self,
        tool: &str,
        args_for: &(dyn Fn(&str) -> Option<Map<String, Value>> + Sync),
        extra: Duration,
    ) -> Result<Round<T>, ToolError> {
        let addrs = self.discover().await.map_err(ToolError)?;
        if addrs.is_empty() {
            return Err(ToolError(
                "no agent was found: check the agents are running and --agents (see capture_status of an agent)".into(),
            ));
        }
        let deadline = self.opts.deadline;
        let members: Vec<Arc<Member>> = addrs.iter().map(|a| self.member(a)).collect();
        let infos = futures_join(members.iter().map(|m| async move {
            match tokio::time::timeout(deadline, self.info(m)).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within the {}s deadline", deadline.as_secs_f64())),
            }
        }))
        .await;
        // One agent reached at two addresses (both of a dual-stack pod, a list naming it twice)
        // is asked once: the first address by order.
        let mut instances = std::collections::HashSet::new();
        let twice: Vec<bool> = infos
            .iter()
            .map(|i| i.as_ref().is_ok_and(|i| !instances.insert(i.instance.clone())))
            .collect();
        let holders: Vec<Holder> = infos
            .iter()
            .zip(&twice)
            .filter(|(_, twice)| !**twice)
            .filter_map(|(i, _)| i.as_ref().ok())
            .map(|i| Holder {
                name: i.name.clone(),
                locality: i.locality.clone(),
                holds_since_ns: i.holds_since_ns,
            })
            .collect();
        let calls = futures_join(members.iter().zip(&infos).zip(&twice).map(|((m, info), twice)| {
            let holders = holders.clone();
            async move {
                if *twice {
                    return Ok(None);
                }
                let info = match info {
                    Ok(i) => i,
                    Err(e) => return Err(e.clone()),
                };
                let Some(args) = args_for(&info.name) else {
                    return Ok(None);
                };
                let req = CallRequest {
                    tool: tool.to_string(),
                    args,
                    scope: Scope {
                        holders,
                        me: info.name.clone(),
                    },
                };
                let body = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
                let call = self.request(m, "POST", "/v1/call", Some(body));
                let bytes = match tokio::time::timeout(deadline + extra, call).await {
                    Ok(r) => r?,
                    Err(_) => {
                        return Err(format!(
                            "no answer within the {}s deadline",
                            (deadline + extra).as_secs_f64()
                        ));
                    }
                };
                serde_json::from_slice::<T>(&bytes)
                    .map(Some)
                    .map_err(|e| format!("the reply of {}: {e}", m.addr))
            }
        }))
        .await;
        let mut round = Round {
            answers: Vec::new(),
            agents: Vec::new(),
            coverages: Vec::new(),
            refusals: Vec::new(),
        };
        for (((m, info), reply), twice) in members.iter().zip(infos).zip(calls).zip(twice) {
            if twice {
                tracing::debug!(addr = %m.addr, "the same agent as another address: asked once");
                continue;
            }
            let seen = m.seen.lock();
            let mut cov = AgentCoverage {
                name: seen.name.clone().unwrap_or_else(|| m.addr.clone()),
                address: format!("https://{}", m.addr),
                started_at: seen.started_at.clone(),
                restarts: seen.restarts,
                ..Default::default()
            };
            drop(seen);
            if let Ok(i) = &info {
                let c = &i.coverage;
                cov.from = c.from.clone();
                cov.to = c.to.clone();
                cov.entries_stored = c.entries_stored;
                cov.entries_evicted = c.entries_evicted;
                cov.drops = c.drops.clone();
                cov.complete = c.complete;
            }
            match reply {
                Ok(v) => {
                    cov.answered = true;
                    if let Some(v) = v {
                        round.answers.push((cov.name.clone(), v));
                    }
                }
                Err(e) => match e.strip_prefix("\u{0}tool:") {
                    Some(tool_err) => {
                        cov.answered = true;
                        round.refusals.push((cov.name.clone(), tool_err.to_string()));
                    }
                    None => cov.error = Some(e),
                },
            }
            if let Ok(i) = info {
                round.coverages.push((cov.name.clone(), cov.answered, i.coverage));
            }
            round.agents.push(cov);
        }
        round.agents.sort_by(|a, b| a.name.cmp(&b.name));
        round.answers.sort_by(|a, b| a.0.cmp(&b.0));
        if round.answers.is_empty()
            && let Some((_, e)) = round.refusals.first()
        {
            return Err(ToolError(e.clone()));
        }
        Ok(round)
    }

    /// Asks every agent the same `tool` with the same `args`, from a tool's blocking thread.
    pub fn ask_all<T: DeserializeOwned + Send>(
        &self,
        tool: &str,
        args: &Map<String, Value>,
    ) -> Result<Round<T>, ToolError> {
        let args_for = |_: &str| Some(args.clone());
        self.block_on(self.fan_out(tool, &args_for))
    }

    /// Runs a fan-out from a tool (a blocking thread of the runtime).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

/// Runs futures concurrently and returns their outputs in order.
async fn futures_join<F: std::future::Future>(fs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in fs {
        set.push(f);
    }
    let mut out = Vec::with_capacity(set.len());
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = set.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(results.into_iter().map(|r| r.expect("every future finished")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_sources_parse_or_say_how() {
        assert_eq!(
            "https://10.0.0.7:9443".parse::<AgentSource>().unwrap(),
            AgentSource::Address("10.0.0.7:9443".into())
        );
        assert_eq!(
            "dns:wirelens-agents.wirelens.svc:9443".parse::<AgentSource>().unwrap(),
            AgentSource::Dns("wirelens-agents.wirelens.svc".into(), 9443)
        );
        assert_eq!(
            "kube:app.kubernetes.io/component=agent".parse::<AgentSource>().unwrap(),
            AgentSource::Kube("app.kubernetes.io/component=agent".into())
        );
        for bad in ["", "kube:", "dns:x", "10.0.0.7", "https://:1", "host:port"] {
            assert!(bad.parse::<AgentSource>().is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn join_keeps_order() {
        let out = futures_join((0..5u64).map(|i| async move {
            tokio::time::sleep(Duration::from_millis(10 * (5 - i))).await;
            i
        }))
        .await;
        assert_eq!(out, [0, 1, 2, 3, 4]);
    }
}
