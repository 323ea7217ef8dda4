//! `completion/complete`: values for prompt arguments (by the argument's kind: KFL field names
//! for the word being typed, protocol names, hosts and IPs seen in the capture) and for resource
//! template variables (field names of `wirelens://fields/{name}`, recent ids of
//! `wirelens://entry/{id}`). At most 100 values, with `total` and `hasMore`.

use std::collections::HashMap;
use std::ops::ControlFlow;

use capture_core::store::Order;
use rmcp::ErrorData;
use rmcp::model::{CompleteRequestParams, CompletionInfo, Reference};

use crate::prompts::{self, ArgKind};
use crate::resources;
use crate::state::AppState;

/// Most values in one answer (the MCP limit).
pub const MAX_VALUES: usize = CompletionInfo::MAX_VALUES;
/// Most entries read (newest first) to collect hosts, IPs or ids, so a completion stays cheap on
/// a large store.
pub const SCAN_ENTRIES: usize = 20_000;

/// Answers a `completion/complete` request.
pub fn complete(state: &AppState, req: &CompleteRequestParams) -> Result<CompletionInfo, ErrorData> {
    let arg = &req.argument;
    match &req.r#ref {
        Reference::Prompt(p) => {
            let Some(def) = prompts::find(&p.name) else {
                return Err(ErrorData::invalid_params(format!("unknown prompt `{}`", p.name), None));
            };
            let Some(a) = def.argument(&arg.name) else {
                return Err(ErrorData::invalid_params(
                    format!("prompt `{}` has no argument `{}`", p.name, arg.name),
                    None,
                ));
            };
            Ok(match a.kind {
                ArgKind::Kfl => kfl(&arg.value),
                ArgKind::Protocol => protocols(&arg.value),
                ArgKind::Endpoint => {
                    let given = |k: &str| {
                        req.context
                            .as_ref()
                            .and_then(|c| c.get_argument(k))
                            .map(|v| v.trim().to_string())
                            .filter(|v| !v.is_empty())
                    };
                    let side = match arg.name.as_str() {
                        "server" => given("client").map_or(Side::Any, Side::CalledBy),
                        "client" => given("server").map_or(Side::Any, Side::Calling),
                        _ => Side::Any,
                    };
                    endpoints(state, &arg.value, &side)
                }
                ArgKind::Time | ArgKind::Number => Matches::default().into_info(),
            })
        }
        Reference::Resource(r) => match (r.uri.as_str(), arg.name.as_str()) {
            (resources::FIELD_TEMPLATE, "name") => Ok(field_names(&arg.value)),
            (resources::ENTRY_TEMPLATE, "id") => Ok(entry_ids(state, &arg.value)),
            (resources::FIELD_TEMPLATE | resources::ENTRY_TEMPLATE, other) => Err(ErrorData::invalid_params(
                format!("resource template `{}` has no variable `{other}`", r.uri),
                None,
            )),
            (uri, _) => Err(ErrorData::invalid_params(
                format!(
                    "no resource template `{uri}`; completion is offered for `{}` and `{}`",
                    resources::FIELD_TEMPLATE,
                    resources::ENTRY_TEMPLATE
                ),
                None,
            )),
        },
        _ => Err(ErrorData::invalid_params("unsupported completion reference", None)),
    }
}

/// Matching candidates, in order, and whether the search saw every candidate.
#[derive(Default)]
struct Matches {
    values: Vec<String>,
    /// False when the source was cut (a bounded scan), so `total` is unknown.
    exhaustive: bool,
}

impl Matches {
    fn all(values: Vec<String>) -> Matches {
        Matches {
            values,
            exhaustive: true,
        }
    }

