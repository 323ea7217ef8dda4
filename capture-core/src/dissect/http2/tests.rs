//! The HTTP/2 state machine: byte streams fed straight to the session (cut at every position),
//! and synthetic TCP conversations through the whole engine (probing, h2c upgrade, gaps).

use std::io::Write;
use std::sync::Arc;

use super::frame::{self, PREFACE, build};
use super::hpack::Encoder;
use super::state::Http2Session;
use super::{grpc, probe, protobuf};
use crate::dissect::{Ctx, DissectStats, Probe};
use crate::engine::Shared;
use crate::entry::{Entry, Protocol, h2_flags};
use crate::limits::Limits;
use crate::synth::conversation::{Conversation, SynthPacket};
use crate::tcp::flow::{Dir, FlowKey, FlowMeta, RoleSource};
use crate::time::Timestamp;

const C: Dir = Dir::ToServer;
const S: Dir = Dir::ToClient;

fn hdrs(enc: &mut Encoder, stream: u32, flags: u8, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    enc.encode(fields, &mut block);
    build(frame::HEADERS, flags | frame::FLAG_END_HEADERS, stream, &block)
}

fn data(stream: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    build(frame::DATA, flags, stream, payload)
}

fn grpc_msg(compressed: bool, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![u8::from(compressed)];
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in pairs {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    build(frame::SETTINGS, 0, 0, &p)
}

fn meta(roles: RoleSource) -> FlowMeta {
    let client = "10.0.0.1:40000".parse().unwrap();
    let server = "10.0.0.2:50051".parse().unwrap();
    FlowMeta {
        id: 1,
        key: FlowKey::new(client, server, 6),
        client,
        server,
        roles,
        first_seen: Timestamp(0),
        last_seen: Timestamp(0),
        closed_at: None,
    }
}

/// Feeds the events to a fresh session, each cut into pieces of `piece` bytes.
fn run_direct(
    events: &[(Dir, Vec<u8>)],
    piece: usize,
    limits: &Limits,
    roles: RoleSource,
) -> (Vec<Entry>, DissectStats) {
    let meta = meta(roles);
    let mut out = Vec::new();
    let mut stats = DissectStats::default();
    let mut ctx = Ctx {
        limits,
        meta: &meta,
        out: &mut out,
        stats: &mut stats,
        keys: None,
    };
    let mut s = Http2Session::new();
    for (k, (dir, bytes)) in events.iter().enumerate() {
        let ts = Timestamp::from_secs_nanos(1_700_000_000, k as u64 * 1_000_000);
        for p in bytes.chunks(piece.max(1)) {
            s.on_chunk(*dir, ts, crate::tcp::reassembly::Chunk::Data(p), &mut ctx);
        }
    }
    s.finish(Timestamp::from_secs_nanos(1_700_000_100, 0), &mut ctx);
    (out, stats)
}

/// A unary call, a server-streaming call with a gzip message, a failing call (trailers-only),
/// with padding, priority and a header block split over CONTINUATION frames.
fn grpc_conversation() -> Vec<(Dir, Vec<u8>)> {
    let mut ce = Encoder::default();
    let mut se = Encoder::default();
    let mut ev = Vec::new();
    let mut c = PREFACE.to_vec();
    c.extend(settings(&[(2, 0), (4, 4_194_304)]));
    ev.push((C, c));
    ev.push((S, settings(&[(5, 32_768)])));
    let req = |path: &str| {
        vec![
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "pay.svc:50051"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-encoding", "gzip"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect::<Vec<_>>()
    };
    let as_refs = |v: &Vec<(String, String)>| v.iter().map(|(a, b)| (a.clone(), b.clone())).collect::<Vec<_>>();
    // Stream 1: unary; the request HEADERS is padded and carries a priority block.
    let r1 = as_refs(&req("/payments.Payments/Charge"));
    let r1: Vec<(&str, &str)> = r1.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let mut block = Vec::new();
    ce.encode(&r1, &mut block);
    let mut payload = vec![3u8, 0, 0, 0, 0, 16];
    payload.extend_from_slice(&block);
    payload.extend_from_slice(&[0, 0, 0]);
    let mut c = build(
        frame::HEADERS,
        frame::FLAG_END_HEADERS | frame::FLAG_PADDED | frame::FLAG_PRIORITY,
        1,
        &payload,
    );
    // DATA with 4 bytes of padding.
    let m = grpc_msg(false, b"\x0a\x03abc\x10\x2a");
    let mut p = vec![4u8];
    p.extend_from_slice(&m);
    p.extend_from_slice(&[0; 4]);
    c.extend(build(frame::DATA, frame::FLAG_PADDED | frame::FLAG_END_STREAM, 1, &p));
    ev.push((C, c));
    let mut s = hdrs(
        &mut se,
        1,
        0,
        &[(":status", "200"), ("content-type", "application/grpc")],
    );
    s.extend(data(1, 0, &grpc_msg(false, b"\x08\x01")));
    s.extend(hdrs(
        &mut se,
        1,
        frame::FLAG_END_STREAM,
        &[("grpc-status", "0"), ("grpc-message", "")],
    ));
    ev.push((S, s));
    // Stream 3: server streaming, three responses (one gzip), the request block in 3 pieces.
    let r3 = as_refs(&req("/payments.Payments/Watch"));
    let r3: Vec<(&str, &str)> = r3.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let mut block = Vec::new();
    ce.encode(&r3, &mut block);
    let (a, rest) = block.split_at(3);
    let (b, cc) = rest.split_at(rest.len() / 2);
    let mut c = build(frame::HEADERS, 0, 3, a);
    c.extend(build(frame::CONTINUATION, 0, 3, b));
    c.extend(build(frame::CONTINUATION, frame::FLAG_END_HEADERS, 3, cc));
    c.extend(data(3, frame::FLAG_END_STREAM, &grpc_msg(false, b"\x08\x07")));
    ev.push((C, c));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"\x0a\x05hello").unwrap();
    let packed = gz.finish().unwrap();
    let mut s = hdrs(
        &mut se,
        3,
        0,
        &[
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-encoding", "gzip"),
        ],
    );
    let mut body = grpc_msg(false, b"\x08\x01");
    body.extend(grpc_msg(true, &packed));
    body.extend(grpc_msg(false, b""));
    // The messages cut across DATA frames anywhere.
    let (x, y) = body.split_at(4);
    s.extend(data(3, 0, x));
    s.extend(data(3, 0, y));
    s.extend(hdrs(&mut se, 3, frame::FLAG_END_STREAM, &[("grpc-status", "0")]));
    ev.push((S, s));
    // Stream 5: fails with a trailers-only response and a percent-encoded message.
    let r5 = as_refs(&req("/payments.Payments/Refund"));
    let r5: Vec<(&str, &str)> = r5.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let mut c = hdrs(&mut ce, 5, 0, &r5);
    c.extend(data(5, frame::FLAG_END_STREAM, &grpc_msg(false, b"")));
    ev.push((C, c));
    ev.push((
        S,
        hdrs(
            &mut se,
            5,
            frame::FLAG_END_STREAM,
            &[
                (":status", "200"),
                ("content-type", "application/grpc"),
                ("grpc-status", "14"),
                ("grpc-message", "card%20declined%3A%20%E2%82%AC"),
            ],
        ),
    ));
    // PING and WINDOW_UPDATE in between change nothing.
    ev.push((C, build(frame::PING, 0, 0, &[1; 8])));
    ev.push((S, build(frame::WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0])));
    ev
}

