//! Kafka wire format, read by this bounded decoder: request and response headers; the topics and
//! partitions of the requests that name them (Produce, Fetch, ListOffsets, Metadata,
//! OffsetCommit, OffsetFetch, CreateTopics, DeleteTopics, DeleteRecords, OffsetForLeaderEpoch,
//! TxnOffsetCommit); the records of Produce requests and Fetch responses; the error codes of
//! responses (per partition, per topic, per group, or the top-level one) — for classic and
//! flexible (compact, tagged-field) versions alike. Pure functions over one frame without its
//! 4-byte length; a frame cut short yields what its first bytes hold. Array lengths are never
//! trusted for allocation: items are read one by one and what is kept is capped.

use super::records::{Place, RecordCaps, RecordStats, read_record_set};
use super::{KafkaEntry, KafkaPartition};
use crate::dissect::Probe;
use crate::limits::Limits;

/// (api key, Kubeshark's upper-snake name, first flexible version; `i16::MAX` = never).
const APIS: &[(i16, &str, i16)] = &[
    (0, "PRODUCE", 9),
    (1, "FETCH", 12),
    (2, "LIST_OFFSETS", 6),
    (3, "METADATA", 9),
    (4, "LEADER_AND_ISR", 4),
    (5, "STOP_REPLICA", 2),
    (6, "UPDATE_METADATA", 6),
    (7, "CONTROLLED_SHUTDOWN", 3),
    (8, "OFFSET_COMMIT", 8),
    (9, "OFFSET_FETCH", 6),
    (10, "FIND_COORDINATOR", 3),
    (11, "JOIN_GROUP", 6),
    (12, "HEARTBEAT", 4),
    (13, "LEAVE_GROUP", 4),
    (14, "SYNC_GROUP", 4),
    (15, "DESCRIBE_GROUPS", 5),
    (16, "LIST_GROUPS", 3),
    (17, "SASL_HANDSHAKE", i16::MAX),
    (18, "API_VERSIONS", 3),
    (19, "CREATE_TOPICS", 5),
    (20, "DELETE_TOPICS", 4),
    (21, "DELETE_RECORDS", 2),
    (22, "INIT_PRODUCER_ID", 2),
    (23, "OFFSET_FOR_LEADER_EPOCH", 4),
    (24, "ADD_PARTITIONS_TO_TXN", 3),
    (25, "ADD_OFFSETS_TO_TXN", 3),
    (26, "END_TXN", 3),
    (27, "WRITE_TXN_MARKERS", 1),
    (28, "TXN_OFFSET_COMMIT", 3),
    (29, "DESCRIBE_ACLS", 2),
    (30, "CREATE_ACLS", 2),
    (31, "DELETE_ACLS", 2),
    (32, "DESCRIBE_CONFIGS", 4),
    (33, "ALTER_CONFIGS", 2),
    (34, "ALTER_REPLICA_LOG_DIRS", 2),
    (35, "DESCRIBE_LOG_DIRS", 2),
    (36, "SASL_AUTHENTICATE", 2),
    (37, "CREATE_PARTITIONS", 2),
    (38, "CREATE_DELEGATION_TOKEN", 2),
    (39, "RENEW_DELEGATION_TOKEN", 2),
    (40, "EXPIRE_DELEGATION_TOKEN", 2),
    (41, "DESCRIBE_DELEGATION_TOKEN", 2),
    (42, "DELETE_GROUPS", 2),
    (43, "ELECT_LEADERS", 2),
    (44, "INCREMENTAL_ALTER_CONFIGS", 1),
    (45, "ALTER_PARTITION_REASSIGNMENTS", 0),
    (46, "LIST_PARTITION_REASSIGNMENTS", 0),
    (47, "OFFSET_DELETE", i16::MAX),
    (48, "DESCRIBE_CLIENT_QUOTAS", 1),
    (49, "ALTER_CLIENT_QUOTAS", 1),
    (50, "DESCRIBE_USER_SCRAM_CREDENTIALS", 0),
    (51, "ALTER_USER_SCRAM_CREDENTIALS", 0),
    (52, "VOTE", 0),
    (53, "BEGIN_QUORUM_EPOCH", 1),
    (54, "END_QUORUM_EPOCH", 1),
    (55, "DESCRIBE_QUORUM", 0),
    (56, "ALTER_PARTITION", 0),
    (57, "UPDATE_FEATURES", 0),
    (58, "ENVELOPE", 0),
    (59, "FETCH_SNAPSHOT", 0),
    (60, "DESCRIBE_CLUSTER", 0),
    (61, "DESCRIBE_PRODUCERS", 0),
    (62, "BROKER_REGISTRATION", 0),
    (63, "BROKER_HEARTBEAT", 0),
    (64, "UNREGISTER_BROKER", 0),
    (65, "DESCRIBE_TRANSACTIONS", 0),
    (66, "LIST_TRANSACTIONS", 0),
    (67, "ALLOCATE_PRODUCER_IDS", 0),
    (68, "CONSUMER_GROUP_HEARTBEAT", 0),
    (69, "CONSUMER_GROUP_DESCRIBE", 0),
    (70, "CONTROLLER_REGISTRATION", 0),
    (71, "GET_TELEMETRY_SUBSCRIPTIONS", 0),
    (72, "PUSH_TELEMETRY", 0),
    (73, "ASSIGN_REPLICAS_TO_DIRS", 0),
    (74, "LIST_CLIENT_METRICS_RESOURCES", 0),
    (75, "DESCRIBE_TOPIC_PARTITIONS", 0),
    (76, "SHARE_GROUP_HEARTBEAT", 0),
    (77, "SHARE_GROUP_DESCRIBE", 0),
    (78, "SHARE_FETCH", 0),
    (79, "SHARE_ACKNOWLEDGE", 0),
    (80, "ADD_RAFT_VOTER", 0),
    (81, "REMOVE_RAFT_VOTER", 0),
    (82, "UPDATE_RAFT_VOTER", 0),
    (83, "INITIALIZE_SHARE_GROUP_STATE", 0),
    (84, "READ_SHARE_GROUP_STATE", 0),
    (85, "WRITE_SHARE_GROUP_STATE", 0),
    (86, "DELETE_SHARE_GROUP_STATE", 0),
    (87, "READ_SHARE_GROUP_STATE_SUMMARY", 0),
    (88, "STREAMS_GROUP_HEARTBEAT", 0),
    (89, "STREAMS_GROUP_DESCRIBE", 0),
    (90, "DESCRIBE_SHARE_GROUP_OFFSETS", 0),
    (91, "ALTER_SHARE_GROUP_OFFSETS", 0),
    (92, "DELETE_SHARE_GROUP_OFFSETS", 0),
];

