//! Type checking against the field registry, and compilation to [`Node`]s.
//!
//! Paths resolve to the longest registered field name (`response.status.code` before
//! `response.status`); members after a map field read keys (`request.headers.host`). Every
//! problem is collected with its span, so one pass reports every unknown field and type error.

use std::fmt;
use std::net::IpAddr;
use std::sync::OnceLock;

use super::ast::{BinOp, Expr, ExprKind, Name, Span, UnOp};
use super::error::KflError;
use super::eval::{
    self, ArOp, CmpOp, Const, Conv, EvalContext, Node, StrOp, Val, build_regex, parse_duration, parse_timestamp,
};
use crate::entry::{Detail, Entry, Protocol, Transport};
use crate::fields::{self, Access, FieldDef, FieldType};
use crate::time::Timestamp;

/// A value's type during checking.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ty {
    Bool,
    Int,
    Float,
    Str,
    Ts,
    Dur,
    List(Box<Ty>),
    Map,
    Null,
    /// The element type of `[]`.
    Any,
    /// After an error: accepted everywhere, so one mistake is reported once.
    Error,
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Bool => f.write_str("bool"),
            Ty::Int => f.write_str("int"),
            Ty::Float => f.write_str("float"),
            Ty::Str => f.write_str("string"),
            Ty::Ts => f.write_str("timestamp"),
            Ty::Dur => f.write_str("duration"),
            Ty::List(t) if **t == Ty::Any => f.write_str("list"),
            Ty::List(t) => write!(f, "list<{t}>"),
            Ty::Map => f.write_str("map<string, string>"),
            Ty::Null => f.write_str("null"),
            Ty::Any => f.write_str("any"),
            Ty::Error => f.write_str("error"),
        }
    }
}

impl Ty {
    fn of(t: FieldType) -> Ty {
        match t {
            FieldType::Bool => Ty::Bool,
            FieldType::Int => Ty::Int,
            FieldType::Float => Ty::Float,
            FieldType::String => Ty::Str,
            FieldType::Timestamp => Ty::Ts,
            FieldType::StringList => Ty::List(Box::new(Ty::Str)),
            FieldType::Map => Ty::Map,
        }
    }

    fn numeric(&self) -> bool {
        matches!(self, Ty::Int | Ty::Float)
    }

    /// "an int", "a string".
    fn article(&self) -> String {
        let s = self.to_string();
        if s.starts_with(['a', 'e', 'i', 'o', 'u']) {
            format!("an {s}")
        } else {
            format!("a {s}")
        }
    }
}

/// Whether values of these types can be tested for equality.
fn eq_compatible(a: &Ty, b: &Ty) -> bool {
    match (a, b) {
        (Ty::Error, _) | (_, Ty::Error) | (Ty::Any, _) | (_, Ty::Any) => true,
        (x, y) if x.numeric() && y.numeric() => true,
        (Ty::List(x), Ty::List(y)) => eq_compatible(x, y),
        (Ty::Map, Ty::Map) => false,
        (x, y) => x == y,
    }
}

/// Whether values of these types can be ordered.
fn ord_compatible(a: &Ty, b: &Ty) -> bool {
    match (a, b) {
        (Ty::Error, _) | (_, Ty::Error) => true,
        (x, y) if x.numeric() && y.numeric() => true,
        (Ty::Str, Ty::Str) | (Ty::Ts, Ty::Ts) | (Ty::Dur, Ty::Dur) | (Ty::Bool, Ty::Bool) => true,
        _ => false,
    }
}

/// The common type of two branches or list items, if any.
fn unify(a: &Ty, b: &Ty) -> Option<Ty> {
    Some(match (a, b) {
        (Ty::Error, x) | (x, Ty::Error) => x.clone(),
        (Ty::Any, x) | (x, Ty::Any) => x.clone(),
        (x, y) if x == y => x.clone(),
        (x, y) if x.numeric() && y.numeric() => Ty::Float,
        (Ty::List(x), Ty::List(y)) => Ty::List(Box::new(unify(x, y)?)),
        _ => return None,
    })
}

/// Global functions, for "did you mean" and error messages.
const FUNCTIONS: &[&str] = &[
    "size",
    "map_get",
    "timestamp",
    "duration",
    "now",
    "matches",
    "int",
    "double",
    "string",
];

/// Methods (`x.name(…)`).
const METHODS: &[&str] = &[
    "startsWith",
    "endsWith",
    "contains",
    "matches",
    "lowerAscii",
    "upperAscii",
    "size",
];

/// CEL macros and functions that are deliberately absent.
const UNSUPPORTED: &[&str] = &["has", "exists", "all", "exists_one", "map", "filter"];

/// An entry for evaluating constant expressions (they never read it).
pub(crate) fn dummy_entry() -> &'static Entry {
    static E: OnceLock<Entry> = OnceLock::new();
    E.get_or_init(|| {
        let a = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
        Entry {
            peers: Default::default(),
            tls: false,
            decrypted: false,
            tls_conn: None,
            id: 0,
            ts: Timestamp(0),
            protocol: Protocol::Http11,
            transport: Transport::Tcp,
            src: a,
            dst: a,
            flow_id: 0,
            elapsed_us: None,
            detail: Detail::Http(Box::default()),
        }
    })
}

pub(crate) struct Checker<'s> {
    src: &'s str,
    pub(crate) errors: Vec<KflError>,
    /// Canonical names of the fields read, in first-use order.
    pub(crate) fields: Vec<&'static str>,
}

