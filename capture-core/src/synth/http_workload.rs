//! A deterministic HTTP/1.1 benchmark capture of any size, streamed to a writer as classic pcap.
//!
//! Clients 10.1.x.y talk to servers 10.2.0.1–8 (ports 80 and 8080) over keep-alive
//! connections: handshake, a few GET/POST request–response pairs, FIN. Responses are 200, 201,
//! 404 or 500 with bodies of 100 B–20 KB; about one in ten is chunked (sometimes with a trailer)
//! and about one in ten is gzip-encoded (with Content-Length).
//!
//! Connections are generated in batches of [`WorkloadOpts::connections_in_parallel`] that start
//! within half a second of each other, so their packets interleave like real traffic; each batch
//! is merged by time and written before the next one (which starts when the previous ends) is
//! generated. Memory stays bounded by one batch whatever the target size.

use crate::synth::conversation::{Conversation, LINK, SynthPacket};
use crate::synth::pcap::{PcapWriter, TsResolution};
use crate::synth::rng::SplitMix64;
use crate::time::Timestamp;
use flate2::Compression;
use flate2::write::GzEncoder;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadOpts {
    /// Stop once the file has at least this many bytes (it overshoots by at most one connection).
    pub target_bytes: u64,
    pub seed: u64,
    /// Connections per batch, i.e. how many flows overlap in time (at least 1).
    pub connections_in_parallel: usize,
    /// Request–response pairs per keep-alive connection.
    pub requests_per_connection: RangeInclusive<u32>,
    /// Time of the first SYN (give or take a few hundred milliseconds).
    pub start: Timestamp,
    /// Timestamp resolution of the pcap file.
    pub resolution: TsResolution,
}

