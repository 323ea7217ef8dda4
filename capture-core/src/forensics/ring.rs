//! The raw capture ring (`--raw-ring DIR --raw-ring-size SIZE`): the most recent packets of a
//! live capture on disk, as rotating pcapng segments, bounded in bytes, oldest first out.
//!
//! - The capture threads [`Ring::offer`] each packet: the optional ring filter (pcap-filter
//!   syntax, run by our interpreter) is applied, the packet is copied and sent to the writer
//!   thread over a channel bounded in bytes (`queue_bytes`). When the writer falls behind, the
//!   packet is dropped and counted (`dropped_queue_full`): capture never waits for the disk.
//! - The writer thread appends Enhanced Packet Blocks to the open segment
//!   (`ring-SEQ-FIRSTNS-open.pcapng`), flushed at least every [`FLUSH_EVERY`]. Before a packet
//!   would take the segment past `segment_bytes`, the segment is closed (renamed
//!   `ring-SEQ-FIRSTNS-LASTNS.pcapng`) and the oldest segments are deleted until the closed ones
//!   plus a full new segment fit in `max_bytes`. So the ring never holds more than `max_bytes`.
//! - On start, the segments already in DIR (a previous run) are kept, oldest deleted if they no
//!   longer fit; a segment left open by a crash is read to find its last packet and closed.
//!   Numbering continues after them. Their packets are available to snapshots and exports.
//! - [`Ring::sources`] flushes the writer and opens the segments of a time window: an open file
//!   stays readable while the ring rotates and deletes it.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::ForensicsError;
use super::export::PacketSource;
use crate::source::bpf::Filter;
use crate::source::{LinkType, Packet, file};
use crate::synth::pcap::{ByteOrder, PcapNgWriter, SNAPLEN, TsResolution};
use crate::time::Timestamp;

/// The open segment is flushed at least this often, so snapshots see recent packets.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Default byte budget of the queue between the capture threads and the writer.
pub const DEFAULT_QUEUE_BYTES: usize = 64 << 20;
/// Smallest segment: one packet of the largest snap length fits.
pub const MIN_SEGMENT_BYTES: u64 = 512 << 10;
/// Largest default segment.
const MAX_DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// Queue cost of a packet beyond its bytes (the message and its vector).
const QUEUE_OVERHEAD: u64 = 64;
/// Write-rate samples kept (one per second): the rate is over the last ten seconds.
const RATE_SAMPLES: usize = 11;

/// Where and how much.
#[derive(Debug, Clone)]
pub struct RingConfig {
    pub dir: PathBuf,
    /// Bytes on disk at most, all segments together.
    pub max_bytes: u64,
    /// Size of one segment; 0 picks `max_bytes / 8` within [512 KiB, 64 MiB].
    pub segment_bytes: u64,
    /// Keep only the packets this pcap-filter expression matches.
    pub filter: Option<Arc<Filter>>,
    /// Bytes waiting for the writer at most; more are dropped and counted.
    pub queue_bytes: usize,
}

impl RingConfig {
    pub fn new(dir: PathBuf, max_bytes: u64) -> RingConfig {
        RingConfig {
            dir,
            max_bytes,
            segment_bytes: 0,
            filter: None,
            queue_bytes: DEFAULT_QUEUE_BYTES,
        }
    }

    fn segment_size(&self) -> u64 {
        if self.segment_bytes > 0 {
            self.segment_bytes
        } else {
            (self.max_bytes / 8).clamp(MIN_SEGMENT_BYTES, MAX_DEFAULT_SEGMENT_BYTES)
        }
    }
}

/// What `capture_status` shows of the ring.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RingStatus {
    pub dir: PathBuf,
    pub max_bytes: u64,
    pub segment_bytes: u64,
    pub filter: Option<String>,
    pub bytes_on_disk: u64,
    pub segments: u64,
    /// Segments found in DIR at start (kept from a previous run).
    pub segments_recovered: u64,
    pub segments_deleted: u64,
    pub oldest: Option<Timestamp>,
    pub newest: Option<Timestamp>,
    /// Packets offered by the capture, rejected by the ring filter, written, dropped.
    pub packets_offered: u64,
    pub packets_filtered_out: u64,
    pub packets_written: u64,
    pub bytes_written: u64,
    pub dropped_queue_full: u64,
    pub dropped_write_errors: u64,
    pub queued_bytes: u64,
    /// Over the last ten seconds.
    pub write_rate_bytes_per_s: f64,
    pub write_rate_packets_per_s: f64,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone)]
