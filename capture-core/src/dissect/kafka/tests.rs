//! The Kafka state machine end to end: synthetic TCP conversations go through the engine
//! (decode → flow table → reassembly → dissector → store) and the entries are checked.

use std::sync::Arc;

use super::parse::tests::{metadata_v1, offset_commit_v8, produce_v3, request};
use super::{KafkaEntry, kafka_flags};
use crate::engine::Shared;
use crate::entry::{Entry, Protocol};
use crate::fields::{self, Value};
use crate::limits::Limits;
use crate::synth::conversation::Conversation;
use crate::time::Timestamp;

pub(super) fn conv(server_port: u16, handshake: bool) -> Conversation {
    let mut c = Conversation::new(
        "10.0.0.1:40000".parse().unwrap(),
        format!("10.0.0.2:{server_port}").parse().unwrap(),
        Timestamp::from_secs_nanos(1_700_000_000, 0),
        1_000,
        7_000,
        90_000,
    );
    if handshake {
        c.handshake();
    }
    c
}

pub(super) fn run(c: Conversation, limits: Limits) -> (Vec<Arc<Entry>>, Shared) {
    crate::synth::testutil::replay_entries(c.packets(), limits)
}

fn k(e: &Entry) -> &KafkaEntry {
    assert_eq!(e.protocol, Protocol::Kafka);
    e.kafka().expect("a kafka entry")
}

fn response(corr: i32, body: &[u8]) -> Vec<u8> {
    let mut v = ((4 + body.len()) as u32).to_be_bytes().to_vec();
    v.extend(corr.to_be_bytes());
    v.extend(body);
    v
}

#[test]
fn requests_pair_with_responses_by_correlation_id_on_any_port() {
    let mut c = conv(36333, true);
    let mut batch = metadata_v1(7);
    batch.extend(produce_v3(8));
    c.client_send(&batch, 100);
    // Responses out of order: the broker answers the produce first.
    let mut answers = response(8, &[0; 12]);
    answers.extend(response(7, &[0; 20]));
    c.server_send(&answers, 2_000);
    c.close();
    let (es, shared) = run(c, Limits::default());
    assert_eq!(es.len(), 2, "{es:?}");
    let m = es.iter().find(|e| k(e).correlation_id == 7).unwrap();
    let p = es.iter().find(|e| k(e).correlation_id == 8).unwrap();
    assert_eq!(k(m).api_name(), Some("METADATA"));
    assert_eq!(k(m).topics, vec!["orders".into(), "payments".into()]);
    assert_eq!(k(p).api_key, Some(0));
    assert_eq!(k(p).record_count, Some(3));
    assert!(k(p).response_bytes.is_some() && k(p).flags == 0);
    assert!(p.elapsed_us.is_some());
    assert_eq!(p.src, "10.0.0.1:40000".parse().unwrap());
    assert_eq!(shared.stats.lock().dissect.connections.get("kafka"), Some(&1));
    assert_eq!(field(p, "kafka_api_key_name"), Value::Str("PRODUCE".into()));
    assert_eq!(
        field(p, "kafka_request_summary"),
        Value::Str("PRODUCE v3 orders".into())
    );
    assert_eq!(
        field(m, "kafka_topics"),
        Value::List(vec![Value::Str("orders".into()), Value::Str("payments".into())])
    );
    assert_eq!(field(p, "kafka_api_version"), Value::Int(3));
    assert_eq!(field(p, "kafka_correlation_id"), Value::Int(8));
    assert_eq!(field(p, "kafka_request"), Value::Bool(true));
    assert_eq!(
        field(p, "redis_command"),
        Value::Null,
        "fields of other protocols do not apply"
    );
}

fn field<'a>(e: &'a Entry, name: &str) -> Value<'a> {
    (fields::lookup(name).expect(name).get)(e)
}

