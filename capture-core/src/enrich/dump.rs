//! Objects from a `kubectl get pods,svc,endpointslices,nodes,deploy,rs,ds,sts,jobs,cronjobs -A -o json` dump
//! (a `List` of items; a single object or a JSON array of items also works), so that a capture
//! taken in a cluster can be analysed offline with names.
//!
//! Only what identities need is read; everything else is ignored. Bad input gives an error that
//! says which item and which field.

use std::net::IpAddr;

use serde_json::Value;

use super::index::{EndpointSliceInfo, NodeInfo, Objects, OwnerInfo, PodInfo, ServiceInfo, StrMap};
use crate::time::Timestamp;

/// Largest dump read: a 5,000-pod cluster's dump is about 100 MB.
pub const MAX_DUMP_BYTES: usize = 512 << 20;

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("the identities file is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the identities file is {0} bytes, above the {MAX_DUMP_BYTES}-byte cap")]
    TooLarge(usize),
    #[error("item {index} ({kind} {name}): {problem}")]
    Item {
        index: usize,
        kind: String,
        name: String,
        problem: String,
    },
    #[error("expected a kubectl List (`{{\"kind\": \"List\", \"items\": [...]}}`), an array of objects, or one object")]
    Shape,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn map_at(v: &Value, path: &[&str]) -> StrMap {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str().into(), v.as_str()?.into())))
                .collect()
        })
        .unwrap_or_default()
}

fn time_at(v: &Value, path: &[&str]) -> Result<Option<Timestamp>, String> {
    match str_at(v, path) {
        None => Ok(None),
        Some(s) => Timestamp::parse_rfc3339(s)
            .map(Some)
            .map_err(|e| format!("{}: `{s}` is not an RFC 3339 time ({e})", path.join("."))),
    }
}

fn ips(list: Option<&Value>, key: &str, what: &str) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    for v in list.and_then(Value::as_array).into_iter().flatten() {
        let s = if key.is_empty() {
            v.as_str()
        } else {
            v.get(key).and_then(Value::as_str)
        };
        if let Some(s) = s {
            if s.is_empty() || s == "None" {
                continue;
            }
            out.push(s.parse().map_err(|_| format!("{what}: `{s}` is not an IP address"))?);
        }
    }
    Ok(out)
}

fn controller(v: &Value) -> Option<(Box<str>, Box<str>)> {
    let refs = v.get("metadata")?.get("ownerReferences")?.as_array()?;
    let r = refs
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .or(refs.first())?;
    Some((r.get("kind")?.as_str()?.into(), r.get("name")?.as_str()?.into()))
}

