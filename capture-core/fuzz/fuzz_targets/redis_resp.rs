//! The RESP decoder and the Redis session.
//!
//! Input: one selector byte (low 4 bits: piece size; bit 4: the server speaks first; bit 5: the
//! handshake was not seen), then the bytes. The decoder must give the same messages (or the same
//! error) whether the bytes come at once or in pieces; the session, fed the pieces alternately
//! from each side (a 3-byte piece is a gap), must keep every kept value within its caps.
#![no_main]

mod common;

use capture_core::dissect::redis::parse::{self, Caps, Decoder, Error, Message};
use capture_core::dissect::redis::state::RedisSession;
use capture_core::limits::Limits;
use capture_core::tcp::flow::Dir;
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
    let first = if sel & 0x10 == 0 { Dir::ToServer } else { Dir::ToClient };
    let out = common::drive(&mut RedisSession::new(), &limits, rest, piece * 5, first);
    for e in &out {
        let r = e.redis().expect("redis detail");
        assert!(r.args.len() <= limits.redis_max_args);
        if let Some(reply) = &r.reply {
            assert!(reply.items.len() <= limits.redis_max_args);
        }
        let _ = e.summary();
    }
});
