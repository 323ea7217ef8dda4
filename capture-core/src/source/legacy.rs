//! Classic (libpcap) capture files, read by a loop of our own: a 24-byte file header, then
//! records of a 16-byte header and the frame, in the byte order of the magic number.
//!
//! The format is that small, and every packet of a pcap import passes here: pcap-parser's
//! streaming reader cost about 145 instructions a packet (a parser combinator, a block enum, a
//! consume call), this loop about 65 (callgrind, 5 MB workload). pcapng stays with pcap-parser
//! ([`super::file`]).

use std::io::Read;
use std::path::Path;

use super::file::{FileError, FileSummary};
use super::{LinkType, Packet};
use crate::time::Timestamp;

const FILE_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;

/// What a classic pcap magic number announces: the file's byte order and timestamp resolution.
#[derive(Debug, Clone, Copy)]
pub(super) struct Format {
    big_endian: bool,
    nanos: bool,
}

/// The format a magic number announces; `None` for anything but the four classic pcap magics.
pub(super) fn format(magic: [u8; 4]) -> Option<Format> {
    let (big_endian, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
        [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
        [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
        _ => return None,
    };
    Some(Format { big_endian, nanos })
}

/// The 32-bit field at `at` of `b`, in the file's byte order.
#[inline(always)]
fn u32_at(b: &[u8], at: usize, big_endian: bool) -> u32 {
    let w = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    if big_endian { w.swap_bytes() } else { w }
}

/// Where the records come from: a buffer refilled by `read()` ([`Buffered`]) or a mapped file
/// ([`super::mapped::Mapped`]).
pub(super) trait Feed {
    /// Makes `n` unread bytes available; false when the input ends first.
    fn want(&mut self, n: usize) -> std::io::Result<bool>;
    /// The unread bytes.
    fn unread(&self) -> &[u8];
    /// The first `n` unread bytes were used.
    fn consume(&mut self, n: usize);
}

/// The input, through one buffer that is refilled in place.
pub(super) struct Buffered<R> {
    input: R,
    buf: Vec<u8>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    eof: bool,
}

impl<R: Read> Buffered<R> {
    /// A buffer of `size` bytes holding `first` (bytes already taken from `input`) at its start.
    pub(super) fn new(input: R, size: usize, first: &[u8]) -> Self {
        let mut buf = vec![0; size.max(FILE_HEADER).max(first.len())];
        buf[..first.len()].copy_from_slice(first);
        Buffered {
            input,
            buf,
            start: 0,
            end: first.len(),
            eof: false,
        }
    }

    /// Reads until `n` bytes are available from `start`. The unread bytes move to the front
    /// only when `n` of them would not fit behind `start` (one partial record per refill), and
    /// the buffer grows only for a record larger than itself (the caller bounds `n`).
    #[cold]
    #[inline(never)]
    fn refill(&mut self, n: usize) -> std::io::Result<bool> {
        while self.end - self.start < n {
            if self.eof {
                return Ok(false);
            }
            if self.start + n > self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                if n > self.buf.len() {
                    self.buf.resize(n.next_power_of_two(), 0);
                }
            }
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

impl<R: Read> Feed for Buffered<R> {
    #[inline(always)]
    fn want(&mut self, n: usize) -> std::io::Result<bool> {
        if self.end - self.start >= n {
            return Ok(true);
        }
        self.refill(n)
    }

    #[inline(always)]
    fn unread(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    #[inline(always)]
    fn consume(&mut self, n: usize) {
        self.start += n;
    }
}

/// Reads a classic pcap file of `format` from `feed`, which starts at the file's first byte.
/// Records longer than `limit` are an error naming their offset; a file cut inside a record
/// keeps the packets before it and says so in `summary.truncated`.
pub(super) fn read(
    path: &Path,
    format: Format,
    feed: &mut impl Feed,
    limit: usize,
    max_record_bytes: usize,
    visit: &mut impl FnMut(&Packet<'_>),
    summary: &mut FileSummary,
) -> Result<(), FileError> {
    let read_error = |offset: u64, e: std::io::Error| FileError::Read {
        path: path.into(),
        offset,
        reason: e.to_string(),
    };
    if !feed.want(FILE_HEADER).map_err(|e| read_error(0, e))? {
        return Err(FileError::Corrupt {
            path: path.into(),
            offset: 0,
            reason: format!(
                "unreadable file header: the file ends after {} of its {FILE_HEADER} bytes",
                feed.unread().len()
            ),
        });
    }
    let Format { big_endian, nanos, .. } = format;
    let link = LinkType(u32_at(feed.unread(), 20, big_endian));
    summary.format = "pcap";
    summary.interfaces.push(link);
    feed.consume(FILE_HEADER);
    let mut offset = FILE_HEADER as u64;
    loop {
        if !feed.want(RECORD_HEADER).map_err(|e| read_error(offset, e))? {
            let left = feed.unread().len();
            if left > 0 {
                summary.truncated = Some(format!(
                    "byte offset {offset}: the file ends inside a record header ({left} of its {RECORD_HEADER} bytes)"
                ));
            }
            return Ok(());
        }
        let mut rh = [0u8; RECORD_HEADER];
        rh.copy_from_slice(&feed.unread()[..RECORD_HEADER]);
        let field = |at: usize| u32_at(&rh, at, big_endian);
        let caplen = field(8) as usize;
        let total = RECORD_HEADER + caplen;
        if total > limit {
            return Err(FileError::Corrupt {
                path: path.into(),
                offset,
                reason: format!(
                    "a record is larger than the {max_record_bytes}-byte limit (absurd length field? it claims {caplen} bytes)"
                ),
            });
        }
        if !feed.want(total).map_err(|e| read_error(offset, e))? {
            summary.truncated = Some(format!(
                "byte offset {offset}: the file ends inside a record ({} of its {total} bytes; the record was ignored)",
                feed.unread().len()
            ));
            return Ok(());
        }
        let frac = u64::from(field(4));
        let ts = Timestamp::from_secs_nanos(u64::from(field(0)), if nanos { frac } else { frac * 1_000 });
        summary.packets += 1;
        summary.bytes += caplen as u64;
        visit(&Packet {
            ts,
            link,
            data: &feed.unread()[RECORD_HEADER..total],
            orig_len: field(12),
            interface: 0,
        });
        feed.consume(total);
        offset += total as u64;
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A classic pcap file of `records` (seconds, fraction, data, original length).
    pub(in crate::source) fn file(big_endian: bool, nanos: bool, records: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
        let w = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut f = Vec::new();
        f.extend_from_slice(&w(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
        f.extend_from_slice(&[0, 2, 0, 4]);
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&w(65_535));
        f.extend_from_slice(&w(1));
        for (s, frac, data, orig) in records {
            f.extend_from_slice(&w(*s));
            f.extend_from_slice(&w(*frac));
            f.extend_from_slice(&w(data.len() as u32));
            f.extend_from_slice(&w(*orig));
            f.extend_from_slice(data);
        }
        f
    }

    /// (timestamp, data, original length) of a packet read.
    type Got = (Timestamp, Vec<u8>, u32);

    /// Reads `f` through a reader that returns at most `chunk` bytes a call, with a `buffer`-byte
    /// buffer.
    fn run(f: &[u8], chunk: usize, buffer: usize, max: usize) -> (Vec<Got>, Result<FileSummary, FileError>) {
        struct Dribble<'a>(&'a [u8], usize);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(self.1).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut got = Vec::new();
        let mut summary = FileSummary::default();
        let mut feed = Buffered::new(Dribble(&f[4..], chunk), buffer, &f[..4]);
        let r = read(
            Path::new("t.pcap"),
            format([f[0], f[1], f[2], f[3]]).expect("a classic pcap magic"),
            &mut feed,
            max.max(buffer),
            max,
            &mut |p: &Packet<'_>| got.push((p.ts, p.data.to_vec(), p.orig_len)),
            &mut summary,
        );
        (got, r.map(|()| summary))
    }

    #[test]
    fn records_in_either_byte_order_and_resolution_across_any_refill() {
        let big = vec![7u8; 300];
        let recs: [(u32, u32, &[u8], u32); 3] = [(1, 5, b"abc", 60), (2, 999_999, &big, 300), (3, 0, b"", 0)];
        for (be, ns) in [(false, false), (false, true), (true, false), (true, true)] {
            let f = file(be, ns, &recs);
            for chunk in [1, 7, 16, 17, 4096] {
                for buffer in [64, 100, 1 << 16] {
                    let (got, r) = run(&f, chunk, buffer, 1 << 20);
                    let s = r.unwrap();
                    assert_eq!(
                        (s.packets, s.bytes, s.format, s.truncated.clone()),
                        (3, 303, "pcap", None)
                    );
                    assert_eq!(s.interfaces, vec![LinkType::ETHERNET]);
                    let mul = if ns { 1 } else { 1_000 };
                    assert_eq!(got[0], (Timestamp::from_secs_nanos(1, 5 * mul), b"abc".to_vec(), 60));
                    assert_eq!(got[1], (Timestamp::from_secs_nanos(2, 999_999 * mul), big.clone(), 300));
                    assert_eq!(got[2].1, b"");
                }
            }
        }
    }

    #[test]
    fn a_cut_record_keeps_the_packets_before_it_and_names_its_offset() {
        let f = file(false, false, &[(1, 0, b"abcd", 4), (2, 0, b"efgh", 4)]);
        let second = 24 + 16 + 4;
        for cut in [second + 3, second + 16 + 2] {
            let (got, r) = run(&f[..cut], 5, 64, 1 << 20);
            let s = r.unwrap();
            assert_eq!(got.len(), 1);
            let t = s.truncated.unwrap();
            assert!(
                t.starts_with(&format!("byte offset {second}: the file ends inside a record")),
                "{t}"
            );
        }
        let (got, r) = run(&f[..20], 5, 64, 1 << 20);
        assert!(got.is_empty());
        assert!(r.unwrap_err().to_string().contains("ends after 20 of its 24 bytes"));
    }

    #[test]
    fn an_absurd_length_is_an_error_at_its_offset_without_a_big_buffer() {
        let mut f = file(false, false, &[(1, 0, b"ok", 2)]);
        let at = f.len();
        for v in [0u32, 0, 0x7fff_ffff, 0x7fff_ffff] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        let (got, r) = run(&f, 1 << 16, 4096, 1 << 20);
        assert_eq!(got.len(), 1);
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains(&format!("byte offset {at}:")) && e.contains("1048576-byte limit"),
            "{e}"
        );
        // A record larger than the buffer but within the limit grows the buffer.
        let big = vec![1u8; 5000];
        let f = file(true, false, &[(1, 0, &big, 5000)]);
        let (got, r) = run(&f, 999, 64, 1 << 20);
        assert_eq!((got.len(), r.unwrap().packets), (1, 1));
        assert_eq!(got[0].1, big);
    }
}
