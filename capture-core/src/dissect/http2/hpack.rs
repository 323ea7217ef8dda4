//! HPACK (RFC 7541): header block decoding with one dynamic table per direction, written for a
//! passive observer.
//!
//! An endpoint's decoder may fail the connection on any error; an observer must instead keep
//! going and never guess. So the table knows what it does not know: after a mid-connection
//! pick-up, a gap, a lost header block or our own memory cap, entries may exist past the ones we
//! hold (`unknown_tail`). A reference into them decodes to [`Field::Unknown`] (the block is then
//! `hpack_incomplete`), and every entry inserted from then on is known again, because insertions
//! happen at the front and references count from the front. Entry sizes that we cannot know (an
//! inserted literal whose name came from an unknown entry) are counted low, so we evict no later
//! than the encoder did; entries it evicted and we kept are never referenced.

use std::collections::VecDeque;

use super::huffman;

/// The static table (RFC 7541 Appendix A).
pub const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// SETTINGS_HEADER_TABLE_SIZE's initial value.
pub const DEFAULT_TABLE_SIZE: usize = 4_096;
/// Per-entry overhead counted in table sizes (RFC 7541 §4.1).
const ENTRY_OVERHEAD: usize = 32;
/// Integers longer than this many continuation bytes overflow (2^28 is far above any real size).
const MAX_INT_BYTES: usize = 4;

/// One decoded header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Header {
        name: Vec<u8>,
        value: Vec<u8>,
    },
    /// The representation referenced a dynamic-table entry we never saw.
    Unknown,
}

/// Why a header block cannot be decoded further. After any of these the table is out of sync:
/// the caller should skip the rest of the block and call [`Decoder::desync`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HpackError {
    IntegerOverflow,
    Huffman(huffman::HuffmanError),
    IndexZero,
    /// A reference past the end of a table we know completely.
    IndexOutOfRange(usize),
    /// A string longer than the caller's cap (still a valid block, but not one we buffer).
    StringTooLong(usize),
}

/// What one call to [`Decoder::decode`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Bytes of the input used; the rest is an incomplete representation to present again with
    /// the following bytes.
    pub consumed: usize,
    /// A dynamic table size update exceeded the limit the decoding side announced.
    pub size_update_over_limit: bool,
}

/// A header field as (name, value) bytes.
type Pair = (Vec<u8>, Vec<u8>);
/// A header field as stored in the table.
type StoredPair = (Box<[u8]>, Box<[u8]>);

#[derive(Debug, Clone)]
struct TableEntry {
    /// `None` when the entry's content is unknown (its name came from an unknown entry).
    field: Option<StoredPair>,
    size: usize,
}

/// The decoding state of one direction.
#[derive(Debug, Clone)]
pub struct Decoder {
    /// Newest first: index 62 is `table[0]`.
    table: VecDeque<TableEntry>,
    size: usize,
    /// Maximum size the encoder set with its last size update (initially the default).
    max_size: usize,
    /// SETTINGS_HEADER_TABLE_SIZE announced by the decoding side.
    settings_max: usize,
    /// Bytes we keep at most; entries past it are dropped and become the unknown tail.
    cap: usize,
    unknown_tail: bool,
    /// Entries dropped by our own cap (stats).
    pub capped_entries: u64,
}

