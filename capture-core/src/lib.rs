//! capture-core: the wirelens engine.
//!
//! # Layout
//! Data flows one way:
//! - [`source`] lends packets (pcap/pcapng files, the built-in demo);
//! - [`synth`] builds packets and pcap files for the demo, tests and benchmarks;
//! - [`time`] holds capture timestamps.
#![forbid(unsafe_code)]

pub mod source;
pub mod synth;
pub mod time;
pub mod wire;
