//! A stateful TCP conversation builder: handshake, data in both directions, FIN or RST teardown,
//! and on request the pathologies Wireshark's TCP analysis knows (see [`impaired`]).
//!
//! By default it produces what Wireshark would call a clean connection: correct sequence and
//! acknowledgement numbers, one pure ACK from the receiver for every two data segments (and for
//! the last segment of each write), PSH on the last segment of each write, incrementing IPv4 ids,
//! no retransmissions, no duplicate ACKs, and never more unacknowledged data than the receiver's
//! window.
//!
//! # Timing model
//! The capture point sits between the two hosts: a packet that calls for an answer (data, SYN,
//! FIN) is answered `rtt / 2` after it was seen. So an endpoint may send at the earliest
//! `rtt / 2` after the last such packet of its peer, and never before its own previous packet.
//! Segments of one write leave back to back at 1 Gbit/s. The `delay` or `at` argument of each
//! send adds application think time on top of that.
//!
//! # Pathologies
//! [`Conversation::refused`] builds a connection attempt answered by a reset;
//! [`Conversation::client_send_impaired`] and [`Conversation::server_send_impaired`] write data
//! that is partly lost after the capture point (retransmissions, duplicate ACKs, fast
//! retransmissions) or read by a slow application (zero windows, zero-window probes, window
//! updates). [`Conversation::events`] counts what was emitted, as Wireshark flags it.

mod impaired;

pub use impaired::{Impairments, RTO_MIN_NS, SlowReader};

use crate::source::LinkType;
use crate::synth::packet::{self, ACK, FIN, PSH, RST, SYN, TcpSpec};
use crate::time::Timestamp;
use std::net::SocketAddr;

/// Link type of every [`SynthPacket`]: Ethernet II.
pub const LINK: LinkType = LinkType::ETHERNET;
/// Default segment payload size: 1460 minus 12 bytes of TCP timestamps, as on most Linux hosts.
pub const DEFAULT_MSS: usize = 1448;
/// Window-scale shift advertised by both ends.
pub const WINDOW_SCALE: u8 = 7;
const CLIENT_SYN_WINDOW: u16 = 64_240;
const SERVER_SYN_WINDOW: u16 = 65_160;
const CLIENT_WINDOW: u16 = 502;
/// The client's receive window in bytes after the handshake (what a [`SlowReader`] on the client
/// side should use as its buffer).
pub const CLIENT_RECEIVE_WINDOW: u32 = (CLIENT_WINDOW as u32) << WINDOW_SCALE;
const SERVER_WINDOW: u16 = 509;

/// One synthesised frame and its capture time. The link type is always [`LINK`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthPacket {
    pub ts: Timestamp,
    pub data: Vec<u8>,
}

/// One endpoint's sending state.
#[derive(Debug, Clone)]
struct Side {
    addr: SocketAddr,
    next_seq: u32,
    ip_id: u16,
    /// Raw window field after the handshake.
    window: u16,
    /// Time of this side's latest packet.
    last_sent: Timestamp,
    /// Time of this side's latest packet that calls for an answer (data, SYN or FIN).
    last_trigger: Option<Timestamp>,
    /// Acknowledgement number and raw window of this side's latest packet.
    last_adv: Option<(u32, u16)>,
    /// The application has consumed what it received by then (a slow reader), so it cannot
    /// send before.
    app_ready: Option<Timestamp>,
}

impl Side {
    fn new(addr: SocketAddr, isn: u32, window: u16, start: Timestamp) -> Self {
        Side {
            addr,
            next_seq: isn,
            ip_id: (isn >> 16) as u16 ^ isn as u16,
            window,
            last_sent: start,
            last_trigger: None,
            last_adv: None,
            app_ready: None,
        }
    }

    /// Bytes this side is prepared to receive.
    fn receive_window(&self) -> u64 {
        u64::from(self.window) << WINDOW_SCALE
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Client = 0,
    Server = 1,
}

impl Role {
    fn peer(self) -> Role {
        match self {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        }
    }
}

/// What a conversation put on the wire that Wireshark's `tcp.analysis` flags, counted by the
/// builder as it emitted it (both directions together).
///
/// Duplicate ACKs, window updates and zero windows are counted for every packet with Wireshark's
/// definitions (a pure ACK repeating its side's previous acknowledgement number with the same
/// non-zero window; the same with a different non-zero window; a window of 0 without SYN, FIN or
/// RST). Retransmissions, zero-window probes and full windows come from the impaired writes,
/// the only ones that produce them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpEvents {
    /// Packets with payload, retransmissions and zero-window probes included.
    pub data_segments: u64,
    /// Every retransmission, fast ones included (Wireshark's and `TcpMetrics`' convention).
    pub retransmissions: u64,
    /// Retransmissions sent on the third duplicate ACK.
    pub fast_retransmissions: u64,
    pub dup_acks: u64,
    /// Packets advertising a zero window (the answers to zero-window probes included).
    pub zero_windows: u64,
    pub zero_window_probes: u64,
    /// Zero-window answers to a zero-window probe.
    pub zero_window_probe_acks: u64,
    pub window_updates: u64,
    /// Data segments that filled the receiver's advertised window exactly.
    pub window_full: u64,
    /// The SYN was answered by a reset.
    pub refused: bool,
}