impl Default for WorkloadOpts {
    /// 16 MiB, seed 1, 64 parallel connections of 5–15 requests from 2026-01-15T10:00:00Z, µs.
    fn default() -> Self {
        WorkloadOpts {
            target_bytes: 16 << 20,
            seed: 1,
            connections_in_parallel: 64,
            requests_per_connection: 5..=15,
            start: Timestamp::from_secs_nanos(1_768_471_200, 0),
            resolution: TsResolution::Micros,
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadStats {
    pub packets: u64,
    /// Size of the pcap file, header included.
    pub bytes: u64,
    pub connections: u64,
    /// Request–response pairs.
    pub transactions: u64,
    /// Responses per status code.
    pub status_counts: BTreeMap<u16, u64>,
    pub get_requests: u64,
    pub post_requests: u64,
    /// Responses with `Transfer-Encoding: chunked`.
    pub chunked_responses: u64,
    /// Chunked responses that end with a trailer field.
    pub chunked_with_trailer: u64,
    /// Responses with `Content-Encoding: gzip`.
    pub gzip_responses: u64,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
}

/// Writes the workload to `out` as a classic pcap file (Ethernet, resolution from `opts`).
/// The output is a pure function of `opts`.
pub fn write_http_workload<W: Write>(out: W, opts: &WorkloadOpts) -> io::Result<WorkloadStats> {
    let mut writer = PcapWriter::new(BufWriter::with_capacity(1 << 20, out), LINK, opts.resolution)?;
    let mut generator = Generator::new(opts);
    let mut stats = WorkloadStats::default();
    let parallel = opts.connections_in_parallel.max(1);
    let mut batch_start = opts.start;
    while writer.bytes_written() < opts.target_bytes {
        let mut batch = Vec::with_capacity(parallel);
        let mut batch_bytes = 0u64;
        for _ in 0..parallel {
            let offset_ns = generator.rng.range(0..=500_000) * 1_000;
            let start = Timestamp(batch_start.0.saturating_add(offset_ns));
            let packets = generator.connection(start, &mut stats)?;
            batch_bytes += packets.iter().map(|p| 16 + p.data.len() as u64).sum::<u64>();
            batch.push(packets);
            if writer.bytes_written() + batch_bytes >= opts.target_bytes {
                break;
            }
        }
        stats.connections += batch.len() as u64;
        if let Some(end) = write_merged(&mut writer, batch, &mut stats)? {
            batch_start = end;
        }
    }
    stats.bytes = writer.bytes_written();
    stats.packets = writer.packets();
    writer.into_inner()?.flush()?;
    Ok(stats)
}

/// Writes the packets of several time-sorted connections in global time order (ties broken by
/// connection index, so the output is deterministic); returns the last timestamp.
fn write_merged<W: Write>(
    writer: &mut PcapWriter<W>,
    batch: Vec<Vec<SynthPacket>>,
    stats: &mut WorkloadStats,
) -> io::Result<Option<Timestamp>> {
    let mut iters: Vec<std::vec::IntoIter<SynthPacket>> = batch.into_iter().map(Vec::into_iter).collect();
    let mut heads: Vec<Option<SynthPacket>> = iters.iter_mut().map(Iterator::next).collect();
    let mut heap: BinaryHeap<Reverse<(Timestamp, usize)>> = heads
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.as_ref().map(|p| Reverse((p.ts, i))))
        .collect();
    let mut last = None;
    while let Some(Reverse((_, i))) = heap.pop() {
        let next = iters[i].next();
        if let Some(p) = &next {
            heap.push(Reverse((p.ts, i)));
        }
        if let Some(p) = std::mem::replace(&mut heads[i], next) {
            writer.write_packet(p.ts, &p.data, p.data.len() as u32)?;
            stats.first_ts.get_or_insert(p.ts);
            stats.last_ts = Some(p.ts);
            last = Some(p.ts);
        }
    }
    Ok(last)
}

/// The servers: address, port, Host header and Server header.
const SERVERS: [(u8, u16, &str, &str); 8] = [
    (1, 80, "shop.example.com", "nginx/1.25.3"),
    (2, 80, "api.example.com", "nginx/1.25.3"),
    (3, 80, "static.example.com", "nginx/1.24.0"),
    (4, 80, "img.example.com", "Apache/2.4.58 (Debian)"),
    (5, 8080, "orders.internal.example.com:8080", "Jetty(11.0.20)"),
    (6, 8080, "cart.internal.example.com:8080", "gunicorn"),
    (7, 8080, "users.internal.example.com:8080", "Kestrel"),
    (8, 8080, "search.internal.example.com:8080", "envoy"),
];

const USER_AGENTS: [&str; 5] = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
     Chrome/131.0.0.0 Safari/537.36",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "okhttp/4.12.0",
];

/// Number of client hosts: 10.1.0.1 – 10.1.3.254.
const CLIENTS: usize = 4 * 254;
const EPHEMERAL: RangeInclusive<u16> = 32_768..=60_999;

/// The kind of resource a request asks for, which decides the response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Json,
    Js,
    Css,
    Jpeg,
}

impl Body {
    fn content_type(self) -> &'static str {
        match self {
            Body::Json => "application/json",
            Body::Js => "application/javascript",
            Body::Css => "text/css",
            Body::Jpeg => "image/jpeg",
        }
    }
}

/// One request and its response, as bytes on the wire.
struct Exchange {
    request: Vec<u8>,
    response: Vec<u8>,
}

struct Generator {
    rng: SplitMix64,
    next_port: Vec<u16>,
    requests: RangeInclusive<u32>,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        404 => "Not Found",
        _ => "Internal Server Error",
    }
}

type FormatItems = &'static [time::format_description::BorrowedFormatItem<'static>];
const HTTP_DATE: FormatItems = time::macros::format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// An IMF-fixdate (`Thu, 15 Jan 2026 10:00:00 GMT`).
pub(crate) fn http_date(ts: Timestamp) -> String {
    let secs = i64::try_from(ts.0 / 1_000_000_000).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|dt| dt.format(HTTP_DATE).ok())
        .unwrap_or_else(|| "Thu, 01 Jan 1970 00:00:00 GMT".to_string())
}

impl Generator {
    fn new(opts: &WorkloadOpts) -> Self {
        let mut rng = SplitMix64::new(opts.seed);
        let next_port = (0..CLIENTS)
            .map(|_| rng.range(u64::from(*EPHEMERAL.start())..=u64::from(*EPHEMERAL.end())) as u16)
            .collect();
        Generator {
            rng,
            next_port,
            requests: opts.requests_per_connection.clone(),
        }
    }

