//! Finished flows: one record per connection (TCP) or 5-tuple conversation (UDP) with its
//! counters and TCP analysis, kept after the flow leaves the flow table so tools can report on
//! it. Bounded by `Limits::max_flow_records`; the oldest records are evicted first and counted.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::entry::Transport;
use crate::tcp::analysis::TcpMetrics;
use crate::tcp::flow::RoleSource;
use crate::time::Timestamp;

/// How a flow ended (or why it left the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowEnd {
    /// Both sides sent FIN.
    Closed,
    Reset,
    /// No packet for the idle timeout.
    Idle,
    /// Evicted because the flow table was full.
    Capacity,
    /// A new connection reused its 5-tuple.
    Reused,
    /// Still open when the capture ended.
    Open,
}

impl FlowEnd {
    pub fn name(self) -> &'static str {
        match self {
            FlowEnd::Closed => "closed",
            FlowEnd::Reset => "reset",
            FlowEnd::Idle => "idle",
            FlowEnd::Capacity => "evicted",
            FlowEnd::Reused => "reused",
            FlowEnd::Open => "open",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FlowRecord {
    pub id: u64,
    pub transport: Transport,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub roles: RoleSource,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub end: FlowEnd,
    /// Packet and byte counters for both transports; the analysis fields for TCP only.
    pub metrics: TcpMetrics,
    /// Kubernetes identities of client (`src`) and server (`dst`) when the flow began.
    pub peers: crate::enrich::Peers,
    /// What the kernel reported about this connection through the eBPF probes.
    pub kernel: Option<Box<crate::kernel::KernelTcp>>,
}

impl FlowRecord {
    /// The flow as a transient entry (protocol `tcp_flow` or `udp_flow`), so KFL filters can
    /// select flows with the flow fields (`conn_state`, `retransmission_rate`, …) and the common
    /// ones (`src.ip`, `dst.port`, `timestamp`, …; `src` is the client).
    pub fn as_entry(self: &Arc<Self>) -> crate::entry::Entry {
        use crate::entry::{Detail, Entry, Protocol};
        Entry {
            peers: self.peers.clone(),
            tls: false,
            decrypted: false,
            tls_conn: None,
            id: 0,
            ts: self.first_seen,
            protocol: if self.transport == Transport::Tcp {
                Protocol::TcpFlow
            } else {
                Protocol::UdpFlow
            },
            transport: self.transport,
            src: self.client,
            dst: self.server,
            flow_id: self.id,
            elapsed_us: Some(self.last_seen.micros_since(self.first_seen)),
            detail: Detail::Flow(Arc::clone(self)),
        }
    }

    /// The flow behind a transient flow entry.
    pub fn of(e: &crate::entry::Entry) -> Option<&FlowRecord> {
        match &e.detail {
            crate::entry::Detail::Flow(f) => Some(f),
            _ => None,
        }
    }

    /// The server answered the SYN with a reset: nothing was listening (or a firewall said no).
    pub fn refused(&self) -> bool {
        use crate::tcp::analysis::completeness::*;
        let c = self.metrics.completeness;
        c & SYN != 0 && c & SYN_ACK == 0 && c & DATA == 0 && self.metrics.rst_from[1] > 0
    }

    /// A short connection state in the spirit of Wireshark's completeness string.
    pub fn state(&self) -> &'static str {
        use crate::tcp::analysis::completeness::*;
        if self.transport == Transport::Udp {
            return "udp";
        }
        let c = self.metrics.completeness;
        match self.end {
            FlowEnd::Reset if self.refused() => "refused",
            FlowEnd::Reset => "reset",
            FlowEnd::Closed => "closed",
            _ if c & SYN != 0 && c & SYN_ACK == 0 => "syn_sent",
            _ if c & FIN != 0 => "closing",
            _ if c & (SYN | SYN_ACK) == (SYN | SYN_ACK) => "established",
            _ => "established_midstream",
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    records: VecDeque<Arc<FlowRecord>>,
    evicted: u64,
    /// Live capture: the flows still open, per capture engine, as of their last sweep.
    open: Vec<Vec<Arc<FlowRecord>>>,
}

/// The records, shared with the tools.
#[derive(Debug)]
pub struct FlowStore {
    inner: RwLock<Inner>,
    max: usize,
}

impl FlowStore {
    pub fn new(max: usize) -> Self {
        FlowStore {
            inner: RwLock::new(Inner::default()),
            max: max.max(1),
        }
    }

    pub fn push(&self, r: FlowRecord) {
        let mut g = self.inner.write();
        if g.records.len() >= self.max {
            g.records.pop_front();
            g.evicted += 1;
        }
        g.records.push_back(Arc::new(r));
    }

    /// Live capture: replaces engine `part`'s list of open flows.
    pub fn set_open(&self, part: usize, open: Vec<Arc<FlowRecord>>) {
        let mut g = self.inner.write();
        if g.open.len() <= part {
            g.open.resize_with(part + 1, Vec::new);
        }
        g.open[part] = open;
    }

    /// All records, finished and (live) still open, in the order the flows began. A flow that
    /// ended since its engine's last sweep is listed once, from its final record.
    pub fn snapshot(&self) -> Vec<Arc<FlowRecord>> {
        let g = self.inner.read();
        let mut v: Vec<_> = g.records.iter().cloned().collect();
        if g.open.iter().any(|o| !o.is_empty()) {
            let done: std::collections::HashSet<u64> = v.iter().map(|r| r.id).collect();
            v.extend(g.open.iter().flatten().filter(|r| !done.contains(&r.id)).cloned());
        }
        v.sort_by_key(|r| (r.first_seen, r.id));
        v
    }

    pub fn get(&self, id: u64) -> Option<Arc<FlowRecord>> {
        let g = self.inner.read();
        g.records
            .iter()
            .find(|r| r.id == id)
            .or_else(|| g.open.iter().flatten().find(|r| r.id == id))
            .cloned()
    }

    pub fn len(&self) -> usize {
        self.inner.read().records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn evicted(&self) -> u64 {
        self.inner.read().evicted
    }
}
