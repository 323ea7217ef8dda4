//! One HTTP/2 connection: frames per direction, HPACK per direction, streams, entries.
//!
//! Each direction is read as frames once its start is found: the client preface, the server's
//! first SETTINGS, or (mid-connection, or after a gap) the first offset where plausible frames
//! follow each other. DATA payloads are streamed, never buffered whole. Every header block is
//! decoded, the blocks of streams we dropped included, so the dynamic tables stay in sync. A
//! stream becomes one entry when both sides have ended it (END_STREAM or RST_STREAM), when a
//! reset stream's grace is over, when the stream cap evicts it, or when the connection ends.

use std::collections::{BTreeMap, VecDeque};

use super::frame::{self, FrameHeader, HEADER_LEN, PREFACE};
use super::grpc::{self, GrpcFramer};
use super::hpack::{Decoder, Field};
use super::model::{GrpcCall, H2Message, H2Stream, h2_flags};
use crate::dissect::{Ctx, StreamDissector};
use crate::entry::{Detail, Entry, Protocol, Transport};
use crate::tcp::flow::{Dir, RoleSource};
use crate::tcp::reassembly::Chunk;
use crate::time::Timestamp;

/// A stream reset by one side waits this long (capture time) for the frames its peer had
/// already sent (a response racing a client's CANCEL).
const RESET_GRACE_US: u64 = 2_000_000;
/// Ids of emitted streams remembered, so late frames (WINDOW_UPDATE, a racing RST) do not open
/// them again.
const CLOSED_MEMORY: usize = 128;
/// While re-synchronising, at most this much unaligned input is kept for the next try.
const RESYNC_KEEP: usize = 32 << 10;
/// Frames that must follow each other to accept an alignment.
const RESYNC_FRAMES: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Mode {
    /// Nothing read yet in this direction.
    #[default]
    Start,
    Frames,
    /// Looking for frame boundaries (mid-connection start, gap, framing error).
    Resync,
}

#[derive(Debug)]
struct DataFrame {
    stream: u32,
    /// Payload bytes still to come, padding included.
    left: u32,
    /// Padding at the end of the payload.
    pad: u32,
    end_stream: bool,
}

/// A header block being received (HEADERS or PUSH_PROMISE, then CONTINUATIONs).
#[derive(Debug, Default)]
struct Block {
    stream: u32,
    /// The half the fields belong to (the sender's, or the client's for a push promise).
    half: usize,
    end_stream: bool,
    pending: Vec<u8>,
    fields: Vec<(Box<str>, Box<str>)>,
    list_size: usize,
    continuations: usize,
    unknown: bool,
    too_large: bool,
    /// More CONTINUATIONs than `h2_max_continuations`: later fields are not kept.
    too_many_fragments: bool,
    /// Decoding failed: the rest of the block is skipped.
    broken: bool,
}

#[derive(Debug, Default)]
struct DirState {
    buf: Vec<u8>,
    mode: Mode,
    data: Option<DataFrame>,
    /// Payload bytes of an oversized frame still to skip.
    skip: u64,
    block: Option<Block>,
    hpack: Option<Decoder>,
    /// SETTINGS_MAX_FRAME_SIZE the peer allowed this direction (0: the default).
    max_frame: u32,
    /// The direction's first bytes were missing.
    gapped: bool,
    ended: bool,
}

#[derive(Debug, Default)]
struct Half {
    headers: Option<Vec<(Box<str>, Box<str>)>>,
    trailers: Vec<(Box<str>, Box<str>)>,
    interim: Vec<u16>,
    body: Vec<u8>,
    body_size: u64,
    truncated: bool,
    data_frames: u32,
    first_ts: Option<Timestamp>,
    last_ts: Timestamp,
    end: bool,
    grpc: GrpcFramer,
}

impl Half {
    fn touch(&mut self, ts: Timestamp) {
        self.first_ts.get_or_insert(ts);
        self.last_ts = self.last_ts.max(ts);
    }

    fn started(&self) -> bool {
        self.headers.is_some() || self.data_frames > 0 || !self.trailers.is_empty()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .as_ref()?
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &**v)
    }
}

