//! HTTP/2 framing (RFC 9113 §4 and §6): the frame header, the per-type rules a real frame obeys
//! (used to recognise frames without the connection preface), padding and SETTINGS.

/// The client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const HEADER_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE's initial value; larger frames need the peer's consent.
pub const DEFAULT_MAX_FRAME: u32 = 16_384;
/// The largest frame size a peer may allow (2^24 - 1).
pub const MAX_FRAME: u32 = (1 << 24) - 1;

pub const DATA: u8 = 0;
pub const HEADERS: u8 = 1;
pub const PRIORITY: u8 = 2;
pub const RST_STREAM: u8 = 3;
pub const SETTINGS: u8 = 4;
pub const PUSH_PROMISE: u8 = 5;
pub const PING: u8 = 6;
pub const GOAWAY: u8 = 7;
pub const WINDOW_UPDATE: u8 = 8;
pub const CONTINUATION: u8 = 9;

pub const FLAG_END_STREAM: u8 = 0x1;
pub const FLAG_ACK: u8 = 0x1;
pub const FLAG_END_HEADERS: u8 = 0x4;
pub const FLAG_PADDED: u8 = 0x8;
pub const FLAG_PRIORITY: u8 = 0x20;

pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 1;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 5;

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub len: u32,
    pub ty: u8,
    pub flags: u8,
    pub stream: u32,
}

impl FrameHeader {
    /// Reads the 9-byte header at the start of `b` (the reserved bit is dropped).
    pub fn parse(b: &[u8]) -> Option<FrameHeader> {
        let h: &[u8; HEADER_LEN] = b.get(..HEADER_LEN)?.try_into().ok()?;
        Some(FrameHeader {
            len: u32::from_be_bytes([0, h[0], h[1], h[2]]),
            ty: h[3],
            flags: h[4],
            stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
        })
    }

    /// Writes the header.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.len.to_be_bytes()[1..]);
        out.push(self.ty);
        out.push(self.flags);
        out.extend_from_slice(&self.stream.to_be_bytes());
    }

    /// Whether a real peer could have sent this header: a known type on the kind of stream it
    /// belongs to, flags that type defines, and a length the type allows. Used to recognise
    /// frames when the connection preface was not captured, and to re-synchronise after a gap.
    pub fn plausible(&self, max_frame: u32, raw_reserved_bit: bool) -> bool {
        if raw_reserved_bit || self.len > max_frame {
            return false;
        }
        let on_stream = self.stream != 0;
        let flags_ok = |allowed: u8| self.flags & !allowed == 0;
        match self.ty {
            DATA => on_stream && flags_ok(FLAG_END_STREAM | FLAG_PADDED),
            HEADERS => {
                on_stream && flags_ok(FLAG_END_STREAM | FLAG_END_HEADERS | FLAG_PADDED | FLAG_PRIORITY) && self.len > 0
            }
            PRIORITY => on_stream && self.flags == 0 && self.len == 5,
            RST_STREAM => on_stream && self.flags == 0 && self.len == 4,
            SETTINGS => {
                !on_stream && flags_ok(FLAG_ACK) && self.len.is_multiple_of(6) && (self.flags == 0 || self.len == 0)
            }
            PUSH_PROMISE => on_stream && flags_ok(FLAG_END_HEADERS | FLAG_PADDED) && self.len >= 4,
            PING => !on_stream && flags_ok(FLAG_ACK) && self.len == 8,
            GOAWAY => !on_stream && self.flags == 0 && self.len >= 8,
            WINDOW_UPDATE => self.flags == 0 && self.len == 4,
            CONTINUATION => on_stream && flags_ok(FLAG_END_HEADERS) && self.len > 0,
            _ => false,
        }
    }
}

/// The reserved bit of the stream id in a raw header.
pub fn reserved_bit(b: &[u8]) -> bool {
    b.get(5).is_some_and(|&x| x & 0x80 != 0)
}

/// How well `b` reads as a run of HTTP/2 frames from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRun {
    /// Complete plausible frames read.
    pub frames: usize,
    /// The run ends exactly at the end of `b` (or inside a plausible frame's payload).
    pub reaches_end: bool,
    /// Bytes covered by the complete frames.
    pub bytes: usize,
    /// A stream-level frame (HEADERS, DATA, …) is among them, not only connection frames.
    pub has_stream_frame: bool,
}

/// Reads plausible frames from the start of `b`, up to `max_frames`.
pub fn frame_run(b: &[u8], max_frames: usize) -> FrameRun {
    let mut run = FrameRun {
        frames: 0,
        reaches_end: false,
        bytes: 0,
        has_stream_frame: false,
    };
    let mut at = 0;
    while run.frames < max_frames {
        if at == b.len() {
            run.reaches_end = true;
            break;
        }
        let Some(h) = FrameHeader::parse(&b[at..]) else {
            // A partial header at the end: undecided, counted as reaching the end.
            run.reaches_end = true;
            break;
        };
        if !h.plausible(DEFAULT_MAX_FRAME, reserved_bit(&b[at..])) {
            break;
        }
        let end = at + HEADER_LEN + h.len as usize;
        if end > b.len() {
            run.reaches_end = true;
            break;
        }
        run.frames += 1;
        run.bytes = end;
        run.has_stream_frame |= h.stream != 0;
        at = end;
    }
    run
}

