//! The field names the HTTP/1 parser acts on, told apart with one table lookup per field.
//!
//! Every field of every head is classified: framing and connection fields, and the names the
//! default redaction rules may change. Comparing each name with the known ones of its length
//! took several case-insensitive comparisons per field, most of them for fields that are none
//! of these (`User-Agent`, `Accept`, `Date`, `Server`). Here a name's length and its first,
//! third and last bytes pick a slot of a 256-slot table built when compiling; an empty slot
//! rules the name out at once, and a filled one leaves one or two known names to compare it
//! with.

use crate::redact::{SECRET_HEADERS, URL_HEADERS};

/// What a field name is, for the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    Host,
    Expect,
    Upgrade,
    Connection,
    ContentType,
    ContentLength,
    TransferEncoding,
    /// A name the default redaction rules may change ([`crate::redact::default_redactable_name`]).
    Redactable,
}

const FIELDS: [(&str, Known); 7] = [
    ("host", Known::Host),
    ("expect", Known::Expect),
    ("upgrade", Known::Upgrade),
    ("connection", Known::Connection),
    ("content-type", Known::ContentType),
    ("content-length", Known::ContentLength),
    ("transfer-encoding", Known::TransferEncoding),
];

/// Every known name, lower-case: the fields above, then the redactable ones.
const NAMES: usize = FIELDS.len() + SECRET_HEADERS.len() + URL_HEADERS.len();

const fn name_at(i: usize) -> (&'static str, Known) {
    if i < FIELDS.len() {
        FIELDS[i]
    } else if i < FIELDS.len() + SECRET_HEADERS.len() {
        (SECRET_HEADERS[i - FIELDS.len()], Known::Redactable)
    } else {
        (URL_HEADERS[i - FIELDS.len() - SECRET_HEADERS.len()], Known::Redactable)
    }
}

/// The slot of a name of `len` bytes (3 or more) with bytes `b0`, `b2` and `last` at 0, 2 and
/// its end, ASCII case folded (`| 0x20` leaves lower-case letters, digits and `-` as they are).
#[inline]
const fn slot(len: usize, b0: u8, b2: u8, last: u8) -> usize {
    let (a, b, c) = ((b0 | 0x20) as usize, (b2 | 0x20) as usize, (last | 0x20) as usize);
    (len.wrapping_mul(29) ^ a.wrapping_mul(7) ^ b.wrapping_mul(13) ^ c.wrapping_mul(3)) & 255
}

/// Up to two known names per slot, as one more than their index in [`name_at`] (0: none).
/// Built when compiling: a third name in one slot fails the build.
const TABLE: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < NAMES {
        let b = name_at(i).0.as_bytes();
        assert!(b.len() >= 3, "known names are 3 bytes or more");
        let s = slot(b.len(), b[0], b[2], b[b.len() - 1]);
        if t[s][0] == 0 {
            t[s][0] = i as u8 + 1;
        } else if t[s][1] == 0 {
            t[s][1] = i as u8 + 1;
        } else {
            panic!("three known field names share a slot: change slot()");
        }
        i += 1;
    }
    t
};

/// What `name` is, if it is one of the known names (in any case).
#[inline]
pub fn known(name: &[u8]) -> Option<Known> {
    let (&b0, &b2, &last) = (name.first()?, name.get(2)?, name.last()?);
    for &k in &TABLE[slot(name.len(), b0, b2, last)] {
        if k == 0 {
            return None;
        }
        let (n, kind) = name_at(usize::from(k) - 1);
        if crate::ascii::eq_lower(name, n.as_bytes()) {
            return Some(kind);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer by comparing `name` with every known name.
    fn oracle(name: &[u8]) -> Option<Known> {
        (0..NAMES)
            .map(name_at)
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
            .map(|(_, k)| k)
    }

    #[test]
    fn every_known_name_is_found_in_any_case_and_others_are_not() {
        let mut tried: Vec<Vec<u8>> = Vec::new();
        for i in 0..NAMES {
            let n = name_at(i).0.as_bytes();
            tried.push(n.to_vec());
            tried.push(n.to_ascii_uppercase());
            tried.push(n[1..].to_vec());
            tried.push(n[..n.len() - 1].to_vec());
            let mut flipped = n.to_vec();
            *flipped.last_mut().unwrap() ^= 1;
            tried.push(flipped);
            tried.push([n, b"s"].concat());
        }
        for other in [
            "user-agent",
            "accept",
            "date",
            "server",
            "cache-control",
            "content-encoding",
            "etag",
            "x-request-id",
            "ho",
            "",
            "-",
            "connection2",
            "content_length",
            "keep-alive",
        ] {
            tried.push(other.as_bytes().to_vec());
        }
        let mut found = 0;
        for t in &tried {
            assert_eq!(known(t), oracle(t), "{}", String::from_utf8_lossy(t));
            found += usize::from(known(t).is_some());
        }
        assert_eq!(found, 2 * NAMES, "each name, in lower and upper case");
    }
}
