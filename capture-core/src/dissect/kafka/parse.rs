//! Kafka wire format: request and response headers, and the topic names of the requests that
//! carry them (Produce, Fetch, ListOffsets, Metadata, OffsetCommit, OffsetFetch), for classic and
//! flexible (compact, tagged-field) versions. Pure functions over one frame without its 4-byte
//! length; a frame cut short yields what its first bytes hold.

use crate::dissect::Probe;

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

/// A request header, and what the body told.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    /// Topic names, in order, without repeats.
    pub topics: Vec<String>,
    /// Records in the v2 record batches of a Produce request.
    pub record_count: Option<u64>,
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

/// A cursor over a frame.
struct Rd<'a> {
    b: &'a [u8],
}

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
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
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
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

/// Parses a request frame (without its length prefix). `None` when the header does not hold.
pub fn parse_request(frame: &[u8]) -> Option<Request> {
    let mut r = Rd { b: frame };
    let api_key = r.i16()?;
    let api_version = r.i16()?;
    let correlation_id = r.i32()?;
    if api_name(api_key).is_none() || !(0..=MAX_VERSION).contains(&api_version) {
        return None;
    }
    let client_id = r.string(false)?;
    let flex = flexible(api_key, api_version);
    let mut req = Request {
        api_key,
        api_version,
        correlation_id,
        client_id,
        ..Request::default()
    };
    if r.tags(flex).is_some() {
        // The body may be cut (a kept prefix): keep whatever topics came before the cut.
        let _ = body(&mut r, &mut req, flex);
    }
    Some(req)
}

fn add_topic(req: &mut Request, name: Option<String>) {
    if let Some(n) = name
        && !req.topics.contains(&n)
    {
        req.topics.push(n);
    }
}

/// Topics (and record counts) of the request bodies that name them.
fn body(r: &mut Rd<'_>, req: &mut Request, flex: bool) -> Option<()> {
    let v = req.api_version;
    match req.api_key {
        0 if v < 13 => {
            if v >= 3 {
                r.string(flex)?;
            }
            r.i16()?;
            r.i32()?;
            for _ in 0..r.array(flex)?.unwrap_or(0) {
                let name = r.string(flex)?;
                add_topic(req, name);
                for _ in 0..r.array(flex)?.unwrap_or(0) {
                    r.i32()?;
                    if let Some(records) = r.bytes(flex)? {
                        let n = record_count(records);
                        req.record_count = Some(req.record_count.unwrap_or(0) + n);
                    }
                    r.tags(flex)?;
                }
                r.tags(flex)?;
            }
        }
        1 if v < 13 => {
            r.i32()?;
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
            for _ in 0..r.array(flex)?.unwrap_or(0) {
                let name = r.string(flex)?;
                add_topic(req, name);
                for _ in 0..r.array(flex)?.unwrap_or(0) {
                    r.i32()?;
                    if v >= 9 {
                        r.i32()?;
                    }
                    r.i64()?;
                    if v >= 12 {
                        r.i32()?;
                    }
                    if v >= 5 {
                        r.i64()?;
                    }
                    r.i32()?;
                    r.tags(flex)?;
                }
                r.tags(flex)?;
            }
        }
        2 => {
            r.i32()?;
            if v >= 2 {
                r.i8()?;
            }
            for _ in 0..r.array(flex)?.unwrap_or(0) {
                let name = r.string(flex)?;
                add_topic(req, name);
                for _ in 0..r.array(flex)?.unwrap_or(0) {
                    r.i32()?;
                    if v >= 4 {
                        r.i32()?;
                    }
                    r.i64()?;
                    if v == 0 {
                        r.i32()?;
                    }
                    r.tags(flex)?;
                }
                r.tags(flex)?;
            }
        }
        3 => {
            for _ in 0..r.array(flex)?.unwrap_or(0) {
                if v >= 10 {
                    r.take(16)?;
                }
                let name = r.string(flex)?;
                add_topic(req, name);
                r.tags(flex)?;
            }
        }
        8 => {
            r.string(flex)?;
            if v >= 1 {
                r.i32()?;
                r.string(flex)?;
            }
            if v >= 7 {
                r.string(flex)?;
            }
            if (2..=4).contains(&v) {
                r.i64()?;
            }
            for _ in 0..r.array(flex)?.unwrap_or(0) {
                let name = r.string(flex)?;
                add_topic(req, name);
                for _ in 0..r.array(flex)?.unwrap_or(0) {
                    r.i32()?;
                    r.i64()?;
                    if v == 1 {
                        r.i64()?;
                    }
                    if v >= 6 {
                        r.i32()?;
                    }
                    r.string(flex)?;
                    r.tags(flex)?;
                }
                r.tags(flex)?;
            }
        }
        9 if v < 8 => {
            r.string(flex)?;
            for _ in 0..r.array(flex)?.unwrap_or(0) {
                let name = r.string(flex)?;
                add_topic(req, name);
                for _ in 0..r.array(flex)?.unwrap_or(0) {
                    r.i32()?;
                }
                r.tags(flex)?;
            }
        }
        _ => {}
    }
    Some(())
}

/// Records in a run of record batches: v2 batches count theirs; legacy message sets count one per
/// message.
fn record_count(mut b: &[u8]) -> u64 {
    let mut n = 0u64;
    while b.len() >= 17 {
        let batch_len = i32::from_be_bytes([b[8], b[9], b[10], b[11]]);
        if batch_len < 0 {
            break;
        }
        let magic = b[16];
        if magic == 2 {
            if let Some(c) = b.get(57..61) {
                n += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
            }
        } else {
            n += 1;
        }
        let next = 12 + batch_len as usize;
        if next > b.len() {
            break;
        }
        b = &b[next..];
    }
    n
}

/// The correlation id of a response frame.
pub fn response_correlation(frame: &[u8]) -> Option<i32> {
    Some(i32::from_be_bytes(frame.get(..4)?.try_into().ok()?))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

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
        let m = parse_request(&metadata_v1(7)[4..]).unwrap();
        assert_eq!((m.api_key, m.api_version, m.correlation_id), (3, 1, 7));
        assert_eq!(m.client_id.as_deref(), Some("shop"));
        assert_eq!(m.topics, vec!["orders", "payments"]);
        let p = parse_request(&produce_v3(8)[4..]).unwrap();
        assert_eq!(p.topics, vec!["orders"]);
        assert_eq!(p.record_count, Some(3));
        let o = parse_request(&offset_commit_v8(9)[4..]).unwrap();
        assert_eq!(o.client_id.as_deref(), Some("consumer-1"));
        assert_eq!(o.topics, vec!["orders"]);
    }

    #[test]
    fn every_prefix_is_safe_and_the_probe_never_changes_its_mind() {
        for frame in [metadata_v1(1), produce_v3(2), offset_commit_v8(3)] {
            assert_eq!(probe(&frame), Probe::Match);
            for n in 0..frame.len() {
                let p = probe(&frame[..n]);
                assert_ne!(p, Probe::NoMatch, "prefix {n}");
                if n >= 4 {
                    let _ = parse_request(&frame[4..n]);
                }
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
