//! capture-core: the wirelens engine.
//!
//! # Layout
//! Data flows one way:
//! - [`source`] lends packets (pcap/pcapng files, the built-in demo);
//! - [`wire`] decodes link, IP (with fragment reassembly), TCP and UDP headers without copying;
//! - [`tcp`] keeps the flow table and reassembles each direction within fixed caps;
//! - [`dissect`] finds the application protocol by content and turns bytes into [`entry::Entry`]s;
//! - [`store`] keeps entries within a memory budget, oldest evicted first; [`buffers`] reuses
//!   body buffers from one message to the next;
//! - [`engine`] runs packets through all of the above; [`stats`] counts what it read and dropped;
//! - [`fields`] names every entry field (the registry behind projections and filters);
//! - [`kfl`] is the filter language: parsed with lalrpop, type-checked against [`fields`];
//! - [`limits`] holds every cap; [`time`] capture timestamps;
//! - [`forensics`] keeps raw packets (the raw ring, snapshots) and exports them as pcapng;
//! - [`synth`] builds packets and pcap files for the demo, tests and benchmarks.
// The exceptions are `source::afpacket` (the kernel's mmap ring) and `memory::trim` (one libc
// call without pointers), audited and allowed there.
#![deny(unsafe_code)]

pub mod ascii;
pub mod buffers;
pub mod content;
pub mod dissect;
pub mod endpoint;
pub mod engine;
pub mod enrich;
pub mod entry;
pub mod fields;
pub mod flows;
pub mod forensics;
pub mod health;
pub mod kernel;
pub mod kfl;
pub mod limits;
pub mod memory;
pub mod redact;
pub mod source;
pub mod stats;
pub mod store;
pub mod synth;
pub mod tcp;
pub mod time;
pub mod wire;

/// The eBPF probes (their configuration and status types are part of this crate's API).
pub use ebpf_probes;
