//! Engine values → tools-schema types. The only place where the two meet.

use std::borrow::Cow;

use capture_core::engine::Shared;
use capture_core::entry::Entry;
use capture_core::fields::{FieldDef, Value};
use capture_core::stats::SourceInfo;
use serde_json::{Map, Value as Json};
use tools_schema::{Coverage, CoverageDrops, Endpoint, EntrySummary, SourceSummary};

pub fn ts(t: Option<capture_core::time::Timestamp>) -> Option<String> {
    t.map(|t| t.to_rfc3339())
}

pub fn value_to_json(v: Value<'_>) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(b),
        Value::Int(i) => Json::from(i),
        Value::Float(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
        Value::Str(Cow::Borrowed(s)) => Json::String(s.to_string()),
        Value::Str(Cow::Owned(s)) => Json::String(s),
        Value::List(items) => Json::Array(items.into_iter().map(value_to_json).collect()),
        Value::Map(kv) => Json::Object(
            kv.into_iter()
                .map(|(k, v)| (k.into_owned(), value_to_json(v)))
                .collect(),
        ),
    }
}

/// A flat object with exactly the requested fields (under the names as requested).
pub fn project(e: &Entry, fields: &[(String, &'static FieldDef)]) -> Map<String, Json> {
    fields
        .iter()
        .map(|(name, f)| (name.clone(), value_to_json((f.get)(e))))
        .collect()
}

/// The fields listed for each protocol family (shared/CONTRACT.md's table), in that order.
const LISTING_FIELDS: &[(&str, &[&str])] = &[
    (
        "http",
        &[
            "method",
            "host",
            "path",
            "status",
            "request_body_size",
            "response_body_size",
        ],
    ),
    (
        "http/2",
        &[
            "method",
            "host",
            "path",
            "status",
            "request_body_size",
            "response_body_size",
            "h2_stream_id",
        ],
    ),
    (
        "grpc",
        &[
            "method",
            "host",
            "path",
            "status",
            "request_body_size",
            "response_body_size",
            "h2_stream_id",
            "grpc_service",
            "grpc_method",
            "grpc_status",
            "grpc_message",
            "grpc_request_messages",
            "grpc_response_messages",
        ],
    ),
    ("redis", &["redis_command", "redis_key", "redis_reply_type"]),
    (
        "kafka",
        &[
            "kafka_api_key",
            "kafka_api_key_name",
            "kafka_api_version",
            "kafka_correlation_id",
            "kafka_client_id",
            "kafka_topics",
        ],
    ),
    (
        "dns",
        &[
            "dns_id",
            "dns_qname",
            "dns_qtype",
            "dns_rcode",
            "dns_answer_count",
            "dns_questions",
        ],
    ),
    (
        "amqp",
        &[
            "amqp_channel",
            "amqp_methods",
            "amqp_exchange",
            "amqp_routing_key",
            "amqp_queue",
            "amqp_reply_code",
        ],
    ),
    (
        "tls",
        &[
            "tls_version",
            "tls_sni",
            "tls_alpn",
            "tls_cipher",
            "tls_ja4",
            "tls_resumed",
            "tls_alerts",
        ],
    ),
];

fn listing_fields(protocol: &str) -> &'static [&'static str] {
    let family = match protocol {
        "http/1.0" | "http/1.1" => "http",
        other => other,
    };
    LISTING_FIELDS
        .iter()
        .find(|(p, _)| *p == family)
        .map_or(&[], |(_, f)| f)
}

/// Connection fields listed with every entry decrypted from a TLS connection.
const TLS_CONN_LISTING: &[&str] = &["tls_version", "tls_sni", "tls_alpn", "tls_cipher"];

pub fn summary(e: &Entry) -> EntrySummary {
    let tls_conn = if e.tls_conn.is_some() { TLS_CONN_LISTING } else { &[] };
    let protocol_fields = listing_fields(e.protocol.name())
        .iter()
        .chain(tls_conn)
        .filter_map(|name| capture_core::fields::lookup(name).map(|f| (name.to_string(), value_to_json((f.get)(e)))))
        .collect();
    EntrySummary {
        id: e.id.to_string(),
        timestamp: e.ts.to_rfc3339(),
        protocol: e.protocol.name().into(),
        transport: e.transport.name().into(),
        src: endpoint(e.src, &e.peers.src, e.peers.src_dns.as_deref()),
        dst: endpoint(e.dst, &e.peers.dst, e.peers.dst_dns.as_deref()),
        flow_id: e.flow_id,
        elapsed_ms: e.elapsed_us.map(|us| us as f64 / 1000.0),
        summary: e.summary(),
        tls: e.tls,
        decrypted: e.decrypted,
        protocol_fields,
    }
}

/// The handshake fields a decrypted entry carries.
pub fn tls_conn(c: &capture_core::dissect::tls::TlsConn) -> tools_schema::TlsConnOut {
    let s = |v: &Option<Box<str>>| v.as_deref().map(str::to_string);
    tools_schema::TlsConnOut {
        version: c.version_name().map(str::to_string),
        sni: s(&c.sni),
        alpn: s(&c.alpn_selected),
        cipher: c.cipher_name().map(|c| c.into_owned()),
        ja3: s(&c.ja3),
        ja4: s(&c.ja4),
        ja3s: s(&c.ja3s),
    }
}

/// The kernel's view of a connection (eBPF), for flow results.
pub fn kernel_tcp(k: &capture_core::kernel::KernelTcp) -> tools_schema::KernelTcpOut {
    tools_schema::KernelTcpOut {
        handshake_rtt_us: k.handshake_rtt_us,
        retransmitted_segments: k.retransmitted_segments,
        retransmitted_skbs: k.retransmitted_skbs,
        srtt_us: k.srtt_us,
        rttvar_us: k.rttvar_us,
        cwnd: k.cwnd,
        cwnd_min: k.cwnd_min,
        cwnd_max: k.cwnd_max,
        samples: k.samples,
        process: k
            .pid
            .map(|pid| format!("{} (pid {pid})", k.comm.as_deref().unwrap_or("?"))),
    }
}

/// Kernel-measured handshake RTT percentiles.
pub fn kernel_rtt(h: &capture_core::kernel::HandshakeSummary) -> tools_schema::KernelRtt {
    tools_schema::KernelRtt {
        count: h.count,
        p50_us: h.p50_us,
        p90_us: h.p90_us,
        p99_us: h.p99_us,
        max_us: h.max_us,
    }
}

pub fn source(s: &SourceInfo) -> SourceSummary {
    SourceSummary {
        kind: s.kind.clone(),
        name: s.name.clone(),
        packets: s.packets,
        bytes: s.bytes,
        from: ts(s.first_ts),
        to: ts(s.last_ts),
        link_types: s.link_types.clone(),
        warning: s.warning.clone(),
        bpf: s.bpf.as_ref().map(|b| tools_schema::SourceBpf {
            expression: b.expression.clone(),
            applied: if b.in_kernel { "kernel" } else { "wirelens" }.to_string(),
            filtered_out: b.filtered_out,
        }),
    }
}

/// What every result says about the data it is based on.
pub fn coverage(shared: &Shared) -> Coverage {
    let stats = shared.stats.lock().clone();
    let store = shared.store.stats();
    let sources = shared.sources.lock().clone();
    let drops = CoverageDrops {
        decode_errors: stats.decode_errors_total(),
        reassembly_gap_bytes: stats.reassembly.gap_bytes,
        flows_evicted_capacity: stats.flows_evicted_capacity,
        parse_errors: stats.dissect.http_parse_errors + stats.dissect.http_header_too_large,
        fragments_dropped: stats.frag.timed_out + stats.frag.dropped_cap,
        packets_snapped: stats.packets_snapped,
        kernel_drops: stats.kernel_drops,
        ebpf_drops: stats.ebpf.ring_full
            + stats.ebpf.malformed
            + stats.ebpf.connections_dropped
            + stats.ebpf.tls.connections_dropped
            + stats.ebpf.tls.gap_bytes,
    };
    let mut notes = Vec::new();
    if sources.is_empty() {
        notes.push("no source was read: start wirelens with --pcap FILE, --demo or --interface IFACE".to_string());
    }
    if store.evicted > 0 {
        notes.push(format!(
            "{} entries were evicted by the store budget ({} bytes); entries up to {} are incomplete",
            store.evicted,
            store.budget_bytes,
            ts(store.evicted_until).unwrap_or_default()
        ));
    }
    if drops.reassembly_gap_bytes > 0 {
        notes.push(format!(
            "{} bytes were missing from TCP streams (not captured); messages spanning them may be incomplete",
            drops.reassembly_gap_bytes
        ));
    }
    if drops.decode_errors > 0 {
        notes.push(format!(
            "{} packets could not be decoded (capture_status.drops)",
            drops.decode_errors
        ));
    }
    if stats.memory.flows_shed + stats.memory.entries_shed > 0 {
        notes.push(format!(
            "to stay under --max-memory, {} flows were ended early and {} entries evicted (capture_status.memory)",
            stats.memory.flows_shed, stats.memory.entries_shed
        ));
    }
    if drops.flows_evicted_capacity > 0 {
        notes.push(format!(
            "{} flows were evicted because the flow table was full",
            drops.flows_evicted_capacity
        ));
    }
    if drops.parse_errors > 0 {
        notes.push(format!(
            "{} HTTP messages did not parse (capture_status.dissection)",
            drops.parse_errors
        ));
    }
    if drops.kernel_drops > 0 {
        notes.push(format!(
            "the kernel dropped {} frames because a capture ring was full: traffic is missing (raise --ring-blocks)",
            drops.kernel_drops
        ));
    }
    if drops.ebpf_drops > 0 {
        let e = &stats.ebpf;
        notes.push(format!(
            "eBPF data was lost: {} events (ring buffer full), {} malformed records, {} connections and {} TLS streams over their caps, {} TLS bytes too large to copy (capture_status.ebpf)",
            e.ring_full, e.malformed, e.connections_dropped, e.tls.connections_dropped, e.tls.gap_bytes
        ));
    }
    if stats.flows_open_unlisted > 0 {
        notes.push(format!(
            "{} open flows are not listed by the flow tools (only the {} most recently active are)",
            stats.flows_open_unlisted,
            stats.flows_active.saturating_sub(stats.flows_open_unlisted)
        ));
    }
    if drops.fragments_dropped > 0 {
        notes.push(format!("{} IP fragments were dropped", drops.fragments_dropped));
    }
    for s in &sources {
        if let Some(w) = &s.warning {
            notes.push(format!("{}: {w}", s.name));
        }
        // Not a loss, but it limits every answer: say so, so that "no entries" is never a puzzle.
        if let Some(b) = &s.bpf {
            notes.push(match b.filtered_out {
                Some(n) => format!(
                    "{}: only packets matching the capture filter `{}` were decoded ({n} filtered out)",
                    s.name, b.expression
                ),
                None => format!(
                    "{}: the kernel delivers only packets matching the capture filter `{}`",
                    s.name, b.expression
                ),
            });
        }
    }
    let complete = !sources.is_empty()
        && store.evicted == 0
        && drops
            == CoverageDrops {
                packets_snapped: drops.packets_snapped,
                ..CoverageDrops::default()
            }
        && sources.iter().all(|s| s.warning.is_none());
    Coverage {
        from: ts(stats.first_ts),
        to: ts(stats.last_ts),
        sources: sources
            .iter()
            .map(|s| {
                if s.kind == "demo" {
                    "demo".to_string()
                } else {
                    format!("{}:{}", s.kind, s.name)
                }
            })
            .collect(),
        packets: stats.packets,
        entries_stored: store.entries,
        entries_evicted: store.evicted,
        evicted_until: ts(store.evicted_until),
        partial: false,
        agents: Vec::new(),
        drops,
        complete,
        notes,
    }
}

/// An address with the identity resolved for it (its DNS name when it has no identity).
pub fn endpoint(addr: std::net::SocketAddr, r: &capture_core::enrich::Resolved, dns: Option<&str>) -> Endpoint {
    let id = r.identity.as_deref();
    Endpoint {
        ip: addr.ip().to_string(),
        port: addr.port(),
        name: id.and_then(|i| i.name()).or(dns).map(str::to_string),
        namespace: id.and_then(|i| i.namespace.as_deref()).map(str::to_string),
        workload: id.and_then(|i| i.workload.as_ref()).map(|(k, n)| format!("{k}/{n}")),
        service: id.and_then(|i| i.service()).map(str::to_string),
    }
}

/// The best name of an end: its Kubernetes name, else its DNS name.
pub fn name_of(r: &capture_core::enrich::Resolved, dns: Option<&str>) -> Option<String> {
    r.identity.as_deref().and_then(|i| i.name()).or(dns).map(str::to_string)
}
