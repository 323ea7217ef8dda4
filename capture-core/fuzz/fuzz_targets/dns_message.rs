//! DNS messages: the parser and probes on the raw input, then DNS over TCP (the input cut into
//! pieces, alternately from each side; a 3-byte piece is a gap) and over UDP (the input cut into
//! datagrams at `common::DELIM`).
//!
//! Input: one selector byte (low 4 bits: piece size), then the bytes.
#![no_main]

mod common;

use capture_core::dissect::dns::parse::{self, Caps};
use capture_core::dissect::dns::state::{DnsTcpSession, DnsUdpSession};
use capture_core::dissect::{Ctx, DatagramDissector, DissectStats, StreamDissector};
use capture_core::entry::Entry;
use capture_core::limits::Limits;
use capture_core::tcp::flow::{Dir, FlowKey, FlowMeta, RoleSource};
use capture_core::tcp::reassembly::Chunk;
use capture_core::time::Timestamp;
use libfuzzer_sys::fuzz_target;

const CAPS: Caps = Caps {
    max_pointer_hops: 16,
    max_questions: 2,
    max_records: 4,
};

fn check(out: &[Entry]) {
    for e in out {
        let d = e.dns().expect("dns detail");
        assert!(d.questions.len() <= CAPS.max_questions);
        for m in d.query.iter().chain(d.response.iter()) {
            assert!(m.answers.len() <= CAPS.max_records);
        }
        let _ = e.summary();
    }
}

/// Differential oracle: where `hickory-proto` also reads the message, the two agree on the
/// header fields, the section counts and the questions (plain names compared as text; names
/// with escapes are presentation choices, not facts).
fn oracle(raw: &[u8], ours: &parse::Message) {
    let Ok(theirs) = hickory_proto::op::Message::from_vec(raw) else {
        return;
    };
    let h = &ours.header;
    assert_eq!(h.id, theirs.metadata.id, "id");
    assert_eq!(
        h.is_response(),
        theirs.metadata.message_type == hickory_proto::op::MessageType::Response,
        "QR"
    );
    assert_eq!(usize::from(h.qdcount), theirs.queries.len(), "question count");
    assert_eq!(usize::from(h.ancount), theirs.answers.len(), "answer count");
    for (q, t) in ours.questions.iter().zip(&theirs.queries) {
        assert_eq!(q.qtype, u16::from(t.query_type), "qtype of {}", q.name);
        let name = t.name.to_string();
        let name = name.strip_suffix('.').unwrap_or(&name);
        if !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            assert_eq!(q.name, name, "question name");
        }
    }
    for (r, t) in ours.answers.iter().zip(&theirs.answers) {
        assert_eq!(r.ttl, t.ttl, "ttl of {}", r.name);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let _ = parse::probe_udp(rest);
    let _ = parse::probe_tcp(rest);
    if let Ok(m) = parse::parse(rest, &CAPS) {
        assert!(m.questions.len() <= CAPS.max_questions && m.answers.len() <= CAPS.max_records);
        assert_eq!(m.size, rest.len());
        for q in &m.questions {
            assert!(!q.name.is_empty());
        }
        oracle(rest, &m);
    }
    for off in 0..rest.len().min(32) {
        if let Ok((name, next)) = parse::read_name(rest, off, CAPS.max_pointer_hops) {
            assert!(name.len() <= 255 && next <= rest.len());
        }
    }
    if let Ok(s) = std::str::from_utf8(rest) {
        let _ = capture_core::dissect::dns::doh::base64url_decode(s);
    }

    let client = "10.0.0.1:1000".parse().unwrap();
    let server = "10.0.0.2:2000".parse().unwrap();
    let limits = Limits {
        dns_max_pointer_hops: CAPS.max_pointer_hops,
        dns_max_questions: CAPS.max_questions,
        dns_max_records: CAPS.max_records,
        dns_max_pending: 4,
        ..Limits::default()
    };
    let piece = usize::from(sel & 0x0f) * 9 + 1;
    for proto in [6u8, 17] {
        let meta = FlowMeta {
            id: 1,
            key: FlowKey::new(client, server, proto),
            client,
            server,
            roles: RoleSource::Port,
            first_seen: Timestamp(0),
            last_seen: Timestamp(0),
            closed_at: None,
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
        if proto == 6 {
            let mut s = DnsTcpSession::new();
            for (k, p) in rest.chunks(piece).enumerate() {
                let dir = if k % 2 == 0 { Dir::ToServer } else { Dir::ToClient };
                let ts = Timestamp(k as u64 * 1_000_000_000);
                if p.len() == 3 {
                    s.on_chunk(dir, ts, Chunk::Gap(u64::from(p[0])), &mut ctx);
                } else {
                    s.on_chunk(dir, ts, Chunk::Data(p), &mut ctx);
                }
            }
            s.finish(Timestamp(u64::MAX / 2), &mut ctx);
        } else {
            let mut s = DnsUdpSession::new();
            for (k, p) in common::split(rest).into_iter().enumerate() {
                let dir = if k % 3 == 0 { Dir::ToServer } else { Dir::ToClient };
                s.on_datagram(dir, Timestamp(k as u64 * 3_000_000_000), p, &mut ctx);
            }
            s.finish(Timestamp(u64::MAX / 2), &mut ctx);
        }
        check(&out);
    }
});
