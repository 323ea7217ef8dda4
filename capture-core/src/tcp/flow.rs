//! The flow table: connections keyed by their 5-tuple, with client/server roles and bounded,
//! time-based eviction.
//!
//! Roles: the sender of a SYN (without ACK) is the client; else the receiver of a SYN-ACK. With
//! no handshake captured, the documented heuristic is: the side on a well-known service port is
//! the server; else the side with the lower port; else (equal ports) the sender of the first
//! packet is the client.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::time::Timestamp;

/// Direction of a packet relative to the flow's roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    ToServer = 0,
    ToClient = 1,
}

impl Dir {
    pub fn index(self) -> usize {
        self as usize
    }
    pub fn flip(self) -> Dir {
        match self {
            Dir::ToServer => Dir::ToClient,
            Dir::ToClient => Dir::ToServer,
        }
    }
}

/// How the client/server roles of a flow were decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleSource {
    Syn,
    SynAck,
    Port,
    FirstPacket,
}

impl RoleSource {
    pub fn name(self) -> &'static str {
        match self {
            RoleSource::Syn => "syn",
            RoleSource::SynAck => "synack",
            RoleSource::Port => "port",
            RoleSource::FirstPacket => "first-packet",
        }
    }
}

/// Ports on which a server is assumed when no handshake was seen.
const SERVICE_PORTS: &[u16] = &[
    21, 22, 23, 25, 53, 80, 110, 143, 389, 443, 445, 465, 587, 636, 853, 993, 995, 1433, 1521, 2181, 2379, 3000, 3306,
    4222, 5000, 5432, 5672, 5671, 6379, 6380, 6443, 8000, 8080, 8443, 8888, 9000, 9042, 9090, 9092, 9200, 9300, 10250,
    11211, 15672, 27017, 50051,
];

/// Protocol-independent key: the two endpoints in canonical order.
///
/// Every packet looks its flow up by this key, so ordering, hashing and comparing it have fast
/// paths for IPv4 (one integer each) that agree with `SocketAddr`'s own `Ord` and `Eq`.
#[derive(Debug, Clone, Copy, Eq)]
pub struct FlowKey {
    pub lo: SocketAddr,
    pub hi: SocketAddr,
    pub proto: u8,
}

/// An IPv4 end as one integer that orders as `(ip, port)` does.
#[inline]
fn v4(a: &SocketAddr) -> Option<u64> {
    match a {
        SocketAddr::V4(a) => Some(u64::from(a.ip().to_bits()) << 16 | u64::from(a.port())),
        SocketAddr::V6(_) => None,
    }
}

impl FlowKey {
    pub fn new(a: SocketAddr, b: SocketAddr, proto: u8) -> Self {
        let a_first = match (v4(&a), v4(&b)) {
            (Some(x), Some(y)) => x <= y,
            _ => (a.ip(), a.port()) <= (b.ip(), b.port()),
        };
        if a_first {
            FlowKey { lo: a, hi: b, proto }
        } else {
            FlowKey { lo: b, hi: a, proto }
        }
    }
}

impl PartialEq for FlowKey {
    #[inline]
    fn eq(&self, o: &Self) -> bool {
        #[inline]
        fn same(a: &SocketAddr, b: &SocketAddr) -> bool {
            match (a, b) {
                (SocketAddr::V4(a), SocketAddr::V4(b)) => a.ip().to_bits() == b.ip().to_bits() && a.port() == b.port(),
                _ => a == b,
            }
        }
        self.proto == o.proto && same(&self.lo, &o.lo) && same(&self.hi, &o.hi)
    }
}

impl std::hash::Hash for FlowKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        if let (Some(a), Some(b)) = (v4(&self.lo), v4(&self.hi)) {
            h.write_u64(a);
            h.write_u64(b | u64::from(self.proto) << 48);
            return;
        }
        self.lo.hash(h);
        self.hi.hash(h);
        self.proto.hash(h);
    }
}

