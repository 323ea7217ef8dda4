//! pcap and pcapng files: classic pcap through our own record loop ([`super::legacy`]), from
//! a regular file through a mapping of it ([`super::mapped`]), from a pipe through
//! `read()`; pcapng through `pcap-parser`'s streaming reader.
//!
//! Both byte orders, microsecond and nanosecond pcap, and pcapng with several interfaces (each with
//! its own link type and timestamp resolution) are supported. Records and blocks are lent from the
//! reader's buffer to a visitor, so no packet is copied here.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError, PcapNGReader};

use super::{LinkType, Packet, legacy, mapped};
use crate::time::Timestamp;

/// The reader's buffer, and so the size of each `read()`; it grows (up to `max_record_bytes`)
/// when a record does not fit. Small enough to stay in a core's L2 cache, so the kernel's copy
/// and the parser's read of the same bytes both hit it (1 MiB cost 0.2 CPU-s more per GB).
pub(super) const INITIAL_BUFFER: usize = 256 << 10;

/// Why a capture file could not be read, with the byte offset where the problem is.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: cannot open: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("{path}: byte offset 0: not a pcap or pcapng file (unknown magic number {magic})")]
    BadMagic { path: PathBuf, magic: String },
    #[error("{path}: the file is empty")]
    Empty { path: PathBuf },
    #[error("{path}: byte offset {offset}: {reason}")]
    Corrupt { path: PathBuf, offset: u64, reason: String },
    #[error("{path}: byte offset {offset}: read error: {reason}")]
    Read { path: PathBuf, offset: u64, reason: String },
}

/// What reading a file found besides packets.
#[derive(Debug, Clone, Default)]
pub struct FileSummary {
    pub packets: u64,
    pub bytes: u64,
    /// Set when the file ends in the middle of a record (a capture that was cut short). The
    /// packets before it were read; the message names the offset.
    pub truncated: Option<String>,
    /// Packets on an interface whose link type we do not decode are still counted here.
    pub interfaces: Vec<LinkType>,
    /// pcapng Decryption Secrets Blocks (type, data), kept for the TLS issue.
    pub secrets_blocks: u64,
    /// `pcap` or `pcapng`, from the file's header block.
    pub format: &'static str,
}

struct Interface {
    link: LinkType,
    /// Units per second of the EPB timestamps.
    resolution: u64,
    offset_secs: i64,
}

/// Reads every packet of `path`, calling `visit` for each one in file order, and `tls_keys` with
/// the NSS key log text of each pcapng Decryption Secrets Block, where it stands in the file
/// (before the packets it decrypts).
pub fn read_file(
    path: &Path,
    max_record_bytes: usize,
    visit: impl FnMut(&Packet<'_>),
    tls_keys: &mut dyn FnMut(&[u8]),
) -> Result<FileSummary, FileError> {
    read_file_counted(path, max_record_bytes, &AtomicU64::new(0), visit, tls_keys)
}

/// Checks that `path` can be opened and starts like a pcap or pcapng file (the errors of
/// [`read_file`] that come before any packet); returns its size in bytes. A pipe (`--pcap
/// /dev/stdin`, a FIFO, `<(tcpdump -w - …)`) is not opened: reading it would consume it; its
/// size is 0 (unknown).
pub fn check_file(path: &Path) -> Result<u64, FileError> {
    let open_err = |source| FileError::Open {
        path: path.into(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(open_err)?;
    if !meta.is_file() {
        return Ok(0);
    }
    let mut file = File::open(path).map_err(open_err)?;
    let size = meta.len();
    read_magic(path, &mut file)?;
    Ok(size)
}

/// Reads into `buf` until it is full or the input ends; returns how many bytes were read, or
/// the error with how many were read before it.
fn fill(input: &mut impl Read, buf: &mut [u8]) -> Result<usize, (usize, std::io::Error)> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err((n, e)),
        }
    }
    Ok(n)
}

