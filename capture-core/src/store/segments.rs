//! The store's memory for packed records: segments of one size, written front to back, each
//! record a [`Bytes`] view into its segment. A segment is charged whole from the moment it is
//! opened until its last record is evicted, so the budget holds for the memory really kept:
//! a record that outlives its neighbours (an old timestamp read late, say) keeps its whole
//! segment charged, not just its own bytes. Records larger than a quarter of a segment get a
//! segment of their own, of their exact size.
//!
//! A segment whose records have all gone is kept for the next one to open (up to
//! [`RECYCLED_MAX`], and only when no reader still holds one of its records). A full store
//! evicts as fast as it inserts; freeing each emptied segment and allocating the next one made
//! the kernel fault memory in again and again (1 GB import into 256 MiB: 1.03 CPU-s, 0.31 of
//! them system time, against 0.875 with segments reused; medians of 8 paired runs).

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// How far past a record's end the store asks for the segment's memory before the next
/// record is written there (about a record of the benchmark capture). A segment reused after
/// eviction was last written a budget ago and is no longer in any cache; writing a record
/// there waited for each of its cache lines in turn, the processor's prefetch starting afresh
/// with every record (one in about 5 µs of other work) and stopping at every page.
const WRITE_AHEAD: usize = 4096;

/// Whole segments kept for reuse, at most. They are not charged: a segment is a 256th of the
/// budget (from 1 MiB of budget on), so two are under 1 % of it.
pub const RECYCLED_MAX: usize = 2;

/// One segment's use.
#[derive(Debug)]
struct Use {
    /// Records in it the store still holds.
    live: u32,
    /// What it is charged: its size while it is current or holds a record, 0 once released.
    bytes: usize,
    /// After it stopped being written: its unwritten end, which shares its memory, to take the
    /// whole segment back through once its records are gone.
    tail: Option<BytesMut>,
}

#[derive(Debug)]
pub struct Segments {
    size: usize,
    /// The segment being written, and its number.
    cur: BytesMut,
    cur_no: Option<u32>,
    /// Uses of the segments from number `first` on.
    uses: VecDeque<Use>,
    first: u32,
    /// Bytes of the segments charged now.
    pub bytes: usize,
    /// Segments opened so far.
    pub opened: u64,
    /// Emptied segments kept for reuse (not charged), at most [`RECYCLED_MAX`].
    recycled: Vec<BytesMut>,
    /// Segments opened from `recycled` rather than allocated.
    pub reused: u64,
    /// Where in the current segment the memory ahead was asked for up to (an address; 0 in a
    /// segment just opened).
    fetched_to: usize,
}

impl Segments {
    /// Segments of `size` bytes.
    pub fn new(size: usize) -> Self {
        Segments {
            size,
            cur: BytesMut::new(),
            cur_no: None,
            uses: VecDeque::new(),
            first: 0,
            bytes: 0,
            opened: 0,
            recycled: Vec::new(),
            reused: 0,
            fetched_to: 0,
        }
    }

    /// The size of segments for a store of `budget` bytes: a 256th of it, between 4 KiB and
    /// 1 MiB. A segment ends where the next record does not fit: the larger it is, the less
    /// that wastes per record (about 10 bytes for 1 MiB and 5 KB records).
    pub fn size_for(budget: usize) -> usize {
        (budget / 256).clamp(4 << 10, 1 << 20).next_power_of_two()
    }

    fn open(&mut self, bytes: usize) -> u32 {
        let no = self.first.wrapping_add(self.uses.len() as u32);
        self.uses.push_back(Use {
            live: 0,
            bytes,
            tail: None,
        });
        self.bytes += bytes;
        self.opened += 1;
        no
    }

    fn at(&mut self, no: u32) -> &mut Use {
        let i = no.wrapping_sub(self.first) as usize;
        &mut self.uses[i]
    }

