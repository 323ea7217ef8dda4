//! One Redis connection: RESP decoding per direction and command/reply pairing.
//!
//! The side that sends commands is decided by content (arrays of bulk strings naming a command,
//! or inline lines), trusting the handshake when one was captured. Commands queue in order
//! (pipelining) and each reply takes the oldest, except for messages the server sends on its
//! own: RESP3 pushes, pub/sub deliveries (`message`, `pmessage`, `smessage` arrays on a
//! subscribed RESP2 connection) and the further confirmations of a SUBSCRIBE naming several
//! channels. Those become entries of their own with no command. After a gap that no bulk
//! payload absorbs, or a protocol error, a direction re-synchronises on the next chunk that
//! starts like RESP.

use std::collections::VecDeque;

use super::parse::{self, Caps, Decoder, Kind, Message};
use super::{RedisEntry, RedisReply, redis_flags};
use crate::dissect::{Ctx, Probe, StreamDissector};
use crate::entry::{Detail, Entry, Protocol, Transport};
use crate::tcp::flow::{Dir, RoleSource};
use crate::tcp::reassembly::Chunk;
use crate::time::Timestamp;

const SUBSCRIBE_FAMILY: &[&str] = &[
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
];
const MESSAGE_FAMILY: &[&str] = &["message", "pmessage", "smessage"];

#[derive(Debug, Default)]
struct DirState {
    /// A partial line held until its end arrives.
    buf: Vec<u8>,
    dec: Decoder,
    /// Lost step: skip data until a chunk starts like RESP.
    resync: bool,
    /// Lost step and no message decoded since: a further failure costs no more commands.
    failed: bool,
    ended: bool,
    /// Capture time of the first byte of the message being read.
    msg_ts: Option<Timestamp>,
}

#[derive(Debug)]
struct Pending {
    entry: RedisEntry,
    /// Lower-cased command name.
    lower: String,
    /// Subscribe-family confirmations this command causes (one per channel named).
    confirms: u64,
    first_ts: Timestamp,
}

/// A decoded reply and when it was seen.
struct Reply {
    msg: Message,
    first_ts: Timestamp,
    last_ts: Timestamp,
    complete: bool,
}

/// State of one Redis connection.
#[derive(Debug, Default)]
pub struct RedisSession {
    dirs: [DirState; 2],
    /// The flow direction that carries commands, once known.
    req_dir: Option<Dir>,
    pending: VecDeque<Pending>,
    /// A (P|S)SUBSCRIBE was sent and not every subscription ended.
    subscribed: bool,
    /// Confirmations still to come, as their own messages, of the last subscribe-family command.
    extra_confirms: Option<(String, u64)>,
    /// `CLIENT REPLY OFF`: commands get no reply until `CLIENT REPLY ON`.
    reply_off: bool,
    /// `CLIENT REPLY SKIP`: the next command gets no reply.
    skip_next: bool,
    in_multi: bool,
}

/// Text of a kept value for display.
fn item_text(i: &parse::Item) -> Box<str> {
    match i.kind {
        Kind::NullBulkString | Kind::NullArray | Kind::Null => "(nil)".into(),
        k if k.is_aggregate() => format!("({} of {})", k.name(), i.len).into(),
        _ => String::from_utf8_lossy(&i.data).into(),
    }
}

fn reply_of(r: Reply) -> RedisReply {
    let m = r.msg;
    RedisReply {
        kind: m.kind,
        attribute: m.attribute,
        text: (m.kind.is_textual()).then(|| String::from_utf8_lossy(&m.data).into()),
        len: m.len,
        items: m.items.iter().map(item_text).collect(),
        bytes: m.wire_bytes,
    }
}