fn check_grpc(es: &[Entry]) {
    assert_eq!(es.len(), 3, "{es:#?}");
    let by_id = |id: u32| es.iter().find(|e| e.h2().unwrap().stream_id == id).unwrap();
    let e1 = by_id(1);
    let h = e1.h2().unwrap();
    let g = e1.grpc().unwrap();
    assert_eq!(e1.protocol, Protocol::Grpc);
    assert_eq!(e1.src.to_string(), "10.0.0.1:40000");
    assert_eq!(
        (h.method.as_deref(), h.path.as_deref(), h.authority.as_deref(), h.status),
        (
            Some("POST"),
            Some("/payments.Payments/Charge"),
            Some("pay.svc:50051"),
            Some(200)
        )
    );
    assert_eq!(
        (&*g.service, &*g.method, g.status, g.message.as_deref()),
        ("payments.Payments", "Charge", Some(0), Some(""))
    );
    // Padding excluded, the 5-byte prefixes included.
    assert_eq!(
        (e1.request_body_size(), e1.response_body_size()),
        (Some(5 + 7), Some(5 + 2))
    );
    assert_eq!((g.request_messages, g.response_messages), (1, 1));
    assert_eq!(h.flags, 0);
    let e3 = by_id(3);
    let g = e3.grpc().unwrap();
    assert_eq!((&*g.method, g.request_messages, g.response_messages), ("Watch", 1, 3));
    assert_eq!(g.response_compressed, vec![false, true, false]);
    assert_eq!(g.response_encoding.as_deref(), Some("gzip"));
    let body = &e3.h2().unwrap().response.as_ref().unwrap().body;
    let msgs = grpc::messages(body);
    let plain = grpc::decompress(&msgs[1], g.response_encoding.as_deref(), 1 << 20);
    let grpc::Decompressed::Plain(p) = plain else {
        panic!("{plain:?}")
    };
    assert_eq!(protobuf::to_json(&protobuf::decode(&p, 8).unwrap()), r#"{"1":"hello"}"#);
    let e5 = by_id(5);
    let g = e5.grpc().unwrap();
    assert_eq!((g.status, g.message.as_deref()), (Some(14), Some("card declined: €")));
    assert_eq!((g.request_messages, g.response_messages), (1, 0));
    assert_eq!((e5.http_status(), e5.response_body_size()), (Some(200), Some(0)));
    assert!(
        e5.summary().contains("grpc 14 UNAVAILABLE \"card declined: €\""),
        "{}",
        e5.summary()
    );
}

#[test]
fn grpc_calls_decode_however_the_bytes_are_cut() {
    let ev = grpc_conversation();
    let limits = Limits::default();
    for piece in (1..=40).chain([100, 1_000, 100_000]) {
        let (es, stats) = run_direct(&ev, piece, &limits, RoleSource::Syn);
        check_grpc(&es);
        assert_eq!(
            stats.h2_hpack_errors + stats.h2_frame_errors + stats.h2_hpack_incomplete,
            0
        );
    }
}

#[test]
fn streams_end_as_entries_in_order_and_without_waiting_for_the_connection() {
    let ev = grpc_conversation();
    let limits = Limits::default();
    let meta = meta(RoleSource::Syn);
    let mut out = Vec::new();
    let mut stats = DissectStats::default();
    let mut ctx = Ctx {
        limits: &limits,
        meta: &meta,
        out: &mut out,
        stats: &mut stats,
        keys: None,
    };
    let mut s = Http2Session::new();
    for (dir, bytes) in &ev[..4] {
        s.on_chunk(*dir, Timestamp(1), crate::tcp::reassembly::Chunk::Data(bytes), &mut ctx);
    }
    // Stream 1 ended both ways: it is out before the connection ends.
    assert_eq!(ctx.out.len(), 1);
    assert_eq!(ctx.out[0].h2().unwrap().stream_id, 1);
}

#[test]
fn reset_streams_keep_the_racing_response_and_goaway_is_recorded() {
    let mut ce = Encoder::default();
    let mut se = Encoder::default();
    let get = |p: &'static str| {
        [
            (":method", "GET"),
            (":scheme", "https"),
            (":path", p),
            (":authority", "dns.google"),
        ]
    };
    let mut c = PREFACE.to_vec();
    c.extend(settings(&[]));
    c.extend(hdrs(&mut ce, 1, frame::FLAG_END_STREAM, &get("/a")));
    c.extend(hdrs(&mut ce, 3, frame::FLAG_END_STREAM, &get("/b")));
    let ev = vec![
        (C, c),
        (S, settings(&[])),
        // The client cancels stream 3, the server's response was already on its way.
        (C, build(frame::RST_STREAM, 0, 3, &8u32.to_be_bytes())),
        (S, {
            let mut s = hdrs(&mut se, 3, 0, &[(":status", "200")]);
            s.extend(data(3, frame::FLAG_END_STREAM, b"late"));
            s
        }),
        // A WINDOW_UPDATE for the finished stream does not open it again.
        (C, build(frame::WINDOW_UPDATE, 0, 3, &[0, 0, 1, 0])),
        (C, hdrs(&mut ce, 5, frame::FLAG_END_STREAM, &get("/c"))),
        // GOAWAY: last stream 1, so 5 was never processed.
        (S, {
            let mut p = 1u32.to_be_bytes().to_vec();
            p.extend_from_slice(&0u32.to_be_bytes());
            build(frame::GOAWAY, 0, 0, &p)
        }),
    ];
    for piece in [1, 7, 1000] {
        let (es, _) = run_direct(&ev, piece, &Limits::default(), RoleSource::Syn);
        let ids: Vec<u32> = es.iter().map(|e| e.h2().unwrap().stream_id).collect();
        assert_eq!(ids, vec![3, 1, 5]);
        let s3 = es[0].h2().unwrap();
        assert_eq!(
            (s3.rst_code, s3.rst_by_client, s3.status),
            (Some(8), Some(true), Some(200))
        );
        assert_eq!(es[0].response_body_size(), Some(4));
        assert!(es[0].summary().contains("RST_STREAM CANCEL"));
        let s1 = es[1].h2().unwrap();
        assert_eq!((s1.status, s1.goaway_code), (None, Some(0)));
        assert_eq!(s1.flags & h2_flags::REFUSED_BY_GOAWAY, 0);
        let s5 = es[2].h2().unwrap();
        assert_ne!(s5.flags & h2_flags::REFUSED_BY_GOAWAY, 0);
        assert_eq!(es[2].protocol, Protocol::Http2);
    }
}

