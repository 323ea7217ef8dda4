//! The engine: packets in, entries out.
//!
//! `process` takes one packet through link → IP (with fragment reassembly) → TCP (flow table,
//! per-direction reassembly) → the connection's dissector, whose finished entries are batched into
//! the [`Store`]. `finish` flushes every open flow at the end of a source. All memory is bounded
//! by [`Limits`]; every drop is counted in [`Stats`].

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::dissect::tls::keylog::KeyLog;
use crate::dissect::{AppSession, Ctx, DatagramSession, DissectStats};
use crate::entry::{Entry, Transport};
use crate::flows::{FlowEnd, FlowRecord, FlowStore};
use crate::kernel::tls::TlsStreams;
use crate::kernel::{KernelTable, KernelTcp};
use crate::limits::Limits;
use crate::source::bpf::Filter;
use crate::source::{LinkType, Packet, file};
use crate::stats::{SourceFilter, SourceInfo, Stats};
use crate::store::Store;
use crate::tcp::analysis::{Segment, TcpAnalysis};
use crate::tcp::flow::{Dir, Eviction, Flow, FlowKey, FlowMeta, FlowTable};
use crate::tcp::reassembly::Reassembler;
use crate::time::Timestamp;
use crate::wire::frag::Defragmenter;
use crate::wire::ip::{PROTO_TCP, PROTO_UDP};
use crate::wire::{Layer, TcpSegment, UdpDatagram, decode_ip, decode_link};

/// Entries are handed to the store in batches of this size (one write lock per batch).
const STORE_BATCH: usize = 256;
/// How long a TLS entry waits for the packet flow of its connection (see `join_tls_entries`).
const TLS_JOIN_GRACE_NS: u64 = 300_000_000;
/// TLS entries held back at most; more are stored unjoined.
const TLS_HELD_MAX: usize = 4_096;
/// Idle and closed flows are looked for once per second of capture time.
pub(crate) const SWEEP_INTERVAL_NS: u64 = 1_000_000_000;

/// Per-connection state.
#[derive(Debug, Default)]
pub struct Conn {
    /// Sequence number of each direction's SYN, to tell a retransmitted SYN from a new connection.
    syn_seq: [Option<u32>; 2],
    reasm: [Reassembler; 2],
    fin: [bool; 2],
    rst: bool,
    app: AppSession,
    /// UDP flows: the datagram dissector.
    dgram: DatagramSession,
    analysis: TcpAnalysis,
}

/// What the engine shares with readers while it runs (tools read it for `capture_status`).
#[derive(Debug, Clone)]
pub struct Shared {
    pub store: Arc<Store>,
    pub flows: Arc<FlowStore>,
    pub stats: Arc<Mutex<Stats>>,
    pub sources: Arc<Mutex<Vec<SourceInfo>>>,
    /// How far reading the capture files has come (for progress reports while serving).
    pub import: Arc<ImportProgress>,
    /// The eBPF probes: what is attached and why something is not (`None`: not asked for).
    pub probes: Arc<Mutex<Option<ebpf_probes::Report>>>,
    /// Kubernetes identities: entries and flows get theirs when stored.
    pub identities: Arc<crate::enrich::Identities>,
    /// What is redacted from entries before they are stored and from bodies when shown. Set
    /// before the first engine is made from this `Shared`.
    pub redaction: Arc<crate::redact::Redaction>,
    /// `--capture-namespace`, `--capture-pod-selector`: only entries with an end the scope
    /// selects are stored (all when it is empty). Set before the first engine is made.
    pub capture_scope: Arc<crate::enrich::scope::CaptureScope>,
}

impl Shared {
    pub fn new(store_budget: usize) -> Self {
        Self::with_limits(&Limits {
            store_memory_bytes: store_budget,
            ..Limits::default()
        })
    }

    pub fn with_limits(limits: &Limits) -> Self {
        Shared {
            store: Arc::new(Store::new(limits.store_memory_bytes)),
            flows: Arc::new(FlowStore::new(limits.max_flow_records)),
            stats: Arc::new(Mutex::new(Stats::default())),
            sources: Arc::new(Mutex::new(Vec::new())),
            probes: Arc::new(Mutex::new(None)),
            import: Arc::new(ImportProgress::default()),
            identities: Arc::new(crate::enrich::Identities::default()),
            redaction: Arc::new(crate::redact::Redaction::default()),
            capture_scope: Arc::new(crate::enrich::scope::CaptureScope::default()),
        }
    }
}

/// What the engines of one live capture share when it runs several threads.
#[derive(Debug, Clone)]
pub struct EngineGroup {
    pub size: usize,
    kernel: Arc<Mutex<KernelTable>>,
    stats: Arc<Mutex<Vec<Stats>>>,
    flow_ids: Arc<Mutex<std::collections::HashMap<FlowKey, u64>>>,
}

impl EngineGroup {
    pub fn new(size: usize, limits: &Limits) -> EngineGroup {
        EngineGroup {
            size: size.max(1),
            kernel: Arc::new(Mutex::new(KernelTable::new(limits.ebpf_max_connections))),
            stats: Arc::new(Mutex::new(Vec::new())),
            flow_ids: Arc::new(Mutex::new(std::collections::HashMap::new())),
        }
    }
}

#[derive(Debug)]
struct Part {
    index: usize,
    stats: Arc<Mutex<Vec<Stats>>>,
    flow_ids: Arc<Mutex<std::collections::HashMap<FlowKey, u64>>>,
}

