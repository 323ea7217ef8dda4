//! Cluster mode in one process: agents (`mcp_server::cluster::agent`) reading capture files on
//! loopback addresses, and a hub over them, with real mutual TLS (certificates from the openssl
//! CLI).
//!
//! - Merging is exact: two agents that each saw their own node's calls and the calls between
//!   the two nodes answer, through the hub, exactly what one engine answers over the union of
//!   the calls (api_stats percentiles, service_map, tcp_insights groups, flow_summary), and
//!   pages of one entry walk every entry once in time order.
//! - Discovery through a real API server (`--agents kube:SELECTOR`): agents are found by their
//!   pods' labels and IPs, and a pod that goes away leaves the answer without making it partial.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use capture_core::source::LinkType;
use capture_core::synth::conversation::Conversation;
use capture_core::synth::pcap::{PcapWriter, TsResolution};
use capture_core::time::Timestamp;
use mcp_server::cluster::hub::{AgentSource, Hub, HubOptions};
use mcp_server::cluster::tls::TlsFiles;
use mcp_server::state::{AppState, SourceArgs};
use serde_json::{Value, json};

struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn make() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("the openssl CLI (scripts/test installs it)");
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
                "/CN=test ca",
            ],
        ]
        .concat());
        for (name, cn) in [("agent", "wirelens-agent"), ("hub", "wirelens-hub")] {
            run(&[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    &format!("/CN={cn}"),
                ],
            ]
            .concat());
            std::fs::write(
                dir.path().join(format!("{name}.ext")),
                format!("subjectAltName=DNS:{cn}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n"),
            )
            .unwrap();
            run(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ]);
        }
        Certs { dir }
    }

    fn files(&self, name: &str) -> TlsFiles {
        let p = |f: String| self.dir.path().join(f);
        TlsFiles {
            cert: p(format!("{name}.crt")),
            key: p(format!("{name}.key")),
            ca: p("ca.crt".into()),
        }
    }
}

/// One HTTP call from `client` to `server` at `at` (ms), answered after `ms` milliseconds.
fn call_at(client: &str, server: &str, at_ms: u64, path: &str, status: u16, ms: u64) -> Conversation {
    let c: SocketAddr = client.parse().unwrap();
    let s: SocketAddr = server.parse().unwrap();
    let at = Timestamp(1_767_225_600_000_000_000 + at_ms * 1_000_000);
    let mut conv = Conversation::new(c, s, at, 300, 1_000, 9_000);
    conv.handshake();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", s.ip());
    let body = format!("{{\"path\":\"{path}\"}}");
    let resp = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conv.client_send(req.as_bytes(), 50)
        .server_send(resp.as_bytes(), ms * 1000);
    conv.close();
    conv
}

fn write_pcap(path: &Path, convs: &[Conversation]) {
    let mut packets: Vec<_> = convs.iter().cloned().flat_map(|c| c.packets()).collect();
    packets.sort_by_key(|p| p.ts);
    let f = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::new(std::io::BufWriter::new(f), LinkType::ETHERNET, TsResolution::Nanos).unwrap();
    for p in &packets {
        w.write_packet(p.ts, &p.data, p.data.len() as u32).unwrap();
    }
    w.flush().unwrap();
}

/// Node A (10.1.0.0/24) and node B (10.2.0.0/24): calls inside each node, between them both
/// ways, and from outside. Returns (what A captured, what B captured, every call once).
fn traffic() -> (Vec<Conversation>, Vec<Conversation>, Vec<Conversation>) {
    let (mut a, mut b, mut cross) = (Vec::new(), Vec::new(), Vec::new());
    let mut t = 0;
    let mut next = || {
        t += 37;
        t
    };
    for i in 0..12u16 {
        let port = 40_000 + i;
        a.push(call_at(
            &format!("10.1.0.5:{port}"),
            "10.1.0.9:8080",
            next(),
            &format!("/a/local/{i}"),
            200,
            2 + u64::from(i),
        ));
        b.push(call_at(
            &format!("10.2.0.5:{port}"),
            "10.2.0.9:8080",
            next(),
            &format!("/b/local/{i}"),
            if i % 4 == 0 { 503 } else { 200 },
            5 + u64::from(i) * 3,
        ));
        cross.push(call_at(
            &format!("10.1.0.5:{}", port + 100),
            "10.2.0.9:8080",
            next(),
            &format!("/a-to-b/{i}"),
            200,
            1 + u64::from(i),
        ));
        cross.push(call_at(
            &format!("10.2.0.5:{}", port + 200),
            "10.1.0.9:8080",
            next(),
            &format!("/b-to-a/{i}"),
            if i % 3 == 0 { 500 } else { 200 },
            9 + u64::from(i),
        ));
        b.push(call_at(
            &format!("93.184.216.34:{}", port + 300),
            "10.2.0.9:8080",
            next(),
            &format!("/outside/{i}"),
            404,
            4,
        ));
    }
    let seen_a: Vec<Conversation> = a.iter().chain(&cross).cloned().collect();
    let seen_b: Vec<Conversation> = b.iter().chain(&cross).cloned().collect();
    let all: Vec<Conversation> = a.into_iter().chain(b).chain(cross).collect();
    (seen_a, seen_b, all)
}

fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts an agent over `pcap` on `ip:port` in `rt`, and waits until it listens.
fn start_agent(
    rt: &tokio::runtime::Runtime,
    certs: &Certs,
    ip: &str,
    port: u16,
    name: &str,
    pcap: PathBuf,
    cidr: &str,
) -> tokio_util_cancel::Token {
    let cancel = tokio_util_cancel::Token::new();
    let opts = mcp_server::cluster::agent::AgentOptions {
        listen: SocketAddr::new(ip.parse().unwrap(), port),
        tls: certs.files("agent"),
        node: Some(name.to_string()),
        local_cidrs: vec![cidr.parse().unwrap()],
    };
    let args = SourceArgs {
        pcaps: vec![pcap],
        ..Default::default()
    };
    let c = cancel.0.clone();
    rt.spawn(async move {
        if let Err(e) = mcp_server::cluster::agent::run(opts, args, c).await {
            panic!("agent: {e:#}");
        }
    });
    for _ in 0..200 {
        if std::net::TcpStream::connect((ip, port)).is_ok() {
            return cancel;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("the agent on {ip}:{port} did not listen");
}

mod tokio_util_cancel {
    /// Cancels an agent when dropped.
    pub struct Token(pub tokio_util::sync::CancellationToken);
    impl Token {
        pub fn new() -> Token {
            Token(tokio_util::sync::CancellationToken::new())
        }
    }
    impl Drop for Token {
        fn drop(&mut self) {
            self.0.cancel();
        }
    }
}

fn hub_state(
    rt: &tokio::runtime::Runtime,
    certs: &Certs,
    sources: Vec<AgentSource>,
    kube: capture_core::enrich::kube::KubeOptions,
    port: u16,
) -> AppState {
    let hub = rt
        .block_on(async {
            Hub::new(HubOptions {
                sources,
                tls: certs.files("hub"),
                server_name: "wirelens-agent".into(),
                deadline: Duration::from_secs(20),
                namespace: Some("wirelens".into()),
                agent_port: port,
                kube,
            })
        })
        .unwrap();
    AppState::load(&SourceArgs {
        hub: Some(Arc::new(hub)),
        ..Default::default()
    })
    .unwrap()
}

fn call(state: &AppState, tool: &str, args: Value) -> Value {
    let Value::Object(m) = args else {
        panic!("arguments are an object")
    };
    mcp_server::tools::call(state, tool, m).unwrap_or_else(|e| panic!("{tool}: {e:?}"))
}

/// A result without what legitimately differs between a hub and one engine: coverage, entry
/// ids, flow ids and their agents.
fn comparable(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for k in ["coverage", "example_entry_id", "flow_id", "agent", "entry_ids", "id"] {
                    m.remove(k);
                }
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

#[test]
fn a_hub_over_two_agents_answers_what_one_engine_answers_over_the_union() {
    let certs = Certs::make();
    let dir = tempfile::tempdir().unwrap();
    let (seen_a, seen_b, all) = traffic();
    let (pa, pb, pall) = (
        dir.path().join("a.pcap"),
        dir.path().join("b.pcap"),
        dir.path().join("all.pcap"),
    );
    write_pcap(&pa, &seen_a);
    write_pcap(&pb, &seen_b);
    write_pcap(&pall, &all);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // node-a listens on every address, and the hub's list names it twice (as a dual-stack pod
    // would be): it must be asked once.
    let (pa_port, pb_port) = (free_port("::"), free_port("127.0.0.3"));
    let _a = start_agent(&rt, &certs, "::", pa_port, "node-a", pa, "10.1.0.0/24");
    let _b = start_agent(&rt, &certs, "127.0.0.3", pb_port, "node-b", pb, "10.2.0.0/24");
    let hub = hub_state(
        &rt,
        &certs,
        vec![
            AgentSource::Address(format!("127.0.0.2:{pa_port}")),
            AgentSource::Address(format!("127.0.0.4:{pa_port}")),
            AgentSource::Address(format!("127.0.0.3:{pb_port}")),
        ],
        Default::default(),
        pa_port,
    );
    let one = AppState::load(&SourceArgs {
        pcaps: vec![pall],
        ..Default::default()
    })
    .unwrap();

    // Wait until both agents have read their files.
    let mut r = call(&hub, "list_entries", json!({"limit": 1000}));
    for _ in 0..100 {
        if r["total_matched"] == 60 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        r = call(&hub, "list_entries", json!({"limit": 1000}));
    }
    assert_eq!(r["total_matched"], 60, "every call once: {}", r["coverage"]);
    assert_eq!(r["coverage"]["agents"].as_array().unwrap().len(), 2);
    assert_eq!(r["coverage"]["partial"], Value::Null, "not partial");
    let by = |prefix: &str| {
        r["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["path"].as_str().unwrap().starts_with(prefix))
            .map(|e| e["id"].as_str().unwrap().split('/').next().unwrap().to_string())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(
        by("/a-to-b/"),
        ["node-a".to_string()].into(),
        "the client's node reports it"
    );
    assert_eq!(by("/b-to-a/"), ["node-b".to_string()].into());
    assert_eq!(
        by("/outside/"),
        ["node-b".to_string()].into(),
        "an outside client: the server's node"
    );

    for (tool, args) in [
        ("api_stats", json!({"group_by": "endpoint", "limit": 200})),
        ("api_stats", json!({"group_by": "status"})),
        ("api_stats", json!({"group_by": "server", "filter": "status >= 500"})),
        ("service_map", json!({"level": "pod"})),
        ("tcp_insights", json!({"group_by": "server"})),
        (
            "tcp_insights",
            json!({"group_by": "flow", "sort": "payload_bytes", "limit": 1000, "fields": ["src.ip", "dst.port", "payload_bytes"]}),
        ),
        ("flow_summary", json!({})),
    ] {
        let (h, o) = (call(&hub, tool, args.clone()), call(&one, tool, args.clone()));
        assert_eq!(comparable(h), comparable(o), "{tool} {args}");
    }

    // A headless Service's name (here `localhost`, whatever addresses it has): every address
    // of it reaches node-a, which is asked once and, alone, reports all the calls it holds.
    let by_dns = hub_state(
        &rt,
        &certs,
        vec![format!("dns:localhost:{pa_port}").parse().unwrap()],
        Default::default(),
        pa_port,
    );
    let r = call(&by_dns, "list_entries", json!({"limit": 1}));
    let names: Vec<&str> = r["coverage"]["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["node-a"]);
    assert_eq!(r["total_matched"], 36, "node-a's own calls and those between the nodes");

    // Pages of one entry: every entry once, oldest first, across both agents.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut args = json!({"limit": 1, "order": "asc", "fields": ["id", "timestamp", "path"]});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let page = call(&hub, "list_entries", args);
        seen.extend(page["entries"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(seen.len() <= 60, "the cursor went round");
    }
    let paths: Vec<&str> = seen.iter().map(|e| e["path"].as_str().unwrap()).collect();
    let mut unique = paths.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (60, 60));
    let times: Vec<&str> = seen.iter().map(|e| e["timestamp"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let expected = call(
        &one,
        "list_entries",
        json!({"limit": 1000, "order": "asc", "fields": ["path"]}),
    );
    let expected: Vec<&str> = expected["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, expected);
}

fn k8s_binaries_cached() -> bool {
    let cache = std::env::var_os("WIRELENS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/wirelens"));
    cache.join("k8s/1.20.2/kube-apiserver").exists()
}

/// A test API server (scripts/k8s-test-cluster.sh), stopped when dropped.
struct ApiServer(tempfile::TempDir);

impl Drop for ApiServer {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/k8s-test-cluster.sh");
        let _ = Command::new(script).arg("stop").arg(self.0.path()).output();
    }
}

#[test]
fn the_hub_finds_its_agents_through_the_kubernetes_api() {
    if !k8s_binaries_cached() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the kube-apiserver binaries are not cached: run scripts/k8s-test-cluster.sh build"
        );
        eprintln!("SKIPPED (not under CI): no cached kube-apiserver; run scripts/k8s-test-cluster.sh build");
        return;
    }
    use k8s_openapi::api::core::v1::{Namespace, Pod};
    use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
    let server = ApiServer(tempfile::tempdir().unwrap());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/k8s-test-cluster.sh");
    let out = Command::new(&script)
        .arg("start")
        .arg(server.0.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let kube_opts = capture_core::enrich::kube::KubeOptions {
        kubeconfig: Some(server.0.path().join("kubeconfig")),
        context: None,
    };

    let certs = Certs::make();
    let dir = tempfile::tempdir().unwrap();
    let (seen_a, seen_b, _) = traffic();
    let (pa, pb) = (dir.path().join("a.pcap"), dir.path().join("b.pcap"));
    write_pcap(&pa, &seen_a);
    write_pcap(&pb, &seen_b);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let port = free_port("127.0.0.2");
    let _a = start_agent(&rt, &certs, "127.0.0.2", port, "node-a", pa, "10.1.0.0/24");
    let _b = start_agent(&rt, &certs, "127.0.0.3", port, "node-b", pb, "10.2.0.0/24");

    // The agents' pods: labelled, running, with the agents' addresses; and a pod of another
    // app that the selector must leave out.
    let pods: Api<Pod> = rt.block_on(async {
        let client = capture_core::enrich::kube::client(&kube_opts).await.unwrap();
        let ns: Api<Namespace> = Api::all(client.clone());
        ns.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "wirelens"}})).unwrap())
            .await
            .unwrap();
        let pods: Api<Pod> = Api::namespaced(client, "wirelens");
        for (name, component, ip) in [
            ("agent-a", "agent", "127.0.0.2"),
            ("agent-b", "agent", "127.0.0.3"),
            ("hub", "hub", "127.0.0.4"),
        ] {
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "wirelens", "app.kubernetes.io/component": component}},
                "spec": {"containers": [{"name": "wirelens", "image": "wirelens:test"}]}
            }))
            .unwrap();
            // Right after the namespace is made, the service account controller may not have
            // made its default account yet: the API server says to retry.
            let mut tries = 0;
            while let Err(e) = pods.create(&PostParams::default(), &pod).await {
                tries += 1;
                assert!(tries < 100, "creating pod {name}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}});
            pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
                .await
                .unwrap();
        }
        pods
    });
    let hub = hub_state(
        &rt,
        &certs,
        vec![
            "kube:app.kubernetes.io/name=wirelens,app.kubernetes.io/component=agent"
                .parse()
                .unwrap(),
        ],
        kube_opts,
        port,
    );
    let mut r = call(&hub, "list_entries", json!({"limit": 1}));
    for _ in 0..100 {
        if r["total_matched"] == 60 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        r = call(&hub, "list_entries", json!({"limit": 1}));
    }
    assert_eq!(r["total_matched"], 60, "{}", r["coverage"]);
    let names: Vec<&str> = r["coverage"]["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["node-a", "node-b"]);

    // node-b's pod is deleted: once the list is read again it is no longer asked, and the
    // answer is whole (node-a now reports the calls between the nodes it holds).
    rt.block_on(pods.delete("agent-b", &DeleteParams::default())).unwrap();
    std::thread::sleep(Duration::from_millis(5_200));
    let r = call(&hub, "list_entries", json!({"limit": 1}));
    let agents = r["coverage"]["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 1, "{agents:?}");
    assert_eq!(agents[0]["name"], "node-a");
    assert_eq!(r["coverage"]["partial"], Value::Null);
    assert_eq!(r["total_matched"], 36, "node-a's own calls and those between the nodes");
}
