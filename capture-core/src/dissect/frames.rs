//! Length-prefixed framing shared by the binary stream protocols (Kafka, AMQP).
//!
//! A [`Framer`] cuts one direction's byte stream into frames whose total size its header tells.
//! Only the first `cap` bytes of a frame are kept (the rest is skipped as it streams by), so a
//! 100 MB Produce request costs `cap` bytes of memory.

/// One frame: its first bytes (all of them unless `total > bytes.len()`) and its size on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub bytes: Vec<u8>,
    pub total: usize,
}

impl Frame {
    pub fn truncated(&self) -> bool {
        self.bytes.len() < self.total
    }
}

/// Cuts frames out of one direction.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// Total size of the frame being read, once its header is in.
    total: usize,
    /// Bytes of the current frame still to skip (beyond the kept prefix).
    skip: u64,
}

impl Framer {
    /// Feeds `data`. `size` reads a header of `header_len` bytes and answers the frame's total
    /// size (header included), or `None` when the bytes are not a frame header. Returns the
    /// frames completed, and `false` as second value when the framing was lost (the rest of
    /// `data` is dropped; the next call starts looking for a header again).
    pub fn push(
        &mut self,
        mut data: &[u8],
        header_len: usize,
        size: impl Fn(&[u8]) -> Option<usize>,
        cap: usize,
    ) -> (Vec<Frame>, bool) {
        let mut frames = Vec::new();
        let cap = cap.max(header_len);
        loop {
            if self.skip > 0 {
                let n = (self.skip.min(data.len() as u64)) as usize;
                self.skip -= n as u64;
                data = &data[n..];
                if self.skip > 0 {
                    break;
                }
            }
            if data.is_empty() {
                break;
            }
            if self.total == 0 {
                let take = (header_len - self.buf.len()).min(data.len());
                self.buf.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.buf.len() < header_len {
                    break;
                }
                match size(&self.buf) {
                    Some(t) if t >= header_len => self.total = t,
                    _ => {
                        self.reset();
                        return (frames, false);
                    }
                }
            }
            let keep = self.total.min(cap);
            let take = (keep - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == keep {
                frames.push(Frame {
                    bytes: std::mem::take(&mut self.buf),
                    total: self.total,
                });
                self.skip = (self.total - keep) as u64;
                self.total = 0;
            }
        }
        (frames, true)
    }

    /// `n` bytes are missing. Returns `true` when the framing survives (the gap fell inside the
    /// skipped tail of a frame), else the framer starts over.
    pub fn gap(&mut self, n: u64) -> bool {
        if self.buf.is_empty() && self.total == 0 && self.skip >= n && self.skip > 0 {
            self.skip -= n;
            return true;
        }
        self.reset();
        false
    }

    pub fn reset(&mut self) {
        self.buf.clear();
        self.total = 0;
        self.skip = 0;
    }

    /// True when no frame is partly read.
    pub fn idle(&self) -> bool {
        self.buf.is_empty() && self.total == 0 && self.skip == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(h: &[u8]) -> Option<usize> {
        (h[0] != 0xff).then_some(2 + h[1] as usize)
    }

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let wire = [0u8, 3, b'a', b'b', b'c', 0, 0, 0, 1, b'z'];
        for cut in 0..=wire.len() {
            let mut f = Framer::default();
            let (mut a, ok1) = f.push(&wire[..cut], 2, size, 100);
            let (b, ok2) = f.push(&wire[cut..], 2, size, 100);
            a.extend(b);
            assert!(ok1 && ok2);
            let got: Vec<Vec<u8>> = a.into_iter().map(|f| f.bytes).collect();
            assert_eq!(
                got,
                vec![vec![0, 3, b'a', b'b', b'c'], vec![0, 0], vec![0, 1, b'z']],
                "cut {cut}"
            );
            assert!(f.idle());
        }
    }

    #[test]
    fn long_frames_keep_a_prefix_and_gaps_in_the_tail_keep_sync() {
        let mut f = Framer::default();
        let (a, _) = f.push(&[0, 10, 1, 2, 3], 2, size, 4);
        assert_eq!(
            a,
            vec![Frame {
                bytes: vec![0, 10, 1, 2],
                total: 12
            }]
        );
        assert!(a[0].truncated());
        assert!(f.gap(5));
        let (b, ok) = f.push(&[9, 9, 0, 0], 2, size, 4);
        assert!(ok);
        assert_eq!(
            b,
            vec![Frame {
                bytes: vec![0, 0],
                total: 2
            }]
        );
        let (c, ok) = f.push(&[0xff, 0, 0, 0], 2, size, 4);
        assert!(!ok && c.is_empty());
        assert!(!f.gap(1));
    }
}
