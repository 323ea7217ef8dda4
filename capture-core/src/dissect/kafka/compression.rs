//! The compression codecs of Kafka record batches and message sets, each decoded into at most
//! `cap` bytes: gzip (flate2), snappy (the `snap` crate; raw blocks and the xerial-framed stream
//! of Kafka's Java client), lz4 (the LZ4 frame format read here, blocks by `lz4_flex`; header and
//! block checksums are not verified, so legacy Kafka's wrong header checksum reads as well) and
//! zstd (`ruzstd`, with the window it may keep bounded).

use std::io::Read;

/// Codec numbers of the attributes' low three bits.
pub const GZIP: u8 = 1;
pub const SNAPPY: u8 = 2;
pub const LZ4: u8 = 3;
pub const ZSTD: u8 = 4;

/// The name of a codec number.
pub fn codec_name(codec: u8) -> &'static str {
    match codec {
        0 => "none",
        GZIP => "gzip",
        SNAPPY => "snappy",
        LZ4 => "lz4",
        ZSTD => "zstd",
        _ => "unknown",
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecompressError {
    #[error("unknown compression codec {0}")]
    UnknownCodec(u8),
    #[error("corrupt {0} data")]
    Corrupt(&'static str),
}

/// What came out: at most `cap` bytes, and whether there was more.
#[derive(Debug, PartialEq, Eq)]
pub struct Decompressed {
    pub bytes: Vec<u8>,
    pub capped: bool,
}

/// Decodes `input` compressed with `codec` into at most `cap` bytes; a zstd frame may keep a
/// window of at most `zstd_window` bytes.
pub fn decompress(codec: u8, input: &[u8], cap: usize, zstd_window: usize) -> Result<Decompressed, DecompressError> {
    match codec {
        GZIP => read_capped(flate2::read::MultiGzDecoder::new(input), cap, "gzip"),
        SNAPPY => snappy(input, cap),
        LZ4 => lz4(input, cap),
        ZSTD => {
            let d = ruzstd::decoding::StreamingDecoder::new_with_max_window_size(input, zstd_window as u64)
                .map_err(|_| DecompressError::Corrupt("zstd"))?;
            read_capped(d, cap, "zstd")
        }
        c => Err(DecompressError::UnknownCodec(c)),
    }
}

fn read_capped(r: impl Read, cap: usize, what: &'static str) -> Result<Decompressed, DecompressError> {
    let mut bytes = Vec::new();
    r.take(cap as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|_| DecompressError::Corrupt(what))?;
    let capped = bytes.len() > cap;
    bytes.truncate(cap);
    Ok(Decompressed { bytes, capped })
}

/// The xerial snappy stream: this magic, two big-endian i32 (version, compatible version), then
/// chunks of a big-endian i32 length and a raw snappy block.
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";

fn snappy(input: &[u8], cap: usize) -> Result<Decompressed, DecompressError> {
    let mut out = Decompressed {
        bytes: Vec::new(),
        capped: false,
    };
    let Some(mut rest) = input.strip_prefix(XERIAL_MAGIC) else {
        snappy_block(input, cap, &mut out)?;
        return Ok(out);
    };
    rest = rest.get(8..).ok_or(DecompressError::Corrupt("snappy"))?;
    while !rest.is_empty() && !out.capped {
        let len = rest
            .get(..4)
            .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
            .ok_or(DecompressError::Corrupt("snappy"))?;
        let block = rest.get(4..4 + len).ok_or(DecompressError::Corrupt("snappy"))?;
        snappy_block(block, cap, &mut out)?;
        rest = &rest[4 + len..];
    }
    Ok(out)
}

/// Appends one raw snappy block to `out`, unless it would pass `cap` (then `out.capped`).
fn snappy_block(block: &[u8], cap: usize, out: &mut Decompressed) -> Result<(), DecompressError> {
    let n = snap::raw::decompress_len(block).map_err(|_| DecompressError::Corrupt("snappy"))?;
    let at = out.bytes.len();
    if n > cap - at {
        out.capped = true;
        return Ok(());
    }
    out.bytes.resize(at + n, 0);
    match snap::raw::Decoder::new().decompress(block, &mut out.bytes[at..]) {
        Ok(m) => {
            out.bytes.truncate(at + m);
            Ok(())
        }
        Err(_) => {
            out.bytes.truncate(at);
            Err(DecompressError::Corrupt("snappy"))
        }
    }
}

const LZ4_MAGIC: u32 = 0x184D_2204;
/// Linked blocks may refer this far back into what came before.
const LZ4_WINDOW: usize = 64 << 10;

/// An LZ4 frame: magic, FLG, BD, optional content size and dictionary id, header checksum; then
/// blocks (little-endian u32 size, the high bit meaning stored, 0 ending the frame), each
/// followed by a checksum when FLG says so.
fn lz4(input: &[u8], cap: usize) -> Result<Decompressed, DecompressError> {
    const BAD: DecompressError = DecompressError::Corrupt("lz4");
    let magic = input.get(..4).map(|m| u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
    if magic != Some(LZ4_MAGIC) {
        return Err(BAD);
    }
    let (flg, bd) = (*input.get(4).ok_or(BAD)?, *input.get(5).ok_or(BAD)?);
    if flg >> 6 != 1 {
        return Err(BAD);
    }
    let independent = flg & 0x20 != 0;
    let block_checksum = flg & 0x10 != 0;
    let mut at = 6 + if flg & 0x08 != 0 { 8 } else { 0 } + if flg & 0x01 != 0 { 4 } else { 0 } + 1;
    let block_max = match (bd >> 4) & 7 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        _ => return Err(BAD),
    };
    let mut out = Decompressed {
        bytes: Vec::new(),
        capped: false,
    };
    loop {
        let Some(h) = input.get(at..at + 4) else {
            // A frame without its end mark: what came is kept.
            return Ok(out);
        };
        let word = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        at += 4;
        if word == 0 {
            return Ok(out);
        }
        let size = (word & 0x7fff_ffff) as usize;
        let block = input.get(at..at + size).ok_or(BAD)?;
        at += size + if block_checksum { 4 } else { 0 };
        let start = out.bytes.len();
        let room = cap - start;
        if word & 0x8000_0000 != 0 {
            let n = size.min(room);
            out.bytes.extend_from_slice(&block[..n]);
            if n < size {
                out.capped = true;
                return Ok(out);
            }
            continue;
        }
        let want = block_max.min(room);
        out.bytes.resize(start + want, 0);
        let (prev, rest) = out.bytes.split_at_mut(start);
        let dict = if independent {
            &[][..]
        } else {
            &prev[start.saturating_sub(LZ4_WINDOW)..]
        };
        match lz4_flex::block::decompress_into_with_dict(block, rest, dict) {
            Ok(n) => out.bytes.truncate(start + n),
            Err(_) if want < block_max => {
                // The block may hold more than the room left: the output stops at the cap.
                out.bytes.truncate(start);
                out.capped = true;
                return Ok(out);
            }
            Err(_) => {
                out.bytes.truncate(start);
                return Err(BAD);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn text(n: usize) -> Vec<u8> {
        (0..n).map(|i| b"kafka record "[i % 13]).collect()
    }

    #[test]
    fn gzip_round_trips_and_stops_at_the_cap() {
        let data = text(10_000);
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&data).unwrap();
        let z = e.finish().unwrap();
        let d = decompress(GZIP, &z, 1 << 20, 1 << 20).unwrap();
        assert_eq!((d.bytes, d.capped), (data.clone(), false));
        let d = decompress(GZIP, &z, 100, 1 << 20).unwrap();
        assert_eq!((d.bytes.as_slice(), d.capped), (&data[..100], true));
        assert_eq!(
            decompress(GZIP, b"not gzip", 100, 100),
            Err(DecompressError::Corrupt("gzip"))
        );
    }

    #[test]
    fn snappy_raw_and_xerial_framed() {
        let data = text(5_000);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(SNAPPY, &raw, 1 << 20, 0).unwrap().bytes, data);
        let mut x = XERIAL_MAGIC.to_vec();
        x.extend(1i32.to_be_bytes());
        x.extend(1i32.to_be_bytes());
        for part in data.chunks(2_000) {
            let c = snap::raw::Encoder::new().compress_vec(part).unwrap();
            x.extend((c.len() as u32).to_be_bytes());
            x.extend(c);
        }
        assert_eq!(decompress(SNAPPY, &x, 1 << 20, 0).unwrap().bytes, data);
        let d = decompress(SNAPPY, &x, 4_500, 0).unwrap();
        assert_eq!((d.bytes.as_slice(), d.capped), (&data[..4_000], true));
        assert!(decompress(SNAPPY, &x[..x.len() - 3], 1 << 20, 0).is_err());
    }

    /// A frame of the given blocks (`true` = stored), with a header checksum byte of 0 (which
    /// legacy Kafka also got wrong).
    fn lz4_frame(blocks: &[(bool, &[u8])], independent: bool) -> Vec<u8> {
        let mut f = LZ4_MAGIC.to_le_bytes().to_vec();
        f.push(0x40 | if independent { 0x20 } else { 0 });
        f.push(0x40);
        f.push(0);
        for (stored, b) in blocks {
            let word = b.len() as u32 | if *stored { 0x8000_0000 } else { 0 };
            f.extend(word.to_le_bytes());
            f.extend(*b);
        }
        f.extend(0u32.to_le_bytes());
        f
    }

    #[test]
    fn lz4_frames_with_stored_and_compressed_blocks() {
        let data = text(3_000);
        let mut c = vec![0u8; lz4_flex::block::get_maximum_output_size(2_000)];
        let n = lz4_flex::block::compress_into(&data[..2_000], &mut c).unwrap();
        c.truncate(n);
        let f = lz4_frame(&[(false, &c), (true, &data[2_000..])], true);
        assert_eq!(decompress(LZ4, &f, 1 << 20, 0).unwrap().bytes, data);
        let d = decompress(LZ4, &f, 2_500, 0).unwrap();
        assert_eq!((d.bytes.as_slice(), d.capped), (&data[..2_500], true));
        let d = decompress(LZ4, &f, 1_000, 0).unwrap();
        assert!(d.capped && d.bytes.is_empty());
        assert!(decompress(LZ4, &f[..3], 100, 0).is_err());
        assert!(decompress(LZ4, &lz4_frame(&[(false, b"\xff\xff\xff")], true), 1 << 20, 0).is_err());
    }

    /// Linked blocks refer back into the blocks before them.
    #[test]
    fn lz4_linked_blocks_read_their_dictionary() {
        let data = text(6_000);
        let mut first = vec![0u8; lz4_flex::block::get_maximum_output_size(3_000)];
        let n = lz4_flex::block::compress_into(&data[..3_000], &mut first).unwrap();
        first.truncate(n);
        let mut second = vec![0u8; lz4_flex::block::get_maximum_output_size(3_000)];
        let n = lz4_flex::block::compress_into_with_dict(&data[3_000..], &mut second, &data[..3_000]).unwrap();
        second.truncate(n);
        let f = lz4_frame(&[(false, &first), (false, &second)], false);
        assert_eq!(decompress(LZ4, &f, 1 << 20, 0).unwrap().bytes, data);
        // Read as independent blocks, the second one's references have nothing to point at.
        let independent = lz4_frame(&[(false, &first), (false, &second)], true);
        assert_ne!(decompress(LZ4, &independent, 1 << 20, 0).map(|d| d.bytes), Ok(data));
    }

    #[test]
    fn unknown_codecs_are_errors() {
        assert_eq!(decompress(7, b"", 10, 10), Err(DecompressError::UnknownCodec(7)));
        assert!(decompress(ZSTD, b"\x28\xb5\x2f\xfd", 10, 10).is_err());
    }
}