impl TcpEvents {
    /// Retransmissions over data segments, as `TcpMetrics::retransmission_rate` computes it.
    pub fn retransmission_rate(&self) -> f64 {
        if self.data_segments == 0 {
            0.0
        } else {
            self.retransmissions as f64 / self.data_segments as f64
        }
    }
}

/// A TCP connection under construction. Methods append packets and return `&mut Self` for
/// chaining; [`Conversation::packets`] hands them over sorted by time.
///
/// Sequence numbers start at the ISNs: [`Conversation::handshake`] spends one on each SYN; a
/// conversation without a handshake (a capture that starts mid-stream) sends its first data byte
/// at the ISN. Sending after [`Conversation::close`] still emits packets, with sequence numbers
/// following the FIN, which is only useful to build broken traffic on purpose.
#[derive(Debug, Clone)]
pub struct Conversation {
    sides: [Side; 2],
    start: Timestamp,
    rtt_us: u64,
    half_rtt_ns: u64,
    mss: usize,
    packets: Vec<SynthPacket>,
    last_data_ts: Option<Timestamp>,
    last_send_start: Option<Timestamp>,
    events: TcpEvents,
}

fn later(t: Timestamp, ns: u64) -> Timestamp {
    Timestamp(t.0.saturating_add(ns))
}

impl Conversation {
    /// A connection between `client` and `server` whose first packet is sent at `start`.
    pub fn new(
        client: SocketAddr,
        server: SocketAddr,
        start: Timestamp,
        rtt_us: u64,
        isn_client: u32,
        isn_server: u32,
    ) -> Self {
        Conversation {
            sides: [
                Side::new(client, isn_client, CLIENT_WINDOW, start),
                Side::new(server, isn_server, SERVER_WINDOW, start),
            ],
            start,
            rtt_us,
            half_rtt_ns: rtt_us.saturating_mul(1_000) / 2,
            mss: DEFAULT_MSS,
            packets: Vec::new(),
            last_data_ts: None,
            last_send_start: None,
            events: TcpEvents::default(),
        }
    }

    /// Sets the segment payload size (also advertised in the SYN's MSS option), clamped to
    /// 1..=65,000 so that every segment fits in one IP packet.
    pub fn with_mss(mut self, mss: usize) -> Self {
        self.mss = mss.clamp(1, 65_000);
        self
    }

    pub fn client_addr(&self) -> SocketAddr {
        self.sides[Role::Client as usize].addr
    }

    pub fn server_addr(&self) -> SocketAddr {
        self.sides[Role::Server as usize].addr
    }

    /// The segment payload size.
    pub fn mss(&self) -> usize {
        self.mss
    }

    /// Segments a write of `len` bytes takes when the receiver's window does not cut it.
    pub fn segments_for(&self, len: usize) -> usize {
        len.div_ceil(self.mss)
    }

    /// The round-trip time the conversation was built with; the handshake shows it exactly.
    pub fn rtt_us(&self) -> u64 {
        self.rtt_us
    }

    /// Time of the first packet (the start given to [`Conversation::new`]).
    pub fn start_ts(&self) -> Timestamp {
        self.start
    }

    /// What the conversation put on the wire so far that Wireshark's TCP analysis flags.
    pub fn events(&self) -> TcpEvents {
        self.events
    }

    /// Sequence number of the client's next byte.
    pub fn client_next_seq(&self) -> u32 {
        self.sides[Role::Client as usize].next_seq
    }

    /// Sequence number of the server's next byte.
    pub fn server_next_seq(&self) -> u32 {
        self.sides[Role::Server as usize].next_seq
    }

    /// Time of the latest data segment so far (either direction).
    pub fn last_data_ts(&self) -> Option<Timestamp> {
        self.last_data_ts
    }

    /// Time of the first segment of the latest client or server write.
    pub fn last_send_start(&self) -> Option<Timestamp> {
        self.last_send_start
    }

