//! The hub's side of each tool: what it asks the agents and how it merges their answers.
//!
//! - `list_entries`: each agent returns a page with every entry's key (capture time, local id);
//!   the hub orders them by (time, agent name, local id), so a cursor names a point in that one
//!   order and each agent is asked for what lies after it. `total_matched` is the sum.
//! - `api_stats`, `service_map`: agents return every group or edge before ranking, with whole
//!   latency histograms; the hub adds them (counts, bytes, histograms, verdict counts) and ranks
//!   once, so percentiles are those of all calls, never averages of percentiles.
//! - `get_payload`: ids are `agent/id`; the hub asks that agent.
//! - `capture_status`: counters are summed; each agent's window and drops are in
//!   `coverage.agents`.
//!
//! Entry ids become `agent/id`; `flow_id`s stay the agent's own numbers.

use serde_json::{Map, Value};
use tools_schema::{
    ApiStatsResult, CaptureStatus, Coverage, CoverageDrops, FlowSummaryResult, GetPayloadResult, ListEntriesResult,
    ListFlowsResult, ListWorkloadsResult, Order, ServiceMapResult, TcpInsightsResult, WatchEntriesResult, WorkloadOut,
};

use super::hub::{Hub, Round};
use crate::tools::{ToolError, api_stats, flows, list_entries, service_map, tcp_insights};

fn add_drops(a: &mut CoverageDrops, b: &CoverageDrops) {
    a.decode_errors += b.decode_errors;
    a.reassembly_gap_bytes += b.reassembly_gap_bytes;
    a.flows_evicted_capacity += b.flows_evicted_capacity;
    a.parse_errors += b.parse_errors;
    a.fragments_dropped += b.fragments_dropped;
    a.packets_snapped += b.packets_snapped;
    a.kernel_drops += b.kernel_drops;
    a.ebpf_drops += b.ebpf_drops;
}

/// One coverage for a round: windows joined, counts and drops summed, notes named by agent, and
/// every agent listed; `partial` when one did not answer.
pub fn coverage<T>(round: &Round<T>) -> Coverage {
    let mut c = Coverage {
        complete: true,
        ..Coverage::default()
    };
    for (name, answered, cov) in &round.coverages {
        for src in &cov.sources {
            c.sources.push(format!("{name}: {src}"));
        }
        for n in &cov.notes {
            c.notes.push(format!("agent {name}: {n}"));
        }
        if !answered {
            continue;
        }
        c.from = match (c.from.take(), cov.from.clone()) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        c.to = c.to.take().max(cov.to.clone());
        c.packets += cov.packets;
        c.entries_stored += cov.entries_stored;
        c.entries_evicted += cov.entries_evicted;
        c.evicted_until = c.evicted_until.take().max(cov.evicted_until.clone());
        add_drops(&mut c.drops, &cov.drops);
        c.complete &= cov.complete;
    }
    let missing: Vec<String> = round
        .agents
        .iter()
        .filter(|a| !a.answered)
        .map(|a| format!("{} ({})", a.name, a.error.as_deref().unwrap_or("no answer")))
        .collect();
    if !missing.is_empty() {
        c.partial = true;
        c.complete = false;
        c.notes.insert(
            0,
            format!(
                "PARTIAL: {} of {} agents did not answer, so what they hold is missing: {}",
                missing.len(),
                round.agents.len(),
                missing.join("; ")
            ),
        );
    }
    for (agent, why) in &round.refusals {
        c.notes.push(format!("agent {agent}: {why}"));
    }
    c.agents = round.agents.clone();
    c
}

fn order_of(args: &Map<String, Value>) -> Order {
    match args.get("order").and_then(Value::as_str) {
        Some("asc") => Order::Asc,
        _ => Order::Desc,
    }
}

/// A hub cursor: `<a|d>.<time ns>.<local id>.<agent>`.
fn encode_cursor(order: Order, ts: u64, id: u64, agent: &str) -> String {
    format!("{}.{ts}.{id}.{agent}", if order == Order::Asc { 'a' } else { 'd' })
}

