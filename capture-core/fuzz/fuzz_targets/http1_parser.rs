//! The HTTP/1 parser: its pure functions on the raw input (the head parser's fast path checked
//! against httparse), then the stateful session on a
//! synthesised TCP conversation through a full engine, then the content decoder on the bodies.
//!
//! Input: `flags`, `coding`, two bytes of split index, then the stream bytes. The bytes before
//! the split are the client's, the rest the server's; each side is cut into writes at
//! `common::DELIM`, and the writes alternate (client, server, client, ...).
//! - `flags` bit 0: no handshake (capture starts mid-stream); bits 1-2: teardown (client FIN,
//!   server FIN, server RST, none); bits 3-5: MSS; bit 6: swap two packets; bit 7: drop one.
//! - `coding` low 3 bits: the Content-Encoding given to `content::decode`; bits 3-6: piece
//!   size for the incremental chunked-decoding check.
#![no_main]

mod common;

use std::net::SocketAddr;
use std::ops::ControlFlow;

use capture_core::content;
use capture_core::dissect::http1::parse::{
    self, ChunkError, ChunkedDecoder, HeadEnd, request_framing, response_framing,
};
use capture_core::source::Packet;
use capture_core::store::Order;
use capture_core::synth::conversation::{Conversation, LINK};
use capture_core::time::Timestamp;
use libfuzzer_sys::fuzz_target;

const MSS: [usize; 8] = [1, 7, 64, 536, 1448, 1448, 1448, 9000];
/// `None` means: the message's own Content-Encoding header.
const CODINGS: [Option<&str>; 8] = [
    None,
    None,
    Some("gzip"),
    Some("deflate"),
    Some("br"),
    Some("X-GZIP "),
    Some("gzip, br"),
    Some("zstd"),
];
const DECODE_CAP: usize = 4 << 10;

type Dechunked = (Vec<u8>, Vec<u8>, Result<bool, ChunkError>, usize);

/// Chunked decoding over the whole input at once: (data, trailers, done or error, consumed).
fn dechunk_whole(input: &[u8]) -> Dechunked {
    let mut d = ChunkedDecoder::default();
    let (mut data, mut trailers, mut at) = (Vec::new(), Vec::new(), 0);
    loop {
        let s = match d.step(&input[at..]) {
            Ok(s) => s,
            Err(e) => return (data, trailers, Err(e), at),
        };
        assert!(s.consumed <= input.len() - at);
        for (a, b) in s.data.into_iter().chain(s.trailer) {
            assert!(a <= b && b <= s.consumed);
        }
        if let Some((a, b)) = s.data {
            data.extend_from_slice(&input[at + a..at + b]);
        }
        if let Some((a, b)) = s.trailer {
            trailers.extend_from_slice(&input[at + a..at + b]);
        }
        at += s.consumed;
        if s.done || s.consumed == 0 {
            assert_eq!(s.done, d.is_done());
            return (data, trailers, Ok(s.done), at);
        }
    }
}

/// The same, with the input arriving `piece` bytes at a time into a buffer (as on a socket).
fn dechunk_pieces(input: &[u8], piece: usize) -> Dechunked {
    let mut d = ChunkedDecoder::default();
    let (mut data, mut trailers, mut used) = (Vec::new(), Vec::new(), 0);
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    loop {
        let s = match d.step(&buf) {
            Ok(s) => s,
            Err(e) => return (data, trailers, Err(e), used),
        };
        if let Some((a, b)) = s.data {
            data.extend_from_slice(&buf[a..b]);
        }
        if let Some((a, b)) = s.trailer {
            trailers.extend_from_slice(&buf[a..b]);
        }
        buf.drain(..s.consumed);
        used += s.consumed;
        if s.done {
            return (data, trailers, Ok(true), used);
        }
        if s.consumed == 0 {
            if fed == input.len() {
                return (data, trailers, Ok(false), used);
            }
            let n = piece.min(input.len() - fed);
            buf.extend_from_slice(&input[fed..fed + n]);
            fed += n;
        }
    }
}

