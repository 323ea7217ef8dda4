//! DNS per flow: queries paired with responses, over UDP datagrams or TCP byte streams.
//!
//! A response is paired with the unanswered query of the same flow that has its id and first
//! question (name compared case-insensitively, type, class), or its id alone when the response
//! carries no question. A query repeated while the first is unanswered is a retransmission within
//! `dns_retransmit_window_us` (its own entry; the response goes to the first, as tshark does) and
//! a new attempt after it (the first becomes an unanswered entry). Queries still unanswered after
//! `dns_query_timeout_us`, or when the flow ends, are entries without a response.

use std::collections::VecDeque;

use super::parse::{self, Caps, Message};
use super::{DnsEntry, DnsMessage, dns_flags};
use crate::dissect::{Ctx, DatagramDissector, Probe, StreamDissector};
use crate::entry::{Detail, Entry, Protocol, Transport};
use crate::tcp::flow::Dir;
use crate::tcp::reassembly::Chunk;
use crate::time::Timestamp;

#[derive(Debug)]
struct PendingQuery {
    entry: DnsEntry,
    ts: Timestamp,
    /// Direction the query travelled.
    dir: Dir,
}

/// Pairs the messages of one flow.
#[derive(Debug)]
struct Pairer {
    transport: Transport,
    pending: VecDeque<PendingQuery>,
}

fn kept(m: &Message, ts: Timestamp) -> DnsMessage {
    DnsMessage {
        flags: m.header.flags,
        qdcount: m.header.qdcount,
        ancount: m.header.ancount,
        nscount: m.header.nscount,
        arcount: m.header.arcount,
        answers: m.answers.clone(),
        edns: m.edns.clone(),
        problems: m.problems,
        size: u32::try_from(m.size).unwrap_or(u32::MAX),
        ts,
    }
}

fn same_question(a: &[parse::Question], b: &[parse::Question]) -> bool {
    match (a.first(), b.first()) {
        (Some(x), Some(y)) => x.qtype == y.qtype && x.qclass == y.qclass && x.name.eq_ignore_ascii_case(&y.name),
        _ => a.is_empty() && b.is_empty(),
    }
}

/// Parses `bytes` as one message for an active flow. Returns `None` (counted) for bytes that are
/// not DNS at all; a message whose question is unreadable is kept with its problems.
fn parse_for_flow(bytes: &[u8], ctx: &mut Ctx<'_>) -> Option<Message> {
    let caps = Caps::from_limits(ctx.limits);
    let m = match parse::parse(bytes, &caps) {
        Ok(m) => m,
        Err(parse::Error::Short) => {
            ctx.stats.dns_malformed += 1;
            return None;
        }
        Err(parse::Error::Question(e)) => {
            let header = parse::Header::parse(bytes)?;
            if !matches!(header.opcode(), 0 | 4 | 5) || header.qdcount == 0 {
                ctx.stats.dns_malformed += 1;
                return None;
            }
            let mut problems = parse::problems::MALFORMED_RECORDS;
            if e == parse::NameError::PointerLoop {
                problems |= parse::problems::POINTER_LOOP;
            }
            Message {
                header,
                problems,
                size: bytes.len(),
                ..Message::default()
            }
        }
    };
    if m.problems != 0 {
        ctx.stats.dns_malformed += 1;
    }
    if m.problems & parse::problems::POINTER_LOOP != 0 {
        ctx.stats.dns_pointer_loops += 1;
    }
    if m.problems & (parse::problems::RECORDS_CAPPED | parse::problems::QUESTIONS_CAPPED) != 0 {
        ctx.stats.dns_records_capped += 1;
    }
    Some(m)
}

impl Pairer {
    fn new(transport: Transport) -> Self {
        Pairer {
            transport,
            pending: VecDeque::new(),
        }
    }

    fn on_message(&mut self, dir: Dir, ts: Timestamp, m: Message, ctx: &mut Ctx<'_>) {
        self.expire(ts, ctx);
        let problems = if m.problems != 0 { dns_flags::MALFORMED } else { 0 };
        if !m.header.is_response() {
            self.on_query(dir, ts, m, problems, ctx);
            return;
        }
        let found = self.pending.iter().position(|p| {
            p.dir == dir.flip()
                && p.entry.id == m.header.id
                && (m.questions.is_empty() || same_question(&p.entry.questions, &m.questions))
        });
        match found.and_then(|i| self.pending.remove(i)) {
            Some(mut p) => {
                p.entry.response = Some(kept(&m, ts));
                p.entry.flags |= problems;
                let elapsed = ts.micros_since(p.ts);
                emit(p.entry, p.ts, p.dir, Some(elapsed), self.transport, ctx);
            }
            None => {
                let entry = DnsEntry {
                    id: m.header.id,
                    opcode: m.header.opcode(),
                    questions: m.questions.clone(),
                    query: None,
                    response: Some(kept(&m, ts)),
                    flags: dns_flags::NO_QUERY | problems,
                };
                emit(entry, ts, dir.flip(), None, self.transport, ctx);
            }
        }
    }

