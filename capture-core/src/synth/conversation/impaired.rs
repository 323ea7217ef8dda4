//! Writes that meet a lossy network or a slow reader, simulated event by event.
//!
//! The capture point sits between the hosts, as for clean writes: a packet captured at `t` is
//! answered at `t + rtt / 2`. Lost segments are lost *after* the capture point, so the capture
//! shows the original and, later, the retransmission.
//!
//! - **Loss.** The receiver acknowledges every second in-order segment and the last one of the
//!   write (a lone segment after 40 ms, the delayed-ACK timeout), and answers every out-of-order
//!   segment at once with a duplicate ACK. The sender is classic Reno without SACK (the SYNs
//!   offer none): the third duplicate ACK triggers a fast retransmission of the first hole of
//!   the write; any other hole waits for the retransmission timeout (200 ms plus the RTT,
//!   Linux's minimum), re-armed by every ACK that acknowledges new data.
//! - **Slow reader.** The receiver advertises the free part of its buffer. When the sender has
//!   filled it (Wireshark: window full) the receiver says so with a zero window; the sender
//!   probes it with one byte of new data after the timeout, doubling the interval after every
//!   zero-window answer; when the application reads, the receiver sends a window update.
//!
//! Segments are never larger than the space left in the receiver's window, so the segment that
//! reaches the window's edge is short. For exact windows the buffer, the reads and the MSS
//! should be multiples of 128 bytes (the window scale is 7).

use super::{ACK, Conversation, PSH, Role, WINDOW_SCALE};
use crate::time::Timestamp;
use std::collections::{BTreeMap, VecDeque};

/// Linux's minimum retransmission timeout; a conversation's timeout is this plus its RTT, and
/// zero-window probes start after the same time.
pub const RTO_MIN_NS: u64 = 200_000_000;
/// Duplicate ACKs that make a Reno sender retransmit.
const DUP_ACK_THRESHOLD: u32 = 3;
/// A lone in-order segment is acknowledged after this long (Linux's minimum delayed ACK).
const DELAYED_ACK_NS: u64 = 40_000_000;
/// The application never reads while a zero-window probe is on its way (so that every probe is
/// answered by a zero window); reads that would are postponed by this much past its answer.
const READ_AFTER_PROBE_NS: u64 = 1_000_000;

/// What happens to one write: segments lost after the capture point, and how fast the
/// receiving application reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Impairments {
    /// Indices, in sending order from 0, of the write's segments that are lost after the capture
    /// point. Each is retransmitted once (retransmissions are never lost): fast when it is the
    /// write's first hole and three duplicate ACKs come back, else after the timeout.
    pub lost: Vec<usize>,
    /// The receiving application reads slowly; `None` reads everything as it arrives.
    pub slow_reader: Option<SlowReader>,
}

/// A receiving application that reads in bursts with pauses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowReader {
    /// Receive buffer in bytes; the advertised window is its free part. It should be the window
    /// the receiver advertised last ([`super::CLIENT_RECEIVE_WINDOW`] for a client).
    pub buffer: u32,
    /// The reads: wait this many nanoseconds after the previous read (the first: after the
    /// first segment arrives), then read up to this many bytes. Once the list is exhausted the
    /// application reads everything as it arrives.
    pub reads: Vec<(u64, u32)>,
}

#[derive(Debug, Clone, Copy)]
enum Event {
    /// The sender may transmit.
    Wake,
    /// A segment reaches the receiver (the time is when its answer is captured).
    Arrive {
        off: u32,
        len: u32,
        probe: bool,
    },
    /// An ACK reaches the sender (the time is when the sender's reaction is captured).
    Ack {
        ack: u32,
        window: u16,
    },
    Rto,
    Persist,
    Read,
    /// The receiver's delayed-ACK timer, for the ACK of that number.
    DelayedAck {
        acks_sent: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Hole {
    len: u32,
    /// Queued for (or done) retransmission.
    retransmitted: bool,
}

/// The state of one impaired write. Offsets are bytes from the start of the write.
struct Sim<'a> {
    role: Role,
    peer: Role,
    data: &'a [u8],
    len: u32,
    seq0: u32,
    mss: u32,
    half_rtt: u64,
    rto: u64,
    lost: Vec<usize>,
    queue: BTreeMap<(u64, u64), Event>,
    queued: u64,
    // Sender.
    nxt: u32,
    una: u32,
    edge: u32,
    tx_free: u64,
    wake_pending: bool,
    originals: usize,
    holes: BTreeMap<u32, Hole>,
    retransmit: VecDeque<(u32, bool)>,
    dupacks: u32,
    fast_used: bool,
    last_window_seen: u16,
    rto_at: Option<u64>,
    persist_at: Option<u64>,
    persist_backoff: u32,
    /// Capture time of the latest zero-window probe and of its answer.
    probe_inflight: Option<(u64, u64)>,
    first_sent: Option<u64>,
    // Receiver.
    rcv_nxt: u32,
    out_of_order: BTreeMap<u32, u32>,
    pending: u32,
    acks_sent: u64,
    reader: Option<(u32, VecDeque<(u64, u32)>)>,
    read: u32,
    read_started: bool,
    app_done: Option<u64>,
}

impl Conversation {
    /// Like [`Conversation::client_send_at`], through the impairments `imp`.
    pub fn client_send_impaired(&mut self, data: &[u8], at: Timestamp, imp: &Impairments) -> &mut Self {
        self.send_impaired(Role::Client, data, at, imp)
    }

