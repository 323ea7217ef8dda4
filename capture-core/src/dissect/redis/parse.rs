//! Pure RESP2/RESP3 decoding: a resumable decoder with an explicit stack (no recursion), inline
//! commands, and the probe that recognises Redis from a direction's first bytes.
//!
//! The decoder consumes complete lines and bulk payload bytes as they arrive, so the caller only
//! ever holds back one partial line; a bulk string of any declared size is streamed through
//! without being buffered. What it keeps of a message is bounded by [`Caps`]: the text of the
//! top-level value and of its first direct children, each cut at `value_bytes`.

use crate::dissect::Probe;
use crate::limits::Limits;

/// `remaining` of a streamed RESP3 aggregate (`*?`), which ends with a `.` line instead.
const STREAMED: u64 = u64::MAX;

/// RESP value types, named as in the contract (`redis_reply_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Kind {
    #[default]
    SimpleString,
    Error,
    Integer,
    BulkString,
    NullBulkString,
    Array,
    NullArray,
    Map,
    Set,
    Attribute,
    Push,
    Double,
    Boolean,
    BigNumber,
    VerbatimString,
    Null,
    BlobError,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::SimpleString => "simple_string",
            Kind::Error => "error",
            Kind::Integer => "integer",
            Kind::BulkString => "bulk_string",
            Kind::NullBulkString => "null_bulk_string",
            Kind::Array => "array",
            Kind::NullArray => "null_array",
            Kind::Map => "map",
            Kind::Set => "set",
            Kind::Attribute => "attribute",
            Kind::Push => "push",
            Kind::Double => "double",
            Kind::Boolean => "boolean",
            Kind::BigNumber => "big_number",
            Kind::VerbatimString => "verbatim_string",
            Kind::Null => "null",
            Kind::BlobError => "blob_error",
        }
    }

    /// Aggregates hold other values.
    pub fn is_aggregate(self) -> bool {
        matches!(self, Kind::Array | Kind::Map | Kind::Set | Kind::Attribute | Kind::Push)
    }

    /// Values whose bytes are text worth showing (strings, numbers, errors).
    pub fn is_textual(self) -> bool {
        !self.is_aggregate() && !matches!(self, Kind::NullArray | Kind::NullBulkString | Kind::Null)
    }
}

/// Bounds on what the decoder accepts and keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Deepest nesting of aggregates followed.
    pub max_depth: usize,
    /// Largest declared aggregate length.
    pub max_aggregate_len: u64,
    /// Largest declared bulk string length.
    pub max_bulk_len: u64,
    /// Longest line (simple string, error, inline command).
    pub max_line: usize,
    /// Bytes kept of each value.
    pub value_bytes: usize,
    /// Bytes kept of the first two direct children (a command's name and key).
    pub key_bytes: usize,
    /// Direct children of the top-level value kept.
    pub max_items: usize,
}

impl Caps {
    pub fn from_limits(l: &Limits) -> Caps {
        Caps {
            max_depth: l.redis_max_depth,
            max_aggregate_len: l.redis_max_aggregate_len,
            max_bulk_len: l.redis_max_bulk_len,
            max_line: l.redis_max_line_bytes,
            value_bytes: l.redis_value_bytes,
            key_bytes: l.redis_key_bytes,
            max_items: l.redis_max_args,
        }
    }
}

/// One direct child of a top-level aggregate (or one argument of a command).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Item {
    pub kind: Kind,
    /// The first `value_bytes` of its text.
    pub data: Vec<u8>,
    /// Declared length: payload bytes of a string, elements of an aggregate.
    pub len: u64,
    pub truncated: bool,
}

/// What is kept of one complete RESP message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// Type of the value; a value preceded by an attribute has the type of the value.
    pub kind: Kind,
    /// An attribute preceded the value.
    pub attribute: bool,
    /// An inline command (a plain text line); its words are the items.
    pub inline: bool,
    /// Text of a scalar, or the first bytes of a string.
    pub data: Vec<u8>,
    /// Declared length: payload bytes of a string, elements of an aggregate (keys and values of a
    /// map both count), bytes of a scalar's text.
    pub len: u64,
    pub truncated: bool,
    /// The first direct children (`max_items`), attributes excluded.
    pub items: Vec<Item>,
    /// Every direct child, attributes excluded.
    pub items_total: u64,
    /// Bytes of the message on the wire (gap bytes included).
    pub wire_bytes: u64,
    /// Bytes of a bulk payload that the capture missed.
    pub gap_bytes: u64,
}

impl Message {
    /// The items as text (lossy UTF-8), for commands.
    pub fn words(&self) -> impl Iterator<Item = std::borrow::Cow<'_, str>> {
        self.items.iter().map(|i| String::from_utf8_lossy(&i.data))
    }

    /// An array whose direct children are all bulk strings: the shape of a command.
    pub fn is_command_shaped(&self) -> bool {
        self.inline
            || (self.kind == Kind::Array
                && self.items_total > 0
                && self.items.iter().all(|i| i.kind == Kind::BulkString))
    }

    /// The first item, lower-cased, when it is a short string (a push or pub/sub kind).
    pub fn first_word_lower(&self) -> Option<String> {
        let first = self.items.first()?;
        (first.kind.is_textual() && !first.truncated && first.data.len() <= 32)
            .then(|| String::from_utf8_lossy(&first.data).to_ascii_lowercase())
    }
}

/// Why a byte stream is not RESP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// A line that is no RESP type, a bad number, or a missing CRLF after a payload.
    Syntax,
    /// Aggregates nested deeper than `max_depth`.
    TooDeep,
    /// A declared length beyond `max_aggregate_len` / `max_bulk_len`.
    TooLong,
    /// A line longer than `max_line`.
    LineTooLong,
}

