//! A regular file read through one read-only mapping, for the classic pcap reader
//! ([`super::legacy`]): the records are read where the kernel's page cache holds them, with no
//! copy into a buffer of ours. Importing the 1 GB benchmark capture took 1.115 CPU-seconds this
//! way against 1.26 through `read()` into a 256 KiB buffer: system time 0.09 against 0.205, user
//! time 1.02 against 1.00 (the parser's first touch of each byte now misses the cache instead of
//! the kernel's copy); medians of 8 paired runs of the import example.
//!
//! The whole file is mapped at once ([`Region`]), so a packet read from it stays where it is
//! for as long as the region lives: with several capture threads the reader hands the other
//! engines offsets into the region, not copies. The pages are read in ahead of the reader a
//! [`CHUNK`] at a time (`MADV_POPULATE_READ`: one call instead of a page fault per 4 KiB) and
//! dropped from the resident set behind it (`MADV_DONTNEED`, which for a file mapping only
//! unmaps: a page touched again is read back from the page cache), so the resident set holds
//! a few chunks of the file, not all of it. The mapping reaches [`SLACK`] past the file's end,
//! which costs address space only: a file still being written is read on as it grows.
//!
//! A file cut shorter while it is mapped would kill the process with `SIGBUS` at the first
//! touch of a page past its new end. A handler ([`on_sigbus`]) maps zeroed memory over the rest
//! of such a region and marks it; the reader then stops with an error naming the offset.
//! Faults outside our regions go to the handler that was there before.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::legacy::Feed;

/// The bytes read in ahead of the reader at a time; a record larger than this is read in
/// whole. The resident set holds about one of them (what is left of the one being read and
/// the next), and the pages other engines have still to read.
pub(super) const CHUNK: usize = 8 << 20;

/// Address space mapped past the file's end for it to grow into (no memory is used for it).
const SLACK: usize = 64 << 30;

/// One region, as the `SIGBUS` handler sees it: the addresses `[start, end)`, empty while
/// nothing is mapped.
struct Slot {
    taken: AtomicBool,
    start: AtomicUsize,
    end: AtomicUsize,
    /// The handler found the file shorter than a page it was asked for.
    cut: AtomicBool,
}

/// Files mapped at once, at most; a reader that finds none free reads through `read()`.
const SLOTS: usize = 16;

static REGIONS: [Slot; SLOTS] = [const {
    Slot {
        taken: AtomicBool::new(false),
        start: AtomicUsize::new(0),
        end: AtomicUsize::new(0),
        cut: AtomicBool::new(false),
    }
}; SLOTS];

/// The `SIGBUS` action before ours; `None` when ours could not be installed.
static PREVIOUS: OnceLock<Option<libc::sigaction>> = OnceLock::new();

/// The page size, which mapping offsets are multiples of (read before the handler can run).
static PAGE: AtomicUsize = AtomicUsize::new(4096);

/// Installs [`on_sigbus`] once; false when that failed.
fn install() -> bool {
    PREVIOUS
        .get_or_init(|| {
            // SAFETY: sysconf reads a system constant; sigaction installs a handler that only
            // makes async-signal-safe calls (mmap, sigaction) and atomic accesses, and keeps
            // the previous action to pass other faults on to.
            unsafe {
                let p = libc::sysconf(libc::_SC_PAGESIZE);
                if let Some(p) = usize::try_from(p).ok().filter(|p| p.is_power_of_two()) {
                    PAGE.store(p, Ordering::Relaxed);
                }
                let mut ours: libc::sigaction = std::mem::zeroed();
                ours.sa_sigaction = on_sigbus as *const () as usize;
                ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut ours.sa_mask);
                let mut previous: libc::sigaction = std::mem::zeroed();
                (libc::sigaction(libc::SIGBUS, &ours, &mut previous) == 0).then_some(previous)
            }
        })
        .is_some()
}

/// A `SIGBUS` at an address in one of our regions: the file shrank under it. The rest of the
/// region from the faulting page becomes zeroed anonymous memory (the access is then repeated
/// and reads zeros) and the region is marked cut. Any other `SIGBUS` goes to the previous
/// action (a default one is restored, and the repeated access then ends the process as before).
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for a SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    for w in &REGIONS {
        let (start, end) = (w.start.load(Ordering::Acquire), w.end.load(Ordering::Acquire));
        if start <= addr && addr < end {
            let page = addr & !(PAGE.load(Ordering::Relaxed) - 1);
            // SAFETY: replaces pages of our own read-only region, which is read through
            // shared references only and unmapped by its owner later; MAP_FIXED only within
            // that region.
            let p = unsafe {
                libc::mmap(
                    page as *mut libc::c_void,
                    end - page,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                w.cut.store(true, Ordering::Release);
                return;
            }
        }
    }
    let Some(Some(previous)) = PREVIOUS.get() else { return };
    match previous.sa_sigaction {
        libc::SIG_DFL | libc::SIG_IGN => {
            // SAFETY: restores the action that was there before ours; the access that faulted
            // is repeated on return and gets it.
            unsafe { libc::sigaction(libc::SIGBUS, previous, std::ptr::null_mut()) };
        }
        handler if previous.sa_flags & libc::SA_SIGINFO != 0 => {
            // SAFETY: the previous handler was installed as a SA_SIGINFO handler of this type.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(handler) };
            f(sig, info, ctx);
        }
        handler => {
            // SAFETY: the previous handler was installed as a plain handler of this type.
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
            f(sig);
        }
    }
}

