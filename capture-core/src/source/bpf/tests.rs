//! The whole path — text, parser, lowering, code generation, interpreter — on hand-built
//! packets, and against an obviously-correct model over random filters and packets.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::ast::{Dir, IpVersion, Node, Prim, Proto};
use super::*;
use crate::source::{LinkType, Packet};
use crate::time::Timestamp;

/// A packet described by its fields; [`frame`] writes it as bytes.
#[derive(Debug, Clone)]
enum Net {
    V4 {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        /// Fragment offset in 8-byte units.
        frag: u16,
        more_frags: bool,
        /// Header length in 32-bit words (5, or 6 with a 4-byte option).
        ihl: u8,
        sport: u16,
        dport: u16,
    },
    V6 {
        src: Ipv6Addr,
        dst: Ipv6Addr,
        /// The next header of the fixed header; with 44 a fragment header follows, whose next
        /// header is `inner`.
        nxt: u8,
        inner: u8,
        sport: u16,
        dport: u16,
    },
    Arp {
        rarp: bool,
        spa: Ipv4Addr,
        tpa: Ipv4Addr,
    },
    Other(u16),
}

impl Net {
    fn ethertype(&self) -> u16 {
        match self {
            Net::V4 { .. } => 0x0800,
            Net::V6 { .. } => 0x86dd,
            Net::Arp { rarp: false, .. } => 0x0806,
            Net::Arp { rarp: true, .. } => 0x8035,
            Net::Other(t) => *t,
        }
    }

    /// The network header and everything after it.
    fn bytes(&self) -> Vec<u8> {
        match *self {
            Net::V4 {
                src,
                dst,
                proto,
                frag,
                more_frags,
                ihl,
                sport,
                dport,
            } => {
                let hl = usize::from(ihl) * 4;
                let mut b = vec![0u8; hl + 20 + 16];
                let total = b.len() as u16;
                b[0] = 0x40 | ihl;
                b[2..4].copy_from_slice(&total.to_be_bytes());
                let flags = frag | if more_frags { 0x2000 } else { 0 };
                b[6..8].copy_from_slice(&flags.to_be_bytes());
                b[8] = 64;
                b[9] = proto;
                b[12..16].copy_from_slice(&src.octets());
                b[16..20].copy_from_slice(&dst.octets());
                if ihl > 5 {
                    b[20..hl].fill(1); // NOPs
                }
                b[hl..hl + 2].copy_from_slice(&sport.to_be_bytes());
                b[hl + 2..hl + 4].copy_from_slice(&dport.to_be_bytes());
                b
            }
            Net::V6 {
                src,
                dst,
                nxt,
                inner,
                sport,
                dport,
            } => {
                let mut b = vec![0u8; 40 + 8 + 20 + 16];
                b[0] = 0x60;
                let payload = (b.len() - 40) as u16;
                b[4..6].copy_from_slice(&payload.to_be_bytes());
                b[6] = nxt;
                b[7] = 64;
                b[8..24].copy_from_slice(&src.octets());
                b[24..40].copy_from_slice(&dst.octets());
                let t = if nxt == 44 {
                    b[40] = inner;
                    48
                } else {
                    40
                };
                b[t..t + 2].copy_from_slice(&sport.to_be_bytes());
                b[t + 2..t + 4].copy_from_slice(&dport.to_be_bytes());
                b
            }
            Net::Arp { spa, tpa, .. } => {
                let mut b = vec![0, 1, 8, 0, 6, 4, 0, 1];
                b.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]);
                b.extend_from_slice(&spa.octets());
                b.extend_from_slice(&[0; 6]);
                b.extend_from_slice(&tpa.octets());
                b
            }
            Net::Other(_) => vec![0xab; 46],
        }
    }
}

/// An Ethernet frame carrying `net`, with an 802.1Q tag when `vlan`.
fn frame(net: &Net, vlan: bool) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    if vlan {
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
    }
    f.extend_from_slice(&net.ethertype().to_be_bytes());
    f.extend_from_slice(&net.bytes());
    f
}

