//! `wirelens`: the command line. `mcp` serves MCP on stdio, `call` runs one tool and prints its
//! structured result. Logs go to stderr only: stdout belongs to MCP and to `call`'s JSON.

mod alloc;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use capture_core::limits::{Limits, parse_size};
use capture_core::source::bpf::{BpfError, Filter};
use clap::{Args, Parser, Subcommand};
use mcp_server::state::{AppState, SourceArgs};
use mcp_server::{server, tools};
use rmcp::ServiceExt;

#[derive(Parser)]
#[command(
    name = "wirelens",
    version,
    about = "See the wire: HTTP entries from captured traffic, served over MCP"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP on stdio.
    Mcp {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        hub: HubArgs,
        #[command(flatten)]
        bridge: BridgeArgs,
    },
    /// Serve MCP over Streamable HTTP at `/mcp` (SSE or JSON replies), with `/healthz`, `/readyz`
    /// and Prometheus `/metrics`.
    Serve {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        http: HttpArgs,
        #[command(flatten)]
        hub: HubArgs,
    },
    /// Cluster mode, one per node: capture like `serve` and answer a hub's queries over HTTP/2
    /// with mutual TLS (`wirelens serve --agents …` is the hub).
    Agent {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Run one tool call and print its structured result as JSON.
    Call {
        #[command(flatten)]
        source: Source,
        /// Tool name: list_entries, get_payload, capture_status.
        tool: String,
        /// Tool arguments as a JSON object (default `{}`).
        args: Option<String>,
    },
    /// Print the KFL filter language reference (Markdown), generated from the field registry.
    KflReference,
    /// Print the `--demo` scenario's ground truth (JSON, from the generator's own records), for
    /// tests that check answers against what was put on the wire.
    #[command(hide = true)]
    DemoTruth,
    /// Write a synthetic HTTP/1.1 capture (keep-alive connections, bodies of 100 B–20 KB) for
    /// benchmarks.
    GenerateWorkload {
        /// Output pcap file.
        #[arg(long)]
        out: PathBuf,
        /// Stop once the file reaches this size (e.g. 100MB).
        #[arg(long, default_value = "100MB", value_parser = parse_size)]
        size: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Write a hostile capture for hardening tests: `syn-flood` (COUNT SYN-only connections,
    /// default 1,000,000) or `endless-headers` (COUNT MiB of HTTP header lines without an end,
    /// default 100).
    #[command(hide = true)]
    GenerateAdversarial {
        /// `syn-flood` or `endless-headers`.
        kind: String,
        /// Output pcap file.
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        count: Option<u64>,
    },
}

#[derive(Args, Clone)]
struct Source {
    /// A pcap or pcapng file to read (repeatable).
    #[arg(long = "pcap", value_name = "FILE")]
    pcaps: Vec<PathBuf>,
    /// The built-in demo: a microservice shop (frontend, api-gateway, orders, payments, inventory)
    /// with 4xx/5xx errors, slow calls, a lossy link, a slow receiver, refused connections, a
    /// cross-zone RTT, a Redis cache, a Kafka topic, an AMQP job queue, DNS lookups, a rollout
    /// that changes a response's JSON shape and an undocumented caller from another namespace.
    #[arg(long)]
    demo: bool,
    /// Memory budget of the entry store, e.g. 256MiB, 2GiB.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    store_memory: Option<usize>,
    /// Global memory budget, e.g. 512MiB: the store gets at most half, the flow table a quarter,
    /// the flow records a sixteenth; near the budget the engine sheds load (reassembly buffers,
    /// then the oldest entries, then the least active flows) instead of growing. See
    /// capture_status.memory.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_memory: Option<usize>,
    /// A tool call that scans longer than this many seconds stops with an error saying so, and
    /// the agent narrows its filter (MCP servers only; `call` has no deadline).
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    tool_timeout: u64,
    /// A FileDescriptorSet (`protoc -o FILE --include_imports`, `buf build -o FILE`): gRPC
    /// messages of the services it describes are decoded into named fields (repeatable).
    #[arg(long = "proto-descriptor", value_name = "FILE")]
    proto_descriptors: Vec<PathBuf>,
    /// A `kubectl get pods,svc,nodes,deploy,rs,ds,sts,jobs,cronjobs -A -o json` dump taken in
    /// the cluster the capture comes from: both ends of every entry and flow get their pod,
    /// workload, service, namespace and node (repeatable).
    #[arg(long = "identities", value_name = "FILE")]
    identities: Vec<PathBuf>,
    /// Watch this cluster's API for identities (pods, services, EndpointSlices, nodes, owners)
    /// through this kubeconfig.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Watch the cluster wirelens runs in (in-cluster service account, else KUBECONFIG or
    /// ~/.kube/config). Implied by --kubeconfig and --context.
    #[arg(long)]
    kubernetes: bool,
    /// Capture live on this interface (`any` for every interface of the network namespace;
    /// repeatable). Needs CAP_NET_RAW; only with `mcp` and `serve`.
    #[arg(long = "interface", value_name = "IFACE")]
    interfaces: Vec<String>,
    /// Capture filter in pcap-filter syntax (`tcp port 80`, `host 10.0.0.1 and not port 22`):
    /// attached in the kernel with --interface, run on every packet before decoding with --pcap
    /// and --demo. A bad expression is an error naming its column.
    #[arg(long, value_name = "EXPR", value_parser = parse_bpf)]
    bpf: Option<Arc<Filter>>,
    /// TLS key log in NSS format (SSLKEYLOGFILE; repeatable): TLS 1.2 and 1.3 connections whose
    /// secrets it holds are decrypted and their plaintext dissected like cleartext. Read before
    /// the sources, and again whenever it grows during a live capture.
    #[arg(long = "keylog", value_name = "FILE")]
    keylogs: Vec<PathBuf>,
    /// Show credentials: turn off the redaction of credential headers, query parameters and
    /// body fields (Redis/AMQP/Kafka authentication secrets and TLS keys are never kept). Said
    /// at start and in capture_status.
    #[arg(long)]
    no_redact: bool,
    /// Also redact this header's values (repeatable; `Authorization`, `Cookie`, `Set-Cookie`,
    /// `X-Api-Key` and similar are redacted by default).
    #[arg(long = "redact-header", value_name = "NAME")]
    redact_headers: Vec<String>,
    /// Show this header's values although they are redacted by default (repeatable).
    #[arg(long = "keep-header", value_name = "NAME")]
    keep_headers: Vec<String>,
    /// Also redact query parameters and JSON/form body fields of this name (repeatable;
    /// compared without case, `-`, `_` and `.`; `password`, `token`, `secret`, `api_key`, names
    /// ending in them, and similar are redacted by default).
    #[arg(long = "redact-field", value_name = "NAME")]
    redact_fields: Vec<String>,
    /// Show query parameters and body fields of this name although they are redacted by
    /// default (repeatable; e.g. `--keep-field page_token`).
    #[arg(long = "keep-field", value_name = "NAME")]
    keep_fields: Vec<String>,
    /// Live capture ring: blocks per interface (each --ring-block-size).
    #[arg(long, value_name = "N", default_value_t = 64)]
    ring_blocks: u32,
    /// Live capture ring: block size (a power of two, at least 4KiB).
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    ring_block_size: usize,
    /// Capture threads. Live: with N > 1 every interface gets N rings in a kernel fanout group
    /// (both directions of a connection land on the same one) and N engines share the work;
    /// ring memory is N × --ring-blocks × --ring-block-size per interface. Files (--pcap): one
    /// thread reads, N engines dissect, each flow on the engine of its 5-tuple's hash.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    capture_threads: u16,
    /// With --interface: do not attach the eBPF TCP probes (handshake RTT, retransmissions,
    /// srtt/cwnd per connection, the process that connected).
    #[arg(long)]
    no_ebpf: bool,
    /// Capture the TLS plaintext of this process through uprobes on its libssl (repeatable).
    /// Needs CAP_BPF and CAP_PERFMON.
    #[arg(long = "tls-pid", value_name = "PID")]
    tls_pids: Vec<u32>,
    /// Capture the TLS plaintext of the processes in this cgroup v2 and below it (a path under
    /// /sys/fs/cgroup, or relative to it; repeatable).
    #[arg(long = "tls-cgroup", value_name = "PATH")]
    tls_cgroups: Vec<PathBuf>,
    /// Raw capture ring (with --interface): keep the most recent packets on disk in DIR as
    /// rotating pcapng segments, for snapshots and export_pcap. Segments already in DIR (a
    /// previous run) are kept.
    #[arg(long, value_name = "DIR")]
    raw_ring: Option<PathBuf>,
    /// The raw ring's size on disk, all segments together (oldest deleted first).
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_size, requires = "raw_ring")]
    raw_ring_size: usize,
    /// Only packets this pcap-filter expression matches go into the raw ring (on top of --bpf).
    #[arg(long, value_name = "EXPR", value_parser = parse_bpf, requires = "raw_ring")]
    raw_ring_filter: Option<Arc<Filter>>,
    /// Where export_pcap and export_har write their files (default: $TMPDIR/wirelens), and,
    /// without a raw ring, where snapshots are kept (its `snapshots` directory).
    #[arg(long, value_name = "DIR")]
    export_dir: Option<PathBuf>,
    /// Keep only entries with an end in this Kubernetes namespace (repeatable; default: all).
    /// Needs identities (--kubernetes, --kubeconfig or --identities); the entries left out are
    /// counted in capture_status.store.entries_outside_namespaces.
    #[arg(long = "capture-namespace", value_name = "NS")]
    capture_namespaces: Vec<String>,
    /// Keep only entries with an end that is a pod carrying these labels
    /// (`key=value[,key=value…]`, all of them; with --capture-namespace, in those namespaces).
    /// Needs identities; the entries left out are counted in capture_status.store.
    #[arg(long, value_name = "SELECTOR", value_parser = parse_pod_selector)]
    capture_pod_selector: Option<PodSelector>,
    /// How long to wait for the first listing of every kind before reading the sources.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    kube_sync_timeout: u64,
}

