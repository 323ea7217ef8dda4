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
