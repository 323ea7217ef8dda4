//! The compiled form of a filter and its evaluation.
//!
//! The checker turns the syntax tree into a [`Node`] tree: fields are resolved to their typed
//! readers, literals folded, regexes compiled, and the common shapes (`field op literal`,
//! `field in [literals]`, `timestamp > now() - duration(…)`) turned into dedicated nodes that
//! read one field and compare it without building intermediate values. Evaluation borrows from
//! the entry and the tree: it allocates only for computed strings (`lowerAscii()`, `+` on
//! strings, `string()`, IP addresses used as text) and for patterns built at run time.
//!
//! Errors at run time (division by zero, overflow, a missing map key, a list index out of range)
//! follow CEL: `false && error` is `false`, `true || error` is `true`, and a filter whose result
//! is an error does not match.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::net::IpAddr;

use regex::{Regex, RegexBuilder};

use crate::entry::Entry;
use crate::fields::{Access, FieldDef, FlagDef, ListAccess, MapAccess};
use crate::time::Timestamp;

/// What a filter may depend on besides the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalContext {
    /// The value of `now()`.
    pub now: Timestamp,
}

impl EvalContext {
    pub fn new(now: Timestamp) -> Self {
        EvalContext { now }
    }

    /// `now()` is the current wall-clock time.
    pub fn wall_clock() -> Self {
        EvalContext { now: Timestamp::now() }
    }
}

/// Compiled regexes are capped at this many bytes (a pattern that needs more is an error).
pub(crate) const REGEX_SIZE_LIMIT: usize = 4 << 20;

pub(crate) fn build_regex(p: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(p).size_limit(REGEX_SIZE_LIMIT).build()
}

pub(crate) type StrGet = for<'a> fn(&'a Entry) -> Option<Cow<'a, str>>;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Const {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Box<str>),
    /// Nanoseconds since the Unix epoch.
    Ts(i64),
    /// Nanoseconds.
    Dur(i64),
}

