//! The events the probes write into their ring buffers, parsed from bytes. The layouts are those
//! of `struct tcp_event` and `struct tls_event` in `bpf/common.h` (little-endian, x86_64).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const EV_HANDSHAKE: u8 = 1;
const EV_RETRANSMIT: u8 = 2;
const EV_TCP_PROBE: u8 = 3;
const EV_TLS_DATA: u8 = 4;

/// `sizeof(struct tcp_event)`.
pub const TCP_EVENT_LEN: usize = 88;
/// `sizeof(struct tls_event)` without its data.
pub const TLS_HEADER_LEN: usize = 96;
/// Bytes of plaintext one TLS event carries at most (`TLS_CHUNK`).
pub const TLS_CHUNK: usize = 16384;
/// Pieces one SSL call is cut into at most (`TLS_MAX_CHUNKS`); bytes beyond are not copied.
pub const TLS_MAX_CHUNKS: usize = 8;

#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    Tcp(TcpEvent),
    Tls(TlsEvent<'a>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpEventKind {
    /// connect() to ESTABLISHED took `rtt_ns` (SYN → SYN-ACK, as the connecting kernel saw it).
    Handshake { rtt_ns: u64 },
    /// One retransmitted skb: `segments` segments from `seq` to `end_seq`; `state` is the TCP
    /// state of the socket.
    Retransmit {
        seq: u32,
        end_seq: u32,
        segments: u32,
        state: u32,
    },
    /// The socket's smoothed RTT, its variation, its congestion window (segments) and its total
    /// retransmissions so far, sampled when a segment arrived.
    Probe {
        srtt_us: u32,
        rttvar_us: u32,
        cwnd: u32,
        total_retrans: u32,
    },
}

/// A TCP event: `local` and `remote` are the socket's two ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpEvent {
    pub kind: TcpEventKind,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// CLOCK_MONOTONIC nanoseconds.
    pub mono_ns: u64,
    /// For handshakes: the process that called connect(), with its command name.
    pub pid: u32,
    pub comm: [u8; 16],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsDir {
    /// The process sent this (SSL_write).
    Sent,
    /// The process received this (SSL_read).
    Received,
}

/// A piece of plaintext of one SSL call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsEvent<'a> {
    pub dir: TlsDir,
    pub pid: u32,
    pub tid: u32,
    pub comm: [u8; 16],
    pub mono_ns: u64,
    /// The `SSL *`: one connection within process `pid`.
    pub conn: u64,
    /// The socket's local and remote ends, once a syscall inside an SSL call named them.
    pub addrs: Option<(SocketAddr, SocketAddr)>,
    /// Bytes of the whole call; `offset` is where `data` starts in it.
    pub len: u32,
    pub offset: u32,
    pub data: &'a [u8],
}

/// A command name without its trailing NULs.
pub fn comm_str(comm: &[u8; 16]) -> String {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    String::from_utf8_lossy(&comm[..end]).into_owned()
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn addr(family: u8, raw: &[u8]) -> Option<IpAddr> {
    match family {
        4 => Some(IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))),
        6 => {
            let a = Ipv6Addr::from(<[u8; 16]>::try_from(&raw[..16]).ok()?);
            // A v4-mapped address is the IPv4 peer of a dual-stack socket: show it as IPv4, as the
            // packets carry it.
            Some(a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4))
        }
        _ => None,
    }
}

fn comm_at(b: &[u8], at: usize) -> [u8; 16] {
    b[at..at + 16].try_into().expect("16 bytes")
}

/// Parses one record of either ring buffer; `None` for a record too short or of an unknown kind.
pub fn parse(b: &[u8]) -> Option<Event<'_>> {
    match *b.first()? {
        EV_TLS_DATA => parse_tls(b).map(Event::Tls),
        _ => parse_tcp(b).map(Event::Tcp),
    }
}

fn parse_tcp(b: &[u8]) -> Option<TcpEvent> {
    if b.len() < TCP_EVENT_LEN {
        return None;
    }
    let family = b[1];
    let (sport, dport) = (u16_at(b, 2), u16_at(b, 4));
    let pid = u32_at(b, 8);
    let value2 = u32_at(b, 12);
    let mono_ns = u64_at(b, 16);
    let value1 = u64_at(b, 24);
    let value3 = u32_at(b, 32);
    let value4 = u32_at(b, 36);
    let local = SocketAddr::new(addr(family, &b[40..56])?, sport);
    let remote = SocketAddr::new(addr(family, &b[56..72])?, dport);
    let kind = match b[0] {
        EV_HANDSHAKE => TcpEventKind::Handshake { rtt_ns: value1 },
        EV_RETRANSMIT => TcpEventKind::Retransmit {
            seq: (value1 >> 32) as u32,
            end_seq: value1 as u32,
            segments: value2.max(1),
            state: value3,
        },
        EV_TCP_PROBE => TcpEventKind::Probe {
            srtt_us: value1 as u32,
            rttvar_us: value3,
            cwnd: value2,
            total_retrans: value4,
        },
        _ => return None,
    };
    Some(TcpEvent {
        kind,
        local,
        remote,
        mono_ns,
        pid,
        comm: comm_at(b, 72),
    })
}

