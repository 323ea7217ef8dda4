//! Writers for synthetic HTTP/2 and gRPC traffic (the demo, tests, benchmarks): frames, HPACK
//! header blocks of literals without indexing (no Huffman coding), gRPC length-prefixed messages
//! and protobuf fields.

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const DATA: u8 = 0;
pub const HEADERS: u8 = 1;
pub const SETTINGS: u8 = 4;
pub const END_STREAM: u8 = 1;
pub const ACK: u8 = 1;
pub const END_HEADERS: u8 = 4;

/// Appends one frame: 24-bit length, type, flags, stream id, payload.
pub fn frame(out: &mut Vec<u8>, ty: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(ty);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
}

/// An HPACK integer with an `n`-bit prefix; `first` holds the bits above the prefix.
fn hpack_int(out: &mut Vec<u8>, first: u8, n: u32, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

fn hpack_string(out: &mut Vec<u8>, s: &str) {
    hpack_int(out, 0, 7, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// A header block of literal fields without indexing, new names, no Huffman coding.
pub fn header_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        hpack_string(&mut out, name);
        hpack_string(&mut out, value);
    }
    out
}

/// One uncompressed gRPC length-prefixed message.
pub fn grpc_message(body: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn pb_varint(out: &mut Vec<u8>, field: u64, v: u64) {
    varint(out, field << 3);
    varint(out, v);
}

pub fn pb_bytes(out: &mut Vec<u8>, field: u64, v: &[u8]) {
    varint(out, (field << 3) | 2);
    varint(out, v.len() as u64);
    out.extend_from_slice(v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpack_integers_follow_rfc7541() {
        // C.1.1: 10 with a 5-bit prefix; C.1.2: 1337 with a 5-bit prefix; C.1.3: 42 at 8 bits.
        let enc = |first, n, v| {
            let mut out = Vec::new();
            hpack_int(&mut out, first, n, v);
            out
        };
        assert_eq!(enc(0, 5, 10), [0x0a]);
        assert_eq!(enc(0xe0, 5, 1337), [0xff, 0x9a, 0x0a]);
        assert_eq!(enc(0, 8, 42), [42]);
        assert_eq!(enc(0, 7, 127), [0x7f, 0x00]);
    }

    #[test]
    fn literal_without_indexing_as_in_rfc7541() {
        // C.2.1 with the "without indexing" representation (first byte 0x00 instead of 0x40).
        let mut want = vec![0x00, 0x0a];
        want.extend_from_slice(b"custom-key");
        want.push(0x0d);
        want.extend_from_slice(b"custom-header");
        assert_eq!(header_block(&[("custom-key", "custom-header")]), want);
        let long = "x".repeat(300);
        let block = header_block(&[("grpc-message", &long)]);
        assert_eq!(block[14..17], [0x7f, 0xad, 0x01], "300 = 127 + 173");
        assert_eq!(block.len(), 1 + 1 + 12 + 3 + 300);
    }

    #[test]
    fn frames_messages_and_fields() {
        let mut out = Vec::new();
        frame(&mut out, HEADERS, END_HEADERS | END_STREAM, 3, b"ab");
        assert_eq!(out, [0, 0, 2, 1, 5, 0, 0, 0, 3, b'a', b'b']);
        assert_eq!(grpc_message(b"xyz"), [0, 0, 0, 0, 3, b'x', b'y', b'z']);
        let mut pb = Vec::new();
        pb_varint(&mut pb, 2, 300);
        pb_bytes(&mut pb, 1, b"hi");
        assert_eq!(pb, [0x10, 0xac, 0x02, 0x0a, 2, b'h', b'i']);
    }
}
