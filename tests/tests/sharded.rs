//! Capture files read by several engines (`--capture-threads N`) give the same entries and
//! flows as one engine, on every shared capture: each flow is dissected whole by the engine its
//! 5-tuple hashes to, so sharding changes who does the work, not what is found.

use std::path::{Path, PathBuf};

use mcp_server::state::{AppState, SourceArgs};
use wirelens_e2e::pcaps_dir;

fn load(capture: &Path, threads: usize) -> AppState {
    let keylog = capture.with_extension("keylog");
    AppState::load(&SourceArgs {
        pcaps: vec![capture.to_path_buf()],
        capture_threads: threads,
        keylogs: if keylog.is_file() { vec![keylog] } else { Vec::new() },
        ..SourceArgs::default()
    })
    .expect("load")
}

/// What was found, in an order that does not depend on which engine found it.
fn found(st: &AppState) -> (Vec<String>, Vec<String>) {
    let mut entries = Vec::new();
    st.shared.store.scan(capture_core::store::Order::Asc, None, &mut |e| {
        entries.push(format!(
            "{} {} {} {} {:?} {} {}",
            e.ts.to_rfc3339(),
            e.protocol.name(),
            e.src,
            e.dst,
            e.elapsed_us,
            e.summary(),
            e.decrypted
        ));
        std::ops::ControlFlow::Continue(())
    });
    entries.sort();
    let mut flows: Vec<String> = st
        .shared
        .flows
        .snapshot()
        .iter()
        .map(|f| format!("{} {} {:?} {:?}", f.client, f.server, f.end, f.first_seen))
        .collect();
    flows.sort();
    (entries, flows)
}

fn captures() -> Vec<PathBuf> {
    let Some(dir) = pcaps_dir() else { return Vec::new() };
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|d| d.path().is_dir())
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|x| x.to_str()), Some("pcap" | "pcapng")))
        .collect();
    v.sort();
    v
}

#[test]
fn several_engines_find_what_one_finds() {
    let all = captures();
    if pcaps_dir().is_none() {
        return;
    }
    assert!(all.len() > 50, "{} captures", all.len());
    let mut entries = 0;
    for c in &all {
        let (one, one_flows) = found(&load(c, 1));
        let (three, three_flows) = found(&load(c, 3));
        assert_eq!(one, three, "{}: entries differ with 3 engines", c.display());
        assert_eq!(one_flows, three_flows, "{}: flows differ with 3 engines", c.display());
        entries += one.len();
    }
    assert!(entries >= 500, "{entries}");
}
