//! `get_payload`: one entry's start lines, headers (secrets redacted) and bodies, decoded on
//! request and returned in windows of `max_bytes`.

use base64::Engine as _;
use capture_core::content;
use capture_core::dissect::http2::{grpc, protobuf};
use capture_core::entry::{Entry, H2Message, HttpMessage, h2_flags, http_flags};
use capture_core::limits::Limits;
use capture_core::redact;
use serde_json::{Map, Value};
use tools_schema::{BodyDecode, GetPayloadParams, GetPayloadResult, Header, MessagePayload, Part};

use super::{ToolError, err, parse_args};
use crate::convert;
use crate::state::AppState;

pub const DESCRIPTION: &str = "Show one entry's request and/or response: start line, headers (credentials redacted, \
length and hash prefix kept) and body. Bodies are content-decoded (gzip, deflate, br) unless `decode` is `raw`; \
`auto` returns JSON as `body_json`, text as UTF-8 and binary as base64. At most `max_bytes` (default 4096) of body \
per message are returned; when `truncated` is true, call again with `offset` = `next_offset` for the rest. \
gRPC bodies come as `body_json`, one object per message: `type` and `message` (named fields) when a \
`--proto-descriptor` describes the method, else `protobuf` (field numbers as keys).";

pub const DEFAULT_MAX_BYTES: u64 = 4 << 10;
pub const MAX_MAX_BYTES: u64 = 1 << 20;

pub fn run(state: &AppState, args: Map<String, Value>) -> Result<GetPayloadResult, ToolError> {
    if let Some(hub) = &state.hub {
        return hub.get_payload(args);
    }
    let p: GetPayloadParams = parse_args("get_payload", args)?;
    let Ok(id) = p.id.trim().parse::<u64>() else {
        return err(format!(
            "`id` must be an entry id as returned by list_entries (a number in a string), got `{}`",
            p.id
        ));
    };
    let max = p.max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
    if max == 0 || max > MAX_MAX_BYTES {
        return err(format!("`max_bytes` must be between 1 and {MAX_MAX_BYTES} (got {max})"));
    }
    let Some(entry) = state.shared.store.get(id) else {
        let cov = convert::coverage(&state.shared);
        let evicted = if cov.entries_evicted > 0 {
            " It may have been evicted by the store budget (see coverage)."
        } else {
            ""
        };
        return err(format!(
            "no entry with id {id}.{evicted} Use list_entries to find current ids."
        ));
    };
    let part = p.part.unwrap_or_default();
    let decode = p.decode.unwrap_or_default();
    let offset = p.offset.unwrap_or(0);
    let limits = &state.limits;
    let redaction = &*state.shared.redaction;
    let msg = |m: &HttpMessage| message(m, decode, offset, max, limits.decompress_max_bytes, redaction);
    let h = entry.http();
    let request = if part != Part::Response {
        h.and_then(|h| h.request.as_ref()).map(msg)
    } else {
        None
    };
    let response = if part != Part::Request {
        h.and_then(|h| h.response.as_ref()).map(msg)
    } else {
        None
    };
    let (request, response) = match entry.h2() {
        Some(s) => {
            let grpc_encoding = |req: bool| {
                let g = s.grpc.as_deref()?;
                if req {
                    g.request_encoding.as_deref()
                } else {
                    g.response_encoding.as_deref()
                }
            };
            // With `--proto-descriptor` describing the method: its request and response types.
            let types = s.grpc.as_deref().and_then(|g| {
                let pool = state.protos.as_ref()?;
                crate::proto::method_types(pool, &g.service, &g.method)
            });
            let view = |m: &H2Message, start_line: String, req: bool| {
                let mut p = msg(&h2_as_http(m, start_line));
                if s.grpc.is_some() && decode != BodyDecode::Raw {
                    let ty = types.as_ref().map(|(i, o)| if req { i } else { o });
                    let mut v = grpc_messages_json(&m.body, grpc_encoding(req), ty, limits);
                    let n = redaction.json_value(&mut v);
                    if n > 0 {
                        p.notes.push(redacted_note(n));
                    }
                    p.body_json = Some(v);
                    p.body = None;
                    p.body_encoding = "json".into();
                    p.offset = 0;
                    p.returned_bytes = m.body.len() as u64;
                    p.next_offset = None;
                    p.truncated = m.body_truncated;
                }
                p
            };
            let line = format!(
                "{} {} HTTP/2",
                s.method.as_deref().unwrap_or("-"),
                s.path.as_deref().unwrap_or("-")
            );
            let status = format!("HTTP/2 {}", s.status.map_or("-".to_string(), |c| c.to_string()));
            (
                s.request
                    .as_ref()
                    .filter(|_| part != Part::Response)
                    .map(|m| view(m, line, true)),
                s.response
                    .as_ref()
                    .filter(|_| part != Part::Request)
                    .map(|m| view(m, status, false)),
            )
        }
        None => (request, response),
    };
    Ok(GetPayloadResult {
        id: entry.id.to_string(),
        protocol: entry.protocol.name().into(),
        summary: entry.summary(),
        interim_statuses: h
            .map(|h| h.interim.clone())
            .or_else(|| entry.h2().map(|s| s.interim.clone()))
            .unwrap_or_default(),
        upgrade: h.and_then(|h| h.upgrade.as_deref()).map(str::to_string),
        anomalies: anomalies(&entry),
        request,
        response,
        detail: super::detail::of(&entry),
        l4: if p.include_l4.unwrap_or(false) {
            state
                .shared
                .flows
                .get(entry.flow_id)
                .map(|f| super::tcp_insights::flow_out(&f))
        } else {
            None
        },
        tls: entry.tls_conn.as_deref().map(convert::tls_conn),
        coverage: convert::coverage(&state.shared),
    })
}

