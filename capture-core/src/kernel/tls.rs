//! TLS plaintext from the OpenSSL uprobes, dissected as if it were a cleartext TCP stream.
//!
//! One stream per (process, `SSL *`). Who is the client is decided by who speaks first: the
//! protocols we dissect (HTTP/1.x, HTTP/2, Redis, Kafka, AMQP) all have the client send first,
//! so a process whose first call is SSL_write is the client and its writes go to the server. The
//! stream's addresses are the socket's (learnt in the kernel from the syscalls made inside SSL
//! calls), and its flow id is that of the packet flow with the same 5-tuple, when packet capture
//! sees it. Entries from these streams are marked `tls`.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};

use ebpf_probes::events::{TLS_CHUNK, TLS_MAX_CHUNKS};
use ebpf_probes::{TlsDir, TlsEvent};

use crate::dissect::{AppSession, Ctx, DissectStats};
use crate::entry::Entry;
use crate::limits::Limits;
use crate::tcp::flow::{Dir, FlowKey, FlowMeta, RoleSource};
use crate::tcp::reassembly::Chunk;
use crate::time::Timestamp;
use crate::wire::ip::PROTO_TCP;

struct TlsConn {
    meta: FlowMeta,
    app: AppSession,
    process_is_client: bool,
}

/// Counters of the TLS plaintext streams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlsStats {
    pub events: u64,
    pub bytes: u64,
    pub connections: u64,
    /// Bytes of SSL calls too large for the probe to copy (beyond TLS_MAX_CHUNKS pieces).
    pub gap_bytes: u64,
    /// Connections not followed because `tls_max_connections` were open.
    pub connections_dropped: u64,
    /// Streams whose addresses were never learnt (shown as 0.0.0.0:0).
    pub without_addresses: u64,
}

#[derive(Default)]
pub struct TlsStreams {
    conns: HashMap<(u32, u64), TlsConn>,
    pub stats: TlsStats,
}

const UNKNOWN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

fn mark_tls(out: &mut [Entry]) {
    for e in out {
        e.tls = true;
    }
}

impl TlsStreams {
    /// One piece of plaintext. `flow_id` names the packet flow of a 5-tuple, when there is one.
    pub fn on_event(
        &mut self,
        ev: &TlsEvent<'_>,
        ts: Timestamp,
        limits: &Limits,
        flow_id: &dyn Fn(&FlowKey) -> Option<u64>,
        out: &mut Vec<Entry>,
        dstats: &mut DissectStats,
    ) {
        self.stats.events += 1;
        self.stats.bytes += ev.data.len() as u64;
        let key = (ev.pid, ev.conn);
        if !self.conns.contains_key(&key) {
            if self.conns.len() >= limits.tls_max_connections {
                self.stats.connections_dropped += 1;
                return;
            }
            let process_is_client = ev.dir == TlsDir::Sent;
            let (local, remote) = ev.addrs.unwrap_or((UNKNOWN, UNKNOWN));
            if ev.addrs.is_none() {
                self.stats.without_addresses += 1;
            }
            let (client, server) = if process_is_client {
                (local, remote)
            } else {
                (remote, local)
            };
            let fkey = FlowKey::new(client, server, PROTO_TCP);
            let meta = FlowMeta {
                id: ev.addrs.and_then(|_| flow_id(&fkey)).unwrap_or(0),
                key: fkey,
                client,
                server,
                roles: RoleSource::FirstPacket,
                first_seen: ts,
                last_seen: ts,
                closed_at: None,
            };
            self.stats.connections += 1;
            self.conns.insert(
                key,
                TlsConn {
                    meta,
                    app: AppSession::new(),
                    process_is_client,
                },
            );
        }
        let Some(c) = self.conns.get_mut(&key) else { return };
        c.meta.last_seen = ts;
        if c.meta.id == 0
            && ev.addrs.is_some()
            && let Some(id) = flow_id(&c.meta.key)
        {
            c.meta.id = id;
        }
        let dir = if (ev.dir == TlsDir::Sent) == c.process_is_client {
            Dir::ToServer
        } else {
            Dir::ToClient
        };
        let before = out.len();
        let mut ctx = Ctx {
            limits,
            meta: &c.meta,
            out,
            stats: dstats,
            keys: None,
        };
        c.app.on_chunk(dir, ts, Chunk::Data(ev.data), &mut ctx);
        // The last piece the probe copies of a call larger than it copies: the rest is a gap.
        let copied = (TLS_CHUNK * TLS_MAX_CHUNKS) as u64;
        let end = u64::from(ev.offset) + ev.data.len() as u64;
        if u64::from(ev.len) > copied && end == copied {
            let gap = u64::from(ev.len) - copied;
            self.stats.gap_bytes += gap;
            c.app.on_chunk(dir, ts, Chunk::Gap(gap), &mut ctx);
        }
        mark_tls(&mut out[before..]);
    }

