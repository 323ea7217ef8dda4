//! `watch_entries`: long-poll for entries stored after a cursor — how an agent follows traffic
//! as it happens. The cursor is the id of the last entry seen (ids grow with every insert, even
//! when an entry's own time is earlier than one already stored, so nothing is skipped).

use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tools_schema::{WatchEntriesParams, WatchEntriesResult};

use super::filter::Selection;
use super::work::Work;
use super::{ToolError, err, parse_args};
use crate::convert;
use crate::state::AppState;

pub const DESCRIPTION: &str = "Wait for new entries: returns the entries stored after `cursor` that match `filter` \
(KFL), waiting up to `timeout_ms` (max 30 s) for the first one, with a `next_cursor` to call again. Without a cursor \
only entries stored after the call starts count. Use it to follow traffic as it happens (\"tell me when checkout \
returns a 5xx\"); with capture files as the only source nothing new arrives and the call times out.";

const DEFAULT_TIMEOUT_MS: u32 = 10_000;
const MAX_TIMEOUT_MS: u32 = 30_000;
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 1000;
/// How often a wait checks for cancellation.
const SLICE: Duration = Duration::from_millis(100);

fn decode_cursor(c: &str) -> Result<u64, ToolError> {
    c.strip_prefix('w').and_then(|n| n.parse().ok()).ok_or_else(|| {
        ToolError(format!(
            "cursor `{c}` is not one watch_entries issued; pass `next_cursor` back unchanged, or omit it to start now"
        ))
    })
}

pub fn run(state: &AppState, args: Map<String, Value>) -> Result<WatchEntriesResult, ToolError> {
    run_with(state, args, &Work::none())
}

pub fn run_with(state: &AppState, args: Map<String, Value>, work: &Work<'_>) -> Result<WatchEntriesResult, ToolError> {
    if let Some(hub) = &state.hub {
        return hub.watch_entries(args);
    }
    let p: WatchEntriesParams = parse_args("watch_entries", args)?;
    let timeout_ms = p.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if timeout_ms > MAX_TIMEOUT_MS {
        return err(format!(
            "`timeout_ms` must be at most {MAX_TIMEOUT_MS} (got {timeout_ms})"
        ));
    }
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return err(format!("`limit` must be between 1 and {MAX_LIMIT} (got {limit})"));
    }
    let projection = p
        .fields
        .as_deref()
        .map(super::list_entries::resolve_fields)
        .transpose()?;
    let sel = Selection::new(state, p.filter.as_deref(), None, None)?;
    let store = &state.shared.store;
    let mut after = match p.cursor.as_deref() {
        Some(c) => decode_cursor(c)?,
        None => store.last_id(),
    };
    let start = Instant::now();
    let deadline = start + Duration::from_millis(u64::from(timeout_ms));
    loop {
        // Read before looking: every id up to `seen` is examined by the search below, so the
        // cursor can skip past those that did not match.
        let seen = store.last_id();
        let (found, more) = store.newer_than(after, limit as usize, &mut |e| sel.matches(e));
        if !found.is_empty() || Instant::now() >= deadline || work.is_cancelled() {
            if work.is_cancelled() {
                return Err(work.stopped_error("watch_entries"));
            }
            let next = match (found.last(), more) {
                (Some(last), true) => last.id,
                (last, false) => seen.max(after).max(last.map_or(0, |e| e.id)),
                (None, true) => after,
            };
            let entries = found
                .iter()
                .map(|e| match &projection {
                    Some(f) => convert::project(e, f),
                    None => match serde_json::to_value(convert::summary(e)) {
                        Ok(Value::Object(m)) => m,
                        _ => Map::new(),
                    },
                })
                .collect::<Vec<_>>();
            let mut coverage = convert::coverage(&state.shared);
            let live = state.shared.sources.lock().iter().any(|s| s.kind == "interface");
            if !live {
                coverage
                    .notes
                    .push("the sources are capture files: no new entries will arrive".into());
            }
            return Ok(WatchEntriesResult {
                timed_out: entries.is_empty(),
                entries,
                next_cursor: format!("w{next}"),
                more,
                waited_ms: start.elapsed().as_millis() as u64,
                coverage,
            });
        }
        after = seen;
        let left = deadline.saturating_duration_since(Instant::now());
        store.wait_newer(after, left.min(SLICE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn waits_for_new_matching_entries_and_moves_past_the_rest() {
        let state = std::sync::Arc::new(
            AppState::load(&crate::state::SourceArgs {
                demo: true,
                ..Default::default()
            })
            .unwrap(),
        );
        // Nothing new: a zero timeout answers at once, and says files bring nothing new.
        let r = run(&state, args(serde_json::json!({"timeout_ms": 0}))).unwrap();
        assert!(r.timed_out && r.entries.is_empty());
        assert!(r.coverage.notes.iter().any(|n| n.contains("no new entries")));
        let start = r.next_cursor.clone();
        // Copies of a Redis and an HTTP entry arrive later, from another thread.
        let pick = |f: &str| {
            let (v, _) = state.shared.store.newer_than(0, 1, &mut |e| e.protocol.name() == f);
            (*v[0]).clone()
        };
        let (redis, http) = (pick("redis"), pick("http/1.1"));
        let writer = {
            let state = state.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(150));
                state.shared.store.insert_batch(&mut vec![redis]);
                std::thread::sleep(Duration::from_millis(150));
                state.shared.store.insert_batch(&mut vec![http]);
            })
        };
        let r = run(
            &state,
            args(serde_json::json!({"cursor": start, "filter": "http", "timeout_ms": 5000, "fields": ["id", "protocol"]})),
        )
        .unwrap();
        writer.join().unwrap();
        assert!(!r.timed_out);
        assert_eq!(r.entries.len(), 1, "the Redis entry did not match: {:?}", r.entries);
        assert_eq!(r.entries[0]["protocol"], "http/1.1");
        assert!(r.waited_ms >= 250 && r.waited_ms < 5000, "{}", r.waited_ms);
        // The cursor moved past both: nothing is returned twice.
        let again = run(
            &state,
            args(serde_json::json!({"cursor": r.next_cursor, "timeout_ms": 0})),
        )
        .unwrap();
        assert!(again.entries.is_empty());
        let e = run(&state, args(serde_json::json!({"timeout_ms": 60000}))).unwrap_err();
        assert!(e.0.contains("timeout_ms"));
    }

    #[test]
    fn cursors_round_trip_and_reject_others() {
        assert_eq!(decode_cursor("w42").unwrap(), 42);
        assert!(decode_cursor("o42").unwrap_err().0.contains("watch_entries issued"));
        assert!(decode_cursor("w-1").is_err());
    }
}
