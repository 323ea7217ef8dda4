//! Live capture: one thread reads the AF_PACKET rings of the chosen interfaces and runs the
//! frames through an engine whose entries and flows land in the shared store while capture
//! goes on. Every 100 ms it sweeps idle flows, stores finished entries and publishes counters
//! (the kernel's drops included), so tools see traffic about a tenth of a second after it ends.

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

/// A running capture; dropping it does not stop it (call [`Live::stop`]).
pub struct Live {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Live {
    /// Opens every interface first (an error names the interface and the missing capability),
    /// with `filter` attached in the kernel, then captures in the background into `shared`.
    pub fn start(
        limits: Limits,
        shared: Shared,
        interfaces: &[String],
        ring: RingConfig,
        filter: Option<&Filter>,
    ) -> Result<Live, CaptureError> {
        let mut rings = Vec::new();
        for i in interfaces {
            rings.push(AfPacket::open(i, ring, filter.map(Filter::program))?);
        }
        let first_source = {
            let mut sources = shared.sources.lock();
            let at = sources.len();
            for r in &rings {
                sources.push(SourceInfo {
                    kind: "interface".into(),
                    name: r.interface.clone(),
                    link_types: vec![1],
                    bpf: filter.map(|f| SourceFilter {
                        expression: f.expression().to_string(),
                        in_kernel: true,
                        filtered_out: None,
                    }),
                    ..SourceInfo::default()
                });
            }
            at
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("wirelens-capture".into())
            .spawn(move || run(limits, shared, rings, first_source, &flag))
            .map_err(|e| CaptureError::Io {
                what: "starting the capture thread",
                source: e,
            })?;
        Ok(Live {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops capturing, stores what is pending and unmaps the rings.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(limits: Limits, shared: Shared, mut rings: Vec<AfPacket>, first_source: usize, stop: &AtomicBool) {
    let mut engine = Engine::new(limits, shared.clone());
    let mut per_source: Vec<(u64, u64, Option<Timestamp>, Option<Timestamp>)> = vec![(0, 0, None, None); rings.len()];
    let mut last_tick = Instant::now();
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
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            let (packets, drops) = rings
                .iter()
                .fold((0, 0), |(p, d), r| (p + r.kernel_packets, d + r.kernel_drops));
            engine.set_kernel_counters(packets, drops);
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
}
