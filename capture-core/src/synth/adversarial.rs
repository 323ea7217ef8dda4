//! Hostile captures at full size, written as a stream (`wirelens generate-adversarial`): what the
//! hardening tests and benchmarks feed the engine to check that it stays within its caps and its
//! memory budget. Each is a pure function of its size.

use std::io::{self, Write};
use std::net::SocketAddr;

use super::conversation::LINK;
use super::packet::{ACK, PSH, SYN, TcpSpec, tcp_frame};
use super::pcap::{PcapWriter, TsResolution};
use crate::time::Timestamp;

/// The kinds [`write`] knows, with what `count` means for each.
pub const KINDS: &[(&str, &str)] = &[
    (
        "syn-flood",
        "SYN-only connections from distinct clients (default 1,000,000)",
    ),
    (
        "endless-headers",
        "MiB of HTTP header lines without an end, over 16 connections (default 100)",
    ),
];

fn at(i: u64) -> Timestamp {
    // 10 µs apart: a million packets span ten seconds of capture time.
    Timestamp(1_700_000_000_000_000_000 + i * 10_000)
}

/// Writes the capture `kind` with `count` units (see [`KINDS`]) as a pcap; returns the packets
/// written.
pub fn write<W: Write>(out: W, kind: &str, count: Option<u64>) -> io::Result<u64> {
    let mut w = PcapWriter::new(out, LINK, TsResolution::Micros)?;
    match kind {
        "syn-flood" => syn_flood(&mut w, count.unwrap_or(1_000_000))?,
        "endless-headers" => endless_headers(&mut w, count.unwrap_or(100))?,
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "unknown kind `{other}`; one of: {}",
                    KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    let n = w.packets();
    w.flush()?;
    Ok(n)
}

fn syn_flood<W: Write>(w: &mut PcapWriter<W>, n: u64) -> io::Result<()> {
    let server: SocketAddr = "10.0.0.2:80".parse().expect("address");
    for i in 0..n {
        let client = SocketAddr::from((
            [10, 64 | (i >> 16) as u8 & 63, (i >> 8) as u8, i as u8],
            1024 + (i % 60_000) as u16,
        ));
        let frame = tcp_frame(&TcpSpec {
            seq: i as u32,
            ..TcpSpec::new(client, server, SYN)
        });
        w.write_packet(at(i), &frame, frame.len() as u32)?;
    }
    Ok(())
}

fn endless_headers<W: Write>(w: &mut PcapWriter<W>, mib: u64) -> io::Result<()> {
    const CONNS: u64 = 16;
    let server: SocketAddr = "10.0.0.2:80".parse().expect("address");
    let line = format!("X-Junk: {}\r\n", "a".repeat(1_400 - 10));
    let per_conn = mib * (1 << 20) / CONNS;
    let mut seq = [0u32; CONNS as usize];
    let mut sent = [0u64; CONNS as usize];
    let mut t = 0;
    let client = |c: u64| SocketAddr::from(([10, 1, 0, c as u8 + 1], 40_000 + c as u16));
    for c in 0..CONNS {
        // Handshake, then the request line.
        for (src, dst, flags) in [
            (client(c), server, SYN),
            (server, client(c), SYN | ACK),
            (client(c), server, ACK),
        ] {
            let f = tcp_frame(&TcpSpec {
                seq: if flags == SYN | ACK { 0 } else { u32::from(flags != SYN) },
                ack: u32::from(flags != SYN),
                ..TcpSpec::new(src, dst, flags)
            });
            w.write_packet(at(t), &f, f.len() as u32)?;
            t += 1;
        }
        seq[c as usize] = 1;
    }
    // Round-robin over the connections, one full segment at a time.
    let start = b"GET / HTTP/1.1\r\nHost: victim\r\n";
    loop {
        let mut any = false;
        for c in 0..CONNS as usize {
            if sent[c] >= per_conn {
                continue;
            }
            any = true;
            let payload: &[u8] = if sent[c] == 0 { start } else { line.as_bytes() };
            let f = tcp_frame(&TcpSpec {
                seq: seq[c],
                ack: 1,
                payload,
                ..TcpSpec::new(client(c as u64), server, PSH | ACK)
            });
            w.write_packet(at(t), &f, f.len() as u32)?;
            t += 1;
            seq[c] = seq[c].wrapping_add(payload.len() as u32);
            sent[c] += payload.len() as u64;
        }
        if !any {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_writes_a_readable_capture() {
        for (kind, _) in KINDS {
            let mut buf = Vec::new();
            let n = write(&mut buf, kind, Some(2)).unwrap();
            assert!(n > 0, "{kind}");
            let mut read = 0;
            crate::source::file::read_from(
                std::path::Path::new("mem"),
                &buf[..],
                1 << 20,
                &mut |_| read += 1,
                &mut |_| {},
            )
            .unwrap();
            assert_eq!(read, n, "{kind}");
        }
        assert!(write(Vec::new(), "nope", None).is_err());
    }
}