/// tshark cannot decode a response whose request was not captured; it is still an entry, with
/// its correlation id and no api key.
#[test]
fn mid_connection_responses_before_any_request_are_entries() {
    let mut c = conv(9092, false);
    let mut answers = response(140, &[0; 30]);
    answers.extend(response(141, &[0; 10]));
    c.server_send(&answers, 100);
    c.client_send(&offset_commit_v8(142), 1_000);
    c.server_send(&response(142, &[0; 8]), 2_000);
    c.client_send(&request(12, 4, 143, "consumer-1", &[1, 0, 0, 0, 0, 0]), 3_000);
    c.close();
    let (es, _) = run(c, Limits::default());
    let rows: Vec<(Option<i16>, i32, bool)> = es
        .iter()
        .map(|e| (k(e).api_key, k(e).correlation_id, k(e).response_bytes.is_some()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (None, 140, true),
            (None, 141, true),
            (Some(8), 142, true),
            (Some(12), 143, false)
        ]
    );
    assert_eq!(k(&es[0]).flags, kafka_flags::NO_REQUEST);
    assert_eq!(k(&es[2]).topics, vec!["orders".into()]);
    assert_eq!(k(&es[3]).flags, kafka_flags::NO_RESPONSE);
    assert_eq!(field(&es[0], "kafka_api_key"), Value::Null);
}

#[test]
fn pending_cap_and_oversized_frames_are_counted() {
    let limits = Limits {
        kafka_max_pending: 2,
        dissector_buffer_bytes: 64,
        ..Limits::default()
    };
    let mut c = conv(9092, true);
    for corr in 1..=3 {
        c.client_send(&metadata_v1(corr), 100);
    }
    // A 4 KiB produce: read from its first 64 bytes, the topic still comes out.
    let mut big = produce_v3(4);
    let extra = vec![0u8; 4_096];
    big.extend(&extra);
    let len = (big.len() - 4) as u32;
    big[..4].copy_from_slice(&len.to_be_bytes());
    c.client_send(&big, 100);
    c.server_send(&response(4, &[0; 4]), 1_000);
    c.close();
    let (es, shared) = run(c, limits);
    let st = shared.stats.lock().dissect.clone();
    assert_eq!(st.kafka_pending_overflows, 2);
    assert_eq!(st.kafka_frames_truncated, 1);
    let p = es.iter().find(|e| k(e).correlation_id == 4).unwrap();
    assert_eq!(k(p).topics, vec!["orders".into()]);
    assert_ne!(k(p).flags & kafka_flags::TRUNCATED, 0);
    assert_eq!(es.len(), 4);
}

/// Produce v3 of `batch` to `orders` partition 2.
fn produce_with(corr: i32, batch: &[u8]) -> Vec<u8> {
    let mut body = (-1i16).to_be_bytes().to_vec();
    body.extend(1i16.to_be_bytes());
    body.extend(30_000i32.to_be_bytes());
    body.extend(1i32.to_be_bytes());
    body.extend(super::parse::tests::string("orders"));
    body.extend(1i32.to_be_bytes());
    body.extend(2i32.to_be_bytes());
    body.extend((batch.len() as i32).to_be_bytes());
    body.extend(batch);
    request(0, 3, corr, "shop", &body)
}

/// Fetch v4 of `orders` partitions 2 and 5.
fn fetch_v4(corr: i32) -> Vec<u8> {
    let mut body = Vec::new();
    for v in [-1i32, 500, 1, 1 << 20] {
        body.extend(v.to_be_bytes());
    }
    body.push(0);
    body.extend(1i32.to_be_bytes());
    body.extend(super::parse::tests::string("orders"));
    body.extend(2i32.to_be_bytes());
    for p in [2i32, 5] {
        body.extend(p.to_be_bytes());
        body.extend(0i64.to_be_bytes());
        body.extend((1i32 << 20).to_be_bytes());
    }
    request(1, 4, corr, "consumer", &body)
}

/// A Fetch v4 response body: partition 2 with `batch`, partition 5 with error `err`.
fn fetch_v4_response(batch: &[u8], err: i16) -> Vec<u8> {
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend(1i32.to_be_bytes());
    b.extend(super::parse::tests::string("orders"));
    b.extend(2i32.to_be_bytes());
    for (p, e, records) in [(2i32, 0i16, batch), (5, err, &[][..])] {
        b.extend(p.to_be_bytes());
        b.extend(e.to_be_bytes());
        b.extend(10i64.to_be_bytes());
        b.extend(10i64.to_be_bytes());
        b.extend(0i32.to_be_bytes());
        b.extend((records.len() as i32).to_be_bytes());
        b.extend(records);
    }
    b
}

