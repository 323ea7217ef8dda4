//! `tcp_insights`, `list_flows` and `flow_summary`: connections and their health.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::coverage::Coverage;

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// One item per connection (the default).
    #[default]
    Flow,
    /// Client IP → server IP:port.
    ClientServer,
    /// Server IP:port.
    Server,
    /// Source namespace → destination namespace (from Kubernetes identity; empty until
    /// identities are loaded).
    NamespacePair,
}

/// Arguments of `tcp_insights`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TcpInsightsParams {
    /// A KFL filter over flows, e.g. `conn_state == "refused"`, `retransmission_rate > 0.01 &&
    /// dst.port == 8080`, `initial_rtt_us > 10000`, `tcp_flow && src.ip == "10.0.0.5"`.
    pub filter: Option<String>,
    /// `flow` (default), `client_server`, `server` or `namespace_pair`.
    pub group_by: Option<GroupBy>,
    /// Sort by a metric, largest first: e.g. `retransmission_rate`, `retransmissions`,
    /// `initial_rtt_us`, `zero_window_events`, `payload_bytes`, `duration_us`. Prefix with `+`
    /// for smallest first. Default: the order the connections began.
    pub sort: Option<String>,
    /// Only these verdicts: `healthy`, `degraded`, `severe`.
    pub verdict: Option<String>,
    /// Only connections whose client or server is this IP (or `ip:port`).
    pub endpoint: Option<String>,
    /// Page size: 1–1000, default 50.
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// With `group_by: flow`: return only these fields per connection, as flat objects (KFL
    /// field names: `flow_id`, `src.ip`, `dst.workload.name`, `conn_state`, `verdict`,
    /// `retransmission_rate`, `initial_rtt_us`, …). Fields that do not apply are null.
    pub fields: Option<Vec<String>>,
}

/// The TCP metrics of one connection or of a group of connections (summed; latencies from all
/// samples). Names follow Kubeshark's `tcp_metrics`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct TcpMetricsOut {
    pub packets_c2s: u64,
    pub packets_s2c: u64,
    /// Bytes on the wire (original frame lengths).
    pub frame_bytes_c2s: u64,
    pub frame_bytes_s2c: u64,
    pub payload_bytes_c2s: u64,
    pub payload_bytes_s2c: u64,
    /// Payload minus retransmitted payload, both directions.
    pub goodput_bytes: u64,
    /// Includes fast and spurious retransmissions (as Wireshark counts them).
    pub retransmissions: u64,
    pub fast_retransmissions: u64,
    pub spurious_retransmissions: u64,
    /// Retransmitted packets / packets carrying data, 0–1.
    pub retransmission_rate: f64,
    pub out_of_order: u64,
    pub zero_window_events: u64,
    pub zero_window_probes: u64,
    pub window_full_events: u64,
    pub window_updates: u64,
    pub dup_acks: u64,
    /// Previous segment not captured (Wireshark's lost segment).
    pub missing_segments: u64,
    /// ACKs for data the capture never saw.
    pub acked_unseen: u64,
    pub keepalive_count: u64,
    pub syn_count: u64,
    pub fin_count: u64,
    pub rst_count: u64,
    /// Window-scale shift offered by the client and the server (null when not seen).
    pub window_scale_client: Option<u8>,
    pub window_scale_server: Option<u8>,
    /// Average receive window (scaled) advertised by the client and by the server.
    pub avg_receive_window_client: Option<u64>,
    pub avg_receive_window_server: Option<u64>,
    /// SYN → first ACK of the handshake (Wireshark's `tcp.analysis.initial_rtt`), µs; null when
    /// no handshake was captured.
    pub initial_rtt_us: Option<u64>,
    /// SYN → SYN-ACK as seen at the capture point, µs.
    pub handshake_time_us: Option<u64>,
    /// First client payload byte → first server payload byte, µs.
    pub time_to_first_byte_us: Option<u64>,
    /// ACK round-trip samples (data or SYN acknowledged exactly).
    pub rtt_samples: u64,
    pub rtt_min_us: Option<u64>,
    pub rtt_max_us: Option<u64>,
    pub rtt_avg_us: Option<u64>,
    /// Mean absolute difference between consecutive RTT samples, µs.
    pub jitter_us: Option<u64>,
    /// First packet → last packet, µs.
    pub duration_us: u64,
    /// Payload bytes per second over the duration.
    pub throughput_bps: f64,
}

