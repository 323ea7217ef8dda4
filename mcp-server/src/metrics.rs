//! Counters of the server itself (tool calls and their latency, by tool) and the Prometheus text
//! exposition of those plus the engine's volumes, store and drops, for `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::state::AppState;
use crate::tools;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

#[derive(Default)]
struct ToolMetrics {
    calls: AtomicU64,
    errors: AtomicU64,
    /// Cumulative counts per bucket are derived at render time; these are per-bucket counts, the
    /// last one being +Inf.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    micros_sum: AtomicU64,
}

/// Per-tool counters, one slot per entry of [`tools::TOOLS`] in that order.
pub struct Metrics {
    tools: Vec<ToolMetrics>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            tools: tools::TOOLS.iter().map(|_| ToolMetrics::default()).collect(),
        }
    }
}

impl Metrics {
    /// Records one call of `tool` (unknown names are ignored).
    pub fn record(&self, tool: &str, elapsed: Duration, ok: bool) {
        let Some(i) = tools::TOOLS.iter().position(|t| t.0 == tool) else {
            return;
        };
        let m = &self.tools[i];
        m.calls.fetch_add(1, Ordering::Relaxed);
        if !ok {
            m.errors.fetch_add(1, Ordering::Relaxed);
        }
        let secs = elapsed.as_secs_f64();
        let b = BUCKETS.iter().position(|&le| secs <= le).unwrap_or(BUCKETS.len());
        m.buckets[b].fetch_add(1, Ordering::Relaxed);
        m.micros_sum.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Calls recorded for `tool` so far.
    pub fn calls(&self, tool: &str) -> u64 {
        tools::TOOLS
            .iter()
            .position(|t| t.0 == tool)
            .map_or(0, |i| self.tools[i].calls.load(Ordering::Relaxed))
    }
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Escapes a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

/// The Prometheus text exposition (version 0.0.4) of the engine and the server.
pub fn render(state: &AppState) -> String {
    let status = tools::capture_status::run(state, serde_json::Map::new()).unwrap_or_default();
    let mut out = String::with_capacity(8 << 10);
    let simple = |out: &mut String, name: &str, kind: &str, help: &str, v: u64| {
        metric(out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    };
    simple(
        &mut out,
        "wirelens_packets_total",
        "counter",
        "Packets decoded (after the capture filter, if any).",
        status.packets,
    );
    simple(
        &mut out,
        "wirelens_packets_filtered_out_total",
        "counter",
        "Packets the capture filter (--bpf) rejected before decoding (files and the demo).",
        status.filtered_out_packets,
    );
    if let Some(r) = &status.raw_ring {
        for (name, kind, help, v) in [
            (
                "wirelens_raw_ring_bytes",
                "gauge",
                "Bytes of the raw capture ring on disk.",
                r.bytes_on_disk,
            ),
            (
                "wirelens_raw_ring_segments",
                "gauge",
                "Segments of the raw capture ring on disk.",
                r.segments,
            ),
            (
                "wirelens_raw_ring_packets_written_total",
                "counter",
                "Packets written to the raw capture ring.",
                r.packets_written,
            ),
            (
                "wirelens_raw_ring_bytes_written_total",
                "counter",
                "Bytes written to the raw capture ring.",
                r.bytes_written,
            ),
            (
                "wirelens_raw_ring_dropped_total",
                "counter",
                "Packets the raw capture ring dropped (queue full or write errors).",
                r.dropped_queue_full + r.dropped_write_errors,
            ),
        ] {
            simple(&mut out, name, kind, help, v);
        }
    }
    simple(
        &mut out,
        "wirelens_bytes_total",
        "counter",
        "Captured bytes read.",
        status.bytes,
    );
    simple(
        &mut out,
        "wirelens_wire_bytes_total",
        "counter",
        "Bytes on the wire (original lengths).",
        status.wire_bytes,
    );
    simple(
        &mut out,
        "wirelens_flows_active",
        "gauge",
        "Flows in the flow table.",
        status.flows.active,
    );
    simple(
        &mut out,
        "wirelens_flows_created_total",
        "counter",
        "Flows created.",
        status.flows.created,
    );
    simple(
        &mut out,
        "wirelens_store_entries",
        "gauge",
        "Entries held in the store.",
        status.store.entries,
    );
    simple(
        &mut out,
        "wirelens_store_bytes",
        "gauge",
        "Bytes held by the store.",
        status.store.bytes,
    );
    simple(
        &mut out,
        "wirelens_store_budget_bytes",
        "gauge",
        "The store's memory budget.",
        status.store.budget_bytes,
    );
    simple(
        &mut out,
        "wirelens_store_inserted_total",
        "counter",
        "Entries inserted into the store.",
        status.store.inserted,
    );
    simple(
        &mut out,
        "wirelens_store_evicted_total",
        "counter",
        "Entries evicted by the store budget.",
        status.store.evicted,
    );
    metric(
        &mut out,
        "wirelens_drops_total",
        "counter",
        "Data dropped or anomalies counted, by cause (see capture_status).",
    );
    for (k, v) in &status.drops {
        let _ = writeln!(out, "wirelens_drops_total{{cause=\"{}\"}} {v}", label(k));
    }
    metric(
        &mut out,
        "wirelens_tool_calls_total",
        "counter",
        "MCP tool calls, by tool.",
    );
    for (i, t) in tools::TOOLS.iter().enumerate() {
        let _ = writeln!(
            out,
            "wirelens_tool_calls_total{{tool=\"{}\"}} {}",
            t.0,
            state.metrics.tools[i].calls.load(Ordering::Relaxed)
        );
    }
    metric(
        &mut out,
        "wirelens_tool_errors_total",
        "counter",
        "MCP tool calls that returned an error, by tool.",
    );
    for (i, t) in tools::TOOLS.iter().enumerate() {
        let _ = writeln!(
            out,
            "wirelens_tool_errors_total{{tool=\"{}\"}} {}",
            t.0,
            state.metrics.tools[i].errors.load(Ordering::Relaxed)
        );
    }
    metric(
        &mut out,
        "wirelens_tool_duration_seconds",
        "histogram",
        "Time spent in MCP tool calls, by tool.",
    );
    for (i, t) in tools::TOOLS.iter().enumerate() {
        let m = &state.metrics.tools[i];
        let mut cumulative = 0;
        for (b, le) in BUCKETS.iter().enumerate() {
            cumulative += m.buckets[b].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "wirelens_tool_duration_seconds_bucket{{tool=\"{}\",le=\"{le}\"}} {cumulative}",
                t.0
            );
        }
        cumulative += m.buckets[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "wirelens_tool_duration_seconds_bucket{{tool=\"{}\",le=\"+Inf\"}} {cumulative}",
            t.0
        );
        let sum = m.micros_sum.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "wirelens_tool_duration_seconds_sum{{tool=\"{}\"}} {sum}", t.0);
        let _ = writeln!(
            out,
            "wirelens_tool_duration_seconds_count{{tool=\"{}\"}} {cumulative}",
            t.0
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_counts_match() {
        let m = Metrics::default();
        m.record("list_entries", Duration::from_micros(100), true);
        m.record("list_entries", Duration::from_millis(3), true);
        m.record("list_entries", Duration::from_secs(9), false);
        m.record("no_such_tool", Duration::from_secs(1), true);
        assert_eq!(m.calls("list_entries"), 3);
        assert_eq!(m.calls("get_payload"), 0);
        let state = AppState::empty_for_tests(m);
        let text = render(&state);
        assert!(
            text.contains("wirelens_tool_calls_total{tool=\"list_entries\"} 3"),
            "{text}"
        );
        assert!(text.contains("wirelens_tool_errors_total{tool=\"list_entries\"} 1"));
        assert!(text.contains("wirelens_tool_duration_seconds_bucket{tool=\"list_entries\",le=\"0.00025\"} 1"));
        assert!(text.contains("wirelens_tool_duration_seconds_bucket{tool=\"list_entries\",le=\"0.005\"} 2"));
        assert!(text.contains("wirelens_tool_duration_seconds_bucket{tool=\"list_entries\",le=\"5\"} 2"));
        assert!(text.contains("wirelens_tool_duration_seconds_bucket{tool=\"list_entries\",le=\"+Inf\"} 3"));
        assert!(text.contains("wirelens_tool_duration_seconds_count{tool=\"list_entries\"} 3"));
        assert!(text.contains("wirelens_packets_total 0"));
        // Every sample line belongs to a declared metric.
        let declared: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                declared.contains(&name) || declared.contains(&base),
                "undeclared {name}"
            );
        }
    }
}