fn anomalies(e: &Entry) -> Vec<String> {
    if let Some(s) = e.h2() {
        return h2_anomalies(s.flags, s.response.is_none() && s.request.is_some());
    }
    let Some(h) = e.http() else { return Vec::new() };
    let names = [
        (http_flags::GAP, "gap"),
        (http_flags::REQUEST_INCOMPLETE, "request_incomplete"),
        (http_flags::RESPONSE_INCOMPLETE, "response_incomplete"),
        (http_flags::NO_REQUEST, "no_request"),
        (http_flags::HEADER_TOO_LARGE, "header_too_large"),
        (http_flags::PIPELINE_OVERFLOW, "pipeline_overflow"),
        (http_flags::UPGRADED, "upgraded"),
    ];
    let mut v: Vec<String> = names
        .iter()
        .filter(|(f, _)| h.flags & f != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    if h.response.is_none() && h.request.is_some() {
        v.push("no_response".into());
    }
    v
}

fn h2_anomalies(flags: u32, no_response: bool) -> Vec<String> {
    let names = [
        (h2_flags::HPACK_INCOMPLETE, "hpack_incomplete"),
        (h2_flags::GAP, "gap"),
        (h2_flags::REQUEST_INCOMPLETE, "request_incomplete"),
        (h2_flags::RESPONSE_INCOMPLETE, "response_incomplete"),
        (h2_flags::NO_REQUEST, "no_request"),
        (h2_flags::HEADER_LIST_TOO_LARGE, "header_list_too_large"),
        (h2_flags::STREAM_EVICTED, "stream_evicted"),
        (h2_flags::UPGRADED, "upgraded_from_http1"),
        (h2_flags::REFUSED_BY_GOAWAY, "refused_by_goaway"),
    ];
    let mut v: Vec<String> = names
        .iter()
        .filter(|(f, _)| flags & f != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    if no_response {
        v.push("no_response".into());
    }
    v
}

/// An HTTP/2 message in the shape the payload view reads: a start line, then the header fields
/// (pseudo-fields are in the start line) and trailers as `name: value` lines.
fn h2_as_http(m: &H2Message, start_line: String) -> HttpMessage {
    let line = |n: &str, v: &str| format!("{n}: {}\r\n", v.replace(['\r', '\n'], " "));
    let mut head = start_line + "\r\n";
    for (n, v) in m.headers.iter().filter(|(n, _)| !n.starts_with(':')) {
        head.push_str(&line(n, v));
    }
    head.push_str("\r\n");
    let trailers: String = m.trailers.iter().map(|(n, v)| line(n, v)).collect();
    HttpMessage {
        head: head.into_bytes().into(),
        body: bytes::Bytes::copy_from_slice(&m.body),
        body_size: m.body_size,
        body_truncated: m.body_truncated,
        chunked: false,
        trailers: trailers.into_bytes().into(),
        first_ts: m.first_ts,
        last_ts: m.last_ts,
        complete: m.complete,
        head_facts: 0,
    }
}

/// The gRPC messages of a captured body: each decompressed (gzip, capped) and decoded as `ty`
/// into named fields (`type` and `message`) when the method's type is known and the bytes parse
/// as it, else as protobuf without a schema (field numbers as keys, under `protobuf`).
fn grpc_messages_json(
    body: &[u8],
    encoding: Option<&str>,
    ty: Option<&prost_reflect::MessageDescriptor>,
    limits: &Limits,
) -> Value {
    let messages = grpc::messages(body);
    let decoded = messages.iter().map(|m| {
        let mut o = Map::new();
        o.insert("compressed".into(), Value::Bool(m.compressed));
        o.insert("length".into(), Value::from(m.declared_len));
        if (m.raw.len() as u64) < u64::from(m.declared_len) {
            o.insert("cut".into(), Value::Bool(true));
        }
        match grpc::decompress(m, encoding, limits.decompress_max_bytes) {
            grpc::Decompressed::Plain(bytes) => {
                match ty.and_then(|t| Some((t, crate::proto::decode_named(t, &bytes)?))) {
                    Some((t, named)) => {
                        o.insert("type".into(), Value::String(t.full_name().into()));
                        o.insert("message".into(), named);
                    }
                    None => match protobuf::decode(&bytes, limits.protobuf_max_depth) {
                        Some(fields) => {
                            let v = serde_json::from_str(&protobuf::to_json(&fields)).unwrap_or(Value::Null);
                            o.insert("protobuf".into(), v);
                        }
                        None => {
                            let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
                            o.insert("base64".into(), Value::String(b64));
                        }
                    },
                }
            }
            grpc::Decompressed::UnsupportedCoding(c) => {
                o.insert("note".into(), Value::String(format!("{c}-compressed; not decoded")));
            }
            grpc::Decompressed::Failed(e) => {
                o.insert("note".into(), Value::String(e));
            }
        }
        Value::Object(o)
    });
    Value::Array(decoded.collect())
}

/// Header values were redacted when the entry was stored.
fn headers_of(pairs: Vec<(String, String)>) -> Vec<Header> {
    pairs.into_iter().map(|(name, value)| Header { name, value }).collect()
}

fn redacted_note(n: u64) -> String {
    format!("{n} credential field(s) of the body redacted (length and id kept; capture_status.redaction has the rules)")
}

fn message(
    m: &HttpMessage,
    decode: BodyDecode,
    offset: u64,
    max: u64,
    decompress_max: usize,
    redaction: &redact::Redaction,
) -> MessagePayload {
    let start_line = m
        .head
        .split(|&b| b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into_owned())
        .unwrap_or_default();
    let pairs = m.headers();
    let ce = pairs
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-encoding"))
        .map(|(_, v)| v.clone());
    let ctype = pairs
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.to_ascii_lowercase());
    let mut notes = Vec::new();
    if m.body_truncated {
        notes.push(format!(
            "the capture kept {} of {} body bytes (body_capture_bytes cap, or bytes missing from the capture)",
            m.body.len(),
            m.body_size
        ));
    }
    let (bytes, content_decoded) = if decode == BodyDecode::Raw {
        (m.body.to_vec(), None)
    } else {
        let d = content::decode(ce.as_deref(), &m.body, decompress_max);
        if let Some(n) = d.note {
            notes.push(n);
        }
        (d.bytes, d.coding.map(str::to_string))
    };
    // Credentials in the body go before windowing, so offsets refer to what is shown.
    let bytes = match redaction.body(&bytes, ctype.as_deref()) {
        (std::borrow::Cow::Owned(b), n) => {
            notes.push(redacted_note(n));
            b
        }
        _ => bytes,
    };
    let len = bytes.len() as u64;
    let start = offset.min(len) as usize;
    let mut end = (offset.saturating_add(max)).min(len) as usize;
    let mut body_json = None;
    let mut body = None;
    let mut encoding = "utf8";
    let want_json = match decode {
        BodyDecode::Json => true,
        BodyDecode::Auto => {
            ctype.as_deref().is_some_and(|c| c.contains("json"))
                || bytes
                    .iter()
                    .find(|b| !b.is_ascii_whitespace())
                    .is_some_and(|b| *b == b'{' || *b == b'[')
        }
        _ => false,
    };
    if want_json && offset == 0 && len <= max {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => {
                body_json = Some(v);
                encoding = "json";
            }
            Err(e) if decode == BodyDecode::Json => {
                notes.push(format!("the body is not valid JSON ({e}); shown as text"))
            }
            Err(_) => {}
        }
    } else if decode == BodyDecode::Json && len > max {
        notes.push(format!(
            "the body ({len} bytes) is larger than max_bytes; shown as text windows instead of JSON"
        ));
    }
    if body_json.is_none() && start < end {
        let window = &bytes[start..end];
        match decode {
            BodyDecode::Raw => {
                encoding = "base64";
                body = Some(base64::engine::general_purpose::STANDARD.encode(window));
            }
            BodyDecode::Text | BodyDecode::Json => body = Some(String::from_utf8_lossy(window).into_owned()),
            BodyDecode::Auto => match std::str::from_utf8(window) {
                Ok(s) => body = Some(s.to_string()),
                // A multi-byte character cut by the window end: stop before it.
                Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => {
                    end = start + e.valid_up_to();
                    body = Some(String::from_utf8_lossy(&bytes[start..end]).into_owned());
                }
                Err(_) => {
                    encoding = "base64";
                    body = Some(base64::engine::general_purpose::STANDARD.encode(window));
                }
            },
        }
    }
    let returned = if body_json.is_some() { len } else { (end - start) as u64 };
    let next = start as u64 + returned;
    let next_offset = (next < len).then_some(next);
    MessagePayload {
        start_line,
        headers: headers_of(pairs),
        body_size: m.body_size,
        body_captured: m.body.len() as u64,
        body_encoding: encoding.into(),
        body,
        body_json,
        content_decoded,
        offset: start as u64,
        returned_bytes: returned,
        truncated: next_offset.is_some() || m.body_truncated,
        next_offset,
        trailers: headers_of(capture_core::dissect::http1::parse::header_pairs(
            &[b"X\r\n".as_slice(), &m.trailers, b"\r\n"].concat(),
        )),
        complete: m.complete,
        notes,
    }
}