struct Segment {
    seq: u64,
    path: PathBuf,
    first: Timestamp,
    last: Timestamp,
    bytes: u64,
}

#[derive(Debug, Default)]
struct State {
    closed: VecDeque<Segment>,
    current: Option<Segment>,
    recovered: u64,
    deleted: u64,
    packets_written: u64,
    bytes_written: u64,
    write_errors: u64,
    rate: (f64, f64),
    last_error: Option<String>,
}

impl State {
    fn closed_bytes(&self) -> u64 {
        self.closed.iter().map(|s| s.bytes).sum()
    }
}

struct RingPacket {
    ts: Timestamp,
    link: LinkType,
    orig_len: u32,
    data: Vec<u8>,
}

enum Msg {
    Packet(RingPacket),
    Flush(mpsc::SyncSender<()>),
    Stop,
}

/// A running ring. Dropping it stops the writer (the open segment is closed).
pub struct Ring {
    cfg: RingConfig,
    segment_bytes: u64,
    tx: mpsc::Sender<Msg>,
    queued: Arc<AtomicU64>,
    offered: AtomicU64,
    filtered: AtomicU64,
    dropped: AtomicU64,
    state: Arc<Mutex<State>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Held (locked) while the ring runs.
    _lock: File,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("dir", &self.cfg.dir)
            .finish_non_exhaustive()
    }
}

/// `ring-SEQ-FIRST-LAST.pcapng` (closed) or `ring-SEQ-FIRST-open.pcapng`.
fn segment_name(seq: u64, first: Timestamp, last: Option<Timestamp>) -> String {
    match last {
        Some(l) => format!("ring-{seq:010}-{:020}-{:020}.pcapng", first.0, l.0),
        None => format!("ring-{seq:010}-{:020}-open.pcapng", first.0),
    }
}

/// (seq, first, last; `None` when open) of a segment's file name.
fn parse_name(name: &str) -> Option<(u64, Timestamp, Option<Timestamp>)> {
    let rest = name.strip_prefix("ring-")?.strip_suffix(".pcapng")?;
    let mut parts = rest.split('-');
    let seq = parts.next()?.parse().ok()?;
    let first = Timestamp(parts.next()?.parse().ok()?);
    let last = match parts.next()? {
        "open" => None,
        l => Some(Timestamp(l.parse().ok()?)),
    };
    parts.next().is_none().then_some((seq, first, last))
}

