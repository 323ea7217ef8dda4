//! The HTTP/2 path: HPACK blocks, the schemaless protobuf decoder, and whole connections fed to
//! the HTTP/2 session in arbitrary pieces.
//!
//! Input: one selector byte (low 4 bits: piece size; bit 4: prepend the client preface; bit 5:
//! the HPACK table starts unknown), then the bytes. The client direction gets the even-numbered
//! pieces, the server the odd ones.
#![no_main]

use capture_core::dissect::http2::hpack::{Decoder, Field};
use capture_core::dissect::http2::state::Http2Session;
use capture_core::dissect::http2::{frame, protobuf};
use capture_core::dissect::{Ctx, DissectStats};
use capture_core::entry::Entry;
use capture_core::limits::Limits;
use capture_core::tcp::flow::{Dir, FlowKey, FlowMeta, RoleSource};
use capture_core::tcp::reassembly::Chunk;
use capture_core::time::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    // HPACK: consumption never passes the input, and an unknown table never errs on an index.
    let mut dec = Decoder::new(sel & 0x20 == 0, 4096);
    let mut decoded = 0;
    let mut fields = Vec::new();
    let mut unknown = false;
    if let Ok(p) = dec.decode(rest, 1 << 16, &mut |f| match f {
        Field::Header { name, value } => {
            decoded += name.len() + value.len();
            fields.push((name, value));
        }
        Field::Unknown => unknown = true,
    }) {
        assert!(p.consumed <= rest.len());
        // Differential oracle: a whole block decoded from the start of a connection reads the
        // same with fluke-hpack, where both read it.
        if sel & 0x20 == 0 && p.consumed == rest.len() && !p.size_update_over_limit && !unknown {
            if let Ok(theirs) = fluke_hpack::Decoder::new().decode(rest) {
                assert_eq!(fields, theirs, "HPACK decodings differ");
            }
        }
    }
    // Huffman expands at most 8/5 of the input; literals are copied.
    assert!(decoded <= rest.len() * 2 + 61 * 64 * rest.len());
    assert!(dec.size() <= 4096, "the table stays within its cap");
    // Protobuf: decoding is total; JSON output is produced for whatever decodes.
    if let Some(fields) = protobuf::decode(rest, 16) {
        let json = protobuf::to_json(&fields);
        assert!(json.starts_with('{') && json.ends_with('}'));
    }
    // A connection.
    let client = "10.0.0.1:1000".parse().unwrap();
    let server = "10.0.0.2:2000".parse().unwrap();
    let meta = FlowMeta {
        id: 1,
        key: FlowKey::new(client, server, 6),
        client,
        server,
        roles: RoleSource::Syn,
        first_seen: Timestamp(0),
        last_seen: Timestamp(0),
        closed_at: None,
    };
    let limits = Limits {
        h2_max_streams: 8,
        h2_max_header_list_bytes: 4096,
        h2_max_continuations: 4,
        h2_hpack_table_bytes: 2048,
        h2_stream_body_bytes: 256,
        ..Limits::default()
    };
    let mut out: Vec<Entry> = Vec::new();
    let mut stats = DissectStats::default();
    let mut ctx = Ctx {
        limits: &limits,
        meta: &meta,
        out: &mut out,
        stats: &mut stats,
        keys: None,
    };
    let mut s = Http2Session::new();
    let mut bytes = Vec::new();
    if sel & 0x10 != 0 {
        bytes.extend_from_slice(frame::PREFACE);
    }
    bytes.extend_from_slice(rest);
    let piece = usize::from(sel & 0x0f) * 7 + 1;
    for (k, p) in bytes.chunks(piece).enumerate() {
        let dir = if k % 2 == 0 { Dir::ToServer } else { Dir::ToClient };
        let ts = Timestamp(k as u64 * 1_000);
        if p.len() == 3 {
            s.on_chunk(dir, ts, Chunk::Gap(p[0] as u64), &mut ctx);
        } else {
            s.on_chunk(dir, ts, Chunk::Data(p), &mut ctx);
        }
    }
    s.finish(Timestamp(u64::MAX / 2), &mut ctx);
    for e in &out {
        let h = e.h2().expect("http/2 detail");
        for m in h.request.iter().chain(h.response.iter()) {
            assert!(m.body.len() as u64 <= m.body_size);
            assert!(m.body.len() <= limits.h2_stream_body_bytes);
        }
        let _ = e.summary();
    }
});