impl Const {
    fn val(&self) -> Val<'_> {
        match self {
            Const::Bool(b) => Val::Bool(*b),
            Const::Int(i) => Val::Int(*i),
            Const::Float(f) => Val::Float(*f),
            Const::Str(s) => Val::Str(Cow::Borrowed(s)),
            Const::Ts(t) => Val::Ts(*t),
            Const::Dur(d) => Val::Dur(*d),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub(crate) fn test(self, o: Ordering) -> bool {
        match self {
            CmpOp::Eq => o == Ordering::Equal,
            CmpOp::Ne => o != Ordering::Equal,
            CmpOp::Lt => o == Ordering::Less,
            CmpOp::Le => o != Ordering::Greater,
            CmpOp::Gt => o == Ordering::Greater,
            CmpOp::Ge => o != Ordering::Less,
        }
    }

    /// The operator with its operands swapped (`a < b` is `b > a`).
    pub(crate) fn flip(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            o => o,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrOp {
    StartsWith,
    EndsWith,
    Contains,
}

impl StrOp {
    fn apply(self, s: &str, arg: &str) -> bool {
        match self {
            StrOp::StartsWith => s.starts_with(arg),
            StrOp::EndsWith => s.ends_with(arg),
            StrOp::Contains => s.contains(arg),
        }
    }
}

/// One-argument conversions and functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conv {
    Int,
    Float,
    Str,
    Ts,
    Dur,
    Lower,
    Upper,
    Size,
}

#[derive(Debug)]
pub(crate) enum Node {
    Const(Const),
    /// A field read with its empty default when it does not apply.
    Field(&'static FieldDef),
    Flag(&'static FlagDef),
    /// `f != null` (`present`) or `f == null`.
    IsNull {
        f: &'static FieldDef,
        present: bool,
    },
    Now,
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    /// `needle in container` (a list or a map).
    In(Box<Node>, Box<Node>),
    Arith(ArOp, Box<Node>, Box<Node>),
    Neg(Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
    List(Vec<Node>),
    Index(Box<Node>, Box<Node>),
    MapGet(Box<Node>, Box<Node>, Box<Node>),
    StrTest(StrOp, Box<Node>, Box<Node>),
    Matches(Box<Node>, Box<Regex>),
    MatchesDyn(Box<Node>, Box<Node>),
    Conv(Conv, Box<Node>),
    // Fast paths: one field against literals.
    IntCmp {
        f: &'static FieldDef,
        get: fn(&Entry) -> Option<i64>,
        op: CmpOp,
        k: i64,
    },
    StrCmp {
        f: &'static FieldDef,
        get: StrGet,
        op: CmpOp,
        k: Box<str>,
    },
    StrTestK {
        f: &'static FieldDef,
        get: StrGet,
        op: StrOp,
        k: Box<str>,
    },
    StrRegex {
        f: &'static FieldDef,
        get: StrGet,
        re: Box<Regex>,
    },
    StrIn {
        f: &'static FieldDef,
        get: StrGet,
        set: Box<[Box<str>]>,
    },
    IntIn {
        f: &'static FieldDef,
        get: fn(&Entry) -> Option<i64>,
        set: Box<[i64]>,
    },
    IpEq {
        f: &'static FieldDef,
        get: fn(&Entry) -> Option<IpAddr>,
        ip: IpAddr,
        eq: bool,
    },
    /// `timestamp op (now() or 0) + offset`.
    TsCmp {
        f: &'static FieldDef,
        get: fn(&Entry) -> Option<Timestamp>,
        op: CmpOp,
        now: bool,
        offset: i64,
    },
}

impl Node {
    /// Estimated cost of evaluating the node, from the registry's field costs: `&&` and `||`
    /// test their cheapest operands first (their result does not depend on the order).
    pub(crate) fn cost(&self) -> u32 {
        const REGEX: u32 = 8;
        match self {
            Node::Const(_) | Node::Now => 0,
            Node::Field(f) | Node::IsNull { f, .. } => u32::from(f.cost),
            Node::Flag(f) => u32::from(f.cost),
            Node::IntCmp { f, .. }
            | Node::StrCmp { f, .. }
            | Node::StrTestK { f, .. }
            | Node::StrIn { f, .. }
            | Node::IntIn { f, .. }
            | Node::IpEq { f, .. }
            | Node::TsCmp { f, .. } => u32::from(f.cost),
            Node::StrRegex { f, .. } => u32::from(f.cost) + REGEX,
            Node::Matches(x, _) => x.cost() + REGEX,
            Node::MatchesDyn(a, b) => a.cost() + b.cost() + 10 * REGEX,
            Node::Not(x) | Node::Neg(x) | Node::Conv(_, x) => x.cost() + 1,
            Node::And(xs) | Node::Or(xs) | Node::List(xs) => xs.iter().map(Node::cost).sum::<u32>() + 1,
            Node::Cmp(_, a, b) | Node::In(a, b) | Node::Arith(_, a, b) | Node::Index(a, b) | Node::StrTest(_, a, b) => {
                a.cost() + b.cost() + 1
            }
            Node::Cond(a, b, c) | Node::MapGet(a, b, c) => a.cost() + b.cost().max(c.cost()) + 1,
        }
    }
}

/// A value during evaluation, borrowing from the entry and the compiled tree.
#[derive(Debug, Clone)]
pub(crate) enum Val<'a> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Ts(i64),
    Dur(i64),
    List(ListV<'a>),
    Map(MapV<'a>),
    Err,
}

#[derive(Clone, Copy)]
pub(crate) enum ListV<'a> {
    Field(&'a Entry, ListAccess),
    Lit(&'a [Node], &'a Entry, &'a EvalContext),
}

impl std::fmt::Debug for ListV<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ListV")
    }
}

impl<'a> ListV<'a> {
    fn len(&self) -> usize {
        match self {
            ListV::Field(e, acc) => (acc.len)(e).unwrap_or(0),
            ListV::Lit(items, ..) => items.len(),
        }
    }

    fn get(&self, i: usize) -> Val<'a> {
        match *self {
            ListV::Field(e, acc) => (acc.item)(e, i).map_or(Val::Err, Val::Str),
            ListV::Lit(items, e, cx) => items.get(i).map_or(Val::Err, |n| eval(n, e, cx)),
        }
    }
}

#[derive(Clone, Copy)]
pub(crate) struct MapV<'a> {
    e: &'a Entry,
    acc: MapAccess,
}

impl std::fmt::Debug for MapV<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MapV")
    }
}

impl<'a> MapV<'a> {
    fn get(&self, k: &str) -> Option<Cow<'a, str>> {
        (self.acc.get)(self.e, k)
    }

