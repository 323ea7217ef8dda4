//! Pure DNS message parsing (RFC 1035, EDNS0 from RFC 6891 and client subnet from RFC 7871):
//! the header, questions and the record structure are read here, with a compression-pointer
//! loop guard and caps; record data is rendered to text by `hickory-proto`. Also the content
//! probes for DNS over UDP and over TCP (2-byte length prefix). Nothing here keeps state; every
//! function is safe on arbitrary input.

use std::fmt::Write as _;

use crate::dissect::Probe;
use crate::limits::Limits;

/// Size of the fixed header.
pub const HEADER_LEN: usize = 12;
/// Longest name on the wire (RFC 1035 §2.3.4).
const MAX_NAME_WIRE: usize = 255;

/// Bounds on what a parse follows and keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Compression pointers followed in one name before it is declared a loop.
    pub max_pointer_hops: usize,
    /// Questions kept per message.
    pub max_questions: usize,
    /// Answer records kept per message (the header count stays exact).
    pub max_records: usize,
}

impl Caps {
    pub fn from_limits(l: &Limits) -> Caps {
        Caps {
            max_pointer_hops: l.dns_max_pointer_hops,
            max_questions: l.dns_max_questions,
            max_records: l.dns_max_records,
        }
    }
}

/// Problems found in a message, as bit flags (the message is still used).
pub mod problems {
    /// A compression pointer loop (or more hops than `dns_max_pointer_hops`).
    pub const POINTER_LOOP: u32 = 1;
    /// Records that do not parse: the message is cut or malformed after the questions.
    pub const MALFORMED_RECORDS: u32 = 2;
    /// More questions than `dns_max_questions`.
    pub const QUESTIONS_CAPPED: u32 = 4;
    /// More answers than `dns_max_records`.
    pub const RECORDS_CAPPED: u32 = 8;
    /// Record data that `hickory-proto` could not decode (shown empty).
    pub const RDATA_UNDECODED: u32 = 16;
}

/// The fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    pub id: u16,
    pub flags: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    pub fn parse(b: &[u8]) -> Option<Header> {
        let w = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        (b.len() >= HEADER_LEN).then(|| Header {
            id: w(0),
            flags: w(2),
            qdcount: w(4),
            ancount: w(6),
            nscount: w(8),
            arcount: w(10),
        })
    }
    /// QR: a response.
    pub fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }
    /// TC: the answer was cut to fit (retry over TCP).
    pub fn truncated(&self) -> bool {
        self.flags & 0x0200 != 0
    }
    /// The 4-bit RCODE of the header.
    pub fn rcode(&self) -> u8 {
        (self.flags & 0xf) as u8
    }
}

/// Why a name could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// The message ends inside the name.
    Truncated,
    /// A compression pointer loop, or too many pointers.
    PointerLoop,
    /// A label type that is neither a length nor a pointer (0x40, 0x80).
    BadLabel,
    /// Longer than 255 bytes.
    TooLong,
}

/// Reads the name at `off`. Returns its labels joined with `.` (raw bytes, empty for the root)
/// and the offset after the name where it started (a pointer ends it).
pub fn read_name(msg: &[u8], off: usize, max_hops: usize) -> Result<(Vec<u8>, usize), NameError> {
    let mut out = Vec::new();
    let mut pos = off;
    let mut end = None;
    let mut hops = 0;
    let mut wire = 0usize;
    loop {
        let &len = msg.get(pos).ok_or(NameError::Truncated)?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Ok((out, end.unwrap_or(pos + 1)));
                }
                let label = msg.get(pos + 1..pos + 1 + len as usize).ok_or(NameError::Truncated)?;
                wire += 1 + label.len();
                if wire + 1 > MAX_NAME_WIRE {
                    return Err(NameError::TooLong);
                }
                if !out.is_empty() {
                    out.push(b'.');
                }
                out.extend_from_slice(label);
                pos += 1 + len as usize;
            }
            0xc0 => {
                let &lo = msg.get(pos + 1).ok_or(NameError::Truncated)?;
                hops += 1;
                if hops > max_hops {
                    return Err(NameError::PointerLoop);
                }
                end.get_or_insert(pos + 2);
                pos = usize::from(u16::from_be_bytes([len & 0x3f, lo]));
            }
            _ => return Err(NameError::BadLabel),
        }
    }
}

