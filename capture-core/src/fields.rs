//! The field registry: every field an entry carries, with its name, aliases, type, protocol,
//! description and example. Projections (`fields`) read entries through it, and the filter
//! language type-checks against it, so there is one source of truth for field names.

use std::borrow::Cow;

use crate::entry::{Entry, Protocol};

/// A field's value for one entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    List(Vec<Value<'a>>),
}

/// The type a field has when it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Bool,
    Int,
    Float,
    String,
    /// RFC 3339 text in results; comparable as a timestamp in filters.
    Timestamp,
    StringList,
}

impl FieldType {
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Bool => "bool",
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::String => "string",
            FieldType::Timestamp => "timestamp",
            FieldType::StringList => "list<string>",
        }
    }
}

/// One registered field.
pub struct FieldDef {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub ty: FieldType,
    /// `None` for fields every entry has; else the protocol family (`"http"`).
    pub protocol: Option<&'static str>,
    pub description: &'static str,
    pub example: &'static str,
    pub get: for<'a> fn(&'a Entry) -> Value<'a>,
}

impl std::fmt::Debug for FieldDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldDef")
            .field("name", &self.name)
            .field("ty", &self.ty)
            .finish()
    }
}

fn s(v: &str) -> Value<'_> {
    Value::Str(Cow::Borrowed(v))
}

fn opt_str(v: Option<&str>) -> Value<'_> {
    v.map_or(Value::Null, s)
}

fn opt_int(v: Option<u64>) -> Value<'static> {
    v.map_or(Value::Null, |n| {
        Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
    })
}

