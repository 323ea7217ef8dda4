//! The process's memory as the kernel sees it, and what `--max-memory` does about it.
//!
//! With a global budget (`Limits::max_memory_bytes`), the caps are derived from it when the state
//! is built ([`derive_limits`]): the entry store gets at most half of it, the flow table a
//! quarter (at [`FLOW_COST`] bytes per flow: the table entry is 1.2 KB, the rest is the hash
//! table's slack and the heap of a busy flow) and the finished-flow records a sixteenth. Caps count
//! what wirelens can count; the allocator and the dissectors' bounded buffers are not in them,
//! so the engine also watches its resident set ([`rss_bytes`]) every [`CHECK_PACKETS`] packets
//! and every second of capture time. Above [`PRESSURE`] of the budget it sheds load, in this
//! order, one step at a time until the resident set is below [`RELIEF`] of the budget:
//! 1. every flow's reassembly buffer is flushed (out-of-order bytes go to the dissectors now,
//!    holes become gaps);
//! 2. the oldest stored entries are evicted, down to half of what the store holds;
//! 3. the least recently active half of the flows ends early (their open messages are emitted
//!    as incomplete).
//!
//! After each step the allocator returns free memory to the kernel (`malloc_trim`). Every step
//! is counted ([`MemoryStats`]) and shown in `capture_status.memory`.

use crate::limits::Limits;

/// Bytes a tracked flow costs at most with empty buffers (the table entry, both reassemblers and
/// a dissector's state), for deriving `max_flows` from a memory budget.
pub const FLOW_COST: usize = 3_072;
/// Bytes a finished-flow record costs.
pub const FLOW_RECORD_COST: usize = 1_024;
/// Packets between two looks at the resident set.
pub const CHECK_PACKETS: u64 = 4_096;
/// Shedding starts above this share of the budget …
pub const PRESSURE: f64 = 0.85;
/// … and stops below this one.
pub const RELIEF: f64 = 0.70;

/// What `--max-memory` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Times the resident set was found above the pressure mark.
    pub pressure_events: u64,
    /// Step 1: reassembly buffers flushed, and the bytes they held.
    pub reassembly_flushes: u64,
    pub reassembly_bytes_flushed: u64,
    /// Step 2: entries evicted from the store for memory (also in the store's `evicted`).
    pub entries_shed: u64,
    /// Step 3: flows ended early for memory.
    pub flows_shed: u64,
    /// The resident set at the last look, and its peak (the kernel's high-water mark).
    pub rss_bytes: u64,
    pub peak_rss_bytes: u64,
}

impl MemoryStats {
    pub fn merge(&mut self, o: &MemoryStats) {
        self.pressure_events += o.pressure_events;
        self.reassembly_flushes += o.reassembly_flushes;
        self.reassembly_bytes_flushed += o.reassembly_bytes_flushed;
        self.entries_shed += o.entries_shed;
        self.flows_shed += o.flows_shed;
        self.rss_bytes = self.rss_bytes.max(o.rss_bytes);
        self.peak_rss_bytes = self.peak_rss_bytes.max(o.peak_rss_bytes);
    }
}

/// The caps of `limits`, lowered where a memory budget needs it (no cap is raised).
pub fn derive_limits(mut limits: Limits) -> Limits {
    let m = limits.max_memory_bytes;
    if m == 0 {
        return limits;
    }
    limits.store_memory_bytes = limits.store_memory_bytes.min(m / 2);
    limits.max_flows = limits.max_flows.min((m / 4 / FLOW_COST).max(1));
    limits.max_flow_records = limits.max_flow_records.min((m / 16 / FLOW_RECORD_COST).max(1));
    limits
}

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line[field.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The resident set now (0 where `/proc` is not readable).
pub fn rss_bytes() -> u64 {
    // statm is one short line: cheaper than status for the frequent look.
    let page = 4096;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page)
}

