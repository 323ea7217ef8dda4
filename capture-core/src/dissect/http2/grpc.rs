//! gRPC over HTTP/2: recognising calls, counting the length-prefixed messages of each direction
//! as DATA arrives, and reading the messages back from a captured body (gzip decompressed,
//! capped) for display.

use std::borrow::Cow;
use std::io::Read;

/// Compressed flags kept per direction (the count is exact beyond it).
pub const MAX_FLAGS_KEPT: usize = 64;
/// The length prefix: a compressed flag and a 32-bit big-endian length.
pub const PREFIX_LEN: usize = 5;

/// `content-type: application/grpc`, `application/grpc+proto`, `application/grpc-web…`.
pub fn is_grpc_content_type(v: &str) -> bool {
    v.trim_start().to_ascii_lowercase().starts_with("application/grpc")
}

/// `/pkg.Service/Method` → (`pkg.Service`, `Method`).
pub fn split_path(path: &str) -> Option<(&str, &str)> {
    let p = path.strip_prefix('/')?;
    let p = p.split(['?', '#']).next().unwrap_or(p);
    let (service, method) = p.rsplit_once('/')?;
    (!service.is_empty() && !method.is_empty()).then_some((service, method))
}

/// `grpc-message` is percent-encoded (gRPC's HTTP/2 protocol spec); `+` is not a space there.
pub fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Counts the length-prefixed messages of one direction as its DATA arrives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrpcFramer {
    prefix: [u8; PREFIX_LEN],
    have: usize,
    /// Message bytes still to come.
    left: u64,
    pub messages: u64,
    pub compressed: Vec<bool>,
    /// The framing was lost (a gap inside a prefix, or a flag byte that is neither 0 nor 1).
    pub lost: bool,
}

impl GrpcFramer {
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && !self.lost {
            if self.have == PREFIX_LEN {
                let take = (data.len() as u64).min(self.left) as usize;
                self.left -= take as u64;
                data = &data[take..];
                if self.left == 0 {
                    self.complete();
                }
                continue;
            }
            let take = (PREFIX_LEN - self.have).min(data.len());
            self.prefix[self.have..self.have + take].copy_from_slice(&data[..take]);
            self.have += take;
            data = &data[take..];
            if self.have == PREFIX_LEN {
                if self.prefix[0] > 1 {
                    self.lost = true;
                    return;
                }
                self.left = u64::from(u32::from_be_bytes([
                    self.prefix[1],
                    self.prefix[2],
                    self.prefix[3],
                    self.prefix[4],
                ]));
                if self.left == 0 {
                    self.complete();
                }
            }
        }
    }

    fn complete(&mut self) {
        self.messages += 1;
        if self.compressed.len() < MAX_FLAGS_KEPT {
            self.compressed.push(self.prefix[0] == 1);
        }
        self.have = 0;
    }

    /// `n` bytes are missing: fine inside a message, fatal inside a prefix.
    pub fn gap(&mut self, n: u64) {
        if self.have == PREFIX_LEN && n <= self.left {
            self.left -= n;
            if self.left == 0 {
                self.complete();
            }
        } else if n > 0 {
            self.lost = true;
        }
    }
}

/// One message read back from a captured body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcMessage<'a> {
    pub compressed: bool,
    /// The message as sent (still compressed when `compressed`).
    pub raw: &'a [u8],
    /// The length its prefix announced (more than `raw.len()` when the body was cut).
    pub declared_len: u32,
}

/// Splits a captured body into its messages; a last message cut by the body cap is returned
/// with the bytes present.
pub fn messages(body: &[u8]) -> Vec<GrpcMessage<'_>> {
    let mut out = Vec::new();
    let mut at = 0;
    while body.len() - at >= PREFIX_LEN {
        let flag = body[at];
        if flag > 1 {
            break;
        }
        let len = u32::from_be_bytes([body[at + 1], body[at + 2], body[at + 3], body[at + 4]]);
        let start = at + PREFIX_LEN;
        let end = start.saturating_add(len as usize).min(body.len());
        out.push(GrpcMessage {
            compressed: flag == 1,
            raw: &body[start..end],
            declared_len: len,
        });
        at = end;
    }
    out
}

