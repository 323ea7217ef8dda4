//! The pcap-filter(7) grammar, by recursive descent, with libpcap's rules:
//!
//! - `not`/`!` binds tightest; `and`/`&&` and `or`/`||` have *equal* precedence and associate
//!   left to right (`a or b and c` is `(a or b) and c`);
//! - a primitive is `[proto] [dir] [kind] value` (`tcp dst port 80`, `src 10.0.0.1`,
//!   `ip6 net 2001:db8::/32`) or a protocol name alone (`tcp`), `less N`, `greater N`;
//! - a bare value after `and`/`or` (and after `not` or inside parentheses there) inherits the
//!   qualifiers of the primitive before it: `host a or b` is `host a or host b`, `tcp port 80
//!   or 443` is `tcp port 80 or tcp port 443`, `not host a and b` is `not host a and host b`.
//!   After a protocol name alone or `less`/`greater` there is nothing to inherit; after a
//!   parenthesised expression, what came before the parenthesis carries on.
//!
//! The result is an [`ast::Node`] whose primitives have every qualifier resolved. Values are
//! checked here (ports up to 65535, masks without host bits, names from the built-in tables);
//! host names are never looked up.

use std::net::Ipv6Addr;

use super::ast::{Dir, IpVersion, Node, Prim, Proto};
use super::error::{BpfError, ErrorKind};
use super::lex::{Tok, Token, lex};
use super::names::{self, Transports};

/// Longest filter accepted. Filters typed on a command line are tens to a few hundred bytes;
/// 4 KiB also takes generated lists of a couple of hundred hosts, and bounds the work and the
/// recursion of everything after the parser (the program itself is capped at 4,096
/// instructions, the kernel's `BPF_MAXINSNS`).
pub const MAX_FILTER_BYTES: usize = 4096;
/// Deepest nesting of parentheses and negations. People nest a handful; 64 keeps the parser's
/// recursion far from any stack limit.
pub const MAX_NESTING: usize = 64;

/// What a value is qualified as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// No kind given (`src 10.0.0.1`): an address, as `host`.
    Default,
    Host,
    Net,
    Port,
    PortRange,
    Proto,
}

/// The protocol qualifier of a primitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PQual {
    None,
    P(Proto),
    Ether,
}

/// The qualifiers in force, and the text they came from (for messages).
#[derive(Debug, Clone, Copy)]
struct Qual<'s> {
    proto: PQual,
    dir: Dir,
    kind: Kind,
    head: &'s str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kw {
    And,
    Or,
    Not,
    Src,
    Dst,
    Host,
    Net,
    Mask,
    Port,
    PortRange,
    Protocol,
    Less,
    Greater,
    Ether,
    P(Proto),
    Unsupported(&'static str),
}

fn keyword(w: &str) -> Option<Kw> {
    Some(match w {
        "and" => Kw::And,
        "or" => Kw::Or,
        "not" => Kw::Not,
        "src" => Kw::Src,
        "dst" => Kw::Dst,
        "host" => Kw::Host,
        "net" => Kw::Net,
        "mask" => Kw::Mask,
        "port" => Kw::Port,
        "portrange" => Kw::PortRange,
        "proto" => Kw::Protocol,
        "less" => Kw::Less,
        "greater" => Kw::Greater,
        "ether" => Kw::Ether,
        _ => {
            if let Some(p) = Proto::from_name(w) {
                Kw::P(p)
            } else {
                Kw::Unsupported(unsupported_reason(w)?)
            }
        }
    })
}

/// pcap-filter keywords this compiler does not implement, and why.
fn unsupported_reason(w: &str) -> Option<&'static str> {
    Some(match w {
        "vlan" | "mpls" | "pppoed" | "pppoes" | "geneve" | "vxlan" => {
            "encapsulations (the kernel takes VLAN tags off before the filter runs, so `tcp port 80` already matches tagged traffic)"
        }
        "gateway" => "`gateway` needs link-layer addresses and host name lookups",
        "broadcast" | "multicast" => "broadcast and multicast tests",
        "len" | "byte" => "arithmetic and packet-data expressions (use `less N` / `greater N` for lengths)",
        "inbound" | "outbound" | "ifindex" | "ifname" | "on" => "direction and interface tests",
        "protochain" => "`protochain` (walking IPv6 extension headers)",
        "link" | "fddi" | "tr" | "wlan" | "ppp" | "slip" | "radio" | "llc" => {
            "link-layer qualifiers (frames captured on `any` have different link headers)"
        }
        "atalk" | "aarp" | "decnet" | "lat" | "sca" | "moprc" | "mopdl" | "iso" | "esis" | "es-is" | "isis"
        | "is-is" | "clnp" | "stp" | "ipx" | "netbeui" | "l1" | "l2" | "iih" | "lsp" | "snp" | "csnp" | "psnp" => {
            "non-IP protocols other than ARP"
        }
        "type" | "subtype" | "dir" | "address1" | "address2" | "address3" | "address4" | "addr1" | "addr2"
        | "addr3" | "addr4" | "ra" | "ta" => "802.11 header fields",
        "lane" | "metac" | "bcc" | "oam" | "oamf4" | "sc" | "ilmic" | "connectmsg" | "metaconnect" | "vpi" | "vci" => {
            "ATM fields"
        }
        "sio" | "opc" | "dpc" | "sls" | "hsio" | "hopc" | "hdpc" | "hsls" => "SS7 fields",
        "rnr" | "rulenum" | "reason" | "rset" | "ruleset" | "srnr" | "subrulenum" | "action" => "pflog fields",
        _ => return None,
    })
}