/// Highest api version a request may claim and still look like Kafka.
const MAX_VERSION: i16 = 20;
/// Longest client id a probe accepts.
const MAX_CLIENT_ID: usize = 1_024;
/// Frames of 16 MiB and more are not taken for Kafka by the probe (the first length byte is 0).
const MAX_PROBE_FRAME: u32 = 1 << 24;

/// Kubeshark's name of an api key.
pub fn api_name(key: i16) -> Option<&'static str> {
    APIS.iter().find(|a| a.0 == key).map(|a| a.1)
}

/// Does this api key and version use the flexible (compact, tagged-field) encoding?
pub fn flexible(key: i16, version: i16) -> bool {
    APIS.iter().any(|a| a.0 == key && version >= a.2)
}

/// The total size (length prefix included) of a frame whose first 4 bytes are `h`.
pub fn frame_size(h: &[u8]) -> Option<usize> {
    let len = i32::from_be_bytes(h.get(..4)?.try_into().ok()?);
    (len >= 4).then(|| 4 + len as usize)
}

/// Is `b` the start of a Kafka request (a length-prefixed frame with a known api key, a
/// plausible version and correlation id, and a printable client id)?
pub fn probe(b: &[u8]) -> Probe {
    if b.len() < 4 {
        return Probe::NeedMore;
    }
    let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    if !(10..MAX_PROBE_FRAME).contains(&len) {
        return Probe::NoMatch;
    }
    if b.len() < 14 {
        return Probe::NeedMore;
    }
    let key = i16::from_be_bytes([b[4], b[5]]);
    let version = i16::from_be_bytes([b[6], b[7]]);
    let corr = i32::from_be_bytes([b[8], b[9], b[10], b[11]]);
    let id_len = i16::from_be_bytes([b[12], b[13]]);
    if api_name(key).is_none() || !(0..=MAX_VERSION).contains(&version) || corr < 0 {
        return Probe::NoMatch;
    }
    if id_len == -1 {
        return Probe::Match;
    }
    if id_len < 0 || id_len as usize > MAX_CLIENT_ID || 10 + id_len as u32 > len {
        return Probe::NoMatch;
    }
    let end = 14 + id_len as usize;
    let Some(id) = b.get(14..end) else {
        return Probe::NeedMore;
    };
    if id.iter().all(|c| (0x20..0x7f).contains(c)) {
        Probe::Match
    } else {
        Probe::NoMatch
    }
}

/// Is `b` a run of Kafka responses (length, then a non-negative correlation id), the first of
/// them whole? Answers `NeedMore`, never `Match`: a response alone is too little to claim a
/// connection, but it is held so that the requests of the other direction can claim it and take
/// it along. Bytes that only start a frame are refused, so other data is not held back.
pub fn probe_responses(mut b: &[u8]) -> Probe {
    let mut first = true;
    loop {
        if b.len() < 8 {
            return if first { Probe::NoMatch } else { Probe::NeedMore };
        }
        let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let corr = i32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        if !(4..MAX_PROBE_FRAME).contains(&len) || corr < 0 {
            return Probe::NoMatch;
        }
        match b.get(4 + len as usize..) {
            Some([]) => return Probe::NeedMore,
            Some(rest) => b = rest,
            None if first => return Probe::NoMatch,
            None => return Probe::NeedMore,
        }
        first = false;
    }
}

/// A cursor over a frame (and over the record batches inside it).
pub(super) struct Rd<'a> {
    pub(super) b: &'a [u8],
}

