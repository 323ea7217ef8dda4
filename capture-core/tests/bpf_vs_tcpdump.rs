//! Our filter compiler and interpreter against tcpdump (libpcap's compiler and BPF engine): for
//! every capture in `../shared/pcaps` plus a capture of hand-made edge cases (ARP, RARP, IPv4
//! options and fragments, IPv6 fragment headers, SCTP, ICMP, cut and runt frames, LLC, a VLAN
//! tag), and for every filter below, the number of packets our filter keeps must equal the
//! number `tcpdump --count -r FILE EXPR` keeps. Every capture also gets filters on addresses it
//! holds (`host`, `src host`, `net`, inheritance, `ip6 host`).
//!
//! Where the two differ by design, the test says so and checks the documented difference
//! instead — never silently:
//! - **VLAN tags.** A live socket filter runs after the kernel took the VLAN tag off, so ours
//!   looks past tags; libpcap reading a file does not (it wants `vlan` first). For a capture with
//!   tagged frames the expected count is tcpdump's `(EXPR) and not vlan` plus `vlan and (EXPR)`.
//! - **Frames cut inside their link header** (a 10-byte "Ethernet" frame): wirelens cannot
//!   find their network header and rejects them whatever the filter (a kernel never delivers
//!   one), while libpcap still applies `less`/`greater` to them. They are kept in a capture of
//!   their own, on which wirelens must keep nothing.
//! - **"expression rejects all packets".** tcpdump refuses a filter its optimiser proves never
//!   matches on the capture's link type (`arp` on BSD loopback, `ip6` on raw IPv4): that is 0.
//! - **Service names.** tcpdump reads `/etc/services`; ours are built in (Debian's netbase). The
//!   names used below are the same in both.
//!
//! Without the captures or tcpdump the test says so loudly, and fails under `CI=true`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use capture_core::limits::Limits;
use capture_core::source::LinkType;
use capture_core::source::bpf::Filter;
use capture_core::source::file::read_file;
use capture_core::synth::pcap::{PcapWriter, TsResolution};
use capture_core::time::Timestamp;
use capture_core::wire::{decode_ip, decode_link};

/// Filters every capture is checked with.
const FILTERS: &[&str] = &[
    "tcp",
    "udp",
    "icmp",
    "icmp6",
    "arp",
    "rarp",
    "sctp",
    "ip",
    "ip6",
    "not tcp",
    "not (tcp or udp)",
    "port 53",
    "udp port domain",
    "tcp port 80 or 443",
    "tcp port http",
    "tcp dst port 80",
    "src port 80 or 8080",
    "portrange 8000-9000",
    "tcp dst portrange 1024-65535",
    "src portrange 0-1023 and udp",
    "tcp and (port 6379 or port 9092)",
    "tcp port 80 and not src port 80",
    "port 80 or 8080 and tcp",
    "less 100",
    "greater 1000",
    "less 60 or greater 1400",
    "src net 10.0.0.0/8",
    "net 192.168",
    "dst net 172.16.0.0/12",
    "ip and not net 127.0.0.0/8",
    "ip proto 17",
    "ip6 proto \\tcp",
    "proto 6",
    "ether proto 0x86dd",
    "ip6 net fe80::/10",
    "ip6 and not ip6 net ::1/128",
];

fn pcaps_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("WIRELENS_PCAPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/pcaps"));
    if dir.is_dir() {
        return Some(dir);
    }
    missing(&format!(
        "The shared captures are missing: {} does not exist. The tcpdump agreement test did NOT run. \
         Set WIRELENS_PCAPS or check out ../shared.",
        dir.display()
    ));
    None
}

/// A prerequisite is missing: a failure under CI=true, a loud message otherwise.
fn missing(msg: &str) {
    let msg = format!("\n\n*** {msg} ***\n");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("{msg}");
}

fn tcpdump() -> Option<PathBuf> {
    let found = ["/usr/bin/tcpdump", "/usr/sbin/tcpdump"]
        .iter()
        .map(PathBuf::from)
        .chain(
            std::env::var_os("PATH")
                .into_iter()
                .flat_map(|p| std::env::split_paths(&p).map(|d| d.join("tcpdump")).collect::<Vec<_>>()),
        )
        .find(|p| p.is_file());
    if found.is_none() {
        missing("tcpdump is not installed (scripts/test installs it). The tcpdump agreement test did NOT run.");
    }
    found
}

