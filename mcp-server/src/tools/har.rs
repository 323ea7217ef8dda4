//! `export_har`: HTTP/1.x, HTTP/2 and gRPC entries as an HTTP Archive 1.2 file
//! (<http://www.softwareishard.com/blog/har-12-spec/>), for browser dev tools, HAR viewers and
//! replay tools.
//!
//! - Timings from the capture: `send` is the request's first to last byte, `wait` its last byte
//!   to the response's first, `receive` the response's first to last byte (milliseconds).
//!   `blocked`, `dns`, `connect` and `ssl` are -1 (not part of an entry).
//! - Bodies as captured (up to the body capture cap; `comment` says when cut), the response's
//!   content decoded (gzip, deflate, br) as HAR wants it, with `compression` the bytes saved.
//!   Binary bodies are base64: `content.encoding` for responses, `_encoding` for request
//!   `postData` (HAR 1.2 has no field for it; custom fields start with `_`).
//! - Redaction through `capture_core::redact::http_export`: credential headers and cookie values.
//! - HTTP/2 pseudo-headers are listed with the headers; gRPC trailers follow the response
//!   headers, and `_grpc` holds the service, method, status and message.

use std::ops::ControlFlow;

use capture_core::entry::{Entry, HttpMessage, Protocol};
use capture_core::redact::{self, HttpExport};
use capture_core::store::Order as StoreOrder;
use capture_core::time::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};
use tools_schema::{ExportHarParams, ExportHarResult};

use super::{ToolError, err, parse_args};
use crate::convert;
use crate::state::AppState;

pub const DESCRIPTION: &str = "Write the matching HTTP/1.x, HTTP/2 and gRPC entries as an HTTP Archive (HAR 1.2) \
file, for browser dev tools, HAR viewers and replay tools: requests and responses with headers (credentials \
redacted), cookies (values redacted), query strings, bodies (decoded; base64 when binary) and timings (send, wait, \
receive) from the capture. `filter` is KFL over entries, `since`/`until` a window, `snapshot` exports from a \
snapshot. Returns the file's path (and a download URL over HTTP) and counts.";

/// Entries written at most by default.
const DEFAULT_LIMIT: u32 = 10_000;
const MAX_LIMIT: u32 = 100_000;

#[derive(Serialize)]
struct Har {
    log: Log,
}

#[derive(Serialize)]
struct Log {
    version: &'static str,
    creator: Creator,
    entries: Vec<HarEntry>,
    comment: String,
}

