//! The AMQP state machine end to end: synthetic TCP conversations go through the engine
//! (decode → flow table → reassembly → dissector → store) and the entries are checked.

use std::sync::Arc;

use super::parse::PROTOCOL_HEADER;
use super::parse::tests::{content, method, publish, short};
use super::{AmqpEntry, amqp_flags};
use crate::engine::Shared;
use crate::entry::{Entry, Protocol};
use crate::fields::{self, Value};
use crate::limits::Limits;
use crate::synth::conversation::Conversation;
use crate::time::Timestamp;

fn conv(handshake: bool) -> Conversation {
    let mut c = Conversation::new(
        "10.0.0.1:40000".parse().unwrap(),
        "10.0.0.2:15672".parse().unwrap(),
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

fn run(c: Conversation, limits: Limits) -> (Vec<Arc<Entry>>, Shared) {
    crate::synth::testutil::replay_entries(c.packets(), limits)
}

fn a(e: &Entry) -> &AmqpEntry {
    assert_eq!(e.protocol, Protocol::Amqp);
    e.amqp().expect("an amqp entry")
}

/// (channel, methods) of every entry, in order of first frame.
fn rows(es: &[Arc<Entry>]) -> Vec<(u16, Vec<String>)> {
    let mut v: Vec<(Timestamp, u16, Vec<String>)> = es
        .iter()
        .map(|e| (e.ts, a(e).channel, a(e).methods.iter().map(|m| m.to_string()).collect()))
        .collect();
    v.sort_by_key(|r| r.0);
    v.into_iter().map(|(_, c, m)| (c, m)).collect()
}

fn row(ch: u16, methods: &[&str]) -> (u16, Vec<String>) {
    (ch, methods.iter().map(|m| m.to_string()).collect())
}

fn close(ch: u16, code: u16, text: &str) -> Vec<u8> {
    let mut args = code.to_be_bytes().to_vec();
    args.extend(short(text));
    args.extend([0, 0, 0, 0]);
    method(ch, if ch == 0 { 10 } else { 20 }, if ch == 0 { 50 } else { 40 }, &args)
}

fn queue_declare(ch: u16, q: &str) -> Vec<u8> {
    let mut args = vec![0, 0];
    args.extend(short(q));
    args.extend([0, 0, 0, 0, 0]);
    method(ch, 50, 10, &args)
}

fn exchange_declare(ch: u16, ex: &str) -> Vec<u8> {
    let mut args = vec![0, 0];
    args.extend(short(ex));
    args.extend(short("topic"));
    args.extend([0, 0, 0, 0, 0]);
    method(ch, 40, 10, &args)
}

fn deliver(ch: u16, ex: &str, rk: &str) -> Vec<u8> {
    let mut args = short("ctag");
    args.extend(7u64.to_be_bytes());
    args.push(0);
    args.extend(short(ex));
    args.extend(short(rk));
    method(ch, 60, 60, &args)
}

#[test]
fn a_whole_session_groups_methods_with_replies_and_content() {
    let mut c = conv(true);
    let mut hello = PROTOCOL_HEADER.to_vec();
    hello.extend(method(0, 10, 11, &[0; 8]));
    c.server_send(&method(0, 10, 10, &[0, 9, 0, 0, 0, 0]), 100);
    c.client_send(&hello, 100);
    c.server_send(&method(0, 10, 30, &[0; 8]), 100);
    c.client_send(&method(0, 10, 31, &[0; 8]), 100);
    c.client_send(&method(0, 10, 40, &[1, b'/', 0, 0]), 100);
    c.server_send(&method(0, 10, 41, &[0]), 100);
    c.client_send(&method(1, 20, 10, &[0]), 100);
    c.server_send(&method(1, 20, 11, &[0, 0, 0, 0]), 100);
    c.client_send(&queue_declare(1, "jobs"), 100);
    let mut ok = short("jobs");
    ok.extend([0; 8]);
    c.server_send(&method(1, 50, 11, &ok), 100);
    // Publish with its content header and a body in two frames, cut across segments.
    let mut p = publish(1, "orders", "orders.created");
    let header_at = p.len();
    p.extend(content(1, b"hello "));
    p.extend(super::parse::tests::frame(super::parse::FRAME_BODY, 1, b"world"));
    // The content header announces both body frames.
    p[header_at + 11..header_at + 19].copy_from_slice(&11u64.to_be_bytes());
    c.client_send(&p[..20], 100);
    c.client_send(&p[20..], 100);
    let mut consume = vec![0, 0];
    consume.extend(short("jobs"));
    consume.extend(short(""));
    consume.extend([0, 0, 0, 0, 0]);
    c.client_send(&method(1, 60, 20, &consume), 100);
    let mut both = method(1, 60, 21, &short("ctag"));
    both.extend(deliver(1, "orders", "orders.created"));
    both.extend(content(1, b"job"));
    c.server_send(&both, 100);
    let mut ack = 7u64.to_be_bytes().to_vec();
    ack.push(0);
    c.client_send(&method(1, 60, 80, &ack), 100);
    c.client_send(&exchange_declare(1, "orders"), 100);
    c.server_send(&close(1, 406, "PRECONDITION_FAILED - inequivalent arg 'type'"), 100);
    c.client_send(&method(1, 20, 41, &[]), 100);
    c.client_send(&close(0, 200, "Normal shutdown"), 100);
    c.server_send(&method(0, 10, 51, &[]), 100);
    c.close();
    let (es, shared) = run(c, Limits::default());
    assert_eq!(
        rows(&es),
        vec![
            row(0, &["Connection.Start", "Connection.Start-Ok"]),
            row(0, &["Connection.Tune", "Connection.Tune-Ok"]),
            row(0, &["Connection.Open", "Connection.Open-Ok"]),
            row(1, &["Channel.Open", "Channel.Open-Ok"]),
            row(1, &["Queue.Declare", "Queue.Declare-Ok"]),
            row(1, &["Basic.Publish"]),
            row(1, &["Basic.Consume", "Basic.Consume-Ok"]),
            row(1, &["Basic.Deliver"]),
            row(1, &["Basic.Ack"]),
            row(1, &["Exchange.Declare"]),
            row(1, &["Channel.Close", "Channel.Close-Ok"]),
            row(0, &["Connection.Close", "Connection.Close-Ok"]),
        ]
    );
    let find = |m: &str| es.iter().find(|e| a(e).methods[0] == m).unwrap();
    let p = find("Basic.Publish");
    assert_eq!(a(p).exchange.as_deref(), Some("orders"));
    assert_eq!(a(p).routing_key.as_deref(), Some("orders.created"));
    assert_eq!((a(p).body_size, a(p).flags), (Some(11), 0));
    assert_eq!(a(find("Basic.Deliver")).body_size, Some(3));
    assert_eq!(a(find("Queue.Declare")).queue.as_deref(), Some("jobs"));
    assert_eq!(a(find("Exchange.Declare")).flags, amqp_flags::NO_REPLY);
    let cc = find("Channel.Close");
    assert_eq!(field(cc, "amqp_reply_code"), Value::Int(406));
    assert_eq!(field(cc, "amqp_channel"), Value::Int(1));
    assert_eq!(field(cc, "amqp_exchange"), Value::Null);
    assert_eq!(
        field(cc, "amqp_methods"),
        Value::List(vec![
            Value::Str("Channel.Close".into()),
            Value::Str("Channel.Close-Ok".into())
        ])
    );
    assert_eq!(
        cc.src,
        "10.0.0.2:15672".parse().unwrap(),
        "the server sent the first method"
    );
    let st = shared.stats.lock().dissect.clone();
    assert_eq!((st.amqp_frame_errors, st.amqp_resyncs), (0, 0));
    assert_eq!(st.connections.get("amqp"), Some(&1));
}

fn field<'a>(e: &'a Entry, name: &str) -> Value<'a> {
    (fields::lookup(name).expect(name).get)(e)
}