fn pod(v: &Value) -> Result<PodInfo, String> {
    let status = v.get("status");
    let mut addrs = ips(status.and_then(|s| s.get("podIPs")), "ip", "status.podIPs")?;
    if addrs.is_empty()
        && let Some(s) = str_at(v, &["status", "podIP"])
    {
        addrs = ips(Some(&Value::Array(vec![Value::from(s)])), "", "status.podIP")?;
    }
    let mut ports = Vec::new();
    for c in v
        .get("spec")
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for p in c.get("ports").and_then(Value::as_array).into_iter().flatten() {
            for key in ["containerPort", "hostPort"] {
                if let Some(n) = p.get(key).and_then(Value::as_u64) {
                    ports.push(u16::try_from(n).map_err(|_| format!("ports.{key}: {n} is not a port"))?);
                }
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    Ok(PodInfo {
        name: str_at(v, &["metadata", "name"]).unwrap_or_default().into(),
        namespace: str_at(v, &["metadata", "namespace"]).unwrap_or("default").into(),
        uid: str_at(v, &["metadata", "uid"]).unwrap_or_default().into(),
        ips: addrs,
        host_network: v
            .get("spec")
            .and_then(|s| s.get("hostNetwork"))
            .and_then(Value::as_bool)
            == Some(true),
        ports,
        node: str_at(v, &["spec", "nodeName"]).map(Into::into),
        labels: map_at(v, &["metadata", "labels"]),
        annotations: map_at(v, &["metadata", "annotations"]),
        owner: controller(v),
        created: time_at(v, &["metadata", "creationTimestamp"])?,
        deleted: time_at(v, &["metadata", "deletionTimestamp"])?,
    })
}

fn service(v: &Value) -> Result<ServiceInfo, String> {
    let mut cluster_ips = ips(v.get("spec").and_then(|s| s.get("clusterIPs")), "", "spec.clusterIPs")?;
    if cluster_ips.is_empty()
        && let Some(s) = str_at(v, &["spec", "clusterIP"])
    {
        cluster_ips = ips(Some(&Value::Array(vec![Value::from(s)])), "", "spec.clusterIP")?;
    }
    Ok(ServiceInfo {
        name: str_at(v, &["metadata", "name"]).unwrap_or_default().into(),
        namespace: str_at(v, &["metadata", "namespace"]).unwrap_or("default").into(),
        cluster_ips,
        selector: map_at(v, &["spec", "selector"]),
        labels: map_at(v, &["metadata", "labels"]),
        annotations: map_at(v, &["metadata", "annotations"]),
    })
}

fn node(v: &Value) -> Result<NodeInfo, String> {
    Ok(NodeInfo {
        name: str_at(v, &["metadata", "name"]).unwrap_or_default().into(),
        addresses: ips(
            v.get("status")
                .and_then(|s| s.get("addresses"))
                .map(|a| {
                    // Hostnames are not addresses.
                    Value::Array(
                        a.as_array()
                            .into_iter()
                            .flatten()
                            .filter(|x| {
                                matches!(x.get("type").and_then(Value::as_str), Some("InternalIP" | "ExternalIP"))
                            })
                            .cloned()
                            .collect(),
                    )
                })
                .as_ref(),
            "address",
            "status.addresses",
        )?,
        labels: map_at(v, &["metadata", "labels"]),
    })
}

fn endpoint_slice(v: &Value) -> Result<Option<EndpointSliceInfo>, String> {
    let Some(service) = str_at(v, &["metadata", "labels", "kubernetes.io/service-name"]) else {
        return Ok(None);
    };
    let mut addresses = Vec::new();
    for e in v.get("endpoints").and_then(Value::as_array).into_iter().flatten() {
        addresses.extend(ips(e.get("addresses"), "", "endpoints.addresses")?);
    }
    Ok(Some(EndpointSliceInfo {
        namespace: str_at(v, &["metadata", "namespace"]).unwrap_or("default").into(),
        service: service.into(),
        addresses,
    }))
}

/// Adds one object to `out`; kinds that name no identity are skipped.
pub fn add_object(out: &mut Objects, v: &Value) -> Result<(), String> {
    match v.get("kind").and_then(Value::as_str) {
        Some("Pod") => out.pods.push(pod(v)?),
        Some("Service") => out.services.push(service(v)?),
        Some("Node") => out.nodes.push(node(v)?),
        Some("EndpointSlice") => out.endpoint_slices.extend(endpoint_slice(v)?),
        Some(kind @ ("ReplicaSet" | "Deployment" | "DaemonSet" | "StatefulSet" | "Job" | "CronJob")) => {
            out.owners.push(OwnerInfo {
                kind: kind.into(),
                name: str_at(v, &["metadata", "name"]).unwrap_or_default().into(),
                namespace: str_at(v, &["metadata", "namespace"]).unwrap_or("default").into(),
                owner: controller(v),
            })
        }
        Some("List") => {
            for item in v.get("items").and_then(Value::as_array).into_iter().flatten() {
                add_object(out, item)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Parses a dump.
pub fn parse(bytes: &[u8]) -> Result<Objects, DumpError> {
    if bytes.len() > MAX_DUMP_BYTES {
        return Err(DumpError::TooLarge(bytes.len()));
    }
    let v: Value = serde_json::from_slice(bytes)?;
    let items: Vec<&Value> = match &v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) if v.get("items").is_some() => v
            .get("items")
            .and_then(Value::as_array)
            .ok_or(DumpError::Shape)?
            .iter()
            .collect(),
        Value::Object(_) if v.get("kind").is_some() => vec![&v],
        _ => return Err(DumpError::Shape),
    };
    let mut out = Objects::default();
    for (index, item) in items.into_iter().enumerate() {
        add_object(&mut out, item).map_err(|problem| DumpError::Item {
            index,
            kind: item.get("kind").and_then(Value::as_str).unwrap_or("?").to_string(),
            name: str_at(item, &["metadata", "name"]).unwrap_or("?").to_string(),
            problem,
        })?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::index::{IdentityIndex, IndexCaps, Resolution};

    const DUMP: &str = r#"{
      "apiVersion": "v1", "kind": "List", "items": [
        {"kind": "Pod", "metadata": {"name": "payments-5f6b-k8q", "namespace": "shop", "uid": "u1",
           "creationTimestamp": "2026-01-15T09:00:00Z", "labels": {"app": "payments"},
           "ownerReferences": [{"kind": "ReplicaSet", "name": "payments-5f6b", "controller": true}]},
         "spec": {"nodeName": "node-b", "containers": [{"name": "app", "ports": [{"containerPort": 8443}]}]},
         "status": {"podIP": "10.244.2.7", "podIPs": [{"ip": "10.244.2.7"}, {"ip": "fd00::7"}]}},
        {"kind": "Pod", "metadata": {"name": "node-exporter-q1", "namespace": "monitoring",
           "ownerReferences": [{"kind": "DaemonSet", "name": "node-exporter", "controller": true}]},
         "spec": {"hostNetwork": true, "nodeName": "node-b",
                  "containers": [{"name": "x", "ports": [{"containerPort": 9100, "hostPort": 9100}]}]},
         "status": {"podIP": "192.168.0.12"}},
        {"kind": "ReplicaSet", "metadata": {"name": "payments-5f6b", "namespace": "shop",
           "ownerReferences": [{"kind": "Deployment", "name": "payments", "controller": true}]}},
        {"kind": "Service", "metadata": {"name": "payments", "namespace": "shop"},
         "spec": {"clusterIP": "10.96.4.4", "clusterIPs": ["10.96.4.4"], "selector": {"app": "payments"}}},
        {"kind": "Service", "metadata": {"name": "headless", "namespace": "shop"},
         "spec": {"clusterIP": "None", "selector": {"app": "payments"}}},
        {"kind": "Node", "metadata": {"name": "node-b"},
         "status": {"addresses": [{"type": "InternalIP", "address": "192.168.0.12"},
                                  {"type": "Hostname", "address": "node-b"}]}},
        {"kind": "ConfigMap", "metadata": {"name": "ignored"}}
      ]}"#;

    #[test]
    fn a_kubectl_list_gives_identities() {
        let o = parse(DUMP.as_bytes()).unwrap();
        assert_eq!(
            (o.pods.len(), o.services.len(), o.nodes.len(), o.owners.len()),
            (2, 2, 1, 1)
        );
        let idx = IdentityIndex::build(&o, IndexCaps::default());
        let t = Timestamp::parse_rfc3339("2026-01-15T10:00:00Z").unwrap();
        for addr in ["10.244.2.7", "fd00::7"] {
            let r = idx.resolve(addr.parse().unwrap(), 8443, t);
            assert_eq!(r.resolution, Resolution::PodIp, "{addr}");
            let id = r.identity.unwrap();
            assert_eq!(id.workload, Some(("Deployment".into(), "payments".into())));
            assert_eq!(id.services, vec![Box::from("headless"), Box::from("payments")]);
        }
        // Before the pod was created, the address was nobody's.
        let before = Timestamp::parse_rfc3339("2026-01-15T08:00:00Z").unwrap();
        assert_eq!(
            idx.resolve("10.244.2.7".parse().unwrap(), 1, before).resolution,
            Resolution::External
        );
        let exp = idx.resolve("192.168.0.12".parse().unwrap(), 9100, t);
        assert_eq!(exp.resolution, Resolution::HostNetworkPort);
        assert_eq!(exp.identity.unwrap().pod.as_deref(), Some("node-exporter-q1"));
        assert_eq!(
            idx.resolve("10.96.4.4".parse().unwrap(), 443, t).resolution,
            Resolution::ServiceIp
        );
    }

    #[test]
    fn errors_name_the_item_and_field() {
        let bad = r#"{"kind":"List","items":[{"kind":"Node","metadata":{"name":"n"}},
            {"kind":"Pod","metadata":{"name":"p","creationTimestamp":"yesterday"}}]}"#;
        let e = parse(bad.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("item 1 (Pod p)") && e.contains("creationTimestamp"), "{e}");
        let bad_ip = r#"[{"kind":"Service","metadata":{"name":"s"},"spec":{"clusterIPs":["10.0.0.300"]}}]"#;
        let e = parse(bad_ip.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("Service s") && e.contains("10.0.0.300"), "{e}");
        assert!(matches!(parse(b"42"), Err(DumpError::Shape)));
        assert!(matches!(parse(b"{\"items\": 3}"), Err(DumpError::Shape)));
        assert!(matches!(parse(b"{"), Err(DumpError::Json(_))));
    }
}
