//! `api_stats`: calls grouped by endpoint, status, method, protocol or server, with rate, error
//! rate, latency percentiles and bytes. One pass over the store; groups are capped
//! ([`MAX_GROUPS`]) and calls beyond the cap go to `others`.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;

use capture_core::endpoint;
use capture_core::entry::{Detail, Entry};
use capture_core::store::Order;
use capture_core::time::Timestamp;
use hdrhistogram::Histogram;
use serde_json::{Map, Value};
use tools_schema::{ApiGroup, ApiGroupBy, ApiStatsParams, ApiStatsResult, LatencyMs, StatusCount};

use super::work::Work;
use super::{ToolError, err, parse_args};
use crate::convert;
use crate::state::AppState;

pub const DESCRIPTION: &str = "Request rate, error rate, latency p50/p90/p99 and bytes per endpoint, \
status, method, protocol, server, the responder's workload, service or pod (`pod` tells a rollout's old and new pods apart), or the caller's workload (`client`: who calls), busiest first, in one call: \"which endpoints fail or are slow?\". Endpoints \
are normalised (`GET /orders/{id}`; gRPC `pkg.Service/Method`; Redis command; Kafka `API topic`; DNS query \
type, each prefixed with its protocol: `redis GET`, `kafka PRODUCE orders`, `dns AAAA`). Errors are HTTP 5xx, gRPC non-OK, DNS non-NOERROR, Redis error replies, Kafka error codes, AMQP reply codes \
≥ 300 and calls without a response. `filter` (KFL) narrows the calls; `since`/`until` the time window. Each \
group names an example entry id for get_payload.";

const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 200;
/// Distinct groups tracked; calls of further groups are summed in `others`.
pub const MAX_GROUPS: usize = 10_000;
/// Distinct statuses tracked per group.
const MAX_STATUSES: usize = 32;

/// One group's sums: kept whole (every status up to the cap, the latency histogram) so that
/// the groups of several agents merge exactly.
#[derive(Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Acc {
    count: u64,
    errors: u64,
    req_bytes: u64,
    resp_bytes: u64,
    protocols: Vec<String>,
    statuses: BTreeMap<String, u64>,
    #[serde(with = "histogram_serde")]
    latency: Option<Histogram<u64>>,
    /// (is error, latency µs, id) of the example.
    example: Option<(bool, u64, String)>,
}

/// Histograms travel between agents and the hub in HdrHistogram's V2 format, base64.
pub mod histogram_serde {
    use base64::Engine as _;
    use hdrhistogram::Histogram;
    use hdrhistogram::serialization::{Deserializer as HDeserializer, Serializer as _, V2Serializer};
    use serde::de::Error as _;
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &Option<Histogram<u64>>, s: S) -> Result<S::Ok, S::Error> {
        match h {
            None => s.serialize_none(),
            Some(h) => {
                let mut buf = Vec::new();
                V2Serializer::new()
                    .serialize(h, &mut buf)
                    .map_err(|e| S::Error::custom(format!("histogram: {e:?}")))?;
                s.serialize_some(&base64::engine::general_purpose::STANDARD.encode(buf))
            }
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Histogram<u64>>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| D::Error::custom(format!("histogram: {e}")))?;
        HDeserializer::new()
            .deserialize(&mut &bytes[..])
            .map(Some)
            .map_err(|e| D::Error::custom(format!("histogram: {e:?}")))
    }
}

