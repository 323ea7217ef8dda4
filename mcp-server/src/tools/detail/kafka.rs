//! Kafka: the request header, topics and what the response said.

use capture_core::dissect::kafka::KafkaEntry;
use serde_json::{Value, json};

pub fn detail(k: &KafkaEntry) -> Value {
    json!({
        "api_key": k.api_key,
        "api_name": k.api_name(),
        "api_version": k.api_version,
        "correlation_id": k.correlation_id,
        "client_id": k.client_id.as_deref(),
        "topics": k.topics.iter().map(|t| &**t).collect::<Vec<_>>(),
        "record_count": k.record_count,
        "request_bytes": k.request_bytes,
        "response_bytes": k.response_bytes,
    })
}