#[test]
fn mid_connection_frames_are_found_by_their_shape() {
    let mut c = conv(false);
    let mut p = publish(1, "celeryev", "worker.heartbeat");
    p.extend(content(1, b"{}"));
    c.client_send(&p, 100);
    let mut d = deliver(3, "celeryev", "worker.heartbeat");
    d.extend(content(3, b"{}"));
    c.server_send(&d, 100);
    let mut get = vec![0, 0];
    get.extend(short("jobs"));
    get.push(0);
    c.client_send(&method(2, 60, 70, &get), 100);
    let mut get_ok = 9u64.to_be_bytes().to_vec();
    get_ok.push(0);
    get_ok.extend(short(""));
    get_ok.extend(short("jobs"));
    get_ok.extend(0u32.to_be_bytes());
    let mut reply = method(2, 60, 71, &get_ok);
    reply.extend(content(2, b"payload"));
    c.server_send(&reply, 100);
    c.client_send(&method(2, 60, 70, &get), 100);
    c.server_send(&method(2, 60, 72, &[0]), 100);
    c.close();
    let (es, _) = run(c, Limits::default());
    assert_eq!(
        rows(&es),
        vec![
            row(1, &["Basic.Publish"]),
            row(3, &["Basic.Deliver"]),
            row(2, &["Basic.Get", "Basic.Get-Ok"]),
            row(2, &["Basic.Get", "Basic.Get-Empty"]),
        ]
    );
    let g = es
        .iter()
        .find(|e| a(e).methods.len() == 2 && a(e).methods[1] == "Basic.Get-Ok")
        .unwrap();
    assert_eq!(
        (a(g).queue.as_deref(), a(g).routing_key.as_deref()),
        (Some("jobs"), Some("jobs"))
    );
    assert_eq!(a(g).body_size, Some(7));
}