/// Replaces the password arguments of `AUTH`, `HELLO … AUTH`, `MIGRATE … AUTH|AUTH2`,
/// `CONFIG SET requirepass|masterauth` and `ACL SETUSER` rules. Returns true when one was.
fn redact(command: &str, args: &mut [Box<str>]) -> bool {
    let mut secret = vec![false; args.len()];
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    match command {
        "AUTH" => {
            if let Some(last) = secret.last_mut() {
                *last = true;
            }
        }
        "HELLO" | "MIGRATE" => {
            let mut i = 0;
            while i < args.len() {
                if eq(&args[i], "AUTH") {
                    // HELLO: AUTH username password. MIGRATE: AUTH password.
                    let at = if command == "HELLO" { i + 2 } else { i + 1 };
                    if let Some(s) = secret.get_mut(at) {
                        *s = true;
                    }
                    i = at + 1;
                } else if eq(&args[i], "AUTH2") {
                    if let Some(s) = secret.get_mut(i + 2) {
                        *s = true;
                    }
                    i += 3;
                } else {
                    i += 1;
                }
            }
        }
        "CONFIG" if args.first().is_some_and(|a| eq(a, "SET")) => {
            let mut i = 1;
            while i + 1 < args.len() {
                if eq(&args[i], "requirepass") || eq(&args[i], "masterauth") {
                    secret[i + 1] = true;
                }
                i += 2;
            }
        }
        "ACL" if args.first().is_some_and(|a| eq(a, "SETUSER")) => {
            for (i, a) in args.iter().enumerate().skip(2) {
                if a.starts_with('>') || a.starts_with('#') || a.starts_with('<') || a.starts_with('!') {
                    secret[i] = true;
                }
            }
        }
        _ => {}
    }
    let mut any = false;
    for (a, s) in args.iter_mut().zip(secret) {
        if s {
            *a = crate::redact::redact_value(a).into();
            any = true;
        }
    }
    any
}

impl RedisSession {
    pub fn new() -> Self {
        Self::default()
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
        if self.dirs[i].ended {
            ctx.stats.bytes_not_dissected += data.len() as u64;
            return;
        }
        if self.dirs[i].resync {
            if parse::probe(data) == Probe::NoMatch {
                ctx.stats.bytes_not_dissected += data.len() as u64;
                return;
            }
            self.dirs[i].resync = false;
        }
        if self.dirs[i].buf.is_empty() {
            let used = self.parse(dir, ts, data, ctx);
            self.hold(dir, &data[used..], ctx);
        } else {
            let mut buf = std::mem::take(&mut self.dirs[i].buf);
            buf.extend_from_slice(data);
            let used = self.parse(dir, ts, &buf, ctx);
            buf.drain(..used);
            if self.dirs[i].resync {
                ctx.stats.bytes_not_dissected += buf.len() as u64;
            } else {
                self.dirs[i].buf = buf;
            }
        }
    }

    fn hold(&mut self, dir: Dir, rest: &[u8], ctx: &mut Ctx<'_>) {
        let st = &mut self.dirs[dir.index()];
        if st.resync || rest.len() > ctx.limits.dissector_buffer_bytes {
            ctx.stats.bytes_not_dissected += rest.len() as u64;
        } else {
            st.buf.extend_from_slice(rest);
        }
    }

    /// Decodes as many messages as `input` holds; returns the bytes consumed.
    fn parse(&mut self, dir: Dir, ts: Timestamp, input: &[u8], ctx: &mut Ctx<'_>) -> usize {
        let caps = Caps::from_limits(ctx.limits);
        let inline_ok = self.req_dir != Some(dir.flip());
        let mut at = 0;
        while at < input.len() {
            let st = &mut self.dirs[dir.index()];
            st.msg_ts.get_or_insert(ts);
            match st.dec.decode(&input[at..], &caps, inline_ok) {
                Ok((n, Some(msg))) => {
                    at += n;
                    st.failed = false;
                    let first_ts = st.msg_ts.take().unwrap_or(ts);
                    self.on_message(dir, first_ts, ts, msg, ctx);
                }
                Ok((n, None)) => {
                    at += n;
                    if !st.dec.in_message() && at == input.len() {
                        st.msg_ts = None;
                    }
                    return at;
                }
                Err(e) => {
                    match e {
                        parse::Error::TooDeep => ctx.stats.redis_depth_exceeded += 1,
                        parse::Error::TooLong | parse::Error::LineTooLong => ctx.stats.redis_length_exceeded += 1,
                        parse::Error::Syntax => {}
                    }
                    ctx.stats.redis_parse_errors += 1;
                    ctx.stats.bytes_not_dissected += (input.len() - at) as u64;
                    self.lose_step(dir, ts, false, ctx);
                    return input.len();
                }
            }
        }
        at
    }

