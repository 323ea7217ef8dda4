//! TCP analysis against Wireshark: for every capture in ../shared/pcaps (cleartext ones; the
//! key-logged TLS captures are TCP too and are included), each TCP stream of tshark's `tcp.tsv`
//! is compared cell by cell with our flow record: roles, completeness, initial RTT (within 1 µs),
//! packets, frame and payload bytes per direction, goodput, and the counts of every
//! `tcp.analysis` flag. Agreement must be ≥ 99 % of cells; every deliberate difference is listed
//! below with its reason.

use std::collections::HashMap;
use std::net::SocketAddr;

use capture_core::entry::Transport;
use capture_core::flows::FlowRecord;
use wirelens_e2e::{captures_with, endpoint, flows_of, pcaps_dir, read_tsv, ref_dir};

/// (capture, stream, cell, why). Wireshark 4.0.17 calls the server's zero-length FIN
/// retransmissions in this capture "fast retransmissions" although the client sent no duplicate
/// ACK before them, and it suppresses one ACKed-unseen flag after an earlier one in the same
/// direction; both depend on bookkeeping of that Wireshark version that this analysis does not
/// reproduce (newer Wireshark versions changed both rules again).
const KNOWN_DIFFERENCES: &[(&str, &str, &str, &str)] = &[
    (
        "tcp/zeek_tcp_reassembly.pcap",
        "0",
        "fast_retransmission",
        "FIN retransmissions without dup ACKs",
    ),
    (
        "tcp/zeek_tcp_reassembly.pcap",
        "0",
        "ack_lost_segment",
        "ACKed-unseen repeat suppressed by 4.0",
    ),
];

/// Our value for a tcp.tsv column, with the flow's directions as given.
fn ours(f: &FlowRecord, col: &str, swapped: bool) -> Option<String> {
    let m = &f.metrics;
    let (c, s) = if swapped { (1, 0) } else { (0, 1) };
    let v: u64 = match col {
        "completeness" => u64::from(m.completeness),
        "pkts_c2s" => m.packets[c],
        "pkts_s2c" => m.packets[s],
        "frame_bytes_c2s" => m.frame_bytes[c],
        "frame_bytes_s2c" => m.frame_bytes[s],
        "payload_bytes_c2s" => m.payload_bytes[c],
        "payload_bytes_s2c" => m.payload_bytes[s],
        "syn_pkts" => m.syn_count,
        "fin_pkts" => m.fin_count,
        "rst_pkts" => m.rst_count,
        "retransmission" => m.retransmissions,
        "fast_retransmission" => m.fast_retransmissions,
        "spurious_retransmission" => m.spurious_retransmissions,
        "out_of_order" => m.out_of_order,
        "zero_window" => m.zero_window_events,
        "zero_window_probe" => m.zero_window_probes,
        "window_full" => m.window_full_events,
        "duplicate_ack" => m.dup_acks,
        "lost_segment" => m.missing_segments,
        "ack_lost_segment" => m.acked_unseen,
        "keep_alive" => m.keepalive_count,
        _ => return None,
    };
    Some(v.to_string())
}

const COUNT_COLUMNS: &[&str] = &[
    "completeness",
    "pkts_c2s",
    "pkts_s2c",
    "frame_bytes_c2s",
    "frame_bytes_s2c",
    "payload_bytes_c2s",
    "payload_bytes_s2c",
    "syn_pkts",
    "fin_pkts",
    "rst_pkts",
    "retransmission",
    "fast_retransmission",
    "spurious_retransmission",
    "out_of_order",
    "zero_window",
    "zero_window_probe",
    "window_full",
    "duplicate_ack",
    "lost_segment",
    "ack_lost_segment",
    "keep_alive",
];

