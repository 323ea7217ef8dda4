//! AMQP 0-9-1 field tables and the `basic` content header (body size and the 14 properties).
//!
//! Field values are read with the type letters RabbitMQ and its clients (pika, the Java and .NET
//! clients) use, which differ from the 0-9-1 grammar: `s` is a signed 16-bit integer (not a short
//! string), `l` a signed 64-bit integer, `x` a byte array, and `U`/`L` from the grammar are read
//! too. Every table is decoded under [`TableCaps`]: nesting depth, values per table tree and bytes
//! kept per string, so a hostile header costs a bounded amount of memory and recursion.

use std::fmt::Write as _;

use crate::limits::Limits;

/// A decoded field value.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Bool(bool),
    /// Signed integers of every width (`b`, `s`, `U`, `I`, `l`, `L`).
    Int(i64),
    /// Unsigned integers (`B`, `u`, `i`).
    UInt(u64),
    /// `f` and `d`.
    Float(f64),
    /// `D`: `value` × 10^-`scale`.
    Decimal {
        scale: u8,
        value: i32,
    },
    /// A long string (`S`) that is UTF-8, its first bytes kept; `len` is its size on the wire.
    Str {
        text: Box<str>,
        len: u32,
    },
    /// A byte array (`x`), or a long string that is not UTF-8; `len` is its size on the wire.
    Bytes {
        data: Box<[u8]>,
        len: u32,
    },
    /// `T`: seconds since the Unix epoch.
    Timestamp(u64),
    /// `V`.
    Void,
    /// `A`.
    Array(Vec<FieldValue>),
    /// `F`.
    Table(FieldTable),
    /// A value left out: deeper than the depth cap.
    Omitted,
}

/// A field table: (name, value) pairs in wire order.
pub type FieldTable = Vec<(Box<str>, FieldValue)>;

/// The caps a field table is decoded under (from [`Limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableCaps {
    pub max_depth: usize,
    pub max_items: usize,
    pub max_value_bytes: usize,
}

impl TableCaps {
    pub fn from_limits(l: &Limits) -> Self {
        TableCaps {
            max_depth: l.amqp_table_max_depth.max(1),
            max_items: l.amqp_table_max_items,
            max_value_bytes: l.amqp_table_value_max_bytes,
        }
    }
}

impl Default for TableCaps {
    fn default() -> Self {
        Self::from_limits(&Limits::default())
    }
}

/// A big-endian reader over a byte slice; every read checks the length first.
#[derive(Debug, Clone, Copy)]
pub struct Rd<'a> {
    pub b: &'a [u8],
}

