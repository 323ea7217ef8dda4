//! Pure HTTP/1.x parsing: message-start probes, header blocks (through [`super::fast`], or
//! `httparse` for the heads it hands on), and the
//! chunked transfer coding. Nothing here keeps state between calls except [`ChunkedDecoder`], and
//! nothing allocates per byte; every function is safe on arbitrary input (fuzzed).

use super::fast;
use super::names::{self, Known};
use crate::dissect::Probe;
use std::mem::MaybeUninit;

/// Methods recognised at the start of a request line. `PRI` is absent on purpose: it is the
/// HTTP/2 preface.
pub(crate) const METHODS: &[&[u8]] = &[
    b"GET",
    b"POST",
    b"PUT",
    b"DELETE",
    b"HEAD",
    b"OPTIONS",
    b"PATCH",
    b"CONNECT",
    b"TRACE",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"REPORT",
    b"SEARCH",
    b"MKCALENDAR",
    b"PURGE",
    b"LINK",
    b"UNLINK",
    b"CHECKOUT",
    b"MERGE",
    b"NOTIFY",
    b"SUBSCRIBE",
    b"UNSUBSCRIBE",
    b"ACL",
    b"BIND",
];

/// A request line or status line longer than this is not taken for HTTP when probing.
pub const MAX_PROBE_LINE: usize = 8 << 10;

/// Does `buf` start with an HTTP/1.x request line (`METHOD SP target SP HTTP/1.x`)?
pub fn probe_request(buf: &[u8]) -> Probe {
    let Some(sp) = buf.iter().take(16).position(|&b| b == b' ') else {
        // Could still be the prefix of a method.
        return if buf.len() < 16 && METHODS.iter().any(|m| m.starts_with(buf) || buf.starts_with(m)) && !buf.is_empty()
        {
            Probe::NeedMore
        } else {
            Probe::NoMatch
        };
    };
    if !METHODS.contains(&&buf[..sp]) {
        return Probe::NoMatch;
    }
    let Some(eol) = memchr::memchr(b'\n', &buf[..buf.len().min(MAX_PROBE_LINE)]) else {
        return if buf.len() < MAX_PROBE_LINE {
            Probe::NeedMore
        } else {
            Probe::NoMatch
        };
    };
    let line = trim_cr(&buf[..eol]);
    if line.len() >= 9 && (line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0")) {
        Probe::Match
    } else {
        Probe::NoMatch
    }
}

/// Does `buf` start with an HTTP/1.x status line (`HTTP/1.x SP 3DIGIT`)?
pub fn probe_response(buf: &[u8]) -> Probe {
    const PREFIX: &[u8] = b"HTTP/1.";
    let n = buf.len().min(PREFIX.len());
    if buf[..n] != PREFIX[..n] {
        return Probe::NoMatch;
    }
    if buf.len() < 13 {
        return Probe::NeedMore;
    }
    let ok = matches!(buf[7], b'0' | b'1') && buf[8] == b' ' && buf[9..12].iter().all(u8::is_ascii_digit);
    if ok { Probe::Match } else { Probe::NoMatch }
}

