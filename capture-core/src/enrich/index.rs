//! Kubernetes identities by IP address, at a point in time.
//!
//! The index is built from plain descriptions of the cluster's objects ([`Objects`]: pods,
//! services, nodes and the owners that name workloads), whatever their source: a `kubectl get -o
//! json` dump or the API server's watchers. It is immutable once built; a source that changes
//! builds a new one and swaps it in, so lookups never wait for the API.
//!
//! Pod IPs are reused, so every address keeps a history of who held it and when ([`Assignment`]:
//! from its creation to its deletion, plus a grace period for packets still in flight). A packet
//! is resolved at its own timestamp: traffic from a pod that just died keeps its name, and a new
//! pod on the same IP gets the new one. The history per address is bounded
//! (`max_history_per_ip`): the oldest assignments go first.
//!
//! Resolution order for an address: a pod (not host-network) holding it at that time; a service
//! ClusterIP; a node address, refined to the host-network pod of that node whose declared port
//! matches (several candidates without a port match → ambiguous); otherwise external.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use crate::time::Timestamp;

/// Labels or annotations.
pub type StrMap = BTreeMap<Box<str>, Box<str>>;

/// What a pod says about itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodInfo {
    pub name: Box<str>,
    pub namespace: Box<str>,
    pub uid: Box<str>,
    pub ips: Vec<IpAddr>,
    pub host_network: bool,
    /// Ports its containers declare (`containerPort`, and `hostPort` when set).
    pub ports: Vec<u16>,
    pub node: Option<Box<str>>,
    pub labels: StrMap,
    pub annotations: StrMap,
    /// The controller owner reference: (kind, name).
    pub owner: Option<(Box<str>, Box<str>)>,
    /// `metadata.creationTimestamp`; `None` means "since before anything we saw".
    pub created: Option<Timestamp>,
    /// `metadata.deletionTimestamp`, or when the watcher saw it deleted.
    pub deleted: Option<Timestamp>,
}

/// A service: its virtual IPs and the pods it selects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceInfo {
    pub name: Box<str>,
    pub namespace: Box<str>,
    /// ClusterIPs (none for headless services).
    pub cluster_ips: Vec<IpAddr>,
    /// Label selector; empty selects nothing (services backed by manual endpoints).
    pub selector: StrMap,
    pub labels: StrMap,
    pub annotations: StrMap,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeInfo {
    pub name: Box<str>,
    pub addresses: Vec<IpAddr>,
    pub labels: StrMap,
}

/// The endpoints an EndpointSlice lists for its service (`kubernetes.io/service-name`): how
/// services without a selector (or with extra endpoints) reach pods.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointSliceInfo {
    pub namespace: Box<str>,
    pub service: Box<str>,
    pub addresses: Vec<IpAddr>,
}

/// An object that owns pods or other owners: ReplicaSet → Deployment, Job → CronJob.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OwnerInfo {
    pub kind: Box<str>,
    pub name: Box<str>,
    pub namespace: Box<str>,
    pub owner: Option<(Box<str>, Box<str>)>,
}

/// Everything the index is built from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Objects {
    pub pods: Vec<PodInfo>,
    pub services: Vec<ServiceInfo>,
    pub nodes: Vec<NodeInfo>,
    pub owners: Vec<OwnerInfo>,
    pub endpoint_slices: Vec<EndpointSliceInfo>,
}

impl Objects {
    /// Adds another source's objects.
    pub fn extend(&mut self, o: Objects) {
        self.pods.extend(o.pods);
        self.services.extend(o.services);
        self.nodes.extend(o.nodes);
        self.owners.extend(o.owners);
        self.endpoint_slices.extend(o.endpoint_slices);
    }
}

/// How an endpoint's identity was found, or why it was not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Resolution {
    /// The address was a pod's IP at that time.
    PodIp,
    /// A host-network pod, told apart on its node by the port.
    HostNetworkPort,
    /// A node address shared by several host-network pods, none declaring this port.
    HostNetworkAmbiguous,
    /// A service ClusterIP.
    ServiceIp,
    /// A node's address (no host-network pod matched).
    NodeIp,
    /// Not a cluster address.
    #[default]
    External,
}