/// The HTTP/1.1 request of an h2c upgrade, answered on stream 1.
#[derive(Debug, Clone, Default)]
pub struct UpgradeRequest {
    pub method: Option<Box<str>>,
    pub path: Option<Box<str>>,
    pub host: Option<Box<str>>,
    pub first_ts: Timestamp,
}

#[derive(Debug, Default)]
struct Stream {
    halves: [Half; 2],
    /// The direction that sent the request, when known from the stream itself.
    client: Option<Dir>,
    rst: Option<(u32, Dir, Timestamp)>,
    pushed: bool,
    promised_on: Option<u32>,
    goaway: Option<u32>,
    flags: u32,
    upgrade: Option<UpgradeRequest>,
}

/// State of one HTTP/2 connection.
#[derive(Debug, Default)]
pub struct Http2Session {
    dirs: [DirState; 2],
    streams: BTreeMap<u32, Stream>,
    closed: VecDeque<u32>,
    /// The direction that sent the client preface (or requests).
    client_dir: Option<Dir>,
    preface_seen: bool,
}

impl Http2Session {
    pub fn new() -> Self {
        Self::default()
    }

    /// The rest of a connection after an HTTP/1.1 `101` to `Upgrade: h2c`: both directions start
    /// here, and stream 1 carries the response to `request`.
    pub fn after_upgrade(client_dir: Dir, request: UpgradeRequest) -> Self {
        let mut s = Self::new();
        s.client_dir = Some(client_dir);
        s.preface_seen = true;
        let mut st = Stream {
            client: Some(client_dir),
            flags: h2_flags::UPGRADED,
            ..Stream::default()
        };
        st.halves[client_dir.index()].end = true;
        st.halves[client_dir.index()].first_ts = Some(request.first_ts);
        st.upgrade = Some(request);
        s.streams.insert(1, st);
        s
    }

    fn data(&mut self, dir: Dir, ts: Timestamp, data: &[u8], ctx: &mut Ctx<'_>) {
        let i = dir.index();
        if self.dirs[i].buf.is_empty() {
            let used = self.parse(dir, ts, data, ctx);
            if used < data.len() {
                self.dirs[i].buf.extend_from_slice(&data[used..]);
            }
        } else {
            let mut buf = std::mem::take(&mut self.dirs[i].buf);
            buf.extend_from_slice(data);
            let used = self.parse(dir, ts, &buf, ctx);
            buf.drain(..used);
            self.dirs[i].buf = buf;
        }
        if self.dirs[i].buf.len() > ctx.limits.dissector_buffer_bytes.max(RESYNC_KEEP) {
            ctx.stats.bytes_not_dissected += self.dirs[i].buf.len() as u64;
            self.lose_sync(dir, ctx);
        }
    }

    fn decoder_for(&mut self, dir: Dir, from_start: bool, ctx: &Ctx<'_>) {
        let d = &mut self.dirs[dir.index()];
        if d.hpack.is_none() {
            let mut dec = Decoder::new(from_start, ctx.limits.h2_hpack_table_bytes);
            if !from_start {
                dec.desync();
            }
            d.hpack = Some(dec);
        }
    }

