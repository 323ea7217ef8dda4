//! Test helpers: replay synthesised packets through a fresh engine, reassemble synthesised TCP
//! streams, parse the HTTP/1.x messages in them, and run the TCP analysis over a conversation.

use crate::engine::{Engine, Shared};
use crate::entry::Entry;
use crate::limits::Limits;
use crate::store::Order;
use crate::synth::SynthPacket;
use crate::synth::conversation::LINK;
use crate::synth::packet::{FIN, SYN, Transport, decode_frame};
use crate::tcp::analysis::{Segment, TcpAnalysis, TcpMetrics};
use crate::time::Timestamp;
use crate::wire::TcpFlags;
use flate2::read::GzDecoder;
use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;

/// One direction of a connection.
pub type FlowKey = (SocketAddr, SocketAddr);

/// Decodes every frame (checksums verified) and puts payloads in sequence order per direction:
/// retransmitted and probed bytes are taken once. Returns the connections (client, server) in
/// SYN order and the byte streams. Panics on a gap: the synthesisers lose segments only after
/// the capture point, so the capture always has every byte.
pub fn reassemble<'a>(frames: impl IntoIterator<Item = &'a [u8]>) -> (Vec<FlowKey>, HashMap<FlowKey, Vec<u8>>) {
    let mut order = Vec::new();
    let mut streams: HashMap<FlowKey, Vec<u8>> = HashMap::new();
    let mut next: HashMap<FlowKey, u32> = HashMap::new();
    for f in frames {
        let d = decode_frame(f).unwrap();
        let Transport::Tcp { flags, seq, .. } = d.transport else {
            panic!("not TCP")
        };
        let key = (d.src, d.dst);
        if flags == SYN {
            order.push(key);
        }
        let start = if flags & SYN != 0 { seq.wrapping_add(1) } else { seq };
        let expected = *next.entry(key).or_insert(start);
        let skip = expected.wrapping_sub(start);
        assert!((skip as i32) >= 0, "gap in {key:?}: expected {expected}, got {start}");
        let stream = streams.entry(key).or_default();
        if (skip as usize) < d.payload.len() {
            stream.extend_from_slice(&d.payload[skip as usize..]);
        }
        let end = start
            .wrapping_add(d.payload.len() as u32)
            .wrapping_add(u32::from(flags & FIN != 0));
        if (end.wrapping_sub(expected) as i32) > 0 {
            next.insert(key, end);
        }
    }
    (order, streams)
}

/// Runs the TCP analysis over one conversation's packets (direction 0: the first packet's
/// sender).
pub fn analyse(packets: &[SynthPacket]) -> TcpMetrics {
    let mut a = TcpAnalysis::default();
    let mut client = None;
    for p in packets {
        let d = decode_frame(&p.data).unwrap();
        let Transport::Tcp {
            seq,
            ack,
            flags,
            window,
            window_scale,
            ..
        } = d.transport
        else {
            panic!("not TCP")
        };
        let client = *client.get_or_insert(d.src);
        a.packet(&Segment {
            ts: p.ts,
            dir: usize::from(d.src != client),
            seq,
            ack,
            flags: TcpFlags(flags),
            window,
            seglen: d.payload.len() as u32,
            window_scale,
            frame_len: p.data.len() as u32,
        });
    }
    a.metrics
}

/// One parsed HTTP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// `METHOD path` for requests, the status code for responses.
    pub line: String,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// The body after removing chunking and gzip.
    pub body: Vec<u8>,
    pub chunked: bool,
    pub gzip: bool,
    pub trailer: bool,
}

fn line_end(buf: &[u8]) -> usize {
    buf.windows(2).position(|w| w == b"\r\n").unwrap()
}

/// Parses consecutive messages. A response without Content-Length or chunking runs to the end.
pub fn parse_messages(mut buf: &[u8], response: bool) -> Vec<Msg> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let (head_len, line, version, hdrs) = if response {
            let mut r = httparse::Response::new(&mut headers);
            let httparse::Status::Complete(n) = r.parse(buf).unwrap() else {
                panic!("partial")
            };
            let line = r.code.unwrap().to_string();
            let h: Vec<(String, String)> = r
                .headers
                .iter()
                .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into()))
                .collect();
            (n, line, r.version.unwrap(), h)
        } else {
            let mut r = httparse::Request::new(&mut headers);
            let httparse::Status::Complete(n) = r.parse(buf).unwrap() else {
                panic!("partial")
            };
            let line = format!("{} {}", r.method.unwrap(), r.path.unwrap());
            let h: Vec<(String, String)> = r
                .headers
                .iter()
                .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into()))
                .collect();
            (n, line, r.version.unwrap(), h)
        };
        let get = |k: &str| hdrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        buf = &buf[head_len..];
        let chunked = get("transfer-encoding").is_some_and(|v| v == "chunked");
        let gzip = get("content-encoding").is_some_and(|v| v == "gzip");
        let mut trailer = false;
        let mut body = Vec::new();
        if chunked {
            loop {
                let eol = line_end(buf);
                let size = std::str::from_utf8(&buf[..eol]).unwrap();
                let n = usize::from_str_radix(size, 16).unwrap();
                buf = &buf[eol + 2..];
                if n == 0 {
                    loop {
                        let eol = line_end(buf);
                        buf = &buf[eol + 2..];
                        if eol == 0 {
                            break;
                        }
                        trailer = true;
                    }
                    break;
                }
                body.extend_from_slice(&buf[..n]);
                assert_eq!(&buf[n..n + 2], b"\r\n");
                buf = &buf[n + 2..];
            }
        } else if let Some(len) = get("content-length") {
            let n: usize = len.parse().unwrap();
            body.extend_from_slice(&buf[..n]);
            buf = &buf[n..];
        } else if response {
            body.extend_from_slice(buf);
            buf = &[];
        }
        if gzip {
            let mut plain = Vec::new();
            GzDecoder::new(&body[..]).read_to_end(&mut plain).unwrap();
            body = plain;
        }
        out.push(Msg {
            line,
            version,
            body,
            chunked,
            gzip,
            trailer,
        });
    }
    out
}

/// Replays packets through a fresh engine; returns its entries (oldest first) and what it shares
/// (counters, flows).
pub fn replay_entries(packets: Vec<SynthPacket>, limits: Limits) -> (Vec<Arc<Entry>>, Shared) {
    let shared = Shared::with_limits(&limits);
    let mut engine = Engine::new(limits, shared.clone());
    let pk: Vec<(Timestamp, Vec<u8>)> = packets.into_iter().map(|p| (p.ts, p.data)).collect();
    engine.replay("test", LINK, &pk);
    let mut v = Vec::new();
    shared.store.scan(Order::Asc, None, &mut |e| {
        v.push(e.clone());
        std::ops::ControlFlow::Continue(())
    });
    (v, shared)
}