#[derive(Args, Clone)]
struct HubArgs {
    /// Be a hub: answer the tools by asking these node agents and merging their answers
    /// (repeatable): `HOST:PORT` or `https://HOST:PORT`, `dns:NAME:PORT` (every address of a
    /// headless Service), or `kube:LABEL_SELECTOR` (running pods with these labels, through the
    /// Kubernetes API). No capture source is read by the hub itself.
    #[arg(long = "agents", value_name = "SOURCE", value_parser = parse_agent_source)]
    agents: Vec<mcp_server::cluster::hub::AgentSource>,
    /// The agents' namespace for `kube:` (default: the hub's own, from its service account).
    #[arg(long, value_name = "NS")]
    agents_namespace: Option<String>,
    /// The agents' port for `kube:`.
    #[arg(long, value_name = "PORT", default_value_t = 9443)]
    agent_port: u16,
    /// The CA that signed the agents' certificates (and the hub's).
    #[arg(long, value_name = "FILE")]
    agent_ca: Option<PathBuf>,
    /// The hub's client certificate (PEM), signed by --agent-ca.
    #[arg(long, value_name = "FILE")]
    agent_cert: Option<PathBuf>,
    /// The private key of --agent-cert.
    #[arg(long, value_name = "FILE")]
    agent_key: Option<PathBuf>,
    /// The DNS name the agents' certificate must carry (they are dialled by address).
    #[arg(long, value_name = "NAME", default_value = "wirelens-agent")]
    agent_server_name: String,
    /// Seconds an agent may take to answer one query; slower agents are left out of the answer,
    /// which is then marked partial.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    agent_deadline: f64,
}

