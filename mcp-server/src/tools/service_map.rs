//! `service_map`: who talks to whom at the pod, workload, service or namespace level, with the
//! calls' rates, errors and latency and the TCP health of the connections behind each edge, plus
//! a Mermaid picture of it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::ops::ControlFlow;

use capture_core::endpoint;
use capture_core::enrich::Resolved;
use capture_core::health::{self, Verdict};
use capture_core::store::Order;
use hdrhistogram::Histogram;
use serde_json::{Map, Value};
use tools_schema::{MapEdge, MapLevel, MapNode, ServiceMapParams, ServiceMapResult};

use super::filter::Selection;
use super::work::Work;
use super::{ToolError, err, parse_args};
use crate::convert;
use crate::state::AppState;

pub const DESCRIPTION: &str = "Who talks to whom: nodes (pods, workloads, services or namespaces, and external \
addresses) with inbound and outbound totals, and edges with protocols, requests, errors and error rate, latency \
p50/p90/p99, bytes, the connections behind them and their worst TCP verdict, and whether they cross namespaces. \
Also a Mermaid `graph LR` of the busiest edges (show it to the user as a diagram). `level`: pod, workload \
(default), service or namespace; peers outside the cluster appear under the DNS name the traffic looked up, else their address. `filter` (KFL) narrows the calls; `since`/`until` the window. Names come from \
Kubernetes identities (--demo, --identities); without them nodes are IP addresses.";

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 500;
/// Distinct edges tracked; traffic of further edges still counts in the nodes' totals.
pub const MAX_EDGES: usize = 20_000;
/// Mermaid text cap: agents show it, and a picture with more than this is unreadable anyway.
pub const MERMAID_MAX_BYTES: usize = 12_000;
pub const MERMAID_MAX_EDGES: usize = 60;

/// A node: its id, kind and namespace.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct NodeKey {
    id: String,
    kind: String,
    namespace: Option<String>,
}

fn node_key(level: MapLevel, addr: SocketAddr, r: &Resolved, dns: Option<&str>) -> NodeKey {
    let external = || NodeKey {
        id: dns.map_or_else(|| addr.ip().to_string(), str::to_string),
        kind: "external".into(),
        namespace: None,
    };
    let Some(id) = r.identity.as_deref() else {
        return match level {
            MapLevel::Namespace => NodeKey {
                id: "external".into(),
                kind: "external".into(),
                namespace: None,
            },
            _ => external(),
        };
    };
    let ns = id.namespace.as_deref();
    let qualified = |name: &str| match ns {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    };
    let node_only = || {
        id.node.as_deref().map(|n| NodeKey {
            id: format!("node/{n}"),
            kind: "Node".into(),
            namespace: None,
        })
    };
    let service = || {
        id.service().map(|s| NodeKey {
            id: qualified(s),
            kind: "Service".into(),
            namespace: ns.map(str::to_string),
        })
    };
    let workload = || {
        id.workload.as_ref().map(|(k, n)| NodeKey {
            id: qualified(n),
            kind: k.to_string(),
            namespace: ns.map(str::to_string),
        })
    };
    let pod = || {
        id.pod.as_deref().map(|p| NodeKey {
            id: qualified(p),
            kind: "Pod".into(),
            namespace: ns.map(str::to_string),
        })
    };
    let found = match level {
        MapLevel::Pod => pod().or_else(service),
        MapLevel::Workload => workload().or_else(service),
        MapLevel::Service => service().or_else(workload),
        MapLevel::Namespace => ns.map(|n| NodeKey {
            id: n.to_string(),
            kind: "Namespace".into(),
            namespace: Some(n.to_string()),
        }),
    };
    found.or_else(node_only).unwrap_or_else(external)
}

#[derive(Default)]
struct EdgeAcc {
    requests: u64,
    errors: u64,
    bytes: u64,
    protocols: Vec<&'static str>,
    latency: Option<Histogram<u64>>,
    flows: HashSet<u64>,
}

#[derive(Default)]
struct NodeAcc {
    inbound: tools_schema::NodeTraffic,
    outbound: tools_schema::NodeTraffic,
}

pub fn run(state: &AppState, args: Map<String, Value>) -> Result<ServiceMapResult, ToolError> {
    run_with(state, args, &Work::none())
}

pub fn run_with(state: &AppState, args: Map<String, Value>, work: &Work<'_>) -> Result<ServiceMapResult, ToolError> {
    if let Some(hub) = &state.hub {
        return hub.service_map(args);
    }
    let partial = collect(state, args, work)?;
    Ok(finish(partial, convert::coverage(&state.shared)))
}