impl<'a> Rd<'a> {
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Some(h)
    }
    pub fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }
    /// A short string (one length octet), lossily decoded.
    pub fn shortstr(&mut self) -> Option<String> {
        let n = self.u8()? as usize;
        Some(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
    /// A long string's bytes (four length octets).
    pub fn longstr(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// The bytes of a table or array whose length prefix comes next: all of them, or the rest of
    /// the input when it was cut short (`true` as second value then).
    fn sized(&mut self) -> Option<(&'a [u8], bool)> {
        let n = self.u32()? as usize;
        if n <= self.b.len() {
            Some((self.take(n)?, false))
        } else {
            Some((std::mem::take(&mut self.b), true))
        }
    }
}

/// Decodes field tables under caps; `cut` tells whether anything was left out.
#[derive(Debug)]
pub struct TableDecoder {
    caps: TableCaps,
    items: usize,
    pub cut: bool,
}

impl TableDecoder {
    pub fn new(caps: TableCaps) -> Self {
        TableDecoder {
            caps,
            items: 0,
            cut: false,
        }
    }

    /// Reads a table (length prefix first) at the reader. `None` when not even the length is
    /// there; a table cut short or malformed keeps the values read before the problem.
    pub fn table(&mut self, r: &mut Rd<'_>) -> Option<FieldTable> {
        let (b, short) = r.sized()?;
        self.cut |= short;
        Some(self.table_body(b, 1))
    }

    fn table_body(&mut self, b: &[u8], depth: usize) -> FieldTable {
        let mut r = Rd { b };
        let mut out = Vec::new();
        while !r.b.is_empty() {
            if self.items >= self.caps.max_items {
                self.cut = true;
                break;
            }
            let Some(key) = r.shortstr() else {
                self.cut = true;
                break;
            };
            // Counted before its nested values, so that the tree stays within the cap.
            self.items += 1;
            let Some(v) = self.value(&mut r, depth) else {
                self.cut = true;
                break;
            };
            out.push((key.into_boxed_str(), v));
        }
        out
    }

    fn array_body(&mut self, b: &[u8], depth: usize) -> Vec<FieldValue> {
        let mut r = Rd { b };
        let mut out = Vec::new();
        while !r.b.is_empty() {
            if self.items >= self.caps.max_items {
                self.cut = true;
                break;
            }
            self.items += 1;
            let Some(v) = self.value(&mut r, depth) else {
                self.cut = true;
                break;
            };
            out.push(v);
        }
        out
    }

    fn bytes(&mut self, b: &[u8], len: u32) -> FieldValue {
        let keep = b.len().min(self.caps.max_value_bytes);
        self.cut |= keep < b.len();
        let kept = &b[..keep];
        // A cut may fall inside a UTF-8 sequence: keep the valid prefix.
        let text = match std::str::from_utf8(kept) {
            Ok(s) => Some(s),
            Err(e) if keep < b.len() && e.error_len().is_none() => std::str::from_utf8(&kept[..e.valid_up_to()]).ok(),
            Err(_) => None,
        };
        match text {
            Some(s) => FieldValue::Str { text: s.into(), len },
            None => FieldValue::Bytes { data: kept.into(), len },
        }
    }

    /// One typed value (type letter first); `None` when the letter is unknown or the value is cut
    /// short (its size is then unknown and the enclosing table stops).
    fn value(&mut self, r: &mut Rd<'_>, depth: usize) -> Option<FieldValue> {
        let t = r.u8()?;
        Some(match t {
            b't' => FieldValue::Bool(r.u8()? != 0),
            b'b' => FieldValue::Int(i64::from(r.u8()? as i8)),
            b'B' => FieldValue::UInt(u64::from(r.u8()?)),
            b's' | b'U' => FieldValue::Int(i64::from(r.u16()? as i16)),
            b'u' => FieldValue::UInt(u64::from(r.u16()?)),
            b'I' => FieldValue::Int(i64::from(r.u32()? as i32)),
            b'i' => FieldValue::UInt(u64::from(r.u32()?)),
            b'l' | b'L' => FieldValue::Int(r.u64()? as i64),
            b'f' => FieldValue::Float(f64::from(f32::from_bits(r.u32()?))),
            b'd' => FieldValue::Float(f64::from_bits(r.u64()?)),
            b'D' => FieldValue::Decimal {
                scale: r.u8()?,
                value: r.u32()? as i32,
            },
            b'S' => {
                let b = r.longstr()?;
                self.bytes(b, b.len() as u32)
            }
            b'x' => {
                let b = r.longstr()?;
                let len = b.len() as u32;
                let keep = b.len().min(self.caps.max_value_bytes);
                self.cut |= keep < b.len();
                FieldValue::Bytes {
                    data: b[..keep].into(),
                    len,
                }
            }
            b'T' => FieldValue::Timestamp(r.u64()?),
            b'V' => FieldValue::Void,
            b'A' | b'F' => {
                let (b, short) = r.sized()?;
                self.cut |= short;
                if depth >= self.caps.max_depth {
                    self.cut = true;
                    FieldValue::Omitted
                } else if t == b'A' {
                    FieldValue::Array(self.array_body(b, depth + 1))
                } else {
                    FieldValue::Table(self.table_body(b, depth + 1))
                }
            }
            _ => return None,
        })
    }
}

impl FieldValue {
    /// The value as text: strings as they are, numbers in decimal, byte arrays in hex, arrays
    /// and tables in a JSON-like notation. Cut values end in `…`.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        self.write_text(&mut s, false);
        s
    }

    fn write_text(&self, out: &mut String, quoted: bool) {
        match self {
            FieldValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            FieldValue::Int(v) => {
                let _ = write!(out, "{v}");
            }
            FieldValue::UInt(v) | FieldValue::Timestamp(v) => {
                let _ = write!(out, "{v}");
            }
            FieldValue::Float(v) => {
                let _ = write!(out, "{v}");
            }
            FieldValue::Decimal { scale, value } => out.push_str(&decimal_text(*scale, *value)),
            FieldValue::Str { text, len } => {
                let cut = (text.len() as u64) < u64::from(*len);
                if quoted {
                    let _ = write!(out, "{:?}", &**text);
                    if cut {
                        out.insert(out.len() - 1, '…');
                    }
                } else {
                    out.push_str(text);
                    if cut {
                        out.push('…');
                    }
                }
            }
            FieldValue::Bytes { data, len } => {
                out.push_str("0x");
                for b in data.iter() {
                    let _ = write!(out, "{b:02x}");
                }
                if (data.len() as u64) < u64::from(*len) {
                    out.push('…');
                }
            }
            FieldValue::Void => out.push_str("null"),
            FieldValue::Omitted => out.push('…'),
            FieldValue::Array(vs) => {
                out.push('[');
                for (i, v) in vs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.write_text(out, true);
                }
                out.push(']');
            }
            FieldValue::Table(t) => {
                out.push('{');
                for (i, (k, v)) in t.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{:?}: ", &**k);
                    v.write_text(out, true);
                }
                out.push('}');
            }
        }
    }

    /// Heap bytes held by the value.
    pub fn heap_bytes(&self) -> usize {
        match self {
            FieldValue::Str { text, .. } => text.len(),
            FieldValue::Bytes { data, .. } => data.len(),
            FieldValue::Array(vs) => vs.iter().map(|v| size_of::<FieldValue>() + v.heap_bytes()).sum(),
            FieldValue::Table(t) => table_heap_bytes(t),
            _ => 0,
        }
    }
}

