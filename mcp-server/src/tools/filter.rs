//! KFL filters in the tools: compiling a `filter` argument into a tool error that points at the
//! problem, and `validate_filter`.

use capture_core::kfl::{self, EvalContext, Filter, KflErrors};
use capture_core::time::Timestamp;
use serde_json::{Map, Value};
use tools_schema::{FilterError, ValidateFilterParams, ValidateFilterResult};

use super::{ToolError, parse_args};
use crate::state::AppState;

pub const DESCRIPTION: &str = "Check a KFL filter without running it: whether it is valid, its normalised form, the \
fields it reads, and for each problem the line and column, an excerpt with a caret and the likely fix (\"did you \
mean `status_code`?\"). The language reference is the resource wirelens://kfl/reference.";

fn describe(e: &KflErrors) -> String {
    let mut out = String::from("invalid filter:");
    for err in e.errors() {
        out.push_str(&format!(
            "\n  line {}, column {}: {}\n{}",
            err.line,
            err.column,
            err.message,
            indent(&err.excerpt)
        ));
        if let Some(s) = err
            .suggestion
            .as_ref()
            .filter(|_| !err.message.contains("did you mean"))
        {
            out.push_str(&format!("\n  did you mean `{s}`?"));
        }
    }
    out.push_str("\nSee the resource wirelens://kfl/reference for fields and syntax.");
    out
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

/// Compiles a `filter` argument; an invalid one is a tool error naming line, column and fix.
pub fn compile(src: &str) -> Result<Filter, ToolError> {
    kfl::compile(src).map_err(|e| ToolError(describe(&e)))
}

/// `now()` is the newest capture time for file and demo sources (so `timestamp > now() -
/// duration("5m")` means "the last five minutes of the capture").
pub fn eval_context(state: &AppState) -> EvalContext {
    let newest = state.shared.stats.lock().last_ts;
    EvalContext::new(newest.unwrap_or(Timestamp(0)))
}

/// Which entries a tool looks at: a KFL filter and a time window, with the filter's cheap
/// pre-checks (the protocols it can match, its time range) applied first.
pub struct Selection {
    filter: Option<Filter>,
    cx: EvalContext,
    protocols: Option<Vec<capture_core::entry::Protocol>>,
    time: Option<kfl::TimeBounds>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    /// Answering a hub: only the entries this agent reports (see [`crate::cluster::scope`]).
    scope: Option<std::sync::Arc<crate::cluster::scope::Scope>>,
}

/// Whether the agent answering a hub on this thread reports this entry (always outside a hub).
pub fn in_scope(scope: Option<&crate::cluster::scope::Scope>, e: &capture_core::entry::Entry) -> bool {
    scope.is_none_or(|s| s.owns(e.ts, (e.src.ip(), &e.peers.src), (e.dst.ip(), &e.peers.dst)))
}

impl Selection {
    /// From the `filter`, `since` and `until` arguments (`since`/`until`: RFC 3339 or a
    /// duration before the newest entry).
    pub fn new(
        state: &AppState,
        filter: Option<&str>,
        since: Option<&str>,
        until: Option<&str>,
    ) -> Result<Selection, ToolError> {
        let newest = state.shared.store.stats().newest;
        let since = since
            .map(|s| super::list_entries::parse_time(s, "since", newest))
            .transpose()?;
        let until = until
            .map(|s| super::list_entries::parse_time(s, "until", newest))
            .transpose()?;
        Selection::with_times(state, filter, since, until)
    }

    /// From a `filter` argument and a time window already parsed (`until` exclusive).
    pub fn with_times(
        state: &AppState,
        filter: Option<&str>,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> Result<Selection, ToolError> {
        let filter = filter.filter(|f| !f.trim().is_empty()).map(compile).transpose()?;
        let cx = eval_context(state);
        Ok(Selection {
            protocols: filter.as_ref().and_then(|f| f.protocols()),
            time: filter.as_ref().map(|f| f.time_bounds(&cx)),
            filter,
            cx,
            since,
            until,
            scope: crate::cluster::scope::current(),
        })
    }

    pub fn has_filter(&self) -> bool {
        self.filter.is_some()
    }

    /// Whether `e` (an entry, or a flow as a transient entry) is selected.
    pub fn matches(&self, e: &capture_core::entry::Entry) -> bool {
        self.protocols.as_ref().is_none_or(|ps| ps.contains(&e.protocol))
            && self.since.is_none_or(|s| e.ts >= s)
            && self.until.is_none_or(|u| e.ts < u)
            && self.time.as_ref().is_none_or(|t| t.contains(e.ts))
            && self.filter.as_ref().is_none_or(|f| f.matches(e, &self.cx))
            && in_scope(self.scope.as_deref(), e)
    }

    /// Whether a flow's span overlaps the window (flows are not filtered by the KFL filter).
    pub fn overlaps(&self, first: Timestamp, last: Timestamp) -> bool {
        self.since.is_none_or(|s| last >= s) && self.until.is_none_or(|u| first < u)
    }
}

pub fn run_validate(_state: &AppState, args: Map<String, Value>) -> Result<ValidateFilterResult, ToolError> {
    let p: ValidateFilterParams = parse_args("validate_filter", args)?;
    Ok(match kfl::compile(&p.filter) {
        Ok(f) => ValidateFilterResult {
            valid: true,
            normalized: Some(f.normalized()),
            fields: f.fields_used(),
            errors: Vec::new(),
        },
        Err(e) => ValidateFilterResult {
            valid: false,
            normalized: None,
            fields: Vec::new(),
            errors: e
                .errors()
                .iter()
                .map(|x| FilterError {
                    message: x.message.clone(),
                    line: x.line,
                    column: x.column,
                    excerpt: x.excerpt.clone(),
                    suggestion: x.suggestion.clone(),
                })
                .collect(),
        },
    })
}

/// Keeps the flows a filter selects (all of them without a filter).
pub fn select_flows(
    state: &AppState,
    flows: Vec<std::sync::Arc<capture_core::flows::FlowRecord>>,
    filter: Option<&str>,
) -> Result<Vec<std::sync::Arc<capture_core::flows::FlowRecord>>, ToolError> {
    let scope = crate::cluster::scope::current();
    let flows = match scope.as_deref() {
        None => flows,
        Some(s) => flows
            .into_iter()
            .filter(|r| {
                s.owns(
                    r.first_seen,
                    (r.client.ip(), &r.peers.src),
                    (r.server.ip(), &r.peers.dst),
                )
            })
            .collect(),
    };
    let Some(src) = filter.filter(|f| !f.trim().is_empty()) else {
        return Ok(flows);
    };
    let f = compile(src)?;
    let cx = eval_context(state);
    Ok(flows.into_iter().filter(|r| f.matches(&r.as_entry(), &cx)).collect())
}
