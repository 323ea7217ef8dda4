//! Per-connection TCP expert analysis, computed as Wireshark's `tcp.analysis` does, so that every
//! counter agrees with what an engineer sees in Wireshark for the same capture.
//!
//! Sequence and acknowledgement numbers are made relative the way Wireshark does (a SYN's
//! sequence number is the base; otherwise the base is one before the first sequence number seen,
//! and a direction's base can also be learnt from the peer's first ACK), and zero means "not seen
//! yet", as in Wireshark. Each packet is classified in Wireshark's order: zero-window probe, zero
//! window, lost segment, keep-alive, window full, keep-alive ACK, zero-window-probe ACK, duplicate
//! ACK, ACKed-unseen, then fast retransmission, out-of-order, spurious retransmission and
//! retransmission. Round-trip samples come from ACKs that acknowledge a recorded segment exactly.

use std::collections::VecDeque;

use crate::time::Timestamp;
use crate::wire::TcpFlags;

/// Unacknowledged segments remembered per direction (Wireshark's cap as well).
const MAX_UNACKED_SEGMENTS: usize = 1_000;
/// A fast retransmission follows the duplicate ACKs within this time.
const FAST_RETRANSMISSION_WINDOW_NS: u64 = 20_000_000;
/// Out-of-order threshold before the handshake RTT is known.
const DEFAULT_OOO_THRESHOLD_NS: u64 = 3_000_000;

/// Completeness bits (Wireshark's `tcp.completeness`).
pub mod completeness {
    pub const SYN: u8 = 1;
    pub const SYN_ACK: u8 = 2;
    pub const ACK: u8 = 4;
    pub const DATA: u8 = 8;
    pub const FIN: u8 = 16;
    pub const RST: u8 = 32;
}

/// Analysis flags of one packet.
pub mod flags {
    pub const RETRANSMISSION: u32 = 1;
    pub const FAST_RETRANSMISSION: u32 = 2;
    pub const SPURIOUS_RETRANSMISSION: u32 = 4;
    pub const OUT_OF_ORDER: u32 = 8;
    pub const LOST_SEGMENT: u32 = 16;
    pub const ACKED_UNSEEN: u32 = 32;
    pub const ZERO_WINDOW: u32 = 64;
    pub const ZERO_WINDOW_PROBE: u32 = 128;
    pub const ZERO_WINDOW_PROBE_ACK: u32 = 256;
    pub const WINDOW_FULL: u32 = 512;
    pub const WINDOW_UPDATE: u32 = 1024;
    pub const KEEP_ALIVE: u32 = 2048;
    pub const KEEP_ALIVE_ACK: u32 = 4096;
    pub const DUP_ACK: u32 = 8192;
}

/// One packet as the analysis needs it.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    pub ts: Timestamp,
    /// 0: client → server, 1: server → client.
    pub dir: usize,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// The window field as sent (unscaled).
    pub window: u16,
    /// Payload length declared by the IP header (not the captured length).
    pub seglen: u32,
    /// Window-scale option, when the segment carries one.
    pub window_scale: Option<u8>,
    /// Length of the frame on the wire.
    pub frame_len: u32,
}

#[derive(Debug, Clone, Copy)]
struct Unacked {
    seq: u32,
    nextseq: u32,
    ts: Timestamp,
}

#[derive(Debug, Clone, Default)]
struct Direction {
    base_set: bool,
    base_seq: u32,
    nextseq: u32,
    nextseq_ts: Timestamp,
    maxseqtobeacked: u32,
    lastack: u32,
    lastack_ts: Timestamp,
    window: Option<u16>,
    /// -1 unknown, -2 no scaling, else the shift.
    win_scale: i8,
    dupacknum: u32,
    lastsegmentflags: u32,
    unacked: VecDeque<Unacked>,
}

