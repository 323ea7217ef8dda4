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

/// Feeds `data` to a stream dissector as one connection: pieces of `piece` bytes alternate
/// directions starting with `first`, and a 3-byte piece stands for a gap of its first byte's size.
/// Finishes twice (finishing must be idempotent) and returns the entries produced.
pub fn drive(
    s: &mut dyn capture_core::dissect::StreamDissector,
    limits: &Limits,
    data: &[u8],
    piece: usize,
    first: capture_core::tcp::flow::Dir,
) -> Vec<capture_core::entry::Entry> {
    use capture_core::dissect::{Ctx, DissectStats};
    use capture_core::tcp::flow::{FlowKey, FlowMeta, RoleSource};
    use capture_core::tcp::reassembly::Chunk;
    use capture_core::time::Timestamp;
    let client = "10.0.0.1:1000".parse().expect("literal address");
    let server = "10.0.0.2:2000".parse().expect("literal address");
    let meta = FlowMeta {
        id: 1,
        key: FlowKey::new(client, server, 6),
        client,
        server,
        roles: RoleSource::Syn,
        first_seen: Timestamp(0),
        last_seen: Timestamp(0),
        closed_at: None,
    };
    let mut out = Vec::new();
    let mut stats = DissectStats::default();
    let mut ctx = Ctx {
        limits,
        meta: &meta,
        out: &mut out,
        stats: &mut stats,
        keys: None,
    };
    for (k, p) in data.chunks(piece.max(1)).enumerate() {
        let dir = if k % 2 == 0 { first } else { first.flip() };
        let ts = Timestamp(k as u64 * 1_000);
        if p.len() == 3 {
            s.on_chunk(dir, ts, Chunk::Gap(u64::from(p[0])), &mut ctx);
        } else {
            s.on_chunk(dir, ts, Chunk::Data(p), &mut ctx);
        }
    }
    s.finish(Timestamp(u64::MAX / 2), &mut ctx);
    s.finish(Timestamp(u64::MAX / 2), &mut ctx);
    out
}
