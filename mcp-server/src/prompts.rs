//! MCP prompts: playbooks kept as Markdown files in `prompts/` (format in `prompts/README.md`),
//! embedded at build time and parsed once. A prompt is a header (name, title, description,
//! arguments) and a body template with `{{name}}` placeholders and `{{#name}}…{{/name}}` /
//! `{{^name}}…{{/name}}` sections; rendering checks every argument against its kind.

use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

use capture_core::entry::Protocol;
use rmcp::ErrorData;
use rmcp::model::{GetPromptResult, JsonObject, Prompt, PromptArgument, PromptMessage, Role};
use serde_json::Value;

/// The prompt files, by file name. A new file in `prompts/` must be added here.
const FILES: &[(&str, &str)] = &[
    ("debug_connection.md", include_str!("../../prompts/debug_connection.md")),
    (
        "investigate_errors.md",
        include_str!("../../prompts/investigate_errors.md"),
    ),
    ("latency_analysis.md", include_str!("../../prompts/latency_analysis.md")),
    ("map_dependencies.md", include_str!("../../prompts/map_dependencies.md")),
    ("network_health.md", include_str!("../../prompts/network_health.md")),
    (
        "verify_deployment.md",
        include_str!("../../prompts/verify_deployment.md"),
    ),
];

/// Longest accepted argument value, in bytes.
const MAX_VALUE_LEN: usize = 1000;

/// What an argument's value is: decides how it is checked, inserted and completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// An IP, IP:port or host name (completes from the capture).
    Endpoint,
    /// An application protocol name, as `list_entries` takes it.
    Protocol,
    /// A KFL filter (completes field names); inserted normalised.
    Kfl,
    /// RFC 3339 or a duration before the end of the capture.
    Time,
    /// A non-negative decimal number.
    Number,
}

impl ArgKind {
    fn parse(s: &str) -> Option<ArgKind> {
        Some(match s {
            "endpoint" => ArgKind::Endpoint,
            "protocol" => ArgKind::Protocol,
            "kfl" => ArgKind::Kfl,
            "time" => ArgKind::Time,
            "number" => ArgKind::Number,
            _ => return None,
        })
    }

    /// A phrase for argument descriptions: what completion offers.
    fn completion_hint(self) -> Option<&'static str> {
        match self {
            ArgKind::Endpoint => Some("Completes hosts and IPs seen in the capture."),
            ArgKind::Protocol => Some("Completes protocol names."),
            ArgKind::Kfl => Some("Completes KFL field names."),
            ArgKind::Time | ArgKind::Number => None,
        }
    }
}

/// The protocol names a `protocol` argument accepts (as `list_entries`' `protocol`).
pub fn protocol_names() -> Vec<&'static str> {
    std::iter::once("http")
        .chain(Protocol::ALL.iter().map(|p| p.name()))
        .collect()
}

/// One declared argument.
#[derive(Debug, Clone)]
pub struct ArgDef {
    pub name: String,
    pub kind: ArgKind,
    pub required: bool,
    /// Used when the argument is missing or empty (optional arguments only).
    pub default: String,
    pub example: String,
    pub description: String,
}

/// A piece of a body template.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    /// `{{name}}`; `json` when it stands inside a double-quoted string of an inline code span.
    Var {
        name: String,
        json: bool,
    },
    /// `{{#name}}…{{/name}}` (`inverted`: `{{^name}}`).
    Section {
        name: String,
        inverted: bool,
        body: Vec<Node>,
    },
}

/// One prompt, parsed.
#[derive(Debug, Clone)]
pub struct PromptDef {
    pub name: String,
    pub title: String,
    pub description: String,
    pub arguments: Vec<ArgDef>,
    body: Vec<Node>,
}

static PROMPTS: LazyLock<Vec<PromptDef>> = LazyLock::new(|| {
    let mut all: Vec<PromptDef> = FILES
        .iter()
        .map(|(file, src)| parse_file(file, src).unwrap_or_else(|e| panic!("prompts/{file}: {e}")))
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
});

/// Every prompt, sorted by name.
pub fn all() -> &'static [PromptDef] {
    &PROMPTS
}

/// A prompt by name.
pub fn find(name: &str) -> Option<&'static PromptDef> {
    PROMPTS.iter().find(|p| p.name == name)
}