/// Counters per connection, named as in Kubeshark's `tcp_metrics`. Serialisable so that a hub
/// can sum the groups of several agents.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TcpMetrics {
    pub packets: [u64; 2],
    pub frame_bytes: [u64; 2],
    pub payload_bytes: [u64; 2],
    /// Packets carrying payload.
    pub data_packets: [u64; 2],
    /// Payload of packets flagged as (fast, spurious) retransmissions.
    pub retransmitted_bytes: [u64; 2],
    pub syn_count: u64,
    pub fin_count: u64,
    pub rst_count: u64,
    /// RST packets sent by the client and by the server.
    pub rst_from: [u64; 2],
    /// Includes fast and spurious retransmissions, as Wireshark counts them.
    pub retransmissions: u64,
    pub fast_retransmissions: u64,
    pub spurious_retransmissions: u64,
    pub out_of_order: u64,
    pub zero_window_events: u64,
    pub zero_window_probes: u64,
    pub window_full_events: u64,
    pub dup_acks: u64,
    pub missing_segments: u64,
    pub acked_unseen: u64,
    pub keepalive_count: u64,
    pub window_updates: u64,
    pub completeness: u8,
    /// SYN → first ACK without SYN (Wireshark's `tcp.analysis.initial_rtt`).
    pub initial_rtt_ns: Option<u64>,
    /// SYN → SYN-ACK.
    pub syn_to_synack_ns: Option<u64>,
    pub rtt_samples: u64,
    pub rtt_min_ns: Option<u64>,
    pub rtt_max_ns: Option<u64>,
    pub rtt_sum_ns: u64,
    /// Sum of |sample − previous sample|, for the jitter.
    pub rtt_jitter_sum_ns: u64,
    rtt_last_ns: Option<u64>,
    /// Scaled receive window advertised, summed over packets that carry a known scale.
    pub window_sum: [u64; 2],
    pub window_samples: [u64; 2],
    pub window_scale: [Option<u8>; 2],
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    /// First payload byte in each direction.
    pub first_data_ts: [Option<Timestamp>; 2],
    pub last_data_ts: [Option<Timestamp>; 2],
    /// Time the handshake completed (first ACK after the SYN-ACK).
    pub established_ts: Option<Timestamp>,
}

impl TcpMetrics {
    pub fn goodput_bytes(&self) -> u64 {
        self.payload_bytes[0].saturating_sub(self.retransmitted_bytes[0])
            + self.payload_bytes[1].saturating_sub(self.retransmitted_bytes[1])
    }

    /// Retransmitted packets over packets that carried data (both directions).
    pub fn retransmission_rate(&self) -> f64 {
        let data = self.data_packets[0] + self.data_packets[1];
        if data == 0 {
            0.0
        } else {
            (self.retransmissions as f64 / data as f64).min(1.0)
        }
    }

    pub fn rtt_avg_ns(&self) -> Option<u64> {
        (self.rtt_samples > 0).then(|| self.rtt_sum_ns / self.rtt_samples)
    }

    pub fn jitter_ns(&self) -> Option<u64> {
        (self.rtt_samples > 1).then(|| self.rtt_jitter_sum_ns / (self.rtt_samples - 1))
    }

    pub fn avg_receive_window(&self, dir: usize) -> Option<u64> {
        (self.window_samples[dir] > 0).then(|| self.window_sum[dir] / self.window_samples[dir])
    }

    /// Adds another connection's counters (for groups). Latency extremes and sums merge;
    /// per-connection values (completeness, initial RTT, window scale) are left to the caller.
    pub fn merge(&mut self, o: &TcpMetrics) {
        for d in 0..2 {
            self.packets[d] += o.packets[d];
            self.frame_bytes[d] += o.frame_bytes[d];
            self.payload_bytes[d] += o.payload_bytes[d];
            self.data_packets[d] += o.data_packets[d];
            self.retransmitted_bytes[d] += o.retransmitted_bytes[d];
            self.window_sum[d] += o.window_sum[d];
            self.window_samples[d] += o.window_samples[d];
            self.first_data_ts[d] = min_opt(self.first_data_ts[d], o.first_data_ts[d]);
            self.last_data_ts[d] = self.last_data_ts[d].max(o.last_data_ts[d]);
        }
        self.syn_count += o.syn_count;
        self.fin_count += o.fin_count;
        self.rst_count += o.rst_count;
        self.rst_from[0] += o.rst_from[0];
        self.rst_from[1] += o.rst_from[1];
        self.retransmissions += o.retransmissions;
        self.fast_retransmissions += o.fast_retransmissions;
        self.spurious_retransmissions += o.spurious_retransmissions;
        self.out_of_order += o.out_of_order;
        self.zero_window_events += o.zero_window_events;
        self.zero_window_probes += o.zero_window_probes;
        self.window_full_events += o.window_full_events;
        self.dup_acks += o.dup_acks;
        self.missing_segments += o.missing_segments;
        self.acked_unseen += o.acked_unseen;
        self.keepalive_count += o.keepalive_count;
        self.window_updates += o.window_updates;
        self.rtt_samples += o.rtt_samples;
        self.rtt_sum_ns = self.rtt_sum_ns.saturating_add(o.rtt_sum_ns);
        self.rtt_jitter_sum_ns = self.rtt_jitter_sum_ns.saturating_add(o.rtt_jitter_sum_ns);
        self.rtt_min_ns = min_opt(self.rtt_min_ns, o.rtt_min_ns);
        self.rtt_max_ns = self.rtt_max_ns.max(o.rtt_max_ns);
        self.first_ts = min_opt(self.first_ts, o.first_ts);
        self.last_ts = self.last_ts.max(o.last_ts);
    }

