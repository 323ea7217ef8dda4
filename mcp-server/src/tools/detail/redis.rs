//! Redis: the command with its arguments (passwords already redacted by the dissector) and the
//! reply.

use capture_core::dissect::redis::{RedisEntry, redis_flags};
use serde_json::{Value, json};

pub fn detail(r: &RedisEntry) -> Value {
    json!({
        "command": r.command.as_deref(),
        "args": r.args.iter().map(|a| &**a).collect::<Vec<_>>(),
        "arg_count": r.arg_count,
        "args_truncated": r.flags & redis_flags::TRUNCATED != 0,
        "request_bytes": r.request_bytes,
        "channel": r.channel(),
        "pushed": r.flags & redis_flags::PUSH != 0,
        "in_transaction": r.flags & redis_flags::TRANSACTION != 0,
        "reply": r.reply.as_ref().map(|p| json!({
            "type": p.kind.name(),
            "attribute": p.attribute,
            "text": p.text.as_deref(),
            "len": p.len,
            "items": p.items.iter().map(|i| &**i).collect::<Vec<_>>(),
            "items_truncated": (p.items.len() as u64) < p.len && matches!(p.kind.name(),
                "array" | "map" | "set" | "push" | "attribute"),
            "bytes": p.bytes,
        })),
    })
}