#[test]
fn open_entries_are_capped_and_bad_frames_counted() {
    let limits = Limits {
        amqp_max_open: 2,
        ..Limits::default()
    };
    let mut c = conv(true);
    let mut v = PROTOCOL_HEADER.to_vec();
    for ch in 1..=4 {
        v.extend(queue_declare(ch, "q"));
    }
    c.client_send(&v, 100);
    c.client_send(b"\x09garbage that is no frame", 100);
    c.close();
    let (es, shared) = run(c, limits);
    assert_eq!(es.len(), 4);
    assert!(es.iter().all(|e| a(e).flags == amqp_flags::NO_REPLY));
    let st = shared.stats.lock().dissect.clone();
    assert_eq!(st.amqp_open_overflows, 2);
    assert_eq!(st.amqp_frame_errors, 1);
}

/// A content header with `props` (flags and encoded properties) announcing `size`.
fn header(ch: u16, size: u64, flags: u16, props: &[u8]) -> Vec<u8> {
    let mut h = 60u16.to_be_bytes().to_vec();
    h.extend([0, 0]);
    h.extend(size.to_be_bytes());
    h.extend(flags.to_be_bytes());
    h.extend(props);
    super::parse::tests::frame(super::parse::FRAME_HEADER, ch, &h)
}

fn body(ch: u16, b: &[u8]) -> Vec<u8> {
    super::parse::tests::frame(super::parse::FRAME_BODY, ch, b)
}

#[test]
fn content_properties_and_a_body_over_several_frames_join_the_publish() {
    let mut c = conv(true);
    let mut p = publish(1, "orders", "orders.created");
    p.extend(super::parse::tests::frame(
        super::parse::FRAME_HEADER,
        1,
        &super::content::tests::full_header(11),
    ));
    p.extend(body(1, b"{\"id\""));
    p.extend(body(1, b":1"));
    p.extend(body(1, b"}\n\n\n\n"));
    for piece in p.chunks(13) {
        c.client_send(piece, 100);
    }
    c.close();
    let (es, shared) = run(c, Limits::default());
    assert_eq!(es.len(), 1);
    let e = a(&es[0]);
    assert_eq!(
        (e.body.as_slice(), e.body_truncated, e.body_size),
        (&b"{\"id\":1}\n\n\n"[..], false, Some(11))
    );
    assert_eq!(e.flags, 0);
    let props = e.properties.as_deref().unwrap();
    assert_eq!(props.message_type.as_deref(), Some("order.created"));
    assert_eq!(
        field(&es[0], "amqp_content_type"),
        Value::Str("application/json".into())
    );
    assert_eq!(field(&es[0], "amqp_delivery_mode"), Value::Int(2));
    assert_eq!(field(&es[0], "amqp_message_id"), Value::Str("msg-1".into()));
    assert_eq!(field(&es[0], "amqp_correlation_id"), Value::Str("corr-1".into()));
    assert_eq!(
        field(&es[0], "amqp_reply_to"),
        Value::Str("amq.rabbitmq.reply-to".into())
    );
    assert_eq!(field(&es[0], "amqp_app_id"), Value::Str("billing".into()));
    assert_eq!(field(&es[0], "amqp_body_size"), Value::Int(11));
    assert_eq!(
        field(&es[0], "amqp_headers"),
        Value::Map(vec![
            ("x-retry-count".into(), Value::Str("3".into())),
            ("tenant".into(), Value::Str("acme".into())),
        ])
    );
    assert!(
        es[0].summary().contains("(11 B application/json)"),
        "{}",
        es[0].summary()
    );
    let st = shared.stats.lock().dissect.clone();
    // Three bytes past the announced size in the last frame are dropped and counted.
    assert_eq!(
        (st.amqp_body_overruns, st.amqp_bodies_truncated, st.amqp_tables_cut),
        (1, 0, 0)
    );
}

