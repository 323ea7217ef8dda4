//! HTTP/1 exchanges as the store keeps them: one record per entry, its fields encoded in a few
//! dozen bytes and followed by its heads, bodies and trailers, written one after another into a
//! segment of the store's memory ([`super::segments`]).
//!
//! A stored entry then costs its payload, this short header and its slot, instead of an entry,
//! an exchange and six heap blocks each rounded up to the allocator's size class. Reading an
//! entry back builds an [`Entry`] whose heads and bodies are views into the segment (no copy).
//!
//! Layout (integers are LEB128 varints unless a width is given; texts are a length and UTF-8):
//! - `u8` entry flags ([`ef`]), the client and server addresses (`u8` 4 or 6, the address,
//!   `u16` port), the flow id, the elapsed microseconds when [`ef::ELAPSED`];
//! - `u16` exchange fields present ([`xf`]), then method, path, host, status, reason, upgrade,
//!   interim statuses (count, then each), time to first byte, exchange flags. Path and host are
//!   looked for in the request's head and reason and upgrade in the response's: each is written
//!   as its length and where it is there (one more than the offset), else as its length, a 0
//!   and the text;
//! - per message present: `u8` message flags ([`mf`]), `u8` head facts, body size, first
//!   timestamp minus the entry's (zigzag), last minus first (zigzag), head, body and trailer
//!   lengths;
//! - the payload: each message's head, body and trailers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;

use crate::entry::{Detail, Entry, HttpMessage, HttpTxn, Protocol, Transport};
use crate::time::Timestamp;

/// Entry flags.
mod ef {
    pub const TLS: u8 = 1;
    pub const DECRYPTED: u8 = 2;
    /// Peers or a TLS connection are kept beside the record ([`super::Extras`]).
    pub const EXTRAS: u8 = 4;
    pub const HTTP10: u8 = 8;
    pub const ELAPSED: u8 = 16;
    pub const UDP: u8 = 32;
}

/// Exchange fields present.
mod xf {
    pub const METHOD: u16 = 1;
    pub const PATH: u16 = 2;
    pub const HOST: u16 = 4;
    pub const STATUS: u16 = 8;
    pub const REASON: u16 = 16;
    pub const UPGRADE: u16 = 32;
    pub const TTFB: u16 = 64;
    pub const REQUEST: u16 = 128;
    pub const RESPONSE: u16 = 256;
}

/// Message flags.
mod mf {
    pub const TRUNCATED: u8 = 1;
    pub const CHUNKED: u8 = 2;
    pub const COMPLETE: u8 = 4;
}

/// What an entry holds that is not bytes: its Kubernetes peers and the TLS connection it was
/// decrypted from. Kept beside the record, and only for the entries that have them; entries
/// with the same ends share one.
#[derive(Debug, Clone)]
pub struct Extras {
    pub peers: crate::enrich::Peers,
    pub tls_conn: Option<Arc<crate::dissect::tls::TlsConn>>,
}

/// Both `None`, or the same allocation.
fn same_arc<T: ?Sized>(a: &Option<Arc<T>>, b: &Option<Arc<T>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    }
}

impl Extras {
    /// Whether `e` has any: peers other than external ones, or a TLS connection.
    pub fn in_entry(e: &Entry) -> bool {
        e.peers != crate::enrich::Peers::default() || e.tls_conn.is_some()
    }

    /// Those of `e`.
    pub fn of(e: &Entry) -> Extras {
        Extras {
            peers: e.peers.clone(),
            tls_conn: e.tls_conn.clone(),
        }
    }

    /// The same identities, names and connection as `e`'s, told by their allocations (the
    /// identity index hands out one per object), without comparing their contents.
    pub fn same_as(&self, e: &Entry) -> bool {
        let (a, b) = (&self.peers, &e.peers);
        a.src.resolution == b.src.resolution
            && a.dst.resolution == b.dst.resolution
            && same_arc(&a.src.identity, &b.src.identity)
            && same_arc(&a.dst.identity, &b.dst.identity)
            && same_arc(&a.src_dns, &b.src_dns)
            && same_arc(&a.dst_dns, &b.dst_dns)
            && same_arc(&self.tls_conn, &e.tls_conn)
    }
}

/// Whether `e` is kept as a record: HTTP/1 exchanges are.
pub fn packable(e: &Entry) -> bool {
    matches!(e.detail, Detail::Http(_))
}