fn packet(link: LinkType, data: &[u8]) -> Packet<'_> {
    Packet {
        ts: Timestamp(0),
        link,
        data,
        orig_len: data.len() as u32,
        interface: 0,
    }
}

fn matches(filter: &str, data: &[u8]) -> bool {
    let f = Filter::compile(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
    f.matches(&packet(LinkType::ETHERNET, data))
}

fn v4(a: &str) -> Ipv4Addr {
    a.parse().unwrap()
}

fn v6(a: &str) -> Ipv6Addr {
    a.parse().unwrap()
}

fn tcp4(src: &str, dst: &str, sport: u16, dport: u16) -> Net {
    Net::V4 {
        src: v4(src),
        dst: v4(dst),
        proto: 6,
        frag: 0,
        more_frags: false,
        ihl: 5,
        sport,
        dport,
    }
}

#[test]
fn ipv4_tcp_with_and_without_options() {
    for ihl in [5, 6] {
        let mut n = tcp4("10.0.0.1", "192.168.1.9", 40000, 80);
        if let Net::V4 { ihl: h, .. } = &mut n {
            *h = ihl;
        }
        let f = frame(&n, false);
        for yes in [
            "tcp",
            "ip",
            "tcp port 80",
            "dst port 80",
            "port http",
            "portrange 70-90",
            "tcp dst portrange 80-80",
            "src port 40000",
            "host 10.0.0.1",
            "src host 10.0.0.1",
            "dst net 192.168.1.0/24",
            "net 10",
            "net 192.168 and net 10.0.0.0 mask 255.0.0.0",
            "ip proto 6",
            "proto \\tcp",
            "ether proto \\ip",
            "greater 60",
            "not udp",
            "host 10.0.0.1 and 192.168.1.9",
            "src and dst net 0.0.0.0/0",
        ] {
            assert!(matches(yes, &f), "ihl {ihl}: {yes} should match");
        }
        for no in [
            "udp",
            "ip6",
            "arp",
            "src port 80",
            "udp port 80",
            "sctp port 80",
            "portrange 81-90",
            "dst host 10.0.0.1",
            "src and dst host 10.0.0.1",
            "net 172.16.0.0/12",
            "icmp",
            "ip6 proto 6",
            "less 60",
            "not tcp",
            "arp host 10.0.0.1",
        ] {
            assert!(!matches(no, &f), "ihl {ihl}: {no} should not match");
        }
    }
}

#[test]
fn ipv4_fragments_have_ports_only_in_the_first() {
    let first = Net::V4 {
        src: v4("10.0.0.1"),
        dst: v4("10.0.0.2"),
        proto: 17,
        frag: 0,
        more_frags: true,
        ihl: 5,
        sport: 5353,
        dport: 53,
    };
    // A later fragment whose payload happens to start with the same "ports".
    let later = match first.clone() {
        Net::V4 {
            src,
            dst,
            proto,
            ihl,
            sport,
            dport,
            ..
        } => Net::V4 {
            src,
            dst,
            proto,
            frag: 185,
            more_frags: false,
            ihl,
            sport,
            dport,
        },
        _ => unreachable!(),
    };
    assert!(matches("udp port 53", &frame(&first, false)));
    assert!(!matches("udp port 53", &frame(&later, false)));
    assert!(matches("udp and host 10.0.0.2", &frame(&later, false)));
}

#[test]
fn ipv6_direct_and_behind_a_fragment_header() {
    let direct = Net::V6 {
        src: v6("2001:db8::1"),
        dst: v6("::1"),
        nxt: 6,
        inner: 0,
        sport: 443,
        dport: 50000,
    };
    let f = frame(&direct, false);
    for yes in [
        "ip6",
        "tcp",
        "tcp port 443",
        "src port https",
        "ip6 host ::1",
        "dst host ::1",
        "src net 2001:db8::/32",
        "ip6 net ::/0",
        "ip6 proto 6",
        "proto 6",
    ] {
        assert!(matches(yes, &f), "{yes} should match");
    }
    for no in [
        "ip",
        "udp",
        "src host ::1",
        "net 2001:db9::/32",
        "ip proto 6",
        "icmp6",
        "port 80",
    ] {
        assert!(!matches(no, &f), "{no} should not match");
    }
    let fragmented = match direct {
        Net::V6 {
            src, dst, sport, dport, ..
        } => Net::V6 {
            src,
            dst,
            nxt: 44,
            inner: 6,
            sport,
            dport,
        },
        _ => unreachable!(),
    };
    let f = frame(&fragmented, false);
    // libpcap: the protocol test looks behind one fragment header, the port test does not.
    assert!(matches("tcp", &f));
    assert!(matches("ip6 proto 6", &f));
    assert!(!matches("tcp port 443", &f));
}

#[test]
fn vlan_tags_are_stripped_like_the_kernel_does() {
    let f = frame(&tcp4("10.0.0.1", "10.0.0.2", 1234, 80), true);
    assert!(matches("tcp port 80 and host 10.0.0.2", &f));
    assert!(matches("ether proto 0x800", &f));
    assert!(!matches("ether proto 0x8100", &f));
}

#[test]
fn arp_and_rarp_addresses() {
    let arp = Net::Arp {
        rarp: false,
        spa: v4("10.0.0.1"),
        tpa: v4("10.0.0.2"),
    };
    let f = frame(&arp, false);
    for yes in [
        "arp",
        "host 10.0.0.1",
        "src host 10.0.0.1",
        "arp dst host 10.0.0.2",
        "net 10.0.0.0/24",
        "ether proto \\arp",
    ] {
        assert!(matches(yes, &f), "{yes} should match");
    }
    for no in [
        "ip",
        "rarp",
        "ip host 10.0.0.1",
        "dst host 10.0.0.1",
        "port 80",
        "tcp",
        "rarp host 10.0.0.1",
    ] {
        assert!(!matches(no, &f), "{no} should not match");
    }
    let rarp = frame(
        &Net::Arp {
            rarp: true,
            spa: v4("10.0.0.1"),
            tpa: v4("10.0.0.2"),
        },
        false,
    );
    assert!(matches("rarp and host 10.0.0.2", &rarp));
    assert!(!matches("arp", &rarp));
}

#[test]
fn a_load_past_the_end_rejects_the_packet_even_under_not() {
    let full = frame(&tcp4("10.0.0.1", "10.0.0.2", 1234, 80), false);
    // Cut after the IPv4 header: the ports are not there.
    let cut = &full[..14 + 20];
    let f = |s: &str| Filter::compile(s).unwrap().matches(&packet(LinkType::ETHERNET, cut));
    assert!(f("tcp"));
    assert!(!f("port 80"));
    assert!(
        !f("not port 80"),
        "the kernel rejects when a load fails, whatever the expression"
    );
    assert!(f("tcp or port 80"), "short-circuit: the port is never loaded");
    assert!(!f("less 1 or port 80"));
    // A frame too short for its link header matches nothing, not even the empty filter.
    assert!(
        !Filter::compile("")
            .unwrap()
            .matches(&packet(LinkType::ETHERNET, &full[..10]))
    );
}

#[test]
fn the_same_program_works_on_every_link_type() {
    let net = tcp4("10.0.0.1", "10.0.0.2", 1234, 80);
    let ip = net.bytes();
    let mut sll = vec![0u8; 14];
    sll.extend_from_slice(&[0x08, 0x00]);
    sll.extend_from_slice(&ip);
    let mut sll2 = vec![0x08, 0x00];
    sll2.extend_from_slice(&[0u8; 18]);
    sll2.extend_from_slice(&ip);
    let mut null = vec![2, 0, 0, 0];
    null.extend_from_slice(&ip);
    let f = Filter::compile("tcp dst port 80 and src host 10.0.0.1").unwrap();
    let not_ours = Filter::compile("udp or ip6 or dst port 81").unwrap();
    for (link, data) in [
        (LinkType::ETHERNET, frame(&net, false)),
        (LinkType::LINUX_SLL, sll),
        (LinkType::LINUX_SLL2, sll2),
        (LinkType::NULL, null),
        (LinkType::RAW, ip.clone()),
        (LinkType::IPV4, ip),
    ] {
        assert!(f.matches(&packet(link, &data)), "{link:?}");
        assert!(!not_ours.matches(&packet(link, &data)), "{link:?}");
    }
    // `less`/`greater` measure the wire length, link header included (as libpcap's `len`).
    let mut p = packet(LinkType::RAW, &[0x45; 20]);
    p.orig_len = 1500;
    assert!(Filter::compile("greater 1500").unwrap().matches(&p));
    assert!(!Filter::compile("less 1499").unwrap().matches(&p));
}

#[test]
fn long_programs_jump_through_trampolines() {
    // 40 hosts: ~700 instructions, well past the 255 a conditional jump can reach.
    let hosts: Vec<String> = (1..=40).map(|i| format!("10.0.{i}.1")).collect();
    let filter = format!("host {}", hosts.join(" or "));
    let f = Filter::compile(&filter).unwrap();
    assert!(f.program().len() > 600, "{}", f.program().len());
    assert!(
        f.program().insns().iter().any(|i| i.code == insn::JMP | insn::JA),
        "a far target needs a ja"
    );
    for (i, h) in hosts.iter().enumerate() {
        let net = tcp4(h, "172.16.0.1", 1, 2);
        assert!(f.matches(&packet(LinkType::ETHERNET, &frame(&net, false))), "host {i}");
        let arp = Net::Arp {
            rarp: true,
            spa: v4("172.16.0.1"),
            tpa: v4(h),
        };
        assert!(f.matches(&packet(LinkType::ETHERNET, &frame(&arp, false))), "rarp {i}");
    }
    let other = tcp4("10.0.41.1", "172.16.0.1", 1, 2);
    assert!(!f.matches(&packet(LinkType::ETHERNET, &frame(&other, false))));
}

#[test]
fn programs_past_the_kernel_limit_are_refused() {
    let hosts: Vec<String> = (0..260).map(|i| format!("10.{}.{}.1", i / 200, i % 200)).collect();
    let filter = format!("host {}", hosts.join(" or "));
    assert!(filter.len() <= MAX_FILTER_BYTES);
    let e = Filter::compile(&filter).unwrap_err();
    assert_eq!((e.kind, e.column), (ErrorKind::Limit, 1));
    assert!(e.message.contains("4096"), "{e}");
}

#[test]
fn normalized_form_and_disassembly() {
    let f = Filter::compile("tcp port 80 or 443 and not host 10.0.0.1").unwrap();
    assert_eq!(f.normalized(), "tcp port 80 or tcp port 443 and not host 10.0.0.1");
    let again = Filter::compile(f.normalized()).unwrap();
    assert_eq!(again.program(), f.program());
    assert!(f.disassemble().contains("ldh [proto]"));
    assert_eq!(f.expression(), "tcp port 80 or 443 and not host 10.0.0.1");
    assert!("port nosuch".parse::<Filter>().is_err());
}

// --- The model -------------------------------------------------------------------------------

fn dir_match(dir: Dir, src: bool, dst: bool) -> bool {
    match dir {
        Dir::Src => src,
        Dir::Dst => dst,
        Dir::SrcOrDst => src || dst,
        Dir::SrcAndDst => src && dst,
    }
}

/// The IP protocol of a packet as `tcp`/`ip proto` see it (IPv6: behind one fragment header).
fn model_proto(n: &Net, v4: bool, v6: bool, number: u8) -> bool {
    match *n {
        Net::V4 { proto, .. } => v4 && proto == number,
        Net::V6 { nxt, inner, .. } => v6 && (nxt == number || (nxt == 44 && inner == number)),
        _ => false,
    }
}

fn model_prim(p: &Prim, n: &Net, wire_len: u32) -> bool {
    match *p {
        Prim::Proto(pr) => match pr {
            Proto::Ip => matches!(n, Net::V4 { .. }),
            Proto::Ip6 => matches!(n, Net::V6 { .. }),
            Proto::Arp => matches!(n, Net::Arp { rarp: false, .. }),
            Proto::Rarp => matches!(n, Net::Arp { rarp: true, .. }),
            Proto::Tcp => model_proto(n, true, true, 6),
            Proto::Udp => model_proto(n, true, true, 17),
            Proto::Sctp => model_proto(n, true, true, 132),
            Proto::Pim => model_proto(n, true, true, 103),
            Proto::Ah => model_proto(n, true, true, 51),
            Proto::Esp => model_proto(n, true, true, 50),
            Proto::Icmp => model_proto(n, true, false, 1),
            Proto::Igmp => model_proto(n, true, false, 2),
            Proto::Igrp => model_proto(n, true, false, 9),
            Proto::Vrrp | Proto::Carp => model_proto(n, true, false, 112),
            Proto::Icmp6 => model_proto(n, false, true, 58),
        },
        Prim::Net4 { proto, dir, addr, mask } => {
            let hit = |a: Ipv4Addr| u32::from(a) & mask == addr;
            match *n {
                Net::V4 { src, dst, .. } => {
                    matches!(proto, None | Some(Proto::Ip)) && dir_match(dir, hit(src), hit(dst))
                }
                Net::Arp { rarp, spa, tpa } => {
                    let want = if rarp { Proto::Rarp } else { Proto::Arp };
                    (proto.is_none() || proto == Some(want)) && dir_match(dir, hit(spa), hit(tpa))
                }
                _ => false,
            }
        }
        Prim::Net6 { dir, addr, prefix, .. } => match *n {
            Net::V6 { src, dst, .. } => {
                let mask = if prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(prefix))
                };
                let hit = |a: Ipv6Addr| u128::from(a) & mask == u128::from(addr);
                dir_match(dir, hit(src), hit(dst))
            }
            _ => false,
        },
        Prim::Port { proto, dir, lo, hi, .. } => {
            let allowed = |p: u8| match proto {
                Some(Proto::Tcp) => p == 6,
                Some(Proto::Udp) => p == 17,
                Some(Proto::Sctp) => p == 132,
                _ => matches!(p, 6 | 17 | 132),
            };
            let inr = |x: u16| (lo..=hi).contains(&x);
            match *n {
                Net::V4 {
                    proto: p,
                    frag,
                    sport,
                    dport,
                    ..
                } => allowed(p) && frag == 0 && dir_match(dir, inr(sport), inr(dport)),
                Net::V6 { nxt, sport, dport, .. } => allowed(nxt) && dir_match(dir, inr(sport), inr(dport)),
                _ => false,
            }
        }
        Prim::IpProto { version, number } => match version {
            IpVersion::V4 => model_proto(n, true, false, number),
            IpVersion::V6 => model_proto(n, false, true, number),
            IpVersion::Both => model_proto(n, true, true, number),
        },
        Prim::EtherProto(t) => n.ethertype() == t,
        Prim::Less(x) => wire_len <= x,
        Prim::Greater(x) => wire_len >= x,
    }
}

