//! Live capture: a thread reads the AF_PACKET rings of the chosen interfaces and the eBPF
//! probes' ring buffers, and runs both through an engine whose entries and flows land in the
//! shared store while capture goes on. Every 100 ms it sweeps idle flows, stores finished entries
//! and publishes counters (the kernel's drops included), so tools see traffic about a tenth of a
//! second after it ends.
//!
//! With `threads` > 1, every interface gets one ring per thread, joined in a kernel fanout group
//! that sends both directions of a connection to the same ring (a symmetric flow hash, IP
//! fragments reassembled first). Each thread runs its own engine over the shared store; flow ids
//! are spaced apart, counters summed, and the eBPF facts (read by thread 0) shared.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::afpacket::{AfPacket, CaptureError, RingConfig};
use super::bpf::Filter;
use crate::engine::{Engine, Shared};
use crate::limits::Limits;
use crate::stats::{SourceFilter, SourceInfo};
use crate::time::Timestamp;

/// How often finished entries are stored and counters published.
pub const TICK: Duration = Duration::from_millis(100);

/// What to capture.
#[derive(Debug, Clone, Default)]
pub struct LiveConfig {
    /// Interfaces for AF_PACKET (`any` for all); may be empty when only eBPF is wanted.
    pub interfaces: Vec<String>,
    pub ring: RingConfig,
    /// The eBPF probes to attach (`None`: none).
    pub probes: Option<ebpf_probes::Config>,
    /// Capture threads (1 when 0): more spread the interfaces' traffic over that many engines.
    pub threads: usize,
    /// The capture filter (`--bpf`), attached in the kernel to every ring.
    pub filter: Option<Filter>,
    /// The raw capture ring (`--raw-ring`): every captured packet is offered to it.
    pub raw_ring: Option<Arc<crate::forensics::ring::Ring>>,
}

/// A running capture; dropping it does not stop it (call [`Live::stop`]).
pub struct Live {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Live {
    /// Opens every interface first (an error names the interface and the missing capability),
    /// attaches the eBPF probes as far as the host allows (what is not attached, and why, is in
    /// `shared.probes`), then captures in the background into `shared`.
    pub fn start(limits: Limits, shared: Shared, cfg: &LiveConfig) -> Result<Live, CaptureError> {
        Live::open(cfg)?.start(limits, shared)
    }

    /// Opens every interface, so that a missing capability or interface is an error at once;
    /// [`Opened::start`] then captures. Frames arriving in between wait in the rings.
    pub fn open(cfg: &LiveConfig) -> Result<Opened, CaptureError> {
        let threads = cfg.threads.max(1);
        let mut rings: Vec<Vec<AfPacket>> = (0..threads).map(|_| Vec::new()).collect();
        for (n, i) in cfg.interfaces.iter().enumerate() {
            // One group per interface, unique to this process.
            let group = ((std::process::id() as u16) ^ 0x5a00).wrapping_add(n as u16);
            for per_thread in rings.iter_mut() {
                let r = AfPacket::open(i, cfg.ring, cfg.filter.as_ref().map(Filter::program))?;
                if threads > 1 {
                    r.join_fanout(group)?;
                }
                per_thread.push(r);
            }
        }
        Ok(Opened {
            rings,
            interfaces: cfg.interfaces.clone(),
            probes: cfg.probes.clone(),
            filter: cfg.filter.as_ref().map(|f| f.expression().to_string()),
            keys: None,
            raw_ring: cfg.raw_ring.clone(),
        })
    }

