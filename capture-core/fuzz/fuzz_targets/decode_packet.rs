//! Frames through the wire decoders one at a time, then all of them through a full engine.
//!
//! Input: one selector byte (low 3 bits: link type from `common::LINKS`; next 3 bits: time step
//! between packets), then frames separated by `common::DELIM`.
#![no_main]

mod common;

use capture_core::source::Packet;
use capture_core::time::Timestamp;
use capture_core::wire::ip::{PROTO_TCP, PROTO_UDP};
use capture_core::wire::{TcpSegment, UdpDatagram, decode_ip, decode_link};
use libfuzzer_sys::fuzz_target;

/// Nanoseconds between packets: back to back up to past every idle timeout.
const STEPS: [u64; 8] = [
    0,
    1_000,
    1_000_000,
    100_000_000,
    1_000_000_000,
    3_000_000_000,
    60_000_000_000,
    400_000_000_000,
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let link = common::LINKS[usize::from(sel & 7)];
    let step = STEPS[usize::from((sel >> 3) & 7)];
    let frames = common::split(rest);

    for frame in &frames {
        let Ok(Some(ip)) = decode_link(link, frame).and_then(decode_ip) else {
            continue;
        };
        assert!(ip.payload.len() <= frame.len());
        match ip.protocol {
            PROTO_TCP => {
                if let Ok(seg) = TcpSegment::new_checked(ip.payload) {
                    let _ = (seg.src_port(), seg.dst_port(), seg.seq(), seg.ack(), seg.window());
                    let _ = seg.flags();
                    assert!(seg.header_len() + seg.payload().len() <= ip.payload.len());
                    for opt in seg.options() {
                        let _ = opt;
                    }
                }
            }
            PROTO_UDP => {
                if let Ok(dg) = UdpDatagram::new_checked(ip.payload) {
                    let _ = (dg.src_port(), dg.dst_port());
                    assert!(dg.payload().len() <= ip.payload.len());
                }
            }
            _ => {}
        }
    }

    let mut engine = common::engine();
    for (i, frame) in frames.iter().enumerate() {
        engine.process(&Packet {
            ts: Timestamp(1_700_000_000_000_000_000 + step.saturating_mul(i as u64)),
            link,
            data: frame,
            orig_len: frame.len() as u32,
            interface: 0,
        });
    }
    engine.finish();
});