/// One edge's sums and the TCP verdicts of the connections behind it: what agents send a hub.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct EdgePartial {
    requests: u64,
    errors: u64,
    bytes: u64,
    protocols: Vec<String>,
    #[serde(with = "super::api_stats::histogram_serde")]
    latency: Option<Histogram<u64>>,
    connections: u64,
    refused: u64,
    verdicts: BTreeMap<String, u64>,
}

impl EdgePartial {
    fn merge(&mut self, o: EdgePartial) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.bytes += o.bytes;
        for p in o.protocols {
            if !self.protocols.contains(&p) {
                self.protocols.push(p);
            }
        }
        match (&mut self.latency, o.latency) {
            (Some(mine), Some(h)) => {
                let _ = mine.add(&h);
            }
            (mine @ None, h) => *mine = h,
            _ => {}
        }
        self.connections += o.connections;
        self.refused += o.refused;
        for (v, n) in o.verdicts {
            *self.verdicts.entry(v).or_default() += n;
        }
    }
}

/// Every edge and node before ranking; merged by a hub over its agents' maps.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Partial {
    pub level: MapLevel,
    pub limit: u32,
    pub edges: Vec<(NodeKey, NodeKey, EdgePartial)>,
    pub nodes: Vec<(NodeKey, tools_schema::NodeTraffic, tools_schema::NodeTraffic)>,
    pub edges_dropped: u64,
    pub notes: Vec<String>,
}

impl Partial {
    pub fn merge(&mut self, o: Partial) {
        let mut edges: HashMap<(NodeKey, NodeKey), EdgePartial> = std::mem::take(&mut self.edges)
            .into_iter()
            .map(|(s, d, e)| ((s, d), e))
            .collect();
        for (s, d, e) in o.edges {
            let room = edges.len() < MAX_EDGES;
            match edges.get_mut(&(s.clone(), d.clone())) {
                Some(mine) => mine.merge(e),
                None if room => {
                    edges.insert((s, d), e);
                }
                None => self.edges_dropped += 1,
            }
        }
        self.edges = edges.into_iter().map(|((s, d), e)| (s, d, e)).collect();
        let mut nodes: HashMap<NodeKey, NodeAcc> = std::mem::take(&mut self.nodes)
            .into_iter()
            .map(|(k, inbound, outbound)| (k, NodeAcc { inbound, outbound }))
            .collect();
        for (k, i, out) in o.nodes {
            let n = nodes.entry(k).or_default();
            add_traffic(&mut n.inbound, &i);
            add_traffic(&mut n.outbound, &out);
        }
        self.nodes = nodes.into_iter().map(|(k, n)| (k, n.inbound, n.outbound)).collect();
        self.edges_dropped += o.edges_dropped;
        for n in o.notes {
            if !self.notes.contains(&n) {
                self.notes.push(n);
            }
        }
    }
}

fn add_traffic(t: &mut tools_schema::NodeTraffic, o: &tools_schema::NodeTraffic) {
    t.requests += o.requests;
    t.errors += o.errors;
    t.bytes += o.bytes;
}