impl Decoder {
    /// A decoder for a direction seen from its first header block (`from_start`), or picked up
    /// mid-connection, keeping at most `cap` bytes of table.
    pub fn new(from_start: bool, cap: usize) -> Self {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max_size: DEFAULT_TABLE_SIZE,
            settings_max: DEFAULT_TABLE_SIZE,
            cap,
            unknown_tail: !from_start,
            capped_entries: 0,
        }
    }

    /// True when references past our entries decode as unknown rather than as errors.
    pub fn has_unknown_tail(&self) -> bool {
        self.unknown_tail
    }

    /// Entries held (known or not).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The table's size as counted by RFC 7541 (a lower bound when some entries are unknown).
    pub fn size(&self) -> usize {
        self.size
    }

    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// The decoding side announced SETTINGS_HEADER_TABLE_SIZE.
    pub fn set_settings_max(&mut self, n: usize) {
        self.settings_max = n;
    }

    /// The table can no longer be trusted (a gap, a lost or undecodable header block): forget
    /// it; later insertions rebuild what we know.
    pub fn desync(&mut self) {
        self.table.clear();
        self.size = 0;
        self.unknown_tail = true;
    }

    fn lookup(&self, index: usize) -> Result<Option<Pair>, HpackError> {
        match index {
            0 => Err(HpackError::IndexZero),
            1..=61 => {
                let (n, v) = STATIC_TABLE[index - 1];
                Ok(Some((n.as_bytes().to_vec(), v.as_bytes().to_vec())))
            }
            _ => match self.table.get(index - 62) {
                Some(e) => Ok(e.field.as_ref().map(|(n, v)| (n.to_vec(), v.to_vec()))),
                None if self.unknown_tail => Ok(None),
                None => Err(HpackError::IndexOutOfRange(index)),
            },
        }
    }

    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            match self.table.pop_back() {
                Some(e) => self.size -= e.size,
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    fn insert(&mut self, field: Option<Pair>, value_len: usize) {
        let size = ENTRY_OVERHEAD + field.as_ref().map_or(value_len, |(n, v)| n.len() + v.len());
        if size > self.max_size {
            // An entry larger than the table empties it (RFC 7541 §4.4).
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - size);
        self.table.push_front(TableEntry {
            field: field.map(|(n, v)| (n.into_boxed_slice(), v.into_boxed_slice())),
            size,
        });
        self.size += size;
        while self.size > self.cap {
            match self.table.pop_back() {
                Some(e) => {
                    self.size -= e.size;
                    self.capped_entries += 1;
                    self.unknown_tail = true;
                }
                None => self.size = 0,
            }
        }
    }

    /// Decodes the representations of `buf` (part of a header block), calling `emit` for each
    /// field. Stops before a representation cut by the end of `buf`. Strings longer than
    /// `max_string` are an error.
    pub fn decode(
        &mut self,
        buf: &[u8],
        max_string: usize,
        emit: &mut dyn FnMut(Field),
    ) -> Result<Progress, HpackError> {
        let mut p = Progress::default();
        while p.consumed < buf.len() {
            let rest = &buf[p.consumed..];
            let b = rest[0];
            let step = if b & 0x80 != 0 {
                let Some((index, n)) = integer(rest, 7)? else { break };
                emit(match self.lookup(index)? {
                    Some((name, value)) => Field::Header { name, value },
                    None => Field::Unknown,
                });
                n
            } else if b & 0xe0 == 0x20 {
                let Some((size, n)) = integer(rest, 5)? else { break };
                if size > self.settings_max {
                    p.size_update_over_limit = true;
                }
                self.max_size = size;
                self.evict_to(size);
                n
            } else {
                let (prefix, indexing) = if b & 0xc0 == 0x40 { (6, true) } else { (4, false) };
                let Some((index, mut n)) = integer(rest, prefix)? else {
                    break;
                };
                let name = if index == 0 {
                    let Some((name, used)) = string(&rest[n..], max_string)? else {
                        break;
                    };
                    n += used;
                    Some(name)
                } else {
                    self.lookup(index)?.map(|(name, _)| name)
                };
                let Some((value, used)) = string(&rest[n..], max_string)? else {
                    break;
                };
                n += used;
                if indexing {
                    let value_len = value.len();
                    self.insert(name.clone().map(|nm| (nm, value.clone())), value_len);
                }
                emit(match name {
                    Some(name) => Field::Header { name, value },
                    None => Field::Unknown,
                });
                n
            };
            p.consumed += step;
        }
        Ok(p)
    }
}

/// Decodes an integer with an `n`-bit prefix; `None` when `b` ends inside it.
fn integer(b: &[u8], n: u32) -> Result<Option<(usize, usize)>, HpackError> {
    let mask = (1usize << n) - 1;
    let Some(&first) = b.first() else { return Ok(None) };
    let mut v = usize::from(first) & mask;
    if v < mask {
        return Ok(Some((v, 1)));
    }
    let mut shift = 0;
    for (i, &byte) in b[1..].iter().enumerate() {
        if i >= MAX_INT_BYTES {
            return Err(HpackError::IntegerOverflow);
        }
        v += usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok(Some((v, i + 2)));
        }
    }
    if b.len() > MAX_INT_BYTES + 1 {
        return Err(HpackError::IntegerOverflow);
    }
    Ok(None)
}

/// Decodes a string literal; `None` when `b` ends inside it.
fn string(b: &[u8], max: usize) -> Result<Option<(Vec<u8>, usize)>, HpackError> {
    let Some(&first) = b.first() else { return Ok(None) };
    let Some((len, n)) = integer(b, 7)? else {
        return Ok(None);
    };
    if len > max {
        return Err(HpackError::StringTooLong(len));
    }
    let Some(raw) = b.get(n..n + len) else { return Ok(None) };
    let s = if first & 0x80 != 0 {
        let mut out = Vec::with_capacity(len + len / 2);
        huffman::decode(raw, &mut out).map_err(HpackError::Huffman)?;
        out
    } else {
        raw.to_vec()
    };
    Ok(Some((s, n + len)))
}