/// Either probe.
pub fn probe(buf: &[u8]) -> Probe {
    match (probe_request(buf), probe_response(buf)) {
        (Probe::Match, _) | (_, Probe::Match) => Probe::Match,
        (Probe::NeedMore, _) | (_, Probe::NeedMore) => Probe::NeedMore,
        _ => Probe::NoMatch,
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Finds the first position at or after `from` where a request line or status line starts at the
/// beginning of a line (used to re-synchronise after a gap or an error).
pub fn find_message_start(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at < buf.len() {
        if at == 0 || buf[at - 1] == b'\n' {
            let rest = &buf[at..];
            let looks = rest.starts_with(b"HTTP/1.")
                || METHODS
                    .iter()
                    .any(|m| rest.len() > m.len() && rest.starts_with(m) && rest[m.len()] == b' ');
            if looks && matches!(probe(rest), Probe::Match | Probe::NeedMore) {
                return Some(at);
            }
        }
        at = match memchr::memchr(b'\n', &buf[at..]) {
            Some(p) => at + p + 1,
            None => return None,
        };
    }
    None
}

/// Result of looking for the end of a header block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadEnd {
    /// The block, including its final empty line, is this long.
    Found(usize),
    NeedMore,
    TooLarge,
}

/// Where a head of at most `max` bytes can end in `buf`: its first `max + 4` bytes (room for
/// the empty line that ends it).
pub fn head_window(buf: &[u8], max: usize) -> &[u8] {
    &buf[..buf.len().min(max.saturating_add(4))]
}

/// Looks for the empty line that ends a header block (`\r\n\r\n`, or a bare `\n\n`).
pub fn find_head_end(buf: &[u8], max: usize) -> HeadEnd {
    // The head ends at the first line feed followed by an empty line (`\n\n` or `\n\r\n`).
    // Two vectorised searches; a line-by-line walk cost a call per header line.
    static CRLF: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\n\r\n"));
    static LF: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\n\n"));
    let window = head_window(buf, max);
    let crlf = CRLF.find(window);
    // A bare `\n\n` counts only when it starts before the `\n\r\n`.
    let lf = LF.find(&window[..crlf.map_or(window.len(), |c| c + 1)]);
    match (lf, crlf) {
        (Some(l), _) => return HeadEnd::Found(l + 2),
        (None, Some(c)) => return HeadEnd::Found(c + 3),
        (None, None) => {}
    }
    if buf.len() > max {
        HeadEnd::TooLarge
    } else {
        HeadEnd::NeedMore
    }
}

/// Why a header block did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    Syntax(&'static str),
    TooManyHeaders,
    BadContentLength,
    BadTransferEncoding,
}

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Until the sender closes the connection (responses only).
    Close,
}

/// What the dissector needs from any header block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Common {
    /// Minor version: 0 or 1.
    pub minor: u8,
    pub content_length: Option<u64>,
    /// The final transfer coding is `chunked`.
    pub chunked: bool,
    /// A Transfer-Encoding is present but does not end in `chunked`.
    pub other_transfer_coding: bool,
    pub connection_close: bool,
    pub upgrade: Option<String>,
    /// The index of the first `Host` field.
    pub host_at: Option<usize>,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
    /// [`crate::entry::head_facts`] bits, `KNOWN` set.
    pub facts: u8,
}

/// A parsed request head, borrowing its texts from the head: the dissector decides what to
/// copy (most of it repeats on a connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub host: Option<std::borrow::Cow<'a, str>>,
    pub common: Common,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead<'a> {
    pub status: u16,
    pub reason: &'a str,
    pub common: Common,
}

