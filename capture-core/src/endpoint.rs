//! What an entry called and how it went, in the terms `api_stats` groups by.
//!
//! - [`path_template`]: `/orders/123/items/9f1c…` → `/orders/{id}/items/{id}`: numbers, UUIDs,
//!   long hex strings (hashes, object ids) and long tokens that mix letters and digits become
//!   `{id}`, so one endpoint is one row however many ids it was called with;
//! - [`endpoint`]: HTTP `METHOD /template`, gRPC `pkg.Service/Method`, and for the other
//!   protocols their name first: `redis GET`, `kafka PRODUCE topic`, `dns AAAA`, `amqp
//!   Basic.Publish exchange-or-queue`;
//! - [`outcome`]: the status as text (`503`, `UNAVAILABLE`, `NXDOMAIN`, `error`, …) and whether it
//!   is an error. Errors: HTTP 5xx, a gRPC status other than OK, a DNS rcode other than NOERROR,
//!   a Redis error reply, a Kafka error code, an AMQP reply code of 300 or more, and any request
//!   that got no response.

use std::borrow::Cow;

use crate::entry::{Detail, Entry};

/// gRPC status names by code.
pub const GRPC_STATUS: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The gRPC status name of `code` (`CODE_n` for codes outside the table).
pub fn grpc_status_name(code: u32) -> Cow<'static, str> {
    match GRPC_STATUS.get(code as usize) {
        Some(n) => Cow::Borrowed(n),
        None => Cow::Owned(format!("CODE_{code}")),
    }
}

/// Paths longer than this are cut before templating (they are not API endpoints anyway).
const MAX_PATH: usize = 512;

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Whether a path segment is an identifier rather than a name.
fn is_id(seg: &str) -> bool {
    if seg.is_empty() {
        return false;
    }
    let digits = seg.bytes().filter(u8::is_ascii_digit).count();
    // Numbers, and names numbered with three digits or more (`SKU-1107`, `order_20260115`); not
    // versions such as `v1` or `v2beta1`.
    if digits == seg.len() || digits >= 3 || is_uuid(seg) {
        return true;
    }
    // Hashes and object ids: long hex with at least one digit.
    if seg.len() >= 16 && digits > 0 && seg.bytes().all(|c| c.is_ascii_hexdigit()) {
        return true;
    }
    // Opaque tokens (base64url, ULIDs, …): long, mostly alphanumeric, letters and digits mixed.
    seg.len() >= 20
        && digits >= 2
        && seg.bytes().any(|c| c.is_ascii_alphabetic())
        && seg
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'='))
}

/// The path without its query string, ids replaced by `{id}`.
pub fn path_template(path: &str) -> Cow<'_, str> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let path = match path.char_indices().nth(MAX_PATH) {
        Some((i, _)) => &path[..i],
        None => path,
    };
    if !path.split('/').any(is_id) {
        return Cow::Borrowed(path);
    }
    Cow::Owned(
        path.split('/')
            .map(|s| if is_id(s) { "{id}" } else { s })
            .collect::<Vec<_>>()
            .join("/"),
    )
}

/// The endpoint an entry called.
pub fn endpoint(e: &Entry) -> String {
    match &e.detail {
        Detail::Http2(s) if s.grpc.is_some() => {
            let g = s.grpc.as_deref().expect("checked");
            format!("{}/{}", g.service, g.method)
        }
        Detail::Http(_) | Detail::Http2(_) => format!(
            "{} {}",
            e.http_method().unwrap_or("-"),
            path_template(e.http_path().unwrap_or("-"))
        ),
        Detail::Redis(r) => format!("redis {}", r.command.as_deref().unwrap_or("(push)")),
        Detail::Kafka(k) => match k.api_name() {
            Some(api) if k.topics.is_empty() => format!("kafka {api}"),
            Some(api) => format!("kafka {api} {}", k.topics.join(",")),
            None => "kafka (response without request)".to_string(),
        },
        Detail::Dns(d) => format!(
            "dns {}",
            d.qtype()
                .map_or_else(|| "(no question)".to_string(), crate::dissect::dns::parse::type_text)
        ),
        Detail::Amqp(a) => {
            let m = a.methods.first().map_or("-", |m| &**m);
            match a.exchange.as_deref().or(a.queue.as_deref()) {
                Some(target) => format!("amqp {m} {target}"),
                None => format!("amqp {m}"),
            }
        }
        Detail::Tls(t) => format!("tls {}", t.sni.as_deref().unwrap_or("(no SNI)")),
        Detail::Flow(f) => format!("{} {}", f.transport.name(), f.server.port()),
    }
}

/// Request and response payload bytes: HTTP bodies; whole messages for the other protocols.
pub fn payload_bytes(e: &Entry) -> (u64, u64) {
    match &e.detail {
        Detail::Http(_) | Detail::Http2(_) => (e.request_body_size().unwrap_or(0), e.response_body_size().unwrap_or(0)),
        Detail::Redis(r) => (r.request_bytes, r.reply.as_ref().map_or(0, |p| p.bytes)),
        Detail::Kafka(k) => (k.request_bytes.unwrap_or(0), k.response_bytes.unwrap_or(0)),
        Detail::Dns(d) => (
            d.query.as_ref().map_or(0, |m| u64::from(m.size)),
            d.response.as_ref().map_or(0, |m| u64::from(m.size)),
        ),
        Detail::Amqp(a) => (a.body_size.unwrap_or(0), 0),
        Detail::Tls(t) => (t.app_bytes[0], t.app_bytes[1]),
        Detail::Flow(f) => (f.metrics.payload_bytes[0], f.metrics.payload_bytes[1]),
    }
}