/// Where a path resolves: the field, and how many of its segments the field name takes.
pub(crate) fn resolve_path(segs: &[&str]) -> Option<(&'static FieldDef, usize)> {
    (1..=segs.len()).rev().find_map(|k| {
        let name = segs[..k].join(".");
        fields::lookup(&name).map(|f| (f, k))
    })
}

/// The segments of a path expression (`a.b.c`), with the span of each prefix, or `None` when the
/// expression is not only identifiers and members.
pub(crate) fn path_segments(e: &Expr) -> Option<Vec<(&str, Span)>> {
    match &e.kind {
        ExprKind::Ident(n) => Some(vec![(n.as_str(), e.span)]),
        ExprKind::Select(base, m) => {
            let mut v = path_segments(base)?;
            v.push((m.text.as_str(), e.span));
            Some(v)
        }
        _ => None,
    }
}

fn bool_node(b: bool) -> Node {
    Node::Const(Const::Bool(b))
}

/// Every child of a node is a constant (or a list of constants).
fn children_const(n: &Node) -> bool {
    fn c(n: &Node) -> bool {
        match n {
            Node::Const(_) => true,
            Node::List(items) => items.iter().all(c),
            _ => false,
        }
    }
    match n {
        Node::Not(x) | Node::Neg(x) | Node::Conv(_, x) | Node::Matches(x, _) => c(x),
        Node::Cmp(_, a, b)
        | Node::In(a, b)
        | Node::Arith(_, a, b)
        | Node::Index(a, b)
        | Node::StrTest(_, a, b)
        | Node::MatchesDyn(a, b) => c(a) && c(b),
        Node::Cond(a, b, d) => c(a) && c(b) && c(d),
        _ => false,
    }
}

/// A timestamp expression of the form `now() ± durations` or a constant timestamp: (uses now,
/// offset in ns).
pub(crate) fn ts_expr(n: &Node) -> Option<(bool, i64)> {
    match n {
        Node::Now => Some((true, 0)),
        Node::Const(Const::Ts(t)) => Some((false, *t)),
        Node::Arith(ArOp::Add, a, b) => match (&**a, &**b) {
            (x, Node::Const(Const::Dur(d))) | (Node::Const(Const::Dur(d)), x) => {
                let (now, off) = ts_expr(x)?;
                Some((now, off.checked_add(*d)?))
            }
            _ => None,
        },
        Node::Arith(ArOp::Sub, a, b) => match &**b {
            Node::Const(Const::Dur(d)) => {
                let (now, off) = ts_expr(a)?;
                Some((now, off.checked_sub(*d)?))
            }
            _ => None,
        },
        _ => None,
    }
}

impl<'s> Checker<'s> {
    pub(crate) fn new(src: &'s str) -> Self {
        Checker {
            src,
            errors: Vec::new(),
            fields: Vec::new(),
        }
    }

    fn err(&mut self, span: Span, message: impl Into<String>, suggestion: Option<String>) {
        self.errors.push(KflError::at(self.src, span, message, suggestion));
    }

    /// The source text of a span, cut for messages.
    fn text(&self, span: Span) -> String {
        let s = self.src.get(span.start..span.end.min(self.src.len())).unwrap_or("");
        if s.chars().count() > 40 {
            format!("{}…", s.chars().take(39).collect::<String>())
        } else {
            s.to_string()
        }
    }

    /// The whole filter: it must be a condition.
    pub(crate) fn check_filter(&mut self, e: &Expr) -> Node {
        self.want_bool(e, "a filter")
    }

    fn want_bool(&mut self, e: &Expr, what: &str) -> Node {
        let (n, t) = self.check(e);
        match t {
            Ty::Bool | Ty::Error => n,
            other => {
                let text = self.text(e.span);
                let suggestion = match other {
                    Ty::Str => Some(format!("{text} != \"\"")),
                    Ty::Int | Ty::Float => Some(format!("{text} != 0")),
                    Ty::List(_) | Ty::Map => Some(format!("size({text}) > 0")),
                    _ => None,
                };
                self.err(
                    e.span,
                    format!("{what} must be true or false, but `{text}` is {}", other.article()),
                    suggestion,
                );
                bool_node(false)
            }
        }
    }

    /// Folds a node whose children are constants; an expression that always fails is an error.
    fn fold(&mut self, n: Node, span: Span) -> Node {
        if !children_const(&n) {
            return n;
        }
        let cx = EvalContext::new(Timestamp(0));
        let c = match eval::eval(&n, dummy_entry(), &cx) {
            Val::Bool(b) => Const::Bool(b),
            Val::Int(i) => Const::Int(i),
            Val::Float(f) => Const::Float(f),
            Val::Str(s) => Const::Str(s.into()),
            Val::Ts(t) => Const::Ts(t),
            Val::Dur(d) => Const::Dur(d),
            Val::List(_) | Val::Map(_) => return n,
            Val::Err => {
                let text = self.text(span);
                self.err(
                    span,
                    format!("`{text}` always fails (division by zero, overflow, out of range or a missing key)"),
                    None,
                );
                return bool_node(false);
            }
        };
        Node::Const(c)
    }

