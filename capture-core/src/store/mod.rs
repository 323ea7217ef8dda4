//! The entry store: bounded by a memory budget, oldest entries evicted first.
//!
//! Entries are kept sorted by (timestamp, id), so "newest first" means latest capture time and
//! cursors stay valid while new entries arrive. Bytes are accounted honestly: every entry's heap
//! (payload included) plus its bookkeeping. Writers insert in batches under a short write lock;
//! readers scan under a read lock with a visitor that can stop early.

use std::collections::{HashMap, VecDeque};
use std::ops::ControlFlow;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::entry::Entry;
use crate::time::Timestamp;

/// Bookkeeping per entry beyond [`Entry::memory_bytes`]: the `Arc` header (16), the deque slot
/// (32) and the id index (about 40 with its hash-table overhead).
const PER_ENTRY_OVERHEAD: usize = 88;

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

/// One stored entry with its order key and cost beside it, so that searching and evicting do
/// not touch the entries themselves (each a cache miss).
#[derive(Debug)]
struct Slot {
    key: Key,
    cost: usize,
    entry: Arc<Entry>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: VecDeque<Slot>,
    by_id: HashMap<u64, Timestamp, std::hash::BuildHasherDefault<IdHasher>>,
    bytes: usize,
    next_id: u64,
    stats: StoreStats,
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
    while inner.bytes > bytes {
        let Some(old) = inner.entries.pop_front() else {
            break;
        };
        let c = old.cost;
        inner.bytes -= c;
        inner.by_id.remove(&old.key.id);
        inner.stats.evicted += 1;
        inner.stats.evicted_bytes += c as u64;
        let ts = old.key.ts;
        inner.stats.evicted_until = Some(inner.stats.evicted_until.map_or(ts, |t| t.max(ts)));
        n += 1;
    }
    n
}

/// Where an entry with `key` goes. Entries arrive almost in time order (an exchange is stored
/// when it ends, keyed by when it began): look back a few slots before searching the whole.
fn insert_position(entries: &VecDeque<Slot>, key: Key) -> usize {
    let n = entries.len();
    for back in 0..n.min(8) {
        if entries[n - 1 - back].key <= key {
            return n - back;
        }
    }
    entries.partition_point(|x| x.key <= key)
}

fn cost(e: &Entry) -> usize {
    e.memory_bytes() + PER_ENTRY_OVERHEAD
}

impl Store {
    pub fn new(budget_bytes: usize) -> Self {
        Store {
            inner: RwLock::new(Inner {
                next_id: 1,
                ..Inner::default()
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
            .map(|s| s.entry.clone())
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
            let c = cost(&e);
            if c > self.budget {
                inner.stats.rejected_oversize += 1;
                continue;
            }
            e.id = inner.next_id;
            inner.next_id += 1;
            let key = Key::of(&e);
            inner.by_id.insert(e.id, e.ts);
            let pos = insert_position(&inner.entries, key);
            inner.entries.insert(
                pos,
                Slot {
                    key,
                    cost: c,
                    entry: Arc::new(e),
                },
            );
            inner.bytes += c;
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
        n
    }

    /// Bytes the entries hold now (as counted against the budget).
    pub fn bytes(&self) -> usize {
        self.inner.read().bytes
    }

    pub fn get(&self, id: u64) -> Option<Arc<Entry>> {
        let g = self.inner.read();
        let ts = *g.by_id.get(&id)?;
        let key = Key { ts, id };
        let pos = g.entries.partition_point(|x| x.key < key);
        g.entries.get(pos).filter(|s| s.key.id == id).map(|s| s.entry.clone())
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
            bytes: g.bytes as u64,
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
                    if visit(&s.entry).is_break() {
                        return;
                    }
                }
            }
            Order::Desc => {
                let end = after.map_or(g.entries.len(), |k| g.entries.partition_point(|x| x.key < k));
                for s in g.entries.range(..end).rev() {
                    if visit(&s.entry).is_break() {
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
                body: vec![0u8; body].into_boxed_slice(),
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
        let one = cost(&entry(0, 10_000));
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
}
