//! The hub at scale: 8 agents (in this process, each serving its own store over HTTP/2 with
//! mutual TLS on loopback) holding 1,000,000 HTTP entries each, and a hub answering
//! `list_entries` with a selective filter, `service_map` and `api_stats` over all of them.
//!
//!   cargo bench -p mcp-server --bench hub [-- AGENTS ENTRIES_PER_AGENT]
//!
//! Needs the openssl CLI (certificates) and about 1 GB of memory per million entries. Prints
//! each query's latency (min and median of 5 runs) and the process's peak RSS.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use capture_core::engine::Shared;
use capture_core::entry::{Detail, Entry, HttpMessage, HttpTxn, Protocol, Transport};
use capture_core::limits::Limits;
use capture_core::time::Timestamp;
use mcp_server::cluster::agent::{AgentOptions, serve};
use mcp_server::cluster::hub::{AgentSource, Hub, HubOptions};
use mcp_server::cluster::tls::TlsFiles;
use mcp_server::state::{AppState, SourceArgs};
use serde_json::{Value, json};

const SERVICES: u32 = 40;

fn certs(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl CLI");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=bench",
        ],
    ]
    .concat());
    for (name, cn) in [("agent", "wirelens-agent"), ("hub", "wirelens-hub")] {
        let (key, csr, crt, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
        );
        run(&[
            &["req"][..],
            &ec,
            &["-keyout", &key, "-out", &csr, "-subj", &format!("/CN={cn}")],
        ]
        .concat());
        std::fs::write(
            dir.join(&ext),
            format!("subjectAltName=DNS:{cn}\nextendedKeyUsage=serverAuth,clientAuth\n"),
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &ext,
        ]);
    }
}

/// `n` HTTP calls from 4096 clients to 40 services, 1 % of them 503s, 0.1 ms apart.
fn entries(n: u32, agent: u32) -> Vec<Entry> {
    let base = 1_767_225_600_000_000_000u64;
    (0..n)
        .map(|i| {
            let svc = i % SERVICES;
            let status = if i % 97 == 0 { 503 } else { 200 };
            let path = format!("/api/v1/svc{svc}/items/{}", i % 1000);
            let ts = Timestamp(base + u64::from(i) * 100_000 + u64::from(agent));
            let client = SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(198, 18, (i % 16) as u8, (i % 256) as u8)),
                30_000 + (i % 20_000) as u16,
            );
            let server = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 19, 0, svc as u8)), 8080);
            let head = format!("GET {path} HTTP/1.1\r\nHost: svc{svc}\r\n\r\n");
            let resp = format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\n");
            Entry {
                id: 0,
                ts,
                protocol: Protocol::Http11,
                transport: Transport::Tcp,
                src: client,
                dst: server,
                flow_id: u64::from(i / 10),
                elapsed_us: Some(500 + u64::from((i * 7919) % 50_000)),
                detail: Detail::Http(Box::new(HttpTxn {
                    method: Some("GET".into()),
                    path: Some(path.into()),
                    host: Some(format!("svc{svc}").into()),
                    status: Some(status),
                    request: Some(HttpMessage {
                        head: head.into_bytes().into(),
                        first_ts: ts,
                        last_ts: ts,
                        complete: true,
                        ..Default::default()
                    }),
                    response: Some(HttpMessage {
                        head: resp.into_bytes().into(),
                        body: b"{}".to_vec().into(),
                        body_size: 2,
                        first_ts: ts,
                        last_ts: ts,
                        complete: true,
                        ..Default::default()
                    }),
                    ..Default::default()
                })),
                peers: Default::default(),
                tls: false,
                decrypted: false,
                tls_conn: None,
            }
        })
        .collect()
}

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let agents: u32 = args.first().and_then(|a| a.parse().ok()).unwrap_or(8);
    let per_agent: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    certs(dir.path());
    let files = |name: &str| TlsFiles {
        cert: dir.path().join(format!("{name}.crt")),
        key: dir.path().join(format!("{name}.key")),
        ca: dir.path().join("ca.crt"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let limits = Limits {
        store_memory_bytes: 4 << 30,
        ..Limits::default()
    };
    let start = Instant::now();
    let mut addrs = Vec::new();
    let mut cancels = Vec::new();
    for a in 0..agents {
        let shared = Shared::with_limits(&limits);
        let mut batch = entries(per_agent, a);
        {
            let mut st = shared.stats.lock();
            st.first_ts = batch.first().map(|e| e.ts);
            st.last_ts = batch.last().map(|e| e.ts);
        }
        shared.store.insert_batch(&mut batch);
        let state = Arc::new(AppState::from_shared(shared, limits.clone()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cancel = tokio_util::sync::CancellationToken::new();
        let opts = AgentOptions {
            listen: format!("127.0.0.1:{port}").parse().unwrap(),
            tls: files("agent"),
            node: Some(format!("node-{a}")),
            local_cidrs: Vec::new(),
        };
        let c = cancel.clone();
        rt.spawn(async move { serve(opts, state, None, c).await.unwrap() });
        addrs.push(format!("127.0.0.1:{port}"));
        cancels.push(cancel);
    }
    for a in &addrs {
        while std::net::TcpStream::connect(a).is_err() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    println!(
        "{agents} agents × {per_agent} entries loaded in {:.1} s; peak RSS {} MiB",
        start.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
    let hub = rt
        .block_on(async {
            Hub::new(HubOptions {
                sources: addrs.iter().map(|a| AgentSource::Address(a.clone())).collect(),
                tls: files("hub"),
                server_name: "wirelens-agent".into(),
                deadline: Duration::from_secs(120),
                namespace: None,
                agent_port: 9443,
                kube: Default::default(),
            })
        })
        .unwrap();
    let state = AppState::load(&SourceArgs {
        hub: Some(Arc::new(hub)),
        ..Default::default()
    })
    .unwrap();
    let call = |tool: &str, args: Value| -> Value {
        let Value::Object(m) = args else { unreachable!() };
        mcp_server::tools::call(&state, tool, m).unwrap_or_else(|e| panic!("{tool}: {e:?}"))
    };
    let total = u64::from(agents) * u64::from(per_agent);
    for (name, tool, args, check) in [
        (
            "list_entries, selective filter",
            "list_entries",
            json!({"filter": "http && status == 503 && path == \"/api/v1/svc7/items/7\"", "limit": 50}),
            "total_matched",
        ),
        (
            "list_entries, first page, no filter",
            "list_entries",
            json!({"limit": 50}),
            "total_matched",
        ),
        (
            "service_map (pod level)",
            "service_map",
            json!({"level": "pod"}),
            "edges",
        ),
        (
            "api_stats by endpoint",
            "api_stats",
            json!({"group_by": "endpoint"}),
            "groups_total",
        ),
    ] {
        let mut times = Vec::new();
        let mut last = Value::Null;
        for _ in 0..5 {
            let t = Instant::now();
            last = call(tool, args.clone());
            times.push(t.elapsed());
        }
        times.sort();
        let shown = match &last[check] {
            Value::Array(a) => format!("{} {check}", a.len()),
            v => format!("{check} {v}"),
        };
        assert_eq!(
            last["coverage"]["agents"].as_array().map(Vec::len),
            Some(agents as usize)
        );
        println!(
            "{name:<38} min {:>7.1} ms  median {:>7.1} ms  ({shown}; {total} entries held)",
            times[0].as_secs_f64() * 1e3,
            times[2].as_secs_f64() * 1e3
        );
    }
    println!("peak RSS {} MiB", peak_rss_mib());
    drop(cancels);
}
