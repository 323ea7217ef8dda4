//! Capture files read by several engines at once (`--capture-threads N` with `--pcap`): one
//! thread reads the file and hands each packet to the engine its flow belongs to, by a hash of
//! the 5-tuple that is the same in both directions, so every flow is dissected whole by one
//! engine. The reading thread runs the first engine itself, on packets as it reads them (N
//! threads in all, not N + 1: on 2 cores a separate reader left the engines a core and a
//! half). The other engines get their packets in batches over bounded queues: a slow engine
//! holds the reader back instead of letting memory grow.
//!
//! A classic pcap file is mapped whole ([`file::MappedFile`]): a batch names where its packets
//! are in the mapping, and the reader keeps those pages resident until the engine has read
//! them. Copying the packets into batches instead cost the reading thread about 0.13
//! CPU-seconds per GB. Other inputs (pcapng, pipes) are copied into the batch's buffer (reused).
//!
//! TCP goes by its 5-tuple; UDP and IP fragments by the address pair, because the later
//! fragments of a datagram carry no ports and large UDP answers (DNS) are fragmented. A TCP
//! flow fragmented at the IP layer (rare: TCP sizes its segments to the path) would have its
//! fragments on another engine than the rest of it. Decryption secrets blocks go to every
//! engine, in their place among the packets.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::file::{self, FileError};
use super::mapped::Region;
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
/// How far past a record's end the reader asks for the file's bytes ahead of reading them
/// (about three records of the benchmark capture): it touches little more than the header of
/// each record it hands on, so the processor's sequential prefetch does not see a stream.
const READ_AHEAD: usize = 2048;
/// How many packets ahead of the one it processes an engine asks for its packets' bytes: its
/// packets are scattered through the file.
const PROCESS_AHEAD: usize = 4;

/// One packet of a batch: where its bytes are, in the mapped file or in the batch's buffer.
#[derive(Clone, Copy)]
struct Slot {
    ts: Timestamp,
    link: LinkType,
    start: usize,
    len: usize,
    orig_len: u32,
    interface: u32,
    mapped: bool,
}

#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    slots: Vec<Slot>,
}

impl Batch {
    /// Where its first packet in the mapped file starts.
    fn first_mapped(&self) -> Option<usize> {
        self.slots.iter().find(|s| s.mapped).map(|s| s.start)
    }
}

enum Msg {
    Packets(Batch),
    /// The NSS key log text of a pcapng Decryption Secrets Block.
    Keys(Vec<u8>),
    /// Capture time reached this packet's time: sweep as one engine would have after it.
    Sweep(Timestamp),
}

/// Which of `n` engines each packet's flow belongs to, by a hash of its addresses and ports
/// that is the same in both directions. The first engine runs on the reading thread, which
/// also reads the file and hands the other engines their packets: it gets an eighth less than
/// an even share of the flows (with 2 threads on the 1 GB benchmark capture both threads were
/// then busy for the same time; a quarter less, when the reader copied the packets it handed
/// over, left the reader idle a tenth of the time).
#[derive(Debug, Clone, Copy)]
pub struct Shards {
    n: usize,
    /// Hashes below this go to the first engine.
    first: u64,
}

impl Shards {
    pub fn new(n: usize) -> Shards {
        let n = n.max(1);
        let even = u64::MAX / n as u64;
        Shards { n, first: even / 8 * 7 }
    }

