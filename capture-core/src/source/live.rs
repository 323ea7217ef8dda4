//! Live capture: one thread reads the AF_PACKET rings of the chosen interfaces and the eBPF
//! probes' ring buffers, and runs both through an engine whose entries and flows land in the
//! shared store while capture goes on. Every 100 ms it sweeps idle flows, stores finished entries
//! and publishes counters (the kernel's drops included), so tools see traffic about a tenth of a
//! second after it ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::afpacket::{AfPacket, CaptureError, RingConfig};
use crate::engine::{Engine, Shared};
use crate::limits::Limits;
use crate::stats::SourceInfo;
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
}

/// A running capture; dropping it does not stop it (call [`Live::stop`]).
pub struct Live {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
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
        let mut rings = Vec::new();
        for i in &cfg.interfaces {
            rings.push(AfPacket::open(i, cfg.ring)?);
        }
        Ok(Opened {
            rings,
            probes: cfg.probes.clone(),
        })
    }

    /// Stops capturing, stores what is pending, detaches the probes and unmaps the rings.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Interfaces opened, not yet read.
pub struct Opened {
    rings: Vec<AfPacket>,
    probes: Option<ebpf_probes::Config>,
}

impl Opened {
    /// Attaches the eBPF probes as far as the host allows (what is not attached, and why, is in
    /// `shared.probes`), then captures in the background into `shared`.
    pub fn start(self, limits: Limits, shared: Shared) -> Result<Live, CaptureError> {
        let Opened { rings, probes: wanted } = self;
        let probes = wanted.as_ref().and_then(|p| {
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
            for r in &rings {
                sources.push(SourceInfo {
                    kind: "interface".into(),
                    name: r.interface.clone(),
                    link_types: vec![1],
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
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("wirelens-capture".into())
            .spawn(move || run(limits, shared, rings, probes, first_source, &flag))
            .map_err(|e| CaptureError::Io {
                what: "starting the capture thread",
                source: e,
            })?;
        Ok(Live {
            stop,
            thread: Some(thread),
        })
    }
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
    limits: Limits,
    shared: Shared,
    mut rings: Vec<AfPacket>,
    mut probes: Option<ebpf_probes::Probes>,
    first_source: usize,
    stop: &AtomicBool,
) {
    let mut engine = Engine::new(limits, shared.clone());
    let mut per_source: Vec<(u64, u64, Option<Timestamp>, Option<Timestamp>)> = vec![(0, 0, None, None); rings.len()];
    let mut last_tick = Instant::now();
    let clock = Clock::new();
    while !stop.load(Ordering::Relaxed) {
        let mut got = 0;
        for (i, r) in rings.iter_mut().enumerate() {
            // Wait on the first ring only when nothing came in a whole round.
            let wait = if i == 0 && got == 0 { TICK / 2 } else { Duration::ZERO };
            let s = &mut per_source[i];
            match r.read(wait, &mut |p| {
                s.0 += 1;
                s.1 += p.data.len() as u64;
                s.2.get_or_insert(p.ts);
                s.3 = Some(p.ts);
                engine.process(p);
            }) {
                Ok(n) => got += n,
                Err(e) => {
                    tracing::error!(interface = %r.interface, "capture failed: {e}");
                    let mut sources = shared.sources.lock();
                    if let Some(src) = sources.get_mut(first_source + i) {
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
            let mut sources = shared.sources.lock();
            for (i, s) in per_source.iter().enumerate() {
                if let Some(src) = sources.get_mut(first_source + i) {
                    (src.packets, src.bytes, src.first_ts, src.last_ts) = *s;
                    src.warning = (rings[i].kernel_drops > 0).then(|| {
                        format!(
                            "the kernel dropped {} frames (the ring was full)",
                            rings[i].kernel_drops
                        )
                    });
                }
            }
        }
    }
    engine.finish();
    engine.publish();
    // Detach the probes before the rings go (both are released when dropped here).
    drop(probes);
    drop(rings);
}