/// One pass over the store and the flow records: every edge and node.
pub fn collect(state: &AppState, args: Map<String, Value>, work: &Work<'_>) -> Result<Partial, ToolError> {
    let p: ServiceMapParams = parse_args("service_map", args)?;
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return err(format!("`limit` must be between 1 and {MAX_LIMIT} (got {limit})"));
    }
    let level = p.level.unwrap_or_default();
    let sel = Selection::new(state, p.filter.as_deref(), p.since.as_deref(), p.until.as_deref())?;
    let mut edges: HashMap<(NodeKey, NodeKey), EdgeAcc> = HashMap::new();
    let mut nodes: HashMap<NodeKey, NodeAcc> = HashMap::new();
    let mut edges_dropped = 0u64;
    let store = &state.shared.store;
    let in_store = store.len() as u64;
    let mut scanned = 0u64;
    store.scan(Order::Asc, None, &mut |e| {
        scanned += 1;
        if work.tick(scanned, in_store).is_break() {
            return ControlFlow::Break(());
        }
        if !sel.matches(e) {
            return ControlFlow::Continue(());
        }
        let src = node_key(level, e.src, &e.peers.src, e.peers.src_dns.as_deref());
        let dst = node_key(level, e.dst, &e.peers.dst, e.peers.dst_dns.as_deref());
        let error = endpoint::outcome(e).error;
        let (rq, rs) = endpoint::payload_bytes(e);
        let n = nodes.entry(src.clone()).or_default();
        n.outbound.requests += 1;
        n.outbound.errors += u64::from(error);
        n.outbound.bytes += rq + rs;
        let n = nodes.entry(dst.clone()).or_default();
        n.inbound.requests += 1;
        n.inbound.errors += u64::from(error);
        n.inbound.bytes += rq + rs;
        let room = edges.len() < MAX_EDGES;
        let acc = match edges.get_mut(&(src.clone(), dst.clone())) {
            Some(a) => a,
            None if room => edges.entry((src, dst)).or_default(),
            None => {
                edges_dropped += 1;
                return ControlFlow::Continue(());
            }
        };
        acc.requests += 1;
        acc.errors += u64::from(error);
        acc.bytes += rq + rs;
        let proto = e.protocol.name();
        if !acc.protocols.contains(&proto) {
            acc.protocols.push(proto);
        }
        if let Some(us) = e.elapsed_us {
            super::api_stats::record_latency(&mut acc.latency, us);
        }
        if acc.flows.len() < 10_000 {
            acc.flows.insert(e.flow_id);
        }
        ControlFlow::Continue(())
    });
    if work.is_cancelled() {
        return Err(work.stopped_error("service_map"));
    }
    // The connections behind the edges, and (without a filter) connections that carried no
    // call: refused or silent ones are part of who talks to whom.
    let flows = super::filter::select_flows(state, state.shared.flows.snapshot(), None)?;
    let by_id: HashMap<u64, &capture_core::flows::FlowRecord> = flows.iter().map(|f| (f.id, f.as_ref())).collect();
    if !sel.has_filter() {
        let with_calls: HashSet<u64> = edges.values().flat_map(|a| a.flows.iter().copied()).collect();
        for f in &flows {
            if with_calls.contains(&f.id) || !sel.overlaps(f.first_seen, f.last_seen) {
                continue;
            }
            let s = node_key(level, f.client, &f.peers.src, f.peers.src_dns.as_deref());
            let d = node_key(level, f.server, &f.peers.dst, f.peers.dst_dns.as_deref());
            nodes.entry(s.clone()).or_default();
            nodes.entry(d.clone()).or_default();
            let room = edges.len() < MAX_EDGES;
            match edges.get_mut(&(s.clone(), d.clone())) {
                Some(acc) => {
                    acc.flows.insert(f.id);
                }
                None if room => {
                    edges.entry((s, d)).or_default().flows.insert(f.id);
                }
                None => edges_dropped += 1,
            }
        }
    }
    let edges = edges
        .into_iter()
        .map(|((s, d), acc)| {
            let mut verdicts: BTreeMap<String, u64> = BTreeMap::new();
            let mut refused = 0;
            for f in acc.flows.iter().filter_map(|id| by_id.get(id)) {
                refused += u64::from(f.refused());
                if f.transport == capture_core::entry::Transport::Tcp {
                    let (v, _) = health::assess_flow(f);
                    *verdicts.entry(v.name().to_string()).or_default() += 1;
                }
            }
            let e = EdgePartial {
                requests: acc.requests,
                errors: acc.errors,
                bytes: acc.bytes,
                protocols: acc.protocols.iter().map(|p| p.to_string()).collect(),
                latency: acc.latency,
                connections: acc.flows.len() as u64,
                refused,
                verdicts,
            };
            (s, d, e)
        })
        .collect();
    let mut notes = Vec::new();
    if state.shared.identities.is_empty() {
        notes.push("no Kubernetes identities are loaded: nodes are IP addresses (see --identities)".into());
    } else if let Some(problem) = state.shared.identities.source().problem {
        notes.push(format!("Kubernetes identities are stale: {problem}"));
    }
    Ok(Partial {
        level,
        limit,
        edges,
        nodes: nodes.into_iter().map(|(k, n)| (k, n.inbound, n.outbound)).collect(),
        edges_dropped,
        notes,
    })
}