/// A field value as text, borrowed when it is UTF-8 (checked by `from_utf8`'s ASCII fast path;
/// `from_utf8_lossy` walks the bytes in chunks even when they are valid).
fn text(b: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

fn parser_config() -> httparse::ParserConfig {
    let mut cfg = httparse::ParserConfig::default();
    cfg.allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_request_line_delimiters(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .ignore_invalid_headers_in_requests(true)
        .ignore_invalid_headers_in_responses(true);
    cfg
}

fn common(headers: &[httparse::Header<'_>], minor: u8) -> Result<Common, HeadError> {
    use crate::entry::head_facts;
    let mut c = Common {
        minor,
        facts: head_facts::KNOWN,
        ..Common::default()
    };
    for (i, h) in headers.iter().enumerate() {
        match names::known(h.name.as_bytes()) {
            None => {}
            Some(Known::Redactable) => c.facts |= head_facts::REDACTABLE_NAME,
            Some(Known::Host) => {
                c.host_at.get_or_insert(i);
            }
            Some(Known::Expect) => c.expect_continue |= h.value.eq_ignore_ascii_case(b"100-continue"),
            Some(Known::Upgrade) => c.upgrade = Some(text(h.value).trim().to_string()),
            Some(Known::Connection) => {
                let v = h.value;
                // `keep-alive` and `close` alone are most of them.
                c.connection_close |= v.eq_ignore_ascii_case(b"close")
                    || (!v.eq_ignore_ascii_case(b"keep-alive")
                        && text(v).split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
            }
            Some(Known::ContentType) if mentions_dns_message(h.value) => c.facts |= head_facts::DNS_MESSAGE,
            Some(Known::ContentType) => {}
            Some(Known::ContentLength) => {
                let n = content_length(h.value)?;
                if c.content_length.is_some_and(|p| p != n) {
                    return Err(HeadError::BadContentLength);
                }
                c.content_length = Some(n);
            }
            Some(Known::TransferEncoding) => {
                let v = text(h.value);
                let last = v.split(',').map(str::trim).rfind(|s| !s.is_empty()).unwrap_or("");
                c.chunked = last.eq_ignore_ascii_case("chunked");
                c.other_transfer_coding = !c.chunked && !last.is_empty();
            }
        }
    }
    Ok(c)
}

/// A `Content-Length` value: digits, or a list of identical values (RFC 9110 §8.6).
fn content_length(v: &[u8]) -> Result<u64, HeadError> {
    // Plain digits, the usual case, without the text handling below.
    if !v.is_empty() && v.len() <= 19 && v.iter().all(u8::is_ascii_digit) {
        return Ok(v.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')));
    }
    let v = std::str::from_utf8(v).map_err(|_| HeadError::BadContentLength)?.trim();
    let mut parsed: Option<u64> = None;
    for part in v.split(',') {
        let n: u64 = part.trim().parse().map_err(|_| HeadError::BadContentLength)?;
        if parsed.is_some_and(|p| p != n) {
            return Err(HeadError::BadContentLength);
        }
        parsed = Some(n);
    }
    parsed.ok_or(HeadError::BadContentLength)
}

/// Whether `v` (a field value, or a whole head) holds `dns-message`, in any case.
pub(crate) fn mentions_dns_message(v: &[u8]) -> bool {
    const M: &[u8] = b"dns-message";
    // Only where a `d` is: comparing every window cost more than the rest of the head.
    memchr::memchr2_iter(b'd', b'D', v).any(|i| v.get(i..i + M.len()).is_some_and(|w| crate::ascii::eq_lower(w, M)))
}

/// Parses a complete request header block.
pub fn parse_request_head(head: &[u8], max_headers: usize) -> Result<RequestHead<'_>, HeadError> {
    match parse_request_prefix(head, max_headers)? {
        Some((rh, _)) => Ok(rh),
        None => Err(HeadError::Syntax("incomplete header block")),
    }
}

/// Parses the request head at the start of `input`, which may go on past it (a body, the next
/// message): the head and its length, or `None` when its end is not in `input` yet.
pub fn parse_request_prefix(input: &[u8], max_headers: usize) -> Result<Option<(RequestHead<'_>, usize)>, HeadError> {
    let mut fields = [httparse::EMPTY_HEADER; fast::FIELDS];
    if let Some((line, n, len)) = fast::request(input, max_headers, &mut fields) {
        let fields = &fields[..n];
        let common = common(fields, line.minor)?;
        let head = RequestHead {
            method: line.method,
            target: line.target,
            host: common.host_at.map(|i| text(fields[i].value)),
            common,
        };
        return Ok(Some((head, len)));
    }
    parse_request_slow(input, max_headers)
}

/// [`parse_request_prefix`] through `httparse`.
fn parse_request_slow(input: &[u8], max_headers: usize) -> Result<Option<(RequestHead<'_>, usize)>, HeadError> {
    let mut stack = [const { MaybeUninit::uninit() }; STACK_HEADERS];
    let mut heap = Vec::new();
    let storage = header_storage(&mut stack, &mut heap, max_headers);
    let mut req = httparse::Request::new(&mut []);
    let len = match parser_config().parse_request_with_uninit_headers(&mut req, input, storage) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(e) => return Err(HeadError::Syntax(error_name(e))),
    };
    let minor = req.version.unwrap_or(1);
    let common = common(req.headers, minor)?;
    let host = common.host_at.map(|i| text(req.headers[i].value));
    let head = RequestHead {
        method: req.method.unwrap_or_default(),
        target: req.path.unwrap_or_default(),
        host,
        common,
    };
    Ok(Some((head, len)))
}

/// Parses a complete response header block.
pub fn parse_response_head(head: &[u8], max_headers: usize) -> Result<ResponseHead<'_>, HeadError> {
    match parse_response_prefix(head, max_headers)? {
        Some((rh, _)) => Ok(rh),
        None => Err(HeadError::Syntax("incomplete header block")),
    }
}

/// Parses the response head at the start of `input`, as [`parse_request_prefix`] does.
pub fn parse_response_prefix(input: &[u8], max_headers: usize) -> Result<Option<(ResponseHead<'_>, usize)>, HeadError> {
    let mut fields = [httparse::EMPTY_HEADER; fast::FIELDS];
    if let Some((line, n, len)) = fast::response(input, max_headers, &mut fields) {
        let head = ResponseHead {
            status: line.code,
            reason: line.reason,
            common: common(&fields[..n], line.minor)?,
        };
        return Ok(Some((head, len)));
    }
    parse_response_slow(input, max_headers)
}

/// [`parse_response_prefix`] through `httparse`.
fn parse_response_slow(input: &[u8], max_headers: usize) -> Result<Option<(ResponseHead<'_>, usize)>, HeadError> {
    let mut stack = [const { MaybeUninit::uninit() }; STACK_HEADERS];
    let mut heap = Vec::new();
    let storage = header_storage(&mut stack, &mut heap, max_headers);
    let mut resp = httparse::Response::new(&mut []);
    let len = match parser_config().parse_response_with_uninit_headers(&mut resp, input, storage) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(e) => return Err(HeadError::Syntax(error_name(e))),
    };
    let minor = resp.version.unwrap_or(1);
    let head = ResponseHead {
        status: resp.code.unwrap_or(0),
        reason: resp.reason.unwrap_or(""),
        common: common(resp.headers, minor)?,
    };
    Ok(Some((head, len)))
}

/// Where the fast path ([`super::fast`]) and `httparse` disagree on the head at the start of
/// `input` (read as a request when it does not start with `HTTP/`), as text; `None` when the
/// fast path hands the head on or both give the same line, fields and length. For the tests
/// and the HTTP/1 fuzz target.
#[doc(hidden)]
pub fn fast_path_disagreement(input: &[u8], max_headers: usize) -> Option<String> {
    let mut fields = [httparse::EMPTY_HEADER; fast::FIELDS];
    let mut stack = [const { MaybeUninit::uninit() }; STACK_HEADERS];
    let mut heap = Vec::new();
    let storage = header_storage(&mut stack, &mut heap, max_headers);
    if input.starts_with(b"HTTP/") {
        let (line, n, len) = fast::response(input, max_headers, &mut fields)?;
        let mut resp = httparse::Response::new(&mut []);
        let slow = parser_config().parse_response_with_uninit_headers(&mut resp, input, storage);
        let fast = (
            Ok(httparse::Status::Complete(len)),
            Some(line.minor),
            Some(line.code),
            Some(line.reason),
            &fields[..n],
        );
        let slow = (slow, resp.version, resp.code, resp.reason, &*resp.headers);
        (fast != slow).then(|| format!("fast {fast:?}, httparse {slow:?}"))
    } else {
        let (line, n, len) = fast::request(input, max_headers, &mut fields)?;
        let mut req = httparse::Request::new(&mut []);
        let slow = parser_config().parse_request_with_uninit_headers(&mut req, input, storage);
        let fast = (
            Ok(httparse::Status::Complete(len)),
            Some(line.method),
            Some(line.target),
            Some(line.minor),
            &fields[..n],
        );
        let slow = (slow, req.method, req.path, req.version, &*req.headers);
        (fast != slow).then(|| format!("fast {fast:?}, httparse {slow:?}"))
    }
}

/// Header slots up to this many live on the stack; more (a raised `http_max_headers`) on the
/// heap. Uninitialised either way: a head is parsed twice per exchange, and allocating and
/// zeroing 128 slots each time cost more than parsing the head.
const STACK_HEADERS: usize = 128;

fn header_storage<'s, 'b>(
    stack: &'s mut [MaybeUninit<httparse::Header<'b>>; STACK_HEADERS],
    heap: &'s mut Vec<MaybeUninit<httparse::Header<'b>>>,
    max_headers: usize,
) -> &'s mut [MaybeUninit<httparse::Header<'b>>] {
    let max = max_headers.max(1);
    if max <= STACK_HEADERS {
        &mut stack[..max]
    } else {
        heap.resize_with(max, MaybeUninit::uninit);
        heap
    }
}

