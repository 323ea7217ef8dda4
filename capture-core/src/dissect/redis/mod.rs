//! Redis (RESP2 and RESP3), found by content on any port.
//!
//! - [`parse`]: a resumable RESP decoder with an explicit stack (all RESP2 and RESP3 types,
//!   attributes, streamed strings and aggregates, inline commands) and the probe;
//! - [`state`]: one connection: which side sends commands, commands paired with replies in
//!   order (pipelining), pub/sub deliveries and RESP3 pushes as their own entries, MULTI/EXEC,
//!   `CLIENT REPLY OFF|SKIP`, gaps and re-synchronisation.
//!
//! Every command is one entry, and so is every server message that answers no command.

pub mod parse;
pub mod state;

#[cfg(test)]
mod tests;

pub use parse::Kind;

/// Anomalies and facts of a Redis entry, as bit flags.
pub mod redis_flags {
    /// A message the server sent on its own: a pub/sub delivery, a RESP3 push, or a further
    /// subscribe confirmation of a command that named several channels.
    pub const PUSH: u32 = 1;
    /// A reply whose command was not captured (the capture started mid-connection).
    pub const NO_REQUEST: u32 = 2;
    /// No reply was expected (`CLIENT REPLY OFF` / `SKIP`).
    pub const NO_REPLY_EXPECTED: u32 = 4;
    /// Bytes of the exchange were missing from the capture.
    pub const GAP: u32 = 8;
    /// The command was sent inline (a plain text line).
    pub const INLINE: u32 = 16;
    /// Queued inside `MULTI` … `EXEC`: the reply is `QUEUED`, the result comes with `EXEC`.
    pub const TRANSACTION: u32 = 32;
    /// The reply started but never completed (connection closed, gap, or malformed).
    pub const REPLY_INCOMPLETE: u32 = 64;
    /// Evicted from the pipelining queue (`redis_max_pending`) before its reply came.
    pub const PIPELINE_OVERFLOW: u32 = 128;
    /// Some values are kept only in part (`redis_value_bytes`, `redis_max_args`).
    pub const TRUNCATED: u32 = 256;
    /// A password argument was redacted.
    pub const REDACTED: u32 = 512;
}

/// One Redis command with its reply, or one server message that answers no command.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RedisEntry {
    /// Upper-cased command name; `None` for a pushed message or a reply without its command.
    pub command: Option<Box<str>>,
    /// Arguments after the command name: lossy UTF-8, each cut at `redis_value_bytes`, at most
    /// `redis_max_args`, passwords redacted.
    pub args: Vec<Box<str>>,
    /// Number of arguments sent (exact, also beyond those kept).
    pub arg_count: u64,
    /// Bytes of the command on the wire.
    pub request_bytes: u64,
    pub reply: Option<RedisReply>,
    /// [`redis_flags`] bits.
    pub flags: u32,
}

/// What is kept of a reply (or of a pushed message).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RedisReply {
    /// Type of the reply; one that starts with an attribute has the type of what follows.
    pub kind: Kind,
    /// An attribute preceded the value.
    pub attribute: bool,
    /// Text of a scalar reply (status, error, number) or the first bytes of a string reply.
    pub text: Option<Box<str>>,
    /// Payload bytes of a string reply, elements of an aggregate, bytes of a scalar's text.
    pub len: u64,
    /// The first direct children of an aggregate as text (`(nil)`, `(array of 2)` for those that
    /// are not text).
    pub items: Vec<Box<str>>,
    /// Bytes of the reply on the wire.
    pub bytes: u64,
}

fn is_pubsub_command(c: &str) -> bool {
    matches!(
        c,
        "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" | "UNSUBSCRIBE" | "PUNSUBSCRIBE" | "SUNSUBSCRIBE"
    )
}

