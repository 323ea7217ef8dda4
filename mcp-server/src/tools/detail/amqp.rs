//! AMQP: the channel, the method frames and the content they carry.

use capture_core::dissect::amqp::AmqpEntry;
use serde_json::{Value, json};

pub fn detail(a: &AmqpEntry) -> Value {
    json!({
        "channel": a.channel,
        "methods": a.methods.iter().map(|m| &**m).collect::<Vec<_>>(),
        "exchange": a.exchange.as_deref(),
        "routing_key": a.routing_key.as_deref(),
        "queue": a.queue.as_deref(),
        "reply_code": a.reply_code,
        "reply_text": a.reply_text.as_deref(),
        "body_size": a.body_size,
    })
}
