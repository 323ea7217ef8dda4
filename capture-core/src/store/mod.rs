//! The entry store: bounded by a memory budget, oldest entries evicted first.
//!
//! Entries are kept sorted by (timestamp, id), so "newest first" means latest capture time and
//! cursors stay valid while new entries arrive. Bytes are accounted honestly: every entry's heap
//! (payload included) plus its bookkeeping. Writers insert in batches under a short write lock;
//! readers scan under a read lock with a visitor that can stop early.
//!
//! HTTP/1 exchanges, the bulk of most captures, are kept packed ([`packed`]): a short record
//! followed by their payload, in segments of the store's memory ([`segments`]), and built back
//! into an [`Entry`] when read. Other entries are kept as they are.

mod packed;
mod segments;

use std::collections::{HashMap, VecDeque};
use std::ops::ControlFlow;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;

use crate::entry::Entry;
use crate::time::Timestamp;
use packed::Extras;
use segments::Segments;

/// The deque's slot of an entry; the deque is charged for its whole capacity.
const SLOT: usize = std::mem::size_of::<Slot>();
/// The `Arc` header of an entry kept as it is.
const ARC_HEADER: usize = 16;
/// One shared [`Extras`] with its `Arc` header.
const EXTRAS_ALLOC: usize = std::mem::size_of::<Extras>() + ARC_HEADER;
/// Recently stored extras, looked up to share them.
const RECENT_EXTRAS: usize = 8;

/// A position in the store's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub ts: Timestamp,
    pub id: u64,
}

impl Key {
    pub fn of(e: &Entry) -> Key {
        Key { ts: e.ts, id: e.id }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Newest first.
    Desc,
    /// Oldest first.
    Asc,
}

/// What the store holds and has dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub entries: u64,
    pub bytes: u64,
    pub budget_bytes: u64,
    pub inserted: u64,
    pub evicted: u64,
    pub evicted_bytes: u64,
    /// Entries refused because a single one was larger than the whole budget.
    pub rejected_oversize: u64,
    pub oldest: Option<Timestamp>,
    pub newest: Option<Timestamp>,
    /// The newest timestamp among evicted entries: results before it are incomplete.
    pub evicted_until: Option<Timestamp>,
}