    /// Picks a client host and its next ephemeral port (unique per host until the range wraps).
    fn client(&mut self) -> SocketAddr {
        let i = self.rng.range_usize(0..=CLIENTS - 1);
        let port = self.next_port[i];
        self.next_port[i] = if port >= *EPHEMERAL.end() {
            *EPHEMERAL.start()
        } else {
            port + 1
        };
        let ip = Ipv4Addr::new(10, 1, (i / 254) as u8, (i % 254) as u8 + 1);
        SocketAddr::new(IpAddr::V4(ip), port)
    }

    /// One whole connection, its packets sorted by time.
    fn connection(&mut self, start: Timestamp, stats: &mut WorkloadStats) -> io::Result<Vec<SynthPacket>> {
        let client = self.client();
        let &(host_octet, port, host, server_name) = self.rng.pick(&SERVERS);
        let server = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 2, 0, host_octet)), port);
        let user_agent = *self.rng.pick(&USER_AGENTS);
        let rtt_us = if self.rng.chance(0.3) {
            self.rng.range(200..=1_000)
        } else {
            self.rng.range(5_000..=40_000)
        };
        let (isn_c, isn_s) = (self.rng.next_u32(), self.rng.next_u32());
        let mut conv = Conversation::new(client, server, start, rtt_us, isn_c, isn_s);
        conv.handshake();
        let lo = u64::from(*self.requests.start());
        let hi = u64::from(*self.requests.end()).max(lo);
        let n = self.rng.range(lo..=hi);
        for i in 0..n {
            let think_us = if i == 0 {
                self.rng.range(0..=2_000)
            } else {
                self.rng.range(0..=150_000)
            };
            let server_us = if self.rng.chance(0.05) {
                self.rng.range(100_000..=600_000)
            } else {
                self.rng.range(500..=30_000)
            };
            // Date: roughly when the response leaves, close enough at one-second resolution.
            let date_ts = Timestamp(conv.end_ts().0 + (think_us + server_us + rtt_us) * 1_000);
            let ex = self.exchange(host, server_name, user_agent, date_ts, stats)?;
            conv.client_send(&ex.request, think_us);
            conv.server_send(&ex.response, server_us);
            stats.transactions += 1;
        }
        conv.close();
        Ok(conv.packets())
    }

    fn request_id(&mut self) -> String {
        format!("{:016x}", self.rng.next_u64())
    }

    /// Builds one request and its response.
    fn exchange(
        &mut self,
        host: &str,
        server_name: &str,
        user_agent: &str,
        date: Timestamp,
        stats: &mut WorkloadStats,
    ) -> io::Result<Exchange> {
        let rng = &mut self.rng;
        let post = rng.chance(0.3);
        let (path, kind, ok_status) = if post {
            match rng.range(0..=3) {
                0 => ("/api/v1/orders".to_string(), Body::Json, 201),
                1 => ("/api/v1/cart/items".to_string(), Body::Json, 201),
                2 => ("/api/v1/login".to_string(), Body::Json, 200),
                _ => (format!("/api/v1/search?q=item{}", rng.range(1..=999)), Body::Json, 200),
            }
        } else {
            match rng.range(0..=7) {
                0 | 1 => (format!("/api/v1/orders/{}", rng.range(100..=99_999)), Body::Json, 200),
                2 => (
                    format!("/api/v1/products?page={}&limit=20", rng.range(1..=40)),
                    Body::Json,
                    200,
                ),
                3 => (format!("/api/v1/users/{}/cart", rng.range(1..=5_000)), Body::Json, 200),
                4 => ("/static/app.js".to_string(), Body::Js, 200),
                5 => (format!("/static/css/main.{:08x}.css", rng.next_u32()), Body::Css, 200),
                6 => (
                    format!("/images/products/{}.jpg", rng.range(1..=20_000)),
                    Body::Jpeg,
                    200,
                ),
                _ => ("/health".to_string(), Body::Json, 200),
            }
        };
        let roll = rng.next_f64();
        let status = if roll < 0.06 {
            404
        } else if roll < 0.085 {
            500
        } else {
            ok_status
        };
        let request_id = self.request_id();

        let mut req = String::with_capacity(512);
        let method = if post { "POST" } else { "GET" };
        let _ = write!(
            req,
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {user_agent}\r\n"
        );
        req.push_str(match kind {
            Body::Json => "Accept: application/json\r\n",
            _ => "Accept: */*\r\n",
        });
        req.push_str("Accept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n");
        let _ = write!(req, "X-Request-Id: {request_id}\r\n");
        let mut request = if post {
            let len = self.rng.range_usize(100..=2_000);
            let body = json_body(&mut self.rng, len);
            let _ = write!(
                req,
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let mut r = req.into_bytes();
            r.extend_from_slice(&body);
            r
        } else {
            req.push_str("\r\n");
            req.into_bytes()
        };
        request.shrink_to_fit();

        let (kind, body_len) = if status >= 400 {
            (Body::Json, self.rng.range_usize(100..=400))
        } else {
            // Log-uniform between 100 B and 20 KB: many small bodies, a few large ones.
            let len = 100.0 * 200f64.powf(self.rng.next_f64());
            (kind, len as usize)
        };
        let body = match kind {
            Body::Json if status >= 400 => error_body(&mut self.rng, status, &request_id, body_len),
            Body::Json => json_body(&mut self.rng, body_len),
            Body::Js => text_body(&mut self.rng, body_len, false),
            Body::Css => text_body(&mut self.rng, body_len, true),
            Body::Jpeg => jpeg_body(&mut self.rng, body_len),
        };
        let roll = self.rng.next_f64();
        let chunked = roll < 0.1;
        let gzip = !chunked && kind != Body::Jpeg && roll < 0.21;

        let mut head = String::with_capacity(256);
        let _ = write!(
            head,
            "HTTP/1.1 {status} {}\r\nDate: {}\r\nServer: {server_name}\r\nContent-Type: {}\r\n",
            reason(status),
            http_date(date),
            kind.content_type()
        );
        let wire_body = if gzip {
            let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 2 + 64), Compression::fast());
            enc.write_all(&body)?;
            let gz = enc.finish()?;
            let _ = write!(
                head,
                "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\nContent-Length: {}\r\n",
                gz.len()
            );
            stats.gzip_responses += 1;
            gz
        } else if chunked {
            let trailer = self.rng.chance(0.3);
            head.push_str("Transfer-Encoding: chunked\r\n");
            if trailer {
                head.push_str("Trailer: X-Content-Checksum\r\n");
                stats.chunked_with_trailer += 1;
            }
            stats.chunked_responses += 1;
            chunk(&mut self.rng, &body, trailer)
        } else {
            let _ = write!(head, "Content-Length: {}\r\n", body.len());
            body
        };
        let _ = write!(head, "Connection: keep-alive\r\nX-Request-Id: {request_id}\r\n\r\n");
        let mut response = head.into_bytes();
        response.extend_from_slice(&wire_body);

        *stats.status_counts.entry(status).or_insert(0) += 1;
        if post {
            stats.post_requests += 1;
        } else {
            stats.get_requests += 1;
        }
        Ok(Exchange { request, response })
    }
}

