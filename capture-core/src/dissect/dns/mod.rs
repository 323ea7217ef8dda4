//! DNS over UDP and over TCP, found by content on any port.
//!
//! - [`parse`]: header, questions and record structure with a compression-loop guard and caps,
//!   record data rendered by `hickory-proto`, EDNS0 and client subnet, and the probes;
//! - [`state`]: queries paired with responses by id and question per flow (UDP 5-tuple or TCP
//!   connection), with latency; retransmitted and unanswered queries and responses without a
//!   query are entries too. Over TCP, the 2-byte length prefix frames several messages per
//!   segment and messages split across segments;
//! - [`doh`]: DNS over HTTPS, a `dns` entry for the exchange an HTTP entry carries.

pub mod doh;
pub mod parse;
pub mod state;

#[cfg(test)]
mod tests;

use crate::time::Timestamp;
pub use parse::{Edns, Question, Record};

/// Facts and anomalies of a DNS entry, as bit flags.
pub mod dns_flags {
    /// A query repeated (same id and question) while the first was still unanswered and within
    /// `dns_retransmit_window_us`: the response, if any, is paired with the first.
    pub const RETRANSMISSION: u32 = 1;
    /// A query that got no response in the capture.
    pub const NO_RESPONSE: u32 = 2;
    /// Declared unanswered after `dns_query_timeout_us`, or replaced by a later retry.
    pub const TIMED_OUT: u32 = 4;
    /// A response whose query was not captured.
    pub const NO_QUERY: u32 = 8;
    /// Evicted from the queue of unanswered queries (`dns_max_pending`).
    pub const PENDING_OVERFLOW: u32 = 16;
    /// A message with problems (see each message's `problems`).
    pub const MALFORMED: u32 = 32;
}

/// One DNS message as kept in an entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsMessage {
    /// The header's flag word (QR, opcode, AA, TC, RD, RA, AD, CD, RCODE).
    pub flags: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
    /// The first `dns_max_records` answers.
    pub answers: Vec<Record>,
    pub edns: Option<Edns>,
    /// [`parse::problems`] bits.
    pub problems: u32,
    /// Bytes of the message (without a TCP length prefix).
    pub size: u32,
    /// Capture time of its first byte.
    pub ts: Timestamp,
}

impl DnsMessage {
    pub fn header(&self) -> parse::Header {
        parse::Header {
            id: 0,
            flags: self.flags,
            qdcount: self.qdcount,
            ancount: self.ancount,
            nscount: self.nscount,
            arcount: self.arcount,
        }
    }

    fn heap_bytes(&self) -> usize {
        self.answers
            .iter()
            .map(|r| std::mem::size_of::<Record>() + r.name.len() + r.data.len())
            .sum::<usize>()
            + self.edns.as_ref().map_or(0, |e| {
                std::mem::size_of::<Edns>() + e.options.len() * 2 + e.client_subnet.as_ref().map_or(0, String::len)
            })
    }
}

/// One DNS exchange: a query with its response, or a lone query or response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsEntry {
    pub id: u16,
    pub opcode: u8,
    /// The query's questions (the response's when the query was not captured).
    pub questions: Vec<Question>,
    pub query: Option<DnsMessage>,
    pub response: Option<DnsMessage>,
    /// [`dns_flags`] bits.
    pub flags: u32,
}

impl DnsEntry {
    pub fn qname(&self) -> Option<&str> {
        self.questions.first().map(|q| q.name.as_str())
    }

    pub fn qtype(&self) -> Option<u16> {
        self.questions.first().map(|q| q.qtype)
    }

    /// The response's 4-bit header RCODE; `None` without a response.
    pub fn rcode(&self) -> Option<u8> {
        self.response.as_ref().map(|r| r.header().rcode())
    }

    /// The full RCODE, EDNS extended bits included.
    pub fn extended_rcode(&self) -> Option<u16> {
        self.response
            .as_ref()
            .map(|r| u16::from(r.header().rcode()) | r.edns.as_ref().map_or(0, |e| u16::from(e.extended_rcode) << 4))
    }

    /// ANCOUNT of the response; `None` without a response.
    pub fn answer_count(&self) -> Option<u16> {
        self.response.as_ref().map(|r| r.ancount)
    }

    /// The EDNS client subnet of the query (else of the response).
    pub fn client_subnet(&self) -> Option<&str> {
        [&self.query, &self.response]
            .into_iter()
            .flatten()
            .find_map(|m| m.edns.as_ref()?.client_subnet.as_deref())
    }

    pub fn heap_bytes(&self) -> usize {
        self.questions
            .iter()
            .map(|q| std::mem::size_of::<Question>() + q.name.len())
            .sum::<usize>()
            + [&self.query, &self.response]
                .into_iter()
                .flatten()
                .map(|m| std::mem::size_of::<DnsMessage>() + m.heap_bytes())
                .sum::<usize>()
    }

    /// One line: `A example.com → NOERROR, 2 answers`, payload text escaped and cut.
    pub fn summary(&self) -> String {
        use crate::entry::sanitize;
        let mut s = match self.questions.first() {
            Some(q) => format!("{} {}", parse::type_text(q.qtype), sanitize(&q.name, 120)),
            None => format!("id {:#06x} (no question)", self.id),
        };
        if self.questions.len() > 1 {
            s.push_str(&format!(" (+{} questions)", self.questions.len() - 1));
        }
        match &self.response {
            Some(r) => {
                let rcode = self.extended_rcode().unwrap_or(0);
                s.push_str(&format!(" → {}", parse::rcode_name(rcode)));
                s.push_str(&format!(
                    ", {} answer{}",
                    r.ancount,
                    if r.ancount == 1 { "" } else { "s" }
                ));
                if let Some(first) = r.answers.first().filter(|a| !a.data.is_empty()) {
                    s.push_str(&format!(" ({})", sanitize(&first.data, 60)));
                }
                if r.header().truncated() {
                    s.push_str(", truncated");
                }
                if self.query.is_none() {
                    s.push_str(" (query not captured)");
                }
            }
            None if self.flags & dns_flags::RETRANSMISSION != 0 => s.push_str(" → retransmission"),
            None => s.push_str(" → no response"),
        }
        s
    }
}
