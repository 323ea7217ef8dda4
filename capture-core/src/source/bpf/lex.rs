//! Tokens of pcap-filter(7): words (keywords, numbers, addresses, names, `a-b` ranges),
//! `\`-escaped names, parentheses, `!`/`&&`/`||`, and `/` of `net 10.0.0.0/8`. The symbols of
//! arithmetic expressions (`[`, `<`, `+`, `&`…) become [`Tok::Symbol`] so that the parser can
//! say they are not supported.

use std::ops::Range;

use super::error::{BpfError, ErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok<'a> {
    LParen,
    RParen,
    /// `!`
    Bang,
    /// `&&`
    AndAnd,
    /// `||`
    OrOr,
    Slash,
    /// A keyword, number, address or name.
    Word(&'a str),
    /// `\name`: never a keyword (`ip proto \tcp`).
    Escaped(&'a str),
    /// Arithmetic and comparison symbols.
    Symbol(&'a str),
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    pub tok: Tok<'a>,
    pub start: usize,
    pub end: usize,
}

impl Token<'_> {
    pub fn span(&self) -> Range<usize> {
        self.start..self.end
    }
}

fn word_start(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':')
}

fn word_char(c: u8) -> bool {
    word_start(c) || c == b'-'
}

/// Splits `src` into tokens, ending with [`Tok::End`] at `src.len()`.
pub fn lex(src: &str) -> Result<Vec<Token<'_>>, BpfError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let two = b.get(i..i + 2);
        let tok = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b'/' => {
                i += 1;
                Tok::Slash
            }
            _ if two == Some(b"&&") => {
                i += 2;
                Tok::AndAnd
            }
            _ if two == Some(b"||") => {
                i += 2;
                Tok::OrOr
            }
            _ if matches!(two, Some(b"!=" | b"<=" | b">=" | b"==" | b"<<" | b">>")) => {
                i += 2;
                Tok::Symbol(&src[start..i])
            }
            b'!' => {
                i += 1;
                Tok::Bang
            }
            b'[' | b']' | b'<' | b'>' | b'=' | b'+' | b'-' | b'*' | b'%' | b'^' | b'&' | b'|' => {
                i += 1;
                Tok::Symbol(&src[start..i])
            }
            b'\\' => {
                i += 1;
                while i < b.len() && word_char(b[i]) {
                    i += 1;
                }
                if i == start + 1 {
                    return Err(BpfError::at(
                        src,
                        start..i,
                        ErrorKind::Syntax,
                        "a `\\` must be followed by a name (`ip proto \\tcp`)",
                    ));
                }
                Tok::Escaped(&src[start + 1..i])
            }
            _ if word_start(c) => {
                while i < b.len() && word_char(b[i]) {
                    i += 1;
                }
                Tok::Word(&src[start..i])
            }
            _ => {
                let ch = src[start..].chars().next().unwrap_or('?');
                return Err(BpfError::at(
                    src,
                    start..start + ch.len_utf8(),
                    ErrorKind::Syntax,
                    format!("unexpected character '{}'", ch.escape_default()),
                ));
            }
        };
        out.push(Token { tok, start, end: i });
    }
    out.push(Token {
        tok: Tok::End,
        start: b.len(),
        end: b.len(),
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok<'_>> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn words_operators_and_symbols() {
        assert_eq!(
            toks("!(tcp&&port 80)||net 10.0.0.0/8"),
            vec![
                Tok::Bang,
                Tok::LParen,
                Tok::Word("tcp"),
                Tok::AndAnd,
                Tok::Word("port"),
                Tok::Word("80"),
                Tok::RParen,
                Tok::OrOr,
                Tok::Word("net"),
                Tok::Word("10.0.0.0"),
                Tok::Slash,
                Tok::Word("8"),
                Tok::End
            ]
        );
        assert_eq!(
            toks("portrange 8000-9000 ip6 host fe80::1 ip proto \\tcp"),
            vec![
                Tok::Word("portrange"),
                Tok::Word("8000-9000"),
                Tok::Word("ip6"),
                Tok::Word("host"),
                Tok::Word("fe80::1"),
                Tok::Word("ip"),
                Tok::Word("proto"),
                Tok::Escaped("tcp"),
                Tok::End
            ]
        );
        assert_eq!(
            toks("tcp[13] & 2 != 0"),
            vec![
                Tok::Word("tcp"),
                Tok::Symbol("["),
                Tok::Word("13"),
                Tok::Symbol("]"),
                Tok::Symbol("&"),
                Tok::Word("2"),
                Tok::Symbol("!="),
                Tok::Word("0"),
                Tok::End
            ]
        );
    }

    #[test]
    fn bad_characters_name_their_column() {
        let e = lex("tcp port 80 ; rm").unwrap_err();
        assert_eq!(e.column, 13);
        assert!(e.message.contains("';'"), "{}", e.message);
        let e = lex("host é").unwrap_err();
        assert_eq!(e.column, 6);
        let e = lex("ip proto \\ ").unwrap_err();
        assert_eq!(e.column, 10);
    }
}
