//! Byte buffers reused from one message body to the next, per thread.
//!
//! An HTTP/1 body is gathered from its segments into a buffer sized from `Content-Length` (or
//! a chunk's size), becomes the entry's `Bytes`, is copied into the store's segments when the
//! entry is stored, and is then dropped. Allocating and freeing one such buffer per body (up to
//! 64 KiB, most beyond what the allocator's thread cache keeps) cost about 600 instructions a
//! body, and each new buffer was cold memory to write into. Here a body is written into a
//! buffer that an earlier body left behind, still in the cache.
//!
//! Buffers go back when the last view of them is dropped, to the pool of the thread that drops
//! them (the engine's own, as a rule: it stores its entries, a batch of a few hundred at a
//! time). Each thread keeps at most [`KEPT_BYTES`] of them, in [`CLASSES`] size classes from
//! [`SMALLEST`] bytes to [`LARGEST`]; smaller and larger buffers are plain ones.

use std::cell::RefCell;

use bytes::Bytes;

/// The smallest buffer kept, and the largest.
pub const SMALLEST: usize = 512;
pub const CLASSES: usize = 8;
pub const LARGEST: usize = SMALLEST << (CLASSES - 1);
/// Bytes of buffers kept per thread, at most: about what the bodies of one batch of entries
/// hold (a batch of 256 exchanges of 5 KB bodies on average is 2.5 MB).
pub const KEPT_BYTES: usize = 4 << 20;

/// One thread's buffers, by class, and their bytes.
struct Pool {
    classes: [Vec<Vec<u8>>; CLASSES],
    bytes: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool {
            classes: [const { Vec::new() }; CLASSES],
            bytes: 0,
        })
    };
}

/// The class whose buffers all hold `n` bytes: the smallest of at least `n`.
fn class_for(n: usize) -> Option<usize> {
    (n <= LARGEST)
        .then(|| n.max(SMALLEST).next_power_of_two().trailing_zeros() as usize - SMALLEST.trailing_zeros() as usize)
}

/// The class a buffer of `capacity` bytes can serve: the largest at most `capacity`.
fn class_of(capacity: usize) -> Option<usize> {
    (SMALLEST..2 * LARGEST)
        .contains(&capacity)
        .then(|| (usize::BITS - 1 - capacity.leading_zeros() - SMALLEST.trailing_zeros()) as usize)
}

/// An empty buffer with room for `n` bytes: a kept one when there is one.
pub fn take(n: usize) -> Vec<u8> {
    let Some(c) = class_for(n) else {
        return Vec::with_capacity(n);
    };
    POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        let buf = p.classes[c].pop()?;
        p.bytes -= buf.capacity();
        Some(buf)
    })
    .ok()
    .flatten()
    .unwrap_or_else(|| Vec::with_capacity(SMALLEST << c))
}

/// Makes room in `buf` for `n` more bytes, in a kept buffer when there is one: an empty `buf`
/// (a body's first room) takes one, and a body that outgrows its buffer (a chunked one, chunk
/// by chunk) moves to one of the next class that holds it and leaves the old one behind for
/// others, where growing it in place cost the allocator about 2,500 instructions.
pub fn reserve(buf: &mut Vec<u8>, n: usize) {
    if buf.capacity() - buf.len() >= n {
        return;
    }
    let want = buf.len().saturating_add(n).max(2 * buf.capacity());
    if class_for(want).is_none() {
        return buf.reserve(n);
    }
    let mut bigger = take(want);
    if buf.capacity() > 0 {
        bigger.extend_from_slice(buf);
        give_back(std::mem::replace(buf, bigger));
    } else {
        *buf = bigger;
    }
}

/// Keeps `buf` for a later [`take`], when its class has room.
fn give_back(mut buf: Vec<u8>) {
    let Some(c) = class_of(buf.capacity()) else { return };
    buf.clear();
    // During thread exit the pool may be gone: the buffer is then freed.
    let _ = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        if p.bytes + buf.capacity() <= KEPT_BYTES {
            p.bytes += buf.capacity();
            p.classes[c].push(buf);
        }
    });
}

/// A buffer that goes back to the pool when the last view of it is dropped.
struct Kept(Vec<u8>);

impl AsRef<[u8]> for Kept {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.0));
    }
}