    /// Earliest time the client may send next, e.g. when it has received the whole response.
    pub fn client_ready_at(&self) -> Timestamp {
        self.earliest(Role::Client)
    }

    /// Earliest time the server may send next, e.g. when it has received the whole request.
    pub fn server_ready_at(&self) -> Timestamp {
        self.earliest(Role::Server)
    }

    /// Time of the latest packet so far, or the start time when there is none.
    pub fn end_ts(&self) -> Timestamp {
        self.sides[0].last_sent.max(self.sides[1].last_sent)
    }

    /// Number of packets so far.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// The packets, sorted by time (stable, so packets with equal times keep causal order).
    pub fn packets(mut self) -> Vec<SynthPacket> {
        self.packets.sort_by_key(|p| p.ts);
        self.packets
    }

    /// Earliest time `role` may send: after its own last packet, and `rtt / 2` after the peer's
    /// last packet that needs an answer.
    fn earliest(&self, role: Role) -> Timestamp {
        let me = &self.sides[role as usize];
        let peer = &self.sides[role.peer() as usize];
        let own = me.app_ready.map_or(me.last_sent, |t| t.max(me.last_sent));
        match peer.last_trigger {
            Some(t) => own.max(later(t, self.half_rtt_ns)),
            None => own,
        }
    }

    /// Appends one segment from `role` at its next sequence number and advances its state;
    /// returns the frame length.
    fn emit(&mut self, role: Role, ts: Timestamp, flags: u8, ack: u32, payload: &[u8]) -> usize {
        let window = if flags & SYN != 0 {
            if role == Role::Client {
                CLIENT_SYN_WINDOW
            } else {
                SERVER_SYN_WINDOW
            }
        } else if flags & RST != 0 {
            0
        } else {
            self.sides[role as usize].window
        };
        let seq = self.sides[role as usize].next_seq;
        let len = self.emit_raw(role, ts, flags, seq, ack, window, payload);
        let consumed = payload.len() as u32 + u32::from(flags & SYN != 0) + u32::from(flags & FIN != 0);
        let me = &mut self.sides[role as usize];
        me.next_seq = me.next_seq.wrapping_add(consumed);
        len
    }

    /// Appends one segment from `role` with the given sequence number and window, leaving the
    /// side's next sequence number alone (retransmissions, probes, resets); returns the frame
    /// length. Counts the duplicate ACKs, window updates and zero windows it emits.
    #[allow(clippy::too_many_arguments)]
    fn emit_raw(
        &mut self,
        role: Role,
        ts: Timestamp,
        flags: u8,
        seq: u32,
        ack: u32,
        window: u16,
        payload: &[u8],
    ) -> usize {
        let syn = flags & SYN != 0;
        let ack = if flags & ACK != 0 { ack } else { 0 };
        let me = &self.sides[role as usize];
        let spec = TcpSpec {
            seq,
            ack,
            flags,
            window,
            ip_id: me.ip_id,
            mss: syn.then_some(self.mss as u16),
            window_scale: syn.then_some(WINDOW_SCALE),
            payload,
            ..TcpSpec::new(me.addr, self.sides[role.peer() as usize].addr, flags)
        };
        let data = packet::tcp_frame(&spec);
        if flags & (SYN | FIN | RST) == 0 && window == 0 {
            self.events.zero_windows += 1;
        }
        if flags == ACK
            && payload.is_empty()
            && window != 0
            && let Some((prev_ack, prev_window)) = me.last_adv
            && prev_ack == ack
        {
            if prev_window == window {
                self.events.dup_acks += 1;
            } else {
                self.events.window_updates += 1;
            }
        }
        let me = &mut self.sides[role as usize];
        me.ip_id = me.ip_id.wrapping_add(1);
        me.last_sent = me.last_sent.max(ts);
        me.last_adv = Some((ack, window));
        if !payload.is_empty() || flags & (SYN | FIN) != 0 {
            me.last_trigger = Some(me.last_trigger.map_or(ts, |t| t.max(ts)));
        }
        if !payload.is_empty() {
            self.events.data_segments += 1;
            self.last_data_ts = Some(self.last_data_ts.map_or(ts, |t| t.max(ts)));
        }
        let len = data.len();
        self.packets.push(SynthPacket { ts, data });
        len
    }

    fn next_ack(&self, role: Role) -> u32 {
        self.sides[role.peer() as usize].next_seq
    }

