//! The filter language: lexing, parsing, type checking and compiling arbitrary text, then
//! evaluating the compiled filter against an HTTP entry (single and batched) and checking that
//! the normalised form compiles to the same normalised form.
//!
//! Input: the filter text (invalid UTF-8 is replaced).
#![no_main]

use std::net::SocketAddr;

use capture_core::entry::{Detail, Entry, HttpMessage, HttpTxn, Protocol, Transport};
use capture_core::kfl::{self, EvalContext};
use capture_core::time::Timestamp;
use libfuzzer_sys::fuzz_target;

fn message(head: &str, body_size: u64) -> HttpMessage {
    HttpMessage {
        head: bytes::Bytes::copy_from_slice(head.as_bytes()),
        body: bytes::Bytes::from_static(b"{\"ok\":true}"),
        body_size,
        body_truncated: false,
        chunked: false,
        trailers: bytes::Bytes::new(),
        first_ts: Timestamp(1_768_471_200_000_000_000),
        last_ts: Timestamp(1_768_471_200_003_000_000),
        complete: true,
        head_facts: 0,
    }
}

fn entry() -> Entry {
    let src: SocketAddr = "10.0.0.1:40000".parse().expect("address");
    let dst: SocketAddr = "[fd00::2]:8080".parse().expect("address");
    Entry {
        peers: Default::default(),
        tls: false,
        decrypted: false,
        tls_conn: None,
        id: 7,
        ts: Timestamp(1_768_471_200_000_000_000),
        protocol: Protocol::Http11,
        transport: Transport::Tcp,
        src,
        dst,
        flow_id: 3,
        elapsed_us: Some(3_000),
        detail: Detail::Http(Box::new(HttpTxn {
            method: Some("POST".into()),
            path: Some("/api/orders/7?expand=items&q=a%20b&x".into()),
            host: Some("shop.local:8080".into()),
            status: Some(503),
            reason: Some("Service Unavailable".into()),
            request: Some(message(
                "POST /api/orders/7?expand=items&q=a%20b&x HTTP/1.1\r\nHost: shop.local:8080\r\nContent-Type: application/json\r\nCookie: session=abc; theme=dark\r\nX-Dup: 1\r\nX-Fold: a\r\n b\r\nX-Dup: 2\r\n\r\n",
                11,
            )),
            response: Some(message(
                "HTTP/1.1 503 Service Unavailable\r\nServer: envoy\r\nSet-Cookie: token=xyz; Path=/\r\n\r\n",
                11,
            )),
            interim: vec![100],
            upgrade: None,
            ttfb_us: Some(1_500),
            flags: 0,
        })),
    }
}

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let Ok(f) = kfl::compile(&src) else {
        return;
    };
    let e = entry();
    let cx = EvalContext::new(Timestamp(1_768_471_500_000_000_000));
    let one = f.matches(&e, &cx);
    let batch = f.matches_batch(&[&e, &e, &e], &cx);
    assert_eq!(
        batch,
        if one { 0b111 } else { 0 },
        "batch and single disagree on `{src}`"
    );
    let bounds = f.time_bounds(&cx);
    if one {
        assert!(
            bounds.contains(e.ts),
            "time bounds {bounds:?} exclude a match of `{src}`"
        );
        if let Some(ps) = f.protocols() {
            assert!(ps.contains(&e.protocol), "protocols {ps:?} exclude a match of `{src}`");
        }
    }
    let _ = f.fields_used();
    let n = f.normalized();
    match kfl::compile(&n) {
        Ok(again) => {
            assert_eq!(again.normalized(), n, "normalising `{src}` is not stable");
            assert_eq!(again.matches(&e, &cx), one, "`{src}` and `{n}` disagree");
        }
        Err(err) => panic!("`{src}` normalised to `{n}`, which does not compile: {err}"),
    }
});