    pub fn of(&self, link: LinkType, data: &[u8]) -> usize {
        if self.n <= 1 {
            return 0;
        }
        let h = match ipv4_tcp_over_ethernet(link, data) {
            Some((a, b)) => pair_hash(a, b, 6),
            None => {
                let Ok(Some(ip)) = decode_link(link, data).and_then(decode_ip) else {
                    return 0;
                };
                // TCP by its 5-tuple. UDP by its address pair: large UDP answers (DNS, QUIC)
                // come in IP fragments, whose later pieces carry no ports, and the pair keeps
                // them with their flow.
                let ports = match (ip.protocol, ip.fragment.is_none(), ip.payload) {
                    (6, true, [a, b, c, d, ..]) => (u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d])),
                    _ => (0, 0),
                };
                let word = |a: std::net::IpAddr| match a {
                    std::net::IpAddr::V4(a) => u128::from(u32::from(a)),
                    std::net::IpAddr::V6(a) => u128::from(a),
                };
                pair_hash((word(ip.src), ports.0), (word(ip.dst), ports.1), ip.protocol)
            }
        };
        if h < self.first {
            0
        } else {
            // The other engines share the rest evenly, chosen by other bits of the hash (a
            // multiply and a shift, not a division).
            1 + ((u128::from(h.rotate_left(32)) * (self.n as u128 - 1)) >> 64) as usize
        }
    }
}

/// The two ends of an unfragmented TCP segment in an IPv4 packet on Ethernet without VLAN
/// tags (the common case, read straight from the bytes); `None` for anything else, which the
/// general decoders handle. Both give the same ends for the same packet.
#[inline]
fn ipv4_tcp_over_ethernet(link: LinkType, d: &[u8]) -> Option<((u128, u16), (u128, u16))> {
    if link != LinkType::ETHERNET || d.len() < 34 || d[12..14] != [0x08, 0x00] || d[14] >> 4 != 4 || d[23] != 6 {
        return None;
    }
    let ihl = usize::from(d[14] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([d[16], d[17]]));
    let fragment = u16::from_be_bytes([d[20], d[21]]) & 0x3fff != 0;
    if ihl < 20 || fragment || (total != 0 && total < ihl + 4) || d.len() < 14 + ihl + 4 {
        return None;
    }
    let word = |at: usize| u128::from(u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]]));
    let port = |at: usize| u16::from_be_bytes([d[at], d[at + 1]]);
    let tcp = 14 + ihl;
    Some(((word(26), port(tcp)), (word(30), port(tcp + 2))))
}