/// Reads the first (up to) four bytes of `input` and checks them ([`check_magic`]).
fn read_magic(path: &Path, input: &mut impl Read) -> Result<([u8; 4], usize), FileError> {
    let mut head = [0u8; 4];
    let n = fill(input, &mut head).map_err(|(n, e)| FileError::Read {
        path: path.into(),
        offset: n as u64,
        reason: e.to_string(),
    })?;
    check_magic(path, &head[..n])?;
    Ok((head, n))
}

/// The first bytes of a capture file: empty, or not a magic number we read, is an error.
fn check_magic(path: &Path, head: &[u8]) -> Result<(), FileError> {
    if head.is_empty() {
        return Err(FileError::Empty { path: path.into() });
    }
    /// pcapng's Section Header Block type (the same in either byte order).
    const PCAPNG: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
    let known = <[u8; 4]>::try_from(head).is_ok_and(|m| m == PCAPNG || legacy::format(m).is_some());
    if !known {
        return Err(FileError::BadMagic {
            path: path.into(),
            magic: head.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" "),
        });
    }
    Ok(())
}

/// Like [`read_file`], adding the bytes read to `read_so_far` as they come (a progress report:
/// one atomic add per `read()` or mapped chunk, and a slow pipe shows what has arrived, not
/// what a per-packet batch last published).
pub fn read_file_counted(
    path: &Path,
    max_record_bytes: usize,
    read_so_far: &AtomicU64,
    mut visit: impl FnMut(&Packet<'_>),
    tls_keys: &mut dyn FnMut(&[u8]),
) -> Result<FileSummary, FileError> {
    let mut file = File::open(path).map_err(|source| FileError::Open {
        path: path.into(),
        source,
    })?;
    if file.metadata().is_ok_and(|m| m.is_file()) {
        let (head, _) = read_magic(path, &mut file)?;
        if let Some(format) = legacy::format(head) {
            match MappedFile::map(file, format) {
                Ok(m) => return m.read(path, max_record_bytes, read_so_far, None, visit),
                Err(unmapped) => file = unmapped,
            }
        }
        std::io::Seek::rewind(&mut file).map_err(|e| FileError::Read {
            path: path.into(),
            offset: 0,
            reason: e.to_string(),
        })?;
    }
    let counted = Counted {
        inner: file,
        read_so_far,
    };
    read_from(path, counted, max_record_bytes, &mut visit, tls_keys)
}

/// A classic pcap file mapped whole ([`mapped::Region`]): its packets are slices of the
/// region, which other threads can read for as long as it lives.
pub struct MappedFile {
    file: File,
    region: mapped::Region,
    format: legacy::Format,
    /// Bytes read in ahead at a time ([`mapped::CHUNK`]; smaller in tests).
    chunk: usize,
}

impl MappedFile {
    /// `path` mapped, when it is a regular classic pcap file that can be mapped; `None` for
    /// anything else (pcapng, a pipe), which [`read_file_counted`] reads.
    pub fn open(path: &Path) -> Result<Option<MappedFile>, FileError> {
        let mut file = File::open(path).map_err(|source| FileError::Open {
            path: path.into(),
            source,
        })?;
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return Ok(None);
        }
        let (head, _) = read_magic(path, &mut file)?;
        Ok(legacy::format(head).and_then(|format| MappedFile::map(file, format).ok()))
    }

    /// `file` (of classic pcap `format`) mapped; the file back when it cannot be.
    fn map(file: File, format: legacy::Format) -> Result<MappedFile, File> {
        match mapped::Region::map(&file) {
            Some(region) => Ok(MappedFile {
                file,
                region,
                format,
                chunk: mapped::CHUNK,
            }),
            None => Err(file),
        }
    }

    pub fn region(&self) -> &mapped::Region {
        &self.region
    }

    /// Reads in (and drops behind) `chunk` bytes at a time instead of [`mapped::CHUNK`].
    pub(crate) fn set_chunk(&mut self, chunk: usize) {
        self.chunk = chunk;
    }

    /// Reads every packet, as [`read_file_counted`] does; the pages before `keep_from()` are
    /// kept resident (packets handed to other threads that are still to be read).
    pub fn read(
        &self,
        path: &Path,
        max_record_bytes: usize,
        read_so_far: &AtomicU64,
        keep_from: Option<&dyn Fn() -> usize>,
        mut visit: impl FnMut(&Packet<'_>),
    ) -> Result<FileSummary, FileError> {
        let mut feed = mapped::Mapped::new(&self.region, &self.file, self.chunk, read_so_far, keep_from);
        let mut summary = FileSummary::default();
        legacy::read(
            path,
            self.format,
            &mut feed,
            max_record_bytes.max(INITIAL_BUFFER),
            max_record_bytes,
            &mut visit,
            &mut summary,
        )?;
        Ok(summary)
    }
}

/// A reader that adds the bytes it reads to a counter.
struct Counted<'a, R> {
    inner: R,
    read_so_far: &'a AtomicU64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read_so_far.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Like [`read_file`] but from any reader; `path` only names the source in errors.
pub fn read_from<R: Read + Send>(
    path: &Path,
    input: R,
    max_record_bytes: usize,
    visit: &mut impl FnMut(&Packet<'_>),
    tls_keys: &mut dyn FnMut(&[u8]),
) -> Result<FileSummary, FileError> {
    // Read the magic first so that a wrong file gets a precise message; the reader then reads
    // those bytes again, then the rest straight from `input` (no second buffer to copy through).
    let mut input = input;
    let (head, n) = read_magic(path, &mut input)?;
    if let Some(format) = legacy::format(head) {
        let mut summary = FileSummary::default();
        let mut feed = legacy::Buffered::new(input, INITIAL_BUFFER, &head);
        let limit = max_record_bytes.max(INITIAL_BUFFER);
        legacy::read(path, format, &mut feed, limit, max_record_bytes, visit, &mut summary)?;
        return Ok(summary);
    }
    let input = Reread {
        head,
        len: n,
        first: true,
        inner: input,
    };
    let mut reader = PcapNGReader::new(INITIAL_BUFFER, input).map_err(|e| FileError::Corrupt {
        path: path.into(),
        offset: 0,
        reason: format!("unreadable file header: {e:?}"),
    })?;

    let mut summary = FileSummary::default();
    let mut ifaces: Vec<Interface> = Vec::new();
    let mut buffer_size = INITIAL_BUFFER;
    let mut offset: u64 = 0;
    loop {
        match reader.next() {
            Ok((consumed, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(_) | PcapBlockOwned::Legacy(_) => {
                        // A pcapng reader yields pcapng blocks only; classic files never get here.
                        return Err(FileError::Corrupt {
                            path: path.into(),
                            offset,
                            reason: "a classic pcap block inside a pcapng file".into(),
                        });
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                        summary.format = "pcapng";
                        // Interface numbering restarts in every section.
                        ifaces.clear();
                    }
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        let link = LinkType(idb.linktype.0 as u32);
                        ifaces.push(Interface {
                            link,
                            resolution: idb.ts_resolution().unwrap_or(1_000_000),
                            offset_secs: idb.ts_offset(),
                        });
                        summary.interfaces.push(link);
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        let Some(iface) = ifaces.get(epb.if_id as usize) else {
                            return Err(FileError::Corrupt {
                                path: path.into(),
                                offset,
                                reason: format!(
                                    "enhanced packet block names interface {} but only {} were described",
                                    epb.if_id,
                                    ifaces.len()
                                ),
                            });
                        };
                        let raw = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                        let ts = ng_timestamp(raw, iface.resolution, iface.offset_secs);
                        let data = &epb.data[..(epb.caplen as usize).min(epb.data.len())];
                        summary.packets += 1;
                        summary.bytes += data.len() as u64;
                        visit(&Packet {
                            ts,
                            link: iface.link,
                            data,
                            orig_len: epb.origlen,
                            interface: epb.if_id,
                        });
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        // SPBs carry no timestamp and always belong to interface 0.
                        if let Some(iface) = ifaces.first() {
                            let data = &spb.data[..(spb.origlen as usize).min(spb.data.len())];
                            summary.packets += 1;
                            summary.bytes += data.len() as u64;
                            visit(&Packet {
                                ts: Timestamp::default(),
                                link: iface.link,
                                data,
                                orig_len: spb.origlen,
                                interface: 0,
                            });
                        }
                    }
                    PcapBlockOwned::NG(Block::DecryptionSecrets(dsb)) => {
                        summary.secrets_blocks += 1;
                        if dsb.secrets_type == pcap_parser::pcapng::SecretsType::TlsKeyLog {
                            let len = (dsb.secrets_len as usize).min(dsb.data.len());
                            tls_keys(&dsb.data[..len]);
                        }
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                offset += consumed as u64;
                // No shift here: `consume` moves the unread half of the buffer to its start
                // every time half is consumed (a memmove of half the file); `refill` moves only
                // the incomplete record left at the end.
                reader.consume_noshift(consumed);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                if reader.reader_exhausted() {
                    let left = reader.data().len();
                    if left > 0 {
                        summary.truncated = Some(format!(
                            "byte offset {offset}: the file ends inside a record ({left} bytes of an incomplete record were ignored)"
                        ));
                    }
                    break;
                }
                reader.refill().map_err(|e| FileError::Read {
                    path: path.into(),
                    offset,
                    reason: format!("{e:?}"),
                })?;
            }
            Err(PcapError::BufferTooSmall) => {
                if buffer_size >= max_record_bytes || !reader.grow(buffer_size * 2) {
                    return Err(FileError::Corrupt {
                        path: path.into(),
                        offset,
                        reason: format!(
                            "a record is larger than the {max_record_bytes}-byte limit (absurd length field?)"
                        ),
                    });
                }
                buffer_size *= 2;
                reader.refill().map_err(|e| FileError::Read {
                    path: path.into(),
                    offset,
                    reason: format!("{e:?}"),
                })?;
            }
            Err(PcapError::UnexpectedEof) => {
                summary.truncated = Some(format!("byte offset {offset}: unexpected end of file inside a record"));
                break;
            }
            Err(e) => {
                let reason = match e {
                    PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
                        format!("malformed record or block ({kind:?})")
                    }
                    other => format!("{other:?}"),
                };
                return Err(FileError::Corrupt {
                    path: path.into(),
                    offset,
                    reason,
                });
            }
        }
    }
    Ok(summary)
}

/// `inner` with the magic bytes already read from it put back in front. The first `read` fills
/// the caller's buffer as far as the input goes, because pcap-parser parses the file header
/// from what its first read returns.
struct Reread<R> {
    head: [u8; 4],
    len: usize,
    first: bool,
    inner: R,
}

impl<R: Read> Read for Reread<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.first {
            return self.inner.read(buf);
        }
        self.first = false;
        let n = self.len.min(buf.len());
        buf[..n].copy_from_slice(&self.head[..n]);
        Ok(n + fill(&mut self.inner, &mut buf[n..]).map_err(|(_, e)| e)?)
    }
}

