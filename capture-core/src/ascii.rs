//! ASCII case-insensitive comparison of short names (header fields) eight bytes at a time.
//!
//! The standard `eq_ignore_ascii_case` lower-cases and compares byte by byte; the HTTP/1 parser
//! compares every field name it reads against a few known ones, and that was a tenth of
//! parsing a head.

const HIGH: u64 = 0x8080_8080_8080_8080;

/// `w` with its ASCII capitals lower-cased; every byte of `w` is below 0x80.
#[inline]
fn lower_word(w: u64) -> u64 {
    // A byte plus (0x80 - 0x41) reaches 0x80 from `A` up, plus (0x80 - 0x5b) from `[` up; no
    // byte below 0x80 carries into the next.
    let from_a = w.wrapping_add(0x3f3f_3f3f_3f3f_3f3f);
    let past_z = w.wrapping_add(0x2525_2525_2525_2525);
    let capitals = from_a & !past_z & HIGH;
    w | (capitals >> 2)
}

#[inline]
fn word(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Whether `s` equals `lower` ignoring ASCII case; `lower` is ASCII and holds no capital.
#[inline]
pub fn eq_lower(s: &[u8], lower: &[u8]) -> bool {
    debug_assert!(lower.iter().all(|b| b.is_ascii() && !b.is_ascii_uppercase()));
    let n = s.len();
    if n != lower.len() {
        return false;
    }
    let same = |a: u64, b: u64| a & HIGH == 0 && lower_word(a) == b;
    if n < 8 {
        let (mut a, mut b) = ([0u8; 8], [0u8; 8]);
        a[..n].copy_from_slice(s);
        b[..n].copy_from_slice(lower);
        return same(u64::from_le_bytes(a), u64::from_le_bytes(b));
    }
    let mut i = 0;
    while i + 8 <= n {
        if !same(word(s, i), word(lower, i)) {
            return false;
        }
        i += 8;
    }
    // The last bytes, in a word that overlaps the one before.
    i == n || same(word(s, n - 8), word(lower, n - 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(eq_lower(b"Content-Length", b"content-length"));
        assert!(eq_lower(b"HOST", b"host"));
        assert!(eq_lower(b"", b""));
        assert!(!eq_lower(b"Content-Lengtx", b"content-length"));
        assert!(!eq_lower(b"host", b"hosts"));
        // Bytes one case bit away that are not letters stay different.
        assert!(!eq_lower(b"x\rb", b"x-b"));
        assert!(!eq_lower(b"a@", b"a`"));
        assert!(!eq_lower(b"a[", b"a{"));
        assert!(!eq_lower(&[0xc3, 0xa9], b"ci"));
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_the_standard_comparison(
            s in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            flips in proptest::collection::vec(proptest::prelude::any::<bool>(), 0..40),
        ) {
            // A lower-case ASCII name, and `s` either unrelated or that name with some letters
            // capitalised.
            let lower: Vec<u8> = s.iter().map(|b| (b & 0x7f).to_ascii_lowercase()).collect();
            let cased: Vec<u8> = lower
                .iter()
                .zip(flips.iter().chain(std::iter::repeat(&false)))
                .map(|(b, f)| if *f { b.to_ascii_uppercase() } else { *b })
                .collect();
            proptest::prop_assert_eq!(eq_lower(&cased, &lower), cased.eq_ignore_ascii_case(&lower));
            proptest::prop_assert!(eq_lower(&cased, &lower));
            proptest::prop_assert_eq!(eq_lower(&s, &lower), s.eq_ignore_ascii_case(&lower));
        }
    }
}
