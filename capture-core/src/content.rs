//! Content decoding of bodies (gzip, deflate, br) on request, capped so a small body cannot
//! expand without bound (decompression bombs).

use std::io::Read;

/// Outcome of decoding a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub bytes: Vec<u8>,
    /// The coding applied (`gzip`, `deflate`, `br`), or `None` when the body was left as is.
    pub coding: Option<&'static str>,
    /// Set when decoding stopped early: the cap was hit, the data is corrupt or was cut.
    pub note: Option<String>,
}

/// Decodes `body` according to a `Content-Encoding` value; output is capped at `max_out` bytes.
pub fn decode(content_encoding: Option<&str>, body: &[u8], max_out: usize) -> Decoded {
    let Some(ce) = content_encoding
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
    else {
        return Decoded {
            bytes: body.to_vec(),
            coding: None,
            note: None,
        };
    };
    if ce.contains(',') {
        return Decoded {
            bytes: body.to_vec(),
            coding: None,
            note: Some(format!(
                "stacked content codings `{ce}` are not decoded; the raw body is shown"
            )),
        };
    }
    match ce.as_str() {
        "identity" => Decoded {
            bytes: body.to_vec(),
            coding: None,
            note: None,
        },
        "gzip" | "x-gzip" => run(flate2::read::MultiGzDecoder::new(body), "gzip", max_out),
        "deflate" => {
            // "deflate" means zlib-wrapped (RFC 9110), but some servers send raw deflate.
            let z = run(flate2::read::ZlibDecoder::new(body), "deflate", max_out);
            if z.note.as_deref().is_some_and(|n| n.contains("corrupt")) && z.bytes.is_empty() {
                run(flate2::read::DeflateDecoder::new(body), "deflate", max_out)
            } else {
                z
            }
        }
        "br" => run(brotli_decompressor::Decompressor::new(body, 4096), "br", max_out),
        other => Decoded {
            bytes: body.to_vec(),
            coding: None,
            note: Some(format!(
                "content coding `{other}` is not supported; the raw body is shown"
            )),
        },
    }
}

fn run<R: Read>(reader: R, coding: &'static str, max_out: usize) -> Decoded {
    let mut out = Vec::new();
    let mut limited = reader.take(max_out as u64 + 1);
    let note = match limited.read_to_end(&mut out) {
        Ok(_) if out.len() > max_out => {
            out.truncate(max_out);
            Some(format!(
                "decoding stopped at {max_out} bytes (decompression cap, decompress_max_bytes)"
            ))
        }
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Some(format!(
            "{coding} stream ends early (body cut by the capture cap or a gap); partial output shown"
        )),
        Err(e) => Some(format!("{coding} data is corrupt ({e}); partial output shown")),
    };
    Decoded {
        bytes: out,
        coding: Some(coding),
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_and_deflate() {
        let d = decode(Some("gzip"), &gz(b"hello"), 1 << 20);
        assert_eq!(
            (d.bytes.as_slice(), d.coding, d.note),
            (&b"hello"[..], Some("gzip"), None)
        );
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"zz").unwrap();
        assert_eq!(decode(Some("deflate"), &z.finish().unwrap(), 100).bytes, b"zz");
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(b"raw").unwrap();
        assert_eq!(decode(Some("deflate"), &raw.finish().unwrap(), 100).bytes, b"raw");
    }

    #[test]
    fn bomb_is_capped() {
        let bomb = gz(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 64 << 10);
        let d = decode(Some("gzip"), &bomb, 1 << 20);
        assert_eq!(d.bytes.len(), 1 << 20);
        assert!(d.note.unwrap().contains("cap"));
    }

    #[test]
    fn cut_and_unknown() {
        let g = gz(&[7u8; 5000]);
        let d = decode(Some("gzip"), &g[..g.len() / 2], 1 << 20);
        assert!(d.note.is_some());
        let u = decode(Some("zstd"), b"abc", 10);
        assert_eq!(u.bytes, b"abc");
        assert!(u.note.unwrap().contains("not supported"));
        assert_eq!(decode(None, b"x", 10).coding, None);
    }
}