    fn rtt_sample(&mut self, ns: u64) {
        self.rtt_samples += 1;
        // Saturating: a hostile capture's timestamps make samples of up to u64::MAX ns.
        self.rtt_sum_ns = self.rtt_sum_ns.saturating_add(ns);
        self.rtt_min_ns = Some(self.rtt_min_ns.map_or(ns, |m| m.min(ns)));
        self.rtt_max_ns = Some(self.rtt_max_ns.map_or(ns, |m| m.max(ns)));
        if let Some(last) = self.rtt_last_ns {
            self.rtt_jitter_sum_ns = self.rtt_jitter_sum_ns.saturating_add(last.abs_diff(ns));
        }
        self.rtt_last_ns = Some(ns);
    }
}

/// The analysis state of one TCP connection.
#[derive(Debug, Clone)]
pub struct TcpAnalysis {
    dirs: [Direction; 2],
    mru_syn: Option<Timestamp>,
    synack_seen: bool,
    seen_packets: u64,
    pub metrics: TcpMetrics,
}

impl Default for TcpAnalysis {
    fn default() -> Self {
        let d = Direction {
            win_scale: -1,
            ..Direction::default()
        };
        TcpAnalysis {
            dirs: [d.clone(), d],
            mru_syn: None,
            synack_seen: false,
            seen_packets: 0,
            metrics: TcpMetrics::default(),
        }
    }
}

fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}
fn lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
fn le(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

impl TcpAnalysis {
    /// Analyses one packet; returns its [`flags`].
    pub fn packet(&mut self, s: &Segment) -> u32 {
        let f = s.flags;
        let (syn, ack_flag, fin, rst) = (f.syn(), f.ack(), f.fin(), f.rst());
        let m = &mut self.metrics;
        let d = s.dir;
        let r = 1 - d;
        m.packets[d] += 1;
        m.frame_bytes[d] += u64::from(s.frame_len);
        m.payload_bytes[d] += u64::from(s.seglen);
        m.first_ts.get_or_insert(s.ts);
        m.last_ts = Some(s.ts);
        if s.seglen > 0 {
            m.data_packets[d] += 1;
            m.first_data_ts[d].get_or_insert(s.ts);
            m.last_data_ts[d] = Some(s.ts);
        }
        m.syn_count += u64::from(syn);
        m.fin_count += u64::from(fin);
        m.rst_count += u64::from(rst);
        m.rst_from[d] += u64::from(rst);

        // Completeness: a flow's first packet counts only when it is a SYN (as tshark 4.0 shows).
        let first = self.seen_packets == 0;
        self.seen_packets += 1;
        if !first || syn {
            use completeness::*;
            if syn {
                m.completeness |= if ack_flag { SYN_ACK } else { SYN };
            }
            if rst {
                m.completeness |= RST;
            }
            if ack_flag && !syn {
                m.completeness |= if fin {
                    FIN
                } else if s.seglen > 0 {
                    DATA
                } else {
                    ACK
                };
            }
        }

        // Window scaling, from the handshake.
        if syn {
            self.dirs[d].win_scale = s.window_scale.map_or(-2, |w| w.min(14) as i8);
            m.window_scale[d] = s.window_scale;
            if ack_flag {
                self.synack_seen = true;
                // Scaling applies only when both sides offered it.
                if self.dirs[d].win_scale == -2 || self.dirs[r].win_scale == -2 {
                    self.dirs[d].win_scale = -2;
                    if self.dirs[r].win_scale != -1 {
                        self.dirs[r].win_scale = -2;
                    }
                }
                if let Some(t) = self.mru_syn {
                    m.syn_to_synack_ns.get_or_insert(s.ts.0.saturating_sub(t.0));
                }
            } else {
                self.mru_syn = Some(s.ts);
            }
        }
        if !syn
            && ack_flag
            && m.initial_rtt_ns.is_none()
            && let Some(t) = self.mru_syn
        {
            m.initial_rtt_ns = Some(s.ts.0.saturating_sub(t.0));
            if self.synack_seen {
                m.established_ts = Some(s.ts);
            }
        }
        let ws = self.dirs[d].win_scale;
        if !syn && ws != -1 {
            let shift = if ws == -2 { 0 } else { ws as u32 };
            m.window_sum[d] += u64::from(s.window) << shift;
            m.window_samples[d] += 1;
        }

        // Relative numbers, as Wireshark makes them.
        if !self.dirs[d].base_set {
            self.dirs[d].base_seq = if syn { s.seq } else { s.seq.wrapping_sub(1) };
            self.dirs[d].base_set = true;
        }
        if !self.dirs[r].base_set && ack_flag {
            self.dirs[r].base_seq = s.ack.wrapping_sub(1);
            self.dirs[r].base_set = true;
        }
        let seq = s.seq.wrapping_sub(self.dirs[d].base_seq);
        let ack = if ack_flag {
            s.ack.wrapping_sub(self.dirs[r].base_seq)
        } else {
            s.ack
        };
        let flags = self.classify(s, seq, ack);

        if flags == 0 {
            // Most segments: nothing to count.
            return flags;
        }
        let m = &mut self.metrics;
        use self::flags as F;
        if flags & (F::RETRANSMISSION | F::FAST_RETRANSMISSION | F::SPURIOUS_RETRANSMISSION) != 0 {
            m.retransmissions += 1;
            m.retransmitted_bytes[d] += u64::from(s.seglen);
        }
        m.fast_retransmissions += u64::from(flags & F::FAST_RETRANSMISSION != 0);
        m.spurious_retransmissions += u64::from(flags & F::SPURIOUS_RETRANSMISSION != 0);
        m.out_of_order += u64::from(flags & F::OUT_OF_ORDER != 0);
        m.zero_window_events += u64::from(flags & F::ZERO_WINDOW != 0);
        m.zero_window_probes += u64::from(flags & F::ZERO_WINDOW_PROBE != 0);
        m.window_full_events += u64::from(flags & F::WINDOW_FULL != 0);
        m.dup_acks += u64::from(flags & F::DUP_ACK != 0);
        m.missing_segments += u64::from(flags & F::LOST_SEGMENT != 0);
        m.acked_unseen += u64::from(flags & F::ACKED_UNSEEN != 0);
        m.keepalive_count += u64::from(flags & F::KEEP_ALIVE != 0);
        m.window_updates += u64::from(flags & F::WINDOW_UPDATE != 0);
        flags
    }

    fn classify(&mut self, s: &Segment, seq: u32, ack: u32) -> u32 {
        use self::flags as F;
        let (d, r) = (s.dir, 1 - s.dir);
        let f = s.flags;
        let (syn, fin, rst, ack_flag) = (f.syn(), f.fin(), f.rst(), f.ack());
        let sfr = syn || fin || rst;
        let seglen = s.seglen;
        let window = s.window;
        let mut fl = 0u32;

        'fwd: {
            let fwd = &self.dirs[d];
            let rev = &self.dirs[r];
            if seglen == 1 && seq == fwd.nextseq && rev.window == Some(0) {
                fl |= F::ZERO_WINDOW_PROBE;
                break 'fwd;
            }
            if window == 0 && !sfr {
                fl |= F::ZERO_WINDOW;
            }
            if fwd.nextseq != 0 && gt(seq, fwd.nextseq) && !rst {
                fl |= F::LOST_SEGMENT;
            }
            if seglen <= 1 && seq == fwd.nextseq.wrapping_sub(1) && !sfr {
                fl |= F::KEEP_ALIVE;
            }
            let same = seglen == 0 && seq == fwd.nextseq && ack == fwd.lastack && !sfr;
            if same && window != 0 && Some(window) != fwd.window {
                fl |= F::WINDOW_UPDATE;
            }
            if seglen > 0
                && rev.win_scale != -1
                && !sfr
                && let Some(rw) = rev.window
            {
                let shift = if rev.win_scale == -2 { 0 } else { rev.win_scale as u32 };
                let edge = rev.lastack.wrapping_add(u32::from(rw) << shift);
                if seq.wrapping_add(seglen) == edge {
                    fl |= F::WINDOW_FULL;
                }
            }
            if same && window != 0 && Some(window) == fwd.window && rev.lastsegmentflags & F::KEEP_ALIVE != 0 {
                fl |= F::KEEP_ALIVE_ACK;
                break 'fwd;
            }
            if same && window == 0 && Some(window) == fwd.window && rev.lastsegmentflags & F::ZERO_WINDOW_PROBE != 0 {
                fl |= F::ZERO_WINDOW_PROBE_ACK;
                break 'fwd;
            }
            if same && window != 0 && Some(window) == fwd.window {
                self.dirs[d].dupacknum += 1;
                fl |= F::DUP_ACK;
            }
        }
        if ack != self.dirs[d].lastack {
            self.dirs[d].dupacknum = 0;
        }
        {
            let rev = &mut self.dirs[r];
            if rev.maxseqtobeacked != 0 && gt(ack, rev.maxseqtobeacked) && ack_flag {
                fl |= F::ACKED_UNSEEN;
                rev.maxseqtobeacked = rev.nextseq;
            }
        }

        if seglen > 0 || syn || fin {
            let fwd = &self.dirs[d];
            let rev = &self.dirs[r];
            let mut not_advanced = fwd.nextseq != 0 && lt(seq, fwd.nextseq);
            'kind: {
                if fl & F::KEEP_ALIVE != 0 {
                    break 'kind;
                }
                // One byte less than nextseq with more than one byte: new data after a
                // zero-window probe, not a retransmission.
                if seglen > 1 && fwd.nextseq.wrapping_sub(1) == seq {
                    not_advanced = false;
                }
                let since_ack = s.ts.0.saturating_sub(rev.lastack_ts.0);
                if not_advanced && rev.dupacknum >= 2 && rev.lastack == seq && since_ack < FAST_RETRANSMISSION_WINDOW_NS
                {
                    fl |= F::FAST_RETRANSMISSION;
                    break 'kind;
                }
                let since_next = s.ts.0.saturating_sub(fwd.nextseq_ts.0);
                let threshold = self
                    .metrics
                    .initial_rtt_ns
                    .filter(|n| *n > 0)
                    .unwrap_or(DEFAULT_OOO_THRESHOLD_NS);
                let occupies = seglen + u32::from(syn || fin);
                if not_advanced && since_next < threshold && fwd.nextseq != seq.wrapping_add(occupies) {
                    fl |= F::OUT_OF_ORDER;
                    break 'kind;
                }
                if seglen > 0 && rev.lastack != 0 && le(seq.wrapping_add(seglen), rev.lastack) {
                    fl |= F::SPURIOUS_RETRANSMISSION;
                    break 'kind;
                }
                if not_advanced {
                    fl |= F::RETRANSMISSION;
                }
            }
        }

        let mut nextseq = seq.wrapping_add(seglen);
        if syn || fin {
            nextseq = nextseq.wrapping_add(1);
        }
        {
            let fwd = &mut self.dirs[d];
            if (seglen > 0 || syn || fin) && fwd.unacked.len() < MAX_UNACKED_SEGMENTS {
                fwd.unacked.push_back(Unacked { seq, nextseq, ts: s.ts });
            }
            if (gt(nextseq, fwd.nextseq) || fwd.nextseq == 0) && fl & F::ZERO_WINDOW_PROBE == 0 {
                fwd.nextseq = nextseq;
                fwd.nextseq_ts = s.ts;
            }
            if (seq == fwd.maxseqtobeacked || fwd.maxseqtobeacked == 0) && fl & F::ZERO_WINDOW_PROBE == 0 {
                fwd.maxseqtobeacked = fwd.nextseq;
            }
            fwd.window = Some(window);
            fwd.lastack = ack;
            fwd.lastack_ts = s.ts;
            fwd.lastsegmentflags = fl;
        }
        // Segments of the other direction that this packet acknowledges: RTT samples.
        if ack_flag && !self.dirs[r].unacked.is_empty() {
            let mut sample = None;
            let rev = &mut self.dirs[r];
            rev.unacked.retain_mut(|u| {
                if ack == u.nextseq {
                    sample = Some(s.ts.0.saturating_sub(u.ts.0));
                    false
                } else if gt(ack, u.seq) && le(ack, u.nextseq) {
                    u.seq = ack;
                    true
                } else {
                    !gt(ack, u.nextseq)
                }
            });
            if let Some(ns) = sample {
                self.metrics.rtt_sample(ns);
            }
        }
        fl
    }
}