    /// The direction lost step (gap or error): forget the message being read and re-sync. On the
    /// reply side the oldest command takes what was seen of its reply (or none): its reply is the
    /// one most likely lost. The others keep waiting, in order.
    fn lose_step(&mut self, dir: Dir, ts: Timestamp, gap: bool, ctx: &mut Ctx<'_>) {
        let st = &mut self.dirs[dir.index()];
        let partial = st.dec.take_partial();
        let first_failure = !std::mem::replace(&mut st.failed, true);
        ctx.stats.bytes_not_dissected += st.buf.len() as u64;
        st.buf = Vec::new();
        let first_ts = st.msg_ts.take().unwrap_or(ts);
        st.resync = true;
        ctx.stats.redis_resyncs += 1;
        let gap_flag = if gap { redis_flags::GAP } else { 0 };
        if self.is_reply_dir(dir) {
            if first_failure && let Some(p) = self.pending.pop_front() {
                let reply = partial.map(|msg| Reply {
                    msg,
                    first_ts,
                    last_ts: ts,
                    complete: false,
                });
                self.emit(Some(p), reply, gap_flag, ctx);
            }
        } else if let Some(p) = self.pending.back_mut() {
            p.entry.flags |= gap_flag;
        }
    }

    fn is_reply_dir(&self, dir: Dir) -> bool {
        self.req_dir == Some(dir.flip())
    }

    fn gap(&mut self, dir: Dir, ts: Timestamp, n: u64, ctx: &mut Ctx<'_>) {
        let st = &mut self.dirs[dir.index()];
        if st.ended || st.resync {
            return;
        }
        if st.buf.is_empty() && st.dec.skip_gap(n) {
            return;
        }
        self.lose_step(dir, ts, true, ctx);
    }

    /// Decides which direction carries commands from the first complete message.
    fn decide_roles(&mut self, dir: Dir, msg: &Message, ctx: &Ctx<'_>) -> Dir {
        if let Some(d) = self.req_dir {
            return d;
        }
        let handshake = matches!(ctx.meta.roles, RoleSource::Syn | RoleSource::SynAck);
        let d = if handshake {
            Dir::ToServer
        } else if msg.inline
            || (msg.is_command_shaped() && msg.items.first().is_some_and(|i| parse::known_command(&i.data)))
        {
            dir
        } else if !msg.is_command_shaped() {
            dir.flip()
        } else {
            Dir::ToServer
        };
        self.req_dir = Some(d);
        d
    }

    fn on_message(&mut self, dir: Dir, first_ts: Timestamp, last_ts: Timestamp, msg: Message, ctx: &mut Ctx<'_>) {
        if self.decide_roles(dir, &msg, ctx) == dir {
            self.on_command(first_ts, msg, ctx);
        } else {
            let reply = Reply {
                msg,
                first_ts,
                last_ts,
                complete: true,
            };
            self.on_reply(reply, ctx);
        }
    }

