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
    if state.hub.is_some() {
        return Err(crate::cluster::merge::unsupported("tcp_insights"));
    }
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
        .filter(|f| {
            endpoint.is_none_or(|e| {
                [f.client, f.server]
                    .iter()
                    .any(|a| a.to_string() == e || a.ip().to_string() == e.trim_matches(['[', ']']))
            })
        })
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
    let total = flows.len() as u64;
    let pct = health::rtt_percentiles(flows.iter().map(|f| f.as_ref()));
    let (sort_field, ascending) = match p.sort.as_deref().map(str::trim) {
        None | Some("") => (None, false),
        Some(s) => match s.strip_prefix('+') {
            Some(f) => (Some(f.to_string()), true),
            None => (Some(s.trim_start_matches('-').to_string()), false),
        },
    };
    let order = |keys: &mut Vec<(f64, usize)>| {
        keys.sort_by(|a, b| {
            let (x, y) = (a.0, b.0);
            match (x.is_nan(), y.is_nan()) {
                (true, true) => a.1.cmp(&b.1),
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ => {
                    let o = if ascending { x.total_cmp(&y) } else { y.total_cmp(&x) };
                    o.then(a.1.cmp(&b.1))
                }
            }
        });
    };
    let page = |n: usize| -> (usize, usize, Option<String>) {
        let start = offset.min(n);
        let end = (start + limit as usize).min(n);
        (start, end, (end < n).then(|| format!("o{end}")))
    };
    let coverage = convert::coverage(&state.shared);
    let kernel_rtt = state
        .shared
        .stats
        .lock()
        .ebpf
        .handshake_rtt
        .as_ref()
        .map(convert::kernel_rtt);
    let (p50, p90, p99) = (pct.map(|p| p.0), pct.map(|p| p.1), pct.map(|p| p.2));
    if group_by == GroupBy::Flow {
        let mut outs: Vec<(FlowOut, Arc<FlowRecord>)> = flows.drain(..).map(|f| (flow_out(&f), f)).collect();
        if let Some(field) = &sort_field {
            let mut keys = outs
                .iter()
                .enumerate()
                .map(|(i, o)| Ok((sort_key(&o.0.metrics, field)?, i)))
                .collect::<Result<Vec<_>, ToolError>>()?;
            order(&mut keys);
            let mut slots: Vec<Option<(FlowOut, Arc<FlowRecord>)>> = outs.into_iter().map(Some).collect();
            outs = keys.into_iter().filter_map(|(_, i)| slots[i].take()).collect();
        }
        let (start, end, next) = page(outs.len());
        let items = outs
            .drain(start..end)
            .map(|(out, f)| match &projection {
                Some(fields) => Ok(convert::project(&f.as_entry(), fields)),
                None => super::flows::to_object(out),
            })
            .collect::<Result<Vec<_>, ToolError>>()?;
        return Ok(TcpInsightsResult {
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
        });
    }
    // Groups.
    let mut groups: BTreeMap<String, Vec<Arc<FlowRecord>>> = BTreeMap::new();
    for f in flows.drain(..) {
        let key = match group_by {
            GroupBy::ClientServer => format!("{} → {}", f.client.ip(), f.server),
            GroupBy::Server => f.server.to_string(),
            GroupBy::NamespacePair => format!("{} → {}", namespace_of(&f.peers.src), namespace_of(&f.peers.dst)),
            GroupBy::Flow => unreachable!("handled above"),
        };
        groups.entry(key).or_default().push(f);
    }
    let mut outs: Vec<FlowGroupOut> = groups
        .into_iter()
        .map(|(key, fs)| {
            let mut m = TcpMetrics::default();
            for f in &fs {
                m.merge(&f.metrics);
            }
            let pct = health::rtt_percentiles(fs.iter().map(|f| f.as_ref()));
            // The group is judged on its summed counters and its median handshake RTT.
            m.initial_rtt_ns = pct.map(|p| p.0 * 1000);
            let (mut verdict, mut reasons) = health::assess(&m, None);
            let verdicts: Vec<Verdict> = fs.iter().map(|f| health::assess_flow(f).0).collect();
            let worst = verdicts.iter().copied().max().unwrap_or(Verdict::Healthy);
            let bad = verdicts.iter().filter(|v| **v != Verdict::Healthy).count();
            if bad > 0 {
                reasons.push(format!(
                    "{bad} of {} connections are not healthy (worst: {})",
                    fs.len(),
                    worst.name()
                ));
                verdict = verdict.max(Verdict::Degraded.min(worst));
            }
            let mut out = metrics_out(&m);
            out.initial_rtt_us = pct.map(|p| p.0);
            // Every flow of a server (or pair) group has the same ends; the first one names them.
            let name = fs.first().and_then(|f| {
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
            });
            FlowGroupOut {
                key,
                name,
                flows: fs.len() as u64,
                metrics: out,
                initial_rtt_p50_us: pct.map(|p| p.0),
                initial_rtt_p90_us: pct.map(|p| p.1),
                initial_rtt_p99_us: pct.map(|p| p.2),
                verdict: verdict.name().into(),
                reasons,
            }
        })
        .collect();
    if let Some(field) = &sort_field {
        let mut keys = outs
            .iter()
            .enumerate()
            .map(|(i, o)| Ok((sort_key(&o.metrics, field)?, i)))
            .collect::<Result<Vec<_>, ToolError>>()?;
        order(&mut keys);
        let mut slots: Vec<Option<FlowGroupOut>> = outs.into_iter().map(Some).collect();
        outs = keys.into_iter().filter_map(|(_, i)| slots[i].take()).collect();
    }
    let (start, end, next) = page(outs.len());
    let items = outs.drain(start..end).collect();
    Ok(TcpInsightsResult {
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
    })
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
