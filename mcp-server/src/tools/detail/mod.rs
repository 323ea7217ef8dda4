//! The `detail` of a `get_payload` result for the protocols that are not HTTP: everything an
//! entry keeps, as JSON, so that one call shows the whole Redis command, DNS answer, Kafka request
//! AMQP message or TLS handshake. Text taken from the wire is untrusted and is passed through as data only.

mod amqp;
mod dns;
mod kafka;
mod redis;
mod tls;

use capture_core::entry::{Detail, Entry};
use serde_json::Value;

/// The protocol detail of an entry; `None` for HTTP and HTTP/2 (their messages are the payload).
pub fn of(entry: &Entry) -> Option<Value> {
    match &entry.detail {
        Detail::Redis(r) => Some(redis::detail(r)),
        Detail::Dns(d) => Some(dns::detail(d)),
        Detail::Kafka(k) => Some(kafka::detail(k)),
        Detail::Amqp(a) => Some(amqp::detail(a)),
        Detail::Tls(t) => Some(tls::detail(t)),
        Detail::Http(_) | Detail::Http2(_) | Detail::Flow(_) => None,
    }
}

/// Bytes from the wire as JSON: UTF-8 text when it is valid and printable, else base64.
pub fn bytes_json(b: &[u8]) -> Value {
    use base64::Engine as _;
    match std::str::from_utf8(b) {
        Ok(s) if s.chars().all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t')) => {
            serde_json::json!({ "text": s })
        }
        _ => serde_json::json!({ "base64": base64::engine::general_purpose::STANDARD.encode(b) }),
    }
}