#[derive(Args, Clone)]
struct AgentArgs {
    /// Address to serve the hub on.
    #[arg(long, default_value = "0.0.0.0:9443", value_name = "ADDR:PORT")]
    listen: std::net::SocketAddr,
    /// The agent's certificate (PEM); it must name --agent-server-name of the hub.
    #[arg(long, value_name = "FILE")]
    tls_cert: PathBuf,
    /// The private key of --tls-cert.
    #[arg(long, value_name = "FILE")]
    tls_key: PathBuf,
    /// Only clients (the hub) with a certificate signed by this CA are served.
    #[arg(long, value_name = "FILE")]
    client_ca: PathBuf,
    /// This node's name: the agent's name in answers, and pods on this node count as local.
    #[arg(long, value_name = "NAME")]
    node_name: Option<String>,
    /// A network local to this node (its pod CIDR), besides its interfaces' addresses
    /// (repeatable). Decides which agent reports a connection two agents saw.
    #[arg(long = "local-cidr", value_name = "CIDR")]
    local_cidrs: Vec<ipnet::IpNet>,
}

#[derive(Args, Clone)]
struct BridgeArgs {
    /// Reach the wirelens hub installed in a cluster instead of reading sources: MCP on stdio
    /// here, carried through the Kubernetes API server's service proxy with your kubeconfig
    /// (--kubeconfig, --context; default KUBECONFIG or ~/.kube/config). For Claude Code:
    /// `claude mcp add wirelens -- wirelens mcp --kube`.
    #[arg(long)]
    kube: bool,
    /// The hub's namespace.
    #[arg(long, value_name = "NS", default_value = "wirelens", requires = "kube")]
    hub_namespace: String,
    /// The hub's Service.
    #[arg(long, value_name = "NAME", default_value = "wirelens-hub", requires = "kube")]
    hub_service: String,
    /// The hub Service's port, by name (the API server's proxy matches Endpoints ports by the
    /// Service port's name).
    #[arg(long, value_name = "NAME", default_value = "mcp", requires = "kube")]
    hub_port: String,
    /// The Secret holding the hub's bearer token (key `token`).
    #[arg(long, value_name = "NAME", default_value = "wirelens-hub-token", requires = "kube")]
    hub_token_secret: String,
}

