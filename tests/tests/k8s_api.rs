//! Identities from a real kube-apiserver (1.20.2 with etcd and the controller manager, from
//! `scripts/k8s-test-cluster.sh`, started on loopback by this test): a Deployment whose pod the
//! controller manager creates, a Service with its ClusterIP, a host-network pod, a pod deleted
//! and its IP reused by a new one, and finally the API server stopped under the watches.
//! Packets with those addresses are generated at the right times and read with `--kubeconfig`.
//!
//! Needs the cached binaries (`scripts/k8s-test-cluster.sh build`, done by scripts/test). Under
//! CI=true their absence fails the test; elsewhere it says so and passes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use capture_core::source::LinkType;
use capture_core::synth::conversation::Conversation;
use capture_core::synth::pcap::{PcapWriter, TsResolution};
use capture_core::time::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use mcp_server::state::AppState;
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn script() -> PathBuf {
    root().join("scripts/k8s-test-cluster.sh")
}

fn binaries_cached() -> bool {
    let cache = std::env::var_os("WIRELENS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/wirelens"));
    cache.join("k8s/1.20.2/kube-apiserver").exists()
}

/// A cluster started in its own directory, stopped when dropped.
struct Cluster {
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(script()).arg("start").arg(dir.path()).output().unwrap();
        let cluster = Cluster { dir };
        // On failure the drop stops whatever did start.
        assert!(
            out.status.success(),
            "k8s-test-cluster.sh start failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    fn stop(&self) {
        let _ = Command::new(script()).arg("stop").arg(self.dir.path()).output();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn obj<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

async fn set_pod_ip(pods: &Api<Pod>, name: &str, ip: &str) {
    let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

fn bare_pod(name: &str, app: &str) -> Pod {
    obj(json!({"metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": "example/app", "ports": [{"containerPort": 8080}]}]}}))
}

/// One HTTP exchange from `client` to `server` starting at `at`.
fn exchange(client: &str, server: &str, at: Timestamp, request: &str, response: &str) -> Conversation {
    let c: SocketAddr = client.parse().unwrap();
    let s: SocketAddr = server.parse().unwrap();
    let mut conv = Conversation::new(c, s, at, 500, 1_000, 9_000);
    conv.handshake();
    conv.client_send(request.as_bytes(), 100)
        .server_send(response.as_bytes(), 300);
    conv.close();
    conv
}

fn write_pcap(path: &Path, convs: Vec<Conversation>) {
    let mut packets: Vec<_> = convs.into_iter().flat_map(|c| c.packets()).collect();
    packets.sort_by_key(|p| p.ts);
    let f = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::new(std::io::BufWriter::new(f), LinkType::ETHERNET, TsResolution::Nanos).unwrap();
    for p in &packets {
        w.write_packet(p.ts, &p.data, p.data.len() as u32).unwrap();
    }
    w.flush().unwrap();
}

