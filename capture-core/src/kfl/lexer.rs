//! The KFL lexer: CEL tokens plus the `and` / `or` / `not` keywords, with exact spans and
//! helpful errors for what people type by habit (`=`, `&`, `5m`).

use std::fmt;

use super::ast::Span;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    Int(u64),
    Float(f64),
    Str(String),
    True,
    False,
    Null,
    In,
    /// `and`
    And,
    /// `or`
    Or,
    /// `not`
    Not,
    AndAnd,
    OrOr,
    Bang,
    EqEq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Question,
    Colon,
    Dot,
    Comma,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Tok::Ident(n) => return write!(f, "`{n}`"),
            Tok::Int(n) => return write!(f, "number `{n}`"),
            Tok::Float(x) => return write!(f, "number `{x:?}`"),
            Tok::Str(_) => return f.write_str("a string"),
            Tok::True => "true",
            Tok::False => "false",
            Tok::Null => "null",
            Tok::In => "in",
            Tok::And => "and",
            Tok::Or => "or",
            Tok::Not => "not",
            Tok::AndAnd => "&&",
            Tok::OrOr => "||",
            Tok::Bang => "!",
            Tok::EqEq => "==",
            Tok::NotEq => "!=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::Question => "?",
            Tok::Colon => ":",
            Tok::Dot => ".",
            Tok::Comma => ",",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
        };
        write!(f, "`{s}`")
    }
}

/// A lexical error, with the span it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct LexError {
    pub span: Span,
    pub message: String,
    pub suggestion: Option<String>,
}

impl LexError {
    fn new(start: usize, end: usize, message: impl Into<String>) -> LexError {
        LexError {
            span: Span::new(start, end),
            message: message.into(),
            suggestion: None,
        }
    }

    fn suggest(mut self, s: impl Into<String>) -> LexError {
        self.suggestion = Some(s.into());
        self
    }
}

pub type Spanned = Result<(usize, Tok, usize), LexError>;

pub struct Lexer<'s> {
    src: &'s str,
    pos: usize,
    failed: bool,
}

impl<'s> Lexer<'s> {
    pub fn new(src: &'s str) -> Self {
        Lexer {
            src,
            pos: 0,
            failed: false,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<u8> {
        self.src.as_bytes().get(self.pos + n).copied()
    }

    fn skip_trivia(&mut self) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n' | b'\x0c') => self.pos += 1,
                Some(b'/') if self.peek_at(1) == Some(b'/') => {
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                _ => return,
            }
        }
    }

    fn ident_end(&self, from: usize) -> usize {
        let b = self.src.as_bytes();
        let mut i = from;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        i
    }

    fn number(&mut self) -> Spanned {
        let start = self.pos;
        let b = self.src.as_bytes();
        let digits = |mut i: usize| {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            i
        };
        if b[start] == b'0' && matches!(b.get(start + 1), Some(b'x' | b'X')) {
            let mut i = start + 2;
            while i < b.len() && b[i].is_ascii_hexdigit() {
                i += 1;
            }
            if i == start + 2 {
                return Err(LexError::new(start, i, "a hexadecimal number needs digits after `0x`"));
            }
            let v = u64::from_str_radix(&self.src[start + 2..i], 16)
                .map_err(|_| LexError::new(start, i, "integer literal out of range"))?;
            if matches!(b.get(i), Some(b'u' | b'U')) {
                i += 1;
            }
            self.pos = i;
            self.after_number(start)?;
            return Ok((start, Tok::Int(v), i));
        }
        let mut i = digits(start);
        let mut float = false;
        if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i = digits(i + 1);
            float = true;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if matches!(b.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if b.get(j).is_some_and(u8::is_ascii_digit) {
                i = digits(j);
                float = true;
            }
        }
        let text = &self.src[start..i];
        if float {
            let v: f64 = text.parse().map_err(|_| LexError::new(start, i, "malformed number"))?;
            if !v.is_finite() {
                return Err(LexError::new(start, i, "float literal out of range"));
            }
            self.pos = i;
            self.after_number(start)?;
            return Ok((start, Tok::Float(v), i));
        }
        let v: u64 = text
            .parse()
            .map_err(|_| LexError::new(start, i, format!("integer literal `{text}` is out of range")))?;
        if matches!(b.get(i), Some(b'u' | b'U')) && !self.is_ident_char(i + 1) {
            i += 1;
        }
        self.pos = i;
        self.after_number(start)?;
        Ok((start, Tok::Int(v), i))
    }

