//! Identities from a live cluster: one watch per kind (Pods, Services, EndpointSlices, Nodes,
//! ReplicaSets and Jobs for the owner chain, Namespaces), list-then-watch with kube's
//! exponential backoff, no polling.
//!
//! Every event updates an in-memory copy of the kind's objects (converted once, on arrival, with
//! the same reader as `--identities` dumps); a rebuild of the index is scheduled at most every
//! [`REBUILD_EVERY`], so a burst of events costs one rebuild and lookups never wait. Deleted pods
//! are kept (with their deletion time) in a bounded history, so traffic of a pod that just died
//! keeps its name. When a watch fails, identities keep serving the last known state and
//! `capture_status` says they are stale until the watch recovers.
//!
//! EndpointSlices are served as `discovery.k8s.io/v1` on current servers and only as `v1beta1`
//! on old ones (1.20): the version is discovered and the slices are read as dynamic objects.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Client, Config};
use parking_lot::Mutex;
use serde_json::Value;

use super::Identities;
use super::dump::add_object;
use super::index::{Objects, PodInfo};
use crate::time::Timestamp;

/// Shortest time between two rebuilds of the index.
pub const REBUILD_EVERY: Duration = Duration::from_millis(250);
/// Deleted pods remembered for traffic captured while they ran.
pub const MAX_DELETED_PODS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("kubeconfig {}: {reason}", path.display())]
    Kubeconfig { path: PathBuf, reason: String },
    #[error("Kubernetes configuration: {0}")]
    Config(String),
    #[error("Kubernetes client: {0}")]
    Client(#[from] kube::Error),
    #[error("the initial listing did not finish within {0:?} (kinds still listing: {1})")]
    SyncTimeout(Duration, String),
}

/// Where the cluster is: a kubeconfig (and context), or the in-cluster service account.
#[derive(Debug, Clone, Default)]
pub struct KubeOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

/// A client for `opts`: the kubeconfig file (with its context) when given, else the usual
/// inference (in-cluster service account, then `KUBECONFIG` / `~/.kube/config`).
pub async fn client(opts: &KubeOptions) -> Result<Client, KubeError> {
    let kco = kube::config::KubeConfigOptions {
        context: opts.context.clone(),
        ..Default::default()
    };
    let mut config = match &opts.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| KubeError::Kubeconfig {
                path: path.clone(),
                // kube's message repeats its causes; the innermost one says what went wrong.
                reason: std::error::Error::source(&e)
                    .and_then(std::error::Error::source)
                    .map_or_else(|| e.to_string(), |c| c.to_string()),
            })?;
            Config::from_custom_kubeconfig(kc, &kco)
                .await
                .map_err(|e| KubeError::Config(e.to_string()))?
        }
        None if opts.context.is_some() => Config::from_kubeconfig(&kco)
            .await
            .map_err(|e| KubeError::Config(e.to_string()))?,
        None => Config::infer().await.map_err(|e| KubeError::Config(e.to_string()))?,
    };
    // The watches back off on their own (exponentially, and a failure shows as stale at once);
    // the client's own retry of 503s would hide an outage for minutes.
    config.default_retry = false;
    Ok(Client::try_from(config)?)
}

/// The kinds watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Pod,
    Service,
    EndpointSlice,
    Node,
    ReplicaSet,
    Job,
    Namespace,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::Pod,
        Kind::Service,
        Kind::EndpointSlice,
        Kind::Node,
        Kind::ReplicaSet,
        Kind::Job,
        Kind::Namespace,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::Node => "Node",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::Job => "Job",
            Kind::Namespace => "Namespace",
        }
    }
}

/// One object as the index needs it, converted when its event arrives.
#[derive(Debug, Clone)]
struct Converted(Objects);

/// The watched state: per kind, objects by `namespace/name`, plus deleted pods.
#[derive(Debug, Default)]
pub struct ClusterState {
    objects: HashMap<Kind, HashMap<String, Converted>>,
    /// Objects of a relist in progress (between `Init` and `InitDone`).
    relisting: HashMap<Kind, HashMap<String, Converted>>,
    synced: HashMap<Kind, bool>,
    deleted_pods: VecDeque<PodInfo>,
    pub namespaces: usize,
    pub dirty: bool,
}

