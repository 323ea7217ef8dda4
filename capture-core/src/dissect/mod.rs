//! Application-layer dissection, by content and never by port.
//!
//! Every TCP connection starts in [`AppSession::Probing`]: the first bytes of each direction are
//! offered to each protocol's probe (`Probe::{Match, NoMatch, NeedMore}`). The first match picks
//! the protocol for the connection; a connection nobody claims becomes `Opaque` and costs nothing
//! more. Each protocol lives in `dissect/<proto>/` with a pure parser (`parse.rs`) and per-flow
//! state (`state.rs`) that pushes finished [`Entry`]s into the context's output.

pub mod amqp;
pub mod dns;
pub mod frames;
pub mod http1;
pub mod http2;
pub mod kafka;
pub mod redis;
pub mod tls;

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DissectStats {
    /// Connections (or UDP conversations) claimed, by protocol name.
    pub connections: std::collections::BTreeMap<&'static str, u64>,
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
    /// HTTP/2 framing errors (oversized or impossible frames, bad padding).
    pub h2_frame_errors: u64,
    /// HTTP/2 directions that lost their framing (gap, error) and looked for frames again.
    pub h2_resyncs: u64,
    /// HPACK blocks that could not be decoded (the table was reset to unknown).
    pub h2_hpack_errors: u64,
    /// HPACK blocks that referenced table entries never seen (`hpack_incomplete` entries).
    pub h2_hpack_incomplete: u64,
    /// HPACK entries dropped by `h2_hpack_table_bytes`.
    pub h2_hpack_table_capped: u64,
    /// Streams emitted early by `h2_max_streams`.
    pub h2_stream_overflows: u64,
    /// Header lists cut by `h2_max_header_list_bytes`.
    pub h2_header_lists_too_large: u64,
    /// Header blocks cut by `h2_max_continuations`.
    pub h2_continuation_overflows: u64,
    /// RESP that does not parse (bad type line, bad number, missing CRLF).
    pub redis_parse_errors: u64,
    /// Redis directions that lost step (gap, error) and looked for RESP again.
    pub redis_resyncs: u64,
    /// RESP nested deeper than `redis_max_depth`.
    pub redis_depth_exceeded: u64,
    /// RESP lengths or lines beyond `redis_max_aggregate_len`, `redis_max_bulk_len`,
    /// `redis_max_line_bytes`.
    pub redis_length_exceeded: u64,
    /// Redis entries with values cut at `redis_value_bytes` / `redis_max_args`.
    pub redis_values_truncated: u64,
    /// Redis commands emitted early by `redis_max_pending`.
    pub redis_pipeline_overflows: u64,
    /// DNS messages with problems (cut, malformed records) or bytes in a DNS flow that are not DNS.
    pub dns_malformed: u64,
    /// DNS names whose compression pointers loop (or exceed `dns_max_pointer_hops`).
    pub dns_pointer_loops: u64,
    /// DNS messages with more questions or answers than `dns_max_questions` / `dns_max_records`.
    pub dns_records_capped: u64,
    /// DNS queries that got no response (timed out, replaced by a retry, or flow ended).
    pub dns_unanswered: u64,
    /// DNS queries repeated within `dns_retransmit_window_us`.
    pub dns_retransmissions: u64,
    /// DNS queries emitted early by `dns_max_pending`.
    pub dns_pending_overflows: u64,
    /// DNS-over-TCP messages cut by a gap.
    pub dns_messages_lost: u64,
    /// DNS-over-TCP directions that lost their framing and looked for a message again.
    pub dns_resyncs: u64,
    /// DNS exchanges found inside HTTP entries (DNS over HTTPS).
    pub dns_over_https: u64,
    /// Kafka frames that are not a request or response header, or lost framing.
    pub kafka_frame_errors: u64,
    /// Kafka directions that lost their framing at a gap and looked for a frame again.
    pub kafka_resyncs: u64,
    /// Kafka frames longer than `dissector_buffer_bytes`, read from their first bytes.
    pub kafka_frames_truncated: u64,
    /// Kafka requests emitted early, unanswered, by `kafka_max_pending`.
    pub kafka_pending_overflows: u64,
    /// Kafka topics, partitions or error codes not kept by `kafka_max_list`.
    pub kafka_lists_capped: u64,
    /// Kafka records counted but not kept by `kafka_max_records`.
    pub kafka_records_not_kept: u64,
    /// Compressed Kafka batches that reached `kafka_decompress_max_bytes`: their records were
    /// read no further.
    pub kafka_decompress_capped: u64,
    /// Kafka batches that did not decompress (corrupt data, unknown codec, zstd window too big).
    pub kafka_decompress_errors: u64,
    /// AMQP frames with a bad type, frame-end octet or method payload.
    pub amqp_frame_errors: u64,
    /// AMQP directions that lost their framing at a gap and looked for a frame again.
    pub amqp_resyncs: u64,
    /// AMQP frames longer than `dissector_buffer_bytes`, read from their first bytes.
    pub amqp_frames_truncated: u64,
    /// AMQP entries emitted early by `amqp_max_open`.
    pub amqp_open_overflows: u64,
    /// AMQP message bodies kept as their first `amqp_body_max_bytes` bytes.
    pub amqp_bodies_truncated: u64,
    /// AMQP body bytes beyond the size the content header announced, dropped (counted once per
    /// body frame that overran).
    pub amqp_body_overruns: u64,
    /// AMQP field tables (message headers, connection properties) read in part: a depth, item or
    /// value-size cap was hit, or the table was malformed or cut short.
    pub amqp_tables_cut: u64,
    /// TLS directions whose bytes stopped being TLS records (the rest was not read).
    pub tls_framing_errors: u64,
    /// TLS directions that lost their record framing at a gap and found a record header again.
    pub tls_resyncs: u64,
    /// TLS handshake messages that did not parse or exceeded `tls_max_handshake_bytes` (the
    /// rest of that direction's handshake was not read).
    pub tls_handshake_errors: u64,
    /// TLS records that did not authenticate with the key log's keys (decryption of that
    /// connection stopped).
    pub tls_decrypt_errors: u64,
}