#[test]
fn bodies_are_kept_up_to_the_cap_and_marked_truncated() {
    let limits = Limits {
        amqp_body_max_bytes: 8,
        ..Limits::default()
    };
    let mut c = conv(true);
    let mut p = publish(1, "ex", "big");
    p.extend(header(1, 12, 0, &[]));
    p.extend(body(1, b"abcdef"));
    p.extend(body(1, b"ghijkl"));
    // A second message whose body is exactly the cap.
    p.extend(publish(1, "ex", "exact"));
    p.extend(header(1, 8, 0, &[]));
    p.extend(body(1, b"01234567"));
    // A third one whose body never arrives whole.
    p.extend(publish(1, "ex", "cut"));
    p.extend(header(1, 100, 0x8000, b"\x0atext/plain"));
    p.extend(body(1, b"xy"));
    c.client_send(&p, 100);
    c.close();
    let (es, shared) = run(c, limits);
    let by_key = |k: &str| a(es.iter().find(|e| a(e).routing_key.as_deref() == Some(k)).unwrap());
    let big = by_key("big");
    assert_eq!(
        (big.body.as_slice(), big.body_truncated, big.body_size),
        (&b"abcdefgh"[..], true, Some(12))
    );
    assert_eq!(big.flags, 0, "the body arrived whole, only the kept part is cut");
    let exact = by_key("exact");
    assert_eq!((exact.body.as_slice(), exact.body_truncated), (&b"01234567"[..], false));
    let cut = by_key("cut");
    assert_eq!(
        (cut.body.as_slice(), cut.flags),
        (&b"xy"[..], amqp_flags::BODY_INCOMPLETE)
    );
    assert_eq!(
        field(
            es.iter().find(|e| a(e).routing_key.as_deref() == Some("cut")).unwrap(),
            "amqp_headers"
        ),
        Value::Map(vec![])
    );
    assert!(big.heap_bytes() >= 8);
    let st = shared.stats.lock().dissect.clone();
    assert_eq!((st.amqp_bodies_truncated, st.amqp_body_overruns), (1, 0));
}

#[test]
fn body_frames_read_from_their_prefix_stop_the_body() {
    // A 300-byte body frame with a 64-byte dissector buffer: the framer keeps 64 bytes.
    let limits = Limits {
        dissector_buffer_bytes: 64,
        ..Limits::default()
    };
    let mut c = conv(true);
    let mut p = publish(1, "ex", "rk");
    p.extend(header(1, 301, 0, &[]));
    p.extend(body(1, &[b'a'; 300]));
    p.extend(body(1, b"z"));
    c.client_send(&p, 100);
    c.close();
    let (es, shared) = run(c, limits);
    let e = a(&es[0]);
    assert_eq!(e.body, vec![b'a'; 64 - 7]);
    assert!(e.body_truncated && e.flags == 0);
    let st = shared.stats.lock().dissect.clone();
    assert_eq!((st.amqp_frames_truncated, st.amqp_bodies_truncated), (1, 1));
}

