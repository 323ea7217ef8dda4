//! Loading and attaching the probes with aya 0.14, reading their ring buffers, and reporting
//! what is attached.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::uprobe::UProbeScope;
use aya::programs::{BtfTracePoint, ProgramError, TracePoint, UProbe};
use aya::{Btf, Ebpf, EbpfLoader};

use crate::events::{self, Event};
use crate::system::{self, Capabilities};
use crate::targets::{self, Library};

static TCP_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tcp.bpf.o"));
static TLS_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tls.bpf.o"));

/// Index of the "ring buffer full" counter (`CNT_RING_FULL`).
const CNT_RING_FULL: u32 = 0;

/// The OpenSSL functions probed, each with its entry and return program.
const SSL_FUNCTIONS: [(&str, &str, &str); 4] = [
    ("SSL_write", "ssl_write_enter", "ssl_write_leave"),
    ("SSL_read", "ssl_read_enter", "ssl_read_leave"),
    ("SSL_write_ex", "ssl_write_ex_enter", "ssl_write_ex_leave"),
    ("SSL_read_ex", "ssl_read_ex_enter", "ssl_read_ex_leave"),
];

/// Syscalls whose fd names the socket of the SSL call in progress.
const FD_SYSCALLS: [&str; 8] = [
    "write", "read", "writev", "readv", "sendto", "recvfrom", "sendmsg", "recvmsg",
];

/// What to attach.
#[derive(Debug, Clone)]
pub struct Config {
    /// The TCP probes (handshake RTT, retransmissions, srtt/cwnd samples).
    pub tcp: bool,
    /// At most one srtt/cwnd sample per socket per interval.
    pub probe_interval: Duration,
    /// Processes whose TLS plaintext is captured.
    pub tls_pids: Vec<u32>,
    /// cgroups (v2 paths) whose processes' TLS plaintext is captured, sub-cgroups included.
    pub tls_cgroups: Vec<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tcp: true,
            probe_interval: Duration::from_millis(100),
            tls_pids: Vec::new(),
            tls_cgroups: Vec::new(),
        }
    }
}

/// One hook: attached, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookStatus {
    /// e.g. `tracepoint/sock/inet_sock_set_state`, `uprobe/SSL_write@/usr/lib/…/libssl.so.3`.
    pub hook: String,
    pub attached: bool,
    pub error: Option<String>,
}

/// One `--tls-pid` or `--tls-cgroup` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsTargetStatus {
    /// `pid 1234` or `cgroup /sys/fs/cgroup/…`.
    pub target: String,
    pub attached: bool,
    /// The libssl files probed for it.
    pub libraries: Vec<String>,
    /// Why it is not attached (or what is partial).
    pub reason: Option<String>,
}

/// What [`Probes::start`] managed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Some probe is attached and events can arrive.
    pub available: bool,
    /// Why nothing (or not everything) could be attached, in one sentence.
    pub reason: Option<String>,
    pub hooks: Vec<HookStatus>,
    pub tls_targets: Vec<TlsTargetStatus>,
    /// Capabilities this process lacks (of CAP_BPF, CAP_PERFMON, CAP_NET_RAW, CAP_NET_ADMIN).
    pub missing_capabilities: Vec<String>,
}

struct Loaded {
    /// Owns the programs and their links: dropping it detaches them.
    _bpf: Ebpf,
    ring: RingBuf<MapData>,
    counters: PerCpuArray<MapData, u64>,
}

/// Attached probes and their ring buffers.
pub struct Probes {
    tcp: Option<Loaded>,
    tls: Option<Loaded>,
    /// Records that did not parse (a layout mismatch would show here).
    pub malformed: u64,
}

fn describe(e: &ProgramError) -> String {
    match e {
        ProgramError::LoadError { io_error, verifier_log } => {
            let log = verifier_log.to_string();
            let tail: Vec<&str> = log.lines().rev().take(3).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!("load failed: {io_error}; verifier: {}", tail.join(" | "))
        }
        other => {
            let mut s = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(e) = src {
                s.push_str(": ");
                s.push_str(&e.to_string());
                src = e.source();
            }
            s
        }
    }
}

fn status(hook: String, r: Result<(), String>) -> HookStatus {
    match r {
        Ok(()) => HookStatus {
            hook,
            attached: true,
            error: None,
        },
        Err(e) => {
            tracing::warn!(%hook, "eBPF hook not attached: {e}");
            HookStatus {
                hook,
                attached: false,
                error: Some(e),
            }
        }
    }
}