#[test]
fn pushed_streams_are_marked() {
    let mut ce = Encoder::default();
    let mut se = Encoder::default();
    let mut c = PREFACE.to_vec();
    c.extend(hdrs(
        &mut ce,
        1,
        frame::FLAG_END_STREAM,
        &[(":method", "GET"), (":path", "/"), (":authority", "a")],
    ));
    let mut promise = 2u32.to_be_bytes().to_vec();
    se.encode(
        &[(":method", "GET"), (":path", "/style.css"), (":authority", "a")],
        &mut promise,
    );
    let mut s = settings(&[]);
    s.extend(build(frame::PUSH_PROMISE, frame::FLAG_END_HEADERS, 1, &promise));
    s.extend(hdrs(&mut se, 1, 0, &[(":status", "200")]));
    s.extend(data(1, frame::FLAG_END_STREAM, b"<html>"));
    s.extend(hdrs(&mut se, 2, 0, &[(":status", "200"), ("content-type", "text/css")]));
    s.extend(data(2, frame::FLAG_END_STREAM, b"p{}"));
    let (es, _) = run_direct(&[(C, c), (S, s)], 5, &Limits::default(), RoleSource::Syn);
    assert_eq!(es.len(), 2);
    let pushed = es.iter().find(|e| e.h2().unwrap().pushed).unwrap();
    let h = pushed.h2().unwrap();
    assert_eq!(
        (h.stream_id, h.promised_on, h.path.as_deref(), h.status),
        (2, Some(1), Some("/style.css"), Some(200))
    );
    assert_eq!(
        pushed.src.to_string(),
        "10.0.0.1:40000",
        "the client asked for nothing, but it is the client"
    );
    assert_eq!(pushed.response_body_size(), Some(3));
    assert!(pushed.summary().contains("pushed"));
}

