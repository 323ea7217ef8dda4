//! What a value means under the qualifiers in force: numbers, dotted and IPv6 addresses with
//! their masks, ports, port ranges and service names, protocol numbers and names — checked the
//! way libpcap checks them (ports up to 65535, no host bits under a mask, a service name
//! narrowed to the transports it is registered for). Host and network names are never looked
//! up.

use std::net::Ipv6Addr;

use super::ast::{IpVersion, Prim, Proto};
use super::error::{BpfError, ErrorKind};
use super::lex::{Tok, Token};
use super::names::{self, Transports};
use super::parse::{Kind, Kw, PQual, Parser, Qual, did_you_mean};

/// A value token, classified.
#[derive(Debug, Clone, Copy)]
pub(super) enum Value<'s> {
    Num(u32),
    /// Dotted decimal with `bits` = 8 × the number of parts (`10.1` is 16).
    V4 {
        addr: u32,
        bits: u32,
    },
    V6(Ipv6Addr),
    Mac,
    Name(&'s str),
}

#[derive(Debug, Clone, Copy)]
enum MaskSpec {
    Len(u32),
    Mask(u32),
}

impl<'s> Parser<'s> {
    pub(super) fn classify(&self, t: Token<'s>) -> Result<Value<'s>, BpfError> {
        let w = match t.tok {
            Tok::Escaped(s) => return Ok(Value::Name(s)),
            Tok::Word(w) => w,
            _ => {
                return Err(self.err(
                    t,
                    ErrorKind::Syntax,
                    format!("expected a value, found {}", self.describe(t)),
                ));
            }
        };
        let b = w.as_bytes();
        let invalid = |msg: String| Err(self.err(t, ErrorKind::Invalid, msg));
        if b.iter().all(u8::is_ascii_digit) {
            // libpcap's numbers: decimal, octal with a leading 0, hex with 0x.
            let (digits, radix) = if b.len() > 1 && b[0] == b'0' {
                (&w[1..], 8)
            } else {
                (w, 10)
            };
            if radix == 8 && digits.bytes().any(|c| c > b'7') {
                return invalid(format!("'{w}' has a digit that is not octal (a leading 0 means octal)"));
            }
            return match u32::from_str_radix(digits, radix) {
                Ok(n) => Ok(Value::Num(n)),
                Err(_) => invalid(format!("the number '{w}' does not fit in 32 bits")),
            };
        }
        if let Some(hex) = w.strip_prefix("0x").or_else(|| w.strip_prefix("0X"))
            && !hex.is_empty()
            && hex.bytes().all(|c| c.is_ascii_hexdigit())
        {
            return match u32::from_str_radix(hex, 16) {
                Ok(n) => Ok(Value::Num(n)),
                Err(_) => invalid(format!("the number '{w}' does not fit in 32 bits")),
            };
        }
        if w.contains('.') && b.iter().all(|c| c.is_ascii_digit() || *c == b'.') {
            let parts: Vec<&str> = w.split('.').collect();
            if parts.len() <= 4 && parts.iter().all(|p| !p.is_empty()) {
                let mut addr = 0u32;
                for p in &parts {
                    match p.parse::<u32>() {
                        Ok(n) if n <= 255 => addr = (addr << 8) | n,
                        _ => return invalid(format!("'{w}' is not an IPv4 address (each part is 0 to 255)")),
                    }
                }
                return Ok(Value::V4 {
                    addr,
                    bits: 8 * parts.len() as u32,
                });
            }
            return Ok(Value::Name(w));
        }
        if w.contains(':') {
            if let Ok(a) = w.parse::<Ipv6Addr>() {
                return Ok(Value::V6(a));
            }
            let groups: Vec<&str> = w.split(':').collect();
            if groups.len() == 6
                && groups
                    .iter()
                    .all(|g| (1..=2).contains(&g.len()) && g.bytes().all(|c| c.is_ascii_hexdigit()))
            {
                return Ok(Value::Mac);
            }
            return invalid(format!("'{w}' is not an IPv6 address"));
        }
        Ok(Value::Name(w))
    }

    /// Builds the primitive for value `t` under `q`; `after` is the token before `t`.
    pub(super) fn primitive(&mut self, q: Qual<'s>, t: Token<'s>, after: Token<'s>) -> Result<Prim, BpfError> {
        let v = self.classify(t)?;
        match q.kind {
            Kind::Default | Kind::Host | Kind::Net => self.address(q, t, v),
            Kind::Port => self.port(q, t, v, after),
            Kind::PortRange => self.portrange(q, t, v, after),
            Kind::Proto => self.proto_number(q, t, v, after),
        }
    }

    /// A `/len` or `mask M.M.M.M` after an address, if present: `(length or mask, last token)`.
    fn mask_suffix(&mut self, t: Token<'s>) -> Result<Option<(MaskSpec, Token<'s>)>, BpfError> {
        let s = self.peek();
        if s.tok == Tok::Slash {
            self.bump();
            let n = self.peek();
            if self.is_value(n)
                && let Value::Num(len) = self.classify(n)?
            {
                self.bump();
                return Ok(Some((MaskSpec::Len(len), n)));
            }
            return Err(self.err(
                n,
                ErrorKind::Syntax,
                format!(
                    "expected a prefix length after '{}/', found {}",
                    self.text(t),
                    self.describe(n)
                ),
            ));
        }
        if self.kw(s) == Some(Kw::Mask) {
            self.bump();
            let m = self.peek();
            if self.is_value(m)
                && let Value::V4 { addr, bits } = self.classify(m)?
            {
                self.bump();
                return Ok(Some((MaskSpec::Mask(addr << (32 - bits)), m)));
            }
            return Err(self.err(
                m,
                ErrorKind::Syntax,
                format!(
                    "expected a dotted netmask (`255.255.0.0`) after 'mask', found {}",
                    self.describe(m)
                ),
            ));
        }
        Ok(None)
    }

    fn address(&mut self, q: Qual<'s>, t: Token<'s>, v: Value<'s>) -> Result<Prim, BpfError> {
        let text = self.text(t);
        match v {
            Value::Name(n) => Err(self.err(
                t,
                ErrorKind::Invalid,
                if q.kind == Kind::Net {
                    format!(
                        "'{n}' is not a network address: wirelens does not look up network names (write e.g. `net 10.0.0.0/8`)"
                    )
                } else {
                    format!(
                        "'{n}' is not an IP address: wirelens does not look up host names (write the address, e.g. `host 10.0.0.1`)"
                    )
                },
            )),
            Value::Mac => Err(self.err(
                t,
                ErrorKind::Unsupported,
                "not supported by wirelens' filter compiler: MAC addresses (frames captured on `any` have different link headers)",
            )),
            Value::Num(n) => {
                if self.peek().tok == Tok::Slash || self.kw(self.peek()) == Some(Kw::Mask) {
                    return Err(self.err(
                        t,
                        ErrorKind::Syntax,
                        format!("write the network in dotted form before a mask (`net {n}.0.0.0/8`)"),
                    ));
                }
                // libpcap: `net 10` is 10.0.0.0/8 (the number is promoted to the top bytes);
                // `host 10` is the address 0.0.0.10.
                let (mut addr, mut mask) = (n, u32::MAX);
                if q.kind == Kind::Net {
                    while addr != 0 && addr & 0xff00_0000 == 0 {
                        addr <<= 8;
                        mask <<= 8;
                    }
                }
                self.net4(q, t, t, addr, mask)
            }
            Value::V4 { addr, bits } => {
                let shift = 32 - bits;
                let addr = addr << shift;
                match self.mask_suffix(t)? {
                    None => self.net4(q, t, t, addr, u32::MAX << shift),
                    Some((spec, last)) => {
                        if q.kind != Kind::Net {
                            return Err(self.err_span(
                                t,
                                last,
                                ErrorKind::Invalid,
                                format!("a mask is for networks: write `net {}`", &self.src[t.start..last.end]),
                            ));
                        }
                        let mask = match spec {
                            MaskSpec::Len(len) if len > 32 => {
                                return Err(self.err(last, ErrorKind::Invalid, format!("prefix length {len} is above 32")));
                            }
                            MaskSpec::Len(0) => 0,
                            MaskSpec::Len(len) => u32::MAX << (32 - len),
                            MaskSpec::Mask(m) => m,
                        };
                        if addr & !mask != 0 {
                            return Err(self.err_span(
                                t,
                                last,
                                ErrorKind::Invalid,
                                format!(
                                    "'{}' has bits set outside the mask (the network is {})",
                                    &self.src[t.start..last.end],
                                    std::net::Ipv4Addr::from(addr & mask)
                                ),
                            ));
                        }
                        self.net4(q, t, last, addr, mask)
                    }
                }
            }
            Value::V6(a) => {
                let (prefix, last) = match self.mask_suffix(t)? {
                    None => (128, t),
                    Some((MaskSpec::Len(len), last)) => {
                        if q.kind != Kind::Net {
                            return Err(self.err_span(
                                t,
                                last,
                                ErrorKind::Invalid,
                                format!("a prefix length is for networks: write `net {}`", &self.src[t.start..last.end]),
                            ));
                        }
                        if len > 128 {
                            return Err(self.err(last, ErrorKind::Invalid, format!("prefix length {len} is above 128")));
                        }
                        let bits = u128::from(a);
                        let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
                        if bits & !mask != 0 {
                            return Err(self.err_span(
                                t,
                                last,
                                ErrorKind::Invalid,
                                format!(
                                    "'{}' has bits set outside the prefix (the network is {})",
                                    &self.src[t.start..last.end],
                                    Ipv6Addr::from(bits & mask)
                                ),
                            ));
                        }
                        (len as u8, last)
                    }
                    Some((MaskSpec::Mask(_), last)) => {
                        return Err(self.err_span(
                            t,
                            last,
                            ErrorKind::Invalid,
                            "an IPv6 network takes a prefix length (`net 2001:db8::/32`), not a mask",
                        ));
                    }
                };
                let proto = match q.proto {
                    PQual::None => None,
                    PQual::P(Proto::Ip6) => Some(Proto::Ip6),
                    PQual::P(p) => {
                        return Err(self.err_span(
                            t,
                            last,
                            ErrorKind::Invalid,
                            format!("'{}' cannot qualify the IPv6 address {text} (use `ip6` or nothing)", p.name()),
                        ));
                    }
                    PQual::Ether => return Err(self.err(t, ErrorKind::Unsupported, "`ether` with an IP address")),
                };
                Ok(Prim::Net6 {
                    proto,
                    dir: q.dir,
                    addr: a,
                    prefix,
                })
            }
        }
    }

    fn net4(&self, q: Qual<'s>, from: Token<'s>, to: Token<'s>, addr: u32, mask: u32) -> Result<Prim, BpfError> {
        let proto = match q.proto {
            PQual::None => None,
            PQual::P(p @ (Proto::Ip | Proto::Arp | Proto::Rarp)) => Some(p),
            PQual::P(Proto::Ip6) => {
                return Err(self.err_span(
                    from,
                    to,
                    ErrorKind::Invalid,
                    "'ip6' cannot qualify an IPv4 address (use `ip` or nothing)",
                ));
            }
            PQual::P(p) => {
                return Err(self.err_span(
                    from,
                    to,
                    ErrorKind::Invalid,
                    format!(
                        "'{0}' cannot qualify an address: `{0}` takes `port`, or write `{0} and host …`",
                        p.name()
                    ),
                ));
            }
            PQual::Ether => return Err(self.err(from, ErrorKind::Unsupported, "`ether` with an IP address")),
        };
        Ok(Prim::Net4 {
            proto,
            dir: q.dir,
            addr,
            mask,
        })
    }

    fn port_proto(&self, q: Qual<'s>, t: Token<'s>, what: &str) -> Result<Option<Proto>, BpfError> {
        match q.proto {
            PQual::None => Ok(None),
            PQual::P(p @ (Proto::Tcp | Proto::Udp | Proto::Sctp)) => Ok(Some(p)),
            _ => Err(self.err(
                t,
                ErrorKind::Invalid,
                format!(
                    "'{}' cannot qualify `{what}`: it takes `tcp`, `udp`, `sctp` or no protocol (all three)",
                    q.head.split_whitespace().next().unwrap_or(q.head)
                ),
            )),
        }
    }

    /// Narrows `proto` to the transports a service name is registered for (libpcap's rules).
    fn service_proto(
        &self,
        t: Token<'s>,
        proto: Option<Proto>,
        tr: Transports,
        name: &str,
    ) -> Result<Option<Proto>, BpfError> {
        let clash = match (proto, tr) {
            (Some(Proto::Udp | Proto::Sctp), Transports::Tcp) => Some("tcp"),
            (Some(Proto::Tcp | Proto::Sctp), Transports::Udp) => Some("udp"),
            _ => None,
        };
        if let Some(only) = clash {
            return Err(self.err(t, ErrorKind::Invalid, format!("port '{name}' is {only} only")));
        }
        Ok(match (proto, tr) {
            (Some(p), _) => Some(p),
            (None, Transports::Tcp) => Some(Proto::Tcp),
            (None, Transports::Udp) => Some(Proto::Udp),
            (None, Transports::Both) => None,
        })
    }

    fn unknown_port(&self, t: Token<'s>, after: Token<'s>, what: &str) -> BpfError {
        // A misspelled keyword after `and`/`or` reads as a value that inherits `port`.
        let hint = match did_you_mean(self.text(t)) {
            typo if !typo.is_empty() => typo,
            _ => format!(
                " (service names wirelens knows: {}, …)",
                names::service_names().take(12).collect::<Vec<_>>().join(", ")
            ),
        };
        self.err(
            t,
            ErrorKind::Invalid,
            format!(
                "expected {what} after '{}', found {}{hint}",
                self.text(after),
                self.describe(t)
            ),
        )
    }

    fn port(&mut self, q: Qual<'s>, t: Token<'s>, v: Value<'s>, after: Token<'s>) -> Result<Prim, BpfError> {
        let proto = self.port_proto(q, t, "port")?;
        let (port, proto) = match v {
            Value::Num(n) => (self.port_number(t, n)?, proto),
            Value::Name(name) => match names::service(name) {
                Some((port, tr)) => (port, self.service_proto(t, proto, tr, name)?),
                None if name.contains('-') => {
                    return Err(self.err(
                        t,
                        ErrorKind::Invalid,
                        format!("'{name}' is not a port: for a range write `portrange {name}`"),
                    ));
                }
                None => return Err(self.unknown_port(t, after, "a port number or service name")),
            },
            _ => return Err(self.unknown_port(t, after, "a port number or service name")),
        };
        Ok(Prim::Port {
            proto,
            dir: q.dir,
            lo: port,
            hi: port,
            range: false,
        })
    }

    fn port_number(&self, t: Token<'s>, n: u32) -> Result<u16, BpfError> {
        u16::try_from(n).map_err(|_| self.err(t, ErrorKind::Invalid, format!("port {n} is above 65535")))
    }

    fn portrange(&mut self, q: Qual<'s>, t: Token<'s>, v: Value<'s>, after: Token<'s>) -> Result<Prim, BpfError> {
        let proto = self.port_proto(q, t, "portrange")?;
        let (lo, hi, proto) = match v {
            Value::Num(n) => {
                let p = self.port_number(t, n)?;
                (p, p, proto)
            }
            Value::Name(s) => {
                let Some((a, b)) = s.split_once('-') else {
                    return Err(self.unknown_port(t, after, "a port range (`8000-9000`)"));
                };
                let end = |part: &str| -> Result<(u16, Transports), BpfError> {
                    if !part.is_empty() && part.bytes().all(|c| c.is_ascii_digit()) {
                        let n: u32 = part.parse().unwrap_or(u32::MAX);
                        return Ok((self.port_number(t, n)?, Transports::Both));
                    }
                    names::service(part).ok_or_else(|| self.unknown_port(t, after, "a port range (`8000-9000`)"))
                };
                let (lo, tr_lo) = end(a)?;
                let (hi, tr_hi) = end(b)?;
                let tr = if tr_lo == tr_hi { tr_lo } else { Transports::Both };
                let proto = self.service_proto(t, proto, tr, s)?;
                (lo.min(hi), lo.max(hi), proto)
            }
            _ => return Err(self.unknown_port(t, after, "a port range (`8000-9000`)")),
        };
        Ok(Prim::Port {
            proto,
            dir: q.dir,
            lo,
            hi,
            range: true,
        })
    }

    fn proto_number(&mut self, q: Qual<'s>, t: Token<'s>, v: Value<'s>, after: Token<'s>) -> Result<Prim, BpfError> {
        let version = match q.proto {
            PQual::None => IpVersion::Both,
            PQual::P(Proto::Ip) => IpVersion::V4,
            PQual::P(Proto::Ip6) => IpVersion::V6,
            PQual::Ether => {
                let etype = match v {
                    Value::Num(n) => n,
                    Value::Name(name) => match names::ether_protocol(name) {
                        Some(e) => u32::from(e),
                        None => {
                            return Err(self.err(
                                t,
                                ErrorKind::Invalid,
                                format!("unknown ethertype name '{name}' (known: ip, ip6, arp, rarp)"),
                            ));
                        }
                    },
                    _ => {
                        return Err(self.err(
                            t,
                            ErrorKind::Syntax,
                            format!(
                                "expected an ethertype after '{}', found {}",
                                self.text(after),
                                self.describe(t)
                            ),
                        ));
                    }
                };
                if etype > 0xffff {
                    return Err(self.err(t, ErrorKind::Invalid, format!("ethertype {etype:#x} is above 0xffff")));
                }
                if etype <= 1500 {
                    return Err(self.err(
                        t,
                        ErrorKind::Unsupported,
                        format!(
                            "not supported by wirelens' filter compiler: `ether proto {etype}` (values up to 1500 are \
                             802.3 lengths: LLC frames); ethertypes above 1500 work"
                        ),
                    ));
                }
                return Ok(Prim::EtherProto(etype as u16));
            }
            PQual::P(p) => {
                return Err(self.err(
                    t,
                    ErrorKind::Invalid,
                    format!(
                        "'{} proto' is not valid: `proto` takes `ip`, `ip6`, `ether` or no protocol",
                        p.name()
                    ),
                ));
            }
        };
        let number = match v {
            Value::Num(n) => {
                u8::try_from(n).map_err(|_| self.err(t, ErrorKind::Invalid, format!("IP protocol {n} is above 255")))?
            }
            Value::Name(name) => names::ip_protocol(name).ok_or_else(|| {
                self.err(
                    t,
                    ErrorKind::Invalid,
                    format!("unknown IP protocol name '{name}' (write the number, e.g. `ip proto 47`)"),
                )
            })?,
            _ => {
                return Err(self.err(
                    t,
                    ErrorKind::Syntax,
                    format!(
                        "expected a protocol number or name after '{}', found {}",
                        self.text(after),
                        self.describe(t)
                    ),
                ));
            }
        };
        Ok(Prim::IpProto { version, number })
    }
}
