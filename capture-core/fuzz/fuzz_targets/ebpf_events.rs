//! Records from the eBPF probes' ring buffers, and what the engine does with them.
//!
//! Input: bytes cut into records by a leading length byte each. Parsing must never panic or read
//! past a record; TCP events go into the bounded kernel table, TLS plaintext through the
//! dissectors (every entry marked `tls`), with connections and entries within their caps.
#![no_main]

use capture_core::dissect::DissectStats;
use capture_core::ebpf_probes::{Event, events};
use capture_core::kernel::KernelTable;
use capture_core::kernel::tls::TlsStreams;
use capture_core::limits::Limits;
use capture_core::tcp::flow::FlowKey;
use capture_core::time::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        tls_max_connections: 4,
        ebpf_max_connections: 4,
        dissector_buffer_bytes: 512,
        ..Limits::default()
    };
    let mut table = KernelTable::new(limits.ebpf_max_connections);
    let mut tls = TlsStreams::default();
    let mut out = Vec::new();
    let mut stats = DissectStats::default();
    let no_flow = |_: &FlowKey| None;
    let mut rest = data;
    let mut ts = 0u64;
    while let Some((&len, tail)) = rest.split_first() {
        let n = (usize::from(len) * 2).min(tail.len());
        let (record, next) = tail.split_at(n);
        rest = next;
        ts += 1_000;
        match events::parse(record) {
            Some(Event::Tcp(t)) => table.record(&t, Timestamp(ts)),
            Some(Event::Tls(t)) => {
                assert!(t.data.len() <= record.len());
                tls.on_event(&t, Timestamp(ts), &limits, &no_flow, &mut out, &mut stats);
            }
            None => {}
        }
        assert!(table.len() <= limits.ebpf_max_connections);
        assert!(tls.len() <= limits.tls_max_connections);
    }
    table.sweep(Timestamp(ts + 1), 0);
    tls.sweep(Timestamp(ts + 1), 0, &limits, &mut out, &mut stats);
    assert!(tls.is_empty() && table.is_empty());
    for e in &out {
        assert!(e.tls);
        let _ = e.summary();
    }
});
