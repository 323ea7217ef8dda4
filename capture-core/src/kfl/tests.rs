//! Filter tests: a table of filters with their expected matches over a fixture that exercises
//! every registered field, error positions and suggestions, the projection readers, and a
//! property test that printing a tree and parsing it back gives the same tree.

use std::net::SocketAddr;

use proptest::prelude::*;

use super::ast::{BinOp, Expr, ExprKind, Name, Span, UnOp};
use super::*;
use crate::entry::{Detail, Entry, HttpMessage, HttpTxn, Protocol, Transport, http_flags};
use crate::fields::{self, FIELDS, FieldType, Value};

fn t0() -> Timestamp {
    Timestamp::parse_rfc3339("2026-01-15T10:00:00Z").unwrap()
}

fn at(secs: u64) -> Timestamp {
    Timestamp(t0().0 + secs * 1_000_000_000)
}

/// `now()` for the table: 31 minutes after the first entry.
fn cx() -> EvalContext {
    EvalContext::new(at(31 * 60))
}

fn msg(head: &str, body_size: u64, ts: Timestamp) -> HttpMessage {
    HttpMessage {
        head: bytes::Bytes::copy_from_slice(head.as_bytes()),
        body: bytes::Bytes::new(),
        body_size,
        body_truncated: false,
        chunked: false,
        trailers: bytes::Bytes::new(),
        first_ts: ts,
        last_ts: ts,
        complete: true,
        head_facts: 0,
    }
}

