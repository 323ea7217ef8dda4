//! `list_entries`: the request/response entries found on the wire.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::coverage::Coverage;

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Newest first (the default).
    #[default]
    Desc,
    /// Oldest first.
    Asc,
}

/// Arguments of `list_entries`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListEntriesParams {
    /// A KFL filter, e.g. `http && status >= 500 && path.startsWith("/api")`. The language
    /// reference is the resource `wirelens://kfl/reference`; `validate_filter` checks a filter.
    pub filter: Option<String>,
    /// Only entries of this protocol: `http` (any HTTP version), `http/1.1` or `http/1.0`.
    pub protocol: Option<String>,
    /// Only entries at or after this time: RFC 3339 (`2026-01-15T10:00:00Z`) or a duration before
    /// the newest capture time (`30s`, `5m`, `2h`).
    pub since: Option<String>,
    /// Only entries before this time (same forms as `since`).
    pub until: Option<String>,
    /// Page size: 1–1000, default 50.
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page, passed back unchanged.
    pub cursor: Option<String>,
    /// Return only these fields per entry, as flat objects (e.g. `["method","path","status"]`).
    /// Dotted names such as `src.ip` are allowed. Fields that do not apply are null.
    pub fields: Option<Vec<String>>,
    /// `desc` (newest first, default) or `asc` (oldest first).
    pub order: Option<Order>,
}

/// A network endpoint, with its Kubernetes identity when known.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Endpoint {
    pub ip: String,
    pub port: u16,
    /// Best name: pod, else service, else node. Absent when the address is not a cluster's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `Kind/name` of the workload, e.g. `Deployment/orders`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// The first service selecting the pod (or the ClusterIP's service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// One entry as listed: the fields every entry has, then its protocol's fields (named as in the
/// field registry, e.g. `method`, `status` for HTTP; `redis_command` for Redis).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct EntrySummary {
    /// Stable id; pass it to `get_payload`.
    pub id: String,
    /// Capture time of the first request byte (RFC 3339, UTC, microseconds).
    pub timestamp: String,
    /// `http/1.1`, `http/1.0`, …
    pub protocol: String,
    /// `tcp` or `udp`.
    pub transport: String,
    /// The requester (client).
    pub src: Endpoint,
    /// The responder (server).
    pub dst: Endpoint,
    pub flow_id: u64,
    /// First request byte to last response byte, ms; null without a response.
    pub elapsed_ms: Option<f64>,
    /// One line describing the exchange (payload text escaped and cut).
    pub summary: String,
    /// Carried in TLS and seen in plaintext: from a process's TLS library (eBPF uprobes), or
    /// decrypted with a key log (then `decrypted` too). Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
    /// Decrypted from captured TLS records with `--keylog` secrets. Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub decrypted: bool,
    /// The protocol's own fields; null when unknown (e.g. `status` without a response).
    #[serde(flatten)]
    pub protocol_fields: serde_json::Map<String, serde_json::Value>,
}

/// Result of `list_entries`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ListEntriesResult {
    /// Entries of this page: `EntrySummary` objects, or flat objects holding exactly the
    /// requested `fields`.
    pub entries: Vec<serde_json::Map<String, serde_json::Value>>,
    /// Pass as `cursor` for the next page; null at the end.
    pub next_cursor: Option<String>,
    /// Entries matching the arguments in the whole store (all pages).
    pub total_matched: u64,
    pub coverage: Coverage,
}

/// Arguments of `validate_filter`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ValidateFilterParams {
    /// The KFL filter to check.
    pub filter: String,
}

/// One problem in a filter.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct FilterError {
    pub message: String,
    /// 1-based line of the offending text.
    pub line: usize,
    /// 1-based column (characters) of the offending text.
    pub column: usize,
    /// The source line with a caret under the offending text.
    pub excerpt: String,
    /// The likely fix, e.g. the closest field name.
    pub suggestion: Option<String>,
}

/// Result of `validate_filter`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ValidateFilterResult {
    pub valid: bool,
    /// The canonical form of the filter (null when invalid).
    pub normalized: Option<String>,
    /// Canonical names of the fields the filter reads.
    pub fields: Vec<String>,
    pub errors: Vec<FilterError>,
}

/// Arguments of `watch_entries`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WatchEntriesParams {
    /// A KFL filter: only matching entries are returned (and waited for).
    pub filter: Option<String>,
    /// How long to wait for a matching entry: 0–30000 ms, default 10000. 0 returns at once.
    #[schemars(range(min = 0, max = 30000))]
    pub timeout_ms: Option<u32>,
    /// Entries returned at most: 1–1000, default 50.
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous call. Without it, only entries stored after this call
    /// started count.
    pub cursor: Option<String>,
    /// Return only these fields per entry (as in `list_entries`).
    pub fields: Option<Vec<String>>,
}

/// Result of `watch_entries`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct WatchEntriesResult {
    /// New matching entries, in the order they were stored.
    pub entries: Vec<serde_json::Map<String, serde_json::Value>>,
    /// Pass back as `cursor` to continue where this call stopped (always set).
    pub next_cursor: String,
    /// More matching entries are already stored: call again at once.
    pub more: bool,
    /// No matching entry arrived within `timeout_ms`.
    pub timed_out: bool,
    pub waited_ms: u64,
    pub coverage: Coverage,
}