fn run_bridge(source: &Source, hub: &HubArgs, b: &BridgeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        source.pcaps.is_empty() && !source.demo && source.interfaces.is_empty() && hub.agents.is_empty(),
        "--kube talks to the hub in the cluster: drop --pcap, --demo, --interface and --agents"
    );
    let opts = mcp_server::kube_bridge::BridgeOptions {
        kube: capture_core::enrich::kube::KubeOptions {
            kubeconfig: source.kubeconfig.clone(),
            context: source.context.clone(),
        },
        namespace: b.hub_namespace.clone(),
        service: b.hub_service.clone(),
        port: b.hub_port.clone(),
        token_secret: b.hub_token_secret.clone(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(mcp_server::kube_bridge::run(opts))
}

/// `--capture-pod-selector`'s labels (one value: clap would take a bare `Vec` for many).
#[derive(Debug, Clone)]
struct PodSelector(Vec<(String, String)>);

fn parse_pod_selector(s: &str) -> Result<PodSelector, String> {
    capture_core::enrich::scope::CaptureScope::parse_selector(s).map(PodSelector)
}

fn parse_agent_source(s: &str) -> Result<mcp_server::cluster::hub::AgentSource, String> {
    s.parse()
}

#[derive(Args, Clone)]
struct HttpArgs {
    /// Address to listen on. A non-loopback address needs a bearer token.
    #[arg(long, default_value = "127.0.0.1:8898", value_name = "ADDR:PORT")]
    listen: std::net::SocketAddr,
    /// File whose first line is the bearer token that `/mcp` and `/metrics` require (else the
    /// `WIRELENS_TOKEN` environment variable).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// The bearer token (prefer --token-file: environment variables leak into process listings
    /// of child processes and crash reports).
    #[arg(long = "token-from-env", env = "WIRELENS_TOKEN", hide_env_values = true, hide = true)]
    token_env: Option<String>,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Also accept this browser Origin (scheme://host:port; `:*` for any port). Repeatable.
    /// Localhost origins are always accepted.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    allowed_origins: Vec<String>,
    /// Also accept this Host header (a DNS name or host:port a client uses to reach the server).
    /// Repeatable. Loopback names and the listen address are always accepted.
    #[arg(long = "allowed-host", value_name = "HOST")]
    allowed_hosts: Vec<String>,
    /// Largest request body accepted (413 beyond it).
    #[arg(long, default_value = "1MiB", value_parser = parse_size, value_name = "SIZE")]
    max_body: usize,
    /// Reply with plain JSON instead of an SSE stream when a call sends no notification
    /// (halves latency for clients that do not need streaming).
    #[arg(long)]
    json_response: bool,
}

impl HttpArgs {
    fn to_options(&self) -> anyhow::Result<mcp_server::http::HttpOptions> {
        let mut o = mcp_server::http::HttpOptions::new(self.listen);
        o.token = match (&self.token_file, &self.token_env) {
            (Some(f), _) => Some(mcp_server::http::read_token_file(f)?),
            (None, Some(t)) => Some(t.clone()),
            (None, None) => None,
        };
        o.tls = self.tls_cert.clone().zip(self.tls_key.clone());
        o.allowed_origins = self.allowed_origins.clone();
        o.allowed_hosts = self.allowed_hosts.clone();
        o.max_body_bytes = self.max_body;
        o.json_response = self.json_response;
        Ok(o)
    }
}

impl Source {
    fn to_args(&self) -> anyhow::Result<SourceArgs> {
        let tls = !self.tls_pids.is_empty() || !self.tls_cgroups.is_empty();
        if self.pcaps.is_empty() && !self.demo && self.interfaces.is_empty() && !tls {
            anyhow::bail!("no source: give --pcap FILE (repeatable), --demo, --interface IFACE or --tls-pid PID");
        }
        let mut limits = Limits::default();
        if let Some(m) = self.store_memory {
            limits.store_memory_bytes = m;
        }
        if let Some(m) = self.max_memory {
            anyhow::ensure!(m >= 16 << 20, "--max-memory must be at least 16MiB (got {m} bytes)");
            limits.max_memory_bytes = m;
            alloc::strict();
        }
        limits.tool_timeout_ms = self.tool_timeout * 1000;
        let limits = capture_core::memory::derive_limits(limits);
        Ok(SourceArgs {
            pcaps: self.pcaps.clone(),
            demo: self.demo,
            limits,
            proto_descriptors: self.proto_descriptors.clone(),
            identities: self.identities.clone(),
            kube: (self.kubernetes || self.kubeconfig.is_some() || self.context.is_some()).then(|| {
                capture_core::enrich::kube::KubeOptions {
                    kubeconfig: self.kubeconfig.clone(),
                    context: self.context.clone(),
                }
            }),
            kube_sync_timeout: std::time::Duration::from_secs(self.kube_sync_timeout),
            interfaces: self.interfaces.clone(),
            ring: Some(capture_core::source::afpacket::RingConfig {
                block_size: u32::try_from(self.ring_block_size)
                    .map_err(|_| anyhow::anyhow!("--ring-block-size is too large"))?,
                block_count: self.ring_blocks,
                ..Default::default()
            }),
            capture_threads: usize::from(self.capture_threads),
            probes: {
                let tcp = !self.interfaces.is_empty() && !self.no_ebpf;
                (tcp || tls).then(|| capture_core::ebpf_probes::Config {
                    tcp,
                    tls_pids: self.tls_pids.clone(),
                    tls_cgroups: self.tls_cgroups.clone(),
                    ..Default::default()
                })
            },
            bpf: self.bpf.clone(),
            keylogs: self.keylogs.clone(),
            redaction: capture_core::redact::Redaction::with_rules(
                !self.no_redact,
                &self.redact_headers,
                &self.keep_headers,
                &self.redact_fields,
                &self.keep_fields,
            ),
            raw_ring: self
                .raw_ring
                .as_ref()
                .map(|dir| capture_core::forensics::ring::RingConfig {
                    filter: self.raw_ring_filter.clone(),
                    ..capture_core::forensics::ring::RingConfig::new(dir.clone(), self.raw_ring_size as u64)
                }),
            export_dir: self.export_dir.clone(),
            hub: None,
            capture_scope: capture_core::enrich::scope::CaptureScope {
                namespaces: self.capture_namespaces.clone(),
                pod_labels: self.capture_pod_selector.clone().map(|s| s.0).unwrap_or_default(),
            },
        })
    }
}

/// `--bpf`: compiled while the command line is read, so a bad filter is a usage error (exit 2)
/// naming its column, before any source is opened.
fn parse_bpf(s: &str) -> Result<Arc<Filter>, BpfError> {
    Filter::compile(s).map(Arc::new)
}

fn main() -> ExitCode {
    capture_core::memory::set_trim(alloc::purge);
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("WIRELENS_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Mcp { source, hub, bridge } if bridge.kube => match run_bridge(&source, &hub, &bridge) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("wirelens: {e:#}");
                ExitCode::from(1)
            }
        },
        Command::Mcp { source, hub, .. } => match serve_stdio(&source, &hub) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("wirelens: {e:#}");
                ExitCode::from(1)
            }
        },
        Command::Serve { source, http, hub } => match serve_http(&source, &http, &hub) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("wirelens: {e:#}");
                ExitCode::from(1)
            }
        },
        Command::Agent { source, agent } => match run_agent(&source, &agent) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("wirelens: {e:#}");
                ExitCode::from(1)
            }
        },
        Command::Call { source, tool, args } => call(&source, &tool, args.as_deref()),
        Command::KflReference => {
            print!("{}", capture_core::kfl::reference_markdown());
            ExitCode::SUCCESS
        }
        Command::DemoTruth => {
            let truth = mcp_server::demo_truth::truth(mcp_server::state::DEMO_SEED);
            println!("{truth}");
            ExitCode::SUCCESS
        }
        Command::GenerateAdversarial { kind, out, count } => {
            let written = std::fs::File::create(&out)
                .map(|f| std::io::BufWriter::with_capacity(1 << 20, f))
                .and_then(|f| capture_core::synth::adversarial::write(f, &kind, count));
            match written {
                Ok(n) => {
                    eprintln!("{n} packets written to {}", out.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("wirelens: writing {}: {e}", out.display());
                    ExitCode::from(1)
                }
            }
        }
        Command::GenerateWorkload { out, size, seed } => match generate(&out, size, seed) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("wirelens: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}

/// Reads the sources on the runtime's blocking pool, so that Kubernetes watches (spawned on the
/// runtime) run while they are read and go on afterwards.
fn load_in(rt: &tokio::runtime::Runtime, args: SourceArgs) -> anyhow::Result<AppState> {
    rt.block_on(async move { tokio::task::spawn_blocking(move || AppState::load(&args)).await })?
}

/// Serves at once: what can fail fast does (files, descriptors, interfaces), and the sources are
/// read in the background while tool calls wait for them with progress notifications.
fn serve_stdio(source: &Source, hub: &HubArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let args = rt.block_on(async { source_or_hub(source, hub) })?;
    let (state, pending) = AppState::prepare(&args)?;
    let state = Arc::new(state);
    {
        let state = state.clone();
        rt.spawn_blocking(move || {
            if let Err(e) = state.fill(&args, pending) {
                tracing::error!("reading the sources failed: {e:#}");
                eprintln!("wirelens: {e:#}");
            }
        });
    }
    rt.block_on(async move {
        let service = server::WirelensServer::new(state)
            .serve(rmcp::transport::stdio())
            .await?;
        service.waiting().await?;
        anyhow::Ok(())
    })
}

/// Cancelled on SIGINT or SIGTERM.
fn stop_on_signals(stop: tokio_util::sync::CancellationToken) {
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        stop.cancel();
    });
}