    /// Stops capturing, stores what is pending, detaches the probes and unmaps the rings.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Interfaces opened, not yet read.
pub struct Opened {
    /// TLS secrets the capture's engines decrypt with (`--keylog`), followed as they grow.
    pub keys: Option<Arc<crate::dissect::tls::keylog::SharedKeys>>,
    /// Per thread, one ring per interface.
    rings: Vec<Vec<AfPacket>>,
    interfaces: Vec<String>,
    probes: Option<ebpf_probes::Config>,
    /// The capture filter's expression, shown with every interface.
    filter: Option<String>,
    raw_ring: Option<Arc<crate::forensics::ring::Ring>>,
}

/// Per thread and interface: packets, bytes, first and last timestamps, kernel drops.
type SourceCounters = Arc<parking_lot::Mutex<Vec<Vec<Counter>>>>;

#[derive(Debug, Clone, Copy, Default)]
struct Counter {
    packets: u64,
    bytes: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    drops: u64,
}

impl Opened {
    /// Attaches the eBPF probes as far as the host allows (what is not attached, and why, is in
    /// `shared.probes`), then captures in the background into `shared`.
    pub fn start(self, limits: Limits, shared: Shared) -> Result<Live, CaptureError> {
        let Opened {
            rings,
            interfaces,
            probes: wanted,
            filter,
            keys,
            raw_ring,
        } = self;
        let mut probes = wanted.as_ref().and_then(|p| {
            let (probes, report) = ebpf_probes::Probes::start(p);
            if let Some(why) = &report.reason {
                tracing::warn!("eBPF: {why}");
            }
            *shared.probes.lock() = Some(report);
            probes
        });
        let first_source = {
            let mut sources = shared.sources.lock();
            let at = sources.len();
            for name in &interfaces {
                sources.push(SourceInfo {
                    kind: "interface".into(),
                    name: name.clone(),
                    link_types: vec![1],
                    bpf: filter.as_ref().map(|f| SourceFilter {
                        expression: f.clone(),
                        in_kernel: true,
                        filtered_out: None,
                    }),
                    ..SourceInfo::default()
                });
            }
            if wanted.is_some() {
                let report = shared.probes.lock().clone().unwrap_or_default();
                sources.push(SourceInfo {
                    kind: "ebpf".into(),
                    name: "kernel probes".into(),
                    warning: report.reason.clone(),
                    ..SourceInfo::default()
                });
            }
            at
        };
        let n = rings.len();
        let group = (n > 1).then(|| crate::engine::EngineGroup::new(n, &limits));
        let counters: SourceCounters =
            Arc::new(parking_lot::Mutex::new(vec![
                vec![Counter::default(); interfaces.len()];
                n
            ]));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (t, rings) in rings.into_iter().enumerate() {
            let mut engine = Engine::new(limits.clone(), shared.clone());
            if let Some(k) = &keys {
                engine.follow_keys(k.clone());
            }
            if let Some(g) = &group {
                engine.join(g, t);
            }
            let ctx = Thread {
                index: t,
                shared: shared.clone(),
                first_source,
                counters: counters.clone(),
                raw_ring: raw_ring.clone(),
            };
            let probes = if t == 0 { probes.take() } else { None };
            let flag = stop.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("wirelens-capture-{t}"))
                .spawn(move || run(engine, rings, probes, ctx, &flag))
                .map_err(|e| CaptureError::Io {
                    what: "starting a capture thread",
                    source: e,
                });
            match spawned {
                Ok(h) => threads.push(h),
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    for h in threads {
                        let _ = h.join();
                    }
                    return Err(e);
                }
            }
        }
        Ok(Live { stop, threads })
    }
}

/// What a capture thread needs besides its engine and rings.
struct Thread {
    index: usize,
    shared: Shared,
    first_source: usize,
    counters: SourceCounters,
    raw_ring: Option<Arc<crate::forensics::ring::Ring>>,
}

/// Wall-clock time of a CLOCK_MONOTONIC stamp from the probes.
struct Clock {
    wall_minus_mono: i128,
}

impl Clock {
    fn new() -> Clock {
        let mono = i128::from(ebpf_probes::monotonic_ns());
        let wall = i128::from(Timestamp::now().0);
        Clock {
            wall_minus_mono: wall - mono,
        }
    }