impl Resolution {
    pub fn name(self) -> &'static str {
        match self {
            Resolution::PodIp => "pod_ip",
            Resolution::HostNetworkPort => "host_network_port",
            Resolution::HostNetworkAmbiguous => "host_network_ambiguous",
            Resolution::ServiceIp => "service_ip",
            Resolution::NodeIp => "node_ip",
            Resolution::External => "external",
        }
    }
}

/// One end's Kubernetes identity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    pub pod: Option<Box<str>>,
    /// The pod's namespace, else the service's.
    pub namespace: Option<Box<str>>,
    /// The top controller: (kind, name), e.g. (`Deployment`, `payments`). A bare pod is its own
    /// workload (`Pod`).
    pub workload: Option<(Box<str>, Box<str>)>,
    /// For a pod: the services selecting it (sorted); for a ClusterIP: that service.
    pub services: Vec<Box<str>>,
    pub node: Option<Box<str>>,
    pub labels: Arc<StrMap>,
    pub annotations: Arc<StrMap>,
}

impl Identity {
    /// The first service, the one `service.name` shows.
    pub fn service(&self) -> Option<&str> {
        self.services.first().map(|s| &**s)
    }

    /// Best single name: pod, else service, else node.
    pub fn name(&self) -> Option<&str> {
        self.pod.as_deref().or(self.service()).or(self.node.as_deref())
    }

    fn heap_bytes(&self) -> usize {
        fn map(m: &StrMap) -> usize {
            m.iter().map(|(k, v)| k.len() + v.len() + 48).sum()
        }
        [&self.pod, &self.namespace, &self.node]
            .iter()
            .filter_map(|s| s.as_ref())
            .map(|s| s.len())
            .sum::<usize>()
            + self.workload.as_ref().map_or(0, |(k, n)| k.len() + n.len())
            + self.services.iter().map(|s| s.len() + 16).sum::<usize>()
            + map(&self.labels)
            + map(&self.annotations)
    }
}

/// A resolved endpoint: the identity (shared) and how it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub identity: Option<Arc<Identity>>,
    pub resolution: Resolution,
}

impl Resolved {
    pub const EXTERNAL: Resolved = Resolved {
        identity: None,
        resolution: Resolution::External,
    };
}

/// Who held an address, and when.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub from: Option<Timestamp>,
    /// When it was deleted; `None` while alive.
    pub deleted: Option<Timestamp>,
    /// Deletion time plus the grace period; `None` while alive.
    pub until: Option<Timestamp>,
    target: Target,
}

#[derive(Debug, Clone)]
enum Target {
    Pod(Arc<Identity>),
    Service(Arc<Identity>),
    Node {
        node: Arc<Identity>,
        /// Host-network pods of the node with their declared ports.
        host_pods: Vec<(Vec<u16>, Arc<Identity>)>,
    },
}

impl Assignment {
    fn covers(&self, ts: Timestamp) -> bool {
        self.from.is_none_or(|f| ts >= f) && self.until.is_none_or(|u| ts < u)
    }

    /// Held at `ts` for certain: created before and not yet deleted.
    fn alive(&self, ts: Timestamp) -> bool {
        self.from.is_none_or(|f| ts >= f) && self.deleted.is_none_or(|d| ts < d)
    }

    fn rank(&self) -> u8 {
        match self.target {
            Target::Pod(_) => 0,
            Target::Service(_) => 1,
            Target::Node { .. } => 2,
        }
    }
}

/// Caps of the index.
#[derive(Debug, Clone, Copy)]
pub struct IndexCaps {
    /// Assignments kept per address (past pods on a reused IP); the oldest go first.
    pub max_history_per_ip: usize,
    /// How long a deleted pod keeps its IP for packets still in flight, in ns.
    pub deletion_grace_ns: u64,
}

impl Default for IndexCaps {
    fn default() -> Self {
        IndexCaps {
            max_history_per_ip: 16,
            deletion_grace_ns: 30_000_000_000,
        }
    }
}

/// Identities by address over time. Cheap to share (`Arc`), immutable once built.
#[derive(Debug, Default)]
pub struct IdentityIndex {
    by_ip: HashMap<IpAddr, Vec<Assignment>>,
    /// Assignments dropped by `max_history_per_ip`.
    pub history_dropped: u64,
    pub pods: usize,
    pub services: usize,
    pub nodes: usize,
    /// Approximate heap bytes held.
    pub bytes: usize,
}

