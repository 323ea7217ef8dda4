//! The Kafka parser, framer and session.
//!
//! Input: one selector byte (low 4 bits: piece size; bit 4: the server speaks first), then the
//! bytes. The parser and probes must never panic on any frame; the framer must cut the same
//! frames whether the bytes come at once or in pieces; the session, fed the pieces alternately
//! from each side (a 3-byte piece is a gap), must keep its entries within the caps.
#![no_main]

mod common;

use capture_core::dissect::frames::Framer;
use capture_core::dissect::kafka::parse;
use capture_core::dissect::kafka::state::KafkaSession;
use capture_core::limits::Limits;
use capture_core::tcp::flow::Dir;
use libfuzzer_sys::fuzz_target;

const CAP: usize = 256;

fn frames<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> Vec<(Vec<u8>, usize)> {
    let mut f = Framer::default();
    let mut out = Vec::new();
    for p in pieces {
        let (fs, ok) = f.push(p, 4, parse::frame_size, CAP);
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
    let _ = parse::probe_responses(rest);
    let caps = parse::Caps::from_limits(&Limits {
        kafka_max_list: 8,
        kafka_max_records: 4,
        kafka_value_bytes: 16,
        kafka_decompress_max_bytes: 4_096,
        kafka_zstd_max_window_bytes: 1 << 16,
        ..Limits::default()
    });
    let mut drops = parse::Drops::default();
    if let Some(mut r) = parse::parse_request(rest, &caps, &mut drops) {
        assert!(
            r.topics.iter().all(|t| t.len() <= 3 * rest.len()),
            "lossy UTF-8 at most triples"
        );
        assert!(r.topics.len() <= 8 && r.partitions.len() <= 8 && r.records.len() <= 4);
        // The same bytes as the response to this request: error codes, Fetch records.
        parse::parse_response(rest, &mut r, &caps, &mut drops);
        assert!(r.errors.len() <= 8 && r.records.len() <= 4);
        assert!(
            r.records
                .iter()
                .all(|x| x.value.as_ref().is_none_or(|v| v.bytes.len() <= 16))
        );
    }
    // Bytes as compressed record data of each codec.
    for codec in 1..=4 {
        if let Ok(d) = capture_core::dissect::kafka::compression::decompress(codec, rest, 4_096, 1 << 16) {
            assert!(d.bytes.len() <= 4_096);
        }
    }
    let _ = parse::response_correlation(rest);
    let piece = usize::from(sel & 0x0f) + 1;
    let whole = frames(std::iter::once(rest));
    assert_eq!(whole, frames(rest.chunks(piece)), "pieces of {piece}");
    assert!(whole.iter().all(|(b, _)| b.len() <= CAP));

    let limits = Limits {
        kafka_max_pending: 4,
        kafka_max_records: 4,
        dissector_buffer_bytes: CAP,
        ..Limits::default()
    };
    let first = if sel & 0x10 == 0 { Dir::ToServer } else { Dir::ToClient };
    let out = common::drive(&mut KafkaSession::new(), &limits, rest, piece * 5, first);
    for e in &out {
        let k = e.kafka().expect("kafka detail");
        assert!(k.topics.iter().map(|t| t.len()).sum::<usize>() <= 3 * CAP);
        assert!(k.records.len() <= 4);
        let _ = e.summary();
    }
});
