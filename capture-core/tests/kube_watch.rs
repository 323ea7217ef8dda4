//! The Kubernetes watcher against a small local fake of the API server's list/watch protocol:
//! the paths a 1.20 server cannot exercise (EndpointSlice v1, a watch expiring with 410 Gone, a
//! dropped connection, an API that stops answering). The fake answers discovery, lists (with a
//! resourceVersion) and chunked watch streams of JSON events, scripted per test.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use capture_core::enrich::Identities;
use capture_core::enrich::kube::{KubeOptions, client, start};
use capture_core::time::Timestamp;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// What the fake serves: the current items per collection path, watch event feeds for pods,
/// and whether it answers at all.
#[derive(Default)]
struct Fake {
    items: HashMap<&'static str, Vec<Value>>,
    /// Events pushed to open pod watches.
    pod_watchers: Vec<mpsc::UnboundedSender<Option<Value>>>,
    /// When set, every request is answered with this status line (and a Status body).
    down: Option<&'static str>,
    lists: HashMap<String, u32>,
    /// Requests still to be answered by closing the connection (a reset API server or a load
    /// balancer in between).
    drop_next: u32,
}

const UNAVAILABLE: &str = "503 Service Unavailable";

const COLLECTIONS: [(&str, &str); 7] = [
    ("/api/v1/pods", "PodList"),
    ("/api/v1/services", "ServiceList"),
    ("/apis/discovery.k8s.io/v1/endpointslices", "EndpointSliceList"),
    ("/api/v1/nodes", "NodeList"),
    ("/apis/apps/v1/replicasets", "ReplicaSetList"),
    ("/apis/batch/v1/jobs", "JobList"),
    ("/api/v1/namespaces", "NamespaceList"),
];

fn pod(name: &str, ip: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "uid": name, "resourceVersion": "5",
            "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "x"}], "nodeName": "n1"},
        "status": {"podIP": ip}})
}

fn discovery_group() -> Value {
    json!({"kind": "APIGroup", "apiVersion": "v1", "name": "discovery.k8s.io",
        "versions": [{"groupVersion": "discovery.k8s.io/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "discovery.k8s.io/v1", "version": "v1"}})
}

fn discovery_resources() -> Value {
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "discovery.k8s.io/v1",
        "resources": [{"name": "endpointslices", "singularName": "endpointslice", "namespaced": true,
            "kind": "EndpointSlice", "verbs": ["get", "list", "watch"]}]})
}

async fn respond(stream: &mut tokio::net::TcpStream, status: &str, body: &Value) {
    let body = body.to_string();
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
}

async fn serve(fake: Arc<Mutex<Fake>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let fake = fake.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                // Skip the headers.
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).await.unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let mut stream = reader.into_inner();
                let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                if std::env::var_os("FAKE_API_LOG").is_some() {
                    eprintln!("fake API: {target} (down: {:?})", fake.lock().down);
                }
                let down = {
                    let mut f = fake.lock();
                    if f.drop_next > 0 {
                        f.drop_next -= 1;
                        return;
                    }
                    f.down
                };
                if let Some(status) = down {
                    let code: u16 = status[..3].parse().unwrap();
                    respond(&mut stream, status, &json!({"kind": "Status", "code": code})).await;
                    return;
                }
                match path {
                    "/apis" => {
                        let body = json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [discovery_group()]});
                        return respond(&mut stream, "200 OK", &body).await;
                    }
                    "/apis/discovery.k8s.io" => return respond(&mut stream, "200 OK", &discovery_group()).await,
                    "/apis/discovery.k8s.io/v1" => {
                        return respond(&mut stream, "200 OK", &discovery_resources()).await;
                    }
                    _ => {}
                }
                let Some((coll, list_kind)) = COLLECTIONS.iter().find(|(p, _)| *p == path) else {
                    eprintln!("fake API: no {target}");
                    respond(&mut stream, "404 Not Found", &json!({"kind": "Status", "code": 404})).await;
                    return;
                };
                if !query.contains("watch=true") {
                    let items = {
                        let mut f = fake.lock();
                        *f.lists.entry(coll.to_string()).or_default() += 1;
                        f.items.get(coll).cloned().unwrap_or_default()
                    };
                    let body = json!({"kind": list_kind, "apiVersion": "v1",
                        "metadata": {"resourceVersion": "10"}, "items": items});
                    return respond(&mut stream, "200 OK", &body).await;
                }
                // A watch: chunked JSON lines, held open; pods get scripted events.
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let (tx, mut rx) = mpsc::unbounded_channel();
                if *coll == "/api/v1/pods" {
                    fake.lock().pod_watchers.push(tx);
                } else {
                    std::mem::forget(tx);
                }
                while let Some(ev) = rx.recv().await {
                    let Some(ev) = ev else {
                        // Drop the connection.
                        return;
                    };
                    let mut line = ev.to_string();
                    line.push('\n');
                    let chunk = format!("{:x}\r\n{line}\r\n", line.len());
                    if stream.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn kubeconfig(dir: &std::path::Path, addr: SocketAddr) -> std::path::PathBuf {
    let kc = json!({"apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": format!("http://{addr}")}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "u"}}],
        "current-context": "fake"});
    let p = dir.join("kubeconfig");
    std::fs::write(&p, kc.to_string()).unwrap();
    p
}

