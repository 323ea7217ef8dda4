//! The field registry: every field an entry carries, with its name, aliases, type, protocol,
//! description and example. Projections (`fields`) read entries through it, and the filter
//! language ([`crate::kfl`]) type-checks against it and generates its reference from it, so there
//! is one source of truth for field names.
//!
//! Each field has two readers built from the same code:
//! - [`FieldDef::get`] returns a [`Value`] for projections (`null` when the field does not apply);
//! - [`FieldDef::access`] is the typed reader the filter engine calls per entry; it borrows from
//!   the entry and does not allocate for the fields filters use most.
//!
//! Kubernetes identity fields are empty (`""`, `[]`, `{}`) on every entry until identities are
//! resolved.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::dissect::amqp::{FieldValue, Properties};
use crate::dissect::dns::parse as dns_parse;
use crate::entry::{Entry, H2Message, HttpMessage, Protocol, Transport};
use crate::time::Timestamp;

/// A field's value for one entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    List(Vec<Value<'a>>),
    /// A string-keyed map (header names lower-cased), in first-seen key order.
    Map(Vec<(Cow<'a, str>, Value<'a>)>),
}

/// The type a field has when it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Bool,
    Int,
    Float,
    String,
    /// RFC 3339 text in results; comparable as a timestamp in filters.
    Timestamp,
    StringList,
    /// Map of string to string (`request.headers`, labels).
    Map,
}

impl FieldType {
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Bool => "bool",
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::String => "string",
            FieldType::Timestamp => "timestamp",
            FieldType::StringList => "list<string>",
            FieldType::Map => "map<string, string>",
        }
    }
}

/// Reads a list of strings: `len` is `None` when the field does not apply to the entry.
#[derive(Clone, Copy)]
pub struct ListAccess {
    pub len: fn(&Entry) -> Option<usize>,
    pub item: for<'a> fn(&'a Entry, usize) -> Option<Cow<'a, str>>,
}

/// Reads a map of strings: `len` is `None` when the field does not apply to the entry. Keys are
/// looked up case-insensitively where the protocol says so (header names).
#[derive(Clone, Copy)]
pub struct MapAccess {
    pub len: fn(&Entry) -> Option<usize>,
    pub get: for<'a> fn(&'a Entry, &str) -> Option<Cow<'a, str>>,
    /// Every (key, value), in first-seen order; `None` when the field does not apply.
    pub entries: MapEntriesFn,
}

/// Reads every (key, value) of a map field.
pub type MapEntriesFn = for<'a> fn(&'a Entry) -> Option<Vec<(Cow<'a, str>, Cow<'a, str>)>>;

/// The typed reader the filter engine uses. `None` means the field does not apply to the entry
/// (a filter then reads the type's empty default).
#[derive(Clone, Copy)]
pub enum Access {
    Bool(fn(&Entry) -> Option<bool>),
    Int(fn(&Entry) -> Option<i64>),
    Float(fn(&Entry) -> Option<f64>),
    Str(for<'a> fn(&'a Entry) -> Option<Cow<'a, str>>),
    /// A string field holding an IP address: filters compare addresses without formatting.
    Ip(fn(&Entry) -> Option<IpAddr>),
    Timestamp(fn(&Entry) -> Option<Timestamp>),
    StrList(ListAccess),
    StrMap(MapAccess),
}

/// One registered field.
pub struct FieldDef {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub ty: FieldType,
    /// `None` for fields every entry has; else the protocol family (`"http"`, `"dns"`, …).
    pub protocol: Option<&'static str>,
    pub description: &'static str,
    pub example: &'static str,
    /// The value for projections; `Value::Null` when the field does not apply.
    pub get: for<'a> fn(&'a Entry) -> Value<'a>,
    /// The typed reader for filters.
    pub access: Access,
    /// Relative cost of reading the field, used to test cheap conditions first: 0 reads nothing
    /// (a constant today), 1 the entry itself, 2 its HTTP exchange, 3–4 parses the stored head,
    /// more builds text.
    pub cost: u8,
}

impl std::fmt::Debug for FieldDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldDef")
            .field("name", &self.name)
            .field("ty", &self.ty)
            .finish()
    }
}

/// A bare protocol flag of the filter language (`http`, `dns`, …).
pub struct FlagDef {
    pub name: &'static str,
    pub description: &'static str,
    pub test: fn(&Entry) -> bool,
    /// Relative cost of the test, as [`FieldDef::cost`].
    pub cost: u8,
    /// When the flag depends on the protocol only: which protocols make it true. `None` when it
    /// depends on something else (the transport).
    pub protocols: Option<fn(Protocol) -> bool>,
}

impl std::fmt::Debug for FlagDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlagDef").field("name", &self.name).finish()
    }
}

/// Every protocol flag, in documentation order.
pub static FLAGS: &[FlagDef] = &[
    FlagDef {
        name: "http",
        description: "HTTP entries: HTTP/1.0, HTTP/1.1, HTTP/2 and gRPC.",
        test: |e| e.protocol.is_http(),
        cost: 1,
        protocols: Some(Protocol::is_http),
    },
    FlagDef {
        name: "grpc",
        description: "gRPC calls (HTTP/2 streams with content-type application/grpc*).",
        test: |e| e.protocol == Protocol::Grpc,
        cost: 1,
        protocols: Some(|p| p == Protocol::Grpc),
    },
    FlagDef {
        name: "redis",
        description: "Redis commands and pushed messages (RESP2 and RESP3).",
        test: |e| e.protocol == Protocol::Redis,
        cost: 1,
        protocols: Some(|p| p == Protocol::Redis),
    },
    FlagDef {
        name: "kafka",
        description: "Kafka requests with their responses, and responses whose request was not captured.",
        test: |e| e.protocol == Protocol::Kafka,
        cost: 1,
        protocols: Some(|p| p == Protocol::Kafka),
    },
    FlagDef {
        name: "dns",
        description: "DNS queries and responses, over UDP and TCP.",
        test: |e| e.protocol == Protocol::Dns,
        cost: 1,
        protocols: Some(|p| p == Protocol::Dns),
    },
    FlagDef {
        name: "amqp",
        description: "AMQP 0-9-1 method frames: a method with its reply, or with its content.",
        test: |e| e.protocol == Protocol::Amqp,
        cost: 1,
        protocols: Some(|p| p == Protocol::Amqp),
    },
    FlagDef {
        name: "tls",
        description: "TLS: the handshake entry of each TLS connection (protocol tls), and entries carried in TLS and seen in plaintext: decrypted with --keylog secrets, or read from the TLS library of a process (eBPF uprobes, --tls-pid/--tls-cgroup).",
        test: |e| e.tls || e.protocol == Protocol::Tls,
        cost: 1,
        protocols: None,
    },
    FlagDef {
        name: "tcp",
        description: "Entries carried over TCP.",
        test: |e| e.transport == Transport::Tcp,
        cost: 1,
        protocols: None,
    },
    FlagDef {
        name: "udp",
        description: "Entries carried over UDP.",
        test: |e| e.transport == Transport::Udp,
        cost: 1,
        protocols: None,
    },
    FlagDef {
        name: "tcp_flow",
        description: "TCP connections (in tcp_insights, list_flows and flow_summary filters).",
        test: |e| e.protocol == Protocol::TcpFlow,
        cost: 1,
        protocols: Some(|p| p == Protocol::TcpFlow),
    },
    FlagDef {
        name: "udp_flow",
        description: "UDP conversations (in list_flows and flow_summary filters).",
        test: |e| e.protocol == Protocol::UdpFlow,
        cost: 1,
        protocols: Some(|p| p == Protocol::UdpFlow),
    },
];

/// Looks a protocol flag up by name.
pub fn flag(name: &str) -> Option<&'static FlagDef> {
    FLAGS.iter().find(|f| f.name == name)
}

// ---------------------------------------------------------------------------------------------
// Value helpers shared by the getters.

fn str_value(v: Option<Cow<'_, str>>) -> Value<'_> {
    v.map_or(Value::Null, Value::Str)
}

fn int_value(v: Option<i64>) -> Value<'static> {
    v.map_or(Value::Null, Value::Int)
}

fn float_value(v: Option<f64>) -> Value<'static> {
    v.map_or(Value::Null, Value::Float)
}

fn bool_value(v: Option<bool>) -> Value<'static> {
    v.map_or(Value::Null, Value::Bool)
}

fn ts_value(v: Option<Timestamp>) -> Value<'static> {
    v.map_or(Value::Null, |t| Value::Str(Cow::Owned(t.to_rfc3339())))
}

fn ip_value(v: Option<IpAddr>) -> Value<'static> {
    v.map_or(Value::Null, |ip| Value::Str(Cow::Owned(ip.to_string())))
}

fn list_value<'a>(acc: &ListAccess, e: &'a Entry) -> Value<'a> {
    match (acc.len)(e) {
        None => Value::Null,
        Some(n) => Value::List((0..n).filter_map(|i| (acc.item)(e, i).map(Value::Str)).collect()),
    }
}

fn map_value<'a>(acc: &MapAccess, e: &'a Entry) -> Value<'a> {
    match (acc.entries)(e) {
        None => Value::Null,
        Some(kv) => Value::Map(kv.into_iter().map(|(k, v)| (k, Value::Str(v))).collect()),
    }
}

fn borrowed(v: Option<&str>) -> Option<Cow<'_, str>> {
    v.map(Cow::Borrowed)
}

fn u64_to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The empty string of an identity field that applies to every entry.
fn empty_str(_: &Entry) -> Option<Cow<'_, str>> {
    Some(Cow::Borrowed(""))
}

// ---------------------------------------------------------------------------------------------
// Kubernetes identity helpers.

fn src_id(e: &Entry) -> Option<&crate::enrich::Identity> {
    e.peers.src.identity.as_deref()
}

fn dst_id(e: &Entry) -> Option<&crate::enrich::Identity> {
    e.peers.dst.identity.as_deref()
}

const SRC_SERVICES: ListAccess = ListAccess {
    len: |e| Some(src_id(e).map_or(0, |i| i.services.len())),
    item: |e, n| borrowed(src_id(e)?.services.get(n).map(|s| &**s)),
};

const DST_SERVICES: ListAccess = ListAccess {
    len: |e| Some(dst_id(e).map_or(0, |i| i.services.len())),
    item: |e, n| borrowed(dst_id(e)?.services.get(n).map(|s| &**s)),
};