    /// Writes one record made of `parts`, `len` bytes in all; returns its segment's number and
    /// the record.
    pub fn write(&mut self, parts: &[&[u8]], len: usize) -> (u32, Bytes) {
        if len > self.size / 4 {
            let no = self.open(crate::memory::alloc_size(len));
            let mut b = BytesMut::with_capacity(len);
            for p in parts {
                b.extend_from_slice(p);
            }
            self.at(no).live += 1;
            return (no, b.freeze());
        }
        let no = match self.cur_no {
            Some(no) if self.cur.capacity() - self.cur.len() >= len => no,
            _ => {
                self.retire_current();
                self.cur = match self.recycled.pop() {
                    Some(b) => {
                        self.reused += 1;
                        b
                    }
                    None => BytesMut::with_capacity(self.size),
                };
                let no = self.open(self.size);
                self.cur_no = Some(no);
                self.fetched_to = 0;
                no
            }
        };
        for p in parts {
            self.cur.extend_from_slice(p);
        }
        self.at(no).live += 1;
        let record = self.cur.split().freeze();
        self.fetch_ahead();
        (no, record)
    }

    /// Asks for the current segment's memory up to [`WRITE_AHEAD`] past where the next record
    /// goes, the part not asked for already.
    fn fetch_ahead(&mut self) {
        let next = self.cur.as_ptr() as usize;
        let end = next + WRITE_AHEAD.min(self.cur.capacity());
        let from = self.fetched_to.max(next);
        if end > from {
            crate::memory::prefetch(self.cur.as_ptr().wrapping_add(from - next), end - from);
            self.fetched_to = end;
        }
    }

    /// The store let go of a record in segment `no` (and of its view of the record: a view
    /// still held keeps the segment from being reused).
    pub fn release(&mut self, no: u32) {
        let current = self.cur_no == Some(no);
        let u = self.at(no);
        u.live -= 1;
        if u.live == 0 && !current {
            let (bytes, tail) = (std::mem::take(&mut u.bytes), u.tail.take());
            self.bytes -= bytes;
            self.recycle(tail);
            self.pop_released();
        }
    }

    /// Stops writing into the current segment: it is released once its records are.
    pub fn retire_current(&mut self) {
        let Some(no) = self.cur_no.take() else { return };
        let tail = std::mem::take(&mut self.cur);
        let u = self.at(no);
        if u.live == 0 {
            let bytes = std::mem::take(&mut u.bytes);
            self.bytes -= bytes;
            self.recycle(Some(tail));
            self.pop_released();
        } else {
            u.tail = Some(tail);
        }
    }

    /// Keeps an emptied segment (through its tail) for the next one to open, when there is
    /// room and no record of it is still read somewhere.
    fn recycle(&mut self, tail: Option<BytesMut>) {
        if let Some(mut t) = tail
            && self.recycled.len() < RECYCLED_MAX
        {
            t.clear();
            if t.try_reclaim(self.size) {
                self.recycled.push(t);
            }
        }
    }

    fn pop_released(&mut self) {
        while self.uses.front().is_some_and(|u| u.bytes == 0) {
            self.uses.pop_front();
            self.first = self.first.wrapping_add(1);
        }
    }

