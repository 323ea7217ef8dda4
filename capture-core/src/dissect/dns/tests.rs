//! DNS: the parser on hand-built messages (compression, loops, truncation, EDNS0), then UDP
//! datagrams and TCP conversations through the engine (pairing, retries, timeouts, framing).

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;

use super::parse::{self, Caps, Error, NameError, problems};
use super::{DnsEntry, dns_flags};
use crate::dissect::Probe;
use crate::engine::{Engine, Shared};
use crate::entry::{Entry, Protocol, Transport};
use crate::fields::{self, Value};
use crate::limits::Limits;
use crate::store::Order;
use crate::synth::conversation::{Conversation, LINK};
use crate::synth::packet::{UdpSpec, udp_frame};
use crate::time::Timestamp;

const CAPS: Caps = Caps {
    max_pointer_hops: 128,
    max_questions: 8,
    max_records: 64,
};

// ---------------------------------------------------------------------------------------------
// Building messages.

fn name(n: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for l in n.split('.').filter(|l| !l.is_empty()) {
        v.push(l.len() as u8);
        v.extend_from_slice(l.as_bytes());
    }
    v.push(0);
    v
}

fn header(id: u16, flags: u16, qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
    [id, flags, qd, an, ns, ar]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .collect()
}

fn query(id: u16, qname: &str, qtype: u16) -> Vec<u8> {
    let mut m = header(id, 0x0100, 1, 0, 0, 0);
    m.extend(name(qname));
    m.extend(qtype.to_be_bytes());
    m.extend(1u16.to_be_bytes());
    m
}

/// A response whose answers all point back at the question name (`0xc00c`).
fn response(id: u16, qname: &str, qtype: u16, rcode: u16, answers: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut m = header(id, 0x8180 | rcode, 1, answers.len() as u16, 0, 0);
    m.extend(name(qname));
    m.extend(qtype.to_be_bytes());
    m.extend(1u16.to_be_bytes());
    for (rtype, rdata) in answers {
        m.extend([0xc0, 0x0c]);
        m.extend(rtype.to_be_bytes());
        m.extend(1u16.to_be_bytes());
        m.extend(300u32.to_be_bytes());
        m.extend((rdata.len() as u16).to_be_bytes());
        m.extend(rdata);
    }
    m
}

/// Appends an OPT record (EDNS0, 1232-byte payload, DO set) with these options.
fn with_opt(mut m: Vec<u8>, options: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let ar = u16::from_be_bytes([m[10], m[11]]) + 1;
    m[10..12].copy_from_slice(&ar.to_be_bytes());
    let data: Vec<u8> = options
        .iter()
        .flat_map(|(code, v)| {
            let mut o = code.to_be_bytes().to_vec();
            o.extend((v.len() as u16).to_be_bytes());
            o.extend(v);
            o
        })
        .collect();
    m.push(0);
    m.extend(41u16.to_be_bytes());
    m.extend(1232u16.to_be_bytes());
    m.extend(0x0000_8000u32.to_be_bytes());
    m.extend((data.len() as u16).to_be_bytes());
    m.extend(data);
    m
}

fn a(ip: [u8; 4]) -> (u16, Vec<u8>) {
    (1, ip.to_vec())
}

// ---------------------------------------------------------------------------------------------
// The parser.