/// Every field, in documentation order.
pub static FIELDS: &[FieldDef] = &[
    FieldDef {
        name: "id",
        aliases: &[],
        ty: FieldType::String,
        protocol: None,
        description: "Stable entry id; pass it to get_payload.",
        example: "\"42\"",
        get: |e| Value::Str(Cow::Owned(e.id.to_string())),
    },
    FieldDef {
        name: "timestamp",
        aliases: &[],
        ty: FieldType::Timestamp,
        protocol: None,
        description: "Capture time of the first request byte (RFC 3339, UTC, microseconds).",
        example: "\"2026-01-15T10:00:01.250000Z\"",
        get: |e| Value::Str(Cow::Owned(e.ts.to_rfc3339())),
    },
    FieldDef {
        name: "protocol",
        aliases: &[],
        ty: FieldType::String,
        protocol: None,
        description: "Application protocol: http/1.0, http/1.1.",
        example: "\"http/1.1\"",
        get: |e| s(e.protocol.name()),
    },
    FieldDef {
        name: "transport",
        aliases: &[],
        ty: FieldType::String,
        protocol: None,
        description: "Transport protocol: tcp or udp.",
        example: "\"tcp\"",
        get: |e| s(e.transport.name()),
    },
    FieldDef {
        name: "src.ip",
        aliases: &["src_ip"],
        ty: FieldType::String,
        protocol: None,
        description: "IP address of the requester (client).",
        example: "\"10.42.0.12\"",
        get: |e| Value::Str(Cow::Owned(e.src.ip().to_string())),
    },
    FieldDef {
        name: "src.port",
        aliases: &["src_port"],
        ty: FieldType::Int,
        protocol: None,
        description: "Port of the requester (client).",
        example: "43512",
        get: |e| Value::Int(i64::from(e.src.port())),
    },
    FieldDef {
        name: "dst.ip",
        aliases: &["dst_ip"],
        ty: FieldType::String,
        protocol: None,
        description: "IP address of the responder (server).",
        example: "\"10.42.1.7\"",
        get: |e| Value::Str(Cow::Owned(e.dst.ip().to_string())),
    },
    FieldDef {
        name: "dst.port",
        aliases: &["dst_port"],
        ty: FieldType::Int,
        protocol: None,
        description: "Port of the responder (server).",
        example: "8080",
        get: |e| Value::Int(i64::from(e.dst.port())),
    },
    FieldDef {
        name: "flow_id",
        aliases: &[],
        ty: FieldType::Int,
        protocol: None,
        description: "Id of the transport connection that carried the entry.",
        example: "7",
        get: |e| Value::Int(e.flow_id as i64),
    },
    FieldDef {
        name: "elapsed_ms",
        aliases: &[],
        ty: FieldType::Float,
        protocol: None,
        description: "First request byte to last response byte, in milliseconds; null without a response.",
        example: "12.5",
        get: |e| {
            e.elapsed_us
                .map_or(Value::Null, |us| Value::Float(us as f64 / 1000.0))
        },
    },
    FieldDef {
        name: "summary",
        aliases: &[],
        ty: FieldType::String,
        protocol: None,
        description: "One-line description (payload text escaped and cut).",
        example: "\"GET api.shop/orders/7 → 200 OK (3.1 ms)\"",
        get: |e| Value::Str(Cow::Owned(e.summary())),
    },
    FieldDef {
        name: "method",
        aliases: &["request.method"],
        ty: FieldType::String,
        protocol: Some("http"),
        description: "HTTP request method.",
        example: "\"POST\"",
        get: |e| opt_str(e.http().and_then(|h| h.method.as_deref())),
    },
    FieldDef {
        name: "host",
        aliases: &["request.host"],
        ty: FieldType::String,
        protocol: Some("http"),
        description: "Host header as sent (port included when present).",
        example: "\"orders.shop:8080\"",
        get: |e| opt_str(e.http().and_then(|h| h.host.as_deref())),
    },
    FieldDef {
        name: "path",
        aliases: &["request.path", "url"],
        ty: FieldType::String,
        protocol: Some("http"),
        description: "Request-target as on the wire (query string included).",
        example: "\"/orders/123?expand=items\"",
        get: |e| opt_str(e.http().and_then(|h| h.path.as_deref())),
    },
    FieldDef {
        name: "status",
        aliases: &["response.status", "status_code"],
        ty: FieldType::Int,
        protocol: Some("http"),
        description: "Final HTTP status; null when there was no response.",
        example: "503",
        get: |e| opt_int(e.http().and_then(|h| h.status).map(u64::from)),
    },
    FieldDef {
        name: "request_body_size",
        aliases: &["request.body_size"],
        ty: FieldType::Int,
        protocol: Some("http"),
        description: "Request entity-body bytes after de-chunking, before content decoding; 0 without a body.",
        example: "512",
        get: |e| opt_int(e.request_body_size()),
    },
    FieldDef {
        name: "response_body_size",
        aliases: &["response.body_size"],
        ty: FieldType::Int,
        protocol: Some("http"),
        description: "Response entity-body bytes after de-chunking, before content decoding; null without a response.",
        example: "2048",
        get: |e| opt_int(e.response_body_size()),
    },
];

/// Looks a field up by name or alias.
pub fn lookup(name: &str) -> Option<&'static FieldDef> {
    FIELDS
        .iter()
        .find(|f| f.name == name || f.aliases.contains(&name))
}

/// The closest registered name (for "did you mean …?").
pub fn suggest(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    FIELDS
        .iter()
        .flat_map(|f| std::iter::once(f.name).chain(f.aliases.iter().copied()))
        .map(|n| (strsim::damerau_levenshtein(&lower, n), n))
        .filter(|(d, n)| *d <= 3.max(n.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// Does this field apply to entries of this protocol?
pub fn applies(f: &FieldDef, p: Protocol) -> bool {
    match f.protocol {
        None => true,
        Some("http") => p.is_http(),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut all: Vec<&str> = FIELDS
            .iter()
            .flat_map(|f| std::iter::once(f.name).chain(f.aliases.iter().copied()))
            .collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("stauts"), Some("status"));
        assert_eq!(suggest("src.pi"), Some("src.ip"));
        assert_eq!(suggest("reqest_body_size"), Some("request_body_size"));
        assert_eq!(suggest("zzzzzzzzzzzzzzz"), None);
        assert!(lookup("status_code").is_some());
    }
}
