//! wirelens' eBPF probes: C programs compiled by `clang -target bpf` in the build script,
//! embedded in the binary, and loaded and attached with aya 0.14.
//!
//! - `tcp`: handshake RTT (`sock:inet_sock_set_state`, SYN_SENT → ESTABLISHED per socket),
//!   retransmissions (`tcp:tcp_retransmit_skb`) and srtt/cwnd samples (`tp_btf/tcp_probe`).
//! - `tls`: plaintext of OpenSSL's `SSL_write`/`SSL_read`/`SSL_write_ex`/`SSL_read_ex` through
//!   uprobes, for chosen processes and cgroups only, joined to the socket's addresses.
//!
//! [`Probes::start`] attaches what it can and reports, per hook and per TLS target, what is
//! attached and why something is not (a missing capability, no tracefs, no libssl in a process).
//! Events arrive through [`Probes::poll`]. Dropping [`Probes`] detaches every probe.

pub mod events;
mod loader;
mod system;
mod targets;

pub use events::{Event, TcpEvent, TcpEventKind, TlsDir, TlsEvent};
pub use loader::{Config, HookStatus, Probes, Report, TlsTargetStatus};
pub use system::{Capabilities, missing_capabilities, monotonic_ns};

/// Why the probes are not in this binary (clang was missing at build time, …), or `None`.
pub fn not_built() -> Option<&'static str> {
    let why = env!("WIRELENS_PROBES_MISSING");
    (!why.is_empty()).then_some(why)
}
