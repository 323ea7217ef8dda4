//! Per-connection AMQP state: framing of both directions, synchronous methods awaiting their
//! reply and content being assembled, per channel.

use std::collections::BTreeMap;

use super::content::{self, TableCaps};
use super::parse::{self, FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_METHOD, HEADER_LEN, PROTOCOL_HEADER};
use super::{AmqpEntry, amqp_flags};
use crate::dissect::frames::{Frame, Framer};
use crate::dissect::{Ctx, StreamDissector};
use crate::entry::{Detail, Entry, Protocol, Transport};
use crate::tcp::flow::Dir;
use crate::tcp::reassembly::Chunk;
use crate::time::Timestamp;

#[derive(Debug)]
struct Open {
    entry: AmqpEntry,
    /// Sender of the first method.
    dir: Dir,
    /// (class, method) of the first method.
    first: (u16, u16),
    ts: Timestamp,
    last_ts: Timestamp,
    /// Body bytes still expected, once the content header came.
    body_left: Option<u64>,
}

#[derive(Debug, Default)]
pub struct AmqpSession {
    framers: [Framer; 2],
    frame_ts: [Option<Timestamp>; 2],
    seen: [bool; 2],
    /// Synchronous methods awaiting their reply, by (channel, sender).
    waiting: BTreeMap<(u16, usize), Open>,
    /// Methods with content being assembled, by (channel, sender).
    content: BTreeMap<(u16, usize), Open>,
}

impl AmqpSession {
    pub fn new() -> Self {
        Self::default()
    }