    pub(crate) fn check(&mut self, e: &Expr) -> (Node, Ty) {
        match &e.kind {
            ExprKind::Null => (bool_node(false), Ty::Null),
            ExprKind::Bool(b) => (bool_node(*b), Ty::Bool),
            ExprKind::Int(u) => match i64::try_from(*u) {
                Ok(i) => (Node::Const(Const::Int(i)), Ty::Int),
                Err(_) => {
                    self.err(
                        e.span,
                        format!("integer literal `{u}` is out of range (at most {})", i64::MAX),
                        None,
                    );
                    (bool_node(false), Ty::Error)
                }
            },
            ExprKind::Float(f) => (Node::Const(Const::Float(*f)), Ty::Float),
            ExprKind::Str(s) => (Node::Const(Const::Str(s.as_str().into())), Ty::Str),
            ExprKind::List(items) => {
                let mut nodes = Vec::with_capacity(items.len());
                let mut ty = Ty::Any;
                for it in items {
                    let (n, t) = self.check(it);
                    match unify(&ty, &t) {
                        Some(u) if t != Ty::Null => ty = u,
                        _ => {
                            self.err(
                                it.span,
                                format!(
                                    "list items must have one type: this one is {}, the ones before are {}",
                                    t.article(),
                                    ty.article()
                                ),
                                None,
                            );
                            ty = Ty::Error;
                        }
                    }
                    nodes.push(n);
                }
                (Node::List(nodes), Ty::List(Box::new(ty)))
            }
            ExprKind::Ident(_) | ExprKind::Select(..) => self.path_or_member(e),
            ExprKind::Index(b, i) => self.index(e, b, i),
            ExprKind::Call { target, name, args } => self.call(e, target.as_deref(), name, args),
            ExprKind::Unary(UnOp::Not, x) => {
                let n = self.want_bool(x, "the operand of `!`");
                (self.fold(Node::Not(Box::new(n)), e.span), Ty::Bool)
            }
            ExprKind::Unary(UnOp::Neg, x) => self.neg(e, x),
            ExprKind::Binary(op, l, r) => self.binary(e, *op, l, r),
            ExprKind::Cond(c, t, f) => {
                let cn = self.want_bool(c, "the condition of `? :`");
                let (tn, tt) = self.check(t);
                let (fn_, ft) = self.check(f);
                let ty = match unify(&tt, &ft) {
                    Some(u) if tt != Ty::Null && ft != Ty::Null => u,
                    _ => {
                        self.err(
                            e.span,
                            format!("the branches of `? :` have different types: {tt} and {ft}"),
                            None,
                        );
                        Ty::Error
                    }
                };
                let n = match cn {
                    Node::Const(Const::Bool(true)) => tn,
                    Node::Const(Const::Bool(false)) => fn_,
                    cn => Node::Cond(Box::new(cn), Box::new(tn), Box::new(fn_)),
                };
                (n, ty)
            }
        }
    }

    fn neg(&mut self, e: &Expr, x: &Expr) -> (Node, Ty) {
        match &x.kind {
            ExprKind::Int(u) => {
                return match 0i64.checked_sub_unsigned(*u) {
                    Some(i) => (Node::Const(Const::Int(i)), Ty::Int),
                    None => {
                        self.err(
                            e.span,
                            format!("integer literal `-{u}` is out of range (at least {})", i64::MIN),
                            None,
                        );
                        (bool_node(false), Ty::Error)
                    }
                };
            }
            ExprKind::Float(f) => return (Node::Const(Const::Float(-f)), Ty::Float),
            _ => {}
        }
        let (n, t) = self.check(x);
        match t {
            Ty::Int | Ty::Float | Ty::Dur | Ty::Error => (self.fold(Node::Neg(Box::new(n)), e.span), t),
            other => {
                let text = self.text(x.span);
                self.err(
                    e.span,
                    format!("`-` needs a number or a duration, but `{text}` is {}", other.article()),
                    None,
                );
                (bool_node(false), Ty::Error)
            }
        }
    }

    /// A path (`src.pod.name`), a flag (`http`), or a member of a computed value.
    fn path_or_member(&mut self, e: &Expr) -> (Node, Ty) {
        let Some(segs) = path_segments(e) else {
            // `(expr).member`: only maps have members.
            let ExprKind::Select(base, m) = &e.kind else {
                return (bool_node(false), Ty::Error);
            };
            let (n, t) = self.check(base);
            return self.member(n, t, base.span, m);
        };
        let names: Vec<&str> = segs.iter().map(|(n, _)| *n).collect();
        if let Some((f, k)) = resolve_path(&names) {
            if !self.fields.contains(&f.name) {
                self.fields.push(f.name);
            }
            let mut node = Node::Field(f);
            let mut ty = Ty::of(f.ty);
            let mut base_span = segs[k - 1].1;
            for (seg, span) in segs.iter().skip(k) {
                let name = Name {
                    text: seg.to_string(),
                    span: Span::new(base_span.end + 1, span.end),
                };
                (node, ty) = self.member(node, ty, base_span, &name);
                base_span = *span;
            }
            return (node, ty);
        }
        if names.len() == 1
            && let Some(flag) = fields::flag(names[0])
        {
            return (Node::Flag(flag), Ty::Bool);
        }
        let path = names.join(".");
        let candidates = fields::all_names().chain(fields::FLAGS.iter().map(|f| f.name));
        let suggestion = fields::closest(&path, candidates).map(str::to_string);
        let hint = match &suggestion {
            Some(s) => format!("; did you mean `{s}`?"),
            None => "; see the KFL reference for the list of fields".to_string(),
        };
        self.err(e.span, format!("unknown field `{path}`{hint}"), suggestion);
        (bool_node(false), Ty::Error)
    }

