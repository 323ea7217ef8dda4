//! `export_pcap`, `create_snapshot`, `list_snapshots`, `delete_snapshot`: the packets behind
//! the entries, as pcapng files.
//!
//! Where packets come from:
//! - with `--raw-ring`, the ring's segments (a live capture keeps no packets otherwise);
//! - with `--pcap`, the capture files, read again (a pipe cannot be);
//! - with `--demo`, the demo's packets, generated again (they are deterministic);
//! - with `snapshot`, the snapshot's file, dissected again to apply the filter to its entries
//!   and flows.
//!
//! A filter selects connections: those it matches as a flow (`conn_state == "reset"`) and those
//! carrying an entry it matches (`http && status >= 500`). Their packets are found by 5-tuple and
//! time span (see `capture_core::forensics::select`).

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use capture_core::engine::{Engine, Shared};
use capture_core::entry::Entry;
use capture_core::forensics::export::{ExportOptions, ExportSummary, PacketSource, write_pcapng};
use capture_core::forensics::select::{FlowSpan, Selector};
use capture_core::forensics::snapshot::{NewSnapshot, SnapshotInfo};
use capture_core::store::Order as StoreOrder;
use capture_core::time::Timestamp;
use serde_json::{Map, Value};
use tools_schema::{
    CreateSnapshotParams, CreateSnapshotResult, DeleteSnapshotParams, DeleteSnapshotResult, ExportPcapParams,
    ExportPcapResult, ListSnapshotsParams, ListSnapshotsResult, SnapshotOut,
};

use super::{ToolError, err, parse_args};
use crate::convert;
use crate::state::AppState;

pub const EXPORT_PCAP_DESCRIPTION: &str = "Write the packets of the matching connections to a pcapng file, to open in \
Wireshark or tshark (or in wirelens with --pcap). `filter` is KFL over entries or flows: a connection is exported whole \
when it carries a matching entry (`http && status >= 500`) or matches as a flow (`conn_state == \"reset\"`); without \
a filter, every connection. `since`/`until` cut the packets to a window; `snapshot` exports from a snapshot instead of \
the current capture. Packets come from the raw ring (--raw-ring) for live capture, else from the capture files (read \
again) or the demo. When TLS key logs were used, the secrets of the exported TLS sessions (and only those) are \
embedded in a Decryption Secrets Block, so Wireshark shows them decrypted. Returns the file's path (and a download URL \
over HTTP), packets, connections, and the connections whose packets were not found.";

pub const CREATE_SNAPSHOT_DESCRIPTION: &str = "Freeze a time window of the captured packets (the raw ring of a live \
capture, or the capture files) under a name, with the entries that matched, so they outlive the ring's rotation and \
restarts. `since` and `until` (inclusive): RFC 3339 or a duration before the newest capture time (`10m`, `0s`); \
`filter` (KFL over entries or flows) keeps only the matching connections. The snapshot is a pcapng file: \
export_pcap {snapshot} filters it again, and `wirelens mcp --pcap PATH` or Wireshark opens it.";

pub const LIST_SNAPSHOTS_DESCRIPTION: &str = "List the snapshots (oldest first): name, window, filter, packets, \
connections, entries, size, the pcapng path (and a download URL over HTTP).";

pub const DELETE_SNAPSHOT_DESCRIPTION: &str = "Delete a snapshot (its pcapng file and stored entries) for good, by \
name (see list_snapshots). The raw ring and the capture files are not touched.";

/// Connections selected by a filter, and the entries it matched.
pub struct Chosen {
    pub spans: Vec<FlowSpan>,
    pub entries: Vec<Arc<Entry>>,
}

/// Time arguments: `until` is inclusive (`0s` is the newest packet); the returned bound is
/// exclusive.
pub fn window(state: &AppState, since: Option<&str>, until: Option<&str>) -> Result<Window, ToolError> {
    let newest = state.shared.stats.lock().last_ts.or(state.shared.store.stats().newest);
    let parse = |s: Option<&str>, what| s.map(|s| super::list_entries::parse_time(s, what, newest)).transpose();
    let since = parse(since, "since")?;
    let until = parse(until, "until")?.map(|u| Timestamp(u.0.saturating_add(1)));
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        return err("`since` must be before `until`");
    }
    Ok(Window { since, until })
}

#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub since: Option<Timestamp>,
    /// Exclusive.
    pub until: Option<Timestamp>,
}

