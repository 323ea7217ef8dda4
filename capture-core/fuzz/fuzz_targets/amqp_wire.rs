//! The AMQP 0-9-1 parser, framer and session.
//!
//! Input: one selector byte (low 4 bits: piece size; bit 4: the server speaks first), then the
//! bytes. The parser and probes must never panic on any frame; method arguments, content
//! headers (properties, header tables) and field tables decoded from the bytes must stay within
//! their caps; the framer must cut the same
//! frames whether the bytes come at once or in pieces; the session, fed the pieces alternately
//! from each side (a 3-byte piece is a gap), must keep its entries within the caps.
#![no_main]

mod common;

use capture_core::dissect::amqp::content::{self, FieldValue, Rd, TableCaps, TableDecoder};
use capture_core::dissect::amqp::parse;
use capture_core::dissect::amqp::state::AmqpSession;
use capture_core::dissect::frames::Framer;
use capture_core::limits::Limits;
use capture_core::tcp::flow::Dir;
use libfuzzer_sys::fuzz_target;

const CAP: usize = 256;
const CAPS: TableCaps = TableCaps {
    max_depth: 3,
    max_items: 16,
    max_value_bytes: 8,
};

/// Values in a decoded tree and its depth, checked against `CAPS`.
fn check(v: &FieldValue, depth: usize, items: &mut usize) {
    *items += 1;
    assert!(depth <= CAPS.max_depth);
    match v {
        FieldValue::Str { text, .. } => assert!(text.len() <= CAPS.max_value_bytes),
        FieldValue::Bytes { data, .. } => assert!(data.len() <= CAPS.max_value_bytes),
        FieldValue::Array(vs) => vs.iter().for_each(|v| check(v, depth + 1, items)),
        FieldValue::Table(t) => t.iter().for_each(|(_, v)| check(v, depth + 1, items)),
        _ => {}
    }
    let _ = v.to_text();
}

fn check_table(t: &content::FieldTable) {
    let mut items = 0;
    t.iter().for_each(|(_, v)| check(v, 1, &mut items));
    assert!(items <= CAPS.max_items);
}

fn frames<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> Vec<(Vec<u8>, usize)> {
    let mut f = Framer::default();
    let mut out = Vec::new();
    for p in pieces {
        let (fs, ok) = f.push(p, parse::HEADER_LEN, parse::frame_size, CAP);
        out.extend(fs.into_iter().map(|f| (f.bytes, f.total)));
        if !ok {
            out.push((Vec::new(), 0));
            break;
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let _ = parse::probe(rest);
    let mut dec = TableDecoder::new(CAPS);
    if let Some(t) = dec.table(&mut Rd { b: rest }) {
        check_table(&t);
    }
    if let Some(h) = content::parse_content_header(rest, CAPS) {
        if let Some(t) = &h.properties.headers {
            check_table(t);
        }
        assert!(h.properties.strings().all(|(_, v)| v.len() <= 3 * 255));
    }
    if let Some(m) = parse::parse_method(rest, CAPS) {
        assert!(m.args.len() <= 8);
        assert!(
            m.args
                .iter()
                .all(|(_, v)| !matches!(v, parse::Arg::Str(s) if s.len() > 3 * 255))
        );
        let _ = parse::method_name(m.class, m.method);
        let _ = parse::is_reply_to(m.class, m.method, m.class, m.method.wrapping_add(1));
        assert!(
            m.exchange
                .iter()
                .chain(&m.routing_key)
                .chain(&m.queue)
                .all(|s| s.len() <= 3 * 255)
        );
    }
    let _ = parse::content_body_size(rest);
    let piece = usize::from(sel & 0x0f) + 1;
    let whole = frames(std::iter::once(rest));
    assert_eq!(whole, frames(rest.chunks(piece)), "pieces of {piece}");
    assert!(whole.iter().all(|(b, _)| b.len() <= CAP));

    let limits = Limits {
        amqp_max_open: 4,
        amqp_body_max_bytes: 16,
        amqp_table_max_depth: CAPS.max_depth,
        amqp_table_max_items: CAPS.max_items,
        amqp_table_value_max_bytes: CAPS.max_value_bytes,
        dissector_buffer_bytes: CAP,
        ..Limits::default()
    };
    let first = if sel & 0x10 == 0 { Dir::ToServer } else { Dir::ToClient };
    let out = common::drive(&mut AmqpSession::new(), &limits, rest, piece * 5, first);
    for e in &out {
        let a = e.amqp().expect("amqp detail");
        assert!(!a.methods.is_empty());
        assert_eq!(a.arguments.len(), a.methods.len());
        assert!(a.body.len() <= 16);
        if let Some(t) = a.properties.as_ref().and_then(|p| p.headers.as_ref()) {
            check_table(t);
        }
        let _ = e.summary();
    }
});