fn selects(selector: &StrMap, labels: &StrMap) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Owner references by (namespace, kind, name), to follow a pod up to its workload.
pub struct Owners<'a>(HashMap<(&'a str, &'a str, &'a str), &'a OwnerInfo>);

impl<'a> Owners<'a> {
    pub fn new(objects: &'a Objects) -> Self {
        Owners(
            objects
                .owners
                .iter()
                .map(|o| ((&*o.namespace, &*o.kind, &*o.name), o))
                .collect(),
        )
    }

    /// The pod's top controller: (kind, name), e.g. (`Deployment`, `web`); a bare pod is its own
    /// workload (`Pod`). At most a few hops, so a cycle in a hostile dump stops there.
    pub fn workload(&self, p: &PodInfo) -> (Box<str>, Box<str>) {
        let Some(first) = &p.owner else {
            return ("Pod".into(), p.name.clone());
        };
        let mut cur = first.clone();
        for _ in 0..4 {
            match self
                .0
                .get(&(&*p.namespace, &*cur.0, &*cur.1))
                .and_then(|o| o.owner.as_ref())
            {
                Some(next) => cur = next.clone(),
                None => break,
            }
        }
        cur
    }
}

impl IdentityIndex {
    pub fn build(objects: &Objects, caps: IndexCaps) -> IdentityIndex {
        let owners = Owners::new(objects);
        let mut idx = IdentityIndex {
            pods: objects.pods.len(),
            services: objects.services.len(),
            nodes: objects.nodes.len(),
            ..IdentityIndex::default()
        };
        let mut pod_ids: Vec<(&PodInfo, Arc<Identity>)> = Vec::with_capacity(objects.pods.len());
        for p in &objects.pods {
            let mut services: Vec<Box<str>> = objects
                .services
                .iter()
                .filter(|s| s.namespace == p.namespace && selects(&s.selector, &p.labels))
                .map(|s| s.name.clone())
                .chain(
                    objects
                        .endpoint_slices
                        .iter()
                        .filter(|e| e.namespace == p.namespace && e.addresses.iter().any(|a| p.ips.contains(a)))
                        .map(|e| e.service.clone()),
                )
                .collect();
            services.sort();
            services.dedup();
            let workload = owners.workload(p);
            let id = Arc::new(Identity {
                pod: Some(p.name.clone()),
                namespace: Some(p.namespace.clone()),
                workload: Some(workload),
                services,
                node: p.node.clone(),
                labels: Arc::new(p.labels.clone()),
                annotations: Arc::new(p.annotations.clone()),
            });
            idx.bytes += id.heap_bytes() + 64;
            pod_ids.push((p, id));
        }
        let grace = |t: Timestamp| Timestamp(t.0.saturating_add(caps.deletion_grace_ns));
        for (p, id) in &pod_ids {
            if p.host_network {
                continue;
            }
            for ip in &p.ips {
                idx.push(
                    *ip,
                    Assignment {
                        from: p.created,
                        deleted: p.deleted,
                        until: p.deleted.map(grace),
                        target: Target::Pod(id.clone()),
                    },
                );
            }
        }
        for s in &objects.services {
            let id = Arc::new(Identity {
                namespace: Some(s.namespace.clone()),
                services: vec![s.name.clone()],
                labels: Arc::new(s.labels.clone()),
                annotations: Arc::new(s.annotations.clone()),
                ..Identity::default()
            });
            idx.bytes += id.heap_bytes() + 64;
            for ip in &s.cluster_ips {
                idx.push(
                    *ip,
                    Assignment {
                        from: None,
                        deleted: None,
                        until: None,
                        target: Target::Service(id.clone()),
                    },
                );
            }
        }
        for n in &objects.nodes {
            let node = Arc::new(Identity {
                node: Some(n.name.clone()),
                labels: Arc::new(n.labels.clone()),
                ..Identity::default()
            });
            let host_pods: Vec<(Vec<u16>, Arc<Identity>)> = pod_ids
                .iter()
                .filter(|(p, _)| p.host_network && p.deleted.is_none() && p.node.as_deref() == Some(&*n.name))
                .map(|(p, id)| (p.ports.clone(), id.clone()))
                .collect();
            idx.bytes += node.heap_bytes() + 64 + host_pods.len() * 32;
            for ip in &n.addresses {
                idx.push(
                    *ip,
                    Assignment {
                        from: None,
                        deleted: None,
                        until: None,
                        target: Target::Node {
                            node: node.clone(),
                            host_pods: host_pods.clone(),
                        },
                    },
                );
            }
        }
        for list in idx.by_ip.values_mut() {
            // Newest first within a rank, so a lookup takes the latest holder that covers ts.
            list.sort_by(|a, b| a.rank().cmp(&b.rank()).then(b.from.cmp(&a.from)));
            if list.len() > caps.max_history_per_ip {
                // Drop the oldest pods' assignments first.
                let mut pods: Vec<usize> = (0..list.len()).filter(|&i| list[i].rank() == 0).collect();
                pods.sort_by_key(|&i| list[i].from);
                let excess = list.len() - caps.max_history_per_ip;
                let drop: std::collections::HashSet<usize> = pods.into_iter().take(excess).collect();
                idx.history_dropped += drop.len() as u64;
                let mut i = 0;
                list.retain(|_| {
                    let keep = !drop.contains(&i);
                    i += 1;
                    keep
                });
            }
        }
        idx.bytes += idx.by_ip.len() * 64;
        idx
    }