/// Where the bytes of the value being read go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Top,
    Item,
    Skip,
}

#[derive(Debug, Clone)]
struct Frame {
    kind: Kind,
    /// Values still expected; [`STREAMED`] until a `.` line.
    remaining: u64,
    /// This frame is an attribute or lies inside one.
    attr: bool,
    /// A streamed string (`$?`): the frame reads `;len` chunks until `;0`.
    streamed_string: bool,
    target: Target,
}

#[derive(Debug, Clone)]
struct Bulk {
    kind: Kind,
    left: u64,
    /// CRLF bytes still expected after the payload.
    crlf: u8,
    target: Target,
    /// A chunk of a streamed string: its end does not end a value.
    chunk: bool,
}

/// A resumable RESP decoder for one direction. Feed it bytes with [`Decoder::decode`].
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    stack: Vec<Frame>,
    bulk: Option<Bulk>,
    msg: Message,
    started: bool,
    kind_known: bool,
    /// Complete lines and payloads read since the decoder was created (probe evidence).
    lines: u32,
}

fn is_type_byte(b: u8) -> bool {
    matches!(
        b,
        b'+' | b'-' | b':' | b'$' | b'*' | b'_' | b'#' | b',' | b'(' | b'!' | b'=' | b'%' | b'~' | b'|' | b'>'
    )
}

/// A decimal length: optional `-`, then digits (at most 19).
fn parse_len(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits.iter().fold(0i64, |a, d| a * 10 + i64::from(d - b'0'));
    Some(if neg { -v } else { v })
}

/// A signed decimal of at most `max_digits` digits.
fn valid_integer(b: &[u8], max_digits: usize) -> bool {
    let digits = b.strip_prefix(b"-").or_else(|| b.strip_prefix(b"+")).unwrap_or(b);
    !digits.is_empty() && digits.len() <= max_digits && digits.iter().all(u8::is_ascii_digit)
}

