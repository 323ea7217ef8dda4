//! Kubernetes identities for both ends of every entry and flow.
//!
//! - [`index`]: the time-aware IP → identity index (pods, services, nodes, host-network pods by
//!   port, workloads through owner references), immutable once built;
//! - [`dump`]: objects from a `kubectl get … -o json` dump, for captures analysed offline;
//! - [`kube`]: the same from a live cluster, through watches;
//! - [`Identities`]: the index in force, swapped whole when its source changes, so resolving
//!   never waits for the source.

pub mod dump;
pub mod index;
pub mod kube;
pub mod scope;

use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::RwLock;

pub use index::{Identity, IdentityIndex, IndexCaps, Objects, Resolution, Resolved};

use crate::time::Timestamp;

/// Both ends of an entry or flow.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Peers {
    pub src: Resolved,
    pub dst: Resolved,
    /// The names DNS answers in the traffic gave the two addresses (the question's name).
    pub src_dns: Option<Arc<str>>,
    pub dst_dns: Option<Arc<str>>,
}

/// Names of addresses learned from DNS answers (A and AAAA), bounded: the oldest are forgotten
/// first. The question's name is kept (what the client asked for), not a CNAME target.
#[derive(Debug, Default)]
pub struct DnsNames {
    by_ip: std::collections::HashMap<std::net::IpAddr, Arc<str>>,
    order: std::collections::VecDeque<std::net::IpAddr>,
    pub forgotten: u64,
}

impl DnsNames {
    pub fn learn(&mut self, ip: std::net::IpAddr, name: &str, cap: usize) {
        if cap == 0 {
            return;
        }
        if let Some(old) = self.by_ip.get_mut(&ip) {
            if &**old != name {
                *old = name.into();
            }
            return;
        }
        while self.by_ip.len() >= cap {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.by_ip.remove(&oldest);
                    self.forgotten += 1;
                }
                None => break,
            }
        }
        self.by_ip.insert(ip, name.into());
        self.order.push_back(ip);
    }

    pub fn get(&self, ip: std::net::IpAddr) -> Option<Arc<str>> {
        self.by_ip.get(&ip).cloned()
    }

    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_are_bounded_and_updated() {
        let mut d = DnsNames::default();
        let ip = |n: u8| std::net::IpAddr::from([10, 0, 0, n]);
        d.learn(ip(1), "a.example", 2);
        d.learn(ip(2), "b.example", 2);
        d.learn(ip(1), "a2.example", 2);
        assert_eq!(d.get(ip(1)).as_deref(), Some("a2.example"));
        d.learn(ip(3), "c.example", 2);
        assert_eq!((d.len(), d.forgotten), (2, 1));
        assert_eq!(d.get(ip(1)), None, "the oldest went first");
        d.learn(ip(4), "d.example", 0);
        assert_eq!(d.get(ip(4)), None);
    }
}

impl Default for Resolved {
    fn default() -> Self {
        Resolved::EXTERNAL
    }
}

/// Where the identities come from, for `capture_status`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdentitySource {
    /// `none`, `demo`, `file:PATH`, `kubernetes`.
    pub kind: String,
    /// When the objects were last updated.
    pub updated: Option<Timestamp>,
    /// The source stopped answering; identities come from the last known state.
    pub stale: bool,
    /// Why, when stale.
    pub problem: Option<String>,
}

/// The identities in force.
#[derive(Debug)]
pub struct Identities {
    state: RwLock<(Arc<IdentityIndex>, Arc<Objects>)>,
    /// Names learned from DNS answers in the traffic.
    pub dns: parking_lot::Mutex<DnsNames>,
    source: RwLock<IdentitySource>,
    caps: IndexCaps,
}

impl Default for Identities {
    fn default() -> Self {
        Identities::new(IndexCaps::default())
    }
}

impl Identities {
    pub fn new(caps: IndexCaps) -> Self {
        Identities {
            state: RwLock::new((Arc::new(IdentityIndex::default()), Arc::new(Objects::default()))),
            dns: parking_lot::Mutex::new(DnsNames::default()),
            source: RwLock::new(IdentitySource {
                kind: "none".into(),
                ..IdentitySource::default()
            }),
            caps,
        }
    }

    /// Replaces the objects (and rebuilds the index) from `source`.
    pub fn set(&self, objects: Objects, source: &str, at: Option<Timestamp>) {
        let index = Arc::new(IdentityIndex::build(&objects, self.caps));
        *self.state.write() = (index, Arc::new(objects));
        let mut s = self.source.write();
        s.kind = source.to_string();
        s.updated = at;
        s.stale = false;
        s.problem = None;
    }

    /// Marks the source stale (it keeps serving the last known objects) or fresh again.
    pub fn set_stale(&self, problem: Option<String>) {
        let mut s = self.source.write();
        s.stale = problem.is_some();
        s.problem = problem;
    }

    pub fn index(&self) -> Arc<IdentityIndex> {
        self.state.read().0.clone()
    }

    pub fn objects(&self) -> Arc<Objects> {
        self.state.read().1.clone()
    }

    pub fn source(&self) -> IdentitySource {
        self.source.read().clone()
    }

    /// Whether any identity is known (else resolving is skipped).
    pub fn is_empty(&self) -> bool {
        self.state.read().0.addresses() == 0
    }

    /// Both ends at `ts`.
    pub fn peers(&self, src: SocketAddr, dst: SocketAddr, ts: Timestamp) -> Peers {
        let idx = self.index();
        let dns = self.dns.lock();
        Peers {
            src: idx.resolve(src.ip(), src.port(), ts),
            dst: idx.resolve(dst.ip(), dst.port(), ts),
            src_dns: dns.get(src.ip()),
            dst_dns: dns.get(dst.ip()),
        }
    }
}