fn pure(data: &[u8], piece: usize) {
    let _ = parse::probe(data);
    let _ = parse::probe_request(data);
    let _ = parse::probe_response(data);
    let mut from = 0;
    while let Some(at) = parse::find_message_start(data, from) {
        assert!(at >= from && at < data.len());
        from = at + 1;
    }
    for max in [64, 1 << 10, usize::MAX] {
        if let HeadEnd::Found(n) = parse::find_head_end(data, max) {
            assert!(n <= data.len());
            let head = &data[..n];
            let req = parse::parse_request_head(head, 16);
            if let Ok(r) = &req {
                let _ = request_framing(&r.common);
            }
            if let Ok(r) = parse::parse_response_head(head, 16) {
                let method = req.as_ref().ok().map(|q| q.method);
                let _ = response_framing(&r.common, r.status, method);
                let _ = response_framing(&r.common, r.status, Some("HEAD"));
                let _ = response_framing(&r.common, r.status, Some("CONNECT"));
            }
            let _ = parse::parse_request_head(head, 1);
            let _ = parse::header_pairs(head);
        }
    }
    let _ = parse::header_pairs(data);
    // The head parser's fast path gives what httparse gives, on every head it takes.
    for max in [1, 16, 100] {
        if let Some(d) = parse::fast_path_disagreement(data, max) {
            panic!("{d}");
        }
    }
    assert_eq!(dechunk_whole(data), dechunk_pieces(data, piece));
}

fuzz_target!(|input: &[u8]| {
    let [flags, coding, s0, s1, stream @ ..] = input else {
        return;
    };
    let piece = 1 + usize::from(coding >> 3 & 15);
    pure(stream, piece);

    let split = usize::from(u16::from_be_bytes([*s0, *s1])) % (stream.len() + 1);
    let (to_server, to_client) = stream.split_at(split);
    let forced = CODINGS[usize::from(coding & 7)];
    if forced.is_some() {
        let d = content::decode(forced, to_client, DECODE_CAP);
        assert!(d.bytes.len() <= DECODE_CAP.max(to_client.len()));
    }

    let client: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let server: SocketAddr = "10.0.0.2:80".parse().unwrap();
    let start = Timestamp(1_700_000_000_000_000_000);
    // Client ISN just below 2^32 and server ISN just below 2^31: sequence numbers wrap.
    // Tiny segments only for short streams: at most ~1,000 data segments per input.
    let mss = MSS[usize::from(flags >> 3 & 7)].max(stream.len() / 1_000);
    let mut conv = Conversation::new(client, server, start, 1_000, 0xffff_fc00, 0x7fff_ff00).with_mss(mss);
    if flags & 1 == 0 {
        conv.handshake();
    }
    let (cw, sw) = (common::split(to_server), common::split(to_client));
    for i in 0..cw.len().max(sw.len()) {
        if let Some(w) = cw.get(i) {
            conv.client_send(w, 0);
        }
        if let Some(w) = sw.get(i) {
            conv.server_send(w, 0);
        }
    }
    match flags >> 1 & 3 {
        0 => conv.close(),
        1 => conv.close_from_server(),
        2 => conv.reset_from_server(),
        _ => &mut conv,
    };
    let mut packets = conv.packets();
    if !packets.is_empty() {
        let k = split % packets.len();
        if flags & 0x40 != 0 && k + 1 < packets.len() {
            packets.swap(k, k + 1);
        }
        if flags & 0x80 != 0 {
            packets.remove(k);
        }
    }

    let mut engine = common::engine();
    for p in &packets {
        engine.process(&Packet {
            ts: p.ts,
            link: LINK,
            data: &p.data,
            orig_len: p.data.len() as u32,
            interface: 0,
        });
    }
    engine.finish();

    let body_cap = engine.limits().body_capture_bytes;
    engine.shared().store.scan(Order::Asc, None, &mut |e| {
        let Some(h) = e.http() else {
            return ControlFlow::Continue(());
        };
        for m in h.request.iter().chain(&h.response) {
            assert!(m.body.len() <= body_cap);
            assert!(m.body.len() as u64 <= m.body_size);
            let ce = m.header("content-encoding");
            let ce = forced.or(ce.as_deref());
            let d = content::decode(ce, &m.body, DECODE_CAP);
            assert!(d.bytes.len() <= DECODE_CAP.max(m.body.len()));
        }
        ControlFlow::Continue(())
    });
});