impl PromptDef {
    pub fn argument(&self, name: &str) -> Option<&ArgDef> {
        self.arguments.iter().find(|a| a.name == name)
    }

    /// The prompt as `prompts/list` shows it.
    pub fn to_mcp(&self) -> Prompt {
        let args = self
            .arguments
            .iter()
            .map(|a| {
                let mut d = a.description.clone();
                if !a.default.is_empty() {
                    d.push_str(&format!(" Default: `{}`.", a.default));
                }
                d.push_str(&format!(" Example: `{}`.", a.example));
                if let Some(h) = a.kind.completion_hint() {
                    d.push(' ');
                    d.push_str(h);
                }
                PromptArgument::new(&a.name)
                    .with_description(d)
                    .with_required(a.required)
            })
            .collect::<Vec<_>>();
        Prompt::new(&self.name, Some(&self.description), (!args.is_empty()).then_some(args)).with_title(&self.title)
    }

    /// Renders the body with these arguments: defaults applied, every value checked.
    pub fn render(&self, args: &HashMap<String, String>) -> Result<String, String> {
        let mut unknown: Vec<&str> = args
            .keys()
            .filter(|k| self.argument(k).is_none())
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            return Err(format!(
                "prompt `{}` has no argument {}; it takes: {}",
                self.name,
                unknown.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", "),
                self.argument_list()
            ));
        }
        let mut values = HashMap::new();
        for a in &self.arguments {
            let given = args.get(&a.name).map(|v| v.trim()).filter(|v| !v.is_empty());
            let value = match given {
                Some(v) => check_value(a.kind, &a.name, v)?,
                None if a.required => {
                    return Err(format!(
                        "prompt `{}` needs the argument `{}`: {} Example: `{}`",
                        self.name, a.name, a.description, a.example
                    ));
                }
                None if a.default.is_empty() => String::new(),
                None => check_value(a.kind, &a.name, &a.default)?,
            };
            values.insert(a.name.as_str(), value);
        }
        let mut out = String::new();
        render_nodes(&self.body, &values, &mut out);
        Ok(out)
    }

    fn argument_list(&self) -> String {
        if self.arguments.is_empty() {
            return "no arguments".into();
        }
        self.arguments
            .iter()
            .map(|a| format!("`{}`{}", a.name, if a.required { " (required)" } else { "" }))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Every name a placeholder or section of the body refers to.
    fn referenced(&self) -> BTreeSet<String> {
        fn walk(nodes: &[Node], out: &mut BTreeSet<String>) {
            for n in nodes {
                match n {
                    Node::Text(_) => {}
                    Node::Var { name, .. } => {
                        out.insert(name.clone());
                    }
                    Node::Section { name, body, .. } => {
                        out.insert(name.clone());
                        walk(body, out);
                    }
                }
            }
        }
        let mut out = BTreeSet::new();
        walk(&self.body, &mut out);
        out
    }
}

/// `prompts/list`.
pub fn list() -> Vec<Prompt> {
    all().iter().map(PromptDef::to_mcp).collect()
}

/// `prompts/get`: unknown prompts, unknown or missing arguments and bad values are
/// invalid-params errors that name the problem.
pub fn get(name: &str, arguments: Option<&JsonObject>) -> Result<GetPromptResult, ErrorData> {
    let Some(p) = find(name) else {
        return Err(ErrorData::invalid_params(
            format!(
                "unknown prompt `{name}`; available: {}",
                all().iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
            None,
        ));
    };
    let mut args = HashMap::new();
    for (k, v) in arguments.into_iter().flatten() {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => continue,
            _ => {
                return Err(ErrorData::invalid_params(
                    format!("argument `{k}` of prompt `{name}` must be a string"),
                    None,
                ));
            }
        };
        args.insert(k.clone(), s);
    }
    let text = p.render(&args).map_err(|e| ErrorData::invalid_params(e, None))?;
    Ok(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]).with_description(&p.description))
}

