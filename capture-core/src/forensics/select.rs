//! Which raw packets belong to a set of connections.
//!
//! A connection is its transport, its two ends and its time span (a flow record's first and
//! last packet; open when a live flow has not ended). A packet belongs to it when its addresses
//! and ports are the connection's, in either direction, and its timestamp lies in the span: the
//! span tells apart connections that reused a 5-tuple. IPv4 and IPv6 fragments after the first
//! carry no ports; they follow the first fragment of their datagram (same addresses and
//! fragment id), as they arrive after it in a capture.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use crate::entry::Transport;
use crate::source::Packet;
use crate::time::Timestamp;
use crate::wire::ip::{PROTO_TCP, PROTO_UDP};
use crate::wire::{TcpSegment, UdpDatagram, decode_ip, decode_link};

/// Fragmented datagrams followed at once; past it the oldest are forgotten.
const MAX_FRAGMENTED: usize = 65_536;

/// One connection to keep the packets of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowSpan {
    pub id: u64,
    pub transport: Transport,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub first: Timestamp,
    /// `None`: still open (every later packet belongs to it).
    pub last: Option<Timestamp>,
}

/// The two ends in a fixed order, with the IP protocol number.
type Key = (u8, SocketAddr, SocketAddr);

fn key(proto: u8, a: SocketAddr, b: SocketAddr) -> Key {
    if a <= b { (proto, a, b) } else { (proto, b, a) }
}

/// What a kept packet is: the connection it belongs to (none when every packet of the window
/// is kept and it is not TCP or UDP) and its TCP payload (for the TLS ClientHello).
#[derive(Debug, Clone, Copy)]
pub struct Kept<'a> {
    pub flow: Option<u64>,
    pub tcp_payload: Option<&'a [u8]>,
}

/// Decides packet by packet.
#[derive(Debug)]
pub struct Selector {
    /// `None`: every packet of the window.
    flows: Option<HashMap<Key, Vec<FlowSpan>>>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    /// (source, destination, fragment id) of datagrams whose first fragment was kept.
    fragments: HashMap<(IpAddr, IpAddr, u32), Option<u64>>,
}

impl Selector {
    /// Keeps the packets of `flows` that lie in `[since, until)`.
    pub fn flows(flows: &[FlowSpan], since: Option<Timestamp>, until: Option<Timestamp>) -> Selector {
        let mut map: HashMap<Key, Vec<FlowSpan>> = HashMap::new();
        for f in flows {
            let proto = match f.transport {
                Transport::Tcp => PROTO_TCP,
                Transport::Udp => PROTO_UDP,
            };
            map.entry(key(proto, f.client, f.server)).or_default().push(*f);
        }
        Selector {
            flows: Some(map),
            since,
            until,
            fragments: HashMap::new(),
        }
    }

    /// Keeps every packet in `[since, until)`.
    pub fn window(since: Option<Timestamp>, until: Option<Timestamp>) -> Selector {
        Selector {
            flows: None,
            since,
            until,
            fragments: HashMap::new(),
        }
    }

    fn in_window(&self, ts: Timestamp) -> bool {
        self.since.is_none_or(|s| ts >= s) && self.until.is_none_or(|u| ts < u)
    }