impl DissectStats {
    pub fn count_connection(&mut self, protocol: &'static str) {
        *self.connections.entry(protocol).or_default() += 1;
    }

    pub fn add(&mut self, o: &DissectStats) {
        for (k, v) in &o.connections {
            *self.connections.entry(k).or_default() += v;
        }
        self.connections_opaque += o.connections_opaque;
        self.http_parse_errors += o.http_parse_errors;
        self.http_header_too_large += o.http_header_too_large;
        self.http_resyncs += o.http_resyncs;
        self.http_buffer_overflows += o.http_buffer_overflows;
        self.http_pipeline_overflows += o.http_pipeline_overflows;
        self.http_bodies_truncated += o.http_bodies_truncated;
        self.bytes_not_dissected += o.bytes_not_dissected;
        self.h2_frame_errors += o.h2_frame_errors;
        self.h2_resyncs += o.h2_resyncs;
        self.h2_hpack_errors += o.h2_hpack_errors;
        self.h2_hpack_incomplete += o.h2_hpack_incomplete;
        self.h2_hpack_table_capped += o.h2_hpack_table_capped;
        self.h2_stream_overflows += o.h2_stream_overflows;
        self.h2_header_lists_too_large += o.h2_header_lists_too_large;
        self.h2_continuation_overflows += o.h2_continuation_overflows;
        self.redis_parse_errors += o.redis_parse_errors;
        self.redis_resyncs += o.redis_resyncs;
        self.redis_depth_exceeded += o.redis_depth_exceeded;
        self.redis_length_exceeded += o.redis_length_exceeded;
        self.redis_values_truncated += o.redis_values_truncated;
        self.redis_pipeline_overflows += o.redis_pipeline_overflows;
        self.dns_malformed += o.dns_malformed;
        self.dns_pointer_loops += o.dns_pointer_loops;
        self.dns_records_capped += o.dns_records_capped;
        self.dns_unanswered += o.dns_unanswered;
        self.dns_retransmissions += o.dns_retransmissions;
        self.dns_pending_overflows += o.dns_pending_overflows;
        self.dns_messages_lost += o.dns_messages_lost;
        self.dns_resyncs += o.dns_resyncs;
        self.dns_over_https += o.dns_over_https;
        self.kafka_frame_errors += o.kafka_frame_errors;
        self.kafka_resyncs += o.kafka_resyncs;
        self.kafka_frames_truncated += o.kafka_frames_truncated;
        self.kafka_pending_overflows += o.kafka_pending_overflows;
        self.kafka_lists_capped += o.kafka_lists_capped;
        self.kafka_records_not_kept += o.kafka_records_not_kept;
        self.kafka_decompress_capped += o.kafka_decompress_capped;
        self.kafka_decompress_errors += o.kafka_decompress_errors;
        self.amqp_frame_errors += o.amqp_frame_errors;
        self.amqp_resyncs += o.amqp_resyncs;
        self.amqp_frames_truncated += o.amqp_frames_truncated;
        self.amqp_open_overflows += o.amqp_open_overflows;
        self.amqp_bodies_truncated += o.amqp_bodies_truncated;
        self.amqp_body_overruns += o.amqp_body_overruns;
        self.amqp_tables_cut += o.amqp_tables_cut;
        self.tls_framing_errors += o.tls_framing_errors;
        self.tls_resyncs += o.tls_resyncs;
        self.tls_handshake_errors += o.tls_handshake_errors;
        self.tls_decrypt_errors += o.tls_decrypt_errors;
    }
}