/// Decides the roles for a new flow from its first packet (sent by `src` to `dst`).
pub fn decide_roles(src: SocketAddr, dst: SocketAddr, syn: bool, ack: bool) -> (SocketAddr, SocketAddr, RoleSource) {
    if syn && !ack {
        return (src, dst, RoleSource::Syn);
    }
    if syn && ack {
        return (dst, src, RoleSource::SynAck);
    }
    let s_svc = SERVICE_PORTS.contains(&src.port());
    let d_svc = SERVICE_PORTS.contains(&dst.port());
    if d_svc && !s_svc {
        return (src, dst, RoleSource::Port);
    }
    if s_svc && !d_svc {
        return (dst, src, RoleSource::Port);
    }
    if src.port() > dst.port() {
        (src, dst, RoleSource::Port)
    } else if dst.port() > src.port() {
        (dst, src, RoleSource::Port)
    } else {
        (src, dst, RoleSource::FirstPacket)
    }
}

/// What every flow carries besides its protocol state.
#[derive(Debug, Clone)]
pub struct FlowMeta {
    pub id: u64,
    pub key: FlowKey,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub roles: RoleSource,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Set when the flow closed (both FINs, or a RST).
    pub closed_at: Option<Timestamp>,
}

impl FlowMeta {
    /// A flow first seen at `ts` in a packet from `src` to `dst` (with these TCP flags), its
    /// roles decided by [`decide_roles`]; the table numbers it when it is inserted.
    pub fn new(key: FlowKey, src: SocketAddr, dst: SocketAddr, syn: bool, ack: bool, ts: Timestamp) -> Self {
        let (client, server, roles) = decide_roles(src, dst, syn, ack);
        FlowMeta {
            id: 0,
            key,
            client,
            server,
            roles,
            first_seen: ts,
            last_seen: ts,
            closed_at: None,
        }
    }

    pub fn dir_of(&self, src: SocketAddr) -> Dir {
        if src == self.client {
            Dir::ToServer
        } else {
            Dir::ToClient
        }
    }
}

pub struct Flow<T> {
    pub meta: FlowMeta,
    pub state: T,
}

/// Why a flow left the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    Idle,
    Closed,
    Capacity,
    /// Replaced by a new connection on the same 5-tuple.
    Reused,
    /// End of the capture.
    Finish,
}

/// Flows by key, bounded by `max_flows`.
pub struct FlowTable<T> {
    flows: HashMap<FlowKey, Flow<T>, ahash::RandomState>,
    next_id: u64,
    /// Ids go up by this much: engines that share a store number their flows apart.
    id_step: u64,
    max_flows: usize,
    pub created: u64,
    pub evicted_idle: u64,
    pub evicted_closed: u64,
    pub evicted_capacity: u64,
}