    /// Whether to keep `pkt`, and what it is.
    pub fn keep<'a>(&mut self, pkt: &Packet<'a>) -> Option<Kept<'a>> {
        if !self.in_window(pkt.ts) {
            return None;
        }
        let every = self.flows.is_none();
        let nothing = Kept {
            flow: None,
            tcp_payload: None,
        };
        let ip = match decode_link(pkt.link, pkt.data).and_then(decode_ip) {
            Ok(Some(ip)) => ip,
            _ => return every.then_some(nothing),
        };
        if let Some(frag) = ip.fragment
            && frag.offset > 0
        {
            return match self.fragments.get(&(ip.src, ip.dst, frag.id)) {
                Some(flow) => Some(Kept {
                    flow: *flow,
                    tcp_payload: None,
                }),
                None => every.then_some(nothing),
            };
        }
        let (src, dst, tcp_payload) = match ip.protocol {
            PROTO_TCP => match TcpSegment::new_checked(ip.payload) {
                Ok(s) => (s.src_port(), s.dst_port(), Some(s.payload())),
                Err(_) => return every.then_some(nothing),
            },
            PROTO_UDP => match UdpDatagram::new_checked(ip.payload) {
                Ok(d) => (d.src_port(), d.dst_port(), None),
                Err(_) => return every.then_some(nothing),
            },
            _ => return every.then_some(nothing),
        };
        let (a, b) = (SocketAddr::new(ip.src, src), SocketAddr::new(ip.dst, dst));
        let flow = match &self.flows {
            None => None,
            Some(map) => {
                let spans = map.get(&key(ip.protocol, a, b))?;
                let f = spans
                    .iter()
                    .find(|f| pkt.ts >= f.first && f.last.is_none_or(|l| pkt.ts <= l))?;
                Some(f.id)
            }
        };
        if let Some(frag) = ip.fragment {
            if self.fragments.len() >= MAX_FRAGMENTED {
                self.fragments.clear();
            }
            self.fragments.insert((ip.src, ip.dst, frag.id), flow);
        }
        Some(Kept { flow, tcp_payload })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::LinkType;
    use crate::synth::packet::{ACK, PSH, TcpSpec, UdpSpec, internet_checksum, tcp_frame, udp_frame};

    fn tcp(ts: u64, src: &str, dst: &str, payload: &[u8]) -> (Timestamp, Vec<u8>) {
        let mut spec = TcpSpec::new(src.parse().unwrap(), dst.parse().unwrap(), ACK | PSH);
        spec.payload = payload;
        (Timestamp(ts), tcp_frame(&spec))
    }

    fn kept(sel: &mut Selector, (ts, data): &(Timestamp, Vec<u8>)) -> Option<Option<u64>> {
        let p = Packet {
            ts: *ts,
            link: LinkType::ETHERNET,
            data,
            orig_len: data.len() as u32,
            interface: 0,
        };
        sel.keep(&p).map(|k| k.flow)
    }

    /// Splits an Ethernet + IPv4 frame into fragments of `size` payload bytes (a multiple of 8).
    fn fragments(frame: &[u8], size: usize) -> Vec<Vec<u8>> {
        let (eth, ip) = (&frame[..14], &frame[14..34]);
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let payload = &frame[34..14 + total];
        let mut out = Vec::new();
        for (i, chunk) in payload.chunks(size).enumerate() {
            let more = (i + 1) * size < payload.len();
            let mut h = ip.to_vec();
            h[2..4].copy_from_slice(&((20 + chunk.len()) as u16).to_be_bytes());
            let field = (u16::from(more) << 13) | ((i * size / 8) as u16);
            h[6..8].copy_from_slice(&field.to_be_bytes());
            h[10..12].copy_from_slice(&[0, 0]);
            let sum = internet_checksum(&h);
            h[10..12].copy_from_slice(&sum.to_be_bytes());
            let mut f = eth.to_vec();
            f.extend_from_slice(&h);
            f.extend_from_slice(chunk);
            out.push(f);
        }
        out
    }

    #[test]
    fn both_directions_within_the_span_and_not_a_reused_tuple() {
        let c: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let s: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let span = FlowSpan {
            id: 7,
            transport: Transport::Tcp,
            client: c,
            server: s,
            first: Timestamp(100),
            last: Some(Timestamp(200)),
        };
        let mut sel = Selector::flows(&[span], None, None);
        assert_eq!(
            kept(&mut sel, &tcp(100, "10.0.0.1:40000", "10.0.0.2:80", b"GET")),
            Some(Some(7))
        );
        assert_eq!(
            kept(&mut sel, &tcp(200, "10.0.0.2:80", "10.0.0.1:40000", b"HTTP")),
            Some(Some(7))
        );
        // The same 5-tuple reused after the span, another port, another host: not kept.
        assert_eq!(kept(&mut sel, &tcp(300, "10.0.0.1:40000", "10.0.0.2:80", b"GET")), None);
        assert_eq!(kept(&mut sel, &tcp(150, "10.0.0.1:40001", "10.0.0.2:80", b"GET")), None);
        assert_eq!(kept(&mut sel, &tcp(150, "10.0.0.3:40000", "10.0.0.2:80", b"GET")), None);
        // An open flow takes everything after its start; a window cuts it.
        let open = FlowSpan { last: None, ..span };
        let mut sel = Selector::flows(&[open], None, Some(Timestamp(1_000)));
        assert_eq!(
            kept(&mut sel, &tcp(999, "10.0.0.1:40000", "10.0.0.2:80", b"x")),
            Some(Some(7))
        );
        assert_eq!(kept(&mut sel, &tcp(1_000, "10.0.0.1:40000", "10.0.0.2:80", b"x")), None);
        // The window mode keeps every packet of the window, TCP payload included.
        let mut all = Selector::window(Some(Timestamp(150)), None);
        assert_eq!(kept(&mut all, &tcp(100, "10.0.0.9:1", "10.0.0.8:2", b"")), None);
        let (ts, data) = tcp(150, "10.0.0.9:1", "10.0.0.8:2", b"abc");
        let p = Packet {
            ts,
            link: LinkType::ETHERNET,
            data: &data,
            orig_len: data.len() as u32,
            interface: 0,
        };
        let k = all.keep(&p).unwrap();
        assert_eq!((k.flow, k.tcp_payload), (None, Some(&b"abc"[..])));
    }

    #[test]
    fn later_fragments_follow_the_first() {
        let c: SocketAddr = "10.0.0.1:5353".parse().unwrap();
        let s: SocketAddr = "10.0.0.2:53".parse().unwrap();
        let span = FlowSpan {
            id: 3,
            transport: Transport::Udp,
            client: c,
            server: s,
            first: Timestamp(0),
            last: Some(Timestamp(10)),
        };
        let payload = [7u8; 3000];
        let frame = |src: SocketAddr| {
            udp_frame(&UdpSpec {
                src,
                dst: s,
                ip_id: 0x1234,
                payload: &payload,
            })
        };
        let frags = fragments(&frame(c), 1480);
        assert_eq!(frags.len(), 3);
        let mut sel = Selector::flows(&[span], None, None);
        for f in &frags {
            assert_eq!(kept(&mut sel, &(Timestamp(5), f.clone())), Some(Some(3)));
        }
        // The same fragment id between other hosts is not kept.
        let other = fragments(&frame("10.0.0.7:5353".parse().unwrap()), 1480);
        assert_eq!(kept(&mut sel, &(Timestamp(5), other[1].clone())), None);
    }
}