    /// Parses as much of `input` as possible; returns the bytes consumed.
    fn parse(&mut self, dir: Dir, ts: Timestamp, input: &[u8], ctx: &mut Ctx<'_>) -> usize {
        let i = dir.index();
        let mut at = 0;
        loop {
            if let Some(df) = &self.dirs[i].data
                && df.left == 0
            {
                self.end_data_frame(dir, ts, ctx);
            }
            let rest = &input[at..];
            if rest.is_empty() {
                return at;
            }
            match self.dirs[i].mode {
                Mode::Start => {
                    let n = rest.len().min(PREFACE.len());
                    if rest[..n] == PREFACE[..n] {
                        if rest.len() < PREFACE.len() {
                            return at;
                        }
                        at += PREFACE.len();
                        self.client_dir = Some(dir);
                        self.preface_seen = true;
                        self.decoder_for(dir, true, ctx);
                        self.dirs[i].mode = Mode::Frames;
                        continue;
                    }
                    let Some(h) = FrameHeader::parse(rest) else { return at };
                    let handshake = matches!(ctx.meta.roles, RoleSource::Syn | RoleSource::SynAck);
                    let settings_first = h.ty == frame::SETTINGS && h.flags == 0 && h.stream == 0;
                    let from_start = !self.dirs[i].gapped && (self.preface_seen || handshake || settings_first);
                    self.decoder_for(dir, from_start, ctx);
                    self.dirs[i].mode = if from_start { Mode::Frames } else { Mode::Resync };
                }
                Mode::Resync => match find_alignment(rest) {
                    Some(off) => {
                        ctx.stats.bytes_not_dissected += off as u64;
                        at += off;
                        self.dirs[i].mode = Mode::Frames;
                    }
                    None => {
                        let keep = rest.len().min(RESYNC_KEEP);
                        let skip = rest.len() - keep;
                        ctx.stats.bytes_not_dissected += skip as u64;
                        return at + skip;
                    }
                },
                Mode::Frames => {
                    if self.dirs[i].data.is_some() {
                        at += self.data_payload(dir, ts, rest, ctx);
                        continue;
                    }
                    if self.dirs[i].skip > 0 {
                        let n = (rest.len() as u64).min(self.dirs[i].skip);
                        self.dirs[i].skip -= n;
                        ctx.stats.bytes_not_dissected += n;
                        at += n as usize;
                        continue;
                    }
                    let Some(h) = FrameHeader::parse(rest) else { return at };
                    let max = self.dirs[i].max_frame.max(frame::DEFAULT_MAX_FRAME);
                    if h.len > max {
                        ctx.stats.h2_frame_errors += 1;
                        self.lose_sync(dir, ctx);
                        ctx.stats.bytes_not_dissected += 1;
                        at += 1;
                        continue;
                    }
                    if h.ty == frame::DATA {
                        let padded = h.flags & frame::FLAG_PADDED != 0;
                        let head = HEADER_LEN + usize::from(padded);
                        if rest.len() < head {
                            return at;
                        }
                        let (pad, left) = if padded {
                            (u32::from(rest[HEADER_LEN]), h.len.saturating_sub(1))
                        } else {
                            (0, h.len)
                        };
                        at += head;
                        self.start_data_frame(dir, ts, h, pad, left, ctx);
                        continue;
                    }
                    let total = HEADER_LEN + h.len as usize;
                    if h.len as usize > ctx.limits.dissector_buffer_bytes {
                        // Too large to hold: skip it; a header block in it is lost.
                        at += HEADER_LEN;
                        self.dirs[i].skip = u64::from(h.len);
                        if matches!(h.ty, frame::HEADERS | frame::CONTINUATION | frame::PUSH_PROMISE) {
                            self.lost_block(dir, Some(h.stream), ctx);
                        }
                        continue;
                    }
                    if rest.len() < total {
                        return at;
                    }
                    at += total;
                    self.on_frame(dir, ts, h, &rest[HEADER_LEN..total], ctx);
                }
            }
        }
    }

    /// The framing of `dir` is lost: find frames again, forget its HPACK table.
    fn lose_sync(&mut self, dir: Dir, ctx: &mut Ctx<'_>) {
        let i = dir.index();
        ctx.stats.h2_resyncs += 1;
        if let Some(df) = self.dirs[i].data.take()
            && let Some(s) = self.streams.get_mut(&df.stream)
        {
            s.flags |= h2_flags::GAP;
            s.halves[i].truncated = true;
            s.halves[i].grpc.lost = true;
        }
        self.dirs[i].buf.clear();
        self.dirs[i].skip = 0;
        self.dirs[i].mode = Mode::Resync;
        self.lost_block(dir, None, ctx);
    }

    /// A header block (or part of one) of `dir` was not decoded: the table is out of sync.
    fn lost_block(&mut self, dir: Dir, stream: Option<u32>, ctx: &mut Ctx<'_>) {
        let i = dir.index();
        let block = self.dirs[i].block.take();
        if let Some(d) = &mut self.dirs[i].hpack {
            d.desync();
        } else {
            self.dirs[i].hpack = Some(Decoder::new(false, ctx.limits.h2_hpack_table_bytes));
        }
        for id in block.map(|b| b.stream).into_iter().chain(stream) {
            if let Some(s) = self.streams.get_mut(&id) {
                s.flags |= h2_flags::HPACK_INCOMPLETE;
            }
        }
    }