    /// `base.name` on a computed value: a key of a map.
    fn member(&mut self, n: Node, t: Ty, base_span: Span, m: &Name) -> (Node, Ty) {
        match t {
            Ty::Map => (
                Node::Index(Box::new(n), Box::new(Node::Const(Const::Str(m.text.as_str().into())))),
                Ty::Str,
            ),
            Ty::Error => (bool_node(false), Ty::Error),
            other => {
                let text = self.text(base_span);
                let suggestion = METHODS
                    .iter()
                    .find(|x| x.eq_ignore_ascii_case(&m.text))
                    .map(|x| format!("{x}()"));
                self.err(
                    m.span,
                    format!("`{text}` is {} and has no member `{}`", other.article(), m.text),
                    suggestion,
                );
                (bool_node(false), Ty::Error)
            }
        }
    }

    fn index(&mut self, e: &Expr, b: &Expr, i: &Expr) -> (Node, Ty) {
        let (bn, bt) = self.check(b);
        let (inode, it) = self.check(i);
        match (&bt, &it) {
            (Ty::Error, _) | (_, Ty::Error) => (bool_node(false), Ty::Error),
            (Ty::Map, Ty::Str) => (Node::Index(Box::new(bn), Box::new(inode)), Ty::Str),
            (Ty::List(elem), Ty::Int) => {
                let elem = (**elem).clone();
                (self.fold(Node::Index(Box::new(bn), Box::new(inode)), e.span), elem)
            }
            (Ty::Map, other) => {
                self.err(
                    i.span,
                    format!("map keys are strings, but this is {}", other.article()),
                    None,
                );
                (bool_node(false), Ty::Error)
            }
            (Ty::List(_), other) => {
                self.err(
                    i.span,
                    format!("list indexes are ints, but this is {}", other.article()),
                    None,
                );
                (bool_node(false), Ty::Error)
            }
            (other, _) => {
                let text = self.text(b.span);
                self.err(
                    e.span,
                    format!(
                        "only maps and lists can be indexed, but `{text}` is {}",
                        other.article()
                    ),
                    None,
                );
                (bool_node(false), Ty::Error)
            }
        }
    }

    fn arity(&mut self, e: &Expr, name: &Name, args: &[Expr], n: usize) -> bool {
        if args.len() == n {
            return true;
        }
        let plural = if n == 1 { "argument" } else { "arguments" };
        self.err(
            e.span,
            format!("`{}` takes {n} {plural}, got {}", name.text, args.len()),
            None,
        );
        false
    }

    fn want_str_arg(&mut self, name: &Name, a: &Expr) -> Option<Node> {
        let (n, t) = self.check(a);
        match t {
            Ty::Str => Some(n),
            Ty::Error => None,
            other => {
                let suggestion = match &n {
                    Node::Const(Const::Int(i)) => Some(format!("\"{i}\"")),
                    _ => None,
                };
                self.err(
                    a.span,
                    format!("`{}` needs a string argument, got {}", name.text, other.article()),
                    suggestion,
                );
                None
            }
        }
    }

    fn call(&mut self, e: &Expr, target: Option<&Expr>, name: &Name, args: &[Expr]) -> (Node, Ty) {
        let fail = (bool_node(false), Ty::Error);
        if UNSUPPORTED.contains(&name.text.as_str()) {
            let msg = if name.text == "has" {
                "`has()` is not supported: every field always has a value (its empty default when it does not apply); compare it with null to test presence".to_string()
            } else {
                format!(
                    "the CEL macro `{}` is not supported; use `in`, `size()` or `map_get()`",
                    name.text
                )
            };
            self.err(name.span, msg, None);
            return fail;
        }
        let Some(t) = target else {
            return self.function(e, name, args);
        };
        let (tn, tt) = self.check(t);
        if tt == Ty::Error {
            for a in args {
                self.check(a);
            }
            return fail;
        }
        let text = self.text(t.span);
        match name.text.as_str() {
            "startsWith" | "endsWith" | "contains" => {
                if !self.arity(e, name, args, 1) {
                    return fail;
                }
                if name.text == "contains"
                    && let Ty::List(elem) = &tt
                {
                    let (an, at) = self.check(&args[0]);
                    if !eq_compatible(elem, &at) {
                        self.err(
                            args[0].span,
                            format!("`{text}` holds {elem} items, but this is {}", at.article()),
                            None,
                        );
                        return fail;
                    }
                    return (self.in_node(an, tn, e.span), Ty::Bool);
                }
                if tt != Ty::Str {
                    self.err(
                        t.span,
                        format!(
                            "`{}` needs a string receiver, but `{text}` is {}",
                            name.text,
                            tt.article()
                        ),
                        None,
                    );
                    self.check(&args[0]);
                    return fail;
                }
                let Some(an) = self.want_str_arg(name, &args[0]) else {
                    return fail;
                };
                let op = match name.text.as_str() {
                    "startsWith" => StrOp::StartsWith,
                    "endsWith" => StrOp::EndsWith,
                    _ => StrOp::Contains,
                };
                (self.str_test(op, tn, an, e.span), Ty::Bool)
            }
            "matches" => {
                if !self.arity(e, name, args, 1) {
                    return fail;
                }
                self.matches(e, t, tn, tt, &args[0])
            }
            "lowerAscii" | "upperAscii" | "size" => {
                if !self.arity(e, name, args, 0) {
                    return fail;
                }
                let (conv, ok, ty) = match name.text.as_str() {
                    "lowerAscii" => (Conv::Lower, tt == Ty::Str, Ty::Str),
                    "upperAscii" => (Conv::Upper, tt == Ty::Str, Ty::Str),
                    _ => (Conv::Size, matches!(tt, Ty::Str | Ty::List(_) | Ty::Map), Ty::Int),
                };
                if !ok {
                    self.err(
                        t.span,
                        format!(
                            "`{}` needs a string{}, but `{text}` is {}",
                            name.text,
                            if conv == Conv::Size { ", a list or a map" } else { "" },
                            tt.article()
                        ),
                        None,
                    );
                    return fail;
                }
                (self.fold(Node::Conv(conv, Box::new(tn)), e.span), ty)
            }
            _ => {
                for a in args {
                    self.check(a);
                }
                let suggestion = fields::closest(&name.text, METHODS.iter().copied())
                    .or_else(|| match name.text.to_ascii_lowercase().as_str() {
                        "lower" | "tolower" | "tolowercase" | "lowercase" => Some("lowerAscii"),
                        "upper" | "toupper" | "touppercase" | "uppercase" => Some("upperAscii"),
                        "len" | "length" | "count" => Some("size"),
                        "startswith" | "hasprefix" | "prefix" => Some("startsWith"),
                        "endswith" | "hassuffix" | "suffix" => Some("endsWith"),
                        "includes" | "has" => Some("contains"),
                        "match" | "regex" | "test" => Some("matches"),
                        _ => None,
                    })
                    .map(str::to_string);
                let hint = match &suggestion {
                    Some(s) => format!("; did you mean `{s}`?"),
                    None => format!("; methods are {}", METHODS.join(", ")),
                };
                self.err(name.span, format!("unknown method `{}`{hint}", name.text), suggestion);
                fail
            }
        }
    }

