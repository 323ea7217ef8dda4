//! `wirelens demo-truth`: the `--demo` scenario's ground truth as JSON, from the generator's own
//! records (`DemoScenario::ground_truth_*`), never from the dissectors. The answer-bank tests
//! (`tests/python/test_answer_bank.py`) compute their expected answers from it, so what the
//! tools say is checked against what was put on the wire.

use capture_core::source::demo::{DemoScenario, demo_packets};
use capture_core::time::Timestamp;
use serde_json::{Value, json};

fn ts(t: Timestamp) -> String {
    t.to_rfc3339()
}

/// Milliseconds between two capture times.
fn ms(from: Timestamp, to: Timestamp) -> f64 {
    to.0.saturating_sub(from.0) as f64 / 1e6
}

/// The ground truth of the demo for `seed`, as one JSON object.
pub fn truth(seed: u64) -> Value {
    to_json(&demo_packets(seed))
}

pub fn to_json(d: &DemoScenario) -> Value {
    let pods: Vec<Value> = d
        .services
        .iter()
        .map(|s| {
            json!({
                "service": s.name, "namespace": s.namespace, "pod": s.pod_name,
                "ip": s.ip.to_string(), "port": s.port,
            })
        })
        .collect();
    let http: Vec<Value> = d
        .ground_truth
        .iter()
        .map(|c| {
            json!({
                "client": c.client, "server": c.server, "server_pod": c.server_pod,
                "method": c.method, "path": c.path, "status": c.status, "version": c.version,
                "request_body_len": c.request_body_len, "response_body_len": c.response_body_len,
                "client_addr": c.client_addr.to_string(), "server_addr": c.server_addr.to_string(),
                "request_ts": ts(c.request_ts),
                "first_response_ms": ms(c.request_ts, c.response_ts),
            })
        })
        .collect();
    let grpc: Vec<Value> = d
        .ground_truth_grpc
        .iter()
        .map(|c| {
            json!({
                "client": c.client, "server": c.server, "service": c.service, "method": c.method,
                "grpc_status": c.grpc_status, "grpc_message": c.grpc_message,
                "client_addr": c.client_addr.to_string(), "server_addr": c.server_addr.to_string(),
                "request_ts": ts(c.request_ts),
            })
        })
        .collect();
    let redis: Vec<Value> = d
        .ground_truth_redis
        .iter()
        .map(|c| {
            json!({
                "command": c.command, "key": c.key, "reply_type": c.reply_type, "error": c.error,
                "pipelined": c.pipelined, "client_addr": c.client_addr.to_string(),
                "server_addr": c.server_addr.to_string(), "request_ts": ts(c.request_ts),
            })
        })
        .collect();
    let dns: Vec<Value> = d
        .ground_truth_dns
        .iter()
        .map(|q| {
            json!({
                "client": q.client, "qname": q.qname, "rcode": q.rcode, "tcp": q.tcp, "id": q.id,
                "answers": q.answers.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                "client_addr": q.client_addr.to_string(), "server_addr": q.server_addr.to_string(),
                "query_ts": ts(q.query_ts),
            })
        })
        .collect();
    let amqp: Vec<Value> = d
        .ground_truth_amqp
        .iter()
        .map(|g| {
            json!({
                "methods": g.methods, "channel": g.channel, "exchange": g.exchange,
                "routing_key": g.routing_key, "reply_code": g.reply_code,
                "client_addr": g.client_addr.to_string(), "server_addr": g.server_addr.to_string(),
                "ts": ts(g.ts),
            })
        })
        .collect();
    let kafka: Vec<Value> = d
        .ground_truth_kafka
        .iter()
        .map(|r| {
            json!({
                "api_key_name": r.api_key_name, "api_version": r.api_version,
                "correlation_id": r.correlation_id, "client_id": r.client_id, "topics": r.topics,
                "record_count": r.record_count, "client_addr": r.client_addr.to_string(),
                "server_addr": r.server_addr.to_string(), "request_ts": ts(r.request_ts),
            })
        })
        .collect();
    let network: Vec<Value> = d
        .ground_truth_network
        .iter()
        .map(|f| {
            let e = &f.events;
            json!({
                "kind": f.kind.name(), "client": f.client, "server": f.server,
                "client_addr": f.client_addr.to_string(), "server_addr": f.server_addr.to_string(),
                "start_ts": ts(f.start_ts), "rtt_us": f.rtt_us, "initial_rtt_ns": f.initial_rtt_ns,
                "data_segments": e.data_segments, "retransmissions": e.retransmissions,
                "fast_retransmissions": e.fast_retransmissions, "dup_acks": e.dup_acks,
                "zero_windows": e.zero_windows, "zero_window_probes": e.zero_window_probes,
                "window_updates": e.window_updates, "window_full": e.window_full,
                "refused": e.refused,
            })
        })
        .collect();
    let r = &d.ground_truth_rollout;
    json!({
        "pods": pods,
        "http": http,
        "grpc": grpc,
        "redis": redis,
        "dns": dns,
        "amqp": amqp,
        "kafka": kafka,
        "network": network,
        "rollout": {
            "namespace": r.namespace, "deployment": r.deployment,
            "old_replicaset": r.old_replicaset, "new_replicaset": r.new_replicaset,
            "old_pod": r.old_pod, "new_pod": r.new_pod,
            "old_version": r.old_version, "new_version": r.new_version,
            "endpoint": r.endpoint, "old_keys": r.old_keys, "new_keys": r.new_keys,
            "switched_at": ts(r.switched_at),
        },
    })
}