impl RedisEntry {
    /// The reply's type name (`bulk_string`, `push`, …).
    pub fn reply_type(&self) -> Option<&'static str> {
        self.reply.as_ref().map(|r| r.kind.name())
    }

    /// The error text of an error reply.
    pub fn error(&self) -> Option<&str> {
        let r = self.reply.as_ref()?;
        matches!(r.kind, Kind::Error | Kind::BlobError)
            .then(|| r.text.as_deref())
            .flatten()
    }

    /// The first argument (usually the key).
    pub fn key(&self) -> Option<&str> {
        self.args.first().map(|a| &**a)
    }

    /// The pub/sub channel: of a PUBLISH or (P|S)SUBSCRIBE command, or of a delivered message.
    pub fn channel(&self) -> Option<&str> {
        match self.command.as_deref() {
            Some("PUBLISH" | "SPUBLISH") => self.key(),
            Some(c) if is_pubsub_command(c) => self.key(),
            Some(_) => None,
            None => {
                let items = &self.reply.as_ref()?.items;
                match items.first()?.to_ascii_lowercase().as_str() {
                    "message" | "smessage" => items.get(1).map(|s| &**s),
                    "pmessage" => items.get(2).map(|s| &**s),
                    "subscribe" | "psubscribe" | "ssubscribe" | "unsubscribe" | "punsubscribe" | "sunsubscribe" => {
                        items.get(1).map(|s| &**s)
                    }
                    _ => None,
                }
            }
        }
    }

    /// The pub/sub message payload: of a PUBLISH command or of a delivered message.
    pub fn payload(&self) -> Option<&str> {
        match self.command.as_deref() {
            Some("PUBLISH" | "SPUBLISH") => self.args.get(1).map(|s| &**s),
            Some(_) => None,
            None => {
                let items = &self.reply.as_ref()?.items;
                match items.first()?.to_ascii_lowercase().as_str() {
                    "message" | "smessage" => items.get(2).map(|s| &**s),
                    "pmessage" => items.get(3).map(|s| &**s),
                    _ => None,
                }
            }
        }
    }

    /// Heap bytes held (for the store budget).
    pub fn heap_bytes(&self) -> usize {
        let strs = |v: &[Box<str>]| {
            v.iter()
                .map(|s| s.len() + std::mem::size_of::<Box<str>>())
                .sum::<usize>()
        };
        self.command.as_ref().map_or(0, |s| s.len())
            + strs(&self.args)
            + self.reply.as_ref().map_or(0, |r| {
                std::mem::size_of::<RedisReply>() + r.text.as_ref().map_or(0, |s| s.len()) + strs(&r.items)
            })
    }

    /// One line: `GET user:1 → bulk_string "…"`, payload text escaped and cut.
    pub fn summary(&self) -> String {
        use crate::entry::sanitize;
        let mut s = String::new();
        match &self.command {
            Some(c) => {
                s.push_str(&sanitize(c, 32));
                for a in self.args.iter().take(3) {
                    s.push(' ');
                    s.push_str(&sanitize(a, 48));
                }
                if self.arg_count > 3 {
                    s.push_str(&format!(" …(+{})", self.arg_count - 3));
                }
            }
            None if self.flags & redis_flags::PUSH != 0 => {
                s.push_str("push");
                if let Some(kind) = self.reply.as_ref().and_then(|r| r.items.first()) {
                    s.push(' ');
                    s.push_str(&sanitize(kind, 24));
                }
                if let Some(ch) = self.channel() {
                    s.push(' ');
                    s.push_str(&sanitize(ch, 48));
                }
                if let Some(p) = self.payload() {
                    s.push_str(": ");
                    s.push_str(&sanitize(p, 80));
                }
                return s;
            }
            None => s.push_str("(reply without captured command)"),
        }
        match &self.reply {
            Some(r) => {
                s.push_str(" → ");
                s.push_str(r.kind.name());
                if let Some(t) = &r.text
                    && r.kind.is_textual()
                {
                    s.push(' ');
                    s.push_str(&sanitize(t, 60));
                } else if r.kind.is_aggregate() {
                    s.push_str(&format!(" ({} elements)", r.len));
                }
            }
            None if self.flags & redis_flags::NO_REPLY_EXPECTED != 0 => s.push_str(" (no reply expected)"),
            None => s.push_str(" → no reply"),
        }
        s
    }
}