/// Heap bytes held by a table.
pub fn table_heap_bytes(t: &FieldTable) -> usize {
    t.iter()
        .map(|(k, v)| size_of::<(Box<str>, FieldValue)>() + k.len() + v.heap_bytes())
        .sum()
}

/// `value` × 10^-`scale` in decimal notation (`1234`, scale 2 → `12.34`).
pub fn decimal_text(scale: u8, value: i32) -> String {
    let digits = value.unsigned_abs().to_string();
    let sign = if value < 0 { "-" } else { "" };
    let scale = usize::from(scale);
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

/// The 14 properties of class `basic`, as far as the content header carries them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Properties {
    pub content_type: Option<Box<str>>,
    pub content_encoding: Option<Box<str>>,
    pub headers: Option<FieldTable>,
    /// 1 non-persistent, 2 persistent.
    pub delivery_mode: Option<u8>,
    pub priority: Option<u8>,
    pub correlation_id: Option<Box<str>>,
    pub reply_to: Option<Box<str>>,
    pub expiration: Option<Box<str>>,
    pub message_id: Option<Box<str>>,
    /// Seconds since the Unix epoch.
    pub timestamp: Option<u64>,
    /// The `type` property.
    pub message_type: Option<Box<str>>,
    pub user_id: Option<Box<str>>,
    pub app_id: Option<Box<str>>,
    pub cluster_id: Option<Box<str>>,
}

impl Properties {
    /// The short-string properties that are present, as (AMQP name, value), in wire order.
    pub fn strings(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("content-type", &self.content_type),
            ("content-encoding", &self.content_encoding),
            ("correlation-id", &self.correlation_id),
            ("reply-to", &self.reply_to),
            ("expiration", &self.expiration),
            ("message-id", &self.message_id),
            ("type", &self.message_type),
            ("user-id", &self.user_id),
            ("app-id", &self.app_id),
            ("cluster-id", &self.cluster_id),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
    }

