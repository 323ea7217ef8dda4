//! DNS: questions, and per message its header flags, answers and EDNS.

use capture_core::dissect::dns::parse::{rcode_name, type_text};
use capture_core::dissect::dns::{DnsEntry, DnsMessage, dns_flags};
use serde_json::{Value, json};

fn message(m: &DnsMessage) -> Value {
    let h = m.header();
    let bit = |n: u16| m.flags & (1 << n) != 0;
    json!({
        "rcode": h.rcode(),
        "rcode_name": rcode_name(u16::from(h.rcode())),
        "authoritative": bit(10),
        "truncated": h.truncated(),
        "recursion_desired": bit(8),
        "recursion_available": bit(7),
        "authentic_data": bit(5),
        "checking_disabled": bit(4),
        "counts": { "questions": m.qdcount, "answers": m.ancount, "authority": m.nscount, "additional": m.arcount },
        "answers": m.answers.iter().map(|r| json!({
            "name": r.name, "type": type_text(r.rtype), "class": r.class, "ttl": r.ttl, "data": r.data,
        })).collect::<Vec<_>>(),
        "answers_kept": m.answers.len(),
        "edns": m.edns.as_ref().map(|e| json!({
            "udp_payload_size": e.udp_payload_size,
            "version": e.version,
            "dnssec_ok": e.dnssec_ok,
            "options": e.options,
            "client_subnet": e.client_subnet,
        })),
        "bytes": m.size,
    })
}

pub fn detail(d: &DnsEntry) -> Value {
    let mut notes = Vec::new();
    for (bit, text) in [
        (dns_flags::RETRANSMISSION, "a retransmission of an earlier query"),
        (dns_flags::NO_RESPONSE, "no response in the capture"),
        (dns_flags::TIMED_OUT, "timed out (or replaced by a later retry)"),
        (dns_flags::NO_QUERY, "a response whose query was not captured"),
        (
            dns_flags::PENDING_OVERFLOW,
            "evicted from the queue of unanswered queries (dns_max_pending)",
        ),
        (dns_flags::MALFORMED, "a malformed message"),
    ] {
        if d.flags & bit != 0 {
            notes.push(text);
        }
    }
    json!({
        "id": d.id,
        "opcode": d.opcode,
        "questions": d.questions.iter().map(|q| json!({
            "name": q.name, "type": type_text(q.qtype), "class": q.qclass,
        })).collect::<Vec<_>>(),
        "query": d.query.as_ref().map(message),
        "response": d.response.as_ref().map(message),
        "notes": notes,
    })
}
