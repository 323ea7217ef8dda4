//! Dissection throughput of the Redis, Kafka, DNS and AMQP dissectors: `Engine::replay` over a
//! capture generated in memory with `synth` (Ethernet frames with their timestamps, as a pcap
//! holds them), through decode, flow table, TCP reassembly, the dissector and the store.
//!
//! Workloads (fixed seeds, so every run sees the same bytes):
//! - `redis`: 16 connections, each 60 pipelines of 10 commands (SET of a 120-byte JSON value,
//!   GET answered by it), one write per pipeline each way;
//! - `kafka`: 4 producers sending 150 Produce v3 requests of 8 records each, 4 consumers sending
//!   150 Fetch v4 requests answered with 8 records each;
//! - `dns`: 20,000 UDP queries (A and AAAA of cluster names) and their responses;
//! - `amqp`: 8 connections opened (Start … Channel.Open), each publishing 300 messages (a
//!   content header with 7 properties and 3 headers, a 600-byte body in two body frames) and
//!   receiving 300 deliveries it acknowledges.
//!
//! One untimed run checks the entry count of each workload, then criterion times the replay with
//! the throughput in bytes of frames (Ethernet included); dropping the store afterwards is not
//! timed (as in `pipeline`). After criterion, each workload is replayed 5 more times and the
//! median gives MiB/s and entries/s, printed as a table.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use capture_core::engine::{Engine, Shared};
use capture_core::limits::Limits;
use capture_core::synth::messages as msg;
use capture_core::synth::packet::{UdpSpec, udp_frame};
use capture_core::synth::rng::SplitMix64;
use capture_core::synth::{Conversation, LINK};
use capture_core::time::Timestamp;
use criterion::{Criterion, Throughput};

type Packets = Vec<(Timestamp, Vec<u8>)>;

struct Workload {
    name: &'static str,
    packets: Packets,
    bytes: u64,
    entries: usize,
}

fn addr(a: u8, b: u8, c: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, a, b, c)), port)
}

fn start(i: u32) -> Timestamp {
    Timestamp::from_secs_nanos(1_768_471_200 + u64::from(i), 0)
}

fn conversation(rng: &mut SplitMix64, i: u32, server: SocketAddr) -> Conversation {
    let client = addr(2, (i / 200) as u8, (i % 200) as u8 + 1, 40_000 + i as u16);
    let mut c = Conversation::new(client, server, start(i), 300, rng.next_u32(), rng.next_u32());
    c.handshake();
    c
}

fn finish(name: &'static str, mut packets: Packets, entries: usize) -> Workload {
    packets.sort_by_key(|p| p.0);
    let bytes = packets.iter().map(|p| p.1.len() as u64).sum();
    Workload {
        name,
        packets,
        bytes,
        entries,
    }
}

fn json(rng: &mut SplitMix64, len: usize) -> String {
    let mut s = format!("{{\"id\":{},\"data\":\"", rng.next_u32());
    while s.len() + 2 < len {
        s.push((b'a' + (rng.next_u32() % 26) as u8) as char);
    }
    s.push_str("\"}");
    s
}

fn redis() -> Workload {
    let mut rng = SplitMix64::new(11);
    let server = addr(1, 0, 10, 6379);
    let (mut packets, mut entries) = (Vec::new(), 0);
    for c in 0..16 {
        let mut conv = conversation(&mut rng, c, server);
        for p in 0..60 {
            let (mut req, mut resp) = (Vec::new(), Vec::new());
            for k in 0..10 {
                let key = format!("session:{c}:{}", p * 10 + k);
                let value = json(&mut rng, 120);
                if k % 2 == 0 {
                    req.extend(msg::resp_command(&["SET", &key, &value, "EX", "3600"]));
                    resp.extend(msg::resp_simple("OK"));
                } else {
                    req.extend(msg::resp_command(&["GET", &key]));
                    resp.extend(msg::resp_bulk(&value));
                }
                entries += 1;
            }
            conv.client_send(&req, 200);
            conv.server_send(&resp, 150);
        }
        conv.close();
        packets.extend(conv.packets().into_iter().map(|p| (p.ts, p.data)));
    }
    finish("redis", packets, entries)
}

