//! Capture files read by several engines at once (`--capture-threads N` with `--pcap`): one
//! thread reads the file and hands each packet to the engine its flow belongs to, by a hash of
//! the 5-tuple that is the same in both directions, so every flow is dissected whole by one
//! engine. The reading thread runs the first engine itself, on packets still in the read buffer
//! (N threads in all, not N + 1: on 2 cores a separate reader left the engines a core and a
//! half). The other engines get their packets in batches (one buffer of bytes per batch,
//! buffers reused), over bounded queues: a slow engine holds the reader back instead of letting
//! memory grow.
//!
//! TCP goes by its 5-tuple; UDP and IP fragments by the address pair, because the later
//! fragments of a datagram carry no ports and large UDP answers (DNS) are fragmented. A TCP
//! flow fragmented at the IP layer (rare: TCP sizes its segments to the path) would have its
//! fragments on another engine than the rest of it. Decryption secrets blocks go to every
//! engine, in their place among the packets.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::file::{self, FileError};
use super::{LinkType, Packet};
use crate::engine::Engine;
use crate::stats::SourceInfo;
use crate::time::Timestamp;
use crate::wire::ip::decode_ip;
use crate::wire::link::decode_link;

/// Packets per batch handed to an engine.
const BATCH_PACKETS: usize = 256;
/// Batches queued per engine before the reader waits.
const QUEUE_BATCHES: usize = 8;

/// One packet of a batch: where its bytes are in the batch's buffer.
#[derive(Clone, Copy)]
struct Slot {
    ts: Timestamp,
    link: LinkType,
    start: usize,
    len: usize,
    orig_len: u32,
    interface: u32,
}

#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    slots: Vec<Slot>,
}

enum Msg {
    Packets(Batch),
    /// The NSS key log text of a pcapng Decryption Secrets Block.
    Keys(Vec<u8>),
    /// Capture time reached this packet's time: sweep as one engine would have after it.
    Sweep(Timestamp),
}

/// The engine (of `n`) that a packet's flow belongs to: the same for both directions.
pub fn shard_of(link: LinkType, data: &[u8], n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let Ok(Some(ip)) = decode_link(link, data).and_then(decode_ip) else {
        return 0;
    };
    // TCP by its 5-tuple. UDP by its address pair: large UDP answers (DNS, QUIC) come in IP
    // fragments, whose later pieces carry no ports, and the pair keeps them with their flow.
    let ports = match (ip.protocol, ip.fragment.is_none(), ip.payload) {
        (6, true, [a, b, c, d, ..]) => (u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d])),
        _ => (0, 0),
    };
    let x = (ip.src, ports.0);
    let y = (ip.dst, ports.1);
    let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
    // FNV-1a over the ordered pair: stable across runs, and cheap.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (addr, port) in [lo, hi] {
        match addr {
            std::net::IpAddr::V4(a) => eat(&a.octets()),
            std::net::IpAddr::V6(a) => eat(&a.octets()),
        }
        eat(&port.to_be_bytes());
    }
    eat(&[ip.protocol]);
    // FNV's low bits follow its last bytes: mix before taking the remainder (SplitMix64's
    // finalizer).
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    // The first engine runs on the reading thread, which also reads the file and batches the
    // other engines' packets: it gets a quarter less than an even share of the flows.
    let even = u64::MAX / n as u64;
    let first = even / 4 * 3;
    if h < first {
        0
    } else {
        (1 + (h - first) / ((u64::MAX - first) / (n as u64 - 1) + 1)) as usize
    }
}

