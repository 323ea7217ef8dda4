//! `tcp_insights`: per-connection TCP analysis (as Wireshark computes it) with health verdicts,
//! or the same metrics aggregated by client/server, server or namespace pair.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use capture_core::entry::Transport;
use capture_core::flows::FlowRecord;
use capture_core::health::{self, Verdict};
use capture_core::tcp::analysis::TcpMetrics;
use serde_json::{Map, Value};
use tools_schema::{FlowGroupOut, FlowOut, GroupBy, TcpInsightsParams, TcpInsightsResult, TcpMetricsOut};

use super::{ToolError, err, parse_args};
use crate::convert;
use crate::state::AppState;

pub const DESCRIPTION: &str = "Is the network sick, or the application? Wireshark-grade TCP analysis per connection: \
retransmissions (fast, spurious), out-of-order, zero windows and probes, window full, duplicate ACKs, missing and \
ACKed-unseen segments, keep-alives, completeness, handshake RTT, ACK RTT samples and jitter, volumes and goodput, \
each with a `verdict` (healthy/degraded/severe) and plain `reasons`. `group_by` aggregates by `client_server`, \
`server` or `namespace_pair` with handshake RTT p50/p90/p99. Sort with e.g. `sort: \"retransmission_rate\"`; \
narrow with a KFL `filter` over flows (`conn_state == \"refused\"`, `retransmission_rate > 0.01`, \
`dst.port == 8080`), `verdict` or `endpoint`.";

const DEFAULT_LIMIT: u32 = 50;

/// `ip:port`, IPv6 as `[addr]:port`.
pub fn addr(a: SocketAddr) -> String {
    a.to_string()
}

fn us(ns: Option<u64>) -> Option<u64> {
    ns.map(|n| (n + 500) / 1000)
}

pub fn metrics_out(m: &TcpMetrics) -> TcpMetricsOut {
    let duration_ns = match (m.first_ts, m.last_ts) {
        (Some(a), Some(b)) => b.0.saturating_sub(a.0),
        _ => 0,
    };
    let payload = m.payload_bytes[0] + m.payload_bytes[1];
    let ttfb = match (m.first_data_ts[0], m.first_data_ts[1]) {
        (Some(c), Some(s)) if s >= c => Some(s.0 - c.0),
        _ => None,
    };
    TcpMetricsOut {
        packets_c2s: m.packets[0],
        packets_s2c: m.packets[1],
        frame_bytes_c2s: m.frame_bytes[0],
        frame_bytes_s2c: m.frame_bytes[1],
        payload_bytes_c2s: m.payload_bytes[0],
        payload_bytes_s2c: m.payload_bytes[1],
        goodput_bytes: m.goodput_bytes(),
        retransmissions: m.retransmissions,
        fast_retransmissions: m.fast_retransmissions,
        spurious_retransmissions: m.spurious_retransmissions,
        retransmission_rate: (m.retransmission_rate() * 10_000.0).round() / 10_000.0,
        out_of_order: m.out_of_order,
        zero_window_events: m.zero_window_events,
        zero_window_probes: m.zero_window_probes,
        window_full_events: m.window_full_events,
        window_updates: m.window_updates,
        dup_acks: m.dup_acks,
        missing_segments: m.missing_segments,
        acked_unseen: m.acked_unseen,
        keepalive_count: m.keepalive_count,
        syn_count: m.syn_count,
        fin_count: m.fin_count,
        rst_count: m.rst_count,
        window_scale_client: m.window_scale[0],
        window_scale_server: m.window_scale[1],
        avg_receive_window_client: m.avg_receive_window(0),
        avg_receive_window_server: m.avg_receive_window(1),
        initial_rtt_us: us(m.initial_rtt_ns),
        handshake_time_us: us(m.syn_to_synack_ns),
        time_to_first_byte_us: us(ttfb),
        rtt_samples: m.rtt_samples,
        rtt_min_us: us(m.rtt_min_ns),
        rtt_max_us: us(m.rtt_max_ns),
        rtt_avg_us: us(m.rtt_avg_ns()),
        jitter_us: us(m.jitter_ns()),
        duration_us: duration_ns / 1000,
        throughput_bps: if duration_ns == 0 {
            0.0
        } else {
            (payload as f64 * 1e9 / duration_ns as f64).round()
        },
    }
}

