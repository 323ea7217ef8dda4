//! HTTP/1.x against tshark: every capture in ../shared/pcaps with an `http.tsv` reference (those
//! under `tls/` wait for key-log decryption) is run through the engine, and each transaction is
//! compared on method, host, uri, version, status and body sizes. The leniencies are the
//! scorer's documented rules (shared/conformance/README.md), applied by rule, never per file.

use std::collections::HashMap;
use std::net::SocketAddr;

use capture_core::entry::Entry;
use wirelens_e2e::{Tally, captures_with, endpoint, entries_of, pcaps_dir, read_tsv, ref_dir};

/// Known, deliberate differences from tshark: (capture, reason). None today: every transaction
/// tshark reports, we report identically.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

fn body_ok(row: &HashMap<String, String>, col: &str, got: Option<u64>) -> bool {
    if row.get(&format!("{col}_from")).map(String::as_str) == Some("content_length_header") {
        return true; // rule 4: no body bytes were seen; the header's figure is not comparable
    }
    let want = row.get(col).map(String::as_str).unwrap_or("");
    if want.is_empty() {
        got.is_none() || got == Some(0)
    } else {
        got == want.parse().ok()
    }
}

fn compare(capture: &std::path::Path) -> Tally {
    let refs = ref_dir(capture);
    let streams: HashMap<String, (SocketAddr, SocketAddr)> = read_tsv(&refs.join("tcp.tsv"))
        .into_iter()
        .map(|r| (r["stream"].clone(), (endpoint(&r["client"]), endpoint(&r["server"]))))
        .collect();
    let rows = read_tsv(&refs.join("http.tsv"));
    let entries: Vec<_> = entries_of(capture).into_iter().filter(|e| e.http().is_some()).collect();
    let mut used = vec![false; entries.len()];
    let mut t = Tally {
        reference: 0,
        matched: 0,
        extra: 0,
        mismatches: Vec::new(),
    };
    let on_conn = |e: &Entry, c: (SocketAddr, SocketAddr)| (e.src, e.dst) == c || (e.dst, e.src) == c;
    let mut excluded = Vec::new();
    for row in &rows {
        let conn = streams[&row["stream"]];
        let version_ok = matches!(row["version"].as_str(), "HTTP/1.0" | "HTTP/1.1");
        if row["method"].is_empty() || !version_ok {
            excluded.push((conn, row["status"].clone()));
            continue;
        }
        t.reference += 1;
        let Some(i) = (0..entries.len()).find(|&i| {
            let h = entries[i].http().expect("http");
            !used[i]
                && on_conn(&entries[i], conn)
                && h.method.as_deref() == Some(row["method"].as_str())
                && h.host.as_deref().unwrap_or("") == row["host"]
                && h.path.as_deref() == Some(row["uri"].as_str())
        }) else {
            t.mismatches.push(format!(
                "missing: {} {} {} (stream {})",
                row["method"], row["host"], row["uri"], row["stream"]
            ));
            continue;
        };
        used[i] = true;
        let e = &entries[i];
        let h = e.http().expect("http");
        let mut diffs = Vec::new();
        if e.protocol.name() != row["version"].to_ascii_lowercase() {
            diffs.push(format!("version {} vs {}", e.protocol.name(), row["version"]));
        }
        if !body_ok(row, "req_body_len", e.request_body_size()) {
            diffs.push(format!(
                "request body {:?} vs {}",
                e.request_body_size(),
                row["req_body_len"]
            ));
        }
        // Rule 3: tshark shows no response when it could not reassemble all of it.
        if !row["status"].is_empty() {
            if h.status.map(|s| s.to_string()).as_deref() != Some(row["status"].as_str()) {
                diffs.push(format!("status {:?} vs {}", h.status, row["status"]));
            }
            if !body_ok(row, "resp_body_len", e.response_body_size()) {
                diffs.push(format!(
                    "response body {:?} vs {}",
                    e.response_body_size(),
                    row["resp_body_len"]
                ));
            }
        }
        if diffs.is_empty() {
            t.matched += 1;
        } else {
            t.mismatches
                .push(format!("{} {}: {}", row["method"], row["uri"], diffs.join(", ")));
        }
    }
    // Rules 1 and 2: excluded rows absorb one leftover entry of their connection with that status.
    for (i, e) in entries.iter().enumerate() {
        if used[i] {
            continue;
        }
        let status = e
            .http()
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .unwrap_or_default();
        if let Some(k) = excluded
            .iter()
            .position(|(c, s)| on_conn(e, *c) && (s.is_empty() || *s == status))
        {
            excluded.remove(k);
        } else {
            t.extra += 1;
            t.mismatches.push(format!("extra: {}", e.summary()));
        }
    }
    t
}