    fn into_info(self) -> CompletionInfo {
        let n = self.values.len();
        let has_more = n > MAX_VALUES || !self.exhaustive;
        let total = self.exhaustive.then(|| u32::try_from(n).unwrap_or(u32::MAX));
        let mut values = self.values;
        values.truncate(MAX_VALUES);
        CompletionInfo::with_pagination(values, total, has_more).expect("at most MAX_VALUES values")
    }
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.is_char_boundary(prefix.len()) && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Protocol names for a `protocol` argument.
fn protocols(prefix: &str) -> CompletionInfo {
    let p = prefix.trim();
    Matches::all(
        prompts::protocol_names()
            .into_iter()
            .filter(|n| starts_with_ignore_case(n, p))
            .map(str::to_string)
            .collect(),
    )
    .into_info()
}

/// Field names and aliases (in registry order, each name before its aliases) starting with
/// `prefix`.
fn field_candidates(prefix: &str) -> Vec<&'static str> {
    let mut seen = std::collections::HashSet::new();
    capture_core::fields::all_names()
        .filter(|n| starts_with_ignore_case(n, prefix) && seen.insert(*n))
        .collect()
}

/// `wirelens://fields/{name}`: field names and aliases.
fn field_names(prefix: &str) -> CompletionInfo {
    Matches::all(
        field_candidates(prefix.trim())
            .into_iter()
            .map(str::to_string)
            .collect(),
    )
    .into_info()
}

/// The string methods offered after `field.` when the field is a string.
const STRING_METHODS: [&str; 7] = [
    "startsWith",
    "endsWith",
    "contains",
    "matches",
    "lowerAscii",
    "upperAscii",
    "size",
];

/// Splits a KFL text at the identifier being typed (letters, digits, `_` and `.` at its end).
/// `None` when the end is inside a string literal or a comment, or the word is a number.
pub fn kfl_word(text: &str) -> Option<(&str, &str)> {
    if inside_string_or_comment(text) {
        return None;
    }
    let start = text
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
        .last()
        .map_or(text.len(), |(i, _)| i);
    let word = &text[start..];
    if word.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    Some((&text[..start], word))
}

/// Whether the end of a KFL text is inside a string literal (plain, raw or triple-quoted) or a
/// `//` comment.
fn inside_string_or_comment(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => match text[i..].find('\n') {
                Some(n) => i += n + 1,
                None => return true,
            },
            q @ (b'"' | b'\'') => {
                let raw = i > 0
                    && matches!(b[i - 1], b'r' | b'R')
                    && (i < 2 || !(b[i - 2].is_ascii_alphanumeric() || b[i - 2] == b'_'));
                let triple = b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q);
                let delim_len = if triple { 3 } else { 1 };
                let mut j = i + delim_len;
                let mut closed = false;
                while j < b.len() {
                    if b[j] == b'\\' && !raw {
                        j += 2;
                        continue;
                    }
                    if b[j] == q && (!triple || (b.get(j + 1) == Some(&q) && b.get(j + 2) == Some(&q))) {
                        closed = true;
                        j += delim_len;
                        break;
                    }
                    j += 1;
                }
                if !closed {
                    return true;
                }
                i = j;
            }
            _ => i += 1,
        }
    }
    false
}

/// A `kfl` argument: the whole value with its last word completed to a protocol flag, a field
/// name or alias, or (after `stringfield.`) a string method.
fn kfl(text: &str) -> CompletionInfo {
    let Some((head, word)) = kfl_word(text) else {
        return Matches::all(Vec::new()).into_info();
    };
    let mut out: Vec<String> = Vec::new();
    for f in capture_core::fields::FLAGS {
        if starts_with_ignore_case(f.name, word) {
            out.push(format!("{head}{}", f.name));
        }
    }
    for n in field_candidates(word) {
        out.push(format!("{head}{n}"));
    }
    if let Some((field, method)) = word.rsplit_once('.')
        && capture_core::fields::lookup(field).is_some_and(|f| f.ty == capture_core::fields::FieldType::String)
    {
        for m in STRING_METHODS {
            if starts_with_ignore_case(m, method) {
                out.push(format!("{head}{field}.{m}"));
            }
        }
    }
    Matches::all(out).into_info()
}

/// Which endpoints an argument wants, given the other side of a `client`/`server` pair when the
/// client has filled it in already (`context.arguments`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Side {
    Any,
    /// Servers this client (an IP) called: their IPs and Host headers.
    CalledBy(String),
    /// Clients that called this server (an IP or a Host prefix): their IPs.
    Calling(String),
}

