//! What the tools read: the engine's shared store and counters, filled from the sources given on
//! the command line before serving.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use capture_core::engine::{Engine, Shared};
use capture_core::limits::Limits;
use capture_core::source::bpf::Filter;
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
    /// `kubectl get … -o json` dumps (`--identities`): Kubernetes names for the addresses.
    pub identities: Vec<PathBuf>,
    /// Watch a cluster's API for identities (`--kubeconfig`, `--context`, `--kubernetes`).
    pub kube: Option<capture_core::enrich::kube::KubeOptions>,
    /// How long the first listing may take.
    pub kube_sync_timeout: std::time::Duration,
    /// Interfaces to capture live (`--interface`, `any` for all).
    pub interfaces: Vec<String>,
    /// Ring geometry of live capture.
    pub ring: Option<capture_core::source::afpacket::RingConfig>,
    /// The capture filter (`--bpf`): attached in the kernel for live capture, run by the engine
    /// before decoding for files and the demo.
    pub bpf: Option<Arc<Filter>>,
}

/// Shared, read-mostly state behind every tool.
pub struct AppState {
    pub shared: Shared,
    pub limits: Limits,
    /// The message types of `--proto-descriptor`; `None` without one.
    pub protos: Option<prost_reflect::DescriptorPool>,
    /// Tool calls and their latency, for `/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// The live capture, when `--interface` was given (stopped when the state is dropped).
    pub live: Option<LiveCapture>,
}

/// A running live capture, stopped (pending entries stored, rings unmapped) on drop.
pub struct LiveCapture(Option<capture_core::source::live::Live>);

impl Drop for LiveCapture {
    fn drop(&mut self) {
        if let Some(l) = self.0.take() {
            l.stop();
        }
    }
}

impl AppState {
    /// Reads every source to the end (files in order, then the demo).
    pub fn load(args: &SourceArgs) -> anyhow::Result<AppState> {
        let shared = Shared::with_limits(&args.limits);
        // Identities first: entries and flows get theirs as they are stored.
        let mut objects = capture_core::enrich::Objects::default();
        let mut sources = Vec::new();
        for p in &args.identities {
            let bytes = std::fs::read(p).with_context(|| format!("reading the identities file {}", p.display()))?;
            let o = capture_core::enrich::dump::parse(&bytes)
                .with_context(|| format!("reading the identities file {}", p.display()))?;
            tracing::info!(file = %p.display(), pods = o.pods.len(), services = o.services.len(), "identities loaded");
            objects.extend(o);
            sources.push(format!("file:{}", p.display()));
        }
        if args.demo {
            objects.extend(capture_core::source::demo_identities::demo_objects());
            sources.push("demo".to_string());
        }
        if !sources.is_empty() {
            shared.identities.set(objects, &sources.join(","), None);
        }
        if let Some(k) = &args.kube {
            anyhow::ensure!(
                args.identities.is_empty() && !args.demo,
                "--kubeconfig/--kubernetes replace --identities and the demo's identities: give one of them"
            );
            // Watches run on the caller's runtime; the sources are read once every kind is listed.
            let rt = tokio::runtime::Handle::try_current()
                .context("watching Kubernetes needs a tokio runtime (load the sources on its blocking pool)")?;
            let ids = shared.identities.clone();
            let timeout = args.kube_sync_timeout;
            rt.block_on(async move {
                let client = capture_core::enrich::kube::client(k).await?;
                capture_core::enrich::kube::start(ids, client, timeout).await
            })
            .context("watching the Kubernetes API")?;
            let idx = shared.identities.index();
            tracing::info!(
                pods = idx.pods,
                services = idx.services,
                nodes = idx.nodes,
                "Kubernetes identities synced"
            );
        }
        let mut engine = Engine::new(args.limits.clone(), shared.clone());
        engine.set_filter(args.bpf.clone());
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
        let live = if args.interfaces.is_empty() {
            None
        } else {
            anyhow::ensure!(
                args.pcaps.is_empty() && !args.demo,
                "--interface captures live: it cannot be combined with --pcap or --demo"
            );
            let ring = args.ring.unwrap_or_default();
            let l = capture_core::source::live::Live::start(
                args.limits.clone(),
                shared.clone(),
                &args.interfaces,
                ring,
                args.bpf.as_deref(),
            )
            .context("starting live capture")?;
            tracing::info!(interfaces = ?args.interfaces, "live capture started");
            Some(LiveCapture(Some(l)))
        };
        let protos = if args.proto_descriptors.is_empty() {
            None
        } else {
            Some(crate::proto::load_pool(&args.proto_descriptors)?)
        };
        Ok(AppState {
            shared,
            limits: args.limits.clone(),
            protos,
            metrics: crate::metrics::Metrics::default(),
            live,
        })
    }

    #[cfg(test)]
    pub(crate) fn empty_for_tests(metrics: crate::metrics::Metrics) -> AppState {
        let limits = Limits::default();
        AppState {
            shared: Shared::with_limits(&limits),
            limits,
            protos: None,
            metrics,
            live: None,
        }
    }
}