pub fn flow_out(f: &FlowRecord) -> FlowOut {
    let (verdict, reasons) = health::assess_flow(f);
    FlowOut {
        flow_id: f.id,
        client: addr(f.client),
        server: addr(f.server),
        client_name: crate::convert::name_of(&f.peers.src, f.peers.src_dns.as_deref()),
        server_name: crate::convert::name_of(&f.peers.dst, f.peers.dst_dns.as_deref()),
        roles_from: f.roles.name().into(),
        first_seen: f.first_seen.to_rfc3339(),
        last_seen: f.last_seen.to_rfc3339(),
        connection_completeness: f.metrics.completeness,
        state: f.state().into(),
        end: f.end.name().into(),
        metrics: metrics_out(&f.metrics),
        verdict: verdict.name().into(),
        reasons,
        kernel: f.kernel.as_deref().map(crate::convert::kernel_tcp),
    }
}

/// The value a flow is sorted by (missing values sort last).
fn sort_key(m: &TcpMetricsOut, field: &str) -> Result<f64, ToolError> {
    let v = serde_json::to_value(m).unwrap_or_default();
    match field {
        "payload_bytes" => Ok((m.payload_bytes_c2s + m.payload_bytes_s2c) as f64),
        "packets" => Ok((m.packets_c2s + m.packets_s2c) as f64),
        _ => match v.get(field) {
            Some(Value::Number(n)) => Ok(n.as_f64().unwrap_or(f64::NAN)),
            Some(Value::Null) => Ok(f64::NAN),
            _ => err(format!(
                "cannot sort by `{field}`; use a numeric metric such as retransmission_rate, retransmissions, initial_rtt_us, zero_window_events, rtt_avg_us, duration_us, payload_bytes, packets"
            )),
        },
    }
}

pub fn run(state: &AppState, args: Map<String, Value>) -> Result<TcpInsightsResult, ToolError> {
    if let Some(hub) = &state.hub {
        return hub.tcp_insights(args);
    }
    let p = collect(state, args)?;
    Ok(finish(vec![p], convert::coverage(&state.shared)))
}

/// One connection row of `group_by: flow`, with what orders it.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct FlowRow {
    /// The sort field's value (null when the flow has none, or without `sort`).
    pub key: Option<f64>,
    pub first_seen: u64,
    /// Position in its agent's own order.
    pub pos: usize,
    pub row: Map<String, Value>,
}

/// A group's summed counters, its flows' handshake RTTs and their verdicts.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct GroupPartial {
    pub key: String,
    pub name: Option<String>,
    pub flows: u64,
    pub metrics: TcpMetrics,
    pub rtts_us: Vec<u64>,
    /// Flows judged healthy, degraded, severe.
    pub verdicts: [u64; 3],
}

/// Everything `tcp_insights` needs before ranking and paging: what an agent sends a hub.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Partial {
    pub agent: String,
    pub group_by: GroupBy,
    pub limit: u32,
    pub offset: usize,
    pub sort: Option<String>,
    pub ascending: bool,
    pub total: u64,
    /// Handshake RTT (µs, at least 1) of every selected flow that has one.
    pub rtts_us: Vec<u64>,
    /// `group_by: flow`: the first `offset + limit` rows in this agent's order.
    pub rows: Vec<FlowRow>,
    pub groups: Vec<GroupPartial>,
    pub kernel_rtt: Option<tools_schema::KernelRtt>,
}

fn rtt_us(f: &FlowRecord) -> Option<u64> {
    f.metrics.initial_rtt_ns.map(|ns| (ns / 1000).max(1))
}

/// Sorts (key, tiebreak) pairs: by key in the asked direction, flows without one last.
fn cmp_keys(ascending: bool, a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.filter(|x| !x.is_nan()), b.filter(|x| !x.is_nan())) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => {
            if ascending {
                x.total_cmp(&y)
            } else {
                y.total_cmp(&x)
            }
        }
    }
}