    fn on_command(&mut self, first_ts: Timestamp, msg: Message, ctx: &mut Ctx<'_>) {
        let mut flags = 0;
        if msg.inline {
            flags |= redis_flags::INLINE;
        }
        if msg.gap_bytes > 0 {
            flags |= redis_flags::GAP;
        }
        if msg.truncated || msg.items.iter().any(|i| i.truncated) || msg.items_total > msg.items.len() as u64 {
            flags |= redis_flags::TRUNCATED;
        }
        let shaped = msg.is_command_shaped();
        let mut words: Vec<Box<str>> = msg.words().map(|w| w.into()).collect();
        let command: Option<Box<str>> = if shaped && !words.is_empty() {
            Some(words.remove(0).to_ascii_uppercase().into())
        } else {
            ctx.stats.redis_parse_errors += 1;
            None
        };
        let name = command.as_deref().unwrap_or("");
        if redact(name, &mut words) {
            flags |= redis_flags::REDACTED;
        }
        let arg_count = msg.items_total.saturating_sub(1);
        let sub = |i: usize| words.get(i).map(|w| w.to_ascii_uppercase()).unwrap_or_default();
        if self.in_multi && !matches!(name, "EXEC" | "DISCARD" | "MULTI") {
            flags |= redis_flags::TRANSACTION;
        }
        let mut no_reply = self.reply_off || std::mem::take(&mut self.skip_next);
        let mut confirms = 0;
        match name {
            "MULTI" => self.in_multi = true,
            "EXEC" | "DISCARD" => self.in_multi = false,
            "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" => {
                self.subscribed = true;
                confirms = arg_count.max(1);
            }
            "UNSUBSCRIBE" | "PUNSUBSCRIBE" | "SUNSUBSCRIBE" => confirms = arg_count.max(1),
            "RESET" => {
                self.subscribed = false;
                self.in_multi = false;
                self.reply_off = false;
                self.extra_confirms = None;
            }
            "CLIENT" if sub(0) == "REPLY" => match sub(1).as_str() {
                "OFF" => {
                    self.reply_off = true;
                    no_reply = true;
                }
                "SKIP" => {
                    self.skip_next = true;
                    no_reply = true;
                }
                "ON" => {
                    self.reply_off = false;
                    no_reply = false;
                }
                _ => {}
            },
            _ => {}
        }
        let lower = name.to_ascii_lowercase();
        let p = Pending {
            entry: RedisEntry {
                command,
                args: words,
                arg_count,
                request_bytes: msg.wire_bytes,
                reply: None,
                flags,
            },
            lower,
            confirms,
            first_ts,
        };
        if no_reply {
            self.emit(Some(p), None, redis_flags::NO_REPLY_EXPECTED, ctx);
            return;
        }
        if self.pending.len() >= ctx.limits.redis_max_pending
            && let Some(old) = self.pending.pop_front()
        {
            ctx.stats.redis_pipeline_overflows += 1;
            self.emit(Some(old), None, redis_flags::PIPELINE_OVERFLOW, ctx);
        }
        self.pending.push_back(p);
    }

    fn on_reply(&mut self, reply: Reply, ctx: &mut Ctx<'_>) {
        let msg = &reply.msg;
        let word = msg.first_word_lower();
        let sub_kind = word.as_deref().filter(|w| SUBSCRIBE_FAMILY.contains(w));
        let pubsub_shaped = msg.kind == Kind::Push || (msg.kind == Kind::Array && self.subscribed);
        let mut own = false;
        if pubsub_shaped {
            if let Some(kind) = sub_kind {
                if let Some((k, n)) = &mut self.extra_confirms
                    && k == kind
                    && *n > 0
                {
                    *n -= 1;
                    own = true;
                } else {
                    own = self.pending.front().is_none_or(|p| p.lower != kind);
                }
                // The count of subscriptions left: zero ends the subscribed state.
                if kind.contains("unsubscribe") && msg.items.get(2).is_some_and(|i| i.data == b"0") {
                    self.subscribed = false;
                }
            } else if msg.kind == Kind::Push || word.as_deref().is_some_and(|w| MESSAGE_FAMILY.contains(&w)) {
                own = true;
            }
        }
        if own {
            self.emit(None, Some(reply), redis_flags::PUSH, ctx);
            return;
        }
        match self.pending.pop_front() {
            Some(p) => {
                if let Some(kind) = sub_kind
                    && p.lower == kind
                {
                    self.extra_confirms = Some((kind.to_string(), p.confirms.saturating_sub(1)));
                }
                self.emit(Some(p), Some(reply), 0, ctx);
            }
            None => self.emit(None, Some(reply), redis_flags::NO_REQUEST, ctx),
        }
    }

