//! What each primitive means, as tests on the packet joined by `and`/`or`/`not` — libpcap's
//! meaning, written with link-independent loads: the ethertype from `skb->protocol` and every
//! header field relative to the network header (`SKF_NET_OFF`).
//!
//! - `ip`/`ip6`/`arp`/`rarp`: the ethertype.
//! - `tcp`, `udp`, `sctp`, `pim`, `ah`, `esp`: IPv4 protocol field, or IPv6 next header either
//!   directly or behind one fragment header; `icmp`, `igmp`, `igrp`, `vrrp`, `carp`: IPv4 only;
//!   `icmp6`: IPv6 only.
//! - `host`/`net` on an IPv4 address: IPv4 source/destination, and also the sender/target
//!   protocol address of ARP and RARP packets (unless qualified with `ip`, `arp` or `rarp`).
//! - `host`/`net` on an IPv6 address: the IPv6 source/destination words under the prefix.
//! - `port`/`portrange`: IPv4 packets of TCP, UDP or SCTP that are not non-first fragments (the
//!   header length from IHL), or IPv6 packets whose next header is directly TCP, UDP or SCTP.
//! - `less N` / `greater N`: the length on the wire (link header included) `<= N` / `>= N`.

use super::ast::{Dir, IpVersion, Node, Prim, Proto};

const ETH_IPV4: u32 = 0x0800;
const ETH_IPV6: u32 = 0x86dd;
const ETH_ARP: u32 = 0x0806;
const ETH_RARP: u32 = 0x8035;
const IPPROTO_TCP: u32 = 6;
const IPPROTO_UDP: u32 = 17;
const IPPROTO_SCTP: u32 = 132;
const IPV6_FRAGMENT: u32 = 44;

/// Bytes loaded at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Size {
    B,
    H,
    W,
}

/// Where a tested value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Load {
    /// The ethertype (`skb->protocol`).
    Protocol,
    /// The length on the wire.
    Len,
    /// `off` bytes into the network header.
    Net(Size, u32),
    /// `off` bytes into the IPv4 payload (after IHL × 4 bytes of header).
    Ip4Payload(Size, u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Gt,
    Ge,
    /// Any of the bits of `k` set.
    Set,
}

/// `(load & mask) op k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Test {
    pub load: Load,
    pub mask: Option<u32>,
    pub op: Op,
    pub k: u32,
}

/// A condition on a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    True,
    False,
    Test(Test),
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

fn and(a: Cond, b: Cond) -> Cond {
    match (a, b) {
        (Cond::True, x) | (x, Cond::True) => x,
        (Cond::False, _) => Cond::False,
        (a, b) => Cond::And(Box::new(a), Box::new(b)),
    }
}

fn or(a: Cond, b: Cond) -> Cond {
    match (a, b) {
        (Cond::False, x) | (x, Cond::False) => x,
        (Cond::True, _) => Cond::True,
        (a, b) => Cond::Or(Box::new(a), Box::new(b)),
    }
}

fn not(a: Cond) -> Cond {
    match a {
        Cond::True => Cond::False,
        Cond::False => Cond::True,
        Cond::Not(x) => *x,
        x => Cond::Not(Box::new(x)),
    }
}

fn any(cs: impl IntoIterator<Item = Cond>) -> Cond {
    cs.into_iter().fold(Cond::False, or)
}

fn test(load: Load, op: Op, k: u32) -> Cond {
    Cond::Test(Test {
        load,
        mask: None,
        op,
        k,
    })
}

fn eq(load: Load, k: u32) -> Cond {
    test(load, Op::Eq, k)
}

fn masked_eq(load: Load, mask: u32, k: u32) -> Cond {
    if mask == u32::MAX {
        eq(load, k)
    } else {
        Cond::Test(Test {
            load,
            mask: Some(mask),
            op: Op::Eq,
            k: k & mask,
        })
    }
}

fn ethertype(t: u32) -> Cond {
    eq(Load::Protocol, t)
}

/// IPv4 packets of protocol `p`.
fn ip4_proto(p: u32) -> Cond {
    and(ethertype(ETH_IPV4), eq(Load::Net(Size::B, 9), p))
}

/// IPv6 packets whose next header is `p`, directly or after a fragment header.
fn ip6_proto(p: u32) -> Cond {
    let nxt = Load::Net(Size::B, 6);
    and(
        ethertype(ETH_IPV6),
        or(eq(nxt, p), and(eq(nxt, IPV6_FRAGMENT), eq(Load::Net(Size::B, 40), p))),
    )
}

fn by_dir(dir: Dir, src: Cond, dst: Cond) -> Cond {
    match dir {
        Dir::Src => src,
        Dir::Dst => dst,
        Dir::SrcOrDst => or(src, dst),
        Dir::SrcAndDst => and(src, dst),
    }
}

/// IPv4 `host`/`net` on ethertype `etype`, whose addresses are at `src_off`/`dst_off`.
fn net4_on(etype: u32, src_off: u32, dst_off: u32, dir: Dir, addr: u32, mask: u32) -> Cond {
    let at = |off| {
        if mask == 0 {
            Cond::True
        } else {
            masked_eq(Load::Net(Size::W, off), mask, addr)
        }
    };
    and(ethertype(etype), by_dir(dir, at(src_off), at(dst_off)))
}