/// A name as tshark prints it: no trailing dot, `<Root>` for the root, control characters as C
/// or octal escapes (`\t`, `\001`), invalid UTF-8 as U+FFFD.
pub fn name_text(raw: &[u8]) -> String {
    if raw.is_empty() {
        return "<Root>".to_string();
    }
    let lossy = String::from_utf8_lossy(raw);
    if !lossy.chars().any(|c| c.is_ascii_control()) {
        return lossy.into_owned();
    }
    let mut s = String::with_capacity(lossy.len() + 8);
    for c in lossy.chars() {
        match c {
            '\x07' => s.push_str("\\a"),
            '\x08' => s.push_str("\\b"),
            '\t' => s.push_str("\\t"),
            '\n' => s.push_str("\\n"),
            '\x0b' => s.push_str("\\v"),
            '\x0c' => s.push_str("\\f"),
            '\r' => s.push_str("\\r"),
            c if c.is_ascii_control() => {
                let _ = write!(s, "\\{:03o}", c as u32);
            }
            c => s.push(c),
        }
    }
    s
}

/// One question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

/// One resource record of the answer section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    /// The record data as text (`10.0.0.1`, `mail.example.com` …); empty when undecodable.
    pub data: String,
}

/// The EDNS0 OPT pseudo-record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Edns {
    pub udp_payload_size: u16,
    /// Upper 8 bits of the extended RCODE.
    pub extended_rcode: u8,
    pub version: u8,
    /// DO: DNSSEC answers wanted.
    pub dnssec_ok: bool,
    /// Option codes in wire order.
    pub options: Vec<u16>,
    /// The client subnet option: `address/source-prefix/scope-prefix`.
    pub client_subnet: Option<String>,
}

/// What is kept of one DNS message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub header: Header,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub edns: Option<Edns>,
    /// [`problems`] bits.
    pub problems: u32,
    /// Bytes of the message.
    pub size: usize,
}

/// Why bytes are not a usable DNS message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than a header.
    Short,
    /// The first question does not parse.
    Question(NameError),
}

/// A record's fixed part after its name.
struct RrHead {
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: std::ops::Range<usize>,
}

fn rr_head(msg: &[u8], pos: usize) -> Option<RrHead> {
    let b = msg.get(pos..pos + 10)?;
    let rdlen = usize::from(u16::from_be_bytes([b[8], b[9]]));
    let start = pos + 10;
    (start + rdlen <= msg.len()).then(|| RrHead {
        rtype: u16::from_be_bytes([b[0], b[1]]),
        class: u16::from_be_bytes([b[2], b[3]]),
        ttl: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        rdata: start..start + rdlen,
    })
}

/// EDNS0 from an OPT record's class, TTL and data.
fn parse_opt(class: u16, ttl: u32, data: &[u8]) -> Edns {
    let mut e = Edns {
        udp_payload_size: class,
        extended_rcode: (ttl >> 24) as u8,
        version: (ttl >> 16) as u8,
        dnssec_ok: ttl & 0x8000 != 0,
        ..Edns::default()
    };
    let mut p = 0;
    while p + 4 <= data.len() {
        let code = u16::from_be_bytes([data[p], data[p + 1]]);
        let len = usize::from(u16::from_be_bytes([data[p + 2], data[p + 3]]));
        let Some(val) = data.get(p + 4..p + 4 + len) else {
            break;
        };
        e.options.push(code);
        if code == 8 {
            e.client_subnet = client_subnet(val);
        }
        p += 4 + len;
    }
    e
}

/// RFC 7871: family, source prefix, scope prefix, then the address cut to the prefix.
fn client_subnet(v: &[u8]) -> Option<String> {
    let family = u16::from_be_bytes([*v.first()?, *v.get(1)?]);
    let (source, scope) = (*v.get(2)?, *v.get(3)?);
    let addr = &v[4..];
    let ip: std::net::IpAddr = match family {
        1 if addr.len() <= 4 => {
            let mut o = [0u8; 4];
            o[..addr.len()].copy_from_slice(addr);
            o.into()
        }
        2 if addr.len() <= 16 => {
            let mut o = [0u8; 16];
            o[..addr.len()].copy_from_slice(addr);
            o.into()
        }
        _ => return None,
    };
    Some(format!("{ip}/{source}/{scope}"))
}

/// Record data as text, through `hickory-proto`. `None` when it cannot decode the message.
fn rdata_texts(msg: &[u8], keep: usize) -> Option<Vec<String>> {
    let m = hickory_proto::op::Message::from_vec(msg).ok()?;
    Some(
        m.answers
            .iter()
            .take(keep)
            .map(|r| {
                let mut s = String::new();
                if write!(s, "{}", r.data).is_err() {
                    s.clear();
                }
                // Names end with the root's dot in presentation format; entries show them without.
                if s.len() > 1 && s.ends_with('.') && !s.ends_with("\\.") {
                    s.pop();
                }
                s
            })
            .collect(),
    )
}