fn error_name(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status code",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    }
}

/// How a request body is delimited (RFC 9112 §6.3).
pub fn request_framing(c: &Common) -> Result<Framing, HeadError> {
    if c.chunked {
        Ok(Framing::Chunked)
    } else if c.other_transfer_coding {
        Err(HeadError::BadTransferEncoding)
    } else {
        Ok(match c.content_length {
            Some(0) | None => Framing::None,
            Some(n) => Framing::Length(n),
        })
    }
}

/// How a response body is delimited, given the request method and the status.
pub fn response_framing(c: &Common, status: u16, request_method: Option<&str>) -> Framing {
    let head = request_method.is_some_and(|m| m.eq_ignore_ascii_case("HEAD"));
    let connect_ok = request_method.is_some_and(|m| m.eq_ignore_ascii_case("CONNECT")) && (200..300).contains(&status);
    if head || (100..200).contains(&status) || status == 204 || status == 304 || connect_ok {
        return Framing::None;
    }
    if c.chunked {
        Framing::Chunked
    } else if c.other_transfer_coding {
        Framing::Close
    } else {
        match c.content_length {
            Some(0) => Framing::None,
            Some(n) => Framing::Length(n),
            None => Framing::Close,
        }
    }
}

/// Header (name, value) pairs of a stored head block, lossy UTF-8; used when showing a payload.
pub fn header_pairs(head: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = head.split(|&b| b == b'\n').skip(1);
    for line in lines.by_ref() {
        let line = trim_cr(line);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            // Obsolete line folding: continue the previous value.
            if let Some((_, v)) = out.last_mut() {
                let v: &mut String = v;
                v.push(' ');
                v.push_str(String::from_utf8_lossy(line).trim());
            }
            continue;
        }
        if let Some(colon) = memchr::memchr(b':', line) {
            let name = String::from_utf8_lossy(&line[..colon]).trim().to_string();
            let value = String::from_utf8_lossy(&line[colon + 1..]).trim().to_string();
            out.push((name, value));
        }
    }
    out
}