fn run_agent(source: &Source, agent: &AgentArgs) -> anyhow::Result<()> {
    let args = source.to_args()?;
    let opts = mcp_server::cluster::agent::AgentOptions {
        listen: agent.listen,
        tls: mcp_server::cluster::tls::TlsFiles {
            cert: agent.tls_cert.clone(),
            key: agent.tls_key.clone(),
            ca: agent.client_ca.clone(),
        },
        node: agent.node_name.clone(),
        local_cidrs: agent.local_cidrs.clone(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let cancel = tokio_util::sync::CancellationToken::new();
        stop_on_signals(cancel.clone());
        mcp_server::cluster::agent::run(opts, args, cancel).await
    })
}

/// The source arguments, or for a hub (`--agents`) none and the hub. Call inside the runtime.
fn source_or_hub(source: &Source, hub: &HubArgs) -> anyhow::Result<SourceArgs> {
    if hub.agents.is_empty() {
        return source.to_args();
    }
    anyhow::ensure!(
        source.pcaps.is_empty() && !source.demo && source.interfaces.is_empty(),
        "a hub (--agents) reads no source itself: drop --pcap, --demo and --interface"
    );
    let (Some(ca), Some(cert), Some(key)) = (&hub.agent_ca, &hub.agent_cert, &hub.agent_key) else {
        anyhow::bail!("--agents needs --agent-ca, --agent-cert and --agent-key (mutual TLS with the agents)");
    };
    anyhow::ensure!(
        hub.agent_deadline > 0.0 && hub.agent_deadline <= 600.0,
        "--agent-deadline must be between 0 and 600 seconds"
    );
    let h = mcp_server::cluster::hub::Hub::new(mcp_server::cluster::hub::HubOptions {
        sources: hub.agents.clone(),
        tls: mcp_server::cluster::tls::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            ca: ca.clone(),
        },
        server_name: hub.agent_server_name.clone(),
        deadline: std::time::Duration::from_secs_f64(hub.agent_deadline),
        namespace: hub.agents_namespace.clone(),
        agent_port: hub.agent_port,
        kube: capture_core::enrich::kube::KubeOptions {
            kubeconfig: source.kubeconfig.clone(),
            context: source.context.clone(),
        },
    })?;
    Ok(SourceArgs {
        hub: Some(Arc::new(h)),
        ..SourceArgs::default()
    })
}

