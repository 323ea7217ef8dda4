//! Per-direction TCP reassembly, bounded.
//!
//! In-order bytes are handed to the consumer straight from the packet (no copy). Segments that
//! arrive ahead of a hole are buffered, up to `window_bytes` and `max_segments`; past that, or
//! when the peer acknowledges bytes that were never captured, the hole is declared a gap and the
//! consumer is told its length, so it can re-synchronise. Overlaps: the first copy wins; an
//! overlap whose bytes differ from what is buffered is counted as a conflict.
//!
//! Positions are kept as 64-bit stream offsets, so sequence wrap-around is invisible above this
//! module.

use std::collections::BTreeMap;

use super::seq::SeqNumber;

/// What the reassembler hands on, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    Data(&'a [u8]),
    /// This many bytes are missing from the capture.
    Gap(u64),
    /// The sender closed its side (FIN) and every byte before it was delivered or gapped.
    End,
}

/// Counters of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    pub bytes_delivered: u64,
    /// Bytes received again that had already been delivered or buffered.
    pub bytes_duplicate: u64,
    /// Overlapping segments whose bytes disagreed with the first copy.
    pub conflicting_overlaps: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Gaps forced because the out-of-order buffer was full.
    pub window_overflows: u64,
    /// Buffered bytes beyond the sender's FIN, dropped when the stream ended.
    pub bytes_after_fin: u64,
}

#[derive(Debug)]
pub struct Reassembler {
    started: bool,
    /// Sequence number of the next byte to deliver, and its stream offset.
    next_seq: SeqNumber,
    next_off: u64,
    /// Out-of-order segments by stream offset; non-overlapping (trimmed on insert).
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
    fin_off: Option<u64>,
    ended: bool,
    pub stats: ReassemblyStats,
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new()
    }
}

impl Reassembler {
    pub fn new() -> Self {
        Reassembler {
            started: false,
            next_seq: SeqNumber(0),
            next_off: 0,
            pending: BTreeMap::new(),
            pending_bytes: 0,
            fin_off: None,
            ended: false,
            stats: ReassemblyStats::default(),
        }
    }

    /// Bytes buffered out of order right now.
    pub fn buffered_bytes(&self) -> usize {
        self.pending_bytes
    }

