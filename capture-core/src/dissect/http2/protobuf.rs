//! Protocol Buffers without a schema: the wire format (varint, 64-bit, length-delimited, 32-bit)
//! decoded into a tree of field numbers, as `protoc --decode_raw` does.
//!
//! A length-delimited field is tried as a nested message (when the depth cap allows), then as a
//! UTF-8 string, then as packed varints, and is otherwise bytes. The guesses are the usual ones:
//! a short string can also read as a message, and the wire format cannot tell them apart.

use std::fmt::Write as _;

/// One decoded field.
#[derive(Debug, Clone, PartialEq)]
pub struct PbField {
    pub number: u32,
    pub value: PbValue,
}

/// A field's value as the wire format shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum PbValue {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Message(Vec<PbField>),
    String(String),
    /// A packed repeated scalar field read as varints.
    Packed(Vec<u64>),
    Bytes(Vec<u8>),
}

fn varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..70).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        if shift == 63 && byte > 1 {
            return None;
        }
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Decodes `b` as a message; `None` when it is not one (a bad tag, a wire type of groups, a
/// length past the end). An empty input is an empty message.
pub fn decode(b: &[u8], max_depth: usize) -> Option<Vec<PbField>> {
    decode_at(b, max_depth, 0)
}

fn decode_at(b: &[u8], max_depth: usize, depth: usize) -> Option<Vec<PbField>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let tag = varint(b, &mut at)?;
        let number = u32::try_from(tag >> 3).ok().filter(|&n| n > 0 && n < (1 << 29))?;
        let value = match tag & 7 {
            0 => PbValue::Varint(varint(b, &mut at)?),
            1 => {
                let v = b.get(at..at + 8)?;
                at += 8;
                PbValue::Fixed64(u64::from_le_bytes(v.try_into().ok()?))
            }
            5 => {
                let v = b.get(at..at + 4)?;
                at += 4;
                PbValue::Fixed32(u32::from_le_bytes(v.try_into().ok()?))
            }
            2 => {
                let len = usize::try_from(varint(b, &mut at)?).ok()?;
                let end = at.checked_add(len)?;
                let inner = b.get(at..end)?;
                at = end;
                length_delimited(inner, max_depth, depth)
            }
            _ => return None,
        };
        out.push(PbField { number, value });
    }
    Some(out)
}

fn length_delimited(inner: &[u8], max_depth: usize, depth: usize) -> PbValue {
    if inner.is_empty() {
        return PbValue::String(String::new());
    }
    if depth + 1 < max_depth
        && let Some(m) = decode_at(inner, max_depth, depth + 1)
    {
        return PbValue::Message(m);
    }
    if let Ok(s) = std::str::from_utf8(inner)
        && !s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return PbValue::String(s.to_string());
    }
    let mut at = 0;
    let mut packed = Vec::new();
    while at < inner.len() {
        match varint(inner, &mut at) {
            Some(v) => packed.push(v),
            None => return PbValue::Bytes(inner.to_vec()),
        }
    }
    PbValue::Packed(packed)
}

/// JSON text of a decoded message: an object keyed by field number; repeated numbers become
/// arrays; bytes are `{"bytes": "<hex>"}` and packed fields `{"packed": [..]}`.
pub fn to_json(fields: &[PbField]) -> String {
    let mut s = String::new();
    write_message(&mut s, fields);
    s
}

fn write_message(s: &mut String, fields: &[PbField]) {
    s.push('{');
    let mut numbers: Vec<u32> = Vec::new();
    for f in fields {
        if !numbers.contains(&f.number) {
            numbers.push(f.number);
        }
    }
    for (k, n) in numbers.iter().enumerate() {
        if k > 0 {
            s.push(',');
        }
        let _ = write!(s, "\"{n}\":");
        let values: Vec<&PbValue> = fields.iter().filter(|f| f.number == *n).map(|f| &f.value).collect();
        if let [one] = values.as_slice() {
            write_value(s, one);
        } else {
            s.push('[');
            for (j, v) in values.iter().enumerate() {
                if j > 0 {
                    s.push(',');
                }
                write_value(s, v);
            }
            s.push(']');
        }
    }
    s.push('}');
}