fn serve_http(source: &Source, http: &HttpArgs, hub: &HubArgs) -> anyhow::Result<()> {
    let opts = http.to_options()?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let args = source_or_hub(source, hub)?;
        let cancel = tokio_util::sync::CancellationToken::new();
        let server = mcp_server::http::Server::bind(opts, cancel.clone()).await?;
        let addr = server.local_addr()?;
        // One line on stderr that scripts and tests can wait for.
        eprintln!("wirelens: listening on {addr}");
        stop_on_signals(cancel.clone());
        server.run(args).await
    })
}

/// Exit codes: 0 success, 1 tool error (or unreadable source), 2 bad usage.
fn call(source: &Source, tool: &str, args: Option<&str>) -> ExitCode {
    let parsed: serde_json::Map<String, serde_json::Value> = match args.map(serde_json::from_str::<serde_json::Value>) {
        None => serde_json::Map::new(),
        Some(Ok(serde_json::Value::Object(m))) => m,
        Some(Ok(_)) => {
            eprintln!("wirelens call: the arguments must be a JSON object, e.g. '{{\"limit\": 10}}'");
            return ExitCode::from(2);
        }
        Some(Err(e)) => {
            eprintln!("wirelens call: the arguments are not valid JSON: {e}");
            return ExitCode::from(2);
        }
    };
    if !tools::TOOLS.iter().any(|t| t.0 == tool) {
        eprintln!(
            "wirelens call: unknown tool `{tool}`; the tools are: {}",
            tools::TOOLS.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
        );
        return ExitCode::from(2);
    }
    let args = match source.to_args() {
        Ok(a) if !a.interfaces.is_empty() || a.probes.is_some() => {
            eprintln!(
                "wirelens call: --interface, --tls-pid and --tls-cgroup capture live; use `wirelens mcp` or `wirelens serve` (call reads files and the demo)"
            );
            return ExitCode::from(2);
        }
        Ok(a) => a,
        Err(e) => {
            eprintln!("wirelens call: {e}");
            return ExitCode::from(2);
        }
    };
    let loaded = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| {
            let state = load_in(&rt, args);
            // Watches stop with the runtime; the call reads what was loaded.
            rt.shutdown_background();
            state
        });
    let state = match loaded {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wirelens call: {e:#}");
            return ExitCode::from(1);
        }
    };
    match tools::call(&state, tool, parsed) {
        Ok(v) => {
            let mut out = std::io::stdout().lock();
            let _ = serde_json::to_writer(&mut out, &v);
            let _ = writeln!(out);
            // The process ends here: freeing every stored entry one by one first would cost
            // about 0.1 CPU-second per GB read, for nothing.
            std::mem::forget(state);
            ExitCode::SUCCESS
        }
        Err(tools::CallError::Tool(e)) => {
            eprintln!("wirelens call: {e}");
            ExitCode::from(1)
        }
        Err(tools::CallError::UnknownTool(m)) => {
            eprintln!("wirelens call: {m}");
            ExitCode::from(2)
        }
    }
}

fn generate(out: &std::path::Path, size: usize, seed: u64) -> anyhow::Result<()> {
    use capture_core::synth::http_workload::{WorkloadOpts, write_http_workload};
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let opts = WorkloadOpts {
        target_bytes: size as u64,
        seed,
        ..WorkloadOpts::default()
    };
    let stats = write_http_workload(std::io::BufWriter::with_capacity(1 << 20, file), &opts)
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!("{stats:?}");
    Ok(())
}