fn decode_cursor(s: &str, order: Order) -> Result<(u64, u64, String), ToolError> {
    let bad = || {
        ToolError(format!(
            "cursor `{s}` is not one this hub issued; pass `next_cursor` back exactly as returned"
        ))
    };
    let mut parts = s.splitn(4, '.');
    let (Some(o), Some(t), Some(i), Some(agent)) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if o != if order == Order::Asc { "a" } else { "d" } {
        return Err(ToolError(format!(
            "cursor `{s}` belongs to a listing in the other order; keep `order` the same across pages"
        )));
    }
    Ok((
        t.parse().map_err(|_| bad())?,
        i.parse().map_err(|_| bad())?,
        agent.to_string(),
    ))
}

/// The local cursor that asks `agent` for what lies after the hub cursor in the merged order
/// (time, agent name, local id).
fn local_cursor(order: Order, (ts, id, at): &(u64, u64, String), agent: &str) -> Option<String> {
    use capture_core::store::Key;
    use capture_core::time::Timestamp;
    let key = |ts: u64, id: u64| Key { ts: Timestamp(ts), id };
    let k = match (order, agent.cmp(at.as_str())) {
        (_, std::cmp::Ordering::Equal) => key(*ts, *id),
        // Ascending: later agents at the same time are still to come.
        (Order::Asc, std::cmp::Ordering::Greater) => {
            if *ts == 0 {
                return None;
            }
            key(ts - 1, u64::MAX)
        }
        (Order::Asc, std::cmp::Ordering::Less) => key(*ts, u64::MAX),
        // Descending: earlier agents at the same time are still to come.
        (Order::Desc, std::cmp::Ordering::Less) => key(ts.saturating_add(1), 0),
        (Order::Desc, std::cmp::Ordering::Greater) => key(*ts, 0),
    };
    Some(list_entries::encode_cursor(order, k))
}

fn prefix_id(m: &mut Map<String, Value>, agent: &str) {
    if let Some(Value::String(id)) = m.get_mut("id") {
        *id = format!("{agent}/{id}");
    }
}