/// A hash of a flow's two ends (address, port) and protocol that does not depend on their
/// order: stable across runs, and cheap.
#[inline]
fn pair_hash(x: (u128, u16), y: (u128, u16), protocol: u8) -> u64 {
    let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
    let fold = |a: u128| (a as u64) ^ ((a >> 64) as u64).rotate_left(23);
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (fold(lo.0) ^ 0x2545_f491_4f6c_dd1d).wrapping_mul(K);
    h = (h ^ fold(hi.0)).wrapping_mul(K);
    h = (h ^ (u64::from(lo.1) << 32 | u64::from(hi.1) << 16 | u64::from(protocol))).wrapping_mul(K);
    // SplitMix64's finalizer: every bit of the result depends on every bit of the input.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The reader's side of the hand-off to the other engines: the batch being filled for each,
/// the queues, and which batches each engine has not finished (their packets' pages stay
/// resident).
struct Outbox {
    queues: Vec<SyncSender<Msg>>,
    /// Emptied batches come back here to be filled again.
    free: Receiver<Batch>,
    pending: Vec<Batch>,
    /// Per engine: batches sent so far, and (number, first mapped offset) of those sent with
    /// packets in the mapped file, oldest first, until the engine is done with them.
    sent: Vec<u64>,
    unfinished: Vec<VecDeque<(u64, usize)>>,
}

impl Outbox {
    fn send(&self, k: usize, msg: Msg) {
        // A worker only stops when its queue is closed, so sending cannot fail.
        let _ = self.queues[k].send(msg);
    }

    /// Sends engine `k`'s batch, if it holds packets.
    fn flush(&mut self, k: usize) {
        if self.pending[k].slots.is_empty() {
            return;
        }
        let mut next = self.free.try_recv().unwrap_or_default();
        next.bytes.clear();
        next.slots.clear();
        let batch = std::mem::replace(&mut self.pending[k], next);
        if let Some(first) = batch.first_mapped() {
            self.unfinished[k].push_back((self.sent[k], first));
        }
        self.sent[k] += 1;
        self.send(k, Msg::Packets(batch));
    }

    /// The first offset of the mapped file that an engine has still to read (`usize::MAX`
    /// when none): `done[k]` is how many batches engine `k` finished.
    fn keep_from(&mut self, done: &[AtomicU64]) -> usize {
        let mut low = usize::MAX;
        for (k, q) in self.unfinished.iter_mut().enumerate() {
            let finished = done[k].load(Ordering::Acquire);
            while q.front().is_some_and(|(no, _)| *no < finished) {
                q.pop_front();
            }
            if let Some((_, first)) = q.front() {
                low = low.min(*first);
            }
            if let Some(first) = self.pending[k].first_mapped() {
                low = low.min(first);
            }
        }
        low
    }
}

/// Reads `path` with `engines` (joined to one [`crate::engine::EngineGroup`]), each on its own
/// thread, then flushes their open flows. The file is listed once among the sources.
pub fn read_file(engines: &mut [Engine], path: &Path, max_record_bytes: usize) -> Result<SourceInfo, FileError> {
    read_file_chunked(engines, path, max_record_bytes, super::mapped::CHUNK)
}

/// [`read_file`], a mapped file read in ahead `chunk` bytes at a time.
fn read_file_chunked(
    engines: &mut [Engine],
    path: &Path,
    max_record_bytes: usize,
    chunk: usize,
) -> Result<SourceInfo, FileError> {
    let n = engines.len().max(1);
    let shared = engines[0].shared().clone();
    let import = shared.import.clone();
    *import.current.lock() = path.display().to_string();
    let filtered_before: Vec<u64> = engines.iter().map(|e| e.stats().filtered_out).collect();
    let (mut first, mut last) = (None, None);
    let shards = Shards::new(n);
    let mut mapped = file::MappedFile::open(path)?;
    if let Some(m) = &mut mapped {
        m.set_chunk(chunk);
    }
    let region = mapped.as_ref().map(file::MappedFile::region);
    let done: Vec<AtomicU64> = (1..n).map(|_| AtomicU64::new(0)).collect();
    let summary = std::thread::scope(|scope| {
        let (mine, others) = engines.split_first_mut().expect("at least one engine");
        // Queue `k` feeds engine `k + 1`; engine 0 runs here.
        let mut queues: Vec<SyncSender<Msg>> = Vec::with_capacity(n - 1);
        let (free_tx, free_rx) = sync_channel::<Batch>(n * (QUEUE_BATCHES + 2));
        for (i, engine) in others.iter_mut().enumerate() {
            let (tx, rx) = sync_channel::<Msg>(QUEUE_BATCHES);
            queues.push(tx);
            let free = free_tx.clone();
            let done = &done[i];
            std::thread::Builder::new()
                .name(format!("wirelens-file-{}", i + 1))
                .spawn_scoped(scope, move || work(engine, rx, free, region, done))
                .expect("starting a file worker thread");
        }
        drop(free_tx);
        let mine = RefCell::new(mine);
        let out = RefCell::new(Outbox {
            queues,
            free: free_rx,
            pending: (1..n).map(|_| Batch::default()).collect(),
            sent: vec![0; n - 1],
            unfinished: (1..n).map(|_| VecDeque::new()).collect(),
        });
        // One engine sweeps its flows after the first packet a second past its last sweep; so
        // does every engine here, at the same packets.
        let mut last_sweep = Timestamp(0);
        let visit = |p: &Packet<'_>| {
            if region.is_some() {
                // As many bytes as this record's, READ_AHEAD past it (and its successor's header).
                crate::memory::prefetch(
                    p.data.as_ptr().wrapping_add(p.data.len() + READ_AHEAD),
                    p.data.len() + 16,
                );
            }
            first.get_or_insert(p.ts);
            last = Some(p.ts);
            let i = shards.of(p.link, p.data);
            let mut out = out.borrow_mut();
            if i == 0 {
                mine.borrow_mut().process(p);
            } else {
                let b = &mut out.pending[i - 1];
                let (start, mapped) = match region.and_then(|r| r.offset_of(p.data)) {
                    Some(at) => (at, true),
                    None => {
                        b.bytes.extend_from_slice(p.data);
                        (b.bytes.len() - p.data.len(), false)
                    }
                };
                b.slots.push(Slot {
                    ts: p.ts,
                    link: p.link,
                    start,
                    len: p.data.len(),
                    orig_len: p.orig_len,
                    interface: p.interface,
                    mapped,
                });
            }
            if p.ts.0.saturating_sub(last_sweep.0) >= crate::engine::SWEEP_INTERVAL_NS {
                last_sweep = p.ts;
                mine.borrow_mut().advance_to(p.ts);
                for k in 0..n - 1 {
                    out.flush(k);
                    out.send(k, Msg::Sweep(p.ts));
                }
            } else if i > 0 && out.pending[i - 1].slots.len() >= BATCH_PACKETS {
                out.flush(i - 1);
            }
        };
        let summary = match &mapped {
            Some(m) => {
                let keep_from = || out.borrow_mut().keep_from(&done);
                m.read(path, max_record_bytes, &import.bytes_read, Some(&keep_from), visit)
            }
            None => file::read_file_counted(path, max_record_bytes, &import.bytes_read, visit, &mut |text| {
                // Keys go after the packets read before them, to every engine.
                mine.borrow_mut().add_key_text(&[text.to_vec()]);
                let mut out = out.borrow_mut();
                for k in 0..n - 1 {
                    out.flush(k);
                    out.send(k, Msg::Keys(text.to_vec()));
                }
            }),
        };
        let mut out = out.into_inner();
        for k in 0..n - 1 {
            out.flush(k);
        }
        drop(out);
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

/// One engine's thread: its packets in file order, then the end of the file. `done` counts
/// the batches it finished.
fn work(engine: &mut Engine, rx: Receiver<Msg>, free: SyncSender<Batch>, region: Option<&Region>, done: &AtomicU64) {
    for msg in rx {
        match msg {
            Msg::Packets(b) => {
                for (i, s) in b.slots.iter().enumerate() {
                    if let Some(r) = region
                        && let Some(ahead) = b.slots.get(i + PROCESS_AHEAD)
                        && ahead.mapped
                    {
                        let bytes = r.bytes(ahead.start, ahead.len);
                        crate::memory::prefetch(bytes.as_ptr(), bytes.len());
                    }
                    let data = match region {
                        Some(r) if s.mapped => r.bytes(s.start, s.len),
                        _ => &b.bytes[s.start..s.start + s.len],
                    };
                    engine.process(&Packet {
                        ts: s.ts,
                        link: s.link,
                        data,
                        orig_len: s.orig_len,
                        interface: s.interface,
                    });
                }
                done.fetch_add(1, Ordering::Release);
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
    use crate::engine::{EngineGroup, Shared};
    use crate::limits::Limits;
    use crate::synth::http_workload::{WorkloadOpts, write_http_workload};
    use crate::synth::packet::{ACK, TcpSpec, tcp_frame};

    #[test]
    fn engines_handed_offsets_into_the_mapped_file_find_every_exchange() {
        // 2 MiB of keep-alive HTTP read in 16 KiB at a time, so the reader drops pages behind
        // it all along while two other engines still read packets it handed them.
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("w.pcap");
        let opts = WorkloadOpts {
            target_bytes: 2 << 20,
            ..WorkloadOpts::default()
        };
        let made = write_http_workload(std::fs::File::create(&path).expect("create"), &opts).expect("write");
        let limits = Limits::default();
        let shared = Shared::new(256 << 20);
        let group = EngineGroup::new(3, &limits);
        let mut engines: Vec<Engine> = (0..3)
            .map(|i| {
                let mut e = Engine::new(limits.clone(), shared.clone());
                e.join(&group, i);
                e
            })
            .collect();
        let info = read_file_chunked(&mut engines, &path, limits.max_record_bytes, 16 << 10).expect("read");
        drop(engines);
        assert_eq!(info.packets, made.packets);
        let st = shared.store.stats();
        assert_eq!(st.inserted, made.transactions, "every exchange, once");
        assert_eq!(
            shared.import.bytes_read.load(Ordering::Relaxed),
            made.bytes,
            "every byte counted once"
        );
        // Every engine had flows to do.
        let mut ids = std::collections::HashSet::new();
        shared.store.scan(crate::store::Order::Asc, None, &mut |e| {
            ids.insert(e.flow_id % 3);
            std::ops::ControlFlow::Continue(())
        });
        assert_eq!(ids.len(), 3, "{ids:?}");
    }

    #[test]
    fn both_directions_of_a_flow_go_to_one_engine_and_flows_spread() {
        let link = LinkType::ETHERNET;
        let mut seen = [0usize; 4];
        for i in 0..4000u32 {
            let c: std::net::SocketAddr = format!("10.0.{}.{}:{}", i / 200, i % 200 + 1, 30_000 + i)
                .parse()
                .unwrap();
            let s: std::net::SocketAddr = "10.9.0.1:80".parse().unwrap();
            let there = Shards::new(4).of(link, &tcp_frame(&TcpSpec::new(c, s, ACK)));
            let back = Shards::new(4).of(link, &tcp_frame(&TcpSpec::new(s, c, ACK)));
            assert_eq!(there, back, "{c}");
            seen[there] += 1;
        }
        // The first engine shares its thread with the reader: seven eighths of an even share
        // (875 of 4000 flows), the others a third of the rest each (1042).
        assert!(seen.iter().all(|&k| k > 800), "{seen:?}");
        assert!(seen[0] < seen[1] && seen[0] < seen[2] && seen[0] < seen[3], "{seen:?}");
        for n in 2..9 {
            for i in 0..2000u32 {
                let c: std::net::SocketAddr = format!("10.1.{}.{}:{}", i / 200, i % 200 + 1, 20_000 + i)
                    .parse()
                    .unwrap();
                let s: std::net::SocketAddr = "10.9.0.1:443".parse().unwrap();
                assert!(Shards::new(n).of(link, &tcp_frame(&TcpSpec::new(c, s, ACK))) < n);
            }
        }
        assert_eq!(Shards::new(4).of(link, b"junk"), 0);
        // The direct reading of IPv4/TCP on Ethernet and the general decoders agree: the same
        // segment behind an 802.1Q tag (which only the decoders read) lands on the same engine.
        let shards = Shards::new(4);
        for i in 0..300u32 {
            let c: std::net::SocketAddr = format!("10.2.{}.{}:{}", i / 100, i % 100 + 1, 40_000 + i)
                .parse()
                .unwrap();
            let s: std::net::SocketAddr = "10.9.0.7:8080".parse().unwrap();
            for frame in [tcp_frame(&TcpSpec::new(c, s, ACK)), tcp_frame(&TcpSpec::new(s, c, ACK))] {
                assert!(ipv4_tcp_over_ethernet(link, &frame).is_some());
                let mut tagged = frame[..12].to_vec();
                tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
                tagged.extend_from_slice(&frame[12..]);
                assert!(ipv4_tcp_over_ethernet(link, &tagged).is_none());
                assert_eq!(shards.of(link, &frame), shards.of(link, &tagged), "{c}");
            }
        }
        assert_eq!(Shards::new(1).of(link, &[0; 60]), 0);
    }
}