fn net6(dir: Dir, addr: [u8; 16], prefix: u8) -> Cond {
    let at = |base: u32| {
        let mut c = Cond::True;
        for word in 0..4u32 {
            let bits = u32::from(prefix).saturating_sub(32 * word).min(32);
            if bits == 0 {
                break;
            }
            let mask = u32::MAX << (32 - bits);
            let i = word as usize * 4;
            let v = u32::from_be_bytes([addr[i], addr[i + 1], addr[i + 2], addr[i + 3]]);
            c = and(c, masked_eq(Load::Net(Size::W, base + 4 * word), mask, v));
        }
        c
    };
    and(ethertype(ETH_IPV6), by_dir(dir, at(8), at(24)))
}

fn port_test(load: Load, lo: u16, hi: u16) -> Cond {
    if lo == hi {
        eq(load, u32::from(lo))
    } else {
        and(
            test(load, Op::Ge, u32::from(lo)),
            not(test(load, Op::Gt, u32::from(hi))),
        )
    }
}

fn ports(proto: Option<Proto>, dir: Dir, lo: u16, hi: u16) -> Cond {
    let protos: Vec<u32> = match proto {
        Some(Proto::Tcp) => vec![IPPROTO_TCP],
        Some(Proto::Udp) => vec![IPPROTO_UDP],
        Some(Proto::Sctp) => vec![IPPROTO_SCTP],
        _ => vec![IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP],
    };
    // IPv4: not a later fragment (offset 0; the first fragment has the ports).
    let v4 = and(
        and(
            ethertype(ETH_IPV4),
            any(protos.iter().map(|&p| eq(Load::Net(Size::B, 9), p))),
        ),
        and(
            not(test(Load::Net(Size::H, 6), Op::Set, 0x1fff)),
            by_dir(
                dir,
                port_test(Load::Ip4Payload(Size::H, 0), lo, hi),
                port_test(Load::Ip4Payload(Size::H, 2), lo, hi),
            ),
        ),
    );
    let v6 = and(
        and(
            ethertype(ETH_IPV6),
            any(protos.iter().map(|&p| eq(Load::Net(Size::B, 6), p))),
        ),
        by_dir(
            dir,
            port_test(Load::Net(Size::H, 40), lo, hi),
            port_test(Load::Net(Size::H, 42), lo, hi),
        ),
    );
    or(v4, v6)
}

fn prim(p: &Prim) -> Cond {
    match *p {
        Prim::Proto(p) => match p {
            Proto::Ip => ethertype(ETH_IPV4),
            Proto::Ip6 => ethertype(ETH_IPV6),
            Proto::Arp => ethertype(ETH_ARP),
            Proto::Rarp => ethertype(ETH_RARP),
            Proto::Tcp => or(ip4_proto(IPPROTO_TCP), ip6_proto(IPPROTO_TCP)),
            Proto::Udp => or(ip4_proto(IPPROTO_UDP), ip6_proto(IPPROTO_UDP)),
            Proto::Sctp => or(ip4_proto(IPPROTO_SCTP), ip6_proto(IPPROTO_SCTP)),
            Proto::Pim => or(ip4_proto(103), ip6_proto(103)),
            Proto::Ah => or(ip4_proto(51), ip6_proto(51)),
            Proto::Esp => or(ip4_proto(50), ip6_proto(50)),
            Proto::Icmp => ip4_proto(1),
            Proto::Igmp => ip4_proto(2),
            Proto::Igrp => ip4_proto(9),
            Proto::Vrrp | Proto::Carp => ip4_proto(112),
            Proto::Icmp6 => ip6_proto(58),
        },
        Prim::Net4 { proto, dir, addr, mask } => {
            let ip = || net4_on(ETH_IPV4, 12, 16, dir, addr, mask);
            // ARP and RARP (Ethernet/IPv4 layout): sender address at 14, target at 24.
            let arp = |etype| net4_on(etype, 14, 24, dir, addr, mask);
            match proto {
                Some(Proto::Ip) => ip(),
                Some(Proto::Arp) => arp(ETH_ARP),
                Some(Proto::Rarp) => arp(ETH_RARP),
                _ => or(or(ip(), arp(ETH_ARP)), arp(ETH_RARP)),
            }
        }
        Prim::Net6 { dir, addr, prefix, .. } => net6(dir, addr.octets(), prefix),
        Prim::Port { proto, dir, lo, hi, .. } => ports(proto, dir, lo, hi),
        Prim::IpProto { version, number } => {
            let n = u32::from(number);
            match version {
                IpVersion::V4 => ip4_proto(n),
                IpVersion::V6 => ip6_proto(n),
                IpVersion::Both => or(ip4_proto(n), ip6_proto(n)),
            }
        }
        Prim::EtherProto(t) => ethertype(u32::from(t)),
        Prim::Less(n) => not(test(Load::Len, Op::Gt, n)),
        Prim::Greater(n) => test(Load::Len, Op::Ge, n),
    }
}

/// The condition a filter tree stands for.
pub fn lower(n: &Node) -> Cond {
    match n {
        Node::All => Cond::True,
        Node::Prim(p) => prim(p),
        Node::Not(a) => not(lower(a)),
        Node::And(a, b) => and(lower(a), lower(b)),
        Node::Or(a, b) => or(lower(a), lower(b)),
    }
}