/// Writes an integer with an `n`-bit prefix, the prefix's other bits set to `flags`.
pub fn write_integer(out: &mut Vec<u8>, v: usize, n: u32, flags: u8) {
    let mask = (1usize << n) - 1;
    if v < mask {
        out.push(flags | v as u8);
        return;
    }
    out.push(flags | mask as u8);
    let mut rest = v - mask;
    while rest >= 0x80 {
        out.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

fn write_string(out: &mut Vec<u8>, s: &[u8], huffman_coded: bool) {
    if huffman_coded {
        write_integer(out, huffman::encoded_len(s), 7, 0x80);
        huffman::encode(s, out);
    } else {
        write_integer(out, s.len(), 7, 0);
        out.extend_from_slice(s);
    }
}

/// A small HPACK encoder for synthetic traffic (tests, the demo): indexed fields where the
/// static or dynamic table holds them, else literals added to the dynamic table.
#[derive(Debug, Clone)]
pub struct Encoder {
    table: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    max_size: usize,
    pub huffman: bool,
    pub indexing: bool,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder {
            table: VecDeque::new(),
            size: 0,
            max_size: DEFAULT_TABLE_SIZE,
            huffman: true,
            indexing: true,
        }
    }
}

impl Encoder {
    /// Emits a dynamic table size update and applies it.
    pub fn size_update(&mut self, out: &mut Vec<u8>, size: usize) {
        write_integer(out, size, 5, 0x20);
        self.max_size = size;
        self.evict_to(size);
    }

    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            if let Some((n, v)) = self.table.pop_back() {
                self.size -= ENTRY_OVERHEAD + n.len() + v.len();
            }
        }
    }

    fn find(&self, name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
        let mut name_only = None;
        let statics = STATIC_TABLE.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
        let dynamics = self.table.iter().map(|(n, v)| (n.as_slice(), v.as_slice()));
        for (i, (n, v)) in statics.chain(dynamics).enumerate() {
            if n == name {
                if v == value {
                    return (Some(i + 1), None);
                }
                name_only.get_or_insert(i + 1);
            }
        }
        (None, name_only)
    }

    /// Encodes a header list into `out`.
    pub fn encode(&mut self, headers: &[(&str, &str)], out: &mut Vec<u8>) {
        for (name, value) in headers {
            let (name, value) = (name.as_bytes(), value.as_bytes());
            let (full, name_index) = self.find(name, value);
            if let Some(i) = full {
                write_integer(out, i, 7, 0x80);
                continue;
            }
            let (prefix, flags) = if self.indexing { (6, 0x40) } else { (4, 0x00) };
            match name_index {
                Some(i) => write_integer(out, i, prefix, flags),
                None => {
                    out.push(flags);
                    write_string(out, name, self.huffman);
                }
            }
            write_string(out, value, self.huffman);
            if self.indexing {
                let size = ENTRY_OVERHEAD + name.len() + value.len();
                if size > self.max_size {
                    self.table.clear();
                    self.size = 0;
                } else {
                    self.evict_to(self.max_size - size);
                    self.table.push_front((name.to_vec(), value.to_vec()));
                    self.size += size;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn fields(d: &mut Decoder, block: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let p = d
            .decode(block, 1 << 16, &mut |f| match f {
                Field::Header { name, value } => {
                    out.push((String::from_utf8(name).unwrap(), String::from_utf8(value).unwrap()))
                }
                Field::Unknown => out.push(("?".into(), "?".into())),
            })
            .unwrap();
        assert_eq!(p.consumed, block.len());
        out
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    /// Feeds `block` cut at every position: the first part, then the rest (with what was not
    /// consumed). The result must not depend on where TCP or CONTINUATION cut the block.
    fn every_prefix(start: &Decoder, block: &[u8]) -> Vec<(String, String)> {
        let whole = fields(&mut start.clone(), block);
        for cut in 0..=block.len() {
            let mut d = start.clone();
            let mut got = Vec::new();
            let mut sink = |f: Field| {
                if let Field::Header { name, value } = f {
                    got.push((String::from_utf8(name).unwrap(), String::from_utf8(value).unwrap()));
                }
            };
            let p = d.decode(&block[..cut], 1 << 16, &mut sink).unwrap();
            let mut rest = block[p.consumed..cut].to_vec();
            rest.extend_from_slice(&block[cut..]);
            let p2 = d.decode(&rest, 1 << 16, &mut sink).unwrap();
            assert_eq!(p2.consumed, rest.len(), "cut at {cut}");
            assert_eq!(got, whole, "cut at {cut}");
        }
        whole
    }

    #[test]
    fn rfc7541_c2_single_representations() {
        let mut d = Decoder::new(true, 1 << 16);
        let b = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
        assert_eq!(every_prefix(&d, &b), pairs(&[("custom-key", "custom-header")]));
        fields(&mut d, &b);
        assert_eq!((d.len(), d.size()), (1, 55));
        // C.2.2 without indexing, C.2.3 never indexed: the table is unchanged.
        let mut d = Decoder::new(true, 1 << 16);
        let b = hex("040c 2f73 616d 706c 652f 7061 7468");
        assert_eq!(fields(&mut d, &b), pairs(&[(":path", "/sample/path")]));
        let b = hex("1008 7061 7373 776f 7264 0673 6563 7265 74");
        assert_eq!(fields(&mut d, &b), pairs(&[("password", "secret")]));
        assert_eq!(d.len(), 0);
        assert_eq!(fields(&mut d, &[0x82]), pairs(&[(":method", "GET")]));
    }

    #[test]
    fn rfc7541_c3_requests_without_huffman() {
        let mut d = Decoder::new(true, 1 << 16);
        let r1 = hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d");
        let want1 = pairs(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
        ]);
        assert_eq!(every_prefix(&d, &r1), want1);
        assert_eq!(fields(&mut d, &r1), want1);
        assert_eq!(d.size(), 57);
        let r2 = hex("8286 84be 5808 6e6f 2d63 6163 6865");
        let mut want2 = want1.clone();
        want2.push(("cache-control".into(), "no-cache".into()));
        assert_eq!(every_prefix(&d, &r2), want2);
        assert_eq!(fields(&mut d, &r2), want2);
        assert_eq!(d.size(), 110);
        let r3 = hex("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65");
        let want3 = pairs(&[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value"),
        ]);
        assert_eq!(every_prefix(&d, &r3), want3);
        assert_eq!(fields(&mut d, &r3), want3);
        assert_eq!((d.len(), d.size()), (3, 164));
    }

    #[test]
    fn rfc7541_c4_requests_with_huffman() {
        let mut d = Decoder::new(true, 1 << 16);
        let r1 = hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff");
        assert_eq!(fields(&mut d, &r1)[3], (":authority".into(), "www.example.com".into()));
        let r2 = hex("8286 84be 5886 a8eb 1064 9cbf");
        assert_eq!(fields(&mut d, &r2)[4], ("cache-control".into(), "no-cache".into()));
        let r3 = hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf");
        assert_eq!(every_prefix(&d, &r3)[4], ("custom-key".into(), "custom-value".into()));
        fields(&mut d, &r3);
        assert_eq!((d.len(), d.size()), (3, 164));
    }

    #[test]
    fn rfc7541_c6_responses_evict_with_a_256_byte_table() {
        let mut d = Decoder::new(true, 1 << 16);
        // The encoder's table is 256 bytes (as if SETTINGS_HEADER_TABLE_SIZE were 256).
        d.max_size = 256;
        let r1 = hex(
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        );
        let want1 = pairs(&[
            (":status", "302"),
            ("cache-control", "private"),
            ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
            ("location", "https://www.example.com"),
        ]);
        assert_eq!(fields(&mut d, &r1), want1);
        assert_eq!((d.len(), d.size()), (4, 222));
        // C.6.2: ":status 307" evicts ":status 302".
        let r2 = hex("4883 640e ff c1 c0 bf");
        let got = fields(&mut d, &r2);
        assert_eq!(got[0], (":status".into(), "307".into()));
        assert_eq!(got[1..], want1[1..]);
        assert_eq!((d.len(), d.size()), (4, 222));
    }

    #[test]
    fn size_updates_evict_and_are_checked_against_settings() {
        let mut e = Encoder::default();
        let mut block = Vec::new();
        e.encode(&[("x-a", "1"), ("x-b", "2"), ("x-c", "3")], &mut block);
        let mut d = Decoder::new(true, 1 << 16);
        fields(&mut d, &block);
        assert_eq!(d.len(), 3);
        // Shrink to one entry's size (32 + 4), then use the survivor by index.
        let mut b2 = Vec::new();
        e.size_update(&mut b2, 36);
        e.encode(&[("x-c", "3")], &mut b2);
        assert_eq!(b2.last(), Some(&0xbe));
        assert_eq!(fields(&mut d, &b2), pairs(&[("x-c", "3")]));
        assert_eq!((d.len(), d.size(), d.max_size()), (1, 36, 36));
        // A reference past a fully known table is an error; size 0 empties it.
        assert_eq!(
            d.decode(&[0xbf], 100, &mut |_| {}),
            Err(HpackError::IndexOutOfRange(63))
        );
        let p = d.decode(&[0x20], 100, &mut |_| {}).unwrap();
        assert!(!p.size_update_over_limit);
        assert!(d.is_empty());
        // Beyond the decoding side's SETTINGS_HEADER_TABLE_SIZE: accepted, reported.
        d.set_settings_max(100);
        let mut b3 = Vec::new();
        write_integer(&mut b3, 5000, 5, 0x20);
        assert!(d.decode(&b3, 100, &mut |_| {}).unwrap().size_update_over_limit);
        assert_eq!(d.max_size(), 5000);
    }

    #[test]
    fn picked_up_mid_connection_unknown_entries_are_marked_not_guessed() {
        let mut d = Decoder::new(false, 1 << 16);
        // 0xbe: dynamic index 62, which we never saw.
        assert_eq!(fields(&mut d, &[0x82, 0xbe]), pairs(&[(":method", "GET"), ("?", "?")]));
        // A literal with an unknown indexed name (0x7f 0x00 = index 63) inserts an unknown entry.
        let mut b = vec![0x7f, 0x00];
        write_string(&mut b, b"v", false);
        assert_eq!(fields(&mut d, &b), pairs(&[("?", "?")]));
        // A new literal is known from now on, at index 62, pushing the unknown entry to 63.
        let mut b = vec![0x40];
        write_string(&mut b, b"x-new", true);
        write_string(&mut b, b"yes", true);
        b.extend_from_slice(&[0xbe, 0xbf, 0xc0]);
        assert_eq!(
            fields(&mut d, &b),
            pairs(&[("x-new", "yes"), ("x-new", "yes"), ("?", "?"), ("?", "?")])
        );
        assert!(d.has_unknown_tail());
    }

    #[test]
    fn memory_cap_drops_old_entries_into_the_unknown_tail() {
        let mut d = Decoder::new(true, 100);
        let mut e = Encoder::default();
        let mut b = Vec::new();
        e.encode(
            &[("x-one", "aaaaaaaaaa"), ("x-two", "bbbbbbbbbb"), ("x-three", "c")],
            &mut b,
        );
        fields(&mut d, &b);
        assert_eq!(d.len(), 2);
        assert_eq!(d.capped_entries, 1);
        let mut b = Vec::new();
        e.encode(&[("x-one", "aaaaaaaaaa"), ("x-three", "c")], &mut b);
        assert_eq!(fields(&mut d, &b), pairs(&[("?", "?"), ("x-three", "c")]));
    }

    #[test]
    fn integers_and_errors() {
        // RFC 7541 C.1: 10 with a 5-bit prefix, 1337 with a 5-bit prefix, 42 with 8 bits.
        assert_eq!(integer(&[0x0a], 5).unwrap(), Some((10, 1)));
        assert_eq!(integer(&[0x1f, 0x9a, 0x0a], 5).unwrap(), Some((1337, 3)));
        assert_eq!(integer(&[0x2a], 8).unwrap(), Some((42, 1)));
        assert_eq!(integer(&[0x1f, 0x9a], 5).unwrap(), None);
        assert_eq!(
            integer(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0xff], 5),
            Err(HpackError::IntegerOverflow)
        );
        let mut out = Vec::new();
        write_integer(&mut out, 1337, 5, 0);
        assert_eq!(out, vec![0x1f, 0x9a, 0x0a]);
        let mut d = Decoder::new(true, 1 << 16);
        assert_eq!(d.decode(&[0x80], 100, &mut |_| {}), Err(HpackError::IndexZero));
        assert_eq!(
            d.decode(&[0x00, 0x03, b'a'], 2, &mut |_| {}),
            Err(HpackError::StringTooLong(3))
        );
        assert!(matches!(
            d.decode(&[0x00, 0x81, 0x00, 0x00], 100, &mut |_| {}),
            Err(HpackError::Huffman(_))
        ));
    }

    #[test]
    fn encoder_output_decodes_back_in_both_modes() {
        let hs = [
            (":method", "POST"),
            (":path", "/shop.Orders/Create"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ];
        for (huffman, indexing) in [(true, true), (false, true), (true, false), (false, false)] {
            let mut e = Encoder {
                huffman,
                indexing,
                ..Encoder::default()
            };
            let mut d = Decoder::new(true, 1 << 16);
            for _ in 0..3 {
                let mut b = Vec::new();
                e.encode(&hs, &mut b);
                assert_eq!(every_prefix(&d, &b), pairs(&hs));
                fields(&mut d, &b);
            }
        }
    }
}