/// Distinct non-empty values of both ends, requester first.
fn both<'a>(e: &'a Entry, f: impl Fn(&'a crate::enrich::Identity) -> Vec<&'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for v in [src_id(e), dst_id(e)].into_iter().flatten().flat_map(f) {
        if !v.is_empty() && !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn namespaces_of(e: &Entry) -> Vec<&str> {
    both(e, |i| i.namespace.as_deref().into_iter().collect())
}

fn pods_of(e: &Entry) -> Vec<&str> {
    both(e, |i| i.pod.as_deref().into_iter().collect())
}

fn services_of(e: &Entry) -> Vec<&str> {
    both(e, |i| i.services.iter().map(|s| &**s).collect())
}

fn dns_names_of(e: &Entry) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for n in [e.peers.src_dns.as_deref(), e.peers.dst_dns.as_deref()]
        .into_iter()
        .flatten()
    {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

const DNS_RESOLUTIONS: ListAccess = ListAccess {
    len: |e| Some(dns_names_of(e).len()),
    item: |e, n| borrowed(dns_names_of(e).get(n).copied()),
};

const BOTH_NAMESPACES: ListAccess = ListAccess {
    len: |e| Some(namespaces_of(e).len()),
    item: |e, n| borrowed(namespaces_of(e).get(n).copied()),
};

const BOTH_PODS: ListAccess = ListAccess {
    len: |e| Some(pods_of(e).len()),
    item: |e, n| borrowed(pods_of(e).get(n).copied()),
};

const BOTH_SERVICES: ListAccess = ListAccess {
    len: |e| Some(services_of(e).len()),
    item: |e, n| borrowed(services_of(e).get(n).copied()),
};

fn id_map<'a>(m: Option<&'a crate::enrich::index::StrMap>) -> Vec<(Cow<'a, str>, Cow<'a, str>)> {
    m.into_iter()
        .flatten()
        .map(|(k, v)| (Cow::Borrowed(&**k), Cow::Borrowed(&**v)))
        .collect()
}

const SRC_LABELS: MapAccess = MapAccess {
    len: |e| Some(src_id(e).map_or(0, |i| i.labels.len())),
    get: |e, k| borrowed(src_id(e)?.labels.get(k).map(|v| &**v)),
    entries: |e| Some(id_map(src_id(e).map(|i| &*i.labels))),
};

const DST_LABELS: MapAccess = MapAccess {
    len: |e| Some(dst_id(e).map_or(0, |i| i.labels.len())),
    get: |e, k| borrowed(dst_id(e)?.labels.get(k).map(|v| &**v)),
    entries: |e| Some(id_map(dst_id(e).map(|i| &*i.labels))),
};

const SRC_ANNOTATIONS: MapAccess = MapAccess {
    len: |e| Some(src_id(e).map_or(0, |i| i.annotations.len())),
    get: |e, k| borrowed(src_id(e)?.annotations.get(k).map(|v| &**v)),
    entries: |e| Some(id_map(src_id(e).map(|i| &*i.annotations))),
};

const DST_ANNOTATIONS: MapAccess = MapAccess {
    len: |e| Some(dst_id(e).map_or(0, |i| i.annotations.len())),
    get: |e, k| borrowed(dst_id(e)?.annotations.get(k).map(|v| &**v)),
    entries: |e| Some(id_map(dst_id(e).map(|i| &*i.annotations))),
};

// ---------------------------------------------------------------------------------------------
// HTTP helpers: header, cookie and query lookups straight from the stored bytes.

fn request(e: &Entry) -> Option<&HttpMessage> {
    e.http().and_then(|h| h.request.as_ref())
}

fn response(e: &Entry) -> Option<&HttpMessage> {
    e.http().and_then(|h| h.response.as_ref())
}

fn trim_bytes(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if first.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    b
}

fn lossy(b: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// The header lines of a head (after the start line, up to the empty line), without CR.
fn header_lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    head.split(|&b| b == b'\n')
        .skip(1)
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .take_while(|l| !l.is_empty())
}

/// True when some header continues on the next line (obsolete folding): the borrowed readers
/// then defer to [`HttpMessage::headers`].
fn has_folding(head: &[u8]) -> bool {
    header_lines(head).any(|l| l[0] == b' ' || l[0] == b'\t')
}

/// Header (name, value) pairs as borrowed bytes, trimmed like [`HttpMessage::headers`]. Only
/// valid when the head has no folded lines.
fn raw_pairs(head: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    header_lines(head).filter_map(|line| {
        let colon = memchr::memchr(b':', line)?;
        Some((trim_bytes(&line[..colon]), trim_bytes(&line[colon + 1..])))
    })
}

/// Every value of headers named `name` (case-insensitive), joined with ", " when repeated.
fn header_value<'a>(m: &'a HttpMessage, name: &str) -> Option<Cow<'a, str>> {
    // One pass over the borrowed lines; a folded line (rare) sends us to the allocating parser.
    let mut out: Option<Cow<'a, str>> = None;
    for line in header_lines(&m.head) {
        if line[0] == b' ' || line[0] == b'\t' {
            return header_value_folded(m, name);
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        if trim_bytes(&line[..colon]).eq_ignore_ascii_case(name.as_bytes()) {
            let v = trim_bytes(&line[colon + 1..]);
            out = Some(match out {
                None => lossy(v),
                Some(prev) => Cow::Owned(format!("{prev}, {}", lossy(v))),
            });
        }
    }
    out
}

#[cold]
fn header_value_folded<'a>(m: &'a HttpMessage, name: &str) -> Option<Cow<'a, str>> {
    let mut out: Option<String> = None;
    for (n, v) in m.headers() {
        if n.eq_ignore_ascii_case(name) {
            match &mut out {
                None => out = Some(v),
                Some(o) => {
                    o.push_str(", ");
                    o.push_str(&v);
                }
            }
        }
    }
    out.map(Cow::Owned)
}

/// Headers as (lower-cased name, value), repeated names joined with ", ", in first-seen order.
fn header_entries(m: &HttpMessage) -> Vec<(Cow<'static, str>, Cow<'static, str>)> {
    let mut out: Vec<(Cow<'static, str>, Cow<'static, str>)> = Vec::new();
    for (n, v) in m.headers() {
        let n = n.to_ascii_lowercase();
        match out.iter_mut().find(|(k, _)| **k == n) {
            Some((_, prev)) => {
                let p = prev.to_mut();
                p.push_str(", ");
                p.push_str(&v);
            }
            None => out.push((Cow::Owned(n), Cow::Owned(v))),
        }
    }
    out
}

/// Number of distinct header names (case-insensitive), without allocating.
fn header_count(m: &HttpMessage) -> usize {
    if has_folding(&m.head) {
        return header_entries(m).len();
    }
    let mut n = 0;
    for (i, (name, _)) in raw_pairs(&m.head).enumerate() {
        if !raw_pairs(&m.head)
            .take(i)
            .any(|(prev, _)| prev.eq_ignore_ascii_case(name))
        {
            n += 1;
        }
    }
    n
}

/// `name=value` pairs of one `Cookie` header value.
fn cookie_pairs(v: &str) -> impl Iterator<Item = (&str, &str)> {
    v.split(';').filter_map(|p| {
        let p = p.trim();
        let (k, v) = p.split_once('=')?;
        Some((k.trim(), v.trim().trim_matches('"')))
    })
}

/// A request cookie, from every `Cookie` header.
fn request_cookie<'a>(m: &'a HttpMessage, name: &str) -> Option<Cow<'a, str>> {
    if has_folding(&m.head) {
        return request_cookie_entries(m)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v);
    }
    raw_pairs(&m.head)
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie"))
        .find_map(|(_, v)| {
            let v = std::str::from_utf8(v).ok()?;
            cookie_pairs(v).find(|(k, _)| *k == name).map(|(_, v)| Cow::Borrowed(v))
        })
}

fn request_cookie_entries(m: &HttpMessage) -> Vec<(Cow<'static, str>, Cow<'static, str>)> {
    let mut out: Vec<(Cow<'static, str>, Cow<'static, str>)> = Vec::new();
    for (n, v) in m.headers() {
        if n.eq_ignore_ascii_case("cookie") {
            for (k, v) in cookie_pairs(&v) {
                if !out.iter().any(|(x, _)| x == k) {
                    out.push((Cow::Owned(k.to_string()), Cow::Owned(v.to_string())));
                }
            }
        }
    }
    out
}

/// Response cookies: the first `name=value` of each `Set-Cookie` header.
fn response_cookie_entries(m: &HttpMessage) -> Vec<(Cow<'static, str>, Cow<'static, str>)> {
    let mut out: Vec<(Cow<'static, str>, Cow<'static, str>)> = Vec::new();
    for (n, v) in m.headers() {
        if n.eq_ignore_ascii_case("set-cookie")
            && let Some((k, v)) = cookie_pairs(&v).next()
            && !out.iter().any(|(x, _)| x == k)
        {
            out.push((Cow::Owned(k.to_string()), Cow::Owned(v.to_string())));
        }
    }
    out
}

fn response_cookie<'a>(m: &'a HttpMessage, name: &str) -> Option<Cow<'a, str>> {
    if has_folding(&m.head) {
        return response_cookie_entries(m)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v);
    }
    raw_pairs(&m.head)
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"set-cookie"))
        .find_map(|(_, v)| {
            let v = std::str::from_utf8(v).ok()?;
            let (k, val) = cookie_pairs(v).next()?;
            (k == name).then_some(Cow::Borrowed(val))
        })
}

/// Decodes `%XX` escapes and `+` (as a space) of a query component; borrows when there is none.
fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// The query string of a request-target (after `?`, before `#`).
fn query_of(path: &str) -> Option<&str> {
    let q = path.split_once('?')?.1;
    Some(q.split_once('#').map_or(q, |(q, _)| q))
}

/// Raw (key, value) pairs of a query string; a key without `=` has an empty value.
fn query_pairs(q: &str) -> impl Iterator<Item = (&str, &str)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

fn http_path(e: &Entry) -> Option<&str> {
    e.http_path()
}

fn query_get<'a>(e: &'a Entry, key: &str) -> Option<Cow<'a, str>> {
    let q = query_of(http_path(e)?)?;
    query_pairs(q)
        .find(|(k, _)| percent_decode(k) == key)
        .map(|(_, v)| percent_decode(v))
}

fn query_entries(e: &Entry) -> Option<Vec<(Cow<'_, str>, Cow<'_, str>)>> {
    let path = http_path(e)?;
    let mut out: Vec<(Cow<'_, str>, Cow<'_, str>)> = Vec::new();
    if let Some(q) = query_of(path) {
        for (k, v) in query_pairs(q) {
            let k = percent_decode(k);
            if !out.iter().any(|(x, _)| *x == k) {
                out.push((k, percent_decode(v)));
            }
        }
    }
    Some(out)
}

fn query_len(e: &Entry) -> Option<usize> {
    query_entries(e).map(|v| v.len())
}

/// The request path without its query string (the KFL2 meaning of "path").
fn path_only(p: &str) -> &str {
    p.split(['?', '#']).next().unwrap_or(p)
}

/// The request (or response) of an HTTP/2 entry.
fn h2_message(e: &Entry, request: bool) -> Option<&H2Message> {
    let s = e.h2()?;
    if request {
        s.request.as_ref()
    } else {
        s.response.as_ref()
    }
}

