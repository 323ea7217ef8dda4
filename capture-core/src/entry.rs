//! Entries: one request/response exchange (or one lone message) found on the wire.
//!
//! The engine's own representation, compact and owned. The MCP vocabulary in `tools-schema` is
//! derived from it in `mcp-server`; field access by name goes through [`crate::fields`].

use std::net::SocketAddr;

pub use crate::dissect::http2::model::{GrpcCall, H2Message, H2Stream, h2_flags};
use crate::time::Timestamp;

/// Application protocol of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Http10,
    Http11,
    Http2,
    Grpc,
    Redis,
    Dns,
    Kafka,
    Amqp,
    /// The handshake of one TLS connection (version, SNI, ALPN, cipher, fingerprints).
    Tls,
    /// A TCP connection seen as a record (filters over flows in `tcp_insights`, `list_flows`);
    /// never stored as an entry.
    TcpFlow,
    /// A UDP conversation seen as a record, like [`Protocol::TcpFlow`].
    UdpFlow,
}

impl Protocol {
    pub const ALL: [Protocol; 9] = [
        Protocol::Http10,
        Protocol::Http11,
        Protocol::Http2,
        Protocol::Grpc,
        Protocol::Redis,
        Protocol::Dns,
        Protocol::Kafka,
        Protocol::Amqp,
        Protocol::Tls,
    ];
    /// The name used in results and filters (`"http/1.1"`).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http10 => "http/1.0",
            Protocol::Http11 => "http/1.1",
            Protocol::Http2 => "http/2",
            Protocol::Grpc => "grpc",
            Protocol::Redis => "redis",
            Protocol::Dns => "dns",
            Protocol::Kafka => "kafka",
            Protocol::Amqp => "amqp",
            Protocol::Tls => "tls",
            Protocol::TcpFlow => "tcp_flow",
            Protocol::UdpFlow => "udp_flow",
        }
    }
    pub fn from_name(s: &str) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(s))
    }
    pub fn is_http(self) -> bool {
        matches!(
            self,
            Protocol::Http10 | Protocol::Http11 | Protocol::Http2 | Protocol::Grpc
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// One entry in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Assigned by the store on insert; unique and increasing for the store's lifetime.
    pub id: u64,
    /// First byte of the request (or of the message, when there is no request).
    pub ts: Timestamp,
    pub protocol: Protocol,
    pub transport: Transport,
    /// The requester (client) and the responder (server), as found from the content.
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub flow_id: u64,
    /// First request byte to last response byte.
    pub elapsed_us: Option<u64>,
    pub detail: Detail,
    /// Kubernetes identities of `src` and `dst` at `ts`, filled when the entry is stored
    /// (external when no identities are loaded).
    pub peers: crate::enrich::Peers,
    /// Carried in TLS and seen in plaintext: read from the TLS library of a process (eBPF
    /// uprobes), or decrypted from the packets with a key log (then `decrypted` is set too).
    pub tls: bool,
    /// Decrypted from captured TLS records with `--keylog` secrets (on the L7 entries of the
    /// connection and on its `tls` entry).
    pub decrypted: bool,
    /// The handshake fields of the TLS connection a decrypted L7 entry came from (SNI, version,
    /// ALPN, cipher, fingerprints), shared by the connection's entries. `None` on the `tls`
    /// entry itself (its detail holds them) and on entries not decrypted from the wire.
    pub tls_conn: Option<std::sync::Arc<crate::dissect::tls::TlsConn>>,
}

/// Protocol-specific content.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    Http(Box<HttpTxn>),
    /// One HTTP/2 stream (`http/2` and `grpc` entries).
    Http2(Box<H2Stream>),
    /// One Redis command with its reply, or one pushed message.
    Redis(Box<crate::dissect::redis::RedisEntry>),
    /// One DNS query with its response, or a lone query or response.
    Dns(Box<crate::dissect::dns::DnsEntry>),
    /// One Kafka request with its response, or a lone response.
    Kafka(Box<crate::dissect::kafka::KafkaEntry>),
    /// AMQP method frames of one channel: a method with its reply, or with its content.
    Amqp(Box<crate::dissect::amqp::AmqpEntry>),
    /// The handshake metadata of one TLS connection.
    Tls(Box<crate::dissect::tls::TlsEntry>),
    /// A flow record, for filters over flows (never stored).
    Flow(std::sync::Arc<crate::flows::FlowRecord>),
}