    pub fn heap_bytes(&self) -> usize {
        self.strings().map(|(_, v)| v.len()).sum::<usize>() + self.headers.as_ref().map_or(0, table_heap_bytes)
    }

    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }
}

/// A content header frame's payload.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentHeader {
    pub class: u16,
    pub body_size: u64,
    pub properties: Properties,
    /// A property or header value was left out (cap hit, malformed or cut short).
    pub cut: bool,
}

/// Parses a content header payload: class, weight, body size, property flags and the
/// properties of class `basic` that the flags announce. `None` when shorter than the body size;
/// properties cut short are left out (`cut`).
pub fn parse_content_header(payload: &[u8], caps: TableCaps) -> Option<ContentHeader> {
    let mut r = Rd { b: payload };
    let class = r.u16()?;
    r.skip(2)?;
    let body_size = r.u64()?;
    let mut h = ContentHeader {
        class,
        body_size,
        properties: Properties::default(),
        cut: false,
    };
    if class != 60 {
        return Some(h);
    }
    let Some(flags) = r.u16() else {
        h.cut = true;
        return Some(h);
    };
    // Bit 0 continues the flags in another word; class basic needs none, skip them.
    let mut more = flags & 1 != 0;
    while more {
        match r.u16() {
            Some(w) => more = w & 1 != 0,
            None => {
                h.cut = true;
                return Some(h);
            }
        }
    }
    let mut dec = TableDecoder::new(caps);
    if properties(&mut r, flags, &mut h.properties, &mut dec).is_none() {
        h.cut = true;
    }
    h.cut |= dec.cut;
    Some(h)
}