fn kafka() -> Workload {
    let mut rng = SplitMix64::new(12);
    let server = addr(1, 0, 20, 9092);
    let (mut packets, mut entries) = (Vec::new(), 0);
    for c in 0..8u32 {
        let mut conv = conversation(&mut rng, c, server);
        let producer = c < 4;
        let client = if producer {
            "orders-producer"
        } else {
            "inventory-consumer"
        };
        let mut offset = 0i64;
        for corr in 0..150i32 {
            let values: Vec<(String, String)> = (0..8)
                .map(|i| (format!("ord-{}", offset + i), json(&mut rng, 160)))
                .collect();
            let refs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let batch = msg::kafka_record_batch(offset, 1_768_471_200_000 + i64::from(corr), &refs);
            if producer {
                let body = msg::kafka_produce_request("orders.created", &batch);
                conv.client_send(&msg::kafka_request(msg::KAFKA_PRODUCE, 3, corr, client, &body), 500);
                let resp = msg::kafka_produce_response("orders.created", offset);
                conv.server_send(&msg::kafka_response(corr, &resp), 2_000);
            } else {
                let body = msg::kafka_fetch_request("orders.created", offset);
                conv.client_send(&msg::kafka_request(msg::KAFKA_FETCH, 4, corr, client, &body), 500);
                let resp = msg::kafka_fetch_response("orders.created", offset + 8, &batch);
                conv.server_send(&msg::kafka_response(corr, &resp), 2_000);
            }
            offset += 8;
            entries += 1;
        }
        conv.close();
        packets.extend(conv.packets().into_iter().map(|p| (p.ts, p.data)));
    }
    finish("kafka", packets, entries)
}

fn dns() -> Workload {
    let mut rng = SplitMix64::new(13);
    let server = addr(1, 0, 53, 53);
    let mut packets = Vec::new();
    let services = ["orders", "billing", "inventory", "frontend", "payments", "search"];
    let queries = 20_000u32;
    for i in 0..queries {
        let client = addr(3, (i % 50) as u8, 1 + (i % 7) as u8, 30_000 + (i % 20_000) as u16);
        let name = format!(
            "{}.{}.svc.cluster.local",
            services[(rng.next_u32() as usize) % services.len()],
            ["shop", "prod", "kube-system"][(rng.next_u32() % 3) as usize]
        );
        let qtype = if i % 2 == 0 { 1 } else { 28 };
        let id = rng.next_u32() as u16;
        let ts = Timestamp::from_secs_nanos(1_768_471_200 + u64::from(i / 1_000), u64::from(i % 1_000) * 1_000_000);
        let query = msg::dns_query(id, &name, qtype);
        let addrs: &[[u8; 4]] = if qtype == 1 { &[[10, 96, 0, 12]] } else { &[] };
        let response = msg::dns_response(id, &name, qtype, 0, 30, addrs);
        let ip_id = rng.next_u32() as u16;
        packets.push((
            ts,
            udp_frame(&UdpSpec {
                src: client,
                dst: server,
                ip_id,
                payload: &query,
            }),
        ));
        packets.push((
            Timestamp(ts.0 + 400_000),
            udp_frame(&UdpSpec {
                src: server,
                dst: client,
                ip_id: ip_id ^ 0x5a5a,
                payload: &response,
            }),
        ));
    }
    finish("dns", packets, queries as usize)
}

/// A frame of `kind` on `channel`.
fn amqp_frame(out: &mut Vec<u8>, kind: u8, channel: u16, payload: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.push(0xce);
}

/// A content header with content-type, content-encoding, headers (3), delivery-mode,
/// correlation-id, message-id and timestamp, then the body in two body frames.
fn amqp_content(out: &mut Vec<u8>, rng: &mut SplitMix64, body: &[u8]) {
    let mut h = 60u16.to_be_bytes().to_vec();
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&(body.len() as u64).to_be_bytes());
    h.extend_from_slice(&0xf4c0u16.to_be_bytes());
    msg::amqp_short(&mut h, "application/json");
    msg::amqp_short(&mut h, "utf-8");
    let mut t = Vec::new();
    msg::amqp_short(&mut t, "x-retry-count");
    t.push(b'I');
    t.extend_from_slice(&(rng.next_u32() % 4).to_be_bytes());
    msg::amqp_short(&mut t, "tenant");
    t.push(b'S');
    t.extend_from_slice(&4u32.to_be_bytes());
    t.extend_from_slice(b"acme");
    msg::amqp_short(&mut t, "traceparent");
    let tp = format!("00-{:032x}-{:016x}-01", rng.next_u64(), rng.next_u64());
    t.push(b'S');
    t.extend_from_slice(&(tp.len() as u32).to_be_bytes());
    t.extend_from_slice(tp.as_bytes());
    h.extend_from_slice(&(t.len() as u32).to_be_bytes());
    h.extend(t);
    h.push(2);
    msg::amqp_short(&mut h, &format!("{:016x}", rng.next_u64()));
    msg::amqp_short(&mut h, &format!("{:016x}", rng.next_u64()));
    h.extend_from_slice(&1_768_471_200u64.to_be_bytes());
    amqp_frame(out, 2, 1, &h);
    let (a, b) = body.split_at(body.len() / 2);
    amqp_frame(out, 3, 1, a);
    amqp_frame(out, 3, 1, b);
}