/// Bytes of capture files read so far, of how many, and the file being read.
#[derive(Debug, Default)]
pub struct ImportProgress {
    pub bytes_read: std::sync::atomic::AtomicU64,
    pub bytes_total: std::sync::atomic::AtomicU64,
    pub current: Mutex<String>,
}

impl ImportProgress {
    /// (bytes read, bytes in all, current file); the total is 0 when unknown (a pipe).
    pub fn snapshot(&self) -> (u64, u64, String) {
        use std::sync::atomic::Ordering::Relaxed;
        let total = self.bytes_total.load(Relaxed);
        let read = self.bytes_read.load(Relaxed);
        (
            if total > 0 { read.min(total) } else { read },
            total,
            self.current.lock().clone(),
        )
    }
}

pub struct Engine {
    limits: Limits,
    flows: FlowTable<Conn>,
    defrag: Defragmenter,
    stats: Stats,
    out: Vec<Entry>,
    /// Entries ready for the store, waiting because a query held it (at most a sixteenth of the
    /// store's budget: see [`Engine::flush_entries`]).
    ready: Vec<Entry>,
    shared: Shared,
    last_sweep: Timestamp,
    /// eBPF: kernel facts waiting for their flows, and TLS plaintext streams.
    kernel: Arc<Mutex<KernelTable>>,
    /// Live capture with several threads: this engine's place among them, and the flow ids of
    /// every thread's open TCP flows (TLS plaintext joins a flow whichever thread holds it).
    part: Option<Part>,
    tls: TlsStreams,
    ebpf_events: u64,
    /// TLS entries waiting for their flow, and the wall clock of the last tick (live only).
    tls_held: Vec<Entry>,
    now: Option<Timestamp>,
    /// The capture filter run on every packet before decoding (files and the demo; a live
    /// capture has it in the kernel instead).
    filter: Option<Arc<Filter>>,
    /// TLS secrets to decrypt with (`--keylog`).
    keys: Option<Arc<KeyLog>>,
    /// Key logs that may grow (live capture): their version last taken into `keys`.
    follow: Option<(Arc<crate::dissect::tls::keylog::SharedKeys>, u64)>,
    /// Packets until the next look at the resident set (`--max-memory`).
    until_memory_check: u64,
}

impl Engine {
    pub fn new(limits: Limits, shared: Shared) -> Self {
        let kernel = Arc::new(Mutex::new(KernelTable::new(limits.ebpf_max_connections)));
        Engine {
            flows: FlowTable::new(limits.max_flows),
            defrag: Defragmenter::new(
                limits.ip_frag_max_datagrams,
                limits.ip_frag_max_bytes,
                limits.ip_frag_timeout_us,
            ),
            limits,
            stats: Stats::default(),
            out: Vec::new(),
            ready: Vec::new(),
            shared,
            last_sweep: Timestamp(0),
            kernel,
            part: None,
            tls: TlsStreams::default(),
            ebpf_events: 0,
            tls_held: Vec::new(),
            now: None,
            filter: None,
            keys: None,
            follow: None,
            until_memory_check: crate::memory::CHECK_PACKETS,
        }
    }

    /// Takes the keys of `shared` now and again before each packet after they change.
    pub fn follow_keys(&mut self, shared: Arc<crate::dissect::tls::keylog::SharedKeys>) {
        let (v, k) = shared.get();
        self.keys = k;
        self.follow = Some((shared, v));
    }

    /// TLS connections whose secrets `keys` holds are decrypted from now on.
    pub fn set_keylog(&mut self, keys: Option<Arc<KeyLog>>) {
        self.keys = keys;
    }

    /// Adds key log texts (a pcapng Decryption Secrets Block) to the keys.
    pub(crate) fn add_key_text(&mut self, texts: &[Vec<u8>]) {
        let mut keys = self.keys.as_deref().cloned().unwrap_or_default();
        for t in texts {
            keys.add_text(&String::from_utf8_lossy(t));
        }
        self.keys = Some(Arc::new(keys));
    }

    /// Only packets `filter` keeps are decoded from now on; the others are counted in
    /// `Stats::filtered_out`.
    pub fn set_filter(&mut self, filter: Option<Arc<Filter>>) {
        self.filter = filter;
    }