#[test]
fn picked_up_mid_connection_headers_are_marked_incomplete_not_guessed() {
    // What the encoders had indexed before the capture started.
    let mut ce = Encoder::default();
    let mut se = Encoder::default();
    let req = [
        (":method", "POST"),
        (":path", "/x.Y/Z"),
        (":authority", "h"),
        ("content-type", "application/grpc"),
    ];
    ce.encode(&req, &mut Vec::new());
    se.encode(
        &[(":status", "200"), ("content-type", "application/grpc")],
        &mut Vec::new(),
    );
    // Now captured: stream 7 only refers to the table; stream 9 adds a new entry first.
    let mut c = hdrs(&mut ce, 7, 0, &req);
    c.extend(data(7, frame::FLAG_END_STREAM, &grpc_msg(false, b"\x08\x01")));
    let mut s = hdrs(
        &mut se,
        7,
        0,
        &[(":status", "200"), ("content-type", "application/grpc")],
    );
    s.extend(data(7, 0, &grpc_msg(false, b"")));
    s.extend(hdrs(&mut se, 7, frame::FLAG_END_STREAM, &[("grpc-status", "0")]));
    let mut c2 = hdrs(
        &mut ce,
        9,
        0,
        &[
            (":method", "POST"),
            (":path", "/x.Y/Fresh"),
            (":authority", "h"),
            ("x-new", "1"),
        ],
    );
    c2.extend(hdrs(
        &mut ce,
        11,
        frame::FLAG_END_STREAM,
        &[(":method", "POST"), ("x-new", "1")],
    ));
    let ev = vec![(C, c), (S, s), (C, c2)];
    let (es, stats) = run_direct(&ev, 1000, &Limits::default(), RoleSource::Port);
    let by_id = |id: u32| es.iter().find(|e| e.h2().unwrap().stream_id == id).unwrap();
    let s7 = by_id(7).h2().unwrap();
    assert_ne!(s7.flags & h2_flags::HPACK_INCOMPLETE, 0);
    // Static-table fields are still read; dynamic ones are missing, never invented.
    assert_eq!(s7.method.as_deref(), Some("POST"));
    assert_eq!(s7.path, None);
    assert_eq!(s7.status, Some(200));
    assert_eq!(by_id(7).response_body_size(), Some(5));
    // The trailers block after DATA is still trailers.
    assert_eq!(s7.response.as_ref().unwrap().trailer("grpc-status"), Some("0"));
    // Entries inserted after the pick-up are known: stream 11 reuses "x-new: 1" by index.
    let s11 = by_id(11).h2().unwrap();
    let hs = &s11.request.as_ref().unwrap().headers;
    assert!(hs.iter().any(|(n, v)| &**n == "x-new" && &**v == "1"), "{hs:?}");
    assert!(stats.h2_hpack_incomplete >= 1);
    assert_eq!(stats.h2_hpack_errors, 0);
}