    fn len(&self) -> usize {
        (self.acc.len)(self.e).unwrap_or(0)
    }
}

pub(crate) fn ts_ns(t: Timestamp) -> i64 {
    i64::try_from(t.0).unwrap_or(i64::MAX)
}

/// A field's value, or its empty default when the field does not apply.
fn read<'a>(f: &'static FieldDef, e: &'a Entry) -> Val<'a> {
    match f.access {
        Access::Bool(g) => Val::Bool(g(e).unwrap_or(false)),
        Access::Int(g) => Val::Int(g(e).unwrap_or(0)),
        Access::Float(g) => Val::Float(g(e).unwrap_or(0.0)),
        Access::Str(g) => Val::Str(g(e).unwrap_or(Cow::Borrowed(""))),
        Access::Ip(g) => Val::Str(g(e).map_or(Cow::Borrowed(""), |ip| Cow::Owned(ip.to_string()))),
        Access::Timestamp(g) => Val::Ts(g(e).map_or(0, ts_ns)),
        Access::StrList(acc) => Val::List(ListV::Field(e, acc)),
        Access::StrMap(acc) => Val::Map(MapV { e, acc }),
    }
}

fn is_present(f: &FieldDef, e: &Entry) -> bool {
    match f.access {
        Access::Bool(g) => g(e).is_some(),
        Access::Int(g) => g(e).is_some(),
        Access::Float(g) => g(e).is_some(),
        Access::Str(g) => g(e).is_some(),
        Access::Ip(g) => g(e).is_some(),
        Access::Timestamp(g) => g(e).is_some(),
        Access::StrList(acc) => (acc.len)(e).is_some(),
        Access::StrMap(acc) => (acc.len)(e).is_some(),
    }
}

/// Evaluates a boolean node; `None` is an evaluation error. The common nodes are handled here,
/// in a small function; the rest in [`test_other`].
pub(crate) fn test(n: &Node, e: &Entry, cx: &EvalContext) -> Option<bool> {
    Some(match n {
        Node::And(xs) => {
            let mut failed = false;
            for x in xs {
                match test(x, e, cx) {
                    Some(false) => return Some(false),
                    Some(true) => {}
                    None => failed = true,
                }
            }
            if failed {
                return None;
            }
            true
        }
        Node::Or(xs) => {
            let mut failed = false;
            for x in xs {
                match test(x, e, cx) {
                    Some(true) => return Some(true),
                    Some(false) => {}
                    None => failed = true,
                }
            }
            if failed {
                return None;
            }
            false
        }
        Node::Not(x) => !test(x, e, cx)?,
        Node::Const(Const::Bool(b)) => *b,
        Node::Flag(f) => (f.test)(e),
        Node::IntCmp { get, op, k, .. } => op.test(get(e).unwrap_or(0).cmp(k)),
        Node::StrCmp { get, op, k, .. } => {
            let v = get(e);
            op.test(v.as_deref().unwrap_or("").cmp(k))
        }
        Node::StrTestK { get, op, k, .. } => op.apply(get(e).as_deref().unwrap_or(""), k),
        Node::IntIn { get, set, .. } => set.contains(&get(e).unwrap_or(0)),
        Node::IpEq { get, ip, eq, .. } => (get(e) == Some(*ip)) == *eq,
        other => return test_other(other, e, cx),
    })
}

