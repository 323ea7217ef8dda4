//! Test helpers: reassemble clean synthesised TCP streams and parse the HTTP/1.x messages in them.

use crate::synth::packet::{SYN, Transport, decode_frame};
use flate2::read::GzDecoder;
use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;

/// One direction of a connection.
pub type FlowKey = (SocketAddr, SocketAddr);

/// Decodes every frame (checksums verified) and concatenates payloads per direction. Returns the
/// connections (client, server) in SYN order and the byte streams. Only valid for captures
/// without loss or retransmission, which is what the synthesisers produce.
pub fn reassemble<'a>(
    frames: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<FlowKey>, HashMap<FlowKey, Vec<u8>>) {
    let mut order = Vec::new();
    let mut streams: HashMap<FlowKey, Vec<u8>> = HashMap::new();
    for f in frames {
        let d = decode_frame(f).unwrap();
        let Transport::Tcp { flags, .. } = d.transport else {
            panic!("not TCP")
        };
        if flags == SYN {
            order.push((d.src, d.dst));
        }
        streams
            .entry((d.src, d.dst))
            .or_default()
            .extend_from_slice(d.payload);
    }
    (order, streams)
}

/// One parsed HTTP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// `METHOD path` for requests, the status code for responses.
    pub line: String,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// The body after removing chunking and gzip.
    pub body: Vec<u8>,
    pub chunked: bool,
    pub gzip: bool,
    pub trailer: bool,
}

fn line_end(buf: &[u8]) -> usize {
    buf.windows(2).position(|w| w == b"\r\n").unwrap()
}

/// Parses consecutive messages. A response without Content-Length or chunking runs to the end.
pub fn parse_messages(mut buf: &[u8], response: bool) -> Vec<Msg> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let (head_len, line, version, hdrs) = if response {
            let mut r = httparse::Response::new(&mut headers);
            let httparse::Status::Complete(n) = r.parse(buf).unwrap() else {
                panic!("partial")
            };
            let line = r.code.unwrap().to_string();
            let h: Vec<(String, String)> = r
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into(),
                    )
                })
                .collect();
            (n, line, r.version.unwrap(), h)
        } else {
            let mut r = httparse::Request::new(&mut headers);
            let httparse::Status::Complete(n) = r.parse(buf).unwrap() else {
                panic!("partial")
            };
            let line = format!("{} {}", r.method.unwrap(), r.path.unwrap());
            let h: Vec<(String, String)> = r
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into(),
                    )
                })
                .collect();
            (n, line, r.version.unwrap(), h)
        };
        let get = |k: &str| hdrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        buf = &buf[head_len..];
        let chunked = get("transfer-encoding").is_some_and(|v| v == "chunked");
        let gzip = get("content-encoding").is_some_and(|v| v == "gzip");
        let mut trailer = false;
        let mut body = Vec::new();
        if chunked {
            loop {
                let eol = line_end(buf);
                let size = std::str::from_utf8(&buf[..eol]).unwrap();
                let n = usize::from_str_radix(size, 16).unwrap();
                buf = &buf[eol + 2..];
                if n == 0 {
                    loop {
                        let eol = line_end(buf);
                        buf = &buf[eol + 2..];
                        if eol == 0 {
                            break;
                        }
                        trailer = true;
                    }
                    break;
                }
                body.extend_from_slice(&buf[..n]);
                assert_eq!(&buf[n..n + 2], b"\r\n");
                buf = &buf[n + 2..];
            }
        } else if let Some(len) = get("content-length") {
            let n: usize = len.parse().unwrap();
            body.extend_from_slice(&buf[..n]);
            buf = &buf[n..];
        } else if response {
            body.extend_from_slice(buf);
            buf = &[];
        }
        if gzip {
            let mut plain = Vec::new();
            GzDecoder::new(&body[..]).read_to_end(&mut plain).unwrap();
            body = plain;
        }
        out.push(Msg {
            line,
            version,
            body,
            chunked,
            gzip,
            trailer,
        });
    }
    out
}
