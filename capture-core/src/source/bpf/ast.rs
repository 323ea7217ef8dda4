//! The parsed filter: primitives with every qualifier resolved (inherited ones included), joined
//! by `and`, `or` and `not`. Its `Display` is the normalised filter: every primitive fully
//! qualified, parentheses only where pcap-filter needs them (`and`/`or` chain left to right, so
//! only a right operand or a negated operand that is itself `and`/`or` gets them); it parses
//! back to the same tree and nests no deeper than the text it came from.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A protocol name used alone (`tcp`) or as the first qualifier (`tcp port 80`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Ip,
    Ip6,
    Arp,
    Rarp,
    Tcp,
    Udp,
    Sctp,
    Icmp,
    Icmp6,
    Igmp,
    Igrp,
    Pim,
    Vrrp,
    Carp,
    Ah,
    Esp,
}

impl Proto {
    pub const ALL: [Proto; 16] = [
        Proto::Ip,
        Proto::Ip6,
        Proto::Arp,
        Proto::Rarp,
        Proto::Tcp,
        Proto::Udp,
        Proto::Sctp,
        Proto::Icmp,
        Proto::Icmp6,
        Proto::Igmp,
        Proto::Igrp,
        Proto::Pim,
        Proto::Vrrp,
        Proto::Carp,
        Proto::Ah,
        Proto::Esp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Proto::Ip => "ip",
            Proto::Ip6 => "ip6",
            Proto::Arp => "arp",
            Proto::Rarp => "rarp",
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
            Proto::Icmp => "icmp",
            Proto::Icmp6 => "icmp6",
            Proto::Igmp => "igmp",
            Proto::Igrp => "igrp",
            Proto::Pim => "pim",
            Proto::Vrrp => "vrrp",
            Proto::Carp => "carp",
            Proto::Ah => "ah",
            Proto::Esp => "esp",
        }
    }

    pub fn from_name(s: &str) -> Option<Proto> {
        Proto::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// Which address or port of a packet a primitive looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dir {
    /// The default: either.
    #[default]
    SrcOrDst,
    Src,
    Dst,
    SrcAndDst,
}

impl Dir {
    fn prefix(self) -> &'static str {
        match self {
            Dir::SrcOrDst => "",
            Dir::Src => "src ",
            Dir::Dst => "dst ",
            Dir::SrcAndDst => "src and dst ",
        }
    }
}

/// The IP version an `ip proto` / `ip6 proto` / `proto` primitive applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpVersion {
    V4,
    V6,
    Both,
}

/// One primitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Prim {
    /// `tcp`, `ip6`, `arp`… alone.
    Proto(Proto),
    /// `host`/`net` on IPv4 addresses. `proto` is `None` (IPv4, ARP and RARP, as libpcap), `Ip`,
    /// `Arp` or `Rarp`; `addr` has no bits outside `mask`.
    Net4 {
        proto: Option<Proto>,
        dir: Dir,
        addr: u32,
        mask: u32,
    },
    /// `host`/`net` on IPv6 addresses; `proto` is `None` or `Ip6`.
    Net6 {
        proto: Option<Proto>,
        dir: Dir,
        addr: Ipv6Addr,
        prefix: u8,
    },
    /// `port`/`portrange`; `proto` is `None` (TCP, UDP and SCTP), `Tcp`, `Udp` or `Sctp`.
    Port {
        proto: Option<Proto>,
        dir: Dir,
        lo: u16,
        hi: u16,
        range: bool,
    },
    /// `ip proto N`, `ip6 proto N`, `proto N`.
    IpProto { version: IpVersion, number: u8 },
    /// `ether proto N` (an ethertype).
    EtherProto(u16),
    /// `less N`: length on the wire at most N.
    Less(u32),
    /// `greater N`: length on the wire at least N.
    Greater(u32),
}

/// A filter expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Node {
    /// The empty filter: every packet.
    All,
    Prim(Prim),
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
}

impl Node {
    /// How deep the tree is (chains of `and`/`or` count one level per operator).
    pub fn depth(&self) -> usize {
        match self {
            Node::All | Node::Prim(_) => 1,
            Node::Not(a) => 1 + a.depth(),
            Node::And(a, b) | Node::Or(a, b) => 1 + a.depth().max(b.depth()),
        }
    }
}

fn proto_prefix(p: Option<Proto>) -> String {
    p.map(|p| format!("{} ", p.name())).unwrap_or_default()
}

impl fmt::Display for Prim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Prim::Proto(p) => f.write_str(p.name()),
            Prim::Net4 { proto, dir, addr, mask } => {
                let a = Ipv4Addr::from(addr);
                write!(f, "{}{}", proto_prefix(proto), dir.prefix())?;
                if mask == u32::MAX {
                    write!(f, "host {a}")
                } else if mask.leading_ones() + mask.trailing_zeros() == 32 {
                    write!(f, "net {a}/{}", mask.leading_ones())
                } else {
                    write!(f, "net {a} mask {}", Ipv4Addr::from(mask))
                }
            }
            Prim::Net6 {
                proto,
                dir,
                addr,
                prefix,
            } => {
                write!(f, "{}{}", proto_prefix(proto), dir.prefix())?;
                if prefix == 128 {
                    write!(f, "host {addr}")
                } else {
                    write!(f, "net {addr}/{prefix}")
                }
            }
            Prim::Port {
                proto,
                dir,
                lo,
                hi,
                range,
            } => {
                write!(f, "{}{}", proto_prefix(proto), dir.prefix())?;
                if range {
                    write!(f, "portrange {lo}-{hi}")
                } else {
                    write!(f, "port {lo}")
                }
            }
            Prim::IpProto { version, number } => match version {
                IpVersion::V4 => write!(f, "ip proto {number}"),
                IpVersion::V6 => write!(f, "ip6 proto {number}"),
                IpVersion::Both => write!(f, "proto {number}"),
            },
            Prim::EtherProto(t) => write!(f, "ether proto {t:#06x}"),
            Prim::Less(n) => write!(f, "less {n}"),
            Prim::Greater(n) => write!(f, "greater {n}"),
        }
    }
}

impl Node {
    fn is_binary(&self) -> bool {
        matches!(self, Node::And(..) | Node::Or(..))
    }

    /// The tree with every `and`/`or` in parentheses, to show how a filter grouped.
    pub fn grouped(&self) -> String {
        match self {
            Node::All => String::new(),
            Node::Prim(p) => p.to_string(),
            Node::Not(a) => format!("not {}", a.grouped()),
            Node::And(a, b) => format!("({} and {})", a.grouped(), b.grouped()),
            Node::Or(a, b) => format!("({} or {})", a.grouped(), b.grouped()),
        }
    }
}

/// `n`, in parentheses when it is an `and`/`or`.
struct Operand<'a>(&'a Node);

impl fmt::Display for Operand<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_binary() {
            write!(f, "({})", self.0)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::All => Ok(()),
            Node::Prim(p) => write!(f, "{p}"),
            Node::Not(a) => write!(f, "not {}", Operand(a)),
            Node::And(a, b) => write!(f, "{a} and {}", Operand(b)),
            Node::Or(a, b) => write!(f, "{a} or {}", Operand(b)),
        }
    }
}