fn model(node: &Node, n: &Net, wire_len: u32) -> bool {
    match node {
        Node::All => true,
        Node::Prim(p) => model_prim(p, n, wire_len),
        Node::Not(a) => !model(a, n, wire_len),
        Node::And(a, b) => model(a, n, wire_len) && model(b, n, wire_len),
        Node::Or(a, b) => model(a, n, wire_len) || model(b, n, wire_len),
    }
}

const V4_POOL: [&str; 3] = ["10.0.0.1", "10.0.0.2", "10.1.2.3"];
const V6_POOL: [&str; 3] = ["2001:db8::1", "2001:db8::2", "::1"];
/// Few values, so that random filters and random packets meet often.
const PORTS: [u16; 3] = [53, 80, 443];

fn any_v4() -> impl Strategy<Value = Ipv4Addr> {
    prop::sample::select(&V4_POOL[..]).prop_map(v4)
}

fn any_v6() -> impl Strategy<Value = Ipv6Addr> {
    prop::sample::select(&V6_POOL[..]).prop_map(v6)
}

fn any_port() -> impl Strategy<Value = u16> {
    prop_oneof![4 => prop::sample::select(&PORTS[..]), 1 => 1u16..2000]
}

fn any_dir() -> impl Strategy<Value = Dir> {
    prop::sample::select(vec![Dir::SrcOrDst, Dir::Src, Dir::Dst, Dir::SrcAndDst])
}

