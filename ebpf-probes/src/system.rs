//! What the host allows: the capabilities this process has, and tracefs.

use std::path::Path;

const CAP_NET_RAW: u32 = 13;
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The effective capability set of this process (`CapEff` in `/proc/self/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities(pub u64);

impl Capabilities {
    pub fn current() -> Capabilities {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        Capabilities::from_status(&status)
    }

    pub fn from_status(status: &str) -> Capabilities {
        let eff = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0);
        Capabilities(eff)
    }

    fn has(self, cap: u32) -> bool {
        self.0 & (1 << cap) != 0
    }

    /// Loading programs and creating maps: CAP_BPF (or CAP_SYS_ADMIN on old kernels).
    pub fn can_load_bpf(self) -> bool {
        self.has(CAP_BPF) || self.has(CAP_SYS_ADMIN)
    }

    /// Tracing programs (tracepoints, uprobes) and reading kernel memory: CAP_PERFMON.
    pub fn can_trace(self) -> bool {
        self.has(CAP_PERFMON) || self.has(CAP_SYS_ADMIN)
    }

    /// AF_PACKET sockets.
    pub fn can_capture(self) -> bool {
        self.has(CAP_NET_RAW)
    }
}

/// The capabilities missing for eBPF probes and for packet capture, by name.
pub fn missing_capabilities(caps: Capabilities) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if !caps.can_load_bpf() {
        missing.push("CAP_BPF");
    }
    if !caps.can_trace() {
        missing.push("CAP_PERFMON");
    }
    if !caps.can_capture() {
        missing.push("CAP_NET_RAW");
    }
    if !caps.has(CAP_NET_ADMIN) && !caps.has(CAP_SYS_ADMIN) {
        missing.push("CAP_NET_ADMIN");
    }
    missing
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of `bpf_ktime_get_ns`, which stamps every event.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

const TRACEFS: &str = "/sys/kernel/tracing";

/// Classic tracepoints need tracefs. Mounts it at /sys/kernel/tracing when nothing is there (a
/// fresh machine, or a network namespace entered with `ip netns exec`, which remounts /sys).
pub fn ensure_tracefs() -> Result<(), String> {
    let mounted = |p: &str| Path::new(p).read_dir().map(|mut d| d.next().is_some()).unwrap_or(false);
    if mounted(TRACEFS) || mounted("/sys/kernel/debug/tracing") {
        return Ok(());
    }
    let src = c"tracefs";
    let target = c"/sys/kernel/tracing";
    // SAFETY: valid NUL-terminated strings and no data argument.
    let rc = unsafe { libc::mount(src.as_ptr(), target.as_ptr(), src.as_ptr(), 0, std::ptr::null()) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!(
            "tracefs is not mounted and mounting it at {TRACEFS} failed ({e}); mount it (`mount -t tracefs tracefs {TRACEFS}`) or run with CAP_SYS_ADMIN"
        ));
    }
    tracing::info!("mounted tracefs at {TRACEFS}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_from_proc_status() {
        let root = Capabilities::from_status("Name:\tx\nCapEff:\t000001ffffffffff\n");
        assert!(root.can_load_bpf() && root.can_trace() && root.can_capture());
        assert!(missing_capabilities(root).is_empty());
        let none = Capabilities::from_status("CapEff:\t0000000000000000\n");
        assert_eq!(
            missing_capabilities(none),
            ["CAP_BPF", "CAP_PERFMON", "CAP_NET_RAW", "CAP_NET_ADMIN"]
        );
        // cap_net_raw only.
        let raw = Capabilities::from_status("CapEff:\t0000000000002000\n");
        assert!(raw.can_capture() && !raw.can_load_bpf());
        assert_eq!(Capabilities::from_status("garbage"), Capabilities(0));
    }
}