#[test]
fn caps_are_counted_and_flagged() {
    let mut ce = Encoder::default();
    let mut c = PREFACE.to_vec();
    for id in [1u32, 3, 5] {
        c.extend(hdrs(
            &mut ce,
            id,
            0,
            &[(":method", "POST"), (":path", "/"), ("x-big", &"v".repeat(300))],
        ));
        c.extend(data(id, 0, &[b'z'; 500]));
    }
    // A block in 5 CONTINUATIONs.
    let mut block = Vec::new();
    ce.encode(
        &[(":method", "GET"), (":path", "/many"), ("x-a", "1"), ("x-b", "2")],
        &mut block,
    );
    c.extend(build(frame::HEADERS, frame::FLAG_END_STREAM, 7, &block[..1]));
    for (k, b) in block[1..].chunks(block.len().div_ceil(5)).enumerate() {
        let last = (k + 1) * block.len().div_ceil(5) >= block.len() - 1;
        c.extend(build(
            frame::CONTINUATION,
            if last { frame::FLAG_END_HEADERS } else { 0 },
            7,
            b,
        ));
    }
    let limits = Limits {
        h2_max_streams: 2,
        h2_max_header_list_bytes: 200,
        h2_max_continuations: 2,
        h2_stream_body_bytes: 100,
        ..Limits::default()
    };
    let (es, stats) = run_direct(&[(C, c)], 64, &limits, RoleSource::Syn);
    assert_eq!(es.len(), 4);
    assert_eq!(stats.h2_stream_overflows, 2);
    assert_eq!(stats.h2_header_lists_too_large, 3);
    assert_eq!(stats.h2_continuation_overflows, 1);
    assert_eq!(stats.h2_hpack_errors, 0, "decoding went on under every cap");
    let s1 = es[0].h2().unwrap();
    assert_eq!(s1.stream_id, 1);
    assert_ne!(s1.flags & h2_flags::STREAM_EVICTED, 0);
    assert_ne!(s1.flags & h2_flags::HEADER_LIST_TOO_LARGE, 0);
    let req = s1.request.as_ref().unwrap();
    assert_eq!((req.body.len(), req.body_size, req.body_truncated), (100, 500, true));
    let s7 = es
        .iter()
        .find(|e| e.h2().unwrap().stream_id == 7)
        .unwrap()
        .h2()
        .unwrap();
    assert_eq!(s7.path.as_deref(), Some("/many"), "fields before the cap are kept");
    assert_ne!(s7.flags & h2_flags::HEADER_LIST_TOO_LARGE, 0);
}

