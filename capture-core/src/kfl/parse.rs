//! Source text to a spanned syntax tree, through the lalrpop grammar (`grammar.lalrpop`).

use lalrpop_util::ParseError;

use super::ast::{Expr, ExprKind, Span};
use super::error::KflError;
use super::lexer::{LexError, Lexer, Tok};

lalrpop_util::lalrpop_mod!(
    #[allow(clippy::all, clippy::pedantic, unused_parens, dead_code)]
    grammar,
    "/grammar.rs"
);

/// Filters longer than this are refused before parsing (they are not written by hand).
pub const MAX_FILTER_BYTES: usize = 64 * 1024;

/// Filters with more tokens than this are refused before parsing.
pub const MAX_TOKENS: usize = 4096;

/// Trees deeper than this are refused (the checker and the evaluator recurse).
pub const MAX_DEPTH: usize = 256;

/// Parses a filter. An empty (or blank) filter is `true`: it matches everything.
pub fn parse(src: &str) -> Result<Expr, KflError> {
    if src.len() > MAX_FILTER_BYTES {
        return Err(KflError::at(
            src,
            Span::new(MAX_FILTER_BYTES, src.len()),
            format!("the filter is longer than {MAX_FILTER_BYTES} bytes"),
            None,
        ));
    }
    // Lex up to the first error; the parser reports whichever problem comes first.
    let mut tokens = Vec::new();
    for t in Lexer::new(src) {
        if let Ok((l, _, r)) = &t
            && tokens.len() >= MAX_TOKENS
        {
            return Err(KflError::at(
                src,
                Span::new(*l, *r),
                format!("the filter has more than {MAX_TOKENS} tokens"),
                None,
            ));
        }
        tokens.push(t);
    }
    if tokens.is_empty() {
        return Ok(Expr::new(ExprKind::Bool(true), Span::new(0, 0)));
    }
    let expr = grammar::FilterParser::new()
        .parse(tokens)
        .map_err(|e| convert(src, e))?;
    if depth(&expr) > MAX_DEPTH {
        return Err(KflError::at(
            src,
            expr.span,
            format!(
                "the filter nests deeper than {MAX_DEPTH} levels; use `x in [a, b, …]` instead of long `||` chains"
            ),
            None,
        ));
    }
    Ok(expr)
}

/// Depth of the tree, iteratively (a long chain of `!` or `-` is deep without brackets).
fn depth(e: &Expr) -> usize {
    let mut max = 0;
    let mut stack = vec![(e, 1usize)];
    while let Some((e, d)) = stack.pop() {
        max = max.max(d);
        match &e.kind {
            ExprKind::List(items) => stack.extend(items.iter().map(|x| (x, d + 1))),
            ExprKind::Select(b, _) => stack.push((b, d + 1)),
            ExprKind::Index(b, i) => {
                stack.push((b, d + 1));
                stack.push((i, d + 1));
            }
            ExprKind::Call { target, args, .. } => {
                if let Some(t) = target {
                    stack.push((t, d + 1));
                }
                stack.extend(args.iter().map(|x| (x, d + 1)));
            }
            ExprKind::Unary(_, x) => stack.push((x, d + 1)),
            ExprKind::Binary(_, l, r) => {
                stack.push((l, d + 1));
                stack.push((r, d + 1));
            }
            ExprKind::Cond(c, t, f) => {
                stack.push((c, d + 1));
                stack.push((t, d + 1));
                stack.push((f, d + 1));
            }
            _ => {}
        }
    }
    max
}

/// Friendly names for the terminals lalrpop lists as expected.
fn describe_expected(expected: &[String]) -> String {
    let names: Vec<String> = expected
        .iter()
        .map(|t| t.trim_matches('"').replace("\\\"", "\""))
        .collect();
    let starts_expr = names
        .iter()
        .any(|n| matches!(n.as_str(), "identifier" | "integer" | "string"));
    let has = |s: &str| names.iter().any(|n| n == s);
    let mut parts: Vec<String> = Vec::new();
    if starts_expr {
        parts.push("a field, a value or `(`".to_string());
    } else {
        if has("==") || has("&&") {
            parts.push("an operator".to_string());
        }
        for closing in [")", "]", ":", ","] {
            if has(closing) {
                parts.push(format!("`{closing}`"));
            }
        }
        if parts.is_empty() {
            parts.extend(names.iter().take(6).map(|n| format!("`{n}`")));
        }
    }
    parts.join(" or ")
}

