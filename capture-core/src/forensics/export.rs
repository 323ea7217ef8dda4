//! Writes the packets a [`Selector`] keeps as one pcapng file.
//!
//! Each link type read gets one interface (nanosecond timestamps). When TLS secrets are known
//! (key log text, or Decryption Secrets Blocks met in the sources), the lines of the sessions
//! whose ClientHello was exported go into a Decryption Secrets Block right after the section
//! header, before every packet, where Wireshark and wirelens look for them. The packets are then
//! written to a scratch file first and copied behind the block. The file appears under its name
//! only when complete (written as `NAME.part`, then renamed).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ForensicsError;
use super::keys::{self, ClientRandom};
use super::select::Selector;
use crate::source::bpf::Filter;
use crate::source::{LinkType, Packet, file};
use crate::synth::pcap::{ByteOrder, PcapNgWriter, SECRETS_TLS_KEY_LOG, TsResolution};
use crate::time::Timestamp;

/// The application named in the files' section headers.
const APPLICATION: &str = concat!("wirelens ", env!("CARGO_PKG_VERSION"));

/// Where packets are read from.
#[derive(Debug)]
pub enum PacketSource {
    /// A capture file (pcap or pcapng).
    Path(PathBuf),
    /// A capture file opened earlier (a ring segment, kept readable while the ring rotates).
    Opened(PathBuf, File),
    /// Packets in memory (the demo).
    Memory {
        name: String,
        link: LinkType,
        packets: Arc<Vec<(Timestamp, Vec<u8>)>>,
    },
}

impl PacketSource {
    fn may_hold_secrets(&self) -> bool {
        match self {
            // A pcapng file may carry Decryption Secrets Blocks; ring segments never do.
            PacketSource::Path(p) => {
                let mut head = [0u8; 4];
                File::open(p).and_then(|mut f| f.read_exact(&mut head)).is_ok() && head == [0x0a, 0x0d, 0x0d, 0x0a]
            }
            PacketSource::Opened(..) | PacketSource::Memory { .. } => false,
        }
    }
}

/// How to export.
#[derive(Debug, Default, Clone)]
pub struct ExportOptions<'a> {
    /// Largest record read (see `Limits::max_record_bytes`).
    pub max_record_bytes: usize,
    /// The capture filter (`--bpf`) the dissected packets passed: exported packets pass it too.
    pub bpf: Option<&'a Filter>,
    /// NSS key log text (the `--keylog` files) to take the exported sessions' secrets from.
    pub key_text: Option<String>,
}

/// What was written.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ExportSummary {
    pub packets: u64,
    /// Size of the file.
    pub file_bytes: u64,
    /// Ids of the connections that had packets in the sources.
    pub flows: HashSet<u64>,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    /// TLS sessions whose secrets went into the Decryption Secrets Block.
    pub tls_sessions_with_keys: usize,
    /// Sources that ended inside a record (a ring segment being written, a cut file).
    pub warnings: Vec<String>,
}

/// Packets into interfaces by link type, and the ClientHellos seen.
struct Out<W: Write> {
    w: PcapNgWriter<W>,
    ifaces: HashMap<u32, u32>,
    randoms: HashSet<ClientRandom>,
    summary: ExportSummary,
}

impl<W: Write> Out<W> {
    fn write(&mut self, pkt: &Packet<'_>, flow: Option<u64>, tcp_payload: Option<&[u8]>) -> std::io::Result<()> {
        let iface = match self.ifaces.get(&pkt.link.0) {
            Some(i) => *i,
            None => {
                let i = self.w.add_interface(pkt.link, TsResolution::Nanos)?;
                self.ifaces.insert(pkt.link.0, i);
                i
            }
        };
        self.w.write_packet(iface, pkt.ts, pkt.data, pkt.orig_len)?;
        if let Some(r) = tcp_payload.and_then(keys::client_hello_random) {
            self.randoms.insert(r);
        }
        let s = &mut self.summary;
        s.packets += 1;
        if let Some(f) = flow {
            s.flows.insert(f);
        }
        s.first_ts = Some(s.first_ts.map_or(pkt.ts, |t| t.min(pkt.ts)));
        s.last_ts = Some(s.last_ts.map_or(pkt.ts, |t| t.max(pkt.ts)));
        Ok(())
    }
}

