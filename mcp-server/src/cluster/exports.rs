//! The hub's exports and snapshots: every agent writes its part on its node (the connections it
//! reports, by the scope rule), and the hub joins them into one file in its own export
//! directory: a pcapng of one section per agent (Wireshark and wirelens read such files whole),
//! or one HAR whose entries are ordered by time. A snapshot is made on every agent under one
//! name; `export_pcap {snapshot}` on the hub joins its parts.

use std::path::Path;

use serde_json::{Map, Value};
use tools_schema::{
    CreateSnapshotResult, DeleteSnapshotResult, ExportHarResult, ExportPcapResult, ListSnapshotsResult, SnapshotOut,
};

use super::hub::{Hub, Round};
use super::merge::coverage;
use crate::state::AppState;
use crate::tools::ToolError;
use crate::tools::forensics::{download_url, export_path};

fn file_name(path: &str) -> Result<&str, ToolError> {
    Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ToolError(format!("an agent named no export file (`{path}`)")))
}

fn min_opt(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

impl Hub {
    /// Creates `path` (private: exports hold raw traffic) and appends the agents' files to it.
    fn join_files(&self, files: &[(String, String)], path: &Path) -> Result<u64, ToolError> {
        self.block_on(async {
            let mut out = tokio::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .open(path)
                .await
                .map_err(|e| ToolError(format!("creating {}: {e}", path.display())))?;
            let mut total = 0;
            for (agent, file) in files {
                total += self.fetch_export(agent, file, &mut out).await.map_err(ToolError)?;
            }
            Ok(total)
        })
    }

    pub fn export_pcap(&self, state: &AppState, args: Map<String, Value>) -> Result<ExportPcapResult, ToolError> {
        let started = std::time::Instant::now();
        let round: Round<ExportPcapResult> = self.ask_all("export_pcap", &args)?;
        let path = export_path(state, "pcapng")?;
        let mut files = Vec::new();
        let mut out = ExportPcapResult::default();
        let mut sources = Vec::new();
        for (agent, r) in &round.answers {
            files.push((agent.clone(), file_name(&r.path)?.to_string()));
            out.packets += r.packets;
            out.flows += r.flows;
            out.flows_selected += r.flows_selected;
            out.flows_without_packets += r.flows_without_packets;
            out.entries_matched += r.entries_matched;
            out.tls_sessions_with_keys += r.tls_sessions_with_keys;
            out.first_packet = min_opt(out.first_packet.take(), r.first_packet.clone());
            out.last_packet = out.last_packet.take().max(r.last_packet.clone());
            sources.push(format!("{agent}: {}", r.packet_source));
            out.notes.extend(r.notes.iter().map(|n| format!("agent {agent}: {n}")));
        }
        out.bytes = self.join_files(&files, &path)?;
        out.notes.push(format!(
            "one pcapng section per agent ({}); packets of a connection both nodes captured are in the section of the agent that reports it",
            files.iter().map(|f| f.0.as_str()).collect::<Vec<_>>().join(", ")
        ));
        out.packet_source = sources.join("; ");
        out.download_url = download_url(state, &path);
        out.path = path.display().to_string();
        out.elapsed_ms = started.elapsed().as_millis() as u64;
        out.coverage = coverage(&round);
        Ok(out)
    }

    pub fn export_har(&self, state: &AppState, args: Map<String, Value>) -> Result<ExportHarResult, ToolError> {
        let started = std::time::Instant::now();
        let round: Round<ExportHarResult> = self.ask_all("export_har", &args)?;
        let mut har: Option<Value> = None;
        let mut entries: Vec<Value> = Vec::new();
        let mut out = ExportHarResult::default();
        let scratch = export_path(state, "har")?;
        for (agent, r) in &round.answers {
            let file = file_name(&r.path)?.to_string();
            // Each agent's HAR, read whole: a HAR is one JSON document.
            let part = scratch.with_extension(format!("{agent}.part"));
            self.join_files(&[(agent.clone(), file)], &part)?;
            let text = std::fs::read(&part).map_err(|e| ToolError(format!("reading {}: {e}", part.display())))?;
            let _ = std::fs::remove_file(&part);
            let mut v: Value = serde_json::from_slice(&text)
                .map_err(|e| ToolError(format!("the HAR of agent {agent} does not parse: {e}")))?;
            if let Some(Value::Array(es)) = v.pointer_mut("/log/entries").map(Value::take) {
                entries.extend(es);
            }
            har.get_or_insert(v);
            out.entries += r.entries;
            out.entries_matched += r.entries_matched;
            out.bodies_base64 += r.bodies_base64;
            out.bodies_truncated += r.bodies_truncated;
            out.notes.extend(r.notes.iter().map(|n| format!("agent {agent}: {n}")));
        }
        entries.sort_by(|a, b| {
            let t = |v: &Value| v.get("startedDateTime").and_then(Value::as_str).map(str::to_string);
            t(a).cmp(&t(b))
        });
        let mut har = har.unwrap_or_else(|| serde_json::json!({"log": {"version": "1.2", "entries": []}}));
        if let Some(slot) = har.pointer_mut("/log/entries") {
            *slot = Value::Array(entries);
        }
        let text = serde_json::to_vec_pretty(&har).map_err(|e| ToolError(format!("export_har: {e}")))?;
        std::fs::write(&scratch, &text).map_err(|e| ToolError(format!("writing {}: {e}", scratch.display())))?;
        out.bytes = text.len() as u64;
        out.download_url = download_url(state, &scratch);
        out.path = scratch.display().to_string();
        out.elapsed_ms = started.elapsed().as_millis() as u64;
        out.coverage = coverage(&round);
        Ok(out)
    }

    pub fn create_snapshot(&self, args: Map<String, Value>) -> Result<CreateSnapshotResult, ToolError> {
        let mut args = args;
        if !args.contains_key("name") {
            // One name on every agent.
            let stamp = capture_core::time::Timestamp::now()
                .to_rfc3339()
                .replace([':', '-'], "");
            let stamp = stamp.split('.').next().unwrap_or_default().to_lowercase();
            args.insert("name".into(), Value::String(format!("snap-{stamp}")));
        }
        let round: Round<CreateSnapshotResult> = self.ask_all("create_snapshot", &args)?;
        let mut notes = Vec::new();
        let parts: Vec<(String, SnapshotOut)> = round
            .answers
            .iter()
            .map(|(agent, r)| {
                notes.extend(r.notes.iter().map(|n| format!("agent {agent}: {n}")));
                (agent.clone(), r.snapshot.clone())
            })
            .collect();
        notes
            .push("the snapshot is kept on every agent under this name: export_pcap {snapshot} joins its parts".into());
        Ok(CreateSnapshotResult {
            snapshot: join_snapshots(&parts),
            notes,
            coverage: coverage(&round),
        })
    }

    pub fn list_snapshots(&self, args: Map<String, Value>) -> Result<ListSnapshotsResult, ToolError> {
        let round: Round<ListSnapshotsResult> = self.ask_all("list_snapshots", &args)?;
        let mut by_name: std::collections::BTreeMap<String, Vec<(String, SnapshotOut)>> = Default::default();
        let mut dirs = Vec::new();
        for (agent, r) in &round.answers {
            dirs.push(format!("{agent}: {}", r.directory));
            for s in &r.snapshots {
                by_name
                    .entry(s.name.clone())
                    .or_default()
                    .push((agent.clone(), s.clone()));
            }
        }
        Ok(ListSnapshotsResult {
            snapshots: by_name.values().map(|parts| join_snapshots(parts)).collect(),
            directory: dirs.join("; "),
        })
    }

    pub fn delete_snapshot(&self, args: Map<String, Value>) -> Result<DeleteSnapshotResult, ToolError> {
        let round: Round<DeleteSnapshotResult> = self.ask_all("delete_snapshot", &args)?;
        let parts: Vec<(String, SnapshotOut)> = round
            .answers
            .iter()
            .map(|(a, r)| (a.clone(), r.deleted.clone()))
            .collect();
        Ok(DeleteSnapshotResult {
            deleted: join_snapshots(&parts),
        })
    }
}

/// One snapshot made of its parts on several agents: counts summed, the widest window, every
/// part's path named by agent.
fn join_snapshots(parts: &[(String, SnapshotOut)]) -> SnapshotOut {
    let mut s = SnapshotOut::default();
    let mut paths = Vec::new();
    let mut sources = Vec::new();
    for (agent, p) in parts {
        if s.name.is_empty() {
            s.name = p.name.clone();
            s.created = p.created.clone();
            s.since = p.since.clone();
            s.until = p.until.clone();
            s.filter = p.filter.clone();
        }
        paths.push(format!("{agent}:{}", p.path));
        sources.push(format!("{agent}: {}", p.source));
        s.packets += p.packets;
        s.flows += p.flows;
        s.entries += p.entries;
        s.bytes += p.bytes;
        s.tls_sessions_with_keys += p.tls_sessions_with_keys;
        s.first_packet = min_opt(s.first_packet.take(), p.first_packet.clone());
        s.last_packet = s.last_packet.take().max(p.last_packet.clone());
    }
    s.path = paths.join(" ");
    s.source = sources.join("; ");
    s
}