    /// Ends streams idle for `idle_ns` (or all of them with `idle_ns` 0).
    pub fn sweep(
        &mut self,
        now: Timestamp,
        idle_ns: u64,
        limits: &Limits,
        out: &mut Vec<Entry>,
        dstats: &mut DissectStats,
    ) {
        let done: Vec<(u32, u64)> = self
            .conns
            .iter()
            .filter(|(_, c)| idle_ns == 0 || now.0.saturating_sub(c.meta.last_seen.0) >= idle_ns)
            .map(|(k, _)| *k)
            .collect();
        for k in done {
            if let Some(mut c) = self.conns.remove(&k) {
                let before = out.len();
                let mut ctx = Ctx {
                    limits,
                    meta: &c.meta,
                    out,
                    stats: dstats,
                    keys: None,
                };
                c.app.finish(now.max(c.meta.last_seen), &mut ctx);
                mark_tls(&mut out[before..]);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev<'a>(dir: TlsDir, conn: u64, data: &'a [u8], addrs: bool) -> TlsEvent<'a> {
        TlsEvent {
            dir,
            pid: 7,
            tid: 7,
            comm: [0; 16],
            mono_ns: 0,
            conn,
            addrs: addrs.then(|| ("10.0.0.1:40000".parse().unwrap(), "10.0.0.2:443".parse().unwrap())),
            len: data.len() as u32,
            offset: 0,
            data,
        }
    }

    #[test]
    fn a_client_process_https_exchange_becomes_a_tls_entry_joined_to_its_flow() {
        let limits = Limits::default();
        let mut s = TlsStreams::default();
        let mut out = Vec::new();
        let mut d = DissectStats::default();
        let joined = |k: &FlowKey| (k.lo.port() == 443 || k.hi.port() == 443).then_some(99);
        s.on_event(
            &ev(TlsDir::Sent, 1, b"GET /secret HTTP/1.1\r\nHost: x\r\n\r\n", true),
            Timestamp(1_000),
            &limits,
            &joined,
            &mut out,
            &mut d,
        );
        s.on_event(
            &ev(
                TlsDir::Received,
                1,
                b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
                true,
            ),
            Timestamp(2_000),
            &limits,
            &joined,
            &mut out,
            &mut d,
        );
        s.sweep(Timestamp(3_000), 0, &limits, &mut out, &mut d);
        assert_eq!(out.len(), 1, "{out:?}");
        let e = &out[0];
        assert!(e.tls);
        assert!(e.protocol.is_http());
        assert_eq!(e.flow_id, 99);
        assert_eq!(e.src, "10.0.0.1:40000".parse().unwrap());
        assert_eq!(e.dst, "10.0.0.2:443".parse().unwrap());
        assert_eq!(e.http().unwrap().status, Some(201));
        assert!(s.is_empty());
    }

    #[test]
    fn a_server_process_reads_first_and_connections_are_bounded() {
        let limits = Limits {
            tls_max_connections: 1,
            ..Limits::default()
        };
        let mut s = TlsStreams::default();
        let mut out = Vec::new();
        let mut d = DissectStats::default();
        let none = |_: &FlowKey| None;
        s.on_event(
            &ev(TlsDir::Received, 1, b"GET / HTTP/1.1\r\n\r\n", true),
            Timestamp(1),
            &limits,
            &none,
            &mut out,
            &mut d,
        );
        s.on_event(
            &ev(TlsDir::Sent, 1, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true),
            Timestamp(2),
            &limits,
            &none,
            &mut out,
            &mut d,
        );
        s.on_event(
            &ev(TlsDir::Sent, 2, b"x", false),
            Timestamp(3),
            &limits,
            &none,
            &mut out,
            &mut d,
        );
        assert_eq!(s.stats.connections_dropped, 1);
        s.sweep(Timestamp(10), 0, &limits, &mut out, &mut d);
        assert_eq!(out.len(), 1);
        // The server process's peer is the client.
        assert_eq!(out[0].src, "10.0.0.2:443".parse().unwrap());
        assert_eq!(out[0].dst, "10.0.0.1:40000".parse().unwrap());
        assert_eq!(out[0].flow_id, 0);
    }
}
