//! `list_workloads`: the workloads and pods the identities know, their addresses, and whether
//! traffic from or to them was captured.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;

use capture_core::store::Order;
use serde_json::{Map, Value};
use tools_schema::{ListWorkloadsParams, ListWorkloadsResult, PodOut, WorkloadOut};

use super::work::Work;
use super::{ToolError, err, parse_args};
use crate::convert;
use crate::state::AppState;

pub const DESCRIPTION: &str = "The Kubernetes workloads (Deployments, StatefulSets, DaemonSets, CronJobs, Jobs, bare \
pods) and their pods known from the identities (--demo, --identities), with IPs, nodes, the services selecting \
them, labels, and how many captured entries each pod sent and received. Filter by `namespace`, `name_regex`, \
`labels` (all must match) and `kind`. Use it to find a workload's addresses or to check that a workload was seen \
at all.";

const DEFAULT_LIMIT: u32 = 200;
pub const MAX_LIMIT: u32 = 1000;

pub fn run(state: &AppState, args: Map<String, Value>) -> Result<ListWorkloadsResult, ToolError> {
    run_with(state, args, &Work::none())
}

pub fn run_with(state: &AppState, args: Map<String, Value>, work: &Work<'_>) -> Result<ListWorkloadsResult, ToolError> {
    if let Some(hub) = &state.hub {
        return hub.list_workloads(args);
    }
    let p: ListWorkloadsParams = parse_args("list_workloads", args)?;
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return err(format!("`limit` must be between 1 and {MAX_LIMIT} (got {limit})"));
    }
    let name_re = p
        .name_regex
        .as_deref()
        .map(|r| {
            regex::RegexBuilder::new(r)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| ToolError(format!("`name_regex` is not a valid regular expression: {e}")))
        })
        .transpose()?;
    let objects = state.shared.identities.objects();
    let source = state.shared.identities.source();

    // Entries per pod (namespace, name) as requester and responder: one pass over the store.
    let mut seen: HashMap<(Box<str>, Box<str>), (u64, u64)> = HashMap::new();
    let in_store = state.shared.store.len() as u64;
    let mut scanned = 0u64;
    let scope = crate::cluster::scope::current();
    state.shared.store.scan(Order::Asc, None, &mut |e| {
        scanned += 1;
        if work.tick(scanned, in_store).is_break() {
            return ControlFlow::Break(());
        }
        if !super::filter::in_scope(scope.as_deref(), e) {
            return ControlFlow::Continue(());
        }
        for (i, r) in [&e.peers.src, &e.peers.dst].into_iter().enumerate() {
            if let Some(id) = r.identity.as_deref()
                && let (Some(pod), Some(ns)) = (id.pod.as_deref(), id.namespace.as_deref())
            {
                let slot = seen.entry((ns.into(), pod.into())).or_default();
                if i == 0 {
                    slot.0 += 1;
                } else {
                    slot.1 += 1;
                }
            }
        }
        ControlFlow::Continue(())
    });
    if work.is_cancelled() {
        return Err(work.stopped_error("list_workloads"));
    }
    let mut connections: HashMap<(Box<str>, Box<str>), u64> = HashMap::new();
    for f in super::filter::select_flows(state, state.shared.flows.snapshot(), None)? {
        for r in [&f.peers.src, &f.peers.dst] {
            if let Some(id) = r.identity.as_deref()
                && let (Some(pod), Some(ns)) = (id.pod.as_deref(), id.namespace.as_deref())
            {
                *connections.entry((ns.into(), pod.into())).or_default() += 1;
            }
        }
    }

    let mut groups: BTreeMap<(String, String, String), WorkloadOut> = BTreeMap::new();
    let owners = capture_core::enrich::index::Owners::new(&objects);
    for pod in &objects.pods {
        let (kind, name) = owners.workload(pod);
        let (kind, name) = (kind.to_string(), name.to_string());
        let ns = pod.namespace.to_string();
        let w = groups
            .entry((ns.clone(), kind.clone(), name.clone()))
            .or_insert_with(|| WorkloadOut {
                kind,
                name,
                namespace: ns.clone(),
                labels: pod.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                ..WorkloadOut::default()
            });
        let key = (pod.namespace.clone(), pod.name.clone());
        let (as_src, as_dst) = seen.get(&key).copied().unwrap_or_default();
        let conns = connections.get(&key).copied().unwrap_or_default();
        w.traffic_seen |= as_src + as_dst + conns > 0;
        for s in objects
            .services
            .iter()
            .filter(|s| s.namespace == pod.namespace && !s.selector.is_empty())
            .filter(|s| s.selector.iter().all(|(k, v)| pod.labels.get(k) == Some(v)))
        {
            if !w.services.iter().any(|x| **x == *s.name) {
                w.services.push(s.name.to_string());
            }
        }
        w.pods.push(PodOut {
            name: pod.name.to_string(),
            ips: pod.ips.iter().map(|ip| ip.to_string()).collect(),
            node: pod.node.as_deref().map(str::to_string),
            host_network: pod.host_network,
            created: pod.created.map(|t| t.to_rfc3339()),
            deleted: pod.deleted.map(|t| t.to_rfc3339()),
            entries_as_source: as_src,
            entries_as_destination: as_dst,
            connections: conns,
        });
    }
    let matches = |w: &WorkloadOut| {
        p.namespace.as_deref().is_none_or(|n| w.namespace == n)
            && p.kind.as_deref().is_none_or(|k| w.kind.eq_ignore_ascii_case(k))
            && name_re.as_ref().is_none_or(|r| r.is_match(&w.name))
            && p.labels.as_ref().is_none_or(|want| {
                // Every listed label on at least one pod of the workload.
                objects.pods.iter().any(|pod| {
                    *pod.namespace == *w.namespace
                        && w.pods.iter().any(|x| x.name == *pod.name)
                        && want
                            .iter()
                            .all(|(k, v)| pod.labels.get(k.as_str()).is_some_and(|x| **x == **v))
                })
            })
    };
    let mut workloads: Vec<WorkloadOut> = groups.into_values().filter(|w| matches(w)).collect();
    let total = workloads.len() as u64;
    workloads.truncate(limit as usize);
    for w in &mut workloads {
        w.services.sort();
    }
    let mut coverage = convert::coverage(&state.shared);
    if objects.pods.is_empty() {
        coverage
            .notes
            .push("no Kubernetes identities are loaded (start with --identities FILE or --demo)".into());
    }
    Ok(ListWorkloadsResult {
        workloads,
        total_matched: total,
        identity_source: source.kind,
        identity_stale: source.stale,
        coverage,
    })
}
