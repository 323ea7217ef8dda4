//! The Redis state machine end to end: synthetic TCP conversations go through the engine
//! (decode → flow table → reassembly → dissector → store) and the entries are checked.

use std::sync::Arc;

use super::{RedisEntry, redis_flags};
use crate::engine::Shared;
use crate::entry::{Entry, Protocol};
use crate::fields::{self, Value};
use crate::limits::Limits;
use crate::synth::conversation::{Conversation, SynthPacket};
use crate::time::Timestamp;

fn conv(port: u16) -> Conversation {
    let mut c = Conversation::new(
        format!("10.0.0.1:{port}").parse().unwrap(),
        "10.0.0.2:16379".parse().unwrap(),
        Timestamp::from_secs_nanos(1_700_000_000, 0),
        1_000,
        7_000,
        90_000,
    );
    c.handshake();
    c
}

fn run_packets(packets: Vec<SynthPacket>, limits: Limits) -> (Vec<Arc<Entry>>, Shared) {
    crate::synth::testutil::replay_entries(packets, limits)
}

fn run(c: Conversation) -> Vec<Arc<Entry>> {
    let es = run_packets(c.packets(), Limits::default()).0;
    assert!(es.iter().all(|e| e.protocol == Protocol::Redis), "{es:?}");
    es
}

fn r(e: &Entry) -> &RedisEntry {
    e.redis().expect("a redis entry")
}

/// (command, key, reply type) of each entry.
fn rows(es: &[Arc<Entry>]) -> Vec<(Option<String>, Option<String>, Option<&'static str>)> {
    es.iter()
        .map(|e| {
            let r = r(e);
            (
                r.command.as_deref().map(String::from),
                r.key().map(String::from),
                r.reply_type(),
            )
        })
        .collect()
}

fn row(cmd: &str, key: &str, reply: &'static str) -> (Option<String>, Option<String>, Option<&'static str>) {
    (
        Some(cmd.to_string()),
        (!key.is_empty()).then(|| key.to_string()),
        Some(reply),
    )
}

fn push(reply: &'static str) -> (Option<String>, Option<String>, Option<&'static str>) {
    (None, None, Some(reply))
}

fn cmd(args: &[&str]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    v
}

fn field<'a>(e: &'a Entry, name: &str) -> Value<'a> {
    (fields::lookup(name).expect(name).get)(e)
}

