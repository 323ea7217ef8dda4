//! `api_stats`: request rates, errors and latency per endpoint, status or method.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::coverage::Coverage;

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ApiGroupBy {
    /// The endpoint called (the default): `GET /orders/{id}` (numbers, UUIDs and hashes become
    /// `{id}`), `pkg.Service/Method` for gRPC, `redis GET`, `kafka PRODUCE topic`, `dns AAAA`,
    /// `amqp Basic.Publish exchange`.
    #[default]
    Endpoint,
    /// The outcome: HTTP status, gRPC status name, DNS rcode name, Redis `ok`/`error`, Kafka
    /// error name, AMQP reply code, `no_response`.
    Status,
    /// HTTP method (other protocols: their command or API, prefixed with the protocol).
    Method,
    /// The protocol (`http`, `grpc`, `redis`, …).
    Protocol,
    /// The responder's workload, `namespace/name` (its address when not in the cluster).
    Workload,
    /// The responder's service, `namespace/name` (its address when it has none).
    Service,
    /// The server: HTTP Host or `:authority`, else the server's IP:port.
    Server,
    /// The responder's pod, `namespace/name` (its address when not in the cluster): tells the
    /// old and new pods of a rollout apart.
    Pod,
    /// The requester's workload, `namespace/name` (its address when not in the cluster): who
    /// calls.
    Client,
}

/// Arguments of `api_stats`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiStatsParams {
    /// A KFL filter: only matching entries count, e.g. `http && host == "api.shop"`, `grpc`,
    /// `dst.port == 6379`.
    pub filter: Option<String>,
    /// `endpoint` (default), `status`, `method`, `protocol`, `server`, `workload` or `service`
    /// (the responder's), `pod` (the responder's pod) or `client` (the requester's workload).
    pub group_by: Option<ApiGroupBy>,
    /// Only entries at or after this time: RFC 3339, or a duration before the newest entry
    /// (`5m`, `1h`).
    pub since: Option<String>,
    /// Only entries before this time (same forms as `since`).
    pub until: Option<String>,
    /// Groups listed, busiest first: 1–200, default 20. The rest are summed in `others`.
    #[schemars(range(min = 1, max = 200))]
    pub limit: Option<u32>,
}

/// Latency percentiles in milliseconds, from request start to response end.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct LatencyMs {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    /// Calls with a measured latency (those with a response).
    pub samples: u64,
}

/// A status and how often it occurred.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct StatusCount {
    pub status: String,
    pub count: u64,
}

/// The numbers of one group (or of all calls, or of the groups not listed).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ApiGroup {
    pub key: String,
    /// Protocols seen in the group.
    pub protocols: Vec<String>,
    pub count: u64,
    /// Calls per second over the window.
    pub rate_per_s: f64,
    /// HTTP 5xx, gRPC non-OK, DNS non-NOERROR, Redis error replies, Kafka error codes, AMQP reply
    /// codes ≥ 300, and calls without a response.
    pub errors: u64,
    /// errors / count.
    pub error_rate: f64,
    /// Absent when no call of the group has a measured latency.
    pub latency_ms: Option<LatencyMs>,
    /// Request and response payload bytes (HTTP bodies; whole messages for the other protocols).
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// The most frequent statuses, at most 5.
    pub top_statuses: Vec<StatusCount>,
    /// One entry of the group, for get_payload (the slowest one with an error if any, else the
    /// slowest).
    pub example_entry_id: Option<String>,
}

/// Result of `api_stats`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ApiStatsResult {
    pub group_by: ApiGroupBy,
    /// Busiest first.
    pub groups: Vec<ApiGroup>,
    /// The groups beyond `limit`, summed (key `(others)`); absent when every group is listed.
    pub others: Option<ApiGroup>,
    /// Every matching call.
    pub total: ApiGroup,
    /// How many groups there were in all.
    pub groups_total: u64,
    /// First and last matching call (RFC 3339) and the seconds between, the rates' denominator
    /// (at least 1 s).
    pub window_from: Option<String>,
    pub window_to: Option<String>,
    pub window_seconds: f64,
    pub coverage: Coverage,
}
