//! TLS decryption with key logs on the shared captures: every capture with a `<stem>.keylog`
//! is decrypted (its `tls` entry says `decrypted`, its L7 entries are marked), the L7
//! transactions inside agree with tshark's, a wrong key gives a clear reason and no entries,
//! and no tool output ever contains key material.

use std::path::{Path, PathBuf};

use capture_core::entry::Protocol;
use mcp_server::state::{AppState, SourceArgs};
use serde_json::{Value, json};
use wirelens_e2e::{pcaps_dir, read_tsv, ref_dir};

fn load(capture: &Path, keylogs: Vec<PathBuf>) -> AppState {
    AppState::load(&SourceArgs {
        pcaps: vec![capture.to_path_buf()],
        keylogs,
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

fn entries(st: &AppState) -> Vec<std::sync::Arc<capture_core::entry::Entry>> {
    let mut v = Vec::new();
    st.shared.store.scan(capture_core::store::Order::Asc, None, &mut |e| {
        v.push(e.clone());
        std::ops::ControlFlow::Continue(())
    });
    v
}

fn keylog_of(capture: &Path) -> PathBuf {
    capture.with_extension("keylog")
}

/// Every capture with a key log.
fn keylogged() -> Vec<PathBuf> {
    let Some(dir) = pcaps_dir() else { return Vec::new() };
    let mut v: Vec<PathBuf> = ["tls", "http2"]
        .iter()
        .flat_map(|d| std::fs::read_dir(dir.join(d)).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|x| x.to_str()), Some("pcap" | "pcapng")))
        .filter(|p| keylog_of(p).is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn keylogged_captures_decrypt_and_their_transactions_agree_with_tshark() {
    let captures = keylogged();
    if pcaps_dir().is_none() {
        return;
    }
    assert!(captures.len() >= 6, "{captures:?}");
    let mut report = String::new();
    let mut ok = true;
    for c in &captures {
        let st = load(c, vec![keylog_of(c)]);
        let es = entries(&st);
        let tls: Vec<_> = es.iter().filter(|e| e.protocol == Protocol::Tls).collect();
        let rows = read_tsv(&ref_dir(c).join("tls.tsv"));
        let want_decrypted = rows.iter().filter(|r| r["decrypted"] == "yes").count();
        let got_decrypted = tls.iter().filter(|e| e.decrypted).count();
        let l7: Vec<_> = es.iter().filter(|e| e.protocol != Protocol::Tls).collect();
        let http = ref_dir(c).join("http.tsv");
        let http2 = ref_dir(c).join("http2.tsv");
        let want_http = if http.is_file() { read_tsv(&http).len() } else { 0 };
        let want_http2 = if http2.is_file() { read_tsv(&http2).len() } else { 0 };
        let got_http = l7
            .iter()
            .filter(|e| matches!(e.protocol, Protocol::Http10 | Protocol::Http11))
            .count();
        let got_http2 = l7
            .iter()
            .filter(|e| matches!(e.protocol, Protocol::Http2 | Protocol::Grpc))
            .count();
        let reasons: Vec<&str> = tls
            .iter()
            .map(|e| e.tls_handshake().unwrap().decryption.text())
            .collect();
        report.push_str(&format!(
            "{}: decrypted {got_decrypted}/{want_decrypted}, http {got_http}/{want_http}, http2 {got_http2}/{want_http2} {reasons:?}\n",
            c.file_name().unwrap().to_string_lossy()
        ));
        ok &= got_decrypted == want_decrypted;
        // Decrypted TLS 1.3 connections show the ALPN of their EncryptedExtensions.
        let mut want_alpn: Vec<String> = rows.iter().map(|r| r["alpn_selected"].clone()).collect();
        let mut got_alpn: Vec<String> = tls
            .iter()
            .map(|e| {
                e.tls_handshake()
                    .unwrap()
                    .alpn_selected
                    .as_deref()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        want_alpn.sort();
        got_alpn.sort();
        ok &= got_alpn == want_alpn;
        ok &= got_http == want_http && got_http2 == want_http2;
        assert!(l7.iter().all(|e| e.tls && e.decrypted), "plaintext entries are marked");
    }
    eprintln!("{report}");
    assert!(ok, "{report}");
}

#[test]
fn zeek_heise_has_its_16_requests_in_order() {
    let Some(dir) = pcaps_dir() else { return };
    let c = dir.join("tls/zeek_tls-1.2-stream-keylog.pcap");
    let st = load(&c, vec![keylog_of(&c)]);
    let es = entries(&st);
    let ours: Vec<(String, String)> = es
        .iter()
        .filter(|e| e.protocol.is_http())
        .map(|e| {
            (
                e.http_method().unwrap_or("").to_string(),
                e.http_path().unwrap_or("").to_string(),
            )
        })
        .collect();
    let theirs: Vec<(String, String)> = read_tsv(&ref_dir(&c).join("http.tsv"))
        .iter()
        .map(|r| (r["method"].clone(), r["uri"].clone()))
        .collect();
    assert_eq!(ours.len(), 16);
    assert_eq!(ours, theirs);
    let statuses: Vec<Option<u16>> = es
        .iter()
        .filter(|e| e.protocol.is_http())
        .map(|e| e.http_status())
        .collect();
    let want: Vec<Option<u16>> = read_tsv(&ref_dir(&c).join("http.tsv"))
        .iter()
        .map(|r| r["status"].parse().ok())
        .collect();
    assert_eq!(statuses, want);
    let t = es.iter().find(|e| e.protocol == Protocol::Tls).unwrap();
    assert!(t.decrypted);
    assert_eq!(t.tls_handshake().unwrap().decryption.text(), "decrypted");
}

#[test]
fn a_wrong_key_says_why_and_makes_no_entries() {
    let Some(dir) = pcaps_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    for (stem, sub) in [("zeek_tls-1.2-stream-keylog", "tls"), ("illustrated-tls13", "tls")] {
        let c = dir.join(sub).join(format!("{stem}.pcap"));
        // The same client randoms with every secret's bytes changed.
        let text = std::fs::read_to_string(keylog_of(&c)).unwrap();
        let wrong: String = text
            .lines()
            .map(|l| {
                let mut p: Vec<String> = l.split(' ').map(String::from).collect();
                if p.len() == 3 {
                    p[2] = p[2].chars().map(|ch| if ch == '0' { '1' } else { '0' }).collect();
                }
                p.join(" ") + "\n"
            })
            .collect();
        let k = tmp.path().join(format!("{stem}.keylog"));
        std::fs::write(&k, wrong).unwrap();
        let st = load(&c, vec![k]);
        let es = entries(&st);
        assert!(
            es.iter().all(|e| e.protocol == Protocol::Tls),
            "{stem}: no garbage entries"
        );
        let t = es[0].tls_handshake().unwrap();
        assert!(!es[0].decrypted);
        assert!(
            t.decryption.text().contains("wrong key"),
            "{stem}: {}",
            t.decryption.text()
        );
        // And with a key log that does not know the session.
        let other = tmp.path().join("other.keylog");
        std::fs::write(
            &other,
            format!("CLIENT_RANDOM {} {}\n", "ab".repeat(32), "cd".repeat(48)),
        )
        .unwrap();
        let st = load(&c, vec![other]);
        let t = entries(&st)[0].tls_handshake().unwrap().clone();
        assert!(t.decryption.text().contains("no secrets"), "{}", t.decryption.text());
    }
}

#[test]
fn key_material_never_appears_in_tool_output() {
    for c in keylogged() {
        let keylog = std::fs::read_to_string(keylog_of(&c)).unwrap();
        let secrets: Vec<String> = keylog
            .lines()
            .filter_map(|l| l.split(' ').nth(2).map(str::to_ascii_lowercase))
            .collect();
        let st = load(&c, vec![keylog_of(&c)]);
        let mut out = String::new();
        let listed = call(&st, "list_entries", json!({"limit": 1000}));
        out.push_str(&listed.to_string());
        for e in listed["entries"].as_array().unwrap() {
            out.push_str(&call(&st, "get_payload", json!({"id": e["id"]})).to_string());
        }
        out.push_str(&call(&st, "capture_status", json!({})).to_string());
        out.push_str(&format!("{:?}", entries(&st)));
        let lower = out.to_ascii_lowercase();
        for s in &secrets {
            // Any 16 hex digits of a secret would be a leak.
            for w in s.as_bytes().chunks(16).filter(|w| w.len() == 16) {
                let w = std::str::from_utf8(w).unwrap();
                assert!(!lower.contains(w), "{}: key material in the output", c.display());
            }
        }
    }
}

#[test]
fn secrets_in_a_pcapng_decryption_secrets_block_decrypt_without_a_key_log() {
    let Some(dir) = pcaps_dir() else { return };
    let c = dir.join("tls/wireshark_tls12-dsb.pcapng");
    let st = load(&c, Vec::new());
    let es = entries(&st);
    let tls: Vec<_> = es.iter().filter(|e| e.protocol == Protocol::Tls).collect();
    assert_eq!(tls.len(), 2);
    assert!(tls.iter().all(|e| e.decrypted), "{tls:?}");
    let mut ours: Vec<(String, String, Option<u16>)> = es
        .iter()
        .filter(|e| e.protocol.is_http())
        .map(|e| {
            assert!(e.tls && e.decrypted);
            (
                e.http_method().unwrap_or("").to_string(),
                e.http_host().unwrap_or("").to_string(),
                e.http_status(),
            )
        })
        .collect();
    let mut theirs: Vec<(String, String, Option<u16>)> = read_tsv(&ref_dir(&c).join("http.tsv"))
        .iter()
        .map(|r| (r["method"].clone(), r["host"].clone(), r["status"].parse().ok()))
        .collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);
}

#[test]
fn aes_cbc_with_hmac_decrypts() {
    let Some(dir) = pcaps_dir() else { return };
    let c = dir.join("tls/illustrated-tls12.pcap");
    let st = load(&c, vec![keylog_of(&c)]);
    let es = entries(&st);
    let t = es.iter().find(|e| e.protocol == Protocol::Tls).unwrap();
    let h = t.tls_handshake().unwrap();
    assert_eq!(h.cipher_name().as_deref(), Some("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"));
    assert_eq!(h.decryption.text(), "decrypted");
    // The encrypted close_notify is read once decrypted.
    assert!(
        h.alert_names().iter().any(|a| a == "close_notify"),
        "{:?}",
        h.alert_names()
    );
}

#[test]
fn keys_that_arrive_during_the_handshake_still_decrypt() {
    use capture_core::dissect::tls::keylog::{KeyLogFiles, SharedKeys};
    use capture_core::engine::{Engine, Shared};
    use capture_core::limits::Limits;
    use capture_core::source::Packet;
    use std::sync::Arc;
    let Some(dir) = pcaps_dir() else { return };
    let c = dir.join("tls/zeek_tls-1.2-stream-keylog.pcap");
    let packets = packets_of(&c);
    // The key log is empty at the start, as a client's is before it connects; its line is
    // written before the first ChangeCipherSpec record goes out.
    let ccs = [0x14, 0x03, 0x03, 0x00, 0x01, 0x01];
    let at = packets
        .iter()
        .position(|(_, _, d, _)| d.windows(6).any(|w| w == ccs))
        .unwrap();
    let limits = Limits::default();
    let shared = Shared::with_limits(&limits);
    let mut engine = Engine::new(limits, shared.clone());
    let keys = Arc::new(SharedKeys::new(Some(Arc::default())));
    engine.follow_keys(keys.clone());
    for (i, (ts, link, data, orig_len)) in packets.iter().enumerate() {
        if i == at {
            let (_, k, _) = KeyLogFiles::read(&[keylog_of(&c)]).unwrap();
            keys.set(Arc::new(k));
        }
        engine.process(&Packet {
            ts: *ts,
            link: *link,
            data,
            orig_len: *orig_len,
            interface: 0,
        });
    }
    engine.finish();
    let es = entries_of_shared(&shared);
    assert_eq!(es.iter().filter(|e| e.protocol.is_http()).count(), 16);
    assert!(es.iter().any(|e| e.protocol == Protocol::Tls && e.decrypted));
}

/// Every packet of a capture, owned (to be changed or fed in steps).
fn packets_of(
    c: &Path,
) -> Vec<(
    capture_core::time::Timestamp,
    capture_core::source::LinkType,
    Vec<u8>,
    u32,
)> {
    let mut packets = Vec::new();
    capture_core::source::file::read_file(
        c,
        1 << 20,
        |p| packets.push((p.ts, p.link, p.data.to_vec(), p.orig_len)),
        &mut |_| {},
    )
    .unwrap();
    packets
}

fn feed(
    engine: &mut capture_core::engine::Engine,
    packets: &[(
        capture_core::time::Timestamp,
        capture_core::source::LinkType,
        Vec<u8>,
        u32,
    )],
) {
    for (ts, link, data, orig_len) in packets {
        engine.process(&capture_core::source::Packet {
            ts: *ts,
            link: *link,
            data,
            orig_len: *orig_len,
            interface: 0,
        });
    }
}

fn entries_of_shared(shared: &capture_core::engine::Shared) -> Vec<std::sync::Arc<capture_core::entry::Entry>> {
    let mut v = Vec::new();
    shared.store.scan(capture_core::store::Order::Asc, None, &mut |e| {
        v.push(e.clone());
        std::ops::ControlFlow::Continue(())
    });
    v
}

/// Live capture reads the key log again every 500 ms, so a short connection is often over
/// before its keys are read: its protected records wait (up to `tls_key_wait_bytes`) and are
/// decrypted when the flow leaves the table (10 s after it closed, live), if the keys have come
/// by then. Here the keys come after the last packet, and flows stay in the table until the end.
#[test]
fn keys_that_arrive_after_the_whole_connection_still_decrypt() {
    use capture_core::dissect::tls::keylog::{KeyLogFiles, SharedKeys};
    use capture_core::engine::{Engine, Shared};
    use capture_core::limits::Limits;
    use std::sync::Arc;
    let Some(dir) = pcaps_dir() else { return };
    for (rel, http) in [
        ("http2/hotplace_http2-over-tls13.pcapng", 5),
        ("tls/zeek_tls-1.2-stream-keylog.pcap", 16),
    ] {
        let c = dir.join(rel);
        let packets = packets_of(&c);
        let limits = Limits {
            tcp_closed_linger_us: 3_600_000_000,
            tcp_idle_timeout_us: 3_600_000_000,
            ..Limits::default()
        };
        let shared = Shared::with_limits(&limits);
        let mut engine = Engine::new(limits, shared.clone());
        let keys = Arc::new(SharedKeys::new(Some(Arc::default())));
        engine.follow_keys(keys.clone());
        feed(&mut engine, &packets);
        let (_, k, _) = KeyLogFiles::read(&[keylog_of(&c)]).unwrap();
        keys.set(Arc::new(k));
        engine.finish();
        let es = entries_of_shared(&shared);
        let tls: Vec<String> = es
            .iter()
            .filter(|e| e.protocol == Protocol::Tls)
            .map(|e| format!("{:?}", e.tls_handshake().map(|t| &t.decryption)))
            .collect();
        assert_eq!(
            es.iter().filter(|e| e.protocol.is_http() && e.decrypted).count(),
            http,
            "{rel}: {tls:?}"
        );
        assert!(es.iter().any(|e| e.protocol == Protocol::Tls && e.decrypted), "{rel}");
    }
}

/// A connection reset right after its exchange (as many clients end keep-alive connections):
/// the reset does not end the wait for the secrets; the flow leaving the table does.
#[test]
fn keys_that_arrive_after_a_reset_still_decrypt() {
    use capture_core::dissect::tls::keylog::{KeyLogFiles, SharedKeys};
    use capture_core::engine::{Engine, Shared};
    use capture_core::limits::Limits;
    use std::sync::Arc;
    let Some(dir) = pcaps_dir() else { return };
    let c = dir.join("tls/zeek_tls-1.2-stream-keylog.pcap");
    let mut packets = packets_of(&c);
    // Ethernet + IPv4 + TCP: the flags byte is at 14 + IHL + 13. The first FIN becomes a RST
    // and the packets after it are dropped.
    let flags_at = |d: &[u8]| 14 + usize::from(d[14] & 0x0f) * 4 + 13;
    let fin = packets
        .iter()
        .position(|(_, _, d, _)| d.len() > 54 && d[23] == 6 && d[flags_at(d)] & 0x01 != 0)
        .expect("a FIN");
    packets.truncate(fin + 1);
    let d = &mut packets[fin].2;
    let at = flags_at(d);
    d[at] = 0x14; // RST|ACK
    let limits = Limits {
        tcp_closed_linger_us: 3_600_000_000,
        ..Limits::default()
    };
    let shared = Shared::with_limits(&limits);
    let mut engine = Engine::new(limits, shared.clone());
    let keys = Arc::new(SharedKeys::new(Some(Arc::default())));
    engine.follow_keys(keys.clone());
    feed(&mut engine, &packets);
    assert!(entries_of_shared(&shared).is_empty(), "entries before the keys came");
    let (_, k, _) = KeyLogFiles::read(&[keylog_of(&c)]).unwrap();
    keys.set(Arc::new(k));
    engine.finish();
    let es = entries_of_shared(&shared);
    assert_eq!(es.iter().filter(|e| e.protocol.is_http() && e.decrypted).count(), 16);
    let flow = shared.flows.get(es[0].flow_id).expect("the flow record");
    assert_eq!(format!("{:?}", flow.end), "Reset");
}

#[test]
fn decrypted_entries_carry_their_connections_tls_fields() {
    let captures = keylogged();
    if pcaps_dir().is_none() {
        return;
    }
    let fields = ["tls_sni", "tls_version", "tls_cipher", "tls_alpn", "tls_ja4"];
    let mut checked = 0;
    for c in &captures {
        let st = load(c, vec![keylog_of(c)]);
        let es = entries(&st);
        for e in es.iter().filter(|e| e.decrypted && e.protocol != Protocol::Tls) {
            let conn = es
                .iter()
                .find(|t| t.protocol == Protocol::Tls && t.flow_id == e.flow_id)
                .unwrap_or_else(|| panic!("{}: no tls entry for flow {}", c.display(), e.flow_id));
            for f in fields {
                let def = capture_core::fields::lookup(f).unwrap();
                let (ours, theirs) = ((def.get)(e), (def.get)(conn));
                assert_eq!(format!("{ours:?}"), format!("{theirs:?}"), "{}: {f}", c.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 16, "only {checked} decrypted entries");

    // The heise.de session: tshark's SNI, version and cipher, through KFL, the listing and
    // get_payload.
    let c = pcaps_dir().unwrap().join("tls/zeek_tls-1.2-stream-keylog.pcap");
    let want = &read_tsv(&ref_dir(&c).join("tls.tsv"))[0];
    let st = load(&c, vec![keylog_of(&c)]);
    let filter = format!(
        "http && tls_sni == \"{}\" && tls_version == \"{}\" && tls_cipher == \"{}\"",
        want["sni"], want["version"], want["cipher"]
    );
    let r = call(&st, "list_entries", json!({"filter": filter, "limit": 1}));
    assert_eq!(r["total_matched"], 16, "{r}");
    let e = &r["entries"][0];
    assert_eq!(e["tls_sni"], want["sni"].as_str());
    assert_eq!(e["tls_cipher"], want["cipher"].as_str());
    assert_eq!(e["decrypted"], true);
    let p = call(&st, "get_payload", json!({"id": e["id"]}));
    assert_eq!(p["tls"]["sni"], want["sni"].as_str(), "{p}");
    assert_eq!(p["tls"]["version"], want["version"].as_str());
    assert_eq!(p["tls"]["alpn"], want["alpn_selected"].as_str());
    // Entries not decrypted from the wire have none of it.
    let plain = load(
        &pcaps_dir().unwrap().join("http/").join(first_http_capture()),
        Vec::new(),
    );
    let r = call(&plain, "list_entries", json!({"filter": "http", "limit": 1}));
    assert!(r["entries"][0].get("tls_sni").is_none(), "{r}");
    let p = call(&plain, "get_payload", json!({"id": r["entries"][0]["id"]}));
    assert!(p.get("tls").is_none(), "{p}");
}

/// Any cleartext HTTP capture of the shared set.
fn first_http_capture() -> String {
    let mut names: Vec<String> = std::fs::read_dir(pcaps_dir().unwrap().join("http"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pcap") && !n.contains("tls"))
        .collect();
    names.sort();
    names.into_iter().next().expect("an http capture")
}
