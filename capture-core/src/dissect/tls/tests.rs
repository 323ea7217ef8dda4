//! The TLS dissector end to end on synthetic conversations, and its parser on literal bytes.

use std::sync::Arc;

use super::parse::{self, RecordHeader};
use super::{Resumption, TlsEntry, tls_flags};
use crate::dissect::Probe;
use crate::entry::{Entry, Protocol};
use crate::fields::{self, Value};
use crate::limits::Limits;
use crate::synth::conversation::Conversation;
use crate::time::Timestamp;

fn conv(port: u16) -> Conversation {
    let mut c = Conversation::new(
        format!("10.0.0.1:{port}").parse().unwrap(),
        "10.0.0.2:8443".parse().unwrap(),
        Timestamp::from_secs_nanos(1_700_000_000, 0),
        1_000,
        7_000,
        90_000,
    );
    c.handshake();
    c
}

fn run(c: Conversation) -> Vec<Arc<Entry>> {
    crate::synth::testutil::replay_entries(c.packets(), Limits::default()).0
}

fn t(e: &Entry) -> &TlsEntry {
    e.tls_handshake().expect("a tls entry")
}

fn field<'a>(e: &'a Entry, name: &str) -> Value<'a> {
    (fields::lookup(name).unwrap().get)(e)
}

fn u16s(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_be_bytes()).collect()
}

/// One extension: type, 2-byte length, body.
fn ext(ty: u16, body: &[u8]) -> Vec<u8> {
    let mut v = ty.to_be_bytes().to_vec();
    v.extend((body.len() as u16).to_be_bytes());
    v.extend(body);
    v
}

/// A byte-length-prefixed list of names (SNI host list, ALPN list).
fn alpn_body(protos: &[&str]) -> Vec<u8> {
    let mut list = Vec::new();
    for p in protos {
        list.push(p.len() as u8);
        list.extend(p.as_bytes());
    }
    let mut v = (list.len() as u16).to_be_bytes().to_vec();
    v.extend(list);
    v
}

fn sni_body(name: &str) -> Vec<u8> {
    let mut entry = vec![0u8];
    entry.extend((name.len() as u16).to_be_bytes());
    entry.extend(name.as_bytes());
    let mut v = (entry.len() as u16).to_be_bytes().to_vec();
    v.extend(entry);
    v
}

/// A handshake message with its header.
fn hs(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ty, 0, (body.len() >> 8) as u8, body.len() as u8];
    v.extend(body);
    v
}

fn record(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ty, 3, 3, (body.len() >> 8) as u8, body.len() as u8];
    v.extend(body);
    v
}

const CIPHERS: [u16; 4] = [0x2a2a, 0x1301, 0xc02f, 0xcca9];

/// The ClientHello's extensions: GREASE, SNI, groups, point formats, signature algorithms,
/// ALPN, supported_versions (TLS 1.3 and 1.2), session ticket.
fn client_hello_exts(sni: Option<&str>, ticket: &[u8]) -> Vec<u8> {
    let mut e = ext(0x1a1a, &[]);
    if let Some(s) = sni {
        e.extend(ext(0, &sni_body(s)));
    }
    e.extend(ext(10, &[&[0u8, 6][..], &u16s(&[0x3a3a, 0x001d, 0x0017])].concat()));
    e.extend(ext(11, &[1, 0]));
    e.extend(ext(13, &[&[0u8, 4][..], &u16s(&[0x0403, 0x0804])].concat()));
    e.extend(ext(16, &alpn_body(&["h2", "http/1.1"])));
    e.extend(ext(43, &[4, 0x03, 0x04, 0x03, 0x03]));
    e.extend(ext(35, ticket));
    e
}

fn client_hello(sni: Option<&str>, session_id: &[u8], ticket: &[u8]) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend([7u8; 32]);
    b.push(session_id.len() as u8);
    b.extend(session_id);
    b.extend(((CIPHERS.len() * 2) as u16).to_be_bytes());
    b.extend(u16s(&CIPHERS));
    b.extend([1, 0]);
    let exts = client_hello_exts(sni, ticket);
    b.extend((exts.len() as u16).to_be_bytes());
    b.extend(exts);
    hs(parse::CLIENT_HELLO, &b)
}

