//! KFL: the display-filter language (a CEL subset with Kubeshark KFL2's field names).
//!
//! ```
//! use capture_core::kfl::{self, EvalContext};
//! let f = kfl::compile("http and response.status >= 500").unwrap();
//! assert_eq!(f.normalized(), "http && status >= 500");
//! assert_eq!(f.fields_used(), vec!["status".to_string()]);
//! assert!(kfl::compile("http and stauts >= 500").is_err());
//! # let _ = EvalContext::wall_clock();
//! ```
//!
//! Pipeline: [`lexer`] → the lalrpop grammar (`grammar.lalrpop`, see [`parse`]) → a spanned
//! [`ast::Expr`] → the checker (types against [`crate::fields`], folds constants, compiles
//! regexes) → a tree evaluated per entry without allocating on the common paths. Every field
//! name, alias and type comes from the registry, which also generates the language reference
//! ([`reference_markdown`]).

pub mod ast;
mod check;
mod error;
mod eval;
pub mod lexer;
pub mod parse;
mod reference;

#[cfg(test)]
mod tests;

use std::borrow::Borrow;
use std::fmt;

pub use error::{KflError, KflErrors};
pub use eval::EvalContext;
pub use reference::reference_markdown;

use crate::entry::{Entry, Protocol};
use crate::time::Timestamp;
use ast::{Expr, ExprKind, Name};
use check::{Checker, path_segments, resolve_path};
use eval::{CmpOp, Const, Node};

/// Entries evaluated together by [`Filter::matches_batch`].
pub const BATCH: usize = 64;

/// A compiled filter. Cheap to evaluate from many threads at once.
pub struct Filter {
    root: Node,
    normalized: String,
    fields: Vec<&'static str>,
    protocols: Option<Vec<Protocol>>,
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter").field("normalized", &self.normalized).finish()
    }
}

/// A time range that contains every timestamp a filter can match (both ends inclusive; `None`
/// is unbounded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeBounds {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl TimeBounds {
    pub fn contains(&self, t: Timestamp) -> bool {
        self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|u| t <= u)
    }

    /// True when no timestamp can match.
    pub fn is_empty(&self) -> bool {
        matches!((self.from, self.to), (Some(f), Some(t)) if f > t)
    }
}

/// Parses a filter into its syntax tree (no type checking).
pub fn parse(src: &str) -> Result<Expr, KflErrors> {
    parse::parse(src).map_err(|e| KflErrors(vec![e]))
}

/// Parses, type-checks and compiles a filter. An empty filter matches everything. All unknown
/// fields and type errors are reported at once, in source order.
pub fn compile(src: &str) -> Result<Filter, KflErrors> {
    let ast = parse(src)?;
    let mut ck = Checker::new(src);
    let root = ck.check_filter(&ast);
    if !ck.errors.is_empty() {
        let mut errors = ck.errors;
        errors.sort_by_key(|e| (e.line, e.column));
        return Err(KflErrors(errors));
    }
    let protocols = proto_mask(&root).and_then(|m| {
        let all = (1u32 << Protocol::ALL.len()) - 1;
        (m & all != all).then(|| {
            Protocol::ALL
                .iter()
                .enumerate()
                .filter(|(i, _)| m & (1 << i) != 0)
                .map(|(_, p)| *p)
                .collect()
        })
    });
    Ok(Filter {
        root,
        normalized: canonical(&ast).to_string(),
        fields: ck.fields,
        protocols,
    })
}

impl Filter {
    /// Does the entry match? Evaluation errors (division by zero, a missing map key…) make the
    /// entry not match, as in CEL.
    #[inline]
    pub fn matches(&self, e: &Entry, cx: &EvalContext) -> bool {
        eval::test(&self.root, e, cx) == Some(true)
    }

    /// Evaluates up to [`BATCH`] entries at once (only the first [`BATCH`] of a longer slice):
    /// bit `i` of the result is set when `entries[i]` matches. Faster than [`Filter::matches`]
    /// per entry on large scans, because the memory loads of different entries overlap.
    pub fn matches_batch<E: Borrow<Entry>>(&self, entries: &[E], cx: &EvalContext) -> u64 {
        let n = entries.len().min(BATCH);
        let mut refs: [&Entry; BATCH] = [check::dummy_entry(); BATCH];
        for (r, e) in refs.iter_mut().zip(entries) {
            *r = e.borrow();
        }
        let live = if n == BATCH { u64::MAX } else { (1u64 << n) - 1 };
        eval::test_batch(&self.root, &refs[..n], cx, live).0
    }

