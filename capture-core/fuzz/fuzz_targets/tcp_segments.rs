//! Random segment sequences through the TCP analysis and the reassembler: no panic, and the
//! out-of-order buffer never exceeds its window.
#![no_main]

use capture_core::tcp::analysis::{Segment, TcpAnalysis};
use capture_core::tcp::reassembly::{Chunk, Reassembler};
use capture_core::time::Timestamp;
use capture_core::wire::TcpFlags;
use libfuzzer_sys::fuzz_target;

const WINDOW: usize = 4096;
const MAX_SEGMENTS: usize = 16;

fuzz_target!(|data: &[u8]| {
    let mut analysis = TcpAnalysis::default();
    let mut reasm = [Reassembler::new(), Reassembler::new()];
    let mut t = 0u64;
    // Each segment: dir+flags (1), seq (4), ack (4), window (2), time step (1), payload length (1),
    // then the payload itself.
    let mut rest = data;
    while rest.len() >= 13 {
        let head = &rest[..13];
        let dir = usize::from(head[0] & 1);
        let flags = TcpFlags(head[0] & 0x3e | if head[0] & 0x80 != 0 { TcpFlags::FIN } else { 0 });
        let seq = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        let ack = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
        let window = u16::from_be_bytes([head[9], head[10]]);
        t += u64::from(head[11]) * 100_000;
        let len = usize::from(head[12]).min(rest.len() - 13);
        let payload = &rest[13..13 + len];
        rest = &rest[13 + len..];
        analysis.packet(&Segment {
            ts: Timestamp(t),
            dir,
            seq,
            ack,
            flags,
            window,
            seglen: len as u32,
            window_scale: if flags.syn() { Some(head[10] & 15) } else { None },
            frame_len: 54 + len as u32,
        });
        let mut delivered = 0usize;
        reasm[dir].segment(seq, flags.syn(), flags.fin(), payload, WINDOW, MAX_SEGMENTS, &mut |c| {
            if let Chunk::Data(d) = c {
                delivered += d.len();
            }
        });
        reasm[1 - dir].acked(ack, &mut |_| {});
        assert!(reasm[dir].buffered_bytes() <= WINDOW);
        assert!(delivered <= len + WINDOW);
    }
    for r in &mut reasm {
        r.flush(&mut |_| {});
        assert_eq!(r.buffered_bytes(), 0);
    }
    let m = analysis.metrics;
    assert!(m.retransmissions >= m.fast_retransmissions + m.spurious_retransmissions);
});
