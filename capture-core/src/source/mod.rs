//! Packet sources. A source lends one packet at a time to the engine; nothing is copied on the way.
//!
//! - [`file`]: pcap and pcapng files (any byte order, µs or ns resolution, many interfaces;
//!   classic pcap records through our own loop in `legacy`);
//! - [`demo`]: the built-in scenario, synthesised by [`crate::synth`];
//! - [`live`]: AF_PACKET rings ([`afpacket`]), Linux only;
//! - [`bpf`]: capture filters (`--bpf`), compiled to classic BPF for the kernel and run by our
//!   own interpreter over files and the demo.

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub mod afpacket;
pub mod bpf;
pub mod demo;
pub mod demo_identities;
pub mod file;
mod legacy;
#[cfg(target_os = "linux")]
pub mod live;
#[allow(unsafe_code)]
mod mapped;
pub mod sharded;

use crate::time::Timestamp;

/// The data-link type of a packet, as numbered by tcpdump's LINKTYPE_* registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: a 4-byte address family in host byte order.
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP (the version nibble tells v4 from v6). 12 and 14 are the old BSD numbers for it.
    pub const RAW: LinkType = LinkType(101);
    pub const RAW_BSD_12: LinkType = LinkType(12);
    pub const RAW_BSD_14: LinkType = LinkType(14);
    /// OpenBSD loopback: like NULL, but the family is big-endian.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux cooked capture v1 (`-i any`).
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

/// One captured packet, borrowed from the source.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub ts: Timestamp,
    pub link: LinkType,
    /// Bytes captured (may be shorter than `orig_len` when a snap length cut them).
    pub data: &'a [u8],
    /// The packet's length on the wire.
    pub orig_len: u32,
    /// Index of the capture interface (pcapng IDB number; 0 for pcap).
    pub interface: u32,
}