fn write_value(s: &mut String, v: &PbValue) {
    match v {
        PbValue::Varint(n) | PbValue::Fixed64(n) => {
            let _ = write!(s, "{n}");
        }
        PbValue::Fixed32(n) => {
            let _ = write!(s, "{n}");
        }
        PbValue::Message(m) => write_message(s, m),
        PbValue::String(t) => write_string(s, t),
        PbValue::Packed(p) => {
            s.push_str("{\"packed\":[");
            for (j, n) in p.iter().enumerate() {
                if j > 0 {
                    s.push(',');
                }
                let _ = write!(s, "{n}");
            }
            s.push_str("]}");
        }
        PbValue::Bytes(b) => {
            s.push_str("{\"bytes\":\"");
            for x in b {
                let _ = write!(s, "{x:02x}");
            }
            s.push_str("\"}");
        }
    }
}

fn write_string(s: &mut String, t: &str) {
    s.push('"');
    for c in t.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(number: u32, value: PbValue) -> PbField {
        PbField { number, value }
    }

    #[test]
    fn scalars_strings_and_nested_messages() {
        // {1: 150} is the encoding guide's example: 08 96 01.
        assert_eq!(
            decode(&[0x08, 0x96, 0x01], 8).unwrap(),
            vec![f(1, PbValue::Varint(150))]
        );
        // {2: "testing"}.
        let b = b"\x12\x07testing";
        assert_eq!(decode(b, 8).unwrap(), vec![f(2, PbValue::String("testing".into()))]);
        // {3: {1: 150}}.
        let b = [0x1a, 0x03, 0x08, 0x96, 0x01];
        assert_eq!(
            decode(&b, 8).unwrap(),
            vec![f(3, PbValue::Message(vec![f(1, PbValue::Varint(150))]))]
        );
        // fixed64, fixed32, a negative int32 (ten-byte varint).
        let mut b = vec![0x09];
        b.extend_from_slice(&1.5f64.to_le_bytes());
        b.push(0x15);
        b.extend_from_slice(&7u32.to_le_bytes());
        b.extend_from_slice(&[0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(
            decode(&b, 8).unwrap(),
            vec![
                f(1, PbValue::Fixed64(1.5f64.to_bits())),
                f(2, PbValue::Fixed32(7)),
                f(3, PbValue::Varint(u64::MAX))
            ]
        );
    }

    #[test]
    fn packed_bytes_and_json() {
        // {4: packed [3, 270, 86942]}: 22 06 03 8e 02 9e a7 05.
        let b = [0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05];
        let m = decode(&b, 8).unwrap();
        assert_eq!(m, vec![f(4, PbValue::Packed(vec![3, 270, 86942]))]);
        assert_eq!(to_json(&m), r#"{"4":{"packed":[3,270,86942]}}"#);
        // Bytes that are neither a message, text nor varints.
        let b = [0x2a, 0x02, 0xff, 0xff];
        let m = decode(&b, 8).unwrap();
        assert_eq!(m, vec![f(5, PbValue::Bytes(vec![0xff, 0xff]))]);
        assert_eq!(to_json(&m), r#"{"5":{"bytes":"ffff"}}"#);
        let b = b"\x0a\x05hello\x10\x01\x10\x02\x1a\x03\"q\n";
        assert_eq!(
            to_json(&decode(b, 8).unwrap()),
            r#"{"1":"hello","2":[1,2],"3":"\"q\n"}"#
        );
    }

    #[test]
    fn invalid_input_is_not_a_message_and_depth_is_capped() {
        assert_eq!(decode(&[], 8).unwrap(), vec![]);
        assert!(decode(&[0x08], 8).is_none(), "varint missing");
        assert!(decode(&[0x00, 0x01], 8).is_none(), "field number 0");
        assert!(decode(&[0x0b], 8).is_none(), "group start");
        assert!(decode(&[0x12, 0x05, b'a'], 8).is_none(), "length past the end");
        assert!(decode(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], 8).is_none());
        // 40 levels of {1: {1: …}}: below the cap they stay bytes or text.
        let mut b: Vec<u8> = vec![0x08, 0x01];
        for _ in 0..40 {
            let mut outer = vec![0x0a, b.len() as u8];
            outer.extend_from_slice(&b);
            b = outer;
        }
        let m = decode(&b, 4).unwrap();
        let mut depth = 0;
        let mut cur = &m;
        while let [
            PbField {
                value: PbValue::Message(inner),
                ..
            },
        ] = cur.as_slice()
        {
            depth += 1;
            cur = inner;
        }
        assert_eq!(depth, 3);
        assert!(!matches!(cur[0].value, PbValue::Message(_)));
    }
}