fn key_of(v: &Value) -> String {
    let m = v.get("metadata");
    let ns = m.and_then(|m| m.get("namespace")).and_then(Value::as_str).unwrap_or("");
    let name = m.and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or("");
    format!("{ns}/{name}")
}

fn convert(kind: Kind, mut v: Value) -> Result<Converted, String> {
    // Watch events carry no `kind` for typed lists on some servers; the index reader needs it.
    if let Some(m) = v.as_object_mut() {
        m.insert("kind".into(), Value::from(kind.name()));
    }
    let mut o = Objects::default();
    add_object(&mut o, &v)?;
    Ok(Converted(o))
}

impl ClusterState {
    /// Applies one watch event (the object as JSON) at wall time `now`.
    fn apply(&mut self, kind: Kind, event: Event<Value>, now: Timestamp) {
        match event {
            Event::Init => {
                self.relisting.insert(kind, HashMap::new());
            }
            Event::InitApply(v) => {
                let key = key_of(&v);
                match convert(kind, v) {
                    Ok(c) => {
                        self.relisting.entry(kind).or_default().insert(key, c);
                    }
                    Err(e) => tracing::warn!(kind = kind.name(), object = %key, "ignored: {e}"),
                }
            }
            Event::InitDone => {
                let fresh = self.relisting.remove(&kind).unwrap_or_default();
                let old = std::mem::replace(self.objects.entry(kind).or_default(), fresh);
                if kind == Kind::Pod {
                    // Pods gone while the watch was down were deleted in the meantime.
                    let gone: Vec<Converted> = old
                        .into_iter()
                        .filter(|(k, _)| !self.objects[&kind].contains_key(k))
                        .map(|(_, c)| c)
                        .collect();
                    for c in gone {
                        self.remember_deleted(c, now);
                    }
                }
                self.synced.insert(kind, true);
                self.dirty = true;
            }
            Event::Apply(v) => {
                let key = key_of(&v);
                match convert(kind, v) {
                    Ok(c) => {
                        self.objects.entry(kind).or_default().insert(key, c);
                        self.dirty = true;
                    }
                    Err(e) => tracing::warn!(kind = kind.name(), object = %key, "ignored: {e}"),
                }
            }
            Event::Delete(v) => {
                let key = key_of(&v);
                if let Some(c) = self.objects.entry(kind).or_default().remove(&key) {
                    if kind == Kind::Pod {
                        self.remember_deleted(c, now);
                    }
                    self.dirty = true;
                }
            }
        }
        self.namespaces = self.objects.get(&Kind::Namespace).map_or(0, HashMap::len);
    }

    fn remember_deleted(&mut self, c: Converted, now: Timestamp) {
        for mut p in c.0.pods {
            // When the watch saw it go: the API's deletionTimestamp is the requested deadline, in
            // whole seconds, and the IP cannot be reused before the object is removed.
            p.deleted = Some(now);
            if self.deleted_pods.len() >= MAX_DELETED_PODS {
                self.deleted_pods.pop_front();
            }
            self.deleted_pods.push_back(p);
        }
    }

    /// Whether every kind finished its first listing.
    pub fn synced(&self) -> bool {
        Kind::ALL.iter().all(|k| self.synced.get(k).copied().unwrap_or(false))
    }

    fn pending(&self) -> Vec<&'static str> {
        Kind::ALL
            .iter()
            .filter(|k| !self.synced.get(k).copied().unwrap_or(false))
            .map(|k| k.name())
            .collect()
    }

    /// Everything known, deleted pods included.
    pub fn snapshot(&self) -> Objects {
        let mut out = Objects::default();
        for objs in self.objects.values() {
            for c in objs.values() {
                out.extend(c.0.clone());
            }
        }
        out.pods.extend(self.deleted_pods.iter().cloned());
        out
    }
}

/// An event with its object as JSON.
fn to_json<K: serde::Serialize>(e: Event<K>) -> Event<Value> {
    let j = |o: K| serde_json::to_value(&o).unwrap_or(Value::Null);
    match e {
        Event::Apply(o) => Event::Apply(j(o)),
        Event::Delete(o) => Event::Delete(j(o)),
        Event::Init => Event::Init,
        Event::InitApply(o) => Event::InitApply(j(o)),
        Event::InitDone => Event::InitDone,
    }
}

