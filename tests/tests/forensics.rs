//! Forensics on real captures: `export_pcap` writes the packets of the matching connections,
//! and reading the file again — with wirelens and with tshark — finds exactly those connections
//! and the same transactions; with a key log the exported sessions' secrets travel in a
//! Decryption Secrets Block (tshark decrypts the file on its own, and no key appears in any
//! tool output); snapshots can be filtered again and opened as a source; `export_har` writes a
//! HAR with every matching entry. tshark is required under `CI=true`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use mcp_server::state::{AppState, SourceArgs};
use serde_json::{Value, json};
use wirelens_e2e::pcaps_dir;

fn load(pcaps: Vec<PathBuf>, keylogs: Vec<PathBuf>, export_dir: &Path) -> AppState {
    AppState::load(&SourceArgs {
        pcaps,
        keylogs,
        export_dir: Some(export_dir.to_path_buf()),
        ..SourceArgs::default()
    })
    .expect("load")
}

fn call(st: &AppState, tool: &str, args: Value) -> Value {
    let Value::Object(m) = args else {
        panic!("args must be an object")
    };
    mcp_server::tools::call(st, tool, m).unwrap_or_else(|e| panic!("{tool}: {e:?}"))
}

/// Both ends of a TCP connection, in a fixed order.
type Pair = (SocketAddr, SocketAddr);

fn pair(a: SocketAddr, b: SocketAddr) -> Pair {
    if a <= b { (a, b) } else { (b, a) }
}

/// The TCP connections of the flows a filter selects (and their entries' transactions).
fn selected(st: &AppState, filter: &str) -> (BTreeSet<Pair>, Vec<String>) {
    let entries = call(
        st,
        "list_entries",
        json!({"filter": filter, "limit": 1000, "order": "asc", "fields": ["flow_id", "method", "path", "status"]}),
    );
    let mut ids = BTreeSet::new();
    let mut txns = Vec::new();
    for e in entries["entries"].as_array().unwrap() {
        ids.insert(e["flow_id"].as_u64().unwrap());
        txns.push(format!("{} {} {}", e["method"], e["path"], e["status"]));
    }
    let pairs = st
        .shared
        .flows
        .snapshot()
        .iter()
        .filter(|f| ids.contains(&f.id))
        .map(|f| pair(f.client, f.server))
        .collect();
    txns.sort();
    (pairs, txns)
}

/// Every TCP connection wirelens finds in a file, and its HTTP transactions.
fn reread(path: &Path, export_dir: &Path) -> (BTreeSet<Pair>, Vec<String>) {
    let st = load(vec![path.to_path_buf()], Vec::new(), export_dir);
    let pairs = st
        .shared
        .flows
        .snapshot()
        .iter()
        .filter(|f| f.transport == capture_core::entry::Transport::Tcp)
        .map(|f| pair(f.client, f.server))
        .collect();
    let (_, txns) = selected(&st, "http");
    (pairs, txns)
}

/// tshark, or `None` (loudly) when it is not installed; under `CI=true` its absence fails.
fn tshark() -> Option<&'static str> {
    if Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Some("tshark");
    }
    let msg =
        "\n*** tshark is not installed: the export was NOT checked against tshark (scripts/test installs it) ***\n";
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("{msg}");
    None
}

