//! Helpers shared by the binary's end-to-end tests: synthetic captures written to temp files and
//! a runner for `wirelens call`.

#![allow(dead_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use capture_core::source::LinkType;
use capture_core::synth::conversation::Conversation;
use capture_core::synth::pcap::{PcapWriter, TsResolution};
use capture_core::time::Timestamp;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_wirelens")
}

pub fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().expect("run wirelens")
}

pub fn call_json(args: &[&str]) -> serde_json::Value {
    let out = run(args);
    assert!(
        out.status.success(),
        "wirelens {:?} failed ({:?}): {}",
        args,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// Writes a pcap holding these conversations' packets, time-ordered.
pub fn write_pcap(dir: &Path, name: &str, convs: Vec<Conversation>) -> PathBuf {
    let mut packets: Vec<_> = convs.into_iter().flat_map(|c| c.packets()).collect();
    packets.sort_by_key(|p| p.ts);
    let path = dir.join(name);
    let f = std::fs::File::create(&path).unwrap();
    let mut w = PcapWriter::new(std::io::BufWriter::new(f), LinkType::ETHERNET, TsResolution::Micros).unwrap();
    for p in &packets {
        w.write_packet(p.ts, &p.data, p.data.len() as u32).unwrap();
    }
    w.flush().unwrap();
    path
}

pub fn conv(client: &str, server: &str, start_s: u64) -> Conversation {
    let c: SocketAddr = client.parse().unwrap();
    let s: SocketAddr = server.parse().unwrap();
    let mut conv = Conversation::new(
        c,
        s,
        Timestamp::from_secs_nanos(1_700_000_000 + start_s, 0),
        2_000,
        1000,
        5000,
    );
    conv.handshake();
    conv
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}
