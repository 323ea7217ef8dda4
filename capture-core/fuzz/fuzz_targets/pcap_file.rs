//! The input as a whole pcap/pcapng file, through a full engine. Errors are fine; panics are not.
#![no_main]

mod common;

use std::path::Path;

use capture_core::source::file::read_from;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut engine = common::engine();
    let _ = read_from(
        Path::new("fuzz.pcap"),
        data,
        1 << 20,
        &mut |p| engine.process(p),
        &mut |_| {},
    );
    engine.finish();
});