/// The connections `filter` selects in `w` (every connection without a filter), and the
/// entries it matches (every entry of the window without a filter).
pub fn choose(state: &AppState, filter: Option<&str>, w: Window) -> Result<Chosen, ToolError> {
    let flows = state.shared.flows.snapshot();
    let overlaps =
        |first: Timestamp, last: Timestamp| w.since.is_none_or(|s| last >= s) && w.until.is_none_or(|u| first < u);
    let entry_sel = super::filter::Selection::with_times(state, filter, w.since, w.until)?;
    let flow_sel = super::filter::Selection::with_times(state, filter, None, None)?;
    let mut ids = BTreeSet::new();
    let mut entries = Vec::new();
    state.shared.store.scan(StoreOrder::Asc, None, &mut |e| {
        if entry_sel.matches(e) {
            entries.push(Arc::clone(e));
            if e.flow_id != 0 {
                ids.insert(e.flow_id);
            }
        }
        ControlFlow::Continue(())
    });
    for r in &flows {
        if overlaps(r.first_seen, r.last_seen) && flow_sel.matches(&r.as_entry()) {
            ids.insert(r.id);
        }
    }
    let by_id: HashMap<u64, _> = flows.iter().map(|r| (r.id, r)).collect();
    let mut spans = Vec::with_capacity(ids.len());
    let mut orphans: HashMap<u64, FlowSpan> = HashMap::new();
    for id in ids {
        if let Some(r) = by_id.get(&id) {
            spans.push(FlowSpan {
                id,
                transport: r.transport,
                client: r.client,
                server: r.server,
                first: r.first_seen,
                last: (r.end != capture_core::flows::FlowEnd::Open).then_some(r.last_seen),
            });
        }
    }
    // Entries whose flow record was evicted (max_flow_records): their own span, with a second
    // of slack for the handshake and the close.
    for e in &entries {
        if e.flow_id == 0 || by_id.contains_key(&e.flow_id) {
            continue;
        }
        let end = Timestamp(e.ts.0 + e.elapsed_us.unwrap_or(0) * 1_000 + 1_000_000_000);
        let start = Timestamp(e.ts.0.saturating_sub(1_000_000_000));
        let s = orphans.entry(e.flow_id).or_insert(FlowSpan {
            id: e.flow_id,
            transport: e.transport,
            client: e.src,
            server: e.dst,
            first: start,
            last: Some(end),
        });
        s.first = s.first.min(start);
        s.last = s.last.max(Some(end));
    }
    spans.extend(orphans.into_values());
    Ok(Chosen { spans, entries })
}

/// Owned packets of one link type.
type Packets = Arc<Vec<(Timestamp, Vec<u8>)>>;

/// The demo's packets, generated once per process.
fn demo_packets() -> Packets {
    static DEMO: OnceLock<Packets> = OnceLock::new();
    DEMO.get_or_init(|| {
        let s = capture_core::source::demo::demo_packets(crate::state::DEMO_SEED);
        Arc::new(s.packets.into_iter().map(|p| (p.ts, p.data)).collect())
    })
    .clone()
}

/// Where the current capture's packets can be read again, with a label.
fn packet_sources(state: &AppState, w: Window) -> Result<(Vec<PacketSource>, String, bool), ToolError> {
    let f = &state.forensics;
    if let Some(r) = &f.ring {
        return Ok((
            r.sources(w.since, w.until),
            format!("raw ring {}", r.dir().display()),
            false,
        ));
    }
    if f.live {
        return err(
            "a live capture keeps no packets of its own: start wirelens with --raw-ring DIR --raw-ring-size SIZE \
             (e.g. 1GiB) to keep the most recent packets on disk for snapshots and exports",
        );
    }
    let mut sources = Vec::new();
    for p in &f.pcaps {
        if !std::fs::metadata(p).is_ok_and(|m| m.is_file()) {
            return err(format!(
                "{} is not a regular file (a pipe or a deleted file) and cannot be read again for its packets; \
                 capture to a file and give it with --pcap",
                p.display()
            ));
        }
        sources.push(PacketSource::Path(p.clone()));
    }
    if f.demo {
        sources.push(PacketSource::Memory {
            name: "demo".into(),
            link: capture_core::source::LinkType::ETHERNET,
            packets: demo_packets(),
        });
    }
    let label = match (f.pcaps.is_empty(), f.demo) {
        (false, false) => "files",
        (true, true) => "demo",
        _ => "files and demo",
    };
    Ok((sources, label.into(), true))
}

/// The `--keylog` files' text (the exported sessions' lines go into the file).
fn key_text(state: &AppState) -> Result<Option<String>, ToolError> {
    if state.forensics.keylogs.is_empty() {
        return Ok(None);
    }
    let mut text = String::new();
    for p in &state.forensics.keylogs {
        match std::fs::read(p) {
            Ok(b) => {
                text.push_str(&String::from_utf8_lossy(&b));
                text.push('\n');
            }
            Err(e) => return err(format!("reading the key log {}: {e}", p.display())),
        }
    }
    Ok(Some(text))
}