    fn push(&mut self, ip: IpAddr, a: Assignment) {
        self.by_ip.entry(ip).or_default().push(a);
    }

    /// Who held an address at `ts`. Pods first: one certainly alive then (created before, deleted
    /// after) wins, because a live pod's IP is its own; creation times have one-second
    /// resolution, so a pod that replaced it can look as if it existed in that second too. Then
    /// the newest pod alive with no deletion known, then a pod deleted within the grace period
    /// (packets in flight), then services and nodes.
    fn holder(list: &[Assignment], ts: Timestamp) -> Option<&Assignment> {
        let pods = || list.iter().filter(|a| a.rank() == 0);
        pods()
            .filter(|a| a.alive(ts) && a.deleted.is_some())
            .min_by_key(|a| a.from)
            .or_else(|| pods().filter(|a| a.alive(ts)).max_by_key(|a| a.from))
            .or_else(|| pods().filter(|a| a.covers(ts)).max_by_key(|a| a.deleted))
            .or_else(|| list.iter().filter(|a| a.rank() > 0).find(|a| a.covers(ts)))
    }

    /// The identity of `ip:port` at `ts`.
    pub fn resolve(&self, ip: IpAddr, port: u16, ts: Timestamp) -> Resolved {
        let Some(list) = self.by_ip.get(&ip) else {
            return Resolved::EXTERNAL;
        };
        let Some(a) = Self::holder(list, ts) else {
            return Resolved::EXTERNAL;
        };
        {
            match &a.target {
                Target::Pod(id) => Resolved {
                    identity: Some(id.clone()),
                    resolution: Resolution::PodIp,
                },
                Target::Service(id) => Resolved {
                    identity: Some(id.clone()),
                    resolution: Resolution::ServiceIp,
                },
                Target::Node { node, host_pods } => {
                    let by_port: Vec<&Arc<Identity>> = host_pods
                        .iter()
                        .filter(|(ports, _)| ports.contains(&port))
                        .map(|(_, id)| id)
                        .collect();
                    match by_port.as_slice() {
                        [one] => Resolved {
                            identity: Some((*one).clone()),
                            resolution: Resolution::HostNetworkPort,
                        },
                        _ if host_pods.len() > 1 || by_port.len() > 1 => Resolved {
                            identity: Some(node.clone()),
                            resolution: Resolution::HostNetworkAmbiguous,
                        },
                        _ => Resolved {
                            identity: Some(node.clone()),
                            resolution: Resolution::NodeIp,
                        },
                    }
                }
            }
        }
    }

