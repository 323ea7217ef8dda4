//! What the tools read: the engine's shared store and counters, filled from the sources given on
//! the command line before serving.

use std::path::PathBuf;

use anyhow::Context;
use capture_core::engine::{Engine, Shared};
use capture_core::limits::Limits;
use capture_core::source::demo;
use capture_core::time::Timestamp;

/// The demo is deterministic: the same seed always gives the same traffic.
pub const DEMO_SEED: u64 = 7;

/// Sources and caps from the command line.
#[derive(Debug, Clone, Default)]
pub struct SourceArgs {
    pub pcaps: Vec<PathBuf>,
    pub demo: bool,
    pub limits: Limits,
    /// FileDescriptorSets (`--proto-descriptor`) for named decoding of gRPC messages.
    pub proto_descriptors: Vec<PathBuf>,
}

/// Shared, read-mostly state behind every tool.
pub struct AppState {
    pub shared: Shared,
    pub limits: Limits,
    /// The message types of `--proto-descriptor`; `None` without one.
    pub protos: Option<prost_reflect::DescriptorPool>,
}

impl AppState {
    /// Reads every source to the end (files in order, then the demo).
    pub fn load(args: &SourceArgs) -> anyhow::Result<AppState> {
        let shared = Shared::with_limits(&args.limits);
        let mut engine = Engine::new(args.limits.clone(), shared.clone());
        for p in &args.pcaps {
            let info = engine
                .read_pcap(p)
                .with_context(|| format!("reading {}", p.display()))?;
            tracing::info!(file = %p.display(), packets = info.packets, "capture file read");
            if let Some(w) = &info.warning {
                tracing::warn!(file = %p.display(), warning = %w, "capture file is incomplete");
            }
        }
        if args.demo {
            let scenario = demo::demo_packets(DEMO_SEED);
            let packets: Vec<(Timestamp, Vec<u8>)> = scenario.packets.into_iter().map(|p| (p.ts, p.data)).collect();
            let info = engine.replay("demo", scenario.link, &packets);
            tracing::info!(packets = info.packets, "demo scenario loaded");
        }
        let protos = if args.proto_descriptors.is_empty() {
            None
        } else {
            Some(crate::proto::load_pool(&args.proto_descriptors)?)
        };
        Ok(AppState {
            shared,
            limits: args.limits.clone(),
            protos,
        })
    }
}