    fn wall(&self, mono_ns: u64) -> Timestamp {
        Timestamp(u64::try_from(i128::from(mono_ns) + self.wall_minus_mono).unwrap_or(0))
    }
}

fn run(
    mut engine: Engine,
    mut rings: Vec<AfPacket>,
    mut probes: Option<ebpf_probes::Probes>,
    ctx: Thread,
    stop: &AtomicBool,
) {
    let shared = ctx.shared.clone();
    let mut mine: Vec<Counter> = vec![Counter::default(); rings.len()];
    let mut last_tick = Instant::now();
    let clock = Clock::new();
    while !stop.load(Ordering::Relaxed) {
        let mut got = 0;
        for (i, r) in rings.iter_mut().enumerate() {
            // Wait on the first ring only when nothing came in a whole round.
            let wait = if i == 0 && got == 0 { TICK / 2 } else { Duration::ZERO };
            let c = &mut mine[i];
            match r.read(wait, &mut |p| {
                c.packets += 1;
                c.bytes += p.data.len() as u64;
                c.first.get_or_insert(p.ts);
                c.last = Some(p.ts);
                if let Some(ring) = &ctx.raw_ring {
                    ring.offer(p);
                }
                engine.process(p);
            }) {
                Ok(n) => got += n,
                Err(e) => {
                    tracing::error!(interface = %r.interface, "capture failed: {e}");
                    let mut sources = shared.sources.lock();
                    if let Some(src) = sources.get_mut(ctx.first_source + i) {
                        src.warning = Some(format!("capture stopped: {e}"));
                    }
                    drop(sources);
                    return;
                }
            }
        }
        if let Some(p) = &mut probes {
            // Without rings, the probes' ring buffers are what we wait on.
            let wait = if rings.is_empty() { TICK / 2 } else { Duration::ZERO };
            p.poll(wait, &mut |ev| {
                let mono = match &ev {
                    ebpf_probes::Event::Tcp(t) => t.mono_ns,
                    ebpf_probes::Event::Tls(t) => t.mono_ns,
                };
                engine.kernel_event(&ev, clock.wall(mono));
            });
        } else if rings.is_empty() {
            std::thread::sleep(TICK / 2);
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            let (packets, drops) = rings
                .iter()
                .fold((0, 0), |(p, d), r| (p + r.kernel_packets, d + r.kernel_drops));
            engine.set_kernel_counters(packets, drops);
            if let Some(p) = &probes {
                engine.set_ebpf_counters(p.ring_full_drops(), p.malformed);
            }
            engine.tick(Timestamp::now());
            for (c, r) in mine.iter_mut().zip(&rings) {
                c.drops = r.kernel_drops;
            }
            publish_sources(&ctx, &mine);
        }
    }
    engine.finish();
    engine.publish();
    // Detach the probes before the rings go (both are released when dropped here).
    drop(probes);
    drop(rings);
}

/// Sums every thread's counters per interface into the interface's source.
fn publish_sources(ctx: &Thread, mine: &[Counter]) {
    let mut all = ctx.counters.lock();
    if let Some(slot) = all.get_mut(ctx.index) {
        slot.copy_from_slice(mine);
    }
    let mut sources = ctx.shared.sources.lock();
    for i in 0..mine.len() {
        let mut sum = Counter::default();
        for t in all.iter() {
            let c = t[i];
            sum.packets += c.packets;
            sum.bytes += c.bytes;
            sum.first = match (sum.first, c.first) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            sum.last = sum.last.max(c.last);
            sum.drops += c.drops;
        }
        if let Some(src) = sources.get_mut(ctx.first_source + i) {
            (src.packets, src.bytes, src.first_ts, src.last_ts) = (sum.packets, sum.bytes, sum.first, sum.last);
            src.warning =
                (sum.drops > 0).then(|| format!("the kernel dropped {} frames (the ring was full)", sum.drops));
        }
    }
}
