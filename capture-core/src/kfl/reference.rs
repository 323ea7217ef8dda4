//! The KFL language reference, generated from the field registry so it cannot drift.

use std::fmt::Write;

use crate::fields::{FIELDS, FLAGS};

/// Escapes a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

const SYNTAX: &str = r#"# KFL — the wirelens filter language

A filter is a boolean [CEL](https://github.com/google/cel-spec) expression evaluated against
each entry; an empty filter matches everything. Field names follow Kubeshark's KFL2, and the
names of wirelens' own results are accepted as aliases. Unknown fields, type errors and invalid
regular expressions are errors that give the line, the column and the closest valid name:
nothing fails silently.

```
http and response.status >= 500 and dst.namespace == "prod"
http && status_code >= 500 && dst.service.name == "payment-service" && path.contains("/charge")
method in ["POST", "PUT"] && request.headers["content-type"].startsWith("application/json")
src.ip == "10.42.0.12" || path.matches(r"^/api/v[0-9]+/orders/\d+$")
map_get(local_labels, "app", "") == "checkout" && "production" in namespaces
timestamp > now() - duration("5m") && elapsed_time > 250000
not (status_code >= 200 and status_code < 400)
```

## Syntax

| Form | Examples |
|---|---|
| Integers, floats | `200`, `-1`, `0x1F`, `2.5`, `1e3` |
| Strings (escapes `\n \t \" \\ \xHH \uHHHH`) | `"GET"`, `'GET'`, `"""multi-line"""` |
| Raw strings (no escapes, for regexes) | `r"^/api/\d+"`, `R'\w+'` |
| Booleans, null | `true`, `false`, `null` |
| Lists | `[500, 502, 503]`, `["GET", "HEAD"]` |
| Field paths | `status_code`, `src.pod.name`, `response.status` |
| Map access | `request.headers["content-type"]`, `request.headers.host`, `query_string["id"]` |
| Comments | `// to the end of the line` |

## Operators (loosest first)

| Operators | Meaning |
|---|---|
| `c ? a : b` | `a` when `c` holds, else `b` |
| `\|\|`, `or` | either side holds |
| `&&`, `and` | both sides hold |
| `not` | negation of everything to its right up to `and`/`or`: `not a == b` is `!(a == b)` |
| `==` `!=` `<` `<=` `>` `>=` | comparisons (numbers, strings, timestamps, durations; `==` also on lists) |
| `in` | list membership (`method in ["GET","HEAD"]`, `"prod" in namespaces`) or map key (`"host" in request.headers`) |
| `+` `-` | numbers; `+` also joins strings; timestamp ± duration, timestamp − timestamp |
| `*` `/` `%` | numbers (`%` on ints) |
| `!`, `-` (prefix) | negation |
| `.name`, `[key]`, `.method()` | members, indexing, methods |

Ints and floats compare with each other. `&&` and `||` follow CEL: `false && error` is false,
`true || error` is true; a filter whose result is an error (division by zero, a missing map key,
a list index out of range) does not match.

## Functions and methods

| Function | Result | Notes |
|---|---|---|
| `s.startsWith(p)`, `s.endsWith(p)`, `s.contains(p)` | bool | case-sensitive; `list.contains(x)` is `x in list` |
| `s.matches(re)`, `matches(s, re)` | bool | RE2 syntax (the Rust `regex` crate), unanchored; a literal pattern is checked and compiled once |
| `s.lowerAscii()`, `s.upperAscii()` | string | |
| `size(x)`, `x.size()` | int | characters of a string, items of a list, keys of a map |
| `map_get(m, key, default)` | string | `m[key]`, or `default` when the key is absent (`m[key]` is then an error) |
| `timestamp("2026-01-15T10:00:00Z")`, `timestamp(secs)` | timestamp | RFC 3339, any offset |
| `duration("5m")` | duration | `h m s ms us ns` (and `d`), combinable: `"1h30m"`, `"1.5s"`, `"-10s"` |
| `now()` | timestamp | the time the query runs against |
| `int(x)`, `double(x)`, `string(x)` | conversions | `int(timestamp)` is Unix seconds |

A string literal compared with a timestamp or a duration is read as one:
`timestamp >= "2026-01-15T10:00:00Z"`.

## Protocol flags

A bare flag is true for the entries of that protocol; start a filter with one, it is cheap.

| Flag | Matches |
|---|---|
"#;

const SEMANTICS: &str = r#"
## Missing values

A field that does not apply to an entry (`grpc_status` on an HTTP entry, `status_code` when no
response was captured) reads as its type's empty default, as in KFL2: `""`, `0`, `false`, `[]`,
`{}`. So `status_code != 0` finds entries with a response. To tell "absent" from "empty" compare
the field with `null`: `status_code == null` holds when no response was captured. Projections
(`fields`) return `null` for fields that do not apply.

Kubernetes identity fields (`src.pod.name`, `dst.namespace`, `namespaces`, `local_labels`, …) are
registered already and are empty on every entry until identities are resolved. Fields of
protocols not dissected yet (gRPC, Redis, Kafka, DNS, AMQP) are registered with their final names
and are empty until their dissectors land.

## Fields

| Field | Aliases | Type | Protocol | Description | Example |
|---|---|---|---|---|---|
"#;

/// The language reference as Markdown: syntax, operators, functions, flags, then every field of
/// the registry with its aliases, type, protocol, description and example.
pub fn reference_markdown() -> String {
    let mut out = String::from(SYNTAX);
    for f in FLAGS {
        let _ = writeln!(out, "| `{}` | {} |", f.name, cell(f.description));
    }
    out.push_str(SEMANTICS);
    for f in FIELDS {
        let aliases = f
            .aliases
            .iter()
            .map(|a| format!("`{a}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | `{}` |",
            f.name,
            aliases,
            cell(f.ty.name()),
            f.protocol.unwrap_or("all"),
            cell(f.description),
            cell(f.example),
        );
    }
    out
}