    /// The matching entries of a slice, in order, evaluated [`BATCH`] at a time (lazily: stopping
    /// early skips the rest).
    pub fn matching<'a, E: Borrow<Entry>>(
        &'a self,
        entries: &'a [E],
        cx: &'a EvalContext,
    ) -> impl Iterator<Item = &'a E> + 'a {
        entries.chunks(BATCH).flat_map(move |chunk| {
            let mask = self.matches_batch(chunk, cx);
            chunk
                .iter()
                .enumerate()
                .filter(move |(i, _)| mask & (1 << i) != 0)
                .map(|(_, e)| e)
        })
    }

    /// The matching items of any iterator of entries (`store.iter().rev()`, `&Arc<Entry>`s…), in
    /// order, evaluated [`BATCH`] at a time: at most [`BATCH`] items are read ahead.
    pub fn matching_iter<'a, E, I>(&'a self, entries: I, cx: &'a EvalContext) -> MatchingIter<'a, E, I::IntoIter>
    where
        E: Borrow<Entry>,
        I: IntoIterator<Item = E>,
    {
        MatchingIter {
            filter: self,
            cx,
            source: entries.into_iter(),
            batch: Vec::with_capacity(BATCH),
            buf: std::collections::VecDeque::with_capacity(BATCH),
        }
    }

    /// The canonical form: registry names for fields (`status` for `response.status`), `&&`,
    /// `||`, `!`, double-quoted strings and the fewest parentheses. Compiles to the same filter.
    pub fn normalized(&self) -> String {
        self.normalized.clone()
    }

    /// Canonical names of the fields the filter reads, in first-use order.
    pub fn fields_used(&self) -> Vec<String> {
        self.fields.iter().map(|s| s.to_string()).collect()
    }

    /// True when the filter matches every entry (empty, or `true`).
    pub fn matches_all(&self) -> bool {
        matches!(self.root, Node::Const(Const::Bool(true)))
    }

    /// The protocols an entry must have to match, when the filter narrows them (`http`,
    /// `protocol == "http/1.0"`); `None` when any protocol may match. Conservative: a listed
    /// protocol may still not match.
    pub fn protocols(&self) -> Option<Vec<Protocol>> {
        self.protocols.clone()
    }

    /// The range of `timestamp` values that can match (from comparisons of `timestamp` with
    /// constants and `now() ± duration`); unbounded ends are `None`. Conservative.
    pub fn time_bounds(&self, cx: &EvalContext) -> TimeBounds {
        let (lo, hi) = bounds(&self.root, cx);
        if let Some(h) = hi
            && h < 0
        {
            return TimeBounds {
                from: Some(Timestamp(1)),
                to: Some(Timestamp(0)),
            };
        }
        TimeBounds {
            from: lo.filter(|l| *l > 0).map(|l| Timestamp(l as u64)),
            to: hi.map(|h| Timestamp(h as u64)),
        }
    }
}

/// The iterator of [`Filter::matching_iter`].
pub struct MatchingIter<'a, E, I> {
    filter: &'a Filter,
    cx: &'a EvalContext,
    source: I,
    /// The batch being evaluated (kept to reuse its allocation).
    batch: Vec<E>,
    /// Matches of the current batch, not yet returned.
    buf: std::collections::VecDeque<E>,
}

impl<E: Borrow<Entry>, I: Iterator<Item = E>> Iterator for MatchingIter<'_, E, I> {
    type Item = E;

    fn next(&mut self) -> Option<E> {
        loop {
            if let Some(e) = self.buf.pop_front() {
                return Some(e);
            }
            self.batch.extend(self.source.by_ref().take(BATCH));
            if self.batch.is_empty() {
                return None;
            }
            let mask = self.filter.matches_batch(&self.batch, self.cx);
            self.buf.extend(
                self.batch
                    .drain(..)
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, e)| e),
            );
        }
    }
}

fn proto_bit(p: Protocol) -> u32 {
    Protocol::ALL.iter().position(|x| *x == p).map_or(0, |i| 1 << i)
}

