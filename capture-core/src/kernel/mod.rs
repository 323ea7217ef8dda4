//! What the kernel reports through the eBPF probes, joined to the flows that packet capture
//! sees: per-connection TCP facts (handshake RTT, retransmissions, srtt and cwnd, the process
//! that connected) and TLS plaintext streams.
//!
//! Kernel events about a connection are kept by 5-tuple until its flow leaves the flow table,
//! and then travel with the flow record. Entries for 5-tuples no flow claims age out after the
//! TCP idle timeout and are counted (`ebpf_unjoined`). Both tables are bounded.

pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;

use ebpf_probes::{TcpEvent, TcpEventKind};

use crate::tcp::flow::FlowKey;
use crate::time::Timestamp;
use crate::wire::ip::PROTO_TCP;

/// The kernel's view of one TCP connection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KernelTcp {
    /// connect() to ESTABLISHED, measured by the connecting host's kernel.
    pub handshake_rtt_us: Option<u64>,
    /// Retransmitted skbs (`tcp_retransmit_skb` fires once per skb) and the segments in them.
    pub retransmitted_skbs: u32,
    pub retransmitted_segments: u32,
    /// Latest smoothed RTT, its variation and congestion window (segments), from `tcp_probe`.
    pub srtt_us: Option<u32>,
    pub rttvar_us: Option<u32>,
    pub cwnd: Option<u32>,
    /// Smallest and largest cwnd sampled.
    pub cwnd_min: Option<u32>,
    pub cwnd_max: Option<u32>,
    pub samples: u32,
    /// The process that called connect() on this host, and its command name.
    pub pid: Option<u32>,
    pub comm: Option<String>,
    pub last_update: Timestamp,
}

impl KernelTcp {
    fn apply(&mut self, ev: &TcpEvent, ts: Timestamp) {
        self.last_update = ts;
        match ev.kind {
            TcpEventKind::Handshake { rtt_ns } => {
                self.handshake_rtt_us = Some(rtt_ns / 1_000);
                self.pid = Some(ev.pid);
                self.comm = Some(ebpf_probes::events::comm_str(&ev.comm));
            }
            TcpEventKind::Retransmit { segments, .. } => {
                // The segment count comes from the kernel's skb: trusted, but a corrupt record
                // must not wrap the counter.
                self.retransmitted_skbs = self.retransmitted_skbs.saturating_add(1);
                self.retransmitted_segments = self.retransmitted_segments.saturating_add(segments);
            }
            TcpEventKind::Probe {
                srtt_us,
                rttvar_us,
                cwnd,
                ..
            } => {
                self.srtt_us = Some(srtt_us);
                self.rttvar_us = Some(rttvar_us);
                self.cwnd = Some(cwnd);
                self.cwnd_min = Some(self.cwnd_min.map_or(cwnd, |m| m.min(cwnd)));
                self.cwnd_max = Some(self.cwnd_max.map_or(cwnd, |m| m.max(cwnd)));
                self.samples = self.samples.saturating_add(1);
            }
        }
    }
}

/// Handshake RTTs measured by the kernel (eBPF), over every connection it reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandshakeSummary {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// Kernel facts by connection, waiting for their flows.
#[derive(Debug, Default)]
pub struct KernelTable {
    map: HashMap<FlowKey, KernelTcp>,
    max: usize,
    /// Connections not recorded because the table was full.
    pub dropped: u64,
    /// Connections no flow claimed before they aged out (traffic outside the captured
    /// interfaces, or filtered out).
    pub unjoined: u64,
    /// Handshake RTTs in µs, of every connection the kernel reported.
    pub handshake_rtt: Option<hdrhistogram::Histogram<u64>>,
}

impl KernelTable {
    pub fn new(max: usize) -> Self {
        KernelTable {
            max: max.max(1),
            ..KernelTable::default()
        }
    }

    pub fn key(local: SocketAddr, remote: SocketAddr) -> FlowKey {
        FlowKey::new(local, remote, PROTO_TCP)
    }

    pub fn record(&mut self, ev: &TcpEvent, ts: Timestamp) {
        let key = Self::key(ev.local, ev.remote);
        if let TcpEventKind::Handshake { rtt_ns } = ev.kind {
            self.handshake_rtt
                .get_or_insert_with(|| {
                    hdrhistogram::Histogram::new_with_bounds(1, 600_000_000, 2).expect("valid bounds")
                })
                .saturating_record((rtt_ns / 1_000).max(1));
        }
        if let Some(k) = self.map.get_mut(&key) {
            k.apply(ev, ts);
            return;
        }
        if self.map.len() >= self.max {
            self.dropped += 1;
            return;
        }
        let mut k = KernelTcp::default();
        k.apply(ev, ts);
        self.map.insert(key, k);
    }