/// A new file only its owner can read: captured traffic holds secrets.
pub fn private_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// Reads `sources` in order and writes the packets `selector` keeps to `path` (pcapng).
pub fn write_pcapng(
    path: &Path,
    sources: Vec<PacketSource>,
    selector: &mut Selector,
    opts: &ExportOptions<'_>,
) -> Result<ExportSummary, ForensicsError> {
    let part = super::beside(path, ".part");
    let scratch = super::beside(path, ".packets");
    let with_secrets = opts.key_text.is_some() || sources.iter().any(PacketSource::may_hold_secrets);
    let result = (|| {
        let create = |p: &Path| {
            private_file(p)
                .map(|f| BufWriter::with_capacity(1 << 20, f))
                .map_err(ForensicsError::io("creating", p))
        };
        let body = if with_secrets {
            PcapNgWriter::body_only(create(&scratch)?, ByteOrder::Little)
        } else {
            PcapNgWriter::with_application(create(&part)?, ByteOrder::Little, APPLICATION)
                .map_err(ForensicsError::io("writing", &part))?
        };
        let mut out = Out {
            w: body,
            ifaces: HashMap::new(),
            randoms: HashSet::new(),
            summary: ExportSummary::default(),
        };
        let mut secrets_seen: Vec<String> = Vec::new();
        let mut failed: Option<std::io::Error> = None;
        for src in sources {
            let mut visit = |p: &Packet<'_>| {
                if failed.is_some() || opts.bpf.is_some_and(|f| !f.matches(p)) {
                    return;
                }
                if let Some(k) = selector.keep(p)
                    && let Err(e) = out.write(p, k.flow, k.tcp_payload)
                {
                    failed = Some(e);
                }
            };
            let mut dsb = |text: &[u8]| secrets_seen.push(String::from_utf8_lossy(text).into_owned());
            let summary = match src {
                PacketSource::Path(p) => Some(file::read_file(&p, opts.max_record_bytes, &mut visit, &mut dsb)?),
                PacketSource::Opened(p, f) => {
                    Some(file::read_from(&p, f, opts.max_record_bytes, &mut visit, &mut dsb)?)
                }
                PacketSource::Memory { link, packets, .. } => {
                    for (ts, data) in packets.iter() {
                        visit(&Packet {
                            ts: *ts,
                            link,
                            data,
                            orig_len: data.len() as u32,
                            interface: 0,
                        });
                    }
                    None
                }
            };
            if let Some(w) = summary.and_then(|s| s.truncated) {
                out.summary.warnings.push(w);
            }
            if let Some(e) = failed.take() {
                return Err(ForensicsError::io("writing", path)(e));
            }
        }
        let Out {
            w,
            randoms,
            mut summary,
            ..
        } = out;
        if with_secrets {
            let mut text = opts.key_text.clone().unwrap_or_default();
            for t in &secrets_seen {
                text.push('\n');
                text.push_str(t);
            }
            let (lines, sessions) = keys::lines_for(&text, &randoms);
            summary.tls_sessions_with_keys = sessions;
            let mut body = w.into_inner().map_err(ForensicsError::io("writing", &scratch))?;
            body.flush().map_err(ForensicsError::io("writing", &scratch))?;
            drop(body);
            let mut head = PcapNgWriter::with_application(create(&part)?, ByteOrder::Little, APPLICATION)
                .map_err(ForensicsError::io("writing", &part))?;
            if !lines.is_empty() {
                head.write_decryption_secrets(SECRETS_TLS_KEY_LOG, lines.as_bytes())
                    .map_err(ForensicsError::io("writing", &part))?;
            }
            let mut dst = head.into_inner().map_err(ForensicsError::io("writing", &part))?;
            let mut src = File::open(&scratch).map_err(ForensicsError::io("reading", &scratch))?;
            std::io::copy(&mut src, &mut dst).map_err(ForensicsError::io("writing", &part))?;
            dst.flush().map_err(ForensicsError::io("writing", &part))?;
        } else {
            w.into_inner().map_err(ForensicsError::io("writing", &part))?;
        }
        std::fs::rename(&part, path).map_err(ForensicsError::io("renaming", &part))?;
        summary.file_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        Ok(summary)
    })();
    let _ = std::fs::remove_file(&scratch);
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Transport;
    use crate::forensics::select::FlowSpan;
    use crate::synth::packet::{ACK, PSH, TcpSpec, tcp_frame};

    fn frame(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
        let mut spec = TcpSpec::new(src.parse().unwrap(), dst.parse().unwrap(), ACK | PSH);
        spec.payload = payload;
        tcp_frame(&spec)
    }

    fn read_back(path: &Path) -> (Vec<(Timestamp, Vec<u8>)>, Vec<String>) {
        let mut got = Vec::new();
        let mut secrets = Vec::new();
        file::read_file(path, 1 << 24, |p| got.push((p.ts, p.data.to_vec())), &mut |t| {
            secrets.push(String::from_utf8_lossy(t).into_owned())
        })
        .unwrap();
        (got, secrets)
    }

    #[test]
    fn keeps_the_selected_connection_with_only_its_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let mut hello = vec![22, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3];
        hello.extend([0xab; 32]);
        hello.extend([0u8; 40]);
        let packets = vec![
            (Timestamp(1_000), frame("10.0.0.1:4000", "10.0.0.2:443", &hello)),
            (Timestamp(2_000), frame("10.0.0.3:4000", "10.0.0.2:443", b"other")),
            (Timestamp(3_000), frame("10.0.0.2:443", "10.0.0.1:4000", b"reply")),
        ];
        let span = FlowSpan {
            id: 1,
            transport: Transport::Tcp,
            client: "10.0.0.1:4000".parse().unwrap(),
            server: "10.0.0.2:443".parse().unwrap(),
            first: Timestamp(1_000),
            last: Some(Timestamp(3_000)),
        };
        let (a, b) = ("ab".repeat(32), "cd".repeat(32));
        let opts = ExportOptions {
            max_record_bytes: 1 << 24,
            bpf: None,
            key_text: Some(format!("CLIENT_RANDOM {a} 00ff\nCLIENT_RANDOM {b} 1122\n")),
        };
        let path = dir.path().join("x.pcapng");
        let source = || PacketSource::Memory {
            name: "t".into(),
            link: LinkType::ETHERNET,
            packets: Arc::new(packets.clone()),
        };
        let s = write_pcapng(&path, vec![source()], &mut Selector::flows(&[span], None, None), &opts).unwrap();
        assert_eq!((s.packets, s.flows.len(), s.tls_sessions_with_keys), (2, 1, 1));
        assert_eq!(
            (s.first_ts, s.last_ts),
            (Some(Timestamp(1_000)), Some(Timestamp(3_000)))
        );
        let (got, secrets) = read_back(&path);
        assert_eq!(got, vec![packets[0].clone(), packets[2].clone()]);
        assert_eq!(secrets, vec![format!("CLIENT_RANDOM {a} 00ff\n")]);
        assert_eq!(s.file_bytes, std::fs::metadata(&path).unwrap().len());
        // Nothing is left beside the file.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.pcapng")]);

        // Without keys: no secrets block; a window keeps every packet in it. Re-exporting the
        // export (a pcapng path) gives the same packets.
        let opts = ExportOptions { key_text: None, ..opts };
        let all = dir.path().join("all.pcapng");
        let s = write_pcapng(
            &all,
            vec![source()],
            &mut Selector::window(None, Some(Timestamp(3_000))),
            &opts,
        )
        .unwrap();
        assert_eq!((s.packets, s.tls_sessions_with_keys), (2, 0));
        let (got, secrets) = read_back(&all);
        assert_eq!(got, packets[..2].to_vec());
        assert!(secrets.is_empty());
        let again = dir.path().join("again.pcapng");
        let s = write_pcapng(
            &again,
            vec![PacketSource::Path(all.clone())],
            &mut Selector::window(None, None),
            &opts,
        )
        .unwrap();
        assert_eq!(s.packets, 2);
        assert_eq!(read_back(&again).0, packets[..2].to_vec());
    }
}