#[cfg(test)]
mod tests {
    use super::flags as F;
    use super::*;

    struct Conn {
        a: TcpAnalysis,
        t: u64,
    }

    impl Conn {
        fn new() -> Self {
            Conn {
                a: TcpAnalysis::default(),
                t: 0,
            }
        }
        #[allow(clippy::too_many_arguments)]
        fn pkt(&mut self, dir: usize, seq: u32, ack: u32, fl: u8, win: u16, len: u32, dt_us: u64) -> u32 {
            self.t += dt_us * 1000;
            self.a.packet(&Segment {
                ts: Timestamp(self.t),
                dir,
                seq,
                ack,
                flags: TcpFlags(fl),
                window: win,
                seglen: len,
                window_scale: if fl & TcpFlags::SYN != 0 { Some(0) } else { None },
                frame_len: 54 + len,
            })
        }
        fn handshake(&mut self) {
            self.pkt(0, 100, 0, TcpFlags::SYN, 1000, 0, 0);
            self.pkt(1, 500, 101, TcpFlags::SYN | TcpFlags::ACK, 1000, 0, 1000);
            self.pkt(0, 101, 501, TcpFlags::ACK, 1000, 0, 1000);
        }
    }
    const A: u8 = TcpFlags::ACK;
    const PA: u8 = TcpFlags::ACK | TcpFlags::PSH;