fn valid_double(b: &[u8]) -> bool {
    matches!(b, b"inf" | b"-inf" | b"+inf" | b"nan" | b"-nan")
        || (!b.is_empty()
            && b.len() <= 400
            && b.iter()
                .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
            && b.iter().any(u8::is_ascii_digit))
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// True while a message has started and not completed.
    pub fn in_message(&self) -> bool {
        self.started
    }

    /// Ends the message being read and returns what was seen of it, once its type is known (a
    /// reply cut by a gap, an error or the end of the connection). The decoder is reset.
    pub fn take_partial(&mut self) -> Option<Message> {
        let m = (self.started && self.kind_known).then(|| std::mem::take(&mut self.msg));
        self.reset();
        m
    }

    /// Forgets the message being read (after a gap or an error).
    pub fn reset(&mut self) {
        let lines = self.lines;
        *self = Decoder {
            lines,
            ..Decoder::default()
        };
    }

    /// `n` bytes are missing from the stream. Inside a bulk payload long enough to contain them the
    /// decoder stays in step (the value is marked cut); otherwise it returns false and the caller
    /// must reset and re-synchronise.
    pub fn skip_gap(&mut self, n: u64) -> bool {
        match &mut self.bulk {
            Some(b) if b.left >= n => {
                b.left -= n;
                let target = b.target;
                self.msg.gap_bytes += n;
                self.msg.wire_bytes += n;
                self.mark_truncated(target);
                true
            }
            _ => false,
        }
    }

    fn mark_truncated(&mut self, target: Target) {
        match target {
            Target::Top => self.msg.truncated = true,
            Target::Item => {
                if let Some(i) = self.msg.items.last_mut() {
                    i.truncated = true;
                }
            }
            Target::Skip => {}
        }
    }

    fn capture(&mut self, target: Target, data: &[u8], caps: &Caps) {
        let keyish = self.msg.items.len() <= 2;
        let (buf, truncated, cap) = match target {
            Target::Top => (&mut self.msg.data, &mut self.msg.truncated, caps.value_bytes),
            Target::Item => match self.msg.items.last_mut() {
                Some(i) => (
                    &mut i.data,
                    &mut i.truncated,
                    if keyish { caps.key_bytes } else { caps.value_bytes },
                ),
                None => return,
            },
            Target::Skip => return,
        };
        let room = cap.saturating_sub(buf.len());
        if data.len() > room {
            *truncated = true;
        }
        buf.extend_from_slice(&data[..data.len().min(room)]);
    }

    /// Registers the start of a value of `kind` and says where its bytes go.
    fn open_value(&mut self, kind: Kind, len: u64, caps: &Caps) -> Target {
        match self.stack.as_slice() {
            [] => {
                if kind == Kind::Attribute {
                    return Target::Skip;
                }
                self.msg.kind = kind;
                self.msg.len = len;
                self.kind_known = true;
                Target::Top
            }
            [top] if !top.attr && !top.streamed_string => {
                if kind == Kind::Attribute {
                    return Target::Skip;
                }
                self.msg.items_total += 1;
                if self.msg.items.len() < caps.max_items {
                    self.msg.items.push(Item {
                        kind,
                        data: Vec::new(),
                        len,
                        truncated: false,
                    });
                    Target::Item
                } else {
                    Target::Skip
                }
            }
            _ => Target::Skip,
        }
    }

    /// A value of `kind` completed; returns the message when it was the top-level value.
    fn value_done(&mut self, mut kind: Kind) -> Option<Message> {
        loop {
            let Some(top) = self.stack.last_mut() else {
                if kind == Kind::Attribute {
                    // The value the attribute describes follows.
                    self.msg.attribute = true;
                    return None;
                }
                self.started = false;
                self.kind_known = false;
                return Some(std::mem::take(&mut self.msg));
            };
            if kind == Kind::Attribute {
                // Attributes are not elements of their aggregate.
                return None;
            }
            if top.remaining != STREAMED {
                top.remaining -= 1;
                if top.remaining == 0 {
                    kind = top.kind;
                    self.stack.pop();
                    continue;
                }
            }
            return None;
        }
    }

    fn scalar(&mut self, kind: Kind, text: &[u8], caps: &Caps) -> Option<Message> {
        let t = self.open_value(kind, text.len() as u64, caps);
        self.capture(t, text, caps);
        self.value_done(kind)
    }

    fn open_aggregate(&mut self, kind: Kind, count: u64, declared: u64, caps: &Caps) -> Result<Option<Message>, Error> {
        if self.stack.len() >= caps.max_depth {
            return Err(Error::TooDeep);
        }
        let target = self.open_value(kind, declared, caps);
        if count == 0 {
            return Ok(self.value_done(kind));
        }
        let attr = kind == Kind::Attribute || self.stack.last().is_some_and(|f| f.attr);
        self.stack.push(Frame {
            kind,
            remaining: count,
            attr,
            streamed_string: false,
            target,
        });
        Ok(None)
    }

    /// Handles one complete line (without its line ending).
    fn line(&mut self, line: &[u8], caps: &Caps, inline_ok: bool) -> Result<Option<Message>, Error> {
        if let Some(f) = self.stack.last()
            && f.streamed_string
        {
            let n = line
                .strip_prefix(b";")
                .and_then(parse_len)
                .filter(|n| *n >= 0)
                .ok_or(Error::Syntax)? as u64;
            if n > caps.max_bulk_len {
                return Err(Error::TooLong);
            }
            if n == 0 {
                let kind = f.kind;
                self.stack.pop();
                return Ok(self.value_done(kind));
            }
            let target = f.target;
            match target {
                Target::Top => self.msg.len += n,
                Target::Item => {
                    if let Some(i) = self.msg.items.last_mut() {
                        i.len += n;
                    }
                }
                Target::Skip => {}
            }
            self.bulk = Some(Bulk {
                kind: f.kind,
                left: n,
                crlf: 2,
                target,
                chunk: true,
            });
            return Ok(None);
        }
        if line == b"."
            && let Some(f) = self.stack.last()
            && f.remaining == STREAMED
        {
            let kind = f.kind;
            self.stack.pop();
            return Ok(self.value_done(kind));
        }
        let Some((&t, body)) = line.split_first() else {
            return Err(Error::Syntax);
        };
        if !is_type_byte(t) {
            if self.stack.is_empty() && !self.msg.attribute && inline_ok {
                self.inline(line, caps);
                self.started = false;
                self.kind_known = false;
                return Ok(Some(std::mem::take(&mut self.msg)));
            }
            return Err(Error::Syntax);
        }
        match t {
            b'+' => Ok(self.scalar(Kind::SimpleString, body, caps)),
            b'-' => Ok(self.scalar(Kind::Error, body, caps)),
            b':' if valid_integer(body, 20) => Ok(self.scalar(Kind::Integer, body, caps)),
            b',' if valid_double(body) => Ok(self.scalar(Kind::Double, body, caps)),
            b'#' if body == b"t" || body == b"f" => Ok(self.scalar(Kind::Boolean, body, caps)),
            b'_' if body.is_empty() => Ok(self.scalar(Kind::Null, body, caps)),
            b'(' if valid_integer(body, usize::MAX) => Ok(self.scalar(Kind::BigNumber, body, caps)),
            b'$' | b'!' | b'=' => {
                let kind = match t {
                    b'$' => Kind::BulkString,
                    b'!' => Kind::BlobError,
                    _ => Kind::VerbatimString,
                };
                if body == b"?" {
                    if self.stack.len() >= caps.max_depth {
                        return Err(Error::TooDeep);
                    }
                    let target = self.open_value(kind, 0, caps);
                    let attr = self.stack.last().is_some_and(|f| f.attr);
                    self.stack.push(Frame {
                        kind,
                        remaining: STREAMED,
                        attr,
                        streamed_string: true,
                        target,
                    });
                    return Ok(None);
                }
                let n = parse_len(body).ok_or(Error::Syntax)?;
                if n == -1 && t == b'$' {
                    return Ok(self.scalar(Kind::NullBulkString, b"", caps));
                }
                if n < 0 {
                    return Err(Error::Syntax);
                }
                let n = n as u64;
                if n > caps.max_bulk_len {
                    return Err(Error::TooLong);
                }
                let target = self.open_value(kind, n, caps);
                self.bulk = Some(Bulk {
                    kind,
                    left: n,
                    crlf: 2,
                    target,
                    chunk: false,
                });
                Ok(None)
            }
            b'*' | b'~' | b'%' | b'>' | b'|' => {
                let kind = match t {
                    b'*' => Kind::Array,
                    b'~' => Kind::Set,
                    b'%' => Kind::Map,
                    b'>' => Kind::Push,
                    _ => Kind::Attribute,
                };
                if body == b"?" {
                    return self.open_aggregate(kind, STREAMED, 0, caps);
                }
                let n = parse_len(body).ok_or(Error::Syntax)?;
                if n == -1 && t == b'*' {
                    return Ok(self.scalar(Kind::NullArray, b"", caps));
                }
                if n < 0 {
                    return Err(Error::Syntax);
                }
                let n = n as u64;
                if n > caps.max_aggregate_len {
                    return Err(Error::TooLong);
                }
                let count = if matches!(kind, Kind::Map | Kind::Attribute) {
                    n * 2
                } else {
                    n
                };
                self.open_aggregate(kind, count, count, caps)
            }
            _ => Err(Error::Syntax),
        }
    }

    /// An inline command: its words become the items (as bulk strings).
    fn inline(&mut self, line: &[u8], caps: &Caps) {
        self.msg.inline = true;
        self.msg.kind = Kind::Array;
        let words = split_inline(line);
        self.msg.items_total = words.len() as u64;
        self.msg.len = words.len() as u64;
        for (n, w) in words.into_iter().take(caps.max_items).enumerate() {
            let cap = if n < 2 { caps.key_bytes } else { caps.value_bytes };
            let truncated = w.len() > cap;
            let len = w.len() as u64;
            let mut data = w;
            data.truncate(cap);
            self.msg.items.push(Item {
                kind: Kind::BulkString,
                data,
                len,
                truncated,
            });
        }
    }

    /// Decodes from `input`. Returns the bytes consumed and, when one completed, a message; call
    /// again with the rest of the input for the next. `Ok((n, None))` with `n < input.len()`
    /// means the rest is a partial line: keep it and call again with more bytes. `inline_ok`
    /// allows inline commands (the client direction). On error, the message being read is lost
    /// and the caller re-synchronises.
    pub fn decode(&mut self, input: &[u8], caps: &Caps, inline_ok: bool) -> Result<(usize, Option<Message>), Error> {
        let mut at = 0;
        loop {
            if let Some(b) = &mut self.bulk {
                if b.left > 0 {
                    let take = (input.len() - at).min(usize::try_from(b.left).unwrap_or(usize::MAX));
                    b.left -= take as u64;
                    let target = b.target;
                    self.capture(target, &input[at..at + take], caps);
                    self.msg.wire_bytes += take as u64;
                    at += take;
                    if self.bulk.as_ref().is_some_and(|b| b.left > 0) {
                        return Ok((at, None));
                    }
                }
                let b = self.bulk.as_mut().expect("bulk in progress");
                while b.crlf > 0 {
                    let Some(&c) = input.get(at) else {
                        return Ok((at, None));
                    };
                    let want = if b.crlf == 2 { b'\r' } else { b'\n' };
                    if c != want {
                        return Err(Error::Syntax);
                    }
                    b.crlf -= 1;
                    at += 1;
                    self.msg.wire_bytes += 1;
                }
                let b = self.bulk.take().expect("bulk in progress");
                self.lines = self.lines.saturating_add(1);
                if b.chunk {
                    continue;
                }
                if let Some(m) = self.value_done(b.kind) {
                    return Ok((at, Some(m)));
                }
                continue;
            }
            let rest = &input[at..];
            if rest.is_empty() {
                return Ok((at, None));
            }
            let Some(nl) = memchr::memchr(b'\n', &rest[..rest.len().min(caps.max_line + 2)]) else {
                if rest.len() > caps.max_line + 1 {
                    return Err(Error::LineTooLong);
                }
                return Ok((at, None));
            };
            let line = rest[..nl].strip_suffix(b"\r").unwrap_or(&rest[..nl]);
            if line.is_empty() && self.stack.is_empty() && !self.started && inline_ok {
                // Redis ignores empty lines between inline commands.
                at += nl + 1;
                continue;
            }
            self.started = true;
            self.msg.wire_bytes += nl as u64 + 1;
            at += nl + 1;
            self.lines = self.lines.saturating_add(1);
            if let Some(m) = self.line(line, caps, inline_ok)? {
                return Ok((at, Some(m)));
            }
        }
    }
}

