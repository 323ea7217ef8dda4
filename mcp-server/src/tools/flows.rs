//! `list_flows` and `flow_summary`: the connections (TCP) and conversations (UDP) seen.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::Arc;

use capture_core::entry::Transport;
use capture_core::flows::FlowRecord;
use capture_core::health;
use serde_json::{Map, Value};
use tools_schema::{
    FlowListItem, FlowSummaryParams, FlowSummaryResult, FlowTransport, ListFlowsParams, ListFlowsResult, Talker,
};

use super::{ToolError, err, parse_args};
use crate::convert;
use crate::state::AppState;

pub const LIST_DESCRIPTION: &str = "List the transport flows seen: TCP connections and UDP conversations, with \
client and server, time span, state, packets and payload bytes per direction, how many entries each carried, and \
the TCP health verdict. Narrow with `protocol` (tcp/udp) or `endpoint` (IP or IP:port); page with `cursor`. Use \
tcp_insights for the full TCP analysis of a connection.";

pub const SUMMARY_DESCRIPTION: &str = "Totals over all flows in one call: flows, packets and bytes; TCP connections by \
state (refused, reset, closed, …) and by health verdict; the top talkers by bytes and by packets; and the \
cross-namespace pairs. A good first call for \"what is talking to what, and is anything broken?\".";

fn matches_transport(f: &FlowRecord, t: Option<FlowTransport>) -> bool {
    match t {
        None => true,
        Some(FlowTransport::Tcp) => f.transport == Transport::Tcp,
        Some(FlowTransport::Udp) => f.transport == Transport::Udp,
    }
}

/// Ids listed per flow in `list_flows`.
const ENTRY_IDS_PER_FLOW: usize = 10;

/// Entries per flow id, with the first ids (one pass over the store, oldest first).
fn entries_per_flow(state: &AppState) -> HashMap<u64, (u64, Vec<String>)> {
    let mut m: HashMap<u64, (u64, Vec<String>)> = HashMap::new();
    state
        .shared
        .store
        .scan(capture_core::store::Order::Asc, None, &mut |e| {
            let slot = m.entry(e.flow_id).or_default();
            slot.0 += 1;
            if slot.1.len() < ENTRY_IDS_PER_FLOW {
                slot.1.push(e.id.to_string());
            }
            ControlFlow::Continue(())
        });
    m
}

pub fn run_list(state: &AppState, args: Map<String, Value>) -> Result<ListFlowsResult, ToolError> {
    if let Some(hub) = &state.hub {
        return hub.list_flows(args);
    }
    let p = collect_list(state, args)?;
    let coverage = convert::coverage(&state.shared);
    Ok(finish_list(vec![p], coverage))
}

/// The first `offset + limit` flows in an agent's order, and how many matched.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct ListPartial {
    pub agent: String,
    pub offset: usize,
    pub limit: u32,
    pub total: u64,
    pub rows: Vec<super::tcp_insights::FlowRow>,
}

/// Pages one agent's flows (in its order) or several agents' (by first packet, then agent,
/// then position); flow items name their agent and its entry ids are `agent/id`.
pub fn finish_list(parts: Vec<ListPartial>, coverage: tools_schema::Coverage) -> ListFlowsResult {
    let (offset, limit) = (parts[0].offset, parts[0].limit as usize);
    let several = parts.len() > 1;
    let total: u64 = parts.iter().map(|p| p.total).sum();
    let mut rows: Vec<(String, super::tcp_insights::FlowRow)> = parts
        .into_iter()
        .flat_map(|p| {
            let agent = p.agent;
            p.rows.into_iter().map(move |r| (agent.clone(), r))
        })
        .collect();
    if several {
        rows.sort_by(|(a1, r1), (a2, r2)| (r1.first_seen, a1, r1.pos).cmp(&(r2.first_seen, a2, r2.pos)));
    }
    let start = offset.min(rows.len());
    let end = (start + limit).min(rows.len());
    let items = rows
        .drain(start..end)
        .map(|(agent, mut r)| {
            if several {
                if let Some(Value::Array(ids)) = r.row.get_mut("entry_ids") {
                    for id in ids {
                        if let Value::String(s) = id {
                            *s = format!("{agent}/{s}");
                        }
                    }
                }
                r.row.insert("agent".into(), Value::String(agent));
            }
            r.row
        })
        .collect();
    ListFlowsResult {
        flows: items,
        next_cursor: ((end as u64) < total).then(|| format!("o{end}")),
        total_matched: total,
        coverage,
    }
}

