//! `cargo run --release -p capture-core --example import -- FILE [STORE_MIB]`: one engine reads a
//! capture into a store (the path `wirelens call --pcap FILE capture_status` takes) and prints
//! the process's user and system CPU seconds, MB per CPU-second, entries inserted and peak RSS.
//! For profiling the pipeline without building the whole binary.

use capture_core::engine::{Engine, Shared};
use capture_core::limits::Limits;

fn rusage() -> (f64, f64, i64) {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (s(u.ru_utime), s(u.ru_stime), u.ru_maxrss)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: import FILE [STORE_MIB]");
    let mode = args.next();
    if mode.as_deref() == Some("read") {
        let mut n = 0u64;
        capture_core::source::file::read_file(
            std::path::Path::new(&path),
            1 << 24,
            |p| n += p.data.len() as u64,
            &mut |_| {},
        )
        .expect("read");
        let (user, sys, rss_kb) = rusage();
        println!(
            "read only: {n} bytes, user {user:.2} s  sys {sys:.2} s  peak RSS {} MiB",
            rss_kb / 1024
        );
        return;
    }
    let mib: usize = mode.map_or(512, |a| a.parse().expect("STORE_MIB"));
    let budget = mib << 20;
    let limits = Limits {
        store_memory_bytes: budget,
        ..Limits::default()
    };
    let shared = Shared::new(budget);
    let mut engine = Engine::new(limits, shared.clone());
    engine.read_pcap(std::path::Path::new(&path)).expect("read_pcap");
    drop(engine);
    let (user, sys, rss_kb) = rusage();
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    let st = shared.store.stats();
    println!(
        "user {user:.2} s  sys {sys:.2} s  cpu {:.2} s  {:.0} MB/CPU-s  inserted {}  kept {}  peak RSS {} MiB",
        user + sys,
        bytes as f64 / 1e6 / (user + sys),
        st.inserted,
        st.entries,
        rss_kb / 1024
    );
}