fn parse_tls(b: &[u8]) -> Option<TlsEvent<'_>> {
    if b.len() < TLS_HEADER_LEN {
        return None;
    }
    let family = b[1];
    let (sport, dport) = (u16_at(b, 2), u16_at(b, 4));
    let dir = if b[6] == 0 { TlsDir::Sent } else { TlsDir::Received };
    let captured = u32_at(b, 40) as usize;
    let data = b.get(TLS_HEADER_LEN..TLS_HEADER_LEN + captured)?;
    let addrs = match (addr(family, &b[64..80]), addr(family, &b[80..96])) {
        (Some(l), Some(r)) => Some((SocketAddr::new(l, sport), SocketAddr::new(r, dport))),
        _ => None,
    };
    Some(TlsEvent {
        dir,
        pid: u32_at(b, 8),
        tid: u32_at(b, 12),
        mono_ns: u64_at(b, 16),
        conn: u64_at(b, 24),
        len: u32_at(b, 32),
        offset: u32_at(b, 36),
        comm: comm_at(b, 48),
        addrs,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_record(kind: u8, family: u8) -> Vec<u8> {
        let mut b = vec![0u8; TCP_EVENT_LEN];
        b[0] = kind;
        b[1] = family;
        b[2..4].copy_from_slice(&40000u16.to_le_bytes());
        b[4..6].copy_from_slice(&80u16.to_le_bytes());
        b[8..12].copy_from_slice(&1234u32.to_le_bytes());
        b[12..16].copy_from_slice(&3u32.to_le_bytes());
        b[16..24].copy_from_slice(&5_000_000u64.to_le_bytes());
        b[24..32].copy_from_slice(&((7u64 << 32) | 9).to_le_bytes());
        b[32..36].copy_from_slice(&4u32.to_le_bytes());
        b[36..40].copy_from_slice(&11u32.to_le_bytes());
        b[40..44].copy_from_slice(&[10, 0, 0, 1]);
        b[56..60].copy_from_slice(&[10, 0, 0, 2]);
        b[72..76].copy_from_slice(b"curl");
        b
    }

    #[test]
    fn handshake_and_retransmit_records() {
        let Some(Event::Tcp(e)) = parse(&tcp_record(EV_HANDSHAKE, 4)) else {
            panic!()
        };
        assert_eq!(e.local, "10.0.0.1:40000".parse().unwrap());
        assert_eq!(e.remote, "10.0.0.2:80".parse().unwrap());
        assert_eq!(e.kind, TcpEventKind::Handshake { rtt_ns: (7 << 32) | 9 });
        assert_eq!(
            (e.pid, comm_str(&e.comm).as_str(), e.mono_ns),
            (1234, "curl", 5_000_000)
        );
        let Some(Event::Tcp(e)) = parse(&tcp_record(EV_RETRANSMIT, 4)) else {
            panic!()
        };
        assert_eq!(
            e.kind,
            TcpEventKind::Retransmit {
                seq: 7,
                end_seq: 9,
                segments: 3,
                state: 4
            }
        );
        let Some(Event::Tcp(e)) = parse(&tcp_record(EV_TCP_PROBE, 4)) else {
            panic!()
        };
        assert_eq!(
            e.kind,
            TcpEventKind::Probe {
                srtt_us: 9,
                rttvar_us: 4,
                cwnd: 3,
                total_retrans: 11
            }
        );
    }

    #[test]
    fn v4_mapped_ipv6_is_shown_as_ipv4_and_bad_records_are_refused() {
        let mut b = tcp_record(EV_HANDSHAKE, 6);
        b[40..56].copy_from_slice(&Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped().octets());
        b[56..72].copy_from_slice(&Ipv6Addr::LOCALHOST.octets());
        let Some(Event::Tcp(e)) = parse(&b) else { panic!() };
        assert_eq!(e.local.ip(), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(e.remote.ip(), IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert!(parse(&b[..40]).is_none());
        assert!(parse(&tcp_record(9, 4)).is_none());
        assert!(parse(&tcp_record(EV_HANDSHAKE, 3)).is_none());
        assert!(parse(&[]).is_none());
    }

    #[test]
    fn tls_records_carry_their_data_and_maybe_addresses() {
        let mut b = vec![0u8; TLS_HEADER_LEN];
        b[0] = EV_TLS_DATA;
        b[6] = 1;
        b[8..12].copy_from_slice(&77u32.to_le_bytes());
        b[24..32].copy_from_slice(&0xdead_beefu64.to_le_bytes());
        b[32..36].copy_from_slice(&20u32.to_le_bytes());
        b[40..44].copy_from_slice(&5u32.to_le_bytes());
        b.extend_from_slice(b"GET /");
        let Some(Event::Tls(e)) = parse(&b) else { panic!() };
        assert_eq!(
            (e.dir, e.pid, e.conn, e.len, e.data),
            (TlsDir::Received, 77, 0xdead_beef, 20, &b"GET /"[..])
        );
        assert_eq!(e.addrs, None);
        b[1] = 4;
        b[2..4].copy_from_slice(&443u16.to_le_bytes());
        b[4..6].copy_from_slice(&50000u16.to_le_bytes());
        b[64..68].copy_from_slice(&[127, 0, 0, 1]);
        b[80..84].copy_from_slice(&[127, 0, 0, 2]);
        let Some(Event::Tls(e)) = parse(&b) else { panic!() };
        assert_eq!(
            e.addrs,
            Some(("127.0.0.1:443".parse().unwrap(), "127.0.0.2:50000".parse().unwrap()))
        );
        // `captured` beyond the record is refused, not read past.
        b[40..44].copy_from_slice(&6u32.to_le_bytes());
        assert!(parse(&b).is_none());
    }
}