#[inline(never)]
fn test_other(n: &Node, e: &Entry, cx: &EvalContext) -> Option<bool> {
    Some(match n {
        Node::IsNull { f, present } => is_present(f, e) == *present,
        Node::Cmp(op, l, r) => compare(*op, &eval(l, e, cx), &eval(r, e, cx))?,
        Node::In(x, c) => contains(&eval(c, e, cx), &eval(x, e, cx))?,
        Node::StrTest(op, s, a) => match (eval(s, e, cx), eval(a, e, cx)) {
            (Val::Str(s), Val::Str(a)) => op.apply(&s, &a),
            _ => return None,
        },
        Node::Matches(s, re) => match eval(s, e, cx) {
            Val::Str(s) => re.is_match(&s),
            _ => return None,
        },
        Node::MatchesDyn(s, p) => match (eval(s, e, cx), eval(p, e, cx)) {
            (Val::Str(s), Val::Str(p)) => build_regex(&p).ok()?.is_match(&s),
            _ => return None,
        },
        Node::StrRegex { get, re, .. } => re.is_match(get(e).as_deref().unwrap_or("")),
        Node::StrIn { get, set, .. } => {
            let v = get(e);
            let s = v.as_deref().unwrap_or("");
            set.iter().any(|k| **k == *s)
        }
        Node::TsCmp {
            get, op, now, offset, ..
        } => {
            let v = get(e).map_or(0, ts_ns);
            let base = if *now { ts_ns(cx.now) } else { 0 };
            op.test(v.cmp(&base.checked_add(*offset)?))
        }
        Node::And(_)
        | Node::Or(_)
        | Node::Not(_)
        | Node::Const(Const::Bool(_))
        | Node::Flag(_)
        | Node::IntCmp { .. }
        | Node::StrCmp { .. }
        | Node::StrTestK { .. }
        | Node::IntIn { .. }
        | Node::IpEq { .. } => return test(n, e, cx),
        other => match eval(other, e, cx) {
            Val::Bool(b) => b,
            _ => return None,
        },
    })
}

/// The entries of `live` (a bit set over `es`) for which `pred` holds.
#[inline(always)]
fn bits(live: u64, mut pred: impl FnMut(usize) -> bool) -> u64 {
    let mut out = 0;
    let mut rest = live;
    while rest != 0 {
        let i = rest.trailing_zeros() as usize;
        rest &= rest - 1;
        if pred(i) {
            out |= 1 << i;
        }
    }
    out
}

/// Evaluates a boolean node for the entries of `live` (a bit set over `es`, at most 64 entries):
/// returns the entries where it is true and those where it is an error.
///
/// Each condition runs over the whole batch before the next one, in a tight loop per field, so
/// the memory loads of different entries overlap instead of waiting for each other.
pub(crate) fn test_batch(n: &Node, es: &[&Entry], cx: &EvalContext, live: u64) -> (u64, u64) {
    match n {
        Node::Const(Const::Bool(b)) => (if *b { live } else { 0 }, 0),
        Node::And(xs) => {
            let (mut cur, mut err) = (live, 0);
            for x in xs {
                if cur == 0 {
                    break;
                }
                let (t, e) = test_batch(x, es, cx, cur);
                err |= e;
                cur &= t | e;
            }
            (cur & !err, cur & err)
        }
        Node::Or(xs) => {
            let (mut cur, mut yes, mut err) = (live, 0, 0);
            for x in xs {
                if cur == 0 {
                    break;
                }
                let (t, e) = test_batch(x, es, cx, cur);
                yes |= t;
                err |= e;
                cur &= !t;
            }
            (yes, cur & err)
        }
        Node::Not(x) => {
            let (t, e) = test_batch(x, es, cx, live);
            (live & !t & !e, e)
        }
        Node::Flag(f) => (bits(live, |i| (f.test)(es[i])), 0),
        Node::IntCmp { get, op, k, .. } => (bits(live, |i| op.test(get(es[i]).unwrap_or(0).cmp(k))), 0),
        Node::StrCmp { get, op, k, .. } => (
            bits(live, |i| {
                let v = get(es[i]);
                op.test(v.as_deref().unwrap_or("").cmp(k))
            }),
            0,
        ),
        Node::StrTestK { get, op, k, .. } => (bits(live, |i| op.apply(get(es[i]).as_deref().unwrap_or(""), k)), 0),
        Node::IpEq { get, ip, eq, .. } => (bits(live, |i| (get(es[i]) == Some(*ip)) == *eq), 0),
        Node::IntIn { get, set, .. } => (bits(live, |i| set.contains(&get(es[i]).unwrap_or(0))), 0),
        _ => {
            let mut err = 0;
            let t = bits(live, |i| match test(n, es[i], cx) {
                Some(b) => b,
                None => {
                    err |= 1 << i;
                    false
                }
            });
            (t, err)
        }
    }
}

