//! One HTTP/1.x connection: message framing per direction and request/response pairing.
//!
//! Which direction carries requests is decided by content (the first request line or status line
//! seen), not by the flow's guessed roles. Requests queue in order (pipelining) and each response
//! takes the oldest; interim 1xx responses are recorded on the exchange without ending it; a 101
//! or a successful CONNECT turns the connection into a tunnel that is no longer parsed. After a
//! gap or an error a direction re-synchronises on the next line that starts a message.

use std::collections::VecDeque;
use std::sync::Arc;

use super::parse::{
    self, ChunkedDecoder, Framing, HeadEnd, RequestHead, ResponseHead, find_head_end, find_message_start,
    parse_request_head, parse_response_head,
};
use crate::dissect::http2::state::{Http2Session, UpgradeRequest};
use crate::dissect::{Ctx, StreamDissector};
use crate::entry::{Detail, Entry, HttpMessage, HttpTxn, Protocol, Transport, http_flags};
use crate::tcp::flow::Dir;
use crate::tcp::reassembly::Chunk;
use crate::time::Timestamp;

/// While re-synchronising, a tail this short (a possible message start cut by a segment
/// boundary) is kept rather than skipped.
const RESYNC_TAIL: usize = 64;

#[derive(Debug)]
enum BodyKind {
    Length(u64),
    Chunked(ChunkedDecoder),
    Close,
}

#[derive(Debug, Default)]
enum Phase {
    #[default]
    Head,
    Body(BodyKind),
    Tunnel,
}

#[derive(Debug, Default)]
struct DirState {
    buf: Vec<u8>,
    phase: Phase,
    resync: bool,
    /// Capture time of the first byte of the message being read.
    first_ts: Option<Timestamp>,
    ended: bool,
}

#[derive(Debug)]
struct MsgBuilder {
    head: Vec<u8>,
    body: Vec<u8>,
    body_size: u64,
    truncated: bool,
    chunked: bool,
    trailers: Vec<u8>,
    first_ts: Timestamp,
    last_ts: Timestamp,
    complete: bool,
    facts: u8,
}

impl MsgBuilder {
    fn new(head: &[u8], first_ts: Timestamp, ts: Timestamp, common: &parse::Common) -> Self {
        MsgBuilder {
            facts: common.facts,
            head: head.to_vec(),
            body: Vec::new(),
            body_size: 0,
            truncated: false,
            chunked: common.chunked,
            trailers: Vec::new(),
            first_ts,
            last_ts: ts,
            complete: false,
        }
    }

    /// `n` more body bytes are coming (a `Content-Length`, or a chunk's announced size): room
    /// for the part that will be kept, made once (growing the vector segment by segment copied
    /// each body about twice more).
    fn expect(&mut self, n: u64, cap: usize) {
        let room = cap.saturating_sub(self.body.len());
        crate::buffers::reserve(&mut self.body, usize::try_from(n).unwrap_or(usize::MAX).min(room));
    }

    fn append(&mut self, data: &[u8], ts: Timestamp, cap: usize) {
        self.body_size += data.len() as u64;
        let room = cap.saturating_sub(self.body.len());
        if data.len() > room {
            self.truncated = true;
        }
        self.body.extend_from_slice(&data[..data.len().min(room)]);
        self.last_ts = ts;
    }

    fn build(self) -> HttpMessage {
        HttpMessage {
            head: self.head.into(),
            body: crate::buffers::freeze(self.body),
            body_size: self.body_size,
            body_truncated: self.truncated,
            chunked: self.chunked,
            trailers: self.trailers.into(),
            first_ts: self.first_ts,
            last_ts: self.last_ts,
            complete: self.complete,
            head_facts: self.facts,
        }
    }
}

#[derive(Debug)]
struct Txn {
    seq: u64,
    minor: u8,
    /// Boxed from the start: the exchange moves from queue to entry without being copied.
    txn: Box<HttpTxn>,
    req: Option<MsgBuilder>,
    resp: Option<MsgBuilder>,
}