    /// Handshake RTT percentiles (count, p50, p90, p99 in µs).
    pub fn handshake_summary(&self) -> Option<HandshakeSummary> {
        let h = self.handshake_rtt.as_ref().filter(|h| !h.is_empty())?;
        Some(HandshakeSummary {
            count: h.len(),
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
        })
    }

    /// The kernel's facts for a flow leaving the table.
    pub fn take(&mut self, key: &FlowKey) -> Option<KernelTcp> {
        self.map.remove(key)
    }

    pub fn peek(&self, key: &FlowKey) -> Option<&KernelTcp> {
        self.map.get(key)
    }

    /// Forgets connections idle for `idle_ns`: no flow came for them.
    pub fn sweep(&mut self, now: Timestamp, idle_ns: u64) {
        let before = self.map.len();
        self.map.retain(|_, k| now.0.saturating_sub(k.last_update.0) < idle_ns);
        self.unjoined += (before - self.map.len()) as u64;
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: TcpEventKind, local: &str, remote: &str) -> TcpEvent {
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"curl");
        TcpEvent {
            kind,
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            mono_ns: 0,
            pid: 42,
            comm,
        }
    }

    #[test]
    fn events_of_both_ends_join_one_connection() {
        let mut t = KernelTable::new(2);
        t.record(
            &ev(
                TcpEventKind::Handshake { rtt_ns: 2_500_000 },
                "10.0.0.1:5000",
                "10.0.0.2:80",
            ),
            Timestamp(1),
        );
        // The server's socket sees the same connection from the other end.
        t.record(
            &ev(
                TcpEventKind::Probe {
                    srtt_us: 900,
                    rttvar_us: 100,
                    cwnd: 10,
                    total_retrans: 0,
                },
                "10.0.0.2:80",
                "10.0.0.1:5000",
            ),
            Timestamp(2),
        );
        t.record(
            &ev(
                TcpEventKind::Retransmit {
                    seq: 1,
                    end_seq: 2,
                    segments: 3,
                    state: 1,
                },
                "10.0.0.1:5000",
                "10.0.0.2:80",
            ),
            Timestamp(3),
        );
        assert_eq!(t.len(), 1);
        let k = t
            .take(&KernelTable::key(
                "10.0.0.2:80".parse().unwrap(),
                "10.0.0.1:5000".parse().unwrap(),
            ))
            .unwrap();
        assert_eq!(k.handshake_rtt_us, Some(2_500));
        assert_eq!((k.retransmitted_skbs, k.retransmitted_segments), (1, 3));
        assert_eq!((k.srtt_us, k.cwnd, k.samples), (Some(900), Some(10), 1));
        assert_eq!((k.pid, k.comm.as_deref()), (Some(42), Some("curl")));
        let h = t.handshake_rtt.as_ref().unwrap();
        assert_eq!(h.len(), 1);
        assert!(h.equivalent(h.value_at_quantile(0.5), 2_500));
    }

    #[test]
    fn counters_saturate_instead_of_overflowing() {
        let mut t = KernelTable::new(4);
        let big = TcpEventKind::Retransmit {
            seq: 0,
            end_seq: 0,
            segments: u32::MAX,
            state: 1,
        };
        t.record(&ev(big, "10.0.0.1:1", "10.0.0.2:80"), Timestamp(0));
        t.record(&ev(big, "10.0.0.1:1", "10.0.0.2:80"), Timestamp(1));
        let k = t
            .peek(&KernelTable::key(
                "10.0.0.1:1".parse().unwrap(),
                "10.0.0.2:80".parse().unwrap(),
            ))
            .unwrap();
        assert_eq!((k.retransmitted_segments, k.retransmitted_skbs), (u32::MAX, 2));
    }

    #[test]
    fn the_table_is_bounded_and_ages_out() {
        let mut t = KernelTable::new(1);
        let hs = TcpEventKind::Handshake { rtt_ns: 1_000 };
        t.record(&ev(hs, "10.0.0.1:1", "10.0.0.2:80"), Timestamp(0));
        t.record(&ev(hs, "10.0.0.1:2", "10.0.0.2:80"), Timestamp(0));
        assert_eq!((t.len(), t.dropped), (1, 1));
        t.sweep(Timestamp(10), 100);
        assert_eq!(t.len(), 1);
        t.sweep(Timestamp(1_000), 100);
        assert_eq!((t.len(), t.unjoined), (0, 1));
        assert_eq!(
            t.handshake_rtt.as_ref().unwrap().len(),
            2,
            "every handshake is a sample"
        );
    }
}