    /// Like [`Conversation::server_send_at`], through the impairments `imp`.
    pub fn server_send_impaired(&mut self, data: &[u8], at: Timestamp, imp: &Impairments) -> &mut Self {
        self.send_impaired(Role::Server, data, at, imp)
    }

    fn send_impaired(&mut self, role: Role, data: &[u8], at: Timestamp, imp: &Impairments) -> &mut Self {
        if data.is_empty() {
            return self;
        }
        let peer = role.peer();
        let start = at.max(self.earliest(role));
        let seq0 = self.sides[role as usize].next_seq;
        let len = u32::try_from(data.len()).expect("a write under 4 GiB");
        // The window the receiver advertised last, relative to this write.
        let receiver = &self.sides[peer as usize];
        let (edge, last_window) = match receiver.last_adv {
            Some((ack, window)) => {
                let acked = ack.wrapping_sub(seq0);
                let acked = if (acked as i32) < 0 { 0 } else { acked };
                (acked.saturating_add(u32::from(window) << WINDOW_SCALE), window)
            }
            None => (
                u32::try_from(receiver.receive_window()).unwrap_or(u32::MAX),
                receiver.window,
            ),
        };
        let reader = imp
            .slow_reader
            .as_ref()
            .map(|r| (r.buffer, r.reads.iter().copied().collect::<VecDeque<_>>()));
        let mut sim = Sim {
            role,
            peer,
            data,
            len,
            seq0,
            mss: self.mss as u32,
            half_rtt: self.half_rtt_ns,
            rto: RTO_MIN_NS + self.rtt_us * 1_000,
            lost: imp.lost.clone(),
            queue: BTreeMap::new(),
            queued: 0,
            nxt: 0,
            una: 0,
            edge,
            tx_free: start.0,
            wake_pending: false,
            originals: 0,
            holes: BTreeMap::new(),
            retransmit: VecDeque::new(),
            dupacks: 0,
            fast_used: false,
            last_window_seen: last_window,
            rto_at: None,
            persist_at: None,
            persist_backoff: 0,
            probe_inflight: None,
            first_sent: None,
            rcv_nxt: 0,
            out_of_order: BTreeMap::new(),
            pending: 0,
            acks_sent: 0,
            reader,
            read: 0,
            read_started: false,
            app_done: None,
        };
        sim.wake(start.0);
        while let Some(((t, _), ev)) = sim.queue.pop_first() {
            sim.handle(self, t, ev);
        }
        self.sides[role as usize].next_seq = seq0.wrapping_add(len);
        if let Some(t) = sim.first_sent {
            self.last_send_start = Some(Timestamp(t));
        }
        if let Some(t) = sim.app_done {
            let side = &mut self.sides[peer as usize];
            side.app_ready = Some(side.app_ready.map_or(Timestamp(t), |a| a.max(Timestamp(t))));
        }
        self
    }
}

impl Sim<'_> {
    fn push(&mut self, t: u64, ev: Event) {
        self.queued += 1;
        self.queue.insert((t, self.queued), ev);
    }

    /// Asks the sender to transmit when its link is free.
    fn wake(&mut self, now: u64) {
        if !self.wake_pending {
            self.wake_pending = true;
            self.push(now.max(self.tx_free), Event::Wake);
        }
    }

    fn handle(&mut self, c: &mut Conversation, t: u64, ev: Event) {
        match ev {
            Event::Wake => {
                self.wake_pending = false;
                self.transmit(c, t);
            }
            Event::Arrive { off, len, probe } => self.arrive(c, t, off, len, probe),
            Event::Ack { ack, window } => self.on_ack(t, ack, window),
            Event::Rto => {
                if self.rto_at == Some(t) {
                    self.rto_at = None;
                    if let Some((&off, hole)) = self.holes.iter_mut().find(|(_, h)| !h.retransmitted) {
                        hole.retransmitted = true;
                        self.retransmit.push_back((off, false));
                        self.wake(t);
                    }
                }
            }
            Event::Persist => {
                if self.persist_at == Some(t) {
                    self.persist_at = None;
                    if self.nxt < self.len && self.edge <= self.nxt && self.una == self.nxt {
                        self.probe(c, t);
                    }
                }
            }
            Event::Read => self.app_read(c, t),
            Event::DelayedAck { acks_sent } => {
                if acks_sent == self.acks_sent && self.pending > 0 {
                    self.send_ack(c, t);
                }
            }
        }
    }