fn convert(src: &str, e: ParseError<usize, Tok, LexError>) -> KflError {
    match e {
        ParseError::User { error } => KflError::at(src, error.span, error.message, error.suggestion),
        ParseError::InvalidToken { location } => {
            KflError::at(src, Span::new(location, location + 1), "invalid token", None)
        }
        ParseError::UnrecognizedEof { location, expected } => {
            let mut msg = "the filter ends too early".to_string();
            if !expected.is_empty() {
                msg.push_str("; expected ");
                msg.push_str(&describe_expected(&expected));
            }
            let suggestion = expected
                .iter()
                .map(|t| t.trim_matches('"'))
                .find(|t| matches!(*t, ")" | "]"))
                .map(str::to_string);
            KflError::at(src, Span::new(location, location), msg, suggestion)
        }
        ParseError::UnrecognizedToken {
            token: (l, tok, r),
            expected,
        } => {
            let (msg, suggestion) = match &tok {
                Tok::LBrace => (
                    "map literals `{…}` are not supported; test keys with `\"key\" in map` or read them with map[\"key\"]"
                        .to_string(),
                    None,
                ),
                Tok::Ident(w) if matches!(w.to_ascii_uppercase().as_str(), "AND" | "OR" | "NOT") => {
                    let lower = w.to_ascii_lowercase();
                    (
                        format!("unexpected `{w}`; the keyword is lower-case `{lower}`"),
                        Some(lower),
                    )
                }
                Tok::Ident(_)
                | Tok::Int(_)
                | Tok::Float(_)
                | Tok::Str(_)
                | Tok::True
                | Tok::False
                | Tok::Null
                | Tok::LParen
                | Tok::Not
                | Tok::Bang
                    if expected.iter().any(|t| t.trim_matches('"') == "&&") =>
                {
                    (
                        format!("unexpected {tok} after a complete condition; join conditions with `&&` or `||`"),
                        None,
                    )
                }
                _ if expected.is_empty() => (format!("unexpected {tok}"), None),
                _ => (
                    format!("unexpected {tok}; expected {}", describe_expected(&expected)),
                    None,
                ),
            };
            KflError::at(src, Span::new(l, r), msg, suggestion)
        }
        ParseError::ExtraToken { token: (l, tok, r) } => KflError::at(
            src,
            Span::new(l, r),
            format!("unexpected {tok} after a complete condition; join conditions with `&&` or `||`"),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for (src, printed) in [
            ("a and b or not c", "a && b || !c"),
            ("not a == b", "!(a == b)"),
            ("!a == b", "!a == b"),
            ("-(1 + 2) * 3", "-(1 + 2) * 3"),
            ("a ? b : c ? d : e", "a ? b : c ? d : e"),
            ("(a ? b : c) ? d : e", "(a ? b : c) ? d : e"),
            ("x.y.z(1, 'q')[0]", "x.y.z(1, \"q\")[0]"),
            ("a - (b - c)", "a - (b - c)"),
            ("(a - b) - c", "a - b - c"),
            ("[1, 2.5, r'\\d',]", "[1, 2.5, \"\\\\d\"]"),
            ("", "true"),
            ("   // only a comment", "true"),
        ] {
            let e = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(e.to_string(), printed, "{src}");
            assert_eq!(parse(&e.to_string()).unwrap(), e, "{src}");
        }
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("status_code >= ").unwrap_err();
        assert_eq!((e.line, e.column), (1, 15));
        assert!(e.message.contains("ends too early"), "{e}");
        let e = parse("(a && b").unwrap_err();
        assert_eq!(e.suggestion.as_deref(), Some(")"));
        let e = parse("a b").unwrap_err();
        assert_eq!((e.line, e.column), (1, 3));
        let e = parse("a AND b").unwrap_err();
        assert_eq!(e.suggestion.as_deref(), Some("and"));
        assert!(parse(&format!("{}a{}", "(".repeat(500), ")".repeat(500))).is_ok());
        assert!(
            parse(&format!("{}a{}", "[".repeat(300), "]".repeat(300)))
                .unwrap_err()
                .message
                .contains("nests deeper")
        );
        assert!(
            parse(&format!("{}a", "a || ".repeat(300)))
                .unwrap_err()
                .message
                .contains("nests deeper")
        );
        assert!(parse(&"!".repeat(5000)).unwrap_err().message.contains("tokens"));
        assert!(
            parse(&format!("{}a", "!".repeat(500)))
                .unwrap_err()
                .message
                .contains("nests deeper")
        );
    }
}