pub fn collect_list(state: &AppState, args: Map<String, Value>) -> Result<ListPartial, ToolError> {
    let p: ListFlowsParams = parse_args("list_flows", args)?;
    let limit = p.limit.unwrap_or(50);
    if limit == 0 || limit > 1000 {
        return err(format!("`limit` must be between 1 and 1000 (got {limit})"));
    }
    let offset: usize = match p.cursor.as_deref() {
        None => 0,
        Some(c) => c.strip_prefix('o').and_then(|n| n.parse().ok()).ok_or_else(|| {
            ToolError(format!(
                "cursor `{c}` is not one this server issued; pass `next_cursor` back unchanged"
            ))
        })?,
    };
    let endpoint = p.endpoint.as_deref().map(str::trim);
    let flows: Vec<Arc<FlowRecord>> = state
        .shared
        .flows
        .snapshot()
        .into_iter()
        .filter(|f| matches_transport(f, p.protocol))
        .filter(|f| endpoint.is_none_or(|e| super::tcp_insights::touches(f, e)))
        .collect();
    let flows = super::filter::select_flows(state, flows, p.filter.as_deref())?;
    let projection = p
        .fields
        .as_deref()
        .map(super::list_entries::resolve_fields)
        .transpose()?;
    let counts = entries_per_flow(state);
    let total = flows.len();
    let end = offset.saturating_add(limit as usize).min(total);
    let rows = flows[..end]
        .iter()
        .enumerate()
        .map(|(pos, f)| {
            let row = |row| super::tcp_insights::FlowRow {
                key: None,
                first_seen: f.first_seen.0,
                pos,
                row,
            };
            if let Some(fields) = &projection {
                return Ok(row(convert::project(&f.as_entry(), fields)));
            }
            to_object(FlowListItem {
                flow_id: f.id,
                transport: if f.transport == Transport::Tcp { "tcp" } else { "udp" }.into(),
                client: f.client.to_string(),
                server: f.server.to_string(),
                client_name: convert::name_of(&f.peers.src, f.peers.src_dns.as_deref()),
                server_name: convert::name_of(&f.peers.dst, f.peers.dst_dns.as_deref()),
                first_seen: f.first_seen.to_rfc3339(),
                last_seen: f.last_seen.to_rfc3339(),
                state: f.state().into(),
                packets_c2s: f.metrics.packets[0],
                packets_s2c: f.metrics.packets[1],
                payload_bytes_c2s: f.metrics.payload_bytes[0],
                payload_bytes_s2c: f.metrics.payload_bytes[1],
                entries: counts.get(&f.id).map_or(0, |c| c.0),
                kernel: f.kernel.as_deref().map(convert::kernel_tcp),
                entry_ids: counts.get(&f.id).map(|c| c.1.clone()).unwrap_or_default(),
                verdict: (f.transport == Transport::Tcp).then(|| health::assess_flow(f).0.name().to_string()),
            })
            .map(row)
        })
        .collect::<Result<Vec<_>, ToolError>>()?;
    Ok(ListPartial {
        agent: String::new(),
        offset,
        limit,
        total: total as u64,
        rows,
    })
}

pub fn run_summary(state: &AppState, args: Map<String, Value>) -> Result<FlowSummaryResult, ToolError> {
    if let Some(hub) = &state.hub {
        return hub.flow_summary(args);
    }
    let mut coverage = convert::coverage(&state.shared);
    if state.shared.identities.is_empty() {
        coverage
            .notes
            .push("cross_namespace_pairs needs Kubernetes identities (--identities or --demo); none are loaded".into());
    }
    Ok(finish_summary(collect_summary(state, args)?, coverage))
}

/// Every pair's sums before ranking: what an agent sends a hub.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct SummaryPartial {
    pub top: u32,
    pub flows: u64,
    pub tcp: u64,
    pub udp: u64,
    pub packets: u64,
    pub bytes: u64,
    pub states: BTreeMap<String, u64>,
    pub verdicts: BTreeMap<String, u64>,
    pub pairs: HashMap<String, Talker>,
    pub cross: BTreeMap<String, Talker>,
}

fn add_talker(into: &mut Talker, t: &Talker) {
    into.flows += t.flows;
    into.packets += t.packets;
    into.bytes += t.bytes;
}