/// Evaluates any node.
pub(crate) fn eval<'a>(n: &'a Node, e: &'a Entry, cx: &'a EvalContext) -> Val<'a> {
    match n {
        Node::Const(c) => c.val(),
        Node::Field(f) => read(f, e),
        Node::Now => Val::Ts(ts_ns(cx.now)),
        Node::Arith(op, l, r) => arith(*op, eval(l, e, cx), eval(r, e, cx)),
        Node::Neg(x) => match eval(x, e, cx) {
            Val::Int(i) => i.checked_neg().map_or(Val::Err, Val::Int),
            Val::Float(f) => Val::Float(-f),
            Val::Dur(d) => d.checked_neg().map_or(Val::Err, Val::Dur),
            _ => Val::Err,
        },
        Node::Cond(c, t, f) => match test(c, e, cx) {
            Some(true) => eval(t, e, cx),
            Some(false) => eval(f, e, cx),
            None => Val::Err,
        },
        Node::List(items) => Val::List(ListV::Lit(items, e, cx)),
        Node::Index(b, i) => index(eval(b, e, cx), eval(i, e, cx)),
        Node::MapGet(m, k, d) => match (eval(m, e, cx), eval(k, e, cx)) {
            (Val::Map(m), Val::Str(k)) => match m.get(&k) {
                Some(v) => Val::Str(v),
                None => eval(d, e, cx),
            },
            _ => Val::Err,
        },
        Node::Conv(c, x) => convert(*c, eval(x, e, cx)),
        Node::Flag(_)
        | Node::IsNull { .. }
        | Node::Not(_)
        | Node::And(_)
        | Node::Or(_)
        | Node::Cmp(..)
        | Node::In(..)
        | Node::StrTest(..)
        | Node::Matches(..)
        | Node::MatchesDyn(..)
        | Node::IntCmp { .. }
        | Node::StrCmp { .. }
        | Node::StrTestK { .. }
        | Node::StrRegex { .. }
        | Node::StrIn { .. }
        | Node::IntIn { .. }
        | Node::IpEq { .. }
        | Node::TsCmp { .. } => test(n, e, cx).map_or(Val::Err, Val::Bool),
    }
}

/// Compares two values; `None` when they cannot be compared (an error).
pub(crate) fn compare(op: CmpOp, a: &Val<'_>, b: &Val<'_>) -> Option<bool> {
    let ord = match (a, b) {
        (Val::Int(x), Val::Int(y)) => x.cmp(y),
        (Val::Float(_) | Val::Int(_), Val::Float(_) | Val::Int(_)) => {
            let (x, y) = (as_f64(a)?, as_f64(b)?);
            match x.partial_cmp(&y) {
                Some(o) => o,
                // NaN: only `!=` holds.
                None => return Some(op == CmpOp::Ne),
            }
        }
        (Val::Str(x), Val::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Val::Bool(x), Val::Bool(y)) => x.cmp(y),
        (Val::Ts(x), Val::Ts(y)) | (Val::Dur(x), Val::Dur(y)) => x.cmp(y),
        (Val::List(x), Val::List(y)) if matches!(op, CmpOp::Eq | CmpOp::Ne) => {
            let eq = x.len() == y.len() && (0..x.len()).all(|i| compare(CmpOp::Eq, &x.get(i), &y.get(i)) == Some(true));
            return Some(eq == (op == CmpOp::Eq));
        }
        _ => return None,
    };
    Some(op.test(ord))
}

fn as_f64(v: &Val<'_>) -> Option<f64> {
    match v {
        Val::Int(i) => Some(*i as f64),
        Val::Float(f) => Some(*f),
        _ => None,
    }
}

fn contains(container: &Val<'_>, needle: &Val<'_>) -> Option<bool> {
    match container {
        Val::List(l) => Some((0..l.len()).any(|i| compare(CmpOp::Eq, &l.get(i), needle) == Some(true))),
        Val::Map(m) => match needle {
            Val::Str(k) => Some(m.get(k).is_some()),
            _ => None,
        },
        _ => None,
    }
}

