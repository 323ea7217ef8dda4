//! "pcap file → entries in the store": `Engine::read_pcap` on a generated HTTP/1.1 workload.
//!
//! Captures are generated once with `synth::http_workload` and cached in
//! `$HOME/.cache/wirelens/bench/http-workload-<size>-seed1.pcap` (regenerated when missing or
//! when the `.stats` sidecar does not match the file). Groups:
//! - `pipeline_120MB`: 120 MB capture with a 4 GiB store (keeps every entry), the default
//!   256 MiB budget and an evicting 32 MiB one; 10 flat samples. Only run in benchmark mode
//!   (`cargo bench`), not by `cargo test --benches`.
//! - `pipeline_5MB`: 5 MB capture, cheap enough for `cargo bench -- --quick` and test mode.
//!
//! Each benchmark first does one untimed validation run (timed with `Instant` for MB/s and tx/s)
//! and checks that the store received exactly the workload's transaction count. The timed loop
//! covers `Engine::new` + `read_pcap` (decode, reassembly, dissection, store inserts); dropping
//! the store afterwards is not timed. Mismatches fail the process after all benchmarks ran.
//!
//! Environment: `WIRELENS_BENCH_DIR` overrides the cache directory.

use std::collections::HashSet;
use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use capture_core::engine::{Engine, Shared};
use capture_core::limits::Limits;
use capture_core::synth::http_workload::{WorkloadOpts, WorkloadStats, write_http_workload};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};

const SEED: u64 = 1;
const BIG_BUDGET: usize = 4 << 30;

/// Mismatches found by validation runs, reported (and fatal) at the end.
static FAILURES: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// Benchmarks already validated (criterion calls the closure once per sample).
static VALIDATED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
/// `(benchmark id, file bytes, transactions)` for the summary after criterion.
static SUMMARY: Mutex<Vec<(String, u64, u64)>> = Mutex::new(Vec::new());

struct Workload {
    path: PathBuf,
    stats: WorkloadStats,
}

fn bench_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("WIRELENS_BENCH_DIR") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    PathBuf::from(home).join(".cache/wirelens/bench")
}

/// `size_label` like "120MB"; `target` in bytes (decimal MB, as `--size 120MB` on the CLI, so
/// the file is identical to `wirelens generate-workload --size 120MB --seed 1`).
fn workload(size_label: &str, target: u64) -> Workload {
    let dir = bench_dir();
    fs::create_dir_all(&dir).expect("create bench dir");
    let path = dir.join(format!("http-workload-{size_label}-seed{SEED}.pcap"));
    let sidecar = path.with_extension("stats");
    let opts = WorkloadOpts {
        target_bytes: target,
        seed: SEED,
        ..WorkloadOpts::default()
    };
    let on_disk = fs::metadata(&path).map(|m| m.len()).ok();
    if let (Some(len), Some(stats)) = (on_disk, read_sidecar(&sidecar))
        && stats.bytes == len
    {
        return Workload { path, stats };
    }
    let t = Instant::now();
    let stats = if on_disk.is_some() {
        // The file exists (e.g. from `wirelens generate-workload`) but has no stats: the output
        // is a pure function of the options, so regenerate into a sink to count.
        let s = write_http_workload(std::io::sink(), &opts).expect("generate");
        if Some(s.bytes) != on_disk {
            eprintln!(
                "{} has {} bytes, expected {}: regenerating",
                path.display(),
                on_disk.unwrap_or(0),
                s.bytes
            );
            generate(&path, &opts)
        } else {
            s
        }
    } else {
        generate(&path, &opts)
    };
    write_sidecar(&sidecar, &stats);
    eprintln!(
        "workload {}: {} bytes, {} packets, {} connections, {} transactions ({:.1} s)",
        path.display(),
        stats.bytes,
        stats.packets,
        stats.connections,
        stats.transactions,
        t.elapsed().as_secs_f64()
    );
    Workload { path, stats }
}

fn generate(path: &Path, opts: &WorkloadOpts) -> WorkloadStats {
    let tmp = path.with_extension("pcap.tmp");
    let file = fs::File::create(&tmp).expect("create workload file");
    let stats = write_http_workload(file, opts).expect("write workload");
    fs::rename(&tmp, path).expect("rename workload file");
    stats
}