struct Spec {
    id: u64,
    secs: u64,
    protocol: Protocol,
    transport: Transport,
    src: &'static str,
    dst: &'static str,
    elapsed_us: Option<u64>,
    request: Option<(&'static str, u64)>,
    response: Option<(&'static str, u64)>,
    method: Option<&'static str>,
    path: Option<&'static str>,
    host: Option<&'static str>,
    status: Option<(u16, &'static str)>,
    flags: u32,
}

fn build(s: Spec) -> Entry {
    let ts = at(s.secs);
    Entry {
        peers: Default::default(),
        tls: false,
        decrypted: false,
        tls_conn: None,
        id: s.id,
        ts,
        protocol: s.protocol,
        transport: s.transport,
        src: s.src.parse::<SocketAddr>().unwrap(),
        dst: s.dst.parse::<SocketAddr>().unwrap(),
        flow_id: s.id,
        elapsed_us: s.elapsed_us,
        detail: Detail::Http(Box::new(HttpTxn {
            method: s.method.map(Into::into),
            path: s.path.map(Into::into),
            host: s.host.map(Into::into),
            status: s.status.map(|(c, _)| c),
            reason: s.status.map(|(_, r)| r.into()),
            request: s.request.map(|(h, b)| msg(h, b, ts)),
            response: s.response.map(|(h, b)| msg(h, b, ts)),
            interim: Vec::new(),
            upgrade: None,
            ttfb_us: s.elapsed_us.map(|e| e / 2),
            flags: s.flags,
        })),
    }
}

/// The cluster of the fixture: 10.0.0.1 is pod `frontend-7d9c-x2x` (namespace `shop`, Deployment
/// `frontend`, label `app: checkout`, node `node-1`), 10.0.0.2 pod `payment-5f6b-k8q` (`prod`,
/// service `payment-service`, node `node-2`), 10.0.0.10 the ClusterIP of service `vault` (`prod`)
/// and 10.0.0.9 the address of node `node-3`. Every other address is external.
fn fixture_identities() -> crate::enrich::IdentityIndex {
    use crate::enrich::index::{NodeInfo, Objects, OwnerInfo, PodInfo, ServiceInfo, StrMap};
    let map = |kv: &[(&str, &str)]| -> StrMap { kv.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect() };
    let pod = |name: &str, ns: &str, ip: &str, app: &str, rs: &str, node: &str| PodInfo {
        name: name.into(),
        namespace: ns.into(),
        ips: vec![ip.parse().unwrap()],
        node: Some(node.into()),
        labels: map(&[("app", app)]),
        annotations: map(&[("team", "web")]),
        owner: Some(("ReplicaSet".into(), rs.into())),
        ..PodInfo::default()
    };
    let owner = |rs: &str, ns: &str, dep: &str| OwnerInfo {
        kind: "ReplicaSet".into(),
        name: rs.into(),
        namespace: ns.into(),
        owner: Some(("Deployment".into(), dep.into())),
    };
    let objects = Objects {
        pods: vec![
            pod(
                "frontend-7d9c-x2x",
                "shop",
                "10.0.0.1",
                "checkout",
                "frontend-7d9c",
                "node-1",
            ),
            pod(
                "payment-5f6b-k8q",
                "prod",
                "10.0.0.2",
                "payment",
                "payment-5f6b",
                "node-2",
            ),
        ],
        services: vec![
            ServiceInfo {
                name: "payment-service".into(),
                namespace: "prod".into(),
                selector: map(&[("app", "payment")]),
                ..ServiceInfo::default()
            },
            ServiceInfo {
                name: "vault".into(),
                namespace: "prod".into(),
                cluster_ips: vec!["10.0.0.10".parse().unwrap()],
                ..ServiceInfo::default()
            },
        ],
        nodes: vec![NodeInfo {
            name: "node-3".into(),
            addresses: vec!["10.0.0.9".parse().unwrap()],
            ..NodeInfo::default()
        }],
        owners: vec![
            owner("frontend-7d9c", "shop", "frontend"),
            owner("payment-5f6b", "prod", "payment"),
        ],
        endpoint_slices: Vec::new(),
    };
    crate::enrich::IdentityIndex::build(&objects, crate::enrich::IndexCaps::default())
}

/// Eight HTTP exchanges that between them exercise every field that has values today.
pub(crate) fn fixture() -> Vec<Entry> {
    let index = fixture_identities();
    let mut entries = fixture_entries();
    for e in &mut entries {
        // 10.0.0.2 was also looked up in DNS before the calls.
        let dns =
            |a: SocketAddr| (a.ip().to_string() == "10.0.0.2").then(|| "payment-service.prod.svc.cluster.local".into());
        e.peers = crate::enrich::Peers {
            src: index.resolve(e.src.ip(), e.src.port(), e.ts),
            dst: index.resolve(e.dst.ip(), e.dst.port(), e.ts),
            src_dns: dns(e.src),
            dst_dns: dns(e.dst),
        };
    }
    entries
}

fn fixture_entries() -> Vec<Entry> {
    vec![
        build(Spec {
            id: 1,
            secs: 0,
            protocol: Protocol::Http11,
            transport: Transport::Tcp,
            src: "10.0.0.1:40000",
            dst: "10.0.0.2:8080",
            elapsed_us: Some(3_000),
            request: Some((
                "GET /api/orders/7?expand=items&q=a%20b HTTP/1.1\r\nHost: shop.local\r\nUser-Agent: curl/8.5\r\nAccept: */*\r\n\r\n",
                0,
            )),
            response: Some((
                "HTTP/1.1 200 OK\r\nServer: envoy\r\nContent-Type: application/json\r\nSet-Cookie: token=xyz; Path=/\r\nContent-Length: 42\r\n\r\n",
                42,
            )),
            method: Some("GET"),
            path: Some("/api/orders/7?expand=items&q=a%20b"),
            host: Some("shop.local"),
            status: Some((200, "OK")),
            flags: 0,
        }),
        build(Spec {
            id: 2,
            secs: 1,
            protocol: Protocol::Http11,
            transport: Transport::Tcp,
            src: "10.0.0.3:40001",
            dst: "10.0.0.4:8080",
            elapsed_us: Some(250_000),
            request: Some((
                "POST /charge HTTP/1.1\r\nHost: payment:8080\r\nContent-Type: application/json\r\nCookie: session=abc; theme=dark\r\nContent-Length: 512\r\n\r\n",
                512,
            )),
            response: Some((
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 5\r\n\r\n",
                20,
            )),
            method: Some("POST"),
            path: Some("/charge"),
            host: Some("payment:8080"),
            status: Some((503, "Service Unavailable")),
            flags: 0,
        }),
        build(Spec {
            id: 3,
            secs: 2,
            protocol: Protocol::Http10,
            transport: Transport::Tcp,
            src: "[fd00::1]:5000",
            dst: "[fd00::2]:80",
            elapsed_us: Some(800),
            request: Some(("GET /health HTTP/1.0\r\n\r\n", 0)),
            response: Some(("HTTP/1.0 204 No Content\r\n\r\n", 0)),
            method: Some("GET"),
            path: Some("/health"),
            host: None,
            status: Some((204, "No Content")),
            flags: 0,
        }),
        build(Spec {
            id: 4,
            secs: 3,
            protocol: Protocol::Http11,
            transport: Transport::Tcp,
            src: "10.0.0.1:40002",
            dst: "10.0.0.2:8080",
            elapsed_us: None,
            request: Some((
                "DELETE /api/orders/9 HTTP/1.1\r\nHost: shop.local\r\nAuthorization: Bearer t0k3n\r\n\r\n",
                0,
            )),
            response: None,
            method: Some("DELETE"),
            path: Some("/api/orders/9"),
            host: Some("shop.local"),
            status: None,
            flags: http_flags::RESPONSE_INCOMPLETE,
        }),
        build(Spec {
            id: 5,
            secs: 600,
            protocol: Protocol::Http11,
            transport: Transport::Tcp,
            src: "10.0.0.5:40003",
            dst: "10.0.0.6:9000",
            elapsed_us: Some(45_000),
            request: Some((
                "PUT /frontend/upload HTTP/1.1\r\nHost: files\r\nX-Dup: 1\r\nX-Long: a\r\n  b\r\nX-Dup: 2\r\n\r\n",
                2048,
            )),
            response: Some(("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 0)),
            method: Some("PUT"),
            path: Some("/frontend/upload"),
            host: Some("files"),
            status: Some((404, "Not Found")),
            flags: 0,
        }),
        build(Spec {
            id: 6,
            secs: 660,
            protocol: Protocol::Http11,
            transport: Transport::Tcp,
            src: "10.0.0.7:40004",
            dst: "10.0.0.8:8080",
            elapsed_us: None,
            request: None,
            response: Some(("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 10\r\n\r\n", 10)),
            method: None,
            path: None,
            host: None,
            status: Some((500, "Internal Server Error")),
            flags: http_flags::NO_REQUEST,
        }),
        build(Spec {
            id: 7,
            secs: 1200,
            protocol: Protocol::Http11,
            transport: Transport::Udp,
            src: "192.168.1.10:5353",
            dst: "192.168.1.20:80",
            elapsed_us: Some(12),
            request: Some((
                "GET /Search?Q=Hello+World&id=123&id=456&flag HTTP/1.1\r\nHost: API.Example.com:443\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
                0,
            )),
            response: Some((
                "HTTP/1.1 301 Moved Permanently\r\nLocation: /search\r\nSet-Cookie: s1=v1\r\nSet-Cookie: s2=v2; HttpOnly\r\n\r\n",
                0,
            )),
            method: Some("GET"),
            path: Some("/Search?Q=Hello+World&id=123&id=456&flag"),
            host: Some("API.Example.com:443"),
            status: Some((301, "Moved Permanently")),
            flags: 0,
        }),
        build(Spec {
            id: 8,
            secs: 1800,
            protocol: Protocol::Http11,
            transport: Transport::Tcp,
            src: "10.0.0.9:40005",
            dst: "10.0.0.10:8443",
            elapsed_us: Some(1_500_000),
            request: Some(("HEAD /café/report.pdf HTTP/1.1\r\nHost: reports\r\n\r\n", 0)),
            response: Some(("HTTP/1.1 500 Internal Server Error\r\n\r\n", 0)),
            method: Some("HEAD"),
            path: Some("/café/report.pdf"),
            host: Some("reports"),
            status: Some((500, "Internal Server Error")),
            flags: 0,
        }),
    ]
}

const ALL: &[u64] = &[1, 2, 3, 4, 5, 6, 7, 8];
const NONE: &[u64] = &[];

/// Filters and the ids of the fixture entries they match.
const TABLE: &[(&str, &[u64])] = &[
    // The examples of the issue, verbatim.
    (
        r#"src.pod.name.startsWith("frontend") or dst.pod.name.startsWith("frontend")"#,
        &[1, 4],
    ),
    ("http and response.status >= 400", &[2, 5, 6, 8]),
    ("grpc and response.status.code != 0", NONE),
    (r#"src.namespace == "staging" and dst.namespace == "production""#, NONE),
    (
        r#"http && status_code >= 500 && dst.service.name == "payment-service" && path.contains("/charge")"#,
        NONE,
    ),
    ("dns && dns_response && status_code != 0", NONE),
    (
        r#"redis && redis_type == "GET" && redis_key.startsWith("session:")"#,
        NONE,
    ),
    (
        r#"kafka && kafka_api_key_name == "PRODUCE" && kafka_request_summary.contains("orders")"#,
        NONE,
    ),
    (
        r#"map_get(local_labels, "app", "") == "checkout" && "production" in namespaces"#,
        NONE,
    ),
    (r#"timestamp > now() - duration("5m")"#, &[8]),
    // Flags.
    ("http", ALL),
    ("tcp", &[1, 2, 3, 4, 5, 6, 8]),
    ("udp", &[7]),
    ("not tcp", &[7]),
    ("!http", NONE),
    ("grpc || redis || kafka || dns || amqp || tls", NONE),
    // Methods, hosts, paths.
    (r#"method == "GET""#, &[1, 3, 7]),
    ("request.method == 'POST'", &[2]),
    (r#"method in ["PUT", "DELETE"]"#, &[4, 5]),
    (r#"method != "GET""#, &[2, 4, 5, 6, 8]),
    (r#"method == """#, &[6]),
    ("method == null", &[6]),
    ("method != null", &[1, 2, 3, 4, 5, 7, 8]),
    (r#"method == "GET" and not path.startsWith("/api")"#, &[3, 7]),
    ("'''GET''' == method", &[1, 3, 7]),
    // Entry 6 has neither a method nor a host: both read as "".
    (r#"method in [host, "POST"]"#, &[2, 6]),
    (r#"[method] == ["GET"]"#, &[1, 3, 7]),
    (r#"method.size() == 4 ? true : method == "PUT""#, &[2, 5, 8]),
    (r#"host == "shop.local""#, &[1, 4]),
    (r#"request.host.endsWith(":8080")"#, &[2]),
    (r#"host.lowerAscii().startsWith("api.")"#, &[7]),
    (r#"host.upperAscii() == "FILES""#, &[5]),
    (r#"path.startsWith("/api/")"#, &[1, 4]),
    (r#"request.path.contains("orders")"#, &[1, 4]),
    (r#"url.endsWith(".pdf")"#, &[8]),
    (r#"path.matches("^/api/orders/[0-9]+$")"#, &[4]),
    (r#"path.matches(r"^/api/orders/\d+")"#, &[1, 4]),
    (r#"matches(path, "(?i)^/search")"#, &[7]),
    (r#"path.matches("orders/[79]")"#, &[1, 4]),
    (r#"path_only == "/api/orders/7""#, &[1]),
    (r#"request.path_only.lowerAscii() == "/search""#, &[7]),
    ("size(path) > 13", &[1, 5, 7, 8]),
    ("path.size() == 16", &[5, 8]),
    (r#"path.contains("é")"#, &[8]),
    // Statuses.
    ("status == null", &[4]),
    ("response.status != null", &[1, 2, 3, 5, 6, 7, 8]),
    ("status_code == 0", &[4]),
    ("status_code >= 500", &[2, 6, 8]),
    ("response.status >= 400 && response.status < 500", &[5]),
    ("status in [200, 204]", &[1, 3]),
    ("status_code / 100 == 5", &[2, 6, 8]),
    ("status_code % 100 == 0", &[1, 4, 6, 8]),
    ("-status_code < -400", &[2, 5, 6, 8]),
    ("status_code + 0.5 > 500", &[2, 6, 8]),
    (r#"(status_code >= 500 ? "error" : "ok") == "error""#, &[2, 6, 8]),
    ("not (status_code >= 200 and status_code < 400)", &[2, 4, 5, 6, 8]),
    (
        r#"status_code == 200 || status_code == 204 || path.endsWith("pdf")"#,
        &[1, 3, 8],
    ),
    (r#"status_text == "Not Found""#, &[5]),
    (r#"response.reason.contains("Server")"#, &[6, 8]),
    (r#"string(status_code) == "404""#, &[5]),
    ("double(status_code) / 2.0 == 250.0", &[6, 8]),
    ("http && (status >= 500 || elapsed_ms > 40.0)", &[2, 5, 6, 8]),
    ("http // every HTTP entry\n  && status == 200", &[1]),
    // Versions, protocol, transport.
    (r#"http_version == "HTTP/1.0""#, &[3]),
    (r#"protocol == "http/1.0""#, &[3]),
    (r#"protocol in ["http/1.1"]"#, &[1, 2, 4, 5, 6, 7, 8]),
    (r#"transport == "udp""#, &[7]),
    // Addresses.
    (r#"src.ip == "10.0.0.1""#, &[1, 4]),
    (r#"src_ip != "10.0.0.1""#, &[2, 3, 5, 6, 7, 8]),
    (r#"dst.ip == "fd00::2""#, &[3]),
    (r#"dst_ip == "fd00:0:0:0:0:0:0:2""#, &[3]),
    (r#"src.ip.startsWith("192.168.")"#, &[7]),
    (r#"dst.ip in ["10.0.0.2", "10.0.0.4"]"#, &[1, 2, 4]),
    ("src.port == 40000", &[1]),
    ("dst.port in [80, 8443]", &[3, 7, 8]),
    ("dst_port >= 9000", &[5]),
    ("src_port < 1024", NONE),
    ("flow_id > 6", &[7, 8]),
    // Times.
    ("elapsed_ms > 100.0", &[2, 8]),
    ("elapsed_ms == 0", &[4, 6]),
    ("elapsed_time >= 250000", &[2, 8]),
    ("elapsed_time > 0 && elapsed_time < 1000", &[3, 7]),
    (r#"timestamp >= timestamp("2026-01-15T10:10:00Z")"#, &[5, 6, 7, 8]),
    (r#"timestamp < "2026-01-15T10:00:02Z""#, &[1, 2]),
    (
        r#"timestamp - timestamp("2026-01-15T10:00:00Z") >= duration("20m")"#,
        &[7, 8],
    ),
    (r#"timestamp > now() - duration("30m")"#, &[5, 6, 7, 8]),
    (
        r#"timestamp <= now() - duration("1h30m") + duration("60m")"#,
        &[1, 2, 3, 4],
    ),
    (r#"string(timestamp) == "2026-01-15T10:00:01.000000Z""#, &[2]),
    // Ids and summaries.
    (r#"id == "3""#, &[3]),
    ("int(id) >= 7", &[7, 8]),
    (r#"summary.contains("→ 503")"#, &[2]),
    (r#"summary.contains("no response")"#, &[4]),
    // Headers.
    (r#"request.headers["content-type"] == "application/json""#, &[2]),
    (r#"request.headers["Content-Type"] == "application/json""#, &[2]),
    (r#""authorization" in request.headers"#, &[4]),
    (r#"request.headers.host == "files""#, &[5]),
    (r#"request.headers["x-dup"] == "1, 2""#, &[5]),
    (r#"request.headers["x-dup"].contains("2")"#, &[5]),
    (r#"request.headers["x-long"] == "a b""#, &[5]),
    (
        r#"map_get(request.headers, "user-agent", "none") == "none""#,
        &[2, 3, 4, 5, 6, 7, 8],
    ),
    ("size(request.headers) == 0", &[3, 6]),
    (r#"request.headers["accept"] == "*/*""#, &[1]),
    (r#"!(request.headers["accept"] == "*/*")"#, NONE),
    (r#"response.headers["server"] == "envoy""#, &[1]),
    (r#"response_headers["location"].startsWith("/")"#, &[7]),
    (r#""retry-after" in response.headers"#, &[2]),
    ("size(response.headers) >= 2", &[1, 2, 7]),
    (
        r#"request_headers["x-dup"] == "1, 2" || request.headers.host == "reports""#,
        &[5, 8],
    ),
    // Cookies and query strings.
    (r#"request.cookies["session"] == "abc""#, &[2]),
    (r#"request.cookies.theme == "dark""#, &[2]),
    (r#""b" in request_cookies"#, &[7]),
    (r#"response.cookies["token"] == "xyz""#, &[1]),
    (r#"response_cookies["s2"] == "v2""#, &[7]),
    ("size(response.cookies) == 2", &[7]),
    (r#"query_string["expand"] == "items""#, &[1]),
    (r#"query_string.q == "a b""#, &[1]),
    (r#"query_string["Q"] == "Hello World""#, &[7]),
    (r#"query_string["id"] == "123""#, &[7]),
    (r#""flag" in query_string"#, &[7]),
    ("size(query_string) == 3", &[7]),
    (r#"request.query["expand"] == "items""#, &[1]),
    // Sizes.
    ("request_body_size > 1000", &[5]),
    ("request.body_size == 512", &[2]),
    ("response_body_size == 0", &[3, 4, 5, 7, 8]),
    ("response.body_size == null", &[4]),
    ("request_body_size == null", &[6]),
    ("request_headers_size == 0", &[6]),
    (
        "response.headers_size > 0 && request.headers_size > 0",
        &[1, 2, 3, 5, 7, 8],
    ),
    ("h2_stream_id == 0 && h2_stream_id == null", ALL),
    // Protocols that are not dissected yet: their fields read as empty defaults.
    (
        r#"grpc_service == "" && grpc_method == "" && grpc_status == 0 && grpc_message == "" && grpc_request_messages == 0 && grpc_response_messages == 0"#,
        ALL,
    ),
    ("response.status.code == 0", ALL),
    ("grpc_status != null", NONE),
    (
        r#"redis_command == "" && redis_type == "" && redis_key == "" && redis_reply_type == """#,
        ALL,
    ),
    (
        r#"redis_args == [] && redis_reply == "" && redis_error == "" && redis_channel == "" && redis_payload == """#,
        ALL,
    ),
    (
        r#"kafka_api_key == 0 && kafka_api_key_name == "" && kafka_api_version == 0 && kafka_correlation_id == 0 && kafka_client_id == "" && size(kafka_topics) == 0 && kafka_request_summary == "" && !kafka_request && !kafka_response"#,
        ALL,
    ),
    (
        r#"kafka_partition == 0 && kafka_partitions == [] && kafka_error == "" && kafka_errors == [] && kafka_record_count == 0 && kafka_record_bytes == 0 && kafka_record_bytes_decompressed == 0 && kafka_summary == """#,
        ALL,
    ),
    (
        r#"dns_id == 0 && dns_qname == "" && dns_qtype == 0 && dns_rcode == 0 && dns_answer_count == 0 && dns_questions == [] && dns_answers == [] && size(dns_question_types) == 0 && !dns_request && !dns_response"#,
        ALL,
    ),
    (r#""example.com" in dns_questions"#, NONE),
    (
        r#"dns_rcode_name == "" && dns_client_subnet == "" && dns_rcode_name == null"#,
        ALL,
    ),
    (
        r#"amqp_channel == 0 && amqp_methods == [] && amqp_method == "" && amqp_exchange == "" && amqp_routing_key == "" && amqp_queue == "" && amqp_reply_code == 0"#,
        ALL,
    ),
    (
        r#"amqp_delivery_tag == 0 && amqp_consumer_tag == "" && amqp_body_size == 0 && amqp_content_type == "" && amqp_content_encoding == "" && amqp_delivery_mode == 0 && amqp_message_id == "" && amqp_correlation_id == "" && amqp_reply_to == "" && amqp_app_id == "" && size(amqp_headers) == 0"#,
        ALL,
    ),
    (
        r#"!decrypted && tls_decryption == "" && tls_version == "" && tls_sni == "" && tls_alpn == "" && tls_alpn_offered == [] && tls_cipher == "" && tls_ja3 == "" && tls_ja4 == "" && tls_ja3s == "" && tls_handshake_us == 0 && !tls_resumed && tls_resumption == """#,
        ALL,
    ),
    (
        r#"size(tls_alerts) == 0 && tls_alert_count == 0 && tls_cert_subject == "" && tls_cert_issuer == "" && tls_cert_sans == [] && tls_cert_not_before < timestamp("1971-01-01T00:00:00Z") && tls_cert_not_after < timestamp("1971-01-01T00:00:00Z") && tls_records_c2s + tls_records_s2c == 0"#,
        ALL,
    ),
    // Kubernetes identity: "" (or empty) where unresolved; see fixture_identities.
    (
        r#"src.pod.name == "" && src.pod.namespace == "" && src.namespace == "" && src.service.name == "" && src.service.namespace == "" && src.services == [] && src.workload.name == "" && src.node == "" && src.node.name == "" && src.name == "" && src.dns == """#,
        &[2, 3, 5, 6, 7],
    ),
    (
        r#"dst.pod.name == "" && dst.pod.namespace == "" && dst.namespace == "" && dst.service.name == "" && dst.service.namespace == "" && dst.services == [] && dst.workload.name == "" && dst.node == "" && dst.node.name == "" && dst.name == "" && dst.dns == """#,
        &[2, 3, 5, 6, 7],
    ),
    (
        "namespaces == [] && pods == [] && services == [] && size(local_labels) == 0 && size(remote_labels) == 0 && size(local_annotations) == 0 && size(remote_annotations) == 0",
        &[2, 3, 5, 6, 7],
    ),
    (
        r#"node_name == "" && node.name == "" && node_ip == "" && node.ip == "" && local_node_name == "" && remote_node_name == "" && local_process_name == "" && remote_process_name == "" && size(dns_resolutions) == 0"#,
        &[2, 3, 5, 6, 7],
    ),
    (
        r#"src.pod.name == "frontend-7d9c-x2x" && src.namespace == "shop" && src.pod.namespace == "shop" && src.workload.name == "frontend" && src.workload.kind == "Deployment" && src.node == "node-1" && src.resolution == "pod_ip" && src.services == [] && src.service.namespace == """#,
        &[1, 4],
    ),
    (
        r#"dst.name == "payment-5f6b-k8q" && dst.service.name == "payment-service" && dst.service.namespace == "prod" && dst.services == ["payment-service"] && remote_node_name == "node-2" && local_node_name == "node-1" && pods == ["frontend-7d9c-x2x", "payment-5f6b-k8q"] && namespaces == ["shop", "prod"] && services == ["payment-service"]"#,
        &[1, 4],
    ),
    (
        r#"dst.resolution == "service_ip" && dst.name == "vault" && dst.namespace == "prod" && dst.pod.name == "" && dst.workload.kind == "" && src.resolution == "node_ip" && src.name == "node-3" && src.node.name == "node-3""#,
        &[8],
    ),
    (
        r#"dst.resolution == "external" && src.resolution == "external""#,
        &[2, 3, 5, 6, 7],
    ),
    (r#""app" in local_labels"#, &[1, 4]),
    (
        r#"dst.dns == "payment-service.prod.svc.cluster.local" && dns_resolutions == ["payment-service.prod.svc.cluster.local"] && src.dns == """#,
        &[1, 4],
    ),
    (
        r#"remote_labels["app"] == "payment" && local_annotations["team"] == "web" && remote_annotations.team == "web""#,
        &[1, 4],
    ),
    (r#"remote_labels["app"] == "x""#, NONE),
    (
        r#"map_get(remote_labels, "app", "none") == "none""#,
        &[2, 3, 5, 6, 7, 8],
    ),
    (r#"namespaces.contains("prod")"#, &[1, 4, 8]),
    (r#"http and response.status >= 500 and dst.namespace == "prod""#, &[8]),
    // The language itself.
    ("", ALL),
    ("true", ALL),
    ("false", NONE),
    ("1 + 2 == 3 && http", ALL),
    (r#""a" + "b" == "ab""#, ALL),
    ("[1, 2] == [1, 2]", ALL),
    ("size([1, 2, 3]) == 3", ALL),
    (r#"duration("1h") > duration("59m")"#, ALL),
    (r#"int("42") == 42 && 0x10 == 16 && 7u == 7 && 1e3 == 1000"#, ALL),
    ("-9223372036854775808 < 0", ALL),
    ("10 / (status_code - status_code) == 1", NONE),
    ("10 / (status_code - status_code) == 1 || http", ALL),
    ("http ? status_code == 404 : false", &[5]),
    // Flow fields read their empty defaults on entries (flows are filtered in tcp_insights and
    // list_flows, tested end to end in tests/tests/tools_flows.rs).
    (
        r#"!tcp_flow && !udp_flow && conn_state == "" && verdict == "" && retransmission_rate == 0.0
           && retransmissions + fast_retransmissions + spurious_retransmissions + out_of_order == 0
           && zero_window_events + zero_window_probes + window_full_events + dup_acks == 0
           && missing_segments + acked_unseen + keepalive_count + rst_count + syn_count + fin_count == 0
           && connection_completeness + packets + payload_bytes + goodput_bytes == 0
           && initial_rtt_us + rtt_avg_us + duration_us == 0
           && process == "" && kernel_handshake_rtt_us + kernel_retransmits + kernel_srtt_us + kernel_cwnd == 0"#,
        ALL,
    ),
];

/// The eBPF fields of a flow read its kernel facts.
#[test]
fn flow_fields_read_the_kernel_facts() {
    use crate::flows::{FlowEnd, FlowRecord};
    use crate::kernel::KernelTcp;
    let record = |kernel: Option<KernelTcp>| {
        std::sync::Arc::new(FlowRecord {
            id: 1,
            transport: Transport::Tcp,
            client: "10.0.0.1:40000".parse().unwrap(),
            server: "10.0.0.2:443".parse().unwrap(),
            roles: crate::tcp::flow::RoleSource::Syn,
            first_seen: t0(),
            last_seen: at(1),
            end: FlowEnd::Open,
            metrics: Default::default(),
            peers: Default::default(),
            kernel: kernel.map(Box::new),
        })
        .as_entry()
    };
    let seen = record(Some(KernelTcp {
        handshake_rtt_us: Some(1_500),
        retransmitted_segments: 2,
        srtt_us: Some(900),
        cwnd: Some(10),
        comm: Some("curl".into()),
        pid: Some(7),
        ..KernelTcp::default()
    }));
    let unseen = record(None);
    let f = compile(
        r#"tcp_flow && process == "curl" && kernel_handshake_rtt_us > 1000 && kernel_retransmits == 2
           && kernel_srtt_us < 1000 && kernel_cwnd >= 10"#,
    )
    .unwrap();
    assert!(f.matches(&seen, &cx()));
    assert!(!f.matches(&unseen, &cx()));
}

fn matching(filter: &str, entries: &[Entry]) -> Vec<u64> {
    let f = compile(filter).unwrap_or_else(|e| panic!("`{filter}` did not compile:\n{e}"));
    entries.iter().filter(|e| f.matches(e, &cx())).map(|e| e.id).collect()
}

#[test]
fn table_has_at_least_80_filters() {
    assert!(TABLE.len() >= 80, "{}", TABLE.len());
}

#[test]
fn filters_match_their_expected_entries() {
    let entries = fixture();
    let mut failures = Vec::new();
    for (filter, want) in TABLE {
        let got = matching(filter, &entries);
        if got != *want {
            failures.push(format!("`{filter}`: expected {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn batches_match_like_single_entries() {
    // 70 entries: one full batch of 64 and a partial one.
    let entries: Vec<Entry> = fixture().into_iter().cycle().take(70).collect();
    for (filter, _) in TABLE {
        let f = compile(filter).unwrap();
        let one: Vec<u64> = entries.iter().filter(|e| f.matches(e, &cx())).map(|e| e.id).collect();
        let batch: Vec<u64> = f.matching(&entries, &cx()).map(|e| e.id).collect();
        assert_eq!(batch, one, "`{filter}`");
        let rev: Vec<u64> = f.matching_iter(entries.iter().rev(), &cx()).map(|e| e.id).collect();
        assert_eq!(
            rev,
            one.iter().rev().copied().collect::<Vec<_>>(),
            "`{filter}` reversed"
        );
    }
    let f = compile("http").unwrap();
    assert_eq!(f.matches_batch(&entries[..3], &cx()), 0b111);
    assert_eq!(f.matches_batch(&entries, &cx()), u64::MAX);
    assert_eq!(f.matches_batch::<Entry>(&[], &cx()), 0);
}

#[test]
fn normalized_forms_match_the_same_entries() {
    let entries = fixture();
    for (filter, want) in TABLE {
        let n = compile(filter).unwrap().normalized();
        assert_eq!(matching(&n, &entries), *want, "`{filter}` normalized to `{n}`");
        assert_eq!(compile(&n).unwrap().normalized(), n, "normalizing `{n}` is idempotent");
    }
}

#[test]
fn every_registered_field_is_exercised_by_the_table() {
    let mut used = std::collections::HashSet::new();
    for (filter, _) in TABLE {
        used.extend(compile(filter).unwrap().fields_used());
    }
    let missing: Vec<&str> = FIELDS.iter().map(|f| f.name).filter(|n| !used.contains(*n)).collect();
    assert!(missing.is_empty(), "fields no filter reads: {missing:?}");
}

#[test]
fn normalized_and_fields_used() {
    let f = compile(r#"http and response.status >= 500 and not request.path.startsWith('/x') or src_ip == "1.2.3.4""#)
        .unwrap();
    assert_eq!(
        f.normalized(),
        r#"http && status >= 500 && !path.startsWith("/x") || src.ip == "1.2.3.4""#
    );
    assert_eq!(f.fields_used(), vec!["status", "path", "src.ip"]);
    let f = compile(r#"request.headers.host == "a" && response.status.code == 0"#).unwrap();
    assert_eq!(f.normalized(), r#"request.headers.host == "a" && grpc_status == 0"#);
    assert_eq!(compile("").unwrap().normalized(), "true");
    assert!(compile("").unwrap().matches_all());
    assert!(!compile("http").unwrap().matches_all());
}

#[test]
fn protocol_hints() {
    // What a flag narrows to, from the registry (`None` when it allows every protocol).
    let set = |names: &[&str]| -> Option<Vec<Protocol>> {
        let v: Vec<Protocol> = Protocol::ALL
            .into_iter()
            .filter(|p| {
                names.iter().any(|n| match n.strip_prefix("=") {
                    Some(exact) => p.name() == exact,
                    None => (crate::fields::flag(n).unwrap().protocols.unwrap())(*p),
                })
            })
            .collect();
        (v.len() < Protocol::ALL.len()).then_some(v)
    };
    assert_eq!(compile("http and status >= 500").unwrap().protocols(), set(&["http"]));
    assert_eq!(compile("status >= 500").unwrap().protocols(), None);
    assert_eq!(compile("grpc").unwrap().protocols(), set(&["grpc"]));
    assert_eq!(compile("grpc and status == 1").unwrap().protocols(), set(&["grpc"]));
    assert_eq!(compile("grpc or dns").unwrap().protocols(), set(&["grpc", "dns"]));
    assert_eq!(compile("grpc and dns").unwrap().protocols(), Some(vec![]));
    assert_eq!(compile("grpc or tcp").unwrap().protocols(), None);
    assert_eq!(
        compile(r#"protocol == "http/1.0""#).unwrap().protocols(),
        Some(vec![Protocol::Http10])
    );
    assert_eq!(
        compile(r#"protocol == "http/1.0" || redis"#).unwrap().protocols(),
        set(&["=http/1.0", "redis"])
    );
    assert_eq!(
        compile(r#"protocol in ["http/1.0", "http/1.1"] && status == 200"#)
            .unwrap()
            .protocols(),
        set(&["=http/1.0", "=http/1.1"])
    );
    assert_eq!(compile("!http").unwrap().protocols(), None);
    assert_eq!(compile("false").unwrap().protocols(), Some(vec![]));
}

#[test]
fn time_bounds() {
    let cx = cx();
    let now = cx.now;
    let b = compile(r#"timestamp > now() - duration("5m")"#)
        .unwrap()
        .time_bounds(&cx);
    assert_eq!(b.from, Some(Timestamp(now.0 - 300_000_000_000 + 1)));
    assert_eq!(b.to, None);
    let b = compile(r#"http && timestamp >= "2026-01-15T10:00:00Z" && timestamp < timestamp("2026-01-15T10:05:00Z")"#)
        .unwrap()
        .time_bounds(&cx);
    assert_eq!(b.from, Some(t0()));
    assert_eq!(b.to, Some(Timestamp(at(300).0 - 1)));
    let b = compile(r#"timestamp < "2026-01-15T10:00:00Z" || timestamp > "2026-01-15T11:00:00Z""#)
        .unwrap()
        .time_bounds(&cx);
    assert_eq!(b, TimeBounds::default());
    let b = compile(r#"(timestamp >= "2026-01-15T10:00:00Z" && status == 1) || timestamp == "2026-01-15T10:30:00Z""#)
        .unwrap()
        .time_bounds(&cx);
    assert_eq!(b.from, Some(t0()));
    assert_eq!(b.to, None);
    assert_eq!(compile("http").unwrap().time_bounds(&cx), TimeBounds::default());
    assert!(compile("false").unwrap().time_bounds(&cx).is_empty());
    let b = compile(r#"timestamp < "1960-01-01T00:00:00Z""#)
        .unwrap()
        .time_bounds(&cx);
    assert!(b.is_empty());
    // The bounds never exclude a match.
    let entries = fixture();
    for (filter, _) in TABLE {
        let f = compile(filter).unwrap();
        let b = f.time_bounds(&cx);
        for e in &entries {
            if f.matches(e, &cx) {
                assert!(b.contains(e.ts), "`{filter}`: {b:?} excludes entry {}", e.id);
            }
            if let Some(ps) = f.protocols() {
                assert!(!f.matches(e, &cx) || ps.contains(&e.protocol), "`{filter}`");
            }
        }
    }
}

/// (filter, line, column, suggestion, part of the message)
const ERRORS: &[(&str, usize, usize, Option<&str>, &str)] = &[
    (
        "stauts_code >= 500",
        1,
        1,
        Some("status_code"),
        "unknown field `stauts_code`",
    ),
    (
        "http and\n  response.stauts >= 400",
        2,
        3,
        Some("response.status"),
        "unknown field",
    ),
    (r#"dst.namespace = "prod""#, 1, 15, Some("=="), "`=` is not an operator"),
    (r#"status_code >= "500""#, 1, 16, Some("500"), "cannot compare"),
    ("path == 404", 1, 9, Some("\"404\""), "(string) with `404` (int)"),
    (r#"path.matches("[a-")"#, 1, 14, None, "invalid regular expression"),
    (r#"path.startswith("/api")"#, 1, 6, Some("startsWith"), "unknown method"),
    ("htpp && status == 200", 1, 1, Some("http"), "unknown field `htpp`"),
    ("status_code >= ", 1, 15, None, "ends too early"),
    ("(status == 200", 1, 15, Some(")"), "ends too early"),
    (r#"status == 200 & method == "GET""#, 1, 15, Some("&&"), "`&`"),
    (
        r#"timestamp > now() - duration("5 minutes")"#,
        1,
        30,
        None,
        "not a duration",
    ),
    (
        "timestamp > now() - 5m",
        1,
        21,
        Some("duration(\"5m\")"),
        "not a number",
    ),
    ("path", 1, 1, Some("path != \"\""), "must be true or false"),
    ("status_code and http", 1, 1, Some("status_code != 0"), "is an int"),
    ("siez(path) > 3", 1, 1, Some("size"), "unknown function"),
    (
        r#"request.headers["host"] > 5"#,
        1,
        27,
        Some("\"5\""),
        "(string) with `5` (int)",
    ),
    (r#"timestamp > timestamp("yesterday")"#, 1, 23, None, "RFC 3339"),
    (
        r#""prod" in dst.namespace"#,
        1,
        1,
        Some("dst.namespace.contains(\"prod\")"),
        "list or a map",
    ),
    ("status_code == 200 AND http", 1, 20, Some("and"), "lower-case"),
    (r#"src.pod.nme == "x""#, 1, 1, Some("src.pod.name"), "unknown field"),
    (r#"request.headers[5] == "x""#, 1, 17, None, "map keys are strings"),
    (r#""unterminated"#, 1, 1, Some("\""), "unterminated string"),
    ("status.code == 0", 1, 8, None, "has no member `code`"),
    (r#"method == "GET" http"#, 1, 17, None, "after a complete condition"),
    ("9223372036854775808 > 1", 1, 1, None, "out of range"),
    ("1 / 0 == 1", 1, 1, None, "always fails"),
    (r#"startsWith(path, "/")"#, 1, 1, None, "is a method"),
    ("has(request.headers)", 1, 1, None, "not supported"),
    (r#"status_code == "abc""#, 1, 1, None, "cannot compare"),
    (r#"path.lower() == "x""#, 1, 6, Some("lowerAscii"), "unknown method"),
    ("status.size() > 1", 1, 1, None, "needs a string"),
    (r#"[1, "a"] == []"#, 1, 5, None, "one type"),
    (r#"http ? 1 : "a""#, 1, 1, None, "different types"),
    ("elapsed_time > duration(\"1s\")", 1, 1, None, "microseconds"),
    ("{} == local_labels", 1, 1, None, "map literals"),
    ("path == null && null < 1", 1, 17, None, "null can only"),
    (r#"size(path, "x") > 1"#, 1, 1, None, "takes 1 argument"),
    (r#""a\q" == path"#, 1, 3, None, "unknown escape"),
    ("method == ‘GET’", 1, 11, Some("\""), "typographic quote"),
    (
        "timestamp > 1700000000",
        1,
        13,
        Some("timestamp(1700000000)"),
        "cannot compare",
    ),
];

#[test]
fn errors_have_positions_and_suggestions() {
    assert!(ERRORS.len() >= 20);
    let mut failures = Vec::new();
    for (src, line, col, sugg, msg) in ERRORS {
        let errs = match compile(src) {
            Ok(f) => {
                failures.push(format!("`{src}` compiled to `{}`", f.normalized()));
                continue;
            }
            Err(e) => e,
        };
        let e = &errs.0[0];
        if (e.line, e.column) != (*line, *col) || e.suggestion.as_deref() != *sugg || !e.message.contains(msg) {
            failures.push(format!(
                "`{src}`: expected {line}:{col} {sugg:?} `{msg}`, got {}:{} {:?} `{}`",
                e.line, e.column, e.suggestion, e.message
            ));
        }
        // The excerpt shows the line and a caret under the column.
        let lines: Vec<&str> = e.excerpt.lines().collect();
        assert_eq!(lines.len(), 2, "`{src}`: {}", e.excerpt);
        assert!(lines[1].ends_with('^'), "`{src}`: {}", e.excerpt);
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn all_errors_are_reported_at_once() {
    let errs = compile("foo == 1 && bar == 2 && status == \"x\"").unwrap_err();
    let pos: Vec<(usize, usize)> = errs.0.iter().map(|e| (e.line, e.column)).collect();
    assert_eq!(pos, vec![(1, 1), (1, 13), (1, 25)]);
    let text = errs.to_string();
    assert!(text.contains("1:13: unknown field `bar`"), "{text}");
    assert!(text.contains("^^^"), "{text}");
}

#[test]
fn projections_read_every_field() {
    let entries = fixture();
    for f in FIELDS {
        for e in &entries {
            let v = (f.get)(e);
            let ok = matches!(
                (&v, f.ty),
                (Value::Null, _)
                    | (Value::Bool(_), FieldType::Bool)
                    | (Value::Int(_), FieldType::Int)
                    | (Value::Float(_), FieldType::Float)
                    | (Value::Str(_), FieldType::String | FieldType::Timestamp)
                    | (Value::List(_), FieldType::StringList)
                    | (Value::Map(_), FieldType::Map)
            );
            assert!(ok, "{} on entry {}: {v:?}", f.name, e.id);
        }
    }
    let get = |name: &str, id: usize| (fields::lookup(name).unwrap().get)(&entries[id - 1]);
    assert_eq!(
        get("request.headers", 5),
        Value::Map(vec![
            ("host".into(), Value::Str("files".into())),
            ("x-dup".into(), Value::Str("1, 2".into())),
            ("x-long".into(), Value::Str("a b".into())),
        ])
    );
    assert_eq!(get("request.headers", 6), Value::Null);
    assert_eq!(get("request.headers", 3), Value::Map(vec![]));
    assert_eq!(get("grpc_status", 1), Value::Null);
    assert_eq!(get("src.pod.name", 1), Value::Str("frontend-7d9c-x2x".into()));
    assert_eq!(get("src.pod.name", 2), Value::Str("".into()));
    assert_eq!(
        get("namespaces", 1),
        Value::List(vec![Value::Str("shop".into()), Value::Str("prod".into())])
    );
    assert_eq!(get("namespaces", 2), Value::List(vec![]));
    assert_eq!(
        get("local_labels", 1),
        Value::Map(vec![("app".into(), Value::Str("checkout".into()))])
    );
    assert_eq!(get("local_labels", 2), Value::Map(vec![]));
    assert_eq!(get("elapsed_time", 2), Value::Int(250_000));
    assert_eq!(get("src.ip", 3), Value::Str("fd00::1".into()));
    assert_eq!(get("timestamp", 2), Value::Str("2026-01-15T10:00:01.000000Z".into()));
    assert_eq!(get("status", 4), Value::Null);
    assert_eq!(get("path_only", 7), Value::Str("/Search".into()));
    assert_eq!(
        get("query_string", 7),
        Value::Map(vec![
            ("Q".into(), Value::Str("Hello World".into())),
            ("id".into(), Value::Str("123".into())),
            ("flag".into(), Value::Str("".into())),
        ])
    );
    assert_eq!(
        get("request.cookies", 7),
        Value::Map(vec![
            ("a".into(), Value::Str("1".into())),
            ("b".into(), Value::Str("2".into())),
        ])
    );
    assert_eq!(
        get("response.cookies", 7),
        Value::Map(vec![
            ("s1".into(), Value::Str("v1".into())),
            ("s2".into(), Value::Str("v2".into())),
        ])
    );
}

#[test]
fn entries_from_synthetic_traffic() {
    use crate::engine::{Engine, Shared};
    use crate::limits::Limits;
    use crate::synth::conversation::{Conversation, LINK};
    let client: SocketAddr = "10.1.0.1:41000".parse().unwrap();
    let server: SocketAddr = "10.1.0.2:8080".parse().unwrap();
    let mut c = Conversation::new(client, server, t0(), 200, 1000, 5000);
    c.handshake();
    for (path, status) in [("/ok", "200 OK"), ("/boom", "502 Bad Gateway"), ("/gone", "410 Gone")] {
        c.client_send(
            format!("GET {path} HTTP/1.1\r\nHost: svc\r\nX-Trace: {path}\r\n\r\n").as_bytes(),
            100,
        );
        c.server_send(
            format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok").as_bytes(),
            100,
        );
    }
    c.close();
    let packets: Vec<(Timestamp, Vec<u8>)> = c.packets().into_iter().map(|p| (p.ts, p.data)).collect();
    let shared = Shared::new(1 << 20);
    let mut engine = Engine::new(Limits::default(), shared.clone());
    engine.replay("kfl", LINK, &packets);
    let mut entries = Vec::new();
    shared.store.scan(crate::store::Order::Asc, None, &mut |e| {
        entries.push(Entry::clone(e));
        std::ops::ControlFlow::Continue(())
    });
    assert_eq!(entries.len(), 3);
    let count = |f: &str| {
        let f = compile(f).unwrap();
        entries.iter().filter(|e| f.matches(e, &cx())).count()
    };
    assert_eq!(count("http and response.status >= 400"), 2);
    assert_eq!(count(r#"request.headers["x-trace"] == path"#), 3);
    assert_eq!(count("response_body_size == 2 && elapsed_time > 0"), 3);
    assert_eq!(
        count(r#"dst.ip == "10.1.0.2" && dst.port == 8080 && src.port == 41000"#),
        3
    );
}

#[test]
fn reference_lists_every_field_and_flag() {
    let md = reference_markdown();
    for f in FIELDS {
        assert!(md.contains(&format!("| `{}` |", f.name)), "{}", f.name);
        for a in f.aliases {
            assert!(md.contains(&format!("`{a}`")), "{a}");
        }
    }
    for f in crate::fields::FLAGS {
        assert!(md.contains(&format!("| `{}` |", f.name)), "{}", f.name);
    }
    assert!(md.contains("map_get"));
    // Every example in the reference compiles.
    let start = md.find("```\n").unwrap() + 4;
    let end = start + md[start..].find("```").unwrap();
    for line in md[start..end].lines() {
        compile(line).unwrap_or_else(|e| panic!("`{line}`: {e}"));
    }
}

#[test]
fn the_deepest_filters_fit_in_a_default_thread_stack() {
    let depth = super::parse::MAX_DEPTH - 2;
    let filters = [
        format!("{}http", "!".repeat(depth)),
        format!("{}1{} == 1", "-(".repeat(depth / 2), ")".repeat(depth / 2)),
        format!("size({}1{}) == 1", "[".repeat(depth), "]".repeat(depth)),
        format!("{}status == 1", "status == 1 || ".repeat(depth)),
        format!("{}true", "false ? false : ".repeat(depth)),
        format!("x{} == 1", ".y".repeat(depth)),
    ];
    // A 2 MiB stack, as a spawned std thread or a tokio worker gets.
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            for f in &filters {
                match compile(f) {
                    Ok(c) => {
                        for e in fixture() {
                            let _ = c.matches(&e, &cx());
                        }
                        let _ = compile(&c.normalized());
                    }
                    Err(e) => assert!(e.to_string().contains("nests deeper") || !e.0.is_empty()),
                }
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn filters_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Filter>();
}

// ---------------------------------------------------------------------------------------------
// parse → print → parse

fn sp() -> Span {
    Span::default()
}

fn ident() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_]{0,5}".prop_filter("not a keyword", |s| {
        !matches!(s.as_str(), "true" | "false" | "null" | "in" | "and" | "or" | "not")
    })
}

fn name() -> impl Strategy<Value = Name> {
    ident().prop_map(|text| Name { text, span: sp() })
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        Just(ExprKind::Null),
        any::<bool>().prop_map(ExprKind::Bool),
        (0u64..=u64::MAX).prop_map(ExprKind::Int),
        (0f64..1e300).prop_map(ExprKind::Float),
        "[ -~é✓\n\t\"'\\\\\u{7}]{0,8}".prop_map(ExprKind::Str),
        ident().prop_map(ExprKind::Ident),
    ]
    .prop_map(|k| Expr::new(k, sp()))
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(5, 48, 4, |inner| {
        let b = |e: Expr| Box::new(e);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(ExprKind::List),
            (inner.clone(), name()).prop_map(move |(e, n)| ExprKind::Select(b(e), n)),
            (inner.clone(), inner.clone()).prop_map(move |(e, i)| ExprKind::Index(b(e), b(i))),
            (
                prop::option::of(inner.clone()),
                name(),
                prop::collection::vec(inner.clone(), 0..3)
            )
                .prop_map(move |(t, name, args)| ExprKind::Call {
                    target: t.map(b),
                    name,
                    args
                }),
            (prop_oneof![Just(UnOp::Not), Just(UnOp::Neg)], inner.clone())
                .prop_map(move |(op, e)| ExprKind::Unary(op, b(e))),
            (
                prop::sample::select(vec![
                    BinOp::Or,
                    BinOp::And,
                    BinOp::Eq,
                    BinOp::Ne,
                    BinOp::Lt,
                    BinOp::Le,
                    BinOp::Gt,
                    BinOp::Ge,
                    BinOp::In,
                    BinOp::Add,
                    BinOp::Sub,
                    BinOp::Mul,
                    BinOp::Div,
                    BinOp::Rem,
                ]),
                inner.clone(),
                inner.clone()
            )
                .prop_map(move |(op, l, r)| ExprKind::Binary(op, b(l), b(r))),
            (inner.clone(), inner.clone(), inner).prop_map(move |(c, t, f)| ExprKind::Cond(b(c), b(t), b(f))),
        ]
        .prop_map(|k| Expr::new(k, sp()))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn print_then_parse_gives_the_same_tree(e in expr()) {
        let printed = e.to_string();
        let back = super::parse::parse(&printed)
            .map_err(|err| TestCaseError::fail(format!("`{printed}` does not parse: {err}")))?;
        prop_assert_eq!(&back, &e, "printed as `{}`", printed);
        prop_assert_eq!(back.to_string(), printed);
    }

    #[test]
    fn compiling_never_panics(src in "[ -~]{0,40}") {
        if let Ok(f) = compile(&src) {
            for e in fixture() {
                let _ = f.matches(&e, &cx());
            }
            let n = f.normalized();
            let again = compile(&n).map_err(|err| TestCaseError::fail(format!("`{src}` → `{n}`: {err}")))?;
            prop_assert_eq!(again.normalized(), n);
        }
    }
}

/// The committed `REFERENCE.md` (linked from the README) is what the registry generates, so the
/// documentation cannot drift from the code. Regenerate with `UPDATE_KFL_REFERENCE=1 cargo test`.
#[test]
fn committed_reference_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/kfl/REFERENCE.md");
    let generated = crate::kfl::reference_markdown();
    if std::env::var_os("UPDATE_KFL_REFERENCE").is_some() {
        std::fs::write(&path, &generated).expect("write REFERENCE.md");
    }
    let committed = std::fs::read_to_string(&path).expect("REFERENCE.md exists");
    assert!(
        committed == generated,
        "{} is stale: run UPDATE_KFL_REFERENCE=1 cargo test -p capture-core",
        path.display()
    );
}