#[test]
fn http_agrees_with_tshark() {
    let Some(dir) = pcaps_dir() else { return };
    let captures = captures_with(&dir, "http.tsv", &["tls"]);
    assert!(
        captures.len() >= 10,
        "expected the HTTP captures under {}",
        dir.display()
    );
    let (mut reference, mut matched, mut extra) = (0, 0, 0);
    let mut report = String::new();
    for c in &captures {
        let t = compare(c);
        let name = c.strip_prefix(&dir).unwrap_or(c).display().to_string();
        report.push_str(&format!(
            "{name}: {}/{} matched, {} extra\n",
            t.matched, t.reference, t.extra
        ));
        let known = KNOWN_DIFFERENCES.iter().any(|(f, _)| *f == name);
        for m in &t.mismatches {
            report.push_str(&format!("    {m}{}\n", if known { " (known difference)" } else { "" }));
        }
        reference += t.reference;
        matched += t.matched;
        extra += t.extra;
    }
    let agreement = matched as f64 / (reference + extra).max(1) as f64;
    eprintln!(
        "{report}HTTP agreement with tshark: {matched}/{} = {:.1}%",
        reference + extra,
        agreement * 100.0
    );
    assert!(reference >= 60, "too few reference transactions: {reference}");
    assert!(
        agreement >= 0.99,
        "agreement {:.2}% below 99%:\n{report}",
        agreement * 100.0
    );
}

#[test]
fn every_capture_in_the_corpus_reads_without_error() {
    let Some(dir) = pcaps_dir() else { return };
    for c in captures_with(&dir, "tcp.tsv", &[]) {
        let entries = entries_of(&c);
        // Capture files are read to the end; entries are well-formed.
        for e in entries {
            assert!(e.id > 0 && e.ts.0 > 0, "{}: {e:?}", c.display());
        }
    }
}

/// KFL against the real captures: for each HTTP capture, `http and response.status >= 400`
/// matches as many entries as tshark's reference has rows with a status ≥ 400 (requests and the
/// unpaired responses it lists alike).
#[test]
fn kfl_error_counts_agree_with_tshark() {
    let Some(dir) = pcaps_dir() else { return };
    let filter = capture_core::kfl::compile("http and response.status >= 400").expect("filter compiles");
    let cx = capture_core::kfl::EvalContext::new(capture_core::time::Timestamp(0));
    let mut checked = 0;
    for c in captures_with(&dir, "http.tsv", &["tls"]) {
        let rows = read_tsv(&ref_dir(&c).join("http.tsv"));
        // Count requests (with a method) whose status is ≥ 400; interim/unpaired rows are excluded
        // as in the agreement test above.
        let want = rows
            .iter()
            .filter(|r| !r["method"].is_empty())
            .filter(|r| r["status"].parse::<u16>().is_ok_and(|s| s >= 400))
            .count();
        let got = entries_of(&c).iter().filter(|e| filter.matches(e, &cx)).count();
        assert_eq!(got, want, "{}", c.display());
        checked += 1;
    }
    assert!(checked >= 10);
}