    /// The three-way handshake: SYN, SYN-ACK `rtt / 2` later, ACK `rtt / 2` after that.
    pub fn handshake(&mut self) -> &mut Self {
        let t = self.earliest(Role::Client);
        self.emit(Role::Client, t, SYN, 0, &[]);
        let t = self.earliest(Role::Server);
        let ack = self.next_ack(Role::Server);
        self.emit(Role::Server, t, SYN | ACK, ack, &[]);
        let t = self.earliest(Role::Client);
        let ack = self.next_ack(Role::Client);
        self.emit(Role::Client, t, ACK, ack, &[]);
        self
    }

    /// The client writes `data` `delay_us` after it could first send.
    pub fn client_send(&mut self, data: &[u8], delay_us: u64) -> &mut Self {
        let at = later(self.earliest(Role::Client), delay_us.saturating_mul(1_000));
        self.send(Role::Client, data, at)
    }

    /// The server writes `data` `delay_us` after it could first send (e.g. after the request).
    pub fn server_send(&mut self, data: &[u8], delay_us: u64) -> &mut Self {
        let at = later(self.earliest(Role::Server), delay_us.saturating_mul(1_000));
        self.send(Role::Server, data, at)
    }

    /// The client writes `data` at `at`, or as soon after as causality allows.
    pub fn client_send_at(&mut self, data: &[u8], at: Timestamp) -> &mut Self {
        self.send(Role::Client, data, at)
    }

    /// The server writes `data` at `at`, or as soon after as causality allows.
    pub fn server_send_at(&mut self, data: &[u8], at: Timestamp) -> &mut Self {
        self.send(Role::Server, data, at)
    }

    fn send(&mut self, role: Role, data: &[u8], at: Timestamp) -> &mut Self {
        if data.is_empty() {
            return self;
        }
        let peer = role.peer();
        let window = self.sides[peer as usize].receive_window().max(2 * self.mss as u64);
        let start_seq = self.sides[role as usize].next_seq;
        let mut t = at.max(self.earliest(role));
        self.last_send_start = Some(t);
        // (time of the peer's ACK, bytes of this write it acknowledges)
        let mut acks: Vec<(Timestamp, u64)> = Vec::new();
        let mut offset = 0usize;
        let mut unacked_segments = 0;
        while offset < data.len() {
            let seg = self.mss.min(data.len() - offset);
            let end = (offset + seg) as u64;
            if end > window {
                // Wait for the ACK that opens the window far enough.
                if let Some((ack_ts, _)) = acks.iter().find(|(_, acked)| acked + window >= end) {
                    t = t.max(*ack_ts);
                }
            }
            let last = offset + seg == data.len();
            let flags = if last { ACK | PSH } else { ACK };
            let ack = self.next_ack(role);
            let frame_len = self.emit(role, t, flags, ack, &data[offset..offset + seg]);
            offset += seg;
            unacked_segments += 1;
            if unacked_segments == 2 || last {
                unacked_segments = 0;
                let ack_ts = later(t, self.half_rtt_ns);
                let acked = start_seq.wrapping_add(offset as u32);
                self.emit(peer, ack_ts, ACK, acked, &[]);
                acks.push((ack_ts, offset as u64));
            }
            t = later(t, frame_len as u64 * 8);
        }
        self
    }

    /// Orderly close started by the client: FIN from the client, FIN-ACK from the server
    /// `rtt / 2` later, final ACK from the client.
    pub fn close(&mut self) -> &mut Self {
        self.fin_exchange(Role::Client, Timestamp(0))
    }

    /// Like [`Conversation::close`], with the client's FIN at `at` (or as soon after as
    /// causality allows), e.g. when an idle keep-alive connection times out.
    pub fn close_at(&mut self, at: Timestamp) -> &mut Self {
        self.fin_exchange(Role::Client, at)
    }

    /// Orderly close started by the server (e.g. HTTP/1.0 without keep-alive).
    pub fn close_from_server(&mut self) -> &mut Self {
        self.fin_exchange(Role::Server, Timestamp(0))
    }

    fn fin_exchange(&mut self, closer: Role, at: Timestamp) -> &mut Self {
        let other = closer.peer();
        for (role, at) in [(closer, at), (other, Timestamp(0))] {
            let t = self.earliest(role).max(at);
            let ack = self.next_ack(role);
            self.emit(role, t, FIN | ACK, ack, &[]);
        }
        let t = self.earliest(closer);
        let ack = self.next_ack(closer);
        self.emit(closer, t, ACK, ack, &[]);
        self
    }

