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
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub packets: u64,
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
    /// Summed over finished flows.
    pub reassembly: ReassemblyStats,
    pub dissect: DissectStats,
    pub entries_emitted: u64,
    /// Addresses whose DNS-learned name was forgotten at `dns_names_max`.
    pub dns_names_forgotten: u64,
    /// Live capture: frames the kernel delivered to the rings, and frames it dropped because a
    /// ring was full.
    pub kernel_packets: u64,
    pub kernel_drops: u64,
    /// eBPF probes.
    pub ebpf: EbpfStats,
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