#[test]
fn a_header_table_size_update_after_settings_is_followed() {
    let mut ce = Encoder::default();
    let mut c = PREFACE.to_vec();
    let fields = [
        (":method", "GET"),
        (":path", "/t"),
        ("x-long", "aaaaaaaaaaaaaaaaaaaaaaaa"),
    ];
    c.extend(hdrs(&mut ce, 1, frame::FLAG_END_STREAM, &fields));
    // The server allows no table; the client acknowledges with a size update to 0.
    let mut block = Vec::new();
    ce.size_update(&mut block, 0);
    ce.encode(&fields, &mut block);
    let mut c2 = build(frame::SETTINGS, frame::FLAG_ACK, 0, &[]);
    c2.extend(build(
        frame::HEADERS,
        frame::FLAG_END_HEADERS | frame::FLAG_END_STREAM,
        3,
        &block,
    ));
    let ev = vec![
        (C, c),
        (S, settings(&[(frame::SETTINGS_HEADER_TABLE_SIZE, 0)])),
        (C, c2),
    ];
    let (es, stats) = run_direct(&ev, 3, &Limits::default(), RoleSource::Syn);
    assert_eq!(es.len(), 2);
    for e in &es {
        assert_eq!(e.http_path(), Some("/t"));
        assert_eq!(e.h2().unwrap().flags & h2_flags::HPACK_INCOMPLETE, 0);
    }
    assert_eq!(stats.h2_hpack_errors, 0);
}

