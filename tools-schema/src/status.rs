//! `capture_status`: sources, volumes, the store, and every drop counter.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::coverage::{Coverage, SourceSummary};

/// `capture_status` takes no arguments.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CaptureStatusParams {}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct CaptureStatus {
    pub sources: Vec<SourceSummary>,
    /// Packets decoded: those the capture filter (`--bpf`) kept, when there is one.
    pub packets: u64,
    /// Packets the capture filter (`--bpf`) rejected before decoding, summed over capture files
    /// and the demo (a live capture's filter runs in the kernel, which does not count them).
    #[serde(default)]
    pub filtered_out_packets: u64,
    /// Captured bytes.
    pub bytes: u64,
    /// Bytes on the wire (original lengths).
    pub wire_bytes: u64,
    pub tcp_packets: u64,
    pub udp_packets: u64,
    /// Frames that are not IP (ARP, LLDP…).
    pub non_ip_packets: u64,
    /// IP packets that are neither TCP nor UDP.
    pub other_ip_packets: u64,
    pub flows: FlowCounts,
    pub store: StoreStatus,
    /// Kubernetes identities: where they come from and how many objects are known.
    pub identities: IdentityStatus,
    /// The process's memory, and the load shed to stay under `--max-memory`.
    #[serde(default)]
    pub memory: MemoryStatus,
    /// What is redacted before anything is shown, and how much was.
    #[serde(default)]
    pub redaction: RedactionStatus,
    /// eBPF probes: what is attached, what is not and why, and what they delivered. Absent
    /// when no probe was asked for (files, the demo, `--no-ebpf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebpf: Option<EbpfStatus>,
    /// The raw capture ring (`--raw-ring`): bytes and segments on disk, the time they span, the
    /// write rate and what was dropped. Absent without a ring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_ring: Option<crate::forensics::RawRingStatus>,
    /// Every drop and anomaly counter, by name. Zero means nothing was lost there.
    pub drops: BTreeMap<String, u64>,
    /// HTTP dissection counters.
    pub dissection: BTreeMap<String, u64>,
    /// The caps in force.
    pub limits: BTreeMap<String, u64>,
    pub coverage: Coverage,
}

/// Memory now, and what `--max-memory` did: above 85 % of the budget the engine flushes
/// reassembly buffers, then evicts the oldest half of the stored entries, then ends the least
/// active half of the flows, one step at a time until it is below 70 %.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct MemoryStatus {
    /// The budget (`--max-memory`); null without one.
    pub max_memory_bytes: Option<u64>,
    /// Resident set now, and its peak since start (the kernel's high-water mark).
    pub rss_bytes: u64,
    pub peak_rss_bytes: u64,
    /// Times the resident set was found above 85 % of the budget.
    pub pressure_events: u64,
    /// Step 1: reassembly buffers flushed early, and the bytes they held.
    pub reassembly_flushes: u64,
    pub reassembly_bytes_flushed: u64,
    /// Step 2: stored entries evicted for memory (also in the store's `evicted`).
    pub entries_shed: u64,
    /// Step 3: flows ended early for memory (their open messages emitted as incomplete).
    pub flows_shed: u64,
}