/// Selects the flows and sums them per group (or lists them): no ranking across agents yet.
pub fn collect(state: &AppState, args: Map<String, Value>) -> Result<Partial, ToolError> {
    let p: TcpInsightsParams = parse_args("tcp_insights", args)?;
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > 1000 {
        return err(format!("`limit` must be between 1 and 1000 (got {limit})"));
    }
    let group_by = p.group_by.unwrap_or_default();
    let offset: usize = match p.cursor.as_deref() {
        None => 0,
        Some(c) => c.strip_prefix("o").and_then(|n| n.parse().ok()).ok_or_else(|| {
            ToolError(format!(
                "cursor `{c}` is not one this server issued; pass `next_cursor` back unchanged"
            ))
        })?,
    };
    let verdict = p
        .verdict
        .as_deref()
        .map(|v| {
            Verdict::from_name(v)
                .ok_or_else(|| ToolError(format!("`verdict` must be healthy, degraded or severe (got `{v}`)")))
        })
        .transpose()?;
    let endpoint = p.endpoint.as_deref().map(str::trim);
    let flows: Vec<Arc<FlowRecord>> = state
        .shared
        .flows
        .snapshot()
        .into_iter()
        .filter(|f| f.transport == Transport::Tcp)
        .filter(|f| endpoint.is_none_or(|e| touches(f, e)))
        .filter(|f| verdict.is_none_or(|v| health::assess_flow(f).0 == v))
        .collect();
    let mut flows = super::filter::select_flows(state, flows, p.filter.as_deref())?;
    let projection = match (&p.fields, group_by) {
        (None, _) => None,
        (Some(names), GroupBy::Flow) => Some(super::list_entries::resolve_fields(names)?),
        (Some(_), _) => {
            return err("`fields` projects connections: use it with `group_by: flow` (groups have their own shape)");
        }
    };
    let (sort, ascending) = match p.sort.as_deref().map(str::trim) {
        None | Some("") => (None, false),
        Some(s) => match s.strip_prefix('+') {
            Some(f) => (Some(f.to_string()), true),
            None => (Some(s.trim_start_matches('-').to_string()), false),
        },
    };
    if let Some(field) = &sort {
        // An unknown field is an error even when nothing matched.
        sort_key(&metrics_out(&TcpMetrics::default()), field)?;
    }
    let kernel_rtt = state
        .shared
        .stats
        .lock()
        .ebpf
        .handshake_rtt
        .as_ref()
        .map(convert::kernel_rtt);
    let mut out = Partial {
        agent: String::new(),
        group_by,
        limit,
        offset,
        sort: sort.clone(),
        ascending,
        total: flows.len() as u64,
        rtts_us: flows.iter().filter_map(|f| rtt_us(f)).collect(),
        rows: Vec::new(),
        groups: Vec::new(),
        kernel_rtt,
    };
    if group_by == GroupBy::Flow {
        let mut outs: Vec<(Option<f64>, FlowOut, Arc<FlowRecord>)> = Vec::with_capacity(flows.len());
        for f in flows.drain(..) {
            let o = flow_out(&f);
            let key = match &sort {
                Some(field) => Some(sort_key(&o.metrics, field)?),
                None => None,
            };
            outs.push((key, o, f));
        }
        if sort.is_some() {
            // Stable: equal keys keep the store's order.
            outs.sort_by(|a, b| cmp_keys(ascending, a.0, b.0));
        }
        outs.truncate(offset.saturating_add(limit as usize));
        for (pos, (key, o, f)) in outs.into_iter().enumerate() {
            let row = match &projection {
                Some(fields) => convert::project(&f.as_entry(), fields),
                None => super::flows::to_object(o)?,
            };
            out.rows.push(FlowRow {
                key: key.filter(|k| !k.is_nan()),
                first_seen: f.first_seen.0,
                pos,
                row,
            });
        }
        return Ok(out);
    }
    let mut groups: BTreeMap<String, GroupPartial> = BTreeMap::new();
    for f in flows.drain(..) {
        let key = match group_by {
            GroupBy::ClientServer => format!("{} → {}", f.client.ip(), f.server),
            GroupBy::Server => f.server.to_string(),
            GroupBy::NamespacePair => format!("{} → {}", namespace_of(&f.peers.src), namespace_of(&f.peers.dst)),
            GroupBy::Flow => unreachable!("handled above"),
        };
        let g = groups.entry(key.clone()).or_insert_with(|| GroupPartial {
            key,
            name: group_name(&f, group_by),
            flows: 0,
            metrics: TcpMetrics::default(),
            rtts_us: Vec::new(),
            verdicts: [0; 3],
        });
        g.flows += 1;
        g.metrics.merge(&f.metrics);
        g.rtts_us.extend(rtt_us(&f));
        g.verdicts[health::assess_flow(&f).0 as usize] += 1;
    }
    out.groups = groups.into_values().collect();
    Ok(out)
}