    /// The filter as applied to a source read since `filtered_before` was read off the stats.
    pub(crate) fn source_filter(&self, filtered_before: u64) -> Option<SourceFilter> {
        self.filter.as_ref().map(|f| SourceFilter {
            expression: f.expression().to_string(),
            in_kernel: false,
            filtered_out: Some(self.stats.filtered_out - filtered_before),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Reads a whole pcap/pcapng file, then flushes open flows.
    pub fn read_pcap(&mut self, path: &Path) -> Result<SourceInfo, file::FileError> {
        let mut first = None;
        let mut last = None;
        let import = self.shared.import.clone();
        *import.current.lock() = path.display().to_string();
        let filtered_before = self.stats.filtered_out;
        // Key log text of the file's Decryption Secrets Blocks, joined to the keys before the
        // next packet (the blocks come before the packets they decrypt).
        let secrets: std::cell::RefCell<Vec<Vec<u8>>> = Default::default();
        let summary = file::read_file_counted(
            path,
            self.limits.max_record_bytes,
            &import.bytes_read,
            |p| {
                if !secrets.borrow().is_empty() {
                    self.add_key_text(&secrets.take());
                }
                first.get_or_insert(p.ts);
                last = Some(p.ts);
                self.process(p);
            },
            &mut |text| secrets.borrow_mut().push(text.to_vec()),
        )?;
        self.finish();
        let info = file_source_info(path, &summary, first, last, self.source_filter(filtered_before));
        self.shared.sources.lock().push(info.clone());
        Ok(info)
    }

    /// Replays owned packets (the demo, tests), then flushes open flows.
    pub fn replay(&mut self, name: &str, link: LinkType, packets: &[(Timestamp, Vec<u8>)]) -> SourceInfo {
        let filtered_before = self.stats.filtered_out;
        for (ts, data) in packets {
            self.process(&Packet {
                ts: *ts,
                link,
                data,
                orig_len: data.len() as u32,
                interface: 0,
            });
        }
        self.finish();
        let info = SourceInfo {
            kind: "demo".into(),
            name: name.into(),
            packets: packets.len() as u64,
            bytes: packets.iter().map(|(_, d)| d.len() as u64).sum(),
            first_ts: packets.first().map(|p| p.0),
            last_ts: packets.last().map(|p| p.0),
            warning: None,
            link_types: vec![link.0],
            bpf: self.source_filter(filtered_before),
        };
        self.shared.sources.lock().push(info.clone());
        info
    }

    /// Takes the followed key logs' latest keys (a live key log grows as clients connect).
    fn refresh_keys(&mut self) {
        if let Some((shared, seen)) = &mut self.follow
            && shared.version() != *seen
        {
            let (v, k) = shared.get();
            *seen = v;
            self.keys = k;
        }
    }

    /// Takes one packet through the pipeline.
    pub fn process(&mut self, pkt: &Packet<'_>) {
        self.refresh_keys();
        if let Some(f) = &self.filter
            && !f.matches(pkt)
        {
            self.stats.filtered_out += 1;
            return;
        }
        let s = &mut self.stats;
        s.packets += 1;
        s.bytes += pkt.data.len() as u64;
        s.wire_bytes += u64::from(pkt.orig_len);
        if (pkt.data.len() as u32) < pkt.orig_len {
            s.packets_snapped += 1;
        }
        s.first_ts.get_or_insert(pkt.ts);
        s.last_ts = Some(s.last_ts.map_or(pkt.ts, |t| t.max(pkt.ts)));

        let ip = match decode_link(pkt.link, pkt.data).and_then(decode_ip) {
            Ok(Some(ip)) => ip,
            Ok(None) => {
                s.non_ip += 1;
                return;
            }
            Err(e) => {
                s.decode_errors[layer_index(e.layer)] += 1;
                return;
            }
        };
        if let Some(frag) = ip.fragment {
            if let Some(dg) = self.defrag.add(pkt.ts, &ip, frag) {
                let len = dg.payload.len();
                self.transport(pkt.ts, dg.src, dg.dst, dg.protocol, &dg.payload, len, pkt.orig_len);
            }
            self.stats.frag = self.defrag.stats;
        } else {
            // Bytes the header declares beyond the frame count only when a snap length cut them
            // (a header that lies about its length is clamped to the frame, as tshark does).
            let snapped = (pkt.orig_len as usize).saturating_sub(pkt.data.len());
            let declared = ip.declared_len.min(ip.payload.len() + snapped);
            self.transport(pkt.ts, ip.src, ip.dst, ip.protocol, ip.payload, declared, pkt.orig_len);
        }
        if pkt.ts.0.saturating_sub(self.last_sweep.0) >= SWEEP_INTERVAL_NS {
            self.sweep(pkt.ts);
        }
        if self.limits.max_memory_bytes > 0 {
            self.until_memory_check -= 1;
            if self.until_memory_check == 0 {
                self.until_memory_check = crate::memory::CHECK_PACKETS;
                self.memory_check(pkt.ts);
            }
        }
        if self.out.len() >= STORE_BATCH {
            self.flush_entries();
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn transport(
        &mut self,
        ts: Timestamp,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        payload: &[u8],
        declared_len: usize,
        frame_len: u32,
    ) {
        match proto {
            PROTO_TCP => match TcpSegment::new_checked(payload) {
                Ok(seg) => {
                    self.stats.tcp_packets += 1;
                    let seglen = declared_len.saturating_sub(seg.header_len()) as u32;
                    let (s, d) = (
                        SocketAddr::new(src, seg.src_port()),
                        SocketAddr::new(dst, seg.dst_port()),
                    );
                    self.tcp(ts, s, d, &seg, seglen, frame_len);
                }
                Err(e) => self.stats.decode_errors[layer_index(e.layer)] += 1,
            },
            PROTO_UDP => match UdpDatagram::new_checked(payload) {
                Ok(dg) => {
                    self.stats.udp_packets += 1;
                    let (s, d) = (SocketAddr::new(src, dg.src_port()), SocketAddr::new(dst, dg.dst_port()));
                    self.udp(ts, s, d, dg.payload(), frame_len);
                }
                Err(e) => self.stats.decode_errors[layer_index(e.layer)] += 1,
            },
            _ => self.stats.other_ip += 1,
        }
    }

    /// UDP conversations: counted per 5-tuple (dissection of UDP protocols plugs in here).
    fn udp(&mut self, ts: Timestamp, src: SocketAddr, dst: SocketAddr, payload: &[u8], frame_len: u32) {
        let len = payload.len() as u32;
        let key = FlowKey::new(src, dst, PROTO_UDP);
        // Flows a full table evicts for this one end after its datagram (it is borrowed until
        // then), as for TCP.
        let mut evicted: Vec<(Flow<Conn>, Eviction)> = Vec::new();
        let (flow, _) = self.flows.get_or_insert(
            key,
            || (FlowMeta::new(key, src, dst, false, false, ts), Conn::default()),
            &mut |f, why| evicted.push((f, why)),
        );
        flow.meta.last_seen = ts;
        let d = flow.meta.dir_of(src).index();
        let m = &mut flow.state.analysis.metrics;
        m.packets[d] += 1;
        m.frame_bytes[d] += u64::from(frame_len);
        m.payload_bytes[d] += u64::from(len);
        m.first_ts.get_or_insert(ts);
        m.last_ts = Some(ts);
        let seen = m.packets[0] + m.packets[1];
        let dir = flow.meta.dir_of(src);
        let mut ctx = Ctx {
            limits: &self.limits,
            meta: &flow.meta,
            out: &mut self.out,
            stats: &mut self.stats.dissect,
            keys: self.keys.as_deref(),
        };
        flow.state.dgram.on_datagram(dir, ts, payload, seen, &mut ctx);
        self.end_flows(evicted, ts);
    }

    fn tcp(
        &mut self,
        ts: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        seg: &TcpSegment<'_>,
        seglen: u32,
        frame_len: u32,
    ) {
        let flags = seg.flags();
        let key = FlowKey::new(src, dst, PROTO_TCP);
        let mut evicted: Vec<(Flow<Conn>, Eviction)> = Vec::new();

        // A new SYN on a 5-tuple whose connection is closed is a new connection (port reuse).
        if flags.syn()
            && !flags.ack()
            && let Some(f) = self.flows.get_mut(&key)
        {
            let dir = f.meta.dir_of(src);
            let new_isn = f.state.syn_seq[dir.index()].is_some_and(|s| s != seg.seq())
                || (f.state.syn_seq[dir.index()].is_none() && f.state.reasm[dir.index()].is_started());
            if (f.meta.closed_at.is_some() || new_isn)
                && let Some(old) = self.flows.remove(&key)
            {
                self.stats.flows_reused += 1;
                evicted.push((old, Eviction::Reused));
            }
        }
        // A reused 5-tuple's old flow ends before the new one starts; the flows a full table
        // evicts for it end after this packet (its flow is borrowed until then).
        self.end_flows(std::mem::take(&mut evicted), ts);
        let (flow, inserted) = self.flows.get_or_insert(
            key,
            || {
                let meta = FlowMeta::new(key, src, dst, flags.syn(), flags.ack(), ts);
                let conn = Conn {
                    app: AppSession::new(),
                    ..Conn::default()
                };
                (meta, conn)
            },
            &mut |f, why| evicted.push((f, why)),
        );
        if inserted && let Some(p) = &self.part {
            p.flow_ids.lock().insert(key, flow.meta.id);
        }
        flow.meta.last_seen = ts;
        let dir = flow.meta.dir_of(src);
        let other = dir.flip();
        if flags.syn() {
            flow.state.syn_seq[dir.index()].get_or_insert(seg.seq());
        }
        let window_scale = if flags.syn() {
            seg.options().find_map(|o| match o {
                crate::wire::transport::TcpOption::WindowScale(w) => Some(w),
                _ => None,
            })
        } else {
            None
        };
        let analysis = flow.state.analysis.packet(&Segment {
            ts,
            dir: dir.index(),
            seq: seg.seq(),
            ack: seg.ack(),
            flags,
            window: seg.window(),
            seglen,
            window_scale,
            frame_len,
        });
        tracing::trace!(
            packet = self.stats.packets,
            flow = flow.meta.id,
            analysis,
            "tcp segment"
        );
        let Conn {
            reasm, fin, app, rst, ..
        } = &mut flow.state;
        let mut ctx = Ctx {
            limits: &self.limits,
            meta: &flow.meta,
            out: &mut self.out,
            stats: &mut self.stats.dissect,
            keys: self.keys.as_deref(),
        };
        let [r0, r1] = reasm;
        let (mine, theirs) = if dir == Dir::ToServer { (r0, r1) } else { (r1, r0) };
        mine.segment(
            seg.seq(),
            flags.syn(),
            flags.fin(),
            seg.payload(),
            self.limits.reassembly_window_bytes,
            self.limits.reassembly_max_segments,
            &mut |ch| app.on_chunk(dir, ts, ch, &mut ctx),
        );
        if flags.ack() && !flags.rst() {
            theirs.acked(seg.ack(), &mut |ch| app.on_chunk(other, ts, ch, &mut ctx));
        }
        if flags.fin() {
            fin[dir.index()] = true;
        }
        let closed = flags.rst() || (fin[0] && fin[1] && mine.is_ended() && theirs.is_ended());
        if flags.rst() {
            *rst = true;
            // The connection is gone: whatever is still buffered will not be completed.
            mine.flush(&mut |ch| app.on_chunk(dir, ts, ch, &mut ctx));
            theirs.flush(&mut |ch| app.on_chunk(other, ts, ch, &mut ctx));
            app.reset(ts, &mut ctx);
        }
        if closed && flow.meta.closed_at.is_none() {
            flow.meta.closed_at = Some(ts);
        }
        self.end_flows(evicted, ts);
    }

    fn sweep(&mut self, now: Timestamp) {
        self.last_sweep = now;
        let tcp_idle = self.limits.tcp_idle_timeout_us.saturating_mul(1000);
        let udp_idle = self.limits.udp_idle_timeout_us.saturating_mul(1000);
        let gone = self.flows.expired(
            now,
            &|k: &FlowKey| {
                if k.proto == PROTO_TCP { tcp_idle } else { udp_idle }
            },
            self.limits.tcp_closed_linger_us.saturating_mul(1000),
        );
        for (k, why) in gone {
            if let Some(f) = self.flows.remove_expired(&k, why) {
                self.end_flow(f, why, now);
            }
        }
        self.kernel.lock().sweep(now, tcp_idle);
        self.tls
            .sweep(now, tcp_idle, &self.limits, &mut self.out, &mut self.stats.dissect);
        self.memory_check(now);
        if self.now.is_some() {
            self.list_open_flows();
        }
        self.publish();
    }

    /// Live capture: the open flows as they are now, for the flow tools (at most
    /// `live_flows_listed`, the most recently active; the rest are counted). Refreshed every
    /// sweep (a second); a flow that ends is listed from its final record from then on.
    fn list_open_flows(&mut self) {
        let mut open: Vec<&Flow<Conn>> = self.flows.iter().collect();
        let cap = self.limits.live_flows_listed;
        if open.len() > cap {
            open.select_nth_unstable_by_key(cap, |f| std::cmp::Reverse(f.meta.last_seen));
            open.truncate(cap);
        }
        self.stats.flows_open_unlisted = (self.flows.len() - open.len()) as u64;
        let kernel = self.kernel.lock();
        let records: Vec<Arc<FlowRecord>> = open
            .into_iter()
            .map(|f| {
                let k = kernel.peek(&f.meta.key).cloned();
                Arc::new(record_of(f, FlowEnd::Open, k, &self.shared))
            })
            .collect();
        drop(kernel);
        self.shared
            .flows
            .set_open(self.part.as_ref().map_or(0, |p| p.index), records);
    }

    /// `--max-memory`: looks at the resident set and, above the pressure mark, sheds load in the
    /// order documented in [`crate::memory`] until it is below the relief mark.
    fn memory_check(&mut self, now: Timestamp) {
        use crate::memory::{self, PRESSURE, RELIEF};
        let max = self.limits.max_memory_bytes as f64;
        if max == 0.0 {
            return;
        }
        let mut rss = memory::rss_bytes();
        self.stats.memory.rss_bytes = rss;
        self.stats.memory.peak_rss_bytes = memory::peak_rss_bytes();
        if (rss as f64) < max * PRESSURE {
            return;
        }
        self.stats.memory.pressure_events += 1;
        for step in 0..3 {
            match step {
                0 => self.flush_reassembly(now),
                1 => {
                    self.store_entries(true);
                    let store = &self.shared.store;
                    self.stats.memory.entries_shed += store.shed_to(store.bytes() / 2);
                }
                _ => {
                    let n = self.flows.len() / 2;
                    let mut gone = Vec::with_capacity(n);
                    self.flows.evict_oldest(n, &mut |f, why| gone.push((f, why)));
                    self.stats.memory.flows_shed += gone.len() as u64;
                    for (f, why) in gone {
                        self.end_flow(f, why, now);
                    }
                    self.store_entries(true);
                }
            }
            memory::trim();
            rss = memory::rss_bytes();
            if (rss as f64) < max * RELIEF {
                break;
            }
        }
        self.stats.memory.rss_bytes = rss;
    }

    /// Memory pressure, step 1: every reassembly buffer goes to its dissector now (holes become
    /// gaps).
    fn flush_reassembly(&mut self, ts: Timestamp) {
        let mut dstats = crate::dissect::DissectStats::default();
        let keys = self.keys.as_deref();
        for f in self.flows.iter_mut() {
            let Conn { reasm, app, .. } = &mut f.state;
            for (i, r) in reasm.iter_mut().enumerate() {
                let held = r.buffered_bytes();
                if held == 0 {
                    continue;
                }
                self.stats.memory.reassembly_flushes += 1;
                self.stats.memory.reassembly_bytes_flushed += held as u64;
                let dir = if i == 0 { Dir::ToServer } else { Dir::ToClient };
                let mut ctx = Ctx {
                    limits: &self.limits,
                    meta: &f.meta,
                    out: &mut self.out,
                    stats: &mut dstats,
                    keys,
                };
                r.flush(&mut |ch| app.on_chunk(dir, ts, ch, &mut ctx));
            }
        }
        self.stats.dissect.add(&dstats);
    }

    /// End of a source: flush every open flow and publish everything.
    pub fn finish(&mut self) {
        self.refresh_keys();
        let now = self.stats.last_ts.unwrap_or_default();
        let mut all = Vec::new();
        self.flows.drain_all(&mut |f, why| all.push((f, why)));
        for (f, why) in all {
            self.end_flow(f, why, now);
        }
        self.tls
            .sweep(now, 0, &self.limits, &mut self.out, &mut self.stats.dissect);
        self.store_entries(true);
        self.publish();
    }

    /// Hands finished entries to the store, without waiting for it: while a query reads the
    /// store (a scan holds its read lock), entries wait here instead of stalling the capture,
    /// up to a sixteenth of the store's budget; beyond that, or when the capture ends, the engine
    /// waits for the lock.
    pub fn flush_entries(&mut self) {
        self.store_entries(false);
    }

    fn store_entries(&mut self, wait: bool) {
        self.prepare_entries();
        let store = &self.shared.store;
        if !wait {
            if store.try_insert_batch(&mut self.ready) {
                return;
            }
            self.stats.store_busy += 1;
            // What waits is counted only when the store was busy (it counts entries as they go in).
            if self.ready.iter().map(Entry::memory_bytes).sum::<usize>() < store.budget() / 16 {
                return;
            }
            self.stats.store_waits += 1;
        }
        store.insert_batch(&mut self.ready);
    }

    /// Redacts, enriches and selects the finished entries, then moves them to `ready`.
    fn prepare_entries(&mut self) {
        self.join_tls_entries();
        self.stats.entries_emitted += self.out.len() as u64;
        let ids = &self.shared.identities;
        let index = (!ids.is_empty()).then(|| ids.index());
        let mut dns = ids.dns.lock();
        for e in &mut self.out {
            self.stats.values_redacted += self.shared.redaction.entry(e);
            // Answers name their addresses for the entries after them (lookups come first).
            if let Some(d) = e.dns()
                && let (Some(q), Some(r)) = (d.qname(), d.response.as_ref())
            {
                for a in r.answers.iter().filter(|a| matches!(a.rtype, 1 | 28)) {
                    if let Ok(ip) = a.data.parse::<std::net::IpAddr>() {
                        dns.learn(ip, q, self.limits.dns_names_max);
                    }
                }
            }
            if let Some(index) = &index {
                e.peers.src = index.resolve(e.src.ip(), e.src.port(), e.ts);
                e.peers.dst = index.resolve(e.dst.ip(), e.dst.port(), e.ts);
            }
            if !dns.is_empty() {
                e.peers.src_dns = dns.get(e.src.ip());
                e.peers.dst_dns = dns.get(e.dst.ip());
            }
        }
        self.stats.dns_names_forgotten = dns.forgotten;
        drop(dns);
        let scope = &self.shared.capture_scope;
        if !scope.is_all() {
            let before = self.out.len();
            self.out
                .retain(|e| scope.selects(&e.peers.src) || scope.selects(&e.peers.dst));
            self.stats.entries_not_selected += (before - self.out.len()) as u64;
        }
        if self.ready.is_empty() {
            // The usual case: hand the vector over instead of copying its entries.
            std::mem::swap(&mut self.ready, &mut self.out);
        } else {
            self.ready.append(&mut self.out);
        }
    }

    /// Live capture: sweeps idle flows by the wall clock `now` (packets may stop coming), stores
    /// finished entries and publishes the counters.
    /// Capture time reached `now` in packets this engine did not see (files read by several
    /// engines): idle and closed flows are swept when the engine alone would have.
    pub(crate) fn advance_to(&mut self, now: Timestamp) {
        if now.0.saturating_sub(self.last_sweep.0) >= SWEEP_INTERVAL_NS {
            self.sweep(now);
        }
    }

    pub fn tick(&mut self, now: Timestamp) {
        self.now = Some(now);
        self.refresh_keys();
        if now.0.saturating_sub(self.last_sweep.0) >= SWEEP_INTERVAL_NS {
            self.sweep(now);
        }
        self.flush_entries();
        self.publish();
    }

    /// The kernel's counters of a live capture (frames delivered, frames dropped: ring full).
    pub fn set_kernel_counters(&mut self, packets: u64, drops: u64) {
        self.stats.kernel_packets = packets;
        self.stats.kernel_drops = drops;
    }

    /// An event from the eBPF probes, stamped with wall-clock time `ts`: TCP facts join their
    /// connection's flow; TLS plaintext goes through the dissectors as a stream of its own.
    pub fn kernel_event(&mut self, ev: &ebpf_probes::Event<'_>, ts: Timestamp) {
        self.ebpf_events += 1;
        match ev {
            ebpf_probes::Event::Tcp(t) => self.kernel.lock().record(t, ts),
            ebpf_probes::Event::Tls(t) => {
                let (flows, part) = (&self.flows, &self.part);
                let flow_id = |k: &FlowKey| match part {
                    Some(p) => p.flow_ids.lock().get(k).copied(),
                    None => flows.peek(k).map(|f| f.meta.id),
                };
                self.tls
                    .on_event(t, ts, &self.limits, &flow_id, &mut self.out, &mut self.stats.dissect);
                if self.out.len() >= STORE_BATCH {
                    self.flush_entries();
                }
            }
        }
    }

    /// The eBPF side's own losses: events the kernel could not queue (ring buffer full) and
    /// records that did not parse.
    pub fn set_ebpf_counters(&mut self, ring_full: u64, malformed: u64) {
        self.stats.ebpf.ring_full = ring_full;
        self.stats.ebpf.malformed = malformed;
    }

    /// Copies the counters where readers can see them.
    pub fn publish(&mut self) {
        let e = &mut self.stats.ebpf;
        e.events = self.ebpf_events;
        {
            let k = self.kernel.lock();
            e.connections_pending = k.len() as u64;
            e.connections_dropped = k.dropped;
            e.unjoined = k.unjoined;
            e.handshake_rtt = k.handshake_summary();
        }
        e.tls = self.tls.stats;
        e.tls_open = self.tls.len() as u64;
        self.stats.entries_waiting = self.ready.len() as u64;
        self.stats.flows_active = self.flows.len() as u64;
        self.stats.flows_created = self.flows.created;
        self.stats.flows_evicted_idle = self.flows.evicted_idle;
        self.stats.flows_evicted_closed = self.flows.evicted_closed;
        self.stats.flows_evicted_capacity = self.flows.evicted_capacity;
        self.stats.frag = self.defrag.stats;
        match &self.part {
            None => *self.shared.stats.lock() = self.stats.clone(),
            Some(p) => {
                let mut parts = p.stats.lock();
                parts[p.index] = self.stats.clone();
                let mut total = Stats::default();
                for s in parts.iter() {
                    total.merge(s);
                }
                *self.shared.stats.lock() = total;
            }
        }
    }

    /// TLS plaintext can be ready before the packets of its connection are read (a ring hands a
    /// block over up to 50 ms after its first frame, and with several capture threads another
    /// thread may hold the flow): an entry not yet joined to its flow is held back for
    /// `TLS_JOIN_GRACE_NS` after it began, and looked up again at every flush. At the end of the
    /// capture everything held is stored.
    fn join_tls_entries(&mut self) {
        if self.tls_held.is_empty() && !self.out.iter().any(|e| e.tls && e.flow_id == 0) {
            return;
        }
        let held = std::mem::take(&mut self.tls_held);
        let out = std::mem::take(&mut self.out);
        for mut e in held.into_iter().chain(out) {
            if e.tls && e.flow_id == 0 {
                let key = FlowKey::new(e.src, e.dst, PROTO_TCP);
                e.flow_id = match &self.part {
                    Some(p) => p.flow_ids.lock().get(&key).copied().unwrap_or(0),
                    None => self.flows.peek(&key).map_or(0, |f| f.meta.id),
                };
                let young = self
                    .now
                    .is_some_and(|now| now.0 < e.ts.0.saturating_add(TLS_JOIN_GRACE_NS));
                if e.flow_id == 0 && young && self.tls_held.len() < TLS_HELD_MAX {
                    self.tls_held.push(e);
                    continue;
                }
            }
            self.out.push(e);
        }
    }

    /// A flow leaves the table: its dissector is finished and its record stored, with the
    /// kernel's facts about it.
    /// [`Self::end_flow`] for each flow a packet evicted. Most packets evict none: they skip
    /// building and dropping an empty iterator of flows.
    #[inline]
    fn end_flows(&mut self, evicted: Vec<(Flow<Conn>, Eviction)>, now: Timestamp) {
        if !evicted.is_empty() {
            for (f, why) in evicted {
                self.end_flow(f, why, now);
            }
        }
    }

    fn end_flow(&mut self, f: Flow<Conn>, why: Eviction, now: Timestamp) {
        let kernel = self.take_kernel(&f.meta.key);
        finish_flow(
            f,
            why,
            now,
            kernel,
            &self.limits,
            self.keys.as_deref(),
            &mut self.out,
            &mut self.stats,
            &self.shared,
        );
    }

    /// The kernel's facts for a flow leaving the table (and its id leaves the shared index).
    fn take_kernel(&self, key: &FlowKey) -> Option<KernelTcp> {
        if let Some(p) = &self.part {
            p.flow_ids.lock().remove(key);
        }
        self.kernel.lock().take(key)
    }

    /// Makes this engine part `index` of a group sharing `shared` (live capture with several
    /// threads): flow ids are spaced so they never collide, counters are summed over the group,
    /// and the kernel's facts and the open flows' ids are shared.
    pub fn join(&mut self, group: &EngineGroup, index: usize) {
        self.flows.number_from(index as u64 + 1, group.size as u64);
        self.kernel = group.kernel.clone();
        group.stats.lock().resize(group.size, Stats::default());
        self.part = Some(Part {
            index,
            stats: group.stats.clone(),
            flow_ids: group.flow_ids.clone(),
        });
    }
}

fn layer_index(l: Layer) -> usize {
    Layer::ALL.iter().position(|x| *x == l).unwrap_or(0)
}

/// A flow leaves the table: deliver what is buffered (with gaps), close its dissector.
#[allow(clippy::too_many_arguments)]
fn finish_flow(
    mut f: Flow<Conn>,
    why: Eviction,
    now: Timestamp,
    kernel: Option<KernelTcp>,
    limits: &Limits,
    keys: Option<&KeyLog>,
    out: &mut Vec<Entry>,
    stats: &mut Stats,
    shared: &Shared,
) {
    let ts = now.max(f.meta.last_seen);
    let mut dstats = DissectStats::default();
    {
        let Conn { reasm, app, dgram, .. } = &mut f.state;
        let mut ctx = Ctx {
            limits,
            meta: &f.meta,
            out,
            stats: &mut dstats,
            keys,
        };
        for (i, r) in reasm.iter_mut().enumerate() {
            let dir = if i == 0 { Dir::ToServer } else { Dir::ToClient };
            r.flush(&mut |ch| app.on_chunk(dir, ts, ch, &mut ctx));
        }
        app.finish(ts, &mut ctx);
        dgram.finish(ts, &mut ctx);
    }
    stats.dissect.add(&dstats);
    for r in &f.state.reasm {
        stats.add_reassembly(&r.stats);
    }
    let end = if f.state.rst {
        FlowEnd::Reset
    } else if f.state.fin[0] && f.state.fin[1] {
        FlowEnd::Closed
    } else {
        match why {
            Eviction::Idle => FlowEnd::Idle,
            Eviction::Capacity => FlowEnd::Capacity,
            Eviction::Reused => FlowEnd::Reused,
            Eviction::Closed | Eviction::Finish => FlowEnd::Open,
        }
    };
    shared.flows.push(record_of(&f, end, kernel, shared));
}

/// How a capture file is listed among the sources once read.
pub(crate) fn file_source_info(
    path: &Path,
    summary: &file::FileSummary,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    bpf: Option<SourceFilter>,
) -> SourceInfo {
    let mut links: Vec<u32> = summary.interfaces.iter().map(|l| l.0).collect();
    links.dedup();
    // A link type we do not read is said where the file is listed, not only counted.
    let unsupported: Vec<String> = summary
        .interfaces
        .iter()
        .filter(|l| !crate::wire::link::supported(**l))
        .map(|l| l.0.to_string())
        .collect();
    let mut warning = summary.truncated.clone();
    if !unsupported.is_empty() {
        let w = format!(
            "link type {} is not one wirelens decodes (Ethernet 1, Linux cooked 113/276, loopback 0/108, raw IP 101/12/14/228/229): its packets are counted in decode_error_link and not dissected",
            unsupported.join(", ")
        );
        warning = Some(warning.map_or(w.clone(), |t| format!("{t}; {w}")));
    }
    SourceInfo {
        kind: summary.format.into(),
        name: path.display().to_string(),
        packets: summary.packets,
        bytes: summary.bytes,
        first_ts: first,
        last_ts: last,
        warning,
        link_types: links,
        bpf,
    }
}

/// The record of a flow: when it leaves the table, or as it is now (live listings).
fn record_of(f: &Flow<Conn>, end: FlowEnd, kernel: Option<KernelTcp>, shared: &Shared) -> FlowRecord {
    FlowRecord {
        id: f.meta.id,
        transport: if f.meta.key.proto == PROTO_TCP {
            Transport::Tcp
        } else {
            Transport::Udp
        },
        client: f.meta.client,
        server: f.meta.server,
        roles: f.meta.roles,
        first_seen: f.meta.first_seen,
        last_seen: f.meta.last_seen,
        end,
        metrics: f.state.analysis.metrics,
        peers: shared.identities.peers(f.meta.client, f.meta.server, f.meta.first_seen),
        kernel: kernel.map(Box::new),
    }
}

/// Reads files into a fresh engine and returns what it shares (used by `call` and tests).
pub fn load_pcaps(paths: &[&Path], limits: Limits) -> Result<Shared, file::FileError> {
    let shared = Shared::with_limits(&limits);
    let mut engine = Engine::new(limits, shared.clone());
    for p in paths {
        engine.read_pcap(p)?;
    }
    Ok(shared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Order;
    use crate::synth::conversation::Conversation;
    use std::ops::ControlFlow;
    use std::sync::mpsc::channel;
    use std::time::Duration;

    fn packet(ts: Timestamp, data: &[u8]) -> Packet<'_> {
        Packet {
            ts,
            link: crate::synth::conversation::LINK,
            data,
            orig_len: data.len() as u32,
            interface: 0,
        }
    }

    /// A query reading the store (a scan holding its read lock) does not stall the capture: the
    /// engine keeps dissecting, its entries wait, and they are all stored once the query ends.
    #[test]
    fn a_long_query_does_not_stall_the_capture() {
        let shared = Shared::new(64 << 20);
        let mut c = Conversation::new(
            "10.0.0.1:40000".parse().unwrap(),
            "10.0.0.2:80".parse().unwrap(),
            Timestamp::from_secs_nanos(1_700_000_000, 0),
            1_000,
            7_000,
            90_000,
        );
        c.handshake();
        let n = 3 * STORE_BATCH;
        for i in 0..n {
            c.client_send(format!("GET /{i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(), 100);
            c.server_send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 1_000);
        }
        c.close();
        let packets = c.packets();
        // One entry in the store, so that the query's visitor runs and holds the lock.
        let (first, rest) = packets.split_at(packets.len() / 8);
        let mut engine = Engine::new(Limits::default(), shared.clone());
        for p in first {
            engine.process(&packet(p.ts, &p.data));
        }
        engine.store_entries(true);
        let stored_before = shared.store.len();
        assert!(stored_before > 0);
        let (holding_tx, holding_rx) = channel();
        let (release_tx, release_rx) = channel::<()>();
        let store = shared.store.clone();
        let query = std::thread::spawn(move || {
            store.scan(Order::Asc, None, &mut |_| {
                holding_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                ControlFlow::Break(())
            });
        });
        holding_rx.recv().unwrap();
        let rest: Vec<(Timestamp, Vec<u8>)> = rest.iter().map(|p| (p.ts, p.data.clone())).collect();
        let (done_tx, done_rx) = channel();
        let capture = std::thread::spawn(move || {
            for (ts, data) in &rest {
                engine.process(&packet(*ts, data));
            }
            done_tx.send(engine.ready.len()).unwrap();
            engine
        });
        // Without the wait-free hand-off the engine blocks on the store's lock for as long as
        // the query runs, and never gets here.
        let waiting = done_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the capture stalled behind a query");
        assert!(waiting >= STORE_BATCH, "{waiting} entries waited");
        assert_eq!(shared.store.len(), stored_before);
        release_tx.send(()).unwrap();
        query.join().unwrap();
        let mut engine = capture.join().unwrap();
        // What capture_status shows: the store was found busy, the capture never waited, and
        // the entries held back are counted until they go in.
        engine.publish();
        let s = shared.stats.lock().clone();
        assert!(
            s.store_busy > 0 && s.store_waits == 0,
            "{} {}",
            s.store_busy,
            s.store_waits
        );
        assert_eq!(s.entries_waiting, waiting as u64);
        engine.finish();
        assert_eq!(shared.store.len(), n);
        assert!(engine.ready.is_empty());
        assert_eq!(shared.stats.lock().entries_waiting, 0);
    }
}
