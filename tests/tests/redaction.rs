//! Secrets never leave the engine: credentials in HTTP/1 and HTTP/2 headers, request targets,
//! JSON and form bodies (also gzip-compressed ones, which only show them once decoded), gRPC
//! messages and Redis AUTH are redacted in every tool's output by default, with their length and
//! a correlation id kept; `--no-redact` (here `Redaction::off`) shows them, and per-field rules
//! add and remove names. Every tool's output is searched for every secret.

use std::io::Write as _;

use capture_core::engine::{Engine, Shared};
use capture_core::limits::Limits;
use capture_core::redact::Redaction;
use capture_core::synth::conversation::{Conversation, LINK};
use capture_core::synth::h2;
use capture_core::synth::messages::{resp_command, resp_simple};
use capture_core::time::Timestamp;
use mcp_server::state::AppState;
use serde_json::{Value, json};

/// Every secret the traffic carries, each distinct.
const SECRETS: &[&str] = &[
    "bearerSECRET1",
    "cookieSECRET2",
    "setcookieSECRET3",
    "querySECRET4",
    "jsonSECRET5",
    "gzipSECRET6",
    "formSECRET7",
    "h2SECRET8",
    "grpcSECRET9",
    "redisSECRET10",
    "apikeySECRET11",
];

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn state(redaction: Redaction) -> AppState {
    let at = |s: u64| Timestamp(1_700_000_000_000_000_000 + s * 1_000_000_000);
    let mut convs = Vec::new();
    let conv = |port: u16, server: &str, s: u64| {
        let mut c = Conversation::new(
            format!("10.0.0.1:{port}").parse().unwrap(),
            server.parse().unwrap(),
            at(s),
            500,
            1,
            9,
        );
        c.handshake();
        c
    };

    // HTTP/1.1: Authorization, Cookie, a token in the query, a JSON body; a gzip JSON response
    // with Set-Cookie; then a form login.
    let mut c = conv(40000, "10.0.0.2:80", 0);
    let body = r#"{"user":"ann","password":"jsonSECRET5","items":[1,2]}"#;
    let req = format!(
        "POST /api/login?access_token=querySECRET4&page=2 HTTP/1.1\r\nHost: shop\r\nAuthorization: Bearer bearerSECRET1\r\nCookie: session=cookieSECRET2\r\nX-Api-Key: apikeySECRET11\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let resp_body = gzip(br#"{"ok":true,"refresh_token":"gzipSECRET6"}"#);
    let mut resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nSet-Cookie: sid=setcookieSECRET3; HttpOnly\r\nContent-Length: {}\r\n\r\n",
        resp_body.len()
    )
    .into_bytes();
    resp.extend_from_slice(&resp_body);
    c.client_send(req.as_bytes(), 100).server_send(&resp, 300);
    let form = "user=ann&pwd=formSECRET7";
    let req = format!(
        "POST /form HTTP/1.1\r\nHost: shop\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    c.client_send(req.as_bytes(), 100)
        .server_send(b"HTTP/1.1 204 No Content\r\n\r\n", 200);
    c.close();
    convs.push(c);

    // HTTP/2 (gRPC): a token in a header, a credential field in the protobuf message is not
    // named without a descriptor, so the JSON body of a plain h2 request carries one instead.
    let mut c = conv(40001, "10.0.0.3:8080", 1);
    let mut out = h2::PREFACE.to_vec();
    h2::frame(&mut out, h2::SETTINGS, 0, 0, &[]);
    let json_body = br#"{"client_secret":"grpcSECRET9"}"#;
    h2::frame(
        &mut out,
        h2::HEADERS,
        h2::END_HEADERS,
        1,
        &h2::header_block(&[
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", "api"),
            (":path", "/v1/token?api_key=h2SECRET8"),
            ("authorization", "Bearer bearerSECRET1"),
            ("content-type", "application/json"),
        ]),
    );
    h2::frame(&mut out, h2::DATA, h2::END_STREAM, 1, json_body);
    let mut back = Vec::new();
    h2::frame(&mut back, h2::SETTINGS, 0, 0, &[]);
    h2::frame(
        &mut back,
        h2::HEADERS,
        h2::END_HEADERS | h2::END_STREAM,
        1,
        &h2::header_block(&[(":status", "401"), ("set-cookie", "s=setcookieSECRET3")]),
    );
    c.client_send(&out, 100).server_send(&back, 200);
    c.close();
    convs.push(c);

    // Redis AUTH (never kept, whatever the rules).
    let mut c = conv(40002, "10.0.0.4:6379", 2);
    c.client_send(&resp_command(&["AUTH", "default", "redisSECRET10"]), 100)
        .server_send(&resp_simple("OK"), 200);
    c.close();
    convs.push(c);

    let mut packets: Vec<(Timestamp, Vec<u8>)> = convs
        .into_iter()
        .flat_map(|c| c.packets())
        .map(|p| (p.ts, p.data))
        .collect();
    packets.sort_by_key(|p| p.0);
    let limits = Limits::default();
    let mut shared = Shared::with_limits(&limits);
    shared.redaction = std::sync::Arc::new(redaction);
    let mut engine = Engine::new(limits.clone(), shared.clone());
    engine.replay("secrets", LINK, &packets);
    AppState::from_shared(shared, limits)
}

fn call(st: &AppState, tool: &str, args: Value) -> Value {
    let Value::Object(m) = args else {
        panic!("args must be an object")
    };
    mcp_server::tools::call(st, tool, m).unwrap_or_else(|e| panic!("{tool}: {e:?}"))
}

/// Everything an agent can read about the traffic: every listing, every payload in every decode
/// mode, the aggregates and the status.
fn everything(st: &AppState) -> String {
    let mut out = Vec::new();
    let listing = call(st, "list_entries", json!({"limit": 100}));
    out.push(listing.clone());
    out.push(call(
        st,
        "list_entries",
        json!({"limit": 100, "fields": ["path", "summary", "host", "redis_key"]}),
    ));
    for e in listing["entries"].as_array().unwrap() {
        for decode in ["auto", "raw", "text", "json"] {
            out.push(call(st, "get_payload", json!({"id": e["id"], "decode": decode})));
        }
    }
    for tool in [
        "api_stats",
        "service_map",
        "capture_status",
        "list_flows",
        "tcp_insights",
    ] {
        out.push(call(st, tool, json!({})));
    }
    // The HTTP Archive export, file and result.
    let har = call(st, "export_har", json!({}));
    let path = har["path"].as_str().expect("a path").to_string();
    let text = std::fs::read_to_string(&path).expect("the HAR file");
    let _ = std::fs::remove_file(&path);
    out.push(har);
    out.push(Value::String(text));
    out.iter().map(Value::to_string).collect::<Vec<_>>().join("\n")
}

#[test]
fn no_secret_reaches_any_tool_by_default() {
    let st = state(Redaction::default());
    let all = everything(&st);
    for s in SECRETS {
        assert!(!all.contains(s), "{s} leaked");
    }
    // What stays: lengths and ids, the auth scheme, the other fields.
    assert!(all.contains("Bearer [redacted len=13 id="), "the scheme is kept");
    assert!(all.contains("access_token=[redacted:len=12:id="), "query marker");
    assert!(
        all.contains("page=2") && all.contains(r#"\"user\":\"ann\""#),
        "the rest is kept"
    );
    // Equal secrets correlate: the bearer token of the HTTP/1 and the HTTP/2 request.
    let ids: std::collections::BTreeSet<&str> = all
        .match_indices("Bearer [redacted len=13 id=")
        .map(|(i, m)| &all[i + m.len()..i + m.len() + 8])
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let status = call(&st, "capture_status", json!({}));
    let r = &status["redaction"];
    assert_eq!(r["enabled"], true);
    assert!(r["values_redacted"].as_u64().unwrap() >= 8, "{r}");
    assert!(r["headers"].as_array().unwrap().iter().any(|h| h == "authorization"));
    assert!(!r["never_kept"].as_array().unwrap().is_empty());
    // get_payload says what it redacted from a body.
    let login = call(
        &st,
        "list_entries",
        json!({"filter": "path.startsWith(\"/api/login\")"}),
    );
    let p = call(&st, "get_payload", json!({"id": login["entries"][0]["id"]}));
    let notes = p["response"]["notes"].to_string();
    assert!(notes.contains("credential field(s) of the body redacted"), "{p}");
}

#[test]
fn no_redact_shows_them_and_rules_change_them() {
    // The same traffic with redaction off: every secret but the never-kept Redis password is
    // shown (so the test above can fail).
    let st = state(Redaction::off());
    let all = everything(&st);
    for s in SECRETS.iter().filter(|s| **s != "redisSECRET10") {
        assert!(all.contains(s), "{s} not shown with --no-redact");
    }
    assert!(!all.contains("redisSECRET10"));
    assert_eq!(call(&st, "capture_status", json!({}))["redaction"]["enabled"], false);

    // Per-field rules: keep the cookie header and the access token, redact `user`.
    let rules = Redaction::with_rules(
        true,
        &[],
        &["Cookie".into()],
        &["user".into()],
        &["access_token".into()],
    );
    let st = state(rules);
    let all = everything(&st);
    assert!(all.contains("cookieSECRET2") && all.contains("querySECRET4"));
    assert!(!all.contains("bearerSECRET1") && !all.contains("jsonSECRET5"));
    assert!(!all.contains(r#"\"user\":\"ann\""#), "user is redacted by rule");
}