/// A message ready to decode: decompressed when it was compressed with a coding we know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decompressed<'a> {
    Plain(Cow<'a, [u8]>),
    /// The coding is not one we decode (`snappy`, `zstd`, …): listed and skipped.
    UnsupportedCoding(String),
    /// Corrupt or cut data; or more than `max_out` bytes once decompressed (a bomb).
    Failed(String),
}

/// Decompresses a message of a stream whose `grpc-encoding` is `encoding`.
pub fn decompress<'a>(m: &GrpcMessage<'a>, encoding: Option<&str>, max_out: usize) -> Decompressed<'a> {
    if !m.compressed {
        return Decompressed::Plain(Cow::Borrowed(m.raw));
    }
    let coding = encoding.unwrap_or("identity").trim().to_ascii_lowercase();
    let mut out = Vec::new();
    let res = match coding.as_str() {
        "gzip" => flate2::read::GzDecoder::new(m.raw)
            .take(max_out as u64 + 1)
            .read_to_end(&mut out),
        "deflate" => flate2::read::ZlibDecoder::new(m.raw)
            .take(max_out as u64 + 1)
            .read_to_end(&mut out),
        other => return Decompressed::UnsupportedCoding(other.to_string()),
    };
    match res {
        Err(e) => Decompressed::Failed(format!("{coding}: {e}")),
        Ok(_) if out.len() > max_out => {
            Decompressed::Failed(format!("{coding}: more than {max_out} bytes decompressed"))
        }
        Ok(_) => Decompressed::Plain(Cow::Owned(out)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn msg(flag: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![flag];
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn paths_content_types_and_messages() {
        assert_eq!(
            split_path("/greet.GreetService/Greet"),
            Some(("greet.GreetService", "Greet"))
        );
        assert_eq!(split_path("/a/b/C"), Some(("a/b", "C")));
        assert_eq!(split_path("/nothing"), None);
        assert_eq!(split_path("relative/x"), None);
        assert!(is_grpc_content_type("application/grpc+proto"));
        assert!(is_grpc_content_type("Application/GRPC"));
        assert!(!is_grpc_content_type("application/json"));
        assert_eq!(percent_decode("not%20found%3A%20x+y"), "not found: x+y");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("caf%C3%A9"), "café");
    }

    #[test]
    fn framer_counts_messages_however_data_is_cut() {
        let mut body = msg(0, b"hello");
        body.extend(msg(1, b""));
        body.extend(msg(0, &[7; 300]));
        for cut in 1..body.len() {
            let mut f = GrpcFramer::default();
            for piece in body.chunks(cut) {
                f.feed(piece);
            }
            assert_eq!(
                (f.messages, f.compressed.as_slice(), f.lost),
                (3, &[false, true, false][..], false)
            );
        }
        let mut f = GrpcFramer::default();
        f.feed(&body[..20]);
        f.gap(290);
        f.feed(&body[310..]);
        assert_eq!((f.messages, f.lost), (3, false));
        let mut f = GrpcFramer::default();
        f.feed(&[0, 0]);
        f.gap(3);
        assert!(f.lost);
        let mut f = GrpcFramer::default();
        f.feed(&[9, 0, 0, 0, 0]);
        assert!(f.lost && f.messages == 0);
    }

    #[test]
    fn messages_read_back_and_gzip_is_decompressed_with_a_cap() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&[b'a'; 1000]).unwrap();
        let packed = gz.finish().unwrap();
        let mut body = msg(0, b"\x08\x01");
        body.extend(msg(1, &packed));
        body.extend(msg(0, b"cut short"));
        body.truncate(body.len() - 3);
        let ms = messages(&body);
        assert_eq!(ms.len(), 3);
        assert_eq!(ms[2].raw, b"cut sh");
        assert_eq!(ms[2].declared_len, 9);
        assert_eq!(
            decompress(&ms[0], Some("gzip"), 10),
            Decompressed::Plain(Cow::Borrowed(&b"\x08\x01"[..]))
        );
        assert_eq!(
            decompress(&ms[1], Some("gzip"), 5000),
            Decompressed::Plain(Cow::Owned(vec![b'a'; 1000]))
        );
        assert!(matches!(decompress(&ms[1], Some("gzip"), 999), Decompressed::Failed(_)));
        assert_eq!(
            decompress(&ms[1], Some("snappy"), 5000),
            Decompressed::UnsupportedCoding("snappy".into())
        );
    }
}