/// The redaction rules in force (`--no-redact`, `--redact-header`, `--keep-header`,
/// `--redact-field`, `--keep-field`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct RedactionStatus {
    /// False with `--no-redact`: credentials are shown.
    pub enabled: bool,
    /// Header names whose values are replaced by `[redacted len=N id=…]`.
    pub headers: Vec<String>,
    /// Query-parameter and JSON/form body-field names (compared without case, `-`, `_`, `.`).
    pub fields: Vec<String>,
    /// Name endings that also make a field a credential.
    pub field_suffixes: Vec<String>,
    /// Field names never redacted (`--keep-field`).
    pub kept_fields: Vec<String>,
    /// Header values and query parameters replaced in stored entries so far (bodies are
    /// redacted when shown, and counted in that result's notes).
    pub values_redacted: u64,
    /// Credentials never kept at all, whatever the rules.
    pub never_kept: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct IdentityStatus {
    /// `none`, `demo`, `file:PATH` (several joined by commas), `kubernetes`.
    pub source: String,
    pub pods: u64,
    pub services: u64,
    pub nodes: u64,
    /// Addresses with an identity (pod IPs, ClusterIPs, node addresses).
    pub addresses: u64,
    /// Past holders of reused IPs dropped by the per-address history cap.
    pub history_dropped: u64,
    /// The source stopped answering: identities come from the last known state.
    pub stale: bool,
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct FlowCounts {
    pub active: u64,
    pub created: u64,
    pub evicted_idle: u64,
    pub evicted_closed: u64,
    pub evicted_capacity: u64,
    /// A new connection replaced a closed one on the same 5-tuple.
    pub reused: u64,
    /// Live capture: open flows the flow tools do not list (beyond `live_flows_listed`, the
    /// most recently active are listed).
    #[serde(default)]
    pub open_unlisted: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct StoreStatus {
    pub entries: u64,
    pub bytes: u64,
    pub budget_bytes: u64,
    /// Share of the budget in use, 0–1.
    pub utilization: f64,
    pub inserted: u64,
    pub evicted: u64,
    pub evicted_bytes: u64,
    /// Entries larger than the whole budget, refused.
    pub rejected_oversize: u64,
    pub oldest: Option<String>,
    pub newest: Option<String>,
    /// `--capture-namespace`: the namespaces whose pods' entries are kept (empty: any).
    #[serde(default)]
    pub capture_namespaces: Vec<String>,
    /// `--capture-pod-selector`: labels a pod must carry for its entries to be kept (empty: any).
    #[serde(default)]
    pub capture_pod_labels: BTreeMap<String, String>,
    /// Entries not kept because neither end is a pod those select.
    #[serde(default)]
    pub entries_not_selected: u64,
    /// Times finished entries found the store busy with a query and waited in the capture
    /// engine rather than stall it.
    #[serde(default)]
    pub store_busy: u64,
    /// Times the capture waited for a busy store anyway: the entries held back reached a
    /// sixteenth of the budget.
    #[serde(default)]
    pub capture_waited: u64,
    /// Entries finished but not yet in the store (waiting for a query to end).
    #[serde(default)]
    pub entries_waiting: u64,
}

/// The eBPF probes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct EbpfStatus {
    /// Some probe is attached.
    pub available: bool,
    /// Why nothing, or not everything, is attached.
    pub reason: Option<String>,
    /// Capabilities this process lacks (CAP_BPF, CAP_PERFMON, CAP_NET_RAW, CAP_NET_ADMIN).
    pub missing_capabilities: Vec<String>,
    /// Every hook: tracepoints, `tp_btf`, and one uprobe per OpenSSL function and library.
    pub hooks: Vec<EbpfHook>,
    /// Each `--tls-pid` / `--tls-cgroup` target: attached, or why not.
    pub tls_targets: Vec<TlsTarget>,
    /// Events received from the probes.
    pub events: u64,
    /// Connections whose kernel facts wait for their flow to end.
    pub connections_pending: u64,
    /// Connections the kernel reported that no captured flow claimed (traffic on interfaces
    /// not captured).
    pub connections_unjoined: u64,
    /// Handshake RTT (connect() to ESTABLISHED) over every connection the kernel reported.
    pub handshake_rtt: Option<KernelRtt>,
    /// TLS plaintext: connections followed, open now, bytes read.
    pub tls_connections: u64,
    pub tls_open: u64,
    pub tls_bytes: u64,
    /// TLS streams whose addresses were never learnt (shown as 0.0.0.0:0).
    pub tls_without_addresses: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct EbpfHook {
    /// e.g. `tracepoint/sock/inet_sock_set_state`, `uprobe/SSL_write@/usr/lib/…/libssl.so.3`.
    pub hook: String,
    pub attached: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct TlsTarget {
    /// `pid 1234` or `cgroup /sys/fs/cgroup/…`.
    pub target: String,
    pub attached: bool,
    /// The libssl files probed for it.
    pub libraries: Vec<String>,
    /// Why it is not attached, or what is partial.
    pub reason: Option<String>,
}

/// Handshake RTT percentiles measured by the kernel, µs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct KernelRtt {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}
