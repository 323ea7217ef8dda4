//! The HPACK Huffman code (RFC 7541 Appendix B).
//!
//! The code is canonical: codes of one length are consecutive and ordered by symbol, and each
//! length's first code follows from the previous length's. So the symbols grouped by code length
//! (the RFC's table, facts) are enough to rebuild every code, and decoding needs no tree: per bit,
//! compare the code read so far with the first code of that length (the method of zlib's `puff`).

/// Symbols by code length, from 5 to 30 bits; symbol 256 is EOS.
const BY_LENGTH: &[(u8, &[u16])] = &[
    (5, &[48, 49, 50, 97, 99, 101, 105, 111, 115, 116]),
    (
        6,
        &[
            32, 37, 45, 46, 47, 51, 52, 53, 54, 55, 56, 57, 61, 65, 95, 98, 100, 102, 103, 104, 108, 109, 110, 112,
            114, 117,
        ],
    ),
    (
        7,
        &[
            58, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 89, 106, 107,
            113, 118, 119, 120, 121, 122,
        ],
    ),
    (8, &[38, 42, 44, 59, 88, 90]),
    (10, &[33, 34, 40, 41, 63]),
    (11, &[39, 43, 124]),
    (12, &[35, 62]),
    (13, &[0, 36, 64, 91, 93, 126]),
    (14, &[94, 125]),
    (15, &[60, 96, 123]),
    (19, &[92, 195, 208]),
    (20, &[128, 130, 131, 162, 184, 194, 224, 226]),
    (21, &[153, 161, 167, 172, 176, 177, 179, 209, 216, 217, 227, 229, 230]),
    (
        22,
        &[
            129, 132, 133, 134, 136, 146, 154, 156, 160, 163, 164, 169, 170, 173, 178, 181, 185, 186, 187, 189, 190,
            196, 198, 228, 232, 233,
        ],
    ),
    (
        23,
        &[
            1, 135, 137, 138, 139, 140, 141, 143, 147, 149, 150, 151, 152, 155, 157, 158, 165, 166, 168, 174, 175, 180,
            182, 183, 188, 191, 197, 231, 239,
        ],
    ),
    (24, &[9, 142, 144, 145, 148, 159, 171, 206, 215, 225, 236, 237]),
    (25, &[199, 207, 234, 235]),
    (
        26,
        &[
            192, 193, 200, 201, 202, 205, 210, 213, 218, 219, 238, 240, 242, 243, 255,
        ],
    ),
    (
        27,
        &[
            203, 204, 211, 212, 214, 221, 222, 223, 241, 244, 245, 246, 247, 248, 250, 251, 252, 253, 254,
        ],
    ),
    (
        28,
        &[
            2, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28, 29, 30, 31, 127, 220,
            249,
        ],
    ),
    (30, &[10, 13, 22, 256]),
];

const EOS: u16 = 256;
const MAX_LEN: usize = 30;

/// Canonical decoding tables: per length, the first code and the index of its first symbol.
struct Tables {
    first_code: [u32; MAX_LEN + 1],
    count: [u32; MAX_LEN + 1],
    offset: [u32; MAX_LEN + 1],
    symbols: [u16; 257],
    /// (code, length) per symbol, for the encoder.
    codes: [(u32, u8); 257],
}

const fn build() -> Tables {
    let mut t = Tables {
        first_code: [0; MAX_LEN + 1],
        count: [0; MAX_LEN + 1],
        offset: [0; MAX_LEN + 1],
        symbols: [0; 257],
        codes: [(0, 0); 257],
    };
    let mut code: u32 = 0;
    let mut prev_len: u32 = 0;
    let mut n: u32 = 0;
    let mut i = 0;
    while i < BY_LENGTH.len() {
        let (len, syms) = BY_LENGTH[i];
        let len = len as u32;
        if prev_len > 0 {
            code <<= len - prev_len;
        }
        t.first_code[len as usize] = code;
        t.count[len as usize] = syms.len() as u32;
        t.offset[len as usize] = n;
        let mut j = 0;
        while j < syms.len() {
            t.symbols[n as usize] = syms[j];
            t.codes[syms[j] as usize] = (code, len as u8);
            code += 1;
            n += 1;
            j += 1;
        }
        prev_len = len;
        i += 1;
    }
    t
}

static TABLES: Tables = build();

/// Why a Huffman string does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HuffmanError {
    /// The EOS symbol appeared inside the string.
    Eos,
    /// The final padding is longer than 7 bits or not all ones.
    BadPadding,
}

