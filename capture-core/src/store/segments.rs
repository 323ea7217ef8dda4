//! The store's memory for packed records: segments of one size, written front to back, each
//! record a [`Bytes`] view into its segment. A segment is charged whole from the moment it is
//! opened until its last record is evicted, so the budget holds for the memory really kept:
//! a record that outlives its neighbours (an old timestamp read late, say) keeps its whole
//! segment charged, not just its own bytes. Records larger than a quarter of a segment get a
//! segment of their own, of their exact size.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// One segment's use.
#[derive(Debug, Clone, Copy)]
struct Use {
    /// Records in it the store still holds.
    live: u32,
    /// What it is charged: its size while it is current or holds a record, 0 once released.
    bytes: usize,
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
        self.uses.push_back(Use { live: 0, bytes });
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
                self.cur = BytesMut::with_capacity(self.size);
                let no = self.open(self.size);
                self.cur_no = Some(no);
                no
            }
        };
        for p in parts {
            self.cur.extend_from_slice(p);
        }
        self.at(no).live += 1;
        (no, self.cur.split().freeze())
    }

    /// The store let go of a record in segment `no`.
    pub fn release(&mut self, no: u32) {
        let current = self.cur_no == Some(no);
        let u = self.at(no);
        u.live -= 1;
        if u.live == 0 && !current {
            self.bytes -= std::mem::take(&mut u.bytes);
            self.pop_released();
        }
    }

    /// Stops writing into the current segment: it is released once its records are.
    pub fn retire_current(&mut self) {
        let Some(no) = self.cur_no.take() else { return };
        self.cur = BytesMut::new();
        let u = self.at(no);
        if u.live == 0 {
            self.bytes -= std::mem::take(&mut u.bytes);
            self.pop_released();
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
}