    fn matches(&mut self, e: &Expr, t: &Expr, tn: Node, tt: Ty, pat: &Expr) -> (Node, Ty) {
        let fail = (bool_node(false), Ty::Error);
        if tt != Ty::Str {
            let text = self.text(t.span);
            self.err(
                t.span,
                format!("`matches` needs a string, but `{text}` is {}", tt.article()),
                None,
            );
            self.check(pat);
            return fail;
        }
        let name = Name {
            text: "matches".into(),
            span: e.span,
        };
        let Some(pn) = self.want_str_arg(&name, pat) else {
            return fail;
        };
        match pn {
            Node::Const(Const::Str(p)) => match build_regex(&p) {
                Ok(re) => {
                    let n = match tn {
                        Node::Field(f) => match f.access {
                            Access::Str(get) => Node::StrRegex {
                                f,
                                get,
                                re: Box::new(re),
                            },
                            _ => Node::Matches(Box::new(Node::Field(f)), Box::new(re)),
                        },
                        tn => Node::Matches(Box::new(tn), Box::new(re)),
                    };
                    (self.fold(n, e.span), Ty::Bool)
                }
                Err(err) => {
                    let detail = match &err {
                        regex::Error::CompiledTooBig(_) => "the compiled pattern is too large".to_string(),
                        other => other
                            .to_string()
                            .lines()
                            .filter(|l| l.starts_with("error:"))
                            .map(|l| l.trim_start_matches("error:").trim().to_string())
                            .next()
                            .unwrap_or_else(|| other.to_string()),
                    };
                    self.err(pat.span, format!("invalid regular expression: {detail}"), None);
                    fail
                }
            },
            pn => (
                self.fold(Node::MatchesDyn(Box::new(tn), Box::new(pn)), e.span),
                Ty::Bool,
            ),
        }
    }

