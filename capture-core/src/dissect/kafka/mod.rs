//! Kafka: requests paired with their responses by correlation id, per connection.

pub mod parse;
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

/// One Kafka request with its response, or a lone response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KafkaEntry {
    /// `None` for a response whose request was not captured.
    pub api_key: Option<i16>,
    pub api_version: Option<i16>,
    pub correlation_id: i32,
    pub client_id: Option<Box<str>>,
    pub topics: Vec<Box<str>>,
    /// Records in the Produce request's record batches.
    pub record_count: Option<u64>,
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
        s.push_str(&format!(" #{}", self.correlation_id));
        if let Some(n) = self.record_count {
            s.push_str(&format!(" {n} records"));
        }
        if self.response_bytes.is_none() {
            s.push_str(" → no response");
        }
        s
    }

    pub fn heap_bytes(&self) -> usize {
        self.client_id.as_ref().map_or(0, |c| c.len()) + self.topics.iter().map(|t| t.len() + 16).sum::<usize>()
    }
}