    /// A connection attempt nothing listens for: the client's SYN, answered `rtt / 2` later by
    /// RST-ACK with sequence number 0 (RFC 9293, 3.10.7.1). Call it on a fresh conversation.
    pub fn refused(&mut self) -> &mut Self {
        let t = self.earliest(Role::Client);
        self.emit(Role::Client, t, SYN, 0, &[]);
        let t = self.earliest(Role::Server);
        let ack = self.next_ack(Role::Server);
        self.emit_raw(Role::Server, t, RST | ACK, 0, ack, 0, &[]);
        self.events.refused = true;
        self
    }

    /// The server aborts the connection with RST-ACK as soon as it may send.
    pub fn reset_from_server(&mut self) -> &mut Self {
        let t = self.earliest(Role::Server);
        let ack = self.next_ack(Role::Server);
        self.emit(Role::Server, t, RST | ACK, ack, &[]);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::packet::{DecodedFrame, Transport, decode_frame};

    const T0: Timestamp = Timestamp::from_secs_nanos(1_768_471_200, 0);

    fn conv() -> Conversation {
        Conversation::new(
            "10.1.0.5:40001".parse().unwrap(),
            "10.2.0.1:80".parse().unwrap(),
            T0,
            2_000,
            1_000,
            u32::MAX - 5, // the server's sequence numbers wrap
        )
    }

    struct Seg {
        ts: Timestamp,
        from_client: bool,
        seq: u32,
        ack: u32,
        flags: u8,
        len: usize,
        ip_id: u16,
    }

    fn decode_all(packets: &[SynthPacket], client: SocketAddr) -> Vec<Seg> {
        packets
            .iter()
            .map(|p| {
                let d: DecodedFrame<'_> = decode_frame(&p.data).unwrap();
                let Transport::Tcp { seq, ack, flags, .. } = d.transport else {
                    panic!("not TCP")
                };
                Seg {
                    ts: p.ts,
                    from_client: d.src == client,
                    seq,
                    ack,
                    flags,
                    len: d.payload.len(),
                    ip_id: d.ip_id.unwrap(),
                }
            })
            .collect()
    }

    /// Checks the invariants of a clean connection, replaying segments in capture order.
    fn assert_clean(segs: &[Seg]) {
        let mut next = [None::<u32>; 2];
        let mut last_pure_ack = [None::<u32>; 2];
        let mut last_ip_id = [None::<u16>; 2];
        for (i, s) in segs.iter().enumerate() {
            if i > 0 {
                assert!(segs[i - 1].ts <= s.ts, "time goes backwards at {i}");
            }
            let d = usize::from(!s.from_client);
            if let Some(n) = next[d] {
                assert_eq!(s.seq, n, "sequence gap or retransmission at {i}");
            }
            if let Some(id) = last_ip_id[d] {
                assert_eq!(s.ip_id, id.wrapping_add(1));
            }
            last_ip_id[d] = Some(s.ip_id);
            let consumed = s.len as u32 + u32::from(s.flags & (SYN | FIN) != 0);
            next[d] = Some(s.seq.wrapping_add(consumed));
            if s.flags & ACK != 0 {
                // Never acknowledges what the peer has not sent yet.
                let peer_next = next[1 - d].unwrap();
                assert!(peer_next.wrapping_sub(s.ack) < 1 << 30, "acks the future at {i}");
                if s.len == 0 && s.flags == ACK {
                    assert_ne!(last_pure_ack[d], Some(s.ack), "duplicate ACK at {i}");
                    last_pure_ack[d] = Some(s.ack);
                }
            }
        }
    }

    #[test]
    fn handshake_request_response_close() {
        let mut c = conv();
        let client = c.client_addr();
        c.handshake()
            .client_send(b"GET / HTTP/1.1\r\n\r\n", 100)
            .server_send(&[b'x'; 3000], 5_000);
        c.close();
        let segs = decode_all(&c.packets(), client);
        assert_clean(&segs);
        let flags: Vec<u8> = segs.iter().map(|s| s.flags).collect();
        assert_eq!(
            flags,
            [
                SYN,
                SYN | ACK,
                ACK,
                ACK | PSH, // request
                ACK,       // server acks it
                ACK,       // response segment 1 (1448 bytes)
                ACK,       // response segment 2 (1448 bytes)
                ACK | PSH, // response segment 3 (104 bytes), before the client's first ACK
                ACK,       // client acks segments 1 and 2
                ACK,       // client acks segment 3
                FIN | ACK,
                FIN | ACK,
                ACK
            ]
        );
        assert_eq!(segs[0].seq, 1_000);
        assert_eq!(segs[1].seq, u32::MAX - 5);
        assert_eq!(segs[1].ack, 1_001);
        assert_eq!(segs[3].seq, 1_001);
        assert_eq!(segs[5].seq, u32::MAX - 4);
        assert_eq!(segs[10].seq, 1_001 + 18);
        assert_eq!(segs[11].ack, 1_001 + 19);
        assert_eq!(segs[12].ack, (u32::MAX - 4).wrapping_add(3001));
        // SYN-ACK half an RTT after the SYN, request 100 µs after the handshake ACK.
        assert_eq!(segs[1].ts.0 - segs[0].ts.0, 1_000_000);
        assert_eq!(segs[3].ts.0 - segs[2].ts.0, 100_000);
        // Response 5 ms after the server could answer, i.e. after the request + rtt/2.
        assert_eq!(segs[5].ts.0 - segs[3].ts.0, 1_000_000 + 5_000_000);
        let lens: Vec<usize> = segs.iter().map(|s| s.len).collect();
        assert_eq!(lens[5..10], [1448, 1448, 104, 0, 0]);
        assert_eq!(segs[8].ack, (u32::MAX - 4).wrapping_add(2896));
    }

    #[test]
    fn big_transfer_respects_window() {
        let mut c = conv().with_mss(1000);
        let client = c.client_addr();
        c.handshake().server_send(&vec![7u8; 300_000], 0).close();
        let segs = decode_all(&c.packets(), client);
        assert_clean(&segs);
        let window = u64::from(CLIENT_WINDOW) << WINDOW_SCALE;
        let mut acked = 0u32;
        for s in &segs {
            if s.from_client && s.flags & ACK != 0 {
                acked = s.ack;
            } else if !s.from_client && s.len > 0 {
                let in_flight = s.seq.wrapping_add(s.len as u32).wrapping_sub(acked);
                assert!(u64::from(in_flight) <= window, "window overrun: {in_flight}");
            }
        }
        let data: usize = segs.iter().filter(|s| !s.from_client).map(|s| s.len).sum();
        assert_eq!(data, 300_000);
        assert!(segs.iter().filter(|s| s.len > 0).all(|s| s.len <= 1000));
    }

    #[test]
    fn reset_and_server_close() {
        let mut c = conv();
        let client = c.client_addr();
        c.handshake().client_send(b"hello", 0).reset_from_server();
        let segs = decode_all(&c.packets(), client);
        let last = segs.last().unwrap();
        assert_eq!(last.flags, RST | ACK);
        assert_eq!(last.ack, 1_001 + 5);

        let mut c = conv();
        c.handshake()
            .client_send(b"GET / HTTP/1.0\r\n\r\n", 0)
            .server_send(b"body", 0);
        c.close_from_server();
        let segs = decode_all(&c.packets(), client);
        assert_clean(&segs);
        // The server writes the body and closes at once; the client acks the body, then closes.
        let tail: Vec<(bool, u8, usize)> = segs
            .iter()
            .rev()
            .take(5)
            .map(|s| (s.from_client, s.flags, s.len))
            .collect();
        assert_eq!(
            tail,
            [
                (false, ACK, 0),
                (true, FIN | ACK, 0),
                (true, ACK, 0),
                (false, FIN | ACK, 0),
                (false, ACK | PSH, 4)
            ]
        );
    }

    #[test]
    fn absolute_send_times_are_clamped_to_causality() {
        let mut c = conv();
        c.handshake();
        let hs_end = c.end_ts();
        c.client_send_at(b"req", T0); // too early: sent right after the handshake
        assert_eq!(c.last_data_ts(), Some(hs_end));
        let later_ts = Timestamp(hs_end.0 + 50_000_000);
        c.server_send_at(b"resp", later_ts);
        assert_eq!(c.last_data_ts(), Some(later_ts));
        assert!(!c.is_empty());
    }

    #[test]
    fn ipv6_conversation() {
        let mut c = Conversation::new(
            "[2001:db8::10]:50000".parse().unwrap(),
            "[2001:db8::20]:443".parse().unwrap(),
            T0,
            500,
            1,
            2,
        );
        c.handshake().client_send(&[1u8; 5000], 0).close();
        for p in c.packets() {
            let d = decode_frame(&p.data).unwrap();
            assert!(d.src.is_ipv6());
        }
    }

    /// The builder's counts and the analysis' counts of the same packets.
    fn assert_analysis_agrees(c: &Conversation) {
        use crate::synth::testutil::analyse;
        let e = c.events();
        let m = analyse(&c.clone().packets());
        let got = [
            m.data_packets[0] + m.data_packets[1],
            m.retransmissions,
            m.fast_retransmissions,
            m.dup_acks,
            m.zero_window_events,
            m.zero_window_probes,
            m.window_updates,
            m.window_full_events,
        ];
        let want = [
            e.data_segments,
            e.retransmissions,
            e.fast_retransmissions,
            e.dup_acks,
            e.zero_windows,
            e.zero_window_probes,
            e.window_updates,
            e.window_full,
        ];
        assert_eq!(got, want, "analysis vs builder: {e:?}");
        let clean = [
            m.spurious_retransmissions,
            m.out_of_order,
            m.missing_segments,
            m.acked_unseen,
            m.keepalive_count,
        ];
        assert_eq!(clean, [0; 5], "{m:?}");
    }

    fn lossy_response(lost: &[usize]) -> (Conversation, Vec<u8>) {
        let mut c = conv();
        let body: Vec<u8> = (0..DEFAULT_MSS * 10).map(|i| (i % 251) as u8).collect();
        c.handshake().client_send(b"GET /big HTTP/1.1\r\n\r\n", 0);
        let at = c.server_ready_at();
        let imp = Impairments {
            lost: lost.to_vec(),
            slow_reader: None,
        };
        c.server_send_impaired(&body, at, &imp);
        c.close();
        (c, body)
    }

    fn server_stream(c: &Conversation) -> Vec<u8> {
        let (conns, streams) = crate::synth::testutil::reassemble(c.clone().packets().iter().map(|p| &p.data[..]));
        streams[&(conns[0].1, conns[0].0)].clone()
    }

    #[test]
    fn lost_segment_is_fast_retransmitted_after_three_dup_acks() {
        let (c, body) = lossy_response(&[2]);
        let e = c.events();
        // Segments 3..=9 reach the client before the retransmission: seven duplicate ACKs.
        assert_eq!((e.retransmissions, e.fast_retransmissions, e.dup_acks), (1, 1, 7));
        assert_analysis_agrees(&c);
        assert_eq!(server_stream(&c), body);
        let client = c.client_addr();
        let segs = decode_all(&c.clone().packets(), client);
        let original = segs.iter().position(|s| !s.from_client && s.len > 0).unwrap() + 2;
        let retx = segs
            .iter()
            .rposition(|s| s.seq == segs[original].seq && s.len > 0)
            .unwrap();
        assert!(retx > original);
        let lost_seq = segs[original].seq;
        let third_dup = segs
            .iter()
            .filter(|s| s.from_client && s.ack == lost_seq)
            .nth(3)
            .unwrap();
        // One RTT after the third duplicate ACK's trigger: half an RTT after the ACK.
        assert_eq!(segs[retx].ts.0 - third_dup.ts.0, 1_000_000);
    }

    #[test]
    fn tail_losses_wait_for_the_retransmission_timeout() {
        // The last segment: no duplicate ACK at all; segment 8 is acknowledged after 40 ms.
        let (c, body) = lossy_response(&[9]);
        let e = c.events();
        assert_eq!((e.retransmissions, e.fast_retransmissions, e.dup_acks), (1, 0, 0));
        assert_analysis_agrees(&c);
        assert_eq!(server_stream(&c), body);
        let segs = decode_all(&c.clone().packets(), c.client_addr());
        let data: Vec<&Seg> = segs.iter().filter(|s| !s.from_client && s.len > 0).collect();
        assert_eq!(data.len(), 11);
        let gap = data[10].ts.0 - data[9].ts.0;
        assert!(gap > RTO_MIN_NS + 40_000_000, "retransmitted after {gap} ns");

        // Segment 7 of 10: segment 6 waits for its pair, so segment 8's ACK is new and only
        // segment 9's is a duplicate: too few for a fast retransmission.
        let (c, _) = lossy_response(&[7]);
        let e = c.events();
        assert_eq!((e.retransmissions, e.fast_retransmissions, e.dup_acks), (1, 0, 1));
        assert_analysis_agrees(&c);

        // Two holes: Reno retransmits the first fast, the second after the timeout.
        let (c, body) = lossy_response(&[2, 6]);
        let e = c.events();
        assert_eq!((e.retransmissions, e.fast_retransmissions, e.dup_acks), (2, 1, 6));
        assert_analysis_agrees(&c);
        assert_eq!(server_stream(&c), body);
    }

    #[test]
    fn lost_request_delays_the_response() {
        let mut c = conv();
        c.handshake();
        let at = c.client_ready_at();
        let imp = Impairments {
            lost: vec![0],
            slow_reader: None,
        };
        c.client_send_impaired(b"POST /charge HTTP/1.1\r\ncontent-length: 0\r\n\r\n", at, &imp);
        assert_eq!(c.last_send_start(), Some(at));
        // The server has the request only when the retransmission arrives.
        let ready = c.server_ready_at();
        assert_eq!(ready.0 - at.0, RTO_MIN_NS + 2_000_000 + 1_000_000);
        c.server_send(b"HTTP/1.1 204 No Content\r\n\r\n", 0).close();
        assert_eq!(c.events().retransmissions, 1);
        assert_analysis_agrees(&c);
    }

    #[test]
    fn slow_reader_zero_windows_probes_and_updates() {
        let mut c = conv().with_mss(1024);
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
        c.handshake().client_send(b"GET /export HTTP/1.1\r\n\r\n", 0);
        let at = c.server_ready_at();
        let ms = 1_000_000;
        let reader = SlowReader {
            buffer: u32::from(CLIENT_WINDOW) << WINDOW_SCALE,
            // 50 ms: no probe; 700 ms: probes after ~200 and ~600 ms; 300 ms: one probe.
            reads: vec![
                (50 * ms, 16_384),
                (700 * ms, 32_768),
                (300 * ms, 32_768),
                (80 * ms, 65_536),
            ],
        };
        let imp = Impairments {
            lost: Vec::new(),
            slow_reader: Some(reader),
        };
        c.server_send_impaired(&body, at, &imp);
        let done = c.client_ready_at();
        c.close();
        let e = c.events();
        assert_eq!(e.zero_window_probes, 3, "{e:?}");
        assert_eq!(e.zero_window_probe_acks, 3);
        // Four reads found the window closed; each sent a window update. The answers to the
        // probes advertise a zero window as well.
        assert_eq!(e.window_updates, 4, "{e:?}");
        assert_eq!(e.zero_windows, 4 + 3);
        assert_eq!(e.window_full, 4);
        assert_eq!((e.retransmissions, e.dup_acks), (0, 0));
        assert_analysis_agrees(&c);
        assert_eq!(server_stream(&c), body);
        // The client closes only once it has read everything: after the four reads.
        assert!(done.0 - at.0 > 1_130 * ms, "{}", done.0 - at.0);
        let segs = decode_all(&c.clone().packets(), c.client_addr());
        assert!(
            segs.iter()
                .filter(|s| !s.from_client && s.len > 0)
                .all(|s| s.len <= 1024)
        );
        let probes: Vec<&Seg> = segs.iter().filter(|s| s.len == 1).collect();
        assert_eq!(probes.len(), 3);
        // Probes follow the zero window after the timeout, then twice that.
        assert!(probes[1].ts.0 - probes[0].ts.0 > 2 * RTO_MIN_NS);
    }

    #[test]
    fn refused_connection() {
        let mut c = conv();
        c.refused();
        assert!(c.events().refused);
        let segs = decode_all(&c.clone().packets(), c.client_addr());
        let flags: Vec<u8> = segs.iter().map(|s| s.flags).collect();
        assert_eq!(flags, [SYN, RST | ACK]);
        assert_eq!((segs[1].seq, segs[1].ack), (0, 1_001));
        assert_eq!(segs[1].ts.0 - segs[0].ts.0, 1_000_000);
        let m = crate::synth::testutil::analyse(&c.packets());
        use crate::tcp::analysis::completeness as C;
        assert_eq!(m.completeness, C::SYN | C::ACK | C::RST);
        assert_eq!(m.initial_rtt_ns, Some(1_000_000));
    }

    #[test]
    fn clean_conversations_count_no_events() {
        let mut c = conv();
        c.handshake()
            .client_send(b"GET / HTTP/1.1\r\n\r\n", 100)
            .server_send(&vec![1u8; 300_000], 0)
            .close();
        let e = c.events();
        assert_eq!(
            e,
            TcpEvents {
                data_segments: 1 + 300_000usize.div_ceil(DEFAULT_MSS) as u64,
                ..TcpEvents::default()
            }
        );
        assert_analysis_agrees(&c);
        // Without impairments the impaired path sends the same segments.
        let mut d = conv();
        d.handshake().client_send(b"GET / HTTP/1.1\r\n\r\n", 100);
        let at = d.server_ready_at();
        d.server_send_impaired(&[1u8; 5000], at, &Impairments::default())
            .close();
        let mut e = conv();
        e.handshake()
            .client_send(b"GET / HTTP/1.1\r\n\r\n", 100)
            .server_send(&[1u8; 5000], 0)
            .close();
        assert_eq!(d.packets(), e.packets());
    }
}
