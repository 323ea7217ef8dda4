//! KFL speed: compiling a typical filter, and scanning 1,000,000 stored entries.
//!
//! The entries come from a generated HTTP/1.1 workload (`synth::http_workload`, 2 MB, seed 1)
//! read by the engine; the few hundred of them are cloned into 1,000,000 separately allocated
//! `Arc<Entry>`s, as the store holds them. Goals (issue 3): compiling under 50 µs, the
//! 1M-entry scan with `http and response.status >= 500 and dst.namespace == "prod"` under
//! 50 ms on one core.
//!
//! `&&` tests its cheapest operands first. Until Kubernetes identities are resolved,
//! `dst.namespace` is the empty string on every entry and reading it touches nothing, so the goal
//! filter is decided without dereferencing the entries; `kfl_scan_1M/http_status` measures the
//! scan that reads each entry's protocol and status (two dependent memory loads per entry).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use capture_core::engine::{Engine, Shared};
use capture_core::entry::Entry;
use capture_core::kfl::{self, EvalContext};
use capture_core::limits::Limits;
use capture_core::store::Order;
use capture_core::synth::http_workload::{WorkloadOpts, write_http_workload};
use criterion::{Criterion, Throughput};

const SCAN_ENTRIES: usize = 1_000_000;

const TYPICAL: &str =
    r#"http && status_code >= 500 && dst.service.name == "payment-service" && path.contains("/charge")"#;
const SCAN: &str = r#"http and response.status >= 500 and dst.namespace == "prod""#;
/// The same without the identity condition: every entry's protocol and status are read.
const SCAN_STATUS: &str = "http and response.status >= 500";
const SCAN_HEADERS: &str =
    r#"request.headers["content-type"].contains("json") || path.matches("^/api/v[0-9]+/orders")"#;

/// Entries of a small generated workload.
fn workload_entries() -> Vec<Entry> {
    let path = std::env::temp_dir().join(format!("wirelens-kfl-bench-{}.pcap", std::process::id()));
    let file = std::fs::File::create(&path).expect("create the workload file");
    let opts = WorkloadOpts {
        target_bytes: 2 << 20,
        ..WorkloadOpts::default()
    };
    write_http_workload(std::io::BufWriter::new(file), &opts).expect("write the workload");
    let shared = Shared::new(1 << 30);
    let mut engine = Engine::new(Limits::default(), shared.clone());
    engine.read_pcap(&path).expect("read the workload");
    let _ = std::fs::remove_file(&path);
    let mut out = Vec::new();
    shared.store.scan(Order::Asc, None, &mut |e| {
        out.push(Entry::clone(e));
        std::ops::ControlFlow::Continue(())
    });
    assert!(!out.is_empty(), "the workload produced no entries");
    out
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("kfl");
    g.bench_function("compile_typical", |b| {
        b.iter(|| kfl::compile(black_box(TYPICAL)).expect("compiles"))
    });
    g.finish();

    let base = workload_entries();
    let entries: Vec<Arc<Entry>> = (0..SCAN_ENTRIES)
        .map(|i| Arc::new(base[i % base.len()].clone()))
        .collect();
    let cx = EvalContext::wall_clock();
    let mut g = c.benchmark_group("kfl_scan_1M");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(SCAN_ENTRIES as u64));
    for (name, src) in [
        ("status_namespace", SCAN),
        ("http_status", SCAN_STATUS),
        ("headers_regex", SCAN_HEADERS),
    ] {
        let f = kfl::compile(src).expect("compiles");
        let n = entries.iter().filter(|e| f.matches(e, &cx)).count();
        eprintln!(
            "kfl: `{src}` matches {n} of {SCAN_ENTRIES} entries ({} distinct)",
            base.len()
        );
        assert_eq!(f.matching(&entries, &cx).count(), n);
        g.bench_function(name, |b| {
            b.iter(|| entries.iter().filter(|e| f.matches(e, &cx)).count())
        });
        g.bench_function(format!("{name}_batch"), |b| {
            b.iter(|| f.matching(&entries, &cx).count())
        });
    }
    // The same condition written in Rust: the floor set by memory, without the interpreter.
    g.bench_function("http_status_native", |b| {
        b.iter(|| {
            entries
                .iter()
                .filter(|e| e.protocol.is_http() && e.http().and_then(|h| h.status).is_some_and(|s| s >= 500))
                .count()
        })
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
