//! AMQP 0-9-1: method frames grouped into entries — a synchronous method with its reply, and
//! `Basic.Publish`/`Deliver`/`Return`/`Get-Ok` with their content header and body.

pub mod parse;
pub mod state;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

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
}

impl AmqpEntry {
    /// Adds a method frame's name and arguments (the first present value of each is kept).
    pub fn add(&mut self, m: parse::Method) {
        let name = parse::method_name(m.class, m.method).map_or_else(
            || Cow::Owned(format!("Unknown.{}-{}", m.class, m.method)),
            Cow::Borrowed,
        );
        self.methods.push(name);
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
            s.push_str(&format!(" ({n} B body)"));
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
    }
}
