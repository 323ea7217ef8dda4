//! Bounded IP fragment reassembly (IPv4 and IPv6).
//!
//! Datagrams in progress are keyed by (source, destination, protocol, id). Memory is capped by the
//! number of datagrams in progress and by the bytes they hold; a datagram that does not complete
//! within the timeout is dropped and counted. Overlapping fragments: the first copy wins.

use std::collections::HashMap;
use std::net::IpAddr;

use super::ip::{Fragment, IpPacket};
use crate::time::Timestamp;

/// The largest IP datagram: the total length field is 16 bits.
const MAX_DATAGRAM: u32 = 65_535;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    id: u32,
}

#[derive(Debug)]
struct Pending {
    first_seen: Timestamp,
    /// (offset, bytes), unsorted; few fragments per datagram in practice.
    pieces: Vec<(u32, Vec<u8>)>,
    total: Option<u32>,
    bytes: usize,
}

/// Counters kept by the defragmenter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FragStats {
    pub fragments: u64,
    pub reassembled: u64,
    /// Datagrams dropped because they did not complete in time.
    pub timed_out: u64,
    /// Fragments dropped because a cap (datagrams, bytes, size) was hit.
    pub dropped_cap: u64,
    /// Fragments that overlapped data already held (the first copy was kept).
    pub overlaps: u64,
}

/// A datagram put back together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    pub payload: Vec<u8>,
}

#[derive(Debug)]
pub struct Defragmenter {
    max_datagrams: usize,
    max_bytes: usize,
    timeout_ns: u64,
    pending: HashMap<Key, Pending>,
    bytes: usize,
    pub stats: FragStats,
}

impl Defragmenter {
    pub fn new(max_datagrams: usize, max_bytes: usize, timeout_us: u64) -> Self {
        Defragmenter {
            max_datagrams,
            max_bytes,
            timeout_ns: timeout_us.saturating_mul(1_000),
            pending: HashMap::new(),
            bytes: 0,
            stats: FragStats::default(),
        }
    }

    /// Bytes currently held.
    pub fn held_bytes(&self) -> usize {
        self.bytes
    }

    /// Adds a fragment; returns the whole datagram once every piece is there.
    pub fn add(&mut self, ts: Timestamp, ip: &IpPacket<'_>, frag: Fragment) -> Option<Datagram> {
        self.stats.fragments += 1;
        self.expire(ts);
        let len = ip.payload.len() as u32;
        let end = frag.offset.saturating_add(len);
        if end > MAX_DATAGRAM || (frag.more && !len.is_multiple_of(8)) {
            self.stats.dropped_cap += 1;
            return None;
        }
        let key = Key {
            src: ip.src,
            dst: ip.dst,
            protocol: ip.protocol,
            id: frag.id,
        };
        if !self.pending.contains_key(&key) && self.pending.len() >= self.max_datagrams {
            self.stats.dropped_cap += 1;
            return None;
        }
        if self.bytes + ip.payload.len() > self.max_bytes {
            self.stats.dropped_cap += 1;
            return None;
        }
        let p = self.pending.entry(key).or_insert_with(|| Pending {
            first_seen: ts,
            pieces: Vec::new(),
            total: None,
            bytes: 0,
        });
        if !frag.more {
            p.total = Some(end);
        }
        if p.pieces
            .iter()
            .any(|(o, b)| frag.offset < *o + b.len() as u32 && *o < end)
        {
            self.stats.overlaps += 1;
        }
        p.pieces.push((frag.offset, ip.payload.to_vec()));
        p.bytes += ip.payload.len();
        self.bytes += ip.payload.len();

        let total = p.total?;
        // Complete when the pieces, sorted, cover 0..total without a hole.
        p.pieces.sort_by_key(|(o, _)| *o);
        let mut covered = 0u32;
        for (o, b) in &p.pieces {
            if *o > covered {
                return None;
            }
            covered = covered.max(o + b.len() as u32);
        }
        if covered < total {
            return None;
        }
        let p = self.pending.remove(&key)?;
        self.bytes -= p.bytes;
        let mut payload = vec![0u8; total as usize];
        let mut filled = 0u32;
        for (o, b) in &p.pieces {
            // First copy wins: only write bytes beyond what earlier (lower-offset) pieces wrote.
            let start = (*o).max(filled);
            let stop = (o + b.len() as u32).min(total);
            if start < stop {
                payload[start as usize..stop as usize].copy_from_slice(&b[(start - o) as usize..(stop - o) as usize]);
                filled = stop;
            }
        }
        self.stats.reassembled += 1;
        Some(Datagram {
            src: key.src,
            dst: key.dst,
            protocol: key.protocol,
            payload,
        })
    }