/// A JSON document of roughly `len` bytes (never much more): an object with an `items` array.
fn json_body(rng: &mut SplitMix64, len: usize) -> Vec<u8> {
    let mut s = String::with_capacity(len + 128);
    let _ = write!(s, "{{\"request\":\"{:016x}\",\"items\":[", rng.next_u64());
    let mut first = true;
    loop {
        let mut item = String::with_capacity(128);
        let id = rng.range(1..=999_999);
        let _ = write!(
            item,
            "{}{{\"id\":{id},\"sku\":\"SKU-{:06}\",\"name\":\"Product {}\",\"price\":{}.{:02},\
            \"qty\":{},\"in_stock\":{}}}",
            if first { "" } else { "," },
            rng.range(0..=999_999),
            rng.range(1..=5_000),
            rng.range(1..=999),
            rng.range(0..=99),
            rng.range(1..=10),
            rng.chance(0.8)
        );
        if !first && s.len() + item.len() + 2 > len {
            break;
        }
        s.push_str(&item);
        first = false;
    }
    s.push_str("]}");
    s.into_bytes()
}

/// A JSON error document of about `len` bytes.
fn error_body(rng: &mut SplitMix64, status: u16, request_id: &str, len: usize) -> Vec<u8> {
    let (code, message) = match status {
        404 => ("not_found", "The requested resource does not exist"),
        _ => ("internal", "Unexpected error while handling the request"),
    };
    let mut s = format!(
        "{{\"error\":\"{code}\",\"status\":{status},\"message\":\"{message}\",\
        \"request_id\":\"{request_id}\",\"detail\":\""
    );
    while s.len() + 2 < len {
        s.push(char::from(b'a' + rng.range(0..=25) as u8));
    }
    s.push_str("\"}");
    s.into_bytes()
}

