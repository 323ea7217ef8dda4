//! Engine counters: what was read, what was dropped and why. `capture_status` and every result's
//! coverage are built from a [`Stats`] snapshot.

use crate::dissect::DissectStats;
use crate::tcp::reassembly::ReassemblyStats;
use crate::time::Timestamp;
use crate::wire::Layer;
use crate::wire::frag::FragStats;

/// Where packets came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceInfo {
    /// `pcap`, `pcapng` or `demo`.
    pub kind: String,
    /// The file path, or `demo`.
    pub name: String,
    pub packets: u64,
    pub bytes: u64,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    /// A non-fatal problem (e.g. the file ends inside a record).
    pub warning: Option<String>,
    /// Link types seen (tcpdump numbers).
    pub link_types: Vec<u32>,
    /// The capture filter (`--bpf`) applied to this source, if any.
    pub bpf: Option<SourceFilter>,
}

/// A capture filter as applied to one source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceFilter {
    /// The pcap-filter expression as given.
    pub expression: String,
    /// Attached to the socket (live capture), rather than run by wirelens before decoding.
    pub in_kernel: bool,
    /// Packets the filter rejected; `None` in the kernel, which does not count them.
    pub filtered_out: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets taken through decoding: after the capture filter, if any.
    pub packets: u64,
    /// Packets the capture filter (`--bpf`) rejected before decoding (files and the demo; the
    /// kernel does not count what it filters out of a live capture).
    pub filtered_out: u64,
    /// Captured bytes.
    pub bytes: u64,
    /// Bytes on the wire (original lengths).
    pub wire_bytes: u64,
    /// Packets shorter on capture than on the wire (snap length).
    pub packets_snapped: u64,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    /// Packets whose decoding stopped, by layer.
    pub decode_errors: [u64; Layer::ALL.len()],
    /// Frames that carry something other than IP (ARP, LLDP…).
    pub non_ip: u64,
    /// IP packets of protocols other than TCP and UDP.
    pub other_ip: u64,
    pub tcp_packets: u64,
    pub udp_packets: u64,
    pub frag: FragStats,
    pub flows_active: u64,
    pub flows_created: u64,
    pub flows_evicted_idle: u64,
    pub flows_evicted_closed: u64,
    /// Flows dropped because `max_flows` was reached: their dissection was cut short.
    pub flows_evicted_capacity: u64,
    /// Flows replaced by a new connection on the same 5-tuple (port reuse).
    pub flows_reused: u64,
    /// Live capture: open flows beyond `live_flows_listed`, not shown by the flow tools.
    pub flows_open_unlisted: u64,
    /// Summed over finished flows.
    pub reassembly: ReassemblyStats,
    pub dissect: DissectStats,
    pub entries_emitted: u64,
    /// Header values and query parameters replaced by redaction markers in stored entries.
    pub values_redacted: u64,
    /// Entries not kept because neither end is a pod `--capture-namespace` and
    /// `--capture-pod-selector` select.
    pub entries_not_selected: u64,
    /// Addresses whose DNS-learned name was forgotten at `dns_names_max`.
    pub dns_names_forgotten: u64,
    /// Times finished entries found the store busy (a query reading it) and waited in the
    /// engine instead of stalling the capture.
    pub store_busy: u64,
    /// Times the capture waited for a busy store anyway, because the entries waiting reached a
    /// sixteenth of its budget.
    pub store_waits: u64,
    /// Entries waiting for the store now (published with the other counters).
    pub entries_waiting: u64,
    /// Live capture: frames the kernel delivered to the rings, and frames it dropped because a
    /// ring was full.
    pub kernel_packets: u64,
    pub kernel_drops: u64,
    /// eBPF probes.
    pub ebpf: EbpfStats,
    /// `--max-memory`: the resident set and the load shed to stay under the budget.
    pub memory: crate::memory::MemoryStats,
}

/// What the eBPF probes delivered, and what was lost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EbpfStats {
    pub events: u64,
    /// Events the kernel could not queue because a probe's ring buffer was full.
    pub ring_full: u64,
    /// Records that did not parse.
    pub malformed: u64,
    /// Connections whose kernel facts wait for their flow.
    pub connections_pending: u64,
    /// Connections not recorded: `ebpf_max_connections` were pending.
    pub connections_dropped: u64,
    /// Connections no captured flow claimed (traffic on interfaces not captured).
    pub unjoined: u64,
    pub handshake_rtt: Option<crate::kernel::HandshakeSummary>,
    pub tls: crate::kernel::tls::TlsStats,
    /// TLS plaintext streams open now.
    pub tls_open: u64,
}

impl Stats {
    pub fn decode_errors_total(&self) -> u64 {
        self.decode_errors.iter().sum()
    }