    fn expire(&mut self, now: Timestamp) {
        if self.pending.is_empty() {
            return;
        }
        let timeout = self.timeout_ns;
        let mut freed = 0;
        let mut dropped = 0;
        self.pending.retain(|_, p| {
            let keep = now.0.saturating_sub(p.first_seen.0) <= timeout;
            if !keep {
                freed += p.bytes;
                dropped += 1;
            }
            keep
        });
        self.bytes -= freed;
        self.stats.timed_out += dropped;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip<'a>(payload: &'a [u8]) -> IpPacket<'a> {
        IpPacket {
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            protocol: 17,
            payload,
            fragment: None,
            declared_len: payload.len(),
        }
    }

    #[test]
    fn reassembles_out_of_order() {
        let mut d = Defragmenter::new(16, 1 << 20, 30_000_000);
        let data: Vec<u8> = (0..40u8).collect();
        let t = Timestamp(0);
        assert!(
            d.add(
                t,
                &ip(&data[16..32]),
                Fragment {
                    id: 1,
                    offset: 16,
                    more: true
                }
            )
            .is_none()
        );
        assert!(
            d.add(
                t,
                &ip(&data[32..]),
                Fragment {
                    id: 1,
                    offset: 32,
                    more: false
                }
            )
            .is_none()
        );
        let out = d
            .add(
                t,
                &ip(&data[..16]),
                Fragment {
                    id: 1,
                    offset: 0,
                    more: true,
                },
            )
            .unwrap();
        assert_eq!(out.payload, data);
        assert_eq!(d.held_bytes(), 0);
        assert_eq!(d.stats.reassembled, 1);
    }

    #[test]
    fn first_copy_wins_on_overlap() {
        let mut d = Defragmenter::new(16, 1 << 20, 30_000_000);
        let t = Timestamp(0);
        d.add(
            t,
            &ip(&[1; 16]),
            Fragment {
                id: 2,
                offset: 0,
                more: true,
            },
        );
        d.add(
            t,
            &ip(&[2; 16]),
            Fragment {
                id: 2,
                offset: 8,
                more: true,
            },
        );
        let out = d
            .add(
                t,
                &ip(&[3; 8]),
                Fragment {
                    id: 2,
                    offset: 24,
                    more: false,
                },
            )
            .unwrap();
        assert_eq!(&out.payload[..16], &[1; 16]);
        assert_eq!(&out.payload[16..24], &[2; 8]);
        assert_eq!(d.stats.overlaps, 1);
    }

    #[test]
    fn caps_and_timeouts_are_counted() {
        let mut d = Defragmenter::new(2, 64, 1_000);
        let t = Timestamp(0);
        for id in 0..3 {
            d.add(
                t,
                &ip(&[0; 8]),
                Fragment {
                    id,
                    offset: 0,
                    more: true,
                },
            );
        }
        assert_eq!(d.stats.dropped_cap, 1);
        d.add(
            t,
            &ip(&[0; 64]),
            Fragment {
                id: 0,
                offset: 8,
                more: true,
            },
        );
        assert_eq!(d.stats.dropped_cap, 2);
        // Past the timeout everything pending is dropped.
        d.add(
            Timestamp(10_000_000),
            &ip(&[0; 8]),
            Fragment {
                id: 9,
                offset: 0,
                more: true,
            },
        );
        assert_eq!(d.stats.timed_out, 2);
        assert_eq!(d.held_bytes(), 8);
        // A fragment past 64 KiB is refused.
        assert!(
            d.add(
                t,
                &ip(&[0; 8]),
                Fragment {
                    id: 5,
                    offset: 65_528 + 8,
                    more: false
                }
            )
            .is_none()
        );
    }
}