impl Acc {
    fn add(&mut self, e: &Entry, status: &str, error: bool) {
        self.count += 1;
        self.errors += u64::from(error);
        let (rq, rs) = endpoint::payload_bytes(e);
        self.req_bytes += rq;
        self.resp_bytes += rs;
        let p = e.protocol.name();
        if !self.protocols.iter().any(|x| x == p) {
            self.protocols.push(p.to_string());
        }
        if let Some(n) = self.statuses.get_mut(status) {
            *n += 1;
        } else if self.statuses.len() < MAX_STATUSES {
            self.statuses.insert(status.to_string(), 1);
        } else {
            *self.statuses.entry("(other statuses)".to_string()).or_default() += 1;
        }
        if let Some(us) = e.elapsed_us {
            record_latency(&mut self.latency, us);
        }
        let candidate = (error, e.elapsed_us.unwrap_or(0));
        if self
            .example
            .as_ref()
            .is_none_or(|(ex_err, ex_us, _)| candidate > (*ex_err, *ex_us))
        {
            self.example = Some((candidate.0, candidate.1, e.id.to_string()));
        }
    }

    /// Names the example entry as the hub does: `agent/id`.
    pub fn prefix_example(&mut self, agent: &str) {
        if let Some((_, _, id)) = &mut self.example {
            *id = format!("{agent}/{id}");
        }
    }

    pub fn merge(&mut self, o: &Acc) {
        self.count += o.count;
        self.errors += o.errors;
        self.req_bytes += o.req_bytes;
        self.resp_bytes += o.resp_bytes;
        for p in &o.protocols {
            if !self.protocols.contains(p) {
                self.protocols.push(p.clone());
            }
        }
        for (s, n) in &o.statuses {
            if self.statuses.contains_key(s) || self.statuses.len() < MAX_STATUSES {
                *self.statuses.entry(s.clone()).or_default() += n;
            } else {
                *self.statuses.entry("(other statuses)".to_string()).or_default() += n;
            }
        }
        if let Some(h) = &o.latency {
            match &mut self.latency {
                Some(mine) => {
                    let _ = mine.add(h);
                }
                None => self.latency = Some(h.clone()),
            }
        }
        if let Some(c) = &o.example
            && self.example.as_ref().is_none_or(|(e, us, _)| (c.0, c.1) > (*e, *us))
        {
            self.example = Some(c.clone());
        }
    }

    fn out(&self, key: String, seconds: f64) -> ApiGroup {
        let mut top: Vec<(&String, &u64)> = self.statuses.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        ApiGroup {
            key,
            protocols: self.protocols.clone(),
            count: self.count,
            rate_per_s: self.count as f64 / seconds,
            errors: self.errors,
            error_rate: if self.count == 0 {
                0.0
            } else {
                self.errors as f64 / self.count as f64
            },
            latency_ms: latency_ms(&self.latency),
            request_bytes: self.req_bytes,
            response_bytes: self.resp_bytes,
            top_statuses: top
                .into_iter()
                .take(5)
                .map(|(s, n)| StatusCount {
                    status: s.clone(),
                    count: *n,
                })
                .collect(),
            example_entry_id: self.example.as_ref().map(|(_, _, id)| id.clone()),
        }
    }
}

/// Adds one call's latency (µs) to a lazily made histogram (1 µs – 1 h, 2 significant digits).
pub fn record_latency(h: &mut Option<Histogram<u64>>, us: u64) {
    let h = h.get_or_insert_with(|| Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("valid bounds"));
    let _ = h.record(us.clamp(1, 3_600_000_000));
}

/// p50/p90/p99/max in milliseconds; `None` without samples.
pub fn latency_ms(h: &Option<Histogram<u64>>) -> Option<LatencyMs> {
    let h = h.as_ref().filter(|h| !h.is_empty())?;
    let ms = |us: u64| us as f64 / 1000.0;
    Some(LatencyMs {
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p99: ms(h.value_at_quantile(0.99)),
        max: ms(h.max()),
        samples: h.len(),
    })
}

fn method_key(e: &Entry) -> String {
    match &e.detail {
        Detail::Http(_) | Detail::Http2(_) => e.http_method().unwrap_or("-").to_string(),
        Detail::Redis(r) => format!("redis {}", r.command.as_deref().unwrap_or("(push)")),
        Detail::Kafka(k) => format!("kafka {}", k.api_name().unwrap_or("(response without request)")),
        Detail::Dns(d) => format!(
            "dns {}",
            d.qtype()
                .map_or_else(|| "-".to_string(), capture_core::dissect::dns::parse::type_text)
        ),
        Detail::Amqp(a) => format!("amqp {}", a.methods.first().map_or("-", |m| &**m)),
        Detail::Tls(t) => format!("tls {}", t.version_name().unwrap_or("-")),
        Detail::Flow(f) => f.transport.name().to_string(),
    }
}