/// Hosts (Host headers, DNS names asked for) and IPs seen in the capture, most frequent first:
/// those starting with the typed text, then those containing it.
fn endpoints(state: &AppState, typed: &str, side: &Side) -> CompletionInfo {
    let typed = typed.trim().to_ascii_lowercase();
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut add = |v: &str| {
        if !v.is_empty() && v.to_ascii_lowercase().contains(&typed) {
            *counts.entry(v.to_string()).or_default() += 1;
        }
    };
    let server_is = |server: &str, ip: std::net::IpAddr, host: Option<&str>| {
        ip.to_string() == server || host.is_some_and(|h| starts_with_ignore_case(h, server))
    };
    let mut scanned = 0usize;
    let mut cut = false;
    state.shared.store.scan(Order::Desc, None, &mut |e| {
        if scanned == SCAN_ENTRIES {
            cut = true;
            return ControlFlow::Break(());
        }
        scanned += 1;
        match side {
            Side::Any => {
                add(&e.src.ip().to_string());
                add(&e.dst.ip().to_string());
                if let Some(h) = e.http_host() {
                    add(h);
                }
                if let Some(q) = e.dns().and_then(|d| d.qname()) {
                    add(q.trim_end_matches('.'));
                }
            }
            Side::CalledBy(client) if e.src.ip().to_string() == *client => {
                add(&e.dst.ip().to_string());
                if let Some(h) = e.http_host() {
                    add(h);
                }
            }
            Side::Calling(server) if server_is(server, e.dst.ip(), e.http_host()) => add(&e.src.ip().to_string()),
            Side::CalledBy(_) | Side::Calling(_) => {}
        }
        ControlFlow::Continue(())
    });
    for f in state.shared.flows.snapshot() {
        match side {
            Side::Any => {
                add(&f.client.ip().to_string());
                add(&f.server.ip().to_string());
            }
            Side::CalledBy(client) if f.client.ip().to_string() == *client => add(&f.server.ip().to_string()),
            Side::Calling(server) if server_is(server, f.server.ip(), None) => add(&f.client.ip().to_string()),
            Side::CalledBy(_) | Side::Calling(_) => {}
        }
    }
    let mut ranked: Vec<(String, u64)> = counts.into_iter().collect();
    ranked.sort_by(|(a, ca), (b, cb)| {
        let pa = !a.to_ascii_lowercase().starts_with(&typed);
        let pb = !b.to_ascii_lowercase().starts_with(&typed);
        (pa, std::cmp::Reverse(*ca), a).cmp(&(pb, std::cmp::Reverse(*cb), b))
    });
    Matches {
        values: ranked.into_iter().map(|(v, _)| v).collect(),
        exhaustive: !cut,
    }
    .into_info()
}

