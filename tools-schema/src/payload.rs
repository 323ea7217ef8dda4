//! `get_payload`: one entry's headers and bodies, paged and decoded on request.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::coverage::Coverage;

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    Request,
    Response,
    #[default]
    Both,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BodyDecode {
    /// Entity bytes as captured (after de-chunking), base64.
    Raw,
    /// Content-decoded (gzip, deflate, br), as UTF-8 text (invalid bytes replaced).
    Text,
    /// Content-decoded and parsed as JSON into `body_json`.
    Json,
    /// Content-decoded; JSON when it parses, text when it is UTF-8, else base64 (default).
    #[default]
    Auto,
}

/// Arguments of `get_payload`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GetPayloadParams {
    /// Entry id from `list_entries` (a number written as a string; a bare number is accepted
    /// too, as some clients send one).
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    /// `request`, `response` or `both` (default).
    pub part: Option<Part>,
    /// Most body bytes returned per message: 1–1048576, default 4096 (an answer stays a few
    /// thousand tokens; page on with `offset` = `next_offset`).
    #[schemars(range(min = 1, max = 1_048_576))]
    pub max_bytes: Option<u64>,
    /// Body offset to start from (use `next_offset` of a previous call).
    pub offset: Option<u64>,
    /// `raw`, `text`, `json` or `auto` (default).
    pub decode: Option<BodyDecode>,
    /// Also return the TCP metrics and verdict of the entry's connection (`l4`).
    pub include_l4: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// One HTTP message.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct MessagePayload {
    /// Request line or status line.
    pub start_line: String,
    /// Headers in wire order; secret values are redacted (length and hash prefix kept).
    pub headers: Vec<Header>,
    /// Entity-body bytes on the wire (after de-chunking, before content decoding).
    pub body_size: u64,
    /// Entity-body bytes kept by the capture (a cap applies; see `capture_status`).
    pub body_captured: u64,
    /// `utf8` (`body` is text), `base64`, or `json` (`body_json` holds the value).
    pub body_encoding: String,
    /// The body window, as text or base64; null when empty or returned as `body_json`.
    pub body: Option<String>,
    /// The body parsed as JSON (with `decode` `json`, or `auto` when it parses).
    pub body_json: Option<serde_json::Value>,
    /// The content-encoding that was decoded (`gzip`, `deflate`, `br`), if any.
    pub content_decoded: Option<String>,
    /// Offset of this window in the (decoded) body.
    pub offset: u64,
    /// Bytes of body in this window.
    pub returned_bytes: u64,
    /// More body bytes exist after this window, or the capture did not keep all of them.
    pub truncated: bool,
    /// Pass as `offset` to get the next window; null when this window reaches the end of what
    /// was kept.
    pub next_offset: Option<u64>,
    /// Chunked-body trailer fields.
    pub trailers: Vec<Header>,
    /// False when the message was cut (capture ended, gap, reset).
    pub complete: bool,
    /// Plain-language notes (decoding problems, capture caps).
    pub notes: Vec<String>,
}

/// Result of `get_payload`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct GetPayloadResult {
    pub id: String,
    pub protocol: String,
    pub summary: String,
    /// Interim (1xx) statuses seen before the final response.
    pub interim_statuses: Vec<u16>,
    /// Protocol switched to by a 101 response (e.g. `h2c`, `websocket`).
    pub upgrade: Option<String>,
    /// Anomalies: `gap`, `request_incomplete`, `response_incomplete`, `no_request`, …
    pub anomalies: Vec<String>,
    pub request: Option<MessagePayload>,
    pub response: Option<MessagePayload>,
    /// Everything the entry keeps, for Redis (command, arguments, reply), DNS (questions, flags,
    /// answers, EDNS), Kafka (request header, topics, partitions, errors, records) and AMQP
    /// (methods with their arguments, properties, body). Absent for HTTP, whose messages are
    /// `request` and `response`. Values taken from the wire are untrusted data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
    /// The connection's TCP analysis, with `include_l4: true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l4: Option<crate::flows::FlowOut>,
    /// The TLS connection an entry decrypted with a key log came from: its handshake fields.
    /// Absent for entries not decrypted from the wire (the `tls` entry has them in `detail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConnOut>,
    pub coverage: Coverage,
}

/// The handshake fields of a TLS connection, as its decrypted entries carry them (named like the
/// KFL fields `tls_version`, `tls_sni`, …; null when the handshake did not show them).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct TlsConnOut {
    /// `TLS 1.2`, `TLS 1.3`.
    pub version: Option<String>,
    pub sni: Option<String>,
    /// The ALPN protocol the server selected.
    pub alpn: Option<String>,
    /// IANA name of the cipher suite.
    pub cipher: Option<String>,
    pub ja3: Option<String>,
    pub ja4: Option<String>,
    pub ja3s: Option<String>,
}

/// An id given as a string or as a non-negative integer.
fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        S(String),
        N(u64),
    }
    Ok(
        match Id::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected an entry id: a string such as \"42\" (a number is accepted too)")
        })? {
            Id::S(s) => s,
            Id::N(n) => n.to_string(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_as_strings_or_numbers() {
        let p: GetPayloadParams = serde_json::from_str(r#"{"id": "42"}"#).unwrap();
        assert_eq!(p.id, "42");
        let p: GetPayloadParams = serde_json::from_str(r#"{"id": 42}"#).unwrap();
        assert_eq!(p.id, "42");
        let e = serde_json::from_str::<GetPayloadParams>(r#"{"id": -1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("entry id"), "{e}");
    }
}