fn amqp() -> Workload {
    let mut rng = SplitMix64::new(14);
    let server = addr(1, 0, 30, 5672);
    let (mut packets, mut entries) = (Vec::new(), 0);
    for c in 0..8 {
        let mut conv = conversation(&mut rng, c, server);
        for (from_client, w) in msg::amqp_open("pika") {
            if from_client {
                conv.client_send(&w, 200);
            } else {
                conv.server_send(&w, 200);
            }
        }
        // Start, Tune, Open, Channel.Open.
        entries += 4;
        let (consume, ok) = msg::amqp_consume(1, "jobs", "ctag-1");
        conv.client_send(&consume, 200);
        conv.server_send(&ok, 200);
        entries += 1;
        for i in 0..300u64 {
            let body = json(&mut rng, 600);
            let mut p = Vec::new();
            let mut a = vec![0, 0];
            msg::amqp_short(&mut a, "orders");
            msg::amqp_short(&mut a, "orders.created");
            a.push(0);
            msg::amqp_method(&mut p, 1, 60, 40, &a);
            amqp_content(&mut p, &mut rng, body.as_bytes());
            conv.client_send(&p, 300);
            let mut d = Vec::new();
            let mut a = Vec::new();
            msg::amqp_short(&mut a, "ctag-1");
            a.extend_from_slice(&(i + 1).to_be_bytes());
            a.push(0);
            msg::amqp_short(&mut a, "orders");
            msg::amqp_short(&mut a, "orders.created");
            msg::amqp_method(&mut d, 1, 60, 60, &a);
            amqp_content(&mut d, &mut rng, body.as_bytes());
            conv.server_send(&d, 500);
            let mut ack = Vec::new();
            msg::amqp_ack(&mut ack, 1, i + 1);
            conv.client_send(&ack, 200);
            entries += 3;
        }
        conv.close();
        packets.extend(conv.packets().into_iter().map(|p| (p.ts, p.data)));
    }
    finish("amqp", packets, entries)
}

fn replay(packets: &[(Timestamp, Vec<u8>)]) -> Shared {
    let shared = Shared::new(1 << 30);
    let mut engine = Engine::new(Limits::default(), shared.clone());
    black_box(engine.replay("bench", LINK, packets));
    shared
}

/// Entries of the workload's protocol in the store, and whether every AMQP body was kept.
fn check(w: &Workload) {
    let shared = replay(&w.packets);
    let mut n = 0;
    shared.store.scan(capture_core::store::Order::Asc, None, &mut |e| {
        if e.protocol.name() == w.name {
            n += 1;
            if let Some(a) = e.amqp()
                && a.body_size.is_some()
            {
                assert_eq!(a.body.len() as u64, a.body_size.unwrap(), "{}", e.summary());
                assert!(
                    a.properties
                        .as_ref()
                        .and_then(|p| p.headers.as_ref())
                        .is_some_and(|h| h.len() == 3)
                );
            }
        }
        std::ops::ControlFlow::Continue(())
    });
    assert_eq!(n, w.entries, "{}: entries in the store", w.name);
    eprintln!(
        "{} workload: {} packets, {} bytes, {} entries",
        w.name,
        w.packets.len(),
        w.bytes,
        w.entries
    );
}

fn main() {
    let workloads = [redis(), kafka(), dns(), amqp()];
    for w in &workloads {
        check(w);
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut g = c.benchmark_group("protocols");
    g.sample_size(10);
    for w in &workloads {
        g.throughput(Throughput::Bytes(w.bytes));
        g.bench_function(w.name, |b| b.iter_with_large_drop(|| replay(&w.packets)));
    }
    g.finish();
    c.final_summary();
    // Test mode (`cargo test --benches`) runs each benchmark once: no summary then.
    if std::env::args().any(|a| a == "--bench") {
        eprintln!("\nprotocol   MiB/s   entries/s   (median of 5 replays)");
        for w in &workloads {
            let mut secs: Vec<f64> = (0..5)
                .map(|_| {
                    let t = Instant::now();
                    let shared = replay(&w.packets);
                    let s = t.elapsed().as_secs_f64();
                    drop(shared);
                    s
                })
                .collect();
            secs.sort_by(f64::total_cmp);
            let s = secs[2];
            eprintln!(
                "{:<8} {:>7.1} {:>11.0}",
                w.name,
                w.bytes as f64 / s / (1 << 20) as f64,
                w.entries as f64 / s
            );
        }
    }
}
