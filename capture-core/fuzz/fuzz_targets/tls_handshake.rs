//! The TLS record reader, hello/certificate parsers and session.
//!
//! Input: one selector byte (low 4 bits: piece size; bit 4: the server speaks first), then the
//! bytes. The probe and the handshake parsers must never panic; what they keep must stay within
//! `tls_max_list`; the session, fed the pieces alternately from each side (a 3-byte piece is a
//! gap), must emit exactly one entry with its lists within the caps.
#![no_main]

mod common;

use capture_core::dissect::tls::{parse, state::TlsSession};
use capture_core::tcp::flow::Dir;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let limits = common::small_limits();
    let _ = parse::probe(rest);
    let _ = parse::record_header(rest);
    if let Some(parse::Handshake::ClientHello(ch)) = parse::handshake(rest, limits.tls_max_list, sel & 0x20 != 0) {
        assert!(ch.alpn.len() <= limits.tls_max_list);
        assert_eq!(ch.ja3.len(), 32);
    }
    if let Some(c) = parse::certificate(rest, limits.tls_max_list) {
        assert!(c.sans.len() <= limits.tls_max_list);
    }
    let piece = usize::from(sel & 0x0f) * 7 + 1;
    let first = if sel & 0x10 != 0 { Dir::ToClient } else { Dir::ToServer };
    let mut s = TlsSession::new();
    let out = common::drive(&mut s, &limits, rest, piece, first);
    assert_eq!(out.len(), 1);
    let t = out[0].tls_handshake().expect("a tls entry");
    assert!(t.alpn_offered.len() <= limits.tls_max_list && t.alerts.len() <= limits.tls_max_list);
    assert!(t.alerts.len() as u64 <= u64::from(t.alert_count));
    let _ = out[0].summary();
});
