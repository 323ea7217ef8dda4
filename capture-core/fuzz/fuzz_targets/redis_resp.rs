//! The RESP decoder and the Redis session.
//!
//! Input: one selector byte (low 4 bits: piece size; bit 4: the server speaks first; bit 5: the
//! handshake was not seen), then the bytes. The decoder must give the same messages (or the same
//! error) whether the bytes come at once or in pieces; the session, fed the pieces alternately
//! from each side (a 3-byte piece is a gap), must keep every kept value within its caps.
#![no_main]

use capture_core::dissect::redis::parse::{self, Caps, Decoder, Error, Message};
use capture_core::dissect::redis::state::RedisSession;
use capture_core::dissect::{Ctx, DissectStats};
use capture_core::entry::Entry;
use capture_core::limits::Limits;
use capture_core::tcp::flow::{Dir, FlowKey, FlowMeta, RoleSource};
use capture_core::tcp::reassembly::Chunk;
use capture_core::time::Timestamp;
use libfuzzer_sys::fuzz_target;

const CAPS: Caps = Caps {
    max_depth: 8,
    max_aggregate_len: 1 << 20,
    max_bulk_len: 1 << 20,
    max_line: 256,
    value_bytes: 16,
    key_bytes: 32,
    max_items: 4,
};

/// Feeds `pieces` keeping unconsumed bytes, as the session does.
fn drive<'a>(pieces: impl Iterator<Item = &'a [u8]>, inline_ok: bool) -> Result<Vec<Message>, Error> {
    let mut d = Decoder::new();
    let mut held: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    for p in pieces {
        held.extend_from_slice(p);
        let mut at = 0;
        loop {
            let (n, m) = d.decode(&held[at..], &CAPS, inline_ok)?;
            assert!(n <= held.len() - at);
            at += n;
            match m {
                Some(m) => {
                    assert!(m.items.len() <= CAPS.max_items && m.data.len() <= CAPS.value_bytes);
                    assert!(m.items.iter().all(|i| i.data.len() <= CAPS.key_bytes));
                    out.push(m);
                }
                None => break,
            }
        }
        held.drain(..at);
        assert!(held.len() <= CAPS.max_line + 2, "only a partial line is ever held");
    }
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let _ = parse::probe(rest);
    let _ = parse::split_inline(rest);
    let piece = usize::from(sel & 0x0f) + 1;
    for inline_ok in [false, true] {
        let whole = drive(std::iter::once(rest), inline_ok);
        assert_eq!(whole, drive(rest.chunks(piece), inline_ok), "pieces of {piece}");
    }

    let client = "10.0.0.1:1000".parse().unwrap();
    let server = "10.0.0.2:2000".parse().unwrap();
    let meta = FlowMeta {
        id: 1,
        key: FlowKey::new(client, server, 6),
        client,
        server,
        roles: if sel & 0x20 == 0 {
            RoleSource::Syn
        } else {
            RoleSource::Port
        },
        first_seen: Timestamp(0),
        last_seen: Timestamp(0),
        closed_at: None,
    };
    let limits = Limits {
        redis_max_depth: 8,
        redis_max_line_bytes: 256,
        redis_value_bytes: 16,
        redis_key_bytes: 32,
        redis_max_args: 4,
        redis_max_pending: 4,
        dissector_buffer_bytes: 512,
        ..Limits::default()
    };
    let mut out: Vec<Entry> = Vec::new();
    let mut stats = DissectStats::default();
    let mut ctx = Ctx {
        limits: &limits,
        meta: &meta,
        out: &mut out,
        stats: &mut stats,
    };
    let mut s = RedisSession::new();
    let first = if sel & 0x10 == 0 { Dir::ToServer } else { Dir::ToClient };
    for (k, p) in rest.chunks(piece * 5).enumerate() {
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
    for e in &out {
        let r = e.redis().expect("redis detail");
        assert!(r.args.len() <= limits.redis_max_args);
        if let Some(reply) = &r.reply {
            assert!(reply.items.len() <= limits.redis_max_args);
        }
        let _ = e.summary();
    }
});
