//! HTTP/2 and gRPC dissection throughput: `Engine::replay` over generated prior-knowledge h2c
//! connections (decode, TCP reassembly, frame parsing, HPACK, stream tracking, gRPC message
//! counting, store inserts).
//!
//! The workload: 40 connections, each with 150 unary calls (a 600-byte request, a 4 KiB response
//! spread over several TCP segments) and 10 server-streaming calls of 20 messages; header blocks
//! are HPACK literals (`synth::h2`). One untimed run checks that the store holds exactly one `grpc`
//! entry per call with the right message counts, then criterion times the replay. Throughput is
//! in bytes of frames (Ethernet included).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::ControlFlow;
use std::time::Duration;

use capture_core::engine::{Engine, Shared};
use capture_core::limits::Limits;
use capture_core::store::Order;
use capture_core::synth::rng::SplitMix64;
use capture_core::synth::{Conversation, LINK, h2};
use capture_core::time::Timestamp;
use criterion::{Criterion, Throughput};

const CONNECTIONS: u32 = 40;
const UNARY: u32 = 150;
const STREAMING: u32 = 10;
const STREAM_MESSAGES: u64 = 20;

fn request_headers(path: &str) -> Vec<u8> {
    h2::header_block(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "inventory.shop.svc.cluster.local:50051"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("user-agent", "grpc-java-netty/1.68.1"),
        ("grpc-timeout", "1999m"),
    ])
}

fn message(rng: &mut SplitMix64, len: usize) -> Vec<u8> {
    let mut body = Vec::new();
    h2::pb_varint(&mut body, 1, rng.next_u64() >> 8);
    let text: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
    h2::pb_bytes(&mut body, 2, &text);
    h2::grpc_message(&body)
}

struct Workload {
    packets: Vec<(Timestamp, Vec<u8>)>,
    /// Total bytes of the frames.
    bytes: u64,
    /// `(request, response)` message counts of every call.
    expected: Vec<(u64, u64)>,
}

fn workload() -> Workload {
    let mut rng = SplitMix64::new(5);
    let server = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)), 50051);
    let mut packets = Vec::new();
    let mut expected = Vec::new();
    for c in 0..CONNECTIONS {
        let client = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 1, 1, 1 + c as u8)), 40_000 + c as u16);
        let start = Timestamp::from_secs_nanos(1_768_471_200 + u64::from(c), 0);
        let mut conv = Conversation::new(client, server, start, 200, rng.next_u32(), rng.next_u32());
        conv.handshake();
        let mut first = h2::PREFACE.to_vec();
        h2::frame(&mut first, h2::SETTINGS, 0, 0, &[]);
        let mut stream = 1u32;
        for i in 0..UNARY + STREAMING {
            let streaming = i % ((UNARY + STREAMING) / STREAMING) == 0;
            let path = if streaming {
                "/shop.Inventory/Watch"
            } else {
                "/shop.Inventory/Get"
            };
            let mut req = std::mem::take(&mut first);
            h2::frame(&mut req, h2::HEADERS, h2::END_HEADERS, stream, &request_headers(path));
            h2::frame(&mut req, h2::DATA, h2::END_STREAM, stream, &message(&mut rng, 580));
            conv.client_send(&req, 300);
            let mut resp = Vec::new();
            if i == 0 {
                h2::frame(&mut resp, h2::SETTINGS, 0, 0, &[]);
                h2::frame(&mut resp, h2::SETTINGS, h2::ACK, 0, &[]);
            }
            let block = h2::header_block(&[(":status", "200"), ("content-type", "application/grpc")]);
            h2::frame(&mut resp, h2::HEADERS, h2::END_HEADERS, stream, &block);
            let replies = if streaming { STREAM_MESSAGES } else { 1 };
            for _ in 0..replies {
                let len = if streaming { 180 } else { 4_000 };
                h2::frame(&mut resp, h2::DATA, 0, stream, &message(&mut rng, len));
            }
            let trailers = h2::header_block(&[("grpc-status", "0"), ("grpc-message", "")]);
            h2::frame(
                &mut resp,
                h2::HEADERS,
                h2::END_HEADERS | h2::END_STREAM,
                stream,
                &trailers,
            );
            conv.server_send(&resp, 1_000);
            expected.push((1, replies));
            stream += 2;
        }
        conv.close();
        packets.extend(conv.packets().into_iter().map(|p| (p.ts, p.data)));
    }
    packets.sort_by_key(|p| p.0);
    let bytes = packets.iter().map(|p| p.1.len() as u64).sum();
    Workload {
        packets,
        bytes,
        expected,
    }
}

fn replay(packets: &[(Timestamp, Vec<u8>)]) -> Shared {
    let shared = Shared::new(1 << 30);
    let mut engine = Engine::new(Limits::default(), shared.clone());
    black_box(engine.replay("bench", LINK, packets));
    shared
}

fn benches(c: &mut Criterion) {
    let Workload {
        packets,
        bytes,
        expected,
    } = workload();
    // Validation: every call is one `grpc` entry with its message counts.
    let shared = replay(&packets);
    let mut got = Vec::new();
    shared.store.scan(Order::Asc, None, &mut |e| {
        assert_eq!(e.protocol.name(), "grpc");
        let g = e.grpc().expect("a gRPC call");
        assert_eq!(g.status, Some(0));
        got.push((g.request_messages, g.response_messages));
        ControlFlow::Continue(())
    });
    let (mut got_sorted, mut want_sorted) = (got, expected);
    got_sorted.sort_unstable();
    want_sorted.sort_unstable();
    assert_eq!(got_sorted, want_sorted, "the engine did not find every call");
    eprintln!(
        "http2 workload: {} packets, {bytes} bytes, {} gRPC calls",
        packets.len(),
        want_sorted.len()
    );

    let mut g = c.benchmark_group("http2");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    g.bench_function("grpc_replay", |b| b.iter(|| replay(&packets)));
    g.finish();
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    benches(&mut c);
    c.final_summary();
}