fn arith<'a>(op: ArOp, a: Val<'a>, b: Val<'a>) -> Val<'a> {
    use Val::*;
    let int = |r: Option<i64>| r.map_or(Err, Int);
    match (op, a, b) {
        (ArOp::Add, Int(x), Int(y)) => int(x.checked_add(y)),
        (ArOp::Sub, Int(x), Int(y)) => int(x.checked_sub(y)),
        (ArOp::Mul, Int(x), Int(y)) => int(x.checked_mul(y)),
        (ArOp::Div, Int(x), Int(y)) => int(x.checked_div(y)),
        (ArOp::Rem, Int(x), Int(y)) => int(x.checked_rem(y)),
        (op, a @ (Int(_) | Float(_)), b @ (Int(_) | Float(_))) => {
            let (Some(x), Some(y)) = (as_f64(&a), as_f64(&b)) else {
                return Err;
            };
            Float(match op {
                ArOp::Add => x + y,
                ArOp::Sub => x - y,
                ArOp::Mul => x * y,
                ArOp::Div => x / y,
                ArOp::Rem => x % y,
            })
        }
        (ArOp::Add, Str(x), Str(y)) => {
            let mut s = x.into_owned();
            s.push_str(&y);
            Str(Cow::Owned(s))
        }
        (ArOp::Add, Ts(t), Dur(d)) | (ArOp::Add, Dur(d), Ts(t)) => t.checked_add(d).map_or(Err, Ts),
        (ArOp::Sub, Ts(t), Dur(d)) => t.checked_sub(d).map_or(Err, Ts),
        (ArOp::Sub, Ts(t), Ts(u)) => t.checked_sub(u).map_or(Err, Dur),
        (ArOp::Add, Dur(x), Dur(y)) => x.checked_add(y).map_or(Err, Dur),
        (ArOp::Sub, Dur(x), Dur(y)) => x.checked_sub(y).map_or(Err, Dur),
        _ => Err,
    }
}

fn index<'a>(base: Val<'a>, i: Val<'a>) -> Val<'a> {
    match (base, i) {
        (Val::List(l), Val::Int(i)) => match usize::try_from(i) {
            Ok(i) if i < l.len() => l.get(i),
            _ => Val::Err,
        },
        (Val::Map(m), Val::Str(k)) => m.get(&k).map_or(Val::Err, Val::Str),
        _ => Val::Err,
    }
}

