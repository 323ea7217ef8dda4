//! The HTTP/1 state machine end to end: synthetic TCP conversations go through the engine
//! (decode → flow table → reassembly → dissector → store) and the entries are checked.

use std::sync::Arc;

use crate::engine::Shared;
use crate::entry::{Entry, http_flags};
use crate::limits::Limits;
use crate::synth::conversation::{Conversation, SynthPacket};
use crate::time::Timestamp;

fn conv(port: u16) -> Conversation {
    let mut c = Conversation::new(
        format!("10.0.0.1:{port}").parse().unwrap(),
        "10.0.0.2:9999".parse().unwrap(),
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
    run_packets(c.packets(), Limits::default()).0
}

fn line(e: &Entry) -> (String, String, Option<u16>, Option<u64>, Option<u64>) {
    let h = e.http().unwrap();
    (
        h.method.as_deref().unwrap_or("").to_string(),
        h.path.as_deref().unwrap_or("").to_string(),
        h.status,
        e.request_body_size(),
        e.response_body_size(),
    )
}

fn resp(status: &str, body: &str) -> String {
    format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}", body.len())
}

#[test]
fn keep_alive_requests_pair_in_order_on_any_port() {
    let mut c = conv(40000);
    for i in 0..3 {
        c.client_send(format!("GET /item/{i} HTTP/1.1\r\nHost: shop\r\n\r\n").as_bytes(), 100);
        c.server_send(resp("200 OK", &"x".repeat(i * 10)).as_bytes(), 2_000);
    }
    c.close();
    let es = run(c);
    assert_eq!(es.len(), 3);
    for (i, e) in es.iter().enumerate() {
        assert_eq!(
            line(e),
            (
                "GET".into(),
                format!("/item/{i}"),
                Some(200),
                Some(0),
                Some(i as u64 * 10)
            )
        );
        assert_eq!(e.src.to_string(), "10.0.0.1:40000");
        assert_eq!(e.dst.port(), 9999, "found by content on a port no one expects");
        let h = e.http().unwrap();
        assert!(e.elapsed_us.unwrap() >= 2_000 && h.ttfb_us.unwrap() >= 2_000);
        assert_eq!(h.flags, 0);
        assert_eq!(h.host.as_deref(), Some("shop"));
    }
}

