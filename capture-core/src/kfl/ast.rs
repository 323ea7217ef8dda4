//! The spanned syntax tree of a filter, and its canonical printed form.
//!
//! Equality ignores spans: two trees are equal when they say the same thing, wherever it was
//! written. Printing uses `&&`, `||` and `!`, double-quoted strings and the fewest parentheses
//! that keep the tree, so `parse(print(t)) == t`.

use std::fmt;

/// Byte offsets into the source, `start..end`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// A name with its position (a member or a function).
#[derive(Debug, Clone)]
pub struct Name {
    pub text: String,
    pub span: Span,
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    /// `!` or `not`.
    Not,
    /// `-`.
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }

    fn prec(self) -> u8 {
        match self {
            BinOp::Or => PREC_OR,
            BinOp::And => PREC_AND,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::In => PREC_REL,
            BinOp::Add | BinOp::Sub => PREC_ADD,
            BinOp::Mul | BinOp::Div | BinOp::Rem => PREC_MUL,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Null,
    Bool(bool),
    /// A non-negative integer literal as written; `-` is a [`UnOp::Neg`] around it.
    Int(u64),
    /// A non-negative float literal as written.
    Float(f64),
    Str(String),
    List(Vec<Expr>),
    Ident(String),
    /// `base.member`
    Select(Box<Expr>, Name),
    /// `base[index]`
    Index(Box<Expr>, Box<Expr>),
    /// `name(args)` or `target.name(args)`.
    Call {
        target: Option<Box<Expr>>,
        name: Name,
        args: Vec<Expr>,
    },
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `cond ? then : else`
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
}

const PREC_COND: u8 = 1;
const PREC_OR: u8 = 2;
const PREC_AND: u8 = 3;
const PREC_REL: u8 = 4;
const PREC_ADD: u8 = 5;
const PREC_MUL: u8 = 6;
const PREC_UNARY: u8 = 7;
const PREC_MEMBER: u8 = 8;

impl Expr {
    pub fn new(kind: ExprKind, span: Span) -> Expr {
        Expr { kind, span }
    }

    fn prec(&self) -> u8 {
        match &self.kind {
            ExprKind::Cond(..) => PREC_COND,
            ExprKind::Binary(op, ..) => op.prec(),
            ExprKind::Unary(..) => PREC_UNARY,
            _ => PREC_MEMBER,
        }
    }

    /// The dotted path this expression spells (`src.pod.name`), when it is only identifiers and
    /// members.
    pub fn path(&self) -> Option<String> {
        match &self.kind {
            ExprKind::Ident(n) => Some(n.clone()),
            ExprKind::Select(base, m) => {
                let mut p = base.path()?;
                p.push('.');
                p.push_str(&m.text);
                Some(p)
            }
            _ => None,
        }
    }
}

/// Builds a binary node spanning `l..r` (used by the grammar).
pub fn bin(op: BinOp, a: Expr, b: Expr, l: usize, r: usize) -> Expr {
    Expr::new(ExprKind::Binary(op, Box::new(a), Box::new(b)), Span::new(l, r))
}

/// Writes `e`, in parentheses when its precedence is below `min`.
fn child(f: &mut fmt::Formatter<'_>, e: &Expr, min: u8) -> fmt::Result {
    if e.prec() < min {
        write!(f, "({e})")
    } else {
        write!(f, "{e}")
    }
}

/// Writes a string literal that reads back as the same string.
pub fn write_str_lit(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
                if (c as u32) < 0x10000 {
                    write!(f, "\\u{:04x}", c as u32)?
                } else {
                    write!(f, "\\U{:08x}", c as u32)?
                }
            }
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

fn args(f: &mut fmt::Formatter<'_>, items: &[Expr]) -> fmt::Result {
    for (i, a) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{a}")?;
    }
    Ok(())
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Null => f.write_str("null"),
            ExprKind::Bool(b) => write!(f, "{b}"),
            ExprKind::Int(n) => write!(f, "{n}"),
            ExprKind::Float(x) => {
                let s = format!("{x:?}");
                f.write_str(&s)
            }
            ExprKind::Str(s) => write_str_lit(f, s),
            ExprKind::List(items) => {
                f.write_str("[")?;
                args(f, items)?;
                f.write_str("]")
            }
            ExprKind::Ident(n) => f.write_str(n),
            ExprKind::Select(base, m) => {
                child(f, base, PREC_MEMBER)?;
                write!(f, ".{}", m.text)
            }
            ExprKind::Index(base, i) => {
                child(f, base, PREC_MEMBER)?;
                write!(f, "[{i}]")
            }
            ExprKind::Call { target, name, args: a } => {
                if let Some(t) = target {
                    child(f, t, PREC_MEMBER)?;
                    f.write_str(".")?;
                }
                write!(f, "{}(", name.text)?;
                args(f, a)?;
                f.write_str(")")
            }
            ExprKind::Unary(op, e) => {
                f.write_str(match op {
                    UnOp::Not => "!",
                    UnOp::Neg => "-",
                })?;
                child(f, e, PREC_UNARY)
            }
            ExprKind::Binary(op, l, r) => {
                let p = op.prec();
                child(f, l, p)?;
                write!(f, " {} ", op.symbol())?;
                child(f, r, p + 1)
            }
            ExprKind::Cond(c, t, e) => {
                child(f, c, PREC_OR)?;
                f.write_str(" ? ")?;
                child(f, t, PREC_OR)?;
                f.write_str(" : ")?;
                child(f, e, PREC_COND)
            }
        }
    }
}