/// A new file in the export directory (created, private to this user).
pub fn export_path(state: &AppState, ext: &str) -> Result<PathBuf, ToolError> {
    let dir = &state.forensics.export_dir;
    make_private_dir(dir)?;
    // Process-wide: several states (tests, a hub) may export into one directory in one second.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let stamp = Timestamp::now().to_rfc3339().replace([':', '-'], "");
    let stamp = stamp.split('.').next().unwrap_or_default().to_string();
    Ok(dir.join(format!("wirelens-{stamp}-{}-{n}.{ext}", std::process::id())))
}

fn make_private_dir(dir: &Path) -> Result<(), ToolError> {
    capture_core::forensics::private_dir(dir)
        .or_else(|e| if dir.is_dir() { Ok(()) } else { Err(e) })
        .map_err(|e| ToolError(format!("creating the export directory {}: {e}", dir.display())))
}

/// The download URL of a file under the export directory or a snapshot (HTTP transport only).
pub fn download_url(state: &AppState, path: &Path) -> Option<String> {
    let base = state.forensics.download_base.get()?;
    let f = &state.forensics;
    if let Ok(rest) = path.strip_prefix(f.snapshots.dir()) {
        return Some(format!("{base}/snapshots/{}", rest.display()));
    }
    let name = path.strip_prefix(&f.export_dir).ok()?;
    Some(format!("{base}/exports/{}", name.display()))
}

/// A state over a snapshot's packets, dissected again (identities and limits of `state`).
pub fn redissect(state: &AppState, name: &str) -> Result<(AppState, SnapshotInfo), ToolError> {
    let info = state
        .forensics
        .snapshots
        .get(name)
        .map_err(|e| ToolError(e.to_string()))?;
    let mut shared = Shared::with_limits(&state.limits);
    shared.identities = state.shared.identities.clone();
    let mut engine = Engine::new(state.limits.clone(), shared.clone());
    engine
        .read_pcap(&info.packets_path)
        .map_err(|e| ToolError(format!("snapshot `{name}`: {e}")))?;
    Ok((AppState::from_shared(shared, state.limits.clone()), info))
}

fn ts(t: Option<Timestamp>) -> Option<String> {
    t.map(|t| t.to_rfc3339())
}

fn snapshot_out(state: &AppState, s: &SnapshotInfo) -> SnapshotOut {
    SnapshotOut {
        name: s.name.clone(),
        path: s.packets_path.display().to_string(),
        download_url: download_url(state, &s.packets_path),
        created: s.created.to_rfc3339(),
        since: ts(s.since),
        until: ts(s.until),
        filter: s.filter.clone(),
        source: s.source.clone(),
        packets: s.packets,
        flows: s.flows,
        entries: s.entries,
        bytes: s.bytes,
        first_packet: ts(s.first_packet),
        last_packet: ts(s.last_packet),
        tls_sessions_with_keys: s.tls_sessions_with_keys,
    }
}

fn options<'a>(state: &'a AppState, reread: bool, keys: Option<String>) -> ExportOptions<'a> {
    ExportOptions {
        max_record_bytes: state.limits.max_record_bytes,
        // Files and the demo were filtered by wirelens before decoding: exports keep to it.
        bpf: if reread { state.forensics.bpf.as_deref() } else { None },
        key_text: keys,
    }
}

pub fn run_export_pcap(state: &AppState, args: Map<String, Value>) -> Result<ExportPcapResult, ToolError> {
    if let Some(hub) = &state.hub {
        return hub.export_pcap(state, args);
    }
    let p: ExportPcapParams = parse_args("export_pcap", args)?;
    let started = std::time::Instant::now();
    let redissected;
    let (view, sources, label, reread) = match p.snapshot.as_deref() {
        Some(name) => {
            let (s, info) = redissect(state, name)?;
            redissected = s;
            (
                &redissected,
                vec![PacketSource::Path(info.packets_path.clone())],
                format!("snapshot {name}"),
                false,
            )
        }
        None => {
            let w = window(state, p.since.as_deref(), p.until.as_deref())?;
            let (sources, label, reread) = packet_sources(state, w)?;
            (state, sources, label, reread)
        }
    };
    let w = window(view, p.since.as_deref(), p.until.as_deref())?;
    let chosen = choose(view, p.filter.as_deref(), w)?;
    if chosen.spans.is_empty() {
        return err(format!(
            "no connection matches{} in the window: nothing to export (list_flows and list_entries show what there is)",
            p.filter.as_deref().map(|f| format!(" `{f}`")).unwrap_or_default()
        ));
    }
    let path = export_path(state, "pcapng")?;
    let keys = key_text(state)?;
    let mut selector = Selector::flows(&chosen.spans, w.since, w.until);
    let summary = write_pcapng(&path, sources, &mut selector, &options(state, reread, keys))
        .map_err(|e| ToolError(format!("export_pcap: {e}")))?;
    let mut notes = summary.warnings.clone();
    let missing = chosen.spans.len() as u64 - summary.flows.len() as u64;
    if missing > 0 {
        notes.push(format!(
            "{missing} selected connections have no packet in the file: {}",
            if state.forensics.ring.is_some() && p.snapshot.is_none() {
                "they are older than the raw ring's oldest packet, or outside since/until"
            } else {
                "outside since/until"
            }
        ));
    }
    Ok(ExportPcapResult {
        download_url: download_url(state, &path),
        path: path.display().to_string(),
        packets: summary.packets,
        flows: summary.flows.len() as u64,
        flows_selected: chosen.spans.len() as u64,
        flows_without_packets: missing,
        entries_matched: chosen.entries.len() as u64,
        bytes: summary.file_bytes,
        first_packet: ts(summary.first_ts),
        last_packet: ts(summary.last_ts),
        tls_sessions_with_keys: summary.tls_sessions_with_keys as u64,
        packet_source: label,
        elapsed_ms: started.elapsed().as_millis() as u64,
        notes,
        coverage: convert::coverage(&view.shared),
    })
}

