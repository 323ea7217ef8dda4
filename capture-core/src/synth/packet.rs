//! Frame builders: Ethernet II + IPv4 or IPv6 + TCP or UDP, with every checksum correct.
//!
//! The builders are stateless: the caller chooses sequence numbers, IP ids and flags (see
//! [`crate::synth::conversation`] for a stateful TCP connection). MAC addresses are derived from
//! the IP addresses ([`mac_for`]), IPv4 packets carry DF and TTL 64, and frames shorter than the
//! Ethernet minimum (60 bytes without FCS) are zero-padded the way a NIC pads them on the wire.
//!
//! [`decode_frame`] is the strict inverse: it checks lengths and checksums of the frames built
//! here and is meant for tests.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// TCP flag bits, as in the TCP header's flags byte.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
/// Shortest Ethernet frame on the wire, without the 4-byte FCS.
pub const MIN_FRAME_LEN: usize = 60;
/// TTL (IPv4) and hop limit (IPv6) of every built packet.
pub const TTL: u8 = 64;
const ETH_LEN: usize = 14;
const IPV4_LEN: usize = 20;
const IPV6_LEN: usize = 40;
const TCP_LEN: usize = 20;
const UDP_LEN: usize = 8;
/// Largest TCP or UDP segment (header included) an IPv4 packet can carry.
const MAX_V4_SEGMENT: usize = u16::MAX as usize - IPV4_LEN;

/// Everything needed to build one TCP frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSpec<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    /// A combination of [`FIN`], [`SYN`], [`RST`], [`PSH`], [`ACK`].
    pub flags: u8,
    /// The raw window field (before any window scaling).
    pub window: u16,
    /// IPv4 identification (ignored for IPv6).
    pub ip_id: u16,
    /// MSS option; normally only on SYN and SYN-ACK.
    pub mss: Option<u16>,
    /// Window-scale option (shift count); normally only on SYN and SYN-ACK.
    pub window_scale: Option<u8>,
    pub payload: &'a [u8],
}

impl<'a> TcpSpec<'a> {
    /// A segment with the given flags, zero sequence numbers, window 65535 and no options.
    pub fn new(src: SocketAddr, dst: SocketAddr, flags: u8) -> Self {
        TcpSpec {
            src,
            dst,
            seq: 0,
            ack: 0,
            flags,
            window: u16::MAX,
            ip_id: 0,
            mss: None,
            window_scale: None,
            payload: &[],
        }
    }
}

/// Everything needed to build one UDP frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpSpec<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// IPv4 identification (ignored for IPv6).
    pub ip_id: u16,
    pub payload: &'a [u8],
}

/// The locally administered unicast MAC address used for `ip`: `02:00:a:b:c:d` for IPv4
/// `a.b.c.d`, `02:06:` followed by the four 32-bit words of an IPv6 address XORed together.
pub fn mac_for(ip: IpAddr) -> [u8; 6] {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            [0x02, 0x00, o[0], o[1], o[2], o[3]]
        }
        IpAddr::V6(v6) => {
            let mut folded = [0u8; 4];
            for (i, b) in v6.octets().iter().enumerate() {
                folded[i % 4] ^= b;
            }
            [0x02, 0x06, folded[0], folded[1], folded[2], folded[3]]
        }
    }
}

/// The RFC 1071 Internet checksum of `data` (the value to store in a header).
pub fn internet_checksum(data: &[u8]) -> u16 {
    fold(sum_words(data, 0))
}

/// Adds `data` as big-endian 16-bit words (an odd last byte is padded with zero).
fn sum_words(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    !(acc as u16)
}

/// Source and destination addresses in one family; mixed families become IPv4-mapped IPv6.
#[derive(Debug, Clone, Copy)]
enum IpPair {
    V4([u8; 4], [u8; 4]),
    V6([u8; 16], [u8; 16]),
}

impl IpPair {
    fn of(src: IpAddr, dst: IpAddr) -> Self {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => IpPair::V4(s.octets(), d.octets()),
            (s, d) => IpPair::V6(v6_of(s).octets(), v6_of(d).octets()),
        }
    }

    /// Sum of the TCP/UDP pseudo-header.
    fn pseudo_sum(&self, proto: u8, len: usize) -> u64 {
        match self {
            IpPair::V4(s, d) => {
                let acc = sum_words(s, sum_words(d, 0));
                acc + u64::from(proto) + len as u64
            }
            IpPair::V6(s, d) => {
                let acc = sum_words(s, sum_words(d, 0));
                acc + (len as u64 >> 16) + (len as u64 & 0xFFFF) + u64::from(proto)
            }
        }
    }
}