/// HTTP/2 header fields without the pseudo-fields (those are `method`, `path`, `status`, …).
fn h2_fields(m: &H2Message) -> impl Iterator<Item = (&str, &str)> {
    m.headers
        .iter()
        .filter(|(n, _)| !n.starts_with(':'))
        .map(|(n, v)| (&**n, &**v))
}

fn h2_header_value<'a>(m: &'a H2Message, name: &str) -> Option<Cow<'a, str>> {
    let mut out: Option<Cow<'a, str>> = None;
    for (_, v) in h2_fields(m).filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
        out = Some(match out {
            None => Cow::Borrowed(v),
            Some(prev) => Cow::Owned(format!("{prev}, {v}")),
        });
    }
    out
}

fn h2_header_entries(m: &H2Message) -> Vec<(Cow<'static, str>, Cow<'static, str>)> {
    let mut out: Vec<(Cow<'static, str>, Cow<'static, str>)> = Vec::new();
    for (n, v) in h2_fields(m) {
        let n = n.to_ascii_lowercase();
        match out.iter_mut().find(|(k, _)| **k == n) {
            Some((_, prev)) => {
                let p = prev.to_mut();
                p.push_str(", ");
                p.push_str(v);
            }
            None => out.push((Cow::Owned(n), Cow::Owned(v.to_string()))),
        }
    }
    out
}

const REQUEST_HEADERS: MapAccess = MapAccess {
    len: |e| {
        request(e)
            .map(header_count)
            .or_else(|| h2_message(e, true).map(|m| h2_header_entries(m).len()))
    },
    get: |e, k| match request(e) {
        Some(m) => header_value(m, k),
        None => h2_header_value(h2_message(e, true)?, k),
    },
    entries: |e| {
        request(e)
            .map(header_entries)
            .or_else(|| h2_message(e, true).map(h2_header_entries))
    },
};

const RESPONSE_HEADERS: MapAccess = MapAccess {
    len: |e| {
        response(e)
            .map(header_count)
            .or_else(|| h2_message(e, false).map(|m| h2_header_entries(m).len()))
    },
    get: |e, k| match response(e) {
        Some(m) => header_value(m, k),
        None => h2_header_value(h2_message(e, false)?, k),
    },
    entries: |e| {
        response(e)
            .map(header_entries)
            .or_else(|| h2_message(e, false).map(h2_header_entries))
    },
};

const REQUEST_COOKIES: MapAccess = MapAccess {
    len: |e| request(e).map(|m| request_cookie_entries(m).len()),
    get: |e, k| request_cookie(request(e)?, k),
    entries: |e| request(e).map(request_cookie_entries),
};

const RESPONSE_COOKIES: MapAccess = MapAccess {
    len: |e| response(e).map(|m| response_cookie_entries(m).len()),
    get: |e, k| response_cookie(response(e)?, k),
    entries: |e| response(e).map(response_cookie_entries),
};

const QUERY_STRING: MapAccess = MapAccess {
    len: query_len,
    get: query_get,
    entries: query_entries,
};

// ---------------------------------------------------------------------------------------------
// Redis and DNS lists.

const REDIS_ARGS: ListAccess = ListAccess {
    len: |e| e.redis().map(|r| r.args.len()),
    item: |e, i| borrowed(e.redis()?.args.get(i).map(|a| &**a)),
};

const KAFKA_TOPICS: ListAccess = ListAccess {
    len: |e| e.kafka().map(|k| k.topics.len()),
    item: |e, i| borrowed(e.kafka()?.topics.get(i).map(|t| &**t)),
};

const KAFKA_PARTITIONS: ListAccess = ListAccess {
    len: |e| e.kafka().map(|k| k.partition_numbers().len()),
    item: |e, i| Some(Cow::Owned(e.kafka()?.partition_numbers().get(i)?.to_string())),
};

const KAFKA_ERRORS: ListAccess = ListAccess {
    len: |e| e.kafka().map(|k| k.errors.len()),
    item: |e, i| Some(crate::dissect::kafka::errors::error_label(*e.kafka()?.errors.get(i)?)),
};

const TLS_ALPN_OFFERED: ListAccess = ListAccess {
    len: |e| e.tls_handshake().map(|t| t.alpn_offered.len()),
    item: |e, i| borrowed(e.tls_handshake()?.alpn_offered.get(i).map(|a| &**a)),
};

const TLS_ALERTS: ListAccess = ListAccess {
    len: |e| e.tls_handshake().map(|t| t.alerts.len()),
    item: |e, i| Some(e.tls_handshake()?.alerts.get(i)?.name()),
};

const TLS_CERT_SANS: ListAccess = ListAccess {
    len: |e| {
        e.tls_handshake()
            .map(|t| t.certificate.as_ref().map_or(0, |c| c.sans.len()))
    },
    item: |e, i| borrowed(tls_cert(e)?.sans.get(i).map(|a| &**a)),
};

/// A number of the connection's handshake: the `tls` entry's own, or the copy a decrypted L7
/// entry carries ([`Entry::tls_conn`]).
fn tls_num(
    e: &Entry,
    hs: fn(&crate::dissect::tls::TlsEntry) -> Option<u16>,
    conn: fn(&crate::dissect::tls::TlsConn) -> Option<u16>,
) -> Option<u16> {
    match (e.tls_handshake(), e.tls_conn.as_deref()) {
        (Some(t), _) => hs(t),
        (None, Some(c)) => conn(c),
        _ => None,
    }
}

/// A string field of the connection's handshake, borrowed from either place.
fn tls_str<'a>(
    e: &'a Entry,
    hs: fn(&'a crate::dissect::tls::TlsEntry) -> Option<&'a str>,
    conn: fn(&'a crate::dissect::tls::TlsConn) -> Option<&'a str>,
) -> Option<&'a str> {
    match (e.tls_handshake(), e.tls_conn.as_deref()) {
        (Some(t), _) => hs(t),
        (None, Some(c)) => conn(c),
        _ => None,
    }
}

fn tls_cert(e: &Entry) -> Option<&crate::dissect::tls::TlsCertificate> {
    e.tls_handshake()?.certificate.as_deref()
}

/// A certificate time (seconds since the epoch; before 1970 reads as 1970).
fn secs_ts(secs: i64) -> Timestamp {
    Timestamp::from_secs_nanos(u64::try_from(secs).unwrap_or(0), 0)
}

const AMQP_METHODS: ListAccess = ListAccess {
    len: |e| e.amqp().map(|a| a.methods.len()),
    item: |e, i| borrowed(e.amqp()?.methods.get(i).map(|m| &**m)),
};

fn amqp_headers(e: &Entry) -> Option<&[(Box<str>, FieldValue)]> {
    e.amqp()?.properties.as_ref()?.headers.as_deref()
}

fn amqp_header_text(v: &FieldValue) -> Cow<'_, str> {
    match v {
        FieldValue::Str { text, len } if text.len() as u64 == u64::from(*len) => Cow::Borrowed(&**text),
        v => Cow::Owned(v.to_text()),
    }
}

/// AMQP message headers: present (possibly empty) on entries with content.
const AMQP_HEADERS: MapAccess = MapAccess {
    len: |e| {
        let a = e.amqp()?;
        a.body_size.map(|_| amqp_headers(e).map_or(0, <[_]>::len))
    },
    get: |e, k| {
        amqp_headers(e)?
            .iter()
            .find(|(n, _)| **n == *k)
            .map(|(_, v)| amqp_header_text(v))
    },
    entries: |e| {
        e.amqp()?.body_size?;
        Some(
            amqp_headers(e)
                .unwrap_or_default()
                .iter()
                .map(|(k, v)| (Cow::Borrowed(&**k), amqp_header_text(v)))
                .collect(),
        )
    },
};

fn amqp_property<'a>(e: &'a Entry, get: fn(&Properties) -> &Option<Box<str>>) -> Option<Cow<'a, str>> {
    borrowed(get(e.amqp()?.properties.as_deref()?).as_deref())
}

const DNS_QUESTIONS: ListAccess = ListAccess {
    len: |e| e.dns().map(|d| d.questions.len()),
    item: |e, i| borrowed(e.dns()?.questions.get(i).map(|q| q.name.as_str())),
};

const DNS_QUESTION_TYPES: ListAccess = ListAccess {
    len: |e| e.dns().map(|d| d.questions.len()),
    item: |e, i| {
        let t = e.dns()?.questions.get(i)?.qtype;
        Some(dns_parse::type_name(t).map_or_else(|| Cow::Owned(format!("TYPE{t}")), Cow::Borrowed))
    },
};

const DNS_ANSWERS: ListAccess = ListAccess {
    len: |e| e.dns()?.response.as_ref().map(|r| r.answers.len()),
    item: |e, i| borrowed(e.dns()?.response.as_ref()?.answers.get(i).map(|a| a.data.as_str())),
};

// ---------------------------------------------------------------------------------------------
// The registry.

/// Builds a [`FieldDef`] whose projection getter and filter reader share one expression.
macro_rules! field {
    (@def $cost:literal, $name:literal, [$($alias:literal),*], $proto:expr, $ty:ident, $desc:expr, $ex:literal,
     $access:expr, $get:expr) => {
        FieldDef {
            name: $name,
            aliases: &[$($alias),*],
            ty: FieldType::$ty,
            protocol: $proto,
            description: $desc,
            example: $ex,
            get: $get,
            access: $access,
            cost: $cost,
        }
    };
    ($cost:literal, $name:literal, [$($alias:literal),*], $proto:expr, Str, $desc:expr, $ex:literal, |$e:ident| $body:expr) => {
        field!(@def $cost, $name, [$($alias),*], $proto, String, $desc, $ex,
            Access::Str(|$e| $body), |$e| str_value($body))
    };
    ($cost:literal, $name:literal, [$($alias:literal),*], $proto:expr, Ip, $desc:expr, $ex:literal, |$e:ident| $body:expr) => {
        field!(@def $cost, $name, [$($alias),*], $proto, String, $desc, $ex,
            Access::Ip(|$e| $body), |$e| ip_value($body))
    };
    ($cost:literal, $name:literal, [$($alias:literal),*], $proto:expr, Int, $desc:expr, $ex:literal, |$e:ident| $body:expr) => {
        field!(@def $cost, $name, [$($alias),*], $proto, Int, $desc, $ex,
            Access::Int(|$e| $body), |$e| int_value($body))
    };
    ($cost:literal, $name:literal, [$($alias:literal),*], $proto:expr, Float, $desc:expr, $ex:literal, |$e:ident| $body:expr) => {
        field!(@def $cost, $name, [$($alias),*], $proto, Float, $desc, $ex,
            Access::Float(|$e| $body), |$e| float_value($body))
    };
    ($cost:literal, $name:literal, [$($alias:literal),*], $proto:expr, Bool, $desc:expr, $ex:literal, |$e:ident| $body:expr) => {
        field!(@def $cost, $name, [$($alias),*], $proto, Bool, $desc, $ex,
            Access::Bool(|$e| $body), |$e| bool_value($body))
    };
    ($cost:literal, $name:literal, [$($alias:literal),*], $proto:expr, Timestamp, $desc:expr, $ex:literal, |$e:ident| $body:expr) => {
        field!(@def $cost, $name, [$($alias),*], $proto, Timestamp, $desc, $ex,
            Access::Timestamp(|$e| $body), |$e| ts_value($body))
    };
    ($cost:literal, $name:literal, [$($alias:literal),*], $proto:expr, List, $desc:expr, $ex:literal, $acc:ident) => {
        field!(@def $cost, $name, [$($alias),*], $proto, StringList, $desc, $ex,
            Access::StrList($acc), |e| list_value(&$acc, e))
    };
    ($cost:literal, $name:literal, [$($alias:literal),*], $proto:expr, Map, $desc:expr, $ex:literal, $acc:ident) => {
        field!(@def $cost, $name, [$($alias),*], $proto, Map, $desc, $ex,
            Access::StrMap($acc), |e| map_value(&$acc, e))
    };
}