/// `buf` as `Bytes`, going back to the pool once dropped when its size is one the pool keeps.
pub fn freeze(buf: Vec<u8>) -> Bytes {
    if buf.is_empty() || class_of(buf.capacity()).is_none() {
        return Bytes::from(buf);
    }
    Bytes::from_owner(Kept(buf))
}

/// Buffers kept by this thread, per class.
#[cfg(test)]
fn kept() -> [usize; CLASSES] {
    POOL.with(|p| std::array::from_fn(|c| p.borrow().classes[c].len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_every_size_they_are_asked_for() {
        for n in [0, 1, 511, 512, 513, 1024, 1025, 20_000, 32_768, 32_769, LARGEST] {
            let c = class_for(n).unwrap();
            assert!(SMALLEST << c >= n, "{n}");
            assert!(
                c == 0 || SMALLEST << (c - 1) < n,
                "{n}: the smallest class that holds it"
            );
            assert_eq!(class_of(SMALLEST << c), Some(c));
        }
        assert_eq!(class_for(LARGEST + 1), None);
        // A buffer serves the largest class it holds whole.
        assert_eq!(class_of(SMALLEST - 1), None);
        assert_eq!(class_of(SMALLEST), Some(0));
        assert_eq!(class_of(3 * SMALLEST), Some(1));
        assert_eq!(class_of(2 * LARGEST - 1), Some(CLASSES - 1));
        assert_eq!(class_of(2 * LARGEST), None);
    }

    #[test]
    fn a_growing_body_moves_to_a_larger_buffer_and_leaves_its_old_one() {
        let mut b = take(700);
        b.extend_from_slice(&[1u8; 700]);
        let small = b.capacity();
        reserve(&mut b, 300);
        assert_eq!(b.capacity(), small, "room enough: nothing moves");
        b.extend_from_slice(&[2u8; 300]);
        let before = kept();
        reserve(&mut b, 5000);
        assert!(b.capacity() >= 6000);
        assert_eq!(&b[..700], &[1u8; 700][..]);
        assert_eq!(&b[700..], &[2u8; 300][..]);
        assert_eq!(
            kept()[class_of(small).unwrap()],
            before[class_of(small).unwrap()] + 1,
            "the old buffer is kept"
        );
        // Past the largest class, the buffer grows as any vector does.
        reserve(&mut b, LARGEST);
        assert!(b.capacity() >= LARGEST + 1000);
        assert_eq!(b.len(), 1000);
        let mut empty = Vec::new();
        reserve(&mut empty, 10);
        assert!(empty.capacity() >= 10);
    }

    #[test]
    fn a_dropped_body_is_reused_and_the_pool_stays_bounded() {
        let before = kept();
        let mut b = take(3000);
        assert!(b.capacity() >= 3000);
        b.extend_from_slice(&[7u8; 3000]);
        let ptr = b.as_ptr();
        let bytes = freeze(b);
        let view = bytes.slice(10..20);
        drop(bytes);
        assert_eq!(kept(), before, "a view is still held");
        assert_eq!(&view[..], &[7u8; 10]);
        drop(view);
        let c = class_for(3000).unwrap();
        assert_eq!(kept()[c], before[c] + 1);
        let again = take(2500);
        assert_eq!((again.as_ptr(), again.len()), (ptr, 0), "the same buffer, emptied");
        // No more than KEPT_BYTES in all.
        let c = class_for(LARGEST).unwrap();
        let fit = (KEPT_BYTES - POOL.with(|p| p.borrow().bytes)) / LARGEST;
        let many: Vec<Bytes> = (0..fit + 5)
            .map(|_| {
                let mut v = take(LARGEST);
                v.push(1);
                freeze(v)
            })
            .collect();
        let held = kept()[c];
        drop(many);
        assert_eq!(kept()[c], held + fit);
        assert!(POOL.with(|p| p.borrow().bytes) <= KEPT_BYTES);
        // Sizes the pool does not keep are plain buffers.
        let big = take(2 * LARGEST);
        assert!(big.capacity() >= 2 * LARGEST);
        drop(take(LARGEST));
        let last = kept();
        let mut big_body = big;
        big_body.push(1);
        drop(freeze(big_body));
        assert_eq!(kept(), last);
    }
}