fn server_hello(version13: bool, cipher: u16, session_id: &[u8], alpn: Option<&str>, psk: bool) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend([9u8; 32]);
    b.push(session_id.len() as u8);
    b.extend(session_id);
    b.extend(cipher.to_be_bytes());
    b.push(0);
    let mut e = Vec::new();
    if version13 {
        e.extend(ext(43, &[3, 4]));
    }
    if let Some(a) = alpn {
        e.extend(ext(16, &alpn_body(&[a])));
    }
    if psk {
        e.extend(ext(41, &[0, 0]));
    }
    b.extend((e.len() as u16).to_be_bytes());
    b.extend(e);
    hs(parse::SERVER_HELLO, &b)
}

#[test]
fn record_headers_and_probe() {
    let ch = record(parse::HANDSHAKE, &client_hello(Some("a.example"), &[], &[]));
    assert_eq!(
        parse::record_header(&ch),
        Ok(Some(RecordHeader {
            content_type: 22,
            version: 0x0303,
            len: ch.len() - 5
        }))
    );
    assert_eq!(parse::record_header(&[22, 3]), Ok(None));
    assert_eq!(parse::record_header(b"GET / HTTP/1.1"), Err(()));
    assert_eq!(
        parse::record_header(&[23, 3, 3, 0xff, 0xff]),
        Err(()),
        "longer than a record can be"
    );
    // Every prefix: need more up to the handshake header, then a match.
    for n in 0..ch.len() {
        let want = if n < 9 { Probe::NeedMore } else { Probe::Match };
        assert_eq!(parse::probe(&ch[..n]), want, "prefix of {n} bytes");
    }
    assert_eq!(parse::probe(b"GET / HTTP/1.1\r\n"), Probe::NoMatch);
    assert_eq!(parse::probe(&record(parse::APPLICATION_DATA, &[0; 40])), Probe::NoMatch);
    assert_eq!(
        parse::probe(&record(parse::HANDSHAKE, &hs(11, &[0; 40]))),
        Probe::NoMatch
    );
    assert_eq!(
        parse::probe(&[22, 3, 1, 0, 4, 1, 0, 0, 1]),
        Probe::NoMatch,
        "a hello too short to be one"
    );
}

