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

/// How often a live capture's key logs are checked for growth.
const KEYLOG_POLL: std::time::Duration = std::time::Duration::from_millis(500);

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
    /// eBPF probes to attach with live capture (`None`: none).
    pub probes: Option<capture_core::ebpf_probes::Config>,
    /// Live capture threads (kernel fanout over that many rings per interface).
    pub capture_threads: usize,
    /// The capture filter (`--bpf`): attached in the kernel for live capture, run by the engine
    /// before decoding for files and the demo.
    pub bpf: Option<Arc<Filter>>,
    /// NSS key logs (`--keylog`): secrets to decrypt TLS with.
    pub keylogs: Vec<PathBuf>,
    /// What is redacted (`--no-redact`, `--redact-header`, …); the defaults when not given.
    pub redaction: capture_core::redact::Redaction,
    /// The raw capture ring (`--raw-ring DIR --raw-ring-size SIZE`), live capture only.
    pub raw_ring: Option<capture_core::forensics::ring::RingConfig>,
    /// Where exports go (`--export-dir`; default `$TMPDIR/wirelens`).
    pub export_dir: Option<PathBuf>,
    /// Cluster mode: the agents that answer the tools instead of local sources.
    pub hub: Option<Arc<crate::cluster::hub::Hub>>,
    /// `--capture-namespace`, `--capture-pod-selector`: which pods' entries are stored.
    pub capture_scope: capture_core::enrich::scope::CaptureScope,
}

/// What the forensics tools need: where files go, the raw ring, the snapshots, and the sources
/// to read packets again from.
pub struct Forensics {
    pub export_dir: PathBuf,
    pub ring: Option<Arc<capture_core::forensics::ring::Ring>>,
    pub snapshots: capture_core::forensics::snapshot::SnapshotStore,
    /// Capture files, the demo and the capture filter: re-read for exports without a ring.
    pub pcaps: Vec<PathBuf>,
    pub demo: bool,
    pub bpf: Option<Arc<Filter>>,
    pub keylogs: Vec<PathBuf>,
    /// A live capture (without a ring, no packets are kept).
    pub live: bool,
    /// `scheme://host:port` of the HTTP transport, for download URLs.
    pub download_base: std::sync::OnceLock<String>,
}

impl Forensics {
    fn new(args: &SourceArgs, ring: Option<Arc<capture_core::forensics::ring::Ring>>) -> Forensics {
        let export_dir = args
            .export_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("wirelens"));
        let snapshots = match &ring {
            Some(r) => r.dir().join("snapshots"),
            None => export_dir.join("snapshots"),
        };
        Forensics {
            export_dir,
            ring,
            snapshots: capture_core::forensics::snapshot::SnapshotStore::new(snapshots),
            pcaps: args.pcaps.clone(),
            demo: args.demo,
            bpf: args.bpf.clone(),
            keylogs: args.keylogs.clone(),
            live: !args.interfaces.is_empty() || args.probes.is_some(),
            download_base: std::sync::OnceLock::new(),
        }
    }
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
    pub live: parking_lot::Mutex<Option<LiveCapture>>,
    /// Whether the sources are read yet (tools wait for it).
    pub loading: crate::loading::Loading,
    /// Raw packets, snapshots and exports.
    pub forensics: Forensics,
    /// Cluster mode: tools are answered by these agents (`serve --agents`).
    pub hub: Option<Arc<crate::cluster::hub::Hub>>,
}

/// What [`AppState::prepare`] leaves for [`AppState::fill`]: the opened interfaces.
pub struct Pending {
    live: Option<capture_core::source::live::Opened>,
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

/// Redaction is part of what a run shows: said at start, loudly when it is off.
fn log_redaction(r: &capture_core::redact::Redaction) {
    if !r.enabled {
        tracing::warn!("redaction is off (--no-redact): credentials in headers, query parameters and bodies are shown");
    } else if *r != capture_core::redact::Redaction::default() {
        tracing::info!(headers = ?r.headers(), fields = ?r.fields(), kept_fields = ?r.keep_fields(), "redaction rules");
    }
}

impl AppState {
    /// Reads every source to the end (files in order, then the demo).
    pub fn load(args: &SourceArgs) -> anyhow::Result<AppState> {
        let (state, pending) = AppState::prepare(args)?;
        state.fill(args, pending)?;
        Ok(state)
    }