    /// Addresses known.
    pub fn addresses(&self) -> usize {
        self.by_ip.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(kv: &[(&str, &str)]) -> StrMap {
        kv.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    }

    fn pod(name: &str, ns: &str, ip: &str, app: &str) -> PodInfo {
        PodInfo {
            name: name.into(),
            namespace: ns.into(),
            ips: vec![ip.parse().unwrap()],
            labels: labels(&[("app", app)]),
            node: Some("node-a".into()),
            ..PodInfo::default()
        }
    }

    fn t(s: u64) -> Timestamp {
        Timestamp::from_secs_nanos(s, 0)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn objects() -> Objects {
        let mut web = pod("web-7d9c-x2x", "shop", "10.244.1.5", "web");
        web.owner = Some(("ReplicaSet".into(), "web-7d9c".into()));
        Objects {
            pods: vec![web],
            services: vec![ServiceInfo {
                name: "web".into(),
                namespace: "shop".into(),
                cluster_ips: vec![ip("10.96.0.10")],
                selector: labels(&[("app", "web")]),
                ..ServiceInfo::default()
            }],
            nodes: vec![NodeInfo {
                name: "node-a".into(),
                addresses: vec![ip("192.168.1.10")],
                ..NodeInfo::default()
            }],
            owners: vec![
                OwnerInfo {
                    kind: "ReplicaSet".into(),
                    name: "web-7d9c".into(),
                    namespace: "shop".into(),
                    owner: Some(("Deployment".into(), "web".into())),
                },
                // A hostile cycle must not hang the build.
                OwnerInfo {
                    kind: "Job".into(),
                    name: "loop".into(),
                    namespace: "shop".into(),
                    owner: Some(("Job".into(), "loop".into())),
                },
            ],
            endpoint_slices: Vec::new(),
        }
    }

    #[test]
    fn pods_services_nodes_and_external() {
        let idx = IdentityIndex::build(&objects(), IndexCaps::default());
        let r = idx.resolve(ip("10.244.1.5"), 8080, t(100));
        assert_eq!(r.resolution, Resolution::PodIp);
        let id = r.identity.unwrap();
        assert_eq!(id.pod.as_deref(), Some("web-7d9c-x2x"));
        assert_eq!(id.namespace.as_deref(), Some("shop"));
        assert_eq!(id.workload, Some(("Deployment".into(), "web".into())));
        assert_eq!(id.service(), Some("web"));
        assert_eq!(id.node.as_deref(), Some("node-a"));

        let s = idx.resolve(ip("10.96.0.10"), 80, t(100));
        assert_eq!(s.resolution, Resolution::ServiceIp);
        assert_eq!(s.identity.unwrap().name(), Some("web"));

        let n = idx.resolve(ip("192.168.1.10"), 10250, t(100));
        assert_eq!(n.resolution, Resolution::NodeIp);
        assert_eq!(n.identity.unwrap().node.as_deref(), Some("node-a"));

        assert_eq!(idx.resolve(ip("8.8.8.8"), 53, t(100)), Resolved::EXTERNAL);
    }

    #[test]
    fn reused_ips_resolve_by_time() {
        let mut o = objects();
        o.pods[0].created = Some(t(100));
        o.pods[0].deleted = Some(t(200));
        let mut new = pod("web-7d9c-q9z", "shop", "10.244.1.5", "web");
        new.created = Some(t(210));
        o.pods.push(new);
        let idx = IdentityIndex::build(&o, IndexCaps::default());
        let name = |s| {
            idx.resolve(ip("10.244.1.5"), 80, t(s))
                .identity
                .and_then(|i| i.pod.clone())
        };
        assert_eq!(name(150).as_deref(), Some("web-7d9c-x2x"));
        // Within the grace period after deletion, before the new pod exists: the old name.
        assert_eq!(name(205).as_deref(), Some("web-7d9c-x2x"));
        // Both cover 215 (grace): the newer holder wins.
        assert_eq!(name(215).as_deref(), Some("web-7d9c-q9z"));
        assert_eq!(name(400).as_deref(), Some("web-7d9c-q9z"));
        // Before the first pod existed: nobody.
        assert_eq!(name(50), None);
    }

    #[test]
    fn a_replacement_created_in_the_same_second_does_not_take_earlier_traffic() {
        let mut o = objects();
        // Old pod deleted at 200.6 s; its replacement's creation time reads 200 s (truncated).
        o.pods[0].created = Some(t(100));
        o.pods[0].deleted = Some(Timestamp(200_600_000_000));
        let mut new = pod("web-7d9c-q9z", "shop", "10.244.1.5", "web");
        new.created = Some(t(200));
        o.pods.push(new);
        let idx = IdentityIndex::build(&o, IndexCaps::default());
        let name = |ns: u64| {
            idx.resolve(ip("10.244.1.5"), 80, Timestamp(ns))
                .identity
                .and_then(|i| i.pod.clone())
        };
        assert_eq!(
            name(200_300_000_000).as_deref(),
            Some("web-7d9c-x2x"),
            "the old pod was alive"
        );
        assert_eq!(name(200_700_000_000).as_deref(), Some("web-7d9c-q9z"));
    }

    #[test]
    fn host_network_pods_by_port() {
        let mut o = objects();
        for (name, port) in [("kube-proxy-abc", 10256u16), ("node-exporter-xyz", 9100)] {
            let mut p = pod(name, "kube-system", "192.168.1.10", name);
            p.host_network = true;
            p.ports = vec![port];
            p.owner = Some((
                "DaemonSet".into(),
                name.split('-').take(2).collect::<Vec<_>>().join("-").into(),
            ));
            o.pods.push(p);
        }
        let idx = IdentityIndex::build(&o, IndexCaps::default());
        let r = idx.resolve(ip("192.168.1.10"), 9100, t(1));
        assert_eq!(r.resolution, Resolution::HostNetworkPort);
        assert_eq!(r.identity.as_ref().unwrap().pod.as_deref(), Some("node-exporter-xyz"));
        assert_eq!(
            r.identity.unwrap().workload,
            Some(("DaemonSet".into(), "node-exporter".into()))
        );
        let amb = idx.resolve(ip("192.168.1.10"), 22, t(1));
        assert_eq!(amb.resolution, Resolution::HostNetworkAmbiguous);
        assert_eq!(amb.identity.unwrap().node.as_deref(), Some("node-a"));
    }

    #[test]
    fn history_per_ip_is_bounded() {
        let mut o = Objects::default();
        for i in 0..40u64 {
            let mut p = pod(&format!("job-{i}"), "batch", "10.244.9.9", "job");
            p.created = Some(t(i * 10));
            p.deleted = Some(t(i * 10 + 5));
            o.pods.push(p);
        }
        let caps = IndexCaps {
            max_history_per_ip: 8,
            deletion_grace_ns: 0,
        };
        let idx = IdentityIndex::build(&o, caps);
        assert_eq!(idx.history_dropped, 32);
        let name = |s| {
            idx.resolve(ip("10.244.9.9"), 1, t(s))
                .identity
                .and_then(|i| i.pod.clone())
        };
        assert_eq!(name(392).as_deref(), Some("job-39"));
        assert_eq!(name(322).as_deref(), Some("job-32"));
        assert_eq!(name(12), None, "the oldest history was dropped");
    }

    #[test]
    fn endpoint_slices_add_services_without_selectors() {
        let mut o = objects();
        o.endpoint_slices.push(EndpointSliceInfo {
            namespace: "shop".into(),
            service: "legacy-web".into(),
            addresses: vec![ip("10.244.1.5")],
        });
        o.endpoint_slices.push(EndpointSliceInfo {
            namespace: "other".into(),
            service: "elsewhere".into(),
            addresses: vec![ip("10.244.1.5")],
        });
        let idx = IdentityIndex::build(&o, IndexCaps::default());
        let id = idx.resolve(ip("10.244.1.5"), 80, t(1)).identity.unwrap();
        assert_eq!(id.services, vec![Box::from("legacy-web"), Box::from("web")]);
    }

    #[test]
    fn services_select_by_every_label_in_their_namespace() {
        let mut o = objects();
        o.services.push(ServiceInfo {
            name: "other-ns".into(),
            namespace: "web".into(),
            selector: labels(&[("app", "web")]),
            ..ServiceInfo::default()
        });
        o.services.push(ServiceInfo {
            name: "narrower".into(),
            namespace: "shop".into(),
            selector: labels(&[("app", "web"), ("tier", "front")]),
            ..ServiceInfo::default()
        });
        o.services.push(ServiceInfo {
            name: "a-also-web".into(),
            namespace: "shop".into(),
            selector: labels(&[("app", "web")]),
            ..ServiceInfo::default()
        });
        let idx = IdentityIndex::build(&o, IndexCaps::default());
        let id = idx.resolve(ip("10.244.1.5"), 80, t(1)).identity.unwrap();
        assert_eq!(id.services, vec![Box::from("a-also-web"), Box::from("web")]);
    }
}
