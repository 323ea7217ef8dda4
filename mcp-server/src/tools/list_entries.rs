//! `list_entries`: entries newest first (or oldest first), paged by cursor, projected by `fields`.

use std::ops::ControlFlow;
use std::sync::Arc;

use capture_core::entry::{Entry, Protocol};
use capture_core::fields::{self, FieldDef};
use capture_core::store::{Key, Order as StoreOrder};
use capture_core::time::Timestamp;
use serde_json::{Map, Value};
use tools_schema::{ListEntriesParams, ListEntriesResult, Order};

use super::work::Work;
use super::{ToolError, err, parse_args};
use crate::convert;
use crate::state::AppState;

pub const DESCRIPTION: &str = "List request/response entries found on the wire, newest first. \
Select with a KFL `filter` (e.g. `http && status >= 500 && dst.port == 8080`; reference: resource \
wirelens://kfl/reference; check with validate_filter), `protocol`, `since`/`until` (RFC 3339 or a duration before the newest capture time such as `5m`), \
and use `fields` (e.g. [\"method\",\"path\",\"status\",\"elapsed_ms\"]) to get compact flat rows. \
Pages hold `limit` entries (default 50, max 1000); pass `next_cursor` back as `cursor` for the next page. \
`total_matched` counts every match; `coverage` says what was captured and dropped, so an empty page is never ambiguous. \
Use an entry's `id` with get_payload to see its headers and bodies.";

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 1000;

/// Cursor: `<d|a>.<timestamp ns>.<id>` of the last entry of the previous page.
pub fn encode_cursor(order: Order, k: Key) -> String {
    format!("{}.{}.{}", if order == Order::Asc { 'a' } else { 'd' }, k.ts.0, k.id)
}

fn decode_cursor(s: &str, order: Order) -> Result<Key, ToolError> {
    let bad = || {
        ToolError(format!(
            "cursor `{s}` is not one this server issued; pass `next_cursor` back exactly as returned"
        ))
    };
    let mut parts = s.split('.');
    let (Some(o), Some(t), Some(i), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let want = if order == Order::Asc { "a" } else { "d" };
    if o != want {
        return err(format!(
            "cursor `{s}` belongs to a listing in the other order; keep `order` the same across pages"
        ));
    }
    Ok(Key {
        ts: Timestamp(t.parse().map_err(|_| bad())?),
        id: i.parse().map_err(|_| bad())?,
    })
}

/// Accepts RFC 3339, or a duration (`30s`, `5m`, `2h`, `1d`, `250ms`) before `newest`.
pub fn parse_time(arg: &str, what: &str, newest: Option<Timestamp>) -> Result<Timestamp, ToolError> {
    let t = arg.trim();
    if let Some(d) = parse_duration_ns(t) {
        let base = newest.unwrap_or_default();
        return Ok(Timestamp(base.0.saturating_sub(d)));
    }
    Timestamp::parse_rfc3339(t).map_err(|e| ToolError(format!("`{what}`: {e}, or a duration such as 5m, 2h")))
}

fn parse_duration_ns(s: &str) -> Option<u64> {
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    let mult = match unit {
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        "d" => 86_400e9,
        _ => return None,
    };
    Some((v * mult) as u64)
}

/// Resolves `fields` against the registry; an unknown name is an error with a suggestion.
pub fn resolve_fields(names: &[String]) -> Result<Vec<(String, &'static FieldDef)>, ToolError> {
    if names.is_empty() {
        return err("`fields` is empty: list at least one field name, or leave it out to get full entries");
    }
    names
        .iter()
        .map(|n| match fields::lookup(n) {
            Some(f) => Ok((n.clone(), f)),
            None => {
                let hint = match fields::suggest(n) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "known fields: {}",
                        fields::FIELDS.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
                    ),
                };
                err(format!("unknown field `{n}` in `fields`; {hint}"))
            }
        })
        .collect()
}

/// Protocol argument: `http` (every HTTP version) or an exact protocol name.
fn parse_protocol(p: &str) -> Result<Vec<Protocol>, ToolError> {
    let p = p.trim().to_ascii_lowercase();
    if p == "http" {
        return Ok(Protocol::ALL.into_iter().filter(|x| x.is_http()).collect());
    }
    match Protocol::from_name(&p) {
        Some(x) => Ok(vec![x]),
        None => err(format!(
            "unknown protocol `{p}`; use one of: http, {}",
            Protocol::ALL.iter().map(|x| x.name()).collect::<Vec<_>>().join(", ")
        )),
    }
}

pub fn run(state: &AppState, args: Map<String, Value>) -> Result<ListEntriesResult, ToolError> {
    run_with(state, args, &Work::none())
}

/// [`run`], with progress reports and cancellation checks during the scan.
pub fn run_with(state: &AppState, args: Map<String, Value>, work: &Work<'_>) -> Result<ListEntriesResult, ToolError> {
    if let Some(hub) = &state.hub {
        return hub.list_entries(args);
    }
    run_keyed(state, args, work).map(|k| k.result)
}

/// A page and the store key (capture time in ns, local id) of each of its entries: what a hub
/// merges the pages of its agents by.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Keyed {
    pub result: ListEntriesResult,
    pub keys: Vec<(u64, u64)>,
}