/// Decodes a Huffman-coded string, appending to `out`.
pub fn decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    let t = &TABLES;
    let mut code: u32 = 0;
    let mut len: usize = 0;
    // Whether every bit of the pending code is 1 (a valid padding is a prefix of EOS).
    let mut all_ones = true;
    for &byte in input {
        for shift in (0..8).rev() {
            let bit = u32::from((byte >> shift) & 1);
            code = (code << 1) | bit;
            all_ones &= bit == 1;
            len += 1;
            if len > MAX_LEN {
                return Err(HuffmanError::BadPadding);
            }
            let count = t.count[len];
            if count > 0 && code >= t.first_code[len] && code - t.first_code[len] < count {
                let sym = t.symbols[(t.offset[len] + code - t.first_code[len]) as usize];
                if sym == EOS {
                    return Err(HuffmanError::Eos);
                }
                out.push(sym as u8);
                code = 0;
                len = 0;
                all_ones = true;
            }
        }
    }
    if len > 7 || !all_ones {
        return Err(HuffmanError::BadPadding);
    }
    Ok(())
}

/// Length in bytes of `input` once Huffman-coded.
pub fn encoded_len(input: &[u8]) -> usize {
    let bits: usize = input.iter().map(|&b| TABLES.codes[b as usize].1 as usize).sum();
    bits.div_ceil(8)
}

/// Huffman-codes `input`, appending to `out` (padding with the most significant bits of EOS).
pub fn encode(input: &[u8], out: &mut Vec<u8>) {
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in input {
        let (code, len) = TABLES.codes[b as usize];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1u64 << bits) - 1;
    }
    if bits > 0 {
        let pad = 8 - bits;
        out.push(((acc << pad) | ((1 << pad) - 1)) as u8);
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

    fn dec(b: &[u8]) -> Result<Vec<u8>, HuffmanError> {
        let mut out = Vec::new();
        decode(b, &mut out).map(|_| out)
    }

    #[test]
    fn the_code_is_complete_and_eos_is_thirty_ones() {
        // Kraft equality: a complete prefix code fills the code space exactly.
        let total: u128 = TABLES.codes.iter().map(|&(_, l)| 1u128 << (MAX_LEN as u8 - l)).sum();
        assert_eq!(total, 1u128 << MAX_LEN);
        assert_eq!(TABLES.codes[EOS as usize], ((1 << 30) - 1, 30));
        let mut seen = std::collections::HashSet::new();
        for s in 0..257 {
            assert!(seen.insert(TABLES.codes[s]), "symbol {s} shares a code");
        }
        // A few codes as printed in the RFC's table.
        assert_eq!(TABLES.codes[b'0' as usize], (0x0, 5));
        assert_eq!(TABLES.codes[b' ' as usize], (0x14, 6));
        assert_eq!(TABLES.codes[b':' as usize], (0x5c, 7));
        assert_eq!(TABLES.codes[b'&' as usize], (0xf8, 8));
        assert_eq!(TABLES.codes[0], (0x1ff8, 13));
        assert_eq!(TABLES.codes[255], (0x3ffffee, 26));
    }

    #[test]
    fn rfc7541_appendix_c_strings() {
        // C.4.1 to C.4.3 and C.6.1.
        assert_eq!(dec(&hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff")).unwrap(), b"www.example.com");
        assert_eq!(dec(&hex("a8eb 1064 9cbf")).unwrap(), b"no-cache");
        assert_eq!(dec(&hex("25a8 49e9 5ba9 7d7f")).unwrap(), b"custom-key");
        assert_eq!(dec(&hex("25a8 49e9 5bb8 e8b4 bf")).unwrap(), b"custom-value");
        assert_eq!(dec(&hex("6402")).unwrap(), b"302");
        assert_eq!(dec(&hex("aec3 771a 4b")).unwrap(), b"private");
        assert_eq!(
            dec(&hex("d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff")).unwrap(),
            b"Mon, 21 Oct 2013 20:13:21 GMT"
        );
        assert_eq!(
            dec(&hex("9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3")).unwrap(),
            b"https://www.example.com"
        );
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        let mut enc = Vec::new();
        encode(&all, &mut enc);
        assert_eq!(enc.len(), encoded_len(&all));
        assert_eq!(dec(&enc).unwrap(), all);
        for n in 0..40 {
            let s: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let mut enc = Vec::new();
            encode(&s, &mut enc);
            assert_eq!(dec(&enc).unwrap(), s);
        }
    }

    #[test]
    fn bad_padding_and_eos_are_errors() {
        // '0' is 00000: padded with zeros instead of ones.
        assert_eq!(dec(&[0x00]), Err(HuffmanError::BadPadding));
        // A whole byte of padding (eight ones) is too long.
        assert_eq!(dec(&[0x07, 0xff]), Err(HuffmanError::BadPadding));
        // EOS itself (30 ones) inside the string.
        assert_eq!(dec(&[0xff, 0xff, 0xff, 0xff]), Err(HuffmanError::Eos));
        assert_eq!(dec(&[]).unwrap(), b"");
    }
}
