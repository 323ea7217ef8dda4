//! Coverage: what the answer is based on, so that "no entries" is never ambiguous.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Carried by every result: which time range and sources were captured, and what was dropped
/// or evicted.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Coverage {
    /// Capture time of the first packet read (RFC 3339), null when nothing was read.
    pub from: Option<String>,
    /// Capture time of the last packet read.
    pub to: Option<String>,
    /// The sources read, e.g. `pcap:/tmp/x.pcap` or `demo`.
    pub sources: Vec<String>,
    pub packets: u64,
    /// Entries currently held in the store.
    pub entries_stored: u64,
    /// Entries evicted by the store's memory budget.
    pub entries_evicted: u64,
    /// Entries older than this were evicted: results before it are incomplete.
    pub evicted_until: Option<String>,
    pub drops: CoverageDrops,
    /// True when nothing was dropped, evicted or cut.
    pub complete: bool,
    /// Plain-language notes on anything that limits the answer.
    pub notes: Vec<String>,
    /// Cluster mode (a hub over node agents): true when an agent did not answer, so the answer
    /// holds only what the others hold. Absent outside the hub.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// Cluster mode: every agent the hub asked, whether it answered (else why not), and its
    /// time window and drops. Absent outside the hub.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<AgentCoverage>,
}

/// One node agent's part in a hub's answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct AgentCoverage {
    /// The agent's name (its node's name).
    pub name: String,
    /// Where the hub reached it (`https://10.0.1.7:9443`).
    pub address: String,
    /// Whether it answered this query in time.
    pub answered: bool,
    /// Why it did not answer (connection refused, deadline, TLS, an error), or null.
    pub error: Option<String>,
    /// When this agent process started (RFC 3339); a new value means it restarted.
    pub started_at: Option<String>,
    /// Restarts the hub has noticed since it started.
    pub restarts: u64,
    /// Capture time of the agent's first and last packet.
    pub from: Option<String>,
    pub to: Option<String>,
    /// Entries it holds.
    pub entries_stored: u64,
    pub entries_evicted: u64,
    pub drops: CoverageDrops,
    /// True when it dropped, evicted or cut nothing.
    pub complete: bool,
}

/// Data lost on the way, by cause. Details are in `capture_status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct CoverageDrops {
    /// Packets whose decoding stopped (malformed or truncated headers).
    pub decode_errors: u64,
    /// Bytes missing from TCP streams (not captured, or beyond the reassembly window).
    pub reassembly_gap_bytes: u64,
    /// Flows evicted because the flow table was full.
    pub flows_evicted_capacity: u64,
    /// HTTP messages that did not parse.
    pub parse_errors: u64,
    /// IP fragments dropped (timeout or caps).
    pub fragments_dropped: u64,
    /// Packets shorter on capture than on the wire (snap length).
    pub packets_snapped: u64,
    /// Live capture: frames the kernel dropped because a capture ring was full.
    #[serde(default)]
    pub kernel_drops: u64,
    /// eBPF: events lost (a probe's ring buffer was full, a record did not parse), connections
    /// and TLS streams not followed (caps), and TLS bytes too large to copy.
    #[serde(default)]
    pub ebpf_drops: u64,
}

/// One source read.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct SourceSummary {
    /// `pcap`, `pcapng` or `demo`.
    pub kind: String,
    pub name: String,
    pub packets: u64,
    pub bytes: u64,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Link types seen (tcpdump LINKTYPE numbers).
    pub link_types: Vec<u32>,
    /// A non-fatal problem, e.g. the file ends inside a record.
    pub warning: Option<String>,
    /// The capture filter (`--bpf`) applied to this source; null without one.
    #[serde(default)]
    pub bpf: Option<SourceBpf>,
}

/// A capture filter (`--bpf`, pcap-filter syntax) as applied to one source.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct SourceBpf {
    /// The expression as given, e.g. `tcp port 80`.
    pub expression: String,
    /// `kernel`: attached to the capture socket (live capture); `wirelens`: run by wirelens on
    /// every packet before decoding (capture files and the demo).
    pub applied: String,
    /// Packets the filter rejected; null when the kernel applied it (it does not count them).
    pub filtered_out: Option<u64>,
}