/// A real capture moved into the cluster: IPv4 addresses replaced by `map`, times shifted so the
/// first packet is at `start`, checksums recomputed.
fn remap(src: &Path, dst: &Path, map: &[(&str, &str)], start: Timestamp) {
    let map: Vec<([u8; 4], [u8; 4])> = map
        .iter()
        .map(|(a, b)| {
            let a: std::net::Ipv4Addr = a.parse().unwrap();
            let b: std::net::Ipv4Addr = b.parse().unwrap();
            (a.octets(), b.octets())
        })
        .collect();
    let mut out: Vec<(Timestamp, Vec<u8>)> = Vec::new();
    capture_core::source::file::read_file(
        src,
        1 << 20,
        |p| {
            assert_eq!(p.link, LinkType::ETHERNET);
            out.push((p.ts, p.data.to_vec()));
        },
        &mut |_| {},
    )
    .unwrap();
    let first = out[0].0;
    let f = std::fs::File::create(dst).unwrap();
    let mut w = PcapWriter::new(std::io::BufWriter::new(f), LinkType::ETHERNET, TsResolution::Nanos).unwrap();
    let sum = |b: &[u8], init: u32| {
        let mut s = init;
        for c in b.chunks(2) {
            s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s
    };
    for (ts, mut d) in out {
        assert_eq!(&d[12..14], &[0x08, 0x00], "IPv4 over Ethernet");
        let ihl = usize::from(d[14] & 0x0f) * 4;
        for at in [26, 30] {
            if let Some((_, to)) = map.iter().find(|(from, _)| d[at..at + 4] == *from) {
                d[at..at + 4].copy_from_slice(to);
            }
        }
        d[24..26].copy_from_slice(&[0, 0]);
        let ip = !(sum(&d[14..14 + ihl], 0) as u16);
        d[24..26].copy_from_slice(&ip.to_be_bytes());
        if d[23] == 6 {
            let total = usize::from(u16::from_be_bytes([d[16], d[17]]));
            let tcp = 14 + ihl..14 + total;
            d[tcp.start + 16..tcp.start + 18].copy_from_slice(&[0, 0]);
            let mut pseudo = d[26..34].to_vec();
            pseudo.extend_from_slice(&[0, 6]);
            pseudo.extend_from_slice(&((total - ihl) as u16).to_be_bytes());
            let c = !(sum(&d[tcp.clone()], sum(&pseudo, 0)) as u16);
            d[tcp.start + 16..tcp.start + 18].copy_from_slice(&c.to_be_bytes());
        }
        let shifted = Timestamp(start.0 + (ts.0 - first.0));
        w.write_packet(shifted, &d, d.len() as u32).unwrap();
    }
    w.flush().unwrap();
}

fn call(state: &AppState, tool: &str, args: Value) -> Value {
    let Value::Object(m) = args else {
        panic!("arguments are an object")
    };
    mcp_server::tools::call(state, tool, m).unwrap_or_else(|e| panic!("{tool}: {e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_from_a_real_api_server() {
    if !binaries_cached() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the kube-apiserver binaries are not cached: run scripts/k8s-test-cluster.sh build"
        );
        eprintln!("SKIPPED (not under CI): no cached kube-apiserver; run scripts/k8s-test-cluster.sh build");
        return;
    }
    let cluster = tokio::task::spawn_blocking(Cluster::start).await.unwrap();
    let opts = capture_core::enrich::kube::KubeOptions {
        kubeconfig: Some(cluster.kubeconfig()),
        context: None,
    };
    let client = capture_core::enrich::kube::client(&opts).await.unwrap();
    let pp = PostParams::default();
    // wirelens watches from the start, as a running agent does, so it sees the deletion below.
    let limits = capture_core::limits::Limits::default();
    let shared = capture_core::engine::Shared::with_limits(&limits);
    capture_core::enrich::kube::start(shared.identities.clone(), client.clone(), Duration::from_secs(30))
        .await
        .expect("the watches list every kind");

    // A node, namespaces, a Deployment (its pod comes from the controller manager), a Service.
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .create(&pp, &obj(json!({"metadata": {"name": "wl-node"}})))
        .await
        .unwrap();
    let addr = json!({"status": {"addresses": [{"type": "InternalIP", "address": "192.168.77.10"}]}});
    nodes
        .patch_status("wl-node", &PatchParams::default(), &Patch::Merge(&addr))
        .await
        .unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in ["shop", "web", "monitoring"] {
        namespaces
            .create(&pp, &obj(json!({"metadata": {"name": ns}})))
            .await
            .unwrap();
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    deployments
        .create(
            &pp,
            &obj(json!({"metadata": {"name": "payments"},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "payments"}},
                    "template": {"metadata": {"labels": {"app": "payments"}},
                        "spec": {"containers": [{"name": "app", "image": "example/payments",
                            "ports": [{"containerPort": 8080}]}]}}}})),
        )
        .await
        .unwrap();
    let shop_pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let mut payments_pod = None;
    for _ in 0..150 {
        if let Some(p) = shop_pods
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .next()
        {
            payments_pod = p.metadata.name;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let payments_pod = payments_pod.expect("the controller manager created the Deployment's pod");
    set_pod_ip(&shop_pods, &payments_pod, "10.244.1.10").await;
    let services: Api<Service> = Api::namespaced(client.clone(), "shop");
    let svc = services
        .create(
            &pp,
            &obj(json!({"metadata": {"name": "payments"},
                "spec": {"selector": {"app": "payments"}, "ports": [{"port": 80, "targetPort": 8080}]}})),
        )
        .await
        .unwrap();
    let cluster_ip = svc.spec.unwrap().cluster_ip.expect("a ClusterIP is allocated");
    // A host-network pod on the node, and the client pod.
    let mon: Api<Pod> = Api::namespaced(client.clone(), "monitoring");
    mon.create(
        &pp,
        &obj(json!({"metadata": {"name": "node-exporter-x1", "labels": {"app": "node-exporter"}},
            "spec": {"hostNetwork": true, "nodeName": "wl-node",
                "containers": [{"name": "x", "image": "example/ne", "ports": [{"containerPort": 9100, "hostPort": 9100}]}]}})),
    )
    .await
    .unwrap();
    set_pod_ip(&mon, "node-exporter-x1", "192.168.77.10").await;
    let web: Api<Pod> = Api::namespaced(client.clone(), "web");
    web.create(&pp, &bare_pod("frontend", "frontend")).await.unwrap();
    set_pod_ip(&web, "frontend", "10.244.2.20").await;

    // Creation timestamps have one-second resolution: old traffic comes after them.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let t_old = Timestamp::now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The frontend pod dies; a new one gets its IP.
    web.delete(
        "frontend",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        },
    )
    .await
    .unwrap();
    for _ in 0..100 {
        if web.get_opt("frontend").await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    web.create(&pp, &bare_pod("frontend-v2", "frontend")).await.unwrap();
    set_pod_ip(&web, "frontend-v2", "10.244.2.20").await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let t_new = Timestamp::now();

    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("cluster.pcap");
    let ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    write_pcap(
        &pcap,
        vec![
            exchange(
                "10.244.2.20:40000",
                &format!("{cluster_ip}:80"),
                t_old,
                "POST /charge HTTP/1.1\r\nHost: payments.shop\r\nContent-Length: 0\r\n\r\n",
                ok,
            ),
            exchange(
                "10.244.1.10:41000",
                "192.168.77.10:9100",
                t_old,
                "GET /metrics HTTP/1.1\r\nHost: node\r\n\r\n",
                ok,
            ),
            exchange(
                "10.244.2.20:40001",
                "10.244.1.10:8080",
                t_new,
                "POST /charge HTTP/1.1\r\nHost: payments.shop\r\nContent-Length: 0\r\n\r\n",
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
            ),
        ],
    );
    // One of the real captures, moved to the frontend pod calling the payments service.
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/pcaps/http/zeek_http_get.pcap");
    assert!(real.exists(), "{} is missing (../shared/pcaps)", real.display());
    let moved = dir.path().join("moved.pcap");
    remap(
        &real,
        &moved,
        &[("141.142.228.5", "10.244.2.20"), ("192.150.187.43", &cluster_ip)],
        t_new,
    );

    // Let the last events reach the index (it is rebuilt at most every 250 ms).
    for _ in 0..100 {
        if shared
            .identities
            .objects()
            .pods
            .iter()
            .any(|p| &*p.name == "frontend-v2" && !p.ips.is_empty())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let state = {
        let shared = shared.clone();
        let limits = limits.clone();
        tokio::task::spawn_blocking(move || {
            let mut engine = capture_core::engine::Engine::new(limits.clone(), shared.clone());
            engine.read_pcap(&pcap).unwrap();
            engine.read_pcap(&moved).unwrap();
            engine.publish();
            AppState::from_shared(shared, limits)
        })
        .await
        .unwrap()
    };
    let state = Arc::new(state);

    let fields = json!([
        "src.name",
        "src.namespace",
        "src.workload.name",
        "src.workload.kind",
        "dst.name",
        "dst.service.name",
        "dst.namespace",
        "dst.resolution",
        "status",
        "timestamp"
    ]);
    let moved = call(
        &state,
        "list_entries",
        json!({"filter": "host == \"bro.org\"", "fields": fields.clone()}),
    );
    assert_eq!(moved["total_matched"], 1, "{moved}");
    let m = &moved["entries"][0];
    assert_eq!(m["src.name"], "frontend-v2");
    assert_eq!(m["dst.service.name"], "payments");
    assert_eq!(m["dst.resolution"], "service_ip");
    assert_eq!(m["status"], 200);
    let list = call(
        &state,
        "list_entries",
        json!({"order": "asc", "fields": fields, "filter": "host != \"bro.org\""}),
    );
    let e = list["entries"].as_array().unwrap();
    assert_eq!(e.len(), 3, "{list}");
    let by = |pred: &dyn Fn(&Value) -> bool| e.iter().find(|x| pred(x)).cloned().unwrap_or_else(|| panic!("{list}"));
    // Old traffic keeps the dead pod's name; the ClusterIP is the service.
    let to_svc = by(&|x| x["dst.resolution"] == "service_ip");
    assert_eq!(to_svc["src.name"], "frontend");
    assert_eq!(to_svc["src.workload.kind"], "Pod");
    assert_eq!(to_svc["dst.service.name"], "payments");
    assert_eq!(to_svc["dst.namespace"], "shop");
    // The host-network pod is told apart on its node by the port; the Deployment is the workload.
    let scrape = by(&|x| x["dst.resolution"] == "host_network_port");
    assert_eq!(scrape["dst.name"], "node-exporter-x1");
    assert_eq!(scrape["dst.namespace"], "monitoring");
    assert_eq!(scrape["src.workload.name"], "payments");
    assert_eq!(scrape["src.workload.kind"], "Deployment");
    assert_eq!(scrape["src.name"], payments_pod.as_str());
    // New traffic from the reused IP gets the new pod.
    let new = by(&|x| x["status"] == 503);
    assert_eq!(new["src.name"], "frontend-v2");
    assert_eq!(new["dst.name"], payments_pod.as_str());
    assert_eq!(new["dst.service.name"], "payments");

    let map = call(&state, "service_map", json!({"level": "workload"}));
    let edges: Vec<(String, String, u64)> = map["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["source"].as_str().unwrap().to_string(),
                e["destination"].as_str().unwrap().to_string(),
                e["requests"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        edges.contains(&("web/frontend".into(), "shop/payments".into(), 1)),
        "{edges:?}"
    );
    assert!(
        edges.contains(&("web/frontend-v2".into(), "shop/payments".into(), 1)),
        "{edges:?}"
    );
    assert!(
        edges.contains(&("shop/payments".into(), "monitoring/node-exporter-x1".into(), 1)),
        "{edges:?}"
    );
    let stats = call(&state, "api_stats", json!({"group_by": "endpoint"}));
    let charge = stats["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == "POST /charge")
        .unwrap();
    assert_eq!(
        (charge["count"].as_u64(), charge["errors"].as_u64()),
        (Some(2), Some(1))
    );
    let wl = call(&state, "list_workloads", json!({"namespace": "shop"}));
    assert_eq!(wl["identity_source"], "kubernetes");
    assert_eq!(wl["workloads"][0]["kind"], "Deployment");
    assert_eq!(wl["workloads"][0]["services"], json!(["payments"]));

    // The API server goes away: the watches fail, identities keep serving and say stale.
    cluster.stop();
    let mut stale = false;
    for _ in 0..300 {
        if state.shared.identities.source().stale {
            stale = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stale, "identities are marked stale once the API server is gone");
    let status = call(&state, "capture_status", json!({}));
    assert_eq!(status["identities"]["stale"], true);
    assert!(status["identities"]["pods"].as_u64().unwrap() >= 3);
    let again = call(
        &state,
        "list_entries",
        json!({"filter": "src.name == \"frontend-v2\"", "fields": ["id"]}),
    );
    assert_eq!(
        again["total_matched"], 2,
        "the /charge call and the moved capture's GET"
    );
}
