//! Support for the end-to-end suites: where the shared captures are, reading tshark's reference
//! tables, and running captures through the engine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use capture_core::engine::{Engine, Shared};
use capture_core::entry::Entry;
use capture_core::limits::Limits;
use capture_core::store::Order;

/// `../shared/pcaps` next to the repository (or `$WIRELENS_PCAPS`). When it is missing the
/// suites say so loudly, and fail under `CI=true`; they never skip silently.
pub fn pcaps_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("WIRELENS_PCAPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/pcaps"));
    if dir.is_dir() {
        return Some(dir);
    }
    let msg = format!(
        "\n\n*** The shared captures are missing: {} does not exist. ***\n*** The conformance suites did NOT run. Set WIRELENS_PCAPS or check out ../shared. ***\n",
        dir.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("{msg}");
    None
}

/// An `addr:port` of the reference tables (IPv6 as `[addr]:port`).
pub fn endpoint(s: &str) -> std::net::SocketAddr {
    let (host, port) = s.rsplit_once(':').expect("addr:port");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    std::net::SocketAddr::new(host.parse().expect("ip"), port.parse().expect("port"))
}

/// Every capture under `dir` (recursively) that has `<stem>.ref/<table>`.
pub fn captures_with(dir: &Path, table: &str, exclude_dirs: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if !name.ends_with(".ref") && !exclude_dirs.contains(&name) {
                    stack.push(p);
                }
            } else if matches!(p.extension().and_then(|x| x.to_str()), Some("pcap" | "pcapng" | "cap"))
                && ref_dir(&p).join(table).is_file()
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

pub fn ref_dir(capture: &Path) -> PathBuf {
    let stem = capture.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    capture.with_file_name(format!("{stem}.ref"))
}

/// A TSV table: rows as column-name → value maps.
pub fn read_tsv(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split('\t').collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            header
                .iter()
                .zip(l.split('\t'))
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Runs one capture through a fresh engine; returns its TCP/UDP flow records.
pub fn flows_of(capture: &Path) -> Vec<Arc<capture_core::flows::FlowRecord>> {
    let limits = Limits::default();
    let shared = Shared::with_limits(&limits);
    let mut engine = Engine::new(limits, shared.clone());
    engine.read_pcap(capture).unwrap_or_else(|e| panic!("{e}"));
    shared.flows.snapshot()
}

/// Runs one capture through a fresh engine; returns its entries oldest first.
pub fn entries_of(capture: &Path) -> Vec<Arc<Entry>> {
    let limits = Limits::default();
    let shared = Shared::with_limits(&limits);
    let mut engine = Engine::new(limits, shared.clone());
    engine.read_pcap(capture).unwrap_or_else(|e| panic!("{e}"));
    let mut v = Vec::new();
    shared.store.scan(Order::Asc, None, &mut |e| {
        v.push(Arc::clone(e));
        std::ops::ControlFlow::Continue(())
    });
    v
}

/// What comparing one capture with its reference table found.
#[derive(Debug, Default)]
pub struct Tally {
    /// Reference rows counted.
    pub reference: usize,
    /// Reference rows paired with an entry that agrees on every compared column.
    pub matched: usize,
    /// Entries that match no reference row.
    pub extra: usize,
    /// One line per difference, for the report.
    pub mismatches: Vec<String>,
}

/// Compares every capture with its reference through `compare`, prints a per-capture report,
/// and asserts at least `min_reference` reference rows and an agreement (matched / (reference +
/// extra)) of at least 99 %.
pub fn assert_agreement(
    dir: &Path,
    table: &str,
    captures: &[PathBuf],
    min_reference: usize,
    compare: &dyn Fn(&Path) -> Tally,
) {
    let (mut reference, mut matched, mut extra) = (0, 0, 0);
    let mut report = String::new();
    for c in captures {
        let t = compare(c);
        let name = c.strip_prefix(dir).unwrap_or(c).display().to_string();
        report.push_str(&format!(
            "{name}: {}/{} matched, {} extra\n",
            t.matched, t.reference, t.extra
        ));
        for m in &t.mismatches {
            report.push_str(&format!("    {m}\n"));
        }
        reference += t.reference;
        matched += t.matched;
        extra += t.extra;
    }
    let agreement = matched as f64 / (reference + extra).max(1) as f64;
    eprintln!(
        "{report}{table} agreement with tshark: {matched}/{} = {:.1}%",
        reference + extra,
        agreement * 100.0
    );
    assert!(
        reference >= min_reference,
        "too few reference rows in {table}: {reference}"
    );
    assert!(
        agreement >= 0.99,
        "{table} agreement {:.2}% below 99%:\n{report}",
        agreement * 100.0
    );
}