    #[test]
    fn clean_connection_has_no_flags() {
        let mut c = Conn::new();
        c.handshake();
        assert_eq!(c.pkt(0, 101, 501, PA, 1000, 100, 10), 0);
        assert_eq!(c.pkt(1, 501, 201, PA, 1000, 50, 500), 0);
        assert_eq!(c.pkt(0, 201, 551, A, 1000, 0, 500), 0);
        let m = c.a.metrics;
        assert_eq!(m.completeness, 1 | 2 | 4 | 8);
        assert_eq!(m.initial_rtt_ns, Some(2_000_000));
        assert_eq!(m.rtt_samples, 4, "SYN-ACK, handshake ACK, and one ACK per data segment");
        assert_eq!(m.goodput_bytes(), 150);
    }

    #[test]
    fn retransmission_and_spurious() {
        let mut c = Conn::new();
        c.handshake();
        c.pkt(0, 101, 501, PA, 1000, 100, 10);
        // Same data again, long after: a retransmission.
        assert_eq!(c.pkt(0, 101, 501, PA, 1000, 100, 300_000), F::RETRANSMISSION);
        c.pkt(1, 501, 201, A, 1000, 0, 100);
        // Data already acknowledged: spurious.
        assert_eq!(c.pkt(0, 101, 501, PA, 1000, 100, 300_000), F::SPURIOUS_RETRANSMISSION);
        assert_eq!(c.a.metrics.retransmissions, 2);
        assert_eq!(c.a.metrics.spurious_retransmissions, 1);
        assert_eq!(c.a.metrics.goodput_bytes(), 100);
    }

