//! Helpers shared by the fuzz targets.
#![allow(dead_code)]

use capture_core::engine::{Engine, Shared};
use capture_core::limits::Limits;
use capture_core::source::LinkType;

/// Separates packets (or stream pieces) inside one fuzz input.
pub const DELIM: &[u8] = b"\xff\xfe\xfd\xfc";

/// Link types picked by the low three bits of an input's first byte.
pub const LINKS: [LinkType; 8] = [
    LinkType::ETHERNET,
    LinkType::LINUX_SLL,
    LinkType::LINUX_SLL2,
    LinkType::NULL,
    LinkType::RAW,
    LinkType::LOOP,
    LinkType::IPV4,
    LinkType::IPV6,
];

/// Every cap small (struct update: new caps keep their defaults), so that fuzz inputs reach the limits (evictions, overflows, re-syncs).
pub fn small_limits() -> Limits {
    Limits {
        max_record_bytes: 1 << 16,
        ip_frag_max_datagrams: 4,
        ip_frag_max_bytes: 8 << 10,
        ip_frag_timeout_us: 2_000_000,
        max_flows: 8,
        tcp_idle_timeout_us: 5_000_000,
        tcp_closed_linger_us: 1_000_000,
        udp_idle_timeout_us: 1_000_000,
        reassembly_window_bytes: 4 << 10,
        reassembly_max_segments: 8,
        dissector_buffer_bytes: 2 << 10,
        http_max_header_bytes: 1 << 10,
        http_max_headers: 16,
        http_max_pending: 4,
        body_capture_bytes: 1 << 10,
        decompress_max_bytes: 4 << 10,
        store_memory_bytes: 1 << 20,
        // Caps added later keep their defaults.
        ..Limits::default()
    }
}

pub fn engine() -> Engine {
    Engine::new(small_limits(), Shared::new(1 << 20))
}

/// Splits `data` on [`DELIM`].
pub fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(p) = rest.windows(DELIM.len()).position(|w| w == DELIM) {
        out.push(&rest[..p]);
        rest = &rest[p + DELIM.len()..];
    }
    out.push(rest);
    out
}