/// Splits an inline command into words as Redis does (`sdssplitargs`): whitespace separates,
/// `"…"` understands `\n \r \t \b \a \\ \" \xHH`, `'…'` understands `\'`. Unbalanced quotes give
/// the words split on whitespace only.
pub fn split_inline(line: &[u8]) -> Vec<Vec<u8>> {
    split_quoted(line).unwrap_or_else(|| {
        line.split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    })
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn split_quoted(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == line.len() {
            return Some(out);
        }
        let mut word = Vec::new();
        match line[i] {
            b'"' => {
                i += 1;
                loop {
                    let c = *line.get(i)?;
                    match c {
                        b'\\'
                            if i + 3 < line.len()
                                && line[i + 1] == b'x'
                                && hex(line[i + 2]).is_some()
                                && hex(line[i + 3]).is_some() =>
                        {
                            word.push(hex(line[i + 2])? * 16 + hex(line[i + 3])?);
                            i += 4;
                        }
                        b'\\' if i + 1 < line.len() => {
                            word.push(match line[i + 1] {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                b'b' => 8,
                                b'a' => 7,
                                other => other,
                            });
                            i += 2;
                        }
                        b'"' => {
                            i += 1;
                            if i < line.len() && !line[i].is_ascii_whitespace() {
                                return None;
                            }
                            break;
                        }
                        _ => {
                            word.push(c);
                            i += 1;
                        }
                    }
                }
            }
            b'\'' => {
                i += 1;
                loop {
                    let c = *line.get(i)?;
                    match c {
                        b'\\' if line.get(i + 1) == Some(&b'\'') => {
                            word.push(b'\'');
                            i += 2;
                        }
                        b'\'' => {
                            i += 1;
                            if i < line.len() && !line[i].is_ascii_whitespace() {
                                return None;
                            }
                            break;
                        }
                        _ => {
                            word.push(c);
                            i += 1;
                        }
                    }
                }
            }
            _ => {
                while i < line.len() && !line[i].is_ascii_whitespace() {
                    word.push(line[i]);
                    i += 1;
                }
            }
        }
        out.push(word);
    }
}