    /// Segments charged now.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.uses.iter().filter(|u| u.bytes > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_ahead_of_the_next_record_is_asked_for_once_within_its_segment() {
        let mut s = Segments::new(16 << 10);
        let mut opened = s.opened;
        let mut before = 0;
        for i in 0..40 {
            let len = 300 + 97 * i;
            let (_, rec) = s.write(&[&vec![1u8; len][..]], len);
            let next = s.cur.as_ptr() as usize;
            let end = next + s.cur.capacity();
            // Asked for from the next record on, WRITE_AHEAD or to the segment's end, no further.
            assert_eq!(s.fetched_to, (next + WRITE_AHEAD).min(end), "record {i}");
            assert_eq!(rec.as_ptr() as usize + len, next);
            if s.opened == opened {
                // In the same segment it only moves forward.
                assert!(s.fetched_to >= before, "record {i}");
            }
            opened = s.opened;
            before = s.fetched_to;
        }
        assert!(s.opened > 2, "the records filled several segments");
    }

    #[test]
    fn segments_are_charged_until_their_last_record_goes() {
        let mut s = Segments::new(4096);
        let (a, ra) = s.write(&[b"aaaa", b"bb"], 6);
        let k = [7u8; 1000];
        let (b, rb) = s.write(&[&k[..], &k[..1]], 1001);
        assert_eq!((a, b), (0, 0), "one segment while records fit");
        assert_eq!((&ra[..], rb.len()), (&b"aaaabb"[..], 1001));
        assert_eq!(s.bytes, 4096);
        let (b2, _) = s.write(&[&k[..]], 1000);
        let (b3, _) = s.write(&[&k[..]], 1000);
        let (b4, _) = s.write(&[&k[..]], 1000);
        assert_eq!((b2, b3, b4), (0, 0, 0));
        // Too big for what is left of the current one (89 bytes): a new segment.
        let (c, _) = s.write(&[&k[..100]], 100);
        assert_eq!(c, 1);
        assert_eq!(s.bytes, 8192);
        // Larger than a quarter: a segment of its own, of its size.
        let (d, rd) = s.write(&[&[2u8; 5000]], 5000);
        assert_eq!((d, rd.len()), (2, 5000));
        assert_eq!(s.bytes, 8192 + crate::memory::alloc_size(5000));
        // Segment 0 is charged until all its records go.
        for no in [a, b, b2, b3] {
            s.release(no);
        }
        assert_eq!(s.bytes, 8192 + crate::memory::alloc_size(5000));
        s.release(b4);
        assert_eq!(s.bytes, 4096 + crate::memory::alloc_size(5000));
        s.release(d);
        assert_eq!(s.bytes, 4096);
        // The current segment stays charged while it is written, even empty.
        s.release(c);
        assert_eq!(s.bytes, 4096);
        assert_eq!(s.held(), 1);
        s.retire_current();
        assert_eq!((s.bytes, s.held()), (0, 0));
        assert_eq!(s.opened, 3);
    }

    #[test]
    fn a_record_released_out_of_order_frees_nothing_before_its_neighbours() {
        let mut s = Segments::new(4096);
        let first: Vec<u32> = (0..4).map(|_| s.write(&[&[0u8; 1000]], 1000).0).collect();
        let (late, _) = s.write(&[&[0u8; 1000]], 1000);
        assert_eq!(late, 1);
        s.release(late);
        assert_eq!(s.bytes, 8192, "segment 1 is current");
        for no in first {
            s.release(no);
        }
        assert_eq!(s.bytes, 4096);
        assert_eq!(s.held(), 1);
    }

    #[test]
    fn emptied_segments_are_reused_unless_a_record_is_still_read() {
        let mut s = Segments::new(4096);
        let rec = [5u8; 1000];
        // Four records fill most of a segment: the fifth opens the next one.
        let fill = |s: &mut Segments| -> Vec<(u32, Bytes)> { (0..4).map(|_| s.write(&[&rec[..]], 1000)).collect() };
        let seg0 = fill(&mut s);
        let seg1 = fill(&mut s);
        assert_eq!((seg0[3].0, seg1[0].0, s.opened), (0, 1, 2));
        // Segment 0 is emptied while one of its records is still read elsewhere: its memory is
        // not reused.
        let mut kept = None;
        for (i, (no, v)) in seg0.into_iter().enumerate() {
            if i == 0 {
                kept = Some(v);
            }
            s.release(no);
        }
        let seg2 = fill(&mut s);
        assert_eq!((seg2[0].0, s.opened, s.reused), (2, 3, 0));
        drop(kept);
        // Segment 1 is emptied and no record of it is read: segment 3 is made of its memory.
        for (no, v) in seg1 {
            drop(v);
            s.release(no);
        }
        assert_eq!(s.bytes, 4096, "only segment 2 is charged");
        let seg3 = fill(&mut s);
        assert_eq!((seg3[0].0, s.opened, s.reused), (3, 4, 1));
        assert!(
            seg3.iter().all(|(_, v)| v[..] == rec[..]),
            "the reused segment holds the new records"
        );
        assert_eq!(s.bytes, 8192);
        // No more than RECYCLED_MAX are kept.
        let mut t = Segments::new(4096);
        let all: Vec<(u32, Bytes)> = (0..20).map(|_| t.write(&[&[1u8; 1000][..]], 1000)).collect();
        t.retire_current();
        for (no, v) in all {
            drop(v);
            t.release(no);
        }
        assert_eq!((t.bytes, t.recycled.len()), (0, RECYCLED_MAX));
    }
}
