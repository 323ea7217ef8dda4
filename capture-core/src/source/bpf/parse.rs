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
//! The result is an [`ast::Node`] whose primitives have every qualifier resolved; what each
//! value means under them is in [`super::value`].

use super::ast::{Dir, Node, Prim, Proto};
use super::error::{BpfError, ErrorKind};
use super::lex::{Tok, Token, lex};
use super::value::Value;

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
pub(super) enum Kind {
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
pub(super) enum PQual {
    None,
    P(Proto),
    Ether,
}

/// The qualifiers in force, and the text they came from (for messages).
#[derive(Debug, Clone, Copy)]
pub(super) struct Qual<'s> {
    pub(super) proto: PQual,
    pub(super) dir: Dir,
    pub(super) kind: Kind,
    pub(super) head: &'s str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kw {
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
pub(super) fn did_you_mean(word: &str) -> String {
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

pub(super) struct Parser<'s> {
    pub(super) src: &'s str,
    pub(super) toks: Vec<Token<'s>>,
    pub(super) pos: usize,
    pub(super) nesting: usize,
}

impl<'s> Parser<'s> {
    pub(super) fn peek(&self) -> Token<'s> {
        self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, n: usize) -> Token<'s> {
        self.toks[(self.pos + n).min(self.toks.len() - 1)]
    }

    pub(super) fn bump(&mut self) -> Token<'s> {
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

    pub(super) fn text(&self, t: Token<'s>) -> &'s str {
        &self.src[t.start..t.end]
    }

    pub(super) fn describe(&self, t: Token<'s>) -> String {
        match t.tok {
            Tok::End => "the end of the filter".to_string(),
            _ => format!("'{}'", self.text(t)),
        }
    }

    pub(super) fn err(&self, t: Token<'s>, kind: ErrorKind, msg: impl Into<String>) -> BpfError {
        BpfError::at(self.src, t.span(), kind, msg)
    }

    pub(super) fn err_span(&self, from: Token<'s>, to: Token<'s>, kind: ErrorKind, msg: impl Into<String>) -> BpfError {
        BpfError::at(self.src, from.start..to.end, kind, msg)
    }

    pub(super) fn kw(&self, t: Token<'s>) -> Option<Kw> {
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
    pub(super) fn is_value(&self, t: Token<'s>) -> bool {
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