fn server_key(e: &Entry) -> String {
    match e.http_host() {
        Some(h) if !h.is_empty() => h.to_string(),
        _ => e.dst.to_string(),
    }
}

/// Which end of a call a group key names.
#[derive(Clone, Copy)]
enum Side {
    /// The requester.
    Src,
    /// The responder.
    Dst,
}

/// `namespace/name` of one end's workload, service or pod; its address when it has none (the
/// responder's IP:port, the requester's IP).
fn identity_key(e: &Entry, side: Side, name: impl Fn(&capture_core::enrich::Identity) -> Option<&str>) -> String {
    let (peer, addr) = match side {
        Side::Src => (&e.peers.src, e.src),
        Side::Dst => (&e.peers.dst, e.dst),
    };
    match peer
        .identity
        .as_deref()
        .and_then(|i| Some((i.namespace.as_deref(), name(i)?)))
    {
        Some((Some(ns), n)) => format!("{ns}/{n}"),
        Some((None, n)) => n.to_string(),
        // A requester's port is ephemeral: its IP alone keeps one group per caller.
        None => match side {
            Side::Src => addr.ip().to_string(),
            Side::Dst => addr.to_string(),
        },
    }
}

pub fn run(state: &AppState, args: Map<String, Value>) -> Result<ApiStatsResult, ToolError> {
    run_with(state, args, &Work::none())
}

pub fn run_with(state: &AppState, args: Map<String, Value>, work: &Work<'_>) -> Result<ApiStatsResult, ToolError> {
    if let Some(hub) = &state.hub {
        return hub.api_stats(args);
    }
    let partial = collect(state, args, work)?;
    let coverage = convert::coverage(&state.shared);
    Ok(finish(partial, coverage))
}

/// Every group's sums before ranking: what agents send a hub, which merges them
/// ([`Partial::merge`]) and finishes them as one.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Partial {
    pub group_by: ApiGroupBy,
    pub limit: u32,
    pub groups: HashMap<String, Acc>,
    pub overflow: Acc,
    pub overflow_groups: u64,
    pub total: Acc,
    /// Capture time (ns) of the first and last call counted.
    pub first: Option<u64>,
    pub last: Option<u64>,
}