#[test]
fn probe_accepts_prefaces_and_frames_and_refuses_other_protocols() {
    assert_eq!(probe(b"PRI * HTTP/2.0\r\n"), Probe::NeedMore);
    assert_eq!(probe(PREFACE), Probe::Match);
    assert_eq!(probe(&settings(&[(3, 100), (4, 65_535)])), Probe::Match);
    assert_eq!(probe(&settings(&[(3, 100)])[..12]), Probe::NeedMore);
    assert_eq!(probe(&settings(&[(77, 1)])), Probe::NoMatch);
    let mut enc = Encoder::default();
    let mut mid = hdrs(&mut enc, 5, 0, &[(":status", "200")]);
    mid.extend(data(5, frame::FLAG_END_STREAM, b"ok"));
    assert_eq!(probe(&mid), Probe::Match);
    assert_eq!(probe(&mid[..mid.len() - 1]), Probe::NoMatch);
    assert_eq!(probe(b"GET / HTTP/1.1\r\n\r\n"), Probe::NoMatch);
    assert_eq!(probe(b"*1\r\n$4\r\nPING\r\n"), Probe::NoMatch);
    assert_eq!(probe(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), Probe::NoMatch);
    assert_eq!(probe(b"AMQP\x00\x00\x09\x01"), Probe::NoMatch);
}

// ---------------------------------------------------------------------------------------------
// Through the engine.

fn conv(handshake: bool) -> Conversation {
    let mut c = Conversation::new(
        "10.0.0.1:41000".parse().unwrap(),
        "10.0.0.2:29518".parse().unwrap(),
        Timestamp::from_secs_nanos(1_700_000_000, 0),
        1_000,
        7_000,
        90_000,
    );
    if handshake {
        c.handshake();
    }
    c
}

fn run_packets(packets: Vec<SynthPacket>) -> (Vec<Arc<Entry>>, Shared) {
    crate::synth::testutil::replay_entries(packets, Limits::default())
}

#[test]
fn h2c_upgrade_hands_the_connection_to_http2() {
    let mut c = conv(true);
    c.client_send(
        b"GET /eicar HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
        100,
    );
    let mut se = Encoder::default();
    // The 101, the server preface and the response on stream 1 in one segment.
    let mut s = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".to_vec();
    s.extend(settings(&[(3, 100)]));
    s.extend(hdrs(
        &mut se,
        1,
        0,
        &[(":status", "206"), ("content-type", "text/plain")],
    ));
    s.extend(data(1, frame::FLAG_END_STREAM, b"X5O!P%@AP[4"));
    c.server_send(&s, 500);
    let mut p = PREFACE.to_vec();
    p.extend(settings(&[]));
    p.extend(build(frame::SETTINGS, frame::FLAG_ACK, 0, &[]));
    c.client_send(&p, 100);
    c.close();
    let (es, shared) = run_packets(c.packets());
    assert_eq!(es.len(), 2, "{es:#?}");
    assert_eq!(es[0].protocol, Protocol::Http11);
    assert_eq!(es[0].http_status(), Some(101));
    let e = &es[1];
    assert_eq!(e.protocol, Protocol::Http2);
    let h = e.h2().unwrap();
    assert_eq!((h.stream_id, h.status), (1, Some(206)));
    assert_eq!(
        (e.http_method(), e.http_path(), e.http_host()),
        (Some("GET"), Some("/eicar"), Some("127.0.0.1:8080"))
    );
    assert_ne!(h.flags & h2_flags::UPGRADED, 0);
    assert_eq!(h.flags & !h2_flags::UPGRADED, 0);
    assert_eq!((e.request_body_size(), e.response_body_size()), (None, Some(11)));
    assert_eq!(e.src.to_string(), "10.0.0.1:41000");
    let st = shared.stats.lock().dissect.clone();
    assert_eq!(st.connections.get("http/2"), Some(&1));
}

