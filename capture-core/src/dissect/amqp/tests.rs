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