/// Could this be a command name (`GET`, `CLIENT`, `JSON.SET`, `ft.search`)?
pub fn command_like(b: &[u8]) -> bool {
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'|' | b':'))
}

/// Command names of Redis and its common modules' prefixes. Used to tell a command from a reply
/// when a capture starts mid-connection, never to refuse a command.
const COMMANDS: &[&str] = &[
    "ACL",
    "APPEND",
    "ASKING",
    "AUTH",
    "BGREWRITEAOF",
    "BGSAVE",
    "BITCOUNT",
    "BITFIELD",
    "BITFIELD_RO",
    "BITOP",
    "BITPOS",
    "BLMOVE",
    "BLMPOP",
    "BLPOP",
    "BRPOP",
    "BRPOPLPUSH",
    "BZMPOP",
    "BZPOPMAX",
    "BZPOPMIN",
    "CLIENT",
    "CLUSTER",
    "COMMAND",
    "CONFIG",
    "COPY",
    "DBSIZE",
    "DEBUG",
    "DECR",
    "DECRBY",
    "DEL",
    "DISCARD",
    "DUMP",
    "ECHO",
    "EVAL",
    "EVALSHA",
    "EVALSHA_RO",
    "EVAL_RO",
    "EXEC",
    "EXISTS",
    "EXPIRE",
    "EXPIREAT",
    "EXPIRETIME",
    "FAILOVER",
    "FCALL",
    "FCALL_RO",
    "FLUSHALL",
    "FLUSHDB",
    "FUNCTION",
    "GEOADD",
    "GEODIST",
    "GEOHASH",
    "GEOPOS",
    "GEORADIUS",
    "GEORADIUSBYMEMBER",
    "GEOSEARCH",
    "GEOSEARCHSTORE",
    "GET",
    "GETBIT",
    "GETDEL",
    "GETEX",
    "GETRANGE",
    "GETSET",
    "HDEL",
    "HELLO",
    "HEXISTS",
    "HEXPIRE",
    "HGET",
    "HGETALL",
    "HINCRBY",
    "HINCRBYFLOAT",
    "HKEYS",
    "HLEN",
    "HMGET",
    "HMSET",
    "HPERSIST",
    "HRANDFIELD",
    "HSCAN",
    "HSET",
    "HSETNX",
    "HSTRLEN",
    "HTTL",
    "HVALS",
    "INCR",
    "INCRBY",
    "INCRBYFLOAT",
    "INFO",
    "KEYS",
    "LASTSAVE",
    "LATENCY",
    "LCS",
    "LINDEX",
    "LINSERT",
    "LLEN",
    "LMOVE",
    "LMPOP",
    "LOLWUT",
    "LPOP",
    "LPOS",
    "LPUSH",
    "LPUSHX",
    "LRANGE",
    "LREM",
    "LSET",
    "LTRIM",
    "MEMORY",
    "MGET",
    "MIGRATE",
    "MODULE",
    "MONITOR",
    "MOVE",
    "MSET",
    "MSETNX",
    "MULTI",
    "OBJECT",
    "PERSIST",
    "PEXPIRE",
    "PEXPIREAT",
    "PEXPIRETIME",
    "PFADD",
    "PFCOUNT",
    "PFMERGE",
    "PING",
    "PSETEX",
    "PSUBSCRIBE",
    "PSYNC",
    "PTTL",
    "PUBLISH",
    "PUBSUB",
    "PUNSUBSCRIBE",
    "QUIT",
    "RANDOMKEY",
    "READONLY",
    "READWRITE",
    "RENAME",
    "RENAMENX",
    "REPLCONF",
    "REPLICAOF",
    "RESET",
    "RESTORE",
    "ROLE",
    "RPOP",
    "RPOPLPUSH",
    "RPUSH",
    "RPUSHX",
    "SADD",
    "SAVE",
    "SCAN",
    "SCARD",
    "SCRIPT",
    "SDIFF",
    "SDIFFSTORE",
    "SELECT",
    "SET",
    "SETBIT",
    "SETEX",
    "SETNX",
    "SETRANGE",
    "SHUTDOWN",
    "SINTER",
    "SINTERCARD",
    "SINTERSTORE",
    "SISMEMBER",
    "SLAVEOF",
    "SLOWLOG",
    "SMEMBERS",
    "SMISMEMBER",
    "SMOVE",
    "SORT",
    "SORT_RO",
    "SPOP",
    "SPUBLISH",
    "SRANDMEMBER",
    "SREM",
    "SSCAN",
    "SSUBSCRIBE",
    "STRLEN",
    "SUBSCRIBE",
    "SUBSTR",
    "SUNION",
    "SUNIONSTORE",
    "SUNSUBSCRIBE",
    "SWAPDB",
    "SYNC",
    "TIME",
    "TOUCH",
    "TTL",
    "TYPE",
    "UNLINK",
    "UNSUBSCRIBE",
    "UNWATCH",
    "WAIT",
    "WAITAOF",
    "WATCH",
    "XACK",
    "XADD",
    "XAUTOCLAIM",
    "XCLAIM",
    "XDEL",
    "XGROUP",
    "XINFO",
    "XLEN",
    "XPENDING",
    "XRANGE",
    "XREAD",
    "XREADGROUP",
    "XREVRANGE",
    "XSETID",
    "XTRIM",
    "ZADD",
    "ZCARD",
    "ZCOUNT",
    "ZDIFF",
    "ZDIFFSTORE",
    "ZINCRBY",
    "ZINTER",
    "ZINTERCARD",
    "ZINTERSTORE",
    "ZLEXCOUNT",
    "ZMPOP",
    "ZMSCORE",
    "ZPOPMAX",
    "ZPOPMIN",
    "ZRANDMEMBER",
    "ZRANGE",
    "ZRANGEBYLEX",
    "ZRANGEBYSCORE",
    "ZRANGESTORE",
    "ZRANK",
    "ZREM",
    "ZREMRANGEBYLEX",
    "ZREMRANGEBYRANK",
    "ZREMRANGEBYSCORE",
    "ZREVRANGE",
    "ZREVRANGEBYLEX",
    "ZREVRANGEBYSCORE",
    "ZREVRANK",
    "ZSCAN",
    "ZSCORE",
    "ZUNION",
    "ZUNIONSTORE",
];