#[test]
fn client_hello_fingerprints() {
    let ch = parse::client_hello(&client_hello(Some("a.example"), &[], &[]), 16).unwrap();
    assert_eq!(ch.sni.as_deref(), Some("a.example"));
    assert_eq!(ch.alpn, ["h2", "http/1.1"]);
    assert_eq!(ch.ciphers, 4);
    // JA3: version, ciphers, extensions, groups, point formats; GREASE left out.
    let ja3 = "771,4865-49199-52393,0-10-11-13-16-43-35,29-23,0";
    let md5: String = <md5::Md5 as md5::Digest>::digest(ja3.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(ch.ja3, md5);
    // JA4: TCP, TLS 1.3 offered, SNI, 3 ciphers, 7 extensions, ALPN h2.
    let sha = |s: &str| {
        let d = <sha2::Sha256 as sha2::Digest>::digest(s.as_bytes());
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()[..12].to_string()
    };
    let ciphers = sha("1301,c02f,cca9");
    let exts = sha("000a,000b,000d,0023,002b_0403,0804");
    assert_eq!(ch.ja4, format!("t13d0307h2_{ciphers}_{exts}"));
    let no_sni = parse::client_hello(&client_hello(None, &[], &[]), 16).unwrap();
    assert!(no_sni.ja4.starts_with("t13i0306h2_"), "{}", no_sni.ja4);
}

#[test]
fn names() {
    assert_eq!(
        parse::cipher_name(0xcca9),
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
    );
    assert_eq!(parse::cipher_name(0x1301), "TLS_AES_128_GCM_SHA256");
    assert_eq!(parse::cipher_name(0xfefe), "0xFEFE");
    assert_eq!(parse::version_name(0x0304), Some("TLS 1.3"));
    assert_eq!(parse::alert_name(40), Some("handshake_failure"));
    assert!(parse::is_grease(0x2a2a) && !parse::is_grease(0x2a3a));
}

#[test]
fn tls13_handshake_metadata_on_any_port() {
    let mut c = conv(41000);
    c.client_send(&record(22, &client_hello(Some("api.example"), &[1; 32], &[])), 100);
    let mut flight = record(22, &server_hello(true, 0x1301, &[1; 32], None, false));
    flight.extend(record(20, &[1]));
    flight.extend(record(23, &[0; 300])); // EncryptedExtensions … Finished
    c.server_send(&flight, 5_000);
    let mut fin = record(20, &[1]);
    fin.extend(record(23, &[0; 53]));
    fin.extend(record(23, &[0; 100])); // request
    c.client_send(&fin, 200);
    c.server_send(&record(23, &[0; 2000]), 3_000);
    c.close();
    let es = run(c);
    assert_eq!(es.len(), 1, "{es:?}");
    let e = &es[0];
    assert_eq!(e.protocol, Protocol::Tls);
    assert_eq!(e.src.to_string(), "10.0.0.1:41000");
    let h = t(e);
    assert_eq!(h.version_name(), Some("TLS 1.3"));
    assert_eq!(h.sni.as_deref(), Some("api.example"));
    assert_eq!(h.cipher_name().as_deref(), Some("TLS_AES_128_GCM_SHA256"));
    assert_eq!(h.alpn_selected, None, "encrypted in TLS 1.3");
    assert_eq!(h.app_records, [2, 2]);
    assert_eq!(
        h.resumption, None,
        "an echoed legacy session id is not resumption in TLS 1.3"
    );
    assert!(h.handshake_us.unwrap() >= 5_000, "{:?}", h.handshake_us);
    assert_eq!(e.elapsed_us, h.handshake_us);
    assert_eq!(h.flags, 0);
    assert_eq!(field(e, "tls_version"), Value::Str("TLS 1.3".into()));
    assert_eq!(field(e, "tls_records_c2s"), Value::Int(2));
    assert_eq!(
        field(e, "tls_alpn_offered"),
        Value::List(vec![Value::Str("h2".into()), Value::Str("http/1.1".into())])
    );
    let f = crate::kfl::compile(r#"tls && tls_sni.endsWith(".example") && tls_version == "TLS 1.3""#).unwrap();
    let cx = crate::kfl::EvalContext::new(Timestamp::from_secs_nanos(1_800_000_000, 0));
    assert!(f.matches(e, &cx));
    assert!(
        e.summary()
            .starts_with("TLS 1.3 api.example alpn?[h2,http/1.1] TLS_AES_128_GCM_SHA256"),
        "{}",
        e.summary()
    );
}

#[test]
fn tls12_full_handshake_alerts_and_split_records() {
    let mut c = conv(41001);
    let ch = record(22, &client_hello(Some("shop.example"), &[], &[]));
    // The ClientHello split over three segments, its handshake message over two records.
    let msg = client_hello(Some("shop.example"), &[], &[]);
    let mut split = record(22, &msg[..20]);
    split.extend(record(22, &msg[20..]));
    assert_ne!(split, ch);
    c.client_send(&split[..3], 100);
    c.client_send(&split[3..30], 100);
    c.client_send(&split[30..], 100);
    let mut flight = record(22, &server_hello(false, 0xc02f, &[5; 32], Some("h2"), false));
    flight.extend(record(22, &hs(parse::CERTIFICATE, &[0, 0, 0])));
    flight.extend(record(22, &hs(14, &[])));
    c.server_send(&flight, 4_000);
    let mut cfin = record(22, &hs(16, &[0; 33]));
    cfin.extend(record(20, &[1]));
    cfin.extend(record(22, &[0; 40]));
    c.client_send(&cfin, 200);
    let mut sfin = record(20, &[1]);
    sfin.extend(record(22, &[0; 40]));
    c.server_send(&sfin, 2_000);
    c.client_send(&record(23, &[0; 500]), 100);
    c.server_send(&record(23, &[0; 9000]), 100);
    c.client_send(&record(21, &[0; 26]), 100); // encrypted close_notify
    c.close();
    let es = run(c);
    assert_eq!(es.len(), 1, "{es:?}");
    let h = t(&es[0]);
    assert_eq!(h.version_name(), Some("TLS 1.2"));
    assert_eq!(
        h.cipher_name().as_deref(),
        Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
    );
    assert_eq!(h.alpn_selected.as_deref(), Some("h2"));
    assert_eq!(h.app_records, [1, 1]);
    assert_eq!(h.app_bytes, [500, 9000]);
    assert_eq!(h.alert_count, 1);
    assert_eq!(h.alert_names(), ["encrypted"]);
    assert_eq!(h.resumption, None);
    assert!(h.ja3s.is_some() && h.ja4.is_some());
    assert!(h.handshake_us.unwrap() >= 6_000);
    assert_eq!(h.flags, 0);
}

#[test]
fn tls12_resumption_and_a_plain_alert() {
    let mut c = conv(41002);
    c.client_send(&record(22, &client_hello(Some("r.example"), &[3; 32], &[1, 2, 3])), 100);
    let mut flight = record(22, &server_hello(false, 0xc030, &[3; 32], None, false));
    flight.extend(record(20, &[1]));
    flight.extend(record(22, &[0; 40]));
    c.server_send(&flight, 1_000);
    let mut cfin = record(20, &[1]);
    cfin.extend(record(22, &[0; 40]));
    c.client_send(&cfin, 100);
    c.close();
    let h = t(&run(c)[0]).clone();
    assert_eq!(h.resumption, Some(Resumption::SessionId));
    assert!(h.handshake_us.is_some());

    let mut c = conv(41003);
    c.client_send(&record(22, &client_hello(Some("x.example"), &[], &[])), 100);
    c.server_send(&record(21, &[2, 40]), 1_000);
    c.close();
    let es = run(c);
    let h = t(&es[0]);
    assert_eq!(h.alert_names(), ["handshake_failure"]);
    assert_ne!(h.flags & tls_flags::HANDSHAKE_INCOMPLETE, 0);
    assert_eq!(h.version, None);
    assert!(
        es[0].summary().contains("alerts[handshake_failure]"),
        "{}",
        es[0].summary()
    );
}

#[test]
fn tls13_psk_resumption() {
    let mut c = conv(41004);
    c.client_send(&record(22, &client_hello(Some("p.example"), &[], &[])), 100);
    c.server_send(&record(22, &server_hello(true, 0x1302, &[], None, true)), 1_000);
    c.close();
    let h = t(&run(c)[0]).clone();
    assert_eq!(h.resumption, Some(Resumption::Psk));
    assert_eq!(h.cipher_name().as_deref(), Some("TLS_AES_256_GCM_SHA384"));
}

#[test]
fn every_split_point_gives_the_same_entry() {
    let mut whole = record(22, &client_hello(Some("s.example"), &[], &[]));
    whole.extend(record(23, &[1; 64]));
    let reference = {
        let mut c = conv(42000);
        c.client_send(&whole, 100);
        c.close();
        t(&run(c)[0]).clone()
    };
    for cut in 1..whole.len() {
        let mut c = conv(42000);
        c.client_send(&whole[..cut], 100);
        c.client_send(&whole[cut..], 100);
        c.close();
        let es = run(c);
        assert_eq!(es.len(), 1, "cut at {cut}");
        let mut h = t(&es[0]).clone();
        h.handshake_us = reference.handshake_us;
        assert_eq!(h, reference, "cut at {cut}");
    }
}

#[test]
fn non_tls_after_the_hello_stops_the_direction_and_caps_hold() {
    let mut c = conv(41005);
    let mut b = record(22, &client_hello(Some("z.example"), &[], &[]));
    b.extend(b"GET / HTTP/1.1\r\n\r\n");
    c.client_send(&b, 100);
    c.close();
    let h = t(&run(c)[0]).clone();
    assert_ne!(h.flags & tls_flags::FRAMING_LOST, 0);
    assert_eq!(h.sni.as_deref(), Some("z.example"));

    // A handshake message announcing more than the cap stops handshake reading, bounded.
    let limits = Limits {
        tls_max_handshake_bytes: 64,
        ..Limits::default()
    };
    let mut c = conv(41006);
    c.client_send(&record(22, &client_hello(Some("big.example"), &[], &[])), 100);
    c.close();
    let (es, shared) = crate::synth::testutil::replay_entries(c.packets(), limits);
    let h = t(&es[0]);
    assert_ne!(h.flags & tls_flags::HANDSHAKE_MALFORMED, 0);
    assert_eq!(h.sni, None);
    assert_eq!(shared.stats.lock().dissect.tls_handshake_errors, 1);
}