    fn is_ident_char(&self, i: usize) -> bool {
        self.src
            .as_bytes()
            .get(i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
    }

    /// A number glued to letters is a mistake: `5m` meant a duration, `10kb` a size.
    fn after_number(&self, start: usize) -> Result<(), LexError> {
        if !self.is_ident_char(self.pos) {
            return Ok(());
        }
        let end = self.ident_end(self.pos);
        let text = &self.src[start..end];
        let unit = &self.src[self.pos..end];
        let e = LexError::new(start, end, format!("`{text}` is not a number"));
        if matches!(unit, "ns" | "us" | "ms" | "s" | "m" | "h" | "d") {
            Err(LexError {
                message: format!("`{text}` is not a number; write a duration as duration(\"{text}\")"),
                ..e
            }
            .suggest(format!("duration(\"{text}\")")))
        } else {
            Err(e)
        }
    }

    /// A string literal; `start` is at the prefix (if any), `quote_at` at the first quote.
    fn string(&mut self, start: usize, quote_at: usize, raw: bool) -> Spanned {
        let b = self.src.as_bytes();
        let q = b[quote_at];
        let triple = b.get(quote_at + 1) == Some(&q) && b.get(quote_at + 2) == Some(&q);
        let mut i = quote_at + if triple { 3 } else { 1 };
        let mut out = String::new();
        loop {
            let Some(&c) = b.get(i) else {
                return Err(
                    LexError::new(start, self.src.len(), "unterminated string").suggest(if triple {
                        String::from_utf8_lossy(&[q, q, q]).into_owned()
                    } else {
                        (q as char).to_string()
                    }),
                );
            };
            if c == q {
                if !triple {
                    i += 1;
                    break;
                }
                if b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q) {
                    i += 3;
                    break;
                }
            }
            if !triple && (c == b'\n' || c == b'\r') {
                return Err(LexError::new(
                    start,
                    i,
                    "unterminated string (a line break inside quotes needs triple quotes or \\n)",
                )
                .suggest((q as char).to_string()));
            }
            if c == b'\\' && !raw {
                let (ch, next) = self.escape(i)?;
                out.push(ch);
                i = next;
                continue;
            }
            // Copy one UTF-8 character.
            let ch = self.src[i..].chars().next().unwrap_or('\u{fffd}');
            out.push(ch);
            i += ch.len_utf8();
        }
        self.pos = i;
        Ok((start, Tok::Str(out), i))
    }