/// The content of a padded frame (`PADDED` flag): the payload without its pad-length byte, the
/// optional priority block and the padding. `None` when the padding is longer than the payload.
pub fn unpad(payload: &[u8], flags: u8, skip_after_pad: usize) -> Option<&[u8]> {
    let (pad, rest) = if flags & FLAG_PADDED != 0 {
        let (&p, rest) = payload.split_first()?;
        (p as usize, rest)
    } else {
        (0, payload)
    };
    if rest.len() < skip_after_pad + pad {
        return None;
    }
    Some(&rest[skip_after_pad..rest.len() - pad])
}

/// The (identifier, value) pairs of a SETTINGS payload.
pub fn settings(payload: &[u8]) -> impl Iterator<Item = (u16, u32)> + '_ {
    payload.chunks_exact(6).map(|c| {
        (
            u16::from_be_bytes([c[0], c[1]]),
            u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
        )
    })
}

/// The name of an HTTP/2 error code (RFC 9113 §7), for summaries.
pub fn error_name(code: u32) -> &'static str {
    match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        _ => "UNKNOWN_ERROR",
    }
}

/// Builds one frame (tests, synthetic traffic).
pub fn build(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    FrameHeader {
        len: payload.len() as u32,
        ty,
        flags,
        stream,
    }
    .write(&mut out);
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_reserved_bit() {
        let f = build(HEADERS, FLAG_END_HEADERS, 3, b"abc");
        let h = FrameHeader::parse(&f).unwrap();
        assert_eq!(
            h,
            FrameHeader {
                len: 3,
                ty: HEADERS,
                flags: FLAG_END_HEADERS,
                stream: 3
            }
        );
        assert!(FrameHeader::parse(&f[..8]).is_none());
        let mut r = f.clone();
        r[5] |= 0x80;
        assert_eq!(FrameHeader::parse(&r).unwrap().stream, 3);
        assert!(reserved_bit(&r) && !reserved_bit(&f));
    }

    #[test]
    fn plausibility_follows_the_per_type_rules() {
        let h = |len, ty, flags, stream| FrameHeader { len, ty, flags, stream };
        assert!(h(18, SETTINGS, 0, 0).plausible(DEFAULT_MAX_FRAME, false));
        assert!(h(0, SETTINGS, FLAG_ACK, 0).plausible(DEFAULT_MAX_FRAME, false));
        assert!(!h(6, SETTINGS, FLAG_ACK, 0).plausible(DEFAULT_MAX_FRAME, false));
        assert!(!h(7, SETTINGS, 0, 0).plausible(DEFAULT_MAX_FRAME, false));
        assert!(!h(6, SETTINGS, 0, 1).plausible(DEFAULT_MAX_FRAME, false));
        assert!(h(8, PING, 1, 0).plausible(DEFAULT_MAX_FRAME, false));
        assert!(!h(9, PING, 0, 0).plausible(DEFAULT_MAX_FRAME, false));
        assert!(h(4, RST_STREAM, 0, 5).plausible(DEFAULT_MAX_FRAME, false));
        assert!(!h(4, RST_STREAM, 0, 0).plausible(DEFAULT_MAX_FRAME, false));
        assert!(!h(10, DATA, 0, 0).plausible(DEFAULT_MAX_FRAME, false));
        assert!(!h(10, DATA, 0x40, 1).plausible(DEFAULT_MAX_FRAME, false));
        assert!(!h(20_000, DATA, 0, 1).plausible(DEFAULT_MAX_FRAME, false));
        assert!(!h(10, 10, 0, 1).plausible(DEFAULT_MAX_FRAME, false));
        assert!(!h(10, DATA, 0, 1).plausible(DEFAULT_MAX_FRAME, true));
    }

    #[test]
    fn frame_runs() {
        let mut b = build(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]);
        b.extend(build(HEADERS, FLAG_END_HEADERS, 1, &[0x82]));
        let r = frame_run(&b, 8);
        assert_eq!(
            (r.frames, r.reaches_end, r.bytes, r.has_stream_frame),
            (2, true, b.len(), true)
        );
        let r = frame_run(&b[..b.len() - 1], 8);
        assert_eq!((r.frames, r.reaches_end), (1, true));
        let r = frame_run(b"GET / HTTP/1.1\r\n", 8);
        assert_eq!((r.frames, r.reaches_end), (0, false));
    }

    #[test]
    fn padding_is_removed_and_checked() {
        assert_eq!(unpad(&[2, b'h', b'i', 0, 0], FLAG_PADDED, 0), Some(&b"hi"[..]));
        assert_eq!(unpad(b"hi", 0, 0), Some(&b"hi"[..]));
        assert_eq!(unpad(&[1, 9, 9, 9, 9, 9, b'x', 0], FLAG_PADDED, 5), Some(&b"x"[..]));
        assert_eq!(unpad(&[5, b'h'], FLAG_PADDED, 0), None);
        assert_eq!(unpad(&[], FLAG_PADDED, 0), None);
    }

    #[test]
    fn settings_pairs() {
        let p = [0, 1, 0, 0, 0x10, 0, 0, 4, 0, 0x40, 0, 0];
        assert_eq!(settings(&p).collect::<Vec<_>>(), vec![(1, 4096), (4, 0x0040_0000)]);
        assert_eq!(error_name(8), "CANCEL");
    }
}