#[test]
fn compression_pointers_and_record_data() {
    let mut cname = name("edge");
    cname.pop();
    cname.extend([0xc0, 0x0c]); // edge.<question name>
    let m = response(
        0x1234,
        "www.Example.com",
        1,
        0,
        &[
            (5, cname),
            a([93, 184, 216, 34]),
            (28, vec![0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        ],
    );
    let p = parse::parse(&m, &CAPS).unwrap();
    assert_eq!((p.header.id, p.header.rcode(), p.header.ancount), (0x1234, 0, 3));
    assert_eq!(p.questions[0].name, "www.Example.com");
    let answers: Vec<(&str, u16, &str)> = p
        .answers
        .iter()
        .map(|r| (r.name.as_str(), r.rtype, r.data.as_str()))
        .collect();
    assert_eq!(
        answers,
        [
            ("www.Example.com", 5, "edge.www.Example.com"),
            ("www.Example.com", 1, "93.184.216.34"),
            ("www.Example.com", 28, "2001:db8::1"),
        ]
    );
    assert_eq!(p.problems, 0);
}

#[test]
fn common_record_types_render_as_text() {
    let mut mx = 10u16.to_be_bytes().to_vec();
    mx.extend(name("mail.example.com"));
    let mut srv = [0u16, 5, 5060]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .collect::<Vec<u8>>();
    srv.extend(name("sip.example.com"));
    let txt = [&[11u8][..], b"v=spf1 -all", &[2], b"ok"].concat();
    let mut soa = name("ns.example.com");
    soa.extend(name("admin.example.com"));
    soa.extend(
        [2024u32, 7200, 3600, 1_209_600, 300]
            .iter()
            .flat_map(|w| w.to_be_bytes()),
    );
    let m = response(
        15,
        "example.com",
        255,
        0,
        &[
            (15, mx),
            (33, srv),
            (16, txt),
            (12, name("host.example.com")),
            (6, soa),
            (65280, vec![1, 2, 3]),
        ],
    );
    let p = parse::parse(&m, &CAPS).unwrap();
    let data: Vec<&str> = p.answers.iter().map(|r| r.data.as_str()).collect();
    assert_eq!(data[0], "10 mail.example.com");
    assert_eq!(data[1], "0 5 5060 sip.example.com");
    assert!(data[2].contains("v=spf1 -all") && data[2].contains("ok"), "{}", data[2]);
    assert_eq!(data[3], "host.example.com");
    assert!(
        data[4].starts_with("ns.example.com. admin.example.com. 2024"),
        "{}",
        data[4]
    );
    assert!(!data[5].is_empty(), "unknown types still show their data");
    assert_eq!(p.problems, 0);
    assert_eq!(parse::type_text(65280), "TYPE65280");
}

#[test]
fn pointer_loops_stop_and_are_flagged() {
    // The question's name is a pointer to itself.
    let mut m = header(7, 0x0100, 1, 0, 0, 0);
    m.extend([0xc0, 0x0c, 0, 1, 0, 1]);
    assert_eq!(parse::parse(&m, &CAPS), Err(Error::Question(NameError::PointerLoop)));
    assert!(!parse::probe_udp(&m));
    // Two answer names pointing at each other.
    let mut r = response(8, "a.example", 1, 0, &[]);
    r[7] = 2; // ANCOUNT
    let at = r.len() as u16;
    r.extend((0xc000 | (at + 12)).to_be_bytes());
    r.extend([0, 1, 0, 1, 0, 0, 0, 60, 0, 0]);
    r.extend((0xc000 | at).to_be_bytes());
    r.extend([0, 1, 0, 1, 0, 0, 0, 60, 0, 0]);
    let p = parse::parse(&r, &CAPS).unwrap();
    assert_eq!(p.questions[0].name, "a.example", "the question survives");
    assert_ne!(p.problems & problems::POINTER_LOOP, 0);
    assert_eq!(parse::read_name(&r, at as usize, 128), Err(NameError::PointerLoop));
    // Hop caps also stop long honest-looking chains.
    assert_eq!(parse::read_name(&r, at as usize, 1), Err(NameError::PointerLoop));
}

#[test]
fn bad_labels_and_over_long_names() {
    let mut m = header(9, 0x0100, 1, 0, 0, 0);
    m.extend([0x41, b'x', 0, 0, 1, 0, 1]);
    assert_eq!(parse::parse(&m, &CAPS), Err(Error::Question(NameError::BadLabel)));
    let long = vec!["a".repeat(63); 5].join(".");
    let m = query(10, &long, 1);
    assert_eq!(parse::parse(&m, &CAPS), Err(Error::Question(NameError::TooLong)));
    assert_eq!(parse::parse(&m[..5], &CAPS), Err(Error::Short));
}

#[test]
fn truncated_messages_keep_their_question() {
    let full = response(11, "cut.example", 1, 0, &[a([10, 0, 0, 1]), a([10, 0, 0, 2])]);
    for cut in 12..full.len() {
        let r = parse::parse(&full[..cut], &CAPS);
        let question_end = 12 + name("cut.example").len() + 4;
        if cut < question_end {
            assert!(r.is_err(), "cut {cut}");
        } else {
            let p = r.unwrap();
            assert_eq!(p.questions[0].name, "cut.example");
            assert_ne!(p.problems & problems::MALFORMED_RECORDS, 0, "cut {cut}");
            assert_eq!(p.header.ancount, 2, "the header count stays exact");
        }
    }
    assert_eq!(parse::parse(&full, &CAPS).unwrap().problems, 0);
}

#[test]
fn edns_client_subnet_and_extended_rcode() {
    let q = with_opt(
        query(12, "geo.example", 1),
        &[(8, vec![0, 1, 24, 0, 192, 0, 2]), (10, vec![1; 8])],
    );
    let p = parse::parse(&q, &CAPS).unwrap();
    let e = p.edns.unwrap();
    assert_eq!((e.udp_payload_size, e.dnssec_ok, e.version), (1232, true, 0));
    assert_eq!(e.options, [8, 10]);
    assert_eq!(e.client_subnet.as_deref(), Some("192.0.2.0/24/0"));
    let q6 = with_opt(
        query(13, "geo.example", 28),
        &[(8, vec![0, 2, 56, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0])],
    );
    let e6 = parse::parse(&q6, &CAPS).unwrap().edns.unwrap();
    assert_eq!(e6.client_subnet.as_deref(), Some("2001:db8::/56/0"));
    // BADVERS: RCODE 16 = extended 1 << 4.
    let mut r = with_opt(response(12, "geo.example", 1, 0, &[]), &[]);
    let ttl_at = r.len() - 2 - 4;
    r[ttl_at] = 1;
    let p = parse::parse(&r, &CAPS).unwrap();
    assert_eq!(p.edns.unwrap().extended_rcode, 1);
    assert_eq!(parse::rcode_name(16), "BADVERS");
}

#[test]
fn names_print_as_tshark_prints_them() {
    assert_eq!(parse::name_text(b""), "<Root>");
    assert_eq!(parse::name_text(b"a b.com"), "a b.com");
    assert_eq!(parse::name_text("café.com".as_bytes()), "café.com");
    assert_eq!(
        parse::name_text(b"\x07\x08\t\n\x0b\x0c\r\x7f\x1b.com"),
        "\\a\\b\\t\\n\\v\\f\\r\\177\\033.com"
    );
    assert_eq!(parse::name_text(b"\xff\xfe.com"), "\u{fffd}\u{fffd}.com");
    let root = parse::parse(&query(1, "", 2), &CAPS).unwrap();
    assert_eq!(root.questions[0].name, "<Root>");
}

#[test]
fn caps_on_questions_and_records() {
    let answers: Vec<_> = (0..100).map(|i| a([10, 0, 0, i as u8])).collect();
    let m = response(14, "many.example", 1, 0, &answers);
    let p = parse::parse(
        &m,
        &Caps {
            max_records: 10,
            ..CAPS
        },
    )
    .unwrap();
    assert_eq!((p.answers.len(), p.header.ancount), (10, 100));
    assert_ne!(p.problems & problems::RECORDS_CAPPED, 0);
    assert_eq!(p.answers[9].data, "10.0.0.9");
}

#[test]
fn probes() {
    let q = query(0xbeef, "api.shop.svc.cluster.local", 28);
    assert!(parse::probe_udp(&q));
    assert!(parse::probe_udp(&response(1, "x.example", 1, 3, &[])));
    // Every prefix of a TCP message needs more until the first question is whole.
    let mut tcp = (q.len() as u16).to_be_bytes().to_vec();
    tcp.extend(&q);
    let question_end = 2 + 12 + name("api.shop.svc.cluster.local").len() + 4;
    for n in 0..tcp.len() {
        let want = if n < question_end {
            Probe::NeedMore
        } else {
            Probe::Match
        };
        assert_eq!(parse::probe_tcp(&tcp[..n]), want, "prefix {n}");
    }
    // NetBIOS name service has the same header; its names are 32 letters A-P.
    let mut nb = header(1, 0x0110, 1, 0, 0, 0);
    nb.push(32);
    nb.extend(b"CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    nb.extend([0, 0, 0x21, 0, 1]);
    assert!(!parse::probe_udp(&nb));
    // Other traffic.
    assert!(!parse::probe_udp(
        b"\x1b\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    ));
    assert!(!parse::probe_udp(
        b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\r\n"
    ));
    assert_eq!(
        parse::probe_tcp(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x9a\x4b\x11\x22"),
        Probe::NoMatch
    );
    assert_eq!(parse::probe_tcp(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), Probe::NoMatch);
    // No question (a FORMERR with only an OPT record): accepted because all of it parses.
    let formerr = with_opt(header(3, 0x8101, 0, 0, 0, 0), &[]);
    assert!(parse::probe_udp(&formerr));
    assert!(!parse::probe_udp(&formerr[..formerr.len() - 1]));
    assert!(
        !parse::probe_udp(&header(3, 0x8101, 0, 0, 0, 0)),
        "a bare header is no evidence"
    );
    let mut bad_class = query(2, "x.example", 1);
    let n = bad_class.len();
    bad_class[n - 1] = 9;
    assert!(!parse::probe_udp(&bad_class));
}

// ---------------------------------------------------------------------------------------------
// Through the engine.

const CLIENT: &str = "10.1.0.5:40123";
const SERVER: &str = "10.1.0.53:10053";

fn t(ms: u64) -> Timestamp {
    Timestamp::from_secs_nanos(1_700_000_000, 0).plus_ms(ms)
}

trait PlusMs {
    fn plus_ms(self, ms: u64) -> Timestamp;
}

impl PlusMs for Timestamp {
    fn plus_ms(self, ms: u64) -> Timestamp {
        Timestamp(self.0 + ms * 1_000_000)
    }
}

/// A datagram `payload` at `ms`, from the client (`up`) or the server.
fn dgram(ms: u64, up: bool, payload: &[u8]) -> (Timestamp, Vec<u8>) {
    let (c, s): (SocketAddr, SocketAddr) = (CLIENT.parse().unwrap(), SERVER.parse().unwrap());
    let (src, dst) = if up { (c, s) } else { (s, c) };
    (
        t(ms),
        udp_frame(&UdpSpec {
            src,
            dst,
            ip_id: ms as u16,
            payload,
        }),
    )
}

fn replay(packets: &[(Timestamp, Vec<u8>)], limits: Limits) -> (Vec<Arc<Entry>>, Shared) {
    let shared = Shared::with_limits(&limits);
    let mut engine = Engine::new(limits, shared.clone());
    let mut sorted = packets.to_vec();
    sorted.sort_by_key(|p| p.0);
    engine.replay("test", LINK, &sorted);
    let mut v = Vec::new();
    shared.store.scan(Order::Asc, None, &mut |e| {
        v.push(e.clone());
        ControlFlow::Continue(())
    });
    (v, shared)
}

fn d(e: &Entry) -> &DnsEntry {
    e.dns().expect("a dns entry")
}

/// (id, qname, rcode, answer count) of each entry.
fn rows(es: &[Arc<Entry>]) -> Vec<(u16, String, Option<u8>, Option<u16>)> {
    es.iter()
        .map(|e| {
            let d = d(e);
            (d.id, d.qname().unwrap_or("").to_string(), d.rcode(), d.answer_count())
        })
        .collect()
}

fn field<'a>(e: &'a Entry, name: &str) -> Value<'a> {
    (fields::lookup(name).expect(name).get)(e)
}

#[test]
fn udp_queries_pair_with_responses_on_any_port() {
    let packets = [
        dgram(0, true, &query(1, "a.example", 1)),
        dgram(1, true, &query(2, "b.example", 28)),
        dgram(5, false, &response(2, "b.example", 28, 0, &[])),
        dgram(
            9,
            false,
            &response(1, "a.example", 1, 0, &[a([10, 0, 0, 1]), a([10, 0, 0, 2])]),
        ),
        dgram(20, true, &query(3, "missing.example", 1)),
        dgram(24, false, &response(3, "missing.example", 1, 3, &[])),
    ];
    let (es, _) = replay(&packets, Limits::default());
    assert_eq!(
        rows(&es),
        vec![
            (1, "a.example".into(), Some(0), Some(2)),
            (2, "b.example".into(), Some(0), Some(0)),
            (3, "missing.example".into(), Some(3), Some(0)),
        ]
    );
    let e = &es[0];
    assert_eq!((e.protocol, e.transport), (Protocol::Dns, Transport::Udp));
    assert_eq!(
        (e.src.to_string(), e.dst.to_string()),
        (CLIENT.to_string(), SERVER.to_string())
    );
    assert_eq!(e.elapsed_us, Some(9_000));
    assert_eq!(
        field(e, "dns_answers"),
        Value::List(vec![Value::Str("10.0.0.1".into()), Value::Str("10.0.0.2".into())])
    );
    assert_eq!(
        field(e, "dns_question_types"),
        Value::List(vec![Value::Str("A".into())])
    );
    assert_eq!(field(e, "dns_id"), Value::Int(1));
    assert_eq!(field(&es[2], "dns_rcode_name"), Value::Str("NXDOMAIN".into()));
    assert_eq!(field(&es[2], "dns_request"), Value::Bool(true));
    assert_eq!(es[2].summary(), "A missing.example → NXDOMAIN, 0 answers (4.0 ms)");
    let f = crate::kfl::compile(r#"dns && udp && dns_rcode == 3 && "missing.example" in dns_questions"#).unwrap();
    let cx = crate::kfl::EvalContext::new(t(60_000));
    let hits: Vec<u16> = es.iter().filter(|e| f.matches(e, &cx)).map(|e| d(e).id).collect();
    assert_eq!(hits, [3]);
}

#[test]
fn unanswered_queries_timeouts_and_lone_responses() {
    let packets = [
        dgram(0, true, &query(10, "slow.example", 1)),
        // A different query 40 s later: the first has timed out by then.
        dgram(40_000, true, &query(11, "next.example", 1)),
        dgram(40_002, false, &response(11, "next.example", 1, 0, &[a([1, 2, 3, 4])])),
        // A response whose query the capture missed.
        dgram(40_100, false, &response(12, "early.example", 1, 2, &[])),
        // Unanswered at the end of the capture.
        dgram(40_200, true, &query(13, "last.example", 16)),
    ];
    let (es, shared) = replay(&packets, Limits::default());
    assert_eq!(
        rows(&es),
        vec![
            (10, "slow.example".into(), None, None),
            (11, "next.example".into(), Some(0), Some(1)),
            (12, "early.example".into(), Some(2), Some(0)),
            (13, "last.example".into(), None, None),
        ]
    );
    assert!(d(&es[0]).flags & dns_flags::TIMED_OUT != 0);
    assert!(d(&es[3]).flags & dns_flags::NO_RESPONSE != 0 && d(&es[3]).flags & dns_flags::TIMED_OUT == 0);
    assert_eq!(field(&es[0], "dns_rcode"), Value::Null);
    assert_eq!(field(&es[0], "dns_answer_count"), Value::Null);
    assert_eq!(field(&es[0], "dns_answers"), Value::Null);
    let lone = &es[2];
    assert!(d(lone).flags & dns_flags::NO_QUERY != 0);
    assert_eq!(lone.src.to_string(), CLIENT, "the requester is the response's receiver");
    assert_eq!(field(lone, "dns_request"), Value::Bool(false));
    assert_eq!(shared.stats.lock().dissect.dns_unanswered, 2);
}

#[test]
fn retransmissions_and_retries() {
    let packets = [
        // Repeated within 5 s: a retransmission; the response goes to the first (as tshark).
        dgram(0, true, &query(20, "flaky.example", 1)),
        dgram(1_000, true, &query(20, "flaky.example", 1)),
        dgram(1_500, false, &response(20, "flaky.example", 1, 0, &[a([9, 9, 9, 9])])),
        // Repeated after 5 s: a new attempt; the first is unanswered.
        dgram(10_000, true, &query(21, "dead.example", 48)),
        dgram(15_001, true, &query(21, "dead.example", 48)),
        dgram(15_050, false, &response(21, "dead.example", 48, 0, &[])),
    ];
    let (es, shared) = replay(&packets, Limits::default());
    assert_eq!(
        rows(&es),
        vec![
            (20, "flaky.example".into(), Some(0), Some(1)),
            (20, "flaky.example".into(), None, None),
            (21, "dead.example".into(), None, None),
            (21, "dead.example".into(), Some(0), Some(0)),
        ]
    );
    assert!(d(&es[1]).flags & dns_flags::RETRANSMISSION != 0);
    assert!(d(&es[2]).flags & dns_flags::TIMED_OUT != 0);
    assert_eq!(es[3].elapsed_us, Some(49_000));
    assert_eq!(shared.stats.lock().dissect.dns_retransmissions, 1);
}

#[test]
fn a_pointer_loop_in_an_active_flow_is_an_entry_flagged_malformed() {
    let mut looped = header(30, 0x8180, 1, 0, 0, 0);
    looped.extend([0xc0, 0x0c, 0, 1, 0, 1]);
    let packets = [
        dgram(0, true, &query(29, "ok.example", 1)),
        dgram(1, false, &response(29, "ok.example", 1, 0, &[])),
        dgram(2, false, &looped),
        dgram(3, true, b"not dns"),
    ];
    let (es, shared) = replay(&packets, Limits::default());
    assert_eq!(es.len(), 2);
    let bad = d(&es[1]);
    assert_eq!((bad.id, bad.qname()), (30, None));
    assert!(bad.flags & dns_flags::MALFORMED != 0);
    assert_ne!(bad.response.as_ref().unwrap().problems & problems::POINTER_LOOP, 0);
    let st = shared.stats.lock().dissect.clone();
    assert_eq!((st.dns_pointer_loops, st.dns_malformed), (1, 2));
}

#[test]
fn multicast_name_resolution_is_not_dns() {
    let mdns = |ms: u64, payload: &[u8]| {
        (
            t(ms),
            udp_frame(&UdpSpec {
                src: "10.1.0.7:5353".parse().unwrap(),
                dst: "224.0.0.251:5353".parse().unwrap(),
                ip_id: 1,
                payload,
            }),
        )
    };
    let (es, _) = replay(&[mdns(0, &query(0, "printer.local", 12))], Limits::default());
    assert!(es.is_empty(), "mDNS (and LLMNR) are their own protocols: {es:?}");
}

fn tcp_conv(port: u16) -> Conversation {
    let mut c = Conversation::new(
        format!("10.2.0.1:{port}").parse().unwrap(),
        "10.2.0.53:8853".parse().unwrap(),
        t(0),
        1_000,
        100,
        900,
    );
    c.handshake();
    c
}

fn framed(msgs: &[Vec<u8>]) -> Vec<u8> {
    msgs.iter()
        .flat_map(|m| {
            let mut v = (m.len() as u16).to_be_bytes().to_vec();
            v.extend(m);
            v
        })
        .collect()
}

fn run_tcp(c: Conversation) -> (Vec<Arc<Entry>>, Shared) {
    let pk: Vec<(Timestamp, Vec<u8>)> = c.packets().into_iter().map(|p| (p.ts, p.data)).collect();
    replay(&pk, Limits::default())
}

#[test]
fn tcp_several_messages_per_segment_and_out_of_order_answers() {
    let mut c = tcp_conv(50000);
    let queries: Vec<Vec<u8>> = (0..20).map(|i| query(i, &format!("{i}.google.com"), 1)).collect();
    c.client_send(&framed(&queries), 100);
    let answers: Vec<Vec<u8>> = (0..20)
        .rev()
        .map(|i| response(i, &format!("{i}.google.com"), 1, 3, &[]))
        .collect();
    c.server_send(&framed(&answers), 1_000);
    c.close();
    let (es, _) = run_tcp(c);
    assert_eq!(es.len(), 20);
    let mut got = rows(&es);
    got.sort();
    let want: Vec<_> = (0..20u16)
        .map(|i| (i, format!("{i}.google.com"), Some(3), Some(0)))
        .collect();
    assert_eq!(got, want);
    assert!(
        es.iter()
            .all(|e| e.transport == Transport::Tcp && e.src.port() == 50000)
    );
}

#[test]
fn tcp_one_message_split_at_every_point() {
    let q = query(0x5e63, "google.com", 1);
    let r = response(0x5e63, "google.com", 1, 0, &[a([142, 250, 0, 1])]);
    let (fq, fr) = (framed(&[q]), framed(&[r]));
    for cut in 1..fq.len() {
        let mut c = tcp_conv(51000 + cut as u16);
        c.client_send(&fq[..cut], 100);
        c.client_send(&fq[cut..], 100);
        let rcut = cut % fr.len();
        c.server_send(&fr[..rcut], 500);
        c.server_send(&fr[rcut..], 100);
        let (es, _) = run_tcp(c);
        assert_eq!(
            rows(&es),
            vec![(0x5e63, "google.com".into(), Some(0), Some(1))],
            "cut {cut}"
        );
    }
}

#[test]
fn tcp_gap_inside_a_message_skips_to_the_next() {
    let mut c = tcp_conv(52000).with_mss(100);
    c.client_send(&framed(&[query(1, "big.example", 16)]), 100);
    let txt: Vec<u8> = std::iter::once(250u8).chain(std::iter::repeat_n(b't', 250)).collect();
    c.server_send(&framed(&[response(1, "big.example", 16, 0, &[(16, txt)])]), 500);
    c.client_send(&framed(&[query(2, "after.example", 1)]), 100);
    c.server_send(&framed(&[response(2, "after.example", 1, 0, &[a([1, 1, 1, 1])])]), 500);
    c.close();
    let packets: Vec<(Timestamp, Vec<u8>)> = c
        .packets()
        .into_iter()
        .filter(|p| !(p.data.len() > 100 && p.data.ends_with(b"tttttttt") && !p.data.windows(3).any(|w| w == b"big")))
        .map(|p| (p.ts, p.data))
        .collect();
    let (es, shared) = replay(&packets, Limits::default());
    assert_eq!(
        rows(&es),
        vec![
            (1, "big.example".into(), None, None),
            (2, "after.example".into(), Some(0), Some(1))
        ]
    );
    assert_eq!(shared.stats.lock().dissect.dns_messages_lost, 1);
}

#[test]
fn dns_over_https_in_http1() {
    let q = query(0, "doh.example", 1);
    let r = response(0, "doh.example", 1, 0, &[a([192, 0, 2, 7])]);
    let mut c = tcp_conv(53000);
    let mut req = format!(
        "POST /dns-query HTTP/1.1\r\nHost: dns.example\r\nContent-Type: application/dns-message\r\nContent-Length: {}\r\n\r\n",
        q.len()
    )
    .into_bytes();
    req.extend(&q);
    c.client_send(&req, 100);
    let mut resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/dns-message\r\nContent-Length: {}\r\n\r\n",
        r.len()
    )
    .into_bytes();
    resp.extend(&r);
    c.server_send(&resp, 500);
    // GET carries the query base64url-encoded in the `dns` parameter.
    let b64 = "AAABAAABAAAAAAAAA2RvaAdleGFtcGxlAAABAAE";
    assert_eq!(super::doh::base64url_decode(b64).unwrap(), query(0, "doh.example", 1));
    c.client_send(
        format!("GET /dns-query?dns={b64} HTTP/1.1\r\nHost: dns.example\r\n\r\n").as_bytes(),
        100,
    );
    c.server_send(&resp, 500);
    let (es, shared) = run_tcp(c);
    let dns: Vec<_> = es.iter().filter(|e| e.protocol == Protocol::Dns).cloned().collect();
    assert_eq!(es.len() - dns.len(), 2, "the HTTP entries stay");
    assert_eq!(rows(&dns), vec![(0, "doh.example".into(), Some(0), Some(1)); 2]);
    assert!(
        dns.iter()
            .all(|e| d(e).query.is_some() && e.transport == Transport::Tcp)
    );
    assert_eq!(shared.stats.lock().dissect.dns_over_https, 2);
}