fn gzip_batch(plain: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = plain[..61].to_vec();
    z[22] = super::compression::GZIP;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&plain[61..]).unwrap();
    z.extend(e.finish().unwrap());
    let len = (z.len() - 12) as i32;
    z[8..12].copy_from_slice(&len.to_be_bytes());
    z
}

/// A producer writes a gzip batch and gets a partition error; a consumer fetches it back. The
/// records, partitions and errors reach the entry, its fields and its summary; a batch past
/// `kafka_decompress_max_bytes` is counted as a drop.
#[test]
fn records_partitions_and_errors_through_the_engine() {
    let big = vec![b'v'; 3_000];
    let plain = super::records::tests::batch(&[
        (Some(b"order-1"), Some(b"{\"qty\":2}"), &[("trace", b"abc")]),
        (Some(b"order-2"), Some(&big), &[]),
    ]);
    let z = gzip_batch(&plain);
    let mut produce_resp = 1i32.to_be_bytes().to_vec();
    produce_resp.extend(super::parse::tests::string("orders"));
    produce_resp.extend(1i32.to_be_bytes());
    produce_resp.extend(2i32.to_be_bytes());
    produce_resp.extend(6i16.to_be_bytes());
    produce_resp.extend(0i64.to_be_bytes());
    produce_resp.extend((-1i64).to_be_bytes());
    produce_resp.extend(0i32.to_be_bytes());

    let mut c = conv(9092, true);
    c.client_send(&produce_with(1, &z), 100);
    c.server_send(&response(1, &produce_resp), 1_000);
    c.client_send(&fetch_v4(2), 100);
    c.server_send(&response(2, &fetch_v4_response(&z, 1)), 1_000);
    c.close();
    let limits = Limits {
        kafka_decompress_max_bytes: 1_000,
        ..Limits::default()
    };
    let (es, shared) = run(c.clone(), Limits::default());
    assert_eq!(es.len(), 2);
    let (p, f) = (&es[0], &es[1]);
    assert_eq!(k(p).partition_numbers(), vec![2]);
    assert_eq!(field(p, "kafka_partition"), Value::Int(2));
    assert_eq!(field(p, "kafka_error"), Value::Str("NOT_LEADER_OR_FOLLOWER".into()));
    assert_eq!(field(p, "kafka_record_count"), Value::Int(2));
    assert_eq!(field(p, "kafka_record_bytes"), Value::Int(z.len() as i64));
    assert_eq!(
        field(p, "kafka_record_bytes_decompressed"),
        Value::Int(plain.len() as i64)
    );
    assert_eq!(k(p).codecs().collect::<Vec<_>>(), vec!["gzip"]);
    assert_eq!(k(p).records[0].headers[0].0.as_ref(), "trace");
    assert_eq!(
        k(p).summary(),
        format!("PRODUCE v3 orders p2 #1 2 records {}B NOT_LEADER_OR_FOLLOWER", z.len())
    );
    assert_eq!(
        field(f, "kafka_partitions"),
        Value::List(vec![Value::Str("2".into()), Value::Str("5".into())])
    );
    assert_eq!(
        field(f, "kafka_errors"),
        Value::List(vec![Value::Str("OFFSET_OUT_OF_RANGE".into())])
    );
    assert_eq!(field(f, "kafka_record_count"), Value::Int(2));
    let r = &k(f).records[1];
    assert_eq!((r.partition, r.offset, r.topic), (2, 101, Some(0)));
    let v = r.value.as_ref().unwrap();
    assert_eq!((v.bytes.len(), v.len, v.truncated()), (256, 3_000, true));
    assert!(k(f).heap_bytes() > 2 * 256);
    let st = shared.stats.lock().dissect.clone();
    assert_eq!((st.kafka_decompress_capped, st.kafka_decompress_errors), (0, 0));

    let (es, shared) = run(c, limits);
    let st = shared.stats.lock().dissect.clone();
    assert_eq!(st.kafka_decompress_capped, 2, "the produce batch and the fetched one");
    assert_eq!(
        field(&es[1], "kafka_record_count"),
        Value::Int(2),
        "counted from the batch header"
    );
    assert_eq!(k(&es[1]).records.len(), 1, "the records within the first 1000 bytes");
}