    /// Decodes the escape sequence at `at` (a backslash); returns the character and the index
    /// after the sequence.
    fn escape(&self, at: usize) -> Result<(char, usize), LexError> {
        let b = self.src.as_bytes();
        let Some(&c) = b.get(at + 1) else {
            return Err(LexError::new(at, at + 1, "unterminated escape sequence"));
        };
        let simple = match c {
            b'a' => Some('\x07'),
            b'b' => Some('\x08'),
            b'f' => Some('\x0c'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            b'v' => Some('\x0b'),
            b'\\' => Some('\\'),
            b'\'' => Some('\''),
            b'"' => Some('"'),
            b'`' => Some('`'),
            b'?' => Some('?'),
            _ => None,
        };
        if let Some(ch) = simple {
            return Ok((ch, at + 2));
        }
        let hex = |from: usize, n: usize| -> Result<(char, usize), LexError> {
            let end = from + n;
            let digits = self
                .src
                .get(from..end)
                .filter(|d| d.len() == n && d.bytes().all(|x| x.is_ascii_hexdigit()));
            let Some(d) = digits else {
                return Err(LexError::new(
                    at,
                    end.min(self.src.len()),
                    format!("escape `\\{}` needs {n} hexadecimal digits", c as char),
                ));
            };
            let v = u32::from_str_radix(d, 16).unwrap_or(u32::MAX);
            char::from_u32(v)
                .map(|ch| (ch, end))
                .ok_or_else(|| LexError::new(at, end, format!("`\\{}{d}` is not a Unicode scalar value", c as char)))
        };
        match c {
            b'x' | b'X' => hex(at + 2, 2),
            b'u' => hex(at + 2, 4),
            b'U' => hex(at + 2, 8),
            b'0'..=b'3' => {
                let d = self
                    .src
                    .get(at + 1..at + 4)
                    .filter(|d| d.bytes().all(|x| (b'0'..=b'7').contains(&x)));
                match d {
                    Some(d) => {
                        let v = u32::from_str_radix(d, 8).unwrap_or(0);
                        Ok((char::from_u32(v).unwrap_or('\0'), at + 4))
                    }
                    None => Err(LexError::new(
                        at,
                        (at + 2).min(self.src.len()),
                        "an octal escape needs three digits (\\000 to \\377)",
                    )),
                }
            }
            _ => {
                let ch = self.src[at + 1..].chars().next().unwrap_or('?');
                Err(LexError::new(
                    at,
                    at + 1 + ch.len_utf8(),
                    format!("unknown escape sequence `\\{ch}`; use a raw string r\"…\" for backslashes"),
                ))
            }
        }
    }

    fn op(&mut self, len: usize, tok: Tok) -> Spanned {
        let start = self.pos;
        self.pos += len;
        Ok((start, tok, self.pos))
    }

    fn next_token(&mut self) -> Option<Spanned> {
        self.skip_trivia();
        let start = self.pos;
        let c = self.peek()?;
        let next = self.peek_at(1);
        Some(match c {
            b'0'..=b'9' => self.number(),
            b'"' | b'\'' => self.string(start, start, false),
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let lower = c.to_ascii_lowercase();
                // String prefixes: r"…", b"…", rb"…", br"…".
                let prefix_len = match (lower, next.map(|n| n.to_ascii_lowercase())) {
                    (b'r' | b'b', Some(b'"' | b'\'')) => 1,
                    (b'r', Some(b'b')) | (b'b', Some(b'r')) if matches!(self.peek_at(2), Some(b'"' | b'\'')) => 2,
                    _ => 0,
                };
                if prefix_len > 0 {
                    let prefix = self.src[start..start + prefix_len].to_ascii_lowercase();
                    if prefix.contains('b') {
                        return Some(Err(LexError::new(
                            start,
                            start + prefix_len + 1,
                            "bytes literals are not supported; use a string",
                        )));
                    }
                    return Some(self.string(start, start + prefix_len, true));
                }
                let end = self.ident_end(start);
                let word = &self.src[start..end];
                self.pos = end;
                let tok = match word {
                    "true" => Tok::True,
                    "false" => Tok::False,
                    "null" => Tok::Null,
                    "in" => Tok::In,
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    w => Tok::Ident(w.to_string()),
                };
                Ok((start, tok, end))
            }
            b'&' if next == Some(b'&') => self.op(2, Tok::AndAnd),
            b'&' => Err(LexError::new(start, start + 1, "`&` is not an operator; use `&&` (or `and`)").suggest("&&")),
            b'|' if next == Some(b'|') => self.op(2, Tok::OrOr),
            b'|' => Err(LexError::new(start, start + 1, "`|` is not an operator; use `||` (or `or`)").suggest("||")),
            b'=' if next == Some(b'=') => self.op(2, Tok::EqEq),
            b'=' if next == Some(b'~') => {
                Err(
                    LexError::new(start, start + 2, "`=~` is not an operator; use .matches(\"regex\")")
                        .suggest(".matches("),
                )
            }
            b'=' => Err(LexError::new(start, start + 1, "`=` is not an operator; compare with `==`").suggest("==")),
            b'!' if next == Some(b'=') => self.op(2, Tok::NotEq),
            b'!' => self.op(1, Tok::Bang),
            b'<' if next == Some(b'=') => self.op(2, Tok::Le),
            b'<' if next == Some(b'>') => {
                Err(LexError::new(start, start + 2, "`<>` is not an operator; use `!=`").suggest("!="))
            }
            b'<' => self.op(1, Tok::Lt),
            b'>' if next == Some(b'=') => self.op(2, Tok::Ge),
            b'>' => self.op(1, Tok::Gt),
            b'+' => self.op(1, Tok::Plus),
            b'-' => self.op(1, Tok::Minus),
            b'*' => self.op(1, Tok::Star),
            b'/' => self.op(1, Tok::Slash),
            b'%' => self.op(1, Tok::Percent),
            b'?' => self.op(1, Tok::Question),
            b':' => self.op(1, Tok::Colon),
            b'.' => self.op(1, Tok::Dot),
            b',' => self.op(1, Tok::Comma),
            b'(' => self.op(1, Tok::LParen),
            b')' => self.op(1, Tok::RParen),
            b'[' => self.op(1, Tok::LBracket),
            b']' => self.op(1, Tok::RBracket),
            b'{' => self.op(1, Tok::LBrace),
            b'}' => self.op(1, Tok::RBrace),
            _ => {
                let ch = self.src[start..].chars().next().unwrap_or('?');
                let (msg, sugg) = match ch {
                    '“' | '”' | '‘' | '’' => (
                        format!("`{ch}` is a typographic quote; use a plain \" or '"),
                        Some("\""),
                    ),
                    '`' => ("`` ` `` does not quote strings; use \" or '".to_string(), Some("\"")),
                    _ => (format!("unexpected character `{}`", ch.escape_debug()), None),
                };
                let e = LexError::new(start, start + ch.len_utf8(), msg);
                Err(match sugg {
                    Some(s) => e.suggest(s),
                    None => e,
                })
            }
        })
    }
}

