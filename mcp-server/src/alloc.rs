//! The binary's allocator: jemalloc, with transparent huge pages.
//!
//! Reading a capture allocates and frees several buffers per HTTP exchange and keeps hundreds of
//! megabytes of payload in the store. Measured on the 1 GB benchmark capture (`scripts/
//! bench-vs-peers`), glibc's malloc took 1.66 CPU-seconds, a third of it in malloc/free and in
//! page faults for fresh 4 KiB pages; jemalloc with huge pages took 1.17.
//!
//! - `thp:always` backs jemalloc's extents with 2 MiB pages (one fault instead of 512);
//! - `dirty_decay_ms:10000`/`muzzy_decay_ms:0`: freed pages go back to the kernel within ten
//!   seconds, so the resident set follows the store's budget. With one second, an import that
//!   evicts as fast as it inserts gave back huge pages it needed again a moment later and
//!   faulted fresh zeroed ones in: up to 0.35 CPU-s more per GB, in one run out of three;
//! - `cache_oblivious:false`: jemalloc otherwise pads every large allocation by a page and
//!   starts it at a random cache line in that page. The store's 1 MiB segments then take
//!   1 MiB + 4 KiB each, and they no longer tile the 2 MiB pages: reading the 1 GB capture
//!   peaked at 374 MiB resident with the default 256 MiB store and 692 MiB with 512 MiB, against
//!   326 and 589 MiB without the padding. System time fell from 0.14–0.51 CPU-s to 0.07–0.11
//!   (three paired runs), with the same user time. Segments and body buffers are written front
//!   to back, so the cache-set spreading the padding buys does not matter here;
//! - [`purge`] returns every free page at once: the engine calls it (through
//!   `capture_core::memory::set_trim`) after shedding load under `--max-memory`;
//! - [`strict`], for `--max-memory`: no huge pages and freed pages returned at once, because a
//!   resident set held to a budget matters more there than speed (a million-SYN flood peaked at
//!   111 MiB under a 96 MiB budget with the defaults, 99 MiB with these).

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Read by jemalloc at its first allocation (the `_rjem_` prefix is tikv-jemalloc-sys's).
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8] =
    b"thp:always,metadata_thp:auto,dirty_decay_ms:10000,muzzy_decay_ms:0,cache_oblivious:false\0";

/// Returns the free pages of every arena to the kernel.
pub fn purge() {
    // `arena.<MALLCTL_ARENAS_ALL>.purge`, MALLCTL_ARENAS_ALL being 4096.
    let name = b"arena.4096.purge\0";
    // SAFETY: a NUL-terminated control name, no old or new value (null pointers, zero length),
    // as jemalloc's documentation gives for this void control.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr().cast(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        );
    }
}

/// Sets a jemalloc control to `value` (a `ssize_t`); ignores a control that does not exist.
fn set_isize(name: &[u8], mut value: isize) {
    // SAFETY: a NUL-terminated control name and a pointer to a value of the size jemalloc
    // documents for it (`ssize_t`), read during the call only; no old value is asked for.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr().cast(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            (&raw mut value).cast(),
            std::mem::size_of::<isize>(),
        );
    }
}

/// Memory held to a budget (`--max-memory`): transparent huge pages off for the process (the
/// kernel then ignores jemalloc's requests for them) and freed pages returned to the kernel at
/// once, in the arenas that exist and those to come.
pub fn strict() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers; it only changes this process's flag.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    for name in [
        &b"arenas.dirty_decay_ms\0"[..],
        b"arenas.muzzy_decay_ms\0",
        b"arena.4096.dirty_decay_ms\0",
        b"arena.4096.muzzy_decay_ms\0",
    ] {
        set_isize(name, 0);
    }
    purge();
}