/// State of one HTTP/1 connection.
#[derive(Debug, Default)]
pub struct Http1Session {
    dirs: [DirState; 2],
    /// The flow direction that carries requests, once known.
    req_dir: Option<Dir>,
    /// Requests awaiting their response, oldest first.
    pending: VecDeque<Txn>,
    /// The exchange whose response is being read (after its status line).
    resp_txn: Option<Txn>,
    /// The exchange whose request body is still arriving.
    req_body_of: Option<u64>,
    next_seq: u64,
    /// After a `101` to `Upgrade: h2c`: the HTTP/2 dissector that takes the connection over.
    successor: Option<Box<dyn StreamDissector>>,
    /// The last host and reason phrase seen: the exchanges of a connection share one copy
    /// while they repeat.
    host: Option<Arc<str>>,
    reason: Option<Arc<str>>,
}

/// One shared copy of each method [`parse::METHODS`] names; others are copied.
pub(crate) fn method_text(m: &str) -> Arc<str> {
    static KNOWN: std::sync::LazyLock<Vec<Arc<str>>> = std::sync::LazyLock::new(|| {
        parse::METHODS
            .iter()
            .map(|m| Arc::from(std::str::from_utf8(m).unwrap_or_default()))
            .collect()
    });
    match KNOWN.iter().find(|k| ***k == *m) {
        Some(k) => k.clone(),
        None => Arc::from(m),
    }
}

/// `cache` when it holds `text`, else `text` copied (and kept in `cache`).
fn repeated(cache: &mut Option<Arc<str>>, text: &str) -> Arc<str> {
    match cache {
        Some(c) if **c == *text => c.clone(),
        _ => cache.insert(Arc::from(text)).clone(),
    }
}

impl Http1Session {
    pub fn new() -> Self {
        Self::default()
    }

    /// True once a 101/CONNECT switched the connection away from HTTP/1.
    pub fn upgraded(&self) -> bool {
        matches!(self.dirs[0].phase, Phase::Tunnel)
    }

    pub fn on_chunk(&mut self, dir: Dir, ts: Timestamp, chunk: Chunk<'_>, ctx: &mut Ctx<'_>) {
        match chunk {
            Chunk::Data(d) => self.data(dir, ts, d, ctx),
            Chunk::Gap(n) => self.gap(dir, ts, n, ctx),
            Chunk::End => {
                self.close_dir(dir, ts, ctx);
                if self.dirs.iter().all(|d| d.ended) {
                    self.finish(ts, ctx);
                }
            }
        }
    }

    fn data(&mut self, dir: Dir, ts: Timestamp, data: &[u8], ctx: &mut Ctx<'_>) {
        let i = dir.index();
        if self.dirs[i].buf.is_empty() {
            let used = self.parse(dir, ts, data, ctx);
            if used < data.len() {
                self.hold(dir, &data[used..], ctx);
            }
        } else {
            let mut buf = std::mem::take(&mut self.dirs[i].buf);
            buf.extend_from_slice(data);
            let used = self.parse(dir, ts, &buf, ctx);
            buf.drain(..used);
            self.dirs[i].buf = buf;
            if self.dirs[i].buf.len() > ctx.limits.dissector_buffer_bytes {
                self.overflow(dir, ctx);
            }
        }
    }

    fn hold(&mut self, dir: Dir, rest: &[u8], ctx: &mut Ctx<'_>) {
        if rest.len() > ctx.limits.dissector_buffer_bytes {
            self.overflow(dir, ctx);
        } else {
            self.dirs[dir.index()].buf.extend_from_slice(rest);
        }
    }

    fn overflow(&mut self, dir: Dir, ctx: &mut Ctx<'_>) {
        let st = &mut self.dirs[dir.index()];
        ctx.stats.http_buffer_overflows += 1;
        ctx.stats.bytes_not_dissected += st.buf.len() as u64;
        st.buf = Vec::new();
        st.resync = true;
        st.first_ts = None;
    }