/// Is this (case-insensitively) a Redis command name, or a module command (`JSON.SET`)?
pub fn known_command(name: &[u8]) -> bool {
    if name.contains(&b'.') {
        return command_like(name);
    }
    let Ok(s) = std::str::from_utf8(name) else {
        return false;
    };
    COMMANDS.iter().any(|c| c.eq_ignore_ascii_case(s))
}

/// Caps for probing: small, so a probe never follows much.
const PROBE_CAPS: Caps = Caps {
    max_depth: 16,
    max_aggregate_len: 1 << 31,
    max_bulk_len: 1 << 32,
    max_line: 4096,
    value_bytes: 64,
    key_bytes: 64,
    max_items: 4,
};

/// Does this direction's first data look like RESP? Complete messages are judged by their shape;
/// a prefix is enough once three lines parsed, or two that open an array of bulk strings
/// (`*3\r\n$3\r\n`), or a top-level bulk header followed by payload. Text lines that could be
/// inline commands stay undecided (`NeedMore`) until the other direction answers in RESP.
pub fn probe(buf: &[u8]) -> Probe {
    let Some(&first) = buf.first() else {
        return Probe::NeedMore;
    };
    if is_type_byte(first) {
        let mut d = Decoder::new();
        return match d.decode(buf, &PROBE_CAPS, false) {
            Err(_) => Probe::NoMatch,
            Ok((_, Some(m))) => {
                if plausible(&m) {
                    Probe::Match
                } else {
                    Probe::NoMatch
                }
            }
            Ok((used, None)) => {
                let array_of_bulks =
                    d.msg.kind == Kind::Array && d.msg.items.first().is_some_and(|i| i.kind == Kind::BulkString);
                let top_bulk_payload = d.stack.is_empty() && d.bulk.is_some() && !d.msg.data.is_empty();
                if d.lines >= 3 || (d.lines >= 2 && array_of_bulks) || top_bulk_payload {
                    Probe::Match
                } else if buf.len() - used > PROBE_CAPS.max_line {
                    Probe::NoMatch
                } else {
                    Probe::NeedMore
                }
            }
        };
    }
    if !first.is_ascii_alphabetic() {
        return Probe::NoMatch;
    }
    let window = &buf[..buf.len().min(PROBE_CAPS.max_line)];
    let printable = |c: &u8| *c == b'\t' || (0x20..0x7f).contains(c) || *c >= 0x80;
    let mut lines = window.split(|c| *c == b'\n').peekable();
    let mut n = 0;
    while let Some(line) = lines.next() {
        let complete = lines.peek().is_some();
        let line = if complete {
            line.strip_suffix(b"\r").unwrap_or(line)
        } else {
            line
        };
        if !line.iter().all(printable) {
            return Probe::NoMatch;
        }
        if n == 0 {
            let word_end = line.iter().position(|c| c.is_ascii_whitespace()).unwrap_or(line.len());
            if word_end > 64 || !command_like(&line[..word_end]) {
                return Probe::NoMatch;
            }
        }
        n += 1;
    }
    if buf.len() >= PROBE_CAPS.max_line {
        return Probe::NoMatch;
    }
    Probe::NeedMore
}