impl SummaryPartial {
    pub fn merge(&mut self, o: SummaryPartial) {
        self.flows += o.flows;
        self.tcp += o.tcp;
        self.udp += o.udp;
        self.packets += o.packets;
        self.bytes += o.bytes;
        for (k, n) in o.states {
            *self.states.entry(k).or_default() += n;
        }
        for (k, n) in o.verdicts {
            *self.verdicts.entry(k).or_default() += n;
        }
        for (k, t) in o.pairs {
            match self.pairs.get_mut(&k) {
                Some(mine) => add_talker(mine, &t),
                None => {
                    self.pairs.insert(k, t);
                }
            }
        }
        for (k, t) in o.cross {
            match self.cross.get_mut(&k) {
                Some(mine) => add_talker(mine, &t),
                None => {
                    self.cross.insert(k, t);
                }
            }
        }
    }
}

pub fn finish_summary(p: SummaryPartial, coverage: tools_schema::Coverage) -> FlowSummaryResult {
    let top = p.top as usize;
    let mut by_bytes: Vec<Talker> = p.pairs.values().cloned().collect();
    by_bytes.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.pair.cmp(&b.pair)));
    by_bytes.truncate(top);
    let mut by_packets: Vec<Talker> = p.pairs.into_values().collect();
    by_packets.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.pair.cmp(&b.pair)));
    by_packets.truncate(top);
    let mut cross: Vec<Talker> = p.cross.into_values().collect();
    cross.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.pair.cmp(&b.pair)));
    cross.truncate(top);
    FlowSummaryResult {
        flows: p.flows,
        tcp_flows: p.tcp,
        udp_flows: p.udp,
        packets: p.packets,
        bytes: p.bytes,
        tcp_states: p.states,
        tcp_verdicts: p.verdicts,
        top_talkers_by_bytes: by_bytes,
        top_talkers_by_packets: by_packets,
        cross_namespace_pairs: cross,
        coverage,
    }
}

pub fn collect_summary(state: &AppState, args: Map<String, Value>) -> Result<SummaryPartial, ToolError> {
    let p: FlowSummaryParams = parse_args("flow_summary", args)?;
    let top = p.top.unwrap_or(10);
    if top == 0 || top > 100 {
        return err(format!("`top` must be between 1 and 100 (got {top})"));
    }
    let flows: Vec<Arc<FlowRecord>> = state
        .shared
        .flows
        .snapshot()
        .into_iter()
        .filter(|f| matches_transport(f, p.protocol))
        .collect();
    let flows = super::filter::select_flows(state, flows, p.filter.as_deref())?;
    let mut pairs: HashMap<String, Talker> = HashMap::new();
    let mut cross: BTreeMap<String, Talker> = BTreeMap::new();
    let mut states: BTreeMap<String, u64> = BTreeMap::new();
    let mut verdicts: BTreeMap<String, u64> = BTreeMap::new();
    let (mut packets, mut bytes, mut tcp, mut udp) = (0u64, 0u64, 0u64, 0u64);
    for f in &flows {
        let m = &f.metrics;
        let (fp, fb) = (m.packets[0] + m.packets[1], m.frame_bytes[0] + m.frame_bytes[1]);
        packets += fp;
        bytes += fb;
        if f.transport == Transport::Tcp {
            tcp += 1;
            *states.entry(f.state().to_string()).or_default() += 1;
            *verdicts.entry(health::assess_flow(f).0.name().to_string()).or_default() += 1;
        } else {
            udp += 1;
        }
        let key = format!("{} → {}", f.client.ip(), f.server);
        let t = pairs.entry(key.clone()).or_insert(Talker {
            pair: key,
            flows: 0,
            packets: 0,
            bytes: 0,
        });
        t.flows += 1;
        t.packets += fp;
        t.bytes += fb;
        let ns = |r: &capture_core::enrich::Resolved| r.identity.as_deref().and_then(|i| i.namespace.clone());
        if let (Some(a), Some(b)) = (ns(&f.peers.src), ns(&f.peers.dst))
            && a != b
        {
            let key = format!("{a} → {b}");
            let t = cross.entry(key.clone()).or_insert(Talker {
                pair: key,
                flows: 0,
                packets: 0,
                bytes: 0,
            });
            t.flows += 1;
            t.packets += fp;
            t.bytes += fb;
        }
    }
    Ok(SummaryPartial {
        top,
        flows: flows.len() as u64,
        tcp,
        udp,
        packets,
        bytes,
        states,
        verdicts,
        pairs,
        cross,
    })
}

/// A result item as the JSON object it serialises to.
pub fn to_object(item: impl serde::Serialize) -> Result<Map<String, Value>, ToolError> {
    match serde_json::to_value(item) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(ToolError(format!("internal: a listed item is not an object: {other}"))),
        Err(e) => Err(ToolError(format!("internal: {e}"))),
    }
}