/// The peak resident set of the process so far.
pub fn peak_rss_bytes() -> u64 {
    status_kib("VmHWM").unwrap_or(0)
}

/// How the binary's allocator returns free memory to the kernel, when it is not glibc's
/// malloc (the `wirelens` binary uses jemalloc and registers its purge here).
static TRIM: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Registers the allocator's way of returning free memory (first call wins).
pub fn set_trim(f: fn()) {
    let _ = TRIM.set(f);
}

/// The bytes an allocation of `n` bytes really takes from the allocator: rounded up to its size
/// class (jemalloc's: 16-byte steps up to 128, then four classes per doubling; glibc's and
/// mimalloc's are finer). Stored entries are charged this, so the store's budget holds for the
/// resident set, not just for the bytes asked for. 0 for 0 (an empty box allocates nothing).
pub fn alloc_size(n: usize) -> usize {
    match n {
        0 => 0,
        1..=8 => 8,
        9..=128 => n.div_ceil(16) * 16,
        _ => {
            let step = n.next_power_of_two() >> 3;
            n.div_ceil(step) * step
        }
    }
}

/// Returns free heap memory to the kernel, so the resident set shows what shedding freed.
pub fn trim() {
    if let Some(f) = TRIM.get() {
        return f();
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim only releases free pages of the glibc heap; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Asks the CPU to bring the `len` bytes at `at` into its caches, a cache line at a time. A
/// prefetch is a hint: it reads nothing the program sees, changes no memory and never faults,
/// so `at` need not point at anything (past the end of a mapping, or null, it does nothing).
///
/// For memory about to be read or written where the processor's own prefetchers do not look
/// ahead: the records of a file shared by several engines, which each thread touches sparsely,
/// and the store's segment between one record and the next.
#[inline]
#[allow(unsafe_code)]
pub fn prefetch(at: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        const LINE: usize = 64;
        let skew = at as usize % LINE;
        let mut line = at.wrapping_sub(skew);
        let mut left = len + skew;
        while left > 0 {
            // SAFETY: a prefetch instruction never faults, whatever the address, and writes
            // nothing.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line.cast::<i8>()) };
            line = line.wrapping_add(LINE);
            left = left.saturating_sub(LINE);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (at, len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_sizes_are_rounded_to_size_classes() {
        let cases = [
            (0, 0),
            (1, 8),
            (8, 8),
            (9, 16),
            (100, 112),
            (128, 128),
            (129, 160),
            (160, 160),
            (257, 320),
            (5000, 5120),
            (20_000, 20_480),
            (65_536, 65_536),
            (65_537, 81_920),
        ];
        for (n, want) in cases {
            assert_eq!(alloc_size(n), want, "alloc_size({n})");
        }
        // Never less than asked; less than a quarter (or 16 bytes) over.
        for n in 1..100_000usize {
            let a = alloc_size(n);
            assert!(a >= n && a - n < (n / 4).max(16), "alloc_size({n}) = {a}");
        }
    }

    #[test]
    fn a_budget_lowers_the_caps_and_none_leaves_them() {
        let d = Limits::default();
        assert_eq!(derive_limits(d.clone()), d);
        let l = derive_limits(Limits {
            max_memory_bytes: 64 << 20,
            ..Limits::default()
        });
        assert_eq!(l.store_memory_bytes, 32 << 20);
        assert_eq!(l.max_flows, (16 << 20) / FLOW_COST);
        assert_eq!(l.max_flow_records, (4 << 20) / FLOW_RECORD_COST);
        // Never raised.
        let big = derive_limits(Limits {
            max_memory_bytes: 1 << 40,
            ..Limits::default()
        });
        assert_eq!(big.store_memory_bytes, d.store_memory_bytes);
        assert_eq!(big.max_flows, d.max_flows);
    }

    #[test]
    fn the_resident_set_is_read() {
        let r = rss_bytes();
        assert!(r > 1 << 20, "{r}");
        assert!(peak_rss_bytes() >= r);
    }
}
