//! The Kubernetes objects behind the demo's addresses, so `--demo` shows pods, workloads,
//! services, namespaces and nodes as a cluster capture with `--identities` would.
//!
//! One node per pod subnet (`10.42.N.0/24` runs on `node-N`, in zone `zone-a` except `node-4`,
//! the other zone inventory runs in). Stateless services are Deployments (pods named
//! `name-<replicaset hash>-<pod hash>`), the data stores StatefulSets (`name-0`). Every service
//! selects `app: <name>`; `kube-dns` is reached through its ClusterIP `10.96.0.10`, backed by a
//! CoreDNS pod. `inventory` has two ReplicaSets (the rollout of [`super::demo::DEMO_ROLLOUT_AT`]):
//! both pods carry `app: inventory`, their own `pod-template-hash` and their
//! `app.kubernetes.io/version`, and the new one was created shortly before the rollout.

use std::net::{IpAddr, Ipv4Addr};

use super::demo::{DEMO_ROLLOUT_AT, DEMO_START, demo_pod_version, demo_rollout, demo_services};
use crate::enrich::index::{NodeInfo, Objects, OwnerInfo, PodInfo, ServiceInfo, StrMap};
use crate::time::Timestamp;

fn map(kv: &[(&str, &str)]) -> StrMap {
    kv.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
}

/// The subnet's node: `10.42.N.x` → `node-N`.
fn node_of(ip: IpAddr) -> Option<u8> {
    match ip {
        IpAddr::V4(v4) if v4.octets()[..2] == [10, 42] => Some(v4.octets()[2]),
        _ => None,
    }
}

