//! HTTP/2 and gRPC against tshark: every capture in ../shared/pcaps with an `http2.tsv` or
//! `grpc.tsv` reference (those that need a TLS key log wait for decryption) is run through the
//! engine, and each stream is paired by connection and stream id and compared like the
//! scoreboard does. The leniencies are the scorer's documented rules 3 and 5
//! (shared/conformance/README.md), applied by rule, never per file.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use capture_core::entry::Entry;
use wirelens_e2e::{Tally, assert_agreement, captures_with, endpoint, entries_of, pcaps_dir, read_tsv, ref_dir};

fn text(v: Option<&str>) -> String {
    v.unwrap_or("").to_string()
}

fn num(v: Option<u64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}

/// The compared columns of one entry, by reference column name.
fn columns(e: &Entry) -> HashMap<&'static str, String> {
    let mut c = HashMap::new();
    c.insert("method", text(e.http_method()));
    c.insert("authority", text(e.http_host()));
    c.insert("path", text(e.http_path()));
    c.insert("status", num(e.http_status().map(u64::from)));
    c.insert("http_status", num(e.http_status().map(u64::from)));
    c.insert("req_body_len", num(e.request_body_size()));
    c.insert("resp_body_len", num(e.response_body_size()));
    if let Some(g) = e.grpc() {
        c.insert("service", g.service.to_string());
        c.insert("method_grpc", g.method.to_string());
        c.insert("grpc_status", num(g.status.map(u64::from)));
        c.insert("grpc_message", text(g.message.as_deref()));
        c.insert("req_msgs", g.request_messages.to_string());
        c.insert("resp_msgs", g.response_messages.to_string());
    }
    c
}

fn compare(capture: &Path, table: &str) -> Tally {
    let refs = ref_dir(capture);
    let streams: HashMap<String, (SocketAddr, SocketAddr)> = read_tsv(&refs.join("tcp.tsv"))
        .into_iter()
        .map(|r| (r["stream"].clone(), (endpoint(&r["client"]), endpoint(&r["server"]))))
        .collect();
    let grpc = table == "grpc.tsv";
    let entries: Vec<_> = entries_of(capture)
        .into_iter()
        .filter(|e| if grpc { e.grpc().is_some() } else { e.h2().is_some() })
        .collect();
    let on_conn = |e: &Entry, c: (SocketAddr, SocketAddr)| (e.src, e.dst) == c || (e.dst, e.src) == c;
    let mut used = vec![false; entries.len()];
    let mut t = Tally::default();
    for row in read_tsv(&refs.join(table)) {
        t.reference += 1;
        let conn = streams[&row["tcp_stream"]];
        let id: u32 = row["h2_stream"].parse().expect("stream id");
        let Some(i) = (0..entries.len())
            .find(|&i| !used[i] && on_conn(&entries[i], conn) && entries[i].h2().is_some_and(|s| s.stream_id == id))
        else {
            t.mismatches
                .push(format!("missing: stream {id} of tcp stream {}", row["tcp_stream"]));
            continue;
        };
        used[i] = true;
        let got = columns(&entries[i]);
        let status_col = if grpc { "http_status" } else { "status" };
        // Rule 3: no response reassembled by tshark, response columns not compared.
        let has_response = !row[status_col].is_empty();
        // Rule 5: stream 1 of an h2c upgrade has no request headers in the reference.
        let upgrade_stream = !grpc && row["method"].is_empty() && row["path"].is_empty();
        let mut cols: Vec<(&str, &str)> = Vec::new();
        if !upgrade_stream {
            cols.extend([
                ("authority", "authority"),
                ("path", "path"),
                ("req_body_len", "req_body_len"),
            ]);
            if !grpc {
                cols.push(("method", "method"));
            }
        }
        if has_response {
            cols.extend([(status_col, status_col), ("resp_body_len", "resp_body_len")]);
            if grpc {
                cols.extend([
                    ("grpc_status", "grpc_status"),
                    ("grpc_message", "grpc_message"),
                    ("resp_msgs", "resp_msgs"),
                ]);
            }
        }
        if grpc {
            cols.extend([
                ("service", "service"),
                ("method", "method_grpc"),
                ("req_msgs", "req_msgs"),
            ]);
        }
        let diffs: Vec<String> = cols
            .iter()
            .filter(|(r, g)| row[*r] != got.get(g).cloned().unwrap_or_default())
            .map(|(r, g)| format!("{r}: reference {:?}, product {:?}", row[*r], got.get(g)))
            .collect();
        if diffs.is_empty() {
            t.matched += 1;
        } else {
            t.mismatches.push(format!("stream {id}: {}", diffs.join(", ")));
        }
    }
    for (i, e) in entries.iter().enumerate() {
        if !used[i] {
            t.extra += 1;
            t.mismatches.push(format!("extra: {}", e.summary()));
        }
    }
    t
}

fn agreement(table: &str, min_reference: usize) {
    let Some(dir) = pcaps_dir() else { return };
    let captures: Vec<_> = captures_with(&dir, table, &["tls"])
        .into_iter()
        .filter(|c| !c.with_extension("keylog").exists())
        .collect();
    assert_agreement(&dir, table, &captures, min_reference, &|c| compare(c, table));
}

#[test]
fn http2_streams_agree_with_tshark() {
    agreement("http2.tsv", 12);
}

#[test]
fn grpc_calls_agree_with_tshark() {
    agreement("grpc.tsv", 4);
}