/// A string of one end's Kubernetes identity: `""` when the end is unresolved or the identity
/// lacks it.
macro_rules! ident_str {
    ($name:literal, [$($alias:literal),*], $side:ident, $desc:literal, $ex:literal, |$i:ident| $body:expr) => {
        field!(1, $name, [$($alias),*], None, Str, concat!($desc, " Empty (\"\") when unresolved."), $ex,
            |e| Some(Cow::Borrowed($side(e).and_then(|$i: &crate::enrich::Identity| $body).unwrap_or(""))))
    };
}

/// A field not resolved yet (the capturing node and process come with live capture): `""`.
macro_rules! identity_str {
    ($name:literal, [$($alias:literal),*], $desc:literal, $ex:literal) => {
        field!(0, $name, [$($alias),*], None, Str,
            concat!($desc, " Empty (\"\") until Kubernetes identities are resolved (the Kubernetes-identity issue)."),
            $ex, |e| empty_str(e))
    };
}

/// Every field, in documentation order.
/// The flow record behind a transient flow entry (flow filters).
fn flow(e: &Entry) -> Option<&crate::flows::FlowRecord> {
    crate::flows::FlowRecord::of(e)
}

/// An integer TCP metric of a flow record.
macro_rules! flow_int {
    ($name:literal, $desc:expr, $ex:literal, |$m:ident| $body:expr) => {
        field!(1, $name, [], Some("flow"), Int, $desc, $ex, |e| flow(e).map(|f| {
            let $m = &f.metrics;
            u64_to_i64($body)
        }))
    };
}