    fn gap(&mut self, dir: Dir, n: u64, ctx: &mut Ctx<'_>) {
        let i = dir.index();
        let st = &mut self.dirs[i];
        if st.mode == Mode::Start {
            st.gapped = true;
            st.mode = Mode::Resync;
            self.decoder_for(dir, false, ctx);
            return;
        }
        if st.mode == Mode::Frames && st.buf.is_empty() {
            if let Some(df) = &mut st.data
                && n <= u64::from(df.left)
            {
                let data_part = n.min(u64::from(df.left.saturating_sub(df.pad)));
                df.left -= n as u32;
                let id = df.stream;
                if let Some(s) = self.streams.get_mut(&id) {
                    let h = &mut s.halves[i];
                    h.body_size += data_part;
                    h.truncated = true;
                    h.grpc.gap(data_part);
                    s.flags |= h2_flags::GAP;
                }
                return;
            }
            if st.data.is_none() && st.skip >= n {
                st.skip -= n;
                return;
            }
        }
        if st.mode == Mode::Resync {
            st.buf.clear();
            return;
        }
        self.lose_sync(dir, ctx);
    }

    /// Opens (or finds) a stream; `false` when it was already emitted.
    fn open(&mut self, id: u32, ts: Timestamp, ctx: &mut Ctx<'_>) -> bool {
        if self.streams.contains_key(&id) {
            return true;
        }
        if id == 0 || self.closed.contains(&id) {
            return false;
        }
        self.sweep(ts, ctx);
        while self.streams.len() >= ctx.limits.h2_max_streams.max(1) {
            let Some((&old, _)) = self.streams.iter().next() else {
                break;
            };
            if let Some(mut s) = self.streams.remove(&old) {
                s.flags |= h2_flags::STREAM_EVICTED;
                ctx.stats.h2_stream_overflows += 1;
                self.emit(old, s, ctx);
            }
        }
        self.streams.insert(id, Stream::default());
        true
    }

