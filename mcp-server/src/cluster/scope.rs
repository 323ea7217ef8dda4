//! Which agent reports a connection that several agents saw (the client's node and the server's
//! node both capture it).
//!
//! The rule, applied by every agent to its own entries and flows before answering the hub:
//! 1. If some answering agent *holds* the client's address — the address is local to that agent
//!    (an address of its network namespace, one of its `--local-cidr`s, or a pod on its node)
//!    and the agent has held everything since before the entry's time — only those agents
//!    report it.
//! 2. Else, if some answering agent holds the server's address, only those report it.
//! 3. Else (neither end is local to an answering agent) every agent that saw it reports it.
//!
//! So a call from a pod on node A to a pod on node B is reported by A alone; while A is down or
//! after A lost its older entries (a restart, eviction), B reports it, and the answer stays
//! whole instead of losing what B holds.

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::Arc;

use capture_core::enrich::Resolved;
use capture_core::time::Timestamp;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// What makes an address local to one agent.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Locality {
    /// Networks and host addresses of the agent's node.
    pub nets: Vec<IpNet>,
    /// The agent's Kubernetes node: pods on it are local.
    pub node: Option<String>,
}

impl Locality {
    pub fn holds(&self, ip: IpAddr, peer: &Resolved) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
            || self.node.as_deref().is_some_and(|node| {
                peer.identity
                    .as_deref()
                    .and_then(|i| i.node.as_deref())
                    .is_some_and(|n| n == node)
            })
    }
}

/// One answering agent as the hub describes it to the others.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Holder {
    pub name: String,
    pub locality: Locality,
    /// The agent holds every entry since this capture time (ns): its first packet, or the
    /// newest entry it evicted, whichever is later.
    pub holds_since_ns: u64,
}

/// Sent with every query: the agents answering it, and which of them is the receiver.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Scope {
    pub holders: Vec<Holder>,
    /// The receiving agent's name (one of `holders`).
    pub me: String,
}

impl Scope {
    /// Whether this agent reports a connection from `src` to `dst` seen at `ts`.
    pub fn owns(&self, ts: Timestamp, src: (IpAddr, &Resolved), dst: (IpAddr, &Resolved)) -> bool {
        for (ip, peer) in [src, dst] {
            let mut held = false;
            let mut by_me = false;
            for h in &self.holders {
                if ts.0 >= h.holds_since_ns && h.locality.holds(ip, peer) {
                    held = true;
                    by_me |= h.name == self.me;
                }
            }
            if held {
                return by_me;
            }
        }
        true
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Scope>>> = const { RefCell::new(None) };
}

/// Runs `f` (a tool, on this thread) with `scope` applied to every selection it makes.
pub fn with_scope<T>(scope: Option<Arc<Scope>>, f: impl FnOnce() -> T) -> T {
    struct Reset(Option<Arc<Scope>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            CURRENT.with(|c| *c.borrow_mut() = self.0.take());
        }
    }
    let _reset = Reset(CURRENT.with(|c| c.replace(scope)));
    f()
}

/// The scope of the tool running on this thread (only agents answering a hub have one).
pub fn current() -> Option<Arc<Scope>> {
    CURRENT.with(|c| c.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(name: &str, net: &str, since: u64) -> Holder {
        Holder {
            name: name.into(),
            locality: Locality {
                nets: vec![net.parse().unwrap()],
                node: None,
            },
            holds_since_ns: since,
        }
    }

    #[test]
    fn a_connection_between_two_nodes_is_reported_once() {
        let none = Resolved::default();
        let a: IpAddr = "10.0.1.5".parse().unwrap();
        let b: IpAddr = "10.0.2.9".parse().unwrap();
        let ext: IpAddr = "93.184.216.34".parse().unwrap();
        let holders = vec![holder("node-a", "10.0.1.0/24", 0), holder("node-b", "10.0.2.0/24", 0)];
        let scope = |me: &str, holders: &[Holder]| Scope {
            holders: holders.to_vec(),
            me: me.into(),
        };
        let t = Timestamp(100);
        let owners = |holders: &[Holder], src: IpAddr, dst: IpAddr| -> Vec<String> {
            ["node-a", "node-b"]
                .into_iter()
                .filter(|me| scope(me, holders).owns(t, (src, &none), (dst, &none)))
                .map(str::to_string)
                .collect()
        };
        // The client's node reports it, whichever way.
        assert_eq!(owners(&holders, a, b), ["node-a"]);
        assert_eq!(owners(&holders, b, a), ["node-b"]);
        // An outside client: the server's node.
        assert_eq!(owners(&holders, ext, b), ["node-b"]);
        // Neither end local to an agent: whoever saw it.
        assert_eq!(owners(&holders, ext, ext), ["node-a", "node-b"]);
        // node-a is down: node-b reports what it holds.
        assert_eq!(owners(&holders[1..], a, b), ["node-b"]);
        // node-a restarted after the call: its old calls are node-b's to report.
        let restarted = vec![holder("node-a", "10.0.1.0/24", 200), holder("node-b", "10.0.2.0/24", 0)];
        assert_eq!(owners(&restarted, a, b), ["node-b"]);
    }

    #[test]
    fn the_scope_is_per_thread_and_reset() {
        assert!(current().is_none());
        let s = Arc::new(Scope::default());
        with_scope(Some(s.clone()), || {
            assert!(current().is_some());
            std::thread::spawn(|| assert!(current().is_none())).join().unwrap();
        });
        assert!(current().is_none());
    }
}