/// `wirelens://entry/{id}`: ids of the newest entries starting with the typed digits.
fn entry_ids(state: &AppState, typed: &str) -> CompletionInfo {
    let typed = typed.trim();
    let mut values = Vec::new();
    let mut scanned = 0usize;
    let mut cut = false;
    state.shared.store.scan(Order::Desc, None, &mut |e| {
        if scanned == SCAN_ENTRIES {
            cut = true;
            return ControlFlow::Break(());
        }
        scanned += 1;
        let id = e.id.to_string();
        if id.starts_with(typed) {
            values.push(id);
        }
        ControlFlow::Continue(())
    });
    Matches {
        values,
        exhaustive: !cut,
    }
    .into_info()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rmcp::model::{ArgumentInfo, Reference};

    use super::*;

    fn demo() -> Arc<AppState> {
        static DEMO: std::sync::OnceLock<Arc<AppState>> = std::sync::OnceLock::new();
        DEMO.get_or_init(|| {
            Arc::new(
                AppState::load(&crate::state::SourceArgs {
                    demo: true,
                    ..Default::default()
                })
                .unwrap(),
            )
        })
        .clone()
    }

    fn prompt(state: &AppState, prompt: &str, arg: &str, value: &str) -> Result<CompletionInfo, ErrorData> {
        complete(
            state,
            &CompleteRequestParams::new(Reference::for_prompt(prompt), ArgumentInfo::new(arg, value)),
        )
    }

    fn resource(state: &AppState, uri: &str, var: &str, value: &str) -> Result<CompletionInfo, ErrorData> {
        complete(
            state,
            &CompleteRequestParams::new(Reference::for_resource(uri), ArgumentInfo::new(var, value)),
        )
    }

    #[test]
    fn kfl_words() {
        assert_eq!(kfl_word("http && sta"), Some(("http && ", "sta")));
        assert_eq!(kfl_word("src.i"), Some(("", "src.i")));
        assert_eq!(kfl_word("status >= "), Some(("status >= ", "")));
        assert_eq!(kfl_word("status >= 50"), None, "a number");
        assert_eq!(kfl_word("host == 'sta"), None, "inside a string");
        assert_eq!(kfl_word("host == \"a\" && sta"), Some(("host == \"a\" && ", "sta")));
        assert_eq!(
            kfl_word(r#"path.matches(r"\d") && me"#),
            Some((r#"path.matches(r"\d") && "#, "me"))
        );
        assert_eq!(
            kfl_word(r#"path == "a\"b" && me"#),
            Some((r#"path == "a\"b" && "#, "me"))
        );
        assert_eq!(kfl_word("x == '''a'b''' && dn"), Some(("x == '''a'b''' && ", "dn")));
        assert_eq!(kfl_word("http // sta"), None, "inside a comment");
        assert_eq!(kfl_word("http // c\n&& sta"), Some(("http // c\n&& ", "sta")));
    }

    #[test]
    fn kfl_completion_keeps_the_text_and_completes_the_last_word() {
        let c = kfl("http && sta");
        assert_eq!(
            c.values,
            ["http && status", "http && status_code", "http && status_text"],
            "registry order"
        );
        assert_eq!(c.total, Some(3));
        assert_eq!(c.has_more, Some(false));
        let c = kfl("dst.");
        assert!(c.values.contains(&"dst.ip".to_string()) && c.values.contains(&"dst.service.name".to_string()));
        let aliases = kfl("response.st");
        assert!(
            aliases.values.contains(&"response.status".to_string()),
            "{:?}",
            aliases.values
        );
        let flags = kfl("tcp");
        assert_eq!(flags.values[..2], ["tcp".to_string(), "tcp_flow".to_string()]);
        let methods = kfl("path.sta");
        assert_eq!(methods.values, ["path.startsWith"]);
        assert!(kfl("status == 'ab").values.is_empty());
        let all = kfl("");
        assert_eq!(all.values.len(), MAX_VALUES);
        assert_eq!(all.has_more, Some(true));
        assert!(all.total.unwrap() as usize > MAX_VALUES);
    }

    #[test]
    fn protocol_and_field_completion() {
        assert_eq!(protocols("http").values, ["http", "http/1.0", "http/1.1", "http/2"]);
        assert_eq!(protocols("K").values, ["kafka"]);
        assert!(protocols("smtp").values.is_empty());
        let f = field_names("dns_r");
        assert_eq!(
            f.values,
            [
                "dns_rcode",
                "dns_rcode_name",
                "dns_request",
                "dns_response",
                "dns_resolutions"
            ]
        );
        assert!(
            field_names("request.").values.contains(&"request.method".to_string()),
            "aliases"
        );
    }

    #[test]
    fn endpoints_come_from_the_capture() {
        let s = demo();
        let c = prompt(&s, "investigate_errors", "service", "pay").unwrap();
        assert_eq!(c.values[0], "payments.shop.svc.cluster.local:8080", "{:?}", c.values);
        assert!(c.values.iter().all(|v| v.to_ascii_lowercase().contains("pay")));
        assert!(
            c.values.contains(&"payments.shop.svc.cluster.local".to_string()),
            "DNS names too"
        );
        assert_eq!(c.total, Some(c.values.len() as u32));
        let ips = prompt(&s, "debug_connection", "server", "10.42.3.").unwrap();
        assert!(ips.values.contains(&"10.42.3.12".to_string()));
        assert!(
            ips.values.contains(&"10.42.3.27".to_string()),
            "refused servers come from flows"
        );
        let mut dedup = ips.values.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), ips.values.len(), "no repeats");
        let everything = prompt(&s, "network_health", "endpoint", "").unwrap();
        assert!(everything.values.len() <= MAX_VALUES);
        assert!(everything.values.len() > 10);
    }

    #[test]
    fn server_completion_follows_the_client_in_context() {
        let s = demo();
        let with = |k: &str, v: &str| {
            rmcp::model::CompletionContext::with_arguments([(k.to_string(), v.to_string())].into_iter().collect())
        };
        let req = CompleteRequestParams::new(
            Reference::for_prompt("debug_connection"),
            ArgumentInfo::new("server", ""),
        )
        .with_context(with("client", "10.42.2.31"));
        let servers = complete(&s, &req).unwrap().values;
        for want in ["10.42.3.12", "payments.shop.svc.cluster.local:8080", "10.42.2.40"] {
            assert!(servers.contains(&want.to_string()), "{want} missing from {servers:?}");
        }
        assert!(!servers.iter().any(|v| v.starts_with("api-gateway")), "{servers:?}");
        let req = CompleteRequestParams::new(
            Reference::for_prompt("debug_connection"),
            ArgumentInfo::new("client", ""),
        )
        .with_context(with("server", "payments"));
        let clients = complete(&s, &req).unwrap().values;
        assert!(clients.contains(&"10.42.2.31".to_string()), "{clients:?}");
        assert!(!clients.contains(&"10.42.1.17".to_string()), "{clients:?}");
        let refused = CompleteRequestParams::new(
            Reference::for_prompt("debug_connection"),
            ArgumentInfo::new("client", ""),
        )
        .with_context(with("server", "10.42.3.27"));
        assert_eq!(complete(&s, &refused).unwrap().values, ["10.42.1.23"], "from flows");
    }

    #[test]
    fn prompt_kinds_and_errors() {
        let s = demo();
        let c = prompt(&s, "latency_analysis", "filter", "http && dst.por").unwrap();
        assert_eq!(c.values, ["http && dst.port"]);
        assert!(
            prompt(&s, "latency_analysis", "threshold_ms", "5")
                .unwrap()
                .values
                .is_empty()
        );
        let e = prompt(&s, "nope", "x", "").unwrap_err();
        assert_eq!(e.code, rmcp::model::ErrorCode::INVALID_PARAMS);
        let e = prompt(&s, "debug_connection", "colour", "").unwrap_err();
        assert!(e.message.contains("colour"));
    }

    #[test]
    fn resource_templates() {
        let s = demo();
        let f = resource(&s, resources::FIELD_TEMPLATE, "name", "grpc_s").unwrap();
        assert_eq!(f.values, ["grpc_service", "grpc_status"]);
        let ids = resource(&s, resources::ENTRY_TEMPLATE, "id", "3").unwrap();
        assert!(!ids.values.is_empty() && ids.values.iter().all(|v| v.starts_with('3')));
        // Newest first by capture time (ids number entries as they complete: a call that waited
        // on a nested one completes after it).
        let mut by_time = Vec::new();
        s.shared.store.scan(Order::Desc, None, &mut |e| {
            let id = e.id.to_string();
            if id.starts_with('3') {
                by_time.push(id);
            }
            ControlFlow::Continue(())
        });
        assert_eq!(ids.values, by_time[..ids.values.len()], "newest first");
        assert!(resource(&s, resources::ENTRY_TEMPLATE, "name", "").is_err());
        assert!(resource(&s, "wirelens://nope/{x}", "x", "").is_err());
    }

    #[test]
    fn info_limits() {
        let many: Vec<String> = (0..250).map(|i| i.to_string()).collect();
        let i = Matches::all(many).into_info();
        assert_eq!((i.values.len(), i.total, i.has_more), (100, Some(250), Some(true)));
        let cut = Matches {
            values: vec!["a".into()],
            exhaustive: false,
        }
        .into_info();
        assert_eq!((cut.total, cut.has_more), (None, Some(true)));
        let none = Matches::all(Vec::new()).into_info();
        assert_eq!((none.total, none.has_more), (Some(0), Some(false)));
        assert!(i.validate().is_ok());
    }
}
