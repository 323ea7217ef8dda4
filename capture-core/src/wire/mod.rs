//! Zero-copy decoding of captured frames down to TCP/UDP.
//!
//! Each layer has a view over borrowed bytes whose constructor checks lengths once
//! (`new_checked`); after that no accessor can panic. Decoding stops with a [`DecodeError`] naming
//! the layer and the reason, never with a panic.

pub mod frag;
pub mod ip;
pub mod link;
pub mod transport;

use std::fmt;

pub use ip::{IpPacket, decode_ip};
pub use link::decode_link;
pub use transport::{TcpFlags, TcpSegment, UdpDatagram};

/// The layer at which decoding stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    Link,
    Vlan,
    Ipv4,
    Ipv6,
    Tcp,
    Udp,
}

impl Layer {
    pub const ALL: [Layer; 6] = [
        Layer::Link,
        Layer::Vlan,
        Layer::Ipv4,
        Layer::Ipv6,
        Layer::Tcp,
        Layer::Udp,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Layer::Link => "link",
            Layer::Vlan => "vlan",
            Layer::Ipv4 => "ipv4",
            Layer::Ipv6 => "ipv6",
            Layer::Tcp => "tcp",
            Layer::Udp => "udp",
        }
    }
}

/// Why decoding stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// Fewer bytes than the header needs.
    Truncated {
        needed: usize,
        have: usize,
    },
    /// A header length field smaller than the fixed header or larger than the packet.
    BadHeaderLength(usize),
    /// An IP version nibble that does not match the layer.
    BadVersion(u8),
    /// Too many VLAN tags or IPv6 extension headers (a loop guard).
    TooManyHeaders,
    UnsupportedLinkType(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    pub layer: Layer,
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    pub(crate) fn truncated(layer: Layer, needed: usize, have: usize) -> Self {
        DecodeError {
            layer,
            kind: DecodeErrorKind::Truncated { needed, have },
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.layer.name())?;
        match self.kind {
            DecodeErrorKind::Truncated { needed, have } => {
                write!(f, "truncated (needs {needed} bytes, has {have})")
            }
            DecodeErrorKind::BadHeaderLength(n) => write!(f, "bad header length {n}"),
            DecodeErrorKind::BadVersion(v) => write!(f, "bad IP version {v}"),
            DecodeErrorKind::TooManyHeaders => write!(f, "too many stacked headers"),
            DecodeErrorKind::UnsupportedLinkType(l) => write!(f, "unsupported link type {l}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// What the link layer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network<'a> {
    Ipv4(&'a [u8]),
    Ipv6(&'a [u8]),
    /// ARP, LLDP and the like: not an error, just not ours.
    Other(u16),
}

pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