    /// Adds the counters of another engine that shares the store (live capture with several
    /// threads): sums, earliest first and latest last timestamps.
    pub fn merge(&mut self, o: &Stats) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.wire_bytes += o.wire_bytes;
        self.packets_snapped += o.packets_snapped;
        self.filtered_out += o.filtered_out;
        self.first_ts = match (self.first_ts, o.first_ts) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_ts = self.last_ts.max(o.last_ts);
        for (a, b) in self.decode_errors.iter_mut().zip(o.decode_errors) {
            *a += b;
        }
        self.non_ip += o.non_ip;
        self.other_ip += o.other_ip;
        self.tcp_packets += o.tcp_packets;
        self.udp_packets += o.udp_packets;
        let f = &mut self.frag;
        f.fragments += o.frag.fragments;
        f.reassembled += o.frag.reassembled;
        f.timed_out += o.frag.timed_out;
        f.dropped_cap += o.frag.dropped_cap;
        f.overlaps += o.frag.overlaps;
        self.flows_active += o.flows_active;
        self.flows_created += o.flows_created;
        self.flows_evicted_idle += o.flows_evicted_idle;
        self.flows_evicted_closed += o.flows_evicted_closed;
        self.flows_evicted_capacity += o.flows_evicted_capacity;
        self.flows_reused += o.flows_reused;
        self.values_redacted += o.values_redacted;
        self.entries_not_selected += o.entries_not_selected;
        self.store_busy += o.store_busy;
        self.store_waits += o.store_waits;
        self.entries_waiting += o.entries_waiting;
        self.memory.merge(&o.memory);
        self.flows_open_unlisted += o.flows_open_unlisted;
        self.add_reassembly(&o.reassembly);
        self.dissect.add(&o.dissect);
        self.entries_emitted += o.entries_emitted;
        self.dns_names_forgotten = self.dns_names_forgotten.max(o.dns_names_forgotten);
        self.kernel_packets += o.kernel_packets;
        self.kernel_drops += o.kernel_drops;
        let (e, x) = (&mut self.ebpf, &o.ebpf);
        e.events += x.events;
        e.ring_full += x.ring_full;
        e.malformed += x.malformed;
        e.connections_pending = e.connections_pending.max(x.connections_pending);
        e.connections_dropped = e.connections_dropped.max(x.connections_dropped);
        e.unjoined = e.unjoined.max(x.unjoined);
        if e.handshake_rtt.is_none() {
            e.handshake_rtt = x.handshake_rtt;
        }
        let (t, y) = (&mut e.tls, &x.tls);
        t.events += y.events;
        t.bytes += y.bytes;
        t.connections += y.connections;
        t.gap_bytes += y.gap_bytes;
        t.connections_dropped += y.connections_dropped;
        t.without_addresses += y.without_addresses;
        e.tls_open += x.tls_open;
    }

    pub fn add_reassembly(&mut self, r: &ReassemblyStats) {
        let t = &mut self.reassembly;
        t.bytes_delivered += r.bytes_delivered;
        t.bytes_duplicate += r.bytes_duplicate;
        t.conflicting_overlaps += r.conflicting_overlaps;
        t.gaps += r.gaps;
        t.gap_bytes += r.gap_bytes;
        t.window_overflows += r.window_overflows;
        t.bytes_after_fin += r.bytes_after_fin;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_the_parts_of_a_live_capture_sums_counters_and_spans_time() {
        let a = Stats {
            packets: 3,
            bytes: 300,
            first_ts: Some(Timestamp(20)),
            last_ts: Some(Timestamp(50)),
            flows_created: 2,
            kernel_drops: 1,
            ..Stats::default()
        };
        let mut b = Stats {
            packets: 4,
            bytes: 100,
            first_ts: Some(Timestamp(10)),
            last_ts: Some(Timestamp(40)),
            flows_created: 5,
            ..Stats::default()
        };
        b.decode_errors[0] = 2;
        b.ebpf.connections_pending = 7;
        let mut total = Stats::default();
        total.merge(&a);
        total.merge(&b);
        assert_eq!(
            (total.packets, total.bytes, total.flows_created, total.kernel_drops),
            (7, 400, 7, 1)
        );
        assert_eq!(
            (total.first_ts, total.last_ts),
            (Some(Timestamp(10)), Some(Timestamp(50)))
        );
        assert_eq!(total.decode_errors_total(), 2);
        // Shared tables are counted once, not once per part.
        total.merge(&b);
        assert_eq!(total.ebpf.connections_pending, 7);
        let mut empty = Stats::default();
        empty.merge(&Stats::default());
        assert_eq!(empty, Stats::default());
    }
}