/// A whole file mapped read-only (and [`SLACK`] past its end), shared by the threads that
/// read its packets.
pub struct Region {
    base: *const u8,
    len: usize,
    /// The file's size when it was mapped.
    size: usize,
    slot: &'static Slot,
}

// SAFETY: the region is a read-only mapping that lives as long as the value, read through
// shared references only; a page cut from the file is replaced by zeros (`on_sigbus`), never
// left unmapped.
unsafe impl Send for Region {}
// SAFETY: as for Send: nothing is written through the region.
unsafe impl Sync for Region {}

impl Region {
    /// Maps `file`. `None` when it cannot be mapped safely (no `SIGBUS` handler, [`SLOTS`]
    /// files mapped already, or no address space for it): read it through `read()`.
    pub(super) fn map(file: &File) -> Option<Region> {
        let size = usize::try_from(file.metadata().ok()?.len()).ok()?;
        if !install() {
            return None;
        }
        let page = PAGE.load(Ordering::Relaxed);
        let slot = REGIONS.iter().find(|w| {
            w.taken
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })?;
        slot.cut.store(false, Ordering::Relaxed);
        // With a limit on address space (`ulimit -v`) the slack may not fit: then the file as
        // it is now, and a file that grows is read to that size.
        for len in [size.saturating_add(SLACK), size] {
            let len = len.max(1).next_multiple_of(page);
            // SAFETY: a new read-only private mapping of our open file from offset 0; the
            // kernel picks the address. Pages past the file's end are never touched unless
            // the file has grown to them (and `on_sigbus` covers them if it shrank).
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE,
                    file.as_raw_fd(),
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                slot.start.store(p as usize, Ordering::Release);
                slot.end.store(p as usize + len, Ordering::Release);
                return Some(Region {
                    base: p.cast(),
                    len,
                    size,
                    slot,
                });
            }
        }
        slot.taken.store(false, Ordering::Release);
        None
    }

    /// The `len` bytes at `offset`. Bytes past the file's end read as zeros once the reader
    /// found the file cut; the reader checks [`Self::cut`] before trusting them.
    #[inline(always)]
    pub fn bytes(&self, offset: usize, len: usize) -> &[u8] {
        assert!(
            offset <= self.len && len <= self.len - offset,
            "a range of the mapped file"
        );
        // SAFETY: `base` maps `self.len` readable bytes for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.base.add(offset), len) }
    }

    /// Where `bytes` starts in the region, when they are the region's.
    #[inline(always)]
    pub fn offset_of(&self, bytes: &[u8]) -> Option<usize> {
        let at = (bytes.as_ptr() as usize).checked_sub(self.base as usize)?;
        (at <= self.len && bytes.len() <= self.len - at).then_some(at)
    }

    /// True once the file was found shorter than a page the reader touched.
    fn cut(&self) -> bool {
        self.slot.cut.load(Ordering::Acquire)
    }

    /// `madvise` over the pages of `[from, to)` (rounded out to whole pages); false when the
    /// kernel refused.
    fn advise(&self, from: usize, to: usize, advice: libc::c_int) -> bool {
        let page = PAGE.load(Ordering::Relaxed);
        let from = from & !(page - 1);
        let to = to.min(self.len);
        if to <= from {
            return true;
        }
        // SAFETY: a page-aligned range inside our own mapping; the advice changes what is
        // resident, never what the mapping reads.
        unsafe { libc::madvise(self.base.add(from) as *mut libc::c_void, to - from, advice) == 0 }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // The handler stops seeing the region before it goes.
        self.slot.end.store(0, Ordering::Release);
        self.slot.start.store(0, Ordering::Release);
        // SAFETY: our own mapping; nothing borrows it any more (borrows of `self` are gone).
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
        self.slot.taken.store(false, Ordering::Release);
    }
}

/// `MADV_POPULATE_READ` (Linux 5.14) is not known to this kernel: read ahead with
/// `MADV_WILLNEED` instead (page faults then map the pages).
static NO_POPULATE: AtomicBool = AtomicBool::new(false);

