//! Kafka: requests paired with their responses by correlation id, per connection.
//!
//! The engine reads Kafka with its own bounded decoder ([`parse`], [`records`], [`compression`])
//! and not with the `kafka-protocol` crate: that crate's decoders (0.18.0) reserve
//! `Vec::with_capacity(n)` for array lengths read off the wire, an allocation hostile input
//! controls. `kafka-protocol` is a dev-dependency instead, the oracle of the tests: requests and
//! responses it encodes, at every version of every API key it knows, must decode here to the same
//! header, topics, partitions, error codes and records.

pub mod compression;
pub mod errors;
#[cfg(test)]
mod oracle;
pub mod parse;
pub mod records;
pub mod state;
#[cfg(test)]
mod tests;

/// Anomalies of a Kafka entry, as bit flags.
pub mod kafka_flags {
    /// A response whose request was not captured.
    pub const NO_REQUEST: u32 = 1;
    /// A request that got no response (capture or connection ended, or `kafka_max_pending`).
    pub const NO_RESPONSE: u32 = 2;
    /// The request was longer than `dissector_buffer_bytes`: its body was read from a prefix.
    pub const TRUNCATED: u32 = 4;
}

pub use records::{KafkaRecord, Payload};

/// A partition a request named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KafkaPartition {
    /// Index into [`KafkaEntry::topics`]; `None` for a topic given by id.
    pub topic: Option<u16>,
    pub partition: i32,
}

/// One Kafka request with its response, or a lone response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KafkaEntry {
    /// `None` for a response whose request was not captured.
    pub api_key: Option<i16>,
    pub api_version: Option<i16>,
    pub correlation_id: i32,
    pub client_id: Option<Box<str>>,
    /// Topic names the request gave, in order, without repeats (`kafka_max_list`).
    pub topics: Vec<Box<str>>,
    /// Partitions the request named, in order, without repeats (`kafka_max_list`).
    pub partitions: Vec<KafkaPartition>,
    /// Distinct non-zero error codes of the response, in order (`kafka_max_list`).
    pub errors: Vec<i16>,
    /// Records in the record batches (Produce request, Fetch response); `None` when the message
    /// carries no record set.
    pub record_count: Option<u64>,
    /// Bytes of the record sets on the wire.
    pub record_bytes: Option<u64>,
    /// Bytes of the record sets once decompressed.
    pub record_bytes_decompressed: Option<u64>,
    /// Bit `1 << codec` for each compression codec of the batches ([`compression::codec_name`]).
    pub compression: u8,
    /// The first records (`kafka_max_records`), keys, values and headers cut at the caps.
    pub records: Vec<KafkaRecord>,
    /// Frame sizes on the wire (length prefix included).
    pub request_bytes: Option<u64>,
    pub response_bytes: Option<u64>,
    /// [`kafka_flags`] bits.
    pub flags: u32,
}

impl KafkaEntry {
    pub fn api_name(&self) -> Option<&'static str> {
        self.api_key.and_then(parse::api_name)
    }

    /// The names of the error codes.
    pub fn error_names(&self) -> impl Iterator<Item = std::borrow::Cow<'static, str>> + '_ {
        self.errors.iter().map(|&c| errors::error_label(c))
    }

    /// Distinct partition indexes, in order.
    pub fn partition_numbers(&self) -> Vec<i32> {
        let mut v: Vec<i32> = Vec::new();
        for p in &self.partitions {
            if !v.contains(&p.partition) {
                v.push(p.partition);
            }
        }
        v
    }

    /// The names of the compression codecs seen.
    pub fn codecs(&self) -> impl Iterator<Item = &'static str> + '_ {
        (0..8u8)
            .filter(|c| self.compression & (1 << c) != 0)
            .map(compression::codec_name)
    }

    /// The request in a few words: `PRODUCE v3 orders`.
    pub fn request_summary(&self) -> Option<String> {
        let name = self.api_name()?;
        let mut s = format!("{name} v{}", self.api_version.unwrap_or(0));
        if !self.topics.is_empty() {
            s.push(' ');
            s.push_str(&self.topics.join(","));
        }
        Some(s)
    }

    pub fn summary(&self) -> String {
        let mut s = match self.request_summary() {
            Some(r) => crate::entry::sanitize(&r, 120),
            None => "(response without captured request)".to_string(),
        };
        let parts = self.partition_numbers();
        if !parts.is_empty() {
            let shown: Vec<String> = parts.iter().take(8).map(i32::to_string).collect();
            let more = if parts.len() > 8 { ",…" } else { "" };
            s.push_str(&format!(" p{}{more}", shown.join(",")));
        }
        s.push_str(&format!(" #{}", self.correlation_id));
        if let Some(n) = self.record_count {
            s.push_str(&format!(" {n} records"));
            if let Some(b) = self.record_bytes {
                s.push_str(&format!(" {b}B"));
            }
        }
        if !self.errors.is_empty() {
            let names: Vec<_> = self.error_names().take(3).collect();
            let more = if self.errors.len() > 3 { ",…" } else { "" };
            s.push_str(&format!(" {}{more}", names.join(",")));
        }
        if self.response_bytes.is_none() {
            s.push_str(" → no response");
        }
        s
    }

    pub fn heap_bytes(&self) -> usize {
        self.client_id.as_ref().map_or(0, |c| c.len())
            + self.topics.capacity() * std::mem::size_of::<Box<str>>()
            + self.topics.iter().map(|t| t.len()).sum::<usize>()
            + self.partitions.capacity() * std::mem::size_of::<KafkaPartition>()
            + self.errors.capacity() * std::mem::size_of::<i16>()
            + self.records.capacity() * std::mem::size_of::<KafkaRecord>()
            + self.records.iter().map(KafkaRecord::heap_bytes).sum::<usize>()
    }
}
