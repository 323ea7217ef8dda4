//! What an HTTP/2 stream becomes in the store: [`H2Stream`], the detail of `http/2` and `grpc`
//! entries (re-exported from [`crate::entry`]).

use crate::time::Timestamp;

/// Anomalies of an HTTP/2 stream, as bit flags.
pub mod h2_flags {
    /// A header block referenced dynamic-table entries we never saw (capture started
    /// mid-connection, a gap, or the table cap): those fields are missing, not guessed.
    pub const HPACK_INCOMPLETE: u32 = 1;
    /// Bytes of the stream were missing from the capture (a TCP gap).
    pub const GAP: u32 = 2;
    /// The request side never ended (no END_STREAM before the capture or connection ended).
    pub const REQUEST_INCOMPLETE: u32 = 4;
    /// The response started but never ended.
    pub const RESPONSE_INCOMPLETE: u32 = 8;
    /// No request headers were captured (picked up mid-stream).
    pub const NO_REQUEST: u32 = 16;
    /// A header list exceeded `h2_max_header_list_bytes` or `h2_max_continuations`: the rest
    /// of it was decoded (to keep the table in sync) but not kept.
    pub const HEADER_LIST_TOO_LARGE: u32 = 32;
    /// Emitted early because the connection had `h2_max_streams` streams open.
    pub const STREAM_EVICTED: u32 = 64;
    /// Stream 1 of an h2c upgrade: the request went as HTTP/1.1 (its own `http/1.1` entry);
    /// method, path and host are copied from it.
    pub const UPGRADED: u32 = 128;
    /// Above the last stream id of a GOAWAY: the peer did not process it.
    pub const REFUSED_BY_GOAWAY: u32 = 256;
}

/// One side of a stream: a request or a response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct H2Message {
    /// Header fields as decoded (pseudo-headers included, names lower-case as sent), values as
    /// lossy UTF-8.
    pub headers: Vec<(Box<str>, Box<str>)>,
    /// Fields of a trailing header block (gRPC status lives here).
    pub trailers: Vec<(Box<str>, Box<str>)>,
    /// The first `h2_stream_body_bytes` of the DATA payloads (padding removed).
    pub body: Box<[u8]>,
    /// DATA payload bytes (padding excluded; gap bytes inside a frame included).
    pub body_size: u64,
    pub body_truncated: bool,
    pub data_frames: u32,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    /// END_STREAM was seen.
    pub complete: bool,
}

impl H2Message {
    /// The first header (not trailer) with this name, case-insensitive.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &**v)
    }

    /// The first trailer with this name, case-insensitive.
    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &**v)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        let fields = |v: &Vec<(Box<str>, Box<str>)>| {
            v.capacity() * std::mem::size_of::<(Box<str>, Box<str>)>()
                + v.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>()
        };
        fields(&self.headers) + fields(&self.trailers) + self.body.len()
    }
}

/// A gRPC call carried by the stream.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GrpcCall {
    /// `pkg.Service` and `Method`, split from `:path` (`/pkg.Service/Method`).
    pub service: Box<str>,
    pub method: Box<str>,
    /// `grpc-status` from the trailers, or from a trailers-only response.
    pub status: Option<u32>,
    /// `grpc-message`, percent-decoded.
    pub message: Option<Box<str>>,
    /// Complete length-prefixed messages per direction.
    pub request_messages: u64,
    pub response_messages: u64,
    /// The compressed flag of the first messages of each direction (at most
    /// [`super::grpc::MAX_FLAGS_KEPT`]).
    pub request_compressed: Vec<bool>,
    pub response_compressed: Vec<bool>,
    /// `grpc-encoding` of each direction (`gzip`, `identity`, …).
    pub request_encoding: Option<Box<str>>,
    pub response_encoding: Option<Box<str>>,
}

/// One HTTP/2 stream: its request, response, trailers and how it ended.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct H2Stream {
    pub stream_id: u32,
    /// `:method`, `:scheme`, `:authority` (else `host`) and `:path` of the request.
    pub method: Option<Box<str>>,
    pub scheme: Option<Box<str>>,
    pub authority: Option<Box<str>>,
    pub path: Option<Box<str>>,
    /// Final `:status` (1xx statuses are in `interim`).
    pub status: Option<u16>,
    pub interim: Vec<u16>,
    pub request: Option<H2Message>,
    pub response: Option<H2Message>,
    /// RST_STREAM error code, and whether the client sent it.
    pub rst_code: Option<u32>,
    pub rst_by_client: Option<bool>,
    /// GOAWAY error code when a GOAWAY arrived while the stream was open.
    pub goaway_code: Option<u32>,
    /// Opened by the server with PUSH_PROMISE on stream `promised_on`.
    pub pushed: bool,
    pub promised_on: Option<u32>,
    pub grpc: Option<Box<GrpcCall>>,
    /// First request byte to first response byte.
    pub ttfb_us: Option<u64>,
    /// [`h2_flags`] bits.
    pub flags: u32,
}

impl H2Stream {
    pub(crate) fn heap_bytes(&self) -> usize {
        let s = |o: &Option<Box<str>>| o.as_ref().map_or(0, |s| s.len());
        std::mem::size_of::<H2Stream>()
            + s(&self.method)
            + s(&self.scheme)
            + s(&self.authority)
            + s(&self.path)
            + self.interim.capacity() * 2
            + self.request.as_ref().map_or(0, H2Message::heap_bytes)
            + self.response.as_ref().map_or(0, H2Message::heap_bytes)
            + self.grpc.as_ref().map_or(0, |g| {
                std::mem::size_of::<GrpcCall>()
                    + g.service.len()
                    + g.method.len()
                    + s(&g.message)
                    + s(&g.request_encoding)
                    + s(&g.response_encoding)
                    + g.request_compressed.capacity()
                    + g.response_compressed.capacity()
            })
    }
}