fn any_net() -> impl Strategy<Value = Net> {
    prop_oneof![
        (
            any_v4(),
            any_v4(),
            prop::sample::select(vec![6u8, 6, 17, 17, 132, 1, 2, 112]),
            prop::sample::select(vec![0u16, 0, 185]),
            any::<bool>(),
            5u8..=6,
            any_port(),
            any_port()
        )
            .prop_map(|(src, dst, proto, frag, more_frags, ihl, sport, dport)| Net::V4 {
                src,
                dst,
                proto,
                frag,
                more_frags,
                ihl,
                sport,
                dport
            }),
        (
            any_v6(),
            any_v6(),
            prop::sample::select(vec![6u8, 17, 132, 58, 44, 0]),
            prop::sample::select(vec![6u8, 17, 58]),
            any_port(),
            any_port()
        )
            .prop_map(|(src, dst, nxt, inner, sport, dport)| Net::V6 {
                src,
                dst,
                nxt,
                inner,
                sport,
                dport
            }),
        (any::<bool>(), any_v4(), any_v4()).prop_map(|(rarp, spa, tpa)| Net::Arp { rarp, spa, tpa }),
        prop::sample::select(vec![0x88ccu16, 0x0801]).prop_map(Net::Other),
    ]
}

fn any_prim() -> impl Strategy<Value = Prim> {
    prop_oneof![
        prop::sample::select(Proto::ALL.to_vec()).prop_map(Prim::Proto),
        (
            prop::sample::select(vec![None, Some(Proto::Ip), Some(Proto::Arp), Some(Proto::Rarp)]),
            any_dir(),
            any_v4(),
            prop::sample::select(vec![0u32, 8, 16, 24, 32])
        )
            .prop_map(|(proto, dir, a, len)| {
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                Prim::Net4 {
                    proto,
                    dir,
                    addr: u32::from(a) & mask,
                    mask,
                }
            }),
        (
            prop::sample::select(vec![None, Some(Proto::Ip6)]),
            any_dir(),
            any_v6(),
            prop::sample::select(vec![0u8, 16, 32, 64, 127, 128])
        )
            .prop_map(|(proto, dir, a, prefix)| {
                let mask = if prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(prefix))
                };
                Prim::Net6 {
                    proto,
                    dir,
                    addr: Ipv6Addr::from(u128::from(a) & mask),
                    prefix,
                }
            }),
        (
            prop::sample::select(vec![None, Some(Proto::Tcp), Some(Proto::Udp), Some(Proto::Sctp)]),
            any_dir(),
            any_port(),
            any_port(),
            any::<bool>()
        )
            .prop_map(|(proto, dir, a, b, range)| Prim::Port {
                proto,
                dir,
                lo: if range { a.min(b) } else { a },
                hi: if range { a.max(b) } else { a },
                range,
            }),
        (
            prop::sample::select(vec![IpVersion::V4, IpVersion::V6, IpVersion::Both]),
            prop::sample::select(vec![6u8, 17, 58, 1, 44])
        )
            .prop_map(|(version, number)| Prim::IpProto { version, number }),
        prop::sample::select(vec![0x0800u16, 0x86dd, 0x0806, 0x8035, 0x88cc]).prop_map(Prim::EtherProto),
        (60u32..140).prop_map(Prim::Less),
        (60u32..140).prop_map(Prim::Greater),
    ]
}

