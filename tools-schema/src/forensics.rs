//! Forensics: the raw capture ring, snapshots, and exports to pcapng and HAR.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::coverage::Coverage;

/// Arguments of `create_snapshot`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CreateSnapshotParams {
    /// Start of the window: RFC 3339, or a duration before the newest capture time (`5m`).
    pub since: String,
    /// End of the window, inclusive: RFC 3339, or a duration before the newest capture time
    /// (`0s` is the newest packet).
    pub until: String,
    /// A KFL filter over entries or flows: only the packets of the connections it matches
    /// (and the entries it matches) are kept. Without it, every packet of the window.
    pub filter: Option<String>,
    /// The snapshot's name: 1–64 letters, digits, `.`, `_`, `-`. Default: `snap-` and the
    /// creation time.
    pub name: Option<String>,
}

/// One snapshot.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct SnapshotOut {
    pub name: String,
    /// The snapshot's pcapng file: open it with `wirelens mcp --pcap PATH`, Wireshark, or
    /// `export_pcap {snapshot}`.
    pub path: String,
    /// Download URL of the pcapng (HTTP transport only; same bearer token as `/mcp`).
    pub download_url: Option<String>,
    /// When it was made (RFC 3339).
    pub created: String,
    pub since: Option<String>,
    pub until: Option<String>,
    pub filter: Option<String>,
    /// Where the packets came from.
    pub source: String,
    pub packets: u64,
    /// Connections with packets in the snapshot.
    pub flows: u64,
    /// Entries that matched when it was made (stored beside the packets).
    pub entries: u64,
    /// Bytes of the snapshot's files.
    pub bytes: u64,
    pub first_packet: Option<String>,
    pub last_packet: Option<String>,
    /// TLS sessions whose secrets are embedded (Decryption Secrets Block).
    pub tls_sessions_with_keys: u64,
}

/// Result of `create_snapshot`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct CreateSnapshotResult {
    pub snapshot: SnapshotOut,
    /// Notes: where the packets came from, what could not be kept.
    pub notes: Vec<String>,
    pub coverage: Coverage,
}

/// `list_snapshots` takes no arguments.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListSnapshotsParams {}

/// Result of `list_snapshots`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ListSnapshotsResult {
    /// Oldest first.
    pub snapshots: Vec<SnapshotOut>,
    /// Where snapshots are kept.
    pub directory: String,
}

/// Arguments of `delete_snapshot`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeleteSnapshotParams {
    /// The snapshot to delete (see `list_snapshots`).
    pub name: String,
}

/// Result of `delete_snapshot`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct DeleteSnapshotResult {
    /// What was deleted.
    pub deleted: SnapshotOut,
}

/// Arguments of `export_pcap`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExportPcapParams {
    /// A KFL filter over entries or flows (`http && status >= 500`, `conn_state == "reset"`):
    /// the connections it matches as a flow, or that carry an entry it matches, are exported
    /// whole. Without it, every connection.
    pub filter: Option<String>,
    /// Only packets (and connections) from this time: RFC 3339, or a duration before the
    /// newest capture time (`5m`).
    pub since: Option<String>,
    /// Only packets (and connections) up to this time, inclusive (`0s`: the newest packet).
    pub until: Option<String>,
    /// Export from this snapshot (re-dissected for the filter) instead of the current capture.
    pub snapshot: Option<String>,
}

/// Result of `export_pcap`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ExportPcapResult {
    /// The pcapng file written.
    pub path: String,
    /// Download URL (HTTP transport only; same bearer token as `/mcp`).
    pub download_url: Option<String>,
    /// Packets written.
    pub packets: u64,
    /// Connections with packets in the file.
    pub flows: u64,
    /// Connections the filter selected.
    pub flows_selected: u64,
    /// Selected connections none of whose packets were found (rotated out of the raw ring, or
    /// outside `since`/`until`).
    pub flows_without_packets: u64,
    /// Entries the filter matched.
    pub entries_matched: u64,
    pub bytes: u64,
    pub first_packet: Option<String>,
    pub last_packet: Option<String>,
    /// TLS sessions whose secrets are embedded in a Decryption Secrets Block (Wireshark then
    /// shows them decrypted).
    pub tls_sessions_with_keys: u64,
    /// Where the packets were read from: `raw ring`, `files`, `demo`, `snapshot NAME`.
    pub packet_source: String,
    /// Milliseconds spent.
    pub elapsed_ms: u64,
    pub notes: Vec<String>,
    pub coverage: Coverage,
}

/// Arguments of `export_har`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExportHarParams {
    /// A KFL filter over entries; only HTTP/1.x, HTTP/2 and gRPC entries are exported.
    pub filter: Option<String>,
    /// Only entries from this time (RFC 3339, or a duration before the newest capture time).
    pub since: Option<String>,
    /// Only entries up to this time, inclusive.
    pub until: Option<String>,
    /// Export from this snapshot (re-dissected) instead of the current capture.
    pub snapshot: Option<String>,
    /// Entries written at most: 1–100000, default 10000 (the newest are kept).
    #[schemars(range(min = 1, max = 100000))]
    pub limit: Option<u32>,
}

/// Result of `export_har`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ExportHarResult {
    /// The HAR 1.2 file written.
    pub path: String,
    /// Download URL (HTTP transport only; same bearer token as `/mcp`).
    pub download_url: Option<String>,
    /// Entries written.
    pub entries: u64,
    /// HTTP entries that matched (more than `entries` when `limit` cut them).
    pub entries_matched: u64,
    /// Bodies written base64-encoded (binary content).
    pub bodies_base64: u64,
    /// Bodies cut at the capture limit (their HAR text is the captured part).
    pub bodies_truncated: u64,
    pub bytes: u64,
    pub elapsed_ms: u64,
    pub notes: Vec<String>,
    pub coverage: Coverage,
}

/// The raw capture ring in `capture_status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct RawRingStatus {
    pub directory: String,
    /// The byte budget (`--raw-ring-size`) and the size of one segment.
    pub max_bytes: u64,
    pub segment_bytes: u64,
    /// The ring's own filter (`--raw-ring-filter`).
    pub filter: Option<String>,
    pub bytes_on_disk: u64,
    pub segments: u64,
    /// Segments found in the directory at start (kept from a previous run).
    pub segments_recovered: u64,
    /// Segments deleted to stay within the budget (oldest first).
    pub segments_deleted: u64,
    /// Oldest and newest packet on disk (RFC 3339).
    pub oldest: Option<String>,
    pub newest: Option<String>,
    pub packets_offered: u64,
    pub packets_filtered_out: u64,
    pub packets_written: u64,
    pub bytes_written: u64,
    /// Packets dropped because the writer fell behind (its queue was full).
    pub dropped_queue_full: u64,
    /// Packets lost to write errors (see `last_error`).
    pub dropped_write_errors: u64,
    pub queued_bytes: u64,
    /// Over the last ten seconds.
    pub write_rate_bytes_per_s: f64,
    pub write_rate_packets_per_s: f64,
    pub last_error: Option<String>,
}