/// How a call went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `200`, `UNAVAILABLE`, `NXDOMAIN`, `ok`, `error`, `UNKNOWN_TOPIC_OR_PARTITION`,
    /// `no_response`, …
    pub status: Cow<'static, str>,
    pub error: bool,
}

impl Outcome {
    fn ok(status: impl Into<Cow<'static, str>>) -> Outcome {
        Outcome {
            status: status.into(),
            error: false,
        }
    }

    fn error(status: impl Into<Cow<'static, str>>) -> Outcome {
        Outcome {
            status: status.into(),
            error: true,
        }
    }

    const NO_RESPONSE: Outcome = Outcome {
        status: Cow::Borrowed("no_response"),
        error: true,
    };
}

pub fn outcome(e: &Entry) -> Outcome {
    match &e.detail {
        Detail::Http2(s) if s.grpc.is_some() => match s.grpc.as_deref().and_then(|g| g.status) {
            Some(0) => Outcome::ok("OK"),
            Some(c) => Outcome::error(grpc_status_name(c)),
            None if s.status.is_some_and(|c| c >= 500) => Outcome::error(s.status.unwrap_or(0).to_string()),
            None => Outcome::NO_RESPONSE,
        },
        Detail::Http(_) | Detail::Http2(_) => match e.http_status() {
            Some(c) if c >= 500 => Outcome::error(c.to_string()),
            Some(c) => Outcome::ok(c.to_string()),
            None => Outcome::NO_RESPONSE,
        },
        Detail::Redis(r) => match r.reply_type() {
            None => Outcome::NO_RESPONSE,
            Some(_) if r.error().is_some() => Outcome::error("error"),
            Some(_) => Outcome::ok("ok"),
        },
        Detail::Dns(d) => match d.extended_rcode() {
            None => Outcome::NO_RESPONSE,
            Some(0) => Outcome::ok("NOERROR"),
            Some(c) => Outcome::error(crate::dissect::dns::parse::rcode_name(c)),
        },
        Detail::Kafka(k) => {
            if k.response_bytes.is_none() {
                Outcome::NO_RESPONSE
            } else if let Some(name) = kafka_error(k) {
                Outcome::error(name)
            } else {
                Outcome::ok("NONE")
            }
        }
        Detail::Amqp(a) => match a.reply_code {
            Some(c) if c >= 300 => Outcome::error(c.to_string()),
            Some(c) => Outcome::ok(c.to_string()),
            None => Outcome::ok("ok"),
        },
        Detail::Tls(t) => match t.alerts.iter().find(|a| a.level == Some(2)) {
            Some(a) => Outcome::error(a.name().into_owned()),
            None if t.flags & crate::dissect::tls::tls_flags::HANDSHAKE_INCOMPLETE != 0 => {
                Outcome::error("handshake_incomplete")
            }
            None => Outcome::ok("ok"),
        },
        Detail::Flow(f) if f.refused() => Outcome::error("refused"),
        Detail::Flow(f) => Outcome::ok(f.state()),
    }
}

/// The first error name of a Kafka response, if any.
fn kafka_error(k: &crate::dissect::kafka::KafkaEntry) -> Option<String> {
    k.error_names().next().map(|e| e.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        for (path, want) in [
            ("/orders/123", "/orders/{id}"),
            ("/orders/123/items/7?expand=1", "/orders/{id}/items/{id}"),
            ("/u/3f2b8c1e-9d4a-4b7e-8a1c-2f3e4d5c6b7a/profile", "/u/{id}/profile"),
            ("/blobs/9f86d081884c7d659a2feaa0c55ad015", "/blobs/{id}"),
            ("/t/eyJhbGciOiJIUzI1NiJ9abc123", "/t/{id}"),
            ("/api/v1/health", "/api/v1/health"),
            ("/api/v2beta1/stock/SKU-1107", "/api/v2beta1/stock/{id}"),
            ("/cafe/deadbeef", "/cafe/deadbeef"),
            ("/static/app.min.js", "/static/app.min.js"),
            ("/", "/"),
            ("", ""),
            ("/x?y=1/2", "/x"),
        ] {
            assert_eq!(path_template(path), want, "{path}");
        }
        assert!(matches!(path_template("/api/v1/users"), Cow::Borrowed(_)));
        // Very long paths are cut at a character boundary, never panicking.
        let long = format!("/{}", "é".repeat(2000));
        assert!(path_template(&long).chars().count() <= MAX_PATH);
    }

    #[test]
    fn grpc_names() {
        assert_eq!(grpc_status_name(14), "UNAVAILABLE");
        assert_eq!(grpc_status_name(0), "OK");
        assert_eq!(grpc_status_name(99), "CODE_99");
    }
}