/// One connection.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct FlowOut {
    pub flow_id: u64,
    /// `ip:port` (IPv6 as `[addr]:port`).
    pub client: String,
    pub server: String,
    /// Kubernetes names of client and server (pod, else service, else node), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// How the roles were decided: `syn`, `synack`, `port`, `first-packet`.
    pub roles_from: String,
    pub first_seen: String,
    pub last_seen: String,
    /// Wireshark's completeness bits: SYN 1, SYN-ACK 2, ACK 4, DATA 8, FIN 16, RST 32.
    pub connection_completeness: u8,
    /// `established`, `established_midstream`, `syn_sent`, `refused`, `reset`, `closing`,
    /// `closed`.
    pub state: String,
    /// How the flow ended: `closed`, `reset`, `idle`, `evicted`, `reused`, `open`.
    pub end: String,
    #[serde(flatten)]
    pub metrics: TcpMetricsOut,
    /// `healthy`, `degraded` or `severe`.
    pub verdict: String,
    /// Why, in plain words, including whether slowness is the network's or the application's.
    pub reasons: Vec<String>,
    /// What the kernel of this host reported about the connection (eBPF): present when the
    /// probes saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<KernelTcpOut>,
}

/// A group of connections.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct FlowGroupOut {
    /// The group's value (`10.0.0.1 → 10.0.0.2:80`, `10.0.0.2:80`, `web → shop`).
    pub key: String,
    /// The key in Kubernetes names (pod, else service, else node, else a DNS name seen in the
    /// traffic): `payments-5f7b9d8c6-m3n7t` for a server, `orders-… → payments-…` for a
    /// client/server pair; absent when no end has a name (and for namespace pairs, already named).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub flows: u64,
    #[serde(flatten)]
    pub metrics: TcpMetricsOut,
    /// Handshake RTT percentiles over the group's connections, µs.
    pub initial_rtt_p50_us: Option<u64>,
    pub initial_rtt_p90_us: Option<u64>,
    pub initial_rtt_p99_us: Option<u64>,
    pub verdict: String,
    pub reasons: Vec<String>,
}

/// Result of `tcp_insights`: `flows` with `group_by: flow`, else `groups`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct TcpInsightsResult {
    pub group_by: GroupBy,
    /// `FlowOut` objects, or flat objects holding exactly the requested `fields`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flows: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<FlowGroupOut>>,
    /// Connections matching the arguments (all pages).
    pub total_matched: u64,
    /// Handshake RTT percentiles over every matching connection, µs.
    pub initial_rtt_p50_us: Option<u64>,
    pub initial_rtt_p90_us: Option<u64>,
    pub initial_rtt_p99_us: Option<u64>,
    /// Handshake RTT measured by this host's kernel (eBPF) over every connection it reported,
    /// matching or not; absent without probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_handshake_rtt: Option<crate::status::KernelRtt>,
    pub next_cursor: Option<String>,
    pub coverage: Coverage,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FlowTransport {
    Tcp,
    Udp,
}

/// Arguments of `list_flows`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListFlowsParams {
    /// A KFL filter over flows, e.g. `conn_state == "refused"`, `retransmission_rate > 0.01 &&
    /// dst.port == 8080`, `initial_rtt_us > 10000`, `tcp_flow && src.ip == "10.0.0.5"`.
    pub filter: Option<String>,
    /// `tcp` or `udp`; both when absent.
    pub protocol: Option<FlowTransport>,
    /// Only flows whose client or server is this IP (or `ip:port`).
    pub endpoint: Option<String>,
    /// Page size: 1–1000, default 50.
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Return only these fields per flow, as flat objects (KFL field names: `flow_id`,
    /// `src.ip`, `dst.workload.name`, `conn_state`, `verdict`, `retransmission_rate`, …).
    /// Fields that do not apply are null.
    pub fields: Option<Vec<String>>,
}