    /// Everything that can fail at once, before serving: the arguments, the files (present and
    /// of a known format), identity dumps, protobuf descriptors and the interfaces (opened). The
    /// state is empty and loading until [`AppState::fill`] has read the sources.
    pub fn prepare(args: &SourceArgs) -> anyhow::Result<(AppState, Pending)> {
        let mut shared = Shared::with_limits(&args.limits);
        shared.redaction = Arc::new(args.redaction.clone());
        log_redaction(&args.redaction);
        anyhow::ensure!(
            args.capture_scope.is_all() || args.kube.is_some() || !args.identities.is_empty() || args.demo,
            "--capture-namespace and --capture-pod-selector need Kubernetes identities (--kubernetes, --kubeconfig or --identities) to know the pods"
        );
        shared.capture_scope = Arc::new(args.capture_scope.clone());
        anyhow::ensure!(
            args.kube.is_none() || (args.identities.is_empty() && !args.demo),
            "--kubeconfig/--kubernetes replace --identities and the demo's identities: give one of them"
        );
        let live_wanted = !args.interfaces.is_empty() || args.probes.is_some();
        anyhow::ensure!(
            !live_wanted || (args.pcaps.is_empty() && !args.demo),
            "--interface, --tls-pid and --tls-cgroup capture live: they cannot be combined with --pcap or --demo"
        );
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
        let mut total = 0;
        for p in &args.pcaps {
            total += capture_core::source::file::check_file(p).with_context(|| format!("reading {}", p.display()))?;
        }
        shared
            .import
            .bytes_total
            .store(total, std::sync::atomic::Ordering::Relaxed);
        let protos = if args.proto_descriptors.is_empty() {
            None
        } else {
            Some(crate::proto::load_pool(&args.proto_descriptors)?)
        };
        anyhow::ensure!(
            args.raw_ring.is_none() || !args.interfaces.is_empty(),
            "--raw-ring keeps the packets of a live capture: give --interface too (capture files are kept already)"
        );
        let ring = match &args.raw_ring {
            Some(cfg) => Some(
                capture_core::forensics::ring::Ring::open(cfg.clone())
                    .with_context(|| format!("opening the raw ring {}", cfg.dir.display()))?,
            ),
            None => None,
        };
        let live = if live_wanted {
            let cfg = capture_core::source::live::LiveConfig {
                interfaces: args.interfaces.clone(),
                ring: args.ring.unwrap_or_default(),
                probes: args.probes.clone(),
                threads: args.capture_threads,
                filter: args.bpf.as_deref().cloned(),
                raw_ring: ring.clone(),
            };
            Some(capture_core::source::live::Live::open(&cfg).context("starting live capture")?)
        } else {
            None
        };
        let state = AppState {
            shared,
            limits: args.limits.clone(),
            protos,
            metrics: crate::metrics::Metrics::default(),
            live: parking_lot::Mutex::new(None),
            loading: crate::loading::Loading::new(),
            forensics: Forensics::new(args, ring),
            hub: args.hub.clone(),
        };
        Ok((state, Pending { live }))
    }

    /// Reads the sources into the state: waits for the Kubernetes listing, reads the files and
    /// the demo, starts live capture. Marks the state ready, or failed with the reason (tools then
    /// answer with it).
    pub fn fill(&self, args: &SourceArgs, pending: Pending) -> anyhow::Result<()> {
        let r = self.read_sources(args, pending);
        self.loading
            .finish(r.as_ref().map(|_| ()).map_err(|e| format!("{e:#}")));
        r
    }