    /// Sends one segment (a retransmission first), and asks for the next turn if there is more.
    fn transmit(&mut self, c: &mut Conversation, t: u64) {
        if let Some((off, fast)) = self.retransmit.pop_front() {
            let hole = self.holes[&off];
            let frame = self.segment(c, t, off, hole.len, false);
            c.events.retransmissions += 1;
            c.events.fast_retransmissions += u64::from(fast);
            self.push(
                t + self.half_rtt,
                Event::Arrive {
                    off,
                    len: hole.len,
                    probe: false,
                },
            );
            self.tx_free = t + frame;
        } else if self.nxt < self.len && self.edge > self.nxt {
            let len = self.mss.min(self.len - self.nxt).min(self.edge - self.nxt);
            let off = self.nxt;
            let frame = self.segment(c, t, off, len, false);
            self.first_sent.get_or_insert(t);
            self.nxt += len;
            let index = self.originals;
            self.originals += 1;
            if self.lost.contains(&index) {
                self.holes.insert(
                    off,
                    Hole {
                        len,
                        retransmitted: false,
                    },
                );
                if self.rto_at.is_none() {
                    self.arm_rto(t);
                }
            } else {
                self.push(t + self.half_rtt, Event::Arrive { off, len, probe: false });
            }
            self.tx_free = t + frame;
        } else {
            return;
        }
        if !self.retransmit.is_empty() || (self.nxt < self.len && self.edge > self.nxt) {
            self.wake(self.tx_free);
        }
    }

    fn arm_rto(&mut self, now: u64) {
        let at = now + self.rto;
        self.rto_at = Some(at);
        self.push(at, Event::Rto);
    }

    /// Emits the segment `off..off + len` of the write; returns its transmission time in ns.
    fn segment(&mut self, c: &mut Conversation, t: u64, off: u32, len: u32, probe: bool) -> u64 {
        let end = off + len;
        let flags = if end == self.len && !probe { ACK | PSH } else { ACK };
        let seq = self.seq0.wrapping_add(off);
        // Wireshark's window-full test: the segment ends at the edge the receiver advertised last.
        if !probe && let Some((ack, window)) = c.sides[self.peer as usize].last_adv {
            let edge = ack.wrapping_add(u32::from(window) << WINDOW_SCALE);
            if seq.wrapping_add(len) == edge {
                c.events.window_full += 1;
            }
        }
        let ack = c.next_ack(self.role);
        let window = c.sides[self.role as usize].window;
        let payload = &self.data[off as usize..end as usize];
        let frame = c.emit_raw(self.role, Timestamp(t), flags, seq, ack, window, payload);
        frame as u64 * 8
    }

    /// A one-byte zero-window probe carrying the next new byte.
    fn probe(&mut self, c: &mut Conversation, now: u64) {
        let t = now.max(self.tx_free);
        let frame = self.segment(c, t, self.nxt, 1, true);
        c.events.zero_window_probes += 1;
        self.tx_free = t + frame;
        self.persist_backoff += 1;
        self.probe_inflight = Some((t, t + self.half_rtt));
        self.push(
            t + self.half_rtt,
            Event::Arrive {
                off: self.nxt,
                len: 1,
                probe: true,
            },
        );
    }

    fn on_ack(&mut self, t: u64, ack: u32, window: u16) {
        let window_changed = window != self.last_window_seen;
        self.last_window_seen = window;
        if ack > self.una {
            self.una = ack;
            self.nxt = self.nxt.max(ack);
            self.dupacks = 0;
            self.holes.retain(|off, _| *off >= ack);
            self.rto_at = None;
            if self.holes.values().any(|h| !h.retransmitted) {
                self.arm_rto(t);
            }
        } else if ack == self.una && self.nxt > self.una && !window_changed {
            self.dupacks += 1;
            if self.dupacks == DUP_ACK_THRESHOLD
                && !self.fast_used
                && let Some(hole) = self.holes.get_mut(&ack).filter(|h| !h.retransmitted)
            {
                hole.retransmitted = true;
                self.fast_used = true;
                self.retransmit.push_back((ack, true));
            }
        }
        self.edge = ack.saturating_add(u32::from(window) << WINDOW_SCALE);
        let zero = self.nxt < self.len && self.edge <= self.nxt;
        if !zero {
            self.persist_at = None;
            self.persist_backoff = 0;
        } else if self.una == self.nxt && self.persist_at.is_none() {
            // The persist timer, doubled after every probe that found the window still closed.
            let at = t + (self.rto << self.persist_backoff.min(10));
            self.persist_at = Some(at);
            self.push(at, Event::Persist);
        }
        self.wake(t);
    }

