//! `cargo run --release -p capture-core --example import -- FILE [STORE_MIB [THREADS]]`: one engine
//! (or THREADS engines sharing the file, as `--capture-threads` does) reads a capture into a store (the path `wirelens call --pcap FILE capture_status` takes) and prints
//! the process's user and system CPU seconds, MB per CPU-second, entries inserted and peak RSS,
//! then the store's charge per entry beyond the payload bytes it keeps.
//! `… -- FILE read` only reads the file (the floor).
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
    let threads: usize = args.next().map_or(1, |a| a.parse().expect("THREADS"));
    let started = std::time::Instant::now();
    if threads > 1 {
        // What `--capture-threads N` does with a file.
        let group = capture_core::engine::EngineGroup::new(threads, &limits);
        let mut engines: Vec<Engine> = (0..threads)
            .map(|i| {
                let mut e = Engine::new(limits.clone(), shared.clone());
                e.join(&group, i);
                e
            })
            .collect();
        capture_core::source::sharded::read_file(&mut engines, std::path::Path::new(&path), limits.max_record_bytes)
            .expect("read_file");
    } else {
        let mut engine = Engine::new(limits, shared.clone());
        engine.read_pcap(std::path::Path::new(&path)).expect("read_pcap");
    }
    let wall = started.elapsed().as_secs_f64();
    let (user, sys, rss_kb) = rusage();
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    let st = shared.store.stats();
    println!(
        "user {user:.2} s  sys {sys:.2} s  cpu {:.2} s  wall {wall:.2} s  {:.0} MB/CPU-s  inserted {}  kept {}  peak RSS {} MiB",
        user + sys,
        bytes as f64 / 1e6 / (user + sys),
        st.inserted,
        st.entries,
        rss_kb / 1024
    );
    // What the store charges per entry beyond the captured bytes it keeps (heads, bodies and
    // trailers), from its own accounting.
    let mut payload = 0u64;
    let scan_started = std::time::Instant::now();
    shared.store.scan(capture_core::store::Order::Asc, None, &mut |e| {
        if let Some(h) = e.http() {
            for m in [&h.request, &h.response].into_iter().flatten() {
                payload += (m.head.len() + m.body.len() + m.trailers.len()) as u64;
            }
        }
        std::ops::ControlFlow::Continue(())
    });
    let scanned = scan_started.elapsed();
    println!(
        "store: {} bytes for {} entries, {} of them payload: {:.0} bytes per entry beyond the payload",
        st.bytes,
        st.entries,
        payload,
        (st.bytes - payload) as f64 / st.entries.max(1) as f64
    );
    println!(
        "scan: every entry read back in {:.1} ms ({:.0} ns per entry)",
        scanned.as_secs_f64() * 1e3,
        scanned.as_nanos() as f64 / st.entries.max(1) as f64
    );
    // The same from the kernel: what emptying the store gives back, with the allocator's free
    // pages returned before and after.
    purge();
    let held = capture_core::memory::rss_bytes();
    shared.store.shed_to(0);
    purge();
    let freed = held.saturating_sub(capture_core::memory::rss_bytes());
    println!(
        "resident set: emptying the store gave back {freed} bytes: {:.0} bytes per entry beyond the payload",
        (freed as f64 - payload as f64) / st.entries.max(1) as f64
    );
}

/// Returns jemalloc's free pages of every arena to the kernel (`arena.<MALLCTL_ARENAS_ALL>.purge`).
fn purge() {
    // SAFETY: a NUL-terminated control name, no old or new value, as jemalloc documents for
    // this void control.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            c"arena.4096.purge".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        );
    }
}

// The allocator and settings of the `wirelens` binary (mcp-server/src/alloc.rs), so that the
// numbers here are the binary's.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8] =
    b"thp:always,metadata_thp:auto,dirty_decay_ms:10000,muzzy_decay_ms:0,cache_oblivious:false\0";
