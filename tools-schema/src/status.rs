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
    /// Every drop and anomaly counter, by name. Zero means nothing was lost there.
    pub drops: BTreeMap<String, u64>,
    /// HTTP dissection counters.
    pub dissection: BTreeMap<String, u64>,
    /// The caps in force.
    pub limits: BTreeMap<String, u64>,
    pub coverage: Coverage,
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
}
