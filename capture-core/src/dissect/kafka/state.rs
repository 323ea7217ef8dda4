//! Per-connection Kafka state: framing of both directions and the requests awaiting responses.

use std::collections::VecDeque;

use super::parse::{self, Caps, Drops};
use super::{KafkaEntry, kafka_flags};
use crate::dissect::frames::{Frame, Framer};
use crate::dissect::{Ctx, StreamDissector};
use crate::entry::{Detail, Entry, Protocol, Transport};
use crate::tcp::flow::Dir;
use crate::tcp::reassembly::Chunk;
use crate::time::Timestamp;

#[derive(Debug)]
struct Pending {
    entry: KafkaEntry,
    ts: Timestamp,
}

#[derive(Debug, Default)]
pub struct KafkaSession {
    framers: [Framer; 2],
    /// When the current frame of each direction started.
    frame_ts: [Option<Timestamp>; 2],
    /// The direction requests travel in, once a request was seen.
    req_dir: Option<Dir>,
    pending: VecDeque<Pending>,
}

impl KafkaSession {
    pub fn new() -> Self {
        Self::default()
    }

    fn on_frame(&mut self, dir: Dir, ts: Timestamp, f: Frame, ctx: &mut Ctx<'_>) {
        if f.truncated() {
            ctx.stats.kafka_frames_truncated += 1;
        }
        let as_request = match self.req_dir {
            Some(d) => d == dir,
            None => parse::probe(&f.bytes) == crate::dissect::Probe::Match,
        };
        let caps = Caps::from_limits(ctx.limits);
        let mut drops = Drops::default();
        if as_request {
            match parse::parse_request(&f.bytes[4..], &caps, &mut drops) {
                Some(e) => {
                    self.req_dir = Some(dir);
                    self.request(e, &f, ts, ctx);
                }
                None => ctx.stats.kafka_frame_errors += 1,
            }
            count(&drops, ctx);
            return;
        }
        self.req_dir.get_or_insert(dir.flip());
        let Some(corr) = parse::response_correlation(&f.bytes[4..]) else {
            ctx.stats.kafka_frame_errors += 1;
            return;
        };
        let resp_bytes = Some(f.total as u64);
        match self.pending.iter().position(|p| p.entry.correlation_id == corr) {
            Some(i) => {
                let Some(mut p) = self.pending.remove(i) else { return };
                p.entry.response_bytes = resp_bytes;
                parse::parse_response(&f.bytes[4..], &mut p.entry, &caps, &mut drops);
                count(&drops, ctx);
                let elapsed = ts.micros_since(p.ts);
                self.emit(p.entry, p.ts, Some(elapsed), ctx);
            }
            None => {
                let entry = KafkaEntry {
                    correlation_id: corr,
                    response_bytes: resp_bytes,
                    flags: kafka_flags::NO_REQUEST,
                    ..KafkaEntry::default()
                };
                self.emit(entry, ts, None, ctx);
            }
        }
    }

    fn request(&mut self, mut entry: KafkaEntry, f: &Frame, ts: Timestamp, ctx: &mut Ctx<'_>) {
        entry.request_bytes = Some(f.total as u64);
        if f.truncated() {
            entry.flags |= kafka_flags::TRUNCATED;
        }
        if self.pending.len() >= ctx.limits.kafka_max_pending.max(1) {
            ctx.stats.kafka_pending_overflows += 1;
            if let Some(old) = self.pending.pop_front() {
                self.emit_unanswered(old, ctx);
            }
        }
        self.pending.push_back(Pending { entry, ts });
    }

    fn emit_unanswered(&mut self, mut p: Pending, ctx: &mut Ctx<'_>) {
        p.entry.flags |= kafka_flags::NO_RESPONSE;
        self.emit(p.entry, p.ts, None, ctx);
    }

    fn emit(&mut self, entry: KafkaEntry, ts: Timestamp, elapsed_us: Option<u64>, ctx: &mut Ctx<'_>) {
        let meta = ctx.meta;
        let (src, dst) = if self.req_dir == Some(Dir::ToClient) {
            (meta.server, meta.client)
        } else {
            (meta.client, meta.server)
        };
        ctx.out.push(Entry {
            peers: Default::default(),
            tls: false,
            decrypted: false,
            tls_conn: None,
            id: 0,
            ts,
            protocol: Protocol::Kafka,
            transport: Transport::Tcp,
            src,
            dst,
            flow_id: meta.id,
            elapsed_us,
            detail: Detail::Kafka(Box::new(entry)),
        });
    }
}

fn count(d: &Drops, ctx: &mut Ctx<'_>) {
    let s = &mut *ctx.stats;
    s.kafka_lists_capped += d.lists_capped;
    s.kafka_records_not_kept += d.records_not_kept;
    s.kafka_decompress_capped += d.decompress_capped;
    s.kafka_decompress_errors += d.decompress_errors;
}

impl StreamDissector for KafkaSession {
    fn on_chunk(&mut self, dir: Dir, ts: Timestamp, chunk: Chunk<'_>, ctx: &mut Ctx<'_>) {
        let i = dir.index();
        match chunk {
            Chunk::Data(d) => {
                if self.framers[i].idle() {
                    self.frame_ts[i] = Some(ts);
                }
                let cap = ctx.limits.dissector_buffer_bytes;
                let (frames, ok) = self.framers[i].push(d, 4, parse::frame_size, cap);
                let n = frames.len();
                for (k, f) in frames.into_iter().enumerate() {
                    let at = if k == 0 { self.frame_ts[i].unwrap_or(ts) } else { ts };
                    self.on_frame(dir, at, f, ctx);
                }
                if !ok {
                    ctx.stats.kafka_frame_errors += 1;
                }
                if n > 0 || !ok {
                    self.frame_ts[i] = (!self.framers[i].idle()).then_some(ts);
                }
            }
            Chunk::Gap(n) => {
                if !self.framers[i].gap(n) {
                    ctx.stats.kafka_resyncs += 1;
                }
            }
            Chunk::End => {}
        }
    }

    fn finish(&mut self, _ts: Timestamp, ctx: &mut Ctx<'_>) {
        while let Some(p) = self.pending.pop_front() {
            self.emit_unanswered(p, ctx);
        }
    }
}