fn take_rings(
    bpf: &mut Ebpf,
    ring: &str,
    counters: &str,
) -> Result<(RingBuf<MapData>, PerCpuArray<MapData, u64>), String> {
    let r = bpf.take_map(ring).ok_or_else(|| format!("map {ring} missing"))?;
    let c = bpf
        .take_map(counters)
        .ok_or_else(|| format!("map {counters} missing"))?;
    Ok((
        RingBuf::try_from(r).map_err(|e| e.to_string())?,
        PerCpuArray::try_from(c).map_err(|e| e.to_string())?,
    ))
}

impl Probes {
    /// Attaches what `cfg` asks for, as far as the host allows. Never fails: what could not be
    /// attached is in the report, with the reason.
    pub fn start(cfg: &Config) -> (Option<Probes>, Report) {
        let mut report = Report::default();
        let want_tls = !cfg.tls_pids.is_empty() || !cfg.tls_cgroups.is_empty();
        if !cfg.tcp && !want_tls {
            report.reason = Some("eBPF probes are off".into());
            return (None, report);
        }
        if let Some(why) = crate::not_built() {
            report.reason = Some(format!("this wirelens binary has no eBPF probes: {why}"));
            return (None, report);
        }
        let caps = Capabilities::current();
        report.missing_capabilities = system::missing_capabilities(caps)
            .into_iter()
            .map(String::from)
            .collect();
        if !caps.can_load_bpf() || !caps.can_trace() {
            report.reason =
                Some("eBPF probes need CAP_BPF and CAP_PERFMON (or root); running with packet capture only".into());
            return (None, report);
        }
        let tracefs = system::ensure_tracefs();
        let mut probes = Probes {
            tcp: None,
            tls: None,
            malformed: 0,
        };
        let mut problems = Vec::new();
        if cfg.tcp {
            match load_tcp(cfg, &tracefs, &mut report.hooks) {
                Ok(l) => probes.tcp = Some(l),
                Err(e) => problems.push(format!("TCP probes: {e}")),
            }
        }
        if want_tls {
            match load_tls(cfg, &tracefs, &mut report) {
                Ok(l) => probes.tls = Some(l),
                Err(e) => {
                    for t in cfg
                        .tls_pids
                        .iter()
                        .map(|p| format!("pid {p}"))
                        .chain(cfg.tls_cgroups.iter().map(|c| format!("cgroup {}", c.display())))
                    {
                        report.tls_targets.push(TlsTargetStatus {
                            target: t,
                            attached: false,
                            libraries: Vec::new(),
                            reason: Some(e.clone()),
                        });
                    }
                    problems.push(format!("TLS probes: {e}"));
                }
            }
        }
        let failed_hooks: Vec<&str> = report
            .hooks
            .iter()
            .filter(|h| !h.attached)
            .map(|h| h.hook.as_str())
            .collect();
        if !failed_hooks.is_empty() {
            problems.push(format!("not attached: {}", failed_hooks.join(", ")));
        }
        report.available = report.hooks.iter().any(|h| h.attached);
        if !problems.is_empty() {
            report.reason = Some(problems.join("; "));
        }
        if probes.tcp.is_none() && probes.tls.is_none() {
            return (None, report);
        }
        (Some(probes), report)
    }