    fn read_sources(&self, args: &SourceArgs, pending: Pending) -> anyhow::Result<()> {
        let shared = &self.shared;
        if let Some(k) = &args.kube {
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
        use capture_core::dissect::tls::keylog::{KeyLogFiles, SharedKeys};
        let (keys, files) = if args.keylogs.is_empty() {
            (None, None)
        } else {
            let (files, keys, warnings) =
                KeyLogFiles::read(&args.keylogs).context("reading the key logs (--keylog)")?;
            // A warning names the file and line numbers, never a line's text.
            for w in warnings {
                tracing::warn!(warning = %w, "key log lines skipped");
            }
            tracing::info!(sessions = keys.len(), "key logs read");
            (Some(Arc::new(keys)), Some(files))
        };
        engine.set_keylog(keys.clone());
        // With several threads the files' flows are shared among as many engines.
        let threads = args.capture_threads.max(1);
        let mut engines = Vec::new();
        if threads > 1 && !args.pcaps.is_empty() {
            let group = capture_core::engine::EngineGroup::new(threads, &args.limits);
            engines.push(std::mem::replace(
                &mut engine,
                Engine::new(args.limits.clone(), shared.clone()),
            ));
            engines.extend((1..threads).map(|_| {
                let mut e = Engine::new(args.limits.clone(), shared.clone());
                e.set_filter(args.bpf.clone());
                e.set_keylog(keys.clone());
                e
            }));
            for (i, e) in engines.iter_mut().enumerate() {
                e.join(&group, i);
            }
        }
        for p in &args.pcaps {
            let read = if engines.is_empty() {
                engine.read_pcap(p)
            } else {
                capture_core::source::sharded::read_file(&mut engines, p, args.limits.max_record_bytes)
            };
            let info = read.with_context(|| format!("reading {}", p.display()))?;
            tracing::info!(file = %p.display(), packets = info.packets, "capture file read");
            if let Some(w) = &info.warning {
                tracing::warn!(file = %p.display(), warning = %w, "capture file is incomplete");
            }
        }
        if let Some(first) = engines.into_iter().next() {
            // Engine 0 of the group goes on with the other sources (its counters stay merged).
            engine = first;
        }
        if args.demo {
            let scenario = demo::demo_packets(DEMO_SEED);
            let packets: Vec<(Timestamp, Vec<u8>)> = scenario.packets.into_iter().map(|p| (p.ts, p.data)).collect();
            let info = engine.replay("demo", scenario.link, &packets);
            tracing::info!(packets = info.packets, "demo scenario loaded");
        }
        if let Some(mut opened) = pending.live {
            if let Some(mut files) = files {
                // Clients append to their key log as they connect: it is read again whenever
                // it changes size, and the capture's engines take the new keys before their
                // next packet.
                let shared_keys = Arc::new(SharedKeys::new(keys));
                opened.keys = Some(shared_keys.clone());
                std::thread::Builder::new()
                    .name("keylog-watch".into())
                    .spawn(move || {
                        loop {
                            std::thread::sleep(KEYLOG_POLL);
                            if let Some(k) = files.reread_if_changed() {
                                tracing::info!(sessions = k.len(), "key logs read again");
                                shared_keys.set(Arc::new(k));
                            }
                        }
                    })
                    .context("starting the key log watcher")?;
            }
            let l = opened
                .start(args.limits.clone(), shared.clone())
                .context("starting live capture")?;
            tracing::info!(interfaces = ?args.interfaces, "live capture started");
            *self.live.lock() = Some(LiveCapture(Some(l)));
        }
        Ok(())
    }

    /// A state over sources already read into `shared` (tests, embedders).
    pub fn from_shared(shared: Shared, limits: Limits) -> AppState {
        let loading = crate::loading::Loading::new();
        loading.finish(Ok(()));
        AppState {
            shared,
            limits,
            protos: None,
            metrics: crate::metrics::Metrics::default(),
            live: parking_lot::Mutex::new(None),
            loading,
            forensics: Forensics::new(&SourceArgs::default(), None),
            hub: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn empty_for_tests(metrics: crate::metrics::Metrics) -> AppState {
        let limits = Limits::default();
        AppState {
            shared: Shared::with_limits(&limits),
            limits,
            protos: None,
            metrics,
            live: parking_lot::Mutex::new(None),
            loading: {
                let l = crate::loading::Loading::new();
                l.finish(Ok(()));
                l
            },
            forensics: Forensics::new(&SourceArgs::default(), None),
            hub: None,
        }
    }
}