/// Checks a value against its kind; returns the text to insert.
pub fn check_value(kind: ArgKind, name: &str, v: &str) -> Result<String, String> {
    if v.len() > MAX_VALUE_LEN {
        return Err(format!("argument `{name}` is longer than {MAX_VALUE_LEN} bytes"));
    }
    if v.chars().any(char::is_control) {
        return Err(format!("argument `{name}` must be one line without control characters"));
    }
    match kind {
        ArgKind::Endpoint => {
            let ok = v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']' | '%'));
            if ok {
                Ok(v.to_string())
            } else {
                Err(format!(
                    "argument `{name}` must be an IP, IP:port or host name (letters, digits and . - _ : [ ] %), got `{v}`"
                ))
            }
        }
        ArgKind::Protocol => {
            let lower = v.to_ascii_lowercase();
            if protocol_names().contains(&lower.as_str()) {
                Ok(lower)
            } else {
                Err(format!(
                    "argument `{name}`: unknown protocol `{v}`; use one of: {}",
                    protocol_names().join(", ")
                ))
            }
        }
        ArgKind::Kfl => match capture_core::kfl::compile(v) {
            Ok(f) => Ok(f.normalized()),
            Err(e) => {
                let first = e.errors().first().map_or_else(String::new, |x| {
                    format!(
                        " (line {}, column {}: {}{})",
                        x.line,
                        x.column,
                        x.message,
                        x.suggestion
                            .as_ref()
                            .filter(|_| !x.message.contains("did you mean"))
                            .map_or_else(String::new, |s| format!("; did you mean `{s}`?"))
                    )
                });
                Err(format!(
                    "argument `{name}` is not a valid KFL filter{first}; check it with validate_filter"
                ))
            }
        },
        ArgKind::Time => {
            let safe = v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '+' | '-'));
            if safe && crate::tools::list_entries::parse_time(v, name, None).is_ok() {
                Ok(v.to_string())
            } else {
                Err(format!(
                    "argument `{name}` must be an RFC 3339 time (2026-01-15T10:00:00Z) or a duration before the end of the capture (30s, 5m, 2h), got `{v}`"
                ))
            }
        }
        ArgKind::Number => {
            let ok = !v.is_empty()
                && v.chars().all(|c| c.is_ascii_digit() || c == '.')
                && v.parse::<f64>().is_ok_and(f64::is_finite);
            if ok {
                Ok(v.to_string())
            } else {
                Err(format!("argument `{name}` must be a non-negative number, got `{v}`"))
            }
        }
    }
}