/// A stream of one kind's events as JSON.
fn events<K>(api: Api<K>) -> impl Stream<Item = Result<Event<Value>, watcher::Error>> + Send
where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default,
{
    watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .map(|r| r.map(to_json))
}

/// The EndpointSlice API the server serves: `discovery.k8s.io/v1`, else `v1beta1`.
async fn endpoint_slice_api(client: &Client) -> Result<Api<DynamicObject>, KubeError> {
    let group = kube::discovery::group(client, "discovery.k8s.io").await?;
    let (ar, _) = group
        .recommended_kind("EndpointSlice")
        .ok_or_else(|| KubeError::Config("the server offers no discovery.k8s.io EndpointSlice resource".into()))?;
    tracing::info!(version = %ar.version, "watching EndpointSlices");
    Ok(Api::all_with(client.clone(), &ar))
}

/// Whether a failed request may succeed when sent again: the connection failed (reset, refused,
/// closed before the answer) or the server said it is overloaded or unavailable (429, 5xx).
/// Everything else (a 403, a 404, a body that does not parse) fails the same way every time.
fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        _ => false,
    }
}

/// [`endpoint_slice_api`], sent again after transient failures (see [`transient`]) with a
/// backoff from 100 ms to 2 s, until `sync_timeout`. The watches retry on their own once
/// started; this is the one request before them. A timeout names the last failure.
async fn discover(client: &Client, sync_timeout: Duration) -> Result<Api<DynamicObject>, KubeError> {
    let deadline = tokio::time::Instant::now() + sync_timeout;
    let mut wait = Duration::from_millis(100);
    let mut last = None;
    loop {
        match tokio::time::timeout_at(deadline, endpoint_slice_api(client)).await {
            Ok(Err(KubeError::Client(e))) if transient(&e) => {
                tracing::warn!("API discovery failed, retrying in {wait:?}: {e}");
                last = Some(e);
            }
            Ok(r) => return r,
            // The deadline passed during the attempt.
            Err(_) => {}
        }
        if tokio::time::Instant::now() + wait >= deadline {
            let what = match last {
                Some(e) => format!("API discovery; last failure: {e}"),
                None => "API discovery".into(),
            };
            return Err(KubeError::SyncTimeout(sync_timeout, what));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

/// Watches the cluster and keeps `identities` current. Returns once every kind has finished its
/// first listing (or `sync_timeout` passed, an error); the watches go on in the background until
/// the runtime stops.
pub async fn start(
    identities: Arc<Identities>,
    client: Client,
    sync_timeout: Duration,
) -> Result<Arc<Mutex<ClusterState>>, KubeError> {
    let slices = discover(&client, sync_timeout).await?;
    let state = Arc::new(Mutex::new(ClusterState::default()));
    type Events = std::pin::Pin<Box<dyn Stream<Item = (Kind, Result<Event<Value>, watcher::Error>)> + Send>>;
    let streams: Vec<Events> = vec![
        Box::pin(events(Api::<Pod>::all(client.clone())).map(|e| (Kind::Pod, e))),
        Box::pin(events(Api::<Service>::all(client.clone())).map(|e| (Kind::Service, e))),
        Box::pin(
            watcher::watcher(slices, watcher::Config::default())
                .default_backoff()
                .map(|r| (Kind::EndpointSlice, r.map(to_json))),
        ),
        Box::pin(events(Api::<Node>::all(client.clone())).map(|e| (Kind::Node, e))),
        Box::pin(events(Api::<ReplicaSet>::all(client.clone())).map(|e| (Kind::ReplicaSet, e))),
        Box::pin(events(Api::<Job>::all(client.clone())).map(|e| (Kind::Job, e))),
        Box::pin(events(Api::<Namespace>::all(client.clone())).map(|e| (Kind::Namespace, e))),
    ];
    let mut merged = futures::stream::select_all(streams);
    let (synced_tx, mut synced_rx) = tokio::sync::watch::channel(false);
    let st = state.clone();
    let ids = identities.clone();
    tokio::spawn(async move {
        let mut last_rebuild = tokio::time::Instant::now() - REBUILD_EVERY;
        let mut tick = tokio::time::interval(REBUILD_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                item = merged.next() => {
                    let Some((kind, r)) = item else { break };
                    match r {
                        Ok(ev) => {
                            let mut s = st.lock();
                            s.apply(kind, ev, Timestamp::now());
                            if ids.source().stale && s.synced() {
                                ids.set_stale(None);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(kind = kind.name(), "watch failed, retrying with backoff: {e}");
                            ids.set_stale(Some(format!("watching {}s failed: {e}", kind.name())));
                        }
                    }
                }
                _ = tick.tick() => {}
            }
            let due = last_rebuild.elapsed() >= REBUILD_EVERY;
            let mut s = st.lock();
            if s.dirty && due && s.synced() {
                s.dirty = false;
                let objects = s.snapshot();
                drop(s);
                let stale = ids.source().problem;
                ids.set(objects, "kubernetes", Some(Timestamp::now()));
                if stale.is_some() {
                    ids.set_stale(stale);
                }
                last_rebuild = tokio::time::Instant::now();
                let _ = synced_tx.send(true);
            }
        }
    });
    let waited = tokio::time::timeout(sync_timeout, async {
        while !*synced_rx.borrow() {
            if synced_rx.changed().await.is_err() {
                break;
            }
        }
    })
    .await;
    if waited.is_err() || !*synced_rx.borrow() {
        let pending = state.lock().pending().join(", ");
        return Err(KubeError::SyncTimeout(sync_timeout, pending));
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, ip: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "shop", "labels": {"app": "web"}},
               "spec": {"nodeName": "n1"}, "status": {"podIP": ip}})
    }

    fn t(s: u64) -> Timestamp {
        Timestamp::from_secs_nanos(s, 0)
    }

    fn sync_all(s: &mut ClusterState) {
        for k in Kind::ALL {
            s.apply(k, Event::Init, t(1));
            s.apply(k, Event::InitDone, t(1));
        }
    }

    #[test]
    fn events_update_objects_and_deleted_pods_keep_their_names() {
        let mut s = ClusterState::default();
        assert!(!s.synced());
        s.apply(Kind::Pod, Event::Init, t(1));
        s.apply(Kind::Pod, Event::InitApply(pod("web-1", "10.0.0.1")), t(1));
        assert!(s.snapshot().pods.is_empty(), "a relist is applied whole, at InitDone");
        s.apply(Kind::Pod, Event::InitDone, t(1));
        assert_eq!(s.snapshot().pods.len(), 1);
        assert!(!s.synced(), "the other kinds are still listing");
        sync_all(&mut s);
        assert!(s.synced());
        // sync_all relisted pods as empty: web-1 vanished during a relist, so it was deleted.
        let snap = s.snapshot();
        assert_eq!(snap.pods.len(), 1);
        assert_eq!(snap.pods[0].deleted, Some(t(1)));

        s.apply(Kind::Pod, Event::Apply(pod("web-2", "10.0.0.2")), t(5));
        s.apply(
            Kind::Service,
            Event::Apply(json!({"metadata": {"name": "web", "namespace": "shop"},
                "spec": {"clusterIP": "10.96.0.1", "selector": {"app": "web"}}})),
            t(5),
        );
        s.apply(Kind::Pod, Event::Delete(pod("web-2", "10.0.0.2")), t(9));
        let snap = s.snapshot();
        let web2 = snap.pods.iter().find(|p| &*p.name == "web-2").unwrap();
        assert_eq!(web2.deleted, Some(t(9)));
        assert_eq!(snap.services.len(), 1);
        // Malformed objects are skipped, not fatal.
        s.apply(
            Kind::Pod,
            Event::Apply(json!({"metadata": {"name": "bad"}, "status": {"podIP": "x"}})),
            t(10),
        );
        assert!(!s.snapshot().pods.iter().any(|p| &*p.name == "bad"));
    }

    #[test]
    fn deleted_pod_history_is_bounded() {
        let mut s = ClusterState::default();
        for i in 0..(MAX_DELETED_PODS + 5) {
            let p = pod(&format!("job-{i}"), "10.0.9.9");
            s.apply(Kind::Pod, Event::Apply(p.clone()), t(1));
            s.apply(Kind::Pod, Event::Delete(p), t(2));
        }
        assert_eq!(s.deleted_pods.len(), MAX_DELETED_PODS);
        assert_eq!(&*s.deleted_pods.front().unwrap().name, "job-5");
    }
}