/// The flags whose condition holds, together.
fn bits<T: Copy + Default + std::ops::BitOr<Output = T>>(flags: &[(bool, T)]) -> T {
    flags
        .iter()
        .filter(|(on, _)| *on)
        .fold(T::default(), |all, &(_, bit)| all | bit)
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(out: &mut Vec<u8>, v: i64) {
    varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn text(out: &mut Vec<u8>, s: &str) {
    varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Where `needle` is in `head`: at `hint` as a rule (where the start line puts it), else at
/// the first place that holds it. Needles are short and heads a few hundred bytes: a walk over
/// the places of the first byte costs less than building a searcher.
fn find(head: &[u8], needle: &[u8], hint: usize) -> Option<usize> {
    let first = *needle.first()?;
    if head.get(hint..hint + needle.len()) == Some(needle) {
        return Some(hint);
    }
    memchr::memchr_iter(first, head).find(|&at| head[at..].starts_with(needle))
}

/// `s` as a place in `head` when it is found there (texts taken from a head usually are), else
/// as itself. `hint` is where it usually is.
fn text_in(out: &mut Vec<u8>, s: &str, head: Option<&[u8]>, hint: usize) {
    varint(out, s.len() as u64);
    match head.and_then(|h| find(h, s.as_bytes(), hint)) {
        Some(at) => varint(out, at as u64 + 1),
        None => {
            out.push(0);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

fn addr(out: &mut Vec<u8>, a: &SocketAddr) {
    match a.ip() {
        IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&a.port().to_le_bytes());
}

/// Nanoseconds from `from` to `to`, either way (exact for any two: the difference wraps, and
/// [`shift`] wraps it back).
fn delta(from: Timestamp, to: Timestamp) -> i64 {
    to.0.wrapping_sub(from.0) as i64
}

/// Writes the fields of `e` (which [`packable`] accepts) into `out` and returns the payload
/// parts that follow them, in order (empty where a message is missing), and whether the entry
/// has extras ([`Extras::in_entry`]: the record says so, the caller keeps them).
pub fn encode<'e>(e: &'e Entry, out: &mut Vec<u8>) -> ([&'e [u8]; 6], bool) {
    let Entry {
        id: _,
        ts,
        protocol,
        transport,
        src,
        dst,
        flow_id,
        elapsed_us,
        detail,
        // Kept beside the record (`Extras`).
        peers: _,
        tls,
        decrypted,
        tls_conn: _,
    } = e;
    let Detail::Http(h) = detail else {
        unreachable!("only HTTP/1 entries are packed")
    };
    let HttpTxn {
        method,
        path,
        host,
        status,
        reason,
        request,
        response,
        interim,
        upgrade,
        ttfb_us,
        flags,
    } = &**h;
    let extras = Extras::in_entry(e);
    out.push(bits(&[
        (*tls, ef::TLS),
        (*decrypted, ef::DECRYPTED),
        (extras, ef::EXTRAS),
        (*protocol == Protocol::Http10, ef::HTTP10),
        (elapsed_us.is_some(), ef::ELAPSED),
        (*transport == Transport::Udp, ef::UDP),
    ]));
    addr(out, src);
    addr(out, dst);
    varint(out, *flow_id);
    if let Some(us) = elapsed_us {
        varint(out, *us);
    }
    let x = bits(&[
        (method.is_some(), xf::METHOD),
        (path.is_some(), xf::PATH),
        (host.is_some(), xf::HOST),
        (status.is_some(), xf::STATUS),
        (reason.is_some(), xf::REASON),
        (upgrade.is_some(), xf::UPGRADE),
        (ttfb_us.is_some(), xf::TTFB),
        (request.is_some(), xf::REQUEST),
        (response.is_some(), xf::RESPONSE),
    ]);
    out.extend_from_slice(&x.to_le_bytes());
    let req_head = request.as_ref().map(|m| &m.head[..]);
    let resp_head = response.as_ref().map(|m| &m.head[..]);
    if let Some(m) = method {
        text(out, m);
    }
    // The path follows the method in the request line; the reason follows `HTTP/1.1 200 `.
    let after_method = method.as_ref().map_or(0, |m| m.len() + 1);
    if let Some(p) = path {
        text_in(out, p, req_head, after_method);
    }
    if let Some(s) = host {
        // Most clients send `Host` first, right after the request line.
        let after_line = req_head
            .and_then(|h| memchr::memchr(b'\n', h))
            .map_or(0, |i| i + 1 + "Host: ".len());
        text_in(out, s, req_head, after_line);
    }
    if let Some(s) = status {
        varint(out, u64::from(*s));
    }
    if let Some(s) = reason {
        text_in(out, s, resp_head, 13);
    }
    if let Some(s) = upgrade {
        text_in(out, s, resp_head, 0);
    }
    varint(out, interim.len() as u64);
    for s in interim {
        varint(out, u64::from(*s));
    }
    if let Some(t) = ttfb_us {
        varint(out, *t);
    }
    varint(out, u64::from(*flags));
    let mut parts: [&[u8]; 6] = [&[]; 6];
    let mut next = parts.iter_mut();
    for m in [request, response].into_iter().flatten() {
        let HttpMessage {
            head,
            body,
            body_size,
            body_truncated,
            chunked,
            trailers,
            first_ts,
            last_ts,
            complete,
            head_facts,
        } = m;
        out.push(bits(&[
            (*body_truncated, mf::TRUNCATED),
            (*chunked, mf::CHUNKED),
            (*complete, mf::COMPLETE),
        ]));
        out.push(*head_facts);
        varint(out, *body_size);
        zigzag(out, delta(*ts, *first_ts));
        zigzag(out, delta(*first_ts, *last_ts));
        for p in [head, body, trailers] {
            varint(out, p.len() as u64);
            if !p.is_empty() {
                *next.next().expect("six parts at most") = &p[..];
            }
        }
    }
    drop(next);
    (parts, extras)
}

/// Reads a record the store wrote.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn u8(&mut self) -> u8 {
        let v = self.b[self.at];
        self.at += 1;
        v
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        s
    }

    fn varint(&mut self) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = self.u8();
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return v;
            }
            shift += 7;
        }
    }

    fn zigzag(&mut self) -> i64 {
        let v = self.varint();
        ((v >> 1) as i64) ^ -((v & 1) as i64)
    }

    fn str(&mut self) -> &str {
        let n = self.varint() as usize;
        std::str::from_utf8(self.take(n)).expect("texts are stored as UTF-8")
    }

    /// A text [`text_in`] wrote: where it is, found once the heads are.
    fn text_in(&mut self, msg: usize) -> Text {
        let len = self.varint() as usize;
        match self.varint() as usize {
            0 => {
                let start = self.at;
                self.at += len;
                Text::Here(start, len)
            }
            at => Text::InHead(msg, at - 1, len),
        }
    }
}

/// Where a text is in a record: at a place of its own (start, length), or in a message's head
/// (the message, offset, length).
#[derive(Clone, Copy)]
enum Text {
    Here(usize, usize),
    InHead(usize, usize, usize),
}

impl Text {
    fn get(self, rec: &[u8], heads: [usize; 2]) -> &str {
        let (start, len) = match self {
            Text::Here(start, len) => (start, len),
            Text::InHead(msg, at, len) => (heads[msg] + at, len),
        };
        std::str::from_utf8(&rec[start..start + len]).expect("texts are stored as UTF-8")
    }
}

impl Reader<'_> {
    fn addr(&mut self) -> SocketAddr {
        let ip = match self.u8() {
            4 => IpAddr::from(<[u8; 4]>::try_from(self.take(4)).expect("4 bytes")),
            _ => IpAddr::from(<[u8; 16]>::try_from(self.take(16)).expect("16 bytes")),
        };
        let port = u16::from_le_bytes(self.take(2).try_into().expect("2 bytes"));
        SocketAddr::new(ip, port)
    }
}