    fn function(&mut self, e: &Expr, name: &Name, args: &[Expr]) -> (Node, Ty) {
        let fail = (bool_node(false), Ty::Error);
        match name.text.as_str() {
            "now" => {
                if !self.arity(e, name, args, 0) {
                    return fail;
                }
                (Node::Now, Ty::Ts)
            }
            "size" => {
                if !self.arity(e, name, args, 1) {
                    return fail;
                }
                let (n, t) = self.check(&args[0]);
                match t {
                    Ty::Str | Ty::List(_) | Ty::Map => {
                        (self.fold(Node::Conv(Conv::Size, Box::new(n)), e.span), Ty::Int)
                    }
                    Ty::Error => fail,
                    other => {
                        let text = self.text(args[0].span);
                        self.err(
                            args[0].span,
                            format!(
                                "`size` needs a string, a list or a map, but `{text}` is {}",
                                other.article()
                            ),
                            None,
                        );
                        fail
                    }
                }
            }
            "map_get" => {
                if !self.arity(e, name, args, 3) {
                    return fail;
                }
                let (mn, mt) = self.check(&args[0]);
                let kn = self.want_str_arg(name, &args[1]);
                let dn = self.want_str_arg(name, &args[2]);
                match mt {
                    Ty::Map => {}
                    Ty::Error => return fail,
                    other => {
                        let text = self.text(args[0].span);
                        self.err(
                            args[0].span,
                            format!("`map_get` needs a map first, but `{text}` is {}", other.article()),
                            None,
                        );
                        return fail;
                    }
                }
                match (kn, dn) {
                    (Some(k), Some(d)) => (Node::MapGet(Box::new(mn), Box::new(k), Box::new(d)), Ty::Str),
                    _ => fail,
                }
            }
            "matches" => {
                if !self.arity(e, name, args, 2) {
                    return fail;
                }
                let (tn, tt) = self.check(&args[0]);
                if tt == Ty::Error {
                    self.check(&args[1]);
                    return fail;
                }
                self.matches(e, &args[0], tn, tt, &args[1])
            }
            "timestamp" | "duration" | "int" | "double" | "string" => {
                if !self.arity(e, name, args, 1) {
                    return fail;
                }
                let (n, t) = self.check(&args[0]);
                if t == Ty::Error {
                    return fail;
                }
                let (conv, ok, ty) = match name.text.as_str() {
                    "timestamp" => (Conv::Ts, matches!(t, Ty::Str | Ty::Int | Ty::Ts), Ty::Ts),
                    "duration" => (Conv::Dur, matches!(t, Ty::Str | Ty::Dur), Ty::Dur),
                    "int" => (Conv::Int, matches!(t, Ty::Int | Ty::Float | Ty::Str | Ty::Ts), Ty::Int),
                    "double" => (Conv::Float, matches!(t, Ty::Int | Ty::Float | Ty::Str), Ty::Float),
                    _ => (
                        Conv::Str,
                        matches!(t, Ty::Int | Ty::Float | Ty::Str | Ty::Bool | Ty::Ts | Ty::Dur),
                        Ty::Str,
                    ),
                };
                if !ok {
                    let text = self.text(args[0].span);
                    self.err(
                        args[0].span,
                        format!("`{}` cannot convert `{text}`, which is {}", name.text, t.article()),
                        None,
                    );
                    return fail;
                }
                // Literal timestamps and durations are checked here, not at run time.
                if let Node::Const(Const::Str(s)) = &n {
                    let parsed = match conv {
                        Conv::Ts => Some(parse_timestamp(s).map(Const::Ts)),
                        Conv::Dur => Some(parse_duration(s).map(Const::Dur)),
                        _ => None,
                    };
                    match parsed {
                        Some(Ok(c)) => return (Node::Const(c), ty),
                        Some(Err(msg)) => {
                            self.err(args[0].span, msg, None);
                            return fail;
                        }
                        None => {}
                    }
                }
                (self.fold(Node::Conv(conv, Box::new(n)), e.span), ty)
            }
            other => {
                for a in args {
                    self.check(a);
                }
                if METHODS.contains(&other) {
                    let example = args.first().map(|a| self.text(a.span)).unwrap_or_else(|| "x".into());
                    self.err(
                        name.span,
                        format!("`{other}` is a method: write `{example}.{other}(…)`"),
                        None,
                    );
                    return fail;
                }
                let suggestion = fields::closest(other, FUNCTIONS.iter().chain(METHODS).copied()).map(str::to_string);
                let hint = match &suggestion {
                    Some(s) => format!("; did you mean `{s}`?"),
                    None => format!("; functions are {}", FUNCTIONS.join(", ")),
                };
                self.err(name.span, format!("unknown function `{other}`{hint}"), suggestion);
                fail
            }
        }
    }

    fn str_test(&mut self, op: StrOp, s: Node, arg: Node, span: Span) -> Node {
        match (s, arg) {
            (Node::Field(f), Node::Const(Const::Str(k))) if matches!(f.access, Access::Str(_)) => {
                let Access::Str(get) = f.access else {
                    unreachable!("checked by the guard")
                };
                Node::StrTestK { f, get, op, k }
            }
            (s, arg) => self.fold(Node::StrTest(op, Box::new(s), Box::new(arg)), span),
        }
    }

    fn in_node(&mut self, needle: Node, container: Node, span: Span) -> Node {
        if let (Node::Field(f), Node::List(items)) = (&needle, &container) {
            let f = *f;
            match f.access {
                Access::Str(get) => {
                    let set: Option<Vec<Box<str>>> = items
                        .iter()
                        .map(|i| match i {
                            Node::Const(Const::Str(s)) => Some(s.clone()),
                            _ => None,
                        })
                        .collect();
                    if let Some(set) = set {
                        return Node::StrIn {
                            f,
                            get,
                            set: set.into(),
                        };
                    }
                }
                Access::Int(get) => {
                    let set: Option<Vec<i64>> = items
                        .iter()
                        .map(|i| match i {
                            Node::Const(Const::Int(x)) => Some(*x),
                            _ => None,
                        })
                        .collect();
                    if let Some(set) = set {
                        return Node::IntIn {
                            f,
                            get,
                            set: set.into(),
                        };
                    }
                }
                _ => {}
            }
        }
        self.fold(Node::In(Box::new(needle), Box::new(container)), span)
    }

    /// Turns a string literal compared with a timestamp or a duration into one.
    fn coerce_literal(&mut self, n: Node, t: Ty, other: &Ty, span: Span) -> (Node, Ty) {
        if let Node::Const(Const::Str(s)) = &n {
            let parsed = match other {
                Ty::Ts => Some(parse_timestamp(s).map(Const::Ts)),
                Ty::Dur => Some(parse_duration(s).map(Const::Dur)),
                _ => None,
            };
            match parsed {
                Some(Ok(c)) => return (Node::Const(c), other.clone()),
                Some(Err(msg)) => {
                    self.err(span, msg, None);
                    return (bool_node(false), Ty::Error);
                }
                None => {}
            }
        }
        (n, t)
    }