/// JavaScript- or CSS-looking text of exactly `len` bytes.
fn text_body(rng: &mut SplitMix64, len: usize, css: bool) -> Vec<u8> {
    let mut s = String::with_capacity(len + 80);
    while s.len() < len {
        let n = rng.range(1..=9_999);
        if css {
            let _ = writeln!(
                s,
                ".c{n}{{margin:0 {}px;color:#{:06x}}}",
                n % 17,
                rng.range(0..=0xFF_FFFF)
            );
        } else {
            let _ = writeln!(s, "function f{n}(a,b){{return a*{}+b;}}", n % 97);
        }
    }
    s.truncate(len);
    s.into_bytes()
}

/// A structurally valid JPEG/JFIF file of about `len` bytes: SOI, a JFIF APP0 segment, a
/// start-of-scan header, noise as entropy-coded data (no 0xFF bytes, so no stuffing), EOI.
fn jpeg_body(rng: &mut SplitMix64, len: usize) -> Vec<u8> {
    const HEAD: [u8; 30] = [
        0xFF, 0xD8, // SOI
        0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
        0x00, // APP0: JFIF 1.01, 1:1 aspect, no thumbnail
        0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00, // SOS, one component
    ];
    let total = len.max(HEAD.len() + 2);
    let mut body = vec![0u8; total];
    body[..HEAD.len()].copy_from_slice(&HEAD);
    rng.fill_bytes(&mut body[HEAD.len()..total - 2]);
    for b in &mut body[HEAD.len()..total - 2] {
        if *b == 0xFF {
            *b = 0xFE;
        }
    }
    body[total - 2..].copy_from_slice(&[0xFF, 0xD9]); // EOI
    body
}