#[test]
fn tcp_analysis_agrees_with_wireshark() {
    let Some(dir) = pcaps_dir() else { return };
    let captures = captures_with(&dir, "tcp.tsv", &[]);
    assert!(
        captures.len() >= 40,
        "expected the shared captures under {}",
        dir.display()
    );
    let (mut cells, mut matched, mut known) = (0usize, 0usize, 0usize);
    let mut report = String::new();
    for c in &captures {
        let name = c.strip_prefix(&dir).unwrap_or(c).display().to_string();
        let flows: Vec<_> = flows_of(c)
            .into_iter()
            .filter(|f| f.transport == Transport::Tcp)
            .collect();
        let mut by_pair: HashMap<(SocketAddr, SocketAddr), Vec<&FlowRecord>> = HashMap::new();
        for f in &flows {
            by_pair.entry((f.client, f.server)).or_default().push(f);
        }
        for row in read_tsv(&ref_dir(c).join("tcp.tsv")) {
            let (rc, rs) = (endpoint(&row["client"]), endpoint(&row["server"]));
            let loose_roles = matches!(row["client_from"].as_str(), "port" | "first-packet");
            let (flow, swapped) = match by_pair
                .get_mut(&(rc, rs))
                .and_then(|v| (!v.is_empty()).then(|| v.remove(0)))
            {
                Some(f) => (Some(f), false),
                None => match by_pair
                    .get_mut(&(rs, rc))
                    .and_then(|v| (!v.is_empty()).then(|| v.remove(0)))
                {
                    Some(f) => (Some(f), true),
                    None => (None, false),
                },
            };
            let Some(f) = flow else {
                cells += 24;
                report.push_str(&format!("{name}: stream {} missing\n", row["stream"]));
                continue;
            };
            let mut check = |cell: &str, ok: bool, detail: String| {
                cells += 1;
                if ok {
                    matched += 1;
                } else if KNOWN_DIFFERENCES
                    .iter()
                    .any(|k| k.0 == name && k.1 == row["stream"] && k.2 == cell)
                {
                    known += 1;
                    report.push_str(&format!(
                        "{name}: stream {} {cell}: {detail} (known difference)\n",
                        row["stream"]
                    ));
                } else {
                    report.push_str(&format!("{name}: stream {} {cell}: {detail}\n", row["stream"]));
                }
            };
            check(
                "roles",
                !swapped || loose_roles,
                format!("client/server swapped ({})", row["client_from"]),
            );
            for col in COUNT_COLUMNS {
                let want = &row[*col];
                let got = ours(f, col, swapped).unwrap_or_default();
                check(col, *want == got, format!("reference {want}, ours {got}"));
            }
            let want_rtt = row["initial_rtt_s"].parse::<f64>().ok().map(|s| s * 1e6);
            let got_rtt = f.metrics.initial_rtt_ns.map(|ns| ns as f64 / 1000.0);
            let rtt_ok = match (want_rtt, got_rtt) {
                (None, None) => true,
                (Some(a), Some(b)) => (a - b).abs() <= 1.0,
                _ => false,
            };
            check(
                "initial_rtt",
                rtt_ok,
                format!("reference {want_rtt:?} µs, ours {got_rtt:?} µs"),
            );
            let retx: u64 = row["retx_payload_bytes_c2s"].parse::<u64>().unwrap_or(0)
                + row["retx_payload_bytes_s2c"].parse::<u64>().unwrap_or(0);
            let payload: u64 = row["payload_bytes_c2s"].parse::<u64>().unwrap_or(0)
                + row["payload_bytes_s2c"].parse::<u64>().unwrap_or(0);
            let good = payload - retx;
            check(
                "goodput",
                f.metrics.goodput_bytes() == good,
                format!("reference {good}, ours {}", f.metrics.goodput_bytes()),
            );
        }
    }
    let agreement = matched as f64 / cells.max(1) as f64;
    eprintln!(
        "{report}TCP agreement with Wireshark: {matched}/{cells} cells = {:.2}% ({known} known differences)",
        agreement * 100.0
    );
    assert!(cells >= 2000, "too few reference cells: {cells}");
    assert!(matched + known == cells, "unexplained differences:\n{report}");
    assert!(agreement >= 0.99, "agreement {:.2}% below 99%", agreement * 100.0);
}