/// The sidecar: `key value` lines (read by `scripts/bench-pipeline` too).
fn write_sidecar(path: &Path, s: &WorkloadStats) {
    let mut text = format!(
        "bytes {}\npackets {}\nconnections {}\ntransactions {}\nget_requests {}\n\
         post_requests {}\nchunked_responses {}\nchunked_with_trailer {}\ngzip_responses {}\n",
        s.bytes,
        s.packets,
        s.connections,
        s.transactions,
        s.get_requests,
        s.post_requests,
        s.chunked_responses,
        s.chunked_with_trailer,
        s.gzip_responses
    );
    for (code, n) in &s.status_counts {
        text.push_str(&format!("status_{code} {n}\n"));
    }
    fs::write(path, text).expect("write stats sidecar");
}

fn read_sidecar(path: &Path) -> Option<WorkloadStats> {
    let text = fs::read_to_string(path).ok()?;
    let mut s = WorkloadStats::default();
    for line in text.lines() {
        let (k, v) = line.split_once(' ')?;
        let v: u64 = v.trim().parse().ok()?;
        match k {
            "bytes" => s.bytes = v,
            "packets" => s.packets = v,
            "connections" => s.connections = v,
            "transactions" => s.transactions = v,
            "get_requests" => s.get_requests = v,
            "post_requests" => s.post_requests = v,
            "chunked_responses" => s.chunked_responses = v,
            "chunked_with_trailer" => s.chunked_with_trailer = v,
            "gzip_responses" => s.gzip_responses = v,
            _ => {
                if let Some(code) = k.strip_prefix("status_") {
                    s.status_counts.insert(code.parse().ok()?, v);
                }
            }
        }
    }
    (s.transactions > 0).then_some(s)
}

/// One pass: a fresh engine and store, the whole file read. Returns the shared state.
fn run_once(path: &Path, budget: usize) -> Shared {
    let limits = Limits {
        store_memory_bytes: budget,
        ..Limits::default()
    };
    let shared = Shared::new(budget);
    let mut engine = Engine::new(limits, shared.clone());
    engine.read_pcap(path).expect("read_pcap");
    drop(engine);
    shared
}

/// The untimed check, once per benchmark: entries received by the store vs transactions.
fn validate(id: &str, w: &Workload, budget: usize) {
    {
        let mut g = VALIDATED.lock().unwrap();
        if !g.get_or_insert_with(HashSet::new).insert(id.to_string()) {
            return;
        }
    }
    let t = Instant::now();
    let shared = run_once(&w.path, budget);
    let secs = t.elapsed().as_secs_f64();
    let st = shared.store.stats();
    let stats = shared.stats.lock().clone();
    let received = st.inserted + st.rejected_oversize;
    let mut incomplete = 0u64;
    shared
        .store
        .scan(capture_core::store::Order::Asc, None, &mut |e: &std::sync::Arc<
            capture_core::entry::Entry,
        >| {
            if e.http().is_some_and(|h| h.flags != 0) {
                incomplete += 1;
            }
            std::ops::ControlFlow::Continue(())
        });
    eprintln!(
        "[{id}] validation run: {:.3} s, {:.1} MB/s, {:.0} tx/s | transactions generated {}, \
         entries emitted {}, inserted {}, kept {}, evicted {}, rejected {}, with flags {}, \
         store bytes {:.1} MiB, packets {}",
        secs,
        w.stats.bytes as f64 / 1e6 / secs,
        w.stats.transactions as f64 / secs,
        w.stats.transactions,
        stats.entries_emitted,
        st.inserted,
        st.entries,
        st.evicted,
        st.rejected_oversize,
        incomplete,
        st.bytes as f64 / (1u64 << 20) as f64,
        stats.packets,
    );
    let mut fail = Vec::new();
    if received != w.stats.transactions {
        fail.push(format!(
            "[{id}] store received {received} entries, workload has {} transactions",
            w.stats.transactions
        ));
    }
    // With a budget that holds everything, every entry must still be there.
    if st.evicted == 0 && st.entries != w.stats.transactions {
        fail.push(format!(
            "[{id}] store holds {} entries, workload has {} transactions",
            st.entries, w.stats.transactions
        ));
    }
    if budget == BIG_BUDGET && st.evicted != 0 {
        fail.push(format!("[{id}] 4 GiB budget evicted {} entries", st.evicted));
    }
    for f in &fail {
        eprintln!("MISMATCH {f}");
    }
    FAILURES.lock().unwrap().extend(fail);
    drop(shared);
}

/// How a group samples: the big file needs few, long samples.
struct GroupConfig {
    sample_size: usize,
    warm_up: Duration,
    measurement: Duration,
    flat: bool,
}