#[test]
fn found_on_any_port_when_the_server_speaks_first_and_without_a_handshake() {
    for handshake in [true, false] {
        let mut c = conv(handshake);
        let mut ce = Encoder::default();
        let mut se = Encoder::default();
        c.server_send(&settings(&[(3, 250)]), 10);
        let mut p = PREFACE.to_vec();
        p.extend(settings(&[]));
        p.extend(hdrs(
            &mut ce,
            3,
            0,
            &[
                (":method", "POST"),
                (":path", "/namf-comm/v1/subscriptions"),
                (":authority", "127.0.0.1:29518"),
            ],
        ));
        p.extend(data(3, frame::FLAG_END_STREAM, &[b'{'; 135]));
        c.client_send(&p, 10);
        let mut s = hdrs(&mut se, 3, 0, &[(":status", "201")]);
        s.extend(data(3, frame::FLAG_END_STREAM, &[b'}'; 86]));
        c.server_send(&s, 10);
        c.close();
        let (es, _) = run_packets(c.packets());
        assert_eq!(es.len(), 1, "handshake {handshake}: {es:#?}");
        let e = &es[0];
        assert_eq!((e.http_method(), e.http_status()), (Some("POST"), Some(201)));
        assert_eq!((e.request_body_size(), e.response_body_size()), (Some(135), Some(86)));
        assert_eq!(e.src.to_string(), "10.0.0.1:41000");
    }
}

#[test]
fn a_gap_inside_data_keeps_the_size_and_a_gap_elsewhere_resynchronises() {
    let mut c = conv(true).with_mss(100);
    let mut ce = Encoder::default();
    let mut se = Encoder::default();
    let mut p = PREFACE.to_vec();
    p.extend(hdrs(
        &mut ce,
        1,
        frame::FLAG_END_STREAM,
        &[(":method", "GET"), (":path", "/big")],
    ));
    c.client_send(&p, 10);
    let mut s = hdrs(&mut se, 1, 0, &[(":status", "200")]);
    s.extend(data(1, frame::FLAG_END_STREAM, &[b'x'; 1000]));
    c.server_send(&s, 10);
    c.client_send(
        &hdrs(
            &mut ce,
            3,
            frame::FLAG_END_STREAM,
            &[(":method", "GET"), (":path", "/after")],
        ),
        10,
    );
    let mut s = hdrs(&mut se, 3, 0, &[(":status", "204")]);
    s.extend(build(frame::PING, 0, 0, &[0; 8]));
    c.server_send(&s, 10);
    c.close();
    let mut packets = c.packets();
    // Drop the server's fourth data segment: 100 bytes in the middle of the DATA payload.
    let server_data: Vec<usize> = packets
        .iter()
        .enumerate()
        .filter(|(_, p)| p.data.len() > 100 && p.data[34..36] == 29518u16.to_be_bytes())
        .map(|(i, _)| i)
        .collect();
    assert!(server_data.len() >= 5);
    packets.remove(server_data[3]);
    let (es, _) = run_packets(packets);
    assert_eq!(es.len(), 2, "{es:#?}");
    let big = es.iter().find(|e| e.http_path() == Some("/big")).unwrap();
    assert_eq!(big.response_body_size(), Some(1000));
    assert_ne!(big.h2().unwrap().flags & h2_flags::GAP, 0);
    let after = es.iter().find(|e| e.http_path() == Some("/after")).unwrap();
    assert_eq!(after.http_status(), Some(204));
}

#[test]
fn dynamic_table_survives_streams_nobody_keeps() {
    // Streams evicted by the cap still have their blocks decoded: later references resolve.
    let mut ce = Encoder::default();
    let mut c = PREFACE.to_vec();
    for id in (1..40).step_by(2) {
        c.extend(hdrs(
            &mut ce,
            id,
            0,
            &[
                (":method", "GET"),
                (":path", &format!("/p{id}")),
                ("x-id", &id.to_string()),
            ],
        ));
    }
    let limits = Limits {
        h2_max_streams: 3,
        ..Limits::default()
    };
    let (es, stats) = run_direct(&[(C, c)], 17, &limits, RoleSource::Syn);
    assert_eq!(es.len(), 20);
    assert_eq!(stats.h2_hpack_errors + stats.h2_hpack_incomplete, 0);
    for (k, e) in es.iter().enumerate() {
        let id = 2 * k as u32 + 1;
        assert_eq!(e.http_path(), Some(format!("/p{id}").as_str()));
    }
}