    fn binary(&mut self, e: &Expr, op: BinOp, l: &Expr, r: &Expr) -> (Node, Ty) {
        match op {
            BinOp::And | BinOp::Or => {
                let what = format!("each side of `{}`", op.symbol());
                let a = self.want_bool(l, &what);
                let b = self.want_bool(r, &what);
                (logic(op == BinOp::And, a, b), Ty::Bool)
            }
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => self.comparison(e, op, l, r),
            BinOp::In => {
                let (nn, nt) = self.check(l);
                let (cn, ct) = self.check(r);
                match (&nt, &ct) {
                    (Ty::Error, _) | (_, Ty::Error) => (bool_node(false), Ty::Error),
                    (x, Ty::List(elem)) if eq_compatible(x, elem) && *x != Ty::Null => {
                        (self.in_node(nn, cn, e.span), Ty::Bool)
                    }
                    (Ty::Str, Ty::Map) => (self.in_node(nn, cn, e.span), Ty::Bool),
                    (x, Ty::List(elem)) => {
                        self.err(l.span, format!("`in` looks for {x} in a list of {elem}"), None);
                        (bool_node(false), Ty::Error)
                    }
                    (x, Ty::Map) => {
                        self.err(
                            l.span,
                            format!("map keys are strings, but this is {}", x.article()),
                            None,
                        );
                        (bool_node(false), Ty::Error)
                    }
                    (_, Ty::Str) => {
                        let (lt, rt) = (self.text(l.span), self.text(r.span));
                        self.err(
                            e.span,
                            "`in` needs a list or a map on its right; to find text in a string use contains()",
                            Some(format!("{rt}.contains({lt})")),
                        );
                        (bool_node(false), Ty::Error)
                    }
                    (_, other) => {
                        let rt = self.text(r.span);
                        self.err(
                            r.span,
                            format!(
                                "`in` needs a list or a map on its right, but `{rt}` is {}",
                                other.article()
                            ),
                            None,
                        );
                        (bool_node(false), Ty::Error)
                    }
                }
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
                let (ln, lt) = self.check(l);
                let (rn, rt) = self.check(r);
                let ty = match (op, &lt, &rt) {
                    (_, Ty::Error, _) | (_, _, Ty::Error) => Some(Ty::Error),
                    (BinOp::Rem, Ty::Int, Ty::Int) => Some(Ty::Int),
                    (BinOp::Rem, _, _) => None,
                    (_, Ty::Int, Ty::Int) => Some(Ty::Int),
                    (_, x, y) if x.numeric() && y.numeric() => Some(Ty::Float),
                    (BinOp::Add, Ty::Str, Ty::Str) => Some(Ty::Str),
                    (BinOp::Add, Ty::Ts, Ty::Dur) | (BinOp::Add, Ty::Dur, Ty::Ts) => Some(Ty::Ts),
                    (BinOp::Sub, Ty::Ts, Ty::Dur) => Some(Ty::Ts),
                    (BinOp::Sub, Ty::Ts, Ty::Ts) => Some(Ty::Dur),
                    (BinOp::Add | BinOp::Sub, Ty::Dur, Ty::Dur) => Some(Ty::Dur),
                    _ => None,
                };
                let Some(ty) = ty else {
                    let hint = if (lt == Ty::Ts || rt == Ty::Ts) && (lt.numeric() || rt.numeric()) {
                        "; add or subtract durations: duration(\"5m\")"
                    } else {
                        ""
                    };
                    self.err(
                        e.span,
                        format!("`{}` cannot combine {lt} and {rt}{hint}", op.symbol()),
                        None,
                    );
                    return (bool_node(false), Ty::Error);
                };
                if ty == Ty::Error {
                    return (bool_node(false), Ty::Error);
                }
                let aop = match op {
                    BinOp::Add => ArOp::Add,
                    BinOp::Sub => ArOp::Sub,
                    BinOp::Mul => ArOp::Mul,
                    BinOp::Div => ArOp::Div,
                    _ => ArOp::Rem,
                };
                (self.fold(Node::Arith(aop, Box::new(ln), Box::new(rn)), e.span), ty)
            }
        }
    }