    /// Emits reset streams whose grace is over.
    fn sweep(&mut self, ts: Timestamp, ctx: &mut Ctx<'_>) {
        let due: Vec<u32> = self
            .streams
            .iter()
            .filter(|(_, s)| s.rst.is_some_and(|(_, _, at)| ts.micros_since(at) > RESET_GRACE_US))
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            if let Some(s) = self.streams.remove(&id) {
                self.emit(id, s, ctx);
            }
        }
    }

    fn maybe_done(&mut self, id: u32, ctx: &mut Ctx<'_>) {
        if self.streams.get(&id).is_some_and(|s| s.halves.iter().all(|h| h.end))
            && let Some(s) = self.streams.remove(&id)
        {
            self.emit(id, s, ctx);
        }
    }

    fn start_data_frame(&mut self, dir: Dir, ts: Timestamp, h: FrameHeader, pad: u32, left: u32, ctx: &mut Ctx<'_>) {
        let i = dir.index();
        if pad > left {
            // PROTOCOL_ERROR for the endpoints: the payload is all padding to us.
            ctx.stats.h2_frame_errors += 1;
        }
        self.dirs[i].data = Some(DataFrame {
            stream: h.stream,
            left,
            pad: pad.min(left),
            end_stream: h.flags & frame::FLAG_END_STREAM != 0,
        });
        if self.open(h.stream, ts, ctx)
            && let Some(s) = self.streams.get_mut(&h.stream)
        {
            let half = &mut s.halves[i];
            half.data_frames += 1;
            half.touch(ts);
        }
    }

    /// Consumes DATA payload bytes from `rest`; returns how many.
    fn data_payload(&mut self, dir: Dir, ts: Timestamp, rest: &[u8], ctx: &mut Ctx<'_>) -> usize {
        let i = dir.index();
        let Some(df) = &mut self.dirs[i].data else { return 0 };
        let take = (rest.len() as u64).min(u64::from(df.left)) as usize;
        let data_room = df.left.saturating_sub(df.pad) as usize;
        let data = &rest[..take.min(data_room)];
        df.left -= take as u32;
        let id = df.stream;
        let cap = ctx.limits.h2_stream_body_bytes;
        if let Some(s) = self.streams.get_mut(&id) {
            let h = &mut s.halves[i];
            h.body_size += data.len() as u64;
            let room = cap.saturating_sub(h.body.len());
            if data.len() > room {
                h.truncated = true;
            }
            h.body.extend_from_slice(&data[..data.len().min(room)]);
            h.grpc.feed(data);
            h.touch(ts);
        }
        take
    }

    fn end_data_frame(&mut self, dir: Dir, ts: Timestamp, ctx: &mut Ctx<'_>) {
        let i = dir.index();
        let Some(df) = self.dirs[i].data.take() else { return };
        if df.end_stream
            && let Some(s) = self.streams.get_mut(&df.stream)
        {
            s.halves[i].end = true;
            s.halves[i].touch(ts);
            self.maybe_done(df.stream, ctx);
        }
    }

    fn on_frame(&mut self, dir: Dir, ts: Timestamp, h: FrameHeader, payload: &[u8], ctx: &mut Ctx<'_>) {
        let i = dir.index();
        match h.ty {
            frame::HEADERS => {
                let skip = if h.flags & frame::FLAG_PRIORITY != 0 { 5 } else { 0 };
                if self.dirs[i].block.is_some() {
                    // A new block before the last one ended: the last one is lost.
                    ctx.stats.h2_frame_errors += 1;
                    self.lost_block(dir, None, ctx);
                }
                let Some(fragment) = frame::unpad(payload, h.flags, skip) else {
                    ctx.stats.h2_frame_errors += 1;
                    return self.lost_block(dir, Some(h.stream), ctx);
                };
                if self.open(h.stream, ts, ctx)
                    && let Some(s) = self.streams.get_mut(&h.stream)
                {
                    s.halves[i].touch(ts);
                }
                self.dirs[i].block = Some(Block {
                    stream: h.stream,
                    half: i,
                    end_stream: h.flags & frame::FLAG_END_STREAM != 0,
                    ..Block::default()
                });
                self.fragment(dir, ts, fragment, h.flags & frame::FLAG_END_HEADERS != 0, ctx);
            }
            frame::CONTINUATION => match &mut self.dirs[i].block {
                Some(b) if b.stream == h.stream => {
                    b.continuations += 1;
                    if b.continuations > ctx.limits.h2_max_continuations && !b.too_many_fragments {
                        b.too_many_fragments = true;
                        ctx.stats.h2_continuation_overflows += 1;
                    }
                    self.fragment(dir, ts, payload, h.flags & frame::FLAG_END_HEADERS != 0, ctx);
                }
                _ => {
                    // The block's start was not seen (mid-connection, or a stray fragment).
                    ctx.stats.h2_hpack_incomplete += 1;
                    self.lost_block(dir, Some(h.stream), ctx);
                }
            },
            frame::PUSH_PROMISE => {
                if self.dirs[i].block.is_some() {
                    ctx.stats.h2_frame_errors += 1;
                    self.lost_block(dir, None, ctx);
                }
                let Some(body) = frame::unpad(payload, h.flags, 0).filter(|b| b.len() >= 4) else {
                    ctx.stats.h2_frame_errors += 1;
                    return self.lost_block(dir, None, ctx);
                };
                let promised = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) & 0x7fff_ffff;
                let client = dir.flip();
                if self.open(promised, ts, ctx)
                    && let Some(s) = self.streams.get_mut(&promised)
                {
                    s.pushed = true;
                    s.promised_on = Some(h.stream);
                    s.client = Some(client);
                    // The promise is the pushed request: it has no body.
                    s.halves[client.index()].end = true;
                    s.halves[client.index()].touch(ts);
                }
                self.dirs[i].block = Some(Block {
                    stream: promised,
                    half: client.index(),
                    ..Block::default()
                });
                self.fragment(dir, ts, &body[4..], h.flags & frame::FLAG_END_HEADERS != 0, ctx);
            }
            frame::RST_STREAM if payload.len() == 4 => {
                let code = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                if let Some(s) = self.streams.get_mut(&h.stream) {
                    if s.rst.is_none() {
                        s.rst = Some((code, dir, ts));
                    }
                    s.halves[i].end = true;
                    s.halves[i].touch(ts);
                    self.maybe_done(h.stream, ctx);
                }
            }
            frame::SETTINGS if h.flags & frame::FLAG_ACK == 0 => {
                let peer = dir.flip().index();
                for (id, v) in frame::settings(payload) {
                    match id {
                        frame::SETTINGS_HEADER_TABLE_SIZE => {
                            // Limits the table the peer's encoder uses towards us.
                            if let Some(d) = &mut self.dirs[peer].hpack {
                                d.set_settings_max(v as usize);
                            }
                        }
                        frame::SETTINGS_MAX_FRAME_SIZE => {
                            self.dirs[peer].max_frame = v.clamp(frame::DEFAULT_MAX_FRAME, frame::MAX_FRAME);
                        }
                        _ => {}
                    }
                }
            }
            frame::GOAWAY if payload.len() >= 8 => {
                let last = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) & 0x7fff_ffff;
                let code = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
                // Streams the GOAWAY's receiver opened above `last` were not processed.
                let receiver_is_client = Some(dir.flip()) == self.client_dir || self.client_dir.is_none();
                for (&id, s) in self.streams.iter_mut() {
                    s.goaway.get_or_insert(code);
                    if id > last && (id % 2 == 1) == receiver_is_client {
                        s.flags |= h2_flags::REFUSED_BY_GOAWAY;
                    }
                }
            }
            _ => {}
        }
    }

    /// One fragment of the header block in progress of `dir`.
    fn fragment(&mut self, dir: Dir, ts: Timestamp, fragment: &[u8], end_headers: bool, ctx: &mut Ctx<'_>) {
        let i = dir.index();
        let max_list = ctx.limits.h2_max_header_list_bytes;
        // Strings past the list cap are still decoded (the table must stay in sync); only one
        // longer than what a direction may buffer is given up.
        let max_string = ctx.limits.dissector_buffer_bytes;
        let DirState { block, hpack, .. } = &mut self.dirs[i];
        let Some(b) = block.as_mut() else { return };
        let dec = hpack.get_or_insert_with(|| Decoder::new(false, ctx.limits.h2_hpack_table_bytes));
        if !b.broken {
            b.pending.extend_from_slice(fragment);
            let keep = !b.too_many_fragments;
            let (fields, list_size, too_large, unknown) =
                (&mut b.fields, &mut b.list_size, &mut b.too_large, &mut b.unknown);
            let mut sink = |f: Field| match f {
                Field::Header { name, value } => {
                    *list_size += name.len() + value.len() + 32;
                    if *list_size > max_list {
                        *too_large = true;
                    }
                    if !*too_large && keep {
                        fields.push((lossy(name), lossy(value)));
                    }
                }
                Field::Unknown => *unknown = true,
            };
            let before = dec.capped_entries;
            match dec.decode(&b.pending, max_string, &mut sink) {
                Ok(p) => {
                    b.pending.drain(..p.consumed);
                    if p.size_update_over_limit {
                        ctx.stats.h2_hpack_errors += 1;
                    }
                    if end_headers && !b.pending.is_empty() {
                        // The block ended inside a representation.
                        b.broken = true;
                    }
                }
                Err(_) => b.broken = true,
            }
            ctx.stats.h2_hpack_table_capped += dec.capped_entries - before;
            if b.broken {
                ctx.stats.h2_hpack_errors += 1;
                b.pending = Vec::new();
                dec.desync();
            }
        }
        if end_headers && let Some(b) = block.take() {
            self.finish_block(dir, ts, b, ctx);
        }
    }

    fn finish_block(&mut self, dir: Dir, ts: Timestamp, b: Block, ctx: &mut Ctx<'_>) {
        if b.unknown || b.broken {
            ctx.stats.h2_hpack_incomplete += 1;
        }
        if b.too_large {
            ctx.stats.h2_header_lists_too_large += 1;
        }
        let Some(s) = self.streams.get_mut(&b.stream) else {
            return;
        };
        if b.unknown || b.broken {
            s.flags |= h2_flags::HPACK_INCOMPLETE;
        }
        if b.too_large || b.too_many_fragments {
            s.flags |= h2_flags::HEADER_LIST_TOO_LARGE;
        }
        let is_request = b.fields.iter().any(|(k, _)| &**k == ":method");
        let pseudo = b.fields.iter().any(|(k, _)| k.starts_with(':'));
        let status = b
            .fields
            .iter()
            .find(|(k, _)| &**k == ":status")
            .and_then(|(_, v)| v.trim().parse::<u16>().ok());
        if is_request {
            s.client = Some(if b.half == dir.index() { dir } else { dir.flip() });
            if self.client_dir.is_none() && !s.pushed {
                self.client_dir = s.client;
            }
        }
        let half = &mut s.halves[b.half];
        half.touch(ts);
        match status {
            Some(code) if (100..200).contains(&code) && code != 101 => half.interim.push(code),
            _ => {
                // A block without pseudo-fields that ends the stream is trailers, also when the
                // headers before it were not captured.
                let first = half.headers.is_none() && half.data_frames == 0;
                if first && (pseudo || !b.end_stream) {
                    half.headers = Some(b.fields);
                } else {
                    half.trailers.extend(b.fields);
                }
            }
        }
        if b.end_stream && b.half == dir.index() {
            half.end = true;
            self.maybe_done(b.stream, ctx);
        }
    }

    /// Builds the entry of a finished stream.
    fn emit(&mut self, id: u32, mut s: Stream, ctx: &mut Ctx<'_>) {
        if self.closed.len() >= CLOSED_MEMORY {
            self.closed.pop_front();
        }
        self.closed.push_back(id);
        let meta = ctx.meta;
        let client = s
            .client
            .or(self.client_dir)
            .or_else(|| {
                // Without any request seen: the side whose half carries `:status` is the server.
                (0..2)
                    .find(|&k| s.halves[k].header(":status").is_some())
                    .map(|k| if k == 0 { Dir::ToClient } else { Dir::ToServer })
            })
            .unwrap_or(Dir::ToServer);
        let (src, dst) = if client == Dir::ToServer {
            (meta.client, meta.server)
        } else {
            (meta.server, meta.client)
        };
        let [h0, h1] = std::mem::take(&mut s.halves);
        let (req, resp) = if client == Dir::ToServer { (h0, h1) } else { (h1, h0) };
        let mut out = H2Stream {
            stream_id: id,
            pushed: s.pushed,
            promised_on: s.promised_on,
            goaway_code: s.goaway,
            flags: s.flags,
            ..H2Stream::default()
        };
        if let Some((code, by, _)) = s.rst {
            out.rst_code = Some(code);
            out.rst_by_client = Some(by == client);
        }
        let pseudo = |h: &Half, n: &str| h.header(n).map(Box::<str>::from);
        out.method = pseudo(&req, ":method");
        out.scheme = pseudo(&req, ":scheme");
        out.path = pseudo(&req, ":path");
        out.authority = pseudo(&req, ":authority").or_else(|| pseudo(&req, "host"));
        if let Some(u) = s.upgrade.take() {
            out.method = out.method.or(u.method);
            out.path = out.path.or(u.path);
            out.authority = out.authority.or(u.host);
        }
        out.status = resp.header(":status").and_then(|v| v.trim().parse().ok());
        out.interim = resp.interim.clone();
        let ct = |h: &Half| h.header("content-type").is_some_and(grpc::is_grpc_content_type);
        let is_grpc = ct(&req) || ct(&resp);
        if is_grpc {
            let (service, method) = out.path.as_deref().and_then(grpc::split_path).unwrap_or(("", ""));
            let trailer = |n: &str| {
                resp.trailers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(n))
                    .map(|(_, v)| &**v)
                    .or_else(|| resp.header(n))
            };
            out.grpc = Some(Box::new(GrpcCall {
                service: service.into(),
                method: method.into(),
                status: trailer("grpc-status").and_then(|v| v.trim().parse().ok()),
                message: trailer("grpc-message").map(|m| grpc::percent_decode(m).into()),
                request_messages: req.grpc.messages,
                response_messages: resp.grpc.messages,
                request_compressed: req.grpc.compressed.clone(),
                response_compressed: resp.grpc.compressed.clone(),
                request_encoding: req.header("grpc-encoding").map(Box::from),
                response_encoding: resp.header("grpc-encoding").map(Box::from),
            }));
        }
        let req_started = req.started();
        if !req_started && out.flags & h2_flags::UPGRADED == 0 && !out.pushed {
            out.flags |= h2_flags::NO_REQUEST;
        }
        if (req_started || out.flags & h2_flags::UPGRADED == 0) && !req.end {
            out.flags |= h2_flags::REQUEST_INCOMPLETE;
        }
        if resp.started() && !resp.end {
            out.flags |= h2_flags::RESPONSE_INCOMPLETE;
        }
        let req_first = req.first_ts.or_else(|| s.upgrade.as_ref().map(|u| u.first_ts));
        let resp_first = resp.first_ts;
        let ts = req_first.or(resp_first).unwrap_or_default();
        if let (Some(q), Some(r)) = (req_first, resp_first) {
            out.ttfb_us = Some(r.micros_since(q));
        }
        let elapsed_us = match (req_first, resp.started()) {
            (Some(q), true) => Some(resp.last_ts.micros_since(q)),
            _ => None,
        };
        let build = |h: Half| H2Message {
            headers: h.headers.unwrap_or_default(),
            trailers: h.trailers,
            body: h.body.into_boxed_slice(),
            body_size: h.body_size,
            body_truncated: h.truncated,
            data_frames: h.data_frames,
            first_ts: h.first_ts.unwrap_or_default(),
            last_ts: h.last_ts,
            complete: h.end,
        };
        if req.truncated || resp.truncated {
            ctx.stats.http_bodies_truncated += 1;
        }
        out.request = req_started.then(|| build(req));
        out.response = resp.started().then(|| build(resp));
        ctx.out.push(Entry {
            peers: Default::default(),
            tls: false,
            decrypted: false,
            tls_conn: None,
            id: 0,
            ts,
            protocol: if is_grpc { Protocol::Grpc } else { Protocol::Http2 },
            transport: Transport::Tcp,
            src,
            dst,
            flow_id: meta.id,
            elapsed_us,
            detail: Detail::Http2(Box::new(out)),
        });
    }

    pub fn on_chunk(&mut self, dir: Dir, ts: Timestamp, chunk: Chunk<'_>, ctx: &mut Ctx<'_>) {
        match chunk {
            Chunk::Data(d) => self.data(dir, ts, d, ctx),
            Chunk::Gap(n) => self.gap(dir, n, ctx),
            Chunk::End => {
                let i = dir.index();
                self.dirs[i].ended = true;
                if self.dirs.iter().all(|d| d.ended) {
                    self.finish(ts, ctx);
                }
            }
        }
    }

    /// The connection is over: every stream still open becomes an entry.
    pub fn finish(&mut self, ts: Timestamp, ctx: &mut Ctx<'_>) {
        for dir in [Dir::ToServer, Dir::ToClient] {
            if self.dirs[dir.index()].data.as_ref().is_some_and(|d| d.left == 0) {
                self.end_data_frame(dir, ts, ctx);
            }
            self.dirs[dir.index()].data = None;
            let i = dir.index();
            if let Some(b) = self.dirs[i].block.take()
                && let Some(s) = self.streams.get_mut(&b.stream)
            {
                s.flags |= h2_flags::HPACK_INCOMPLETE;
            }
            ctx.stats.bytes_not_dissected += self.dirs[i].buf.len() as u64;
            self.dirs[i].buf = Vec::new();
        }
        for (id, s) in std::mem::take(&mut self.streams) {
            self.emit(id, s, ctx);
        }
    }
}

fn lossy(b: Vec<u8>) -> Box<str> {
    match String::from_utf8(b) {
        Ok(s) => s.into_boxed_str(),
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned().into_boxed_str(),
    }
}

/// The first offset of `b` where [`RESYNC_FRAMES`] plausible frames follow each other (or fewer
/// that end exactly at the end of `b`, with a stream frame among them).
pub fn find_alignment(b: &[u8]) -> Option<usize> {
    (0..b.len()).find(|&off| {
        let r = frame::frame_run(&b[off..], RESYNC_FRAMES);
        r.frames >= RESYNC_FRAMES || (r.frames >= 1 && r.has_stream_frame && r.bytes == b.len() - off)
    })
}

impl StreamDissector for Http2Session {
    fn on_chunk(&mut self, dir: Dir, ts: Timestamp, chunk: Chunk<'_>, ctx: &mut Ctx<'_>) {
        Http2Session::on_chunk(self, dir, ts, chunk, ctx);
    }

    fn finish(&mut self, ts: Timestamp, ctx: &mut Ctx<'_>) {
        Http2Session::finish(self, ts, ctx);
    }
}
