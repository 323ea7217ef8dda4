//! Filter errors: the 1-based byte column of the offending text, a message that names it, and a
//! two-line excerpt with carets under it.

use std::ops::Range;

/// What kind of problem a filter has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not pcap-filter syntax (a missing value, a stray parenthesis…).
    Syntax,
    /// A value pcap-filter would refuse too: a port above 65535, a mask with host bits…
    Invalid,
    /// Valid pcap-filter that this compiler does not implement.
    Unsupported,
    /// Longer, deeper or larger than the caps in `bpf::limits`.
    Limit,
}

/// A filter that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bpf filter: column {column}: {message}\n{excerpt}")]
pub struct BpfError {
    pub kind: ErrorKind,
    /// 1-based byte offset of the first offending byte (one past the end for "expected more").
    pub column: usize,
    pub message: String,
    /// The filter (cut around the column when long) and a caret line under the offending text.
    pub excerpt: String,
}

/// At most this many characters are shown on each side of the error.
const EXCERPT_CONTEXT: usize = 50;

impl BpfError {
    /// An error about the bytes `span` of `src`.
    pub fn at(src: &str, span: Range<usize>, kind: ErrorKind, message: impl Into<String>) -> BpfError {
        let start = floor_boundary(src, span.start.min(src.len()));
        let end = floor_boundary(src, span.end.clamp(start, src.len()));
        let col0 = src[..start].chars().count();
        let carets = src[start..end].chars().count().max(1);
        BpfError {
            kind,
            column: start + 1,
            message: message.into(),
            excerpt: excerpt(src, col0, carets),
        }
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The filter on one line (control characters shown as spaces) and carets under `carets`
/// characters from character `col0`.
fn excerpt(src: &str, col0: usize, carets: usize) -> String {
    let chars: Vec<char> = src.chars().collect();
    let from = col0.saturating_sub(EXCERPT_CONTEXT);
    let to = (col0 + carets + EXCERPT_CONTEXT).min(chars.len());
    let mut shown = String::new();
    if from > 0 {
        shown.push('…');
    }
    shown.extend(chars[from..to].iter().map(|&c| if c.is_control() { ' ' } else { c }));
    if to < chars.len() {
        shown.push('…');
    }
    // One character shown per source character, so the carets line up (past the end too).
    let pad = " ".repeat(usize::from(from > 0) + col0 - from);
    format!(
        "{shown}\n{pad}{}",
        "^".repeat(carets.min(to.saturating_sub(col0)).max(1))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_message_and_carets() {
        let e = BpfError::at("tcp port foo", 9..12, ErrorKind::Invalid, "unknown port 'foo'");
        assert_eq!(e.column, 10);
        assert_eq!(e.excerpt, "tcp port foo\n         ^^^");
        assert_eq!(
            e.to_string(),
            "bpf filter: column 10: unknown port 'foo'\ntcp port foo\n         ^^^"
        );
        // Past the end: one caret after the last character.
        let e = BpfError::at("tcp port", 8..8, ErrorKind::Syntax, "expected a port");
        assert_eq!(e.column, 9);
        assert_eq!(e.excerpt, "tcp port\n        ^");
        // Long filters are cut around the column.
        let long = format!("{}host 1.2.3.4 and bad{}", "x ".repeat(100), " y".repeat(100));
        let at = long.find("bad").unwrap();
        let e = BpfError::at(&long, at..at + 3, ErrorKind::Syntax, "m");
        let lines: Vec<&str> = e.excerpt.lines().collect();
        assert!(lines[0].starts_with('…') && lines[0].ends_with('…'), "{}", lines[0]);
        let caret = lines[1].find('^').unwrap();
        assert_eq!(&lines[0].chars().skip(caret).take(3).collect::<String>(), "bad");
    }
}