fn properties(r: &mut Rd<'_>, flags: u16, p: &mut Properties, dec: &mut TableDecoder) -> Option<()> {
    let has = |bit: u16| flags & (1 << bit) != 0;
    let short = |r: &mut Rd<'_>| r.shortstr().map(String::into_boxed_str);
    if has(15) {
        p.content_type = Some(short(r)?);
    }
    if has(14) {
        p.content_encoding = Some(short(r)?);
    }
    if has(13) {
        p.headers = Some(dec.table(r)?);
    }
    if has(12) {
        p.delivery_mode = Some(r.u8()?);
    }
    if has(11) {
        p.priority = Some(r.u8()?);
    }
    if has(10) {
        p.correlation_id = Some(short(r)?);
    }
    if has(9) {
        p.reply_to = Some(short(r)?);
    }
    if has(8) {
        p.expiration = Some(short(r)?);
    }
    if has(7) {
        p.message_id = Some(short(r)?);
    }
    if has(6) {
        p.timestamp = Some(r.u64()?);
    }
    if has(5) {
        p.message_type = Some(short(r)?);
    }
    if has(4) {
        p.user_id = Some(short(r)?);
    }
    if has(3) {
        p.app_id = Some(short(r)?);
    }
    if has(2) {
        p.cluster_id = Some(short(r)?);
    }
    Some(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn long(b: &[u8]) -> Vec<u8> {
        let mut v = (b.len() as u32).to_be_bytes().to_vec();
        v.extend(b);
        v
    }

    fn entry(key: &str, value: &[u8]) -> Vec<u8> {
        let mut v = vec![key.len() as u8];
        v.extend(key.as_bytes());
        v.extend(value);
        v
    }

    fn typed(t: u8, rest: &[u8]) -> Vec<u8> {
        let mut v = vec![t];
        v.extend(rest);
        v
    }

    fn decode(body: &[u8], caps: TableCaps) -> (FieldTable, bool) {
        let wire = long(body);
        let mut d = TableDecoder::new(caps);
        let t = d.table(&mut Rd { b: &wire }).unwrap();
        (t, d.cut)
    }

    fn s(text: &str) -> FieldValue {
        FieldValue::Str {
            text: text.into(),
            len: text.len() as u32,
        }
    }

    #[test]
    fn every_field_type_in_rabbitmq_letters() {
        let mut nested = entry("n", &typed(b'I', &7i32.to_be_bytes()));
        nested.extend(entry("m", &typed(b'V', &[])));
        let mut array = typed(b'S', &long(b"a"));
        array.extend(typed(b't', &[0]));
        let cases: Vec<(&str, Vec<u8>, FieldValue)> = vec![
            ("t", typed(b't', &[1]), FieldValue::Bool(true)),
            ("b", typed(b'b', &[0xff]), FieldValue::Int(-1)),
            ("B", typed(b'B', &[0xff]), FieldValue::UInt(255)),
            ("s", typed(b's', &(-2i16).to_be_bytes()), FieldValue::Int(-2)),
            ("U", typed(b'U', &(-3i16).to_be_bytes()), FieldValue::Int(-3)),
            ("u", typed(b'u', &65535u16.to_be_bytes()), FieldValue::UInt(65535)),
            ("I", typed(b'I', &(-4i32).to_be_bytes()), FieldValue::Int(-4)),
            (
                "i",
                typed(b'i', &u32::MAX.to_be_bytes()),
                FieldValue::UInt(u64::from(u32::MAX)),
            ),
            ("l", typed(b'l', &(-5i64).to_be_bytes()), FieldValue::Int(-5)),
            ("L", typed(b'L', &(-6i64).to_be_bytes()), FieldValue::Int(-6)),
            (
                "f",
                typed(b'f', &1.5f32.to_bits().to_be_bytes()),
                FieldValue::Float(1.5),
            ),
            (
                "d",
                typed(b'd', &(-0.25f64).to_bits().to_be_bytes()),
                FieldValue::Float(-0.25),
            ),
            (
                "D",
                typed(b'D', &[2, 0, 0, 0x04, 0xd2]),
                FieldValue::Decimal { scale: 2, value: 1234 },
            ),
            ("S", typed(b'S', &long("héllo".as_bytes())), s("héllo")),
            (
                "S-binary",
                typed(b'S', &long(&[0xff, 0x00])),
                FieldValue::Bytes {
                    data: vec![0xff, 0].into(),
                    len: 2,
                },
            ),
            (
                "x",
                typed(b'x', &long(b"ab")),
                FieldValue::Bytes {
                    data: b"ab".to_vec().into(),
                    len: 2,
                },
            ),
            (
                "T",
                typed(b'T', &1_700_000_000u64.to_be_bytes()),
                FieldValue::Timestamp(1_700_000_000),
            ),
            ("V", typed(b'V', &[]), FieldValue::Void),
            (
                "A",
                typed(b'A', &long(&array)),
                FieldValue::Array(vec![s("a"), FieldValue::Bool(false)]),
            ),
            (
                "F",
                typed(b'F', &long(&nested)),
                FieldValue::Table(vec![("n".into(), FieldValue::Int(7)), ("m".into(), FieldValue::Void)]),
            ),
        ];
        let mut body = Vec::new();
        for (k, wire, _) in &cases {
            body.extend(entry(k, wire));
        }
        let (t, cut) = decode(&body, TableCaps::default());
        assert!(!cut);
        let want: FieldTable = cases.into_iter().map(|(k, _, v)| (k.into(), v)).collect();
        assert_eq!(t, want);
        let text: Vec<String> = t.iter().map(|(_, v)| v.to_text()).collect();
        assert_eq!(
            text,
            [
                "true",
                "-1",
                "255",
                "-2",
                "-3",
                "65535",
                "-4",
                "4294967295",
                "-5",
                "-6",
                "1.5",
                "-0.25",
                "12.34",
                "héllo",
                "0xff00",
                "0x6162",
                "1700000000",
                "null",
                "[\"a\", false]",
                "{\"n\": 7, \"m\": null}",
            ]
        );
    }

    #[test]
    fn decimals_are_written_with_their_scale() {
        assert_eq!(decimal_text(0, -12), "-12");
        assert_eq!(decimal_text(3, 5), "0.005");
        assert_eq!(decimal_text(1, -1234), "-123.4");
        assert_eq!(decimal_text(2, i32::MIN), "-21474836.48");
    }

    #[test]
    fn depth_items_and_value_size_are_capped() {
        // x-death style nesting: {a: [{b: {c: 1}}]} is 4 levels deep.
        let c = entry("c", &typed(b'B', &[1]));
        let b = entry("b", &typed(b'F', &long(&c)));
        let arr = typed(b'F', &long(&b));
        let a = entry("a", &typed(b'A', &long(&arr)));
        let caps = TableCaps {
            max_depth: 3,
            max_items: 100,
            max_value_bytes: 4,
        };
        let (t, cut) = decode(&a, caps);
        assert!(cut, "the fourth level is left out");
        assert_eq!(
            t,
            vec![(
                "a".into(),
                FieldValue::Array(vec![FieldValue::Table(vec![("b".into(), FieldValue::Omitted)])])
            )]
        );
        assert_eq!(t[0].1.to_text(), "[{\"b\": …}]");
        let (whole, cut) = decode(&a, TableCaps { max_depth: 4, ..caps });
        assert!(!cut);
        assert_eq!(whole[0].1.to_text(), "[{\"b\": {\"c\": 1}}]");

        // Item cap: values of nested tables count too.
        let mut many = Vec::new();
        for i in 0..10u8 {
            many.extend(entry(&format!("k{i}"), &typed(b'B', &[i])));
        }
        let (t, cut) = decode(&many, TableCaps { max_items: 3, ..caps });
        assert!(cut);
        assert_eq!(t.len(), 3);
        // A nested array filling the cap leaves no room for its parent's next value.
        let mut inner = Vec::new();
        for i in 0..5u8 {
            inner.extend(typed(b'B', &[i]));
        }
        let mut nested = entry("a", &typed(b'A', &long(&inner)));
        nested.extend(entry("after", &typed(b'B', &[9])));
        let (t, cut) = decode(&nested, TableCaps { max_items: 3, ..caps });
        assert!(cut);
        assert_eq!(
            t,
            vec![(
                "a".into(),
                FieldValue::Array(vec![FieldValue::UInt(0), FieldValue::UInt(1)])
            )]
        );

        // Value bytes: strings cut on a character boundary, byte arrays at the cap.
        let mut v = entry("s", &typed(b'S', &long("aéé".as_bytes())));
        v.extend(entry("x", &typed(b'x', &long(b"012345"))));
        let (t, cut) = decode(&v, caps);
        assert!(cut);
        assert_eq!(
            t[0].1,
            FieldValue::Str {
                text: "aé".into(),
                len: 5
            }
        );
        assert_eq!(t[0].1.to_text(), "aé…");
        assert_eq!(
            t[1].1,
            FieldValue::Bytes {
                data: b"0123".to_vec().into(),
                len: 6
            }
        );
    }

    #[test]
    fn malformed_and_short_tables_keep_what_came_before() {
        let mut v = entry("ok", &typed(b't', &[1]));
        v.extend(entry("bad", &typed(b'?', &[1, 2, 3])));
        v.extend(entry("never", &typed(b't', &[1])));
        let (t, cut) = decode(&v, TableCaps::default());
        assert!(cut);
        assert_eq!(t, vec![("ok".into(), FieldValue::Bool(true))]);
        // A length beyond the input: the values that are there.
        let mut wire = 1000u32.to_be_bytes().to_vec();
        wire.extend(entry("ok", &typed(b't', &[1])));
        wire.extend(entry("half", &[b'I', 0]));
        let mut d = TableDecoder::new(TableCaps::default());
        let t = d.table(&mut Rd { b: &wire }).unwrap();
        assert!(d.cut);
        assert_eq!(t, vec![("ok".into(), FieldValue::Bool(true))]);
        // Every prefix of a nested table decodes without panicking.
        let inner = entry("x", &typed(b'A', &long(&typed(b'S', &long(b"abc")))));
        let whole = long(&entry("t", &typed(b'F', &long(&inner))));
        for n in 0..=whole.len() {
            let mut d = TableDecoder::new(TableCaps::default());
            let _ = d.table(&mut Rd { b: &whole[..n] });
        }
    }

    #[test]
    fn hostile_nesting_does_not_recurse_past_the_cap() {
        // 100,000 nested arrays: decoded 4 deep, the rest skipped by its length.
        let n = 100_000u32;
        let mut v = Vec::new();
        for i in (0..n).rev() {
            v.push(b'A');
            v.extend((5 * i).to_be_bytes());
        }
        let (t, cut) = decode(&entry("deep", &v), TableCaps::default());
        assert!(cut);
        let mut depth = 0;
        let mut cur = &t[0].1;
        while let FieldValue::Array(a) = cur {
            depth += 1;
            cur = &a[0];
        }
        assert_eq!((depth, cur), (3, &FieldValue::Omitted));
    }

    /// A content header with every property, as pika and the Java client send them.
    pub fn full_header(body_size: u64) -> Vec<u8> {
        let mut h = 60u16.to_be_bytes().to_vec();
        h.extend([0, 0]);
        h.extend(body_size.to_be_bytes());
        h.extend(0xfffcu16.to_be_bytes());
        let short = |h: &mut Vec<u8>, s: &str| {
            h.push(s.len() as u8);
            h.extend(s.as_bytes());
        };
        short(&mut h, "application/json");
        short(&mut h, "gzip");
        let mut headers = entry("x-retry-count", &typed(b'I', &3i32.to_be_bytes()));
        headers.extend(entry("tenant", &typed(b'S', &long(b"acme"))));
        h.extend(long(&headers));
        h.extend([2, 5]);
        for s in ["corr-1", "amq.rabbitmq.reply-to", "60000", "msg-1"] {
            short(&mut h, s);
        }
        h.extend(1_700_000_000u64.to_be_bytes());
        for s in ["order.created", "guest", "billing", "cluster-a"] {
            short(&mut h, s);
        }
        h
    }

    #[test]
    fn all_fourteen_properties() {
        let wire = full_header(42);
        let h = parse_content_header(&wire, TableCaps::default()).unwrap();
        assert_eq!((h.class, h.body_size, h.cut), (60, 42, false));
        let p = &h.properties;
        assert_eq!(
            p.strings().collect::<Vec<_>>(),
            [
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
                ("correlation-id", "corr-1"),
                ("reply-to", "amq.rabbitmq.reply-to"),
                ("expiration", "60000"),
                ("message-id", "msg-1"),
                ("type", "order.created"),
                ("user-id", "guest"),
                ("app-id", "billing"),
                ("cluster-id", "cluster-a"),
            ]
        );
        assert_eq!(
            (p.delivery_mode, p.priority, p.timestamp),
            (Some(2), Some(5), Some(1_700_000_000))
        );
        assert_eq!(
            p.headers.as_deref(),
            Some(
                &[
                    ("x-retry-count".into(), FieldValue::Int(3)),
                    ("tenant".into(), s("acme"))
                ][..]
            )
        );
        // Only some flags: delivery-mode and message-id.
        let mut sparse = 60u16.to_be_bytes().to_vec();
        sparse.extend([0, 0]);
        sparse.extend(7u64.to_be_bytes());
        sparse.extend(0x1080u16.to_be_bytes());
        sparse.extend([1, 2, b'i', b'd']);
        let h = parse_content_header(&sparse, TableCaps::default()).unwrap();
        assert_eq!(
            h.properties,
            Properties {
                delivery_mode: Some(1),
                message_id: Some("id".into()),
                ..Properties::default()
            }
        );
        // Cut anywhere: never a panic, the body size once it is there, `cut` after the flags.
        for n in 0..wire.len() {
            let h = parse_content_header(&wire[..n], TableCaps::default());
            assert_eq!(h.is_some(), n >= 12, "prefix {n}");
            if n >= 12 {
                assert!(h.unwrap().cut, "prefix {n}");
            }
        }
    }
}
