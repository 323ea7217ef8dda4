//! Wire messages of the non-HTTP protocols in the demo: Redis RESP2 commands and replies, DNS
//! queries and responses (RFC 1035), for UDP or for TCP with its length prefix, AMQP 0-9-1
//! frames, and Kafka requests and responses (classic, non-flexible versions) with v2 record
//! batches.

/// A RESP2 command: an array of bulk strings.
pub fn resp_command(args: &[&str]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    v
}

/// A RESP2 simple string reply (`+OK`).
pub fn resp_simple(s: &str) -> Vec<u8> {
    format!("+{s}\r\n").into_bytes()
}

/// A RESP2 bulk string reply.
pub fn resp_bulk(s: &str) -> Vec<u8> {
    format!("${}\r\n{s}\r\n", s.len()).into_bytes()
}

/// The RESP2 null bulk string (a cache miss).
pub fn resp_null() -> Vec<u8> {
    b"$-1\r\n".to_vec()
}

/// A RESP2 error reply.
pub fn resp_error(s: &str) -> Vec<u8> {
    format!("-{s}\r\n").into_bytes()
}

/// DNS record type A.
pub const DNS_A: u16 = 1;
/// DNS RCODE NXDOMAIN.
pub const DNS_NXDOMAIN: u8 = 3;

