//! AMQP 0-9-1: method frames grouped into entries — a synchronous method with its reply, and
//! `Basic.Publish`/`Deliver`/`Return`/`Get-Ok` with their content header (the 14 `basic`
//! properties, headers decoded) and the first `amqp_body_max_bytes` of their body.
//!
//! The frame, method and field-table codecs are ours rather than the `amq-protocol` crate's:
//! its nom parsers decode a whole frame at once into owned values, recurse into nested field
//! tables and arrays with no depth limit (a few bytes per level, so a 128 KiB frame can overflow
//! the stack), keep every table entry and string whole with no cap, and fail the whole frame on
//! a short string that is not UTF-8, while this dissector reads frames cut to a prefix and must
//! stay bounded on hostile input.

pub mod content;
pub mod parse;
pub mod state;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

pub use content::{FieldTable, FieldValue, Properties};
pub use parse::Arg;

/// Anomalies of an AMQP entry, as bit flags.
pub mod amqp_flags {
    /// A synchronous method that got no reply (nowait, error, or end of capture).
    pub const NO_REPLY: u32 = 1;
    /// Content whose body did not arrive whole.
    pub const BODY_INCOMPLETE: u32 = 2;
}

/// One AMQP exchange of method frames on one channel.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AmqpEntry {
    pub channel: u16,
    /// `Class.Method` names of the method frames, in wire order.
    pub methods: Vec<Cow<'static, str>>,
    /// The first of the frames' values that is present.
    pub exchange: Option<Box<str>>,
    pub routing_key: Option<Box<str>>,
    pub queue: Option<Box<str>>,
    pub reply_code: Option<u16>,
    pub reply_text: Option<Box<str>>,
    /// Body size announced by the content header, for methods that carry content.
    pub body_size: Option<u64>,
    /// [`amqp_flags`] bits.
    pub flags: u32,
    /// The arguments of each method frame beyond those above, parallel to `methods`.
    pub arguments: Vec<Box<[(&'static str, Arg)]>>,
    /// The content header's properties, for methods that carry content.
    pub properties: Option<Box<Properties>>,
    /// The first `amqp_body_max_bytes` of the body (body frames concatenated).
    pub body: Vec<u8>,
    /// Body bytes arrived that `body` does not hold (the cap, or a frame read from its prefix).
    pub body_truncated: bool,
}

impl AmqpEntry {
    /// Adds a method frame's name and arguments (the first present value of each is kept).
    pub fn add(&mut self, mut m: parse::Method) {
        let name = parse::method_name(m.class, m.method).map_or_else(
            || Cow::Owned(format!("Unknown.{}-{}", m.class, m.method)),
            Cow::Borrowed,
        );
        self.methods.push(name);
        self.arguments.push(std::mem::take(&mut m.args).into_boxed_slice());
        fn first(slot: &mut Option<Box<str>>, v: Option<String>) {
            if slot.is_none() {
                *slot = v.filter(|s| !s.is_empty()).map(Into::into);
            }
        }
        first(&mut self.exchange, m.exchange);
        first(&mut self.routing_key, m.routing_key);
        first(&mut self.queue, m.queue);
        if self.reply_code.is_none() {
            self.reply_code = m.reply_code;
            first(&mut self.reply_text, m.reply_text);
        }
    }

    /// The first value of the argument `name` among the method frames.
    pub fn argument(&self, name: &str) -> Option<&Arg> {
        self.arguments
            .iter()
            .flat_map(|a| a.iter())
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// The delivery tag of `Deliver`, `Get-Ok`, `Ack`, `Nack` or `Reject`.
    pub fn delivery_tag(&self) -> Option<u64> {
        match self.argument("delivery-tag")? {
            Arg::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// The consumer tag of `Consume`, `Consume-Ok`, `Cancel` or `Deliver`.
    pub fn consumer_tag(&self) -> Option<&str> {
        match self.argument("consumer-tag")? {
            Arg::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn summary(&self) -> String {
        let mut s = format!("{} [ch {}]", self.methods.join(" → "), self.channel);
        for v in [&self.exchange, &self.routing_key, &self.queue].into_iter().flatten() {
            s.push(' ');
            s.push_str(&crate::entry::sanitize(v, 60));
        }
        if let Some(c) = self.reply_code {
            s.push_str(&format!(" {c}"));
            if let Some(t) = &self.reply_text {
                s.push(' ');
                s.push_str(&crate::entry::sanitize(t, 60));
            }
        }
        if let Some(n) = self.body_size {
            match self.properties.as_ref().and_then(|p| p.content_type.as_deref()) {
                Some(t) => s.push_str(&format!(" ({n} B {})", crate::entry::sanitize(t, 40))),
                None => s.push_str(&format!(" ({n} B body)")),
            }
        }
        s
    }

    pub fn heap_bytes(&self) -> usize {
        self.methods.len() * std::mem::size_of::<Cow<'static, str>>()
            + [&self.exchange, &self.routing_key, &self.queue, &self.reply_text]
                .into_iter()
                .flatten()
                .map(|s| s.len())
                .sum::<usize>()
            + self
                .arguments
                .iter()
                .flat_map(|a| a.iter())
                .map(|(_, v)| {
                    size_of::<(&str, Arg)>()
                        + match v {
                            Arg::Str(s) => s.len(),
                            _ => 0,
                        }
                })
                .sum::<usize>()
            + self
                .properties
                .as_ref()
                .map_or(0, |p| size_of::<Properties>() + p.heap_bytes())
            + self.body.capacity()
    }
}