/// Reads `path` with `engines` (joined to one [`crate::engine::EngineGroup`]), each on its own
/// thread, then flushes their open flows. The file is listed once among the sources.
pub fn read_file(engines: &mut [Engine], path: &Path, max_record_bytes: usize) -> Result<SourceInfo, FileError> {
    let n = engines.len().max(1);
    let shared = engines[0].shared().clone();
    let import = shared.import.clone();
    *import.current.lock() = path.display().to_string();
    let filtered_before: Vec<u64> = engines.iter().map(|e| e.stats().filtered_out).collect();
    let (mut first, mut last) = (None, None);
    let summary = std::thread::scope(|scope| {
        let (mine, others) = engines.split_first_mut().expect("at least one engine");
        // Queue `k` feeds engine `k + 1`; engine 0 runs here.
        let mut queues: Vec<SyncSender<Msg>> = Vec::with_capacity(n - 1);
        // Emptied batches come back to the reader to be filled again.
        let (free_tx, free_rx) = sync_channel::<Batch>(n * (QUEUE_BATCHES + 2));
        for (i, engine) in others.iter_mut().enumerate() {
            let (tx, rx) = sync_channel::<Msg>(QUEUE_BATCHES);
            queues.push(tx);
            let free = free_tx.clone();
            std::thread::Builder::new()
                .name(format!("wirelens-file-{}", i + 1))
                .spawn_scoped(scope, move || work(engine, rx, free))
                .expect("starting a file worker thread");
        }
        drop(free_tx);
        let mine = std::cell::RefCell::new(mine);
        let pending: std::cell::RefCell<Vec<Batch>> =
            std::cell::RefCell::new((1..n).map(|_| Batch::default()).collect());
        // One engine sweeps its flows after the first packet a second past its last sweep; so
        // does every engine here, at the same packets.
        let mut last_sweep = Timestamp(0);
        let send = |queues: &[SyncSender<Msg>], k: usize, msg: Msg| {
            // A worker only stops when its queue is closed, so sending cannot fail.
            let _ = queues[k].send(msg);
        };
        let summary = file::read_file_counted(
            path,
            max_record_bytes,
            &import.bytes_read,
            |p: &Packet<'_>| {
                first.get_or_insert(p.ts);
                last = Some(p.ts);
                let i = shard_of(p.link, p.data, n);
                let mut pending = pending.borrow_mut();
                if i == 0 {
                    mine.borrow_mut().process(p);
                } else {
                    let b = &mut pending[i - 1];
                    b.slots.push(Slot {
                        ts: p.ts,
                        link: p.link,
                        start: b.bytes.len(),
                        len: p.data.len(),
                        orig_len: p.orig_len,
                        interface: p.interface,
                    });
                    b.bytes.extend_from_slice(p.data);
                }
                if p.ts.0.saturating_sub(last_sweep.0) >= crate::engine::SWEEP_INTERVAL_NS {
                    last_sweep = p.ts;
                    mine.borrow_mut().advance_to(p.ts);
                    for (k, b) in pending.iter_mut().enumerate() {
                        if !b.slots.is_empty() {
                            let mut next = free_rx.try_recv().unwrap_or_default();
                            next.bytes.clear();
                            next.slots.clear();
                            send(&queues, k, Msg::Packets(std::mem::replace(b, next)));
                        }
                        send(&queues, k, Msg::Sweep(p.ts));
                    }
                } else if i > 0 && pending[i - 1].slots.len() >= BATCH_PACKETS {
                    let mut next = free_rx.try_recv().unwrap_or_default();
                    next.bytes.clear();
                    next.slots.clear();
                    send(
                        &queues,
                        i - 1,
                        Msg::Packets(std::mem::replace(&mut pending[i - 1], next)),
                    );
                }
            },
            &mut |text| {
                // Keys go after the packets read before them, to every engine.
                mine.borrow_mut().add_key_text(&[text.to_vec()]);
                for (k, b) in pending.borrow_mut().iter_mut().enumerate() {
                    if !b.slots.is_empty() {
                        send(&queues, k, Msg::Packets(std::mem::take(b)));
                    }
                    send(&queues, k, Msg::Keys(text.to_vec()));
                }
            },
        );
        for (k, b) in pending.into_inner().into_iter().enumerate() {
            if !b.slots.is_empty() {
                send(&queues, k, Msg::Packets(b));
            }
        }
        drop(queues);
        mine.into_inner().finish();
        summary
    })?;
    let mut bpf = engines[0].source_filter(filtered_before[0]);
    if let Some(f) = &mut bpf {
        f.filtered_out = Some(
            engines
                .iter()
                .zip(&filtered_before)
                .map(|(e, before)| e.stats().filtered_out - before)
                .sum(),
        );
    }
    let info = crate::engine::file_source_info(path, &summary, first, last, bpf);
    shared.sources.lock().push(info.clone());
    Ok(info)
}

/// One engine's thread: its packets in file order, then the end of the file.
fn work(engine: &mut Engine, rx: Receiver<Msg>, free: SyncSender<Batch>) {
    for msg in rx {
        match msg {
            Msg::Packets(b) => {
                for s in &b.slots {
                    engine.process(&Packet {
                        ts: s.ts,
                        link: s.link,
                        data: &b.bytes[s.start..s.start + s.len],
                        orig_len: s.orig_len,
                        interface: s.interface,
                    });
                }
                // Dropped when the reader has enough buffers.
                let _ = free.try_send(b);
            }
            Msg::Keys(text) => engine.add_key_text(&[text]),
            Msg::Sweep(ts) => engine.advance_to(ts),
        }
    }
    engine.finish();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::packet::{ACK, TcpSpec, tcp_frame};

    #[test]
    fn both_directions_of_a_flow_go_to_one_engine_and_flows_spread() {
        let link = LinkType::ETHERNET;
        let mut seen = [0usize; 4];
        for i in 0..400u32 {
            let c: std::net::SocketAddr = format!("10.0.{}.{}:{}", i / 200, i % 200 + 1, 30_000 + i)
                .parse()
                .unwrap();
            let s: std::net::SocketAddr = "10.9.0.1:80".parse().unwrap();
            let there = shard_of(link, &tcp_frame(&TcpSpec::new(c, s, ACK)), 4);
            let back = shard_of(link, &tcp_frame(&TcpSpec::new(s, c, ACK)), 4);
            assert_eq!(there, back, "{c}");
            seen[there] += 1;
        }
        // The first engine shares its thread with the reader: three quarters of an even share.
        assert!(seen.iter().all(|&k| k > 50), "{seen:?}");
        assert!(seen[0] < seen[1] && seen[0] < seen[2] && seen[0] < seen[3], "{seen:?}");
        for n in 2..9 {
            for i in 0..2000u32 {
                let c: std::net::SocketAddr = format!("10.1.{}.{}:{}", i / 200, i % 200 + 1, 20_000 + i)
                    .parse()
                    .unwrap();
                let s: std::net::SocketAddr = "10.9.0.1:443".parse().unwrap();
                assert!(shard_of(link, &tcp_frame(&TcpSpec::new(c, s, ACK)), n) < n);
            }
        }
        assert_eq!(shard_of(link, b"junk", 4), 0);
        assert_eq!(shard_of(link, &[0; 60], 1), 0);
    }
}
