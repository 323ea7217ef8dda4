//! The tools, as plain functions: arguments (a JSON object) → engine → result. Both the MCP
//! server and `wirelens call` run them, so the two cannot disagree.

pub mod api_stats;
pub mod capture_status;
pub mod detail;
pub mod filter;
pub mod flows;
pub mod forensics;
pub mod get_payload;
pub mod har;
pub mod list_entries;
pub mod list_workloads;
pub mod service_map;
pub mod tcp_insights;
pub mod untrusted;
pub mod watch_entries;
pub mod work;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::state::AppState;

/// A tool error: what was wrong and how to fix it. Shown to the caller as `isError` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError(pub String);

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ToolError {}

pub fn err<T>(msg: impl Into<String>) -> Result<T, ToolError> {
    Err(ToolError(msg.into()))
}

/// Parses tool arguments, turning serde's message into one that names the argument.
pub fn parse_args<T: DeserializeOwned>(tool: &str, args: Map<String, Value>) -> Result<T, ToolError> {
    serde_path_to_error::deserialize(Value::Object(args)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = if path.is_empty() || path == "." {
            String::new()
        } else {
            format!(" argument `{path}`:")
        };
        ToolError(format!(
            "{tool}: invalid arguments:{at} {inner}. See the tool's input schema for the accepted arguments."
        ))
    })
}

/// The tools in a fixed order: (name, title, description).
pub const TOOLS: &[(&str, &str, &str)] = &[
    ("list_entries", "List entries", list_entries::DESCRIPTION),
    ("get_payload", "Get an entry's payload", get_payload::DESCRIPTION),
    ("capture_status", "Capture status", capture_status::DESCRIPTION),
    ("tcp_insights", "TCP insights", tcp_insights::DESCRIPTION),
    ("validate_filter", "Validate a KFL filter", filter::DESCRIPTION),
    ("list_flows", "List flows", flows::LIST_DESCRIPTION),
    ("flow_summary", "Flow summary", flows::SUMMARY_DESCRIPTION),
    ("api_stats", "API statistics", api_stats::DESCRIPTION),
    ("service_map", "Service map", service_map::DESCRIPTION),
    ("list_workloads", "List workloads", list_workloads::DESCRIPTION),
    ("watch_entries", "Watch entries", watch_entries::DESCRIPTION),
    (
        "export_pcap",
        "Export packets as pcapng",
        forensics::EXPORT_PCAP_DESCRIPTION,
    ),
    ("export_har", "Export HTTP as HAR", har::DESCRIPTION),
    (
        "create_snapshot",
        "Create a snapshot",
        forensics::CREATE_SNAPSHOT_DESCRIPTION,
    ),
    (
        "list_snapshots",
        "List snapshots",
        forensics::LIST_SNAPSHOTS_DESCRIPTION,
    ),
    (
        "delete_snapshot",
        "Delete a snapshot",
        forensics::DELETE_SNAPSHOT_DESCRIPTION,
    ),
];

/// Runs a tool by name and returns its structured result.
pub fn call(state: &AppState, name: &str, args: Map<String, Value>) -> Result<Value, CallError> {
    let to_json = |r: Result<Value, serde_json::Error>| {
        r.map(|mut v| {
            untrusted::escape_value(&mut v);
            v
        })
        .map_err(|e| CallError::Tool(ToolError(format!("internal: {e}"))))
    };
    match name {
        "list_entries" => to_json(serde_json::to_value(list_entries::run(state, args)?)),
        "get_payload" => to_json(serde_json::to_value(get_payload::run(state, args)?)),
        "capture_status" => to_json(serde_json::to_value(capture_status::run(state, args)?)),
        "tcp_insights" => to_json(serde_json::to_value(tcp_insights::run(state, args)?)),
        "list_flows" => to_json(serde_json::to_value(flows::run_list(state, args)?)),
        "validate_filter" => to_json(serde_json::to_value(filter::run_validate(state, args)?)),
        "flow_summary" => to_json(serde_json::to_value(flows::run_summary(state, args)?)),
        "api_stats" => to_json(serde_json::to_value(api_stats::run(state, args)?)),
        "service_map" => to_json(serde_json::to_value(service_map::run(state, args)?)),
        "list_workloads" => to_json(serde_json::to_value(list_workloads::run(state, args)?)),
        "watch_entries" => to_json(serde_json::to_value(watch_entries::run(state, args)?)),
        "export_pcap" => to_json(serde_json::to_value(forensics::run_export_pcap(state, args)?)),
        "export_har" => to_json(serde_json::to_value(har::run(state, args)?)),
        "create_snapshot" => to_json(serde_json::to_value(forensics::run_create_snapshot(state, args)?)),
        "list_snapshots" => to_json(serde_json::to_value(forensics::run_list_snapshots(state, args)?)),
        "delete_snapshot" => to_json(serde_json::to_value(forensics::run_delete_snapshot(state, args)?)),
        other => Err(CallError::UnknownTool(format!(
            "unknown tool `{other}`; the tools are: {}",
            TOOLS.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
        ))),
    }
}

#[derive(Debug)]
pub enum CallError {
    Tool(ToolError),
    UnknownTool(String),
}

impl From<ToolError> for CallError {
    fn from(e: ToolError) -> Self {
        CallError::Tool(e)
    }
}