/// Every capture under `dir`, recursively, skipping tshark's `.ref` folders.
fn captures(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.extension().is_none_or(|x| x != "ref") {
                    stack.push(p);
                }
            } else if matches!(p.extension().and_then(|x| x.to_str()), Some("pcap" | "pcapng" | "cap")) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// What tcpdump keeps of `file` with `expr`.
fn tcpdump_count(tcpdump: &Path, file: &Path, expr: &str) -> u64 {
    let out = Command::new(tcpdump)
        .arg("--count")
        .arg("-r")
        .arg(file)
        .arg(expr)
        .output()
        .expect("run tcpdump");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        // libpcap proved the filter never matches on this link type: zero packets.
        if stderr.contains("expression rejects all packets") {
            return 0;
        }
        panic!("tcpdump -r {} '{expr}' failed: {stderr}", file.display());
    }
    stdout
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("tcpdump --count printed {stdout:?} ({stderr})"))
}

struct Scan {
    /// Ethernet frames with an 802.1Q/802.1ad tag.
    vlan_tagged: u64,
    v4: Vec<IpAddr>,
    v6: Vec<IpAddr>,
}

/// Tagged frames and the first few distinct addresses of a capture.
fn scan(file: &Path) -> Scan {
    let mut s = Scan {
        vlan_tagged: 0,
        v4: Vec::new(),
        v6: Vec::new(),
    };
    read_file(
        file,
        Limits::default().max_record_bytes,
        |p| {
            if p.link == LinkType::ETHERNET
                && p.data.len() >= 14
                && matches!(p.data[12..14], [0x81, 0x00] | [0x88, 0xa8])
            {
                s.vlan_tagged += 1;
            }
            if let Ok(Some(ip)) = decode_link(p.link, p.data).and_then(decode_ip) {
                for a in [ip.src, ip.dst] {
                    let list = if a.is_ipv4() { &mut s.v4 } else { &mut s.v6 };
                    if list.len() < 2 && !list.contains(&a) {
                        list.push(a);
                    }
                }
            }
        },
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("{e}"));
    s
}

/// Filters on the addresses a capture holds.
fn address_filters(s: &Scan) -> Vec<String> {
    let mut out = Vec::new();
    if let [a, rest @ ..] = &s.v4[..] {
        let IpAddr::V4(v) = a else { unreachable!() };
        let o = v.octets();
        out.push(format!("host {a}"));
        out.push(format!("src host {a}"));
        out.push(format!("net {}.{}.{}.0/24", o[0], o[1], o[2]));
        out.push(format!("src and dst net {}.{}", o[0], o[1]));
        if let Some(b) = rest.first() {
            out.push(format!("dst host {a} or {b}"));
            out.push(format!("not host {a} and {b}"));
            out.push(format!("host {a} and ({b} or 10.9.9.9) and tcp"));
        }
    }
    if let Some(a) = s.v6.first() {
        out.push(format!("ip6 host {a}"));
        out.push(format!("dst host {a} and not tcp"));
    }
    out
}

fn ours(file: &Path, f: &Filter) -> u64 {
    let mut n = 0;
    read_file(
        file,
        Limits::default().max_record_bytes,
        |p| {
            if f.matches(p) {
                n += 1;
            }
        },
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("{e}"));
    n
}