impl<T> FlowTable<T> {
    pub fn new(max_flows: usize) -> Self {
        FlowTable {
            flows: HashMap::with_hasher(ahash::RandomState::new()),
            next_id: 1,
            id_step: 1,
            max_flows: max_flows.max(1),
            created: 0,
            evicted_idle: 0,
            evicted_closed: 0,
            evicted_capacity: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Numbers flows `first`, `first + step`, …: engine `k` of `n` sharing a store takes
    /// `first = k + 1, step = n`, so ids never collide.
    pub fn number_from(&mut self, first: u64, step: u64) {
        self.next_id = first.max(1);
        self.id_step = step.max(1);
    }

    pub fn peek(&self, key: &FlowKey) -> Option<&Flow<T>> {
        self.flows.get(key)
    }

    pub fn get_mut(&mut self, key: &FlowKey) -> Option<&mut Flow<T>> {
        self.flows.get_mut(key)
    }

    pub fn remove(&mut self, key: &FlowKey) -> Option<Flow<T>> {
        self.flows.remove(key)
    }

    /// The flow of `key`, made by `make` when there is none (with one hash lookup either way);
    /// true when it was made. A full table first evicts its least recently seen eighth
    /// (passed to `on_evict`).
    pub fn get_or_insert(
        &mut self,
        key: FlowKey,
        make: impl FnOnce() -> (FlowMeta, T),
        on_evict: &mut dyn FnMut(Flow<T>, Eviction),
    ) -> (&mut Flow<T>, bool) {
        if self.flows.len() >= self.max_flows && !self.flows.contains_key(&key) {
            self.evict_capacity(on_evict);
        }
        match self.flows.entry(key) {
            std::collections::hash_map::Entry::Occupied(o) => (o.into_mut(), false),
            std::collections::hash_map::Entry::Vacant(v) => {
                let (mut meta, state) = make();
                meta.id = self.next_id;
                self.next_id += self.id_step;
                self.created += 1;
                (v.insert(Flow { meta, state }), true)
            }
        }
    }

    fn evict_capacity(&mut self, on_evict: &mut dyn FnMut(Flow<T>, Eviction)) {
        for k in self.oldest((self.max_flows / 8).max(1)) {
            if let Some(f) = self.flows.remove(&k) {
                self.evicted_capacity += 1;
                on_evict(f, Eviction::Capacity);
            }
        }
    }

    /// Removes the `n` least recently seen flows (memory pressure), passing them to `on_evict`.
    pub fn evict_oldest(&mut self, n: usize, on_evict: &mut dyn FnMut(Flow<T>, Eviction)) {
        for k in self.oldest(n) {
            if let Some(f) = self.flows.remove(&k) {
                on_evict(f, Eviction::Capacity);
            }
        }
    }

    /// The keys of the `n` least recently seen flows (all of them when there are fewer).
    fn oldest(&self, n: usize) -> Vec<FlowKey> {
        let n = n.min(self.flows.len());
        if n == 0 {
            return Vec::new();
        }
        let mut seen: Vec<(Timestamp, FlowKey)> = self.flows.values().map(|f| (f.meta.last_seen, f.meta.key)).collect();
        seen.select_nth_unstable_by_key(n - 1, |(t, _)| *t);
        seen.truncate(n);
        seen.into_iter().map(|(_, k)| k).collect()
    }

    /// Mutable access to every flow.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Flow<T>> {
        self.flows.values_mut()
    }

    /// The flows idle past their timeout or closed past the linger time, by key: the caller
    /// takes each out with [`Self::remove_expired`] and ends it (collecting the flows
    /// themselves first moved every flow's state twice more and grew a vector of them once a
    /// second).
    pub fn expired(
        &self,
        now: Timestamp,
        idle_timeout_ns: &dyn Fn(&FlowKey) -> u64,
        linger_ns: u64,
    ) -> Vec<(FlowKey, Eviction)> {
        let mut gone: Vec<(FlowKey, Eviction)> = Vec::new();
        for (k, f) in &self.flows {
            if let Some(c) = f.meta.closed_at
                && now.0.saturating_sub(c.0) > linger_ns
            {
                gone.push((*k, Eviction::Closed));
                continue;
            }
            if now.0.saturating_sub(f.meta.last_seen.0) > idle_timeout_ns(k) {
                gone.push((*k, Eviction::Idle));
            }
        }
        gone
    }

    /// Removes one flow [`Self::expired`] named, counting why it left.
    pub fn remove_expired(&mut self, key: &FlowKey, why: Eviction) -> Option<Flow<T>> {
        let f = self.flows.remove(key)?;
        match why {
            Eviction::Closed => self.evicted_closed += 1,
            _ => self.evicted_idle += 1,
        }
        Some(f)
    }

    /// Removes every flow (end of capture), oldest first.
    pub fn drain_all(&mut self, on_evict: &mut dyn FnMut(Flow<T>, Eviction)) {
        let mut all: Vec<Flow<T>> = self.flows.drain().map(|(_, f)| f).collect();
        all.sort_by_key(|f| f.meta.id);
        for f in all {
            on_evict(f, Eviction::Finish);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Flow<T>> {
        self.flows.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    proptest::proptest! {
        /// The IPv4 fast paths order, compare and hash keys as `SocketAddr` itself does.
        #[test]
        fn keys_agree_with_socket_addr(
            ends in proptest::collection::vec((proptest::prelude::any::<bool>(), 0u32..4, 0u16..3), 4),
            proto in 6u8..8,
        ) {
            let addr = |(v6, ip, port): (bool, u32, u16)| -> SocketAddr {
                if v6 {
                    std::net::SocketAddrV6::new(std::net::Ipv6Addr::from_bits(u128::from(ip)), port, 0, 0).into()
                } else {
                    std::net::SocketAddrV4::new(std::net::Ipv4Addr::from_bits(ip), port).into()
                }
            };
            let [a, b, c, d] = [0, 1, 2, 3].map(|i| addr(ends[i]));
            let k1 = FlowKey::new(a, b, proto);
            let (lo, hi) = if (a.ip(), a.port()) <= (b.ip(), b.port()) { (a, b) } else { (b, a) };
            proptest::prop_assert_eq!((k1.lo, k1.hi), (lo, hi));
            proptest::prop_assert_eq!(k1, FlowKey::new(b, a, proto));
            let k2 = FlowKey::new(c, d, proto);
            let same = k1.lo == k2.lo && k1.hi == k2.hi;
            proptest::prop_assert_eq!(k1 == k2, same);
            let rs = ahash::RandomState::new();
            if same {
                proptest::prop_assert_eq!(rs.hash_one(k1), rs.hash_one(k2));
            }
            let k3 = FlowKey { proto: proto + 10, ..k1 };
            proptest::prop_assert_ne!(k1, k3);
        }
    }

    #[test]
    fn roles() {
        let c = sa("10.0.0.1:40000");
        let s = sa("10.0.0.2:8080");
        assert_eq!(decide_roles(c, s, true, false), (c, s, RoleSource::Syn));
        assert_eq!(decide_roles(s, c, true, true), (c, s, RoleSource::SynAck));
        assert_eq!(decide_roles(s, c, false, true), (c, s, RoleSource::Port));
        let a = sa("10.0.0.1:31313");
        let b = sa("10.0.0.2:41000");
        assert_eq!(decide_roles(a, b, false, true), (b, a, RoleSource::Port));
        let x = sa("10.0.0.1:7000");
        let y = sa("10.0.0.2:7000");
        assert_eq!(decide_roles(y, x, false, false), (y, x, RoleSource::FirstPacket));
    }

    #[test]
    fn key_is_symmetric() {
        let a = sa("10.0.0.1:1");
        let b = sa("[::1]:2");
        assert_eq!(FlowKey::new(a, b, 6), FlowKey::new(b, a, 6));
    }

    fn meta(i: u16, ts: u64) -> FlowMeta {
        let c = SocketAddr::from(([10, 0, 0, 1], 1000 + i));
        let s = sa("10.0.0.2:80");
        FlowMeta {
            id: 0,
            key: FlowKey::new(c, s, 6),
            client: c,
            server: s,
            roles: RoleSource::Syn,
            first_seen: Timestamp(ts),
            last_seen: Timestamp(ts),
            closed_at: None,
        }
    }

    #[test]
    fn engines_sharing_a_store_number_flows_apart() {
        let ids = |first, step| {
            let mut t: FlowTable<()> = FlowTable::new(8);
            t.number_from(first, step);
            (0..3)
                .map(|i| {
                    t.get_or_insert(meta(i, 0).key, || (meta(i, 0), ()), &mut |_, _| {});
                    t.peek(&meta(i, 0).key).unwrap().meta.id
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(1, 1), [1, 2, 3]);
        assert_eq!(ids(1, 2), [1, 3, 5]);
        assert_eq!(ids(2, 2), [2, 4, 6]);
    }

    #[test]
    fn capacity_evicts_oldest() {
        let mut t: FlowTable<()> = FlowTable::new(8);
        let mut evicted = Vec::new();
        for i in 0..9 {
            let m = meta(i, u64::from(i));
            t.get_or_insert(m.key, || (m, ()), &mut |f, why| evicted.push((f.meta.last_seen.0, why)));
        }
        assert_eq!(evicted, vec![(0, Eviction::Capacity)]);
        assert_eq!(t.len(), 8);
        for (k, why) in t.expired(Timestamp(100), &|_| 50, 10) {
            let f = t.remove_expired(&k, why).unwrap();
            evicted.push((f.meta.last_seen.0, why));
        }
        assert_eq!(t.len(), 0);
        assert_eq!(t.evicted_idle, 8);
    }
}