    fn on_query(&mut self, dir: Dir, ts: Timestamp, m: Message, problems: u32, ctx: &mut Ctx<'_>) {
        let mut entry = DnsEntry {
            id: m.header.id,
            opcode: m.header.opcode(),
            questions: m.questions.clone(),
            query: Some(kept(&m, ts)),
            response: None,
            flags: problems,
        };
        let earlier = self.pending.iter().position(|p| {
            p.dir == dir && p.entry.id == entry.id && same_question(&p.entry.questions, &entry.questions)
        });
        if let Some(i) = earlier {
            if ts.micros_since(self.pending[i].ts) < ctx.limits.dns_retransmit_window_us {
                ctx.stats.dns_retransmissions += 1;
                entry.flags |= dns_flags::RETRANSMISSION | dns_flags::NO_RESPONSE;
                emit(entry, ts, dir, None, self.transport, ctx);
                return;
            }
            if let Some(old) = self.pending.remove(i) {
                self.unanswered(old, dns_flags::TIMED_OUT, ctx);
            }
        }
        if self.pending.len() >= ctx.limits.dns_max_pending
            && let Some(old) = self.pending.pop_front()
        {
            ctx.stats.dns_pending_overflows += 1;
            self.unanswered(old, dns_flags::PENDING_OVERFLOW, ctx);
        }
        self.pending.push_back(PendingQuery { entry, ts, dir });
    }

    fn unanswered(&self, mut p: PendingQuery, flags: u32, ctx: &mut Ctx<'_>) {
        ctx.stats.dns_unanswered += 1;
        p.entry.flags |= dns_flags::NO_RESPONSE | flags;
        emit(p.entry, p.ts, p.dir, None, self.transport, ctx);
    }

    /// Queries older than the timeout are declared unanswered.
    fn expire(&mut self, now: Timestamp, ctx: &mut Ctx<'_>) {
        let timeout = ctx.limits.dns_query_timeout_us;
        while self.pending.front().is_some_and(|p| now.micros_since(p.ts) > timeout) {
            if let Some(p) = self.pending.pop_front() {
                self.unanswered(p, dns_flags::TIMED_OUT, ctx);
            }
        }
    }

    fn finish(&mut self, ctx: &mut Ctx<'_>) {
        while let Some(p) = self.pending.pop_front() {
            self.unanswered(p, 0, ctx);
        }
    }
}

/// Pushes the entry; `query_dir` is the direction a query travels (its sender is the client).
fn emit(
    entry: DnsEntry,
    ts: Timestamp,
    query_dir: Dir,
    elapsed_us: Option<u64>,
    transport: Transport,
    ctx: &mut Ctx<'_>,
) {
    let meta = ctx.meta;
    let (src, dst) = match query_dir {
        Dir::ToServer => (meta.client, meta.server),
        Dir::ToClient => (meta.server, meta.client),
    };
    ctx.out.push(Entry {
        peers: Default::default(),
        tls: false,
        decrypted: false,
        tls_conn: None,
        id: 0,
        ts,
        protocol: Protocol::Dns,
        transport,
        src,
        dst,
        flow_id: meta.id,
        elapsed_us,
        detail: Detail::Dns(Box::new(entry)),
    });
}

/// DNS over one UDP flow (5-tuple).
#[derive(Debug)]
pub struct DnsUdpSession {
    pairer: Pairer,
}

impl Default for DnsUdpSession {
    fn default() -> Self {
        DnsUdpSession {
            pairer: Pairer::new(Transport::Udp),
        }
    }
}

impl DnsUdpSession {
    pub fn new() -> Self {
        Self::default()
    }
}

impl DatagramDissector for DnsUdpSession {
    fn on_datagram(&mut self, dir: Dir, ts: Timestamp, payload: &[u8], ctx: &mut Ctx<'_>) {
        // Multicast name resolution (mDNS, LLMNR) shares the format but is its own protocol.
        if ctx.meta.client.ip().is_multicast() || ctx.meta.server.ip().is_multicast() {
            ctx.stats.bytes_not_dissected += payload.len() as u64;
            return;
        }
        match parse_for_flow(payload, ctx) {
            Some(m) => self.pairer.on_message(dir, ts, m, ctx),
            None => ctx.stats.bytes_not_dissected += payload.len() as u64,
        }
    }

    fn finish(&mut self, _ts: Timestamp, ctx: &mut Ctx<'_>) {
        self.pairer.finish(ctx);
    }
}

#[derive(Debug, Default)]
struct TcpDir {
    /// Bytes of the message being framed (length prefix included).
    buf: Vec<u8>,
    /// Bytes still to skip of a message a gap cut.
    skip: u64,
    /// Lost step: skip data until a chunk starts like a length-prefixed message.
    resync: bool,
    ended: bool,
    /// Capture time of the first byte of the message being framed.
    msg_ts: Option<Timestamp>,
}

/// DNS over one TCP connection: 2-byte length-prefixed messages in each direction.
#[derive(Debug)]
pub struct DnsTcpSession {
    dirs: [TcpDir; 2],
    pairer: Pairer,
}

