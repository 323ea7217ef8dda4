//! HTTP/2 (RFC 9113) and gRPC, found by content on any port.
//!
//! A connection is HTTP/2 when a direction starts with the client preface, with the server's
//! first SETTINGS frame (a server may speak first), or, when the capture starts mid-connection,
//! with a run of frames that obey the per-type rules and fill the segment exactly. An HTTP/1.1
//! connection that switches with `Upgrade: h2c` is handed over by the HTTP/1 dissector
//! ([`state::Http2Session::after_upgrade`]).
//!
//! - `frame`: frame headers, plausibility, padding, SETTINGS;
//! - `huffman`, `hpack`: header compression (our own decoder: a passive observer must mark what
//!   it cannot know rather than fail, which no endpoint library does);
//! - `state`: the per-connection state machine that turns streams into entries;
//! - `grpc`, `protobuf`: gRPC calls, their messages, and schemaless protobuf decoding.

pub mod frame;
pub mod grpc;
pub mod hpack;
pub mod huffman;
pub mod model;
pub mod protobuf;
pub mod state;
#[cfg(test)]
mod tests;

use self::frame::{FrameHeader, PREFACE};
use crate::dissect::Probe;

/// Settings identifiers a server's first SETTINGS frame may carry (RFC 9113 §6.5.2, RFC 8441,
/// RFC 9218).
fn known_setting(id: u16, value: u32) -> bool {
    match id {
        2 => value <= 1,
        4 => value <= 0x7fff_ffff,
        5 => (frame::DEFAULT_MAX_FRAME..=frame::MAX_FRAME).contains(&value),
        8 | 9 => value <= 1,
        1 | 3 | 6 => true,
        _ => false,
    }
}

/// Does `b`, the first bytes of a direction, look like HTTP/2?
pub fn probe(b: &[u8]) -> Probe {
    if b.is_empty() {
        return Probe::NeedMore;
    }
    let n = b.len().min(PREFACE.len());
    if b[..n] == PREFACE[..n] {
        return if n == PREFACE.len() {
            Probe::Match
        } else {
            Probe::NeedMore
        };
    }
    let Some(h) = FrameHeader::parse(b) else {
        // A frame header cut short: a SETTINGS frame starts with two zero length bytes.
        return if b.iter().take(2).all(|&x| x == 0) {
            Probe::NeedMore
        } else {
            Probe::NoMatch
        };
    };
    // The server preface: a SETTINGS frame with known settings only.
    if h.ty == frame::SETTINGS && h.flags == 0 && h.plausible(frame::DEFAULT_MAX_FRAME, frame::reserved_bit(b)) {
        let end = frame::HEADER_LEN + h.len as usize;
        if b.len() < end {
            return if h.len <= 60 { Probe::NeedMore } else { Probe::NoMatch };
        }
        let ok = frame::settings(&b[frame::HEADER_LEN..end]).all(|(id, v)| known_setting(id, v));
        return if ok { Probe::Match } else { Probe::NoMatch };
    }
    // Mid-connection: plausible frames that tile the segment, with a stream frame among them.
    let run = frame::frame_run(b, 64);
    if run.frames >= 1 && run.has_stream_frame && run.bytes == b.len() {
        Probe::Match
    } else {
        Probe::NoMatch
    }
}