/// Ranks and cuts the edges and draws the picture.
pub fn finish(p: Partial, mut coverage: tools_schema::Coverage) -> ServiceMapResult {
    let Partial {
        level,
        limit,
        edges,
        nodes,
        edges_dropped,
        notes,
    } = p;
    let mut out_edges: Vec<MapEdge> = edges
        .into_iter()
        .map(|(s, d, acc)| {
            let worst = acc.verdicts.keys().filter_map(|v| Verdict::from_name(v)).max();
            MapEdge {
                cross_namespace: s.namespace.is_some() && d.namespace.is_some() && s.namespace != d.namespace,
                source: s.id,
                destination: d.id,
                protocols: acc.protocols,
                requests: acc.requests,
                errors: acc.errors,
                error_rate: if acc.requests == 0 {
                    0.0
                } else {
                    acc.errors as f64 / acc.requests as f64
                },
                latency_ms: super::api_stats::latency_ms(&acc.latency),
                bytes: acc.bytes,
                connections: acc.connections,
                refused_connections: acc.refused,
                tcp_verdict: worst.map(|v| v.name().to_string()),
                tcp_verdicts: acc.verdicts,
            }
        })
        .collect();
    out_edges.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then(b.connections.cmp(&a.connections))
            .then_with(|| (&a.source, &a.destination).cmp(&(&b.source, &b.destination)))
    });
    let omitted = out_edges.len().saturating_sub(limit as usize) as u64 + edges_dropped;
    out_edges.truncate(limit as usize);
    let mut out_nodes: Vec<MapNode> = nodes
        .into_iter()
        .map(|(k, inbound, outbound)| MapNode {
            id: k.id,
            kind: k.kind,
            namespace: k.namespace,
            inbound,
            outbound,
        })
        .collect();
    out_nodes.sort_by(|a, b| (&a.namespace, &a.id).cmp(&(&b.namespace, &b.id)));
    let (mermaid, mermaid_truncated) = mermaid(&out_nodes, &out_edges);
    coverage.notes.extend(notes);
    ServiceMapResult {
        level,
        nodes: out_nodes,
        edges: out_edges,
        edges_omitted: omitted,
        mermaid,
        mermaid_truncated,
        coverage,
    }
}

/// Text safe inside a quoted Mermaid label.
fn label(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' => '\'',
            '<' | '>' | '|' | '`' | '\n' | '\r' => ' ',
            c => c,
        })
        .take(60)
        .collect()
}

/// A Mermaid `graph LR`: namespaces as subgraphs, edges labelled with protocol, requests, error
/// rate and p99; cross-namespace edges dotted; edges with errors or severe connections styled.
fn mermaid(nodes: &[MapNode], edges: &[MapEdge]) -> (String, bool) {
    let shown: Vec<&MapEdge> = edges.iter().take(MERMAID_MAX_EDGES).collect();
    let used: HashSet<&str> = shown
        .iter()
        .flat_map(|e| [e.source.as_str(), e.destination.as_str()])
        .collect();
    let ids: HashMap<&str, String> = nodes
        .iter()
        .filter(|n| used.contains(n.id.as_str()))
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), format!("n{i}")))
        .collect();
    let mut out = String::from("graph LR\n");
    let mut by_ns: BTreeMap<Option<&str>, Vec<&MapNode>> = BTreeMap::new();
    for n in nodes.iter().filter(|n| ids.contains_key(n.id.as_str())) {
        by_ns.entry(n.namespace.as_deref()).or_default().push(n);
    }
    for (ns, members) in by_ns {
        if let Some(ns) = ns {
            let _ = writeln!(
                out,
                "  subgraph ns_{}[\"{}\"]",
                label(ns).replace(['-', '.', ' '], "_"),
                label(ns)
            );
        }
        for n in members {
            let short = n.id.rsplit('/').next().unwrap_or(&n.id);
            let shape = if n.kind == "external" {
                format!("{}([\"{}\"])", ids[n.id.as_str()], label(short))
            } else {
                format!("{}[\"{}\"]", ids[n.id.as_str()], label(short))
            };
            let _ = writeln!(out, "    {shape}");
        }
        if ns.is_some() {
            out.push_str("  end\n");
        }
    }
    let mut styled = Vec::new();
    for (i, e) in shown.iter().enumerate() {
        let mut text = format!("{} {}", e.protocols.join(","), e.requests);
        if e.requests == 0 {
            text = format!("tcp {} conn", e.connections);
        }
        if e.errors > 0 {
            let _ = write!(text, " {:.0}% err", e.error_rate * 100.0);
        }
        if let Some(l) = &e.latency_ms {
            let _ = write!(text, " p99 {:.0}ms", l.p99);
        }
        if e.refused_connections > 0 {
            let _ = write!(text, " {} refused", e.refused_connections);
        }
        let arrow = if e.cross_namespace { "-.->" } else { "-->" };
        let _ = writeln!(
            out,
            "  {} {arrow}|\"{}\"| {}",
            ids[e.source.as_str()],
            label(&text),
            ids[e.destination.as_str()]
        );
        if e.errors > 0 || e.refused_connections > 0 || e.tcp_verdict.as_deref() == Some("severe") {
            styled.push(i);
        }
    }
    for i in styled {
        let _ = writeln!(out, "  linkStyle {i} stroke:#d33,stroke-width:2px");
    }
    let mut truncated = edges.len() > shown.len();
    if out.len() > MERMAID_MAX_BYTES {
        let mut cut = MERMAID_MAX_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(out[..cut].rfind('\n').map_or(cut, |i| i + 1));
        truncated = true;
    }
    if truncated {
        out.push_str("  %% truncated: the structured edges are complete\n");
    }
    (out, truncated)
}