/// Protocols (as a bit set over [`Protocol::ALL`]) that can satisfy `n`; `None` for any.
fn proto_mask(n: &Node) -> Option<u32> {
    match n {
        Node::Flag(f) => f.protocols.map(|p| {
            Protocol::ALL
                .iter()
                .filter(|x| p(**x))
                .fold(0, |m, x| m | proto_bit(*x))
        }),
        Node::Const(Const::Bool(false)) => Some(0),
        Node::StrCmp {
            f, op: CmpOp::Eq, k, ..
        } if f.name == "protocol" => Some(Protocol::from_name(k).map_or(0, proto_bit)),
        Node::StrIn { f, set, .. } if f.name == "protocol" => Some(
            set.iter()
                .filter_map(|k| Protocol::from_name(k))
                .fold(0, |m, p| m | proto_bit(p)),
        ),
        Node::And(xs) => xs.iter().filter_map(proto_mask).reduce(|a, b| a & b),
        Node::Or(xs) => xs.iter().map(proto_mask).try_fold(0, |acc, m| m.map(|m| acc | m)),
        _ => None,
    }
}

/// Inclusive bounds (ns) on `timestamp` implied by `n`.
fn bounds(n: &Node, cx: &EvalContext) -> (Option<i64>, Option<i64>) {
    match n {
        Node::TsCmp { f, op, now, offset, .. } if f.name == "timestamp" => {
            let base = if *now { eval::ts_ns(cx.now) } else { 0 };
            let Some(v) = base.checked_add(*offset) else {
                return (None, None);
            };
            match op {
                CmpOp::Gt => (v.checked_add(1), None),
                CmpOp::Ge => (Some(v), None),
                CmpOp::Lt => (None, v.checked_sub(1)),
                CmpOp::Le => (None, Some(v)),
                CmpOp::Eq => (Some(v), Some(v)),
                CmpOp::Ne => (None, None),
            }
        }
        Node::Const(Const::Bool(false)) => (Some(i64::MAX), Some(i64::MIN)),
        Node::And(xs) => xs
            .iter()
            .map(|x| bounds(x, cx))
            .fold((None, None), |(a, b), (c, d)| (max_opt(a, c), min_opt(b, d))),
        Node::Or(xs) => {
            let mut it = xs.iter().map(|x| bounds(x, cx));
            let Some(first) = it.next() else {
                return (None, None);
            };
            it.fold(first, |(a, b), (c, d)| {
                (a.zip(c).map(|(a, c)| a.min(c)), b.zip(d).map(|(b, d)| b.max(d)))
            })
        }
        _ => (None, None),
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (x, None) | (None, x) => x,
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (x, None) | (None, x) => x,
    }
}

/// The tree with every field path replaced by the field's registry name.
fn canonical(e: &Expr) -> Expr {
    if let Some(segs) = path_segments(e) {
        let names: Vec<&str> = segs.iter().map(|(n, _)| *n).collect();
        let Some((f, k)) = resolve_path(&names) else {
            return e.clone();
        };
        let mut out = Expr::new(ExprKind::Ident(f.name.to_string()), segs[k - 1].1);
        for (seg, span) in segs.iter().skip(k) {
            out = Expr::new(
                ExprKind::Select(
                    Box::new(out),
                    Name {
                        text: seg.to_string(),
                        span: *span,
                    },
                ),
                *span,
            );
        }
        return out;
    }
    let c = |x: &Expr| Box::new(canonical(x));
    let kind = match &e.kind {
        ExprKind::List(items) => ExprKind::List(items.iter().map(canonical).collect()),
        ExprKind::Select(b, m) => ExprKind::Select(c(b), m.clone()),
        ExprKind::Index(b, i) => ExprKind::Index(c(b), c(i)),
        ExprKind::Call { target, name, args } => ExprKind::Call {
            target: target.as_deref().map(c),
            name: name.clone(),
            args: args.iter().map(canonical).collect(),
        },
        ExprKind::Unary(op, x) => ExprKind::Unary(*op, c(x)),
        ExprKind::Binary(op, l, r) => ExprKind::Binary(*op, c(l), c(r)),
        ExprKind::Cond(a, b, d) => ExprKind::Cond(c(a), c(b), c(d)),
        k => k.clone(),
    };
    Expr::new(kind, e.span)
}