impl<'a> Rd<'a> {
    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Some(h)
    }
    fn i8(&mut self) -> Option<i8> {
        Some(self.take(1)?[0] as i8)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    pub(super) fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    /// A zigzag varint (up to 64 bits), as record fields use.
    pub(super) fn varint(&mut self) -> Option<i64> {
        let v = self.uvarint()?;
        Some((v >> 1) as i64 ^ -((v & 1) as i64))
    }
    /// Varint-length bytes; -1 is null.
    pub(super) fn var_bytes(&mut self) -> Option<Option<&'a [u8]>> {
        match self.varint()? {
            -1 => Some(None),
            n => Some(Some(self.take(usize::try_from(n).ok()?)?)),
        }
    }
    /// i32-length bytes; -1 is null.
    pub(super) fn bytes32(&mut self) -> Option<Option<&'a [u8]>> {
        match i32::from_be_bytes(self.take(4)?.try_into().ok()?) {
            -1 => Some(None),
            n => Some(Some(self.take(usize::try_from(n).ok()?)?)),
        }
    }
    fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let c = self.take(1)?[0];
            v |= u64::from(c & 0x7f) << shift;
            if c & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    /// A (nullable) string: i16 length, or compact (uvarint length + 1).
    fn string(&mut self, compact: bool) -> Option<Option<String>> {
        let n = if compact {
            match self.uvarint()? {
                0 => return Some(None),
                n => (n - 1) as usize,
            }
        } else {
            match self.i16()? {
                -1 => return Some(None),
                n if n < 0 => return None,
                n => n as usize,
            }
        };
        Some(Some(String::from_utf8_lossy(self.take(n)?).into_owned()))
    }
    /// Skips a (nullable) string.
    fn skip_string(&mut self, compact: bool) -> Option<()> {
        let n = if compact {
            match self.uvarint()? {
                0 => return Some(()),
                n => (n - 1) as usize,
            }
        } else {
            match self.i16()? {
                -1 => return Some(()),
                n if n < 0 => return None,
                n => n as usize,
            }
        };
        self.take(n).map(|_| ())
    }
    /// Bytes (records): i32 length, or compact. Returns the bytes, `None` for null.
    fn bytes(&mut self, compact: bool) -> Option<Option<&'a [u8]>> {
        let n = if compact {
            match self.uvarint()? {
                0 => return Some(None),
                n => (n - 1) as usize,
            }
        } else {
            match self.i32()? {
                -1 => return Some(None),
                n if n < 0 => return None,
                n => n as usize,
            }
        };
        Some(Some(self.take(n)?))
    }
    /// An array length; `None` inside for a null array.
    fn array(&mut self, compact: bool) -> Option<Option<usize>> {
        if compact {
            Some(match self.uvarint()? {
                0 => None,
                n => Some((n - 1) as usize),
            })
        } else {
            Some(match self.i32()? {
                n if n < 0 => None,
                n => Some(n as usize),
            })
        }
    }
    fn tags(&mut self, flexible: bool) -> Option<()> {
        if !flexible {
            return Some(());
        }
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let n = self.uvarint()? as usize;
            self.take(n)?;
        }
        Some(())
    }
}

/// The correlation id of a response frame.
pub fn response_correlation(frame: &[u8]) -> Option<i32> {
    Some(i32::from_be_bytes(frame.get(..4)?.try_into().ok()?))
}

/// Caps for what a frame's body may add to an entry (from [`Limits`]).
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Topics, partitions and error codes kept per entry (each).
    pub list: usize,
    pub records: RecordCaps,
}

impl Caps {
    pub fn from_limits(l: &Limits) -> Self {
        Caps {
            list: l.kafka_max_list,
            records: RecordCaps {
                records: l.kafka_max_records,
                value_bytes: l.kafka_value_bytes,
                headers: l.kafka_max_headers,
                decompress_max: l.kafka_decompress_max_bytes,
                zstd_window: l.kafka_zstd_max_window_bytes,
            },
        }
    }
}

/// What reading a body dropped or could not read, for the statistics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drops {
    /// Topics, partitions or error codes not kept (`Caps::list`).
    pub lists_capped: u64,
    /// Records read but not kept (`RecordCaps::records`).
    pub records_not_kept: u64,
    /// Batches whose decompression stopped at `RecordCaps::decompress_max`.
    pub decompress_capped: u64,
    /// Batches that did not decompress.
    pub decompress_errors: u64,
}

/// Parses a request frame (without its length prefix) into an entry. `None` when the header
/// does not hold; a body cut short (a kept prefix) gives what came before the cut.
pub fn parse_request(frame: &[u8], caps: &Caps, drops: &mut Drops) -> Option<KafkaEntry> {
    let mut r = Rd { b: frame };
    let api_key = r.i16()?;
    let api_version = r.i16()?;
    let correlation_id = r.i32()?;
    if api_name(api_key).is_none() || !(0..=MAX_VERSION).contains(&api_version) {
        return None;
    }
    let client_id = r.string(false)?;
    let flex = flexible(api_key, api_version);
    let mut e = KafkaEntry {
        api_key: Some(api_key),
        api_version: Some(api_version),
        correlation_id,
        client_id: client_id.map(Into::into),
        ..KafkaEntry::default()
    };
    if r.tags(flex).is_some() {
        let mut d = Dec::new(&mut e, caps, flex, api_version, true);
        let _ = d.request(&mut r, api_key);
        d.finish(drops);
    }
    Some(e)
}