impl Default for DnsTcpSession {
    fn default() -> Self {
        DnsTcpSession {
            dirs: Default::default(),
            pairer: Pairer::new(Transport::Tcp),
        }
    }
}

impl DnsTcpSession {
    pub fn new() -> Self {
        Self::default()
    }

    fn data(&mut self, dir: Dir, ts: Timestamp, mut data: &[u8], ctx: &mut Ctx<'_>) {
        let st = &mut self.dirs[dir.index()];
        if st.ended {
            ctx.stats.bytes_not_dissected += data.len() as u64;
            return;
        }
        if st.skip > 0 {
            let n = data.len().min(usize::try_from(st.skip).unwrap_or(usize::MAX));
            st.skip -= n as u64;
            ctx.stats.bytes_not_dissected += n as u64;
            data = &data[n..];
        }
        if data.is_empty() {
            return;
        }
        if st.resync {
            if parse::probe_tcp(data) == Probe::NoMatch {
                ctx.stats.bytes_not_dissected += data.len() as u64;
                return;
            }
            st.resync = false;
        }
        let mut at = 0;
        while at < data.len() {
            let st = &mut self.dirs[dir.index()];
            st.msg_ts.get_or_insert(ts);
            if st.buf.len() < 2 {
                let take = (2 - st.buf.len()).min(data.len() - at);
                st.buf.extend_from_slice(&data[at..at + take]);
                at += take;
                if st.buf.len() < 2 {
                    break;
                }
            }
            let len = usize::from(u16::from_be_bytes([st.buf[0], st.buf[1]]));
            if len < parse::HEADER_LEN {
                // Not a DNS message length: the framing is lost.
                ctx.stats.dns_malformed += 1;
                ctx.stats.bytes_not_dissected += (st.buf.len() + data.len() - at) as u64;
                st.buf.clear();
                st.msg_ts = None;
                st.resync = true;
                return;
            }
            let want = 2 + len - st.buf.len();
            let take = want.min(data.len() - at);
            if st.buf.len() == 2 && take == want {
                // The whole message is in this chunk: parse it in place.
                let first_ts = st.msg_ts.take().unwrap_or(ts);
                st.buf.clear();
                let msg = &data[at..at + take];
                at += take;
                self.message(dir, first_ts, msg, ctx);
                continue;
            }
            st.buf.extend_from_slice(&data[at..at + take]);
            at += take;
            if st.buf.len() == 2 + len {
                let buf = std::mem::take(&mut st.buf);
                let first_ts = st.msg_ts.take().unwrap_or(ts);
                self.message(dir, first_ts, &buf[2..], ctx);
            }
        }
    }

    fn message(&mut self, dir: Dir, ts: Timestamp, bytes: &[u8], ctx: &mut Ctx<'_>) {
        match parse_for_flow(bytes, ctx) {
            Some(m) => self.pairer.on_message(dir, ts, m, ctx),
            None => ctx.stats.bytes_not_dissected += bytes.len() as u64,
        }
    }

    fn gap(&mut self, dir: Dir, n: u64, ctx: &mut Ctx<'_>) {
        let st = &mut self.dirs[dir.index()];
        if st.ended || st.resync {
            return;
        }
        if st.skip > 0 {
            if n <= st.skip {
                st.skip -= n;
                return;
            }
            st.skip = 0;
            st.resync = true;
            ctx.stats.dns_resyncs += 1;
            return;
        }
        if st.buf.len() >= 2 {
            // The message being framed has a known end: skip to it.
            let len = usize::from(u16::from_be_bytes([st.buf[0], st.buf[1]]));
            let left = (2 + len - st.buf.len()) as u64;
            ctx.stats.dns_messages_lost += 1;
            ctx.stats.bytes_not_dissected += st.buf.len() as u64;
            st.buf.clear();
            st.msg_ts = None;
            if n <= left {
                st.skip = left - n;
                return;
            }
        }
        ctx.stats.bytes_not_dissected += st.buf.len() as u64;
        st.buf.clear();
        st.msg_ts = None;
        st.resync = true;
        ctx.stats.dns_resyncs += 1;
    }
}

impl StreamDissector for DnsTcpSession {
    fn on_chunk(&mut self, dir: Dir, ts: Timestamp, chunk: Chunk<'_>, ctx: &mut Ctx<'_>) {
        match chunk {
            Chunk::Data(d) => self.data(dir, ts, d, ctx),
            Chunk::Gap(n) => self.gap(dir, n, ctx),
            Chunk::End => {
                let st = &mut self.dirs[dir.index()];
                st.ended = true;
                ctx.stats.bytes_not_dissected += st.buf.len() as u64;
                st.buf = Vec::new();
                if self.dirs.iter().all(|d| d.ended) {
                    self.pairer.finish(ctx);
                }
            }
        }
    }

    fn finish(&mut self, _ts: Timestamp, ctx: &mut Ctx<'_>) {
        for st in &mut self.dirs {
            ctx.stats.bytes_not_dissected += st.buf.len() as u64;
            st.buf = Vec::new();
            st.ended = true;
        }
        self.pairer.finish(ctx);
    }
}