fn shift(ts: Timestamp, by: i64) -> Timestamp {
    Timestamp(ts.0.wrapping_add(by as u64))
}

/// The entry `rec` holds, with the id and timestamp its slot keeps and its extras. Heads and
/// bodies are views into `rec`'s segment.
///
/// # Panics
/// When `rec` is not a record [`encode`] wrote (the store only decodes its own).
pub fn decode(rec: &Bytes, id: u64, ts: Timestamp, extras: Option<&Extras>) -> Entry {
    let mut r = Reader { b: rec, at: 0 };
    let f = r.u8();
    let src = r.addr();
    let dst = r.addr();
    let flow_id = r.varint();
    let elapsed_us = (f & ef::ELAPSED != 0).then(|| r.varint());
    let x = u16::from_le_bytes(r.take(2).try_into().expect("2 bytes"));
    let has = |bit: u16| x & bit != 0;
    let method: Option<Arc<str>> = has(xf::METHOD).then(|| crate::dissect::http1::state::method_text(r.str()));
    let path = has(xf::PATH).then(|| r.text_in(0));
    let host = has(xf::HOST).then(|| r.text_in(0));
    let status = has(xf::STATUS).then(|| r.varint() as u16);
    let reason = has(xf::REASON).then(|| r.text_in(1));
    let upgrade = has(xf::UPGRADE).then(|| r.text_in(1));
    let interim = (0..r.varint()).map(|_| r.varint() as u16).collect();
    let ttfb_us = has(xf::TTFB).then(|| r.varint());
    let flags = r.varint() as u32;
    let mut msgs = [None, None];
    let mut lens = [[0usize; 3]; 2];
    for (i, bit) in [xf::REQUEST, xf::RESPONSE].into_iter().enumerate() {
        if !has(bit) {
            continue;
        }
        let g = r.u8();
        let head_facts = r.u8();
        let body_size = r.varint();
        let first_ts = shift(ts, r.zigzag());
        let last_ts = shift(first_ts, r.zigzag());
        for l in &mut lens[i] {
            *l = r.varint() as usize;
        }
        msgs[i] = Some(HttpMessage {
            head: Bytes::new(),
            body: Bytes::new(),
            body_size,
            body_truncated: g & mf::TRUNCATED != 0,
            chunked: g & mf::CHUNKED != 0,
            trailers: Bytes::new(),
            first_ts,
            last_ts,
            complete: g & mf::COMPLETE != 0,
            head_facts,
        });
    }
    let mut at = r.at;
    let mut heads = [0; 2];
    for ((m, lens), head) in msgs.iter_mut().zip(lens).zip(&mut heads) {
        *head = at;
        let Some(m) = m else { continue };
        for (part, n) in [&mut m.head, &mut m.body, &mut m.trailers].into_iter().zip(lens) {
            if n > 0 {
                *part = rec.slice(at..at + n);
                at += n;
            }
        }
    }
    assert_eq!(at, rec.len(), "a record ends with its payload");
    let [request, response] = msgs;
    let path = path.map(|t| t.get(rec, heads).into());
    let host = host.map(|t| t.get(rec, heads).into());
    let reason = reason.map(|t| t.get(rec, heads).into());
    let upgrade = upgrade.map(|t| t.get(rec, heads).into());
    Entry {
        id,
        ts,
        protocol: if f & ef::HTTP10 != 0 {
            Protocol::Http10
        } else {
            Protocol::Http11
        },
        transport: if f & ef::UDP != 0 {
            Transport::Udp
        } else {
            Transport::Tcp
        },
        src,
        dst,
        flow_id,
        elapsed_us,
        detail: Detail::Http(Box::new(HttpTxn {
            method,
            path,
            host,
            status,
            reason,
            request,
            response,
            interim,
            upgrade,
            ttfb_us,
            flags,
        })),
        peers: extras.map(|x| x.peers.clone()).unwrap_or_default(),
        tls: f & ef::TLS != 0,
        decrypted: f & ef::DECRYPTED != 0,
        tls_conn: extras.and_then(|x| x.tls_conn.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), "[ -~]{0,12}", "\\PC{0,6}"]
    }

    fn message() -> impl Strategy<Value = HttpMessage> {
        (
            (
                proptest::collection::vec(any::<u8>(), 0..40),
                proptest::collection::vec(any::<u8>(), 0..300),
                proptest::collection::vec(any::<u8>(), 0..10),
            ),
            (
                any::<u64>(),
                any::<[bool; 3]>(),
                any::<u8>(),
                any::<u64>(),
                any::<u64>(),
            ),
        )
            .prop_map(
                |((head, body, trailers), (body_size, b, head_facts, first, last))| HttpMessage {
                    head: head.into(),
                    body: body.into(),
                    body_size,
                    body_truncated: b[0],
                    chunked: b[1],
                    trailers: trailers.into(),
                    first_ts: Timestamp(first),
                    last_ts: Timestamp(last),
                    complete: b[2],
                    head_facts,
                },
            )
    }

    fn addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::new(IpAddr::from(ip), p)),
            (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::new(IpAddr::from(ip), p)),
        ]
    }

    prop_compose! {
        fn exchange()(
            texts in (proptest::option::of("[A-Z]{1,8}"), proptest::option::of(text()),
                      proptest::option::of(text()), proptest::option::of(text()), proptest::option::of(text())),
            status in proptest::option::of(any::<u16>()),
            request in proptest::option::of(message()),
            response in proptest::option::of(message()),
            interim in proptest::collection::vec(any::<u16>(), 0..3),
            ttfb_us in proptest::option::of(any::<u64>()),
            flags in any::<u32>(),
            path_in_line in any::<bool>(),
        ) -> HttpTxn {
            let (method, path, host, reason, upgrade) = texts;
            let mut request = request;
            // Often the path is the request line's target, as on the wire.
            if let (true, Some(m), Some(p), Some(r)) = (path_in_line, &method, &path, &mut request) {
                r.head = format!("{m} {p} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes().into();
            }
            HttpTxn {
                method: method.map(|m| Arc::from(m.as_str())),
                path: path.map(Into::into),
                host: host.map(|s| Arc::from(s.as_str())),
                status,
                reason: reason.map(|s| Arc::from(s.as_str())),
                request,
                response,
                interim,
                upgrade: upgrade.map(Into::into),
                ttfb_us,
                flags,
            }
        }
    }

    prop_compose! {
        fn entry()(
            txn in exchange(),
            ts in any::<u64>(),
            src in addr(),
            dst in addr(),
            flow_id in any::<u64>(),
            elapsed_us in proptest::option::of(any::<u64>()),
            b in any::<[bool; 4]>(),
            named in any::<bool>(),
        ) -> Entry {
            let mut peers = crate::enrich::Peers::default();
            if named {
                peers.dst_dns = Some(Arc::from("api.example"));
            }
            Entry {
                id: 0,
                ts: Timestamp(ts),
                protocol: if b[0] { Protocol::Http10 } else { Protocol::Http11 },
                transport: if b[1] { Transport::Udp } else { Transport::Tcp },
                src,
                dst,
                flow_id,
                elapsed_us,
                detail: Detail::Http(Box::new(txn)),
                peers,
                tls: b[2],
                decrypted: b[3],
                tls_conn: None,
            }
        }
    }

    proptest! {
        /// What is packed reads back as it was, field for field.
        #[test]
        fn records_read_back_as_written(e in entry(), id in any::<u64>()) {
            let mut out = Vec::new();
            let (parts, has_extras) = encode(&e, &mut out);
            let extras = has_extras.then(|| Extras::of(&e));
            prop_assert_eq!(extras.is_some(), e.peers != crate::enrich::Peers::default());
            for p in parts {
                out.extend_from_slice(p);
            }
            let back = decode(&Bytes::from(out), id, e.ts, extras.as_ref());
            prop_assert_eq!(back, Entry { id, ..e });
        }
    }

    #[test]
    fn texts_from_the_head_are_not_written_twice() {
        let head = "GET /api/v1/orders?page=2 HTTP/1.1\r\nHost: shop\r\n\r\n";
        let e = Entry {
            id: 0,
            ts: Timestamp(1),
            protocol: Protocol::Http11,
            transport: Transport::Tcp,
            src: "10.0.0.1:4000".parse().unwrap(),
            dst: "10.0.0.2:80".parse().unwrap(),
            flow_id: 7,
            elapsed_us: Some(900),
            detail: Detail::Http(Box::new(HttpTxn {
                method: Some(Arc::from("GET")),
                path: Some("/api/v1/orders?page=2".into()),
                host: Some(Arc::from("shop")),
                request: Some(HttpMessage {
                    head: Bytes::from_static(head.as_bytes()),
                    ..Default::default()
                }),
                ..Default::default()
            })),
            peers: Default::default(),
            tls: false,
            decrypted: false,
            tls_conn: None,
        };
        let mut out = Vec::new();
        let (parts, _) = encode(&e, &mut out);
        assert!(
            !out.windows(6).any(|w| w == b"/api/v"),
            "the path is read from the head"
        );
        assert!(!out.windows(4).any(|w| w == b"shop"), "so is the host");
        // Flags, two IPv4 addresses, flow, elapsed, fields, method, path and host places, …
        assert!(out.len() <= 40, "{} bytes of fields", out.len());
        assert_eq!(parts, [head.as_bytes(), &[], &[], &[], &[], &[]]);
    }
}