/// The longest chunk-size line accepted (size, extensions, CRLF).
pub const MAX_CHUNK_LINE: usize = 4096;

/// One step of chunked decoding over the bytes available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkStep {
    /// Bytes of input used by this step.
    pub consumed: usize,
    /// Entity data inside the consumed bytes: `input[data.0..data.1]`.
    pub data: Option<(usize, usize)>,
    /// Trailer-section bytes inside the consumed bytes.
    pub trailer: Option<(usize, usize)>,
    /// The body, trailers included, is complete.
    pub done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    BadSize,
    LineTooLong,
    MissingCrlf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ChunkState {
    #[default]
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

/// The chunked transfer coding as a resumable state machine. `step` never needs more than one
/// line buffered; chunk data passes straight through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChunkedDecoder {
    state: ChunkState,
}

impl ChunkedDecoder {
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Bytes of the current chunk's data still to come (0 outside chunk data).
    pub fn data_left(&self) -> u64 {
        match self.state {
            ChunkState::Data(n) => n,
            _ => 0,
        }
    }

    /// Decodes as much of `input` as possible in one step. `consumed == 0` with `done == false`
    /// means more input is needed.
    pub fn step(&mut self, input: &[u8]) -> Result<ChunkStep, ChunkError> {
        let none = ChunkStep {
            consumed: 0,
            data: None,
            trailer: None,
            done: false,
        };
        match self.state {
            ChunkState::Done => Ok(ChunkStep { done: true, ..none }),
            ChunkState::Size => {
                let Some(nl) = memchr::memchr(b'\n', &input[..input.len().min(MAX_CHUNK_LINE)]) else {
                    return if input.len() >= MAX_CHUNK_LINE {
                        Err(ChunkError::LineTooLong)
                    } else {
                        Ok(none)
                    };
                };
                let line = trim_cr(&input[..nl]);
                let hex_end = line.iter().position(|b| !b.is_ascii_hexdigit()).unwrap_or(line.len());
                let rest = &line[hex_end..];
                let rest_ok = rest.iter().all(|&b| b == b' ' || b == b'\t')
                    || rest.iter().find(|&&b| b != b' ' && b != b'\t') == Some(&b';');
                if hex_end == 0 || hex_end > 15 || !rest_ok {
                    return Err(ChunkError::BadSize);
                }
                let size = u64::from_str_radix(
                    std::str::from_utf8(&line[..hex_end]).map_err(|_| ChunkError::BadSize)?,
                    16,
                )
                .map_err(|_| ChunkError::BadSize)?;
                self.state = if size == 0 {
                    ChunkState::Trailers
                } else {
                    ChunkState::Data(size)
                };
                Ok(ChunkStep {
                    consumed: nl + 1,
                    ..none
                })
            }
            ChunkState::Data(left) => {
                if input.is_empty() {
                    return Ok(none);
                }
                let take = (input.len() as u64).min(left) as usize;
                self.state = if take as u64 == left {
                    ChunkState::DataEnd
                } else {
                    ChunkState::Data(left - take as u64)
                };
                Ok(ChunkStep {
                    consumed: take,
                    data: Some((0, take)),
                    ..none
                })
            }
            ChunkState::DataEnd => {
                if input.is_empty() {
                    return Ok(none);
                }
                if input[0] == b'\n' {
                    self.state = ChunkState::Size;
                    return Ok(ChunkStep { consumed: 1, ..none });
                }
                if input.len() < 2 {
                    return if input[0] == b'\r' {
                        Ok(none)
                    } else {
                        Err(ChunkError::MissingCrlf)
                    };
                }
                if &input[..2] != b"\r\n" {
                    return Err(ChunkError::MissingCrlf);
                }
                self.state = ChunkState::Size;
                Ok(ChunkStep { consumed: 2, ..none })
            }
            ChunkState::Trailers => {
                let Some(nl) = memchr::memchr(b'\n', &input[..input.len().min(MAX_CHUNK_LINE)]) else {
                    return if input.len() >= MAX_CHUNK_LINE {
                        Err(ChunkError::LineTooLong)
                    } else {
                        Ok(none)
                    };
                };
                if trim_cr(&input[..nl]).is_empty() {
                    self.state = ChunkState::Done;
                    return Ok(ChunkStep {
                        consumed: nl + 1,
                        done: true,
                        ..none
                    });
                }
                Ok(ChunkStep {
                    consumed: nl + 1,
                    trailer: Some((0, nl + 1)),
                    ..none
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_note_credential_names_and_dns_messages() {
        use crate::entry::head_facts::{DNS_MESSAGE, KNOWN, REDACTABLE_NAME};
        let facts = |h: &str| parse_request_head(h.as_bytes(), 100).unwrap().common.facts;
        assert_eq!(facts("GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n"), KNOWN);
        assert_eq!(facts("GET / HTTP/1.1\r\nCOOKIE: a=1\r\n\r\n"), KNOWN | REDACTABLE_NAME);
        assert_eq!(facts("GET / HTTP/1.1\r\nreferer: /x\r\n\r\n"), KNOWN | REDACTABLE_NAME);
        assert_eq!(
            facts("POST /q HTTP/1.1\r\nContent-Type: Application/DNS-Message\r\n\r\n"),
            KNOWN | DNS_MESSAGE
        );
        let resp = parse_response_head(b"HTTP/1.1 200 OK\r\nSet-Cookie: s=1\r\n\r\n", 100).unwrap();
        assert_eq!(resp.common.facts, KNOWN | REDACTABLE_NAME);
    }

    #[test]
    fn probes() {
        assert_eq!(probe_request(b"GET / HTTP/1.1\r\n"), Probe::Match);
        assert_eq!(probe_request(b"GE"), Probe::NeedMore);
        assert_eq!(probe_request(b"GET /index.html HTT"), Probe::NeedMore);
        assert_eq!(
            probe_request(b"GET session:1\r\n"),
            Probe::NoMatch,
            "an inline Redis command is not HTTP"
        );
        assert_eq!(probe_request(b"PRI * HTTP/2.0\r\n"), Probe::NoMatch);
        assert_eq!(probe_request(b"\x16\x03\x01"), Probe::NoMatch);
        assert_eq!(probe_response(b"HTTP/1.1 200 OK\r\n"), Probe::Match);
        assert_eq!(probe_response(b"HTTP/1."), Probe::NeedMore);
        assert_eq!(probe_response(b"HTTP/2 200"), Probe::NoMatch);
        assert_eq!(probe(b"+OK\r\n"), Probe::NoMatch);
    }

    #[test]
    fn every_prefix_of_a_request_needs_more_or_matches() {
        let msg = b"POST /charge HTTP/1.1\r\n";
        for n in 1..msg.len() {
            assert_eq!(probe(&msg[..n]), Probe::NeedMore, "prefix {n}");
        }
        assert_eq!(probe(msg), Probe::Match);
    }

    #[test]
    fn head_end() {
        assert_eq!(
            find_head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY", 1000),
            HeadEnd::Found(27)
        );
        assert_eq!(
            find_head_end(b"GET / HTTP/1.1\nHost: a\n\nBODY", 1000),
            HeadEnd::Found(24)
        );
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nHost: a\r\n", 1000), HeadEnd::NeedMore);
        assert_eq!(find_head_end(&[b'a'; 100], 50), HeadEnd::TooLarge);
    }

    #[test]
    fn request_head() {
        let h = b"POST /x?y=1 HTTP/1.1\r\nHost: example.com:8080\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
        let r = parse_request_head(h, 32).unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.target, "/x?y=1");
        assert_eq!(r.host.as_deref(), Some("example.com:8080"));
        assert!(r.common.expect_continue);
        assert_eq!(request_framing(&r.common).unwrap(), Framing::Length(5));
        let bad = b"POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n";
        assert_eq!(parse_request_head(bad, 32).unwrap_err(), HeadError::BadContentLength);
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(40));
        assert_eq!(
            parse_request_head(many.as_bytes(), 32).unwrap_err(),
            HeadError::TooManyHeaders
        );
    }

    #[test]
    fn response_framing_rules() {
        let r = parse_response_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 32).unwrap();
        assert_eq!(response_framing(&r.common, 200, Some("GET")), Framing::Chunked);
        assert_eq!(response_framing(&r.common, 200, Some("HEAD")), Framing::None);
        let r = parse_response_head(b"HTTP/1.0 200 OK\r\n\r\n", 32).unwrap();
        assert_eq!(r.common.minor, 0);
        assert_eq!(response_framing(&r.common, 200, Some("GET")), Framing::Close);
        assert_eq!(response_framing(&r.common, 304, Some("GET")), Framing::None);
        assert_eq!(response_framing(&r.common, 204, None), Framing::None);
        assert_eq!(response_framing(&r.common, 200, Some("CONNECT")), Framing::None);
    }

    fn dechunk(input: &[u8]) -> Result<(Vec<u8>, Vec<u8>, usize), ChunkError> {
        let mut d = ChunkedDecoder::default();
        let mut data = Vec::new();
        let mut trailers = Vec::new();
        let mut at = 0;
        loop {
            let s = d.step(&input[at..])?;
            if let Some((a, b)) = s.data {
                data.extend_from_slice(&input[at + a..at + b]);
            }
            if let Some((a, b)) = s.trailer {
                trailers.extend_from_slice(&input[at + a..at + b]);
            }
            at += s.consumed;
            if s.done {
                return Ok((data, trailers, at));
            }
            if s.consumed == 0 {
                return Ok((data, trailers, usize::MAX));
            }
        }
    }

    #[test]
    fn chunked() {
        let body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
        let (data, trailers, used) = dechunk(body).unwrap();
        assert_eq!(data, b"hello world");
        assert_eq!(trailers, b"X-Trailer: t\r\n");
        assert_eq!(used, body.len() - 4);
        assert_eq!(dechunk(b"zz\r\n").unwrap_err(), ChunkError::BadSize);
        assert_eq!(dechunk(b"5\r\nhelloXX").unwrap_err(), ChunkError::MissingCrlf);
        assert_eq!(dechunk(b"fffffffffffffffff\r\n").unwrap_err(), ChunkError::BadSize);
        // Every prefix: no error, and nothing past what is there.
        for n in 0..body.len() {
            assert!(dechunk(&body[..n]).is_ok(), "prefix {n}");
        }
    }

    #[test]
    fn resync_finds_next_message() {
        let buf = b"garbage\r\nmore junk GET / HTTP/1.1\r\nHTTP/1.1 200 OK\r\n";
        assert_eq!(find_message_start(buf, 0), Some(35));
        assert_eq!(find_message_start(b"GET / HTTP/1.1\r\n", 0), Some(0));
        assert_eq!(find_message_start(b"xx", 0), None);
    }

    #[test]
    fn header_pairs_unfold() {
        let h = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: two\r\n  parts\r\n\r\n";
        assert_eq!(
            header_pairs(h),
            vec![("A".into(), "1".into()), ("B".into(), "two parts".into())]
        );
    }

    #[test]
    fn a_head_parsed_in_place_ends_where_its_empty_line_does() {
        for (input, len) in [
            (&b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody"[..], 27),
            (b"GET / HTTP/1.1\nHost: a\n\nGET /next", 24),
            (b"POST /x HTTP/1.0\r\nContent-Length: 4\r\n\r\nabcd", 39),
        ] {
            let (rh, n) = parse_request_prefix(input, 8).unwrap().unwrap();
            assert_eq!(n, len, "{}", String::from_utf8_lossy(input));
            assert_eq!(find_head_end(input, 100), HeadEnd::Found(n));
            assert_eq!(parse_request_head(&input[..n], 8).unwrap(), rh);
        }
        let (rh, n) = parse_response_prefix(b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200", 8)
            .unwrap()
            .unwrap();
        assert_eq!((rh.status, rh.reason, n), (204, "No Content", 27));
        assert_eq!(
            parse_request_prefix(b"GET / HTTP/1.1\r\nHost: a\r\n", 8),
            Ok(None),
            "no end yet"
        );
        assert!(
            parse_request_prefix(
                b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                8
            )
            .is_err()
        );
    }

    /// Pieces heads are made of, well-formed and not: line endings of every kind, folded lines,
    /// bad tokens, bodies after the head.
    fn pieces() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            Just(&b"GET /a?b=c HTTP/1.1"[..]),
            Just(&b"HTTP/1.1 200 OK"[..]),
            Just(&b"HTTP/1.0 404 Not Found"[..]),
            Just(&b"POST / HTTP/1.0"[..]),
            Just(&b"Host: example.com"[..]),
            Just(&b"Content-Length: 5"[..]),
            Just(&b"Content-Length: x"[..]),
            Just(&b"Transfer-Encoding: chunked"[..]),
            Just(&b"X-Api-Key: k"[..]),
            Just(&b" folded"[..]),
            Just(&b"bad header"[..]),
            Just(&b"\r\n"[..]),
            Just(&b"\n"[..]),
            Just(&b"\r"[..]),
            Just(&b"\r\n\r\n"[..]),
            Just(&b"\n\n"[..]),
            Just(&b"\n\r\n"[..]),
            Just(&b"body"[..]),
            Just(&b"\x00\xff"[..]),
        ];
        proptest::collection::vec(piece, 0..14).prop_map(|v| v.concat())
    }

    proptest::proptest! {
        /// A head parsed where it starts in the input (the dissector's fast path) is the head,
        /// of the same length, that the search for its end and a parse of just that head give.
        #[test]
        fn a_head_parsed_in_place_is_the_head_found_by_its_end(buf in pieces(), max in 8usize..200) {
            // The dissector skips line ends between messages before it looks for a head.
            let start = buf.iter().position(|b| !matches!(b, b'\r' | b'\n')).unwrap_or(buf.len());
            let buf = &buf[start..];
            let window = head_window(buf, max);
            if let Ok(Some((rh, n))) = parse_request_prefix(window, 8) {
                proptest::prop_assert_eq!(find_head_end(buf, max), HeadEnd::Found(n));
                proptest::prop_assert_eq!(parse_request_head(&buf[..n], 8), Ok(rh));
            }
            if let Ok(Some((rh, n))) = parse_response_prefix(window, 8) {
                proptest::prop_assert_eq!(find_head_end(buf, max), HeadEnd::Found(n));
                proptest::prop_assert_eq!(parse_response_head(&buf[..n], 8), Ok(rh));
            }
        }
    }
}
