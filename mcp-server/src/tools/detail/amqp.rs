//! AMQP: the channel, the method frames with their arguments, and the content they carry (the
//! `basic` properties, headers decoded, and the kept part of the body). SASL responses were never
//! kept by the dissector; header values and the body are untrusted data.

use capture_core::dissect::amqp::{AmqpEntry, Arg, FieldValue, Properties, amqp_flags};
use serde_json::{Map, Value, json};

pub fn detail(a: &AmqpEntry) -> Value {
    let methods: Vec<Value> = a
        .methods
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let args: Map<String, Value> = a
                .arguments
                .get(i)
                .map(|args| args.iter().map(|(k, v)| (k.to_string(), arg(v))).collect())
                .unwrap_or_default();
            json!({ "name": &**m, "arguments": args })
        })
        .collect();
    let content = a.body_size.map(|size| {
        let mut body = super::bytes_json(&a.body);
        if let Value::Object(o) = &mut body {
            o.insert("size".into(), json!(size));
            o.insert("kept_bytes".into(), json!(a.body.len()));
            o.insert("truncated".into(), json!(a.body_truncated));
            o.insert("incomplete".into(), json!(a.flags & amqp_flags::BODY_INCOMPLETE != 0));
        }
        json!({
            "properties": a.properties.as_deref().map_or_else(|| json!({}), properties),
            "body": body,
        })
    });
    json!({
        "channel": a.channel,
        "methods": methods,
        "exchange": a.exchange.as_deref(),
        "routing_key": a.routing_key.as_deref(),
        "queue": a.queue.as_deref(),
        "reply_code": a.reply_code,
        "reply_text": a.reply_text.as_deref(),
        "no_reply": a.flags & amqp_flags::NO_REPLY != 0,
        "content": content,
    })
}

fn arg(v: &Arg) -> Value {
    match v {
        Arg::Int(n) => json!(n),
        Arg::Bool(b) => json!(b),
        Arg::Str(s) => json!(&**s),
    }
}

fn properties(p: &Properties) -> Value {
    let mut o: Map<String, Value> = p.strings().map(|(k, v)| (k.to_string(), json!(v))).collect();
    if let Some(m) = p.delivery_mode {
        o.insert("delivery-mode".into(), json!(m));
    }
    if let Some(n) = p.priority {
        o.insert("priority".into(), json!(n));
    }
    if let Some(t) = p.timestamp {
        o.insert("timestamp".into(), json!(t));
    }
    if let Some(h) = &p.headers {
        o.insert("headers".into(), table(h));
    }
    Value::Object(o)
}

fn table(t: &[(Box<str>, FieldValue)]) -> Value {
    Value::Object(t.iter().map(|(k, v)| (k.to_string(), field(v))).collect())
}

/// A field value as JSON: numbers and booleans as they are, strings as strings (an object with
/// `truncated` when cut), byte arrays in base64, decimals as decimal text.
fn field(v: &FieldValue) -> Value {
    match v {
        FieldValue::Bool(b) => json!(b),
        FieldValue::Int(n) => json!(n),
        FieldValue::UInt(n) | FieldValue::Timestamp(n) => json!(n),
        FieldValue::Float(f) => json!(f),
        FieldValue::Decimal { scale, value } => {
            json!(capture_core::dissect::amqp::content::decimal_text(*scale, *value))
        }
        FieldValue::Str { text, len } if text.len() as u64 == u64::from(*len) => json!(&**text),
        FieldValue::Str { text, len } => json!({ "text": &**text, "size": len, "truncated": true }),
        FieldValue::Bytes { data, len } => {
            use base64::Engine as _;
            json!({
                "base64": base64::engine::general_purpose::STANDARD.encode(data),
                "size": len,
                "truncated": (data.len() as u64) < u64::from(*len),
            })
        }
        FieldValue::Void => Value::Null,
        FieldValue::Array(vs) => Value::Array(vs.iter().map(field).collect()),
        FieldValue::Table(t) => table(t),
        FieldValue::Omitted => json!({ "omitted": "nested deeper than amqp_table_max_depth" }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_properties_headers_and_body() {
        let a = AmqpEntry {
            channel: 1,
            methods: vec!["Basic.Deliver".into()],
            exchange: Some("orders".into()),
            routing_key: Some("orders.created".into()),
            body_size: Some(10),
            arguments: vec![
                vec![
                    ("delivery-tag", Arg::Int(42)),
                    ("redelivered", Arg::Bool(false)),
                    ("consumer-tag", Arg::Str("ctag".into())),
                ]
                .into_boxed_slice(),
            ],
            properties: Some(Box::new(Properties {
                content_type: Some("application/json".into()),
                delivery_mode: Some(2),
                headers: Some(vec![
                    ("n".into(), FieldValue::Int(-3)),
                    (
                        "cut".into(),
                        FieldValue::Str {
                            text: "ab".into(),
                            len: 9,
                        },
                    ),
                    (
                        "raw".into(),
                        FieldValue::Bytes {
                            data: vec![0xff].into(),
                            len: 1,
                        },
                    ),
                    (
                        "deep".into(),
                        FieldValue::Array(vec![FieldValue::Omitted, FieldValue::Decimal { scale: 1, value: 15 }]),
                    ),
                ]),
                ..Properties::default()
            })),
            body: b"{\"id\":".to_vec(),
            body_truncated: true,
            ..AmqpEntry::default()
        };
        let d = detail(&a);
        assert_eq!(
            d["methods"],
            json!([{ "name": "Basic.Deliver", "arguments": {
                "delivery-tag": 42, "redelivered": false, "consumer-tag": "ctag" } }])
        );
        let c = &d["content"];
        assert_eq!(c["properties"]["content-type"], "application/json");
        assert_eq!(c["properties"]["delivery-mode"], 2);
        let h = &c["properties"]["headers"];
        assert_eq!(h["n"], -3);
        assert_eq!(h["cut"], json!({ "text": "ab", "size": 9, "truncated": true }));
        assert_eq!(h["raw"], json!({ "base64": "/w==", "size": 1, "truncated": false }));
        assert_eq!(h["deep"][1], "1.5");
        assert!(h["deep"][0]["omitted"].is_string());
        assert_eq!(
            c["body"],
            json!({ "text": "{\"id\":", "size": 10, "kept_bytes": 6, "truncated": true, "incomplete": false })
        );
        let binary = AmqpEntry {
            body_size: Some(2),
            body: vec![0, 0xff],
            ..AmqpEntry::default()
        };
        assert_eq!(detail(&binary)["content"]["body"]["base64"], "AP8=");
        assert_eq!(detail(&AmqpEntry::default())["content"], Value::Null);
    }
}