fn v6_of(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Writes the Ethernet and IP headers for a `segment_len`-byte transport segment.
fn push_eth_ip(f: &mut Vec<u8>, src: IpAddr, dst: IpAddr, ips: IpPair, proto: u8, segment_len: usize, ip_id: u16) {
    f.extend_from_slice(&mac_for(dst));
    f.extend_from_slice(&mac_for(src));
    match ips {
        IpPair::V4(s, d) => {
            assert!(
                segment_len <= MAX_V4_SEGMENT,
                "IPv4 segment of {segment_len} bytes is too long"
            );
            f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            let start = f.len();
            f.extend_from_slice(&[0x45, 0x00]);
            f.extend_from_slice(&((IPV4_LEN + segment_len) as u16).to_be_bytes());
            f.extend_from_slice(&ip_id.to_be_bytes());
            f.extend_from_slice(&0x4000u16.to_be_bytes()); // DF, fragment offset 0
            f.extend_from_slice(&[TTL, proto, 0, 0]);
            f.extend_from_slice(&s);
            f.extend_from_slice(&d);
            let csum = internet_checksum(&f[start..start + IPV4_LEN]);
            f[start + 10..start + 12].copy_from_slice(&csum.to_be_bytes());
        }
        IpPair::V6(s, d) => {
            assert!(
                segment_len <= usize::from(u16::MAX),
                "IPv6 payload of {segment_len} bytes needs a jumbogram"
            );
            f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&(segment_len as u16).to_be_bytes());
            f.extend_from_slice(&[proto, TTL]);
            f.extend_from_slice(&s);
            f.extend_from_slice(&d);
        }
    }
}

fn pad(f: &mut Vec<u8>) {
    if f.len() < MIN_FRAME_LEN {
        f.resize(MIN_FRAME_LEN, 0);
    }
}

fn ip_header_len(ips: IpPair) -> usize {
    match ips {
        IpPair::V4(..) => IPV4_LEN,
        IpPair::V6(..) => IPV6_LEN,
    }
}