pub static FIELDS: &[FieldDef] = &[
    // --- every entry ---------------------------------------------------------------------------
    field!(
        4,
        "id",
        [],
        None,
        Str,
        "Stable entry id; pass it to get_payload.",
        "\"42\"",
        |e| Some(Cow::Owned(e.id.to_string()))
    ),
    field!(
        1,
        "timestamp",
        [],
        None,
        Timestamp,
        "Capture time of the first request byte (RFC 3339, UTC, microseconds). In filters compare it with timestamp(\"…\") or now() - duration(\"…\").",
        "\"2026-01-15T10:00:01.250000Z\"",
        |e| Some(e.ts)
    ),
    field!(
        1,
        "protocol",
        [],
        None,
        Str,
        "Application protocol: http/1.0, http/1.1, http/2, grpc.",
        "\"http/1.1\"",
        |e| Some(Cow::Borrowed(e.protocol.name()))
    ),
    field!(
        1,
        "transport",
        [],
        None,
        Str,
        "Transport protocol: tcp or udp.",
        "\"tcp\"",
        |e| Some(Cow::Borrowed(e.transport.name()))
    ),
    field!(
        1,
        "src.ip",
        ["src_ip"],
        None,
        Ip,
        "IP address of the requester (client).",
        "\"10.42.0.12\"",
        |e| Some(e.src.ip())
    ),
    field!(
        1,
        "src.port",
        ["src_port"],
        None,
        Int,
        "Port of the requester (client).",
        "43512",
        |e| Some(i64::from(e.src.port()))
    ),
    field!(
        1,
        "dst.ip",
        ["dst_ip"],
        None,
        Ip,
        "IP address of the responder (server).",
        "\"10.42.1.7\"",
        |e| Some(e.dst.ip())
    ),
    field!(
        1,
        "dst.port",
        ["dst_port"],
        None,
        Int,
        "Port of the responder (server).",
        "8080",
        |e| Some(i64::from(e.dst.port()))
    ),
    field!(
        1,
        "flow_id",
        [],
        None,
        Int,
        "Id of the transport connection that carried the entry.",
        "7",
        |e| Some(u64_to_i64(e.flow_id))
    ),
    field!(
        1,
        "elapsed_ms",
        [],
        None,
        Float,
        "First request byte to last response byte, in milliseconds; null without a response.",
        "12.5",
        |e| e.elapsed_us.map(|us| us as f64 / 1000.0)
    ),
    field!(
        1,
        "elapsed_time",
        [],
        None,
        Int,
        "First request byte to last response byte, in microseconds (KFL2); null (0 in filters) without a response.",
        "12500",
        |e| e.elapsed_us.map(u64_to_i64)
    ),
    field!(
        8,
        "summary",
        [],
        None,
        Str,
        "One-line description (payload text escaped and cut).",
        "\"GET api.shop/orders/7 → 200 OK (3.1 ms)\"",
        |e| Some(Cow::Owned(e.summary()))
    ),
    // --- HTTP ----------------------------------------------------------------------------------
    field!(
        2,
        "method",
        ["request.method"],
        Some("http"),
        Str,
        "HTTP request method.",
        "\"POST\"",
        |e| borrowed(e.http_method())
    ),
    field!(
        2,
        "host",
        ["request.host"],
        Some("http"),
        Str,
        "Host header as sent (port included when present).",
        "\"orders.shop:8080\"",
        |e| borrowed(e.http_host())
    ),
    field!(
        2,
        "path",
        ["request.path", "url"],
        Some("http"),
        Str,
        "Request-target as on the wire (query string included).",
        "\"/orders/123?expand=items\"",
        |e| borrowed(http_path(e))
    ),
    field!(
        2,
        "path_only",
        ["request.path_only"],
        Some("http"),
        Str,
        "Request-target without its query string.",
        "\"/orders/123\"",
        |e| borrowed(http_path(e).map(path_only))
    ),
    field!(
        2,
        "status",
        ["response.status"],
        Some("http"),
        Int,
        "Final HTTP status; null (0 in filters) when there was no response.",
        "503",
        |e| e.http_status().map(i64::from)
    ),
    field!(
        2,
        "status_code",
        [],
        None,
        Int,
        "KFL2's status: the HTTP status of HTTP entries, the response code (rcode) of DNS entries; null (0 in filters) without a response.",
        "503",
        |e| e
            .http_status()
            .map(i64::from)
            .or_else(|| e.dns().and_then(|d| d.rcode()).map(i64::from))
    ),
    field!(
        2,
        "status_text",
        ["response.reason"],
        Some("http"),
        Str,
        "Reason phrase of the final status line.",
        "\"Service Unavailable\"",
        |e| borrowed(e.http().and_then(|h| h.reason.as_deref()))
    ),
    field!(
        1,
        "http_version",
        [],
        Some("http"),
        Str,
        "HTTP version: HTTP/1.0 or HTTP/1.1.",
        "\"HTTP/1.1\"",
        |e| match e.protocol {
            Protocol::Http10 => Some(Cow::Borrowed("HTTP/1.0")),
            Protocol::Http11 => Some(Cow::Borrowed("HTTP/1.1")),
            Protocol::Http2 | Protocol::Grpc => Some(Cow::Borrowed("HTTP/2")),
            _ => None,
        }
    ),
    field!(
        4,
        "request.headers",
        ["request_headers"],
        Some("http"),
        Map,
        "Request headers by lower-cased name (repeated headers joined with \", \"); index with request.headers[\"content-type\"]. Null ({} in filters) without a captured request.",
        "{\"content-type\": \"application/json\"}",
        REQUEST_HEADERS
    ),
    field!(
        4,
        "response.headers",
        ["response_headers"],
        Some("http"),
        Map,
        "Response headers by lower-cased name (repeated headers joined with \", \"). Null ({} in filters) without a response.",
        "{\"server\": \"envoy\"}",
        RESPONSE_HEADERS
    ),
    field!(
        4,
        "request.cookies",
        ["request_cookies"],
        Some("http"),
        Map,
        "Cookies of the request's Cookie headers.",
        "{\"session\": \"abc123\"}",
        REQUEST_COOKIES
    ),
    field!(
        4,
        "response.cookies",
        ["response_cookies"],
        Some("http"),
        Map,
        "Cookies set by the response (the name=value of each Set-Cookie).",
        "{\"token\": \"xyz\"}",
        RESPONSE_COOKIES
    ),
    field!(
        3,
        "query_string",
        ["request.query"],
        Some("http"),
        Map,
        "Query parameters of the request-target, percent-decoded (the first of repeated keys).",
        "{\"id\": \"123\"}",
        QUERY_STRING
    ),
    field!(
        2,
        "request_headers_size",
        ["request.headers_size"],
        Some("http"),
        Int,
        "Bytes of the request line and header block; null without a request.",
        "412",
        |e| request(e).map(|m| u64_to_i64(m.head.len() as u64))
    ),
    field!(
        2,
        "response_headers_size",
        ["response.headers_size"],
        Some("http"),
        Int,
        "Bytes of the status line and header block; null without a response.",
        "230",
        |e| response(e).map(|m| u64_to_i64(m.head.len() as u64))
    ),
    field!(
        2,
        "request_body_size",
        ["request.body_size"],
        Some("http"),
        Int,
        "Request entity-body bytes after de-chunking, before content decoding; 0 without a body.",
        "512",
        |e| e.request_body_size().map(u64_to_i64)
    ),
    field!(
        2,
        "response_body_size",
        ["response.body_size"],
        Some("http"),
        Int,
        "Response entity-body bytes after de-chunking, before content decoding; null without a response.",
        "2048",
        |e| e.response_body_size().map(u64_to_i64)
    ),
    field!(
        0,
        "h2_stream_id",
        [],
        Some("http"),
        Int,
        "HTTP/2 stream id (null for HTTP/1.x).",
        "1",
        |e| e.h2().map(|s| i64::from(s.stream_id))
    ),
    // --- gRPC ----------------------------------------------------------------------------------
    field!(
        2,
        "grpc_service",
        [],
        Some("grpc"),
        Str,
        "gRPC service (`pkg.Service`), split from :path.",
        "\"shop.Orders\"",
        |e| borrowed(e.grpc().map(|g| &*g.service))
    ),
    field!(
        2,
        "grpc_method",
        [],
        Some("grpc"),
        Str,
        "gRPC method (the RPC name), split from :path; `method` is the HTTP method (POST).",
        "\"CreateOrder\"",
        |e| borrowed(e.grpc().map(|g| &*g.method))
    ),
    field!(
        2,
        "grpc_status",
        ["response.status.code"],
        Some("grpc"),
        Int,
        "grpc-status code from the trailers (or a trailers-only response); null (0 in filters) when none was seen.",
        "14",
        |e| e.grpc().and_then(|g| g.status).map(i64::from)
    ),
    field!(
        2,
        "grpc_message",
        [],
        Some("grpc"),
        Str,
        "grpc-message, percent-decoded.",
        "\"upstream connect error\"",
        |e| borrowed(e.grpc().and_then(|g| g.message.as_deref()))
    ),
    field!(
        2,
        "grpc_request_messages",
        [],
        Some("grpc"),
        Int,
        "Length-prefixed messages the client sent (streaming calls send many).",
        "1",
        |e| e.grpc().map(|g| u64_to_i64(g.request_messages))
    ),
    field!(
        2,
        "grpc_response_messages",
        [],
        Some("grpc"),
        Int,
        "Length-prefixed messages the server sent.",
        "1",
        |e| e.grpc().map(|g| u64_to_i64(g.response_messages))
    ),
    // --- Redis ---------------------------------------------------------------------------------
    field!(
        2,
        "redis_command",
        ["redis_type"],
        Some("redis"),
        Str,
        "Redis command name, upper-cased; null for a pushed message (pub/sub delivery, RESP3 push) or a reply whose command was not captured.",
        "\"GET\"",
        |e| borrowed(e.redis().and_then(|r| r.command.as_deref()))
    ),
    field!(
        2,
        "redis_key",
        [],
        Some("redis"),
        Str,
        "First argument of the command (usually the key), lossy UTF-8, cut at redis_value_bytes.",
        "\"session:42\"",
        |e| borrowed(e.redis().and_then(|r| r.key()))
    ),
    field!(
        2,
        "redis_args",
        [],
        Some("redis"),
        List,
        "Arguments after the command name (the first redis_max_args, each cut at redis_value_bytes); passwords of AUTH, HELLO … AUTH, MIGRATE and CONFIG SET requirepass are redacted.",
        "[\"session:42\", \"EX\", \"60\"]",
        REDIS_ARGS
    ),
    field!(
        2,
        "redis_reply_type",
        [],
        Some("redis"),
        Str,
        "Type of the reply: simple_string, error, integer, bulk_string, null_bulk_string, array, null_array, or the RESP3 map, set, push, double, boolean, big_number, verbatim_string, null, blob_error. A reply starting with an attribute has the type of what follows. Null without a reply.",
        "\"bulk_string\"",
        |e| e.redis().and_then(|r| r.reply_type()).map(Cow::Borrowed)
    ),
    field!(
        2,
        "redis_reply",
        [],
        Some("redis"),
        Str,
        "Text of a scalar reply (status, error, number) or the first bytes of a string reply; null for aggregates and without a reply.",
        "\"OK\"",
        |e| borrowed(e.redis().and_then(|r| r.reply.as_ref()).and_then(|r| r.text.as_deref()))
    ),
    field!(
        2,
        "redis_error",
        [],
        Some("redis"),
        Str,
        "Error text of an error reply (\"WRONGTYPE Operation against a key …\").",
        "\"ERR unknown command\"",
        |e| borrowed(e.redis().and_then(|r| r.error()))
    ),
    field!(
        2,
        "redis_channel",
        [],
        Some("redis"),
        Str,
        "Pub/sub channel: of PUBLISH and (P|S)SUBSCRIBE commands, and of delivered messages.",
        "\"orders\"",
        |e| borrowed(e.redis().and_then(|r| r.channel()))
    ),
    field!(
        2,
        "redis_payload",
        [],
        Some("redis"),
        Str,
        "Pub/sub message: of a PUBLISH command or a delivered message (cut at redis_value_bytes).",
        "\"order 42 created\"",
        |e| borrowed(e.redis().and_then(|r| r.payload()))
    ),
    // --- Kafka ---------------------------------------------------------------------------------
    field!(
        2,
        "kafka_api_key",
        [],
        Some("kafka"),
        Int,
        "Request api key; null for a response whose request was not captured.",
        "0",
        |e| e.kafka().and_then(|k| k.api_key).map(i64::from)
    ),
    field!(
        2,
        "kafka_api_key_name",
        [],
        Some("kafka"),
        Str,
        "Api key name in Kubeshark's upper-snake spelling (PRODUCE, FETCH, API_VERSIONS, METADATA, LIST_OFFSETS).",
        "\"PRODUCE\"",
        |e| e.kafka().and_then(|k| k.api_name()).map(Cow::Borrowed)
    ),
    field!(
        2,
        "kafka_api_version",
        [],
        Some("kafka"),
        Int,
        "Request api version; null without a request.",
        "9",
        |e| e.kafka().and_then(|k| k.api_version).map(i64::from)
    ),
    field!(
        2,
        "kafka_correlation_id",
        [],
        Some("kafka"),
        Int,
        "Correlation id that pairs the request with its response.",
        "17",
        |e| e.kafka().map(|k| i64::from(k.correlation_id))
    ),
    field!(
        2,
        "kafka_client_id",
        [],
        Some("kafka"),
        Str,
        "Client id of the request header.",
        "\"payment-processor\"",
        |e| borrowed(e.kafka().and_then(|k| k.client_id.as_deref()))
    ),
    field!(
        2,
        "kafka_topics",
        [],
        Some("kafka"),
        List,
        "Topic names the request names (Produce < v13, Fetch < v13, ListOffsets, Metadata, OffsetCommit < v10, OffsetFetch < v10, CreateTopics, DeleteTopics, DeleteRecords, OffsetForLeaderEpoch, TxnOffsetCommit), in order, without repeats (kafka_max_list). Topics given by id are not names and are left out.",
        "[\"orders\"]",
        KAFKA_TOPICS
    ),
    field!(
        2,
        "kafka_partition",
        [],
        Some("kafka"),
        Int,
        "First partition index the request names (Produce, Fetch, ListOffsets, OffsetCommit, OffsetFetch, DeleteRecords, OffsetForLeaderEpoch, TxnOffsetCommit); null when it names none.",
        "0",
        |e| e
            .kafka()
            .and_then(|k| k.partitions.first())
            .map(|p| i64::from(p.partition))
    ),
    field!(
        3,
        "kafka_partitions",
        [],
        Some("kafka"),
        List,
        "Partition indexes the request names, as decimal strings, in order, without repeats (of all its topics; kafka_max_list).",
        "[\"0\", \"3\"]",
        KAFKA_PARTITIONS
    ),
    field!(
        2,
        "kafka_error",
        [],
        Some("kafka"),
        Str,
        "Name of the first non-zero error code of the response (per partition, topic or group, or top level), as Kafka spells it; UNKNOWN_ERROR_<code> for a code Kafka does not define. Null when the response has no error or was not decoded.",
        "\"NOT_LEADER_OR_FOLLOWER\"",
        |e| e
            .kafka()
            .and_then(|k| k.errors.first())
            .map(|&c| crate::dissect::kafka::errors::error_label(c))
    ),
    field!(
        2,
        "kafka_errors",
        [],
        Some("kafka"),
        List,
        "Names of the distinct non-zero error codes of the response, in order (kafka_max_list).",
        "[\"UNKNOWN_TOPIC_OR_PARTITION\"]",
        KAFKA_ERRORS
    ),
    field!(
        2,
        "kafka_record_count",
        [],
        Some("kafka"),
        Int,
        "Records in the record batches of a Produce request or Fetch response (v2 batches by their count, legacy message sets one per message); null when none carries records.",
        "3",
        |e| e
            .kafka()
            .and_then(|k| k.record_count)
            .and_then(|n| i64::try_from(n).ok())
    ),
    field!(
        2,
        "kafka_record_bytes",
        [],
        Some("kafka"),
        Int,
        "Bytes of those record sets on the wire (compressed as sent).",
        "1024",
        |e| e
            .kafka()
            .and_then(|k| k.record_bytes)
            .and_then(|n| i64::try_from(n).ok())
    ),
    field!(
        2,
        "kafka_record_bytes_decompressed",
        [],
        Some("kafka"),
        Int,
        "Bytes of those record sets once decompressed (each batch at most kafka_decompress_max_bytes).",
        "4096",
        |e| e
            .kafka()
            .and_then(|k| k.record_bytes_decompressed)
            .and_then(|n| i64::try_from(n).ok())
    ),
    field!(
        3,
        "kafka_summary",
        [],
        Some("kafka"),
        Str,
        "The exchange in a few words: api, version, topics, partitions, correlation id, record count and bytes, error names.",
        "\"PRODUCE v9 orders p0 #17 3 records 240B\"",
        |e| e.kafka().map(|k| Cow::Owned(k.summary()))
    ),
    field!(
        3,
        "kafka_request_summary",
        [],
        Some("kafka"),
        Str,
        "The request in a few words: api name, version and topics.",
        "\"PRODUCE v9 orders\"",
        |e| e.kafka().and_then(|k| k.request_summary()).map(Cow::Owned)
    ),
    field!(
        1,
        "kafka_request",
        [],
        Some("kafka"),
        Bool,
        "The request was captured.",
        "true",
        |e| e.kafka().map(|k| k.api_key.is_some())
    ),
    field!(
        1,
        "kafka_response",
        [],
        Some("kafka"),
        Bool,
        "The response was captured.",
        "true",
        |e| e.kafka().map(|k| k.response_bytes.is_some())
    ),
    // --- DNS -----------------------------------------------------------------------------------
    field!(
        2,
        "dns_id",
        [],
        Some("dns"),
        Int,
        "Message id of the query (of the response when the query was not captured).",
        "4660",
        |e| e.dns().map(|d| i64::from(d.id))
    ),
    field!(
        2,
        "dns_qname",
        [],
        Some("dns"),
        Str,
        "Name of the first question, without the trailing dot (<Root> for the root), as tshark prints it.",
        "\"orders.shop.svc.cluster.local\"",
        |e| borrowed(e.dns().and_then(|d| d.qname()))
    ),
    field!(
        2,
        "dns_qtype",
        [],
        Some("dns"),
        Int,
        "Type number of the first question (1 A, 28 AAAA, 5 CNAME, 33 SRV, …).",
        "1",
        |e| e.dns().and_then(|d| d.qtype()).map(i64::from)
    ),
    field!(
        2,
        "dns_rcode",
        [],
        Some("dns"),
        Int,
        "RCODE of the response header (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, …); null without a response.",
        "3",
        |e| e.dns().and_then(|d| d.rcode()).map(i64::from)
    ),
    field!(
        2,
        "dns_rcode_name",
        [],
        Some("dns"),
        Str,
        "Name of the response code, EDNS extended bits included (NOERROR, NXDOMAIN, BADVERS, …); null without a response.",
        "\"NXDOMAIN\"",
        |e| e
            .dns()
            .and_then(|d| d.extended_rcode())
            .map(|r| Cow::Owned(dns_parse::rcode_name(r)))
    ),
    field!(
        2,
        "dns_answer_count",
        [],
        Some("dns"),
        Int,
        "ANCOUNT of the response header; null without a response.",
        "1",
        |e| e.dns().and_then(|d| d.answer_count()).map(i64::from)
    ),
    field!(
        2,
        "dns_questions",
        [],
        Some("dns"),
        List,
        "Names of every question (the first dns_max_questions).",
        "[\"orders.shop.svc.cluster.local\"]",
        DNS_QUESTIONS
    ),
    field!(
        2,
        "dns_question_types",
        [],
        Some("dns"),
        List,
        "Type names of every question (A, AAAA, TYPE65280 for unnamed types).",
        "[\"A\"]",
        DNS_QUESTION_TYPES
    ),
    field!(
        3,
        "dns_answers",
        [],
        Some("dns"),
        List,
        "Data of the response's answer records as text (addresses, names, TXT strings; the first dns_max_records); null without a response.",
        "[\"10.96.0.12\"]",
        DNS_ANSWERS
    ),
    field!(
        2,
        "dns_request",
        [],
        Some("dns"),
        Bool,
        "The query was captured.",
        "true",
        |e| e.dns().map(|d| d.query.is_some())
    ),
    field!(
        2,
        "dns_response",
        [],
        Some("dns"),
        Bool,
        "The response was captured.",
        "true",
        |e| e.dns().map(|d| d.response.is_some())
    ),
    field!(
        2,
        "dns_client_subnet",
        [],
        Some("dns"),
        Str,
        "EDNS client subnet option (RFC 7871) of the query, else of the response: address/source-prefix/scope-prefix.",
        "\"192.0.2.0/24/0\"",
        |e| borrowed(e.dns().and_then(|d| d.client_subnet()))
    ),
    // --- AMQP ----------------------------------------------------------------------------------
    field!(
        2,
        "amqp_channel",
        [],
        Some("amqp"),
        Int,
        "Channel of the entry's method frames.",
        "1",
        |e| e.amqp().map(|a| i64::from(a.channel))
    ),
    field!(
        2,
        "amqp_methods",
        [],
        Some("amqp"),
        List,
        "Class.Method names (Wireshark spelling, replies -Ok) of every method frame the entry covers, in wire order.",
        "[\"Queue.Declare\",\"Queue.Declare-Ok\"]",
        AMQP_METHODS
    ),
    field!(
        2,
        "amqp_method",
        [],
        Some("amqp"),
        Str,
        "The first method of the entry.",
        "\"Basic.Publish\"",
        |e| borrowed(e.amqp().and_then(|a| a.methods.first()).map(|m| &**m))
    ),
    field!(
        2,
        "amqp_exchange",
        [],
        Some("amqp"),
        Str,
        "Exchange of the first method frame that names one.",
        "\"orders\"",
        |e| borrowed(e.amqp().and_then(|a| a.exchange.as_deref()))
    ),
    field!(
        2,
        "amqp_routing_key",
        [],
        Some("amqp"),
        Str,
        "Routing key of the first method frame that carries one.",
        "\"orders.created\"",
        |e| borrowed(e.amqp().and_then(|a| a.routing_key.as_deref()))
    ),
    field!(
        2,
        "amqp_queue",
        [],
        Some("amqp"),
        Str,
        "Queue of the first method frame that names one.",
        "\"billing\"",
        |e| borrowed(e.amqp().and_then(|a| a.queue.as_deref()))
    ),
    field!(
        2,
        "amqp_reply_code",
        [],
        Some("amqp"),
        Int,
        "Reply code of the first Close or Return frame (200 normal, 312 NO_ROUTE, 406, 530 …).",
        "200",
        |e| e.amqp().and_then(|a| a.reply_code).map(i64::from)
    ),
    field!(
        2,
        "amqp_delivery_tag",
        [],
        Some("amqp"),
        Int,
        "Delivery tag of Basic.Deliver, Get-Ok, Ack, Nack or Reject (the channel's message sequence number).",
        "42",
        |e| e
            .amqp()
            .and_then(|a| a.delivery_tag())
            .map(|t| i64::try_from(t).unwrap_or(i64::MAX))
    ),
    field!(
        2,
        "amqp_consumer_tag",
        [],
        Some("amqp"),
        Str,
        "Consumer tag of Basic.Consume, Consume-Ok, Cancel or Deliver.",
        "\"amq.ctag-Jx3kQ1Z2\"",
        |e| borrowed(e.amqp().and_then(|a| a.consumer_tag()))
    ),
    field!(
        2,
        "amqp_body_size",
        [],
        Some("amqp"),
        Int,
        "Body size the content header announced, for Publish, Deliver, Return and Get-Ok; null for methods without content.",
        "1024",
        |e| e
            .amqp()
            .and_then(|a| a.body_size)
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
    ),
    field!(
        2,
        "amqp_content_type",
        [],
        Some("amqp"),
        Str,
        "content-type property of the message.",
        "\"application/json\"",
        |e| amqp_property(e, |p| &p.content_type)
    ),
    field!(
        2,
        "amqp_content_encoding",
        [],
        Some("amqp"),
        Str,
        "content-encoding property of the message.",
        "\"utf-8\"",
        |e| amqp_property(e, |p| &p.content_encoding)
    ),
    field!(
        2,
        "amqp_delivery_mode",
        [],
        Some("amqp"),
        Int,
        "delivery-mode property of the message: 1 non-persistent, 2 persistent.",
        "2",
        |e| e
            .amqp()
            .and_then(|a| a.properties.as_ref()?.delivery_mode)
            .map(i64::from)
    ),
    field!(
        2,
        "amqp_message_id",
        [],
        Some("amqp"),
        Str,
        "message-id property of the message.",
        "\"8f14e45f-ceea-467a-9575-6ed2b1f1f0a1\"",
        |e| amqp_property(e, |p| &p.message_id)
    ),
    field!(
        2,
        "amqp_correlation_id",
        [],
        Some("amqp"),
        Str,
        "correlation-id property of the message (RPC replies carry the request's).",
        "\"f33aae27-69f4-4f48-b0bc-2efdc455c128\"",
        |e| amqp_property(e, |p| &p.correlation_id)
    ),
    field!(
        2,
        "amqp_reply_to",
        [],
        Some("amqp"),
        Str,
        "reply-to property of the message (the queue an RPC reply goes to).",
        "\"amq.rabbitmq.reply-to\"",
        |e| amqp_property(e, |p| &p.reply_to)
    ),
    field!(
        2,
        "amqp_app_id",
        [],
        Some("amqp"),
        Str,
        "app-id property of the message.",
        "\"billing-worker\"",
        |e| amqp_property(e, |p| &p.app_id)
    ),
    field!(
        3,
        "amqp_headers",
        [],
        Some("amqp"),
        Map,
        "headers property of the message, names as sent; values as text (numbers in decimal, byte arrays in hex, nested tables and arrays JSON-like, cut values ending in …). Empty for content without headers, null for methods without content.",
        "{\"x-retry-count\":\"3\"}",
        AMQP_HEADERS
    ),
    // --- Kubernetes identity -------------------------------------------------------------------
    ident_str!(
        "src.pod.name",
        [],
        src_id,
        "Pod of the requester.",
        "\"frontend-7d9c-x2x\"",
        |i| i.pod.as_deref()
    ),
    ident_str!(
        "src.pod.namespace",
        [],
        src_id,
        "Namespace of the requester's pod (falls back to its service's).",
        "\"shop\"",
        |i| i.namespace.as_deref()
    ),
    ident_str!(
        "src.namespace",
        [],
        src_id,
        "Namespace of the requester (pod, else service).",
        "\"shop\"",
        |i| i.namespace.as_deref()
    ),
    ident_str!(
        "src.service.name",
        [],
        src_id,
        "Service of the requester (the first by name when several select the pod; the service itself for a ClusterIP).",
        "\"frontend\"",
        |i| i.service()
    ),
    ident_str!(
        "src.service.namespace",
        [],
        src_id,
        "Namespace of the requester's service.",
        "\"shop\"",
        |i| i.service().and(i.namespace.as_deref())
    ),
    field!(
        1,
        "src.services",
        [],
        None,
        List,
        "Every service selecting the requester's pod (or the ClusterIP's service). Empty when unresolved.",
        "[\"frontend\"]",
        SRC_SERVICES
    ),
    ident_str!(
        "src.workload.name",
        [],
        src_id,
        "Workload (Deployment, StatefulSet, DaemonSet, CronJob, Job; a bare pod is its own) of the requester.",
        "\"frontend\"",
        |i| i.workload.as_ref().map(|w| &*w.1)
    ),
    ident_str!(
        "src.workload.kind",
        [],
        src_id,
        "Kind of the requester's workload: Deployment, StatefulSet, DaemonSet, CronJob, Job, ReplicaSet or Pod.",
        "\"Deployment\"",
        |i| i.workload.as_ref().map(|w| &*w.0)
    ),
    ident_str!(
        "src.node",
        ["src.node.name"],
        src_id,
        "Node of the requester's pod (or the node whose address it is).",
        "\"node-1\"",
        |i| i.node.as_deref()
    ),
    field!(
        1,
        "src.name",
        [],
        None,
        Str,
        "Best name of the requester: pod, else service, else node, else its DNS name. Empty (\"\") when none is known.",
        "\"frontend-7d9c-x2x\"",
        |e| Some(Cow::Borrowed(
            src_id(e)
                .and_then(|i| i.name())
                .or(e.peers.src_dns.as_deref())
                .unwrap_or("")
        ))
    ),
    field!(
        1,
        "src.resolution",
        [],
        None,
        Str,
        "How the requester's identity was found: pod_ip, host_network_port, host_network_ambiguous, service_ip, node_ip, or external (not a cluster address, or no identities loaded).",
        "\"pod_ip\"",
        |e| Some(Cow::Borrowed(e.peers.src.resolution.name()))
    ),
    field!(
        1,
        "src.dns",
        [],
        None,
        Str,
        "DNS name of the requester's address, from the A/AAAA answers seen in the traffic before it (the name asked for). Empty (\"\") when none was seen.",
        "\"frontend.shop.svc.cluster.local\"",
        |e| Some(Cow::Borrowed(e.peers.src_dns.as_deref().unwrap_or("")))
    ),
    ident_str!(
        "dst.pod.name",
        [],
        dst_id,
        "Pod of the responder.",
        "\"payment-5f6b-k8q\"",
        |i| i.pod.as_deref()
    ),
    ident_str!(
        "dst.pod.namespace",
        [],
        dst_id,
        "Namespace of the responder's pod (falls back to its service's).",
        "\"prod\"",
        |i| i.namespace.as_deref()
    ),
    ident_str!(
        "dst.namespace",
        [],
        dst_id,
        "Namespace of the responder (pod, else service).",
        "\"prod\"",
        |i| i.namespace.as_deref()
    ),
    ident_str!(
        "dst.service.name",
        [],
        dst_id,
        "Service of the responder (the first by name when several select the pod; the service itself for a ClusterIP).",
        "\"payment-service\"",
        |i| i.service()
    ),
    ident_str!(
        "dst.service.namespace",
        [],
        dst_id,
        "Namespace of the responder's service.",
        "\"prod\"",
        |i| i.service().and(i.namespace.as_deref())
    ),
    field!(
        1,
        "dst.services",
        [],
        None,
        List,
        "Every service selecting the responder's pod (or the ClusterIP's service). Empty when unresolved.",
        "[\"payment-service\"]",
        DST_SERVICES
    ),
    ident_str!(
        "dst.workload.name",
        [],
        dst_id,
        "Workload (Deployment, StatefulSet, DaemonSet, CronJob, Job; a bare pod is its own) of the responder.",
        "\"payment\"",
        |i| i.workload.as_ref().map(|w| &*w.1)
    ),
    ident_str!(
        "dst.workload.kind",
        [],
        dst_id,
        "Kind of the responder's workload: Deployment, StatefulSet, DaemonSet, CronJob, Job, ReplicaSet or Pod.",
        "\"Deployment\"",
        |i| i.workload.as_ref().map(|w| &*w.0)
    ),
    ident_str!(
        "dst.node",
        ["dst.node.name"],
        dst_id,
        "Node of the responder's pod (or the node whose address it is).",
        "\"node-2\"",
        |i| i.node.as_deref()
    ),
    field!(
        1,
        "dst.name",
        [],
        None,
        Str,
        "Best name of the responder: pod, else service, else node, else its DNS name. Empty (\"\") when none is known.",
        "\"payment-5f6b-k8q\"",
        |e| Some(Cow::Borrowed(
            dst_id(e)
                .and_then(|i| i.name())
                .or(e.peers.dst_dns.as_deref())
                .unwrap_or("")
        ))
    ),
    field!(
        1,
        "dst.resolution",
        [],
        None,
        Str,
        "How the responder's identity was found: pod_ip, host_network_port, host_network_ambiguous, service_ip, node_ip, or external (not a cluster address, or no identities loaded).",
        "\"pod_ip\"",
        |e| Some(Cow::Borrowed(e.peers.dst.resolution.name()))
    ),
    field!(
        1,
        "dst.dns",
        [],
        None,
        Str,
        "DNS name of the responder's address, from the A/AAAA answers seen in the traffic before it (the name asked for). Empty (\"\") when none was seen.",
        "\"payment-service.prod.svc.cluster.local\"",
        |e| Some(Cow::Borrowed(e.peers.dst_dns.as_deref().unwrap_or("")))
    ),
    field!(
        1,
        "namespaces",
        [],
        None,
        List,
        "Every namespace involved (requester and responder), without repeats.",
        "[\"shop\", \"prod\"]",
        BOTH_NAMESPACES
    ),
    field!(
        1,
        "pods",
        [],
        None,
        List,
        "Every pod involved (requester and responder).",
        "[\"frontend-7d9c-x2x\"]",
        BOTH_PODS
    ),
    field!(
        1,
        "services",
        [],
        None,
        List,
        "Every service involved (requester and responder), without repeats.",
        "[\"payment-service\"]",
        BOTH_SERVICES
    ),
    field!(
        2,
        "local_labels",
        [],
        None,
        Map,
        "Kubernetes labels of the local peer (the requester's pod, service or node).",
        "{\"app\": \"checkout\"}",
        SRC_LABELS
    ),
    field!(
        2,
        "remote_labels",
        [],
        None,
        Map,
        "Kubernetes labels of the remote peer (the responder's pod, service or node).",
        "{\"app\": \"payment\"}",
        DST_LABELS
    ),
    field!(
        2,
        "local_annotations",
        [],
        None,
        Map,
        "Kubernetes annotations of the local peer.",
        "{}",
        SRC_ANNOTATIONS
    ),
    field!(
        2,
        "remote_annotations",
        [],
        None,
        Map,
        "Kubernetes annotations of the remote peer.",
        "{}",
        DST_ANNOTATIONS
    ),
    identity_str!(
        "node_name",
        ["node.name"],
        "Node that captured the entry.",
        "\"node-1\""
    ),
    identity_str!(
        "node_ip",
        ["node.ip"],
        "Address of the node that captured the entry.",
        "\"10.0.0.4\""
    ),
    ident_str!(
        "local_node_name",
        [],
        src_id,
        "Node of the local peer (the requester).",
        "\"node-1\"",
        |i| i.node.as_deref()
    ),
    ident_str!(
        "remote_node_name",
        [],
        dst_id,
        "Node of the remote peer (the responder).",
        "\"node-2\"",
        |i| i.node.as_deref()
    ),
    identity_str!("local_process_name", [], "Process of the local peer.", "\"node\""),
    identity_str!("remote_process_name", [], "Process of the remote peer.", "\"java\""),
    field!(
        1,
        "dns_resolutions",
        [],
        None,
        List,
        "DNS names known for the addresses involved (requester's, then responder's), from A/AAAA answers seen in the traffic.",
        "[\"payment-service.prod.svc.cluster.local\"]",
        DNS_RESOLUTIONS
    ),
    field!(
        1,
        "conn_state",
        [],
        Some("flow"),
        Str,
        "Flows: connection state (established, established_midstream, syn_sent, refused, reset, closing, closed; udp).",
        "\"refused\"",
        |e| flow(e).map(|f| Cow::Borrowed(f.state()))
    ),
    field!(
        5,
        "verdict",
        ["health"],
        Some("flow"),
        Str,
        "Flows: TCP health verdict (healthy, degraded, severe).",
        "\"severe\"",
        |e| flow(e)
            .filter(|f| f.transport == Transport::Tcp)
            .map(|f| Cow::Borrowed(crate::health::assess_flow(f).0.name()))
    ),
    field!(
        1,
        "retransmission_rate",
        [],
        Some("flow"),
        Float,
        "Flows: retransmitted packets / packets carrying data, 0–1.",
        "0.07",
        |e| flow(e).map(|f| f.metrics.retransmission_rate())
    ),
    flow_int!(
        "retransmissions",
        "Flows: retransmissions (fast and spurious included, as Wireshark counts).",
        "12",
        |m| m.retransmissions
    ),
    flow_int!("fast_retransmissions", "Flows: fast retransmissions.", "3", |m| m
        .fast_retransmissions),
    flow_int!(
        "spurious_retransmissions",
        "Flows: spurious retransmissions.",
        "1",
        |m| m.spurious_retransmissions
    ),
    flow_int!("out_of_order", "Flows: out-of-order segments.", "2", |m| m.out_of_order),
    flow_int!("zero_window_events", "Flows: zero-window advertisements.", "4", |m| m
        .zero_window_events),
    flow_int!("zero_window_probes", "Flows: zero-window probes.", "2", |m| m
        .zero_window_probes),
    flow_int!(
        "window_full_events",
        "Flows: segments that filled the peer's window.",
        "1",
        |m| m.window_full_events
    ),
    flow_int!("dup_acks", "Flows: duplicate ACKs.", "5", |m| m.dup_acks),
    flow_int!(
        "missing_segments",
        "Flows: segments not captured (Wireshark's lost segment).",
        "1",
        |m| m.missing_segments
    ),
    flow_int!(
        "acked_unseen",
        "Flows: ACKs for data the capture never saw.",
        "1",
        |m| m.acked_unseen
    ),
    flow_int!("keepalive_count", "Flows: TCP keep-alives.", "2", |m| m.keepalive_count),
    flow_int!("rst_count", "Flows: packets with RST.", "1", |m| m.rst_count),
    flow_int!("syn_count", "Flows: packets with SYN.", "2", |m| m.syn_count),
    flow_int!("fin_count", "Flows: packets with FIN.", "2", |m| m.fin_count),
    flow_int!(
        "connection_completeness",
        "Flows: Wireshark's completeness bits (SYN 1, SYN-ACK 2, ACK 4, DATA 8, FIN 16, RST 32).",
        "31",
        |m| u64::from(m.completeness)
    ),
    flow_int!("packets", "Flows: packets, both directions.", "120", |m| m.packets[0]
        + m.packets[1]),
    flow_int!(
        "payload_bytes",
        "Flows: payload bytes, both directions.",
        "48000",
        |m| m.payload_bytes[0] + m.payload_bytes[1]
    ),
    flow_int!(
        "goodput_bytes",
        "Flows: payload minus retransmitted payload, both directions.",
        "47000",
        |m| m.goodput_bytes()
    ),
    field!(
        1,
        "initial_rtt_us",
        [],
        Some("flow"),
        Int,
        "Flows: handshake RTT (SYN → first ACK), µs; null without a captured handshake.",
        "850",
        |e| flow(e)
            .and_then(|f| f.metrics.initial_rtt_ns)
            .map(|ns| u64_to_i64(ns / 1000))
    ),
    field!(
        1,
        "rtt_avg_us",
        [],
        Some("flow"),
        Int,
        "Flows: average ACK round trip, µs.",
        "420",
        |e| flow(e)
            .and_then(|f| f.metrics.rtt_avg_ns())
            .map(|ns| u64_to_i64(ns / 1000))
    ),
    field!(
        1,
        "duration_us",
        [],
        Some("flow"),
        Int,
        "Flows: first packet to last packet, µs.",
        "2500000",
        |e| flow(e).map(|f| u64_to_i64(f.last_seen.micros_since(f.first_seen)))
    ),
    field!(
        1,
        "process",
        [],
        Some("flow"),
        Str,
        "Flows: command name of the process on this host that opened the connection (eBPF, live capture); null when the probes did not see the connect().",
        "\"curl\"",
        |e| flow(e)
            .and_then(|f| f.kernel.as_deref())
            .and_then(|k| k.comm.as_deref())
            .map(Cow::Borrowed)
    ),
    field!(
        1,
        "kernel_handshake_rtt_us",
        [],
        Some("flow"),
        Int,
        "Flows: connect() to ESTABLISHED as the connecting kernel measured it (eBPF), µs; includes SYN retransmission timeouts.",
        "1200",
        |e| flow(e)
            .and_then(|f| f.kernel.as_deref())
            .and_then(|k| k.handshake_rtt_us)
            .map(u64_to_i64)
    ),
    field!(
        1,
        "kernel_retransmits",
        [],
        Some("flow"),
        Int,
        "Flows: segments the sender's kernel retransmitted (eBPF tcp_retransmit_skb); null when the probes did not see the connection.",
        "3",
        |e| flow(e)
            .and_then(|f| f.kernel.as_deref())
            .map(|k| i64::from(k.retransmitted_segments))
    ),
    field!(
        1,
        "kernel_srtt_us",
        [],
        Some("flow"),
        Int,
        "Flows: the kernel's latest smoothed RTT for the connection (eBPF tcp_probe), µs.",
        "850",
        |e| flow(e)
            .and_then(|f| f.kernel.as_deref())
            .and_then(|k| k.srtt_us)
            .map(i64::from)
    ),
    field!(
        1,
        "kernel_cwnd",
        [],
        Some("flow"),
        Int,
        "Flows: the kernel's latest congestion window for the connection (eBPF tcp_probe), segments.",
        "10",
        |e| flow(e)
            .and_then(|f| f.kernel.as_deref())
            .and_then(|k| k.cwnd)
            .map(i64::from)
    ),
    // --- TLS -----------------------------------------------------------------------------------
    field!(
        1,
        "decrypted",
        [],
        None,
        Bool,
        "Decrypted from captured TLS records with --keylog secrets: the L7 entries of a decrypted connection and its tls entry.",
        "true",
        |e| Some(e.decrypted)
    ),
    field!(
        2,
        "tls_decryption",
        [],
        Some("tls"),
        Str,
        "\"decrypted\", or \"not decrypted: why\" (no key log, no secrets for this session, wrong key, cipher suite not supported, …).",
        "\"decrypted\"",
        |e| borrowed(e.tls_handshake().map(|t| t.decryption.text()))
    ),
    field!(
        2,
        "tls_version",
        [],
        Some("tls"),
        Str,
        "Negotiated TLS version as tshark prints it (the ServerHello's supported_versions, else its version): \"TLS 1.2\", \"TLS 1.3\". Also on the L7 entries decrypted from the connection.",
        "\"TLS 1.3\"",
        |e| borrowed(tls_num(e, |t| t.version, |c| c.version).and_then(crate::dissect::tls::parse::version_name))
    ),
    field!(
        2,
        "tls_sni",
        [],
        Some("tls"),
        Str,
        "Server name the client asked for (server_name extension of the ClientHello). Also on the L7 entries decrypted from the connection.",
        "\"api.example.com\"",
        |e| borrowed(tls_str(e, |t| t.sni.as_deref(), |c| c.sni.as_deref()))
    ),
    field!(
        2,
        "tls_alpn",
        [],
        Some("tls"),
        Str,
        "ALPN protocol the server selected (in clear up to TLS 1.2; TLS 1.3 sends it encrypted). Also on the L7 entries decrypted from the connection.",
        "\"h2\"",
        |e| borrowed(tls_str(
            e,
            |t| t.alpn_selected.as_deref(),
            |c| c.alpn_selected.as_deref()
        ))
    ),
    field!(
        2,
        "tls_alpn_offered",
        [],
        Some("tls"),
        List,
        "ALPN protocols the client offered, in its order.",
        "[\"h2\",\"http/1.1\"]",
        TLS_ALPN_OFFERED
    ),
    field!(
        2,
        "tls_cipher",
        [],
        Some("tls"),
        Str,
        "Cipher suite the server selected, IANA name (0xNNNN when unknown). Also on the L7 entries decrypted from the connection.",
        "\"TLS_AES_128_GCM_SHA256\"",
        |e| tls_num(e, |t| t.cipher, |c| c.cipher).map(crate::dissect::tls::parse::cipher_name)
    ),
    field!(
        2,
        "tls_ja3",
        [],
        Some("tls"),
        Str,
        "JA3 fingerprint of the ClientHello (MD5, GREASE left out). Also on the L7 entries decrypted from the connection.",
        "\"cd08e31494f9531f560d64c695473da9\"",
        |e| borrowed(tls_str(e, |t| t.ja3.as_deref(), |c| c.ja3.as_deref()))
    ),
    field!(
        2,
        "tls_ja4",
        [],
        Some("tls"),
        Str,
        "JA4 fingerprint of the ClientHello (FoxIO, over TCP). Also on the L7 entries decrypted from the connection.",
        "\"t13d1516h2_8daaf6152771_e5627efa2ab1\"",
        |e| borrowed(tls_str(e, |t| t.ja4.as_deref(), |c| c.ja4.as_deref()))
    ),
    field!(
        2,
        "tls_ja3s",
        [],
        Some("tls"),
        Str,
        "JA3S fingerprint of the ServerHello (MD5). Also on the L7 entries decrypted from the connection.",
        "\"f4febc55ea12b31ae17cfb7e614afda8\"",
        |e| borrowed(tls_str(e, |t| t.ja3s.as_deref(), |c| c.ja3s.as_deref()))
    ),
    field!(
        2,
        "tls_handshake_us",
        [],
        Some("tls"),
        Int,
        "ClientHello to the end of the handshake (TLS ≤ 1.2: both Finished; TLS 1.3: the client's Finished), µs; null when it did not complete.",
        "48000",
        |e| e.tls_handshake().and_then(|t| t.handshake_us).map(u64_to_i64)
    ),
    field!(
        2,
        "tls_resumed",
        [],
        Some("tls"),
        Bool,
        "The session was resumed (session id, session ticket, or TLS 1.3 pre-shared key).",
        "true",
        |e| e.tls_handshake().map(|t| t.resumption.is_some())
    ),
    field!(
        2,
        "tls_resumption",
        [],
        Some("tls"),
        Str,
        "How the session was resumed: session_id, ticket or psk; null for a full handshake.",
        "\"ticket\"",
        |e| borrowed(e.tls_handshake().and_then(|t| t.resumption).map(|r| r.name()))
    ),
    field!(
        2,
        "tls_alerts",
        [],
        Some("tls"),
        List,
        "Alert names in wire order (close_notify, handshake_failure, …; encrypted when not readable).",
        "[\"handshake_failure\"]",
        TLS_ALERTS
    ),
    field!(
        2,
        "tls_alert_count",
        [],
        Some("tls"),
        Int,
        "Alert records on the connection (exact, also beyond the names kept).",
        "1",
        |e| e.tls_handshake().map(|t| i64::from(t.alert_count))
    ),
    field!(
        2,
        "tls_cert_subject",
        [],
        Some("tls"),
        Str,
        "Subject of the server's certificate (TLS ≤ 1.2, RFC 4514 text).",
        "\"CN=api.example.com\"",
        |e| borrowed(tls_cert(e).map(|c| &*c.subject))
    ),
    field!(
        2,
        "tls_cert_issuer",
        [],
        Some("tls"),
        Str,
        "Issuer of the server's certificate (TLS ≤ 1.2).",
        "\"C=US, O=Let's Encrypt, CN=R3\"",
        |e| borrowed(tls_cert(e).map(|c| &*c.issuer))
    ),
    field!(
        2,
        "tls_cert_sans",
        [],
        Some("tls"),
        List,
        "DNS names and addresses of the server certificate's subjectAltName (TLS ≤ 1.2).",
        "[\"api.example.com\",\"*.example.com\"]",
        TLS_CERT_SANS
    ),
    field!(
        2,
        "tls_cert_not_before",
        [],
        Some("tls"),
        Timestamp,
        "Start of the server certificate's validity (TLS ≤ 1.2).",
        "\"2026-01-01T00:00:00.000000Z\"",
        |e| tls_cert(e).map(|c| secs_ts(c.not_before))
    ),
    field!(
        2,
        "tls_cert_not_after",
        [],
        Some("tls"),
        Timestamp,
        "End of the server certificate's validity (TLS ≤ 1.2); compare with now() to find expired ones.",
        "\"2026-04-01T00:00:00.000000Z\"",
        |e| tls_cert(e).map(|c| secs_ts(c.not_after))
    ),
    field!(
        2,
        "tls_records_c2s",
        [],
        Some("tls"),
        Int,
        "application_data records client→server (TLS 1.3: the encrypted handshake records too).",
        "12",
        |e| e.tls_handshake().map(|t| u64_to_i64(t.app_records[0]))
    ),
    field!(
        2,
        "tls_records_s2c",
        [],
        Some("tls"),
        Int,
        "application_data records server→client (TLS 1.3: the encrypted handshake records too).",
        "30",
        |e| e.tls_handshake().map(|t| u64_to_i64(t.app_records[1]))
    ),
];