#[test]
fn pipelined_commands_take_replies_in_order_on_any_port() {
    let mut c = conv(40000);
    let mut batch = cmd(&["SET", "k1", "v1"]);
    batch.extend(cmd(&["GET", "k1"]));
    batch.extend(cmd(&["INCR", "n"]));
    batch.extend(cmd(&["LINDEX", "list", "9"]));
    batch.extend(cmd(&["LLEN", "k1"]));
    c.client_send(&batch, 100);
    c.server_send(
        b"+OK\r\n$2\r\nv1\r\n:1\r\n$-1\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        2_000,
    );
    c.close();
    let es = run(c);
    assert_eq!(
        rows(&es),
        vec![
            row("SET", "k1", "simple_string"),
            row("GET", "k1", "bulk_string"),
            row("INCR", "n", "integer"),
            row("LINDEX", "list", "null_bulk_string"),
            row("LLEN", "k1", "error"),
        ]
    );
    let e = &es[4];
    assert_eq!(e.src.to_string(), "10.0.0.1:40000");
    assert_eq!(e.dst.port(), 16379, "found by content on a port no one expects");
    assert!(e.elapsed_us.unwrap() >= 2_000);
    assert_eq!(
        r(e).error(),
        Some("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    assert_eq!(
        field(e, "redis_error"),
        Value::Str("WRONGTYPE Operation against a key holding the wrong kind of value".into())
    );
    assert_eq!(field(&es[1], "redis_type"), Value::Str("GET".into()));
    assert_eq!(field(&es[1], "redis_reply"), Value::Str("v1".into()));
    assert_eq!(
        field(&es[0], "redis_args"),
        Value::List(vec![Value::Str("k1".into()), Value::Str("v1".into())])
    );
    assert!(
        es[1].summary().starts_with("GET k1 → bulk_string v1"),
        "{}",
        es[1].summary()
    );
    let f = crate::kfl::compile(r#"redis && redis_type == "GET" && redis_key.startsWith("k") && tcp"#).unwrap();
    let cx = crate::kfl::EvalContext::new(Timestamp::from_secs_nanos(1_800_000_000, 0));
    let hits: Vec<usize> = (0..es.len()).filter(|&i| f.matches(&es[i], &cx)).collect();
    assert_eq!(hits, [1]);
    assert!(!crate::kfl::compile("http or dns").unwrap().matches(&es[0], &cx));
}

#[test]
fn every_split_point_gives_the_same_entries() {
    let mut reqs = cmd(&["HSET", "h", "f", "v"]);
    reqs.extend(cmd(&["HGETALL", "h"]));
    let replies = b":1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n";
    let expect = vec![row("HSET", "h", "integer"), row("HGETALL", "h", "array")];
    for cut in 1..reqs.len() {
        let mut c = conv(41000 + cut as u16);
        c.client_send(&reqs[..cut], 100);
        c.client_send(&reqs[cut..], 100);
        let rcut = cut % replies.len();
        c.server_send(&replies[..rcut], 500);
        c.server_send(&replies[rcut..], 100);
        assert_eq!(rows(&run(c)), expect, "cut {cut}");
    }
}

#[test]
fn tshark_weaker_resp3_types_and_attributes() {
    // tshark 4.0 shows RESP3 replies as unparsed fragments; we type them. A reply that starts
    // with an attribute has the type of the value that follows it.
    let mut c = conv(40001);
    c.client_send(&cmd(&["HELLO", "3"]), 100);
    c.server_send(b"%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n", 500);
    c.client_send(&cmd(&["ZSCORE", "z", "a"]), 100);
    c.server_send(b",3.5\r\n", 500);
    c.client_send(&cmd(&["SMEMBERS", "s"]), 100);
    c.server_send(b"~2\r\n+a\r\n+b\r\n", 500);
    c.client_send(&cmd(&["EXISTS", "k"]), 100);
    c.server_send(b"#t\r\n", 500);
    c.client_send(&cmd(&["GET", "missing"]), 100);
    c.server_send(b"_\r\n", 500);
    c.client_send(&cmd(&["INFO"]), 100);
    c.server_send(b"=15\r\ntxt:Some string\r\n", 500);
    c.client_send(&cmd(&["BIG"]), 100);
    c.server_send(b"(3492890328409238509324850943850943825024385\r\n", 500);
    c.client_send(b"FAKE2 COMMAND2\r\n", 100);
    c.server_send(
        b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n",
        500,
    );
    let es = run(c);
    let types: Vec<_> = es.iter().map(|e| r(e).reply_type().unwrap()).collect();
    assert_eq!(
        types,
        [
            "map",
            "double",
            "set",
            "boolean",
            "null",
            "verbatim_string",
            "big_number",
            "array"
        ]
    );
    let last = r(&es[7]);
    assert!(last.reply.as_ref().unwrap().attribute);
    assert_eq!(
        last.reply.as_ref().unwrap().items,
        vec![Box::from("2039123"), Box::from("9543892")]
    );
}

#[test]
fn tshark_weaker_inline_commands() {
    // tshark 4.0 cannot parse inline commands; the first one is only recognised once the server
    // answers in RESP (then the held line is dissected first, as it came first).
    let mut c = conv(40002);
    c.client_send(b"PUBLISH Foo \"Hi there :)\"\r\n", 100);
    c.server_send(b":2\r\n", 500);
    c.client_send(b"AUTH s3cret\r\n", 100);
    c.server_send(b"+OK\r\n", 500);
    let es = run(c);
    assert_eq!(rows(&es)[0], row("PUBLISH", "Foo", "integer"));
    assert_eq!(
        (r(&es[1]).command.as_deref(), r(&es[1]).reply_type()),
        (Some("AUTH"), Some("simple_string"))
    );
    let p = r(&es[0]);
    assert_eq!((p.channel(), p.payload()), (Some("Foo"), Some("Hi there :)")));
    assert!(p.flags & redis_flags::INLINE != 0);
    let auth = r(&es[1]);
    assert!(auth.args[0].starts_with("[redacted len=6 id="), "{:?}", auth.args);
    assert!(auth.flags & redis_flags::REDACTED != 0);
    assert!(es[0].ts < es[1].ts);
}

#[test]
fn passwords_are_redacted() {
    let mut c = conv(40003);
    c.client_send(&cmd(&["AUTH", "default", "hunter2"]), 100);
    c.server_send(b"+OK\r\n", 500);
    c.client_send(
        &cmd(&["HELLO", "3", "AUTH", "default", "hunter2", "SETNAME", "app"]),
        100,
    );
    c.server_send(b"%0\r\n", 500);
    c.client_send(&cmd(&["CONFIG", "SET", "requirepass", "hunter2"]), 100);
    c.server_send(b"+OK\r\n", 500);
    c.client_send(&cmd(&["ACL", "SETUSER", "bob", "on", ">hunter2", "~*"]), 100);
    c.server_send(b"+OK\r\n", 500);
    let es = run(c);
    for e in &es {
        let r = r(e);
        assert!(!r.args.iter().any(|a| a.contains("hunter2")), "{:?}", r.args);
        assert!(!e.summary().contains("hunter2"));
        assert!(r.flags & redis_flags::REDACTED != 0);
    }
    assert_eq!(&*r(&es[0]).args[0], "default", "the user name stays");
    assert_eq!(&*r(&es[1]).args[5], "app");
}

#[test]
fn resp2_pub_sub_messages_are_their_own_entries() {
    let mut c = conv(40004);
    c.client_send(&cmd(&["SUBSCRIBE", "a", "b"]), 100);
    c.server_send(
        b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n",
        500,
    );
    c.server_send(b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nhello\r\n", 5_000);
    c.client_send(&cmd(&["PING"]), 100);
    c.server_send(
        b"*4\r\n$8\r\npmessage\r\n$2\r\nb*\r\n$1\r\nb\r\n$3\r\nbye\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n",
        500,
    );
    c.client_send(&cmd(&["UNSUBSCRIBE"]), 100);
    c.server_send(
        b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n",
        500,
    );
    c.client_send(&cmd(&["LRANGE", "l", "0", "-1"]), 100);
    c.server_send(b"*2\r\n$7\r\nmessage\r\n$1\r\nx\r\n", 500);
    let es = run(c);
    assert_eq!(
        rows(&es),
        vec![
            row("SUBSCRIBE", "a", "array"),
            push("array"),
            push("array"),
            row("PING", "", "array"),
            push("array"),
            row("UNSUBSCRIBE", "", "array"),
            push("array"),
            row("LRANGE", "l", "array"),
        ],
        "a RESP2 pub/sub message is an array; after the last unsubscribe, arrays are replies again"
    );
    let m = r(&es[2]);
    assert_eq!((m.channel(), m.payload()), (Some("a"), Some("hello")));
    assert!(m.flags & redis_flags::PUSH != 0);
    assert_eq!(field(&es[2], "redis_command"), Value::Null);
    assert_eq!(field(&es[2], "redis_channel"), Value::Str("a".into()));
    assert_eq!(r(&es[1]).channel(), Some("b"), "the second confirmation");
    assert_eq!((r(&es[4]).channel(), r(&es[4]).payload()), (Some("b"), Some("bye")));
    assert!(es[2].summary().contains("message a: hello"), "{}", es[2].summary());
}

#[test]
fn resp3_pushes_are_their_own_entries() {
    let mut c = conv(40005);
    c.client_send(&cmd(&["HELLO", "3"]), 100);
    c.server_send(b"%1\r\n$5\r\nproto\r\n:3\r\n", 500);
    c.client_send(&cmd(&["CLIENT", "TRACKING", "on"]), 100);
    c.server_send(b"+OK\r\n", 500);
    c.client_send(&cmd(&["GET", "k"]), 100);
    // An invalidation push arrives between the command and its reply.
    c.server_send(b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n$1\r\nv\r\n", 500);
    c.client_send(&cmd(&["SUBSCRIBE", "ch"]), 100);
    c.server_send(
        b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
        500,
    );
    let es = run(c);
    assert_eq!(
        rows(&es),
        vec![
            row("HELLO", "3", "map"),
            row("CLIENT", "TRACKING", "simple_string"),
            row("GET", "k", "bulk_string"),
            push("push"),
            row("SUBSCRIBE", "ch", "push"),
            push("push"),
        ]
    );
    assert_eq!(r(&es[3]).reply.as_ref().unwrap().items[0].as_ref(), "invalidate");
    assert_eq!(r(&es[5]).payload(), Some("hi"));
}

#[test]
fn multi_exec_and_client_reply() {
    let mut c = conv(40006);
    let mut tx = cmd(&["MULTI"]);
    tx.extend(cmd(&["SET", "a", "1"]));
    tx.extend(cmd(&["INCR", "a"]));
    tx.extend(cmd(&["EXEC"]));
    c.client_send(&tx, 100);
    c.server_send(b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n:2\r\n", 500);
    c.client_send(&cmd(&["CLIENT", "REPLY", "OFF"]), 100);
    c.client_send(&cmd(&["SET", "quiet", "1"]), 100);
    c.client_send(&cmd(&["CLIENT", "REPLY", "ON"]), 100);
    c.server_send(b"+OK\r\n", 500);
    c.client_send(&cmd(&["CLIENT", "REPLY", "SKIP"]), 100);
    c.client_send(&cmd(&["DEL", "skipped"]), 100);
    c.client_send(&cmd(&["GET", "a"]), 100);
    c.server_send(b"$1\r\n2\r\n", 500);
    let es = run(c);
    let got: Vec<_> = es
        .iter()
        .map(|e| {
            (
                r(e).command.as_deref().unwrap().to_string(),
                r(e).reply_type(),
                r(e).flags,
            )
        })
        .collect();
    let t = redis_flags::TRANSACTION;
    let n = redis_flags::NO_REPLY_EXPECTED;
    assert_eq!(
        got,
        vec![
            ("MULTI".into(), Some("simple_string"), 0),
            ("SET".into(), Some("simple_string"), t),
            ("INCR".into(), Some("simple_string"), t),
            ("EXEC".into(), Some("array"), 0),
            ("CLIENT".into(), None, n),
            ("SET".into(), None, n),
            ("CLIENT".into(), Some("simple_string"), 0),
            ("CLIENT".into(), None, n),
            ("DEL".into(), None, n),
            ("GET".into(), Some("bulk_string"), 0),
        ]
    );
}

#[test]
fn a_big_reply_streams_through_and_a_gap_inside_it_keeps_the_pairing() {
    let mut c = conv(40007).with_mss(1000);
    c.client_send(&cmd(&["GET", "big"]), 100);
    let body = "B".repeat(500_000);
    c.server_send(format!("${}\r\n{body}\r\n", body.len()).as_bytes(), 500);
    c.client_send(&cmd(&["GET", "next"]), 100);
    c.server_send(b"$2\r\nok\r\n", 500);
    c.close();
    // Drop the 100th segment of the payload.
    let mut body_segments = 0;
    let packets: Vec<_> = c
        .packets()
        .into_iter()
        .filter(|p| {
            if p.data.len() > 1000 && p.data.ends_with(b"BBBBBBBB") {
                body_segments += 1;
                return body_segments != 100;
            }
            true
        })
        .collect();
    assert!(body_segments > 100);
    let (es, shared) = run_packets(packets, Limits::default());
    assert_eq!(
        rows(&es),
        vec![row("GET", "big", "bulk_string"), row("GET", "next", "bulk_string")]
    );
    let big = r(&es[0]);
    let reply = big.reply.as_ref().unwrap();
    assert_eq!(
        (reply.len, reply.text.as_ref().unwrap().len()),
        (500_000, 128),
        "kept value is cut"
    );
    assert!(big.flags & redis_flags::GAP != 0 && big.flags & redis_flags::TRUNCATED != 0);
    let st = shared.stats.lock().clone();
    assert_eq!((st.dissect.redis_parse_errors, st.dissect.redis_resyncs), (0, 0));
}

#[test]
fn a_gap_between_messages_resyncs_and_unpairs() {
    let mut c = conv(40008);
    c.client_send(&cmd(&["GET", "a"]), 100);
    c.server_send(b"$1\r\n1\r\n", 500);
    c.client_send(&cmd(&["GET", "b"]), 100);
    c.server_send(b"*2\r\n:1\r\n:2\r\n", 500);
    c.client_send(&cmd(&["GET", "c"]), 100);
    c.server_send(b"$1\r\n3\r\n", 500);
    c.close();
    let packets: Vec<_> = c
        .packets()
        .into_iter()
        .filter(|p| !p.data.ends_with(b"*2\r\n:1\r\n:2\r\n"))
        .collect();
    let (es, shared) = run_packets(packets, Limits::default());
    assert_eq!(
        rows(&es),
        vec![
            row("GET", "a", "bulk_string"),
            (Some("GET".into()), Some("b".into()), None),
            row("GET", "c", "bulk_string")
        ]
    );
    assert!(r(&es[1]).flags & redis_flags::GAP != 0);
    assert_eq!(shared.stats.lock().dissect.redis_resyncs, 1);
}

#[test]
fn mid_connection_capture_finds_the_client_by_content() {
    // No handshake, and the first bytes seen are a reply from the server to the low port.
    let mut c = Conversation::new(
        "10.0.0.9:6000".parse().unwrap(),
        "10.0.0.8:50000".parse().unwrap(),
        Timestamp::from_secs_nanos(1_700_000_000, 0),
        1_000,
        1,
        1,
    );
    c.server_send(b"+OK\r\n", 100);
    c.client_send(&cmd(&["GET", "x"]), 100);
    c.server_send(b"$1\r\ny\r\n", 100);
    let es = run(c);
    assert_eq!(rows(&es), vec![push("simple_string"), row("GET", "x", "bulk_string")]);
    assert!(r(&es[0]).flags & redis_flags::NO_REQUEST != 0);
    assert_eq!(
        es[1].src.to_string(),
        "10.0.0.9:6000",
        "the side sending commands is the client"
    );
}

#[test]
fn caps_hold_against_hostile_input() {
    let limits = Limits {
        redis_max_pending: 4,
        redis_max_args: 3,
        ..Limits::default()
    };
    let mut c = conv(40009);
    let mut many = Vec::new();
    for i in 0..10 {
        many.extend(cmd(&["SET", &format!("k{i}"), "v", "EX", "10"]));
    }
    c.client_send(&many, 100);
    c.server_send(&b"+OK\r\n".repeat(4), 500);
    c.client_send(&cmd(&["LRANGE", "deep", "0", "-1"]), 100);
    c.server_send(&b"*1\r\n".repeat(100_000), 500);
    c.client_send(&cmd(&["GET", "after"]), 100);
    c.server_send(b"$1\r\nz\r\n", 500);
    let (es, shared) = run_packets(c.packets(), limits);
    let st = shared.stats.lock().clone().dissect;
    assert_eq!(st.redis_pipeline_overflows, 6);
    assert!(st.redis_depth_exceeded >= 1);
    assert_eq!(es.len(), 12);
    let first = r(&es[0]);
    assert_eq!(
        (first.args.len(), first.arg_count),
        (2, 4),
        "arguments beyond redis_max_args are counted"
    );
    assert!(first.flags & redis_flags::PIPELINE_OVERFLOW != 0 && first.reply.is_none());
    assert_eq!(rows(&es[6..7]), vec![row("SET", "k6", "simple_string")]);
    let deep = r(&es[10]);
    assert_eq!(
        (deep.command.as_deref(), deep.reply_type()),
        (Some("LRANGE"), Some("array"))
    );
    assert!(deep.flags & redis_flags::REPLY_INCOMPLETE != 0);
    assert_eq!(
        rows(&es[11..]),
        vec![row("GET", "after", "bulk_string")],
        "parsing resumes"
    );
}

#[test]
fn not_redis_is_left_alone() {
    let mut c = conv(40010);
    c.server_send(b"+OK POP3 server ready\r\n", 100);
    c.client_send(b"USER bob\r\n", 100);
    c.server_send(b"+OK send PASS\r\n", 100);
    let (es, shared) = run_packets(c.packets(), Limits::default());
    assert!(es.is_empty(), "{es:?}");
    assert!(!shared.stats.lock().dissect.connections.contains_key("redis"));
}