/// The records of a mapped file, read front to back.
pub(super) struct Mapped<'a> {
    region: &'a Region,
    file: &'a File,
    /// The file's size, as last asked (asked again at its end: a file still being written).
    size: usize,
    /// The unread bytes start here.
    start: usize,
    /// The pages before this offset were read in (and counted in `read_so_far`).
    ahead: usize,
    /// The pages before this offset were dropped from the resident set.
    behind: usize,
    chunk: usize,
    /// Bytes before this offset that other threads still read (packets handed to them): not
    /// dropped yet.
    keep_from: Option<&'a dyn Fn() -> usize>,
    read_so_far: &'a AtomicU64,
}

impl<'a> Mapped<'a> {
    /// Reads `region` (the mapping of `file`) from its first byte, `chunk` bytes ahead at a
    /// time, adding the bytes read in to `read_so_far`; with `keep_from`, the pages other
    /// threads still read stay resident.
    pub(super) fn new(
        region: &'a Region,
        file: &'a File,
        chunk: usize,
        read_so_far: &'a AtomicU64,
        keep_from: Option<&'a dyn Fn() -> usize>,
    ) -> Self {
        Mapped {
            region,
            file,
            size: region.size,
            start: 0,
            ahead: 0,
            behind: 0,
            chunk: chunk.max(PAGE.load(Ordering::Relaxed)),
            keep_from,
            read_so_far,
        }
    }

    /// Reads in the pages up to `n` bytes past the first unread one (a chunk at least), drops
    /// those before the first byte still read; false when the file ends first.
    #[cold]
    #[inline(never)]
    fn read_ahead(&mut self, n: usize) -> std::io::Result<bool> {
        if self.region.cut() {
            let now = self
                .file
                .metadata()
                .map_or_else(|_| "fewer".into(), |m| m.len().to_string());
            return Err(std::io::Error::other(format!(
                "the file was cut to {now} bytes while it was being read (it had {}); the packets read from here on are not reliable",
                self.size
            )));
        }
        let want = self.start.saturating_add(n);
        if want > self.size {
            let now = usize::try_from(self.file.metadata()?.len()).unwrap_or(usize::MAX);
            if want <= now && now > self.region.len {
                return Err(std::io::Error::other(format!(
                    "the file grew past {} bytes while it was being read, more than could be mapped",
                    self.region.len
                )));
            }
            self.size = now.min(self.region.len);
        }
        let to = want.max(self.ahead.saturating_add(self.chunk)).min(self.size);
        if to > self.ahead {
            // A failure (a file cut under us: EFAULT) is found by the read itself.
            if NO_POPULATE.load(Ordering::Relaxed)
                || !self.region.advise(self.ahead, to, libc::MADV_POPULATE_READ)
                    && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL)
            {
                NO_POPULATE.store(true, Ordering::Relaxed);
                self.region.advise(self.ahead, to, libc::MADV_WILLNEED);
            }
            self.read_so_far.fetch_add((to - self.ahead) as u64, Ordering::Relaxed);
            self.ahead = to;
        }
        let kept = self.keep_from.map_or(self.start, |k| k().min(self.start));
        let drop_to = kept & !(PAGE.load(Ordering::Relaxed) - 1);
        if drop_to > self.behind {
            self.region.advise(self.behind, drop_to, libc::MADV_DONTNEED);
            self.behind = drop_to;
        }
        Ok(want <= self.size)
    }
}