/// Chunked transfer coding of `body` with chunks of varying size, optionally with a trailer.
fn chunk(rng: &mut SplitMix64, body: &[u8], trailer: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 64 + 64);
    let mut rest = body;
    while !rest.is_empty() {
        let n = rng.range_usize(1..=4_096).min(rest.len());
        let _ = write!(out, "{n:x}\r\n");
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    out.extend_from_slice(b"0\r\n");
    if trailer {
        let sum = body
            .iter()
            .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(*b)));
        let _ = write!(out, "X-Content-Checksum: {sum:08x}\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::testutil::{parse_messages, reassemble};
    use pcap_parser::parse_pcap;
    use std::collections::HashSet;

    fn small(seed: u64) -> WorkloadOpts {
        WorkloadOpts {
            target_bytes: 1_500_000,
            seed,
            connections_in_parallel: 16,
            ..Default::default()
        }
    }

    #[test]
    fn small_workload_is_valid_and_consistent() {
        let opts = small(7);
        let mut file = Vec::new();
        let stats = write_http_workload(&mut file, &opts).unwrap();
        assert_eq!(stats.bytes, file.len() as u64);
        assert!(stats.bytes >= opts.target_bytes);
        assert!(stats.bytes < opts.target_bytes + 400_000, "overshoot {}", stats.bytes);
        assert!(stats.connections > 16, "more than one batch");
        let (_, cap) = parse_pcap(&file).unwrap();
        assert_eq!(cap.blocks.len() as u64, stats.packets);
        let times: Vec<u64> = cap
            .blocks
            .iter()
            .map(|b| u64::from(b.ts_sec) * 1_000_000 + u64::from(b.ts_usec))
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "time goes backwards");
        assert_eq!(stats.first_ts.map(|t| t.as_micros()), times.first().copied());
        assert_eq!(stats.last_ts.map(|t| t.as_micros()), times.last().copied());

        let (order, streams) = reassemble(cap.blocks.iter().map(|b| b.data));
        assert_eq!(order.len() as u64, stats.connections);
        assert_eq!(
            order.iter().collect::<HashSet<_>>().len(),
            order.len(),
            "4-tuple reused"
        );
        let mut transactions = 0;
        let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
        let (mut chunked, mut trailers, mut gzip, mut posts) = (0, 0, 0, 0);
        for (c, s) in order {
            assert!(matches!(s.port(), 80 | 8080));
            assert!(s.ip().to_string().starts_with("10.2.0."));
            assert!(c.ip().to_string().starts_with("10.1."));
            let reqs = parse_messages(&streams[&(c, s)], false);
            let resps = parse_messages(&streams[&(s, c)], true);
            assert_eq!(reqs.len(), resps.len());
            assert!((5..=15).contains(&reqs.len()));
            for r in &reqs {
                if r.line.starts_with("POST") {
                    posts += 1;
                    assert!((100..=2_000).contains(&r.body.len()), "POST body {}", r.body.len());
                } else {
                    assert!(r.body.is_empty());
                }
            }
            for r in resps {
                *statuses.entry(r.line.parse().unwrap()).or_insert(0) += 1;
                assert!((100..=20_000).contains(&r.body.len()), "body {}", r.body.len());
                chunked += u64::from(r.chunked);
                trailers += u64::from(r.trailer);
                gzip += u64::from(r.gzip);
            }
            transactions += reqs.len() as u64;
        }
        assert_eq!(transactions, stats.transactions);
        assert_eq!(posts, stats.post_requests);
        assert_eq!(transactions, stats.get_requests + stats.post_requests);
        assert_eq!(statuses, stats.status_counts);
        assert_eq!(
            (chunked, trailers, gzip),
            (
                stats.chunked_responses,
                stats.chunked_with_trailer,
                stats.gzip_responses
            )
        );
        assert!(trailers > 0);
        let share = |n: u64| n as f64 / stats.transactions as f64;
        assert!(
            (0.05..0.16).contains(&share(chunked)),
            "chunked share {}",
            share(chunked)
        );
        assert!((0.05..0.16).contains(&share(gzip)), "gzip share {}", share(gzip));
        assert_eq!(
            stats.status_counts.keys().copied().collect::<Vec<_>>(),
            [200, 201, 404, 500]
        );
    }

    #[test]
    fn deterministic_per_seed() {
        let opts = WorkloadOpts {
            target_bytes: 200_000,
            ..small(3)
        };
        let mut a = Vec::new();
        let mut b = Vec::new();
        let mut c = Vec::new();
        let sa = write_http_workload(&mut a, &opts).unwrap();
        write_http_workload(&mut b, &opts).unwrap();
        write_http_workload(
            &mut c,
            &WorkloadOpts {
                seed: 4,
                ..opts.clone()
            },
        )
        .unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(sa.first_ts.map(|t| t >= opts.start), Some(true));
    }

    #[test]
    fn nanosecond_output() {
        let opts = WorkloadOpts {
            target_bytes: 50_000,
            resolution: TsResolution::Nanos,
            ..small(5)
        };
        let mut out = Vec::new();
        let stats = write_http_workload(&mut out, &opts).unwrap();
        let (_, cap) = parse_pcap(&out).unwrap();
        assert!(cap.header.is_nanosecond_precision());
        assert_eq!(cap.blocks.len() as u64, stats.packets);
    }

    #[test]
    fn empty_target_writes_only_the_header() {
        let mut out = Vec::new();
        let stats = write_http_workload(
            &mut out,
            &WorkloadOpts {
                target_bytes: 0,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((stats.bytes, stats.packets, stats.connections), (24, 0, 0));
        assert_eq!(out.len(), 24);
    }

    #[test]
    fn http_date_format() {
        assert_eq!(
            http_date(Timestamp::from_secs_nanos(1_768_471_200, 5)),
            "Thu, 15 Jan 2026 10:00:00 GMT"
        );
    }

    #[test]
    fn chunk_encoding_round_trips() {
        let mut rng = SplitMix64::new(9);
        let body: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let wire = chunk(&mut rng, &body, true);
        let mut msg = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        msg.extend_from_slice(&wire);
        let parsed = parse_messages(&msg, true);
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].body, body);
        assert!(parsed[0].chunked && parsed[0].trailer);
    }
}
