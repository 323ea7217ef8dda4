//! Filter errors with their position: line and column (1-based, in characters), a two-line
//! excerpt with carets under the offending text, and a suggested replacement for that text.

use std::fmt;

use super::ast::Span;

/// One problem in a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KflError {
    pub message: String,
    /// 1-based line of the first offending character.
    pub line: usize,
    /// 1-based column (in characters) of the first offending character.
    pub column: usize,
    /// The source line and a caret line under the offending text.
    pub excerpt: String,
    /// What to write instead of the offending text, when there is a likely fix (the closest
    /// field name, `==` for `=`, …).
    pub suggestion: Option<String>,
}

impl KflError {
    /// An error about `span` of `src`.
    pub fn at(src: &str, span: Span, message: impl Into<String>, suggestion: Option<String>) -> Self {
        let start = floor_boundary(src, span.start.min(src.len()));
        let end = floor_boundary(src, span.end.clamp(start, src.len()));
        let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
        let line_text = src[line_start..line_end].trim_end_matches('\r');
        let line = src[..start].matches('\n').count() + 1;
        let column = src[line_start..start].chars().count() + 1;
        let carets = src[start..end.min(line_end)].chars().count().max(1);
        KflError {
            message: message.into(),
            line,
            column,
            excerpt: excerpt(line_text, column - 1, carets),
            suggestion,
        }
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// At most this many characters of a long line are shown on each side of the error.
const EXCERPT_CONTEXT: usize = 60;

/// The line (cut around the error when long) and a caret line; tabs are kept in the caret line
/// so the carets stay aligned.
fn excerpt(line: &str, col0: usize, carets: usize) -> String {
    let chars: Vec<char> = line.chars().collect();
    let from = col0.saturating_sub(EXCERPT_CONTEXT);
    let to = (col0 + carets + EXCERPT_CONTEXT).min(chars.len());
    let mut shown = String::new();
    let mut pad = String::new();
    if from > 0 {
        shown.push('…');
        pad.push(' ');
    }
    for (i, &c) in chars.iter().enumerate().take(to).skip(from) {
        let c = if c.is_control() && c != '\t' { ' ' } else { c };
        shown.push(c);
        if i < col0 {
            pad.push(if c == '\t' { '\t' } else { ' ' });
        }
    }
    if to < chars.len() {
        shown.push('…');
    }
    let carets = carets.min(to.saturating_sub(col0).max(1));
    format!("{shown}\n{pad}{}", "^".repeat(carets))
}

impl fmt::Display for KflError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)?;
        if let Some(s) = &self.suggestion
            && !self.message.contains("did you mean")
        {
            write!(f, " (did you mean `{s}`?)")?;
        }
        write!(f, "\n{}", self.excerpt)
    }
}

impl std::error::Error for KflError {}

/// Every problem found in a filter, in source order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KflErrors(pub Vec<KflError>);

impl KflErrors {
    pub fn errors(&self) -> &[KflError] {
        &self.0
    }

    /// The first error (there is always at least one).
    pub fn first(&self) -> Option<&KflError> {
        self.0.first()
    }
}

impl fmt::Display for KflErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for KflErrors {}

impl IntoIterator for KflErrors {
    type Item = KflError;
    type IntoIter = std::vec::IntoIter<KflError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_excerpts() {
        let src = "http and\n  stauts >= 500";
        let e = KflError::at(src, Span::new(11, 17), "unknown field `stauts`", Some("status".into()));
        assert_eq!((e.line, e.column), (2, 3));
        assert_eq!(e.excerpt, "  stauts >= 500\n  ^^^^^^");
        assert!(e.to_string().starts_with("2:3: unknown field"));
        // At the end of the source.
        let e = KflError::at("a ==", Span::new(4, 4), "unexpected end", None);
        assert_eq!((e.line, e.column), (1, 5));
        assert_eq!(e.excerpt, "a ==\n    ^");
        // Multi-byte characters count as one column.
        let e = KflError::at("\"é\" == x", Span::new(7, 8), "m", None);
        assert_eq!(e.column, 7);
    }

    #[test]
    fn long_lines_are_cut() {
        let src = format!("{} bad", "a".repeat(500));
        let e = KflError::at(&src, Span::new(501, 504), "m", None);
        assert_eq!(e.column, 502);
        let lines: Vec<&str> = e.excerpt.lines().collect();
        assert!(lines[0].starts_with('…') && lines[0].chars().count() < 140);
        let caret_col = lines[1].find('^').unwrap();
        assert_eq!(&lines[0].chars().skip(caret_col).take(3).collect::<String>(), "bad");
    }
}