/// Every flow of a server (or pair) group has the same ends; the first one names them.
fn group_name(f: &FlowRecord, group_by: GroupBy) -> Option<String> {
    let server = convert::name_of(&f.peers.dst, f.peers.dst_dns.as_deref());
    match group_by {
        GroupBy::Server => server,
        GroupBy::ClientServer => {
            let client = convert::name_of(&f.peers.src, f.peers.src_dns.as_deref());
            (client.is_some() || server.is_some()).then(|| {
                format!(
                    "{} → {}",
                    client.unwrap_or_else(|| f.client.ip().to_string()),
                    server.unwrap_or_else(|| f.server.to_string())
                )
            })
        }
        GroupBy::NamespacePair | GroupBy::Flow => None,
    }
}

fn group_out(g: GroupPartial) -> FlowGroupOut {
    let mut m = g.metrics;
    let pct = health::percentiles_us(g.rtts_us.iter().copied());
    // The group is judged on its summed counters and its median handshake RTT.
    m.initial_rtt_ns = pct.map(|p| p.0 * 1000);
    let (mut verdict, mut reasons) = health::assess(&m, None);
    let worst = [Verdict::Severe, Verdict::Degraded, Verdict::Healthy]
        .into_iter()
        .find(|v| g.verdicts[*v as usize] > 0)
        .unwrap_or(Verdict::Healthy);
    let bad = g.verdicts[Verdict::Degraded as usize] + g.verdicts[Verdict::Severe as usize];
    if bad > 0 {
        reasons.push(format!(
            "{bad} of {} connections are not healthy (worst: {})",
            g.flows,
            worst.name()
        ));
        verdict = verdict.max(Verdict::Degraded.min(worst));
    }
    let mut out = metrics_out(&m);
    out.initial_rtt_us = pct.map(|p| p.0);
    FlowGroupOut {
        key: g.key,
        name: g.name,
        flows: g.flows,
        metrics: out,
        initial_rtt_p50_us: pct.map(|p| p.0),
        initial_rtt_p90_us: pct.map(|p| p.1),
        initial_rtt_p99_us: pct.map(|p| p.2),
        verdict: verdict.name().into(),
        reasons,
    }
}