/// Looks a field up by name or alias.
pub fn lookup(name: &str) -> Option<&'static FieldDef> {
    FIELDS.iter().find(|f| f.name == name || f.aliases.contains(&name))
}

/// Every name and alias, in registry order.
pub fn all_names() -> impl Iterator<Item = &'static str> {
    FIELDS
        .iter()
        .flat_map(|f| std::iter::once(f.name).chain(f.aliases.iter().copied()))
}

/// The closest of `candidates` to `name` (for "did you mean …?"): a case-insensitive match
/// first, else the smallest edit distance within a third of the length (at least 3).
pub fn closest<'c>(name: &str, candidates: impl Iterator<Item = &'c str>) -> Option<&'c str> {
    let lower = name.to_ascii_lowercase();
    let mut best: Option<(usize, &'c str)> = None;
    for n in candidates {
        let d = if n.eq_ignore_ascii_case(name) {
            0
        } else {
            strsim::damerau_levenshtein(&lower, &n.to_ascii_lowercase())
        };
        if d <= 3.max(n.len() / 3) && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, n));
        }
    }
    best.map(|(_, n)| n)
}

/// The closest registered name (for "did you mean …?").
pub fn suggest(name: &str) -> Option<&'static str> {
    closest(name, all_names())
}

/// Does this field apply to entries of this protocol?
pub fn applies(f: &FieldDef, p: Protocol) -> bool {
    match f.protocol {
        None => true,
        Some("http") => p.is_http(),
        Some("redis") => p == Protocol::Redis,
        Some("dns") => p == Protocol::Dns,
        Some("kafka") => p == Protocol::Kafka,
        Some("amqp") => p == Protocol::Amqp,
        Some("tls") => p == Protocol::Tls,
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut all: Vec<&str> = all_names().chain(FLAGS.iter().map(|f| f.name)).collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("stauts"), Some("status"));
        assert_eq!(suggest("src.pi"), Some("src.ip"));
        assert_eq!(suggest("reqest_body_size"), Some("request_body_size"));
        assert_eq!(suggest("Status_Code"), Some("status_code"));
        assert_eq!(suggest("zzzzzzzzzzzzzzz"), None);
        assert!(lookup("status_code").is_some());
    }

    #[test]
    fn field_types_match_readers() {
        for f in FIELDS {
            let ok = matches!(
                (f.ty, f.access),
                (FieldType::Bool, Access::Bool(_))
                    | (FieldType::Int, Access::Int(_))
                    | (FieldType::Float, Access::Float(_))
                    | (FieldType::String, Access::Str(_) | Access::Ip(_))
                    | (FieldType::Timestamp, Access::Timestamp(_))
                    | (FieldType::StringList, Access::StrList(_))
                    | (FieldType::Map, Access::StrMap(_))
            );
            assert!(ok, "{} has a reader of another type", f.name);
            assert!(!f.description.is_empty() && !f.example.is_empty());
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("plain"), "plain");
        assert_eq!(percent_decode("bad%zzx%4"), "bad%zzx%4");
        assert_eq!(percent_decode("%41"), "A");
        assert_eq!(path_only("/a/b?x=1#f"), "/a/b");
    }
}