/// What a dissector sees of the world while it runs.
pub struct Ctx<'a> {
    pub limits: &'a Limits,
    pub meta: &'a FlowMeta,
    pub out: &'a mut Vec<Entry>,
    pub stats: &'a mut DissectStats,
    /// TLS secrets (`--keylog`); `None` when none were given.
    pub keys: Option<&'a tls::keylog::KeyLog>,
}

/// Probing stops after this many unclaimed chunks per connection; the connection is then opaque.
const MAX_PROBE_CHUNKS: u32 = 32;
/// A probe that still says `NeedMore` after this many bytes is a no.
const MAX_PROBE_BYTES: usize = http1::parse::MAX_PROBE_LINE;
/// UDP flows whose first datagrams nobody claims stop being probed after this many.
const MAX_PROBE_DATAGRAMS: u32 = 8;

/// A dissector of one TCP connection's two byte streams.
pub trait StreamDissector: std::fmt::Debug + Send {
    /// One reassembled chunk of direction `dir` (data, a gap, or the end of that direction).
    fn on_chunk(&mut self, dir: Dir, ts: Timestamp, chunk: Chunk<'_>, ctx: &mut Ctx<'_>);
    /// The connection is over: emit whatever is still open. Called once or more; idempotent.
    fn finish(&mut self, ts: Timestamp, ctx: &mut Ctx<'_>);
    /// The connection was reset. Like [`Self::finish`], unless the dissector waits for something
    /// that does not come in packets (TLS records waiting for their secrets in a key log still
    /// being written): then it keeps it until `finish`, when the flow leaves the table.
    fn reset(&mut self, ts: Timestamp, ctx: &mut Ctx<'_>) {
        self.finish(ts, ctx);
    }
    /// After a protocol switch (an HTTP/1.1 `101` to `Upgrade: h2c`), the dissector that takes
    /// the rest of the connection, already fed the bytes that followed the switch, and its
    /// protocol name. Asked after every chunk; returns it once.
    fn successor(&mut self) -> Option<(&'static str, Box<dyn StreamDissector>)> {
        None
    }
}

/// A TCP application protocol: how to recognise it from the first bytes of a direction, and how
/// to start its dissector.
pub struct StreamProtocol {
    pub name: &'static str,
    /// Looks at the first bytes of one direction (`dir` is relative to the flow's guessed roles).
    pub probe: fn(&[u8], Dir) -> Probe,
    pub start: fn() -> Box<dyn StreamDissector>,
}

/// Stream protocols in probing order: the first that matches a connection's first bytes wins.
/// TLS goes first: its probe is strict (record header, handshake header and a hello length),
/// and a ClientHello's first bytes could pass a lenient length-prefixed probe (DNS over TCP).
pub static STREAM_PROTOCOLS: &[StreamProtocol] = &[
    StreamProtocol {
        name: "tls",
        probe: |b, _| tls::parse::probe(b),
        start: || Box::new(tls::state::TlsSession::new()),
    },
    StreamProtocol {
        name: "http/1",
        probe: |b, _| http1::parse::probe(b),
        start: || Box::new(http1::state::Http1Session::new()),
    },
    StreamProtocol {
        name: "http/2",
        probe: |b, _| http2::probe(b),
        start: || Box::new(http2::state::Http2Session::new()),
    },
    StreamProtocol {
        name: "redis",
        probe: |b, _| redis::parse::probe(b),
        start: || Box::new(redis::state::RedisSession::new()),
    },
    StreamProtocol {
        name: "dns",
        probe: |b, _| dns::parse::probe_tcp(b),
        start: || Box::new(dns::state::DnsTcpSession::new()),
    },
    StreamProtocol {
        name: "amqp",
        probe: |b, _| amqp::parse::probe(b),
        start: || Box::new(amqp::state::AmqpSession::new()),
    },
    StreamProtocol {
        name: "kafka",
        probe: |b, _| match kafka::parse::probe(b) {
            Probe::NoMatch => kafka::parse::probe_responses(b),
            p => p,
        },
        start: || Box::new(kafka::state::KafkaSession::new()),
    },
];

/// A dissector of one UDP conversation's datagrams.
pub trait DatagramDissector: std::fmt::Debug + Send {
    fn on_datagram(&mut self, dir: Dir, ts: Timestamp, payload: &[u8], ctx: &mut Ctx<'_>);
    /// The conversation is over (idle, evicted, end of capture): emit what is open.
    fn finish(&mut self, ts: Timestamp, ctx: &mut Ctx<'_>);
}

/// A UDP application protocol, recognised from one datagram.
pub struct DatagramProtocol {
    pub name: &'static str,
    pub probe: fn(&[u8], Dir) -> bool,
    pub start: fn() -> Box<dyn DatagramDissector>,
}

/// Datagram protocols in probing order.
pub static DATAGRAM_PROTOCOLS: &[DatagramProtocol] = &[DatagramProtocol {
    name: "dns",
    probe: |b, _| dns::parse::probe_udp(b),
    start: || Box::new(dns::state::DnsUdpSession::new()),
}];

/// The application-layer state of one TCP connection.
#[derive(Debug, Default)]
pub enum AppSession {
    Probing(Prober),
    Active(&'static str, Box<dyn StreamDissector>),
    #[default]
    Opaque,
}

#[derive(Debug, Default)]
pub struct Prober {
    held: [Vec<u8>; 2],
    /// When the held bytes of each direction arrived.
    held_ts: [Option<Timestamp>; 2],
    chunks: u32,
}

/// Offers `data` to every stream protocol's probe.
fn probe_stream(data: &[u8], dir: Dir) -> (Probe, Option<&'static StreamProtocol>) {
    let mut need_more = false;
    for p in STREAM_PROTOCOLS {
        match (p.probe)(data, dir) {
            Probe::Match => return (Probe::Match, Some(p)),
            Probe::NeedMore => need_more = true,
            Probe::NoMatch => {}
        }
    }
    (if need_more { Probe::NeedMore } else { Probe::NoMatch }, None)
}

impl AppSession {
    pub fn new() -> Self {
        AppSession::Probing(Prober::default())
    }

    /// The protocol this connection was found to carry, if any.
    pub fn protocol(&self) -> Option<&'static str> {
        match self {
            AppSession::Active(name, _) => Some(name),
            _ => None,
        }
    }

    /// Hands one reassembled chunk of direction `dir` to the session.
    pub fn on_chunk(&mut self, dir: Dir, ts: Timestamp, chunk: Chunk<'_>, ctx: &mut Ctx<'_>) {
        match self {
            AppSession::Active(_, s) => {
                let before = ctx.out.len();
                s.on_chunk(dir, ts, chunk, ctx);
                if let Some((name, next)) = s.successor() {
                    s.finish(ts, ctx);
                    ctx.stats.count_connection(name);
                    *self = AppSession::Active(name, next);
                }
                dns::doh::derive(ctx, before);
            }
            AppSession::Opaque => {
                if let Chunk::Data(d) = chunk {
                    ctx.stats.bytes_not_dissected += d.len() as u64;
                }
            }
            AppSession::Probing(p) => {
                let Chunk::Data(data) = chunk else {
                    p.held[dir.index()].clear();
                    p.held_ts[dir.index()] = None;
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
                match probe_stream(view, dir) {
                    (Probe::Match, Some(proto)) => {
                        ctx.stats.count_connection(proto.name);
                        let before = ctx.out.len();
                        let mut s = (proto.start)();
                        // Bytes the other direction sent earlier, held while undecided (an inline
                        // Redis command before its RESP reply), go first: they came first.
                        let other = dir.flip().index();
                        let earlier = std::mem::take(&mut p.held[other]);
                        if !earlier.is_empty() {
                            let at = p.held_ts[other].unwrap_or(ts);
                            s.on_chunk(dir.flip(), at, Chunk::Data(&earlier), ctx);
                        }
                        s.on_chunk(dir, ts, Chunk::Data(view), ctx);
                        dns::doh::derive(ctx, before);
                        *self = AppSession::Active(proto.name, s);
                    }
                    (Probe::NeedMore, _) if view.len() < MAX_PROBE_BYTES => {
                        p.held_ts[dir.index()].get_or_insert(ts);
                        p.held[dir.index()] = view.to_vec();
                    }
                    _ => {
                        ctx.stats.bytes_not_dissected += view.len() as u64;
                        p.held_ts[dir.index()] = None;
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
        if let AppSession::Active(_, s) = self {
            let before = ctx.out.len();
            s.finish(ts, ctx);
            dns::doh::derive(ctx, before);
        }
    }

    /// The connection was reset (see [`StreamDissector::reset`]).
    pub fn reset(&mut self, ts: Timestamp, ctx: &mut Ctx<'_>) {
        if let AppSession::Active(_, s) = self {
            let before = ctx.out.len();
            s.reset(ts, ctx);
            dns::doh::derive(ctx, before);
        }
    }
}

/// The application-layer state of one UDP conversation.
#[derive(Debug, Default)]
pub enum DatagramSession {
    #[default]
    Probing,
    Active(&'static str, Box<dyn DatagramDissector>),
    Opaque,
}

impl DatagramSession {
    pub fn on_datagram(&mut self, dir: Dir, ts: Timestamp, payload: &[u8], seen: u64, ctx: &mut Ctx<'_>) {
        match self {
            DatagramSession::Active(_, s) => s.on_datagram(dir, ts, payload, ctx),
            DatagramSession::Opaque => ctx.stats.bytes_not_dissected += payload.len() as u64,
            DatagramSession::Probing => {
                if let Some(p) = DATAGRAM_PROTOCOLS.iter().find(|p| (p.probe)(payload, dir)) {
                    ctx.stats.count_connection(p.name);
                    let mut s = (p.start)();
                    s.on_datagram(dir, ts, payload, ctx);
                    *self = DatagramSession::Active(p.name, s);
                } else {
                    ctx.stats.bytes_not_dissected += payload.len() as u64;
                    if seen >= u64::from(MAX_PROBE_DATAGRAMS) {
                        ctx.stats.connections_opaque += 1;
                        *self = DatagramSession::Opaque;
                    }
                }
            }
        }
    }

    pub fn finish(&mut self, ts: Timestamp, ctx: &mut Ctx<'_>) {
        if let DatagramSession::Active(_, s) = self {
            s.finish(ts, ctx);
        }
    }
}