fn args(e: &AmqpEntry, i: usize) -> Vec<(String, String)> {
    e.arguments[i]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn method_arguments_users_ask_about_and_no_secret() {
    let mut c = conv(true);
    for (from_client, w) in crate::synth::messages::amqp_open("pika") {
        if from_client {
            c.client_send(&w, 100);
        } else {
            c.server_send(&w, 100);
        }
    }
    let (consume, consume_ok) = crate::synth::messages::amqp_consume(1, "jobs", "ctag-1");
    c.client_send(&consume, 100);
    c.server_send(&consume_ok, 100);
    let mut d = Vec::new();
    crate::synth::messages::amqp_deliver(&mut d, 1, "ctag-1", 42, "orders", "orders.created", b"{}");
    c.server_send(&d, 100);
    let mut nack = 42u64.to_be_bytes().to_vec();
    nack.push(0b11);
    c.client_send(&method(1, 60, 120, &nack), 100);
    let mut reject = 43u64.to_be_bytes().to_vec();
    reject.push(0);
    c.client_send(&method(1, 60, 90, &reject), 100);
    c.client_send(&queue_declare(1, "jobs"), 100);
    let mut ok = short("jobs");
    ok.extend(17u32.to_be_bytes());
    ok.extend(2u32.to_be_bytes());
    c.server_send(&method(1, 50, 11, &ok), 100);
    c.client_send(&exchange_declare(1, "orders"), 100);
    let mut cc = 406u16.to_be_bytes().to_vec();
    cc.extend(short("PRECONDITION_FAILED"));
    cc.extend([0, 40, 0, 10]);
    c.server_send(&method(1, 20, 40, &cc), 100);
    c.client_send(&method(1, 20, 41, &[]), 100);
    c.close();
    let (es, _) = run(c, Limits::default());
    let find = |m: &str| a(es.iter().find(|e| a(e).methods[0] == m).unwrap());
    let start = find("Connection.Start");
    assert_eq!(
        args(start, 0),
        kv(&[("protocol-version", "0-9"), ("mechanisms", "PLAIN AMQPLAIN")])
    );
    assert_eq!(
        args(start, 1),
        kv(&[("product", "pika"), ("mechanism", "PLAIN"), ("response", "<redacted>")])
    );
    let all: String = es.iter().map(|e| format!("{:?}", a(e))).collect();
    assert!(!all.contains("guest"), "the SASL response is never kept");
    let tune = find("Connection.Tune");
    assert_eq!(
        args(tune, 0),
        kv(&[("channel-max", "7"), ("frame-max", "8192"), ("heartbeat", "60")])
    );
    assert_eq!(args(find("Connection.Open"), 0), kv(&[("virtual-host", "/")]));
    let consume = find("Basic.Consume");
    assert_eq!(consume.consumer_tag(), Some("ctag-1"));
    assert_eq!(args(consume, 1), kv(&[("consumer-tag", "ctag-1")]));
    let deliver = es.iter().find(|e| a(e).methods[0] == "Basic.Deliver").unwrap();
    assert_eq!(field(deliver, "amqp_delivery_tag"), Value::Int(42));
    assert_eq!(field(deliver, "amqp_consumer_tag"), Value::Str("ctag-1".into()));
    assert_eq!(
        args(a(deliver), 0),
        kv(&[
            ("consumer-tag", "ctag-1"),
            ("delivery-tag", "42"),
            ("redelivered", "false")
        ])
    );
    assert_eq!(a(deliver).body, b"{}");
    assert_eq!(
        args(find("Basic.Nack"), 0),
        kv(&[("delivery-tag", "42"), ("multiple", "true"), ("requeue", "true")])
    );
    assert_eq!(
        args(find("Basic.Reject"), 0),
        kv(&[("delivery-tag", "43"), ("requeue", "false")])
    );
    assert_eq!(
        args(find("Queue.Declare"), 1),
        kv(&[("message-count", "17"), ("consumer-count", "2")])
    );
    assert_eq!(
        args(find("Exchange.Declare"), 0)[0],
        ("type".to_string(), "topic".to_string())
    );
    let close = find("Channel.Close");
    assert_eq!(
        args(close, 0),
        kv(&[
            ("class-id", "40"),
            ("method-id", "10"),
            ("failing-method", "Exchange.Declare")
        ])
    );
    assert_eq!(close.arguments.len(), close.methods.len());
}
