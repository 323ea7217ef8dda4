//! Capture filters: lexing, parsing and compiling arbitrary text; every program that compiles
//! passes the kernel-style checks, its normal form compiles to the same program, and it runs
//! over a packet on every link type without panicking. `not (F)` keeps exactly what `F` drops
//! unless a load fell outside the packet (then both drop it, as in the kernel).
//!
//! Input: the filter text (invalid UTF-8 is replaced), then `common::DELIM`, then one frame.
#![no_main]

mod common;

use capture_core::source::Packet;
use capture_core::source::bpf::{BPF_MAXINSNS, ErrorKind, Filter, Program};
use capture_core::time::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parts = common::split(data);
    let text = String::from_utf8_lossy(parts[0]);
    let frame = parts.get(1).copied().unwrap_or(&[]);
    let Ok(f) = Filter::compile(&text) else {
        return;
    };
    let insns = f.program().insns().to_vec();
    assert!(!insns.is_empty() && insns.len() <= BPF_MAXINSNS);
    assert!(
        Program::new(insns).is_ok(),
        "`{text}` compiled to a program the checks refuse"
    );
    // The normal form spells inherited qualifiers out, so it may pass the length cap.
    match Filter::compile(f.normalized()) {
        Ok(again) => assert_eq!(again.program(), f.program(), "`{text}` and its normal form differ"),
        Err(e) if e.kind == ErrorKind::Limit => return,
        Err(e) => panic!(
            "the normal form of `{text}`, `{}`, does not compile: {e}",
            f.normalized()
        ),
    }
    let _ = f.disassemble();
    if f.normalized().is_empty() {
        // The empty filter keeps everything and has no negation to write.
        return;
    }

    let negated = match Filter::compile(&format!("not ({})", f.normalized())) {
        Ok(n) => n,
        Err(e) if e.kind == ErrorKind::Limit => return,
        Err(e) => panic!("the negation of `{text}` does not compile: {e}"),
    };
    for link in common::LINKS {
        let pkt = Packet {
            ts: Timestamp(1_700_000_000_000_000_000),
            link,
            data: frame,
            orig_len: frame.len() as u32,
            interface: 0,
        };
        let (yes, no) = (f.matches(&pkt), negated.matches(&pkt));
        assert!(!(yes && no), "`{text}` and its negation both keep a packet");
    }
});