    #[test]
    fn dup_acks_then_fast_retransmission() {
        let mut c = Conn::new();
        c.handshake();
        c.pkt(0, 101, 501, PA, 1000, 100, 10);
        c.pkt(0, 301, 501, PA, 1000, 100, 10); // 201..301 lost
        assert_eq!(c.a.metrics.missing_segments, 1);
        c.pkt(1, 501, 201, A, 1000, 0, 100);
        assert_eq!(c.pkt(1, 501, 201, A, 1000, 0, 100), F::DUP_ACK);
        assert_eq!(c.pkt(1, 501, 201, A, 1000, 0, 100), F::DUP_ACK);
        assert_eq!(c.pkt(0, 201, 501, PA, 1000, 100, 100), F::FAST_RETRANSMISSION);
        assert_eq!(c.a.metrics.dup_acks, 2);
        assert_eq!(c.a.metrics.retransmissions, 1);
    }

    #[test]
    fn out_of_order_within_rtt() {
        let mut c = Conn::new();
        c.handshake();
        c.pkt(0, 201, 501, PA, 1000, 100, 10);
        assert_eq!(c.pkt(0, 101, 501, PA, 1000, 100, 10), F::OUT_OF_ORDER);
    }

    #[test]
    fn zero_window_probe_and_keepalive() {
        let mut c = Conn::new();
        c.handshake();
        c.pkt(0, 101, 501, PA, 1000, 100, 10);
        assert_eq!(c.pkt(1, 501, 201, A, 0, 0, 10), F::ZERO_WINDOW);
        assert_eq!(c.pkt(0, 201, 501, PA, 1000, 1, 10), F::ZERO_WINDOW_PROBE);
        assert_eq!(
            c.pkt(1, 501, 201, A, 0, 0, 10) & F::ZERO_WINDOW_PROBE_ACK,
            F::ZERO_WINDOW_PROBE_ACK
        );
        let mut k = Conn::new();
        k.handshake();
        assert_eq!(k.pkt(0, 100, 501, A, 1000, 0, 10), F::KEEP_ALIVE);
        assert_eq!(k.pkt(1, 501, 101, A, 1000, 0, 10), F::KEEP_ALIVE_ACK);
        assert_eq!(k.a.metrics.keepalive_count, 1);
    }

    #[test]
    fn window_full_and_acked_unseen() {
        let mut c = Conn::new();
        c.handshake();
        c.pkt(1, 501, 101, A, 200, 0, 10);
        assert_eq!(c.pkt(0, 101, 501, PA, 1000, 200, 10), F::WINDOW_FULL);
        // The server acknowledges bytes the capture never saw.
        assert_eq!(c.pkt(1, 501, 901, A, 1000, 0, 10) & F::ACKED_UNSEEN, F::ACKED_UNSEEN);
    }

    #[test]
    fn completeness_rules() {
        // Refused: SYN, RST+ACK.
        let mut c = Conn::new();
        c.pkt(0, 1, 0, TcpFlags::SYN, 1000, 0, 0);
        c.pkt(1, 0, 2, TcpFlags::RST | A, 0, 0, 80);
        assert_eq!(c.a.metrics.completeness, 1 | 4 | 32);
        assert_eq!(c.a.metrics.initial_rtt_ns, Some(80_000));
        // Mid-stream: the first data packet does not count.
        let mut m = Conn::new();
        m.pkt(0, 1000, 50, PA, 1000, 10, 0);
        assert_eq!(m.a.metrics.completeness, 0);
        m.pkt(1, 50, 1010, PA, 1000, 10, 10);
        assert_eq!(m.a.metrics.completeness, 8);
    }

    /// Fuzz regression (pcap_file): a timestamp near u64::MAX ns makes a huge RTT sample; the
    /// sums overflowed (a panic with overflow checks).
    #[test]
    fn rtt_sums_saturate() {
        let mut m = TcpMetrics::default();
        for ns in [u64::MAX - 5, 0, u64::MAX, 7] {
            m.rtt_sample(ns);
        }
        assert_eq!(
            (m.rtt_samples, m.rtt_sum_ns, m.rtt_jitter_sum_ns),
            (4, u64::MAX, u64::MAX)
        );
        assert_eq!((m.rtt_min_ns, m.rtt_max_ns), (Some(0), Some(u64::MAX)));
        let copy = m;
        m.merge(&copy);
        assert_eq!((m.rtt_sum_ns, m.rtt_jitter_sum_ns), (u64::MAX, u64::MAX));
    }
}