/// One flow as listed.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct FlowListItem {
    pub flow_id: u64,
    /// `tcp` or `udp`.
    pub transport: String,
    pub client: String,
    pub server: String,
    /// Kubernetes names of client and server (pod, else service, else node), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    pub first_seen: String,
    pub last_seen: String,
    /// TCP state (see `tcp_insights`), or `udp`.
    pub state: String,
    pub packets_c2s: u64,
    pub packets_s2c: u64,
    pub payload_bytes_c2s: u64,
    pub payload_bytes_s2c: u64,
    /// Entries (requests/responses) found on this flow.
    pub entries: u64,
    /// Ids of the first 10 of them (pass to get_payload; `list_entries` with
    /// `filter: "flow_id == N"` lists them all).
    pub entry_ids: Vec<String>,
    /// TCP health verdict; null for UDP.
    pub verdict: Option<String>,
    /// What the kernel of this host reported about the connection (eBPF): present when the
    /// probes saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<KernelTcpOut>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ListFlowsResult {
    /// `FlowListItem` objects, or flat objects holding exactly the requested `fields`.
    pub flows: Vec<serde_json::Map<String, serde_json::Value>>,
    pub next_cursor: Option<String>,
    pub total_matched: u64,
    pub coverage: Coverage,
}

/// Arguments of `flow_summary`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FlowSummaryParams {
    /// A KFL filter over flows, e.g. `conn_state == "refused"`, `retransmission_rate > 0.01 &&
    /// dst.port == 8080`, `initial_rtt_us > 10000`, `tcp_flow && src.ip == "10.0.0.5"`.
    pub filter: Option<String>,
    /// `tcp` or `udp`; both when absent.
    pub protocol: Option<FlowTransport>,
    /// How many top talkers to return: 1–100, default 10.
    #[schemars(range(min = 1, max = 100))]
    pub top: Option<u32>,
}

/// A pair of endpoints and its traffic.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Talker {
    /// `client IP → server IP:port`.
    pub pair: String,
    pub flows: u64,
    pub packets: u64,
    /// Bytes on the wire, both directions.
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct FlowSummaryResult {
    pub flows: u64,
    pub tcp_flows: u64,
    pub udp_flows: u64,
    pub packets: u64,
    /// Bytes on the wire, both directions, all flows.
    pub bytes: u64,
    /// TCP connections by state (`established`, `refused`, `reset`, `closed`, …).
    pub tcp_states: std::collections::BTreeMap<String, u64>,
    /// TCP connections by verdict.
    pub tcp_verdicts: std::collections::BTreeMap<String, u64>,
    pub top_talkers_by_bytes: Vec<Talker>,
    pub top_talkers_by_packets: Vec<Talker>,
    /// Endpoint pairs whose two ends are in different namespaces (needs Kubernetes identity).
    pub cross_namespace_pairs: Vec<Talker>,
    pub coverage: Coverage,
}

/// The kernel's view of one connection (eBPF probes on this host).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct KernelTcpOut {
    /// connect() to ESTABLISHED as the connecting kernel measured it, µs (only when the client
    /// runs on this host).
    pub handshake_rtt_us: Option<u64>,
    /// Retransmitted segments, and the skbs that carried them, as the sender's kernel counted.
    pub retransmitted_segments: u32,
    pub retransmitted_skbs: u32,
    /// Latest smoothed RTT and its variation, µs; congestion window in segments (latest,
    /// smallest, largest), from `tcp_probe` samples.
    pub srtt_us: Option<u32>,
    pub rttvar_us: Option<u32>,
    pub cwnd: Option<u32>,
    pub cwnd_min: Option<u32>,
    pub cwnd_max: Option<u32>,
    pub samples: u32,
    /// The process that called connect(): `comm (pid N)`.
    pub process: Option<String>,
}