/// Anomalies of an HTTP exchange, as bit flags.
pub mod http_flags {
    /// Bytes of a message were missing from the capture (a TCP gap).
    pub const GAP: u32 = 1;
    /// The request never completed (capture ended, connection closed, or parse error).
    pub const REQUEST_INCOMPLETE: u32 = 2;
    /// The response started but never completed.
    pub const RESPONSE_INCOMPLETE: u32 = 4;
    /// A response with no request seen (capture started mid-connection).
    pub const NO_REQUEST: u32 = 8;
    /// A header block exceeded `http_max_header_bytes`.
    pub const HEADER_TOO_LARGE: u32 = 16;
    /// Evicted from the pipelining queue (`http_max_pending`) before its response came.
    pub const PIPELINE_OVERFLOW: u32 = 32;
    /// The response switched protocols (101) or opened a tunnel (CONNECT).
    pub const UPGRADED: u32 = 64;
}

/// One HTTP/1.x request/response exchange.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpTxn {
    /// Shared: the dissector hands out one copy per method, and per host and reason phrase
    /// while they repeat on a connection.
    pub method: Option<std::sync::Arc<str>>,
    /// Request-target as on the wire.
    pub path: Option<Box<str>>,
    /// Host header as sent (port included when present).
    pub host: Option<std::sync::Arc<str>>,
    /// Final status (interim 1xx statuses are in `interim`).
    pub status: Option<u16>,
    pub reason: Option<std::sync::Arc<str>>,
    pub request: Option<HttpMessage>,
    pub response: Option<HttpMessage>,
    pub interim: Vec<u16>,
    /// The `Upgrade` protocol when the server switched (101), e.g. `h2c` or `websocket`.
    pub upgrade: Option<Box<str>>,
    /// First request byte to first response byte.
    pub ttfb_us: Option<u64>,
    /// [`http_flags`] bits.
    pub flags: u32,
}

/// One HTTP message as captured.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpMessage {
    /// Start line and header block as on the wire, including the final empty line. Stored
    /// entries share one segment of the store's memory for all their bytes ([`bytes::Bytes`]
    /// views into it).
    pub head: bytes::Bytes,
    /// The first `body_capture_bytes` of the entity body, after de-chunking, before content
    /// decoding.
    pub body: bytes::Bytes,
    /// Entity-body bytes seen, after de-chunking (gap bytes of a known-length body included).
    pub body_size: u64,
    /// True when `body` holds fewer bytes than `body_size`.
    pub body_truncated: bool,
    pub chunked: bool,
    /// Trailer fields of a chunked body, as on the wire.
    pub trailers: bytes::Bytes,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    pub complete: bool,
    /// What the parser noted about the head while parsing it ([`head_facts`] bits), so that
    /// later passes need not scan it again; 0 (nothing known) on messages built elsewhere.
    pub head_facts: u8,
}

/// Facts about an HTTP/1 head, noted by the parser from the fields it reads anyway.
pub mod head_facts {
    /// The parser set the bits below; without it nothing is known and the head is scanned.
    pub const KNOWN: u8 = 1;
    /// A field name the default redaction rules may change: a credential header
    /// ([`crate::redact::SECRET_HEADERS`]) or a URL header.
    pub const REDACTABLE_NAME: u8 = 2;
    /// A `Content-Type` that mentions `dns-message` (DNS over HTTPS), in any case.
    pub const DNS_MESSAGE: u8 = 4;
}

impl HttpMessage {
    /// Whether the parser noted `fact` ([`head_facts`]); `None` when it noted nothing.
    pub fn head_fact(&self, fact: u8) -> Option<bool> {
        (self.head_facts & head_facts::KNOWN != 0).then_some(self.head_facts & fact != 0)
    }

    fn heap_bytes(&self) -> usize {
        use crate::memory::alloc_size;
        alloc_size(self.head.len()) + alloc_size(self.body.len()) + alloc_size(self.trailers.len())
    }

    /// Header (name, value) pairs, parsed again from the stored head. Values are lossy UTF-8.
    pub fn headers(&self) -> Vec<(String, String)> {
        crate::dissect::http1::parse::header_pairs(&self.head)
    }