/// Captures of edge cases, written to `dir`: untagged frames, the same 802.1Q-tagged (the VLAN
/// exception), and runts (the link-header exception).
fn edge_cases(dir: &Path) -> [PathBuf; 3] {
    fn eth(etype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
        f.extend_from_slice(&etype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }
    fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, frag: u16, options: usize, l4: &[u8]) -> Vec<u8> {
        let hl = 20 + options;
        let mut b = vec![0u8; hl];
        b[0] = 0x40 | (hl / 4) as u8;
        b[2..4].copy_from_slice(&((hl + l4.len()) as u16).to_be_bytes());
        b[6..8].copy_from_slice(&frag.to_be_bytes());
        b[8] = 64;
        b[9] = proto;
        b[12..16].copy_from_slice(&src);
        b[16..20].copy_from_slice(&dst);
        b[20..hl].fill(1);
        b.extend_from_slice(l4);
        b
    }
    fn ipv6(src: &str, dst: &str, nxt: u8, rest: &[u8]) -> Vec<u8> {
        let mut b = vec![0x60, 0, 0, 0];
        b.extend_from_slice(&(rest.len() as u16).to_be_bytes());
        b.extend_from_slice(&[nxt, 64]);
        b.extend_from_slice(&src.parse::<std::net::Ipv6Addr>().unwrap().octets());
        b.extend_from_slice(&dst.parse::<std::net::Ipv6Addr>().unwrap().octets());
        b.extend_from_slice(rest);
        b
    }
    fn l4(sport: u16, dport: u16, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len.max(20)];
        b[..2].copy_from_slice(&sport.to_be_bytes());
        b[2..4].copy_from_slice(&dport.to_be_bytes());
        b
    }
    fn arp(op: u8, spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
        let mut b = vec![0, 1, 8, 0, 6, 4, 0, op, 2, 0, 0, 0, 0, 1];
        b.extend_from_slice(&spa);
        b.extend_from_slice(&[0; 6]);
        b.extend_from_slice(&tpa);
        b.resize(46, 0);
        b
    }
    let a = [10, 0, 0, 1];
    let b = [192, 168, 7, 9];
    let c = [172, 16, 3, 4];
    let mut frames: Vec<(Vec<u8>, u32)> = Vec::new();
    let mut push = |f: Vec<u8>| {
        let n = f.len() as u32;
        frames.push((f, n));
    };
    push(eth(0x0800, &ipv4(a, b, 6, 0x4000, 0, &l4(40000, 80, 20))));
    push(eth(0x0800, &ipv4(b, a, 6, 0x4000, 0, &l4(80, 40000, 1400))));
    push(eth(0x0800, &ipv4(a, c, 6, 0, 4, &l4(40001, 443, 20))));
    push(eth(0x0800, &ipv4(c, a, 17, 0, 8, &l4(53, 5353, 30))));
    // A UDP datagram in two fragments; the second's payload looks like ports 53 → 53.
    push(eth(0x0800, &ipv4(a, b, 17, 0x2000, 0, &l4(5353, 53, 24))));
    push(eth(0x0800, &ipv4(a, b, 17, 3, 0, &l4(53, 53, 24))));
    push(eth(0x0800, &ipv4(a, b, 1, 0, 0, &[8, 0, 0, 0, 0, 1, 0, 1])));
    push(eth(0x0800, &ipv4(b, a, 132, 0, 0, &l4(9000, 80, 28))));
    push(eth(
        0x0800,
        &ipv4(a, [224, 0, 0, 1], 2, 0, 4, &[0x11, 0, 0, 0, 0, 0, 0, 0]),
    ));
    push(eth(
        0x0800,
        &ipv4([127, 0, 0, 1], [127, 0, 0, 1], 6, 0, 0, &l4(6379, 50000, 20)),
    ));
    push(eth(
        0x86dd,
        &ipv6("2001:db8::1", "2001:db8::2", 6, &l4(8080, 40000, 20)),
    ));
    push(eth(
        0x86dd,
        &ipv6("fe80::1", "ff02::1", 58, &[135, 0, 0, 0, 0, 0, 0, 0]),
    ));
    // IPv6 fragment header (44) carrying UDP to port 53.
    let mut frag = vec![17, 0, 0, 1, 0, 0, 0, 7];
    frag.extend_from_slice(&l4(40000, 53, 20));
    push(eth(0x86dd, &ipv6("2001:db8::2", "2001:db8::1", 44, &frag)));
    push(eth(0x86dd, &ipv6("::1", "::1", 132, &l4(9092, 9092, 20))));
    push(eth(0x0806, &arp(1, a, b)));
    push(eth(0x0806, &arp(2, b, a)));
    push(eth(0x8035, &arp(3, c, a)));
    push(eth(0x88cc, &[0u8; 50]));
    push(eth(0x0026, &[0x42, 0x42, 0x03, 0, 0, 0]));
    // Cut by a snap length: the ports, or the whole IPv6 header, were not captured.
    let full = eth(0x0800, &ipv4(a, b, 6, 0, 0, &l4(40002, 80, 20)));
    frames.push((full[..34].to_vec(), full.len() as u32));
    let full6 = eth(0x86dd, &ipv6("2001:db8::1", "2001:db8::2", 6, &l4(40003, 443, 20)));
    frames.push((full6[..30].to_vec(), full6.len() as u32));
    let runts = [
        (vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0], 10),
        (vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08], 13),
    ];

    // The same frames behind an 802.1Q tag.
    let tagged: Vec<(Vec<u8>, u32)> = frames
        .iter()
        .map(|(f, orig)| {
            let mut t = f[..12].to_vec();
            t.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
            t.extend_from_slice(&f[12..]);
            (t, orig + 4)
        })
        .collect();
    let write = |name: &str, frames: &[(Vec<u8>, u32)]| {
        let path = dir.join(name);
        let mut w = PcapWriter::new(
            std::fs::File::create(&path).unwrap(),
            LinkType::ETHERNET,
            TsResolution::Micros,
        )
        .unwrap();
        for (i, (f, orig)) in frames.iter().enumerate() {
            w.write_packet(Timestamp::from_secs_nanos(1_700_000_000 + i as u64, 0), f, *orig)
                .unwrap();
        }
        w.flush().unwrap();
        path
    };
    [
        write("edge-cases.pcap", &frames),
        write("edge-cases-vlan.pcap", &tagged),
        write("edge-cases-runts.pcap", &runts),
    ]
}