fn any_node() -> impl Strategy<Value = Node> {
    any_prim().prop_map(Node::Prim).prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|a| Node::Not(Box::new(a))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Node::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| Node::Or(Box::new(a), Box::new(b))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// Compiled and interpreted, every filter agrees with the model on every packet (all
    /// packets are long enough that no load fails), and its normal form parses back to itself.
    #[test]
    fn compiled_filters_agree_with_the_model(node in any_node(), net in any_net(), vlan in any::<bool>()) {
        let text = node.to_string();
        let f = Filter::compile(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(f.normalized(), text.as_str());
        let data = frame(&net, vlan);
        let want = model(&node, &net, data.len() as u32);
        prop_assert_eq!(f.matches(&packet(LinkType::ETHERNET, &data)), want, "{} on {:?}\n{}", text, net, f.disassemble());
    }

    /// `not A` keeps exactly what `A` drops; `A and B`, `A or B` are what they say.
    #[test]
    fn not_and_or_combine_as_booleans(a in any_node(), b in any_node(), net in any_net()) {
        let (a, b) = (a.to_string(), b.to_string());
        let data = frame(&net, false);
        let run = |s: &str| Filter::compile(s).unwrap().matches(&packet(LinkType::ETHERNET, &data));
        let (ra, rb) = (run(&a), run(&b));
        prop_assert_eq!(run(&format!("not ({a})")), !ra);
        prop_assert_eq!(run(&format!("({a}) and ({b})")), ra && rb);
        prop_assert_eq!(run(&format!("({a}) or ({b})")), ra || rb);
        prop_assert_eq!(run(&format!("! ({a}) || ! ({b})")), !(ra && rb));
    }

    /// No input panics the compiler, and what compiles is a valid program.
    #[test]
    fn arbitrary_text_never_panics(s in "[ -~]{0,80}") {
        if let Ok(f) = Filter::compile(&s) {
            prop_assert!(f.program().len() <= BPF_MAXINSNS);
            prop_assert!(Program::new(f.program().insns().to_vec()).is_ok());
        }
    }
}

/// Files and the demo: the engine runs the filter before decoding, counts what it drops, and
/// nothing it drops reaches TCP reassembly.
#[test]
fn the_engine_filters_before_decoding() {
    use std::sync::Arc;

    use crate::engine::{Engine, Shared};
    use crate::limits::Limits;
    use crate::synth::conversation::{Conversation, LINK};

    let conv = |server: &str, start_s: u64| {
        let mut c = Conversation::new(
            "10.0.0.1:40000".parse().unwrap(),
            server.parse().unwrap(),
            Timestamp::from_secs_nanos(1_700_000_000 + start_s, 0),
            1_000,
            1,
            2,
        );
        c.handshake()
            .client_send(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", 100)
            .server_send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 100)
            .close();
        c.packets()
    };
    let kept = conv("10.0.0.2:80", 0);
    let dropped = conv("10.0.0.3:8080", 1);
    let mut packets: Vec<(Timestamp, Vec<u8>)> = kept.iter().chain(&dropped).map(|p| (p.ts, p.data.clone())).collect();
    packets.sort_by_key(|p| p.0);

    let limits = Limits::default();
    let shared = Shared::with_limits(&limits);
    let mut engine = Engine::new(limits, shared.clone());
    engine.set_filter(Some(Arc::new(Filter::compile("tcp port 80").unwrap())));
    let info = engine.replay("t", LINK, &packets);

    let stats = shared.stats.lock().clone();
    assert_eq!(stats.filtered_out, dropped.len() as u64);
    assert_eq!(stats.packets, kept.len() as u64);
    assert_eq!(stats.tcp_packets, kept.len() as u64);
    assert_eq!(
        stats.flows_created, 1,
        "the dropped connection never reached the flow table"
    );
    assert_eq!(shared.store.stats().entries, 1);
    assert_eq!(
        info.packets,
        packets.len() as u64,
        "the source still counts what it read"
    );
    let bpf = info.bpf.expect("the source names its filter");
    assert_eq!(bpf.expression, "tcp port 80");
    assert!(!bpf.in_kernel);
    assert_eq!(bpf.filtered_out, Some(dropped.len() as u64));
}
