//! TLS handshake metadata against tshark: every capture in ../shared/pcaps with a `tls.tsv`
//! reference (the `tls/` captures and the TLS ones under `http2/`) is run through the engine
//! without keys, and each row's connection must have one `tls` entry that agrees on SNI, ALPN
//! offered, version, cipher suite, the counts of application_data and alert records, and the
//! selected ALPN where it travels in clear (TLS ≤ 1.2; TLS 1.3 sends it encrypted, so without
//! keys it is compared only for being absent). Every row must agree, and no `tls` entry may be
//! left over.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use capture_core::entry::{Entry, Protocol};
use wirelens_e2e::{Tally, captures_with, endpoint, entries_of, pcaps_dir, read_tsv, ref_dir};

type Conn = (SocketAddr, SocketAddr);

fn streams(capture: &Path) -> HashMap<String, Conn> {
    read_tsv(&ref_dir(capture).join("tcp.tsv"))
        .into_iter()
        .map(|r| (r["stream"].clone(), (endpoint(&r["client"]), endpoint(&r["server"]))))
        .collect()
}

/// The compared columns of one entry, as tshark spells them.
fn columns(e: &Entry) -> Vec<(&'static str, String)> {
    let t = e.tls_handshake().expect("tls");
    let tls13 = t.version == Some(0x0304);
    let mut v = vec![
        ("sni", t.sni.as_deref().unwrap_or("").to_string()),
        ("alpn_offered", t.alpn_offered.join(",")),
        ("version", t.version_name().unwrap_or("").to_string()),
        ("cipher", t.cipher_name().map(|c| c.into_owned()).unwrap_or_default()),
        ("appdata_records_c2s", t.app_records[0].to_string()),
        ("appdata_records_s2c", t.app_records[1].to_string()),
        ("alerts", t.alert_count.to_string()),
    ];
    if !tls13 {
        v.push(("alpn_selected", t.alpn_selected.as_deref().unwrap_or("").to_string()));
    }
    v
}

fn compare(capture: &Path) -> Tally {
    let conns = streams(capture);
    let rows = read_tsv(&ref_dir(capture).join("tls.tsv"));
    let entries: Vec<_> = entries_of(capture)
        .into_iter()
        .filter(|e| e.protocol == Protocol::Tls)
        .collect();
    let mut used = vec![false; entries.len()];
    let mut t = Tally::default();
    for row in &rows {
        t.reference += 1;
        let (client, server) = conns[&row["stream"]];
        let Some(i) = (0..entries.len()).find(|&i| !used[i] && entries[i].src == client && entries[i].dst == server)
        else {
            t.mismatches.push(format!(
                "stream {}: no tls entry for {client} → {server}",
                row["stream"]
            ));
            continue;
        };
        used[i] = true;
        let diffs: Vec<String> = columns(&entries[i])
            .into_iter()
            .filter(|(k, ours)| row[*k] != *ours)
            .map(|(k, ours)| format!("{k}: tshark {:?}, ours {ours:?}", row[k]))
            .collect();
        if diffs.is_empty() {
            t.matched += 1;
        } else {
            t.mismatches
                .push(format!("stream {}: {}", row["stream"], diffs.join("; ")));
        }
    }
    for (e, _) in entries.iter().zip(&used).filter(|(_, u)| !**u) {
        t.extra += 1;
        t.mismatches.push(format!("extra tls entry {} → {}", e.src, e.dst));
    }
    t
}

#[test]
fn tls_handshakes_agree_with_tshark() {
    let Some(dir) = pcaps_dir() else { return };
    let captures = captures_with(&dir, "tls.tsv", &[]);
    assert!(
        captures.len() >= 8,
        "expected the tls.tsv captures under {}",
        dir.display()
    );
    let mut report = String::new();
    let (mut reference, mut matched) = (0, 0);
    let mut all_agree = true;
    for c in &captures {
        let t = compare(c);
        report.push_str(&format!(
            "{}: {}/{} matched, {} extra\n",
            c.strip_prefix(&dir).unwrap_or(c).display(),
            t.matched,
            t.reference,
            t.extra
        ));
        for m in &t.mismatches {
            report.push_str(&format!("    {m}\n"));
        }
        all_agree &= t.matched == t.reference && t.extra == 0;
        reference += t.reference;
        matched += t.matched;
    }
    eprintln!("{report}tls.tsv agreement with tshark: {matched}/{reference}");
    assert!(reference >= 15, "too few tls.tsv rows: {reference}");
    assert!(all_agree, "tls.tsv rows disagree:\n{report}");
}

#[test]
fn certificates_and_fingerprints_of_a_tls12_capture() {
    let Some(dir) = pcaps_dir() else { return };
    let es: Vec<_> = entries_of(&dir.join("tls/illustrated-tls12.pcap"))
        .into_iter()
        .filter(|e| e.protocol == Protocol::Tls)
        .collect();
    assert_eq!(es.len(), 1);
    let t = es[0].tls_handshake().unwrap();
    let cert = t
        .certificate
        .as_deref()
        .expect("the server certificate travels in clear in TLS 1.2");
    assert!(cert.subject.contains("example.ulfheim.net"), "{}", cert.subject);
    assert!(!cert.issuer.is_empty() && cert.not_before < cert.not_after);
    assert_eq!(t.ja3.as_deref().map(str::len), Some(32));
    assert_eq!(t.ja3s.as_deref().map(str::len), Some(32));
    let ja4 = t.ja4.as_deref().unwrap();
    assert!(ja4.starts_with("t12d") || ja4.starts_with("t13d"), "{ja4}");
    assert!(t.handshake_us.is_some());
    assert!(t.resumption.is_none());
}
