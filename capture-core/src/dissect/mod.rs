//! Application-layer dissection, by content and never by port.
//!
//! Every TCP connection starts in [`AppSession::Probing`]: the first bytes of each direction are
//! offered to each protocol's probe (`Probe::{Match, NoMatch, NeedMore}`). The first match picks
//! the protocol for the connection; a connection nobody claims becomes `Opaque` and costs nothing
//! more. Each protocol lives in `dissect/<proto>/` with a pure parser (`parse.rs`) and per-flow
//! state (`state.rs`) that pushes finished [`Entry`]s into the context's output.

pub mod http1;

use crate::entry::Entry;
use crate::limits::Limits;
use crate::tcp::flow::{Dir, FlowMeta};
use crate::tcp::reassembly::Chunk;
use crate::time::Timestamp;

/// Answer of a protocol probe on the first bytes of a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Match,
    NoMatch,
    NeedMore,
}

/// Counters of the dissectors (shown in `capture_status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DissectStats {
    pub connections_http1: u64,
    pub connections_opaque: u64,
    pub http_parse_errors: u64,
    pub http_header_too_large: u64,
    pub http_resyncs: u64,
    pub http_buffer_overflows: u64,
    pub http_pipeline_overflows: u64,
    /// Entries whose body was cut at `body_capture_bytes` (the size is still exact).
    pub http_bodies_truncated: u64,
    /// Bytes not dissected: unclaimed connections, tunnels after an Upgrade, resync skips.
    pub bytes_not_dissected: u64,
}

impl DissectStats {
    pub fn add(&mut self, o: &DissectStats) {
        self.connections_http1 += o.connections_http1;
        self.connections_opaque += o.connections_opaque;
        self.http_parse_errors += o.http_parse_errors;
        self.http_header_too_large += o.http_header_too_large;
        self.http_resyncs += o.http_resyncs;
        self.http_buffer_overflows += o.http_buffer_overflows;
        self.http_pipeline_overflows += o.http_pipeline_overflows;
        self.http_bodies_truncated += o.http_bodies_truncated;
        self.bytes_not_dissected += o.bytes_not_dissected;
    }
}

/// What a dissector sees of the world while it runs.
pub struct Ctx<'a> {
    pub limits: &'a Limits,
    pub meta: &'a FlowMeta,
    pub out: &'a mut Vec<Entry>,
    pub stats: &'a mut DissectStats,
}

/// Probing stops after this many unclaimed chunks per connection; the connection is then opaque.
const MAX_PROBE_CHUNKS: u32 = 32;
/// A probe that still says `NeedMore` after this many bytes is a no.
const MAX_PROBE_BYTES: usize = http1::parse::MAX_PROBE_LINE;

/// The application-layer state of one connection.
#[derive(Debug, Default)]
pub enum AppSession {
    Probing(Prober),
    Http1(Box<http1::state::Http1Session>),
    #[default]
    Opaque,
}

#[derive(Debug, Default)]
pub struct Prober {
    held: [Vec<u8>; 2],
    chunks: u32,
}

impl AppSession {
    pub fn new() -> Self {
        AppSession::Probing(Prober::default())
    }

    /// Hands one reassembled chunk of direction `dir` to the session.
    pub fn on_chunk(&mut self, dir: Dir, ts: Timestamp, chunk: Chunk<'_>, ctx: &mut Ctx<'_>) {
        match self {
            AppSession::Http1(s) => s.on_chunk(dir, ts, chunk, ctx),
            AppSession::Opaque => {
                if let Chunk::Data(d) = chunk {
                    ctx.stats.bytes_not_dissected += d.len() as u64;
                }
            }
            AppSession::Probing(p) => {
                let Chunk::Data(data) = chunk else {
                    p.held[dir.index()].clear();
                    return;
                };
                let held = &mut p.held[dir.index()];
                let joined: Vec<u8>;
                let view: &[u8] = if held.is_empty() {
                    data
                } else {
                    held.extend_from_slice(data);
                    joined = std::mem::take(held);
                    &joined
                };
                match http1::parse::probe(view) {
                    Probe::Match => {
                        ctx.stats.connections_http1 += 1;
                        let mut s = Box::new(http1::state::Http1Session::new());
                        s.on_chunk(dir, ts, Chunk::Data(view), ctx);
                        *self = AppSession::Http1(s);
                    }
                    Probe::NeedMore if view.len() < MAX_PROBE_BYTES => {
                        p.held[dir.index()] = view.to_vec();
                    }
                    _ => {
                        ctx.stats.bytes_not_dissected += view.len() as u64;
                        p.chunks += 1;
                        if p.chunks >= MAX_PROBE_CHUNKS {
                            ctx.stats.connections_opaque += 1;
                            *self = AppSession::Opaque;
                        }
                    }
                }
            }
        }
    }

    /// The connection is over: emit whatever is still open.
    pub fn finish(&mut self, ts: Timestamp, ctx: &mut Ctx<'_>) {
        if let AppSession::Http1(s) = self {
            s.finish(ts, ctx);
        }
    }
}