impl Iterator for Lexer<'_> {
    type Item = Spanned;

    fn next(&mut self) -> Option<Spanned> {
        if self.failed {
            return None;
        }
        let t = self.next_token();
        if matches!(t, Some(Err(_))) {
            self.failed = true;
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        Lexer::new(s).map(|t| t.unwrap().1).collect()
    }

    fn err(s: &str) -> LexError {
        Lexer::new(s).find_map(Result::err).unwrap()
    }

    #[test]
    fn tokens() {
        assert_eq!(
            toks("a.b >= 1 && !c || d in [1.5, 'x']"),
            vec![
                Tok::Ident("a".into()),
                Tok::Dot,
                Tok::Ident("b".into()),
                Tok::Ge,
                Tok::Int(1),
                Tok::AndAnd,
                Tok::Bang,
                Tok::Ident("c".into()),
                Tok::OrOr,
                Tok::Ident("d".into()),
                Tok::In,
                Tok::LBracket,
                Tok::Float(1.5),
                Tok::Comma,
                Tok::Str("x".into()),
                Tok::RBracket,
            ]
        );
        assert_eq!(
            toks("0x1F 7u 1e3 2.5e-1"),
            vec![Tok::Int(31), Tok::Int(7), Tok::Float(1000.0), Tok::Float(0.25)]
        );
        assert_eq!(toks("--1"), vec![Tok::Minus, Tok::Minus, Tok::Int(1)]);
        assert_eq!(
            toks("a // comment\n b"),
            vec![Tok::Ident("a".into()), Tok::Ident("b".into())]
        );
    }

    #[test]
    fn strings() {
        assert_eq!(toks(r#""a\n\"\x41\u00e9\101""#), vec![Tok::Str("a\n\"Aé\u{41}".into())]);
        assert_eq!(
            toks(r#"r"a\d" R'\w'"#),
            vec![Tok::Str("a\\d".into()), Tok::Str("\\w".into())]
        );
        assert_eq!(toks("'''a'b\nc'''"), vec![Tok::Str("a'b\nc".into())]);
        assert_eq!(toks(r#""""x""""#), vec![Tok::Str("x".into())]);
        assert_eq!(toks("'é✓'"), vec![Tok::Str("é✓".into())]);
    }

    #[test]
    fn errors() {
        assert_eq!(err("a = 1").span, Span::new(2, 3));
        assert_eq!(err("a = 1").suggestion.as_deref(), Some("=="));
        assert_eq!(err("5m").suggestion.as_deref(), Some("duration(\"5m\")"));
        assert!(err("\"abc").message.contains("unterminated"));
        assert!(err(r#""\q""#).message.contains("unknown escape"));
        assert!(err("b\"x\"").message.contains("bytes"));
        assert!(err("99999999999999999999").message.contains("out of range"));
        assert!(err("#").message.contains("unexpected character"));
    }
}
