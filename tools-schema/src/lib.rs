//! tools-schema: the wirelens vocabulary shared by the MCP tools and their callers.
//!
//! Tool parameters and results, with serde and JSON Schema (schemars) derives. It does no I/O and
//! does not depend on the engine; `mcp-server` converts engine values into these types. Field
//! names follow the outside contract (`shared/CONTRACT.md`): add fields freely, rename none.

pub mod coverage;
pub mod entries;
pub mod flows;
pub mod forensics;
pub mod k8s;
pub mod payload;
pub mod stats;
pub mod status;

pub use coverage::{AgentCoverage, Coverage, CoverageDrops, SourceBpf, SourceSummary};
pub use entries::{
    Endpoint, EntrySummary, FilterError, ListEntriesParams, ListEntriesResult, Order, ValidateFilterParams,
    ValidateFilterResult, WatchEntriesParams, WatchEntriesResult,
};
pub use flows::{
    FlowGroupOut, FlowListItem, FlowOut, FlowSummaryParams, FlowSummaryResult, FlowTransport, GroupBy, KernelTcpOut,
    ListFlowsParams, ListFlowsResult, Talker, TcpInsightsParams, TcpInsightsResult, TcpMetricsOut,
};
pub use forensics::{
    CreateSnapshotParams, CreateSnapshotResult, DeleteSnapshotParams, DeleteSnapshotResult, ExportHarParams,
    ExportHarResult, ExportPcapParams, ExportPcapResult, ListSnapshotsParams, ListSnapshotsResult, RawRingStatus,
    SnapshotOut,
};
pub use k8s::{
    ListWorkloadsParams, ListWorkloadsResult, MapEdge, MapLevel, MapNode, NodeTraffic, PodOut, ServiceMapParams,
    ServiceMapResult, WorkloadOut,
};
pub use payload::{BodyDecode, GetPayloadParams, GetPayloadResult, Header, MessagePayload, Part, TlsConnOut};
pub use stats::{ApiGroup, ApiGroupBy, ApiStatsParams, ApiStatsResult, LatencyMs, StatusCount};
pub use status::{
    CaptureStatus, CaptureStatusParams, EbpfHook, EbpfStatus, IdentityStatus, KernelRtt, MemoryStatus, RedactionStatus,
    TlsTarget,
};

/// Strips `format` values that are not standard JSON Schema (`uint64`, `int32`, `double`…) from
/// a generated schema; strict clients warn on them. `minimum: 0` stays.
pub fn strip_nonstandard_formats(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            let nonstandard = map.get("format").and_then(|f| f.as_str()).is_some_and(|f| {
                matches!(
                    f,
                    "uint"
                        | "uint8"
                        | "uint16"
                        | "uint32"
                        | "uint64"
                        | "uint128"
                        | "int"
                        | "int8"
                        | "int16"
                        | "int32"
                        | "int64"
                        | "int128"
                        | "float"
                        | "double"
                        | "usize"
                        | "isize"
                )
            });
            if nonstandard {
                map.remove("format");
            }
            for (_, child) in map.iter_mut() {
                strip_nonstandard_formats(child);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nonstandard_formats),
        _ => {}
    }
}

/// The JSON Schema of `T` as an object, with non-standard formats stripped.
pub fn schema_object<T: schemars::JsonSchema>() -> serde_json::Map<String, serde_json::Value> {
    let mut v = serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default();
    strip_nonstandard_formats(&mut v);
    match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_stripped() {
        let s = serde_json::Value::Object(schema_object::<ListEntriesResult>()).to_string();
        assert!(!s.contains("uint64") && !s.contains("\"double\""), "{s}");
        assert!(s.contains("\"minimum\":0"), "{s}");
    }
}