/// Is a complete first message convincingly RESP (and not, say, a POP3 greeting)?
fn plausible(m: &Message) -> bool {
    match m.kind {
        Kind::SimpleString => {
            !m.data.is_empty() && m.data.len() <= 32 && m.data.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        }
        Kind::Error => {
            let word_end = m.data.iter().position(|c| *c == b' ').unwrap_or(m.data.len());
            word_end > 0 && m.data[..word_end].iter().all(u8::is_ascii_uppercase)
        }
        Kind::Array if m.items.iter().all(|i| i.kind == Kind::BulkString) && !m.items.is_empty() => {
            command_like(&m.items[0].data) || m.items_total > 1
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Caps = Caps {
        max_depth: 64,
        max_aggregate_len: i32::MAX as u64,
        max_bulk_len: 512 << 20,
        max_line: 64 << 10,
        value_bytes: 128,
        key_bytes: 1024,
        max_items: 32,
    };

    /// Feeds `chunks` the way the connection state does (unconsumed bytes are kept and the next
    /// chunk appended) and returns every message.
    fn drive(chunks: &[&[u8]], inline_ok: bool) -> Result<Vec<Message>, Error> {
        let mut d = Decoder::new();
        let mut held: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        for c in chunks {
            held.extend_from_slice(c);
            let mut at = 0;
            loop {
                let (n, m) = d.decode(&held[at..], &CAPS, inline_ok)?;
                at += n;
                match m {
                    Some(m) => out.push(m),
                    None => break,
                }
            }
            held.drain(..at);
        }
        Ok(out)
    }

    fn one(b: &[u8]) -> Message {
        let ms = drive(&[b], false).unwrap();
        assert_eq!(ms.len(), 1, "{:?}", String::from_utf8_lossy(b));
        ms.into_iter().next().unwrap()
    }

    /// Real messages of redis-cli, redis-py and Redis 7 (RESP2 and RESP3).
    const MESSAGES: &[&[u8]] = &[
        b"*3\r\n$3\r\nSET\r\n$4\r\ntest\r\n$12\r\nHello world!\r\n",
        b"*2\r\n$3\r\nGET\r\n$18\r\nuser_conf_config_1\r\n",
        b"$12\r\nHello world!\r\n",
        b"+OK\r\n",
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
        b":1\r\n",
        b"$-1\r\n",
        b"*-1\r\n",
        b"*3\r\n$7\r\nmessage\r\n$3\r\nFoo\r\n$11\r\nHi there :)\r\n",
        b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.4\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:5\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n",
        b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n",
        b"*3\r\n:1\r\n:2\r\n|1\r\n+ttl\r\n:3600\r\n:3\r\n",
        b">3\r\n$9\r\nsubscribe\r\n$3\r\nFoo\r\n:1\r\n",
        b"~2\r\n+a\r\n+b\r\n",
        b",3.14\r\n",
        b"#t\r\n",
        b"(3492890328409238509324850943850943825024385\r\n",
        b"=15\r\ntxt:Some string\r\n",
        b"_\r\n",
        b"!21\r\nSYNTAX invalid syntax\r\n",
        b"$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;2\r\nld\r\n;0\r\n",
        b"*?\r\n:1\r\n:2\r\n.\r\n",
    ];

    #[test]
    fn every_prefix_needs_more_and_every_split_gives_the_same_message() {
        for msg in MESSAGES {
            let whole = one(msg);
            assert_eq!(whole.wire_bytes, msg.len() as u64);
            for cut in 0..msg.len() {
                let mut d = Decoder::new();
                let (_, m) = d.decode(&msg[..cut], &CAPS, false).unwrap();
                assert!(
                    m.is_none(),
                    "prefix {cut} of {:?} is not a message",
                    String::from_utf8_lossy(msg)
                );
                let split = drive(&[&msg[..cut], &msg[cut..]], false).unwrap();
                assert_eq!(split, vec![whole.clone()], "cut {cut}");
            }
            let bytes: Vec<&[u8]> = msg.chunks(1).collect();
            assert_eq!(drive(&bytes, false).unwrap(), vec![whole], "byte by byte");
        }
    }

    #[test]
    fn every_type_has_its_contract_name() {
        let kinds: Vec<&str> = MESSAGES.iter().map(|m| one(m).kind.name()).collect();
        assert_eq!(
            kinds,
            [
                "array",
                "array",
                "bulk_string",
                "simple_string",
                "error",
                "integer",
                "null_bulk_string",
                "null_array",
                "array",
                "map",
                "array",
                "array",
                "push",
                "set",
                "double",
                "boolean",
                "big_number",
                "verbatim_string",
                "null",
                "blob_error",
                "bulk_string",
                "array",
            ]
        );
    }

    #[test]
    fn attributes_are_skipped_and_flagged() {
        // A reply that starts with an attribute has the type of what follows.
        let m = one(MESSAGES[10]);
        assert_eq!((m.kind, m.attribute, m.items_total), (Kind::Array, true, 2));
        assert_eq!(m.items[0].data, b"2039123");
        // An attribute inside an aggregate is not one of its elements.
        let m = one(MESSAGES[11]);
        assert_eq!((m.kind, m.attribute, m.items_total), (Kind::Array, false, 3));
        let items: Vec<&[u8]> = m.items.iter().map(|i| &i.data[..]).collect();
        assert_eq!(items, [b"1", b"2", b"3"]);
    }

    #[test]
    fn streamed_strings_and_aggregates() {
        let m = one(MESSAGES[20]);
        assert_eq!((m.data.as_slice(), m.len), (&b"Hello world"[..], 11));
        let m = one(MESSAGES[21]);
        assert_eq!(m.items_total, 2);
    }

    #[test]
    fn pipelined_messages_come_out_in_order() {
        let mut all = Vec::new();
        for m in MESSAGES {
            all.extend_from_slice(m);
        }
        let ms = drive(&[&all], false).unwrap();
        assert_eq!(ms.len(), MESSAGES.len());
        assert_eq!(ms[1].items[1].data, b"user_conf_config_1");
    }

    #[test]
    fn values_are_cut_and_big_payloads_stream_through() {
        let caps = Caps {
            value_bytes: 8,
            key_bytes: 12,
            max_items: 3,
            ..CAPS
        };
        let mut d = Decoder::new();
        let msg = b"*4\r\n$3\r\nSET\r\n$20\r\nabcdefghijabcdefghij\r\n$10\r\n0123456789\r\n$1\r\ny\r\n";
        let (n, m) = d.decode(msg, &caps, false).unwrap();
        let m = m.unwrap();
        assert_eq!(n, msg.len());
        assert_eq!((m.items.len(), m.items_total), (3, 4));
        let kept = |i: &Item| (String::from_utf8_lossy(&i.data).into_owned(), i.truncated, i.len);
        assert_eq!(
            kept(&m.items[1]),
            ("abcdefghijab".into(), true, 20),
            "the key is kept longer"
        );
        assert_eq!(kept(&m.items[2]), ("01234567".into(), true, 10));
        // 100 MB declared: every payload byte is consumed as it comes, nothing is buffered.
        let mut d = Decoder::new();
        assert_eq!(d.decode(b"$100000000\r\n", &CAPS, false).unwrap(), (12, None));
        let block = vec![b'z'; 1 << 20];
        for _ in 0..100 {
            let (n, m) = d.decode(&block[..1_000_000], &CAPS, false).unwrap();
            assert_eq!((n, m.is_none()), (1_000_000, true));
        }
        let (_, m) = d.decode(b"\r\n", &CAPS, false).unwrap();
        let m = m.unwrap();
        assert_eq!(
            (m.kind, m.len, m.data.len(), m.truncated),
            (Kind::BulkString, 100_000_000, 128, true)
        );
    }

    #[test]
    fn deep_nesting_and_huge_lengths_are_refused_without_recursing_or_allocating() {
        let deep = b"*1\r\n".repeat(100_000);
        let mut d = Decoder::new();
        assert_eq!(d.decode(&deep, &CAPS, false), Err(Error::TooDeep));
        let mut d = Decoder::new();
        assert_eq!(d.decode(b"$999999999999999\r\n", &CAPS, false), Err(Error::TooLong));
        let mut d = Decoder::new();
        assert_eq!(d.decode(b"*9999999999999\r\n", &CAPS, false), Err(Error::TooLong));
        let mut d = Decoder::new();
        assert_eq!(
            d.decode(b"*99999999999999999999999\r\n", &CAPS, false),
            Err(Error::Syntax)
        );
        // A declared length within the caps costs nothing until elements arrive.
        let mut d = Decoder::new();
        assert_eq!(d.decode(b"*2000000000\r\n:1\r\n", &CAPS, false).unwrap(), (17, None));
        let long_line = vec![b'+'; (64 << 10) + 10];
        let mut d = Decoder::new();
        assert_eq!(d.decode(&long_line, &CAPS, false), Err(Error::LineTooLong));
    }

    #[test]
    fn malformed_input_is_an_error() {
        for bad in [
            &b"$3\r\nabcXY"[..],
            b":12a\r\n",
            b"#x\r\n",
            b"?\r\n",
            b"*1\r\nhello\r\n",
            b"$-5\r\n",
            b"_x\r\n",
        ] {
            let mut d = Decoder::new();
            assert!(
                d.decode(bad, &CAPS, false).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn inline_commands_split_like_redis() {
        let ms = drive(
            &[b"PING\r\n\r\nSET k \"a b\\x41\\n\" 'it\\'s'\nPUBLISH Foo \"Hi there :)\"\r\n"],
            true,
        )
        .unwrap();
        let words: Vec<Vec<String>> = ms.iter().map(|m| m.words().map(|w| w.into_owned()).collect()).collect();
        assert_eq!(
            words,
            vec![
                vec!["PING".to_string()],
                vec!["SET".into(), "k".into(), "a bA\n".into(), "it's".into()],
                vec!["PUBLISH".into(), "Foo".into(), "Hi there :)".into()],
            ]
        );
        assert!(ms.iter().all(|m| m.inline && m.is_command_shaped()));
        assert_eq!(
            split_inline(b"GET \"unbalanced"),
            vec![b"GET".to_vec(), b"\"unbalanced".to_vec()]
        );
        // The server side never sends inline text.
        assert!(drive(&[b"PING\r\n"], false).is_err());
    }

    #[test]
    fn gaps_inside_a_payload_keep_the_decoder_in_step() {
        let mut d = Decoder::new();
        assert_eq!(d.decode(b"$10\r\nabc", &CAPS, false).unwrap(), (8, None));
        assert!(d.skip_gap(4));
        let (_, m) = d.decode(b"abc\r\n", &CAPS, false).unwrap();
        let m = m.unwrap();
        assert_eq!((m.gap_bytes, m.truncated, m.wire_bytes), (4, true, 17));
        let mut d = Decoder::new();
        assert_eq!(d.decode(b"*2\r\n", &CAPS, false).unwrap(), (4, None));
        assert!(!d.skip_gap(1), "a gap between lines loses the framing");
    }

    #[test]
    fn probes() {
        assert_eq!(probe(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), Probe::Match);
        assert_eq!(
            probe(b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$100000\r\n"),
            Probe::Match,
            "a big value need not arrive"
        );
        assert_eq!(probe(b"$490493\r\n{\"OPT_STATUS\""), Probe::Match);
        assert_eq!(probe(b"+OK\r\n"), Probe::Match);
        assert_eq!(probe(b"-ERR unknown command 'FOO'\r\n"), Probe::Match);
        assert_eq!(
            probe(b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n"),
            Probe::NoMatch
        );
        assert_eq!(probe(b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n"), Probe::NoMatch);
        assert_eq!(probe(b"220 mail.example.com ESMTP\r\n"), Probe::NoMatch);
        assert_eq!(probe(b"\x16\x03\x01\x02\x00"), Probe::NoMatch);
        assert_eq!(probe(b"\x00\x1c\x12\x34\x01\x00"), Probe::NoMatch);
        assert_eq!(
            probe(b"SSH-2.0-OpenSSH_9.2\r\n\x00\x00\x05\xdc\x06\x14"),
            Probe::NoMatch
        );
        assert_eq!(probe(b"PING\r\n"), Probe::NeedMore, "inline: decided by the RESP reply");
        let cmd = b"*3\r\n$3\r\nSET\r\n$4\r\ntest\r\n$12\r\nHello world!\r\n";
        for n in 0..8 {
            assert_eq!(probe(&cmd[..n]), Probe::NeedMore, "prefix {n}");
        }
        for n in 8..=cmd.len() {
            assert_eq!(probe(&cmd[..n]), Probe::Match, "prefix {n}");
        }
        assert!(known_command(b"get") && known_command(b"JSON.SET") && !known_command(b"message"));
    }
}