#[derive(Serialize)]
struct Creator {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HarEntry {
    started_date_time: String,
    time: f64,
    request: Request,
    response: Response,
    cache: Cache,
    timings: Timings,
    #[serde(rename = "serverIPAddress")]
    server_ip_address: String,
    connection: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
    #[serde(rename = "_wirelens_id")]
    wirelens_id: String,
    #[serde(rename = "_protocol")]
    protocol: &'static str,
    #[serde(rename = "_grpc", skip_serializing_if = "Option::is_none")]
    grpc: Option<Grpc>,
}

#[derive(Serialize)]
struct Grpc {
    service: String,
    method: String,
    status: Option<u32>,
    message: Option<String>,
}

#[derive(Serialize)]
struct NameValue {
    name: String,
    value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    method: String,
    url: String,
    http_version: String,
    cookies: Vec<NameValue>,
    headers: Vec<NameValue>,
    query_string: Vec<NameValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    post_data: Option<PostData>,
    headers_size: i64,
    body_size: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PostData {
    mime_type: String,
    text: String,
    #[serde(rename = "_encoding", skip_serializing_if = "Option::is_none")]
    encoding: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    status: u16,
    status_text: String,
    http_version: String,
    cookies: Vec<NameValue>,
    headers: Vec<NameValue>,
    content: Content,
    #[serde(rename = "redirectURL")]
    redirect_url: String,
    headers_size: i64,
    body_size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Content {
    size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    compression: Option<i64>,
    mime_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

#[derive(Serialize)]
struct Cache {}

#[derive(Serialize)]
struct Timings {
    blocked: f64,
    dns: f64,
    connect: f64,
    send: f64,
    wait: f64,
    receive: f64,
    ssl: f64,
}

/// What the HAR counts.
#[derive(Default)]
struct Counts {
    base64: u64,
    truncated: u64,
}

fn nv(pairs: Vec<(String, String)>) -> Vec<NameValue> {
    pairs
        .into_iter()
        .map(|(name, value)| NameValue { name, value })
        .collect()
}

/// Text when the bytes are UTF-8 without control characters (tabs and newlines aside), else
/// base64.
fn body_text(bytes: &[u8], counts: &mut Counts) -> (String, Option<&'static str>) {
    use base64::Engine as _;
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) => (s.to_string(), None),
        _ => {
            counts.base64 += 1;
            (base64::engine::general_purpose::STANDARD.encode(bytes), Some("base64"))
        }
    }
}

fn query_of(target: &str) -> Vec<(String, String)> {
    let Some((_, q)) = target.split_once('?') else {
        return Vec::new();
    };
    let q = q.split('#').next().unwrap_or_default();
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect()
}

/// Cookies of `Cookie` (`a=1; b=2`) and `Set-Cookie` (`a=1; Path=/`) headers.
fn cookies_of(headers: &[(String, String)], response: bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (n, v) in headers {
        if v.starts_with("[redacted") {
            // Redacted when stored: the names went with the values.
            continue;
        }
        if !response && n.eq_ignore_ascii_case("cookie") {
            for c in v.split(';') {
                if let Some((k, val)) = c.trim().split_once('=') {
                    out.push((k.to_string(), val.to_string()));
                }
            }
        } else if response
            && n.eq_ignore_ascii_case("set-cookie")
            && let Some((k, val)) = v.split(';').next().and_then(|c| c.trim().split_once('='))
        {
            out.push((k.to_string(), val.to_string()));
        }
    }
    out
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn ms(from: Timestamp, to: Timestamp) -> f64 {
    (to.0.saturating_sub(from.0) as f64 / 1_000.0).round() / 1_000.0
}

/// One side of an entry, whatever the HTTP version.
struct Side<'a> {
    headers: Vec<(String, String)>,
    body: &'a [u8],
    body_size: u64,
    truncated: bool,
    first: Timestamp,
    last: Timestamp,
    /// Bytes of the start line and headers (HTTP/1), -1 for HTTP/2 (HPACK-compressed).
    headers_size: i64,
}

fn h1_side(m: &HttpMessage) -> Side<'_> {
    Side {
        headers: m.headers(),
        body: &m.body,
        body_size: m.body_size,
        truncated: m.body_truncated,
        first: m.first_ts,
        last: m.last_ts,
        headers_size: m.head.len() as i64,
    }
}

fn h2_side(m: &capture_core::entry::H2Message, trailers: bool) -> Side<'_> {
    let mut headers: Vec<(String, String)> = m.headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    if trailers {
        headers.extend(m.trailers.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    }
    Side {
        headers,
        body: &m.body,
        body_size: m.body_size,
        truncated: m.body_truncated,
        first: m.first_ts,
        last: m.last_ts,
        headers_size: -1,
    }
}

/// The HAR entry of an HTTP entry (`None` for other protocols).
fn har_entry(
    e: &Entry,
    limits: &capture_core::limits::Limits,
    redaction: &redact::Redaction,
    counts: &mut Counts,
) -> Option<HarEntry> {
    let (version, method, target, host, status, reason, req, resp) = match e.protocol {
        Protocol::Http10 | Protocol::Http11 => {
            let h = e.http()?;
            (
                if e.protocol == Protocol::Http10 {
                    "HTTP/1.0"
                } else {
                    "HTTP/1.1"
                },
                h.method.as_deref(),
                h.path.as_deref(),
                h.host.as_deref(),
                h.status,
                h.reason.as_deref().unwrap_or_default().to_string(),
                h.request.as_ref().map(h1_side),
                h.response.as_ref().map(h1_side),
            )
        }
        Protocol::Http2 | Protocol::Grpc => {
            let s = e.h2()?;
            (
                "HTTP/2.0",
                s.method.as_deref(),
                s.path.as_deref(),
                s.authority.as_deref(),
                s.status,
                String::new(),
                s.request.as_ref().map(|m| h2_side(m, false)),
                s.response.as_ref().map(|m| h2_side(m, true)),
            )
        }
        _ => return None,
    };
    let target = target.unwrap_or("/");
    let mut comments = Vec::new();

    let req_raw = req.as_ref().map(|r| r.headers.clone()).unwrap_or_default();
    let request = redact::http_export(
        redaction,
        HttpExport {
            cookies: cookies_of(&req_raw, false),
            headers: req_raw,
            query: query_of(target),
            body: req.as_ref().map(|r| r.body.to_vec()).unwrap_or_default(),
        },
    );
    let url = if target.starts_with("http://") || target.starts_with("https://") {
        target.to_string()
    } else {
        let scheme = if e.tls { "https" } else { "http" };
        let host = host.map_or_else(|| e.dst.to_string(), str::to_string);
        let path = if target.starts_with('/') {
            target.to_string()
        } else {
            format!("/{target}")
        };
        format!("{scheme}://{host}{path}")
    };
    let post_data = match &req {
        Some(r) if r.body_size > 0 => {
            let ctype = header(&request.headers, "content-type");
            let (text, encoding) = body_text(&redaction.body(&request.body, ctype).0, counts);
            let mut comment = None;
            if r.truncated {
                counts.truncated += 1;
                comment = Some(format!(
                    "the capture kept {} of {} body bytes",
                    r.body.len(),
                    r.body_size
                ));
            }
            Some(PostData {
                mime_type: header(&request.headers, "content-type").unwrap_or_default().to_string(),
                text,
                encoding,
                comment,
            })
        }
        _ => None,
    };

    let resp_raw = resp.as_ref().map(|r| r.headers.clone()).unwrap_or_default();
    let response_parts = redact::http_export(
        redaction,
        HttpExport {
            cookies: cookies_of(&resp_raw, true),
            headers: resp_raw,
            query: Vec::new(),
            body: resp.as_ref().map(|r| r.body.to_vec()).unwrap_or_default(),
        },
    );
    let content = match &resp {
        Some(r) => {
            let coding = header(&response_parts.headers, "content-encoding");
            let decoded = capture_core::content::decode(coding, &response_parts.body, limits.decompress_max_bytes);
            let mut notes = Vec::new();
            if let Some(n) = &decoded.note {
                notes.push(n.clone());
            }
            if r.truncated {
                counts.truncated += 1;
                notes.push(format!(
                    "the capture kept {} of {} body bytes",
                    r.body.len(),
                    r.body_size
                ));
            }
            let (text, encoding) = if decoded.bytes.is_empty() {
                (None, None)
            } else {
                let ctype = header(&response_parts.headers, "content-type");
                let (t, enc) = body_text(&redaction.body(&decoded.bytes, ctype).0, counts);
                (Some(t), enc)
            };
            let size = decoded.bytes.len() as i64;
            Content {
                size,
                compression: decoded.coding.map(|_| size - response_parts.body.len() as i64),
                mime_type: header(&response_parts.headers, "content-type")
                    .unwrap_or_default()
                    .to_string(),
                text,
                encoding,
                comment: (!notes.is_empty()).then(|| notes.join("; ")),
            }
        }
        None => Content {
            size: 0,
            compression: None,
            mime_type: String::new(),
            text: None,
            encoding: None,
            comment: None,
        },
    };
    if resp.is_none() {
        comments.push("no response was captured".to_string());
    }
    let (send, wait, receive) = match (&req, &resp) {
        (Some(q), Some(r)) => (ms(q.first, q.last), ms(q.last, r.first), ms(r.first, r.last)),
        (Some(q), None) => (ms(q.first, q.last), 0.0, 0.0),
        (None, Some(r)) => (0.0, 0.0, ms(r.first, r.last)),
        (None, None) => (0.0, 0.0, 0.0),
    };
    let redirect = header(&response_parts.headers, "location")
        .unwrap_or_default()
        .to_string();
    let response = Response {
        status: status.unwrap_or(0),
        status_text: reason,
        http_version: if resp.is_some() {
            version.to_string()
        } else {
            String::new()
        },
        cookies: nv(response_parts.cookies),
        headers: nv(response_parts.headers),
        content,
        redirect_url: redirect,
        headers_size: resp.as_ref().map_or(-1, |r| r.headers_size),
        body_size: resp.as_ref().map_or(-1, |r| r.body_size as i64),
        comment: None,
    };
    let grpc = e.grpc().map(|g| Grpc {
        service: g.service.to_string(),
        method: g.method.to_string(),
        status: g.status,
        message: g.message.as_deref().map(str::to_string),
    });
    Some(HarEntry {
        started_date_time: e.ts.to_rfc3339(),
        time: ((send + wait + receive) * 1_000.0).round() / 1_000.0,
        request: Request {
            method: method.unwrap_or_default().to_string(),
            url,
            http_version: version.to_string(),
            cookies: nv(request.cookies),
            headers: nv(request.headers),
            query_string: nv(request.query),
            post_data,
            headers_size: req.as_ref().map_or(-1, |r| r.headers_size),
            body_size: req.as_ref().map_or(-1, |r| r.body_size as i64),
        },
        response,
        cache: Cache {},
        timings: Timings {
            blocked: -1.0,
            dns: -1.0,
            connect: -1.0,
            send,
            wait,
            receive,
            ssl: -1.0,
        },
        server_ip_address: e.dst.ip().to_string(),
        connection: e.flow_id.to_string(),
        comment: (!comments.is_empty()).then(|| comments.join("; ")),
        wirelens_id: e.id.to_string(),
        protocol: e.protocol.name(),
        grpc,
    })
}

pub fn run(state: &AppState, args: Map<String, Value>) -> Result<ExportHarResult, ToolError> {
    if let Some(hub) = &state.hub {
        return hub.export_har(state, args);
    }
    let p: ExportHarParams = parse_args("export_har", args)?;
    let started = std::time::Instant::now();
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return err(format!("`limit` must be between 1 and {MAX_LIMIT} (got {limit})"));
    }
    let redissected;
    let view = match p.snapshot.as_deref() {
        Some(name) => {
            redissected = super::forensics::redissect(state, name)?.0;
            &redissected
        }
        None => state,
    };
    let w = super::forensics::window(view, p.since.as_deref(), p.until.as_deref())?;
    let sel = super::filter::Selection::with_times(view, p.filter.as_deref(), w.since, w.until)?;
    let mut matched: Vec<std::sync::Arc<Entry>> = Vec::new();
    view.shared.store.scan(StoreOrder::Asc, None, &mut |e| {
        if e.protocol.is_http() && sel.matches(e) {
            matched.push(std::sync::Arc::clone(e));
        }
        ControlFlow::Continue(())
    });
    let total = matched.len() as u64;
    let keep_from = matched.len().saturating_sub(limit as usize);
    let mut counts = Counts::default();
    let entries: Vec<HarEntry> = matched[keep_from..]
        .iter()
        .filter_map(|e| har_entry(e, &state.limits, &state.shared.redaction, &mut counts))
        .collect();
    let mut notes = Vec::new();
    if keep_from > 0 {
        notes.push(format!(
            "{total} entries matched; the newest {limit} were written (raise `limit`)"
        ));
    }
    if entries.is_empty() {
        notes.push("no HTTP entry matched: the archive has no entries".into());
    }
    let har = Har {
        log: Log {
            version: "1.2",
            creator: Creator {
                name: "wirelens",
                version: env!("CARGO_PKG_VERSION"),
            },
            comment: format!(
                "Captured traffic exported by wirelens{}; credentials and cookie values redacted",
                p.filter
                    .as_deref()
                    .map(|f| format!(" (filter: {f})"))
                    .unwrap_or_default()
            ),
            entries,
        },
    };
    let n = har.log.entries.len() as u64;
    let path = super::forensics::export_path(state, "har")?;
    let part = capture_core_part(&path);
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let f = capture_core::forensics::export::private_file(&part)?;
        let mut w = std::io::BufWriter::new(f);
        serde_json::to_writer(&mut w, &har)?;
        w.flush()?;
        std::fs::rename(&part, &path)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&part);
        return err(format!("export_har: writing {}: {e}", path.display()));
    }
    Ok(ExportHarResult {
        download_url: super::forensics::download_url(state, &path),
        bytes: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
        path: path.display().to_string(),
        entries: n,
        entries_matched: total,
        bodies_base64: counts.base64,
        bodies_truncated: counts.truncated,
        elapsed_ms: started.elapsed().as_millis() as u64,
        notes,
        coverage: convert::coverage(&view.shared),
    })
}

fn capture_core_part(path: &std::path::Path) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".part");
    s.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_cookies_and_binary_bodies() {
        assert_eq!(
            query_of("/a?x=1&y&z=%20#frag"),
            vec![
                ("x".into(), "1".into()),
                ("y".into(), String::new()),
                ("z".into(), "%20".into())
            ]
        );
        assert!(query_of("/a").is_empty());
        let h = vec![("Cookie".to_string(), "a=1; b=2".to_string())];
        assert_eq!(
            cookies_of(&h, false),
            vec![("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        let h = vec![("Set-Cookie".to_string(), "sid=xyz; Path=/; HttpOnly".to_string())];
        assert_eq!(cookies_of(&h, true), vec![("sid".into(), "xyz".into())]);
        let mut c = Counts::default();
        assert_eq!(body_text(b"{\"a\":1}\n", &mut c), ("{\"a\":1}\n".to_string(), None));
        assert_eq!(body_text(&[0, 1, 0xff], &mut c), ("AAH/".to_string(), Some("base64")));
        assert_eq!(c.base64, 1);
        assert_eq!(ms(Timestamp(1_000_000), Timestamp(3_500_000)), 2.5);
    }
}