/// Parses a whole message. Fails only when there is no header or the first question is
/// unreadable; later problems are reported in [`Message::problems`].
pub fn parse(msg: &[u8], caps: &Caps) -> Result<Message, Error> {
    let header = Header::parse(msg).ok_or(Error::Short)?;
    let mut m = Message {
        header,
        size: msg.len(),
        ..Message::default()
    };
    let mut pos = HEADER_LEN;
    for i in 0..header.qdcount {
        let (raw, next) = match read_name(msg, pos, caps.max_pointer_hops) {
            Ok(v) => v,
            Err(e) if i == 0 => return Err(Error::Question(e)),
            Err(e) => {
                if e == NameError::PointerLoop {
                    m.problems |= problems::POINTER_LOOP;
                }
                m.problems |= problems::MALFORMED_RECORDS;
                return Ok(m);
            }
        };
        let Some(tc) = msg.get(next..next + 4) else {
            if i == 0 {
                return Err(Error::Question(NameError::Truncated));
            }
            m.problems |= problems::MALFORMED_RECORDS;
            return Ok(m);
        };
        pos = next + 4;
        if m.questions.len() < caps.max_questions {
            m.questions.push(Question {
                name: name_text(&raw),
                qtype: u16::from_be_bytes([tc[0], tc[1]]),
                qclass: u16::from_be_bytes([tc[2], tc[3]]),
            });
        } else {
            m.problems |= problems::QUESTIONS_CAPPED;
        }
    }
    let sections = [header.ancount, header.nscount, header.arcount];
    for (s, &count) in sections.iter().enumerate() {
        for _ in 0..count {
            let (raw, next) = match read_name(msg, pos, caps.max_pointer_hops) {
                Ok(v) => v,
                Err(e) => {
                    if e == NameError::PointerLoop {
                        m.problems |= problems::POINTER_LOOP;
                    }
                    m.problems |= problems::MALFORMED_RECORDS;
                    return Ok(finish_rdata(m, msg, caps));
                }
            };
            let Some(rr) = rr_head(msg, next) else {
                m.problems |= problems::MALFORMED_RECORDS;
                return Ok(finish_rdata(m, msg, caps));
            };
            pos = rr.rdata.end;
            if s == 0 {
                if m.answers.len() < caps.max_records {
                    m.answers.push(Record {
                        name: name_text(&raw),
                        rtype: rr.rtype,
                        class: rr.class,
                        ttl: rr.ttl,
                        data: String::new(),
                    });
                } else {
                    m.problems |= problems::RECORDS_CAPPED;
                }
            } else if s == 2 && rr.rtype == 41 && m.edns.is_none() {
                m.edns = Some(parse_opt(rr.class, rr.ttl, &msg[rr.rdata.clone()]));
            }
        }
    }
    Ok(finish_rdata(m, msg, caps))
}

/// Fills in the answers' data text.
fn finish_rdata(mut m: Message, msg: &[u8], caps: &Caps) -> Message {
    if m.answers.is_empty() {
        return m;
    }
    match rdata_texts(msg, caps.max_records) {
        Some(texts) if texts.len() == m.answers.len() => {
            for (r, t) in m.answers.iter_mut().zip(texts) {
                r.data = t;
            }
        }
        _ => m.problems |= problems::RDATA_UNDECODED,
    }
    m
}

/// Header plausibility: an opcode in use (QUERY, NOTIFY, UPDATE), the zero bit clear, a defined
/// RCODE (none in a query), one to four questions, few answers in a query, and no more records
/// than the bytes could hold.
fn plausible_header(h: &Header, len: usize) -> bool {
    let records = usize::from(h.ancount) + usize::from(h.nscount) + usize::from(h.arcount);
    matches!(h.opcode(), 0 | 4 | 5)
        && h.flags & 0x0040 == 0
        && h.rcode() <= 11
        && (1..=4).contains(&h.qdcount)
        && (h.is_response() || (h.ancount <= 16 && h.rcode() == 0))
        && HEADER_LEN + usize::from(h.qdcount) * 5 + records * 11 <= len
}

/// Does every question and record parse, ending exactly at the end of `msg`? Strong evidence of
/// DNS for messages the header checks cannot vouch for (no question, a rare opcode).
fn walks_exactly(msg: &[u8], h: &Header) -> bool {
    let records = usize::from(h.ancount) + usize::from(h.nscount) + usize::from(h.arcount);
    if usize::from(h.qdcount) + records == 0 || h.opcode() > 6 || h.flags & 0x0040 != 0 {
        return false;
    }
    let mut pos = HEADER_LEN;
    for i in 0..usize::from(h.qdcount) + records {
        let Ok((_, next)) = read_name(msg, pos, 16) else {
            return false;
        };
        pos = if i < usize::from(h.qdcount) {
            next + 4
        } else {
            match rr_head(msg, next) {
                Some(rr) => rr.rdata.end,
                None => return false,
            }
        };
        if pos > msg.len() {
            return false;
        }
    }
    pos == msg.len()
}