fn ng_timestamp(raw: u64, resolution: u64, offset_secs: i64) -> Timestamp {
    let resolution = resolution.max(1);
    let secs = raw / resolution;
    let frac = raw % resolution;
    let nanos = (u128::from(frac) * 1_000_000_000 / u128::from(resolution)) as u64;
    let secs = (secs as i64).saturating_add(offset_secs).max(0) as u64;
    Timestamp::from_secs_nanos(secs, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_magic_names_offset_zero() {
        let err = read_from(
            Path::new("x.pcap"),
            &b"GET / HTTP/1.1\r\n"[..],
            1 << 24,
            &mut |_| {},
            &mut |_| {},
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("byte offset 0") && msg.contains("47 45 54 20"), "{msg}");
    }

    #[test]
    fn empty_file_is_an_error() {
        let err = read_from(Path::new("x.pcap"), &b""[..], 1 << 24, &mut |_| {}, &mut |_| {}).unwrap_err();
        assert!(matches!(err, FileError::Empty { .. }));
    }

    use crate::synth::pcap::{ByteOrder, PcapNgWriter, PcapWriter, TsResolution};

    /// (timestamp, link type, data, original length, interface) of each packet read.
    type Read = (Timestamp, LinkType, Vec<u8>, u32, u32);

    fn read_all(bytes: &[u8]) -> (Vec<Read>, FileSummary) {
        let mut got = Vec::new();
        let summary = read_from(
            Path::new("t.pcap"),
            bytes,
            1 << 24,
            &mut |p| got.push((p.ts, p.link, p.data.to_vec(), p.orig_len, p.interface)),
            &mut |_| {},
        )
        .unwrap();
        (got, summary)
    }

    #[test]
    fn pcap_both_byte_orders_and_resolutions() {
        let ts = Timestamp::from_secs_nanos(1_700_000_000, 123_456_789);
        for order in [ByteOrder::Little, ByteOrder::Big] {
            for res in [TsResolution::Micros, TsResolution::Nanos] {
                let mut w = PcapWriter::with_byte_order(Vec::new(), LinkType::RAW, res, order).unwrap();
                w.write_packet(ts, &[0x45, 1, 2, 3], 60).unwrap();
                let (got, summary) = read_all(&w.into_inner().unwrap());
                let want_ts = if res == TsResolution::Nanos {
                    ts
                } else {
                    Timestamp::from_secs_nanos(1_700_000_000, 123_456_000)
                };
                assert_eq!(
                    got,
                    vec![(want_ts, LinkType::RAW, vec![0x45, 1, 2, 3], 60, 0)],
                    "{order:?} {res:?}"
                );
                assert_eq!(summary.packets, 1);
                assert!(summary.truncated.is_none());
            }
        }
    }

    #[test]
    fn pcapng_with_several_interfaces() {
        let ts = Timestamp::from_secs_nanos(1_700_000_000, 5);
        for order in [ByteOrder::Little, ByteOrder::Big] {
            let mut w = PcapNgWriter::with_byte_order(Vec::new(), order).unwrap();
            let eth = w.add_interface(LinkType::ETHERNET, TsResolution::Nanos).unwrap();
            let sll = w.add_interface(LinkType::LINUX_SLL, TsResolution::Micros).unwrap();
            w.write_packet(eth, ts, &[1, 2], 2).unwrap();
            w.write_packet(sll, Timestamp::from_secs_nanos(1_700_000_001, 7_000), &[3], 1)
                .unwrap();
            let (got, summary) = read_all(&w.into_inner().unwrap());
            assert_eq!(got.len(), 2);
            assert_eq!((got[0].0, got[0].1, got[0].4), (ts, LinkType::ETHERNET, 0));
            assert_eq!(
                (got[1].0, got[1].1, got[1].4),
                (Timestamp::from_secs_nanos(1_700_000_001, 7_000), LinkType::LINUX_SLL, 1)
            );
            assert_eq!(summary.interfaces, vec![LinkType::ETHERNET, LinkType::LINUX_SLL]);
        }
    }

    #[test]
    fn cut_short_file_keeps_earlier_packets_and_names_the_offset() {
        let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET, TsResolution::Micros).unwrap();
        for i in 0..3u8 {
            w.write_packet(Timestamp::from_secs_nanos(1, 0), &[i; 40], 40).unwrap();
        }
        let bytes = w.into_inner().unwrap();
        let (got, summary) = read_all(&bytes[..bytes.len() - 10]);
        assert_eq!(got.len(), 2);
        let msg = summary.truncated.unwrap();
        assert!(msg.contains("byte offset 136"), "{msg}");
    }

    #[test]
    fn ng_timestamps_honour_resolution() {
        assert_eq!(
            ng_timestamp(1_500_000, 1_000_000, 0),
            Timestamp::from_secs_nanos(1, 500_000_000)
        );
        assert_eq!(
            ng_timestamp(1_000_000_001, 1_000_000_000, 0),
            Timestamp::from_secs_nanos(1, 1)
        );
        assert_eq!(ng_timestamp(3, 2, 10), Timestamp::from_secs_nanos(11, 500_000_000));
    }
}