fn render_nodes(nodes: &[Node], values: &HashMap<&str, String>, out: &mut String) {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Var { name, json } => {
                let v = values.get(name.as_str()).map_or("", String::as_str);
                if *json {
                    let quoted = Value::String(v.to_string()).to_string();
                    out.push_str(&quoted[1..quoted.len() - 1]);
                } else {
                    out.push_str(v);
                }
            }
            Node::Section { name, inverted, body } => {
                let set = values.get(name.as_str()).is_some_and(|v| !v.is_empty());
                if set != *inverted {
                    render_nodes(body, values, out);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing.

fn parse_file(file: &str, src: &str) -> Result<PromptDef, String> {
    let rest = src
        .strip_prefix("---\n")
        .ok_or("the file must start with a `---` line")?;
    let end = rest.find("\n---\n").ok_or("the header must end with a `---` line")?;
    let header = &rest[..end];
    let body_src = &rest[end + "\n---\n".len()..];
    let mut def = parse_header(header)?;
    let stem = file.strip_suffix(".md").unwrap_or(file);
    if def.name != stem {
        return Err(format!("name `{}` differs from the file name `{file}`", def.name));
    }
    def.body = parse_body(body_src)?;
    let declared: BTreeSet<String> = def.arguments.iter().map(|a| a.name.clone()).collect();
    let used = def.referenced();
    if let Some(n) = used.difference(&declared).next() {
        return Err(format!("the body uses `{{{{{n}}}}}` but no argument `{n}` is declared"));
    }
    if let Some(n) = declared.difference(&used).next() {
        return Err(format!("argument `{n}` is declared but the body never uses it"));
    }
    Ok(def)
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[derive(Default)]
struct RawArg {
    line: usize,
    fields: HashMap<String, String>,
}

fn parse_header(header: &str) -> Result<PromptDef, String> {
    let mut top: HashMap<String, String> = HashMap::new();
    let mut raw_args: Vec<RawArg> = Vec::new();
    let mut in_arguments = false;
    for (i, line) in header.lines().enumerate() {
        let lineno = i + 2;
        if line.trim().is_empty() {
            continue;
        }
        let at = |m: String| format!("header line {lineno}: {m}");
        if let Some(item) = line.strip_prefix("  - ") {
            if !in_arguments {
                return Err(at("a list item outside `arguments:`".into()));
            }
            raw_args.push(RawArg {
                line: lineno,
                ..Default::default()
            });
            add_field(raw_args.last_mut().map(|a| &mut a.fields), item).map_err(at)?;
        } else if let Some(cont) = line.strip_prefix("    ") {
            if !in_arguments || raw_args.is_empty() {
                return Err(at("an indented line outside an argument".into()));
            }
            add_field(raw_args.last_mut().map(|a| &mut a.fields), cont).map_err(at)?;
        } else if line.starts_with(' ') {
            return Err(at(
                "indent arguments as `  - name: …` and their keys by four spaces".into()
            ));
        } else {
            let (k, v) = line.split_once(':').ok_or_else(|| at("expected `key: value`".into()))?;
            let k = k.trim();
            in_arguments = k == "arguments";
            if in_arguments {
                if !v.trim().is_empty() {
                    return Err(at("`arguments:` takes its items on the next lines".into()));
                }
                continue;
            }
            if !matches!(k, "name" | "title" | "description") {
                return Err(at(format!("unknown key `{k}`")));
            }
            if top.insert(k.to_string(), unquote(v).to_string()).is_some() {
                return Err(at(format!("`{k}` is given twice")));
            }
        }
    }
    let get = |k: &str| {
        top.get(k)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or(format!("the header needs `{k}`"))
    };
    let name = get("name")?;
    if !is_identifier(&name) {
        return Err(format!("name `{name}` must be a lower-case identifier"));
    }
    let mut arguments: Vec<ArgDef> = Vec::new();
    for raw in raw_args {
        let a = build_arg(&raw).map_err(|m| format!("argument at header line {}: {m}", raw.line))?;
        if arguments.iter().any(|b| b.name == a.name) {
            return Err(format!("argument `{}` is declared twice", a.name));
        }
        arguments.push(a);
    }
    Ok(PromptDef {
        name,
        title: get("title")?,
        description: get("description")?,
        arguments,
        body: Vec::new(),
    })
}

fn add_field(fields: Option<&mut HashMap<String, String>>, kv: &str) -> Result<(), String> {
    let fields = fields.ok_or("an argument key outside an argument")?;
    let (k, v) = kv.split_once(':').ok_or("expected `key: value`")?;
    let k = k.trim();
    if !matches!(k, "name" | "kind" | "required" | "default" | "example" | "description") {
        return Err(format!("unknown argument key `{k}`"));
    }
    if fields.insert(k.to_string(), unquote(v).to_string()).is_some() {
        return Err(format!("`{k}` is given twice"));
    }
    Ok(())
}

fn build_arg(raw: &RawArg) -> Result<ArgDef, String> {
    let f = &raw.fields;
    let need = |k: &str| f.get(k).cloned().ok_or(format!("needs `{k}`"));
    let name = need("name")?;
    if !is_identifier(&name) {
        return Err(format!("name `{name}` must be a lower-case identifier"));
    }
    let kind_s = need("kind")?;
    let kind = ArgKind::parse(&kind_s).ok_or(format!(
        "`{name}`: unknown kind `{kind_s}` (endpoint, protocol, kfl, time, number)"
    ))?;
    let required = match need("required")?.as_str() {
        "true" => true,
        "false" => false,
        other => return Err(format!("`{name}`: `required` must be true or false, not `{other}`")),
    };
    let default = match (required, f.get("default")) {
        (true, Some(_)) => return Err(format!("`{name}` is required and cannot have a default")),
        (true, None) => String::new(),
        (false, Some(d)) => d.clone(),
        (false, None) => return Err(format!("`{name}` is optional and needs a `default` (\"\" for none)")),
    };
    if !default.is_empty() {
        check_value(kind, &name, &default).map_err(|e| format!("default: {e}"))?;
    }
    let example = need("example")?;
    check_value(kind, &name, &example).map_err(|e| format!("example: {e}"))?;
    let description = need("description")?;
    if description.is_empty() {
        return Err(format!("`{name}` needs a description"));
    }
    Ok(ArgDef {
        name,
        kind,
        required,
        default,
        example,
        description,
    })
}

/// A tag of the body: `{{name}}`, `{{#name}}`, `{{^name}}` or `{{/name}}`.
enum Tag<'a> {
    Var(&'a str),
    Open(&'a str, bool),
    Close(&'a str),
}

fn parse_body(src: &str) -> Result<Vec<Node>, String> {
    // Stack of open sections: (name, inverted, nodes collected so far); the bottom is the body.
    let mut stack: Vec<(String, bool, Vec<Node>)> = vec![(String::new(), false, Vec::new())];
    let mut text = String::new();
    let mut scan = Scan::default();
    let mut rest = src;
    while !rest.is_empty() {
        let Some(open) = rest.find("{{") else {
            scan.text(rest, &mut text);
            break;
        };
        scan.text(&rest[..open], &mut text);
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or("a `{{` without its `}}`")?;
        let inner = after[..close].trim();
        rest = &after[close + 2..];
        let tag = if let Some(n) = inner.strip_prefix('#') {
            Tag::Open(n, false)
        } else if let Some(n) = inner.strip_prefix('^') {
            Tag::Open(n, true)
        } else if let Some(n) = inner.strip_prefix('/') {
            Tag::Close(n)
        } else {
            Tag::Var(inner)
        };
        let name = match tag {
            Tag::Var(n) | Tag::Open(n, _) | Tag::Close(n) => n,
        };
        if !is_identifier(name) {
            return Err(format!(
                "`{{{{{inner}}}}}` is not a placeholder (use a lower-case argument name)"
            ));
        }
        flush(&mut text, &mut stack);
        if matches!(tag, Tag::Var(_)) {
            scan.line_has_content = true;
            top(&mut stack).push(Node::Var {
                name: name.to_string(),
                json: scan.in_code && scan.in_string,
            });
            continue;
        }
        // A section tag alone on its line takes the line (its indentation and newline) with it.
        let line_end = rest.find('\n');
        if !scan.line_has_content && rest[..line_end.unwrap_or(rest.len())].trim().is_empty() {
            strip_indentation(top(&mut stack));
            rest = line_end.map_or("", |i| &rest[i + 1..]);
        }
        match tag {
            Tag::Open(n, inverted) => {
                if stack.iter().skip(1).any(|(s, _, _)| s == n) {
                    return Err(format!("section `{n}` is opened inside itself"));
                }
                stack.push((n.to_string(), inverted, Vec::new()));
            }
            Tag::Close(n) => {
                if stack.len() == 1 || stack.last().is_some_and(|(s, _, _)| s != n) {
                    return Err(format!("`{{{{/{n}}}}}` closes a section that is not open"));
                }
                let (name, inverted, body) = stack.pop().expect("checked above");
                top(&mut stack).push(Node::Section { name, inverted, body });
            }
            Tag::Var(_) => unreachable!("handled above"),
        }
    }
    flush(&mut text, &mut stack);
    if stack.len() > 1 {
        return Err(format!("section `{}` is never closed", stack[stack.len() - 1].0));
    }
    Ok(stack.pop().expect("the body is at the bottom").2)
}

fn top(stack: &mut [(String, bool, Vec<Node>)]) -> &mut Vec<Node> {
    &mut stack.last_mut().expect("the body is at the bottom").2
}

fn flush(text: &mut String, stack: &mut [(String, bool, Vec<Node>)]) {
    if !text.is_empty() {
        top(stack).push(Node::Text(std::mem::take(text)));
    }
}

/// Drops the blanks before a standalone section tag (they follow the last newline).
fn strip_indentation(nodes: &mut Vec<Node>) {
    if let Some(Node::Text(t)) = nodes.last_mut() {
        let keep = t.rfind('\n').map_or(0, |i| i + 1);
        if t[keep..].trim().is_empty() {
            t.truncate(keep);
        }
        if t.is_empty() {
            nodes.pop();
        }
    }
}

/// Where the scan of a body stands: inside an inline code span, inside a double-quoted string of
/// one (placeholders there are inserted JSON-escaped), and whether the line has content yet.
#[derive(Default)]
struct Scan {
    in_code: bool,
    in_string: bool,
    line_has_content: bool,
}

impl Scan {
    /// Appends literal text, tracking the state above. Spans and strings do not cross lines.
    fn text(&mut self, s: &str, text: &mut String) {
        let mut prev = '\0';
        for c in s.chars() {
            match c {
                '\n' => {
                    self.in_code = false;
                    self.in_string = false;
                    self.line_has_content = false;
                }
                '`' if !self.in_string => self.in_code = !self.in_code,
                '"' if self.in_code && prev != '\\' => self.in_string = !self.in_string,
                _ => {}
            }
            if !c.is_whitespace() {
                self.line_has_content = true;
            }
            prev = c;
            text.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUIRED: [&str; 6] = [
        "debug_connection",
        "investigate_errors",
        "latency_analysis",
        "map_dependencies",
        "network_health",
        "verify_deployment",
    ];

    fn examples(p: &PromptDef) -> HashMap<String, String> {
        p.arguments
            .iter()
            .map(|a| (a.name.clone(), a.example.clone()))
            .collect()
    }

    fn required_only(p: &PromptDef) -> HashMap<String, String> {
        p.arguments
            .iter()
            .filter(|a| a.required)
            .map(|a| (a.name.clone(), a.example.clone()))
            .collect()
    }

    #[test]
    fn every_file_parses_and_the_six_are_there() {
        for (file, src) in FILES {
            let p = parse_file(file, src).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(!p.title.is_empty() && p.description.len() > 40, "{file}");
            assert!(!p.arguments.is_empty(), "{file}");
            let lines = src.lines().count();
            assert!(lines <= 75, "{file} has {lines} lines; keep playbooks short");
        }
        let names: Vec<&str> = all().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, REQUIRED, "listed sorted by name");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../prompts");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".md") && n != "README.md")
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = FILES.iter().map(|(f, _)| *f).collect();
        assert_eq!(on_disk, embedded, "every file in prompts/ is embedded");
    }

    #[test]
    fn placeholders_match_arguments_both_ways() {
        for p in all() {
            let declared: BTreeSet<String> = p.arguments.iter().map(|a| a.name.clone()).collect();
            assert_eq!(p.referenced(), declared, "{}", p.name);
        }
        let undeclared = "---\nname: x\ntitle: X\ndescription: d\narguments:\n  - name: a\n    kind: number\n    \
                          required: true\n    example: 1\n    description: d\n---\n{{a}} {{b}}\n";
        assert!(parse_file("x.md", undeclared).unwrap_err().contains("`b`"));
        let unused = "---\nname: x\ntitle: X\ndescription: d\narguments:\n  - name: a\n    kind: number\n    \
                      required: true\n    example: 1\n    description: d\n---\nno placeholder\n";
        assert!(parse_file("x.md", unused).unwrap_err().contains("never uses"));
    }

    #[test]
    fn header_errors_are_reported() {
        let base =
            |args: &str, body: &str| format!("---\nname: x\ntitle: X\ndescription: d\narguments:\n{args}---\n{body}");
        let arg = "  - name: a\n    kind: number\n    required: false\n    default: \"\"\n    example: 1\n    description: d\n";
        assert!(parse_file("x.md", &base(arg, "{{a}}\n")).is_ok());
        assert!(
            parse_file("y.md", &base(arg, "{{a}}\n"))
                .unwrap_err()
                .contains("file name")
        );
        let no_default = arg.replace("    default: \"\"\n", "");
        assert!(
            parse_file("x.md", &base(&no_default, "{{a}}\n"))
                .unwrap_err()
                .contains("default")
        );
        let bad_kind = arg.replace("number", "colour");
        assert!(
            parse_file("x.md", &base(&bad_kind, "{{a}}\n"))
                .unwrap_err()
                .contains("kind")
        );
        let bad_example = arg.replace("example: 1", "example: many");
        assert!(
            parse_file("x.md", &base(&bad_example, "{{a}}\n"))
                .unwrap_err()
                .contains("example")
        );
        assert!(
            parse_file("x.md", &base(arg, "{{#a}}open\n"))
                .unwrap_err()
                .contains("never closed")
        );
        assert!(
            parse_file("x.md", &base(arg, "{{a}}{{/a}}\n"))
                .unwrap_err()
                .contains("not open")
        );
        assert!(
            parse_file("x.md", &base(arg, "{{A}}\n"))
                .unwrap_err()
                .contains("placeholder")
        );
        assert!(parse_file("x.md", "name: x\n").is_err());
    }

    #[test]
    fn sections_and_standalone_lines() {
        let src = "---\nname: x\ntitle: X\ndescription: d\narguments:\n  - name: a\n    kind: endpoint\n    \
                   required: false\n    default: \"\"\n    example: h\n    description: d\n---\nstart{{#a}} to {{a}}{{/a}}.\n\
                   {{#a}}\nonly with {{a}}\n{{/a}}\n{{^a}}\nwithout\n{{/a}}\nend\n";
        let p = parse_file("x.md", src).unwrap();
        let with: HashMap<String, String> = [("a".to_string(), "web".to_string())].into();
        assert_eq!(p.render(&with).unwrap(), "start to web.\nonly with web\nend\n");
        assert_eq!(p.render(&HashMap::new()).unwrap(), "start.\nwithout\nend\n");
    }

    #[test]
    fn placeholders_in_json_strings_are_escaped() {
        let src = "---\nname: x\ntitle: X\ndescription: d\narguments:\n  - name: f\n    kind: kfl\n    \
                   required: true\n    example: http\n    description: d\n---\nprose `{{f}}` and `list_entries {\"filter\": \"{{f}}\"}`\n";
        let p = parse_file("x.md", src).unwrap();
        let args: HashMap<String, String> = [("f".to_string(), r#"host == "a""#.to_string())].into();
        let out = p.render(&args).unwrap();
        assert!(out.contains(r#"prose `host == "a"`"#), "{out}");
        assert!(out.contains(r#"{"filter": "host == \"a\""}"#), "{out}");
    }

    #[test]
    fn rendering_checks_arguments() {
        let p = find("debug_connection").unwrap();
        let err = p.render(&HashMap::new()).unwrap_err();
        assert!(err.contains("`client`"), "{err}");
        let mut args = examples(p);
        args.insert("colour".into(), "red".into());
        let err = p.render(&args).unwrap_err();
        assert!(
            err.contains("no argument `colour`") && err.contains("`server` (required)"),
            "{err}"
        );
        let mut args = examples(p);
        args.insert("server".into(), "x' || true || '".into());
        assert!(p.render(&args).unwrap_err().contains("`server`"));
        let mut args = examples(p);
        args.insert("client".into(), "  ".into());
        assert!(p.render(&args).unwrap_err().contains("needs the argument `client`"));

        let l = find("latency_analysis").unwrap();
        let out = l.render(&HashMap::new()).unwrap();
        assert!(out.contains("elapsed_ms > 500 &&"), "default applied: {out}");
        let bad: HashMap<String, String> = [("filter".to_string(), "stauts >= 500".to_string())].into();
        let err = l.render(&bad).unwrap_err();
        assert!(err.contains("`filter`") && err.contains("status"), "{err}");
        let bad: HashMap<String, String> = [("threshold_ms".to_string(), "-5".to_string())].into();
        assert!(l.render(&bad).unwrap_err().contains("`threshold_ms`"));
        let v = find("verify_deployment").unwrap();
        let bad: HashMap<String, String> = [("deployed_at".to_string(), "yesterday".to_string())].into();
        assert!(v.render(&bad).unwrap_err().contains("`deployed_at`"));
        assert_eq!(check_value(ArgKind::Protocol, "p", "HTTP/2").unwrap(), "http/2");
        assert!(
            check_value(ArgKind::Protocol, "p", "smtp")
                .unwrap_err()
                .contains("kafka")
        );
    }

    #[test]
    fn mcp_shapes() {
        let list = list();
        assert_eq!(list.len(), 6);
        let dc = list.iter().find(|p| p.name == "debug_connection").unwrap();
        let args = dc.arguments.as_ref().unwrap();
        assert_eq!(args[0].name, "client");
        assert_eq!(args[0].required, Some(true));
        assert!(args[0].description.as_ref().unwrap().contains("Completes hosts"));
        let r = get("network_health", None).unwrap();
        assert_eq!(r.messages.len(), 1);
        let err = get("nope", None).unwrap_err();
        assert_eq!(err.code, rmcp::model::ErrorCode::INVALID_PARAMS);
        assert!(err.message.contains("investigate_errors"));
    }

    /// Every `tool {json}` span of a rendered body: (tool, arguments).
    fn tool_calls(text: &str) -> Vec<(String, String)> {
        const TOOLS: [&str; 10] = [
            "api_stats",
            "service_map",
            "list_workloads",
            "list_entries",
            "get_payload",
            "capture_status",
            "tcp_insights",
            "list_flows",
            "flow_summary",
            "validate_filter",
        ];
        code_spans(text)
            .into_iter()
            .filter_map(|span| {
                let (tool, json) = span.split_once(' ')?;
                (TOOLS.contains(&tool) && json.starts_with('{')).then(|| (tool.to_string(), json.to_string()))
            })
            .collect()
    }

    fn code_spans(text: &str) -> Vec<String> {
        text.split('`').skip(1).step_by(2).map(str::to_string).collect()
    }

    fn renderings(p: &PromptDef) -> Vec<String> {
        vec![p.render(&examples(p)).unwrap(), p.render(&required_only(p)).unwrap()]
    }

    /// Every tool call in every prompt, rendered with and without the optional arguments, names
    /// a tool, takes its arguments, and its filter is valid KFL; every other code span that
    /// looks like a filter is valid KFL too.
    #[test]
    fn every_tool_call_and_filter_in_the_bodies_is_valid() {
        let mut calls = 0;
        for p in all() {
            for text in renderings(p) {
                assert!(!text.contains("{{") && !text.contains("}}}"), "{}: {text}", p.name);
                for (tool, json) in tool_calls(&text) {
                    calls += 1;
                    let v: Value = serde_json::from_str(&json)
                        .unwrap_or_else(|e| panic!("{}: `{tool} {json}` is not JSON: {e}", p.name));
                    let ok = match tool.as_str() {
                        "list_entries" => serde_json::from_value::<tools_schema::ListEntriesParams>(v.clone()).is_ok(),
                        "get_payload" => serde_json::from_value::<tools_schema::GetPayloadParams>(v.clone()).is_ok(),
                        "capture_status" => {
                            serde_json::from_value::<tools_schema::CaptureStatusParams>(v.clone()).is_ok()
                        }
                        "tcp_insights" => serde_json::from_value::<tools_schema::TcpInsightsParams>(v.clone()).is_ok(),
                        "list_flows" => serde_json::from_value::<tools_schema::ListFlowsParams>(v.clone()).is_ok(),
                        "flow_summary" => serde_json::from_value::<tools_schema::FlowSummaryParams>(v.clone()).is_ok(),
                        "api_stats" => serde_json::from_value::<tools_schema::ApiStatsParams>(v.clone()).is_ok(),
                        "service_map" => serde_json::from_value::<tools_schema::ServiceMapParams>(v.clone()).is_ok(),
                        "list_workloads" => {
                            serde_json::from_value::<tools_schema::ListWorkloadsParams>(v.clone()).is_ok()
                        }
                        _ => serde_json::from_value::<tools_schema::ValidateFilterParams>(v.clone()).is_ok(),
                    };
                    assert!(ok, "{}: `{tool} {json}` does not fit the tool's arguments", p.name);
                    if let Some(f) = v.get("filter").and_then(Value::as_str)
                        && let Err(e) = capture_core::kfl::compile(f)
                    {
                        panic!("{}: filter `{f}` is invalid: {:?}", p.name, e.errors());
                    }
                }
                for span in code_spans(&text) {
                    let looks_like_kfl = ["==", "!=", ">=", "<=", "&&", "||", " > ", " < ", ".startsWith("]
                        .iter()
                        .any(|op| span.contains(op));
                    if looks_like_kfl
                        && tool_calls(&format!("`{span}`")).is_empty()
                        && let Err(e) = capture_core::kfl::compile(&span)
                    {
                        panic!(
                            "{}: code span `{span}` looks like KFL but is invalid: {:?}",
                            p.name,
                            e.errors()
                        );
                    }
                }
            }
        }
        assert!(calls >= 30, "only {calls} tool calls found");
    }

    /// The calls run against the demo capture without a tool error (placeholders the agent fills
    /// in, in angle brackets, excepted).
    #[test]
    fn every_tool_call_runs_on_the_demo() {
        let state = crate::state::AppState::load(&crate::state::SourceArgs {
            demo: true,
            ..Default::default()
        })
        .unwrap();
        for p in all() {
            for text in renderings(p) {
                for (tool, json) in tool_calls(&text) {
                    if json.contains("\"<") {
                        continue;
                    }
                    let args: JsonObject = serde_json::from_str(&json).unwrap();
                    if let Err(e) = crate::tools::call(&state, &tool, args) {
                        panic!("{}: `{tool} {json}` failed: {e:?}", p.name);
                    }
                }
            }
        }
    }
}
