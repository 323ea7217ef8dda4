//! Record batches (magic 2) and legacy message sets (magic 0 and 1), as Produce requests carry
//! them and Fetch responses return them. Counts and sizes are taken from every batch; the first
//! records are kept with their key, value and headers cut at the caps. A compressed batch is
//! decompressed into at most `decompress_max` bytes; past that its records are not read further.

use super::compression::{self, DecompressError};
use super::parse::Rd;

/// Caps for what is kept of records (from [`crate::limits::Limits`]).
#[derive(Debug, Clone, Copy)]
pub struct RecordCaps {
    /// Records kept per entry.
    pub records: usize,
    /// Bytes kept of each key, value and header value.
    pub value_bytes: usize,
    /// Headers kept per record.
    pub headers: usize,
    /// Decompressed bytes per batch.
    pub decompress_max: usize,
    /// zstd window per batch.
    pub zstd_window: usize,
}

/// A key, value or header value: its first bytes and its length on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub bytes: Box<[u8]>,
    pub len: u64,
}

impl Payload {
    fn new(b: &[u8], cap: usize) -> Self {
        Payload {
            bytes: b[..b.len().min(cap)].into(),
            len: b.len() as u64,
        }
    }

    pub fn truncated(&self) -> bool {
        (self.bytes.len() as u64) < self.len
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaRecord {
    /// Index into the entry's topics; `None` when the topic has no name (topic ids).
    pub topic: Option<u16>,
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the epoch; -1 when the batch has none.
    pub timestamp: i64,
    pub key: Option<Payload>,
    pub value: Option<Payload>,
    pub headers: Vec<(Box<str>, Option<Payload>)>,
}

impl KafkaRecord {
    pub fn heap_bytes(&self) -> usize {
        let p = |p: &Option<Payload>| p.as_ref().map_or(0, |p| p.bytes.len());
        p(&self.key)
            + p(&self.value)
            + self.headers.capacity() * std::mem::size_of::<(Box<str>, Option<Payload>)>()
            + self.headers.iter().map(|(k, v)| k.len() + p(v)).sum::<usize>()
    }
}

/// What the record batches of one message told, summed over its partitions.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecordStats {
    pub count: u64,
    /// Bytes of the record sets on the wire.
    pub wire_bytes: u64,
    /// Bytes of the records once decompressed (the wire bytes of uncompressed batches).
    pub decompressed_bytes: u64,
    /// Bit `1 << codec` for each codec seen.
    pub codecs: u8,
    pub records: Vec<KafkaRecord>,
    /// Records read but not kept (`RecordCaps::records`).
    pub not_kept: u64,
    /// Batches whose decompression reached `decompress_max`.
    pub capped: u64,
    /// Batches that did not decompress, or an unknown codec.
    pub errors: u64,
}

/// Where a record set belongs.
#[derive(Debug, Clone, Copy)]
pub struct Place {
    pub topic: Option<u16>,
    pub partition: i32,
}

/// Reads a run of batches (or legacy messages) of one partition.
pub fn read_record_set(b: &[u8], place: Place, caps: &RecordCaps, st: &mut RecordStats) {
    st.wire_bytes += b.len() as u64;
    let mut rest = b;
    while rest.len() >= 17 {
        let base_offset = i64::from_be_bytes(rest[..8].try_into().unwrap_or_default());
        let len = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        if len < 0 {
            break;
        }
        let end = (12 + len as usize).min(rest.len());
        let whole = end == 12 + len as usize;
        let unit = &rest[..end];
        match rest[16] {
            2 => batch_v2(unit, base_offset, place, caps, st),
            m @ (0 | 1) => {
                if whole {
                    legacy(&unit[12..], m, base_offset, place, caps, st, true);
                }
            }
            _ => break,
        }
        rest = &rest[end..];
    }
}

/// A batch of magic 2: a 61-byte header, then the records (compressed as a whole when the
/// attributes name a codec).
fn batch_v2(b: &[u8], base_offset: i64, place: Place, caps: &RecordCaps, st: &mut RecordStats) {
    let Some(h) = b.get(..61) else { return };
    let attributes = i16::from_be_bytes([h[21], h[22]]);
    let base_ts = i64::from_be_bytes(h[27..35].try_into().unwrap_or_default());
    let declared = i32::from_be_bytes([h[57], h[58], h[59], h[60]]);
    st.count += u64::try_from(declared).unwrap_or(0);
    let codec = (attributes & 7) as u8;
    st.codecs |= 1 << codec;
    let body = &b[61..];
    let decompressed;
    let records = if codec == 0 {
        body
    } else {
        match compression::decompress(codec, body, caps.decompress_max, caps.zstd_window) {
            Ok(d) => {
                if d.capped {
                    st.capped += 1;
                }
                decompressed = d.bytes;
                &decompressed[..]
            }
            Err(DecompressError::UnknownCodec(_) | DecompressError::Corrupt(_)) => {
                st.errors += 1;
                return;
            }
        }
    };
    st.decompressed_bytes += (61 + records.len()) as u64;
    let mut r = Rd { b: records };
    for _ in 0..declared.max(0) {
        let Some(rec) = record_v2(&mut r, base_offset, base_ts, place, caps) else {
            break;
        };
        keep(st, rec, caps);
    }
}

fn keep(st: &mut RecordStats, rec: KafkaRecord, caps: &RecordCaps) {
    if st.records.len() < caps.records {
        st.records.push(rec);
    } else {
        st.not_kept += 1;
    }
}

/// One record of a v2 batch: varint length, attributes, timestamp and offset deltas, key,
/// value, headers.
fn record_v2(r: &mut Rd<'_>, base_offset: i64, base_ts: i64, place: Place, caps: &RecordCaps) -> Option<KafkaRecord> {
    let len = usize::try_from(r.varint()?).ok()?;
    let mut b = Rd { b: r.take(len)? };
    b.take(1)?;
    let ts_delta = b.varint()?;
    let offset_delta = b.varint()?;
    let key = b.var_bytes()?.map(|k| Payload::new(k, caps.value_bytes));
    let value = b.var_bytes()?.map(|v| Payload::new(v, caps.value_bytes));
    let n = b.varint()?;
    let mut headers = Vec::new();
    for _ in 0..n.max(0) {
        let Some(k) = b.var_bytes() else { break };
        let Some(v) = b.var_bytes() else { break };
        if headers.len() < caps.headers {
            let k = k.unwrap_or_default();
            let k = String::from_utf8_lossy(&k[..k.len().min(caps.value_bytes)]);
            headers.push((k.into(), v.map(|v| Payload::new(v, caps.value_bytes))));
        }
    }
    Some(KafkaRecord {
        topic: place.topic,
        partition: place.partition,
        offset: base_offset.wrapping_add(offset_delta),
        timestamp: base_ts.wrapping_add(ts_delta),
        key,
        value,
        headers,
    })
}

/// A legacy message (without its offset and size): crc, magic, attributes, timestamp (magic 1),
/// key and value. A compressed message's value is a message set of its own, read once (no deeper).
fn legacy(b: &[u8], magic: u8, offset: i64, place: Place, caps: &RecordCaps, st: &mut RecordStats, outer: bool) {
    let mut r = Rd { b };
    let parsed = (|| {
        r.take(5)?;
        let attributes = r.take(1)?[0];
        let ts = if magic == 1 { r.i64()? } else { -1 };
        let key = r.bytes32()?;
        let value = r.bytes32()?;
        Some((attributes, ts, key, value))
    })();
    let Some((attributes, ts, key, value)) = parsed else {
        return;
    };
    let codec = attributes & 7;
    if codec == 0 || !outer {
        st.count += 1;
        if outer {
            st.decompressed_bytes += 12 + b.len() as u64;
        }
        st.codecs |= 1;
        let rec = KafkaRecord {
            topic: place.topic,
            partition: place.partition,
            offset,
            timestamp: ts,
            key: key.map(|k| Payload::new(k, caps.value_bytes)),
            value: value.map(|v| Payload::new(v, caps.value_bytes)),
            headers: Vec::new(),
        };
        keep(st, rec, caps);
        return;
    }
    st.codecs |= 1 << codec;
    let inner = match compression::decompress(codec, value.unwrap_or_default(), caps.decompress_max, caps.zstd_window) {
        Ok(d) => {
            if d.capped {
                st.capped += 1;
            }
            d.bytes
        }
        Err(_) => {
            st.errors += 1;
            return;
        }
    };
    st.decompressed_bytes += inner.len() as u64;
    // Magic 1 wrappers carry the offset of their last inner message; inner offsets are relative.
    let mut units = Vec::new();
    let mut rest = &inner[..];
    while rest.len() >= 12 {
        let off = i64::from_be_bytes(rest[..8].try_into().unwrap_or_default());
        let len = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        let Some(unit) = usize::try_from(len).ok().and_then(|l| rest.get(12..12 + l)) else {
            break;
        };
        units.push((off, unit));
        rest = &rest[12 + unit.len()..];
    }
    let last = units.last().map_or(0, |u| u.0);
    for (off, unit) in units {
        let abs = if magic == 1 {
            offset.wrapping_sub(last).wrapping_add(off)
        } else {
            off
        };
        let inner_magic = unit.get(4).copied().unwrap_or(magic);
        legacy(unit, inner_magic.min(1), abs, place, caps, st, false);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const CAPS: RecordCaps = RecordCaps {
        records: 4,
        value_bytes: 8,
        headers: 2,
        decompress_max: 1 << 20,
        zstd_window: 8 << 20,
    };

    fn zigzag(v: i64, out: &mut Vec<u8>) {
        let mut u = ((v << 1) ^ (v >> 63)) as u64;
        while u >= 0x80 {
            out.push((u as u8) | 0x80);
            u >>= 7;
        }
        out.push(u as u8);
    }

    fn var_bytes(b: Option<&[u8]>, out: &mut Vec<u8>) {
        match b {
            None => zigzag(-1, out),
            Some(b) => {
                zigzag(b.len() as i64, out);
                out.extend(b);
            }
        }
    }

    /// Key, value and headers of a record.
    pub type Rec<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, &'a [(&'a str, &'a [u8])]);

    /// An uncompressed v2 batch of records at base offset 100.
    pub fn batch(records: &[Rec<'_>]) -> Vec<u8> {
        let mut body = Vec::new();
        for (i, (k, v, hs)) in records.iter().enumerate() {
            let mut r = vec![0u8];
            zigzag(i as i64 * 10, &mut r);
            zigzag(i as i64, &mut r);
            var_bytes(*k, &mut r);
            var_bytes(*v, &mut r);
            zigzag(hs.len() as i64, &mut r);
            for (hk, hv) in *hs {
                var_bytes(Some(hk.as_bytes()), &mut r);
                var_bytes(Some(hv), &mut r);
            }
            zigzag(r.len() as i64, &mut body);
            body.extend(r);
        }
        let mut b = vec![0u8; 61];
        b[..8].copy_from_slice(&100i64.to_be_bytes());
        b[8..12].copy_from_slice(&((49 + body.len()) as i32).to_be_bytes());
        b[16] = 2;
        b[27..35].copy_from_slice(&1_700_000_000_000i64.to_be_bytes());
        b[57..61].copy_from_slice(&(records.len() as i32).to_be_bytes());
        b.extend(body);
        b
    }

    #[test]
    fn v2_records_with_keys_values_headers_and_caps() {
        let b = batch(&[
            (
                Some(b"k1"),
                Some(b"a long value here"),
                &[("h", b"x"), ("i", b"y"), ("j", b"z")],
            ),
            (None, Some(b"v2"), &[]),
        ]);
        let mut st = RecordStats::default();
        let place = Place {
            topic: Some(0),
            partition: 3,
        };
        read_record_set(&b, place, &CAPS, &mut st);
        assert_eq!(
            (st.count, st.wire_bytes, st.decompressed_bytes),
            (2, b.len() as u64, b.len() as u64)
        );
        let r = &st.records[0];
        assert_eq!((r.partition, r.offset, r.timestamp), (3, 100, 1_700_000_000_000));
        assert_eq!(r.key.as_ref().unwrap().bytes.as_ref(), b"k1");
        let v = r.value.as_ref().unwrap();
        assert_eq!((v.bytes.as_ref(), v.len, v.truncated()), (&b"a long v"[..], 17, true));
        assert_eq!(r.headers.len(), 2);
        assert_eq!(st.records[1].key, None);
        assert_eq!(
            (st.records[1].offset, st.records[1].timestamp),
            (101, 1_700_000_000_010)
        );
        for n in 0..b.len() {
            let mut st = RecordStats::default();
            read_record_set(&b[..n], place, &CAPS, &mut st);
            assert!(st.records.len() <= 2);
        }
    }

    /// A legacy message (offset, size, crc, magic, attributes, timestamp for magic 1, key, value).
    fn legacy_message(offset: i64, magic: u8, attributes: u8, value: &[u8]) -> Vec<u8> {
        let mut m = vec![0, 0, 0, 0, magic, attributes];
        if magic == 1 {
            m.extend(5i64.to_be_bytes());
        }
        m.extend((-1i32).to_be_bytes());
        m.extend((value.len() as i32).to_be_bytes());
        m.extend(value);
        let mut out = offset.to_be_bytes().to_vec();
        out.extend((m.len() as i32).to_be_bytes());
        out.extend(m);
        out
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn compressed_legacy_message_sets_give_their_inner_messages() {
        // Magic 1: inner offsets are relative, the wrapper carries the last one's absolute offset.
        let mut inner = Vec::new();
        for (i, v) in [b"one", b"two", b"six"].iter().enumerate() {
            inner.extend(legacy_message(i as i64, 1, 0, *v));
        }
        let set = legacy_message(52, 1, compression::GZIP, &gzip(&inner));
        let mut st = RecordStats::default();
        let place = Place {
            topic: Some(0),
            partition: 1,
        };
        read_record_set(&set, place, &CAPS, &mut st);
        assert_eq!(st.count, 3);
        assert_eq!(st.codecs, 1 << compression::GZIP | 1);
        let offsets: Vec<i64> = st.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![50, 51, 52]);
        assert_eq!(st.records[2].value.as_ref().unwrap().bytes.as_ref(), b"six");
        assert_eq!(st.decompressed_bytes, inner.len() as u64);
        // Magic 0: inner offsets are absolute.
        let mut inner0 = Vec::new();
        for (i, v) in [b"a", b"b"].iter().enumerate() {
            inner0.extend(legacy_message(70 + i as i64, 0, 0, *v));
        }
        let mut st = RecordStats::default();
        read_record_set(
            &legacy_message(71, 0, compression::GZIP, &gzip(&inner0)),
            place,
            &CAPS,
            &mut st,
        );
        assert_eq!(st.records.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![70, 71]);
        assert_eq!(st.records[0].timestamp, -1);
    }

    #[test]
    fn decompression_past_the_cap_stops_the_batch_and_is_counted() {
        let big = vec![b'x'; 4_000];
        let plain = batch(&[(Some(b"k"), Some(&big), &[]), (Some(b"k2"), Some(b"v2"), &[])]);
        let mut z = plain[..61].to_vec();
        z[22] = compression::GZIP;
        z.extend(gzip(&plain[61..]));
        let len = (z.len() - 12) as i32;
        z[8..12].copy_from_slice(&len.to_be_bytes());
        let place = Place {
            topic: None,
            partition: 0,
        };
        let mut st = RecordStats::default();
        read_record_set(&z, place, &CAPS, &mut st);
        assert_eq!((st.count, st.records.len(), st.capped), (2, 2, 0));
        let small = RecordCaps {
            decompress_max: 1_000,
            ..CAPS
        };
        let mut st = RecordStats::default();
        read_record_set(&z, place, &small, &mut st);
        assert_eq!((st.count, st.records.len(), st.capped), (2, 0, 1), "counted, not read");
        assert_eq!(st.decompressed_bytes, 61 + 1_000);
        // A codec number Kafka does not define, and gzip that is not gzip.
        let mut bad = z.clone();
        bad[22] = 6;
        let mut st = RecordStats::default();
        read_record_set(&bad, place, &CAPS, &mut st);
        bad[22] = compression::GZIP;
        bad[61] ^= 0xff;
        read_record_set(&bad, place, &CAPS, &mut st);
        assert_eq!(st.errors, 2);
        let few = RecordCaps { records: 1, ..CAPS };
        let mut st = RecordStats::default();
        read_record_set(&z, place, &few, &mut st);
        assert_eq!((st.records.len(), st.not_kept), (1, 1));
    }

    #[test]
    fn legacy_messages_count_one_each() {
        let mut set = Vec::new();
        for (i, v) in [b"one", b"two"].iter().enumerate() {
            let mut m = vec![0, 0, 0, 0, 1, 0];
            m.extend(5i64.to_be_bytes());
            m.extend((-1i32).to_be_bytes());
            m.extend((v.len() as i32).to_be_bytes());
            m.extend(*v);
            set.extend((7 + i as i64).to_be_bytes());
            set.extend((m.len() as i32).to_be_bytes());
            set.extend(m);
        }
        let mut st = RecordStats::default();
        let place = Place {
            topic: None,
            partition: 0,
        };
        read_record_set(&set, place, &CAPS, &mut st);
        assert_eq!(st.count, 2);
        assert_eq!(st.records[1].offset, 8);
        assert_eq!(st.records[1].value.as_ref().unwrap().bytes.as_ref(), b"two");
        assert_eq!(st.records[0].timestamp, 5);
    }
}