fn dns_name(out: &mut Vec<u8>, name: &str) {
    for label in name.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

fn dns_header(out: &mut Vec<u8>, id: u16, flags: u16, answers: u16) {
    for v in [id, flags, 1, answers, 0, 0] {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// A recursive query for one question of class IN.
pub fn dns_query(id: u16, qname: &str, qtype: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(qname.len() + 18);
    dns_header(&mut m, id, 0x0100, 0);
    dns_name(&mut m, qname);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m
}

/// The authoritative answer to [`dns_query`]: `rcode`, and one A record per address (the
/// owner name compressed to the question's).
pub fn dns_response(id: u16, qname: &str, qtype: u16, rcode: u8, ttl: u32, addrs: &[[u8; 4]]) -> Vec<u8> {
    let mut m = Vec::with_capacity(qname.len() + 18 + addrs.len() * 16);
    dns_header(&mut m, id, 0x8580 | u16::from(rcode & 0xf), addrs.len() as u16);
    dns_name(&mut m, qname);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    for a in addrs {
        m.extend_from_slice(&0xc00cu16.to_be_bytes());
        m.extend_from_slice(&DNS_A.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(&ttl.to_be_bytes());
        m.extend_from_slice(&4u16.to_be_bytes());
        m.extend_from_slice(a);
    }
    m
}

/// A DNS message framed for TCP: its two-byte length first.
pub fn dns_over_tcp(message: &[u8]) -> Vec<u8> {
    let mut v = (message.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(message);
    v
}

/// The AMQP 0-9-1 protocol header a client opens with.
pub const AMQP_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";
const AMQP_METHOD: u8 = 1;
const AMQP_CONTENT_HEADER: u8 = 2;
const AMQP_BODY: u8 = 3;
const AMQP_FRAME_END: u8 = 0xce;

fn amqp_frame(out: &mut Vec<u8>, kind: u8, channel: u16, payload: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.push(AMQP_FRAME_END);
}

/// Appends a short string (one length octet).
pub fn amqp_short(out: &mut Vec<u8>, s: &str) {
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// Appends a method frame of `class`.`method` with already encoded arguments.
pub fn amqp_method(out: &mut Vec<u8>, channel: u16, class: u16, method: u16, args: &[u8]) {
    let mut p = Vec::with_capacity(4 + args.len());
    p.extend_from_slice(&class.to_be_bytes());
    p.extend_from_slice(&method.to_be_bytes());
    p.extend_from_slice(args);
    amqp_frame(out, AMQP_METHOD, channel, &p);
}

/// Appends the content header (class `basic`, no properties but the content type) and one
/// body frame.
pub fn amqp_content(out: &mut Vec<u8>, channel: u16, content_type: &str, body: &[u8]) {
    let mut h = 60u16.to_be_bytes().to_vec();
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&(body.len() as u64).to_be_bytes());
    // Property flags: content-type only.
    h.extend_from_slice(&0x8000u16.to_be_bytes());
    amqp_short(&mut h, content_type);
    amqp_frame(out, AMQP_CONTENT_HEADER, channel, &h);
    amqp_frame(out, AMQP_BODY, channel, body);
}

/// `Basic.Publish` (mandatory) with its content.
pub fn amqp_publish(out: &mut Vec<u8>, channel: u16, exchange: &str, routing_key: &str, body: &[u8]) {
    let mut a = vec![0, 0];
    amqp_short(&mut a, exchange);
    amqp_short(&mut a, routing_key);
    a.push(1);
    amqp_method(out, channel, 60, 40, &a);
    amqp_content(out, channel, "application/json", body);
}

/// `Basic.Return` of an unroutable mandatory publish, with its content.
pub fn amqp_return(out: &mut Vec<u8>, channel: u16, code: u16, text: &str, exchange: &str, key: &str, body: &[u8]) {
    let mut a = code.to_be_bytes().to_vec();
    amqp_short(&mut a, text);
    amqp_short(&mut a, exchange);
    amqp_short(&mut a, key);
    amqp_method(out, channel, 60, 50, &a);
    amqp_content(out, channel, "application/json", body);
}

/// `Basic.Deliver` with its content.
pub fn amqp_deliver(out: &mut Vec<u8>, channel: u16, tag: &str, delivery: u64, exchange: &str, key: &str, body: &[u8]) {
    let mut a = Vec::new();
    amqp_short(&mut a, tag);
    a.extend_from_slice(&delivery.to_be_bytes());
    a.push(0);
    amqp_short(&mut a, exchange);
    amqp_short(&mut a, key);
    amqp_method(out, channel, 60, 60, &a);
    amqp_content(out, channel, "application/json", body);
}

/// `Basic.Ack` of one delivery.
pub fn amqp_ack(out: &mut Vec<u8>, channel: u16, delivery: u64) {
    let mut a = delivery.to_be_bytes().to_vec();
    a.push(0);
    amqp_method(out, channel, 60, 80, &a);
}

/// `Basic.Consume` of `queue` and its `Consume-Ok` (consumer tag `tag`).
pub fn amqp_consume(channel: u16, queue: &str, tag: &str) -> (Vec<u8>, Vec<u8>) {
    let mut a = vec![0, 0];
    amqp_short(&mut a, queue);
    amqp_short(&mut a, tag);
    a.extend_from_slice(&[0, 0, 0, 0, 0]);
    let mut req = Vec::new();
    amqp_method(&mut req, channel, 60, 20, &a);
    let mut ok_args = Vec::new();
    amqp_short(&mut ok_args, tag);
    let mut ok = Vec::new();
    amqp_method(&mut ok, channel, 60, 21, &ok_args);
    (req, ok)
}

/// The opening of a connection as (sender is client, bytes) writes: the protocol header,
/// Start/Start-Ok, Tune/Tune-Ok, Open/Open-Ok (vhost `/`) and Channel.Open/Open-Ok on channel 1.
pub fn amqp_open(product: &str) -> Vec<(bool, Vec<u8>)> {
    let mut writes = vec![(true, AMQP_HEADER.to_vec())];
    let mut start = vec![0, 9];
    // Empty server properties table, then mechanisms and locales as long strings.
    start.extend_from_slice(&0u32.to_be_bytes());
    for s in ["PLAIN AMQPLAIN", "en_US"] {
        start.extend_from_slice(&(s.len() as u32).to_be_bytes());
        start.extend_from_slice(s.as_bytes());
    }
    let mut m = Vec::new();
    amqp_method(&mut m, 0, 10, 10, &start);
    writes.push((false, m));
    let mut props = Vec::new();
    amqp_short(&mut props, "product");
    props.push(b'S');
    props.extend_from_slice(&(product.len() as u32).to_be_bytes());
    props.extend_from_slice(product.as_bytes());
    let mut start_ok = (props.len() as u32).to_be_bytes().to_vec();
    start_ok.extend_from_slice(&props);
    amqp_short(&mut start_ok, "PLAIN");
    let response = b"\0guest\0<redacted>";
    start_ok.extend_from_slice(&(response.len() as u32).to_be_bytes());
    start_ok.extend_from_slice(response);
    amqp_short(&mut start_ok, "en_US");
    let mut m = Vec::new();
    amqp_method(&mut m, 0, 10, 11, &start_ok);
    writes.push((true, m));
    let tune = [0, 0x07, 0, 0, 0x20, 0, 0, 60];
    let mut m = Vec::new();
    amqp_method(&mut m, 0, 10, 30, &tune);
    writes.push((false, m));
    let mut m = Vec::new();
    amqp_method(&mut m, 0, 10, 31, &tune);
    amqp_method(&mut m, 0, 10, 40, &[1, b'/', 0, 0]);
    writes.push((true, m));
    let mut m = Vec::new();
    amqp_method(&mut m, 0, 10, 41, &[0]);
    writes.push((false, m));
    let mut m = Vec::new();
    amqp_method(&mut m, 1, 20, 10, &[0]);
    writes.push((true, m));
    let mut m = Vec::new();
    amqp_method(&mut m, 1, 20, 11, &[0, 0, 0, 0]);
    writes.push((false, m));
    writes
}

/// Kafka API keys used by the demo.
pub const KAFKA_PRODUCE: i16 = 0;
pub const KAFKA_FETCH: i16 = 1;
pub const KAFKA_METADATA: i16 = 3;
pub const KAFKA_API_VERSIONS: i16 = 18;

/// Appends a Kafka (non-compact) string.
pub fn kafka_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A request frame, length prefix included, with the classic (v1) request header.
pub fn kafka_request(api_key: i16, version: i16, correlation_id: i32, client_id: &str, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + client_id.len() + body.len());
    f.extend_from_slice(&api_key.to_be_bytes());
    f.extend_from_slice(&version.to_be_bytes());
    f.extend_from_slice(&correlation_id.to_be_bytes());
    kafka_string(&mut f, client_id);
    f.extend_from_slice(body);
    let mut out = (f.len() as u32).to_be_bytes().to_vec();
    out.extend(f);
    out
}

/// A response frame, length prefix included, with the v0 response header.
pub fn kafka_response(correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut out = ((4 + body.len()) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&correlation_id.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// CRC-32C (Castagnoli), as record batches carry it.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// An uncompressed v2 record batch of `(key, value)` records from `base_offset`, stamped
/// `timestamp_ms`.
pub fn kafka_record_batch(base_offset: i64, timestamp_ms: i64, records: &[(&str, &str)]) -> Vec<u8> {
    // From the attributes on: what the CRC covers.
    let mut tail = Vec::new();
    tail.extend_from_slice(&0i16.to_be_bytes());
    tail.extend_from_slice(&(records.len().saturating_sub(1) as i32).to_be_bytes());
    tail.extend_from_slice(&timestamp_ms.to_be_bytes());
    tail.extend_from_slice(&timestamp_ms.to_be_bytes());
    tail.extend_from_slice(&(-1i64).to_be_bytes());
    tail.extend_from_slice(&(-1i16).to_be_bytes());
    tail.extend_from_slice(&(-1i32).to_be_bytes());
    tail.extend_from_slice(&(records.len() as i32).to_be_bytes());
    for (i, (key, value)) in records.iter().enumerate() {
        let mut r = vec![0];
        varint(&mut r, 0);
        varint(&mut r, i as i64);
        varint(&mut r, key.len() as i64);
        r.extend_from_slice(key.as_bytes());
        varint(&mut r, value.len() as i64);
        r.extend_from_slice(value.as_bytes());
        varint(&mut r, 0);
        varint(&mut tail, r.len() as i64);
        tail.extend(r);
    }
    let mut batch = base_offset.to_be_bytes().to_vec();
    // Batch length: from the partition leader epoch to the end.
    batch.extend_from_slice(&((4 + 1 + 4 + tail.len()) as i32).to_be_bytes());
    batch.extend_from_slice(&0i32.to_be_bytes());
    batch.push(2);
    batch.extend_from_slice(&crc32c(&tail).to_be_bytes());
    batch.extend(tail);
    batch
}

/// ApiVersions v0 request body (empty) and response body listing the demo's APIs.
pub fn kafka_api_versions_response() -> Vec<u8> {
    let apis: [(i16, i16, i16); 4] = [(0, 0, 9), (1, 0, 12), (3, 0, 12), (18, 0, 3)];
    let mut b = 0i16.to_be_bytes().to_vec();
    b.extend_from_slice(&(apis.len() as i32).to_be_bytes());
    for (k, lo, hi) in apis {
        for v in [k, lo, hi] {
            b.extend_from_slice(&v.to_be_bytes());
        }
    }
    b
}

/// Metadata v1 request body for `topics`.
pub fn kafka_metadata_request(topics: &[&str]) -> Vec<u8> {
    let mut b = (topics.len() as i32).to_be_bytes().to_vec();
    for t in topics {
        kafka_string(&mut b, t);
    }
    b
}

/// Metadata v1 response body: one broker (node 1), each topic with one partition it leads.
pub fn kafka_metadata_response(host: &str, port: i32, topics: &[&str]) -> Vec<u8> {
    let mut b = 1i32.to_be_bytes().to_vec();
    b.extend_from_slice(&1i32.to_be_bytes());
    kafka_string(&mut b, host);
    b.extend_from_slice(&port.to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        b.extend_from_slice(&0i16.to_be_bytes());
        kafka_string(&mut b, t);
        b.push(0);
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&1i32.to_be_bytes());
        for _ in 0..2 {
            b.extend_from_slice(&1i32.to_be_bytes());
            b.extend_from_slice(&1i32.to_be_bytes());
        }
    }
    b
}

/// Produce v3 request body: `batch` to partition 0 of `topic`, acks all.
pub fn kafka_produce_request(topic: &str, batch: &[u8]) -> Vec<u8> {
    let mut b = (-1i16).to_be_bytes().to_vec();
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&30_000i32.to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    kafka_string(&mut b, topic);
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&(batch.len() as i32).to_be_bytes());
    b.extend_from_slice(batch);
    b
}

/// Produce v3 response body: partition 0 of `topic` appended at `base_offset`.
pub fn kafka_produce_response(topic: &str, base_offset: i64) -> Vec<u8> {
    let mut b = 1i32.to_be_bytes().to_vec();
    kafka_string(&mut b, topic);
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&base_offset.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b
}

/// Fetch v4 request body: partition 0 of `topic` from `offset`.
pub fn kafka_fetch_request(topic: &str, offset: i64) -> Vec<u8> {
    let mut b = (-1i32).to_be_bytes().to_vec();
    b.extend_from_slice(&500i32.to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&1_048_576i32.to_be_bytes());
    b.push(0);
    b.extend_from_slice(&1i32.to_be_bytes());
    kafka_string(&mut b, topic);
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&offset.to_be_bytes());
    b.extend_from_slice(&1_048_576i32.to_be_bytes());
    b
}

/// Fetch v4 response body: partition 0 of `topic` with `batch` (possibly empty).
pub fn kafka_fetch_response(topic: &str, high_watermark: i64, batch: &[u8]) -> Vec<u8> {
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&1i32.to_be_bytes());
    kafka_string(&mut b, topic);
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&high_watermark.to_be_bytes());
    b.extend_from_slice(&high_watermark.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&(batch.len() as i32).to_be_bytes());
    b.extend_from_slice(batch);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_and_dns_bytes() {
        assert_eq!(resp_command(&["GET", "k"]), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
        assert_eq!(resp_bulk("ab"), b"$2\r\nab\r\n");
        let q = dns_query(0x1234, "a.b", DNS_A);
        assert_eq!(
            q,
            [
                0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 1, b'b', 0, 0, 1, 0, 1
            ]
        );
        let r = dns_response(0x1234, "a.b", DNS_A, DNS_NXDOMAIN, 30, &[]);
        assert_eq!(&r[2..4], &[0x85, 0x83]);
        assert_eq!(dns_over_tcp(&q)[..2], [0, q.len() as u8]);
        // The check value of CRC-32C.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        let batch = kafka_record_batch(5, 1, &[("k", "v"), ("k2", "v2")]);
        assert_eq!(
            i32::from_be_bytes(batch[8..12].try_into().unwrap()) as usize,
            batch.len() - 12
        );
        assert_eq!(i32::from_be_bytes(batch[57..61].try_into().unwrap()), 2);
    }
}