#[test]
fn repeated_texts_read_back_and_shared_ones_are_charged_in_parts() {
    let mut c = conv(40010);
    for (method, host, status) in [
        ("GET", "shop", "200 OK"),
        ("GET", "shop", "200 OK"),
        ("PUT", "cart", "200 OX"),
    ] {
        c.client_send(format!("{method} /a HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(), 100);
        c.server_send(resp(status, "").as_bytes(), 2_000);
    }
    c.close();
    let es = run(c);
    let texts: Vec<_> = es
        .iter()
        .map(|e| {
            let h = e.http().unwrap();
            (h.method.as_deref(), h.host.as_deref(), h.reason.as_deref())
        })
        .collect();
    assert_eq!(
        texts,
        [
            (Some("GET"), Some("shop"), Some("OK")),
            (Some("GET"), Some("shop"), Some("OK")),
            (Some("PUT"), Some("cart"), Some("OX"))
        ]
    );
    // An entry kept as it is (not packed by the store) is charged the whole of a text no other
    // entry holds, and a part of one it shares.
    let alone = es[2].memory_bytes();
    let twin = (*es[2]).clone();
    assert!(twin.memory_bytes() < alone, "{} {alone}", twin.memory_bytes());
}

#[test]
fn pipelined_requests_take_responses_in_order() {
    let mut c = conv(40001);
    let reqs: String = (0..4)
        .map(|i| format!("GET /p{i} HTTP/1.1\r\nHost: h\r\n\r\n"))
        .collect();
    c.client_send(reqs.as_bytes(), 100);
    let resps: String = (0..4).map(|i| resp("200 OK", &format!("r{i}"))).collect();
    c.server_send(resps.as_bytes(), 1_000);
    let es = run(c);
    let paths: Vec<_> = es.iter().map(|e| line(e).1).collect();
    assert_eq!(paths, ["/p0", "/p1", "/p2", "/p3"]);
    assert!(es.iter().all(|e| e.response_body_size() == Some(2)));
}

#[test]
fn chunked_with_trailers_and_post_bodies() {
    let mut c = conv(40002);
    c.client_send(
        b"POST /charge HTTP/1.1\r\nHost: pay\r\nContent-Length: 11\r\n\r\n{\"amt\":10}\n",
        100,
    );
    c.server_send(
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nabcd\r\n6\r\nefghij\r\n0\r\nX-Checksum: 42\r\n\r\n",
        500,
    );
    c.client_send(
        b"POST /upload HTTP/1.1\r\nHost: pay\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        100,
    );
    c.server_send(resp("200 OK", "ok").as_bytes(), 500);
    let es = run(c);
    assert_eq!(
        line(&es[0]),
        ("POST".into(), "/charge".into(), Some(201), Some(11), Some(10))
    );
    let r = es[0].http().unwrap().response.as_ref().unwrap();
    assert_eq!(&*r.body, b"abcdefghij");
    assert!(r.chunked && r.complete);
    assert_eq!(&*r.trailers, b"X-Checksum: 42\r\n");
    assert_eq!(
        line(&es[1]),
        ("POST".into(), "/upload".into(), Some(200), Some(3), Some(2))
    );
}

#[test]
fn close_delimited_http10_response() {
    let mut c = conv(40003);
    c.client_send(b"GET /healthz HTTP/1.0\r\n\r\n", 100);
    c.server_send(
        b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall good, nothing to see",
        500,
    );
    c.close_from_server();
    let es = run(c);
    assert_eq!(es.len(), 1);
    assert_eq!(es[0].protocol.name(), "http/1.0");
    assert_eq!(
        line(&es[0]),
        ("GET".into(), "/healthz".into(), Some(200), Some(0), Some(24))
    );
    assert!(es[0].http().unwrap().response.as_ref().unwrap().complete);
}

#[test]
fn no_body_responses_do_not_swallow_the_next_message() {
    let mut c = conv(40004);
    c.client_send(b"HEAD /big HTTP/1.1\r\nHost: h\r\n\r\n", 100);
    c.server_send(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", 500);
    c.client_send(b"DELETE /x HTTP/1.1\r\nHost: h\r\n\r\n", 100);
    c.server_send(b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", 500);
    c.client_send(b"GET /cached HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"a\"\r\n\r\n", 100);
    c.server_send(b"HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n", 500);
    c.client_send(b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n", 100);
    c.server_send(resp("200 OK", "fine").as_bytes(), 500);
    let es = run(c);
    let got: Vec<_> = es.iter().map(|e| line(e)).collect();
    assert_eq!(
        got,
        vec![
            ("HEAD".into(), "/big".into(), Some(200), Some(0), Some(0)),
            ("DELETE".into(), "/x".into(), Some(204), Some(0), Some(0)),
            ("GET".into(), "/cached".into(), Some(304), Some(0), Some(0)),
            ("GET".into(), "/after".into(), Some(200), Some(0), Some(4)),
        ]
    );
}

#[test]
fn expect_100_continue_records_the_interim_response() {
    let mut c = conv(40005);
    c.client_send(
        b"PUT /doc HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\nExpect: 100-continue\r\n\r\n",
        100,
    );
    c.server_send(b"HTTP/1.1 100 Continue\r\n\r\n", 500);
    c.client_send(b"12345678", 100);
    c.server_send(resp("201 Created", "").as_bytes(), 500);
    let es = run(c);
    assert_eq!(es.len(), 1);
    assert_eq!(line(&es[0]), ("PUT".into(), "/doc".into(), Some(201), Some(8), Some(0)));
    assert_eq!(es[0].http().unwrap().interim, vec![100]);
}

#[test]
fn upgrade_and_connect_stop_http_parsing() {
    let mut c = conv(40006);
    c.client_send(
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        100,
    );
    c.server_send(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        500,
    );
    c.client_send(b"\x81\x05GET / HTTP/1.1\r\n\r\n", 100);
    c.server_send(b"HTTP/1.1 200 OK\r\n\r\n", 100);
    let es = run(c);
    assert_eq!(es.len(), 1, "frames after the switch are not HTTP/1");
    let h = es[0].http().unwrap();
    assert_eq!((h.status, h.upgrade.as_deref()), (Some(101), Some("websocket")));
    assert!(h.flags & http_flags::UPGRADED != 0);

    let mut t = conv(40007);
    t.client_send(b"CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n", 100);
    t.server_send(b"HTTP/1.1 200 Connection Established\r\n\r\n", 500);
    t.client_send(b"GET / HTTP/1.1\r\n\r\n", 100);
    let es = run(t);
    assert_eq!(es.len(), 1);
    assert_eq!(line(&es[0]).0, "CONNECT");
}

#[test]
fn unanswered_request_and_response_without_request() {
    let mut c = conv(40008);
    c.client_send(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n", 100);
    let es = run(c);
    assert_eq!(line(&es[0]), ("GET".into(), "/slow".into(), None, Some(0), None));
    assert_eq!(es[0].elapsed_us, None);

    // A capture that starts after the request: the response alone is still an entry.
    let mut m = conv(40009);
    m.client_send(b"GET /early HTTP/1.1\r\nHost: h\r\n\r\n", 100);
    m.server_send(resp("503 Service Unavailable", "busy").as_bytes(), 500);
    let packets: Vec<_> = m
        .packets()
        .into_iter()
        .filter(|p| !contains(&p.data, b"GET /early"))
        .collect();
    let (es, _) = run_packets(packets, Limits::default());
    let h = es
        .iter()
        .find_map(|e| e.http().filter(|h| h.status.is_some()))
        .expect("response entry");
    assert_eq!(h.status, Some(503));
    assert!(h.flags & http_flags::NO_REQUEST != 0 || h.method.is_none());
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn gap_inside_a_body_keeps_the_size_and_the_next_exchange() {
    let mut c = conv(40010).with_mss(1000);
    c.client_send(b"GET /file HTTP/1.1\r\nHost: h\r\n\r\n", 100);
    let body = "B".repeat(3500);
    c.server_send(resp("200 OK", &body).as_bytes(), 500);
    c.client_send(b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n", 100);
    c.server_send(resp("404 Not Found", "nope").as_bytes(), 500);
    c.close();
    // Drop the second data segment of the response (bytes the capture missed).
    let mut dropped = false;
    let packets: Vec<_> = c
        .packets()
        .into_iter()
        .filter(|p| {
            let is_mid_body = p.data.len() > 1000 && contains(&p.data, b"BBBB") && !contains(&p.data, b"HTTP/1.1");
            if is_mid_body && !dropped {
                dropped = true;
                return false;
            }
            true
        })
        .collect();
    assert!(dropped);
    let (es, shared) = run_packets(packets, Limits::default());
    assert_eq!(es.len(), 2);
    assert_eq!(
        line(&es[0]),
        ("GET".into(), "/file".into(), Some(200), Some(0), Some(3500))
    );
    assert!(es[0].http().unwrap().flags & http_flags::GAP != 0);
    assert_eq!(
        line(&es[1]),
        ("GET".into(), "/next".into(), Some(404), Some(0), Some(4))
    );
    assert!(shared.stats.lock().reassembly.gap_bytes > 0);
}

#[test]
fn every_split_point_gives_the_same_entry() {
    let req = b"POST /orders HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let res = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let expect = ("POST".to_string(), "/orders".to_string(), Some(200), Some(5), Some(2));
    for cut in 1..req.len() {
        let mut c = conv(41000 + cut as u16);
        c.client_send(&req[..cut], 100);
        c.client_send(&req[cut..], 100);
        let rcut = cut % res.len();
        c.server_send(&res[..rcut], 500);
        c.server_send(&res[rcut..], 100);
        let es = run(c);
        assert_eq!(es.len(), 1, "cut {cut}");
        assert_eq!(line(&es[0]), expect, "cut {cut}");
    }
}

#[test]
fn caps_cut_bodies_and_oversized_headers_resync() {
    let limits = Limits {
        body_capture_bytes: 100,
        http_max_header_bytes: 256,
        ..Limits::default()
    };
    let mut c = conv(40011);
    c.client_send(b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n", 100);
    c.server_send(resp("200 OK", &"z".repeat(5000)).as_bytes(), 500);
    c.client_send(
        format!("GET /huge HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "p".repeat(1000)).as_bytes(),
        100,
    );
    c.client_send(b"GET /later HTTP/1.1\r\nHost: h\r\n\r\n", 100);
    c.server_send(resp("200 OK", "ok").as_bytes(), 500);
    c.server_send(resp("200 OK", "ok").as_bytes(), 500);
    let (es, shared) = run_packets(c.packets(), limits);
    let big = es[0].http().unwrap().response.as_ref().unwrap();
    assert_eq!((big.body.len(), big.body_size, big.body_truncated), (100, 5000, true));
    let st = shared.stats.lock().clone();
    assert_eq!(st.dissect.http_header_too_large, 1);
    assert!(
        es.iter().any(|e| line(e).1 == "/later"),
        "parsing resumes after the oversized header"
    );
}

#[test]
fn garbage_before_http_is_skipped() {
    let mut c = conv(40012);
    c.client_send(b"\x00\x01binary preamble\r\n", 100);
    c.client_send(b"GET /after-noise HTTP/1.1\r\nHost: h\r\n\r\n", 100);
    c.server_send(resp("200 OK", "").as_bytes(), 500);
    let es = run(c);
    assert_eq!(es.len(), 1);
    assert_eq!(line(&es[0]).1, "/after-noise");
}

/// Redaction passes over heads with no credential header quickly: heads with credentials still
/// lose them, including a name followed by spaces before its colon, and a head with none is
/// stored byte for byte.
#[test]
fn dissected_heads_lose_their_credentials_and_only_them() {
    let mut c = conv(4100);
    c.client_send(
        b"GET /a?access_token=t0k HTTP/1.1\r\nHost: shop\r\nAuthorization: Basic dXNlcjpwdw==\r\n\r\n",
        100,
    );
    c.server_send(
        b"HTTP/1.1 200 OK\r\nSet-Cookie : sid=s3cr3t\r\nContent-Length: 2\r\n\r\nok",
        1_000,
    );
    c.client_send(b"GET /plain HTTP/1.1\r\nHost: shop\r\nAccept: */*\r\n\r\n", 100);
    c.server_send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 1_000);
    let entries = run(c);
    assert_eq!(entries.len(), 2);
    let head = |e: &Entry, req: bool| {
        let h = e.http().unwrap();
        let m = if req { &h.request } else { &h.response };
        String::from_utf8(m.as_ref().unwrap().head.to_vec()).unwrap()
    };
    let (req, resp) = (head(&entries[0], true), head(&entries[0], false));
    for secret in ["t0k", "dXNlcjpwdw==", "s3cr3t"] {
        assert!(
            !req.contains(secret) && !resp.contains(secret),
            "{secret} in {req}{resp}"
        );
    }
    assert!(req.contains("Authorization: Basic [redacted len=12 id="), "{req}");
    assert!(resp.contains("Set-Cookie : [redacted len=10 id="), "{resp}");
    assert_eq!(
        head(&entries[1], true),
        "GET /plain HTTP/1.1\r\nHost: shop\r\nAccept: */*\r\n\r\n"
    );
    assert_eq!(head(&entries[1], false), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
}