/// One filter on one capture: the filter, what wirelens keeps, what it should keep, and how that
/// was worked out.
type Row = (String, u64, u64, Rule);

/// How a capture's counts are compared (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Plain,
    Vlan,
    Runts,
}

#[test]
fn filters_keep_the_packets_tcpdump_keeps() {
    let (Some(dir), Some(tcpdump)) = (pcaps_dir(), tcpdump()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut files = captures(&dir);
    assert!(files.len() >= 40, "only {} captures in {}", files.len(), dir.display());
    files.extend(edge_cases(tmp.path()));

    // Per capture, per filter: what we keep, what we expect and by which rule.
    let results: Vec<(PathBuf, Vec<Row>)> = std::thread::scope(|s| {
        let chunks = std::thread::available_parallelism().map_or(2, |n| n.get()).min(4);
        let per = files.len().div_ceil(chunks);
        let handles: Vec<_> = files
            .chunks(per)
            .map(|chunk| {
                let tcpdump = &tcpdump;
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|file| {
                            let sc = scan(file);
                            let mut filters: Vec<String> = FILTERS.iter().map(|f| f.to_string()).collect();
                            filters.extend(address_filters(&sc));
                            let rows = filters
                                .into_iter()
                                .map(|expr| {
                                    let f = Filter::compile(&expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
                                    let mine = ours(file, &f);
                                    let rule = if file.ends_with("edge-cases-runts.pcap") {
                                        Rule::Runts
                                    } else if sc.vlan_tagged > 0 {
                                        Rule::Vlan
                                    } else {
                                        Rule::Plain
                                    };
                                    let expected = match rule {
                                        Rule::Plain => tcpdump_count(tcpdump, file, &expr),
                                        Rule::Vlan => {
                                            tcpdump_count(tcpdump, file, &format!("({expr}) and not vlan"))
                                                + tcpdump_count(tcpdump, file, &format!("vlan and ({expr})"))
                                        }
                                        Rule::Runts => 0,
                                    };
                                    (expr, mine, expected, rule)
                                })
                                .collect();
                            (file.clone(), rows)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });

    let mut checked = 0;
    let mut matched_packets = 0;
    let mut per_filter: BTreeMap<&str, u64> = BTreeMap::new();
    let mut exceptions = BTreeMap::new();
    let mut diffs = Vec::new();
    for (file, rows) in &results {
        let name = file
            .strip_prefix(&dir)
            .unwrap_or_else(|_| Path::new(file.file_name().unwrap_or_default()))
            .display()
            .to_string();
        for (expr, mine, theirs, rule) in rows {
            checked += 1;
            matched_packets += mine;
            if let Some(f) = FILTERS.iter().find(|f| **f == expr) {
                *per_filter.entry(f).or_default() += mine;
            }
            if *rule != Rule::Plain {
                exceptions.insert(name.clone(), *rule);
            }
            if mine != theirs {
                diffs.push(format!(
                    "{name}: `{expr}`: wirelens {mine}, expected {theirs} ({rule:?})"
                ));
            }
        }
    }
    eprintln!(
        "bpf vs tcpdump: {} captures, {checked} (capture, filter) pairs, {matched_packets} packets kept in all; \
         exceptions: {exceptions:?}",
        results.len()
    );
    for (f, n) in &per_filter {
        eprintln!("  {n:>7} packets kept by `{f}`");
    }
    assert!(diffs.is_empty(), "{} disagreements:\n{}", diffs.len(), diffs.join("\n"));
    // Every filter keeps something somewhere, so no agreement is a trivial 0 = 0.
    let idle: Vec<_> = per_filter.iter().filter(|(_, n)| **n == 0).map(|(f, _)| *f).collect();
    assert!(idle.is_empty(), "filters that matched nothing anywhere: {idle:?}");
    assert_eq!(per_filter.len(), FILTERS.len());
}
