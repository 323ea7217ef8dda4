//! Kafka: the request header, topics with their partitions, the response's error names and the
//! first records (keys, values and header values as text or base64, with their length on the
//! wire and a mark when cut at `kafka_value_bytes`).

use capture_core::dissect::kafka::{KafkaEntry, Payload};
use serde_json::{Value, json};

use super::bytes_json;

fn payload(p: Option<&Payload>) -> Value {
    match p {
        None => Value::Null,
        Some(p) => {
            let mut v = bytes_json(&p.bytes);
            v["len"] = json!(p.len);
            v["truncated"] = json!(p.truncated());
            v
        }
    }
}

pub fn detail(k: &KafkaEntry) -> Value {
    let topic_name = |t: Option<u16>| t.and_then(|i| k.topics.get(usize::from(i))).map(|t| &**t);
    let mut topics: Vec<Value> = k
        .topics
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let parts: Vec<i32> = k
                .partitions
                .iter()
                .filter(|p| p.topic.map(usize::from) == Some(i))
                .map(|p| p.partition)
                .collect();
            json!({ "name": &**t, "partitions": parts })
        })
        .collect();
    let by_id: Vec<i32> = k
        .partitions
        .iter()
        .filter(|p| p.topic.is_none())
        .map(|p| p.partition)
        .collect();
    if !by_id.is_empty() {
        topics.push(json!({ "name": null, "topic_by_id": true, "partitions": by_id }));
    }
    let records: Vec<Value> = k
        .records
        .iter()
        .map(|r| {
            json!({
                "topic": topic_name(r.topic),
                "partition": r.partition,
                "offset": r.offset,
                "timestamp_ms": r.timestamp,
                "key": payload(r.key.as_ref()),
                "value": payload(r.value.as_ref()),
                "headers": r.headers.iter().map(|(name, v)| json!({ "name": &**name, "value": payload(v.as_ref()) })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "api_key": k.api_key,
        "api_name": k.api_name(),
        "api_version": k.api_version,
        "correlation_id": k.correlation_id,
        "client_id": k.client_id.as_deref(),
        "topics": topics,
        "errors": k.errors.iter().map(|&c| json!({ "code": c, "name": capture_core::dissect::kafka::errors::error_label(c) })).collect::<Vec<_>>(),
        "record_count": k.record_count,
        "record_bytes": k.record_bytes,
        "record_bytes_decompressed": k.record_bytes_decompressed,
        "compression": k.codecs().collect::<Vec<_>>(),
        "records": records,
        "records_shown": k.records.len(),
        "request_bytes": k.request_bytes,
        "response_bytes": k.response_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use capture_core::dissect::kafka::{KafkaPartition, KafkaRecord};

    #[test]
    fn topics_partitions_errors_and_records() {
        let k = KafkaEntry {
            api_key: Some(0),
            api_version: Some(9),
            correlation_id: 4,
            topics: vec!["orders".into()],
            partitions: vec![
                KafkaPartition {
                    topic: Some(0),
                    partition: 2,
                },
                KafkaPartition {
                    topic: None,
                    partition: 7,
                },
            ],
            errors: vec![6],
            record_count: Some(1),
            compression: 1 << 1,
            records: vec![KafkaRecord {
                topic: Some(0),
                partition: 2,
                offset: 10,
                timestamp: 5,
                key: Some(Payload {
                    bytes: b"k".as_slice().into(),
                    len: 1,
                }),
                value: Some(Payload {
                    bytes: b"\x00\x01".as_slice().into(),
                    len: 300,
                }),
                headers: vec![("h".into(), None)],
            }],
            ..KafkaEntry::default()
        };
        let d = detail(&k);
        assert_eq!(d["topics"][0], json!({ "name": "orders", "partitions": [2] }));
        assert_eq!(d["topics"][1]["partitions"], json!([7]));
        assert_eq!(d["errors"][0]["name"], "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(d["compression"], json!(["gzip"]));
        let r = &d["records"][0];
        assert_eq!(r["topic"], "orders");
        assert_eq!(r["key"], json!({ "text": "k", "len": 1, "truncated": false }));
        assert_eq!(r["value"], json!({ "base64": "AAE=", "len": 300, "truncated": true }));
        assert_eq!(r["headers"][0]["value"], Value::Null);
    }
}