fn bench_file(c: &mut Criterion, group: &str, cfg: &GroupConfig, w: &Workload, budgets: &[(&str, usize)]) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(w.stats.bytes))
        .sample_size(cfg.sample_size)
        .warm_up_time(cfg.warm_up)
        .measurement_time(cfg.measurement);
    if cfg.flat {
        g.sampling_mode(SamplingMode::Flat);
    }
    for &(label, budget) in budgets {
        let id = format!("{group}/read_pcap/{label}");
        SUMMARY
            .lock()
            .unwrap()
            .push((id.clone(), w.stats.bytes, w.stats.transactions));
        g.bench_with_input(BenchmarkId::new("read_pcap", label), &budget, |b, &budget| {
            validate(&id, w, budget);
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    let shared = run_once(black_box(&w.path), budget);
                    total += t.elapsed();
                    black_box(&shared);
                    drop(shared); // untimed: freeing the store
                }
                total
            });
        });
    }
    g.finish();
}

/// `cargo bench` passes `--bench`; `cargo test --benches` does not (criterion's test mode).
fn benchmark_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// 4 GiB keeps everything; 256 MiB is the default (the 120 MB workload's entries take ~114 MiB,
/// so it does not evict either); 32 MiB makes the store evict most entries as it goes.
const BUDGETS: [(&str, usize); 3] = [("4GiB", BIG_BUDGET), ("256MiB", 256 << 20), ("32MiB", 32 << 20)];

fn small(c: &mut Criterion) {
    let w = workload("5MB", 5_000_000);
    let cfg = GroupConfig {
        sample_size: 20,
        warm_up: Duration::from_secs(1),
        measurement: Duration::from_secs(4),
        flat: false,
    };
    bench_file(c, "pipeline_5MB", &cfg, &w, &BUDGETS);
}

fn big(c: &mut Criterion) {
    if !benchmark_mode() {
        eprintln!("pipeline_120MB: skipped in test mode (run `cargo bench`)");
        return;
    }
    // Generated on the first run only (about 10 s), then read from the cache.
    let w = workload("120MB", 120_000_000);
    // One iteration per sample: 10 samples of ~1–3 s each fit in 25 s.
    let cfg = GroupConfig {
        sample_size: 10,
        warm_up: Duration::from_secs(3),
        measurement: Duration::from_secs(25),
        flat: true,
    };
    bench_file(c, "pipeline_120MB", &cfg, &w, &BUDGETS);
}

fn criterion_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CRITERION_HOME") {
        PathBuf::from(d)
    } else if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        PathBuf::from(d).join("criterion")
    } else {
        PathBuf::from("target/criterion")
    }
}

/// The `point_estimate` of `"mean"` in criterion's `estimates.json` (nanoseconds).
fn mean_ns(json: &str) -> Option<f64> {
    let rest = &json[json.find("\"mean\"")?..];
    let rest = &rest[rest.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = rest.find([',', '}'])?;
    rest[..end].trim().parse().ok()
}

/// MB/s and transactions/s from criterion's mean estimate of every benchmark run just now.
fn summarize(started: SystemTime) {
    let dir = criterion_dir();
    let rows = SUMMARY.lock().unwrap();
    let mut printed = false;
    for (id, bytes, tx) in rows.iter() {
        let file = dir.join(id).join("new/estimates.json");
        let fresh = fs::metadata(&file)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= started);
        let Some(ns) = fresh
            .then(|| fs::read_to_string(&file).ok())
            .flatten()
            .and_then(|j| mean_ns(&j))
        else {
            continue;
        };
        if !printed {
            println!("\ncriterion mean estimates:");
            printed = true;
        }
        let secs = ns / 1e9;
        println!(
            "PIPELINE {id:<32} mean {secs:8.3} s  {:8.1} MB/s  {:9.0} tx/s  ({bytes} bytes, {tx} transactions)",
            *bytes as f64 / 1e6 / secs,
            *tx as f64 / secs,
        );
    }
}

fn main() {
    let started = SystemTime::now();
    let mut c = Criterion::default().configure_from_args();
    small(&mut c);
    big(&mut c);
    c.final_summary();
    summarize(started);
    let failures = FAILURES.lock().unwrap();
    if !failures.is_empty() {
        eprintln!("{} validation failure(s):", failures.len());
        for f in failures.iter() {
            eprintln!("  {f}");
        }
        std::process::exit(1);
    }
}