/// Keywords a misspelled word may have meant.
const SUGGESTIONS: &[&str] = &[
    "host",
    "net",
    "port",
    "portrange",
    "src",
    "dst",
    "proto",
    "less",
    "greater",
    "and",
    "or",
    "not",
    "mask",
    "tcp",
    "udp",
    "sctp",
    "icmp",
    "icmp6",
    "ip",
    "ip6",
    "arp",
    "rarp",
    "ether",
];

/// " (did you mean `port`?)" for a word one or two edits away from a keyword.
fn did_you_mean(word: &str) -> String {
    if !word.bytes().all(|c| c.is_ascii_alphabetic()) || word.len() < 2 {
        return String::new();
    }
    SUGGESTIONS
        .iter()
        .map(|k| (strsim::levenshtein(word, k), *k))
        .filter(|(d, k)| *d <= 2 && *d < k.len())
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

/// A value token, classified.
#[derive(Debug, Clone, Copy)]
enum Value<'s> {
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

#[derive(Clone, Copy)]
enum BinOp {
    And,
    Or,
}

/// Parses a filter. The empty filter is [`Node::All`].
pub fn parse(src: &str) -> Result<Node, BpfError> {
    if src.len() > MAX_FILTER_BYTES {
        return Err(BpfError::at(
            src,
            MAX_FILTER_BYTES..src.len(),
            ErrorKind::Limit,
            format!(
                "the filter is {} bytes long; at most {MAX_FILTER_BYTES} are accepted",
                src.len()
            ),
        ));
    }
    let toks = lex(src)?;
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        nesting: 0,
    };
    if p.peek().tok == Tok::End {
        return Ok(Node::All);
    }
    let (node, _) = p.expr(None)?;
    let t = p.peek();
    match t.tok {
        Tok::End => Ok(node),
        Tok::RParen => Err(p.err(t, ErrorKind::Syntax, "unmatched ')'")),
        _ => Err(p.trailing(t)),
    }
}

struct Parser<'s> {
    src: &'s str,
    toks: Vec<Token<'s>>,
    pos: usize,
    nesting: usize,
}