    /// The window the receiver advertises now (raw, unscaled): the free part of a slow
    /// reader's buffer, or the receiver's usual window.
    fn window(&self, c: &Conversation) -> u16 {
        match &self.reader {
            Some((buffer, _)) => {
                let free = buffer.saturating_sub(self.rcv_nxt - self.read);
                (free >> WINDOW_SCALE).min(u32::from(u16::MAX)) as u16
            }
            None => c.sides[self.peer as usize].window,
        }
    }

    /// The slow reader has run out of scheduled reads and now reads everything at once.
    fn reads_everything(&self) -> bool {
        self.read_started && self.reader.as_ref().is_some_and(|(_, reads)| reads.is_empty())
    }

    /// The receiver acknowledges what it has, with its current window.
    fn send_ack(&mut self, c: &mut Conversation, t: u64) -> u16 {
        let window = self.window(c);
        let seq = c.sides[self.peer as usize].next_seq;
        let ack = self.seq0.wrapping_add(self.rcv_nxt);
        c.emit_raw(self.peer, Timestamp(t), ACK, seq, ack, window, &[]);
        self.pending = 0;
        self.acks_sent += 1;
        self.push(
            t + self.half_rtt,
            Event::Ack {
                ack: self.rcv_nxt,
                window,
            },
        );
        window
    }

    fn arrive(&mut self, c: &mut Conversation, t: u64, off: u32, len: u32, probe: bool) {
        if probe && self.window(c) == 0 {
            self.send_ack(c, t);
            c.events.zero_window_probe_acks += 1;
            return;
        }
        if !self.read_started {
            self.read_started = true;
            self.schedule_read(t);
        }
        let end = off + len;
        if off > self.rcv_nxt {
            self.out_of_order.insert(off, end);
            self.send_ack(c, t);
            return;
        }
        if end <= self.rcv_nxt {
            self.send_ack(c, t);
            return;
        }
        let filled_hole = !self.out_of_order.is_empty();
        self.rcv_nxt = end;
        while let Some((&o, &e)) = self.out_of_order.first_key_value() {
            if o > self.rcv_nxt {
                break;
            }
            self.rcv_nxt = self.rcv_nxt.max(e);
            self.out_of_order.pop_first();
        }
        if self.reads_everything() {
            self.read = self.rcv_nxt;
            self.finish_reading(t);
        }
        if !self.out_of_order.is_empty() || filled_hole {
            self.send_ack(c, t);
            return;
        }
        self.pending += 1;
        if self.pending >= 2 || end == self.len || self.window(c) == 0 {
            self.send_ack(c, t);
        } else {
            self.push(
                t + DELAYED_ACK_NS,
                Event::DelayedAck {
                    acks_sent: self.acks_sent,
                },
            );
        }
    }

    fn schedule_read(&mut self, now: u64) {
        if let Some((_, reads)) = &self.reader {
            if let Some(&(pause, _)) = reads.front() {
                self.push(now + pause, Event::Read);
            } else {
                self.read = self.rcv_nxt;
                self.finish_reading(now);
            }
        }
    }

    fn finish_reading(&mut self, t: u64) {
        if self.read == self.len && self.app_done.is_none() {
            self.app_done = Some(t);
        }
    }

    /// The application reads: the window opens; if it was closed, the receiver says so.
    fn app_read(&mut self, c: &mut Conversation, t: u64) {
        // Never while a probe is on its way or about to leave: it must meet a closed window.
        let probe_near = self
            .probe_inflight
            .filter(|(sent, answered)| t + self.half_rtt >= *sent && t <= *answered)
            .or(self
                .persist_at
                .filter(|at| t + self.half_rtt >= *at)
                .map(|at| (at, at + self.half_rtt)));
        if let Some((_, answered)) = probe_near {
            self.push(answered.max(t) + READ_AFTER_PROBE_NS, Event::Read);
            return;
        }
        let Some((_, reads)) = self.reader.as_mut() else {
            return;
        };
        let Some((_, chunk)) = reads.pop_front() else {
            return;
        };
        let closed = c.sides[self.peer as usize].last_adv.is_some_and(|(_, w)| w == 0);
        self.read += chunk.min(self.rcv_nxt - self.read);
        if reads.is_empty() {
            self.read = self.rcv_nxt;
        }
        if closed && self.window(c) > 0 {
            self.send_ack(c, t);
        }
        self.finish_reading(t);
        if self.read < self.len {
            self.schedule_read(t);
        }
    }
}