fn convert(c: Conv, v: Val<'_>) -> Val<'_> {
    match (c, v) {
        (Conv::Int, Val::Int(i)) => Val::Int(i),
        (Conv::Int, Val::Float(f)) => {
            if f.is_finite() && f > -9.3e18 && f < 9.3e18 {
                let t = f.trunc();
                if t >= i64::MIN as f64 && t < i64::MAX as f64 {
                    return Val::Int(t as i64);
                }
            }
            Val::Err
        }
        (Conv::Int, Val::Str(s)) => s.parse().map_or(Val::Err, Val::Int),
        (Conv::Int, Val::Ts(t)) => Val::Int(t.div_euclid(1_000_000_000)),
        (Conv::Float, Val::Int(i)) => Val::Float(i as f64),
        (Conv::Float, Val::Float(f)) => Val::Float(f),
        (Conv::Float, Val::Str(s)) => s.parse().map_or(Val::Err, Val::Float),
        (Conv::Str, Val::Str(s)) => Val::Str(s),
        (Conv::Str, Val::Int(i)) => Val::Str(Cow::Owned(i.to_string())),
        (Conv::Str, Val::Float(f)) => Val::Str(Cow::Owned(f.to_string())),
        (Conv::Str, Val::Bool(b)) => Val::Str(Cow::Borrowed(if b { "true" } else { "false" })),
        (Conv::Str, Val::Ts(t)) => match u64::try_from(t) {
            Ok(t) => Val::Str(Cow::Owned(Timestamp(t).to_rfc3339())),
            Err(_) => Val::Err,
        },
        (Conv::Str, Val::Dur(d)) => Val::Str(Cow::Owned(format_duration(d))),
        (Conv::Ts, Val::Ts(t)) => Val::Ts(t),
        (Conv::Ts, Val::Str(s)) => parse_timestamp(&s).map_or(Val::Err, Val::Ts),
        (Conv::Ts, Val::Int(secs)) => secs.checked_mul(1_000_000_000).map_or(Val::Err, Val::Ts),
        (Conv::Dur, Val::Dur(d)) => Val::Dur(d),
        (Conv::Dur, Val::Str(s)) => parse_duration(&s).map_or(Val::Err, Val::Dur),
        (Conv::Lower, Val::Str(s)) => {
            if s.bytes().any(|b| b.is_ascii_uppercase()) {
                Val::Str(Cow::Owned(s.to_ascii_lowercase()))
            } else {
                Val::Str(s)
            }
        }
        (Conv::Upper, Val::Str(s)) => {
            if s.bytes().any(|b| b.is_ascii_lowercase()) {
                Val::Str(Cow::Owned(s.to_ascii_uppercase()))
            } else {
                Val::Str(s)
            }
        }
        (Conv::Size, Val::Str(s)) => Val::Int(s.chars().count() as i64),
        (Conv::Size, Val::List(l)) => Val::Int(l.len() as i64),
        (Conv::Size, Val::Map(m)) => Val::Int(m.len() as i64),
        _ => Val::Err,
    }
}

/// RFC 3339 to nanoseconds since the epoch.
pub(crate) fn parse_timestamp(s: &str) -> Result<i64, String> {
    let dt = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("`{s}` is not an RFC 3339 timestamp ({e}); write e.g. \"2024-05-01T12:00:00Z\""))?;
    i64::try_from(dt.unix_timestamp_nanos()).map_err(|_| format!("`{s}` is out of range (1678 to 2262)"))
}

/// A CEL duration (`"5m"`, `"1h30m"`, `"1.5s"`, `"250ms"`, `"-10s"`; units `h m s ms us µs
/// ns`, plus `d` for days) to nanoseconds.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    let bad =
        |why: &str| format!("`{s}` is not a duration ({why}); write e.g. \"5m\", \"1h30m\", \"1.5s\" or \"250ms\"");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return Err(bad("it is empty"));
    }
    if rest == "0" {
        return Ok(0);
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(bad("a number must come before each unit"));
        }
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            "" => return Err(bad("a unit is missing")),
            _ => return Err(bad(&format!("unknown unit `{unit}`"))),
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        let int: i128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad("a number is too large"))?
        };
        let mut part = int.checked_mul(scale).ok_or_else(|| bad("it is too long"))?;
        let mut div = 1i128;
        for d in frac.bytes().take(18) {
            div *= 10;
            part += i128::from(d - b'0') * scale / div;
        }
        total = total.checked_add(part).ok_or_else(|| bad("it is too long"))?;
        if total > i128::from(i64::MAX) {
            return Err(bad("it is too long"));
        }
    }
    let total = if neg { -total } else { total };
    i64::try_from(total).map_err(|_| bad("it is too long"))
}

/// A duration as CEL prints it: seconds with a fraction, e.g. `"300s"`, `"1.5s"`.
pub(crate) fn format_duration(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let a = ns.unsigned_abs();
    let (secs, frac) = (a / 1_000_000_000, a % 1_000_000_000);
    if frac == 0 {
        format!("{sign}{secs}s")
    } else {
        let f = format!("{frac:09}");
        format!("{sign}{secs}.{}s", f.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(300_000_000_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("250ms"), Ok(250_000_000));
        assert_eq!(parse_duration("-10s"), Ok(-10_000_000_000));
        assert_eq!(parse_duration("2us"), Ok(2_000));
        assert_eq!(parse_duration("1d"), Ok(86_400_000_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("1.2.3s").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
        assert_eq!(format_duration(300_000_000_000), "300s");
        assert_eq!(format_duration(-1_500_000_000), "-1.5s");
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:01Z"), Ok(1_000_000_000));
        assert!(parse_timestamp("yesterday").is_err());
    }
}
