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
        Peers {
            src: idx.resolve(src.ip(), src.port(), ts),
            dst: idx.resolve(dst.ip(), dst.port(), ts),
        }
    }
}