fn tshark_fields(bin: &str, file: &Path, display_filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new(bin);
    cmd.arg("-r")
        .arg(file)
        .args(["-2", "-Y", display_filter, "-T", "fields", "-E", "separator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("running tshark");
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect()
}

/// The TCP connections tshark sees in a file.
fn tshark_pairs(bin: &str, file: &Path) -> BTreeSet<Pair> {
    tshark_fields(
        bin,
        file,
        "tcp",
        &["ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst", "tcp.dstport"],
    )
    .into_iter()
    .map(|r| {
        let ip = |v4: &str, v6: &str| if v4.is_empty() { v6.to_string() } else { v4.to_string() };
        let a = SocketAddr::new(ip(&r[0], &r[1]).parse().unwrap(), r[2].parse().unwrap());
        let b = SocketAddr::new(ip(&r[3], &r[4]).parse().unwrap(), r[5].parse().unwrap());
        pair(a, b)
    })
    .collect()
}

#[test]
fn export_pcap_keeps_exactly_the_matching_connections() {
    let Some(dir) = pcaps_dir() else { return };
    let out = tempfile::tempdir().unwrap();
    let tshark = tshark();
    for (capture, filter) in [
        (
            "http/zeek_http_bro.org.pcap",
            "http && status == 200 && path.contains(\"css\")",
        ),
        ("http/zeek_http_pipelined-requests.pcap", "http && method == \"GET\""),
        ("http/packetbeat_http_minitwit.pcap", "http && status >= 300"),
        ("http2/suricata_http2-range.pcap", "http"),
        ("grpc/packt_grpc-unary.pcapng", "grpc"),
    ] {
        let path = dir.join(capture);
        let st = load(vec![path.clone()], Vec::new(), out.path());
        let (want, want_txns) = selected(&st, filter);
        assert!(!want.is_empty(), "{capture}: `{filter}` selects nothing");
        let r = call(&st, "export_pcap", json!({"filter": filter}));
        let file = PathBuf::from(r["path"].as_str().unwrap());
        assert!(file.starts_with(out.path()), "{r}");
        assert_eq!(r["flows"].as_u64().unwrap() as usize, want.len(), "{capture}: {r}");
        assert_eq!(r["flows_without_packets"], 0, "{capture}: {r}");
        assert_eq!(r["packet_source"], "files");
        // wirelens finds the same connections and the same transactions in the export.
        let (got, got_txns) = reread(&file, out.path());
        assert_eq!(got, want, "{capture}: connections in the export");
        let txns_of_selected: Vec<String> = {
            let all = reread(&path, out.path());
            assert!(all.0.is_superset(&want));
            // Every transaction of the exported connections, not only the matching ones.
            let mut v = Vec::new();
            let entries = call(
                &st,
                "list_entries",
                json!({"filter": "http", "limit": 1000, "fields": ["flow_id", "method", "path", "status"]}),
            );
            let ids: BTreeSet<u64> = st
                .shared
                .flows
                .snapshot()
                .iter()
                .filter(|f| want.contains(&pair(f.client, f.server)))
                .map(|f| f.id)
                .collect();
            for e in entries["entries"].as_array().unwrap() {
                if ids.contains(&e["flow_id"].as_u64().unwrap()) {
                    v.push(format!("{} {} {}", e["method"], e["path"], e["status"]));
                }
            }
            v.sort();
            v
        };
        assert_eq!(got_txns, txns_of_selected, "{capture}: transactions in the export");
        assert!(want_txns.iter().all(|t| got_txns.contains(t)));
        // tshark opens the file and sees the same connections.
        if let Some(bin) = tshark {
            assert_eq!(tshark_pairs(bin, &file), want, "{capture}: tshark's connections");
        }
    }
}

#[test]
fn export_pcap_embeds_the_exported_sessions_keys_only() {
    let Some(dir) = pcaps_dir() else { return };
    let out = tempfile::tempdir().unwrap();
    let capture = dir.join("http2/hotplace_http2-over-tls13.pcapng");
    let keylog = capture.with_extension("keylog");
    let st = load(vec![capture.clone()], vec![keylog.clone()], out.path());
    // One decrypted connection.
    let one = call(
        &st,
        "list_entries",
        json!({"filter": "decrypted && http", "limit": 1, "fields": ["flow_id", "path"]}),
    );
    let flow = one["entries"][0]["flow_id"].as_u64().unwrap();
    let r = call(&st, "export_pcap", json!({"filter": format!("flow_id == {flow}")}));
    assert_eq!(
        (r["flows"].as_u64(), r["tls_sessions_with_keys"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );
    let file = PathBuf::from(r["path"].as_str().unwrap());
    // No key material in any output; the file's secrets block holds the one session's lines.
    let secrets: Vec<String> = std::fs::read_to_string(&keylog)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect();
    let text = r.to_string().to_lowercase();
    assert!(secrets.iter().all(|s| !text.contains(&s.to_lowercase())));
    let mut dsb = Vec::new();
    capture_core::source::file::read_file(&file, 1 << 24, |_| {}, &mut |t| {
        dsb.push(String::from_utf8_lossy(t).into_owned())
    })
    .unwrap();
    assert_eq!(dsb.len(), 1);
    let randoms: BTreeSet<&str> = dsb[0].lines().filter_map(|l| l.split_whitespace().nth(1)).collect();
    assert_eq!(randoms.len(), 1, "{randoms:?}");
    // wirelens decrypts the file without --keylog, from the block alone.
    let again = load(vec![file.clone()], Vec::new(), out.path());
    let decrypted = call(
        &again,
        "list_entries",
        json!({"filter": "decrypted && http", "fields": ["path"]}),
    );
    let want = call(
        &st,
        "list_entries",
        json!({"filter": format!("decrypted && http && flow_id == {flow}"), "fields": ["path"]}),
    );
    assert_eq!(decrypted["entries"], want["entries"]);
    assert!(!want["entries"].as_array().unwrap().is_empty());
    // And so does tshark.
    if let Some(bin) = tshark() {
        let mut paths: Vec<String> =
            tshark_fields(bin, &file, "http2.header.name == \":path\"", &["http2.headers.path"])
                .into_iter()
                .flat_map(|r| r[0].split(',').map(str::to_string).collect::<Vec<_>>())
                .filter(|p| !p.is_empty())
                .collect();
        paths.sort();
        let mut ours: Vec<String> = want["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap().to_string())
            .collect();
        ours.sort();
        assert_eq!(paths, ours, "tshark decrypts the export with its own secrets block");
    }
}

#[test]
fn snapshots_freeze_a_window_and_can_be_filtered_again() {
    let Some(dir) = pcaps_dir() else { return };
    let out = tempfile::tempdir().unwrap();
    let capture = dir.join("http/zeek_http_bro.org.pcap");
    let st = load(vec![capture.clone()], Vec::new(), out.path());
    let s = call(
        &st,
        "create_snapshot",
        json!({"since": "10s", "until": "0s", "name": "last-10s"}),
    );
    let snap = &s["snapshot"];
    assert_eq!(snap["name"], "last-10s");
    let packets = snap["packets"].as_u64().unwrap();
    assert!(packets > 0, "{s}");
    // The window: the packets of the last ten seconds, no other.
    let path = PathBuf::from(snap["path"].as_str().unwrap());
    let mut times = Vec::new();
    capture_core::source::file::read_file(&path, 1 << 24, |p| times.push(p.ts), &mut |_| {}).unwrap();
    let newest = st.shared.stats.lock().last_ts.unwrap();
    assert_eq!(times.len() as u64, packets);
    assert!(times.iter().all(|t| t.0 >= newest.0 - 10_000_000_000 && *t <= newest));
    let mut all = 0;
    capture_core::source::file::read_file(
        &capture,
        1 << 24,
        |p| all += u64::from(p.ts.0 >= newest.0 - 10_000_000_000),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(all, packets, "every packet of the window");
    let listed = call(&st, "list_snapshots", json!({}));
    assert_eq!(listed["snapshots"][0]["name"], "last-10s");
    // Re-dissected: export_pcap on the snapshot with a filter, and the snapshot as a source.
    let r = call(
        &st,
        "export_pcap",
        json!({"snapshot": "last-10s", "filter": "http && status == 200"}),
    );
    assert_eq!(r["packet_source"], "snapshot last-10s");
    let exported = reread(Path::new(r["path"].as_str().unwrap()), out.path());
    let from_snapshot = load(vec![path.clone()], Vec::new(), out.path());
    let (want, _) = selected(&from_snapshot, "http && status == 200");
    assert_eq!(exported.0, want);
    // A filtered snapshot keeps the matching connections and entries only.
    let f = call(
        &st,
        "create_snapshot",
        json!({"since": "1h", "until": "0s", "name": "css", "filter": "http && path.contains(\"css\")"}),
    );
    let (want, _) = selected(&st, "http && path.contains(\"css\")");
    assert_eq!(f["snapshot"]["flows"].as_u64().unwrap() as usize, want.len(), "{f}");
    let css = reread(Path::new(f["snapshot"]["path"].as_str().unwrap()), out.path());
    assert_eq!(css.0, want);
    let deleted = call(&st, "delete_snapshot", json!({"name": "css"}));
    assert_eq!(deleted["deleted"]["name"], "css");
    let e = mcp_server::tools::call(
        &st,
        "delete_snapshot",
        json!({"name": "css"}).as_object().unwrap().clone(),
    );
    assert!(matches!(e, Err(mcp_server::tools::CallError::Tool(m)) if m.0.contains("last-10s")));
}

#[test]
fn export_har_holds_every_matching_http_entry() {
    let Some(dir) = pcaps_dir() else { return };
    let out = tempfile::tempdir().unwrap();
    for capture in [
        "http/wireshark_http-chunked-gzip.pcap",
        "http2/suricata_http2-range.pcap",
        "grpc/packt_grpc-unary.pcapng",
    ] {
        let st = load(vec![dir.join(capture)], Vec::new(), out.path());
        let r = call(&st, "export_har", json!({"filter": "http"}));
        let har: Value = serde_json::from_slice(&std::fs::read(r["path"].as_str().unwrap()).unwrap()).unwrap();
        let entries = har["log"]["entries"].as_array().unwrap();
        let want = call(
            &st,
            "list_entries",
            json!({"filter": "http", "limit": 1000, "order": "asc", "fields": ["id", "method", "status"]}),
        );
        let want = want["entries"].as_array().unwrap();
        assert_eq!(entries.len(), want.len(), "{capture}");
        assert_eq!(r["entries"].as_u64().unwrap() as usize, want.len());
        let by_id: BTreeMap<&str, &Value> = entries
            .iter()
            .map(|e| (e["_wirelens_id"].as_str().unwrap(), e))
            .collect();
        for w in want {
            let h = by_id[w["id"].as_str().unwrap()];
            assert_eq!(h["request"]["method"], w["method"], "{capture}");
            assert_eq!(
                h["response"]["status"].as_u64(),
                w["status"].as_u64().or(Some(0)),
                "{capture}"
            );
            let t = &h["timings"];
            let sum = t["send"].as_f64().unwrap() + t["wait"].as_f64().unwrap() + t["receive"].as_f64().unwrap();
            assert!((h["time"].as_f64().unwrap() - sum).abs() < 0.01, "{h}");
        }
    }
}