impl Partial {
    /// Adds another agent's sums (its example ids already prefixed).
    pub fn merge(&mut self, o: Partial) {
        for (k, acc) in o.groups {
            if let Some(mine) = self.groups.get_mut(&k) {
                mine.merge(&acc);
            } else if self.groups.len() < MAX_GROUPS {
                self.groups.insert(k, acc);
            } else {
                self.overflow_groups += 1;
                self.overflow.merge(&acc);
            }
        }
        self.overflow.merge(&o.overflow);
        self.overflow_groups += o.overflow_groups;
        self.total.merge(&o.total);
        self.first = match (self.first, o.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = self.last.max(o.last);
    }

    pub fn prefix_examples(&mut self, agent: &str) {
        for acc in self.groups.values_mut() {
            acc.prefix_example(agent);
        }
        self.overflow.prefix_example(agent);
        self.total.prefix_example(agent);
    }
}

/// Ranks the groups and computes rates and percentiles.
pub fn finish(p: Partial, mut coverage: tools_schema::Coverage) -> ApiStatsResult {
    let Partial {
        group_by,
        limit,
        groups,
        mut overflow,
        overflow_groups,
        total,
        first,
        last,
    } = p;
    let seconds = match (first, last) {
        (Some(f), Some(l)) => (Timestamp(l).micros_since(Timestamp(f)) as f64 / 1e6).max(1.0),
        _ => 1.0,
    };
    let groups_total = groups.len() as u64 + overflow_groups;
    let mut sorted: Vec<(String, Acc)> = groups.into_iter().collect();
    sorted.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
    let rest = sorted.split_off(sorted.len().min(limit as usize));
    for (_, acc) in &rest {
        overflow.merge(acc);
    }
    if overflow_groups > 0 {
        coverage.notes.push(format!(
            "more than {MAX_GROUPS} distinct groups: calls of the others are summed in `others` only"
        ));
    }
    ApiStatsResult {
        group_by,
        groups: sorted.into_iter().map(|(k, acc)| acc.out(k, seconds)).collect(),
        others: (overflow.count > 0).then(|| overflow.out("(others)".to_string(), seconds)),
        total: total.out("(all)".to_string(), seconds),
        groups_total,
        window_from: first.map(|t| Timestamp(t).to_rfc3339()),
        window_to: last.map(|t| Timestamp(t).to_rfc3339()),
        window_seconds: seconds,
        coverage,
    }
}

/// One pass over the store: every group's sums.
pub fn collect(state: &AppState, args: Map<String, Value>, work: &Work<'_>) -> Result<Partial, ToolError> {
    let p: ApiStatsParams = parse_args("api_stats", args)?;
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return err(format!("`limit` must be between 1 and {MAX_LIMIT} (got {limit})"));
    }
    let group_by = p.group_by.unwrap_or_default();
    let store = &state.shared.store;
    let sel = super::filter::Selection::new(state, p.filter.as_deref(), p.since.as_deref(), p.until.as_deref())?;

    let mut groups: HashMap<String, Acc> = HashMap::new();
    let mut overflow = Acc::default();
    let mut overflow_groups = 0u64;
    let mut total = Acc::default();
    let (mut first, mut last): (Option<Timestamp>, Option<Timestamp>) = (None, None);
    let in_store = store.len() as u64;
    let mut scanned = 0u64;
    store.scan(Order::Asc, None, &mut |e| {
        scanned += 1;
        if work.tick(scanned, in_store).is_break() {
            return ControlFlow::Break(());
        }
        let keep = sel.matches(e);
        if !keep {
            return ControlFlow::Continue(());
        }
        first = first.or(Some(e.ts));
        last = Some(e.ts);
        let o = endpoint::outcome(e);
        let key = match group_by {
            ApiGroupBy::Endpoint => endpoint::endpoint(e),
            ApiGroupBy::Status => o.status.to_string(),
            ApiGroupBy::Method => method_key(e),
            ApiGroupBy::Protocol => e.protocol.name().to_string(),
            ApiGroupBy::Server => server_key(e),
            ApiGroupBy::Workload => identity_key(e, Side::Dst, |i| i.workload.as_ref().map(|w| &*w.1)),
            ApiGroupBy::Service => identity_key(e, Side::Dst, |i| i.service()),
            ApiGroupBy::Pod => identity_key(e, Side::Dst, |i| i.pod.as_deref()),
            ApiGroupBy::Client => identity_key(e, Side::Src, |i| i.workload.as_ref().map(|w| &*w.1)),
        };
        total.add(e, &o.status, o.error);
        let room = groups.len() < MAX_GROUPS;
        match groups.get_mut(&key) {
            Some(acc) => acc.add(e, &o.status, o.error),
            None if room => {
                let mut acc = Acc::default();
                acc.add(e, &o.status, o.error);
                groups.insert(key, acc);
            }
            None => {
                overflow_groups += 1;
                overflow.add(e, &o.status, o.error);
            }
        }
        ControlFlow::Continue(())
    });
    if work.is_cancelled() {
        return Err(work.stopped_error("api_stats"));
    }
    Ok(Partial {
        group_by,
        limit,
        groups,
        overflow,
        overflow_groups,
        total,
        first: first.map(|t| t.0),
        last: last.map(|t| t.0),
    })
}