impl<'s> Parser<'s> {
    fn peek(&self) -> Token<'s> {
        self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, n: usize) -> Token<'s> {
        self.toks[(self.pos + n).min(self.toks.len() - 1)]
    }

    fn bump(&mut self) -> Token<'s> {
        let t = self.peek();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    /// The token before the current one (the start of the filter at 0).
    fn prev(&self) -> Option<Token<'s>> {
        self.pos.checked_sub(1).map(|i| self.toks[i])
    }

    fn text(&self, t: Token<'s>) -> &'s str {
        &self.src[t.start..t.end]
    }

    fn describe(&self, t: Token<'s>) -> String {
        match t.tok {
            Tok::End => "the end of the filter".to_string(),
            _ => format!("'{}'", self.text(t)),
        }
    }

    fn err(&self, t: Token<'s>, kind: ErrorKind, msg: impl Into<String>) -> BpfError {
        BpfError::at(self.src, t.span(), kind, msg)
    }

    fn err_span(&self, from: Token<'s>, to: Token<'s>, kind: ErrorKind, msg: impl Into<String>) -> BpfError {
        BpfError::at(self.src, from.start..to.end, kind, msg)
    }

    fn kw(&self, t: Token<'s>) -> Option<Kw> {
        match t.tok {
            Tok::Word(w) => keyword(w),
            Tok::AndAnd => Some(Kw::And),
            Tok::OrOr => Some(Kw::Or),
            Tok::Bang => Some(Kw::Not),
            _ => None,
        }
    }

    fn binop(&self, t: Token<'s>) -> Option<BinOp> {
        match self.kw(t) {
            Some(Kw::And) => Some(BinOp::And),
            Some(Kw::Or) => Some(BinOp::Or),
            _ => None,
        }
    }

    fn is_not(&self, t: Token<'s>) -> bool {
        self.kw(t) == Some(Kw::Not)
    }

    /// A word that is not a keyword, or an escaped name.
    fn is_value(&self, t: Token<'s>) -> bool {
        match t.tok {
            Tok::Escaped(_) => true,
            Tok::Word(w) => keyword(w).is_none(),
            _ => false,
        }
    }

    /// After `and`/`or`: does a bare value (possibly behind `not`s and parentheses) follow?
    /// Then it continues the previous primitive's qualifiers (pcap-filter's `id`).
    fn starts_id(&self) -> bool {
        let mut i = 0;
        loop {
            let t = self.peek_at(i);
            if self.is_not(t) || t.tok == Tok::LParen {
                i += 1;
                continue;
            }
            return self.is_value(t);
        }
    }

    fn enter(&mut self, t: Token<'s>) -> Result<(), BpfError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.err(
                t,
                ErrorKind::Limit,
                format!("parentheses and negations nest deeper than {MAX_NESTING} levels"),
            ));
        }
        Ok(())
    }

    fn expect_rparen(&mut self, open: Token<'s>) -> Result<(), BpfError> {
        let t = self.peek();
        if t.tok == Tok::RParen {
            self.bump();
            return Ok(());
        }
        if matches!(t.tok, Tok::Symbol(_)) {
            return Err(self.arithmetic(t));
        }
        Err(self.err(
            t,
            ErrorKind::Syntax,
            format!(
                "expected ')' to close the '(' at column {}, found {}",
                open.start + 1,
                self.describe(t)
            ),
        ))
    }

    /// A token that cannot follow a complete primitive.
    fn trailing(&self, t: Token<'s>) -> BpfError {
        if matches!(t.tok, Tok::Symbol(_)) {
            return self.arithmetic(t);
        }
        let after = self
            .prev()
            .map(|p| format!(" after '{}'", self.text(p)))
            .unwrap_or_default();
        let hint = match self.is_value(t) {
            true if !did_you_mean(self.text(t)).is_empty() => did_you_mean(self.text(t)),
            true => " (a qualifier is missing: `host`, `net` or `port`?)".to_string(),
            false => String::new(),
        };
        self.err(
            t,
            ErrorKind::Syntax,
            format!(
                "expected `and`, `or` or the end of the filter{after}, found {}{hint}",
                self.describe(t)
            ),
        )
    }

    fn arithmetic(&self, t: Token<'s>) -> BpfError {
        self.err(
            t,
            ErrorKind::Unsupported,
            "not supported by wirelens' filter compiler: arithmetic and packet-data expressions \
             (`tcp[13] & 2 != 0`, `len > 100`); use `less N` / `greater N` for lengths",
        )
    }

    /// expr := term ((and | or) (id | term))*
    fn expr(&mut self, q: Option<Qual<'s>>) -> Result<(Node, Option<Qual<'s>>), BpfError> {
        let (mut left, mut q) = self.term(q)?;
        while let Some(op) = self.binop(self.peek()) {
            let op_tok = self.bump();
            let (right, q2) = if self.starts_id() {
                self.id(q, op_tok)?
            } else {
                self.term(q)?
            };
            left = combine(op, left, right);
            q = q2;
        }
        Ok((left, q))
    }

    /// term := not term | '(' expr ')' | rterm
    fn term(&mut self, q: Option<Qual<'s>>) -> Result<(Node, Option<Qual<'s>>), BpfError> {
        let t = self.peek();
        if self.is_not(t) {
            self.enter(t)?;
            self.bump();
            let (n, q) = self.term(q)?;
            self.nesting -= 1;
            return Ok((Node::Not(Box::new(n)), q));
        }
        if t.tok == Tok::LParen {
            self.enter(t)?;
            self.bump();
            let (n, _) = self.expr(q)?;
            self.expect_rparen(t)?;
            self.nesting -= 1;
            // What came before the parenthesis carries on after it.
            return Ok((n, q));
        }
        self.rterm()
    }

    /// A primitive: `less N`, `greater N`, a protocol alone, or `head id`.
    fn rterm(&mut self) -> Result<(Node, Option<Qual<'s>>), BpfError> {
        let t = self.peek();
        let after = self
            .prev()
            .map(|p| format!(" after '{}'", self.text(p)))
            .unwrap_or_default();
        match (t.tok, self.kw(t)) {
            (_, Some(Kw::Less | Kw::Greater)) => {
                self.bump();
                let n = self.length(t)?;
                let prim = if self.kw(t) == Some(Kw::Less) {
                    Prim::Less(n)
                } else {
                    Prim::Greater(n)
                };
                return Ok((Node::Prim(prim), None));
            }
            (_, Some(Kw::Unsupported(why))) => {
                return Err(self.err(
                    t,
                    ErrorKind::Unsupported,
                    format!("not supported by wirelens' filter compiler: `{}`: {why}", self.text(t)),
                ));
            }
            (
                _,
                Some(
                    Kw::P(_)
                    | Kw::Ether
                    | Kw::Src
                    | Kw::Dst
                    | Kw::Host
                    | Kw::Net
                    | Kw::Port
                    | Kw::PortRange
                    | Kw::Protocol,
                ),
            ) => {}
            (_, Some(Kw::Mask)) => {
                return Err(self.err(
                    t,
                    ErrorKind::Syntax,
                    "'mask' must follow a network address: `net 10.0.0.0 mask 255.0.0.0`",
                ));
            }
            (Tok::Word(_) | Tok::Escaped(_), None) => {
                return Err(self.bare_value(t, &after));
            }
            (Tok::Symbol(_), _) => return Err(self.arithmetic(t)),
            (Tok::RParen, _) => {
                return Err(self.err(t, ErrorKind::Syntax, format!("expected a primitive{after}, found ')'")));
            }
            _ => {
                return Err(self.err(
                    t,
                    ErrorKind::Syntax,
                    format!(
                        "expected a primitive (`tcp`, `host 10.0.0.1`, `port 80`…){after}, found {}",
                        self.describe(t)
                    ),
                ));
            }
        }

        // head := [proto] [dir] [kind]
        let head_start = t.start;
        let proto = match self.kw(t) {
            Some(Kw::P(p)) => {
                self.bump();
                PQual::P(p)
            }
            Some(Kw::Ether) => {
                self.bump();
                PQual::Ether
            }
            _ => PQual::None,
        };
        if proto != PQual::None && self.peek().tok == Tok::Symbol("[") {
            return Err(self.arithmetic(self.peek()));
        }
        let dir = self.dir();
        let k = self.peek();
        let kind = match self.kw(k) {
            Some(Kw::Host) => Some(Kind::Host),
            Some(Kw::Net) => Some(Kind::Net),
            Some(Kw::Port) => Some(Kind::Port),
            Some(Kw::PortRange) => Some(Kind::PortRange),
            Some(Kw::Protocol) => Some(Kind::Proto),
            Some(Kw::Unsupported(why)) if dir.is_some() || proto != PQual::None => {
                return Err(self.err(
                    k,
                    ErrorKind::Unsupported,
                    format!("not supported by wirelens' filter compiler: `{}`: {why}", self.text(k)),
                ));
            }
            _ => None,
        };
        if kind.is_some() {
            self.bump();
        }
        let head_end = self.prev().map_or(head_start, |p| p.end);
        let head = &self.src[head_start..head_end];
        if dir.is_none() && kind.is_none() {
            match proto {
                PQual::P(p) => {
                    let n = self.peek();
                    if self.is_value(n) {
                        let v = self.text(n);
                        let typo = did_you_mean(v);
                        let hint = match p {
                            _ if !typo.is_empty() => typo,
                            Proto::Tcp | Proto::Udp | Proto::Sctp => format!(" (`{head} port {v}`?)"),
                            Proto::Ip | Proto::Ip6 | Proto::Arp | Proto::Rarp => format!(" (`{head} host {v}`?)"),
                            _ => String::new(),
                        };
                        return Err(self.err(
                            n,
                            ErrorKind::Syntax,
                            format!(
                                "expected `and`, `or` or the end of the filter after '{head}', found {}{hint}",
                                self.describe(n)
                            ),
                        ));
                    }
                    return Ok((Node::Prim(Prim::Proto(p)), None));
                }
                _ => {
                    return Err(self.err(
                        t,
                        ErrorKind::Unsupported,
                        "not supported by wirelens' filter compiler: `ether` alone, `ether host`, `ether src`, \
                         `ether dst` (frames captured on `any` have different link headers); `ether proto N` works",
                    ));
                }
            }
        }
        if proto == PQual::Ether && kind != Some(Kind::Proto) {
            return Err(self.err_span(
                t,
                self.prev().unwrap_or(t),
                ErrorKind::Unsupported,
                format!(
                    "not supported by wirelens' filter compiler: `{head}` (MAC addresses: frames captured on `any` have \
                     different link headers); `ether proto N` works"
                ),
            ));
        }
        let q = Qual {
            proto,
            dir: dir.unwrap_or_default(),
            kind: kind.unwrap_or(Kind::Default),
            head,
        };
        let after_head = self.prev().unwrap_or(t);
        self.id(Some(q), after_head)
    }

    /// `src`, `dst`, `src or dst`, `src and dst` (either order).
    fn dir(&mut self) -> Option<Dir> {
        let first = match self.kw(self.peek()) {
            Some(Kw::Src) => Kw::Src,
            Some(Kw::Dst) => Kw::Dst,
            _ => return None,
        };
        self.bump();
        let other = if first == Kw::Src { Kw::Dst } else { Kw::Src };
        if let Some(op) = self.binop(self.peek())
            && self.kw(self.peek_at(1)) == Some(other)
        {
            self.bump();
            self.bump();
            return Some(match op {
                BinOp::Or => Dir::SrcOrDst,
                BinOp::And => Dir::SrcAndDst,
            });
        }
        Some(if first == Kw::Src { Dir::Src } else { Dir::Dst })
    }

    /// The number after `less`/`greater` (token `kw`).
    fn length(&mut self, kw: Token<'s>) -> Result<u32, BpfError> {
        let t = self.peek();
        if self.is_value(t)
            && let Value::Num(n) = self.classify(t)?
        {
            self.bump();
            return Ok(n);
        }
        if matches!(t.tok, Tok::Symbol(_)) {
            return Err(self.arithmetic(t));
        }
        Err(self.err(
            t,
            ErrorKind::Syntax,
            format!(
                "expected a length in bytes after '{}', found {}",
                self.text(kw),
                self.describe(t)
            ),
        ))
    }

    fn bare_value(&self, t: Token<'s>, after: &str) -> BpfError {
        let text = self.text(t);
        if let Some(k) = keyword(&text.to_ascii_lowercase())
            && !matches!(k, Kw::Unsupported(_))
        {
            return self.err(
                t,
                ErrorKind::Syntax,
                format!(
                    "unknown word '{text}' (keywords are lowercase: `{}`)",
                    text.to_ascii_lowercase()
                ),
            );
        }
        let typo = did_you_mean(text);
        if !typo.is_empty() {
            return self.err(t, ErrorKind::Syntax, format!("unknown word '{text}'{typo}"));
        }
        self.err(
            t,
            ErrorKind::Syntax,
            format!(
                "'{text}'{after} has no qualifier and none to inherit: write `host {text}`, `net {text}` or `port {text}`"
            ),
        )
    }

    /// id := not id | '(' pid ')' | value — a value under the qualifiers `q`.
    fn id(&mut self, q: Option<Qual<'s>>, after: Token<'s>) -> Result<(Node, Option<Qual<'s>>), BpfError> {
        let t = self.peek();
        if self.is_not(t) {
            self.enter(t)?;
            self.bump();
            let (n, q) = self.id(q, t)?;
            self.nesting -= 1;
            return Ok((Node::Not(Box::new(n)), q));
        }
        if t.tok == Tok::LParen {
            self.enter(t)?;
            self.bump();
            let (n, q) = self.pid(q, t)?;
            self.expect_rparen(t)?;
            self.nesting -= 1;
            return Ok((n, q));
        }
        let Some(q) = q else {
            let after = format!(" after '{}'", self.text(after));
            return Err(if self.is_value(t) {
                self.bare_value(t, &after)
            } else {
                self.err(
                    t,
                    ErrorKind::Syntax,
                    format!("expected a primitive{after}, found {}", self.describe(t)),
                )
            });
        };
        if !self.is_value(t) {
            let inherited = if matches!(self.kw(after), Some(Kw::And | Kw::Or | Kw::Not)) || after.tok == Tok::LParen {
                format!(" (continuing '{}')", q.head)
            } else {
                String::new()
            };
            let hint = match (q.kind, self.kw(t)) {
                (Kind::Proto, Some(Kw::P(p))) => format!(" ('{0}' is a keyword here: write `\\{0}`)", p.name()),
                _ if matches!(t.tok, Tok::Symbol(_)) => return Err(self.arithmetic(t)),
                _ => String::new(),
            };
            return Err(self.err(
                t,
                ErrorKind::Syntax,
                format!(
                    "expected {} after '{}'{inherited}, found {}{hint}",
                    wants(q.kind),
                    self.text(after),
                    self.describe(t)
                ),
            ));
        }
        self.bump();
        let prim = self.primitive(q, t, after)?;
        Ok((Node::Prim(prim), Some(q)))
    }

    /// pid := id ((and | or) id)* — inside the parentheses of an `id`.
    fn pid(&mut self, q: Option<Qual<'s>>, after: Token<'s>) -> Result<(Node, Option<Qual<'s>>), BpfError> {
        let (mut left, mut q) = self.id(q, after)?;
        while let Some(op) = self.binop(self.peek()) {
            let op_tok = self.bump();
            let (right, q2) = self.id(q, op_tok)?;
            left = combine(op, left, right);
            q = q2;
        }
        Ok((left, q))
    }

    fn classify(&self, t: Token<'s>) -> Result<Value<'s>, BpfError> {
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
    fn primitive(&mut self, q: Qual<'s>, t: Token<'s>, after: Token<'s>) -> Result<Prim, BpfError> {
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

#[derive(Debug, Clone, Copy)]
enum MaskSpec {
    Len(u32),
    Mask(u32),
}

fn wants(k: Kind) -> &'static str {
    match k {
        Kind::Default | Kind::Host => "an address",
        Kind::Net => "a network",
        Kind::Port => "a port number",
        Kind::PortRange => "a port range (`8000-9000`)",
        Kind::Proto => "a protocol number or name",
    }
}

fn combine(op: BinOp, a: Node, b: Node) -> Node {
    match op {
        BinOp::And => Node::And(Box::new(a), Box::new(b)),
        BinOp::Or => Node::Or(Box::new(a), Box::new(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How the filter grouped: every `and`/`or` in parentheses.
    fn norm(s: &str) -> String {
        match parse(s) {
            Ok(n) => n.grouped(),
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn the_normal_form_parses_back_and_nests_no_deeper() {
        for f in [
            "tcp or udp and icmp",
            "tcp or (udp and icmp)",
            "not (tcp or udp) and not arp",
            "host 10.0.0.1 or 10.0.0.2 and not (port 80 or 443)",
            "((tcp))",
        ] {
            let n = parse(f).unwrap();
            let text = n.to_string();
            assert_eq!(parse(&text).unwrap(), n, "{f} → {text}");
        }
        assert_eq!(
            parse("host 10.0.0.1 or 10.0.0.2 and not (port 80 or 443)")
                .unwrap()
                .to_string(),
            "host 10.0.0.1 or host 10.0.0.2 and not (port 80 or port 443)"
        );
        // A long chain needs no parentheses at all.
        let chain = (1..200).map(|p| format!("port {p}")).collect::<Vec<_>>().join(" or ");
        assert_eq!(parse(&chain).unwrap().to_string(), chain);
    }

    fn err(s: &str) -> BpfError {
        match parse(s) {
            Ok(n) => panic!("{s} parsed as {n}"),
            Err(e) => e,
        }
    }

    #[test]
    fn and_and_or_have_equal_precedence_left_to_right() {
        assert_eq!(norm("tcp or udp and icmp"), "((tcp or udp) and icmp)");
        assert_eq!(norm("tcp and udp or icmp"), "((tcp and udp) or icmp)");
        assert_eq!(norm("tcp || udp && icmp || arp"), "(((tcp or udp) and icmp) or arp)");
        assert_eq!(norm("tcp or (udp and icmp)"), "(tcp or (udp and icmp))");
        // `not` binds tightest.
        assert_eq!(norm("not tcp and udp"), "(not tcp and udp)");
        assert_eq!(norm("! tcp or !udp"), "(not tcp or not udp)");
        assert_eq!(norm("not (tcp or udp)"), "not (tcp or udp)");
        assert_eq!(norm("not not tcp"), "not not tcp");
        assert_eq!(norm(""), "");
        assert_eq!(norm("  "), "");
    }

    #[test]
    fn primitives_and_qualifiers() {
        assert_eq!(norm("host 10.0.0.1"), "host 10.0.0.1");
        assert_eq!(norm("src host 10.0.0.1"), "src host 10.0.0.1");
        assert_eq!(norm("dst 10.0.0.1"), "dst host 10.0.0.1");
        assert_eq!(norm("src or dst host 10.0.0.1"), "host 10.0.0.1");
        assert_eq!(norm("dst and src 10.0.0.1"), "src and dst host 10.0.0.1");
        assert_eq!(norm("ip host 10.0.0.1"), "ip host 10.0.0.1");
        assert_eq!(norm("arp src host 10.0.0.1"), "arp src host 10.0.0.1");
        assert_eq!(norm("ip6 host ::1"), "ip6 host ::1");
        assert_eq!(norm("host fe80::1"), "host fe80::1");
        assert_eq!(norm("net 10.0.0.0/8"), "net 10.0.0.0/8");
        assert_eq!(norm("net 10.0.0.0 mask 255.0.0.0"), "net 10.0.0.0/8");
        assert_eq!(norm("net 10.0.0.0 mask 255.0.255.0"), "net 10.0.0.0 mask 255.0.255.0");
        assert_eq!(norm("src net 2001:db8::/32"), "src net 2001:db8::/32");
        // Partial dotted nets, and libpcap's promotion of short numbers.
        assert_eq!(norm("net 10.1"), "net 10.1.0.0/16");
        assert_eq!(norm("net 192.168.1"), "net 192.168.1.0/24");
        assert_eq!(norm("net 10"), "net 10.0.0.0/8");
        assert_eq!(norm("net 10.1/16"), "net 10.1.0.0/16");
        assert_eq!(norm("host 10"), "host 0.0.0.10");
        assert_eq!(norm("host 010.0.0.1"), "host 10.0.0.1");
        assert_eq!(norm("port 80"), "port 80");
        assert_eq!(norm("port 0x50"), "port 80");
        assert_eq!(norm("port 070"), "port 56");
        assert_eq!(norm("tcp dst port 80"), "tcp dst port 80");
        assert_eq!(norm("udp dst portrange 5000-6000"), "udp dst portrange 5000-6000");
        assert_eq!(norm("portrange 9000-8000"), "portrange 8000-9000");
        assert_eq!(norm("portrange 80"), "portrange 80-80");
        assert_eq!(norm("port http"), "tcp port 80");
        assert_eq!(norm("port domain"), "port 53");
        assert_eq!(norm("udp port domain"), "udp port 53");
        assert_eq!(norm("portrange ssh-http"), "tcp portrange 22-80");
        assert_eq!(norm("portrange http-https"), "portrange 80-443");
        assert_eq!(norm("ip proto 6"), "ip proto 6");
        assert_eq!(norm("ip6 proto \\udp"), "ip6 proto 17");
        assert_eq!(norm("proto \\tcp"), "proto 6");
        assert_eq!(norm("ether proto \\arp"), "ether proto 0x0806");
        assert_eq!(norm("ether proto 0x88cc"), "ether proto 0x88cc");
        assert_eq!(norm("less 100 or greater 1000"), "(less 100 or greater 1000)");
        assert_eq!(norm("icmp6 and sctp"), "(icmp6 and sctp)");
    }

    #[test]
    fn bare_values_inherit_the_qualifiers_before_them() {
        assert_eq!(norm("host 10.0.0.1 or 10.0.0.2"), "(host 10.0.0.1 or host 10.0.0.2)");
        assert_eq!(norm("tcp port 80 or 443"), "(tcp port 80 or tcp port 443)");
        assert_eq!(
            norm("not host 10.0.0.1 and 10.0.0.2"),
            "(not host 10.0.0.1 and host 10.0.0.2)"
        );
        assert_eq!(
            norm("host 10.0.0.1 and not 10.0.0.2"),
            "(host 10.0.0.1 and not host 10.0.0.2)"
        );
        assert_eq!(
            norm("src host 10.0.0.1 and (10.0.0.2 or 10.0.0.3)"),
            "(src host 10.0.0.1 and (src host 10.0.0.2 or src host 10.0.0.3))"
        );
        assert_eq!(norm("ip proto 6 or 17"), "(ip proto 6 or ip proto 17)");
        assert_eq!(
            norm("net 10.0.0.0/8 or 192.168"),
            "(net 10.0.0.0/8 or net 192.168.0.0/16)"
        );
        assert_eq!(
            norm("net 10.0.0.0 mask 255.0.0.0 or 11.0.0.0"),
            "(net 10.0.0.0/8 or host 11.0.0.0)"
        );
        // After a parenthesised expression, what came before it carries on.
        assert_eq!(
            norm("port 80 and (host 1.1.1.1) or 5"),
            "((port 80 and host 1.1.1.1) or port 5)"
        );
        assert_eq!(
            norm("tcp port 80 or (tcp port 22 and 23)"),
            "(tcp port 80 or (tcp port 22 and tcp port 23))"
        );
        // A later primitive replaces the qualifiers.
        assert_eq!(
            norm("host 1.1.1.1 and port 80 or 443"),
            "((host 1.1.1.1 and port 80) or port 443)"
        );
        assert_eq!(norm("host not 1.1.1.1"), "not host 1.1.1.1");
    }

    #[test]
    fn errors_name_the_column() {
        let e = err("tcp port foo");
        assert_eq!(e.column, 10);
        assert!(e.message.contains("after 'port'") && e.message.contains("'foo'"), "{e}");
        assert!(e.to_string().starts_with("bpf filter: column 10: "), "{e}");
        assert!(e.to_string().ends_with("tcp port foo\n         ^^^"), "{e}");

        let e = err("tcp or 443");
        assert_eq!((e.column, e.kind), (8, ErrorKind::Syntax));
        assert!(e.message.contains("no qualifier"), "{e}");
        let e = err("10.0.0.1");
        assert_eq!(e.column, 1);
        let e = err("host");
        assert_eq!(e.column, 5);
        assert!(e.message.contains("found the end of the filter"), "{e}");
        let e = err("ip and");
        assert_eq!(e.column, 7);
        let e = err("(tcp or udp");
        assert_eq!(e.column, 12);
        assert!(e.message.contains("')'") && e.message.contains("column 1"), "{e}");
        let e = err("tcp)");
        assert_eq!(e.column, 4);
        let e = err("tcp 80");
        assert_eq!(e.column, 5);
        assert!(e.message.contains("tcp port"), "{e}");
        let e = err("port 65536");
        assert_eq!((e.column, e.kind), (6, ErrorKind::Invalid));
        let e = err("portrange 1-65536");
        assert_eq!(e.kind, ErrorKind::Invalid);
        let e = err("udp port http");
        assert!(e.message.contains("tcp only"), "{e}");
        let e = err("host example.com");
        assert!(e.message.contains("does not look up host names"), "{e}");
        let e = err("host 256.1.1.1");
        assert_eq!((e.column, e.kind), (6, ErrorKind::Invalid));
        let e = err("net 10.0.0.1/8");
        assert!(
            e.message.contains("outside the mask") && e.message.contains("10.0.0.0"),
            "{e}"
        );
        let e = err("host 10.0.0.0/8");
        assert!(e.message.contains("for networks"), "{e}");
        let e = err("net 10.0.0.0/33");
        assert_eq!(e.column, 14);
        let e = err("tcp host 10.0.0.1");
        assert!(e.message.contains("'tcp' cannot qualify an address"), "{e}");
        let e = err("ip6 host 10.0.0.1");
        assert!(e.message.contains("ip6"), "{e}");
        let e = err("ip host ::1");
        assert!(e.message.contains("IPv6"), "{e}");
        let e = err("ip port 80");
        assert!(e.message.contains("cannot qualify `port`"), "{e}");
        let e = err("ip proto tcp");
        assert!(e.message.contains("\\tcp"), "{e}");
        let e = err("ip proto 256");
        assert_eq!(e.kind, ErrorKind::Invalid);
        let e = err("port 09");
        assert!(e.message.contains("octal"), "{e}");
        let e = err("TCP");
        assert!(e.message.contains("lowercase"), "{e}");
        let e = err("tcp prt 80");
        assert_eq!(e.column, 5);
        assert!(e.message.contains("did you mean `port`?"), "{e}");
        let e = err("hots 10.0.0.1");
        assert!(e.message.contains("did you mean `host`?"), "{e}");
        let e = err("port 80 adn tcp");
        assert!(e.message.contains("did you mean `and`?"), "{e}");
        let e = err("tcp port 80 and hots 10.0.0.1");
        assert_eq!(e.column, 17);
        assert!(e.message.contains("did you mean `host`?"), "{e}");
        let e = err("host 1.2.3.4 and (tcp or 5.6.7.8)");
        assert_eq!(e.column, 26);
        assert!(e.message.contains("no qualifier"), "{e}");
        let e = err("host 1.2.3.4 or (5.6.7.8 and tcp)");
        assert_eq!(e.column, 30);
        assert!(e.message.contains("after 'and' (continuing 'host')"), "{e}");
    }

    #[test]
    fn unsupported_primitives_say_so() {
        for (f, col) in [
            ("vlan and tcp", 1),
            ("tcp[13] & 2 != 0", 4),
            ("len > 100", 1),
            ("ether host 00:11:22:33:44:55", 1),
            ("host 00:11:22:33:44:55", 6),
            ("gateway snup", 1),
            ("ip broadcast", 4),
            ("ip protochain 6", 4),
            ("ether proto 100", 13),
            ("tcp and inbound", 9),
            ("less 100 + 1", 10),
        ] {
            let e = err(f);
            assert_eq!((e.kind, e.column), (ErrorKind::Unsupported, col), "{f}: {e}");
            assert!(
                e.message.starts_with("not supported by wirelens' filter compiler"),
                "{f}: {e}"
            );
        }
    }

    #[test]
    fn limits() {
        let long = "tcp or ".repeat(MAX_FILTER_BYTES / 7 + 1) + "udp";
        let e = err(&long);
        assert_eq!((e.kind, e.column), (ErrorKind::Limit, MAX_FILTER_BYTES + 1));
        let deep = format!("{}tcp{}", "(".repeat(MAX_NESTING + 1), ")".repeat(MAX_NESTING + 1));
        let e = err(&deep);
        assert_eq!((e.kind, e.column), (ErrorKind::Limit, MAX_NESTING + 1));
        let nots = format!("{}tcp", "not ".repeat(MAX_NESTING + 1));
        assert_eq!(err(&nots).kind, ErrorKind::Limit);
        let ok = format!("{}tcp{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert_eq!(norm(&ok), "tcp");
    }
}