/// Merges the partials of one or more agents, ranks and pages. With one partial (a local
/// call) the order is the store's, as before; across agents rows without a sort key go by
/// first packet, then agent, then position.
pub fn finish(parts: Vec<Partial>, coverage: tools_schema::Coverage) -> TcpInsightsResult {
    let first = &parts[0];
    let (group_by, limit, offset, sort, ascending) = (
        first.group_by,
        first.limit,
        first.offset,
        first.sort.clone(),
        first.ascending,
    );
    let kernel_rtt = if parts.len() == 1 {
        first.kernel_rtt.clone()
    } else {
        None
    };
    let total = parts.iter().map(|p| p.total).sum();
    let rtts: Vec<u64> = parts.iter().flat_map(|p| p.rtts_us.iter().copied()).collect();
    let pct = health::percentiles_us(rtts.iter().copied());
    let (p50, p90, p99) = (pct.map(|p| p.0), pct.map(|p| p.1), pct.map(|p| p.2));
    let page = |n: usize| -> (usize, usize, Option<String>) {
        let start = offset.min(n);
        let end = (start + limit as usize).min(n);
        (start, end, (end < n).then(|| format!("o{end}")))
    };
    let several = parts.len() > 1;
    if group_by == GroupBy::Flow {
        // Each agent sent its first offset+limit rows; whether more exist is in its total.
        let total_rows: usize = parts.iter().map(|p| p.total as usize).sum();
        let mut rows: Vec<(String, FlowRow)> = parts
            .into_iter()
            .flat_map(|p| {
                let agent = p.agent;
                p.rows.into_iter().map(move |r| (agent.clone(), r))
            })
            .collect();
        rows.sort_by(|(a1, r1), (a2, r2)| {
            let by_key = if sort.is_some() {
                cmp_keys(ascending, r1.key, r2.key)
            } else {
                std::cmp::Ordering::Equal
            };
            let natural = if several {
                (r1.first_seen, a1, r1.pos).cmp(&(r2.first_seen, a2, r2.pos))
            } else {
                r1.pos.cmp(&r2.pos)
            };
            by_key.then(natural)
        });
        let (start, end, _) = page(rows.len());
        let next = (end < total_rows).then(|| format!("o{end}"));
        let items = rows
            .drain(start..end)
            .map(|(agent, mut r)| {
                if several {
                    // Flow ids are each agent's own: say whose.
                    r.row.insert("agent".into(), Value::String(agent));
                }
                r.row
            })
            .collect();
        return TcpInsightsResult {
            group_by,
            flows: Some(items),
            groups: None,
            total_matched: total,
            initial_rtt_p50_us: p50,
            initial_rtt_p90_us: p90,
            initial_rtt_p99_us: p99,
            kernel_handshake_rtt: kernel_rtt,
            next_cursor: next,
            coverage,
        };
    }
    let mut groups: BTreeMap<String, GroupPartial> = BTreeMap::new();
    for p in parts {
        for g in p.groups {
            match groups.get_mut(&g.key) {
                Some(mine) => {
                    mine.flows += g.flows;
                    mine.metrics.merge(&g.metrics);
                    mine.rtts_us.extend(g.rtts_us);
                    for i in 0..3 {
                        mine.verdicts[i] += g.verdicts[i];
                    }
                    if mine.name.is_none() {
                        mine.name = g.name;
                    }
                }
                None => {
                    groups.insert(g.key.clone(), g);
                }
            }
        }
    }
    let mut outs: Vec<FlowGroupOut> = groups.into_values().map(group_out).collect();
    if let Some(field) = &sort {
        // Groups always carry the metric asked for: sort_key failed earlier for unknown ones.
        let mut keyed: Vec<(Option<f64>, FlowGroupOut)> = outs
            .into_iter()
            .map(|o| (sort_key(&o.metrics, field).ok().filter(|k| !k.is_nan()), o))
            .collect();
        keyed.sort_by(|a, b| cmp_keys(ascending, a.0, b.0));
        outs = keyed.into_iter().map(|(_, o)| o).collect();
    }
    let (start, end, next) = page(outs.len());
    let items = outs.drain(start..end).collect();
    TcpInsightsResult {
        group_by,
        flows: None,
        groups: Some(items),
        total_matched: total,
        initial_rtt_p50_us: p50,
        initial_rtt_p90_us: p90,
        initial_rtt_p99_us: p99,
        kernel_handshake_rtt: kernel_rtt,
        next_cursor: next,
        coverage,
    }
}

/// Does the flow have this IP (or `ip:port`) at either end?
pub fn touches(f: &FlowRecord, e: &str) -> bool {
    [f.client, f.server]
        .iter()
        .any(|a| a.to_string() == e || a.ip().to_string() == e.trim_matches(['[', ']']))
}

/// The namespace of an end; `(external)` for addresses outside the cluster or without identities.
fn namespace_of(r: &capture_core::enrich::Resolved) -> &str {
    r.identity
        .as_deref()
        .and_then(|i| i.namespace.as_deref())
        .unwrap_or("(external)")
}