    /// Waits up to `timeout` for events, then hands every waiting event to `visit`. Returns how
    /// many were read.
    pub fn poll(&mut self, timeout: Duration, visit: &mut dyn FnMut(Event<'_>)) -> usize {
        let mut n = self.drain(visit);
        if n > 0 || timeout.is_zero() {
            return n;
        }
        let mut fds: Vec<libc::pollfd> = [&self.tcp, &self.tls]
            .into_iter()
            .flatten()
            .map(|l| libc::pollfd {
                fd: l.ring.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        n += self.drain(visit);
        n
    }

    fn drain(&mut self, visit: &mut dyn FnMut(Event<'_>)) -> usize {
        let mut n = 0;
        for l in [&mut self.tcp, &mut self.tls].into_iter().flatten() {
            // Bounded per call so one busy ring cannot starve the caller.
            for _ in 0..65536 {
                let Some(item) = l.ring.next() else { break };
                match events::parse(&item) {
                    Some(e) => visit(e),
                    None => self.malformed += 1,
                }
                n += 1;
            }
        }
        n
    }

    /// Events the kernel side could not write because a ring buffer was full.
    pub fn ring_full_drops(&self) -> u64 {
        [&self.tcp, &self.tls]
            .into_iter()
            .flatten()
            .filter_map(|l| l.counters.get(&CNT_RING_FULL, 0).ok())
            .map(|v| v.iter().sum::<u64>())
            .sum()
    }
}

fn load_tcp(cfg: &Config, tracefs: &Result<(), String>, hooks: &mut Vec<HookStatus>) -> Result<Loaded, String> {
    let interval = u64::try_from(cfg.probe_interval.as_nanos()).unwrap_or(u64::MAX);
    let mut bpf = EbpfLoader::new()
        .override_global("probe_interval_ns", &interval, true)
        .load(TCP_OBJECT)
        .map_err(|e| format!("loading the object failed: {e}"))?;
    for (prog, category, name) in [
        ("inet_sock_set_state", "sock", "inet_sock_set_state"),
        ("tcp_retransmit_skb", "tcp", "tcp_retransmit_skb"),
    ] {
        let r = (|| {
            tracefs.clone()?;
            let tp: &mut TracePoint = bpf
                .program_mut(prog)
                .ok_or("program missing")?
                .try_into()
                .map_err(|e: ProgramError| describe(&e))?;
            tp.load().map_err(|e| describe(&e))?;
            tp.attach(category, name).map_err(|e| describe(&e))?;
            Ok::<(), String>(())
        })();
        hooks.push(status(format!("tracepoint/{category}/{name}"), r));
    }
    let r = (|| {
        let btf = Btf::from_sys_fs().map_err(|e| format!("no kernel BTF: {e}"))?;
        let p: &mut BtfTracePoint = bpf
            .program_mut("tcp_probe")
            .ok_or("program missing")?
            .try_into()
            .map_err(|e: ProgramError| describe(&e))?;
        p.load("tcp_probe", &btf).map_err(|e| describe(&e))?;
        p.attach().map_err(|e| describe(&e))?;
        Ok::<(), String>(())
    })();
    hooks.push(status("tp_btf/tcp_probe".into(), r));
    let (ring, counters) = take_rings(&mut bpf, "tcp_events", "counters")?;
    Ok(Loaded {
        _bpf: bpf,
        ring,
        counters,
    })
}

fn load_tls(cfg: &Config, tracefs: &Result<(), String>, report: &mut Report) -> Result<Loaded, String> {
    let mut bpf = EbpfLoader::new()
        .load(TLS_OBJECT)
        .map_err(|e| format!("loading the object failed: {e}"))?;

    // Who is captured: the in-kernel filter.
    {
        let mut pids: BpfHashMap<_, u32, u8> =
            BpfHashMap::try_from(bpf.map_mut("tls_pids").ok_or("map tls_pids missing")?).map_err(|e| e.to_string())?;
        for &p in &cfg.tls_pids {
            pids.insert(p, 1, 0).map_err(|e| format!("tls_pids: {e}"))?;
        }
    }
    let mut cgroup_targets = Vec::new();
    {
        let mut cgs: BpfHashMap<_, u64, u8> =
            BpfHashMap::try_from(bpf.map_mut("tls_cgroups").ok_or("map tls_cgroups missing")?)
                .map_err(|e| e.to_string())?;
        let root = if cfg.tls_cgroups.is_empty() {
            Ok(PathBuf::new())
        } else {
            targets::cgroup_root()
        };
        for c in &cfg.tls_cgroups {
            let root = match &root {
                Ok(r) => r,
                Err(e) => {
                    cgroup_targets.push((c.clone(), Err(e.clone())));
                    continue;
                }
            };
            let dir = targets::cgroup_dir(root, c);
            match targets::cgroup_id(&dir) {
                Ok(_) => {
                    let (ids, pids) = targets::cgroup_tree(&dir);
                    for id in &ids {
                        let _ = cgs.insert(id, 1, 0);
                    }
                    cgroup_targets.push((dir, Ok(pids)));
                }
                Err(e) => cgroup_targets.push((dir, Err(e))),
            }
        }
    }

    // Addresses: the syscalls made inside SSL calls.
    let mut addr_hooks = 0;
    for sc in FD_SYSCALLS {
        let prog = format!("sys_enter_{sc}");
        let r = (|| {
            tracefs.clone()?;
            let tp: &mut TracePoint = bpf
                .program_mut(&prog)
                .ok_or("program missing")?
                .try_into()
                .map_err(|e: ProgramError| describe(&e))?;
            tp.load().map_err(|e| describe(&e))?;
            tp.attach("syscalls", &prog).map_err(|e| describe(&e))?;
            Ok::<(), String>(())
        })();
        addr_hooks += usize::from(r.is_ok());
        report.hooks.push(status(format!("tracepoint/syscalls/{prog}"), r));
    }

    // The uprobes: loaded once, attached to every library any target needs.
    for (_, enter, leave) in SSL_FUNCTIONS {
        for prog in [enter, leave] {
            let p: &mut UProbe = bpf
                .program_mut(prog)
                .ok_or_else(|| format!("program {prog} missing"))?
                .try_into()
                .map_err(|e: ProgramError| describe(&e))?;
            p.load().map_err(|e| format!("{prog}: {}", describe(&e)))?;
        }
    }
    let mut attached: Vec<(Library, Result<(), String>)> = Vec::new();
    let mut attach = |bpf: &mut Ebpf, lib: &Library, hooks: &mut Vec<HookStatus>| -> Result<(), String> {
        if let Some((_, r)) = attached.iter().find(|(l, _)| l.id == lib.id) {
            return r.clone();
        }
        let mut result = Ok(());
        let mut any = false;
        for (func, enter, leave) in SSL_FUNCTIONS {
            for prog in [enter, leave] {
                let r = (|| {
                    let p: &mut UProbe = bpf
                        .program_mut(prog)
                        .ok_or("program missing")?
                        .try_into()
                        .map_err(|e: ProgramError| describe(&e))?;
                    p.attach(func, &lib.path, UProbeScope::AllProcesses)
                        .map_err(|e| describe(&e))?;
                    Ok::<(), String>(())
                })();
                if r.is_ok() {
                    any = true;
                } else if func == "SSL_write" || func == "SSL_read" {
                    result = r.clone();
                }
                let kind = if prog == enter { "uprobe" } else { "uretprobe" };
                hooks.push(status(format!("{kind}/{func}@{}", lib.path.display()), r));
            }
        }
        if !any && result.is_ok() {
            result = Err("no SSL function could be attached".into());
        }
        attached.push((lib.clone(), result.clone()));
        result
    };

    // Attaches to every library: the paths attached, and what failed where.
    let mut attach_all = |bpf: &mut Ebpf, libs: &[Library], hooks: &mut Vec<HookStatus>| {
        let mut ok = Vec::new();
        let mut errors = Vec::new();
        for lib in libs {
            match attach(bpf, lib, hooks) {
                Ok(()) => ok.push(lib.path.display().to_string()),
                Err(e) => errors.push(format!("{}: {e}", lib.path.display())),
            }
        }
        (ok, errors)
    };

    for &pid in &cfg.tls_pids {
        let target = format!("pid {pid}");
        let mut libs = match targets::libraries_of(pid) {
            Ok(l) => l,
            Err(e) => {
                report.tls_targets.push(TlsTargetStatus {
                    target,
                    attached: false,
                    libraries: Vec::new(),
                    reason: Some(format!("{e} (is process {pid} running?)")),
                });
                continue;
            }
        };
        let statically_linked = libs.is_empty();
        if statically_linked && let Some(exe) = targets::executable_of(pid) {
            libs.push(exe);
        }
        let (ok, errors) = attach_all(&mut bpf, &libs, &mut report.hooks);
        let reason = if ok.is_empty() {
            Some(if statically_linked {
                format!(
                    "process {pid} maps no libssl.so and its executable exports no SSL_write (OpenSSL linked statically without symbols, BoringSSL, rustls or Go's crypto/tls are not supported){}",
                    if errors.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", errors.join("; "))
                    }
                )
            } else {
                errors.join("; ")
            })
        } else if addr_hooks < FD_SYSCALLS.len() {
            Some(
                "plaintext is captured, but some syscall tracepoints are missing: connections may lack their addresses"
                    .into(),
            )
        } else {
            None
        };
        report.tls_targets.push(TlsTargetStatus {
            target,
            attached: !ok.is_empty(),
            libraries: ok,
            reason,
        });
    }

    for (dir, found) in cgroup_targets {
        let target = format!("cgroup {}", dir.display());
        let pids = match found {
            Ok(p) => p,
            Err(e) => {
                report.tls_targets.push(TlsTargetStatus {
                    target,
                    attached: false,
                    libraries: Vec::new(),
                    reason: Some(e),
                });
                continue;
            }
        };
        let mut libs = targets::system_libraries();
        for p in &pids {
            for l in targets::libraries_of(*p).unwrap_or_default() {
                if !libs.iter().any(|o| o.id == l.id) {
                    libs.push(l);
                }
            }
        }
        let (ok, errors) = attach_all(&mut bpf, &libs, &mut report.hooks);
        let reason = if libs.is_empty() {
            Some(format!(
                "no libssl found: none of the {} processes in the cgroup maps one, and none of the usual system paths exists",
                pids.len()
            ))
        } else if ok.is_empty() {
            Some(errors.join("; "))
        } else {
            None
        };
        report.tls_targets.push(TlsTargetStatus {
            target,
            attached: !ok.is_empty(),
            libraries: ok,
            reason,
        });
    }

    let (ring, counters) = take_rings(&mut bpf, "tls_events", "tls_counters")?;
    Ok(Loaded {
        _bpf: bpf,
        ring,
        counters,
    })
}