fn name_at(ids: &Identities, ip: &str, ts: Timestamp) -> Option<String> {
    ids.index()
        .resolve(ip.parse().unwrap(), 80, ts)
        .identity
        .and_then(|i| i.pod.as_deref().map(str::to_string))
}

fn push(fake: &Mutex<Fake>, ev: Option<Value>) {
    for w in &fake.lock().pod_watchers {
        let _ = w.send(ev.clone());
    }
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_watch_gone_disconnect_and_outage() {
    let fake = Arc::new(Mutex::new(Fake::default()));
    {
        let mut f = fake.lock();
        // The first requests find the connection closed: discovery sends them again.
        f.drop_next = 2;
        f.items.insert("/api/v1/pods", vec![pod("web-1", "10.1.0.1")]);
        f.items.insert(
            "/apis/discovery.k8s.io/v1/endpointslices",
            vec![json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "legacy-abc", "namespace": "shop", "resourceVersion": "3",
                    "labels": {"kubernetes.io/service-name": "legacy"}},
                "addressType": "IPv4", "endpoints": [{"addresses": ["10.1.0.1"]}]})],
        );
    }
    let addr = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let opts = KubeOptions {
        kubeconfig: Some(kubeconfig(dir.path(), addr)),
        context: None,
    };
    let ids = Arc::new(Identities::default());
    let c = client(&opts).await.unwrap();
    start(ids.clone(), c, Duration::from_secs(20))
        .await
        .expect("initial sync");
    let now = Timestamp::from_secs_nanos(1_900_000_000, 0);
    assert_eq!(name_at(&ids, "10.1.0.1", now).as_deref(), Some("web-1"));
    assert_eq!(ids.source().kind, "kubernetes");
    assert_eq!(fake.lock().drop_next, 0, "the dropped requests were sent again");
    // EndpointSlice v1 names the service of a pod no selector picks.
    let id = ids
        .index()
        .resolve("10.1.0.1".parse().unwrap(), 80, now)
        .identity
        .unwrap();
    assert_eq!(id.services, vec![Box::from("legacy")]);

    // A pod added, then the first one deleted: it keeps its name for traffic before.
    eventually("the pod watch is open", || !fake.lock().pod_watchers.is_empty()).await;
    push(
        &fake,
        Some(json!({"type": "ADDED", "object": pod("web-2", "10.1.0.2")})),
    );
    eventually("web-2 appears", || {
        name_at(&ids, "10.1.0.2", now).as_deref() == Some("web-2")
    })
    .await;
    push(
        &fake,
        Some(json!({"type": "DELETED", "object": pod("web-1", "10.1.0.1")})),
    );
    eventually("web-1 is history", || {
        ids.objects()
            .pods
            .iter()
            .any(|p| &*p.name == "web-1" && p.deleted.is_some())
    })
    .await;
    // Mid-2026: after the pod was created, before it was deleted (the wall clock of the test).
    let before = Timestamp::from_secs_nanos(1_780_000_000, 0);
    assert_eq!(name_at(&ids, "10.1.0.1", before).as_deref(), Some("web-1"));

    // 410 Gone: the watcher lists again and takes the new state whole.
    let lists_before = fake.lock().lists.get("/api/v1/pods").copied().unwrap_or(0);
    fake.lock().items.insert("/api/v1/pods", vec![pod("web-3", "10.1.0.3")]);
    push(
        &fake,
        Some(
            json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "too old resource version", "reason": "Expired", "code": 410}}),
        ),
    );
    eventually("relisted after 410", || {
        name_at(&ids, "10.1.0.3", now).as_deref() == Some("web-3")
    })
    .await;
    assert!(fake.lock().lists["/api/v1/pods"] > lists_before);
    assert_eq!(
        name_at(&ids, "10.1.0.2", now),
        None,
        "web-2 vanished during the relist: deleted"
    );
    assert!(
        ids.objects()
            .pods
            .iter()
            .any(|p| &*p.name == "web-2" && p.deleted.is_some())
    );

    // The API goes away: the last state keeps serving and the status says stale.
    fake.lock().down = Some(UNAVAILABLE);
    fake.lock().pod_watchers.clear();
    // Dropping the senders ends the open pod watches: the watcher reconnects and gets 503s.
    eventually("stale while the API is down", || ids.source().stale).await;
    assert_eq!(name_at(&ids, "10.1.0.3", now).as_deref(), Some("web-3"));
    assert!(ids.source().problem.unwrap().contains("Pod"));
    // It comes back: the next event makes the identities fresh again.
    fake.lock().down = None;
    eventually("the pod watch reopened", || !fake.lock().pod_watchers.is_empty()).await;
    push(
        &fake,
        Some(json!({"type": "ADDED", "object": pod("web-4", "10.1.0.4")})),
    );
    eventually("recovered", || {
        !ids.source().stale && name_at(&ids, "10.1.0.4", now).is_some()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_is_a_clear_error() {
    let fake = Arc::new(Mutex::new(Fake {
        down: Some(UNAVAILABLE),
        ..Fake::default()
    }));
    let addr = serve(fake).await;
    let dir = tempfile::tempdir().unwrap();
    let opts = KubeOptions {
        kubeconfig: Some(kubeconfig(dir.path(), addr)),
        context: None,
    };
    let c = client(&opts).await.unwrap();
    let e = start(Arc::new(Identities::default()), c, Duration::from_secs(3))
        .await
        .unwrap_err()
        .to_string();
    // A 503 may pass: discovery asks again until the timeout, then names the last answer.
    assert!(e.contains("did not finish within 3s") && e.contains("503"), "{e}");
    // A 403 will not: it fails at once.
    let fake = Arc::new(Mutex::new(Fake {
        down: Some("403 Forbidden"),
        ..Fake::default()
    }));
    let addr = serve(fake).await;
    let opts = KubeOptions {
        kubeconfig: Some(kubeconfig(dir.path(), addr)),
        context: None,
    };
    let c = client(&opts).await.unwrap();
    let started = std::time::Instant::now();
    let e = start(Arc::new(Identities::default()), c, Duration::from_secs(30))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("Kubernetes client") && e.contains("403"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10), "a 403 was retried: {e}");
    let bad = KubeOptions {
        kubeconfig: Some(dir.path().join("missing")),
        context: None,
    };
    let Err(e) = client(&bad).await else {
        panic!("a missing kubeconfig must fail")
    };
    let e = e.to_string();
    assert!(e.contains("missing"), "{e}");
}