    /// Parses as much of `input` as possible; returns the bytes consumed.
    fn parse(&mut self, dir: Dir, ts: Timestamp, input: &[u8], ctx: &mut Ctx<'_>) -> usize {
        let i = dir.index();
        let mut at = 0;
        while at < input.len() {
            match self.dirs[i].phase {
                Phase::Tunnel => {
                    match self.successor.as_mut() {
                        Some(next) => next.on_chunk(dir, ts, Chunk::Data(&input[at..]), ctx),
                        None => ctx.stats.bytes_not_dissected += (input.len() - at) as u64,
                    }
                    return input.len();
                }
                Phase::Body(_) => {
                    let used = self.body(dir, ts, &input[at..], ctx);
                    if used == 0 {
                        return at;
                    }
                    at += used;
                }
                Phase::Head => {
                    let st = &mut self.dirs[i];
                    if st.resync {
                        match find_message_start(input, at) {
                            Some(p) => {
                                ctx.stats.bytes_not_dissected += (p - at) as u64;
                                at = p;
                                st.resync = false;
                            }
                            None => {
                                let tail_start = memchr::memrchr(b'\n', &input[at..]).map_or(at, |p| at + p + 1);
                                let keep = if input.len() - tail_start <= RESYNC_TAIL {
                                    tail_start
                                } else {
                                    input.len()
                                };
                                ctx.stats.bytes_not_dissected += (keep - at) as u64;
                                return keep;
                            }
                        }
                    }
                    while at < input.len() && (input[at] == b'\r' || input[at] == b'\n') {
                        at += 1;
                    }
                    if at == input.len() {
                        return at;
                    }
                    let first_ts = *st.first_ts.get_or_insert(ts);
                    if let Some(n) = self.parsed_head(dir, first_ts, ts, &input[at..], ctx) {
                        self.dirs[i].first_ts = None;
                        at += n;
                        continue;
                    }
                    let st = &mut self.dirs[i];
                    match find_head_end(&input[at..], ctx.limits.http_max_header_bytes) {
                        HeadEnd::NeedMore => return at,
                        HeadEnd::TooLarge => {
                            ctx.stats.http_header_too_large += 1;
                            ctx.stats.http_resyncs += 1;
                            st.resync = true;
                            st.first_ts = None;
                            // Skip the oversized block's first line so re-sync looks further on.
                            at += memchr::memchr(b'\n', &input[at..]).map_or(input.len() - at, |p| p + 1);
                        }
                        HeadEnd::Found(n) => {
                            st.first_ts = None;
                            let head = &input[at..at + n];
                            at += n;
                            if head.starts_with(b"HTTP/") {
                                self.on_response_head(dir, first_ts, ts, head, ctx);
                            } else {
                                self.on_request_head(dir, first_ts, ts, head, ctx);
                            }
                        }
                    }
                }
            }
        }
        at
    }

    /// The head at the start of `rest`, parsed where it is: the parser finds its end, so the
    /// separate search for the empty line (two substring searches a head) is not needed. Returns
    /// its length once handled; `None` leaves the head to the general path (an end not in
    /// `rest` yet, a head over the size limit, a head the parser refuses, a message of the
    /// wrong direction), which decides as it always has.
    fn parsed_head(
        &mut self,
        dir: Dir,
        first_ts: Timestamp,
        ts: Timestamp,
        rest: &[u8],
        ctx: &mut Ctx<'_>,
    ) -> Option<usize> {
        let window = parse::head_window(rest, ctx.limits.http_max_header_bytes);
        let max_headers = ctx.limits.http_max_headers;
        if rest.starts_with(b"HTTP/") {
            if self.req_dir == Some(dir) {
                return None;
            }
            let (rh, n) = parse::parse_response_prefix(window, max_headers).ok()??;
            self.req_dir.get_or_insert(dir.flip());
            self.on_response(dir, first_ts, ts, &rest[..n], rh, ctx);
            Some(n)
        } else {
            if self.req_dir.is_some_and(|d| d != dir) {
                return None;
            }
            let (rh, n) = parse::parse_request_prefix(window, max_headers).ok()??;
            self.req_dir.get_or_insert(dir);
            self.on_request(dir, first_ts, ts, &rest[..n], rh, ctx);
            Some(n)
        }
    }

    fn parse_error(&mut self, dir: Dir, ctx: &mut Ctx<'_>) {
        ctx.stats.http_parse_errors += 1;
        ctx.stats.http_resyncs += 1;
        self.dirs[dir.index()].resync = true;
    }

