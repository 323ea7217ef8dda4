//! Health verdicts for connections, following the published thresholds:
//! - retransmission rate: under 1 % healthy, 1–5 % degraded, over 5 % severe;
//! - handshake RTT: under 1 ms excellent, 1–10 ms good, 10–100 ms elevated, over 100 ms high;
//! - zero windows: a slow receiver;
//! - completeness 33 (SYN, RST: refused), 1 (SYN only: unreachable), 3 (the client never
//!   acknowledged the SYN-ACK), a reset after data, and a half-close.
//!
//! The reasons also walk the "slow: network or application?" decision: when the network is clean
//! (low RTT, no retransmissions) but the first response byte comes late, the application is slow.

use hdrhistogram::Histogram;

use crate::flows::{FlowEnd, FlowRecord};
use crate::tcp::analysis::{TcpMetrics, completeness as C};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Healthy,
    Degraded,
    Severe,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Degraded => "degraded",
            Verdict::Severe => "severe",
        }
    }
    pub fn from_name(s: &str) -> Option<Verdict> {
        [Verdict::Healthy, Verdict::Degraded, Verdict::Severe]
            .into_iter()
            .find(|v| v.name() == s)
    }
}

/// RTT band names for a handshake RTT in µs.
pub fn rtt_band(us: u64) -> &'static str {
    match us {
        0..1_000 => "excellent",
        1_000..10_000 => "good",
        10_000..100_000 => "elevated",
        _ => "high",
    }
}

/// Time to first response byte beyond which the application is called slow.
const SLOW_APP_US: u64 = 500_000;

/// Judges one set of metrics (a connection or a group's sums). `completeness` and `end` apply to
/// a single connection only.
pub fn assess(m: &TcpMetrics, single: Option<(u8, FlowEnd, bool)>) -> (Verdict, Vec<String>) {
    let mut v = Verdict::Healthy;
    let mut reasons = Vec::new();
    let rate = m.retransmission_rate();
    if rate > 0.05 {
        v = v.max(Verdict::Severe);
        reasons.push(format!(
            "retransmission rate {:.1}% (over 5%: severe packet loss)",
            rate * 100.0
        ));
    } else if rate >= 0.01 {
        v = v.max(Verdict::Degraded);
        reasons.push(format!("retransmission rate {:.1}% (1–5%: degraded)", rate * 100.0));
    }
    if let Some(ns) = m.initial_rtt_ns {
        let us = ns / 1000;
        let band = rtt_band(us);
        if band == "high" {
            v = v.max(Verdict::Degraded);
            reasons.push(format!(
                "handshake RTT {:.1} ms is high (over 100 ms)",
                us as f64 / 1000.0
            ));
        } else if band == "elevated" {
            reasons.push(format!(
                "handshake RTT {:.1} ms is elevated (10–100 ms)",
                us as f64 / 1000.0
            ));
        }
    }
    if m.zero_window_events > 0 {
        v = v.max(Verdict::Degraded);
        reasons.push(format!(
            "{} zero-window advertisements: the receiver is slow to read (application back-pressure, not the network)",
            m.zero_window_events
        ));
    }
    if let Some((c, end, refused)) = single {
        if refused {
            v = Verdict::Severe;
            reasons
                .push("connection refused: the SYN was answered by a reset (nothing listening, or a firewall)".into());
        } else if c == C::SYN && end != FlowEnd::Open {
            v = Verdict::Severe;
            reasons.push("unreachable: SYN sent, no answer".into());
        } else if c == C::SYN {
            v = v.max(Verdict::Degraded);
            reasons.push("SYN sent, no answer captured (yet)".into());
        } else if c == C::SYN | C::SYN_ACK {
            v = v.max(Verdict::Degraded);
            reasons.push("the client never acknowledged the SYN-ACK".into());
        }
        if c & C::RST != 0 && c & C::DATA != 0 {
            v = v.max(Verdict::Degraded);
            reasons.push("reset after data was exchanged".into());
        }
        if c & C::FIN != 0 && m.fin_count == 1 && end != FlowEnd::Closed && c & C::RST == 0 {
            reasons.push("half-closed: only one side sent FIN".into());
        }
    }
    // Slow: network or application?
    let ttfb = match (m.first_data_ts[0], m.first_data_ts[1]) {
        (Some(c), Some(s)) if s >= c => Some(s.micros_since(c)),
        _ => None,
    };
    if let Some(t) = ttfb
        && t > SLOW_APP_US
    {
        let net_clean = rate < 0.01 && m.initial_rtt_ns.is_none_or(|r| r < 100_000_000);
        if net_clean {
            v = v.max(Verdict::Degraded);
            reasons.push(format!(
                "slow application: first response byte {:.0} ms after the request while the network is clean{}",
                t as f64 / 1000.0,
                m.initial_rtt_ns
                    .map(|r| format!(" (handshake RTT {:.1} ms)", r as f64 / 1e6))
                    .unwrap_or_default()
            ));
        } else {
            reasons.push(format!(
                "slow response ({:.0} ms to first byte) with a lossy or distant network: fix the network first",
                t as f64 / 1000.0
            ));
        }
    }
    if reasons.is_empty() {
        reasons.push(match m.initial_rtt_ns {
            Some(ns) => format!(
                "no loss, no window problems; handshake RTT {} ({:.2} ms)",
                rtt_band(ns / 1000),
                ns as f64 / 1e6
            ),
            None => "no loss, no window problems".to_string(),
        });
    }
    (v, reasons)
}

/// Judges one connection.
pub fn assess_flow(f: &FlowRecord) -> (Verdict, Vec<String>) {
    assess(&f.metrics, Some((f.metrics.completeness, f.end, f.refused())))
}

/// P50, P90 and P99 of the handshake RTTs (µs) of these flows, from a mergeable histogram.
pub fn rtt_percentiles<'a>(flows: impl IntoIterator<Item = &'a FlowRecord>) -> Option<(u64, u64, u64)> {
    percentiles_us(
        flows
            .into_iter()
            .filter_map(|f| f.metrics.initial_rtt_ns.map(|ns| (ns / 1000).max(1))),
    )
}

/// p50/p90/p99 of values in µs (1 µs – 1 h, 3 significant digits).
pub fn percentiles_us(values: impl IntoIterator<Item = u64>) -> Option<(u64, u64, u64)> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).ok()?;
    for v in values {
        let _ = h.record(v);
    }
    (!h.is_empty()).then(|| {
        (
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.9),
            h.value_at_quantile(0.99),
        )
    })
}