/// Reads a response frame (without its length prefix) to the request `e` holds: its error codes,
/// and the records of a Fetch response. A body cut short gives what came before the cut.
pub fn parse_response(frame: &[u8], e: &mut KafkaEntry, caps: &Caps, drops: &mut Drops) {
    let (Some(key), Some(v)) = (e.api_key, e.api_version) else {
        return;
    };
    let mut r = Rd { b: frame };
    if r.i32().is_none() {
        return;
    }
    // ApiVersions responses keep the classic header so that any client can read them.
    let flex = flexible(key, v);
    if r.tags(flex && key != 18).is_none() {
        return;
    }
    let mut d = Dec::new(e, caps, flex, v, false);
    let _ = d.response(&mut r, key);
    d.finish(drops);
}

/// A body being read into an entry.
struct Dec<'e> {
    e: &'e mut KafkaEntry,
    caps: &'e Caps,
    flex: bool,
    v: i16,
    /// Requests add the topics they name; responses only look them up.
    adds_topics: bool,
    rs: RecordStats,
    saw_records: bool,
    lists_capped: u64,
}

impl<'e> Dec<'e> {
    fn new(e: &'e mut KafkaEntry, caps: &'e Caps, flex: bool, v: i16, adds_topics: bool) -> Self {
        Dec {
            e,
            caps,
            flex,
            v,
            adds_topics,
            rs: RecordStats::default(),
            saw_records: false,
            lists_capped: 0,
        }
    }

    fn finish(mut self, drops: &mut Drops) {
        if self.saw_records {
            let e = &mut *self.e;
            let add = |a: &mut Option<u64>, n: u64| *a = Some(a.unwrap_or(0) + n);
            add(&mut e.record_count, self.rs.count);
            add(&mut e.record_bytes, self.rs.wire_bytes);
            add(&mut e.record_bytes_decompressed, self.rs.decompressed_bytes);
            e.compression |= self.rs.codecs;
            let room = self.caps.records.records.saturating_sub(e.records.len());
            let n = self.rs.records.len();
            e.records.extend(self.rs.records.drain(..n.min(room)));
            drops.records_not_kept += self.rs.not_kept + (n - n.min(room)) as u64;
        }
        drops.lists_capped += self.lists_capped;
        drops.decompress_capped += self.rs.capped;
        drops.decompress_errors += self.rs.errors;
    }

    /// The index of a topic name in the entry, adding it (requests) when there is room.
    fn topic(&mut self, name: Option<String>) -> Option<u16> {
        let name = name?;
        if let Some(i) = self.e.topics.iter().position(|t| **t == *name) {
            return u16::try_from(i).ok();
        }
        if !self.adds_topics {
            return None;
        }
        if self.e.topics.len() >= self.caps.list {
            self.lists_capped += 1;
            return None;
        }
        self.e.topics.push(name.into());
        u16::try_from(self.e.topics.len() - 1).ok()
    }

    fn partition(&mut self, topic: Option<u16>, partition: i32) {
        if !self.adds_topics {
            return;
        }
        let p = KafkaPartition { topic, partition };
        if self.e.partitions.contains(&p) {
            return;
        }
        if self.e.partitions.len() >= self.caps.list {
            self.lists_capped += 1;
            return;
        }
        self.e.partitions.push(p);
    }

    fn error(&mut self, code: i16) {
        if code == 0 || self.e.errors.contains(&code) {
            return;
        }
        if self.e.errors.len() >= self.caps.list {
            self.lists_capped += 1;
            return;
        }
        self.e.errors.push(code);
    }

    fn records(&mut self, b: Option<&[u8]>, topic: Option<u16>, partition: i32) {
        if let Some(b) = b {
            self.saw_records = true;
            read_record_set(b, Place { topic, partition }, &self.caps.records, &mut self.rs);
        }
    }

    /// A topic name (`name_upto` and below) or a topic id (above): the name's index.
    fn topic_ref(&mut self, r: &mut Rd<'_>, name_upto: i16) -> Option<Option<u16>> {
        if self.v <= name_upto {
            let name = r.string(self.flex)?;
            Some(self.topic(name))
        } else {
            r.take(16)?;
            Some(None)
        }
    }

