//! Cluster mode: `wirelens agent` on every node captures and answers queries over HTTP/2 with
//! mutual TLS; `wirelens serve --agents …` (the hub) serves MCP and answers each tool by asking
//! every agent, with the filter pushed down, and merging their answers.

pub mod agent;
pub mod exports;
pub mod hub;
pub mod merge;
pub mod scope;
pub mod tls;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `GET /v1/info`: who the agent is and what it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Its name: the node's name (`--node-name`), else the host name.
    pub name: String,
    /// A random id of this agent process: a new one means the agent restarted.
    pub instance: String,
    pub started_at: String,
    pub locality: scope::Locality,
    /// It holds every entry it saw since this capture time (ns).
    pub holds_since_ns: u64,
    pub version: String,
    pub coverage: tools_schema::Coverage,
}

/// `POST /v1/call`: one tool, with the hub's scope.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallRequest {
    pub tool: String,
    pub args: Map<String, Value>,
    pub scope: scope::Scope,
}

/// An agent's error reply (any status but 200).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallError {
    pub error: String,
    /// True when the tool rejected the arguments (the hub reports it as the tool's error, once).
    #[serde(default)]
    pub tool_error: bool,
}

/// The agents' internal tools: what the hub merges instead of finished results.
pub const LIST_ENTRIES_KEYED: &str = "list_entries.keyed";
pub const API_STATS_PARTIAL: &str = "api_stats.partial";
pub const SERVICE_MAP_PARTIAL: &str = "service_map.partial";
pub const TCP_INSIGHTS_PARTIAL: &str = "tcp_insights.partial";
pub const LIST_FLOWS_PARTIAL: &str = "list_flows.partial";
pub const FLOW_SUMMARY_PARTIAL: &str = "flow_summary.partial";