/// NetBIOS name service shares the format: its names are one 32-letter label of `A`–`P`.
fn is_netbios_name(msg: &[u8]) -> bool {
    msg.get(HEADER_LEN) == Some(&32)
        && msg
            .get(HEADER_LEN + 1..HEADER_LEN + 33)
            .is_some_and(|l| l.iter().all(|c| (b'A'..=b'P').contains(c)))
}

/// Is this the start of a DNS message? `msg` holds its first bytes; `total` is the message length
/// when known (UDP payload, TCP length prefix). Needs a plausible header and the whole first
/// question: a name without pointers of printable labels, a type, and a class in use (IN, CH,
/// HS, NONE, ANY, with mDNS's top bit masked). A message without a question (some error
/// responses) or with a rare opcode is accepted when all of it parses to its last byte.
pub fn probe_message(msg: &[u8], total: usize) -> Probe {
    let Some(h) = Header::parse(msg) else {
        return if msg.len() < total {
            Probe::NeedMore
        } else {
            Probe::NoMatch
        };
    };
    if is_netbios_name(msg) {
        return Probe::NoMatch;
    }
    if !plausible_header(&h, total) {
        return match msg.len() >= total {
            true if walks_exactly(&msg[..total], &h) => Probe::Match,
            false if h.qdcount == 0 && h.flags & 0x0040 == 0 => Probe::NeedMore,
            _ => Probe::NoMatch,
        };
    }
    let mut pos = HEADER_LEN;
    loop {
        let Some(&len) = msg.get(pos) else {
            return if msg.len() < total {
                Probe::NeedMore
            } else {
                Probe::NoMatch
            };
        };
        if len == 0 {
            break;
        }
        if len > 63 || pos + 1 + usize::from(len) - HEADER_LEN >= MAX_NAME_WIRE {
            return Probe::NoMatch;
        }
        let Some(label) = msg.get(pos + 1..pos + 1 + usize::from(len)) else {
            return if msg.len() < total {
                Probe::NeedMore
            } else {
                Probe::NoMatch
            };
        };
        if !label.iter().all(|&c| c >= 0x20 && c != 0x7f) {
            return Probe::NoMatch;
        }
        pos += 1 + usize::from(len);
    }
    let Some(tc) = msg.get(pos + 1..pos + 5) else {
        return if msg.len() < total {
            Probe::NeedMore
        } else {
            Probe::NoMatch
        };
    };
    let qtype = u16::from_be_bytes([tc[0], tc[1]]);
    let qclass = u16::from_be_bytes([tc[2], tc[3]]) & 0x7fff;
    if qtype == 0 || !matches!(qclass, 1 | 3 | 4 | 254 | 255) || pos + 5 > total {
        return Probe::NoMatch;
    }
    Probe::Match
}

/// Probe for one UDP datagram.
pub fn probe_udp(payload: &[u8]) -> bool {
    probe_message(payload, payload.len()) == Probe::Match
}

/// Probe for the first bytes of a TCP direction: a 2-byte length, then a message.
pub fn probe_tcp(buf: &[u8]) -> Probe {
    let Some(len) = buf.get(..2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))) else {
        return Probe::NeedMore;
    };
    if len < HEADER_LEN + 5 {
        return Probe::NoMatch;
    }
    let body = &buf[2..buf.len().min(2 + len)];
    probe_message(body, len)
}

/// Type names of common record types, as `dig` shows them.
pub fn type_name(t: u16) -> Option<&'static str> {
    Some(match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        24 => "SIG",
        25 => "KEY",
        28 => "AAAA",
        29 => "LOC",
        33 => "SRV",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        39 => "DNAME",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        53 => "SMIMEA",
        55 => "HIP",
        59 => "CDS",
        60 => "CDNSKEY",
        61 => "OPENPGPKEY",
        62 => "CSYNC",
        63 => "ZONEMD",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        _ => return None,
    })
}

/// `A`, or `TYPE65280` (RFC 3597) for types without a name.
pub fn type_text(t: u16) -> String {
    type_name(t).map_or_else(|| format!("TYPE{t}"), str::to_string)
}

/// RCODE names (RFC 6895 registry).
pub fn rcode_name(rcode: u16) -> String {
    match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        11 => "DSOTYPENI",
        16 => "BADVERS",
        17 => "BADKEY",
        18 => "BADTIME",
        19 => "BADMODE",
        20 => "BADNAME",
        21 => "BADALG",
        22 => "BADTRUNC",
        23 => "BADCOOKIE",
        _ => return format!("RCODE{rcode}"),
    }
    .to_string()
}