    /// An array of `n` items read by `f`, then (flexible) tagged fields after each item.
    fn each(&mut self, r: &mut Rd<'_>, mut f: impl FnMut(&mut Self, &mut Rd<'_>) -> Option<()>) -> Option<()> {
        for _ in 0..r.array(self.flex)?.unwrap_or(0) {
            f(self, r)?;
            r.tags(self.flex)?;
        }
        Some(())
    }

    fn str(&self, r: &mut Rd<'_>) -> Option<()> {
        r.skip_string(self.flex)
    }

    fn i32s(&self, r: &mut Rd<'_>) -> Option<()> {
        let n = r.array(self.flex)?.unwrap_or(0);
        r.take(n.checked_mul(4)?)?;
        Some(())
    }

    fn request(&mut self, r: &mut Rd<'_>, key: i16) -> Option<()> {
        let (v, flex) = (self.v, self.flex);
        match key {
            0 => {
                if v >= 3 {
                    self.str(r)?;
                }
                r.i16()?;
                r.i32()?;
                self.each(r, |d, r| {
                    let t = d.topic_ref(r, 12)?;
                    d.each(r, |d, r| {
                        let p = r.i32()?;
                        d.partition(t, p);
                        let records = r.bytes(flex)?;
                        d.records(records, t, p);
                        Some(())
                    })
                })?;
            }
            1 => {
                if v <= 14 {
                    r.i32()?;
                }
                r.i32()?;
                r.i32()?;
                if v >= 3 {
                    r.i32()?;
                }
                if v >= 4 {
                    r.i8()?;
                }
                if v >= 7 {
                    r.i32()?;
                    r.i32()?;
                }
                self.each(r, |d, r| {
                    let t = d.topic_ref(r, 12)?;
                    d.each(r, |d, r| {
                        let p = r.i32()?;
                        d.partition(t, p);
                        r.take(if v >= 9 { 4 } else { 0 } + 8 + if v >= 12 { 4 } else { 0 })?;
                        r.take(if v >= 5 { 8 } else { 0 } + 4)?;
                        Some(())
                    })
                })?;
            }
            2 => {
                r.i32()?;
                if v >= 2 {
                    r.i8()?;
                }
                self.each(r, |d, r| {
                    let t = d.topic_ref(r, i16::MAX)?;
                    d.each(r, |d, r| {
                        let p = r.i32()?;
                        d.partition(t, p);
                        r.take(if v >= 4 { 4 } else { 0 } + 8 + if v == 0 { 4 } else { 0 })?;
                        Some(())
                    })
                })?;
            }
            3 => {
                self.each(r, |d, r| {
                    if v >= 10 {
                        r.take(16)?;
                    }
                    let name = r.string(flex)?;
                    d.topic(name);
                    Some(())
                })?;
            }
            8 => {
                self.str(r)?;
                if v >= 1 {
                    r.i32()?;
                    self.str(r)?;
                }
                if v >= 7 {
                    self.str(r)?;
                }
                if (2..=4).contains(&v) {
                    r.i64()?;
                }
                self.each(r, |d, r| {
                    let t = d.topic_ref(r, 9)?;
                    d.each(r, |d, r| {
                        let p = r.i32()?;
                        d.partition(t, p);
                        r.take(8 + if v == 1 { 8 } else { 0 } + if v >= 6 { 4 } else { 0 })?;
                        d.str(r)
                    })
                })?;
            }
            9 if v <= 7 => {
                self.str(r)?;
                self.offset_fetch_topics(r)?;
            }
            9 => {
                self.each(r, |d, r| {
                    d.str(r)?;
                    if v >= 9 {
                        d.str(r)?;
                        r.i32()?;
                    }
                    d.offset_fetch_topics(r)
                })?;
            }
            19 => {
                self.each(r, |d, r| {
                    let name = r.string(flex)?;
                    d.topic(name);
                    r.i32()?;
                    r.i16()?;
                    d.each(r, |d, r| {
                        r.i32()?;
                        d.i32s(r)
                    })?;
                    d.each(r, |d, r| {
                        d.str(r)?;
                        d.str(r)
                    })
                })?;
            }
            20 if v <= 5 => {
                for _ in 0..r.array(flex)?.unwrap_or(0) {
                    let name = r.string(flex)?;
                    self.topic(name);
                }
            }
            20 => {
                self.each(r, |d, r| {
                    let name = r.string(flex)?;
                    d.topic(name);
                    r.take(16).map(|_| ())
                })?;
            }
            21 => {
                self.each(r, |d, r| {
                    let name = r.string(flex)?;
                    let t = d.topic(name);
                    d.each(r, |d, r| {
                        let p = r.i32()?;
                        d.partition(t, p);
                        r.i64().map(|_| ())
                    })
                })?;
            }
            23 => {
                if v >= 3 {
                    r.i32()?;
                }
                self.each(r, |d, r| {
                    let name = r.string(flex)?;
                    let t = d.topic(name);
                    d.each(r, |d, r| {
                        let p = r.i32()?;
                        d.partition(t, p);
                        r.take(if v >= 2 { 8 } else { 4 }).map(|_| ())
                    })
                })?;
            }
            28 => {
                self.str(r)?;
                self.str(r)?;
                r.i64()?;
                r.i16()?;
                if v >= 3 {
                    r.i32()?;
                    self.str(r)?;
                    self.str(r)?;
                }
                self.each(r, |d, r| {
                    let name = r.string(flex)?;
                    let t = d.topic(name);
                    d.each(r, |d, r| {
                        let p = r.i32()?;
                        d.partition(t, p);
                        r.take(8 + if v >= 2 { 4 } else { 0 })?;
                        d.str(r)
                    })
                })?;
            }
            _ => {}
        }
        Some(())
    }

    /// OffsetFetch topics (nullable): a name (a topic id from v10) and partition indexes.
    fn offset_fetch_topics(&mut self, r: &mut Rd<'_>) -> Option<()> {
        self.each(r, |d, r| {
            let t = d.topic_ref(r, 9)?;
            for _ in 0..r.array(d.flex)?.unwrap_or(0) {
                let p = r.i32()?;
                d.partition(t, p);
            }
            Some(())
        })
    }

    fn response(&mut self, r: &mut Rd<'_>, key: i16) -> Option<()> {
        let (v, flex) = (self.v, self.flex);
        match key {
            0 => {
                self.each(r, |d, r| {
                    d.topic_ref(r, 12)?;
                    d.each(r, |d, r| {
                        r.i32()?;
                        d.error(r.i16()?);
                        r.take(8 + if v >= 2 { 8 } else { 0 } + if v >= 5 { 8 } else { 0 })?;
                        if v >= 8 {
                            d.each(r, |d, r| {
                                r.i32()?;
                                d.str(r)
                            })?;
                            d.str(r)?;
                        }
                        Some(())
                    })
                })?;
            }
            1 => {
                if v >= 1 {
                    r.i32()?;
                }
                if v >= 7 {
                    self.error(r.i16()?);
                    r.i32()?;
                }
                self.each(r, |d, r| {
                    let t = d.topic_ref(r, 12)?;
                    d.each(r, |d, r| {
                        let p = r.i32()?;
                        d.error(r.i16()?);
                        r.take(8 + if v >= 4 { 8 } else { 0 } + if v >= 5 { 8 } else { 0 })?;
                        if v >= 4 {
                            d.each(r, |_, r| r.take(16).map(|_| ()))?;
                        }
                        if v >= 11 {
                            r.i32()?;
                        }
                        let records = r.bytes(flex)?;
                        d.records(records, t, p);
                        Some(())
                    })
                })?;
            }
            2 => {
                if v >= 2 {
                    r.i32()?;
                }
                self.each(r, |d, r| {
                    d.str(r)?;
                    d.each(r, |d, r| {
                        r.i32()?;
                        d.error(r.i16()?);
                        if v == 0 {
                            let n = r.array(flex)?.unwrap_or(0);
                            r.take(n.checked_mul(8)?)?;
                        } else {
                            r.take(16 + if v >= 4 { 4 } else { 0 })?;
                        }
                        Some(())
                    })
                })?;
            }
            3 => {
                if v >= 3 {
                    r.i32()?;
                }
                self.each(r, |d, r| {
                    r.i32()?;
                    d.str(r)?;
                    r.i32()?;
                    if v >= 1 {
                        d.str(r)?;
                    }
                    Some(())
                })?;
                if v >= 2 {
                    self.str(r)?;
                }
                if v >= 1 {
                    r.i32()?;
                }
                self.each(r, |d, r| {
                    d.error(r.i16()?);
                    d.str(r)?;
                    if v >= 10 {
                        r.take(16)?;
                    }
                    if v >= 1 {
                        r.i8()?;
                    }
                    d.each(r, |d, r| {
                        d.error(r.i16()?);
                        r.take(8 + if v >= 7 { 4 } else { 0 })?;
                        d.i32s(r)?;
                        d.i32s(r)?;
                        if v >= 5 {
                            d.i32s(r)?;
                        }
                        Some(())
                    })?;
                    if v >= 8 {
                        r.i32()?;
                    }
                    Some(())
                })?;
                if (8..=10).contains(&v) {
                    r.i32()?;
                }
                if v >= 13 {
                    self.error(r.i16()?);
                }
            }
            8 => {
                if v >= 3 {
                    r.i32()?;
                }
                self.each(r, |d, r| {
                    d.topic_ref(r, 9)?;
                    d.each(r, |d, r| {
                        r.i32()?;
                        d.error(r.i16()?);
                        Some(())
                    })
                })?;
            }
            9 if v <= 7 => {
                if v >= 3 {
                    r.i32()?;
                }
                self.each(r, |d, r| {
                    d.str(r)?;
                    d.each(r, |d, r| {
                        r.take(12 + if v >= 5 { 4 } else { 0 })?;
                        d.str(r)?;
                        d.error(r.i16()?);
                        Some(())
                    })
                })?;
                if v >= 2 {
                    self.error(r.i16()?);
                }
            }
            9 => {
                r.i32()?;
                self.each(r, |d, r| {
                    d.str(r)?;
                    d.each(r, |d, r| {
                        d.topic_ref(r, 9)?;
                        d.each(r, |d, r| {
                            r.take(16)?;
                            d.str(r)?;
                            d.error(r.i16()?);
                            Some(())
                        })
                    })?;
                    d.error(r.i16()?);
                    Some(())
                })?;
            }
            // FindCoordinator: one coordinator until v3, then one per key.
            10 if v <= 3 => {
                if v >= 1 {
                    r.i32()?;
                }
                self.error(r.i16()?);
            }
            10 => {
                r.i32()?;
                self.each(r, |d, r| {
                    d.str(r)?;
                    r.i32()?;
                    d.str(r)?;
                    r.i32()?;
                    d.error(r.i16()?);
                    d.str(r)
                })?;
            }
            // The error code comes first, after a throttle time from the version named.
            11 | 12 | 13 | 14 | 16 | 17 | 18 | 22 | 25 | 26 | 36 => {
                let throttle_from = match key {
                    11 => 2,
                    17 | 18 | 36 => i16::MAX,
                    22 | 25 | 26 => 0,
                    _ => 1,
                };
                if v >= throttle_from {
                    r.i32()?;
                }
                self.error(r.i16()?);
            }
            15 => {
                if v >= 1 {
                    r.i32()?;
                }
                self.each(r, |d, r| {
                    d.error(r.i16()?);
                    if v >= 6 {
                        d.str(r)?;
                    }
                    for _ in 0..4 {
                        d.str(r)?;
                    }
                    d.each(r, |d, r| {
                        d.str(r)?;
                        if v >= 4 {
                            d.str(r)?;
                        }
                        d.str(r)?;
                        d.str(r)?;
                        r.bytes(flex)?;
                        r.bytes(flex).map(|_| ())
                    })?;
                    if v >= 3 {
                        r.i32()?;
                    }
                    Some(())
                })?;
            }
            19 => {
                if v >= 2 {
                    r.i32()?;
                }
                self.each(r, |d, r| {
                    d.str(r)?;
                    if v >= 7 {
                        r.take(16)?;
                    }
                    d.error(r.i16()?);
                    if v >= 1 {
                        d.str(r)?;
                    }
                    if v >= 5 {
                        r.i32()?;
                        r.i16()?;
                        d.each(r, |d, r| {
                            d.str(r)?;
                            d.str(r)?;
                            r.take(3)?;
                            Some(())
                        })?;
                    }
                    Some(())
                })?;
            }
            20 => {
                if v >= 1 {
                    r.i32()?;
                }
                self.each(r, |d, r| {
                    d.str(r)?;
                    if v >= 6 {
                        r.take(16)?;
                    }
                    d.error(r.i16()?);
                    if v >= 5 {
                        d.str(r)?;
                    }
                    Some(())
                })?;
            }
            // DeleteRecords, OffsetForLeaderEpoch, TxnOffsetCommit, OffsetDelete: per partition.
            21 | 23 | 28 | 47 => {
                if key == 47 {
                    self.error(r.i16()?);
                }
                if key != 23 || v >= 2 {
                    r.i32()?;
                }
                self.each(r, |d, r| {
                    d.str(r)?;
                    d.each(r, |d, r| {
                        if key == 23 {
                            d.error(r.i16()?);
                            r.take(4 + if v >= 1 { 4 } else { 0 } + 8)?;
                            return Some(());
                        }
                        r.i32()?;
                        if key == 21 {
                            r.i64()?;
                        }
                        d.error(r.i16()?);
                        Some(())
                    })
                })?;
            }
            // CreatePartitions and DeleteGroups: per topic or group.
            37 | 42 => {
                r.i32()?;
                self.each(r, |d, r| {
                    d.str(r)?;
                    d.error(r.i16()?);
                    if key == 37 {
                        d.str(r)?;
                    }
                    Some(())
                })?;
            }
            _ => {}
        }
        Some(())
    }
}
#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn caps() -> Caps {
        Caps::from_limits(&Limits::default())
    }

    fn req(frame: &[u8]) -> Option<KafkaEntry> {
        parse_request(frame, &caps(), &mut Drops::default())
    }

    fn names(e: &KafkaEntry) -> Vec<&str> {
        e.topics.iter().map(|t| &**t).collect()
    }

    /// Encodes a request frame (length prefix included) with a classic header.
    pub fn request(key: i16, version: i16, corr: i32, client: &str, body: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend(key.to_be_bytes());
        f.extend(version.to_be_bytes());
        f.extend(corr.to_be_bytes());
        f.extend((client.len() as i16).to_be_bytes());
        f.extend(client.as_bytes());
        if flexible(key, version) {
            f.push(0);
        }
        f.extend(body);
        let mut out = (f.len() as u32).to_be_bytes().to_vec();
        out.extend(f);
        out
    }

    pub fn string(s: &str) -> Vec<u8> {
        let mut v = (s.len() as i16).to_be_bytes().to_vec();
        v.extend(s.as_bytes());
        v
    }

    pub fn compact(s: &str) -> Vec<u8> {
        let mut v = vec![(s.len() + 1) as u8];
        v.extend(s.as_bytes());
        v
    }

    /// Metadata v1 asking for two topics.
    pub fn metadata_v1(corr: i32) -> Vec<u8> {
        let mut body = 2i32.to_be_bytes().to_vec();
        body.extend(string("orders"));
        body.extend(string("payments"));
        request(3, 1, corr, "shop", &body)
    }

    /// Produce v3 of one record batch holding 3 records to topic `orders`.
    pub fn produce_v3(corr: i32) -> Vec<u8> {
        let mut batch = vec![0u8; 61];
        batch[8..12].copy_from_slice(&49i32.to_be_bytes());
        batch[16] = 2;
        batch[57..61].copy_from_slice(&3u32.to_be_bytes());
        let mut body = (-1i16).to_be_bytes().to_vec();
        body.extend(1i16.to_be_bytes());
        body.extend(30_000i32.to_be_bytes());
        body.extend(1i32.to_be_bytes());
        body.extend(string("orders"));
        body.extend(1i32.to_be_bytes());
        body.extend(0i32.to_be_bytes());
        body.extend((batch.len() as i32).to_be_bytes());
        body.extend(&batch);
        request(0, 3, corr, "shop", &body)
    }

    /// OffsetCommit v8 (flexible) for topic `orders`.
    pub fn offset_commit_v8(corr: i32) -> Vec<u8> {
        let mut body = compact("group");
        body.extend(5i32.to_be_bytes());
        body.extend(compact("member"));
        body.push(0);
        body.push(2);
        body.extend(compact("orders"));
        body.push(2);
        body.extend(0i32.to_be_bytes());
        body.extend(42i64.to_be_bytes());
        body.extend((-1i32).to_be_bytes());
        body.push(1);
        body.push(0);
        body.push(0);
        body.push(0);
        request(8, 8, corr, "consumer-1", &body)
    }

    #[test]
    fn names_and_flexibility() {
        assert_eq!(api_name(18), Some("API_VERSIONS"));
        assert_eq!(api_name(2), Some("LIST_OFFSETS"));
        assert_eq!(api_name(999), None);
        assert!(flexible(0, 9) && !flexible(0, 8) && !flexible(17, 1));
    }

    #[test]
    fn requests_give_header_and_topics() {
        let m = req(&metadata_v1(7)[4..]).unwrap();
        assert_eq!((m.api_key, m.api_version, m.correlation_id), (Some(3), Some(1), 7));
        assert_eq!(m.client_id.as_deref(), Some("shop"));
        assert_eq!(names(&m), vec!["orders", "payments"]);
        let p = req(&produce_v3(8)[4..]).unwrap();
        assert_eq!(names(&p), vec!["orders"]);
        assert_eq!(p.record_count, Some(3));
        assert_eq!(p.partition_numbers(), vec![0]);
        let o = req(&offset_commit_v8(9)[4..]).unwrap();
        assert_eq!(o.client_id.as_deref(), Some("consumer-1"));
        assert_eq!(names(&o), vec!["orders"]);
        assert_eq!(
            o.partitions,
            vec![KafkaPartition {
                topic: Some(0),
                partition: 0
            }]
        );
    }

    #[test]
    fn every_prefix_is_safe_and_the_probe_never_changes_its_mind() {
        for frame in [metadata_v1(1), produce_v3(2), offset_commit_v8(3)] {
            assert_eq!(probe(&frame), Probe::Match);
            for n in 0..frame.len() {
                let p = probe(&frame[..n]);
                assert_ne!(p, Probe::NoMatch, "prefix {n}");
                if n >= 4 {
                    let _ = req(&frame[4..n]);
                }
            }
        }
    }

    fn small_caps() -> Caps {
        Caps {
            list: 3,
            records: RecordCaps {
                records: 2,
                value_bytes: 4,
                headers: 1,
                decompress_max: 256,
                zstd_window: 1 << 16,
            },
        }
    }

    fn within_caps(e: &KafkaEntry, c: &Caps) -> bool {
        let p = |p: &Option<crate::dissect::kafka::Payload>| p.as_ref().is_none_or(|p| p.bytes.len() <= 4);
        e.topics.len() <= c.list
            && e.partitions.len() <= c.list
            && e.errors.len() <= c.list
            && !e.errors.contains(&0)
            && e.records.len() <= c.records.records
            && e.records
                .iter()
                .all(|r| p(&r.key) && p(&r.value) && r.headers.len() <= 1)
    }

    proptest::proptest! {
        /// Any body after a real header, as a request and as the response to a request of every
        /// key and version: no panic, and what is kept stays within the caps.
        #[test]
        fn hostile_bodies_stay_within_the_caps(
            key in 0i16..93,
            version in 0i16..=MAX_VERSION,
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        ) {
            let c = small_caps();
            let frame = request(key, version, 1, "c", &body);
            let mut drops = Drops::default();
            if let Some(mut e) = parse_request(&frame[4..], &c, &mut drops) {
                proptest::prop_assert!(within_caps(&e, &c));
                let mut resp = 1i32.to_be_bytes().to_vec();
                resp.extend(&body);
                parse_response(&resp, &mut e, &c, &mut drops);
                proptest::prop_assert!(within_caps(&e, &c));
            }
        }

        /// Real frames with a few bytes changed.
        #[test]
        fn mutated_frames_stay_within_the_caps(
            which in 0usize..3,
            flips in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 1..6),
        ) {
            let c = small_caps();
            let mut frame = [metadata_v1(1), produce_v3(2), offset_commit_v8(3)][which].clone();
            for (at, b) in flips {
                let n = frame.len();
                frame[4 + at % (n - 4)] = b;
            }
            if let Some(e) = parse_request(&frame[4..], &c, &mut Drops::default()) {
                proptest::prop_assert!(within_caps(&e, &c));
            }
        }
    }

    #[test]
    fn responses_are_held_not_claimed_and_other_bytes_are_refused() {
        let mut resp = 8u32.to_be_bytes().to_vec();
        resp.extend(140i32.to_be_bytes());
        resp.extend([0, 0, 0, 0]);
        assert_eq!(probe_responses(&resp), Probe::NeedMore);
        let mut two = resp.clone();
        two.extend(&resp[..6]);
        assert_eq!(
            probe_responses(&two),
            Probe::NeedMore,
            "a whole response, then part of one"
        );
        assert_eq!(
            probe_responses(&resp[..10]),
            Probe::NoMatch,
            "the first response must be whole"
        );
        assert_eq!(probe_responses(b"\x00\x01binary preamble\r\n"), Probe::NoMatch);
        assert_eq!(probe(&resp), Probe::NoMatch);
        assert_eq!(probe(b"GET / HTTP/1.1\r\n\r\n"), Probe::NoMatch);
        assert_eq!(probe_responses(b"GET / HTTP/1.1\r\n\r\n"), Probe::NoMatch);
        assert_eq!(response_correlation(&resp[4..]), Some(140));
    }
}
