//! `capture_status`: sources, volumes, flows, the store and every drop counter.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tools_schema::status::{FlowCounts, StoreStatus};
use tools_schema::{CaptureStatus, CaptureStatusParams};

use super::{ToolError, parse_args};
use crate::convert;
use crate::state::AppState;

pub const DESCRIPTION: &str = "What was captured and what was lost: sources (files, demo, interfaces) with their time \
ranges, packet and byte counts and capture filter (`--bpf`, with the packets it filtered out), flows, the entry store's use against its memory budget, every drop counter (decode errors, \
TCP gaps, evictions, parse errors, fragments), the caps in force, and the raw capture ring (`--raw-ring`: bytes and \
segments on disk, oldest and newest packet, write rate, drops). Call it first when results look empty or odd.";

pub fn run(state: &AppState, args: Map<String, Value>) -> Result<CaptureStatus, ToolError> {
    if let Some(hub) = &state.hub {
        return hub.capture_status(args);
    }
    let _: CaptureStatusParams = parse_args("capture_status", args)?;
    let s = state.shared.stats.lock().clone();
    let st = state.shared.store.stats();
    let sources = state.shared.sources.lock().iter().map(convert::source).collect();
    let mut drops = BTreeMap::new();
    for (i, layer) in capture_core::wire::Layer::ALL.iter().enumerate() {
        drops.insert(format!("decode_error_{}", layer.name()), s.decode_errors[i]);
    }
    let d = &s.dissect;
    let r = &s.reassembly;
    for (k, v) in [
        ("packets_snapped", s.packets_snapped),
        ("ip_fragments_timed_out", s.frag.timed_out),
        ("ip_fragments_dropped_cap", s.frag.dropped_cap),
        ("ip_fragment_overlaps", s.frag.overlaps),
        ("tcp_gaps", r.gaps),
        ("tcp_gap_bytes", r.gap_bytes),
        ("tcp_window_overflows", r.window_overflows),
        ("tcp_conflicting_overlaps", r.conflicting_overlaps),
        ("tcp_bytes_after_fin", r.bytes_after_fin),
        ("flows_evicted_capacity", s.flows_evicted_capacity),
        ("memory_flows_shed", s.memory.flows_shed),
        ("memory_entries_shed", s.memory.entries_shed),
        ("memory_reassembly_bytes_flushed", s.memory.reassembly_bytes_flushed),
        ("store_entries_evicted", st.evicted),
        ("store_rejected_oversize", st.rejected_oversize),
        ("http_parse_errors", d.http_parse_errors),
        ("http_header_too_large", d.http_header_too_large),
        ("http_buffer_overflows", d.http_buffer_overflows),
        ("http_pipeline_overflows", d.http_pipeline_overflows),
    ] {
        drops.insert(k.to_string(), v);
    }
    let mut dissection = BTreeMap::from([
        ("connections_unclaimed".to_string(), d.connections_opaque),
        ("http_resyncs".to_string(), d.http_resyncs),
        ("http_bodies_truncated".to_string(), d.http_bodies_truncated),
        ("bytes_not_dissected".to_string(), d.bytes_not_dissected),
        ("tcp_bytes_reassembled".to_string(), r.bytes_delivered),
        ("tcp_bytes_duplicate".to_string(), r.bytes_duplicate),
        ("entries_emitted".to_string(), s.entries_emitted),
    ]);
    for (proto, n) in &d.connections {
        dissection.insert(format!("connections_{proto}"), *n);
    }
    // HTTP/2: caps hit and framing lost are drops; marked-incomplete header blocks are not.
    for (k, v) in [
        ("h2_frame_errors", d.h2_frame_errors),
        ("h2_hpack_errors", d.h2_hpack_errors),
        ("h2_hpack_table_capped", d.h2_hpack_table_capped),
        ("h2_stream_overflows", d.h2_stream_overflows),
        ("h2_header_lists_too_large", d.h2_header_lists_too_large),
        ("h2_continuation_overflows", d.h2_continuation_overflows),
    ] {
        drops.insert(k.to_string(), v);
    }
    dissection.insert("h2_resyncs".to_string(), d.h2_resyncs);
    dissection.insert("h2_hpack_incomplete".to_string(), d.h2_hpack_incomplete);
    // Redis and DNS: caps hit and framing lost are drops; the rest describes the traffic.
    for (k, v) in [
        ("redis_parse_errors", d.redis_parse_errors),
        ("redis_depth_exceeded", d.redis_depth_exceeded),
        ("redis_length_exceeded", d.redis_length_exceeded),
        ("redis_pipeline_overflows", d.redis_pipeline_overflows),
        ("dns_malformed", d.dns_malformed),
        ("dns_pointer_loops", d.dns_pointer_loops),
        ("dns_records_capped", d.dns_records_capped),
        ("dns_pending_overflows", d.dns_pending_overflows),
        ("dns_messages_lost", d.dns_messages_lost),
    ] {
        drops.insert(k.to_string(), v);
    }
    for (k, v) in [
        ("redis_resyncs", d.redis_resyncs),
        ("redis_values_truncated", d.redis_values_truncated),
        ("dns_unanswered", d.dns_unanswered),
        ("dns_retransmissions", d.dns_retransmissions),
        ("dns_resyncs", d.dns_resyncs),
        ("dns_over_https", d.dns_over_https),
    ] {
        dissection.insert(k.to_string(), v);
    }
    // Kafka and AMQP: lost framing and caps hit are drops; frames read from a prefix are not.
    for (k, v) in [
        ("kafka_frame_errors", d.kafka_frame_errors),
        ("kafka_pending_overflows", d.kafka_pending_overflows),
        ("kafka_lists_capped", d.kafka_lists_capped),
        ("kafka_records_not_kept", d.kafka_records_not_kept),
        ("kafka_decompress_capped", d.kafka_decompress_capped),
        ("kafka_decompress_errors", d.kafka_decompress_errors),
        ("amqp_frame_errors", d.amqp_frame_errors),
        ("amqp_open_overflows", d.amqp_open_overflows),
        ("amqp_body_overruns", d.amqp_body_overruns),
        ("dns_names_forgotten", s.dns_names_forgotten),
        ("kernel_drops", s.kernel_drops),
        ("ebpf_ring_full", s.ebpf.ring_full),
        ("ebpf_malformed", s.ebpf.malformed),
        ("ebpf_connections_dropped", s.ebpf.connections_dropped),
        ("tls_connections_dropped", s.ebpf.tls.connections_dropped),
        ("tls_gap_bytes", s.ebpf.tls.gap_bytes),
    ] {
        drops.insert(k.to_string(), v);
    }
    for (k, v) in [
        ("kafka_resyncs", d.kafka_resyncs),
        ("kafka_frames_truncated", d.kafka_frames_truncated),
        ("amqp_resyncs", d.amqp_resyncs),
        ("amqp_frames_truncated", d.amqp_frames_truncated),
        ("amqp_bodies_truncated", d.amqp_bodies_truncated),
        ("amqp_tables_cut", d.amqp_tables_cut),
    ] {
        dissection.insert(k.to_string(), v);
    }
    // TLS: framing lost or a handshake not read are drops; finding the framing again is not.
    for (k, v) in [
        ("tls_framing_errors", d.tls_framing_errors),
        ("tls_handshake_errors", d.tls_handshake_errors),
        ("tls_decrypt_errors", d.tls_decrypt_errors),
    ] {
        drops.insert(k.to_string(), v);
    }
    dissection.insert("tls_resyncs".to_string(), d.tls_resyncs);
    let l = &state.limits;
    let mut limits = BTreeMap::from([
        ("store_memory_bytes".to_string(), l.store_memory_bytes as u64),
        ("max_memory_bytes".to_string(), l.max_memory_bytes as u64),
        ("max_flows".to_string(), l.max_flows as u64),
        ("reassembly_window_bytes".to_string(), l.reassembly_window_bytes as u64),
        ("reassembly_max_segments".to_string(), l.reassembly_max_segments as u64),
        ("dissector_buffer_bytes".to_string(), l.dissector_buffer_bytes as u64),
        ("http_max_header_bytes".to_string(), l.http_max_header_bytes as u64),
        ("http_max_pending".to_string(), l.http_max_pending as u64),
        ("body_capture_bytes".to_string(), l.body_capture_bytes as u64),
        ("decompress_max_bytes".to_string(), l.decompress_max_bytes as u64),
        ("ip_frag_max_datagrams".to_string(), l.ip_frag_max_datagrams as u64),
        ("ip_frag_max_bytes".to_string(), l.ip_frag_max_bytes as u64),
        ("tcp_idle_timeout_us".to_string(), l.tcp_idle_timeout_us),
        ("live_flows_listed".to_string(), l.live_flows_listed as u64),
    ]);
    for (k, v) in [
        ("h2_max_streams", l.h2_max_streams),
        ("h2_max_header_list_bytes", l.h2_max_header_list_bytes),
        ("h2_max_continuations", l.h2_max_continuations),
        ("h2_hpack_table_bytes", l.h2_hpack_table_bytes),
        ("h2_stream_body_bytes", l.h2_stream_body_bytes),
        ("protobuf_max_depth", l.protobuf_max_depth),
        ("redis_max_depth", l.redis_max_depth),
        ("redis_max_line_bytes", l.redis_max_line_bytes),
        ("redis_value_bytes", l.redis_value_bytes),
        ("redis_key_bytes", l.redis_key_bytes),
        ("redis_max_args", l.redis_max_args),
        ("redis_max_pending", l.redis_max_pending),
        ("dns_max_pointer_hops", l.dns_max_pointer_hops),
        ("dns_max_questions", l.dns_max_questions),
        ("dns_max_records", l.dns_max_records),
        ("dns_max_pending", l.dns_max_pending),
        ("dns_names_max", l.dns_names_max),
    ] {
        limits.insert(k.to_string(), v as u64);
    }
    for (k, v) in [
        ("redis_max_aggregate_len", l.redis_max_aggregate_len),
        ("redis_max_bulk_len", l.redis_max_bulk_len),
        ("dns_query_timeout_us", l.dns_query_timeout_us),
        ("dns_retransmit_window_us", l.dns_retransmit_window_us),
        ("tool_timeout_ms", l.tool_timeout_ms),
    ] {
        limits.insert(k.to_string(), v);
    }
    Ok(CaptureStatus {
        sources,
        packets: s.packets,
        filtered_out_packets: s.filtered_out,
        bytes: s.bytes,
        wire_bytes: s.wire_bytes,
        tcp_packets: s.tcp_packets,
        udp_packets: s.udp_packets,
        non_ip_packets: s.non_ip,
        other_ip_packets: s.other_ip,
        flows: FlowCounts {
            active: s.flows_active,
            created: s.flows_created,
            evicted_idle: s.flows_evicted_idle,
            evicted_closed: s.flows_evicted_closed,
            evicted_capacity: s.flows_evicted_capacity,
            reused: s.flows_reused,
            open_unlisted: s.flows_open_unlisted,
        },
        ebpf: state.shared.probes.lock().as_ref().map(|r| tools_schema::EbpfStatus {
            available: r.available,
            reason: r.reason.clone(),
            missing_capabilities: r.missing_capabilities.clone(),
            hooks: r
                .hooks
                .iter()
                .map(|h| tools_schema::EbpfHook {
                    hook: h.hook.clone(),
                    attached: h.attached,
                    error: h.error.clone(),
                })
                .collect(),
            tls_targets: r
                .tls_targets
                .iter()
                .map(|t| tools_schema::TlsTarget {
                    target: t.target.clone(),
                    attached: t.attached,
                    libraries: t.libraries.clone(),
                    reason: t.reason.clone(),
                })
                .collect(),
            events: s.ebpf.events,
            connections_pending: s.ebpf.connections_pending,
            connections_unjoined: s.ebpf.unjoined,
            handshake_rtt: s.ebpf.handshake_rtt.as_ref().map(crate::convert::kernel_rtt),
            tls_connections: s.ebpf.tls.connections,
            tls_open: s.ebpf.tls_open,
            tls_bytes: s.ebpf.tls.bytes,
            tls_without_addresses: s.ebpf.tls.without_addresses,
        }),
        memory: tools_schema::MemoryStatus {
            max_memory_bytes: (l.max_memory_bytes > 0).then_some(l.max_memory_bytes as u64),
            rss_bytes: capture_core::memory::rss_bytes(),
            peak_rss_bytes: capture_core::memory::peak_rss_bytes(),
            pressure_events: s.memory.pressure_events,
            reassembly_flushes: s.memory.reassembly_flushes,
            reassembly_bytes_flushed: s.memory.reassembly_bytes_flushed,
            entries_shed: s.memory.entries_shed,
            flows_shed: s.memory.flows_shed,
        },
        redaction: {
            let r = &state.shared.redaction;
            tools_schema::RedactionStatus {
                enabled: r.enabled,
                headers: r.headers().to_vec(),
                fields: r.fields().to_vec(),
                field_suffixes: r.suffixes().to_vec(),
                kept_fields: r.keep_fields().to_vec(),
                values_redacted: s.values_redacted,
                never_kept: capture_core::redact::NEVER_KEPT.iter().map(|s| s.to_string()).collect(),
            }
        },
        raw_ring: state.forensics.ring.as_ref().map(|r| {
            let s = r.status();
            tools_schema::RawRingStatus {
                directory: s.dir.display().to_string(),
                max_bytes: s.max_bytes,
                segment_bytes: s.segment_bytes,
                filter: s.filter,
                bytes_on_disk: s.bytes_on_disk,
                segments: s.segments,
                segments_recovered: s.segments_recovered,
                segments_deleted: s.segments_deleted,
                oldest: s.oldest.map(|t| t.to_rfc3339()),
                newest: s.newest.map(|t| t.to_rfc3339()),
                packets_offered: s.packets_offered,
                packets_filtered_out: s.packets_filtered_out,
                packets_written: s.packets_written,
                bytes_written: s.bytes_written,
                dropped_queue_full: s.dropped_queue_full,
                dropped_write_errors: s.dropped_write_errors,
                queued_bytes: s.queued_bytes,
                write_rate_bytes_per_s: (s.write_rate_bytes_per_s * 10.0).round() / 10.0,
                write_rate_packets_per_s: (s.write_rate_packets_per_s * 10.0).round() / 10.0,
                last_error: s.last_error,
            }
        }),
        identities: {
            let idx = state.shared.identities.index();
            let src = state.shared.identities.source();
            tools_schema::IdentityStatus {
                source: src.kind,
                pods: idx.pods as u64,
                services: idx.services as u64,
                nodes: idx.nodes as u64,
                addresses: idx.addresses() as u64,
                history_dropped: idx.history_dropped,
                stale: src.stale,
                problem: src.problem,
            }
        },
        store: StoreStatus {
            entries: st.entries,
            bytes: st.bytes,
            budget_bytes: st.budget_bytes,
            utilization: if st.budget_bytes == 0 {
                0.0
            } else {
                st.bytes as f64 / st.budget_bytes as f64
            },
            inserted: st.inserted,
            evicted: st.evicted,
            evicted_bytes: st.evicted_bytes,
            rejected_oversize: st.rejected_oversize,
            capture_namespaces: state.shared.capture_scope.namespaces.clone(),
            capture_pod_labels: state.shared.capture_scope.pod_labels.iter().cloned().collect(),
            entries_not_selected: s.entries_not_selected,
            store_busy: s.store_busy,
            capture_waited: s.store_waits,
            entries_waiting: s.entries_waiting,
            oldest: convert::ts(st.oldest),
            newest: convert::ts(st.newest),
        },
        drops,
        dissection,
        limits,
        coverage: convert::coverage(&state.shared),
    })
}