/// Hashes the store's own entry ids (assigned here, one after another: nothing an attacker
/// picks) with one multiplication, spreading consecutive ids over the table's high and low bits.
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = (self.0 ^ id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// How an entry is held.
#[derive(Debug)]
enum Held {
    Boxed(Arc<Entry>),
    /// A record in segment [`Slot::seg`] ([`packed`]).
    Packed(Bytes),
}

/// One stored entry with its order key and cost beside it, so that searching and evicting do
/// not touch the entries themselves (each a cache miss).
#[derive(Debug)]
struct Slot {
    key: Key,
    held: Held,
    /// What the entry costs with its slot (for a packed one, its record: its segment is
    /// charged whole, in [`Segments`]).
    cost: u32,
    /// The segment of a packed entry.
    seg: u32,
}

type IdMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<IdHasher>>;

#[derive(Debug)]
struct Inner {
    entries: VecDeque<Slot>,
    /// Peers and TLS connections of packed entries that have them, shared by entries with the
    /// same ends.
    extras: IdMap<Arc<Extras>>,
    /// The last few distinct extras stored, for sharing.
    recent_extras: VecDeque<Arc<Extras>>,
    segments: Segments,
    /// Where records are encoded before they are written.
    scratch: Vec<u8>,
    /// Bytes of the entries kept as they are, and of the shared extras.
    bytes: usize,
    next_id: u64,
    stats: StoreStats,
}

/// The bytes a hash table of `capacity` items of `item` bytes takes: hashbrown keeps an eighth
/// of its buckets free and one control byte per bucket.
fn table_bytes(capacity: usize, item: usize) -> usize {
    capacity * 8 / 7 * (item + 1)
}

impl Inner {
    /// All the bytes charged: entries kept as they are, the segments and the tables whole.
    fn charged(&self) -> usize {
        self.bytes
            + self.segments.bytes
            + self.entries.capacity() * SLOT
            + table_bytes(self.extras.capacity(), std::mem::size_of::<(u64, Arc<Extras>)>())
    }

    /// The position of entry `id`. Ids grow in insertion order and entries mostly arrive in
    /// time order, so ids are nearly sorted along the deque: a binary search lands at or close
    /// to the entry; a walk over all of them settles the rest.
    fn position(&self, id: u64) -> Option<usize> {
        const NEAR: usize = 64;
        let e = &self.entries;
        let p = e.partition_point(|s| s.key.id < id);
        let near = p.saturating_sub(NEAR)..(p + NEAR).min(e.len());
        near.clone().find(|&i| e[i].key.id == id).or_else(|| {
            e.iter()
                .enumerate()
                .find(|(i, s)| s.key.id == id && !near.contains(i))
                .map(|(i, _)| i)
        })
    }

    /// The entry `slot` holds.
    fn entry(&self, slot: &Slot) -> Arc<Entry> {
        match &slot.held {
            Held::Boxed(e) => e.clone(),
            Held::Packed(rec) => {
                let extras = if self.extras.is_empty() {
                    None
                } else {
                    self.extras.get(&slot.key.id).map(|x| &**x)
                };
                Arc::new(packed::decode(rec, slot.key.id, slot.key.ts, extras))
            }
        }
    }

    /// Keeps `e` (its id assigned); returns its slot, or `None` when it alone is over `budget`.
    fn hold(&mut self, e: Entry, budget: usize) -> Option<Slot> {
        let key = Key::of(&e);
        if !packed::packable(&e) {
            let cost = e.memory_bytes() + ARC_HEADER + SLOT;
            if cost > budget || cost > u32::MAX as usize {
                return None;
            }
            self.bytes += cost - SLOT;
            return Some(Slot {
                key,
                held: Held::Boxed(Arc::new(e)),
                cost: cost as u32,
                seg: 0,
            });
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let (parts, has_extras) = packed::encode(&e, &mut scratch);
        let len = scratch.len() + parts.iter().map(|p| p.len()).sum::<usize>();
        let cost = len + SLOT;
        if cost > budget || cost > u32::MAX as usize {
            self.scratch = scratch;
            return None;
        }
        let mut all: [&[u8]; 7] = [&[]; 7];
        all[0] = &scratch;
        all[1..].copy_from_slice(&parts);
        let (seg, rec) = self.segments.write(&all, len);
        self.scratch = scratch;
        if has_extras {
            let shared = self.share_extras(&e);
            self.extras.insert(key.id, shared);
        }
        Some(Slot {
            key,
            held: Held::Packed(rec),
            cost: cost as u32,
            seg,
        })
    }

    /// One of the recently stored extras when `e`'s are the same, else a copy of `e`'s, shared
    /// from now on (and charged once).
    fn share_extras(&mut self, e: &Entry) -> Arc<Extras> {
        if let Some(r) = self.recent_extras.iter().find(|r| r.same_as(e)) {
            return r.clone();
        }
        let shared = Arc::new(Extras::of(e));
        self.bytes += EXTRAS_ALLOC;
        if self.recent_extras.len() == RECENT_EXTRAS
            && let Some(old) = self.recent_extras.pop_front()
        {
            self.let_go_extras(old);
        }
        self.recent_extras.push_back(shared.clone());
        shared
    }

    /// Drops one holder of shared extras; the last one takes their charge with it.
    fn let_go_extras(&mut self, x: Arc<Extras>) {
        if Arc::strong_count(&x) == 1 {
            self.bytes -= EXTRAS_ALLOC;
        }
    }

    /// Lets go of an evicted slot's charges.
    fn release(&mut self, slot: Slot) {
        match slot.held {
            Held::Boxed(_) => self.bytes -= slot.cost as usize - SLOT,
            Held::Packed(record) => {
                if !self.extras.is_empty()
                    && let Some(x) = self.extras.remove(&slot.key.id)
                {
                    self.let_go_extras(x);
                }
                // The record's view goes first, so that an emptied segment can be reused.
                drop(record);
                self.segments.release(slot.seg);
            }
        }
    }
}

/// The store. Share it as `Arc<Store>`.
#[derive(Debug)]
pub struct Store {
    inner: RwLock<Inner>,
    budget: usize,
    /// The id of the newest entry, signalled on every insert (for `watch_entries`).
    last_id: parking_lot::Mutex<u64>,
    inserted: parking_lot::Condvar,
}

/// Evicts the oldest entries until `inner` holds at most `bytes`; returns how many went.
fn evict_to(inner: &mut Inner, bytes: usize) -> u64 {
    let mut n = 0;
    while inner.charged() > bytes {
        let Some(old) = inner.entries.pop_front() else {
            // Nothing left: the segment being written goes too, and the extras kept for
            // sharing.
            inner.segments.retire_current();
            for x in std::mem::take(&mut inner.recent_extras) {
                inner.let_go_extras(x);
            }
            break;
        };
        inner.stats.evicted += 1;
        inner.stats.evicted_bytes += u64::from(old.cost);
        let ts = old.key.ts;
        inner.stats.evicted_until = Some(inner.stats.evicted_until.map_or(ts, |t| t.max(ts)));
        inner.release(old);
        n += 1;
    }
    n
}

/// Where an entry with `key` goes. Entries arrive almost in time order (an exchange is stored
/// when it ends, keyed by when it began): look back a few slots, then back in doubling steps
/// from the end, and search only the stretch found (the slots near the end are in cache, a
/// search of the whole deque is not).
fn insert_position(entries: &VecDeque<Slot>, key: Key) -> usize {
    let n = entries.len();
    for back in 0..n.min(8) {
        if entries[n - 1 - back].key <= key {
            return n - back;
        }
    }
    let mut hi = n.saturating_sub(8);
    let mut step = 8;
    while hi > 0 {
        let lo = hi.saturating_sub(step);
        if entries[lo].key <= key {
            return lo + 1 + partition_in(entries, lo + 1, hi, key);
        }
        hi = lo;
        step *= 2;
    }
    0
}

/// How many slots of `entries[lo..hi]` sort at or before `key` (they are sorted).
fn partition_in(entries: &VecDeque<Slot>, lo: usize, hi: usize, key: Key) -> usize {
    let (mut a, mut b) = (lo, hi);
    while a < b {
        let mid = a + (b - a) / 2;
        if entries[mid].key <= key {
            a = mid + 1;
        } else {
            b = mid;
        }
    }
    a - lo
}

impl Store {
    pub fn new(budget_bytes: usize) -> Self {
        Store {
            inner: RwLock::new(Inner {
                entries: VecDeque::new(),
                extras: IdMap::default(),
                recent_extras: VecDeque::new(),
                segments: Segments::new(Segments::size_for(budget_bytes)),
                scratch: Vec::new(),
                bytes: 0,
                next_id: 1,
                stats: StoreStats::default(),
            }),
            budget: budget_bytes,
            last_id: parking_lot::Mutex::new(0),
            inserted: parking_lot::Condvar::new(),
        }
    }

    /// The id of the newest entry inserted (0 before any).
    pub fn last_id(&self) -> u64 {
        *self.last_id.lock()
    }

    /// Waits until an entry newer than `id` is inserted, or `timeout` passes. True when there is
    /// one.
    pub fn wait_newer(&self, id: u64, timeout: std::time::Duration) -> bool {
        let mut last = self.last_id.lock();
        if *last > id {
            return true;
        }
        let _ = self.inserted.wait_while_for(&mut last, |l| *l <= id, timeout);
        *last > id
    }

    /// Entries with an id above `after`, in insertion order, at most `limit`, for which `keep`
    /// holds; and whether more matched beyond `limit`.
    pub fn newer_than(
        &self,
        after: u64,
        limit: usize,
        keep: &mut dyn FnMut(&Entry) -> bool,
    ) -> (Vec<Arc<Entry>>, bool) {
        let g = self.inner.read();
        let mut found: Vec<Arc<Entry>> = g
            .entries
            .iter()
            .filter(|s| s.key.id > after)
            .map(|s| g.entry(s))
            .collect();
        drop(g);
        found.sort_by_key(|e| e.id);
        let mut out = Vec::new();
        let mut more = false;
        for e in found {
            if keep(&e) {
                if out.len() == limit {
                    more = true;
                    break;
                }
                out.push(e);
            }
        }
        (out, more)
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Inserts entries (assigning their ids), then evicts the oldest until within budget.
    pub fn insert_batch(&self, batch: &mut Vec<Entry>) {
        if batch.is_empty() {
            return;
        }
        let g = self.inner.write();
        self.insert_locked(g, batch);
    }

    /// [`Self::insert_batch`] unless a reader holds the store: then nothing is inserted and
    /// false is returned (the batch is left as it is).
    pub fn try_insert_batch(&self, batch: &mut Vec<Entry>) -> bool {
        if batch.is_empty() {
            return true;
        }
        let Some(g) = self.inner.try_write() else {
            return false;
        };
        self.insert_locked(g, batch);
        true
    }

    fn insert_locked(&self, mut g: parking_lot::RwLockWriteGuard<'_, Inner>, batch: &mut Vec<Entry>) {
        let inner = &mut *g;
        for mut e in batch.drain(..) {
            e.id = inner.next_id;
            let Some(slot) = inner.hold(e, self.budget) else {
                inner.stats.rejected_oversize += 1;
                continue;
            };
            inner.next_id += 1;
            let key = slot.key;
            if inner.entries.len() == inner.entries.capacity() {
                // Grown an eighth at a time, not doubled: the deque is charged whole, and a
                // doubled one is up to half empty for good once eviction holds it steady.
                let more = (inner.entries.capacity() / 8).max(64);
                inner.entries.reserve_exact(more);
            }
            let pos = insert_position(&inner.entries, key);
            inner.entries.insert(pos, slot);
            inner.stats.inserted += 1;
        }
        let newest = inner.next_id - 1;
        evict_to(inner, self.budget);
        drop(g);
        *self.last_id.lock() = newest;
        self.inserted.notify_all();
    }

    /// Evicts the oldest entries until the store holds at most `bytes` (memory pressure);
    /// returns how many went. They count as evicted, like entries over the budget.
    pub fn shed_to(&self, bytes: usize) -> u64 {
        let mut g = self.inner.write();
        let n = evict_to(&mut g, bytes);
        g.entries.shrink_to_fit();
        g.extras.shrink_to_fit();
        n
    }

    /// Bytes the entries hold now (as counted against the budget).
    pub fn bytes(&self) -> usize {
        self.inner.read().charged()
    }

    pub fn get(&self, id: u64) -> Option<Arc<Entry>> {
        let g = self.inner.read();
        if id == 0 || id >= g.next_id {
            return None;
        }
        g.position(id).map(|i| g.entry(&g.entries[i]))
    }

    pub fn len(&self) -> usize {
        self.inner.read().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn stats(&self) -> StoreStats {
        let g = self.inner.read();
        StoreStats {
            entries: g.entries.len() as u64,
            bytes: g.charged() as u64,
            budget_bytes: self.budget as u64,
            oldest: g.entries.front().map(|s| s.key.ts),
            newest: g.entries.back().map(|s| s.key.ts),
            ..g.stats
        }
    }

    /// Visits entries in `order`, starting strictly after `after` when given, until the visitor
    /// breaks. Entries are shared (`Arc`), so a visitor can keep the ones it wants cheaply.
    pub fn scan(&self, order: Order, after: Option<Key>, visit: &mut dyn FnMut(&Arc<Entry>) -> ControlFlow<()>) {
        let g = self.inner.read();
        match order {
            Order::Asc => {
                let start = after.map_or(0, |k| g.entries.partition_point(|x| x.key <= k));
                for s in g.entries.range(start..) {
                    if visit(&g.entry(s)).is_break() {
                        return;
                    }
                }
            }
            Order::Desc => {
                let end = after.map_or(g.entries.len(), |k| g.entries.partition_point(|x| x.key < k));
                for s in g.entries.range(..end).rev() {
                    if visit(&g.entry(s)).is_break() {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Detail, HttpTxn, Protocol, Transport};

    fn entry(ts: u64, body: usize) -> Entry {
        let txn = HttpTxn {
            request: Some(crate::entry::HttpMessage {
                body: vec![0u8; body].into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        Entry {
            peers: Default::default(),
            tls: false,
            decrypted: false,
            tls_conn: None,
            id: 0,
            ts: Timestamp(ts),
            protocol: Protocol::Http11,
            transport: Transport::Tcp,
            src: "10.0.0.1:1".parse().unwrap(),
            dst: "10.0.0.2:80".parse().unwrap(),
            flow_id: 1,
            elapsed_us: None,
            detail: Detail::Http(Box::new(txn)),
        }
    }

    fn ids(s: &Store, order: Order, after: Option<Key>) -> Vec<u64> {
        let mut v = Vec::new();
        s.scan(order, after, &mut |e| {
            v.push(e.ts.0);
            ControlFlow::Continue(())
        });
        v
    }

    #[test]
    fn sorted_by_time_with_cursors() {
        let s = Store::new(1 << 20);
        s.insert_batch(&mut vec![entry(10, 0), entry(30, 0), entry(20, 0)]);
        assert_eq!(ids(&s, Order::Asc, None), vec![10, 20, 30]);
        assert_eq!(ids(&s, Order::Desc, None), vec![30, 20, 10]);
        let k = Key {
            ts: Timestamp(20),
            id: 3,
        };
        assert_eq!(ids(&s, Order::Asc, Some(k)), vec![30]);
        assert_eq!(ids(&s, Order::Desc, Some(k)), vec![10]);
        assert_eq!(s.get(3).unwrap().ts, Timestamp(20));
        assert!(s.get(99).is_none());
    }

    #[test]
    fn budget_evicts_oldest_and_counts_payload() {
        let one = {
            let s = Store::new(1 << 20);
            s.insert_batch(&mut vec![entry(0, 10_000)]);
            s.bytes()
        };
        let s = Store::new(one * 3 + 10);
        s.insert_batch(&mut (0..5).map(|i| entry(i, 10_000)).collect());
        let st = s.stats();
        assert_eq!(st.entries, 3);
        assert_eq!(st.evicted, 2);
        assert_eq!(st.evicted_until, Some(Timestamp(1)));
        assert!(st.bytes <= st.budget_bytes);
        assert!(st.bytes >= 30_000, "payload bytes are counted");
        assert_eq!(ids(&s, Order::Asc, None), vec![2, 3, 4]);
        s.insert_batch(&mut vec![entry(9, 10 * one)]);
        assert_eq!(s.stats().rejected_oversize, 1);
    }

    #[test]
    fn watchers_wake_on_insert_and_see_newer_ids_in_order() {
        let store = Arc::new(Store::new(1 << 20));
        store.insert_batch(&mut vec![entry(5, 10)]);
        let first = store.last_id();
        assert!(
            !store.wait_newer(first, std::time::Duration::from_millis(20)),
            "nothing newer yet"
        );
        let s2 = store.clone();
        let waiter = std::thread::spawn(move || s2.wait_newer(first, std::time::Duration::from_secs(10)));
        std::thread::sleep(std::time::Duration::from_millis(50));
        // Inserted out of time order: ids still say what is new.
        store.insert_batch(&mut vec![entry(9, 10), entry(1, 10), entry(7, 10)]);
        assert!(waiter.join().unwrap());
        let (got, more) = store.newer_than(first, 2, &mut |_| true);
        assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), [first + 1, first + 2]);
        assert!(more);
        let (odd, _) = store.newer_than(first, 10, &mut |e| e.ts.as_nanos() % 2 == 1);
        assert_eq!(odd.len(), 3);
        assert_eq!(store.last_id(), first + 3);
    }

    /// Packed exchanges read back as they were inserted (with their ids), whatever order their
    /// timestamps come in, and the charge never passes the budget: a segment stays charged
    /// while any of its records is kept.
    #[test]
    fn packed_entries_read_back_and_the_budget_holds_for_any_order() {
        let budget = 64 << 10;
        let s = Store::new(budget);
        let mut kept = std::collections::HashMap::new();
        let mut seed = 7u64;
        for round in 0..200u64 {
            let mut batch = Vec::new();
            for _ in 0..3 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                // Mostly in order; now and then far in the past or the future.
                let ts = match seed >> 60 {
                    0 => seed >> 20,
                    1 => 1,
                    _ => round * 1000 + (seed >> 54),
                };
                let mut e = entry(ts, (seed >> 40) as usize % 3000);
                if seed & 1 == 0 {
                    e.peers.src_dns = Some(Arc::from("db.internal"));
                }
                batch.push(e);
            }
            let first = s.last_id() + 1;
            for (i, e) in batch.iter().enumerate() {
                kept.insert(first + i as u64, e.clone());
            }
            s.insert_batch(&mut batch);
            let st = s.stats();
            assert!(st.bytes <= budget as u64, "round {round}: {} over {budget}", st.bytes);
            assert_eq!(st.inserted, (round + 1) * 3);
        }
        let mut n = 0;
        s.scan(Order::Asc, None, &mut |e| {
            let want = Entry {
                id: e.id,
                ..kept[&e.id].clone()
            };
            assert_eq!(**e, want);
            assert_eq!(*s.get(e.id).unwrap(), want);
            n += 1;
            ControlFlow::Continue(())
        });
        assert!(n > 10, "{n} kept");
        assert_eq!(s.stats().entries, n);
        // Emptied, the store charges nothing, not even the segment it was writing.
        s.shed_to(0);
        assert_eq!(s.bytes(), 0);
    }

    /// The doubling search from the end finds the place the whole search finds.
    #[test]
    fn insert_positions_are_where_a_full_search_puts_them() {
        let slot = |ts: u64| Slot {
            key: Key {
                ts: Timestamp(ts),
                id: 0,
            },
            held: Held::Boxed(Arc::new(entry(ts, 0))),
            cost: 0,
            seg: 0,
        };
        for n in [0usize, 1, 5, 8, 9, 17, 100, 1000] {
            let entries: VecDeque<Slot> = (0..n as u64).map(|i| slot(i * 2 + 1)).collect();
            for ts in 0..=(n as u64 * 2 + 2) {
                let key = Key {
                    ts: Timestamp(ts),
                    id: 0,
                };
                assert_eq!(
                    insert_position(&entries, key),
                    entries.partition_point(|x| x.key <= key),
                    "n {n} ts {ts}"
                );
            }
        }
    }

    /// Entries with the same Kubernetes ends share one copy of them, charged once; each entry
    /// reads back its own, and the charge goes with the last holder.
    #[test]
    fn entries_with_the_same_ends_share_their_extras() {
        let s = Store::new(64 << 20);
        let api: Arc<str> = Arc::from("api.internal");
        let db: Arc<str> = Arc::from("db.internal");
        let with = |ts: u64, name: &Arc<str>| {
            let mut e = entry(ts, 100);
            e.peers.dst_dns = Some(name.clone());
            e
        };
        s.insert_batch(&mut vec![with(0, &api)]);
        let one = s.bytes();
        s.insert_batch(
            &mut (1..1000)
                .map(|ts| with(ts, if ts % 2 == 0 { &api } else { &db }))
                .collect(),
        );
        let g = s.inner.read();
        assert_eq!(g.extras.len(), 1000);
        assert_eq!(g.recent_extras.len(), 2, "two distinct pairs of ends");
        assert_eq!(g.bytes, 2 * EXTRAS_ALLOC);
        drop(g);
        assert!(s.bytes() - one < 1000 * 150, "{} for 999 entries", s.bytes() - one);
        s.scan(Order::Asc, None, &mut |e| {
            let want = if e.ts.0 % 2 == 0 { &api } else { &db };
            assert!(Arc::ptr_eq(e.peers.dst_dns.as_ref().unwrap(), want));
            ControlFlow::Continue(())
        });
        s.shed_to(0);
        let g = s.inner.read();
        assert_eq!((g.bytes, g.extras.len(), g.recent_extras.len()), (0, 0, 0));
    }
}