/// Builds a complete Ethernet frame carrying one TCP segment.
///
/// # Panics
/// If the segment does not fit in one IP packet (payload above about 65,000 bytes).
pub fn tcp_frame(spec: &TcpSpec<'_>) -> Vec<u8> {
    let ips = IpPair::of(spec.src.ip(), spec.dst.ip());
    let mut options = [0u8; 8];
    let mut opt_len = 0;
    if let Some(mss) = spec.mss {
        options[..4].copy_from_slice(&[2, 4, (mss >> 8) as u8, mss as u8]);
        opt_len = 4;
    }
    if let Some(shift) = spec.window_scale {
        options[opt_len..opt_len + 4].copy_from_slice(&[1, 3, 3, shift]); // NOP, WS
        opt_len += 4;
    }
    let header_len = TCP_LEN + opt_len;
    let segment_len = header_len + spec.payload.len();
    let mut f = Vec::with_capacity(ETH_LEN + ip_header_len(ips) + segment_len + MIN_FRAME_LEN);
    push_eth_ip(
        &mut f,
        spec.src.ip(),
        spec.dst.ip(),
        ips,
        IPPROTO_TCP,
        segment_len,
        spec.ip_id,
    );
    let start = f.len();
    f.extend_from_slice(&spec.src.port().to_be_bytes());
    f.extend_from_slice(&spec.dst.port().to_be_bytes());
    f.extend_from_slice(&spec.seq.to_be_bytes());
    f.extend_from_slice(&spec.ack.to_be_bytes());
    f.extend_from_slice(&[((header_len / 4) as u8) << 4, spec.flags]);
    f.extend_from_slice(&spec.window.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    f.extend_from_slice(&options[..opt_len]);
    f.extend_from_slice(spec.payload);
    let csum = fold(sum_words(&f[start..], ips.pseudo_sum(IPPROTO_TCP, segment_len)));
    f[start + 16..start + 18].copy_from_slice(&csum.to_be_bytes());
    pad(&mut f);
    f
}

/// Builds a complete Ethernet frame carrying one UDP datagram.
///
/// # Panics
/// If the datagram does not fit in one IP packet.
pub fn udp_frame(spec: &UdpSpec<'_>) -> Vec<u8> {
    let ips = IpPair::of(spec.src.ip(), spec.dst.ip());
    let segment_len = UDP_LEN + spec.payload.len();
    let mut f = Vec::with_capacity(ETH_LEN + ip_header_len(ips) + segment_len + MIN_FRAME_LEN);
    push_eth_ip(
        &mut f,
        spec.src.ip(),
        spec.dst.ip(),
        ips,
        IPPROTO_UDP,
        segment_len,
        spec.ip_id,
    );
    let start = f.len();
    f.extend_from_slice(&spec.src.port().to_be_bytes());
    f.extend_from_slice(&spec.dst.port().to_be_bytes());
    f.extend_from_slice(&(segment_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(spec.payload);
    let csum = match fold(sum_words(&f[start..], ips.pseudo_sum(IPPROTO_UDP, segment_len))) {
        0 => 0xFFFF, // zero means "no checksum" in UDP
        c => c,
    };
    f[start + 6..start + 8].copy_from_slice(&csum.to_be_bytes());
    pad(&mut f);
    f
}

/// Why [`decode_frame`] rejected a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame truncated in the {0} header or payload")]
    Truncated(&'static str),
    #[error("bad {0} checksum")]
    BadChecksum(&'static str),
    #[error("unsupported {0}")]
    Unsupported(&'static str),
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// The transport header of a decoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp {
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
        mss: Option<u16>,
        window_scale: Option<u8>,
    },
    Udp,
}

/// A frame that passed [`decode_frame`]'s checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodedFrame<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// IPv4 identification; `None` for IPv6.
    pub ip_id: Option<u16>,
    /// True when IPv4 Don't Fragment is set (always false for IPv6).
    pub dont_fragment: bool,
    pub transport: Transport,
    pub payload: &'a [u8],
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Strictly decodes an Ethernet II frame carrying IPv4 or IPv6 (no extension headers) and TCP or
/// UDP, verifying the IPv4 header checksum and the TCP/UDP checksum. Trailing Ethernet padding is
/// allowed. Meant for tests of the synthesisers, not as a general dissector.
pub fn decode_frame(frame: &[u8]) -> Result<DecodedFrame<'_>, FrameError> {
    if frame.len() < ETH_LEN {
        return Err(FrameError::Truncated("Ethernet"));
    }
    let ip = &frame[ETH_LEN..];
    let (src_ip, dst_ip, ips, proto, segment, ip_id, dont_fragment) = match be16(frame, 12) {
        ETHERTYPE_IPV4 => {
            if ip.len() < IPV4_LEN {
                return Err(FrameError::Truncated("IPv4"));
            }
            if ip[0] >> 4 != 4 {
                return Err(FrameError::Malformed("IPv4 version"));
            }
            let ihl = usize::from(ip[0] & 0x0F) * 4;
            let total = usize::from(be16(ip, 2));
            if ihl < IPV4_LEN || total < ihl {
                return Err(FrameError::Malformed("IPv4 lengths"));
            }
            if ip.len() < total {
                return Err(FrameError::Truncated("IPv4"));
            }
            if internet_checksum(&ip[..ihl]) != 0 {
                return Err(FrameError::BadChecksum("IPv4 header"));
            }
            let frag = be16(ip, 6);
            if frag & 0x3FFF != 0 {
                return Err(FrameError::Unsupported("IPv4 fragment"));
            }
            let s: [u8; 4] = [ip[12], ip[13], ip[14], ip[15]];
            let d: [u8; 4] = [ip[16], ip[17], ip[18], ip[19]];
            (
                IpAddr::from(s),
                IpAddr::from(d),
                IpPair::V4(s, d),
                ip[9],
                &ip[ihl..total],
                Some(be16(ip, 4)),
                frag & 0x4000 != 0,
            )
        }
        ETHERTYPE_IPV6 => {
            if ip.len() < IPV6_LEN {
                return Err(FrameError::Truncated("IPv6"));
            }
            if ip[0] >> 4 != 6 {
                return Err(FrameError::Malformed("IPv6 version"));
            }
            let payload_len = usize::from(be16(ip, 4));
            if ip.len() < IPV6_LEN + payload_len {
                return Err(FrameError::Truncated("IPv6"));
            }
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&ip[8..24]);
            d.copy_from_slice(&ip[24..40]);
            (
                IpAddr::from(s),
                IpAddr::from(d),
                IpPair::V6(s, d),
                ip[6],
                &ip[IPV6_LEN..IPV6_LEN + payload_len],
                None,
                false,
            )
        }
        _ => return Err(FrameError::Unsupported("EtherType")),
    };
    let check = |name| {
        if fold(sum_words(segment, ips.pseudo_sum(proto, segment.len()))) == 0 {
            Ok(())
        } else {
            Err(FrameError::BadChecksum(name))
        }
    };
    match proto {
        IPPROTO_TCP => {
            if segment.len() < TCP_LEN {
                return Err(FrameError::Truncated("TCP"));
            }
            let header_len = usize::from(segment[12] >> 4) * 4;
            if header_len < TCP_LEN || header_len > segment.len() {
                return Err(FrameError::Malformed("TCP data offset"));
            }
            check("TCP")?;
            let (mss, window_scale) = tcp_options(&segment[TCP_LEN..header_len])?;
            Ok(DecodedFrame {
                src: SocketAddr::new(src_ip, be16(segment, 0)),
                dst: SocketAddr::new(dst_ip, be16(segment, 2)),
                ip_id,
                dont_fragment,
                transport: Transport::Tcp {
                    seq: be32(segment, 4),
                    ack: be32(segment, 8),
                    flags: segment[13],
                    window: be16(segment, 14),
                    mss,
                    window_scale,
                },
                payload: &segment[header_len..],
            })
        }
        IPPROTO_UDP => {
            if segment.len() < UDP_LEN {
                return Err(FrameError::Truncated("UDP"));
            }
            if usize::from(be16(segment, 4)) != segment.len() {
                return Err(FrameError::Malformed("UDP length"));
            }
            if be16(segment, 6) != 0 {
                check("UDP")?;
            }
            Ok(DecodedFrame {
                src: SocketAddr::new(src_ip, be16(segment, 0)),
                dst: SocketAddr::new(dst_ip, be16(segment, 2)),
                ip_id,
                dont_fragment,
                transport: Transport::Udp,
                payload: &segment[UDP_LEN..],
            })
        }
        _ => Err(FrameError::Unsupported("IP protocol")),
    }
}

/// Extracts MSS and window scale from a TCP options area.
fn tcp_options(mut opts: &[u8]) -> Result<(Option<u16>, Option<u8>), FrameError> {
    let (mut mss, mut ws) = (None, None);
    while let Some(&kind) = opts.first() {
        match kind {
            0 => break,
            1 => opts = &opts[1..],
            _ => {
                let len = usize::from(*opts.get(1).ok_or(FrameError::Malformed("TCP option"))?);
                if len < 2 || len > opts.len() {
                    return Err(FrameError::Malformed("TCP option length"));
                }
                match (kind, len) {
                    (2, 4) => mss = Some(be16(opts, 2)),
                    (3, 3) => ws = Some(opts[2]),
                    _ => {}
                }
                opts = &opts[len..];
            }
        }
    }
    Ok((mss, ws))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3 example: words 0001 f203 f4f5 f6f7 sum to ddf2, checksum 220d.
        let data = [0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7];
        assert_eq!(internet_checksum(&data), 0x220D);
        assert_eq!(internet_checksum(&[0xFF]), 0x00FF);
    }

    #[test]
    fn ipv4_header_checksum() {
        // The classic example header 4500 003c 1c46 4000 4006 .... ac10 0a63 ac10 0a0c -> b1e6.
        let mut classic = [
            0x45, 0x00, 0x00, 0x3C, 0x1C, 0x46, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 0xAC, 0x10, 0x0A, 0x63, 0xAC, 0x10,
            0x0A, 0x0C,
        ];
        assert_eq!(internet_checksum(&classic), 0xB1E6);
        classic[10..12].copy_from_slice(&0xB1E6u16.to_be_bytes());
        assert_eq!(internet_checksum(&classic), 0);
        // A built SYN with the same addresses and id has the same header but for its length.
        let spec = TcpSpec {
            ip_id: 0x1C46,
            mss: Some(1460),
            window_scale: Some(7),
            ..TcpSpec::new(v4("172.16.10.99:40000"), v4("172.16.10.12:80"), SYN)
        };
        let f = tcp_frame(&spec);
        assert_eq!(&f[14..16], &[0x45, 0x00]);
        assert_eq!(be16(&f, 16), 48);
        assert_eq!(&f[18..24], &[0x1C, 0x46, 0x40, 0x00, 0x40, 0x06]);
        assert_eq!(internet_checksum(&f[14..34]), 0);
    }

    #[test]
    fn tcp_v4_round_trip() {
        let payload = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let spec = TcpSpec {
            seq: 1000,
            ack: 2000,
            window: 502,
            ip_id: 77,
            payload,
            ..TcpSpec::new(v4("10.1.2.3:40000"), v4("10.2.0.1:80"), ACK | PSH)
        };
        let f = tcp_frame(&spec);
        assert_eq!(f.len(), 14 + 20 + 20 + payload.len());
        assert_eq!(&f[0..6], &[2, 0, 10, 2, 0, 1]);
        assert_eq!(&f[6..12], &[2, 0, 10, 1, 2, 3]);
        let d = decode_frame(&f).unwrap();
        assert_eq!(d.src, spec.src);
        assert_eq!(d.dst, spec.dst);
        assert_eq!(d.ip_id, Some(77));
        assert!(d.dont_fragment);
        assert_eq!(d.payload, payload);
        assert_eq!(
            d.transport,
            Transport::Tcp {
                seq: 1000,
                ack: 2000,
                flags: ACK | PSH,
                window: 502,
                mss: None,
                window_scale: None
            }
        );
    }

    #[test]
    fn syn_options_and_padding() {
        let spec = TcpSpec {
            mss: Some(1448),
            window_scale: Some(7),
            ..TcpSpec::new(v4("10.0.0.1:1"), v4("10.0.0.2:2"), SYN)
        };
        let f = tcp_frame(&spec);
        assert_eq!(f.len(), 62);
        let d = decode_frame(&f).unwrap();
        match d.transport {
            Transport::Tcp {
                mss,
                window_scale,
                flags,
                ..
            } => {
                assert_eq!((mss, window_scale, flags), (Some(1448), Some(7), SYN));
            }
            Transport::Udp => panic!("not TCP"),
        }
        let ack = tcp_frame(&TcpSpec::new(v4("10.0.0.1:1"), v4("10.0.0.2:2"), ACK));
        assert_eq!(ack.len(), MIN_FRAME_LEN);
        assert!(ack[54..].iter().all(|b| *b == 0));
        assert!(decode_frame(&ack).unwrap().payload.is_empty());
    }

    #[test]
    fn tcp_and_udp_v6_round_trip() {
        let src: SocketAddr = "[2001:db8::1]:5353".parse().unwrap();
        let dst: SocketAddr = "[2001:db8::2]:53".parse().unwrap();
        let f = udp_frame(&UdpSpec {
            src,
            dst,
            ip_id: 0,
            payload: b"hello",
        });
        assert_eq!(be16(&f, 12), ETHERTYPE_IPV6);
        let d = decode_frame(&f).unwrap();
        assert_eq!((d.src, d.dst, d.payload, d.ip_id), (src, dst, &b"hello"[..], None));
        let t = tcp_frame(&TcpSpec {
            payload: b"abc",
            ..TcpSpec::new(src, dst, ACK)
        });
        let d = decode_frame(&t).unwrap();
        assert_eq!(d.payload, b"abc");
        assert!(matches!(d.transport, Transport::Tcp { flags: ACK, .. }));
    }

    #[test]
    fn udp_v4_and_corruption_detected() {
        let spec = UdpSpec {
            src: v4("10.0.0.1:1234"),
            dst: v4("10.0.0.2:53"),
            ip_id: 9,
            payload: b"odd",
        };
        let mut f = udp_frame(&spec);
        assert_eq!(decode_frame(&f).unwrap().payload, b"odd");
        f[14 + 20 + 8] ^= 0x40;
        assert_eq!(decode_frame(&f), Err(FrameError::BadChecksum("UDP")));
        let mut t = tcp_frame(&TcpSpec {
            payload: b"data",
            ..TcpSpec::new(spec.src, spec.dst, ACK)
        });
        t[20] ^= 1; // IPv4 flags/offset byte
        assert_eq!(decode_frame(&t), Err(FrameError::BadChecksum("IPv4 header")));
    }

    #[test]
    fn mixed_families_become_mapped_v6() {
        let src = v4("10.0.0.1:1");
        let dst: SocketAddr = "[2001:db8::2]:80".parse().unwrap();
        let d = tcp_frame(&TcpSpec::new(src, dst, SYN));
        let dec = decode_frame(&d).unwrap();
        assert_eq!(dec.src.ip(), IpAddr::V6("::ffff:10.0.0.1".parse().unwrap()));
        assert_eq!(dec.dst, dst);
    }

    #[test]
    fn v6_mac_is_deterministic() {
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        assert_eq!(mac_for(a), mac_for(a));
        assert_ne!(mac_for(a), mac_for(b));
        assert_eq!(mac_for(a)[0] & 0x03, 0x02); // unicast, locally administered
    }
}