    /// The value of the first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers()
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

impl Entry {
    pub fn http(&self) -> Option<&HttpTxn> {
        match &self.detail {
            Detail::Http(h) => Some(h),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// The HTTP/2 stream of an `http/2` or `grpc` entry.
    pub fn h2(&self) -> Option<&H2Stream> {
        match &self.detail {
            Detail::Http2(s) => Some(s),
            _ => None,
        }
    }

    /// The Redis command of a `redis` entry.
    pub fn redis(&self) -> Option<&crate::dissect::redis::RedisEntry> {
        match &self.detail {
            Detail::Redis(r) => Some(r),
            _ => None,
        }
    }

    /// The DNS exchange of a `dns` entry.
    pub fn dns(&self) -> Option<&crate::dissect::dns::DnsEntry> {
        match &self.detail {
            Detail::Dns(d) => Some(d),
            _ => None,
        }
    }

    /// The Kafka exchange of a `kafka` entry.
    pub fn kafka(&self) -> Option<&crate::dissect::kafka::KafkaEntry> {
        match &self.detail {
            Detail::Kafka(k) => Some(k),
            _ => None,
        }
    }

    /// The AMQP methods of an `amqp` entry.
    pub fn amqp(&self) -> Option<&crate::dissect::amqp::AmqpEntry> {
        match &self.detail {
            Detail::Amqp(a) => Some(a),
            _ => None,
        }
    }

    /// The handshake of a `tls` entry.
    pub fn tls_handshake(&self) -> Option<&crate::dissect::tls::TlsEntry> {
        match &self.detail {
            Detail::Tls(t) => Some(t),
            _ => None,
        }
    }

    /// The gRPC call of a `grpc` entry.
    pub fn grpc(&self) -> Option<&GrpcCall> {
        self.h2().and_then(|s| s.grpc.as_deref())
    }

    /// HTTP method (HTTP/1.x request line or HTTP/2 `:method`).
    pub fn http_method(&self) -> Option<&str> {
        match &self.detail {
            Detail::Http(h) => h.method.as_deref(),
            Detail::Http2(s) => s.method.as_deref(),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// Host header, or HTTP/2 `:authority` (else `host`).
    pub fn http_host(&self) -> Option<&str> {
        match &self.detail {
            Detail::Http(h) => h.host.as_deref(),
            Detail::Http2(s) => s.authority.as_deref(),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// Request-target, or HTTP/2 `:path`.
    pub fn http_path(&self) -> Option<&str> {
        match &self.detail {
            Detail::Http(h) => h.path.as_deref(),
            Detail::Http2(s) => s.path.as_deref(),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// Final HTTP status (HTTP/2 `:status`).
    pub fn http_status(&self) -> Option<u16> {
        match &self.detail {
            Detail::Http(h) => h.status,
            Detail::Http2(s) => s.status,
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// Bytes this entry holds on the heap plus its own size: what the store budget counts.
    pub fn memory_bytes(&self) -> usize {
        let detail = match &self.detail {
            Detail::Flow(_) => std::mem::size_of::<crate::flows::FlowRecord>(),
            Detail::Http(h) => {
                use crate::memory::alloc_size;
                let text = |s: &Option<Box<str>>| s.as_ref().map_or(0, |s| alloc_size(s.len()));
                // A shared text is charged to its holders in equal parts, as they are when it
                // is stored.
                let shared = |s: &Option<std::sync::Arc<str>>| {
                    s.as_ref()
                        .map_or(0, |s| alloc_size(s.len() + 16) / std::sync::Arc::strong_count(s))
                };
                alloc_size(std::mem::size_of::<HttpTxn>())
                    + shared(&h.method)
                    + text(&h.path)
                    + shared(&h.host)
                    + shared(&h.reason)
                    + text(&h.upgrade)
                    + h.interim.capacity() * 2
                    + h.request.as_ref().map_or(0, HttpMessage::heap_bytes)
                    + h.response.as_ref().map_or(0, HttpMessage::heap_bytes)
            }
            Detail::Http2(s) => s.heap_bytes(),
            Detail::Redis(r) => std::mem::size_of::<crate::dissect::redis::RedisEntry>() + r.heap_bytes(),
            Detail::Dns(d) => std::mem::size_of::<crate::dissect::dns::DnsEntry>() + d.heap_bytes(),
            Detail::Kafka(k) => std::mem::size_of::<crate::dissect::kafka::KafkaEntry>() + k.heap_bytes(),
            Detail::Amqp(a) => std::mem::size_of::<crate::dissect::amqp::AmqpEntry>() + a.heap_bytes(),
            Detail::Tls(t) => std::mem::size_of::<crate::dissect::tls::TlsEntry>() + t.heap_bytes(),
        };
        crate::memory::alloc_size(std::mem::size_of::<Entry>()) + detail
    }

    /// Request body size, when there is a request.
    pub fn request_body_size(&self) -> Option<u64> {
        if let Some(s) = self.h2() {
            return s.request.as_ref().map(|m| m.body_size);
        }
        self.http().and_then(|h| h.request.as_ref()).map(|m| m.body_size)
    }

    /// Response body size; `None` when there is no response at all.
    pub fn response_body_size(&self) -> Option<u64> {
        if let Some(s) = self.h2() {
            return s.response.as_ref().map(|m| m.body_size);
        }
        self.http().and_then(|h| h.response.as_ref()).map(|m| m.body_size)
    }

    /// A one-line description, with payload-derived text escaped and cut.
    pub fn summary(&self) -> String {
        match &self.detail {
            Detail::Flow(f) => format!(
                "{} {} → {} ({}, {} packets)",
                if f.transport == Transport::Tcp { "TCP" } else { "UDP" },
                f.client,
                f.server,
                f.state(),
                f.metrics.packets[0] + f.metrics.packets[1]
            ),
            Detail::Http(h) => {
                let mut s = String::new();
                match (&h.method, &h.path) {
                    (Some(m), Some(p)) => {
                        s.push_str(&sanitize(m, 16));
                        s.push(' ');
                        if let Some(host) = &h.host {
                            s.push_str(&sanitize(host, 64));
                        }
                        s.push_str(&sanitize(p, 120));
                    }
                    _ => s.push_str("(response without captured request)"),
                }
                match h.status {
                    Some(code) => {
                        s.push_str(&format!(" → {code}"));
                        if let Some(r) = &h.reason
                            && !r.is_empty()
                        {
                            s.push(' ');
                            s.push_str(&sanitize(r, 40));
                        }
                    }
                    None => s.push_str(" → no response"),
                }
                if let Some(us) = self.elapsed_us {
                    s.push_str(&format!(" ({:.1} ms)", us as f64 / 1000.0));
                }
                s
            }
            Detail::Http2(h) => h2_summary(h, self.elapsed_us),
            Detail::Redis(r) => with_elapsed(r.summary(), self.elapsed_us),
            Detail::Dns(d) => with_elapsed(d.summary(), self.elapsed_us),
            Detail::Kafka(k) => with_elapsed(k.summary(), self.elapsed_us),
            Detail::Amqp(a) => with_elapsed(a.summary(), self.elapsed_us),
            Detail::Tls(t) => with_elapsed(t.summary(), self.elapsed_us),
        }
    }
}

/// Appends ` (1.2 ms)` when the entry has a duration.
fn with_elapsed(mut s: String, elapsed_us: Option<u64>) -> String {
    if let Some(us) = elapsed_us {
        s.push_str(&format!(" ({:.1} ms)", us as f64 / 1000.0));
    }
    s
}

/// `POST host/shop.Orders/Create → 200 grpc 14 "unavailable" [stream 3] (1.2 ms)`.
fn h2_summary(h: &H2Stream, elapsed_us: Option<u64>) -> String {
    let mut s = String::new();
    match (&h.method, &h.path) {
        (Some(m), Some(p)) => {
            s.push_str(&sanitize(m, 16));
            s.push(' ');
            if let Some(host) = &h.authority {
                s.push_str(&sanitize(host, 64));
            }
            s.push_str(&sanitize(p, 120));
        }
        _ => s.push_str("(response without captured request)"),
    }
    match h.status {
        Some(code) => s.push_str(&format!(" → {code}")),
        None => s.push_str(" → no response"),
    }
    if let Some(g) = &h.grpc
        && let Some(code) = g.status
    {
        s.push_str(&format!(" grpc {code} {}", crate::endpoint::grpc_status_name(code)));
        if let Some(m) = g.message.as_deref().filter(|m| !m.is_empty()) {
            s.push_str(&format!(" \"{}\"", sanitize(m, 60)));
        }
    }
    if let Some(code) = h.rst_code {
        let name = crate::dissect::http2::frame::error_name(code);
        s.push_str(&format!(" RST_STREAM {name}"));
    }
    let pushed = if h.pushed { ", pushed" } else { "" };
    s.push_str(&format!(" [stream {}{pushed}]", h.stream_id));
    if let Some(us) = elapsed_us {
        s.push_str(&format!(" ({:.1} ms)", us as f64 / 1000.0));
    }
    s
}

/// Escapes control characters (including ANSI escapes and bidi overrides) and cuts long text with
/// a marker, so payload-derived text can sit in a one-line summary.
pub fn sanitize(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars + 8));
    for (n, c) in s.chars().enumerate() {
        if n >= max_chars {
            out.push('…');
            break;
        }
        match c {
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' => {
                out.push_str(&format!("\\u{{{:04x}}}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_escapes_and_cuts() {
        assert_eq!(sanitize("a\x1b[31mb", 50), "a\\x1b[31mb");
        assert_eq!(sanitize("x\u{202e}y", 50), "x\\u{202e}y");
        assert_eq!(sanitize("abcdef", 3), "abc…");
    }
}