    fn emit(&mut self, p: Option<Pending>, reply: Option<Reply>, flags: u32, ctx: &mut Ctx<'_>) {
        let meta = ctx.meta;
        let (src, dst) = if self.req_dir == Some(Dir::ToClient) {
            (meta.server, meta.client)
        } else {
            (meta.client, meta.server)
        };
        let (mut entry, req_ts) = match p {
            Some(p) => (p.entry, Some(p.first_ts)),
            None => (RedisEntry::default(), None),
        };
        entry.flags |= flags;
        let ts = req_ts.or(reply.as_ref().map(|r| r.first_ts)).unwrap_or_default();
        let mut elapsed_us = None;
        if let Some(r) = reply {
            if !r.complete {
                entry.flags |= redis_flags::REPLY_INCOMPLETE;
            }
            if r.msg.gap_bytes > 0 {
                entry.flags |= redis_flags::GAP;
            }
            if r.msg.truncated || r.msg.items.iter().any(|i| i.truncated) {
                entry.flags |= redis_flags::TRUNCATED;
            }
            if let Some(q) = req_ts {
                elapsed_us = Some(r.last_ts.micros_since(q));
            }
            entry.reply = Some(reply_of(r));
        }
        if entry.flags & redis_flags::TRUNCATED != 0 {
            ctx.stats.redis_values_truncated += 1;
        }
        ctx.out.push(Entry {
            peers: Default::default(),
            tls: false,
            decrypted: false,
            tls_conn: None,
            id: 0,
            ts,
            protocol: Protocol::Redis,
            transport: Transport::Tcp,
            src,
            dst,
            flow_id: meta.id,
            elapsed_us,
            detail: Detail::Redis(Box::new(entry)),
        });
    }

    /// The sender of `dir` closed: a reply cut short still answers its command.
    fn close_dir(&mut self, dir: Dir, ts: Timestamp, ctx: &mut Ctx<'_>) {
        let i = dir.index();
        if self.dirs[i].ended {
            return;
        }
        self.dirs[i].ended = true;
        let st = &mut self.dirs[i];
        if st.dec.in_message() {
            let partial = st.dec.take_partial();
            let first_ts = st.msg_ts.take().unwrap_or(ts);
            if self.is_reply_dir(dir)
                && let Some(msg) = partial
            {
                let reply = Reply {
                    msg,
                    first_ts,
                    last_ts: ts,
                    complete: false,
                };
                match self.pending.pop_front() {
                    Some(p) => self.emit(Some(p), Some(reply), 0, ctx),
                    None => self.emit(None, Some(reply), redis_flags::NO_REQUEST, ctx),
                }
            }
        }
        let st = &mut self.dirs[i];
        ctx.stats.bytes_not_dissected += st.buf.len() as u64;
        st.buf = Vec::new();
    }

    /// The connection is over: every command still waiting becomes an entry without a reply.
    pub fn finish(&mut self, ts: Timestamp, ctx: &mut Ctx<'_>) {
        self.close_dir(Dir::ToServer, ts, ctx);
        self.close_dir(Dir::ToClient, ts, ctx);
        while let Some(p) = self.pending.pop_front() {
            self.emit(Some(p), None, 0, ctx);
        }
    }
}

impl StreamDissector for RedisSession {
    fn on_chunk(&mut self, dir: Dir, ts: Timestamp, chunk: Chunk<'_>, ctx: &mut Ctx<'_>) {
        RedisSession::on_chunk(self, dir, ts, chunk, ctx);
    }

    fn finish(&mut self, ts: Timestamp, ctx: &mut Ctx<'_>) {
        RedisSession::finish(self, ts, ctx);
    }
}
