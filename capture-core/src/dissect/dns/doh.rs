//! DNS over HTTPS (RFC 8484): the DNS exchange an HTTP entry carries becomes a `dns` entry of its
//! own, next to the HTTP one, so DNS filters and fields see it like any other lookup.
//!
//! The query is the body of a POST with `Content-Type: application/dns-message`, or the
//! base64url `dns` parameter of a GET; the response is a body of that content type. The entry
//! keeps the HTTP entry's endpoints, flow and timing, with transport `tcp`.

use super::parse::{self, Caps};
use super::{DnsEntry, DnsMessage, dns_flags};
use crate::dissect::Ctx;
use crate::entry::{Detail, Entry, Protocol};
use crate::time::Timestamp;

const MEDIA_TYPE: &str = "application/dns-message";

/// One side of the HTTP exchange as DoH sees it.
struct Side<'a> {
    content_type: Option<&'a str>,
    body: &'a [u8],
    ts: Timestamp,
}

fn is_dns_message(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|c| {
        c.trim_start()
            .get(..MEDIA_TYPE.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(MEDIA_TYPE))
    })
}

/// Decodes base64url (RFC 4648 §5), padding optional. `None` on a character outside the alphabet.
pub fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The `dns` parameter of a request-target's query string.
fn dns_param(path: &str) -> Option<&str> {
    // Most targets hold no `dns=` at all: one scan says so, without splitting the query.
    let p = path.as_bytes();
    if !memchr::memchr_iter(b'd', p).any(|i| p[i..].starts_with(b"dns=")) {
        return None;
    }
    let q = path.split_once('?')?.1;
    q.split('&').find_map(|kv| kv.strip_prefix("dns="))
}

fn kept(m: &parse::Message, ts: Timestamp) -> DnsMessage {
    DnsMessage {
        flags: m.header.flags,
        qdcount: m.header.qdcount,
        ancount: m.header.ancount,
        nscount: m.header.nscount,
        arcount: m.header.arcount,
        answers: m.answers.clone(),
        edns: m.edns.clone(),
        problems: m.problems,
        size: u32::try_from(m.size).unwrap_or(u32::MAX),
        ts,
    }
}

/// The DNS entry carried by an HTTP entry, if it is a DoH exchange.
pub fn dns_entry_of(e: &Entry, caps: &Caps) -> Option<Entry> {
    let (method, path, req, resp) = match &e.detail {
        Detail::Http(h) => {
            // Headers are parsed again from the stored head only when the media type occurs in it.
            let content_type = |m: &crate::entry::HttpMessage| {
                // The parser noted it when it parsed the head; only heads built elsewhere are
                // searched.
                let mentioned = m
                    .head_fact(crate::entry::head_facts::DNS_MESSAGE)
                    .unwrap_or_else(|| crate::dissect::http1::parse::mentions_dns_message(&m.head));
                mentioned.then(|| m.header("content-type")).flatten()
            };
            let req_ct = h.request.as_ref().and_then(content_type);
            let resp_ct = h.response.as_ref().and_then(content_type);
            let req = h.request.as_ref().map(|m| Side {
                content_type: req_ct.as_deref(),
                body: &m.body,
                ts: m.first_ts,
            });
            let resp = h.response.as_ref().map(|m| Side {
                content_type: resp_ct.as_deref(),
                body: &m.body,
                ts: m.first_ts,
            });
            return build(e, h.method.as_deref(), h.path.as_deref(), req, resp, caps);
        }
        Detail::Http2(s) => {
            fn side(m: &crate::entry::H2Message) -> Side<'_> {
                Side {
                    content_type: m.header("content-type"),
                    body: &m.body,
                    ts: m.first_ts,
                }
            }
            (
                s.method.as_deref(),
                s.path.as_deref(),
                s.request.as_ref().map(side),
                s.response.as_ref().map(side),
            )
        }
        _ => return None,
    };
    build(e, method, path, req, resp, caps)
}

fn build(
    e: &Entry,
    method: Option<&str>,
    path: Option<&str>,
    req: Option<Side<'_>>,
    resp: Option<Side<'_>>,
    caps: &Caps,
) -> Option<Entry> {
    let req_ts = req.as_ref().map(|r| r.ts).unwrap_or(e.ts);
    let query_bytes: Option<std::borrow::Cow<'_, [u8]>> = match (&req, method) {
        (Some(r), Some(m)) if m.eq_ignore_ascii_case("POST") && is_dns_message(r.content_type) => Some(r.body.into()),
        (_, Some(m)) if m.eq_ignore_ascii_case("GET") => {
            path.and_then(dns_param).and_then(base64url_decode).map(Into::into)
        }
        _ => None,
    };
    let response_bytes = resp
        .as_ref()
        .filter(|r| is_dns_message(r.content_type) && !r.body.is_empty())
        .map(|r| (r.body, r.ts));
    let query = query_bytes.and_then(|b| parse::parse(&b, caps).ok());
    let response = response_bytes.and_then(|(b, ts)| parse::parse(b, caps).ok().map(|m| (m, ts)));
    if query.is_none() && response.is_none() {
        return None;
    }
    let first = query.as_ref().or(response.as_ref().map(|(m, _)| m))?;
    let mut flags = 0;
    if query.is_none() {
        flags |= dns_flags::NO_QUERY;
    }
    if response.is_none() {
        flags |= dns_flags::NO_RESPONSE;
    }
    if query
        .iter()
        .chain(response.iter().map(|(m, _)| m))
        .any(|m| m.problems != 0)
    {
        flags |= dns_flags::MALFORMED;
    }
    let dns = DnsEntry {
        id: first.header.id,
        opcode: first.header.opcode(),
        questions: first.questions.clone(),
        query: query.as_ref().map(|m| kept(m, req_ts)),
        response: response.as_ref().map(|(m, ts)| kept(m, *ts)),
        flags,
    };
    Some(Entry {
        peers: Default::default(),
        tls: false,
        decrypted: false,
        tls_conn: None,
        id: 0,
        ts: if dns.query.is_some() {
            req_ts
        } else {
            response.as_ref().map_or(e.ts, |(_, ts)| *ts)
        },
        protocol: Protocol::Dns,
        transport: e.transport,
        src: e.src,
        dst: e.dst,
        flow_id: e.flow_id,
        elapsed_us: if dns.query.is_some() && dns.response.is_some() {
            e.elapsed_us
        } else {
            None
        },
        detail: Detail::Dns(Box::new(dns)),
    })
}

/// Adds the DNS entries of the DoH exchanges among the entries pushed since `from`.
pub fn derive(ctx: &mut Ctx<'_>, from: usize) {
    let end = ctx.out.len();
    if from >= end {
        return;
    }
    let caps = Caps::from_limits(ctx.limits);
    for i in from..end {
        if !ctx.out[i].protocol.is_http() {
            continue;
        }
        if let Some(d) = dns_entry_of(&ctx.out[i], &caps) {
            ctx.stats.dns_over_https += 1;
            ctx.out.push(d);
        }
    }
}