pub fn run_create_snapshot(state: &AppState, args: Map<String, Value>) -> Result<CreateSnapshotResult, ToolError> {
    if let Some(hub) = &state.hub {
        return hub.create_snapshot(args);
    }
    let p: CreateSnapshotParams = parse_args("create_snapshot", args)?;
    let w = window(state, Some(&p.since), Some(&p.until))?;
    let name = p.name.clone().unwrap_or_else(|| {
        let stamp = Timestamp::now().to_rfc3339().replace([':', '-'], "");
        format!("snap-{}", stamp.split('.').next().unwrap_or_default())
    });
    capture_core::forensics::snapshot::check_name(&name).map_err(|e| ToolError(e.to_string()))?;
    let filter = p.filter.as_deref().filter(|f| !f.trim().is_empty());
    let chosen = choose(state, filter, w)?;
    let (sources, label, reread) = packet_sources(state, w)?;
    let mut selector = match filter {
        Some(_) => Selector::flows(&chosen.spans, w.since, w.until),
        None => Selector::window(w.since, w.until),
    };
    let entries: Vec<Value> = chosen
        .entries
        .iter()
        .filter_map(|e| serde_json::to_value(convert::summary(e)).ok())
        .collect();
    let keys = key_text(state)?;
    let opts = options(state, reread, keys);
    let new = NewSnapshot {
        name: &name,
        since: w.since,
        // Recorded as given (inclusive).
        until: w.until.map(|u| Timestamp(u.0.saturating_sub(1))),
        filter,
        source: label.clone(),
    };
    let mut warnings = Vec::new();
    let info = state
        .forensics
        .snapshots
        .create(&new, &entries, |path| {
            let s: ExportSummary = write_pcapng(path, sources, &mut selector, &opts)?;
            warnings.clone_from(&s.warnings);
            Ok(s)
        })
        .map_err(|e| ToolError(format!("create_snapshot: {e}")))?;
    let mut notes = vec![format!("packets from the {label}")];
    notes.extend(warnings);
    if info.packets == 0 {
        notes.push("no packet in the window: the snapshot is empty".into());
    }
    Ok(CreateSnapshotResult {
        snapshot: snapshot_out(state, &info),
        notes,
        coverage: convert::coverage(&state.shared),
    })
}

pub fn run_list_snapshots(state: &AppState, args: Map<String, Value>) -> Result<ListSnapshotsResult, ToolError> {
    if let Some(hub) = &state.hub {
        return hub.list_snapshots(args);
    }
    let _: ListSnapshotsParams = parse_args("list_snapshots", args)?;
    let store = &state.forensics.snapshots;
    Ok(ListSnapshotsResult {
        snapshots: store.list().iter().map(|s| snapshot_out(state, s)).collect(),
        directory: store.dir().display().to_string(),
    })
}

pub fn run_delete_snapshot(state: &AppState, args: Map<String, Value>) -> Result<DeleteSnapshotResult, ToolError> {
    if let Some(hub) = &state.hub {
        return hub.delete_snapshot(args);
    }
    let p: DeleteSnapshotParams = parse_args("delete_snapshot", args)?;
    let info = state
        .forensics
        .snapshots
        .delete(&p.name)
        .map_err(|e| ToolError(e.to_string()))?;
    let mut deleted = snapshot_out(state, &info);
    deleted.download_url = None;
    Ok(DeleteSnapshotResult { deleted })
}