impl Hub {
    pub fn list_entries(&self, args: Map<String, Value>) -> Result<ListEntriesResult, ToolError> {
        let order = order_of(&args);
        let limit = args
            .get("limit")
            .and_then(Value::as_u64)
            .unwrap_or(u64::from(list_entries::DEFAULT_LIMIT)) as usize;
        let after = args
            .get("cursor")
            .and_then(Value::as_str)
            .map(|c| decode_cursor(c, order))
            .transpose()?;
        let args_for = |agent: &str| {
            let mut a = args.clone();
            a.remove("cursor");
            if let Some(c) = after.as_ref().and_then(|c| local_cursor(order, c, agent)) {
                a.insert("cursor".into(), Value::String(c));
            }
            Some(a)
        };
        let round: Round<list_entries::Keyed> = self.block_on(self.fan_out(super::LIST_ENTRIES_KEYED, &args_for))?;
        let mut rows: Vec<(u64, String, u64, Map<String, Value>)> = Vec::new();
        let mut total = 0;
        let mut more = false;
        for (agent, k) in &round.answers {
            total += k.result.total_matched;
            more |= k.result.next_cursor.is_some();
            for (entry, (ts, id)) in k.result.entries.iter().zip(&k.keys) {
                let mut e = entry.clone();
                prefix_id(&mut e, agent);
                rows.push((*ts, agent.clone(), *id, e));
            }
        }
        rows.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
        if order == Order::Desc {
            rows.reverse();
        }
        more |= rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last()
                .map(|(ts, agent, id, _)| encode_cursor(order, *ts, *id, agent))
        } else {
            None
        };
        Ok(ListEntriesResult {
            entries: rows.into_iter().map(|r| r.3).collect(),
            next_cursor,
            total_matched: total,
            coverage: coverage(&round),
        })
    }

    pub fn get_payload(&self, mut args: Map<String, Value>) -> Result<GetPayloadResult, ToolError> {
        let id = match args.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(ToolError(
                    "get_payload: `id` is required: an entry id from list_entries".into(),
                ));
            }
        };
        let Some((agent, local)) = id.rsplit_once('/') else {
            return Err(ToolError(format!(
                "get_payload: `{id}` is not a hub entry id; ids from this hub look like `node-name/123` (list_entries shows them)"
            )));
        };
        args.insert("id".into(), Value::String(local.to_string()));
        let args_for = |a: &str| (a == agent).then(|| args.clone());
        let round: Round<GetPayloadResult> = self.block_on(self.fan_out("get_payload", &args_for))?;
        let cov = coverage(&round);
        match round.answers.into_iter().find(|(a, _)| a == agent) {
            Some((_, mut r)) => {
                r.id = format!("{agent}/{}", r.id);
                Ok(r)
            }
            None => {
                let why = cov
                    .agents
                    .iter()
                    .find(|a| a.name == agent)
                    .map_or("no agent of that name was found".to_string(), |a| {
                        a.error.clone().unwrap_or_else(|| "it did not answer".into())
                    });
                Err(ToolError(format!(
                    "get_payload: agent `{agent}` cannot be asked for entry {local}: {why}"
                )))
            }
        }
    }

    pub fn capture_status(&self, args: Map<String, Value>) -> Result<CaptureStatus, ToolError> {
        let round: Round<Value> = self.ask_all("capture_status", &args)?;
        let mut merged = Value::Null;
        for (agent, v) in &round.answers {
            let mut v = v.clone();
            if let Some(Value::Array(sources)) = v.get_mut("sources") {
                for s in sources {
                    if let Some(Value::String(n)) = s.get_mut("name") {
                        *n = format!("{agent}: {n}");
                    }
                }
            }
            sum_into(&mut merged, v);
        }
        let mut status: CaptureStatus = if merged.is_null() {
            CaptureStatus::default()
        } else {
            serde_json::from_value(merged).map_err(|e| ToolError(format!("capture_status: merging the agents: {e}")))?
        };
        status.coverage = coverage(&round);
        status.coverage.notes.push(
            "cluster: counters are summed over the agents that answered; each agent's window and drops are in coverage.agents".into(),
        );
        Ok(status)
    }

    pub fn api_stats(&self, args: Map<String, Value>) -> Result<ApiStatsResult, ToolError> {
        let round: Round<api_stats::Partial> = self.ask_all(super::API_STATS_PARTIAL, &args)?;
        let cov = coverage(&round);
        let all = round
            .answers
            .into_iter()
            .map(|(agent, mut p)| {
                p.prefix_examples(&agent);
                p
            })
            .reduce(|mut a, p| {
                a.merge(p);
                a
            })
            .unwrap_or_else(|| api_stats::Partial {
                limit: 20,
                ..Default::default()
            });
        Ok(api_stats::finish(all, cov))
    }

    pub fn tcp_insights(&self, args: Map<String, Value>) -> Result<TcpInsightsResult, ToolError> {
        let round: Round<tcp_insights::Partial> = self.ask_all(super::TCP_INSIGHTS_PARTIAL, &args)?;
        let mut cov = coverage(&round);
        let parts: Vec<tcp_insights::Partial> = round
            .answers
            .into_iter()
            .map(|(agent, mut p)| {
                p.agent = agent;
                p
            })
            .collect();
        if parts.is_empty() {
            return Ok(TcpInsightsResult {
                group_by: serde_json::from_value(args.get("group_by").cloned().unwrap_or(Value::Null))
                    .unwrap_or_default(),
                coverage: cov,
                ..Default::default()
            });
        }
        if parts.len() > 1 && parts.iter().any(|p| p.kernel_rtt.is_some()) {
            cov.notes
                .push("the kernel's handshake RTT percentiles are per agent: see each agent's capture_status".into());
        }
        Ok(tcp_insights::finish(parts, cov))
    }

    pub fn list_flows(&self, args: Map<String, Value>) -> Result<ListFlowsResult, ToolError> {
        let round: Round<flows::ListPartial> = self.ask_all(super::LIST_FLOWS_PARTIAL, &args)?;
        let cov = coverage(&round);
        let parts: Vec<flows::ListPartial> = round
            .answers
            .into_iter()
            .map(|(agent, mut p)| {
                p.agent = agent;
                p
            })
            .collect();
        if parts.is_empty() {
            return Ok(ListFlowsResult {
                flows: Vec::new(),
                next_cursor: None,
                total_matched: 0,
                coverage: cov,
            });
        }
        Ok(flows::finish_list(parts, cov))
    }

    pub fn flow_summary(&self, args: Map<String, Value>) -> Result<FlowSummaryResult, ToolError> {
        let round: Round<flows::SummaryPartial> = self.ask_all(super::FLOW_SUMMARY_PARTIAL, &args)?;
        let cov = coverage(&round);
        let all = round
            .answers
            .into_iter()
            .map(|(_, p)| p)
            .reduce(|mut a, p| {
                a.merge(p);
                a
            })
            .unwrap_or_else(|| flows::SummaryPartial {
                top: 10,
                ..Default::default()
            });
        Ok(flows::finish_summary(all, cov))
    }

    /// Waits on every agent at once; the cursor holds each agent's own (`h:NAME=wN,…`).
    pub fn watch_entries(&self, args: Map<String, Value>) -> Result<WatchEntriesResult, ToolError> {
        let timeout_ms = args
            .get("timeout_ms")
            .and_then(Value::as_u64)
            .unwrap_or(10_000)
            .min(30_000);
        let mut cursors: std::collections::BTreeMap<String, String> = Default::default();
        if let Some(c) = args.get("cursor").and_then(Value::as_str) {
            let bad = || {
                ToolError(format!(
                    "cursor `{c}` is not one this hub's watch_entries issued; pass `next_cursor` back unchanged, or omit it to start now"
                ))
            };
            let list = c.strip_prefix("h:").ok_or_else(bad)?;
            for part in list.split(',').filter(|p| !p.is_empty()) {
                let (agent, local) = part.split_once('=').ok_or_else(bad)?;
                cursors.insert(agent.to_string(), local.to_string());
            }
        }
        let args_for = |agent: &str| {
            let mut a = args.clone();
            a.remove("cursor");
            if let Some(c) = cursors.get(agent) {
                a.insert("cursor".into(), Value::String(c.clone()));
            }
            Some(a)
        };
        let round: Round<WatchEntriesResult> = self.block_on(self.fan_out_within(
            "watch_entries",
            &args_for,
            std::time::Duration::from_millis(timeout_ms),
        ))?;
        let mut out = WatchEntriesResult {
            entries: Vec::new(),
            next_cursor: String::new(),
            more: false,
            timed_out: true,
            waited_ms: 0,
            coverage: coverage(&round),
        };
        for (agent, r) in round.answers {
            for mut e in r.entries {
                prefix_id(&mut e, &agent);
                out.entries.push(e);
            }
            out.more |= r.more;
            out.waited_ms = out.waited_ms.max(r.waited_ms);
            cursors.insert(agent, r.next_cursor);
        }
        out.timed_out = out.entries.is_empty();
        out.next_cursor = format!(
            "h:{}",
            cursors
                .iter()
                .map(|(a, c)| format!("{a}={c}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        Ok(out)
    }

    /// Workloads come from the cluster's API (every agent lists the same); their pods' traffic
    /// counts are summed over the agents.
    pub fn list_workloads(&self, args: Map<String, Value>) -> Result<ListWorkloadsResult, ToolError> {
        let limit = args.get("limit").and_then(Value::as_u64).unwrap_or(50) as usize;
        let args_for = |_: &str| {
            let mut a = args.clone();
            a.insert("limit".into(), Value::from(crate::tools::list_workloads::MAX_LIMIT));
            Some(a)
        };
        let round: Round<ListWorkloadsResult> = self.block_on(self.fan_out("list_workloads", &args_for))?;
        let mut out = ListWorkloadsResult {
            coverage: coverage(&round),
            ..Default::default()
        };
        let mut by_key: std::collections::BTreeMap<(String, String, String), WorkloadOut> = Default::default();
        for (_, r) in round.answers {
            if out.identity_source.is_empty() {
                out.identity_source = r.identity_source;
            }
            out.identity_stale |= r.identity_stale;
            for w in r.workloads {
                match by_key.get_mut(&(w.namespace.clone(), w.kind.clone(), w.name.clone())) {
                    Some(mine) => {
                        mine.traffic_seen |= w.traffic_seen;
                        for s in w.services {
                            if !mine.services.contains(&s) {
                                mine.services.push(s);
                            }
                        }
                        for pod in w.pods {
                            match mine.pods.iter_mut().find(|p| p.name == pod.name) {
                                Some(p) => {
                                    p.entries_as_source += pod.entries_as_source;
                                    p.entries_as_destination += pod.entries_as_destination;
                                    p.connections += pod.connections;
                                }
                                None => mine.pods.push(pod),
                            }
                        }
                    }
                    None => {
                        by_key.insert((w.namespace.clone(), w.kind.clone(), w.name.clone()), w);
                    }
                }
            }
        }
        out.total_matched = by_key.len() as u64;
        out.workloads = by_key.into_values().take(limit).collect();
        for w in &mut out.workloads {
            w.services.sort();
        }
        Ok(out)
    }

    pub fn service_map(&self, args: Map<String, Value>) -> Result<ServiceMapResult, ToolError> {
        let round: Round<service_map::Partial> = self.ask_all(super::SERVICE_MAP_PARTIAL, &args)?;
        let cov = coverage(&round);
        let all = round
            .answers
            .into_iter()
            .map(|(_, p)| p)
            .reduce(|mut a, p| {
                a.merge(p);
                a
            })
            .unwrap_or_else(|| service_map::Partial {
                limit: 100,
                ..Default::default()
            });
        Ok(service_map::finish(all, cov))
    }
}

/// Adds `v` into `acc`: numbers summed, objects field by field, arrays joined, anything else
/// kept from the first answer.
fn sum_into(acc: &mut Value, v: Value) {
    match (acc, v) {
        (acc @ Value::Null, v) => *acc = v,
        (Value::Number(a), Value::Number(b)) => {
            if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
                *a = (x.saturating_add(y)).into();
            } else if let (Some(x), Some(y)) = (a.as_f64(), b.as_f64())
                && let Some(n) = serde_json::Number::from_f64(x + y)
            {
                *a = n;
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                sum_into(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() < 1000 => a.extend(b),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_cursors_split_the_merged_order_per_agent() {
        // Merged ascending order (time, agent, id); the cursor is node-b's entry 7 at t=100.
        let c = decode_cursor(&encode_cursor(Order::Asc, 100, 7, "node-b.x"), Order::Asc).unwrap();
        assert_eq!(c, (100, 7, "node-b.x".to_string()));
        // node-a sorts before node-b: only its entries after t=100 are left.
        assert_eq!(
            local_cursor(Order::Asc, &c, "node-a").unwrap(),
            format!("a.100.{}", u64::MAX)
        );
        // node-c sorts after: its entries at t=100 are still to come.
        assert_eq!(
            local_cursor(Order::Asc, &c, "node-c").unwrap(),
            format!("a.99.{}", u64::MAX)
        );
        assert_eq!(local_cursor(Order::Asc, &c, "node-b.x").unwrap(), "a.100.7");
        let d = decode_cursor(&encode_cursor(Order::Desc, 100, 7, "node-b"), Order::Desc).unwrap();
        assert_eq!(local_cursor(Order::Desc, &d, "node-a").unwrap(), "d.101.0");
        assert_eq!(local_cursor(Order::Desc, &d, "node-c").unwrap(), "d.100.0");
        assert!(decode_cursor("a.1.2", Order::Asc).is_err());
        assert!(
            decode_cursor("d.1.2.x", Order::Asc)
                .unwrap_err()
                .0
                .contains("other order")
        );
    }

    #[test]
    fn counters_sum_and_text_keeps_the_first() {
        let mut acc = Value::Null;
        sum_into(
            &mut acc,
            serde_json::json!({"packets": 2, "rate": 1.5, "name": "a", "list": [1], "o": {"n": 1}}),
        );
        sum_into(
            &mut acc,
            serde_json::json!({"packets": 3, "rate": 1.0, "name": "b", "list": [2], "o": {"n": 4, "m": 1}}),
        );
        assert_eq!(
            acc,
            serde_json::json!({"packets": 5, "rate": 2.5, "name": "a", "list": [1, 2], "o": {"n": 5, "m": 1}})
        );
    }
}