impl Feed for Mapped<'_> {
    #[inline(always)]
    fn want(&mut self, n: usize) -> std::io::Result<bool> {
        if self.ahead.saturating_sub(self.start) >= n && !self.region.cut() {
            return Ok(true);
        }
        self.read_ahead(n)
    }

    #[inline(always)]
    fn unread(&self) -> &[u8] {
        // SAFETY: `start <= size <= region.len` (`size` is capped at the mapping's length and
        // `consume` follows a `want` that found the bytes), and the region maps `len` bytes
        // for as long as it lives; no range check on this per-record path.
        unsafe { std::slice::from_raw_parts(self.region.base.add(self.start), self.size - self.start) }
    }

    #[inline(always)]
    fn consume(&mut self, n: usize) {
        self.start += n;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::Path;

    use super::*;
    use crate::source::Packet;
    use crate::source::file::{FileError, FileSummary};
    use crate::source::legacy::{self, Buffered};

    /// A classic pcap file of 1000 records of every length from 0 to 199 bytes, several times
    /// over (timestamps in nanoseconds when `nanos`).
    fn pcap(nanos: bool) -> Vec<u8> {
        let recs: Vec<(u32, u32, Vec<u8>, u32)> = (0..1000u32)
            .map(|i| (i, i * 7, vec![(i % 251) as u8; (i % 200) as usize], i % 200 + 10))
            .collect();
        let refs: Vec<(u32, u32, &[u8], u32)> = recs.iter().map(|(s, f, d, o)| (*s, *f, &d[..], *o)).collect();
        legacy::tests::file(false, nanos, &refs)
    }

    fn temp(bytes: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.pcap");
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(bytes))
            .expect("write");
        let f = File::open(&path).expect("open");
        (dir, f)
    }

    type Got = (crate::time::Timestamp, Vec<u8>, u32);

    fn read(feed: &mut impl Feed, f: &[u8]) -> (Vec<Got>, Result<FileSummary, FileError>) {
        let mut got = Vec::new();
        let mut summary = FileSummary::default();
        let format = legacy::format([f[0], f[1], f[2], f[3]]).expect("classic magic");
        let r = legacy::read(
            Path::new("t.pcap"),
            format,
            feed,
            1 << 16,
            1 << 16,
            &mut |p: &Packet<'_>| got.push((p.ts, p.data.to_vec(), p.orig_len)),
            &mut summary,
        );
        (got, r.map(|()| summary))
    }

    #[test]
    fn chunks_of_any_size_read_what_a_buffer_reads() {
        let whole = pcap(true);
        // The whole file, and the file cut inside a record header and inside a record.
        for cut in [whole.len(), whole.len() - 3, whole.len() - 30] {
            let f = &whole[..cut];
            let (expected, expected_summary) = read(&mut Buffered::new(&f[4..], 4096, &f[..4]), f);
            let expected_summary = expected_summary.expect("buffered read");
            for window in [1, 4096, 8192, 3 * 4096, 1 << 20] {
                let (_dir, file) = temp(f);
                let counted = AtomicU64::new(0);
                let region = Region::map(&file).expect("a free slot");
                let mut feed = Mapped::new(&region, &file, window, &counted, None);
                let (got, summary) = read(&mut feed, f);
                let summary = summary.expect("mapped read");
                assert_eq!(got, expected, "window {window}, cut at {cut}");
                assert_eq!(
                    summary.truncated, expected_summary.truncated,
                    "window {window}, cut at {cut}"
                );
                assert_eq!(summary.packets, expected_summary.packets);
                assert_eq!(counted.load(Ordering::Relaxed), cut as u64, "every byte counted once");
            }
        }
    }

    #[test]
    fn prefetching_any_address_is_harmless() {
        let f = pcap(false);
        let (_dir, file) = temp(&f);
        let region = Region::map(&file).expect("a free slot");
        let whole = region.bytes(0, f.len());
        // The file, any alignment and length; past its end (the slack, unbacked); no address.
        for (at, len) in [
            (0, f.len()),
            (3, 1),
            (61, 7),
            (f.len() - 1, 200),
            (f.len() + (1 << 20), 1 << 16),
        ] {
            crate::memory::prefetch(whole.as_ptr().wrapping_add(at), len);
        }
        crate::memory::prefetch(std::ptr::null(), 4096);
        crate::memory::prefetch(usize::MAX as *const u8, 4096);
        crate::memory::prefetch(whole.as_ptr(), 0);
        // What is read afterwards is the file, unchanged.
        assert_eq!(region.bytes(0, f.len()), &f[..]);
    }

    #[test]
    fn a_file_cut_while_it_is_mapped_is_an_error_at_its_offset_not_a_crash() {
        let f = pcap(false);
        let (dir, file) = temp(&f);
        let writer = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("t.pcap"))
            .expect("open for writing");
        let counted = AtomicU64::new(0);
        // The first chunk holds the whole file; it is cut to 5000 bytes after the first packet.
        let region = Region::map(&file).expect("a free slot");
        let mut feed = Mapped::new(&region, &file, 1 << 20, &counted, None);
        let format = legacy::format([f[0], f[1], f[2], f[3]]).expect("classic magic");
        let mut packets = 0;
        let mut summary = FileSummary::default();
        let r = legacy::read(
            Path::new("t.pcap"),
            format,
            &mut feed,
            1 << 16,
            1 << 16,
            &mut |_: &Packet<'_>| {
                packets += 1;
                if packets == 1 {
                    writer.set_len(5000).expect("truncate");
                }
            },
            &mut summary,
        );
        let Err(FileError::Read { offset, reason, .. }) = r else {
            panic!("expected a read error, got {r:?}")
        };
        assert!(reason.contains("was cut to 5000 bytes"), "{reason}");
        assert!(
            (4096..=8192 + 216).contains(&offset),
            "stopped near the new end: {offset}"
        );
        assert!(packets > 1 && packets < 500, "{packets} packets");
        drop(region);
        // The slot is free again.
        let again = Region::map(&file).expect("the slot was given back");
        drop(again);
    }
}