pub fn run_keyed(state: &AppState, args: Map<String, Value>, work: &Work<'_>) -> Result<Keyed, ToolError> {
    let p: ListEntriesParams = parse_args("list_entries", args)?;
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return err(format!(
            "`limit` must be between 1 and {MAX_LIMIT} (got {limit}); use `cursor` to page further"
        ));
    }
    let order = p.order.unwrap_or_default();
    let store = &state.shared.store;
    let protocols = p.protocol.as_deref().map(parse_protocol).transpose()?;
    let projection = p.fields.as_deref().map(resolve_fields).transpose()?;
    let after = p.cursor.as_deref().map(|c| decode_cursor(c, order)).transpose()?;
    let sel = super::filter::Selection::new(state, p.filter.as_deref(), p.since.as_deref(), p.until.as_deref())?;
    let matches = |e: &Entry| protocols.as_ref().is_none_or(|ps| ps.contains(&e.protocol)) && sel.matches(e);
    let past_cursor = |k: Key| match (after, order) {
        (None, _) => true,
        (Some(c), Order::Asc) => k > c,
        (Some(c), Order::Desc) => k < c,
    };
    let mut total = 0u64;
    let mut page: Vec<Arc<Entry>> = Vec::with_capacity(limit as usize);
    let mut more = false;
    let store_order = if order == Order::Asc {
        StoreOrder::Asc
    } else {
        StoreOrder::Desc
    };
    let in_store = store.len() as u64;
    let mut scanned = 0u64;
    store.scan(store_order, None, &mut |e| {
        scanned += 1;
        if work.tick(scanned, in_store).is_break() {
            return ControlFlow::Break(());
        }
        if matches(e) {
            total += 1;
            if past_cursor(Key::of(e)) {
                if page.len() < limit as usize {
                    page.push(Arc::clone(e));
                } else {
                    more = true;
                }
            }
        }
        ControlFlow::Continue(())
    });
    if work.is_cancelled() {
        return Err(work.stopped_error("list_entries"));
    }
    let next_cursor = if more {
        page.last().map(|e| encode_cursor(order, Key::of(e)))
    } else {
        None
    };
    let entries = page
        .iter()
        .map(|e| match &projection {
            Some(f) => convert::project(e, f),
            None => match serde_json::to_value(convert::summary(e)) {
                Ok(Value::Object(m)) => m,
                _ => Map::new(),
            },
        })
        .collect();
    Ok(Keyed {
        result: ListEntriesResult {
            entries,
            next_cursor,
            total_matched: total,
            coverage: convert::coverage(&state.shared),
        },
        keys: page.iter().map(|e| (e.ts.0, e.id)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store of about 3,000 HTTP/1.1 entries, from the benchmark workload generator.
    fn big_state() -> (tempfile::TempDir, AppState) {
        use capture_core::synth::http_workload::{WorkloadOpts, write_http_workload};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.pcap");
        let f = std::fs::File::create(&path).unwrap();
        let opts = WorkloadOpts {
            target_bytes: 12 << 20,
            ..WorkloadOpts::default()
        };
        write_http_workload(std::io::BufWriter::new(f), &opts).unwrap();
        let args = crate::state::SourceArgs {
            pcaps: vec![path],
            ..Default::default()
        };
        let state = AppState::load(&args).unwrap();
        assert!(
            state.shared.store.len() as u64 > 2 * Work::CHECK_EVERY,
            "{}",
            state.shared.store.len()
        );
        (dir, state)
    }

    #[test]
    fn cancelled_scans_stop_and_progress_is_reported() {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let (_dir, state) = big_state();
        let args = || {
            let Value::Object(m) = serde_json::json!({"filter": "status >= 0", "limit": 5}) else {
                unreachable!()
            };
            m
        };
        let total = run(&state, args()).unwrap().total_matched;
        assert_eq!(total, state.shared.store.len() as u64);

        let cancelled = AtomicBool::new(true);
        let e = run_with(&state, args(), &Work::new(Some(&cancelled), None)).unwrap_err();
        assert!(e.0.contains("cancelled"), "{e}");

        let reports = AtomicU64::new(0);
        let last = AtomicU64::new(0);
        let report = |done: u64, all: u64| {
            assert_eq!(all, total);
            assert!(done >= last.swap(done, Ordering::Relaxed), "progress only grows");
            reports.fetch_add(1, Ordering::Relaxed);
        };
        let not_cancelled = AtomicBool::new(false);
        let work = Work::new(Some(&not_cancelled), Some(&report)).with_interval(std::time::Duration::ZERO);
        assert_eq!(run_with(&state, args(), &work).unwrap().total_matched, total);
        // One report per CHECK_EVERY entries, the first check only starting the clock.
        assert_eq!(reports.load(Ordering::Relaxed), total / Work::CHECK_EVERY - 1);
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let k = Key {
            ts: Timestamp(123),
            id: 9,
        };
        assert_eq!(decode_cursor(&encode_cursor(Order::Desc, k), Order::Desc).unwrap(), k);
        assert!(
            decode_cursor(&encode_cursor(Order::Desc, k), Order::Asc)
                .unwrap_err()
                .0
                .contains("other order")
        );
        assert!(decode_cursor("nope", Order::Desc).is_err());
    }

    #[test]
    fn times() {
        let newest = Some(Timestamp(10 * 60 * 1_000_000_000));
        assert_eq!(
            parse_time("5m", "since", newest).unwrap(),
            Timestamp(5 * 60 * 1_000_000_000)
        );
        assert_eq!(
            parse_time("1970-01-01T00:00:01Z", "since", newest).unwrap(),
            Timestamp(1_000_000_000)
        );
        assert!(parse_time("soon", "since", newest).unwrap_err().0.contains("since"));
    }

    #[test]
    fn fields_errors_suggest() {
        let e = resolve_fields(&["stauts".to_string()]).unwrap_err();
        assert!(e.0.contains("did you mean `status`"), "{e}");
        assert!(resolve_fields(&[]).is_err());
        assert_eq!(resolve_fields(&["src.ip".into()]).unwrap()[0].1.name, "src.ip");
    }
}