    fn on_request_head(&mut self, dir: Dir, first_ts: Timestamp, ts: Timestamp, head: &[u8], ctx: &mut Ctx<'_>) {
        if *self.req_dir.get_or_insert(dir) != dir {
            return self.parse_error(dir, ctx);
        }
        let Ok(rh) = parse_request_head(head, ctx.limits.http_max_headers) else {
            return self.parse_error(dir, ctx);
        };
        self.on_request(dir, first_ts, ts, head, rh, ctx);
    }

    /// A request head, parsed.
    fn on_request(
        &mut self,
        dir: Dir,
        first_ts: Timestamp,
        ts: Timestamp,
        head: &[u8],
        rh: RequestHead<'_>,
        ctx: &mut Ctx<'_>,
    ) {
        let Ok(framing) = parse::request_framing(&rh.common) else {
            return self.parse_error(dir, ctx);
        };
        if self.pending.len() >= ctx.limits.http_max_pending
            && let Some(mut old) = self.pending.pop_front()
        {
            old.txn.flags |= http_flags::PIPELINE_OVERFLOW;
            ctx.stats.http_pipeline_overflows += 1;
            if self.req_body_of == Some(old.seq) {
                self.req_body_of = None;
            }
            self.emit(old, ctx);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut req = MsgBuilder::new(head, first_ts, ts, &rh.common);
        let body = match framing {
            Framing::None | Framing::Close => {
                req.complete = true;
                None
            }
            Framing::Length(n) => {
                req.expect(n, ctx.limits.body_capture_bytes);
                Some(BodyKind::Length(n))
            }
            Framing::Chunked => Some(BodyKind::Chunked(ChunkedDecoder::default())),
        };
        let txn = Box::new(HttpTxn {
            method: Some(method_text(rh.method)),
            path: Some(rh.target.into()),
            host: rh.host.as_deref().map(|h| repeated(&mut self.host, h)),
            ..HttpTxn::default()
        });
        self.pending.push_back(Txn {
            seq,
            minor: rh.common.minor,
            txn,
            req: Some(req),
            resp: None,
        });
        if let Some(b) = body {
            self.req_body_of = Some(seq);
            self.dirs[dir.index()].phase = Phase::Body(b);
        }
    }

    fn on_response_head(&mut self, dir: Dir, first_ts: Timestamp, ts: Timestamp, head: &[u8], ctx: &mut Ctx<'_>) {
        if *self.req_dir.get_or_insert(dir.flip()) == dir {
            return self.parse_error(dir, ctx);
        }
        let Ok(rh) = parse_response_head(head, ctx.limits.http_max_headers) else {
            return self.parse_error(dir, ctx);
        };
        self.on_response(dir, first_ts, ts, head, rh, ctx);
    }

    /// A response head, parsed.
    fn on_response(
        &mut self,
        dir: Dir,
        first_ts: Timestamp,
        ts: Timestamp,
        head: &[u8],
        rh: ResponseHead<'_>,
        ctx: &mut Ctx<'_>,
    ) {
        let mut txn = match self.resp_txn.take().or_else(|| self.pending.pop_front()) {
            Some(t) => t,
            None => {
                let seq = self.next_seq;
                self.next_seq += 1;
                Txn {
                    seq,
                    minor: rh.common.minor,
                    txn: Box::new(HttpTxn {
                        flags: http_flags::NO_REQUEST,
                        ..HttpTxn::default()
                    }),
                    req: None,
                    resp: None,
                }
            }
        };
        if txn.txn.ttfb_us.is_none() {
            txn.txn.ttfb_us = txn.req.as_ref().map(|r| first_ts.micros_since(r.first_ts));
        }
        let status = rh.status;
        if (100..200).contains(&status) && status != 101 {
            txn.txn.interim.push(status);
            self.resp_txn = Some(txn);
            return;
        }
        txn.txn.status = Some(status);
        txn.txn.reason = Some(repeated(&mut self.reason, rh.reason));
        let mut resp = MsgBuilder::new(head, first_ts, ts, &rh.common);
        let method = txn.txn.method.as_deref();
        let connect_ok = method.is_some_and(|m| m.eq_ignore_ascii_case("CONNECT")) && (200..300).contains(&status);
        if status == 101 || connect_ok {
            txn.txn.flags |= http_flags::UPGRADED;
            txn.txn.upgrade = rh.common.upgrade.map(String::into_boxed_str);
            resp.complete = true;
            txn.resp = Some(resp);
            let h2c = txn.txn.upgrade.as_deref().is_some_and(is_h2c);
            if status == 101 && h2c {
                let request = UpgradeRequest {
                    method: txn.txn.method.as_deref().map(Into::into),
                    path: txn.txn.path.clone(),
                    host: txn.txn.host.as_deref().map(Into::into),
                    first_ts: txn.req.as_ref().map_or(first_ts, |r| r.first_ts),
                };
                self.successor = Some(Box::new(Http2Session::after_upgrade(dir.flip(), request)));
            }
            self.emit(txn, ctx);
            for d in &mut self.dirs {
                ctx.stats.bytes_not_dissected += d.buf.len() as u64;
                d.buf = Vec::new();
                d.phase = Phase::Tunnel;
            }
            return;
        }
        match parse::response_framing(&rh.common, status, method) {
            Framing::None => {
                resp.complete = true;
                txn.resp = Some(resp);
                self.emit(txn, ctx);
            }
            framing => {
                if let Framing::Length(n) = framing {
                    resp.expect(n, ctx.limits.body_capture_bytes);
                }
                txn.resp = Some(resp);
                self.resp_txn = Some(txn);
                self.dirs[dir.index()].phase = Phase::Body(match framing {
                    Framing::Length(n) => BodyKind::Length(n),
                    Framing::Chunked => BodyKind::Chunked(ChunkedDecoder::default()),
                    _ => BodyKind::Close,
                });
            }
        }
    }

    /// The message builder a body byte of this direction belongs to.
    fn target(&mut self, dir: Dir) -> Option<&mut MsgBuilder> {
        if Some(dir) == self.req_dir {
            let seq = self.req_body_of?;
            if let Some(t) = self.resp_txn.as_mut().filter(|t| t.seq == seq) {
                return t.req.as_mut();
            }
            self.pending
                .iter_mut()
                .rev()
                .find(|t| t.seq == seq)
                .and_then(|t| t.req.as_mut())
        } else {
            self.resp_txn.as_mut().and_then(|t| t.resp.as_mut())
        }
    }

    fn append(&mut self, dir: Dir, data: &[u8], ts: Timestamp, ctx: &mut Ctx<'_>) {
        let cap = ctx.limits.body_capture_bytes;
        match self.target(dir) {
            Some(m) => m.append(data, ts, cap),
            None => ctx.stats.bytes_not_dissected += data.len() as u64,
        }
    }

    /// Consumes body bytes; returns how many (0 means more input is needed).
    fn body(&mut self, dir: Dir, ts: Timestamp, input: &[u8], ctx: &mut Ctx<'_>) -> usize {
        let i = dir.index();
        let Phase::Body(kind) = &mut self.dirs[i].phase else {
            return 0;
        };
        match kind {
            BodyKind::Length(left) => {
                let take = (input.len() as u64).min(*left) as usize;
                *left -= take as u64;
                let done = *left == 0;
                self.append(dir, &input[..take], ts, ctx);
                if done {
                    self.complete(dir, ts, ctx);
                }
                take
            }
            BodyKind::Close => {
                self.append(dir, input, ts, ctx);
                input.len()
            }
            BodyKind::Chunked(dec) => {
                let mut dec = *dec;
                let mut at = 0;
                let result = loop {
                    match dec.step(&input[at..]) {
                        Err(_) => break Err(()),
                        Ok(step) => {
                            if let Some((a, b)) = step.data {
                                // The rest of a chunk that goes on in later segments: room for
                                // all of it now, rather than growing the body segment by segment.
                                let left = dec.data_left();
                                if left > 0
                                    && let Some(m) = self.target(dir)
                                {
                                    m.expect(left + (b - a) as u64, ctx.limits.body_capture_bytes);
                                }
                                self.append(dir, &input[at + a..at + b], ts, ctx);
                            }
                            if let Some((a, b)) = step.trailer
                                && let Some(m) = self.target(dir)
                                && m.trailers.len() < ctx.limits.http_max_header_bytes
                            {
                                m.trailers.extend_from_slice(&input[at + a..at + b]);
                            }
                            at += step.consumed;
                            if step.done {
                                break Ok(true);
                            }
                            if step.consumed == 0 || at == input.len() {
                                break Ok(false);
                            }
                        }
                    }
                };
                match result {
                    Ok(true) => self.complete(dir, ts, ctx),
                    Ok(false) => {
                        if let Phase::Body(BodyKind::Chunked(d)) = &mut self.dirs[i].phase {
                            *d = dec;
                        }
                    }
                    Err(()) => {
                        self.break_message(dir, ts, 0, ctx);
                        self.parse_error(dir, ctx);
                        // Skip the bad line; re-sync looks for the next message from here.
                        return at.max(1).min(input.len());
                    }
                }
                at
            }
        }
    }

    /// A message of this direction completed.
    fn complete(&mut self, dir: Dir, ts: Timestamp, ctx: &mut Ctx<'_>) {
        self.dirs[dir.index()].phase = Phase::Head;
        if let Some(m) = self.target(dir) {
            m.complete = true;
            m.last_ts = m.last_ts.max(ts);
        }
        if Some(dir) == self.req_dir {
            self.req_body_of = None;
        } else if let Some(t) = self.resp_txn.take() {
            self.emit(t, ctx);
        }
    }

    /// The message being read in this direction cannot complete (gap, error, close).
    fn break_message(&mut self, dir: Dir, _ts: Timestamp, gap: u64, ctx: &mut Ctx<'_>) {
        let is_req = Some(dir) == self.req_dir;
        let in_body = matches!(self.dirs[dir.index()].phase, Phase::Body(_));
        self.dirs[dir.index()].phase = Phase::Head;
        if !in_body {
            return;
        }
        if let Some(m) = self.target(dir) {
            m.body_size += gap;
            if gap > 0 {
                m.truncated = true;
            }
        }
        let gap_flag = if gap > 0 { http_flags::GAP } else { 0 };
        if is_req {
            if let Some(seq) = self.req_body_of.take()
                && let Some(t) = self
                    .pending
                    .iter_mut()
                    .chain(self.resp_txn.iter_mut())
                    .find(|t| t.seq == seq)
            {
                t.txn.flags |= http_flags::REQUEST_INCOMPLETE | gap_flag;
            }
        } else if let Some(mut t) = self.resp_txn.take() {
            t.txn.flags |= http_flags::RESPONSE_INCOMPLETE | gap_flag;
            self.emit(t, ctx);
        }
    }

    fn gap(&mut self, dir: Dir, ts: Timestamp, n: u64, ctx: &mut Ctx<'_>) {
        let i = dir.index();
        let buffered = !self.dirs[i].buf.is_empty();
        match &mut self.dirs[i].phase {
            Phase::Tunnel => {}
            Phase::Body(BodyKind::Length(left)) if !buffered => {
                let fill = n.min(*left);
                *left -= fill;
                let done = *left == 0;
                if let Some(m) = self.target(dir) {
                    m.body_size += fill;
                    m.truncated = true;
                }
                self.flag_current(dir, http_flags::GAP);
                if done {
                    self.complete(dir, ts, ctx);
                }
                if n > fill {
                    self.dirs[i].resync = true;
                    ctx.stats.http_resyncs += 1;
                }
            }
            Phase::Body(BodyKind::Close) => {
                if let Some(m) = self.target(dir) {
                    m.body_size += n;
                    m.truncated = true;
                }
                self.flag_current(dir, http_flags::GAP);
            }
            _ => {
                self.break_message(dir, ts, 0, ctx);
                self.flag_current(dir, http_flags::GAP);
                let st = &mut self.dirs[i];
                ctx.stats.bytes_not_dissected += st.buf.len() as u64;
                st.buf.clear();
                st.first_ts = None;
                st.resync = true;
                ctx.stats.http_resyncs += 1;
            }
        }
    }

    fn flag_current(&mut self, dir: Dir, flag: u32) {
        if Some(dir) == self.req_dir {
            if let Some(seq) = self.req_body_of
                && let Some(t) = self
                    .pending
                    .iter_mut()
                    .chain(self.resp_txn.iter_mut())
                    .find(|t| t.seq == seq)
            {
                t.txn.flags |= flag;
            }
        } else if let Some(t) = self.resp_txn.as_mut() {
            t.txn.flags |= flag;
        }
    }

    /// The sender of `dir` closed: a body delimited by close completes, others are cut.
    fn close_dir(&mut self, dir: Dir, ts: Timestamp, ctx: &mut Ctx<'_>) {
        let i = dir.index();
        if self.dirs[i].ended {
            return;
        }
        self.dirs[i].ended = true;
        if matches!(self.dirs[i].phase, Phase::Body(BodyKind::Close)) {
            self.complete(dir, ts, ctx);
        } else {
            self.break_message(dir, ts, 0, ctx);
        }
        ctx.stats.bytes_not_dissected += self.dirs[i].buf.len() as u64;
        self.dirs[i].buf = Vec::new();
    }

    /// The connection is over: every exchange still open becomes an entry.
    pub fn finish(&mut self, ts: Timestamp, ctx: &mut Ctx<'_>) {
        self.close_dir(Dir::ToServer, ts, ctx);
        self.close_dir(Dir::ToClient, ts, ctx);
        if let Some(mut t) = self.resp_txn.take() {
            if t.resp.is_some() {
                t.txn.flags |= http_flags::RESPONSE_INCOMPLETE;
            }
            self.emit(t, ctx);
        }
        while let Some(t) = self.pending.pop_front() {
            self.emit(t, ctx);
        }
    }

    fn emit(&mut self, mut t: Txn, ctx: &mut Ctx<'_>) {
        let meta = ctx.meta;
        let (src, dst) = if self.req_dir == Some(Dir::ToClient) {
            (meta.server, meta.client)
        } else {
            (meta.client, meta.server)
        };
        if t.req.as_ref().is_some_and(|r| !r.complete) {
            t.txn.flags |= http_flags::REQUEST_INCOMPLETE;
        }
        let req = t.req.map(MsgBuilder::build);
        let resp = t.resp.map(MsgBuilder::build);
        if req.as_ref().is_some_and(|m| m.body_truncated) || resp.as_ref().is_some_and(|m| m.body_truncated) {
            ctx.stats.http_bodies_truncated += 1;
        }
        let ts = req.as_ref().or(resp.as_ref()).map(|m| m.first_ts).unwrap_or_default();
        let elapsed_us = match (&req, &resp) {
            (Some(q), Some(r)) => Some(r.last_ts.micros_since(q.first_ts)),
            _ => None,
        };
        let protocol = if t.minor == 0 {
            Protocol::Http10
        } else {
            Protocol::Http11
        };
        t.txn.request = req;
        t.txn.response = resp;
        ctx.out.push(Entry {
            peers: Default::default(),
            tls: false,
            decrypted: false,
            tls_conn: None,
            id: 0,
            ts,
            protocol,
            transport: Transport::Tcp,
            src,
            dst,
            flow_id: meta.id,
            elapsed_us,
            detail: Detail::Http(t.txn),
        });
    }
}

/// The `Upgrade` token of cleartext HTTP/2.
fn is_h2c(token: &str) -> bool {
    token.eq_ignore_ascii_case("h2c")
}

impl StreamDissector for Http1Session {
    fn on_chunk(&mut self, dir: Dir, ts: Timestamp, chunk: Chunk<'_>, ctx: &mut Ctx<'_>) {
        Http1Session::on_chunk(self, dir, ts, chunk, ctx);
    }

    fn finish(&mut self, ts: Timestamp, ctx: &mut Ctx<'_>) {
        Http1Session::finish(self, ts, ctx);
    }

    fn successor(&mut self) -> Option<(&'static str, Box<dyn StreamDissector>)> {
        self.successor.take().map(|s| ("http/2", s))
    }
}
