//! Packet synthesis for the demo, tests and benchmarks.
//!
//! - [`packet`]: single Ethernet/IPv4/IPv6/TCP/UDP frames with correct checksums, and a strict
//!   decoder to check them;
//! - [`conversation`]: whole TCP connections (handshake, data, ACKs, FIN/RST) as timed frames,
//!   clean or with loss, slow readers and refused connection attempts;
//! - [`pcap`]: classic pcap (µs or ns) and pcapng writers;
//! - [`http_workload`]: a deterministic HTTP/1.1 benchmark capture of any size, streamed;
//! - [`messages`]: Redis (RESP) and DNS messages for the demo;
//! - [`rng`]: the seedable PRNG behind all of them.

pub mod adversarial;
pub mod conversation;
pub mod h2;
pub mod http_workload;
pub mod messages;
pub mod packet;
pub mod pcap;
pub mod rng;
#[cfg(test)]
pub(crate) mod testutil;

pub use conversation::{Conversation, Impairments, LINK, SlowReader, SynthPacket, TcpEvents};