    fn on_frame(&mut self, dir: Dir, ts: Timestamp, f: Frame, ctx: &mut Ctx<'_>) {
        if f.truncated() {
            ctx.stats.amqp_frames_truncated += 1;
        } else if f.bytes.last() != Some(&FRAME_END) {
            ctx.stats.amqp_frame_errors += 1;
        }
        let channel = u16::from_be_bytes([f.bytes[1], f.bytes[2]]);
        let end = if f.truncated() {
            f.bytes.len()
        } else {
            f.bytes.len() - 1
        };
        let payload = &f.bytes[HEADER_LEN..end.max(HEADER_LEN)];
        let key = (channel, dir.index());
        match f.bytes[0] {
            FRAME_METHOD => {
                let Some(m) = parse::parse_method(payload, TableCaps::from_limits(ctx.limits)) else {
                    ctx.stats.amqp_frame_errors += 1;
                    return;
                };
                if m.table_cut {
                    ctx.stats.amqp_tables_cut += 1;
                }
                self.on_method(dir, channel, ts, m, ctx);
            }
            FRAME_HEADER => {
                if let Some(o) = self.content.get_mut(&key) {
                    let h = content::parse_content_header(payload, TableCaps::from_limits(ctx.limits));
                    if h.as_ref().is_some_and(|h| h.cut) && !f.truncated() {
                        ctx.stats.amqp_tables_cut += 1;
                    }
                    let size = h.as_ref().map_or(0, |h| h.body_size);
                    if let Some(h) = h
                        && !h.properties.is_empty()
                    {
                        o.entry.properties = Some(Box::new(h.properties));
                    }
                    o.entry.body_size = Some(size);
                    o.entry
                        .body
                        .reserve_exact(size.min(ctx.limits.amqp_body_max_bytes as u64) as usize);
                    o.body_left = Some(size);
                    o.last_ts = ts;
                    if size == 0 {
                        self.close_content(key, ctx);
                    }
                }
            }
            FRAME_BODY => {
                if let Some(o) = self.content.get_mut(&key)
                    && let Some(left) = o.body_left
                {
                    let wire = (f.total - HEADER_LEN - 1) as u64;
                    if wire > left {
                        ctx.stats.amqp_body_overruns += 1;
                    }
                    // Only the bytes the content header announced belong to the body.
                    let wanted = wire.min(left) as usize;
                    let cap = ctx.limits.amqp_body_max_bytes;
                    let e = &mut o.entry;
                    if !e.body_truncated {
                        let room = cap.saturating_sub(e.body.len());
                        let take = wanted.min(room).min(payload.len());
                        e.body.extend_from_slice(&payload[..take]);
                        if take < wanted {
                            e.body_truncated = true;
                            ctx.stats.amqp_bodies_truncated += 1;
                        }
                    }
                    o.body_left = Some(left - wanted as u64);
                    o.last_ts = ts;
                    if left == wanted as u64 {
                        self.close_content(key, ctx);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_method(&mut self, dir: Dir, channel: u16, ts: Timestamp, m: parse::Method, ctx: &mut Ctx<'_>) {
        let key = (channel, dir.index());
        if let Some(mut o) = self.content.remove(&key) {
            o.entry.flags |= amqp_flags::BODY_INCOMPLETE;
            self.emit(o, ctx);
        }
        let other = (channel, dir.flip().index());
        if let Some(o) = self.waiting.get(&other)
            && parse::is_reply_to(o.first.0, o.first.1, m.class, m.method)
        {
            let mut o = self.waiting.remove(&other).expect("just seen");
            o.last_ts = ts;
            let carries = parse::carries_content(m.class, m.method);
            o.entry.add(m);
            if carries {
                // Basic.Get-Ok: the content joins the Get entry, now owned by the replier.
                o.dir = dir;
                self.insert_content(key, o, ctx);
            } else {
                self.emit(o, ctx);
            }
            return;
        }
        let (class, method) = (m.class, m.method);
        let mut o = Open {
            entry: AmqpEntry {
                channel,
                ..AmqpEntry::default()
            },
            dir,
            first: (class, method),
            ts,
            last_ts: ts,
            body_left: None,
        };
        o.entry.add(m);
        if parse::is_sync(class, method) {
            if let Some(mut old) = self.waiting.remove(&key) {
                old.entry.flags |= amqp_flags::NO_REPLY;
                self.emit(old, ctx);
            }
            self.make_room(ctx);
            self.waiting.insert(key, o);
        } else if parse::carries_content(class, method) {
            self.insert_content(key, o, ctx);
        } else {
            self.emit(o, ctx);
        }
    }

    fn insert_content(&mut self, key: (u16, usize), o: Open, ctx: &mut Ctx<'_>) {
        self.make_room(ctx);
        self.content.insert(key, o);
    }

    /// Keeps the open entries under `amqp_max_open` by emitting the oldest.
    fn make_room(&mut self, ctx: &mut Ctx<'_>) {
        while self.waiting.len() + self.content.len() >= ctx.limits.amqp_max_open.max(1) {
            ctx.stats.amqp_open_overflows += 1;
            let w = self.waiting.iter().min_by_key(|(_, o)| o.ts).map(|(k, o)| (*k, o.ts));
            let c = self.content.iter().min_by_key(|(_, o)| o.ts).map(|(k, o)| (*k, o.ts));
            let (o, flag) = match (w, c) {
                (Some((k, a)), Some((_, b))) if a <= b => (self.waiting.remove(&k), amqp_flags::NO_REPLY),
                (_, Some((k, _))) => (self.content.remove(&k), amqp_flags::BODY_INCOMPLETE),
                (Some((k, _)), None) => (self.waiting.remove(&k), amqp_flags::NO_REPLY),
                (None, None) => (None, 0),
            };
            match o {
                Some(mut o) => {
                    o.entry.flags |= flag;
                    self.emit(o, ctx)
                }
                None => break,
            }
        }
    }

    fn close_content(&mut self, key: (u16, usize), ctx: &mut Ctx<'_>) {
        if let Some(o) = self.content.remove(&key) {
            self.emit(o, ctx);
        }
    }

    fn emit(&mut self, mut o: Open, ctx: &mut Ctx<'_>) {
        o.entry.body.shrink_to_fit();
        let meta = ctx.meta;
        let (src, dst) = if o.dir == Dir::ToClient {
            (meta.server, meta.client)
        } else {
            (meta.client, meta.server)
        };
        let elapsed_us = (o.entry.methods.len() > 1 || o.body_left.is_some()).then(|| o.last_ts.micros_since(o.ts));
        ctx.out.push(Entry {
            peers: Default::default(),
            tls: false,
            decrypted: false,
            tls_conn: None,
            id: 0,
            ts: o.ts,
            protocol: Protocol::Amqp,
            transport: Transport::Tcp,
            src,
            dst,
            flow_id: meta.id,
            elapsed_us,
            detail: Detail::Amqp(Box::new(o.entry)),
        });
    }
}

impl StreamDissector for AmqpSession {
    fn on_chunk(&mut self, dir: Dir, ts: Timestamp, chunk: Chunk<'_>, ctx: &mut Ctx<'_>) {
        let i = dir.index();
        match chunk {
            Chunk::Data(mut d) => {
                if !self.seen[i] {
                    self.seen[i] = true;
                    let n = d.len().min(PROTOCOL_HEADER.len());
                    if n > 0 && d[..n] == PROTOCOL_HEADER[..n] {
                        d = &d[n..];
                    }
                }
                if self.framers[i].idle() {
                    self.frame_ts[i] = Some(ts);
                }
                let cap = ctx.limits.dissector_buffer_bytes;
                let (frames, ok) = self.framers[i].push(d, HEADER_LEN, parse::frame_size, cap);
                let n = frames.len();
                for (k, f) in frames.into_iter().enumerate() {
                    let at = if k == 0 { self.frame_ts[i].unwrap_or(ts) } else { ts };
                    self.on_frame(dir, at, f, ctx);
                }
                if !ok {
                    ctx.stats.amqp_frame_errors += 1;
                }
                if n > 0 || !ok {
                    self.frame_ts[i] = (!self.framers[i].idle()).then_some(ts);
                }
            }
            Chunk::Gap(n) => {
                if !self.framers[i].gap(n) {
                    ctx.stats.amqp_resyncs += 1;
                }
            }
            Chunk::End => {}
        }
    }

    fn finish(&mut self, _ts: Timestamp, ctx: &mut Ctx<'_>) {
        let mut rest: Vec<Open> = std::mem::take(&mut self.waiting).into_values().collect();
        for o in &mut rest {
            o.entry.flags |= amqp_flags::NO_REPLY;
        }
        for mut o in std::mem::take(&mut self.content).into_values() {
            o.entry.flags |= amqp_flags::BODY_INCOMPLETE;
            rest.push(o);
        }
        rest.sort_by_key(|o| o.ts);
        for o in rest {
            self.emit(o, ctx);
        }
    }
}