    pub fn is_started(&self) -> bool {
        self.started
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The sequence number of the next byte expected.
    pub fn next_seq(&self) -> Option<SeqNumber> {
        self.started.then_some(self.next_seq)
    }

    /// Stream offset of a sequence number, relative to the next expected byte.
    fn offset_of(&self, seq: SeqNumber) -> i64 {
        self.next_off as i64 + seq.diff(self.next_seq)
    }

    /// Feeds one segment. `syn` marks a SYN (whose sequence number precedes the data by one).
    #[allow(clippy::too_many_arguments)]
    pub fn segment(
        &mut self,
        seq: u32,
        syn: bool,
        fin: bool,
        payload: &[u8],
        window_bytes: usize,
        max_segments: usize,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        if self.ended {
            return;
        }
        let seq = SeqNumber(seq);
        let data_seq = if syn { seq.wrapping_add(1) } else { seq };
        if !self.started {
            if payload.is_empty() && !syn && !fin {
                return;
            }
            self.started = true;
            self.next_seq = data_seq;
            self.next_off = 0;
        } else if syn {
            // A retransmitted SYN carries no new data position; ignore it.
            if payload.is_empty() {
                return;
            }
        }
        let start = self.offset_of(data_seq);
        let end = start + payload.len() as i64;
        if fin {
            let f = end.max(0) as u64;
            if self.fin_off.is_none() && f >= self.next_off {
                self.fin_off = Some(f);
            }
        }
        if !payload.is_empty() {
            if end <= self.next_off as i64 {
                self.stats.bytes_duplicate += payload.len() as u64;
            } else {
                // Trim what was already delivered.
                let skip = (self.next_off as i64 - start).max(0) as usize;
                if skip > 0 {
                    self.stats.bytes_duplicate += skip as u64;
                }
                let start = (start.max(self.next_off as i64)) as u64;
                let data = &payload[skip..];
                if start == self.next_off {
                    self.deliver_in_order(data, out);
                } else {
                    self.buffer(start, data, window_bytes, max_segments, out);
                }
            }
        }
        self.check_end(out);
    }

    fn deliver_in_order(&mut self, data: &[u8], out: &mut dyn FnMut(Chunk<'_>)) {
        // Bytes also held in the buffer (a retransmission that fills a hole and overlaps what
        // followed it): the first copy wins, so deliver only up to the first buffered segment
        // and let the drain deliver the rest.
        let limit = match self.pending.first_key_value() {
            Some((&off, _)) => (off - self.next_off).min(data.len() as u64) as usize,
            None => data.len(),
        };
        let (now, dup) = data.split_at(limit);
        if !dup.is_empty() {
            self.compare_overlap(self.next_off + limit as u64, dup);
        }
        self.advance(now, out);
        self.drain(out);
    }

    fn advance(&mut self, data: &[u8], out: &mut dyn FnMut(Chunk<'_>)) {
        if data.is_empty() {
            return;
        }
        self.next_off += data.len() as u64;
        self.next_seq = self.next_seq.wrapping_add(data.len() as u32);
        self.stats.bytes_delivered += data.len() as u64;
        out(Chunk::Data(data));
    }

    /// Delivers buffered segments that have become contiguous.
    fn drain(&mut self, out: &mut dyn FnMut(Chunk<'_>)) {
        while let Some(entry) = self.pending.first_entry() {
            let off = *entry.key();
            if off > self.next_off {
                break;
            }
            let seg = entry.remove();
            self.pending_bytes -= seg.len();
            let skip = (self.next_off - off) as usize;
            if skip >= seg.len() {
                self.stats.bytes_duplicate += seg.len() as u64;
                continue;
            }
            self.stats.bytes_duplicate += skip as u64;
            self.advance(&seg[skip..], out);
        }
    }

    /// Compares bytes that overlap buffered data; counts a conflict when they differ.
    fn compare_overlap(&mut self, at: u64, data: &[u8]) {
        let end = at + data.len() as u64;
        let mut conflict = false;
        let mut overlapped = 0u64;
        for (&off, seg) in self.pending.range(..end) {
            let seg_end = off + seg.len() as u64;
            if seg_end <= at {
                continue;
            }
            let lo = at.max(off);
            let hi = end.min(seg_end);
            overlapped += hi - lo;
            if data[(lo - at) as usize..(hi - at) as usize] != seg[(lo - off) as usize..(hi - off) as usize] {
                conflict = true;
            }
        }
        self.stats.bytes_duplicate += overlapped;
        if conflict {
            self.stats.conflicting_overlaps += 1;
        }
    }

    fn buffer(
        &mut self,
        start: u64,
        data: &[u8],
        window_bytes: usize,
        max_segments: usize,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        self.compare_overlap(start, data);
        // Insert only the parts not already buffered (first copy wins).
        let end = start + data.len() as u64;
        let mut pieces: Vec<(u64, u64)> = Vec::new();
        let mut cursor = start;
        for (&off, seg) in self.pending.range(..end) {
            let seg_end = off + seg.len() as u64;
            if seg_end <= cursor {
                continue;
            }
            if off > cursor {
                pieces.push((cursor, off.min(end)));
            }
            cursor = cursor.max(seg_end);
            if cursor >= end {
                break;
            }
        }
        if cursor < end {
            pieces.push((cursor, end));
        }
        for (lo, hi) in pieces {
            let piece = &data[(lo - start) as usize..(hi - start) as usize];
            // Make room: declare the first hole a gap until the piece fits.
            while !self.pending.is_empty()
                && (self.pending_bytes + piece.len() > window_bytes || self.pending.len() >= max_segments)
            {
                self.stats.window_overflows += 1;
                self.skip_to_first_pending(out);
                if lo < self.next_off {
                    break;
                }
            }
            if lo < self.next_off {
                // The forced gap moved past this piece's start: deliver what is still new.
                let skip = (self.next_off.saturating_sub(lo) as usize).min(piece.len());
                self.deliver_in_order(&piece[skip..], out);
                continue;
            }
            if piece.len() > window_bytes {
                // Larger than the whole window: everything before it is a gap.
                self.stats.window_overflows += 1;
                self.gap_to(lo, out);
                self.deliver_in_order(piece, out);
                continue;
            }
            self.pending_bytes += piece.len();
            self.pending.insert(lo, piece.to_vec());
        }
    }

    fn gap_to(&mut self, off: u64, out: &mut dyn FnMut(Chunk<'_>)) {
        if off <= self.next_off {
            return;
        }
        let len = off - self.next_off;
        self.stats.gaps += 1;
        self.stats.gap_bytes += len;
        self.next_off = off;
        self.next_seq = self.next_seq.wrapping_add(len as u32);
        out(Chunk::Gap(len));
    }

    fn skip_to_first_pending(&mut self, out: &mut dyn FnMut(Chunk<'_>)) {
        if let Some((&off, _)) = self.pending.first_key_value() {
            self.gap_to(off, out);
            self.drain(out);
        }
    }

    /// The peer acknowledged up to `ack`: bytes before it that we never saw will not come (the
    /// capture missed them), so declare them a gap instead of waiting.
    pub fn acked(&mut self, ack: u32, out: &mut dyn FnMut(Chunk<'_>)) {
        if !self.started || self.ended {
            return;
        }
        let ack_off = self.offset_of(SeqNumber(ack));
        if ack_off <= self.next_off as i64 {
            return;
        }
        // A FIN consumes one sequence number that is not data.
        let mut ack_off = ack_off as u64;
        if let Some(f) = self.fin_off {
            ack_off = ack_off.min(f);
        }
        while self.next_off < ack_off {
            let target = match self.pending.first_key_value() {
                Some((&off, _)) => off.min(ack_off),
                None => ack_off,
            };
            self.gap_to(target, out);
            let before = self.next_off;
            self.drain(out);
            if self.next_off == before
                && self.pending.first_key_value().is_none_or(|(&o, _)| o > self.next_off)
                && self.next_off >= ack_off
            {
                break;
            }
        }
        self.check_end(out);
    }

    /// The flow is over (closed, evicted, or the capture ended): deliver everything still
    /// buffered, with gaps for the holes, then `End`.
    pub fn flush(&mut self, out: &mut dyn FnMut(Chunk<'_>)) {
        if self.ended {
            return;
        }
        while !self.pending.is_empty() {
            self.skip_to_first_pending(out);
        }
        if self.started {
            self.end(out);
        }
    }

    fn check_end(&mut self, out: &mut dyn FnMut(Chunk<'_>)) {
        if let Some(f) = self.fin_off
            && self.next_off >= f
            && !self.ended
        {
            self.end(out);
        }
    }

    /// The direction is over: nothing buffered beyond this point can belong to it.
    fn end(&mut self, out: &mut dyn FnMut(Chunk<'_>)) {
        self.ended = true;
        self.stats.bytes_after_fin += self.pending_bytes as u64;
        self.pending.clear();
        self.pending_bytes = 0;
        out(Chunk::End);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Default)]
    struct Collected {
        bytes: Vec<u8>,
        gaps: Vec<u64>,
        ended: bool,
    }

    fn feed(r: &mut Reassembler, c: &mut Collected, seq: u32, data: &[u8], window: usize) {
        r.segment(seq, false, false, data, window, 64, &mut |ch| match ch {
            Chunk::Data(d) => c.bytes.extend_from_slice(d),
            Chunk::Gap(n) => {
                c.gaps.push(n);
                c.bytes.extend(std::iter::repeat_n(0xEE, n as usize));
            }
            Chunk::End => c.ended = true,
        });
    }

    #[test]
    fn in_order_and_out_of_order() {
        let mut r = Reassembler::new();
        let mut c = Collected::default();
        feed(&mut r, &mut c, 1000, b"hello ", 1 << 20);
        feed(&mut r, &mut c, 1011, b"!", 1 << 20);
        feed(&mut r, &mut c, 1006, b"world", 1 << 20);
        assert_eq!(c.bytes, b"hello world!");
        assert_eq!(r.buffered_bytes(), 0);
    }

    #[test]
    fn wraps_around() {
        let mut r = Reassembler::new();
        let mut c = Collected::default();
        let start = u32::MAX - 2;
        feed(&mut r, &mut c, start, b"abc", 1 << 20);
        feed(&mut r, &mut c, start.wrapping_add(6), b"ghi", 1 << 20);
        feed(&mut r, &mut c, start.wrapping_add(3), b"def", 1 << 20);
        assert_eq!(c.bytes, b"abcdefghi");
    }

    #[test]
    fn conflicting_overlap_counts_and_first_wins() {
        let mut r = Reassembler::new();
        let mut c = Collected::default();
        feed(&mut r, &mut c, 0, b"ab", 1 << 20);
        feed(&mut r, &mut c, 4, b"EFGH", 1 << 20);
        feed(&mut r, &mut c, 4, b"efgh", 1 << 20);
        feed(&mut r, &mut c, 2, b"cd", 1 << 20);
        assert_eq!(c.bytes, b"abcdEFGH");
        assert_eq!(r.stats.conflicting_overlaps, 1);
    }

    #[test]
    fn window_overflow_declares_gap() {
        let mut r = Reassembler::new();
        let mut c = Collected::default();
        feed(&mut r, &mut c, 0, b"a", 8);
        feed(&mut r, &mut c, 10, b"12345", 8);
        feed(&mut r, &mut c, 20, b"6789", 8); // does not fit: gap to 10, deliver 12345
        assert_eq!(c.gaps, vec![9]);
        assert_eq!(&c.bytes[10..], b"12345");
        assert_eq!(r.buffered_bytes(), 4);
        assert_eq!(r.stats.window_overflows, 1);
    }

    #[test]
    fn ack_beyond_declares_gap_and_fin_ends() {
        let mut r = Reassembler::new();
        let mut c = Collected::default();
        feed(&mut r, &mut c, 0, b"abc", 1 << 20);
        let mut push = |ch: Chunk<'_>| match ch {
            Chunk::Data(d) => c.bytes.extend_from_slice(d),
            Chunk::Gap(n) => c.gaps.push(n),
            Chunk::End => c.ended = true,
        };
        r.segment(6, false, true, b"xyz", 1 << 20, 64, &mut push);
        r.acked(10, &mut push);
        assert_eq!(c.gaps, vec![3]);
        assert_eq!(&c.bytes, b"abcxyz");
        assert!(c.ended);
    }

    #[test]
    fn billion_byte_gap_is_bounded() {
        let mut r = Reassembler::new();
        let mut c = Collected { ..Default::default() };
        let mut gaps = Vec::new();
        r.segment(0, false, false, b"a", 1 << 20, 64, &mut |_| {});
        r.segment(1_000_000_000, false, false, b"b", 1 << 20, 64, &mut |_| {});
        assert_eq!(r.buffered_bytes(), 1);
        r.flush(&mut |ch| {
            if let Chunk::Gap(n) = ch {
                gaps.push(n)
            }
            if ch == Chunk::End {
                c.ended = true
            }
        });
        assert_eq!(gaps, vec![999_999_999]);
        assert!(c.ended);
    }

    #[test]
    fn fin_behind_buffered_data_frees_the_buffer() {
        // Found by the tcp_segments fuzz target: a SYN, data far ahead (buffered), then a FIN
        // whose sequence number lies behind it. The buffered bytes cannot belong to the stream.
        let mut r = Reassembler::new();
        let mut ended = false;
        r.segment(2_061_904_416, true, false, b"", 4096, 16, &mut |_| {});
        r.segment(2_166_815_516, false, false, b"ab", 4096, 16, &mut |_| {});
        assert_eq!(r.buffered_bytes(), 2);
        r.segment(u32::MAX, true, true, b"1234567", 4096, 16, &mut |c| {
            ended |= c == Chunk::End
        });
        assert!(ended);
        assert_eq!(r.buffered_bytes(), 0);
        assert_eq!(r.stats.bytes_after_fin, 2);
        r.flush(&mut |_| {});
        assert_eq!(r.buffered_bytes(), 0);
    }

    proptest! {
        /// Against an obviously correct model: a byte map of the stream. Any segmentation,
        /// reordering and duplication of a stream delivers exactly the stream, provided the
        /// window is large enough; with a small window, delivered bytes equal the stream except
        /// inside reported gaps.
        #[test]
        fn matches_bytemap_model(
            len in 1usize..3000,
            cuts in proptest::collection::vec(1usize..400, 1..40),
            order in proptest::collection::vec(any::<u32>(), 40),
            dups in proptest::collection::vec(any::<u8>(), 40),
            isn in any::<u32>(),
            window in prop_oneof![Just(1usize << 20), 16usize..2000],
        ) {
            let stream: Vec<u8> = (0..len).map(|i| (i * 7 + i / 13) as u8).collect();
            // Cut the stream into segments.
            let mut segs = Vec::new();
            let mut at = 0;
            let mut k = 0;
            while at < len {
                let n = cuts[k % cuts.len()].min(len - at);
                segs.push((at, n));
                at += n;
                k += 1;
            }
            // Duplicate some, then shuffle deterministically.
            let mut sent: Vec<(usize, usize)> = Vec::new();
            for (i, s) in segs.iter().enumerate() {
                sent.push(*s);
                if dups[i % dups.len()] % 5 == 0 {
                    sent.push(*s);
                }
            }
            let mut keyed: Vec<(u32, (usize, usize))> =
                sent.into_iter().enumerate().map(|(i, s)| (order[i % order.len()].wrapping_add((i as u32).wrapping_mul(2_654_435_761)), s)).collect();
            // Keep the first segment first so the reassembler starts at offset 0.
            let first = keyed.iter().position(|(_, s)| s.0 == 0).unwrap();
            let head = keyed.remove(first);
            keyed.sort_by_key(|(k, _)| *k);
            keyed.insert(0, head);

            let max_segments = if window >= 1 << 20 { 100_000 } else { 64 };
            let mut r = Reassembler::new();
            let mut got: Vec<Option<u8>> = Vec::new();
            let mut gap_total = 0u64;
            for (_, (off, n)) in &keyed {
                r.segment(isn.wrapping_add(*off as u32), false, false, &stream[*off..off + n], window, max_segments, &mut |ch| match ch {
                    Chunk::Data(d) => got.extend(d.iter().map(|b| Some(*b))),
                    Chunk::Gap(g) => { gap_total += g; got.extend(std::iter::repeat_n(None, g as usize)); }
                    Chunk::End => {}
                });
            }
            r.flush(&mut |ch| match ch {
                Chunk::Data(d) => got.extend(d.iter().map(|b| Some(*b))),
                Chunk::Gap(g) => { gap_total += g; got.extend(std::iter::repeat_n(None, g as usize)); }
                Chunk::End => {}
            });
            prop_assert_eq!(got.len(), len);
            for (i, b) in got.iter().enumerate() {
                if let Some(b) = b {
                    prop_assert_eq!(*b, stream[i], "byte {} differs", i);
                }
            }
            if window >= 1 << 20 {
                prop_assert_eq!(gap_total, 0);
            }
            prop_assert!(r.buffered_bytes() == 0);
        }
    }
}