impl Ring {
    /// Creates DIR if needed, keeps the segments a previous run left there (within the bound)
    /// and starts the writer thread.
    pub fn open(cfg: RingConfig) -> Result<Arc<Ring>, ForensicsError> {
        let segment_bytes = cfg.segment_size();
        if segment_bytes < MIN_SEGMENT_BYTES || cfg.max_bytes < 2 * segment_bytes {
            return Err(ForensicsError::Invalid(format!(
                "the raw ring must hold at least two segments of at least {} KiB: --raw-ring-size {} bytes with segments of {} bytes is too small (use at least {} bytes)",
                MIN_SEGMENT_BYTES >> 10,
                cfg.max_bytes,
                segment_bytes,
                2 * segment_bytes.max(MIN_SEGMENT_BYTES)
            )));
        }
        super::private_dir(&cfg.dir).map_err(ForensicsError::io("creating the raw ring directory", &cfg.dir))?;
        // One writer per directory: a second process would interleave its segments with ours.
        let lock_path = cfg.dir.join(".lock");
        let lock = super::export::private_file(&lock_path).map_err(ForensicsError::io("creating", &lock_path))?;
        if let Err(e) = lock.try_lock() {
            return Err(ForensicsError::Invalid(format!(
                "the raw ring {} is in use by another process ({e}): give each wirelens its own --raw-ring directory",
                cfg.dir.display()
            )));
        }
        let mut state = State::default();
        for seg in recover(&cfg.dir)? {
            state.closed.push_back(seg);
        }
        state.recovered = state.closed.len() as u64;
        enforce_bound(&mut state, cfg.max_bytes, segment_bytes);
        let next_seq = state.closed.back().map_or(0, |s| s.seq + 1);
        let state = Arc::new(Mutex::new(state));
        let queued = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            dir: cfg.dir.clone(),
            max_bytes: cfg.max_bytes,
            segment_bytes,
            next_seq,
            open: None,
            state: state.clone(),
            queued: queued.clone(),
            samples: VecDeque::new(),
        };
        let thread = std::thread::Builder::new()
            .name("wirelens-raw-ring".into())
            .spawn(move || writer.run(rx))
            .map_err(ForensicsError::io("starting the raw ring writer for", &cfg.dir))?;
        Ok(Arc::new(Ring {
            cfg,
            segment_bytes,
            tx,
            queued,
            offered: AtomicU64::new(0),
            filtered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            state,
            thread: Mutex::new(Some(thread)),
            _lock: lock,
        }))
    }

    pub fn dir(&self) -> &Path {
        &self.cfg.dir
    }

    /// Hands a packet to the writer, unless the ring filter rejects it or the queue is full
    /// (then it is counted). Never blocks.
    pub fn offer(&self, pkt: &Packet<'_>) {
        self.offered.fetch_add(1, Ordering::Relaxed);
        if let Some(f) = &self.cfg.filter
            && !f.matches(pkt)
        {
            self.filtered.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let cost = pkt.data.len() as u64 + QUEUE_OVERHEAD;
        let before = self.queued.fetch_add(cost, Ordering::Relaxed);
        if before + cost > self.cfg.queue_bytes as u64 {
            self.queued.fetch_sub(cost, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let msg = Msg::Packet(RingPacket {
            ts: pkt.ts,
            link: pkt.link,
            orig_len: pkt.orig_len,
            data: pkt.data.to_vec(),
        });
        if self.tx.send(msg).is_err() {
            self.queued.fetch_sub(cost, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits (up to `timeout`) until everything offered so far is written and flushed.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (ack, done) = mpsc::sync_channel(1);
        self.tx.send(Msg::Flush(ack)).is_ok() && done.recv_timeout(timeout).is_ok()
    }

    /// The segments holding packets of `[since, until)`, oldest first, opened (they stay
    /// readable if the ring deletes them meanwhile). Flushes the writer first.
    pub fn sources(&self, since: Option<Timestamp>, until: Option<Timestamp>) -> Vec<PacketSource> {
        self.flush(Duration::from_secs(5));
        let st = self.state.lock();
        st.closed
            .iter()
            .chain(st.current.iter())
            .filter(|s| since.is_none_or(|t| s.last >= t) && until.is_none_or(|t| s.first < t))
            .filter_map(|s| {
                File::open(&s.path)
                    .ok()
                    .map(|f| PacketSource::Opened(s.path.clone(), f))
            })
            .collect()
    }

    pub fn status(&self) -> RingStatus {
        let st = self.state.lock();
        let newest = st.current.as_ref().or(st.closed.back()).map(|s| s.last);
        RingStatus {
            dir: self.cfg.dir.clone(),
            max_bytes: self.cfg.max_bytes,
            segment_bytes: self.segment_bytes,
            filter: self.cfg.filter.as_ref().map(|f| f.expression().to_string()),
            bytes_on_disk: st.closed_bytes() + st.current.as_ref().map_or(0, |s| s.bytes),
            segments: st.closed.len() as u64 + u64::from(st.current.is_some()),
            segments_recovered: st.recovered,
            segments_deleted: st.deleted,
            oldest: st.closed.front().or(st.current.as_ref()).map(|s| s.first),
            newest,
            packets_offered: self.offered.load(Ordering::Relaxed),
            packets_filtered_out: self.filtered.load(Ordering::Relaxed),
            packets_written: st.packets_written,
            bytes_written: st.bytes_written,
            dropped_queue_full: self.dropped.load(Ordering::Relaxed),
            dropped_write_errors: st.write_errors,
            queued_bytes: self.queued.load(Ordering::Relaxed),
            write_rate_bytes_per_s: st.rate.0,
            write_rate_packets_per_s: st.rate.1,
            last_error: st.last_error.clone(),
        }
    }

    /// Writes what is queued, closes the open segment and stops the writer.
    pub fn stop(&self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The segments in `dir`, oldest first; one left open is closed (or removed when it holds no
/// readable packet).
fn recover(dir: &Path) -> Result<Vec<Segment>, ForensicsError> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(ForensicsError::io("reading the raw ring directory", dir))?;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some((seq, first, last)) = name.to_str().and_then(parse_name) else {
            continue;
        };
        let path = e.path();
        let last = match last {
            Some(l) => l,
            None => {
                let mut newest = None;
                let read = file::read_file(&path, 16 << 20, |p| newest = Some(p.ts), &mut |_| {});
                match (read, newest) {
                    (Ok(_), Some(l)) => {
                        let closed = dir.join(segment_name(seq, first, Some(l)));
                        if std::fs::rename(&path, &closed).is_err() {
                            continue;
                        }
                        tracing::info!(segment = %closed.display(), "raw ring: closed a segment left open");
                        found.push(Segment {
                            seq,
                            bytes: std::fs::metadata(&closed).map(|m| m.len()).unwrap_or(0),
                            path: closed,
                            first,
                            last: l,
                        });
                        continue;
                    }
                    _ => {
                        tracing::warn!(segment = %path.display(), "raw ring: removed a segment with no readable packet");
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                }
            }
        };
        let bytes = e.metadata().map(|m| m.len()).unwrap_or(0);
        found.push(Segment {
            seq,
            path,
            first,
            last,
            bytes,
        });
    }
    found.sort_by_key(|s| s.seq);
    Ok(found)
}

/// Deletes the oldest closed segments until they and one more full segment fit.
fn enforce_bound(st: &mut State, max_bytes: u64, segment_bytes: u64) {
    let mut total = st.closed_bytes();
    while total + segment_bytes > max_bytes {
        let Some(old) = st.closed.pop_front() else {
            break;
        };
        total -= old.bytes;
        st.deleted += 1;
        if let Err(e) = std::fs::remove_file(&old.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            st.last_error = Some(format!("deleting {}: {e}", old.path.display()));
        }
    }
}

/// The open segment's file.
struct OpenSegment {
    w: PcapNgWriter<BufWriter<File>>,
    ifaces: HashMap<u32, u32>,
    dirty: bool,
}

struct Writer {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    next_seq: u64,
    open: Option<OpenSegment>,
    state: Arc<Mutex<State>>,
    queued: Arc<AtomicU64>,
    samples: VecDeque<(Instant, u64, u64)>,
}

/// Bytes an Enhanced Packet Block of `len` captured bytes takes.
fn block_bytes(len: usize) -> u64 {
    32 + (len.min(SNAPLEN as usize).next_multiple_of(4)) as u64
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        loop {
            match rx.recv_timeout(FLUSH_EVERY) {
                Ok(Msg::Packet(p)) => {
                    self.queued
                        .fetch_sub(p.data.len() as u64 + QUEUE_OVERHEAD, Ordering::Relaxed);
                    self.write(&p);
                }
                Ok(Msg::Flush(ack)) => {
                    self.flush();
                    let _ = ack.send(());
                }
                Ok(Msg::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Packets queued before the stop are written first.
                    while let Ok(Msg::Packet(p)) = rx.try_recv() {
                        self.write(&p);
                    }
                    self.close();
                    return;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => self.flush(),
            }
            self.sample();
        }
    }

    fn fail(&self, what: String) {
        tracing::warn!("raw ring: {what}");
        let mut st = self.state.lock();
        st.write_errors += 1;
        st.last_error = Some(what);
    }

    fn write(&mut self, p: &RingPacket) {
        let need = block_bytes(p.data.len());
        let full = self
            .state
            .lock()
            .current
            .as_ref()
            .is_some_and(|c| c.bytes + need > self.segment_bytes);
        if full {
            self.close();
        }
        if self.open.is_none()
            && let Err(e) = self.start(p.ts)
        {
            self.fail(e);
            return;
        }
        let Some(seg) = self.open.as_mut() else {
            return;
        };
        let iface = match seg.ifaces.get(&p.link.0) {
            Some(i) => Ok(*i),
            None => seg.w.add_interface(p.link, TsResolution::Nanos).inspect(|i| {
                seg.ifaces.insert(p.link.0, *i);
            }),
        };
        let before = seg.w.bytes_written();
        let r = iface.and_then(|i| seg.w.write_packet(i, p.ts, &p.data, p.orig_len));
        seg.dirty = true;
        let after = seg.w.bytes_written();
        match r {
            Ok(()) => {
                let mut st = self.state.lock();
                st.packets_written += 1;
                st.bytes_written += after - before;
                if let Some(c) = st.current.as_mut() {
                    c.bytes = after;
                    c.last = c.last.max(p.ts);
                }
            }
            Err(e) => {
                let path = self.state.lock().current.as_ref().map(|c| c.path.clone());
                self.fail(format!(
                    "writing {}: {e}",
                    path.map(|p| p.display().to_string()).unwrap_or_default()
                ));
            }
        }
    }

    fn start(&mut self, ts: Timestamp) -> Result<(), String> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let path = self.dir.join(segment_name(seq, ts, None));
        let f = super::export::private_file(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        let w = PcapNgWriter::with_application(
            BufWriter::with_capacity(1 << 20, f),
            ByteOrder::Little,
            concat!("wirelens ", env!("CARGO_PKG_VERSION"), " raw ring"),
        )
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
        let bytes = w.bytes_written();
        self.open = Some(OpenSegment {
            w,
            ifaces: HashMap::new(),
            dirty: true,
        });
        self.state.lock().current = Some(Segment {
            seq,
            path,
            first: ts,
            last: ts,
            bytes,
        });
        Ok(())
    }

    fn flush(&mut self) {
        if let Some(seg) = self.open.as_mut()
            && seg.dirty
        {
            seg.dirty = false;
            if let Err(e) = seg.w.flush() {
                self.fail(format!("flushing a segment: {e}"));
            }
        }
    }

    /// Closes the open segment (renamed with its last timestamp) and deletes old ones.
    fn close(&mut self) {
        let Some(seg) = self.open.take() else {
            return;
        };
        if let Err(e) = seg.w.into_inner() {
            self.fail(format!("flushing a segment: {e}"));
        }
        let mut st = self.state.lock();
        let Some(mut cur) = st.current.take() else {
            return;
        };
        let closed = self.dir.join(segment_name(cur.seq, cur.first, Some(cur.last)));
        match std::fs::rename(&cur.path, &closed) {
            Ok(()) => cur.path = closed,
            Err(e) => st.last_error = Some(format!("renaming {}: {e}", cur.path.display())),
        }
        cur.bytes = std::fs::metadata(&cur.path).map_or(cur.bytes, |m| m.len());
        st.closed.push_back(cur);
        enforce_bound(&mut st, self.max_bytes, self.segment_bytes);
    }

    /// Every second: the write rate over the last samples.
    fn sample(&mut self) {
        let now = Instant::now();
        if self
            .samples
            .back()
            .is_some_and(|(t, ..)| now.duration_since(*t) < Duration::from_secs(1))
        {
            return;
        }
        let mut st = self.state.lock();
        self.samples.push_back((now, st.bytes_written, st.packets_written));
        if self.samples.len() > RATE_SAMPLES {
            self.samples.pop_front();
        }
        if let (Some(a), Some(b)) = (self.samples.front(), self.samples.back()) {
            let dt = b.0.duration_since(a.0).as_secs_f64();
            if dt > 0.0 {
                st.rate = ((b.1 - a.1) as f64 / dt, (b.2 - a.2) as f64 / dt);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::packet::{ACK, PSH, TcpSpec, tcp_frame};

    fn frame(n: u32) -> Vec<u8> {
        let payload = vec![(n % 251) as u8; 1000];
        let mut spec = TcpSpec::new(
            "10.0.0.1:4000".parse().unwrap(),
            "10.0.0.2:80".parse().unwrap(),
            ACK | PSH,
        );
        spec.seq = n * 1000;
        spec.payload = &payload;
        tcp_frame(&spec)
    }

    fn offer(ring: &Ring, n: u32) {
        let data = frame(n);
        ring.offer(&Packet {
            ts: Timestamp(1_000_000_000 + u64::from(n) * 1_000),
            link: LinkType::ETHERNET,
            data: &data,
            orig_len: data.len() as u32,
            interface: 0,
        });
    }

    fn read_all(sources: Vec<PacketSource>) -> Vec<Timestamp> {
        let mut got = Vec::new();
        for s in sources {
            if let PacketSource::Opened(p, f) = s {
                file::read_from(&p, f, 1 << 24, &mut |p| got.push(p.ts), &mut |_| {}).unwrap();
            }
        }
        got
    }

    #[test]
    fn stays_bounded_keeps_the_newest_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = RingConfig {
            segment_bytes: MIN_SEGMENT_BYTES,
            ..RingConfig::new(dir.path().to_path_buf(), 4 * MIN_SEGMENT_BYTES)
        };
        let ring = Ring::open(cfg.clone()).unwrap();
        // About 10 MB: five times the ring.
        let n = 10_000;
        for i in 0..n {
            offer(&ring, i);
            if i % 1_000 == 0 {
                assert!(ring.flush(Duration::from_secs(10)));
            }
        }
        assert!(ring.flush(Duration::from_secs(10)));
        let s = ring.status();
        assert_eq!(s.packets_written + s.dropped_queue_full, u64::from(n));
        assert!(s.bytes_on_disk <= cfg.max_bytes, "{s:?}");
        assert!(s.segments_deleted > 0 && s.segments <= 4, "{s:?}");
        let on_disk: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(on_disk <= cfg.max_bytes, "{on_disk}");
        assert_eq!(on_disk, s.bytes_on_disk);
        // The newest packets are there, in order, oldest gone.
        let ts = read_all(ring.sources(None, None));
        assert_eq!(ts.last(), Some(&Timestamp(1_000_000_000 + u64::from(n - 1) * 1_000)));
        assert!(ts.windows(2).all(|w| w[0] < w[1]));
        assert!(ts.len() < n as usize && ts.len() > 1_000, "{}", ts.len());
        assert_eq!(s.oldest, ts.first().copied());
        assert_eq!(s.newest, ts.last().copied());
        // A window opens only the segments that overlap it.
        let recent = read_all(ring.sources(Some(*ts.last().unwrap()), None));
        assert!(!recent.is_empty() && recent.len() < ts.len());
        ring.stop();
        drop(ring);

        // A crash leaves a segment open: the restart closes it and keeps everything, bounded.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != ".lock")
            .collect();
        assert!(
            names.iter().all(|n| parse_name(n).is_some_and(|(_, _, l)| l.is_some())),
            "{names:?}"
        );
        let newest = names.iter().max().unwrap().clone();
        let (seq, first, _) = parse_name(&newest).unwrap();
        std::fs::rename(
            dir.path().join(&newest),
            dir.path().join(segment_name(seq, first, None)),
        )
        .unwrap();
        let ring = Ring::open(cfg.clone()).unwrap();
        let s = ring.status();
        assert_eq!(s.segments_recovered, names.len() as u64);
        // The closed open segment may push the oldest out: what stays is the newest packets.
        let back = read_all(ring.sources(None, None));
        assert!(
            back.len() > 500 && ts.ends_with(&back),
            "{} of {}",
            back.len(),
            ts.len()
        );
        offer(&ring, n);
        assert!(ring.flush(Duration::from_secs(10)));
        let after = read_all(ring.sources(None, None));
        assert_eq!(after.last(), Some(&Timestamp(1_000_000_000 + u64::from(n) * 1_000)));
        assert!(ring.status().bytes_on_disk <= cfg.max_bytes);
    }

    #[test]
    fn filter_and_full_queue_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = RingConfig {
            filter: Some(Arc::new(Filter::compile("tcp port 443").unwrap())),
            ..RingConfig::new(dir.path().to_path_buf(), 8 << 20)
        };
        let ring = Ring::open(cfg).unwrap();
        offer(&ring, 1);
        assert!(ring.flush(Duration::from_secs(5)));
        let s = ring.status();
        assert_eq!(
            (s.packets_offered, s.packets_filtered_out, s.packets_written),
            (1, 1, 0)
        );
        assert_eq!(s.filter.as_deref(), Some("tcp port 443"));

        let tiny = RingConfig {
            queue_bytes: 10,
            ..RingConfig::new(dir.path().join("q"), 8 << 20)
        };
        let ring = Ring::open(tiny).unwrap();
        offer(&ring, 1);
        assert!(ring.flush(Duration::from_secs(5)));
        let s = ring.status();
        assert_eq!((s.dropped_queue_full, s.packets_written), (1, 0));
    }

    #[test]
    fn one_ring_per_directory() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = RingConfig::new(dir.path().to_path_buf(), 8 << 20);
        let first = Ring::open(cfg.clone()).unwrap();
        let e = Ring::open(cfg.clone()).unwrap_err().to_string();
        assert!(e.contains("in use by another process"), "{e}");
        drop(first);
        Ring::open(cfg).unwrap();
    }

    #[test]
    fn too_small_a_ring_is_refused_and_names_parse() {
        let dir = tempfile::tempdir().unwrap();
        let e = Ring::open(RingConfig::new(dir.path().to_path_buf(), 100_000)).unwrap_err();
        assert!(e.to_string().contains("at least two segments"), "{e}");
        let n = segment_name(3, Timestamp(5), Some(Timestamp(9)));
        assert_eq!(parse_name(&n), Some((3, Timestamp(5), Some(Timestamp(9)))));
        assert_eq!(
            parse_name(&segment_name(4, Timestamp(5), None)),
            Some((4, Timestamp(5), None))
        );
        assert_eq!(parse_name("ring-1-2.pcapng"), None);
        assert_eq!(parse_name("other.pcapng"), None);
    }
}