/// The demo's cluster.
pub fn demo_objects() -> Objects {
    // Everything existed an hour before the capture.
    let created = Some(Timestamp(DEMO_START.0.saturating_sub(3_600_000_000_000)));
    let rollout = demo_rollout();
    let mut o = Objects::default();
    for n in 1..=5u8 {
        o.nodes.push(NodeInfo {
            name: format!("node-{n}").into(),
            addresses: vec![IpAddr::V4(Ipv4Addr::new(192, 168, 10, n))],
            labels: map(&[
                ("kubernetes.io/hostname", &format!("node-{n}")),
                ("topology.kubernetes.io/zone", if n == 4 { "zone-b" } else { "zone-a" }),
            ]),
        });
    }
    for s in demo_services() {
        let (pod_ip, pod_name, node) = if s.name == "kube-dns" {
            // The demo's clients query the ClusterIP; the pod behind it has its own address.
            (
                IpAddr::V4(Ipv4Addr::new(10, 42, 1, 5)),
                "coredns-6f9c8d7b5-k7p2x",
                Some(1),
            )
        } else {
            (s.ip, s.pod_name, node_of(s.ip))
        };
        let stateful = pod_name.ends_with("-0");
        let mut labels = vec![
            ("app", if s.name == "kube-dns" { "kube-dns" } else { s.name }),
            ("app.kubernetes.io/part-of", "shop-demo"),
            ("app.kubernetes.io/version", demo_pod_version(pod_name)),
        ];
        let owner = if stateful {
            o.owners.push(OwnerInfo {
                kind: "StatefulSet".into(),
                name: s.name.into(),
                namespace: s.namespace.into(),
                owner: None,
            });
            ("StatefulSet", s.name.to_string())
        } else {
            // name-<rs hash>-<pod hash>: the ReplicaSet is the name without the last part.
            let rs = pod_name.rsplit_once('-').map_or(pod_name, |(a, _)| a).to_string();
            let deployment = rs.rsplit_once('-').map_or(rs.as_str(), |(a, _)| a).to_string();
            // The ReplicaSet's hash, as the Deployment controller labels its pods.
            if let Some((_, hash)) = pod_name.rsplit_once('-').and_then(|(a, _)| a.rsplit_once('-')) {
                labels.push(("pod-template-hash", hash));
            }
            o.owners.push(OwnerInfo {
                kind: "ReplicaSet".into(),
                name: rs.clone().into(),
                namespace: s.namespace.into(),
                owner: Some(("Deployment".into(), deployment.into())),
            });
            ("ReplicaSet", rs)
        };
        let app = if s.name == "kube-dns" { "kube-dns" } else { s.name };
        o.pods.push(PodInfo {
            name: pod_name.into(),
            namespace: s.namespace.into(),
            uid: format!("demo-{pod_name}").into(),
            ips: vec![pod_ip],
            host_network: false,
            ports: vec![s.port],
            node: node.map(|n| format!("node-{n}").into()),
            labels: map(&labels),
            annotations: map(&[("demo.wirelens.dev/role", s.name)]),
            owner: Some((owner.0.into(), owner.1.into())),
            // The rollout's new pod became ready 20 s before it took the traffic.
            created: if pod_name == rollout.new_pod {
                Some(Timestamp(DEMO_ROLLOUT_AT.0 - 20_000_000_000))
            } else {
                created
            },
            deleted: None,
        });
        if o.services.iter().any(|svc| &*svc.name == s.name) {
            // A second pod of the same service (the rollout): one Service selects both.
            continue;
        }
        let cluster_ips = if s.name == "kube-dns" {
            vec![s.ip]
        } else {
            // ClusterIPs the demo's traffic does not use (clients reach pods directly), as
            // in a capture taken after kube-proxy's DNAT.
            vec![IpAddr::V4(Ipv4Addr::new(10, 96, 1, o.services.len() as u8 + 20))]
        };
        o.services.push(ServiceInfo {
            name: s.name.into(),
            namespace: s.namespace.into(),
            cluster_ips,
            selector: map(&[("app", app)]),
            labels: map(&[("app", app)]),
            annotations: StrMap::new(),
        });
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::index::{IdentityIndex, IndexCaps, Resolution};

    #[test]
    fn every_demo_address_has_its_pod_workload_and_service() {
        let idx = IdentityIndex::build(&demo_objects(), IndexCaps::default());
        // Every pod runs at the rollout (the new `inventory` pod is created shortly before).
        for s in demo_services() {
            let r = idx.resolve(s.ip, s.port, DEMO_ROLLOUT_AT);
            let id = r.identity.unwrap_or_else(|| panic!("{} unresolved", s.name));
            assert_eq!(id.namespace.as_deref(), Some(s.namespace), "{}", s.name);
            assert_eq!(id.service(), Some(s.name), "{}", s.name);
            if s.name == "kube-dns" {
                assert_eq!(r.resolution, Resolution::ServiceIp);
                continue;
            }
            assert_eq!(r.resolution, Resolution::PodIp, "{}", s.name);
            assert_eq!(id.pod.as_deref(), Some(s.pod_name));
            let (kind, name) = id.workload.clone().unwrap();
            assert_eq!(&*name, s.name, "{}", s.name);
            let want = if s.pod_name.ends_with("-0") {
                "StatefulSet"
            } else {
                "Deployment"
            };
            assert_eq!(&*kind, want, "{}", s.name);
            assert!(id.node.as_deref().unwrap().starts_with("node-"));
        }
        // The rollout's two pods: one Deployment, one Service, two ReplicaSets and versions; the
        // new pod did not exist when the capture started.
        let r = demo_rollout();
        let pods: Vec<_> = demo_services().into_iter().filter(|s| s.name == "inventory").collect();
        assert_eq!(pods.len(), 2);
        let ids: Vec<_> = pods
            .iter()
            .map(|s| idx.resolve(s.ip, s.port, DEMO_ROLLOUT_AT).identity.unwrap())
            .collect();
        assert_eq!(
            [ids[0].pod.as_deref(), ids[1].pod.as_deref()],
            [Some(r.old_pod), Some(r.new_pod)]
        );
        let label = |i: usize, k: &str| ids[i].labels.get(k).map(|v| v.to_string());
        assert_eq!(label(0, "app.kubernetes.io/version").as_deref(), Some(r.old_version));
        assert_eq!(label(1, "app.kubernetes.io/version").as_deref(), Some(r.new_version));
        assert_eq!(
            [label(0, "pod-template-hash"), label(1, "pod-template-hash")],
            [
                r.old_replicaset.strip_prefix("inventory-").map(str::to_string),
                r.new_replicaset.strip_prefix("inventory-").map(str::to_string)
            ]
        );
        assert!(idx.resolve(pods[1].ip, 8080, DEMO_START).identity.is_none());
        assert_eq!(o_services_named(&demo_objects(), "inventory"), 1);
        let inv = demo_services().into_iter().find(|s| s.name == "inventory").unwrap();
        let node = idx
            .resolve(inv.ip, 1, DEMO_START)
            .identity
            .unwrap()
            .node
            .clone()
            .unwrap();
        assert_eq!(&*node, "node-4");
    }

    fn o_services_named(o: &Objects, name: &str) -> usize {
        o.services.iter().filter(|s| &*s.name == name).count()
    }
}