    fn comparison(&mut self, e: &Expr, op: BinOp, l: &Expr, r: &Expr) -> (Node, Ty) {
        let cop = match op {
            BinOp::Eq => CmpOp::Eq,
            BinOp::Ne => CmpOp::Ne,
            BinOp::Lt => CmpOp::Lt,
            BinOp::Le => CmpOp::Le,
            BinOp::Gt => CmpOp::Gt,
            _ => CmpOp::Ge,
        };
        let (ln, lt) = self.check(l);
        let (rn, rt) = self.check(r);
        if lt == Ty::Error || rt == Ty::Error {
            return (bool_node(false), Ty::Error);
        }
        // `field == null` tests presence.
        if lt == Ty::Null || rt == Ty::Null {
            let eq = matches!(cop, CmpOp::Eq);
            if !matches!(cop, CmpOp::Eq | CmpOp::Ne) {
                self.err(e.span, "null can only be compared with `==` or `!=`", None);
                return (bool_node(false), Ty::Error);
            }
            return match (&ln, &rn, &lt, &rt) {
                (_, _, Ty::Null, Ty::Null) => (bool_node(eq), Ty::Bool),
                (Node::Field(f), _, _, Ty::Null) | (_, Node::Field(f), Ty::Null, _) => {
                    (Node::IsNull { f, present: !eq }, Ty::Bool)
                }
                _ => {
                    let side = if lt == Ty::Null { r } else { l };
                    let text = self.text(side.span);
                    self.err(
                        side.span,
                        format!("only fields can be compared with null, and `{text}` is not a field; test map keys with `\"key\" in map`"),
                        None,
                    );
                    (bool_node(false), Ty::Error)
                }
            };
        }
        let (ln, lt) = self.coerce_literal(ln, lt.clone(), &rt, l.span);
        let (rn, rt) = self.coerce_literal(rn, rt.clone(), &lt, r.span);
        if lt == Ty::Error || rt == Ty::Error {
            return (bool_node(false), Ty::Error);
        }
        let ok = if matches!(cop, CmpOp::Eq | CmpOp::Ne) {
            eq_compatible(&lt, &rt)
        } else {
            ord_compatible(&lt, &rt)
        };
        if !ok {
            // Point at (and offer to rewrite) a literal of the wrong type.
            let fix = |n: &Node, want: &Ty| -> Option<String> {
                match (n, want) {
                    (Node::Const(Const::Str(s)), t) if t.numeric() => {
                        s.trim().parse::<f64>().ok().map(|_| s.trim().to_string())
                    }
                    (Node::Const(Const::Int(i)), Ty::Str) => Some(format!("\"{i}\"")),
                    (Node::Const(Const::Int(i)), Ty::Ts) => Some(format!("timestamp({i})")),
                    (Node::Const(Const::Float(x)), Ty::Str) => Some(format!("\"{x}\"")),
                    (Node::Const(Const::Str(s)), Ty::Bool) if matches!(&**s, "true" | "false") => Some(s.to_string()),
                    _ => None,
                }
            };
            let (span, suggestion) = if let Some(s) = fix(&rn, &lt) {
                (r.span, Some(s))
            } else if let Some(s) = fix(&ln, &rt) {
                (l.span, Some(s))
            } else {
                (e.span, None)
            };
            let (ltext, rtext) = (self.text(l.span), self.text(r.span));
            let hint = if lt == Ty::Int && rt == Ty::Dur || lt == Ty::Dur && rt == Ty::Int {
                " (elapsed_time is in microseconds: compare it with an int)"
            } else if matches!((&lt, &rt), (Ty::List(_), x) | (x, Ty::List(_)) if !matches!(x, Ty::List(_))) {
                " (to test membership write `x in list`)"
            } else {
                ""
            };
            self.err(
                span,
                format!(
                    "`{}` cannot compare `{ltext}` ({lt}) with `{rtext}` ({rt}){hint}",
                    op.symbol()
                ),
                suggestion,
            );
            return (bool_node(false), Ty::Error);
        }
        (self.cmp_node(cop, ln, rn, e.span), Ty::Bool)
    }

    fn cmp_node(&mut self, op: CmpOp, l: Node, r: Node, span: Span) -> Node {
        let (field_left, f, k) = match (&l, &r) {
            (Node::Field(f), Node::Const(k)) => (true, *f, Some(k)),
            (Node::Const(k), Node::Field(f)) => (false, *f, Some(k)),
            (Node::Field(f), _) => (true, *f, None),
            (_, Node::Field(f)) => (false, *f, None),
            _ => return self.fold(Node::Cmp(op, Box::new(l), Box::new(r)), span),
        };
        let fop = if field_left { op } else { op.flip() };
        match (f.access, k) {
            (Access::Int(get), Some(Const::Int(k))) => {
                return Node::IntCmp { f, get, op: fop, k: *k };
            }
            (Access::Str(get), Some(Const::Str(k))) => {
                return Node::StrCmp {
                    f,
                    get,
                    op: fop,
                    k: k.clone(),
                };
            }
            (Access::Ip(get), Some(Const::Str(k))) if matches!(op, CmpOp::Eq | CmpOp::Ne) => {
                if let Ok(ip) = k.parse::<IpAddr>() {
                    return Node::IpEq {
                        f,
                        get,
                        ip,
                        eq: op == CmpOp::Eq,
                    };
                }
            }
            (Access::Timestamp(get), _) => {
                let other = if field_left { &r } else { &l };
                if let Some((now, offset)) = ts_expr(other) {
                    return Node::TsCmp {
                        f,
                        get,
                        op: fop,
                        now,
                        offset,
                    };
                }
            }
            _ => {}
        }
        Node::Cmp(op, Box::new(l), Box::new(r))
    }
}

/// `&&` (`and = true`) or `||` of two conditions, flattened and simplified.
fn logic(and: bool, a: Node, b: Node) -> Node {
    let mut items = Vec::new();
    for n in [a, b] {
        match n {
            Node::And(xs) if and => items.extend(xs),
            Node::Or(xs) if !and => items.extend(xs),
            // `x && true` is `x`; `x || false` is `x`.
            Node::Const(Const::Bool(v)) if v == and => {}
            // `x && false` is `false`; `x || true` is `true`.
            Node::Const(Const::Bool(v)) if v != and => return bool_node(v),
            n => items.push(n),
        }
    }
    // Cheapest first: the result of `&&` and `||` does not depend on the order (CEL).
    items.sort_by_key(Node::cost);
    match items.len() {
        0 => bool_node(and),
        1 => items.pop().unwrap_or_else(|| bool_node(and)),
        _ if and => Node::And(items),
        _ => Node::Or(items),
    }
}
