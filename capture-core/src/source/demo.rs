//! The built-in `--demo` scenario: a minute of traffic between the microservices of a
//! small shop running in Kubernetes, with the ground truth of every call.
//!
//! Services: `frontend` and `api-gateway` (namespace `web`), `orders`, `payments` and
//! `inventory` (namespace `shop`). Users browse and check out through the frontend, which calls
//! the gateway; the gateway calls `inventory` and `orders`; `orders` calls `payments`. Calls go
//! over pooled keep-alive connections (a busy connection makes the caller open another one;
//! connections idle for 5 s are closed by the client) and carry `X-Request-Id` and W3C
//! `traceparent` headers, one trace per user action.
//!
//! The scenario contains successes (200, 201), client errors (404 for unknown orders, 400 for
//! invalid orders), server errors (`payments` answers 503 now and then and 500 once or twice,
//! which `orders` and the gateway turn into 502), slow `inventory` lookups (0.8–1.5 s, the rest
//! 1–40 ms), one HTTP/1.0 health check whose response runs until the server closes, and one
//! chunked response (the first product listing). It starts at 2026-01-15T10:00:00Z and is a
//! pure function of the seed.
//!
//! The network has its own problems, to practise telling them from slow applications (the
//! ground truth is in [`DemoScenario::ground_truth_network`]):
//! - a lossy link between the nodes of `orders` and `payments`: every connection between them
//!   loses about one data segment in sixteen after the capture point (the first one of each
//!   connection, then every 15th to 18th), so its retransmission rate is over 5 %. Most
//!   losses are retransmitted after the timeout; losses inside `orders`' periodic
//!   `GET /charges` reconciliation downloads bring duplicate ACKs and fast retransmissions.
//!   `orders` is an okhttp client that keeps idle connections for five minutes;
//! - a slow receiver: the frontend downloads `GET /api/catalog/export` (about 300 KB of CSV)
//!   and reads it slowly, so the gateway meets zero windows, probes them and waits for window
//!   updates;
//! - refused connections: `recommendations` (namespace `shop`) is crash-looping; the gateway
//!   tries it on every product page and gets RST-ACK for its SYN;
//! - a distant service: `inventory` runs in another zone, 25–40 ms away, while every other
//!   round trip is under half a millisecond.
//!
//! gRPC: the gateway also calls `payments.Payments/Charge` and `payments.Payments/Refund` on
//! `payments` port 50051, over one prior-knowledge h2c connection (HPACK literals without
//! indexing). About a quarter of the `Charge` calls fail with `UNAVAILABLE` (`grpc-status: 14`,
//! a trailers-only response); `Refund` always succeeds. Their ground truth is in
//! [`DemoScenario::ground_truth_grpc`].
//!
//! Redis: `orders` caches sessions and orders in `redis` (namespace `shop`, port 6379) over one
//! connection: `GET`/`SET` on `session:<id>` and `order:<id>`, sometimes pipelined, with misses
//! (null bulk strings) and one `WRONGTYPE` error. Ground truth in [`DemoScenario::ground_truth_redis`].
//!
//! DNS: pods resolve service names against `kube-dns` (10.96.0.10:53) over UDP, one of them
//! over TCP; the mistyped `paymnets.shop.svc.cluster.local` gets NXDOMAIN. Ground truth in
//! [`DemoScenario::ground_truth_dns`].
//!
//! AMQP: the gateway publishes jobs to exchange `jobs` with routing key `email.send` on
//! `rabbitmq` (namespace `data`, port 5672) and a `worker` consumes them (`Basic.Consume`,
//! `Deliver`, `Ack`); one mandatory publish with a mistyped routing key comes back as
//! `Basic.Return` 312 `NO_ROUTE`. Ground truth in [`DemoScenario::ground_truth_amqp`].
//!
//! Kafka: `orders` produces each new order to topic `orders.created` on broker `kafka`
//! (namespace `data`, port 9092) and `inventory` polls it with Fetch; both start with
//! ApiVersions and Metadata. Ground truth in [`DemoScenario::ground_truth_kafka`].
//!
//! A rollout: at [`DEMO_ROLLOUT_AT`] the `inventory` Deployment's new ReplicaSet (pod
//! `inventory-5b9d7c8f4-k2p6w`, version 2.5.0, also in the other zone) takes the gateway's
//! traffic from the old one (`inventory-84c6d9f7b-r9v2j`, 2.4.3). The new version renames the
//! stock level of `GET /stock/{sku}` from `available` to `quantity`, which the gateway does not
//! know: every product it lists after the rollout is out of stock. Ground truth in
//! [`DemoScenario::ground_truth_rollout`].
//!
//! An undocumented caller: `mobile-backend` (namespace `mobile`) calls `orders` directly,
//! `GET /internal/orders?customer_id=…`, bypassing the gateway; every call is in
//! [`DemoScenario::ground_truth`] with client `mobile-backend`.

use crate::source::LinkType;
use crate::synth::conversation::{
    CLIENT_RECEIVE_WINDOW, Conversation, DEFAULT_MSS, Impairments, LINK, SlowReader, SynthPacket, TcpEvents,
};
use crate::synth::h2;
use crate::synth::http_workload::http_date;
use crate::synth::messages as msg;
use crate::synth::packet::{UdpSpec, udp_frame};
use crate::synth::rng::SplitMix64;
use crate::time::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// First packet time of the demo: 2026-01-15T10:00:00Z.
pub const DEMO_START: Timestamp = Timestamp::from_secs_nanos(1_768_471_200, 0);
/// User actions start during the first this-many seconds (calls in flight then finish after).
pub const DEMO_ACTIVE_SECS: u64 = 59;
const MS: u64 = 1_000_000;
const US: u64 = 1_000;
/// Keep-alive connections idle this long are closed by their client.
const IDLE_TIMEOUT_NS: u64 = 5_000 * MS;
/// okhttp's keep-alive (the `orders` client): longer than the capture.
const OKHTTP_IDLE_TIMEOUT_NS: u64 = 300_000 * MS;
/// Handshake RTT to `inventory`, in another zone.
const CROSS_ZONE_RTT_US: std::ops::RangeInclusive<u64> = 25_000..=40_000;
/// Segment size of the catalog export's connection: a multiple of 128 (the window-scale unit),
/// so that the windows of the slow download are exact.
const EXPORT_MSS: usize = 1_408;
/// A lossy connection loses its first data segment (the request that opened it: a
/// retransmission after the timeout), then one after every this many data segments (about 6 %
/// on average). Gaps over the longest write (12 segments) make a write lose at most one; gaps
/// under 19 keep every connection's retransmission rate over 5 % (r losses among at most 18 r
/// originals: at least 1 in 19 data segments is a retransmission).
const LOSS_GAP: std::ops::RangeInclusive<u64> = 15..=18;
/// Longest write over the lossy link, in segments.
const MAX_LOSSY_WRITE_SEGMENTS: usize = 12;

/// One pod of the demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoService {
    pub name: &'static str,
    pub namespace: &'static str,
    pub pod_name: &'static str,
    pub ip: IpAddr,
    /// The port the service listens on.
    pub port: u16,
}

/// One HTTP call of the demo, as the capture shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoCall {
    /// Service name of the caller.
    pub client: &'static str,
    /// Service name of the callee.
    pub server: &'static str,
    /// Pod name of the callee (the `inventory` rollout moves calls to a new pod).
    pub server_pod: &'static str,
    pub method: &'static str,
    /// Request target, query included.
    pub path: String,
    pub status: u16,
    /// `"HTTP/1.1"` or `"HTTP/1.0"`.
    pub version: &'static str,
    pub request_body_len: usize,
    /// Length of the response body after removing any chunked coding.
    pub response_body_len: usize,
    /// Whether the response used `Transfer-Encoding: chunked`.
    pub chunked: bool,
    pub client_addr: SocketAddr,
    pub server_addr: SocketAddr,
    /// Capture time of the request's first segment.
    pub request_ts: Timestamp,
    /// Capture time of the response's first segment.
    pub response_ts: Timestamp,
}

/// One gRPC call of the demo (`api-gateway` → `payments:50051`, h2c).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoGrpcCall {
    pub client: &'static str,
    pub server: &'static str,
    /// `payments.Payments`.
    pub service: &'static str,
    /// `Charge` or `Refund`.
    pub method: &'static str,
    pub stream_id: u32,
    /// `grpc-status`: 0, or 14 (`UNAVAILABLE`).
    pub grpc_status: u32,
    pub grpc_message: Option<&'static str>,
    pub request_messages: u64,
    pub response_messages: u64,
    pub client_addr: SocketAddr,
    pub server_addr: SocketAddr,
    /// Capture time of the segment carrying the request's HEADERS frame.
    pub request_ts: Timestamp,
}

/// The port `payments` serves gRPC on.
pub const DEMO_GRPC_PORT: u16 = 50051;
/// `grpc-message` of the demo's `UNAVAILABLE` charges.
pub const DEMO_GRPC_UNAVAILABLE: &str = "card network unreachable";

/// A network problem seeded into the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DemoPathology {
    /// Data segments lost after the capture point and retransmitted (some fast, after
    /// duplicate ACKs): the connection's retransmission rate is over 5 %.
    LossyLink,
    /// The receiving application reads slowly: zero windows, zero-window probes, window updates
    /// and full windows.
    SlowReceiver,
    /// The SYN was answered by RST-ACK: nothing listens on the port.
    Refused,
    /// A handshake RTT of 25–40 ms (elevated) on an otherwise clean connection.
    CrossZoneRtt,
}

impl DemoPathology {
    pub fn name(self) -> &'static str {
        match self {
            DemoPathology::LossyLink => "lossy_link",
            DemoPathology::SlowReceiver => "slow_receiver",
            DemoPathology::Refused => "refused",
            DemoPathology::CrossZoneRtt => "cross_zone_rtt",
        }
    }
}

/// One connection affected by a [`DemoPathology`], with what the generator put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoNetworkFact {
    pub kind: DemoPathology,
    /// Service name of the client.
    pub client: &'static str,
    /// Service name of the server.
    pub server: &'static str,
    pub client_addr: SocketAddr,
    pub server_addr: SocketAddr,
    /// Capture time of the connection's SYN.
    pub start_ts: Timestamp,
    /// The round-trip time the connection was built with (the capture point is half-way).
    pub rtt_us: u64,
    /// What Wireshark shows as `tcp.analysis.initial_rtt`: SYN to the client's handshake ACK
    /// (the RTT), or SYN to the reset when refused (half of it).
    pub initial_rtt_ns: u64,
    /// Exact counts of what Wireshark's `tcp.analysis` flags on this connection (all other
    /// connections have none).
    pub events: TcpEvents,
}

/// The whole demo: frames, their link type, the pods, every call in request order, and every
/// connection with a seeded network problem in SYN order.
#[derive(Debug, Clone)]
pub struct DemoScenario {
    pub packets: Vec<SynthPacket>,
    pub link: LinkType,
    pub services: Vec<DemoService>,
    pub ground_truth: Vec<DemoCall>,
    pub ground_truth_network: Vec<DemoNetworkFact>,
    /// Every gRPC call, in request order (not in `ground_truth`, which holds the HTTP/1 calls).
    pub ground_truth_grpc: Vec<DemoGrpcCall>,
    /// The Redis commands of `orders`, in request order.
    pub ground_truth_redis: Vec<DemoRedisCommand>,
    /// The DNS lookups against `kube-dns`, in query order.
    pub ground_truth_dns: Vec<DemoDnsQuery>,
    /// The AMQP method groups (a method with its reply, or with its content), in time order.
    pub ground_truth_amqp: Vec<DemoAmqpGroup>,
    /// The Kafka requests (each answered), in time order.
    pub ground_truth_kafka: Vec<DemoKafkaRequest>,
    /// The `inventory` rollout: old and new pods, when traffic moved, what changed.
    pub ground_truth_rollout: DemoRollout,
}

/// When the gateway's `inventory` calls move to the new ReplicaSet: 30 s into the capture.
pub const DEMO_ROLLOUT_AT: Timestamp = Timestamp::from_secs_nanos(1_768_471_230, 0);

/// The `inventory` rollout of the demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoRollout {
    pub namespace: &'static str,
    pub deployment: &'static str,
    pub old_replicaset: &'static str,
    pub new_replicaset: &'static str,
    pub old_pod: &'static str,
    pub new_pod: &'static str,
    pub old_version: &'static str,
    pub new_version: &'static str,
    /// The endpoint whose response changed, as `api_stats` names it.
    pub endpoint: &'static str,
    /// Top-level JSON keys of the endpoint's response, sorted, before and after.
    pub old_keys: &'static [&'static str],
    pub new_keys: &'static [&'static str],
    /// Calls from this time on go to the new pod.
    pub switched_at: Timestamp,
}

/// The demo's rollout (the same for every seed).
pub fn demo_rollout() -> DemoRollout {
    let services = demo_services();
    DemoRollout {
        namespace: "shop",
        deployment: "inventory",
        old_replicaset: "inventory-84c6d9f7b",
        new_replicaset: "inventory-5b9d7c8f4",
        old_pod: services[INVENTORY].pod_name,
        new_pod: services[INVENTORY_V2].pod_name,
        old_version: "2.4.3",
        new_version: "2.5.0",
        endpoint: "GET /stock/{id}",
        old_keys: &["available", "reserved", "sku", "warehouse"],
        new_keys: &["quantity", "reserved", "sku", "warehouse"],
        switched_at: DEMO_ROLLOUT_AT,
    }
}

/// The version a pod of the demo runs (`app.kubernetes.io/version`).
pub fn demo_pod_version(pod_name: &str) -> &'static str {
    let services = demo_services();
    if pod_name == services[INVENTORY_V2].pod_name {
        "2.5.0"
    } else if pod_name == services[INVENTORY].pod_name {
        "2.4.3"
    } else {
        "1.0.0"
    }
}

/// Port of the `kafka` broker.
pub const DEMO_KAFKA_PORT: u16 = 9092;
/// The topic `orders` produces to and `inventory` fetches.
pub const DEMO_KAFKA_TOPIC: &str = "orders.created";

/// One Kafka request, answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoKafkaRequest {
    pub client_addr: SocketAddr,
    pub server_addr: SocketAddr,
    /// `API_VERSIONS`, `METADATA`, `PRODUCE` or `FETCH`.
    pub api_key_name: &'static str,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: &'static str,
    pub topics: Vec<&'static str>,
    /// Records in a Produce request or a Fetch response.
    pub record_count: Option<u64>,
    pub request_ts: Timestamp,
}

/// Port of the `rabbitmq` service.
pub const DEMO_AMQP_PORT: u16 = 5672;
/// The routing key of the one unroutable publish.
pub const DEMO_AMQP_UNROUTABLE_KEY: &str = "email.sned";

/// One AMQP entry's worth of frames: a method with its reply or its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoAmqpGroup {
    pub client_addr: SocketAddr,
    pub server_addr: SocketAddr,
    pub channel: u16,
    /// `Class.Method` names in wire order.
    pub methods: Vec<&'static str>,
    pub exchange: Option<&'static str>,
    pub routing_key: Option<&'static str>,
    pub reply_code: Option<u16>,
    /// When the first frame left.
    pub ts: Timestamp,
}

/// Port of the `redis` service.
pub const DEMO_REDIS_PORT: u16 = 6379;
/// The mistyped name that gets NXDOMAIN.
pub const DEMO_NXDOMAIN_NAME: &str = "paymnets.shop.svc.cluster.local";
/// The error reply of the one failing Redis command.
pub const DEMO_REDIS_WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// One Redis command and what its reply was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoRedisCommand {
    pub client_addr: SocketAddr,
    pub server_addr: SocketAddr,
    /// `GET`, `SET` or `HGET`.
    pub command: &'static str,
    pub key: String,
    /// The reply's RESP type name, as the dissector names it (`bulk_string`, `null_bulk_string`,
    /// `simple_string`, `error`).
    pub reply_type: &'static str,
    pub error: Option<&'static str>,
    /// Sent in one write together with other commands.
    pub pipelined: bool,
    /// When the write that carries the command left the client.
    pub request_ts: Timestamp,
}

/// One DNS lookup against `kube-dns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoDnsQuery {
    /// The pod that asked.
    pub client: &'static str,
    pub client_addr: SocketAddr,
    pub server_addr: SocketAddr,
    pub tcp: bool,
    pub id: u16,
    pub qname: String,
    /// 0 (NOERROR) or 3 (NXDOMAIN).
    pub rcode: u8,
    pub answers: Vec<Ipv4Addr>,
    pub query_ts: Timestamp,
}

const FRONTEND: usize = 0;
const GATEWAY: usize = 1;
const ORDERS: usize = 2;
const PAYMENTS: usize = 3;
const INVENTORY: usize = 4;
const RECOMMENDATIONS: usize = 5;
const SERVICES: usize = 6;
const REDIS: usize = 6;
const KUBE_DNS: usize = 7;
const RABBITMQ: usize = 8;
const WORKER: usize = 9;
const KAFKA: usize = 10;
const MOBILE: usize = 11;
/// The new ReplicaSet's pod of `inventory` (the rollout).
const INVENTORY_V2: usize = 12;

/// Whether this is one of the `inventory` pods (in the other zone).
fn is_inventory(service: usize) -> bool {
    matches!(service, INVENTORY | INVENTORY_V2)
}

/// The pods, indexed by the constants above.
pub fn demo_services() -> Vec<DemoService> {
    let svc = |name, namespace, pod_name, ip: [u8; 4], port| DemoService {
        name,
        namespace,
        pod_name,
        ip: IpAddr::V4(Ipv4Addr::from(ip)),
        port,
    };
    vec![
        svc("frontend", "web", "frontend-6b8f9c7d4-h5k2m", [10, 42, 1, 17], 3000),
        svc(
            "api-gateway",
            "web",
            "api-gateway-7c5d8f6b9-q8wzr",
            [10, 42, 1, 23],
            8080,
        ),
        svc("orders", "shop", "orders-7d9f8b6c5-x2k4p", [10, 42, 2, 31], 8080),
        svc("payments", "shop", "payments-5f7b9d8c6-m3n7t", [10, 42, 3, 12], 8080),
        // On a node in another zone.
        svc("inventory", "shop", "inventory-84c6d9f7b-r9v2j", [10, 42, 4, 44], 8080),
        // Crash-looping: its address answers, nothing listens.
        svc(
            "recommendations",
            "shop",
            "recommendations-5c8d7f9b6-t4w8n",
            [10, 42, 3, 27],
            8080,
        ),
        svc("redis", "shop", "redis-0", [10, 42, 2, 40], DEMO_REDIS_PORT),
        svc(
            "kube-dns",
            "kube-system",
            "kube-dns-6f9c8d7b5-k7p2x",
            [10, 96, 0, 10],
            53,
        ),
        svc("rabbitmq", "data", "rabbitmq-0", [10, 42, 5, 15], DEMO_AMQP_PORT),
        svc("worker", "shop", "worker-5d7c9b8f6-j3h6s", [10, 42, 2, 52], 8080),
        svc("kafka", "data", "kafka-0", [10, 42, 5, 21], DEMO_KAFKA_PORT),
        svc(
            "mobile-backend",
            "mobile",
            "mobile-backend-6d4f8b7c9-w2x5q",
            [10, 42, 5, 33],
            8080,
        ),
        // The new ReplicaSet of `inventory` (the rollout), on the same far node.
        svc("inventory", "shop", "inventory-5b9d7c8f4-k2p6w", [10, 42, 4, 57], 8080),
    ]
}

/// How long `service` keeps an idle connection before closing it.
fn idle_timeout(service: usize) -> u64 {
    if service == ORDERS {
        OKHTTP_IDLE_TIMEOUT_NS
    } else {
        IDLE_TIMEOUT_NS
    }
}

/// Whether the link between these two services loses segments.
fn lossy(a: usize, b: usize) -> bool {
    matches!((a, b), (ORDERS, PAYMENTS) | (PAYMENTS, ORDERS))
}

/// Which data segments of one lossy connection are lost, counted over both directions.
#[derive(Debug, Clone)]
struct LossPlan {
    /// Original data segments sent so far.
    sent: u64,
    /// Index of the next one to lose.
    next: u64,
}

impl LossPlan {
    fn new() -> Self {
        LossPlan { sent: 0, next: 0 }
    }

    /// The indices lost in the next write of `n` segments; `force` loses that one instead of
    /// whatever the plan had for this write.
    fn take(&mut self, n: usize, force: Option<usize>, rng: &mut SplitMix64) -> Vec<usize> {
        debug_assert!(n <= MAX_LOSSY_WRITE_SEGMENTS);
        let start = self.sent;
        self.sent += n as u64;
        let lost = match force {
            Some(i) => Some(i as u64),
            None => (self.next < self.sent).then(|| self.next - start),
        };
        if let Some(i) = lost {
            self.next = start + i + rng.range(LOSS_GAP);
        }
        lost.map(|i| vec![i as usize]).unwrap_or_default()
    }
}

/// User-Agent each service sends as a client.
fn user_agent(service: usize) -> &'static str {
    match service {
        FRONTEND => "frontend/2.7.1 node-fetch/3.3.2",
        GATEWAY => "Go-http-client/1.1",
        MOBILE => "mobile-backend/1.8.2 okhttp/4.12.0",
        _ => "orders/3.4.0 okhttp/4.12.0",
    }
}

/// Builds the demo scenario for `seed`.
pub fn demo_packets(seed: u64) -> DemoScenario {
    let mut demo = Demo::new(seed);
    demo.run();
    demo.grpc_payments(seed);
    demo.redis_cache(seed);
    demo.dns_lookups(seed);
    demo.amqp_jobs(seed);
    demo.kafka_orders(seed);
    demo.mobile_backend(seed);
    demo.finish()
}

/// One W3C trace: the id shared by all calls of a user action.
#[derive(Debug, Clone, Copy)]
struct Trace {
    id: u128,
}

/// What a client sends.
struct Request {
    method: &'static str,
    path: String,
    body: Vec<u8>,
    trace: Trace,
}

/// What a server answers, and when it is ready to send it.
struct Response {
    status: u16,
    body: Vec<u8>,
    content_type: &'static str,
    chunked: bool,
    extra_headers: &'static str,
    ready: Timestamp,
}

impl Response {
    fn json(status: u16, body: String, ready: Timestamp) -> Self {
        Response {
            status,
            body: body.into_bytes(),
            content_type: "application/json",
            chunked: false,
            extra_headers: "",
            ready,
        }
    }
}

/// A finished call as the caller sees it.
struct Reply {
    status: u16,
    body: Vec<u8>,
    /// When the caller has the whole response.
    done: Timestamp,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        _ => "Service Unavailable",
    }
}

fn later(t: Timestamp, ns: u64) -> Timestamp {
    Timestamp(t.0.saturating_add(ns))
}

const SKUS: [(&str, &str, u32); 8] = [
    ("SKU-1042", "Trail Runner 2", 8_990),
    ("SKU-1107", "Rain Shell Jacket", 12_900),
    ("SKU-2210", "Merino Socks (3 pack)", 1_990),
    ("SKU-2318", "Canvas Backpack 22L", 5_450),
    ("SKU-3051", "Insulated Bottle 750ml", 2_490),
    ("SKU-3122", "Headlamp 400lm", 3_990),
    ("SKU-4007", "Camping Mug", 1_290),
    ("SKU-4420", "Trekking Poles", 7_900),
];

const CATEGORIES: [&str; 4] = ["shoes", "outdoor", "accessories", "sale"];

struct Demo {
    rng: SplitMix64,
    /// Draws for the network problems and the other later additions, apart from the first
    /// stream.
    net: SplitMix64,
    services: Vec<DemoService>,
    /// Idle keep-alive connections per (client, server) service pair.
    pools: BTreeMap<(usize, usize), Vec<Conversation>>,
    /// Connections no longer in any pool (closed, or kept aside).
    retired: Vec<Conversation>,
    calls: Vec<DemoCall>,
    grpc_calls: Vec<DemoGrpcCall>,
    redis_commands: Vec<DemoRedisCommand>,
    dns_queries: Vec<DemoDnsQuery>,
    amqp_groups: Vec<DemoAmqpGroup>,
    kafka_requests: Vec<DemoKafkaRequest>,
    /// UDP frames, outside any connection.
    datagrams: Vec<SynthPacket>,
    next_port: [u16; SERVICES],
    stock_calls: u32,
    charges: u32,
    charge_500: [u32; 2],
    charge_503: u32,
    orders: Vec<u64>,
    next_order_id: u64,
    chunked_done: bool,
    loss: HashMap<SocketAddr, LossPlan>,
    /// The first reconciliation download is made to lose its third segment, so that every
    /// seed has a fast retransmission.
    fast_forced: bool,
    export_client: Option<SocketAddr>,
    checkouts: u32,
    /// This checkout is invalid (400) whatever the dice say, so that every seed has one.
    invalid_checkout: u32,
    lookups: u32,
    /// This order-status lookup is for an unknown order (404), so that every seed has one.
    unknown_lookup: u32,
}

impl Demo {
    fn new(seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed ^ 0x5EED_DE30_0000_0001);
        let mut next_port = [0u16; SERVICES];
        for p in &mut next_port {
            *p = rng.range(33_000..=55_000) as u16;
        }
        // The first 500 comes early; a second one only for some seeds (index past the end).
        let charge_500 = [
            rng.range(1..=3) as u32,
            if rng.chance(0.5) {
                rng.range(7..=10) as u32
            } else {
                u32::MAX
            },
        ];
        let charge_503 = rng.range(4..=6) as u32;
        let next_order_id = rng.range(40_000..=60_000);
        let orders = (1..=12).map(|i| next_order_id - i * 7).collect();
        let mut net = SplitMix64::new(seed ^ 0x4E45_5457_4F52_4B00);
        let invalid_checkout = net.range(0..=3) as u32;
        let unknown_lookup = net.range(0..=3) as u32;
        Demo {
            rng,
            net,
            services: demo_services(),
            pools: BTreeMap::new(),
            retired: Vec::new(),
            calls: Vec::new(),
            grpc_calls: Vec::new(),
            redis_commands: Vec::new(),
            dns_queries: Vec::new(),
            amqp_groups: Vec::new(),
            kafka_requests: Vec::new(),
            datagrams: Vec::new(),
            next_port,
            stock_calls: 0,
            charges: 0,
            charge_500,
            charge_503,
            orders,
            next_order_id,
            chunked_done: false,
            loss: HashMap::new(),
            fast_forced: false,
            export_client: None,
            checkouts: 0,
            invalid_checkout,
            lookups: 0,
            unknown_lookup,
        }
    }

    fn addr(&self, service: usize) -> SocketAddr {
        let s = &self.services[service];
        SocketAddr::new(s.ip, s.port)
    }

    /// A random duration between `lo` and `hi` milliseconds, in nanoseconds (µs granularity).
    fn ms(&mut self, lo: u64, hi: u64) -> u64 {
        self.rng.range(lo * 1_000..=hi * 1_000) * US
    }

    /// A random duration between `lo` and `hi` milliseconds from the network draws.
    fn net_ms(&mut self, lo: u64, hi: u64) -> u64 {
        self.net.range(lo * 1_000..=hi * 1_000) * US
    }

    /// A fresh connection from `from` to `to` whose SYN leaves at `at`.
    fn connect(&mut self, from: usize, to: usize, at: Timestamp) -> Conversation {
        let mut conv = self.unconnected(from, to, at, DEFAULT_MSS);
        conv.handshake();
        conv
    }

    /// A connection from `from` to `to` starting at `at`, before its handshake.
    fn unconnected(&mut self, from: usize, to: usize, at: Timestamp, mss: usize) -> Conversation {
        let port = self.next_port[from];
        self.next_port[from] = port.wrapping_add(1).max(32_768);
        let client = SocketAddr::new(self.services[from].ip, port);
        // Pods on the same node (same /24) answer faster than across nodes.
        let same_node = match (self.services[from].ip, self.services[to].ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => a.octets()[..3] == b.octets()[..3],
            _ => false,
        };
        let rtt_us = if is_inventory(to) {
            self.rng.range(CROSS_ZONE_RTT_US)
        } else if same_node {
            self.rng.range(40..=120)
        } else {
            self.rng.range(180..=450)
        };
        let (isn_c, isn_s) = (self.rng.next_u32(), self.rng.next_u32());
        Conversation::new(client, self.addr(to), at, rtt_us, isn_c, isn_s).with_mss(mss)
    }

    /// An idle pooled connection usable at `at`, or a new one. Connections idle for longer than
    /// the keep-alive timeout are closed on the way.
    fn checkout(&mut self, from: usize, to: usize, at: Timestamp) -> Conversation {
        for (&(client, _), pool) in self.pools.iter_mut() {
            let mut i = 0;
            while i < pool.len() {
                let idle_until = later(pool[i].end_ts(), idle_timeout(client));
                if idle_until < at {
                    let mut conv = pool.remove(i);
                    conv.close_at(idle_until);
                    self.retired.push(conv);
                } else {
                    i += 1;
                }
            }
        }
        let pool = self.pools.entry((from, to)).or_default();
        match pool.iter().position(|c| c.end_ts() <= at) {
            Some(i) => pool.remove(i),
            None => self.connect(from, to, at),
        }
    }

    fn request_bytes(&mut self, from: usize, to: usize, req: &Request, version: &str) -> Vec<u8> {
        let s = &self.services[to];
        let mut head = format!(
            "{} {} {version}\r\nHost: {}.{}.svc.cluster.local:{}\r\n\
             User-Agent: {}\r\nAccept: application/json\r\n",
            req.method,
            req.path,
            s.name,
            s.namespace,
            s.port,
            user_agent(from)
        );
        let span = self.rng.next_u64();
        let _ = write!(
            head,
            "X-Request-Id: {:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}\r\n\
             traceparent: 00-{:032x}-{span:016x}-01\r\n",
            self.rng.next_u32(),
            self.rng.range(0..=0xFFFF),
            self.rng.range(0..=0xFFF),
            self.rng.range(0..=0xFFF),
            self.rng.range(0..=0xFFFF_FFFF_FFFF),
            req.trace.id
        );
        if !req.body.is_empty() {
            let _ = write!(
                head,
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                req.body.len()
            );
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&req.body);
        bytes
    }

    fn response_bytes(&mut self, to: usize, resp: &Response, version: &str) -> Vec<u8> {
        let mut head = format!(
            "{version} {} {}\r\nDate: {}\r\nContent-Type: {}\r\n",
            resp.status,
            reason(resp.status),
            http_date(resp.ready),
            resp.content_type
        );
        if to == GATEWAY {
            head.push_str("X-Powered-By: api-gateway/1.12.0\r\n");
        }
        head.push_str(resp.extra_headers);
        let body = if resp.chunked {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            let mut out = Vec::with_capacity(resp.body.len() + 64);
            let mut rest = &resp.body[..];
            while !rest.is_empty() {
                let n = self.rng.range_usize(200..=900).min(rest.len());
                out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                out.extend_from_slice(&rest[..n]);
                out.extend_from_slice(b"\r\n");
                rest = &rest[n..];
            }
            out.extend_from_slice(b"0\r\n\r\n");
            out
        } else {
            if version == "HTTP/1.0" {
                head.push_str("Connection: close\r\n\r\n");
            } else {
                let _ = write!(head, "Content-Length: {}\r\n\r\n", resp.body.len());
            }
            resp.body.clone()
        };
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&body);
        bytes
    }

    /// One HTTP/1.1 call from `from` to `to` starting at `at`. `handle` runs when the server has
    /// the request (its argument) and may make calls of its own.
    fn call(
        &mut self,
        from: usize,
        to: usize,
        at: Timestamp,
        req: Request,
        handle: impl FnOnce(&mut Self, Timestamp) -> Response,
    ) -> Reply {
        let mut conv = self.checkout(from, to, at);
        let bytes = self.request_bytes(from, to, &req, "HTTP/1.1");
        if lossy(from, to) {
            let imp = self.impairments(&conv, bytes.len());
            conv.client_send_impaired(&bytes, at, &imp);
        } else {
            conv.client_send_at(&bytes, at);
        }
        let request_ts = conv.last_send_start().unwrap_or(at);
        let resp = handle(self, conv.server_ready_at());
        let bytes = self.response_bytes(to, &resp, "HTTP/1.1");
        if lossy(from, to) {
            let imp = self.impairments(&conv, bytes.len());
            conv.server_send_impaired(&bytes, resp.ready, &imp);
        } else {
            conv.server_send_at(&bytes, resp.ready);
        }
        let response_ts = conv.last_send_start().unwrap_or(resp.ready);
        let done = conv.client_ready_at();
        self.record(from, to, &req, &resp, "HTTP/1.1", &conv, request_ts, response_ts);
        self.pools.entry((from, to)).or_default().push(conv);
        Reply {
            status: resp.status,
            body: resp.body,
            done,
        }
    }

    /// The losses of the next write of `len` bytes on the lossy connection `conv`.
    fn impairments(&mut self, conv: &Conversation, len: usize) -> Impairments {
        let n = conv.segments_for(len);
        assert!(
            n <= MAX_LOSSY_WRITE_SEGMENTS,
            "{len} bytes is too long a write for the lossy link"
        );
        // Segments 0 and 1 are acknowledged together, so losing segment 2 of 7 or more leaves
        // at least four duplicate ACKs: a fast retransmission.
        let force = (!self.fast_forced && n >= 7).then_some(2);
        self.fast_forced |= force.is_some();
        let plan = self.loss.entry(conv.client_addr()).or_insert_with(LossPlan::new);
        Impairments {
            lost: plan.take(n, force, &mut self.net),
            slow_reader: None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        from: usize,
        to: usize,
        req: &Request,
        resp: &Response,
        version: &'static str,
        conv: &Conversation,
        request_ts: Timestamp,
        response_ts: Timestamp,
    ) {
        self.calls.push(DemoCall {
            client: self.services[from].name,
            server: self.services[to].name,
            server_pod: self.services[to].pod_name,
            method: req.method,
            path: req.path.clone(),
            status: resp.status,
            version,
            request_body_len: req.body.len(),
            response_body_len: resp.body.len(),
            chunked: resp.chunked,
            client_addr: conv.client_addr(),
            server_addr: conv.server_addr(),
            request_ts,
            response_ts,
        });
    }

    fn new_trace(&mut self) -> Trace {
        let id = (u128::from(self.rng.next_u64()) << 64) | u128::from(self.rng.next_u64());
        Trace { id }
    }

    /// Runs the user actions of the whole capture.
    fn run(&mut self) {
        let end = later(DEMO_START, DEMO_ACTIVE_SECS * 1_000 * MS);
        let mut t = DEMO_START;
        let health_at = later(DEMO_START, self.ms(20_000, 40_000));
        let mut health_done = false;
        let export_at = later(DEMO_START, self.net_ms(15_000, 45_000));
        let mut export_done = false;
        let mut reconcile_at = later(DEMO_START, self.net_ms(3_000, 6_000));
        while t < end {
            if !health_done && t >= health_at {
                self.health_check(t);
                health_done = true;
            }
            if !export_done && t >= export_at {
                self.catalog_export(t);
                export_done = true;
            }
            while reconcile_at <= t {
                self.reconcile(reconcile_at);
                reconcile_at = later(reconcile_at, self.net_ms(12_000, 20_000));
            }
            let trace = self.new_trace();
            let roll = self.rng.range(0..=99);
            match roll {
                0..20 => self.home(t, trace),
                20..45 => self.product_list(t, trace),
                45..60 => self.product_detail(t, trace),
                60..75 => self.order_status(t, trace),
                _ => self.checkout_flow(t, trace),
            }
            t = later(t, self.ms(300, 1_250));
        }
    }

    fn home(&mut self, t: Timestamp, trace: Trace) {
        let req = Request {
            method: "GET",
            path: "/".into(),
            body: Vec::new(),
            trace,
        };
        self.call(FRONTEND, GATEWAY, t, req, |d, got| {
            let mut html = String::from(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>\
                Trailhead Outfitters</title><link rel=\"stylesheet\" href=\"/static/main.css\">\
                </head><body><main><h1>Trailhead Outfitters</h1><ul class=\"products\">",
            );
            for (sku, name, cents) in SKUS {
                let _ = write!(
                    html,
                    "<li data-sku=\"{sku}\"><a href=\"/p/{sku}\">\
                    {name}</a> <span class=\"price\">&euro;{}.{:02}</span></li>",
                    cents / 100,
                    cents % 100
                );
            }
            html.push_str(
                "</ul></main><script src=\"/static/app.js\" defer></script></body>\
            </html>\n",
            );
            let ready = later(got, d.ms(2, 9));
            Response {
                status: 200,
                body: html.into_bytes(),
                content_type: "text/html; charset=utf-8",
                chunked: false,
                extra_headers: "Cache-Control: no-cache\r\n",
                ready,
            }
        });
    }

    /// The gateway asks inventory for one SKU at `at`.
    fn stock(&mut self, at: Timestamp, sku: &str, trace: Trace) -> Reply {
        let req = Request {
            method: "GET",
            path: format!("/stock/{sku}"),
            body: Vec::new(),
            trace,
        };
        let sku = sku.to_string();
        // After the rollout the new ReplicaSet's pod answers, with the level renamed.
        let (to, level) = if at >= DEMO_ROLLOUT_AT {
            (INVENTORY_V2, "quantity")
        } else {
            (INVENTORY, "available")
        };
        self.call(GATEWAY, to, at, req, move |d, got| {
            d.stock_calls += 1;
            let slow = d.stock_calls == 2 || d.rng.chance(0.1);
            let delay = if slow { d.ms(800, 1_500) } else { d.ms(1, 8) };
            let available = d.rng.range(0..=120);
            let body = format!(
                "{{\"sku\":\"{sku}\",\"{level}\":{available},\"reserved\":{},\
                \"warehouse\":\"fra-{}\"}}",
                d.rng.range(0..=10),
                d.rng.range(1..=3)
            );
            Response::json(200, body, later(got, delay))
        })
    }

    fn product_list(&mut self, t: Timestamp, trace: Trace) {
        let category = *self.rng.pick(&CATEGORIES);
        let req = Request {
            method: "GET",
            path: format!("/api/products?category={category}&page=1"),
            body: Vec::new(),
            trace,
        };
        self.call(FRONTEND, GATEWAY, t, req, |d, got| {
            let n = d.rng.range_usize(1..=3);
            let first = d.rng.range_usize(0..=SKUS.len() - n);
            let mut now = later(got, d.ms(1, 3));
            let mut items = Vec::new();
            for (sku, name, cents) in &SKUS[first..first + n] {
                let reply = d.stock(now, sku, trace);
                now = later(reply.done, d.ms(0, 1));
                let available = stock_level(&reply.body);
                items.push(format!(
                    "{{\"sku\":\"{sku}\",\"name\":\"{name}\",\"price_cents\":{cents},\
                    \"currency\":\"EUR\",\"in_stock\":{}}}",
                    available > 0
                ));
            }
            let body = format!(
                "{{\"category\":\"{category}\",\"page\":1,\"total\":{n},\"products\":[{}]}}",
                items.join(",")
            );
            let mut resp = Response::json(200, body, later(now, d.ms(1, 3)));
            if !d.chunked_done {
                d.chunked_done = true;
                resp.chunked = true;
            }
            resp
        });
    }

    fn product_detail(&mut self, t: Timestamp, trace: Trace) {
        let &(sku, name, cents) = self.rng.pick(&SKUS);
        let req = Request {
            method: "GET",
            path: format!("/api/products/{sku}"),
            body: Vec::new(),
            trace,
        };
        self.call(FRONTEND, GATEWAY, t, req, |d, got| {
            // Recommendations are fetched on the side; the attempt fails at once.
            let try_at = later(got, d.net.range(200..=600) * US);
            d.try_recommendations(try_at);
            let at = later(got, d.ms(1, 2));
            let reply = d.stock(at, sku, trace);
            let body = format!(
                "{{\"sku\":\"{sku}\",\"name\":\"{name}\",\"price_cents\":{cents},\
                \"currency\":\"EUR\",\"available\":{},\
                \"description\":\"{name}, built to last. Free returns within 30 days.\"}}",
                stock_level(&reply.body)
            );
            Response::json(200, body, later(reply.done, d.ms(1, 3)))
        });
    }

    fn order_status(&mut self, t: Timestamp, trace: Trace) {
        let known = self.rng.chance(0.7) && self.lookups != self.unknown_lookup;
        self.lookups += 1;
        let id = if known {
            *self.rng.pick(&self.orders)
        } else {
            self.rng.range(90_000..=99_999)
        };
        let req = Request {
            method: "GET",
            path: format!("/api/orders/{id}"),
            body: Vec::new(),
            trace,
        };
        self.call(FRONTEND, GATEWAY, t, req, |d, got| {
            let at = later(got, d.ms(1, 2));
            let req = Request {
                method: "GET",
                path: format!("/orders/{id}"),
                body: Vec::new(),
                trace,
            };
            let reply = d.call(GATEWAY, ORDERS, at, req, |d, got| {
                let ready = later(got, d.ms(2, 12));
                if d.orders.contains(&id) {
                    let body = format!(
                        "{{\"order_id\":{id},\"status\":\"{}\",\"items\":[{{\"sku\":\"{}\",\
                        \"qty\":{}}}],\"total_cents\":{}}}",
                        d.rng.pick(&["confirmed", "shipped", "delivered"]),
                        d.rng.pick(&SKUS).0,
                        d.rng.range(1..=3),
                        d.rng.range(990..=30_000)
                    );
                    Response::json(200, body, ready)
                } else {
                    Response::json(
                        404,
                        format!("{{\"error\":\"order_not_found\",\"order_id\":{id}}}"),
                        ready,
                    )
                }
            });
            let ready = later(reply.done, d.ms(1, 2));
            Response::json(reply.status, String::from_utf8_lossy(&reply.body).into_owned(), ready)
        });
    }

    fn checkout_flow(&mut self, t: Timestamp, trace: Trace) {
        let &(sku, _, cents) = self.rng.pick(&SKUS);
        let invalid = self.rng.chance(0.12) || self.checkouts == self.invalid_checkout;
        self.checkouts += 1;
        let qty = if invalid { 0 } else { self.rng.range(1..=3) };
        let cart = self.rng.next_u32();
        let token = self.rng.next_u64();
        let body = format!(
            "{{\"cart_id\":\"c-{cart:08x}\",\"items\":[{{\"sku\":\"{sku}\",\"qty\":{qty}}}],\
            \"shipping\":{{\"country\":\"DE\",\"method\":\"standard\"}},\
            \"payment\":{{\"method\":\"card\",\"token\":\"tok_{token:016x}\"}}}}"
        );
        let req = Request {
            method: "POST",
            path: "/api/checkout".into(),
            body: body.into_bytes(),
            trace,
        };
        self.call(FRONTEND, GATEWAY, t, req, |d, got| {
            let at = later(got, d.ms(1, 2));
            let stock = d.stock(at, sku, trace);
            let customer = d.rng.range(1_000..=9_999);
            let total = u64::from(cents) * qty;
            let body = format!(
                "{{\"customer_id\":{customer},\"items\":[{{\"sku\":\"{sku}\",\"qty\":{qty},\
                \"price_cents\":{cents}}}],\"total_cents\":{total},\"currency\":\"EUR\",\
                \"payment_token\":\"tok_{token:016x}\"}}"
            );
            let req = Request {
                method: "POST",
                path: "/orders".into(),
                body: body.into_bytes(),
                trace,
            };
            let at = later(stock.done, d.ms(0, 1));
            let order = d.call(GATEWAY, ORDERS, at, req, |d, got| {
                d.create_order(got, qty, total, token, trace)
            });
            let ready = later(order.done, d.ms(1, 3));
            Response::json(order.status, String::from_utf8_lossy(&order.body).into_owned(), ready)
        });
    }

    /// `orders` handling `POST /orders`: validates, charges through payments, answers.
    fn create_order(&mut self, got: Timestamp, qty: u64, total: u64, token: u64, trace: Trace) -> Response {
        if qty == 0 {
            let body = "{\"error\":\"invalid_quantity\",\"message\":\"qty must be at least 1\"}";
            return Response::json(400, body.to_string(), later(got, self.ms(1, 3)));
        }
        let order_id = self.next_order_id;
        self.next_order_id += self.rng.range(1..=5);
        let body = format!(
            "{{\"order_id\":{order_id},\"amount_cents\":{total},\"currency\":\"EUR\",\
            \"token\":\"tok_{token:016x}\",\"idempotency_key\":\"{:016x}\"}}",
            self.rng.next_u64()
        );
        let req = Request {
            method: "POST",
            path: "/charge".into(),
            body: body.into_bytes(),
            trace,
        };
        let at = later(got, self.ms(2, 6));
        let charge = self.call(ORDERS, PAYMENTS, at, req, |d, got| d.charge(got));
        let ready = later(charge.done, self.ms(1, 4));
        if charge.status == 200 {
            self.orders.push(order_id);
            let body = format!(
                "{{\"order_id\":{order_id},\"status\":\"confirmed\",\"total_cents\":{total},\
                \"currency\":\"EUR\"}}"
            );
            Response::json(201, body, ready)
        } else {
            let body = format!(
                "{{\"error\":\"payment_failed\",\"order_id\":{order_id},\"upstream_status\":{}}}",
                charge.status
            );
            Response::json(502, body, ready)
        }
    }

    /// `payments` handling `POST /charge`.
    fn charge(&mut self, got: Timestamp) -> Response {
        let n = self.charges;
        self.charges += 1;
        let ready = later(got, self.ms(20, 40));
        if self.charge_500.contains(&n) {
            let body = "{\"error\":\"internal\",\"message\":\"unexpected null in card network response\"}";
            Response::json(500, body.to_string(), ready)
        } else if n == self.charge_503 || self.rng.chance(0.1) {
            let mut resp = Response::json(
                503,
                "{\"error\":\"upstream_unavailable\",\"message\":\"card network timeout\",\
                \"retry_after_s\":2}"
                    .to_string(),
                ready,
            );
            resp.extra_headers = "Retry-After: 2\r\n";
            resp
        } else {
            let body = format!(
                "{{\"charge_id\":\"ch_{:016x}\",\"status\":\"succeeded\",\"captured\":true}}",
                self.rng.next_u64()
            );
            Response::json(200, body, ready)
        }
    }

    /// The gateway connects to the crash-looping `recommendations`: SYN, RST-ACK.
    fn try_recommendations(&mut self, at: Timestamp) {
        let mut conv = self.unconnected(GATEWAY, RECOMMENDATIONS, at, DEFAULT_MSS);
        conv.refused();
        self.retired.push(conv);
    }

    /// `orders` downloads the latest charges from `payments` (10–16 KB of JSON, over the lossy
    /// link).
    fn reconcile(&mut self, at: Timestamp) {
        let since = (at.0 / 1_000_000_000).saturating_sub(60);
        let req = Request {
            method: "GET",
            path: format!("/charges?since={since}&limit=100"),
            body: Vec::new(),
            trace: self.new_trace(),
        };
        self.call(ORDERS, PAYMENTS, at, req, |d, got| {
            let target = d.net.range_usize(10_000..=15_500);
            let mut body = String::from("{\"charges\":[");
            let mut n = 0;
            while body.len() < target {
                if n > 0 {
                    body.push(',');
                }
                let _ = write!(
                    body,
                    "{{\"charge_id\":\"ch_{:016x}\",\"order_id\":{},\"amount_cents\":{},\
                    \"currency\":\"EUR\",\"status\":\"{}\",\"created\":{}}}",
                    d.net.next_u64(),
                    d.net.range(40_000..=60_000),
                    d.net.range(990..=30_000),
                    if d.net.chance(0.9) { "succeeded" } else { "failed" },
                    since + d.net.range(0..=60)
                );
                n += 1;
            }
            let _ = write!(body, "],\"count\":{n},\"next_cursor\":null}}");
            Response::json(200, body, later(got, d.net_ms(15, 35)))
        });
    }

    /// The frontend downloads the catalog export on a connection of its own and reads it
    /// slowly, then closes the connection.
    fn catalog_export(&mut self, t: Timestamp) {
        let mut conv = self.unconnected(FRONTEND, GATEWAY, t, EXPORT_MSS);
        conv.handshake();
        self.export_client = Some(conv.client_addr());
        let req = Request {
            method: "GET",
            path: "/api/catalog/export?format=csv".into(),
            body: Vec::new(),
            trace: self.new_trace(),
        };
        let bytes = self.request_bytes(FRONTEND, GATEWAY, &req, "HTTP/1.1");
        conv.client_send_at(&bytes, t);
        let request_ts = conv.last_send_start().unwrap_or(t);
        let ready = later(conv.server_ready_at(), self.net_ms(40, 90));
        let mut csv = String::from("sku,name,category,warehouse,available,reserved,price_cents,currency,updated_at\n");
        let target = self.net.range_usize(280_000..=320_000);
        let updated = ready.0 / 1_000_000_000;
        let mut i = 0;
        while csv.len() < target {
            let (_, name, _) = SKUS[i % SKUS.len()];
            let _ = writeln!(
                csv,
                "SKU-{},{name} ({}),{},fra-{},{},{},{},EUR,{}",
                5_000 + i,
                ["black", "blue", "green", "grey", "red", "sand"][i % 6],
                CATEGORIES[i % CATEGORIES.len()],
                self.net.range(1..=3),
                self.net.range(0..=400),
                self.net.range(0..=20),
                self.net.range(490..=29_900),
                updated - self.net.range(0..=86_400)
            );
            i += 1;
        }
        let resp = Response {
            status: 200,
            body: csv.into_bytes(),
            content_type: "text/csv; charset=utf-8",
            chunked: false,
            extra_headers: "Content-Disposition: attachment; filename=\"catalog.csv\"\r\n",
            ready,
        };
        let bytes = self.response_bytes(GATEWAY, &resp, "HTTP/1.1");
        // The client application reads 16–48 KiB at a time; one stall of 0.7–0.9 s (two
        // zero-window probes), some of 250–500 ms (one), the rest 40–150 ms (none).
        let mut reads = Vec::new();
        let mut total = 0;
        while total < bytes.len() as u64 + u64::from(CLIENT_RECEIVE_WINDOW) {
            let pause = if reads.len() == 1 {
                self.net_ms(700, 900)
            } else if self.net.chance(0.3) {
                self.net_ms(250, 500)
            } else {
                self.net_ms(40, 150)
            };
            let chunk = self.net.range(4..=12) * 4_096;
            total += chunk;
            reads.push((pause, chunk as u32));
        }
        let imp = Impairments {
            lost: Vec::new(),
            slow_reader: Some(SlowReader {
                buffer: CLIENT_RECEIVE_WINDOW,
                reads,
            }),
        };
        conv.server_send_impaired(&bytes, ready, &imp);
        let response_ts = conv.last_send_start().unwrap_or(ready);
        conv.close();
        self.record(
            FRONTEND,
            GATEWAY,
            &req,
            &resp,
            "HTTP/1.1",
            &conv,
            request_ts,
            response_ts,
        );
        self.retired.push(conv);
    }

    /// The HTTP/1.0 health check: its own connection, no keep-alive, body delimited by the
    /// server closing the connection.
    fn health_check(&mut self, t: Timestamp) {
        let mut conv = self.connect(FRONTEND, GATEWAY, t);
        let req = Request {
            method: "GET",
            path: "/healthz".into(),
            body: Vec::new(),
            trace: self.new_trace(),
        };
        let bytes = self.request_bytes(FRONTEND, GATEWAY, &req, "HTTP/1.0");
        conv.client_send_at(&bytes, t);
        let request_ts = conv.last_send_start().unwrap_or(t);
        let ready = later(conv.server_ready_at(), self.ms(1, 2));
        let body = format!(
            "{{\"status\":\"ok\",\"version\":\"1.12.0\",\"uptime_s\":{}}}",
            self.rng.range(100_000..=900_000)
        );
        let resp = Response::json(200, body, ready);
        let bytes = self.response_bytes(GATEWAY, &resp, "HTTP/1.0");
        conv.server_send_at(&bytes, ready);
        let response_ts = conv.last_send_start().unwrap_or(ready);
        conv.close_from_server();
        self.record(
            FRONTEND,
            GATEWAY,
            &req,
            &resp,
            "HTTP/1.0",
            &conv,
            request_ts,
            response_ts,
        );
        self.retired.push(conv);
    }

    /// The gateway's gRPC calls to `payments` over one h2c connection kept open for the whole
    /// capture. Drawn from their own generator, after the HTTP/1 traffic, so the rest of the
    /// scenario does not depend on them.
    fn grpc_payments(&mut self, seed: u64) {
        let mut rng = SplitMix64::new(seed ^ 0x6752_5043_0000_0005);
        let end = later(DEMO_START, (DEMO_ACTIVE_SECS - 2) * 1_000 * MS);
        let mut t = later(DEMO_START, rng.range(1_500_000..=3_000_000) * US);
        let port = self.next_port[GATEWAY];
        self.next_port[GATEWAY] = port.wrapping_add(1).max(32_768);
        let client = SocketAddr::new(self.services[GATEWAY].ip, port);
        let server = SocketAddr::new(self.services[PAYMENTS].ip, DEMO_GRPC_PORT);
        let rtt_us = rng.range(180..=450);
        let mut conv = Conversation::new(client, server, t, rtt_us, rng.next_u32(), rng.next_u32());
        conv.handshake();
        let mut first = h2::PREFACE.to_vec();
        h2::frame(&mut first, h2::SETTINGS, 0, 0, &[]);
        let authority = format!("payments.shop.svc.cluster.local:{DEMO_GRPC_PORT}");
        let mut stream_id = 1u32;
        let mut n = 0u32;
        while t < end {
            let charge = n % 3 != 2;
            // The second charge always fails and the first always succeeds, so every seed has both.
            let fail = charge && (n == 1 || (n > 1 && rng.chance(0.25)));
            let method = if charge { "Charge" } else { "Refund" };
            let path = format!("/payments.Payments/{method}");
            let amount = rng.range(500..=250_000);
            let order = format!("ord-{}", rng.range(40_000..=60_000));
            let mut body = Vec::new();
            h2::pb_bytes(&mut body, 1, order.as_bytes());
            h2::pb_varint(&mut body, 2, amount);
            h2::pb_bytes(&mut body, 3, b"EUR");
            let mut req = std::mem::take(&mut first);
            let headers = h2::header_block(&[
                (":method", "POST"),
                (":scheme", "http"),
                (":path", &path),
                (":authority", &authority),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
                ("user-agent", "grpc-go/1.71.0"),
                ("grpc-timeout", "2S"),
            ]);
            h2::frame(&mut req, h2::HEADERS, h2::END_HEADERS, stream_id, &headers);
            h2::frame(&mut req, h2::DATA, h2::END_STREAM, stream_id, &h2::grpc_message(&body));
            conv.client_send_at(&req, t);
            let request_ts = conv.last_send_start().unwrap_or(t);
            let ready = later(request_ts, rng.range(2_000..=15_000) * US);
            let mut resp = Vec::new();
            if n == 0 {
                h2::frame(&mut resp, h2::SETTINGS, 0, 0, &[]);
                h2::frame(&mut resp, h2::SETTINGS, h2::ACK, 0, &[]);
            }
            let grpc_status = if fail { 14 } else { 0 };
            let response_messages = if fail {
                let block = h2::header_block(&[
                    (":status", "200"),
                    ("content-type", "application/grpc"),
                    ("grpc-status", "14"),
                    ("grpc-message", DEMO_GRPC_UNAVAILABLE),
                ]);
                h2::frame(
                    &mut resp,
                    h2::HEADERS,
                    h2::END_HEADERS | h2::END_STREAM,
                    stream_id,
                    &block,
                );
                0
            } else {
                let block = h2::header_block(&[(":status", "200"), ("content-type", "application/grpc")]);
                h2::frame(&mut resp, h2::HEADERS, h2::END_HEADERS, stream_id, &block);
                let mut reply = Vec::new();
                h2::pb_bytes(&mut reply, 1, format!("ch_{:016x}", rng.next_u64()).as_bytes());
                h2::pb_varint(&mut reply, 2, 1);
                h2::frame(&mut resp, h2::DATA, 0, stream_id, &h2::grpc_message(&reply));
                let trailers = h2::header_block(&[("grpc-status", "0")]);
                h2::frame(
                    &mut resp,
                    h2::HEADERS,
                    h2::END_HEADERS | h2::END_STREAM,
                    stream_id,
                    &trailers,
                );
                1
            };
            conv.server_send_at(&resp, ready);
            if n == 0 {
                // The client acknowledges the server's SETTINGS.
                let mut ack = Vec::new();
                h2::frame(&mut ack, h2::SETTINGS, h2::ACK, 0, &[]);
                conv.client_send(&ack, 50);
            }
            self.grpc_calls.push(DemoGrpcCall {
                client: self.services[GATEWAY].name,
                server: self.services[PAYMENTS].name,
                service: "payments.Payments",
                method,
                stream_id,
                grpc_status,
                grpc_message: fail.then_some(DEMO_GRPC_UNAVAILABLE),
                request_messages: 1,
                response_messages,
                client_addr: client,
                server_addr: server,
                request_ts,
            });
            stream_id += 2;
            n += 1;
            t = later(t, rng.range(2_500_000..=6_000_000) * US);
        }
        self.retired.push(conv);
    }

    /// `orders`' Redis cache over one connection kept open for the whole capture, from its own
    /// generator. Each round looks up a session and an order (both in one write, sometimes),
    /// stores what missed, and one round asks a hash command of a string key (`WRONGTYPE`).
    fn redis_cache(&mut self, seed: u64) {
        let mut rng = SplitMix64::new(seed ^ 0x5245_4449_5300_0006);
        let end = later(DEMO_START, (DEMO_ACTIVE_SECS - 2) * 1_000 * MS);
        let mut t = later(DEMO_START, rng.range(500_000..=1_500_000) * US);
        let client = SocketAddr::new(self.services[ORDERS].ip, rng.range(40_000..=60_000) as u16);
        let server = self.addr(REDIS);
        let mut conv = Conversation::new(client, server, t, rng.range(40..=120), rng.next_u32(), rng.next_u32());
        conv.handshake();
        let wrongtype_round = rng.range(1..=4);
        let mut round = 0;
        while t < end {
            let session = format!("session:{:08x}", rng.next_u32());
            let order = format!("order:{}", rng.range(40_000..=60_000));
            // (command, key, value to set)
            let mut batches: Vec<Vec<(&'static str, String, Option<String>)>> = Vec::new();
            let gets = vec![("GET", session.clone(), None), ("GET", order.clone(), None)];
            if round % 2 == 0 || rng.chance(0.3) {
                batches.push(gets);
            } else {
                batches.extend(gets.into_iter().map(|c| vec![c]));
            }
            if round == wrongtype_round {
                batches.push(vec![("HGET", session.clone(), Some("user".to_string()))]);
            }
            // Every third lookup misses and is filled in.
            let mut misses = Vec::new();
            for batch in &mut batches {
                let mut request = Vec::new();
                let mut reply = Vec::new();
                let mut facts = Vec::new();
                for (command, key, value) in batch.iter() {
                    let (reply_type, error) = match *command {
                        "HGET" => {
                            request.extend(msg::resp_command(&[command, key, value.as_deref().unwrap_or("")]));
                            reply.extend(msg::resp_error(DEMO_REDIS_WRONGTYPE));
                            ("error", Some(DEMO_REDIS_WRONGTYPE))
                        }
                        "SET" => {
                            let v = value.as_deref().unwrap_or("");
                            request.extend(msg::resp_command(&[command, key, v, "EX", "300"]));
                            reply.extend(msg::resp_simple("OK"));
                            ("simple_string", None)
                        }
                        _ => {
                            request.extend(msg::resp_command(&[command, key]));
                            if rng.range(0..=2) == 0 {
                                reply.extend(msg::resp_null());
                                misses.push(key.clone());
                                ("null_bulk_string", None)
                            } else {
                                let v = format!("{{\"id\":\"{key}\",\"v\":{}}}", rng.range(1..=99));
                                reply.extend(msg::resp_bulk(&v));
                                ("bulk_string", None)
                            }
                        }
                    };
                    facts.push((*command, key.clone(), reply_type, error));
                }
                conv.client_send_at(&request, later(conv.client_ready_at(), rng.range(50..=400) * US));
                let request_ts = conv.last_send_start().unwrap_or(t);
                conv.server_send_at(&reply, later(conv.server_ready_at(), rng.range(80..=600) * US));
                let pipelined = facts.len() > 1;
                for (command, key, reply_type, error) in facts {
                    self.redis_commands.push(DemoRedisCommand {
                        client_addr: client,
                        server_addr: server,
                        command,
                        key,
                        reply_type,
                        error,
                        pipelined,
                        request_ts,
                    });
                }
            }
            for key in misses {
                let value = format!("{{\"id\":\"{key}\",\"v\":{}}}", rng.range(1..=99));
                let request = msg::resp_command(&["SET", &key, &value, "EX", "300"]);
                conv.client_send_at(&request, later(conv.client_ready_at(), rng.range(50..=400) * US));
                let request_ts = conv.last_send_start().unwrap_or(t);
                conv.server_send_at(
                    &msg::resp_simple("OK"),
                    later(conv.server_ready_at(), rng.range(80..=600) * US),
                );
                self.redis_commands.push(DemoRedisCommand {
                    client_addr: client,
                    server_addr: server,
                    command: "SET",
                    key,
                    reply_type: "simple_string",
                    error: None,
                    pipelined: false,
                    request_ts,
                });
            }
            round += 1;
            t = later(conv.end_ts().max(t), rng.range(2_000_000..=5_000_000) * US);
        }
        self.retired.push(conv);
    }

    /// Lookups of service names against `kube-dns` over UDP, one over TCP, and the mistyped
    /// `payments` name answered NXDOMAIN. From their own generator.
    fn dns_lookups(&mut self, seed: u64) {
        let mut rng = SplitMix64::new(seed ^ 0x444E_5300_0000_0007);
        let server = self.addr(KUBE_DNS);
        let names = [
            (ORDERS, "payments.shop.svc.cluster.local", PAYMENTS),
            (ORDERS, "redis.shop.svc.cluster.local", REDIS),
            (GATEWAY, "orders.shop.svc.cluster.local", ORDERS),
            (GATEWAY, "inventory.shop.svc.cluster.local", INVENTORY),
            (FRONTEND, "api-gateway.web.svc.cluster.local", GATEWAY),
            (GATEWAY, "payments.shop.svc.cluster.local", PAYMENTS),
        ];
        let count = rng.range(8..=12) as usize;
        let nx_at = rng.range(1..=4) as usize;
        let tcp_at = rng.range(5..=7) as usize;
        let mut t = later(DEMO_START, rng.range(200_000..=900_000) * US);
        for i in 0..count {
            let (client_svc, qname, target) = if i == nx_at {
                (ORDERS, DEMO_NXDOMAIN_NAME, PAYMENTS)
            } else {
                names[rng.range(0..=names.len() as u64 - 1) as usize]
            };
            let rcode = if i == nx_at { msg::DNS_NXDOMAIN } else { 0 };
            let answers: Vec<Ipv4Addr> = match (rcode, self.services[target].ip) {
                (0, IpAddr::V4(ip)) => vec![ip],
                _ => Vec::new(),
            };
            let octets: Vec<[u8; 4]> = answers.iter().map(|a| a.octets()).collect();
            let id = rng.next_u32() as u16;
            let query = msg::dns_query(id, qname, msg::DNS_A);
            let response = msg::dns_response(id, qname, msg::DNS_A, rcode, 30, &octets);
            let client = SocketAddr::new(self.services[client_svc].ip, rng.range(33_000..=60_999) as u16);
            let tcp = i == tcp_at;
            let query_ts = if tcp {
                let mut conv =
                    Conversation::new(client, server, t, rng.range(180..=450), rng.next_u32(), rng.next_u32());
                conv.handshake();
                conv.client_send(&msg::dns_over_tcp(&query), 30);
                let query_ts = conv.last_send_start().unwrap_or(t);
                conv.server_send(&msg::dns_over_tcp(&response), rng.range(100..=900));
                conv.close();
                self.retired.push(conv);
                query_ts
            } else {
                let ip_id = rng.next_u32() as u16;
                let answered = later(t, rng.range(150..=2_000) * US);
                self.datagrams.push(SynthPacket {
                    ts: t,
                    data: udp_frame(&UdpSpec {
                        src: client,
                        dst: server,
                        ip_id,
                        payload: &query,
                    }),
                });
                self.datagrams.push(SynthPacket {
                    ts: answered,
                    data: udp_frame(&UdpSpec {
                        src: server,
                        dst: client,
                        ip_id: ip_id ^ 0x5a5a,
                        payload: &response,
                    }),
                });
                t
            };
            self.dns_queries.push(DemoDnsQuery {
                client: self.services[client_svc].name,
                client_addr: client,
                server_addr: server,
                tcp,
                id,
                qname: qname.to_string(),
                rcode,
                answers,
                query_ts,
            });
            t = later(t, rng.range(1_500_000..=6_000_000) * US);
        }
    }

    /// An AMQP connection from `from` to `rabbitmq` opened at `at`: the handshake and channel 1.
    fn amqp_connection(&mut self, from: usize, at: Timestamp, rng: &mut SplitMix64) -> Conversation {
        let client = SocketAddr::new(self.services[from].ip, rng.range(40_000..=60_000) as u16);
        let server = self.addr(RABBITMQ);
        let mut conv = Conversation::new(client, server, at, rng.range(180..=450), rng.next_u32(), rng.next_u32());
        conv.handshake();
        let pairs = [
            ["Connection.Start", "Connection.Start-Ok"],
            ["Connection.Tune", "Connection.Tune-Ok"],
            ["Connection.Open", "Connection.Open-Ok"],
            ["Channel.Open", "Channel.Open-Ok"],
        ];
        // The writes after the protocol header alternate server, client, ...; each group
        // starts with the write whose first frame is its first method.
        let mut starts = Vec::new();
        for (i, (from_client, bytes)) in msg::amqp_open(self.services[from].name).into_iter().enumerate() {
            if from_client {
                conv.client_send(&bytes, rng.range(50..=300));
            } else {
                conv.server_send(&bytes, rng.range(50..=300));
            }
            // Writes 1 (Start), 3 (Tune), 4 (Tune-Ok + Open) and 6 (Channel.Open) start groups;
            // Open starts in the middle of write 4, at the same time.
            if [1, 3, 4, 6].contains(&i) {
                starts.push(conv.last_send_start().unwrap_or(at));
            }
        }
        for (methods, ts) in pairs.iter().zip(starts) {
            self.amqp_groups.push(DemoAmqpGroup {
                client_addr: client,
                server_addr: server,
                channel: if methods[0].starts_with("Channel") { 1 } else { 0 },
                methods: methods.to_vec(),
                exchange: None,
                routing_key: None,
                reply_code: None,
                ts,
            });
        }
        conv
    }

    fn amqp_group(
        &mut self,
        conv: &Conversation,
        methods: &[&'static str],
        route: Option<(&'static str, &'static str)>,
        reply_code: Option<u16>,
    ) {
        self.amqp_groups.push(DemoAmqpGroup {
            client_addr: conv.client_addr(),
            server_addr: conv.server_addr(),
            channel: 1,
            methods: methods.to_vec(),
            exchange: route.map(|r| r.0),
            routing_key: route.map(|r| r.1),
            reply_code,
            ts: conv.last_send_start().unwrap_or(DEMO_START),
        });
    }

    /// The gateway's email jobs through `rabbitmq` to the `worker`, from their own generator.
    fn amqp_jobs(&mut self, seed: u64) {
        let mut rng = SplitMix64::new(seed ^ 0x414D_5150_0000_0008);
        let start = later(DEMO_START, rng.range(300_000..=1_000_000) * US);
        let mut consumer = self.amqp_connection(WORKER, start, &mut rng);
        let (consume, consume_ok) = msg::amqp_consume(1, "email", "worker-1");
        consumer.client_send(&consume, rng.range(100..=500));
        self.amqp_group(&consumer, &["Basic.Consume", "Basic.Consume-Ok"], None, None);
        consumer.server_send(&consume_ok, rng.range(100..=500));
        let mut publisher = self.amqp_connection(GATEWAY, later(start, rng.range(200_000..=800_000) * US), &mut rng);
        let end = later(DEMO_START, (DEMO_ACTIVE_SECS - 3) * 1_000 * MS);
        let jobs = rng.range(6..=10);
        let unroutable = rng.range(1..=jobs - 1);
        let mut t = later(publisher.end_ts(), rng.range(1_000_000..=3_000_000) * US);
        let mut delivery = 0u64;
        for n in 0..jobs {
            if t >= end {
                break;
            }
            let lost = n == unroutable;
            let key = if lost { DEMO_AMQP_UNROUTABLE_KEY } else { "email.send" };
            let body = format!(
                "{{\"to\":\"user{}@example.com\",\"template\":\"order-confirmation\"}}",
                rng.range(1_000..=9_999)
            );
            let mut bytes = Vec::new();
            msg::amqp_publish(&mut bytes, 1, "jobs", key, body.as_bytes());
            publisher.client_send_at(&bytes, t);
            self.amqp_group(&publisher, &["Basic.Publish"], Some(("jobs", key)), None);
            if lost {
                let mut back = Vec::new();
                msg::amqp_return(&mut back, 1, 312, "NO_ROUTE", "jobs", key, body.as_bytes());
                publisher.server_send(&back, rng.range(200..=900));
                self.amqp_group(&publisher, &["Basic.Return"], Some(("jobs", key)), Some(312));
            } else {
                delivery += 1;
                let mut out = Vec::new();
                msg::amqp_deliver(&mut out, 1, "worker-1", delivery, "jobs", key, body.as_bytes());
                let at = later(publisher.end_ts().max(consumer.end_ts()), rng.range(300..=2_000) * US);
                consumer.server_send_at(&out, at);
                self.amqp_group(&consumer, &["Basic.Deliver"], Some(("jobs", key)), None);
                let mut ack = Vec::new();
                msg::amqp_ack(&mut ack, 1, delivery);
                let done = later(consumer.end_ts(), rng.range(20_000..=300_000) * US);
                consumer.client_send_at(&ack, done);
                self.amqp_group(&consumer, &["Basic.Ack"], None, None);
            }
            t = later(t.max(consumer.end_ts()), rng.range(2_000_000..=7_000_000) * US);
        }
        self.retired.push(publisher);
        self.retired.push(consumer);
    }

    /// A Kafka client connection from `from` to the broker, opened at `at`, after ApiVersions
    /// and Metadata for the topic. Returns it with the next correlation id.
    fn kafka_connection(
        &mut self,
        from: usize,
        client_id: &'static str,
        at: Timestamp,
        rng: &mut SplitMix64,
    ) -> (Conversation, i32) {
        let client = SocketAddr::new(self.services[from].ip, rng.range(40_000..=60_000) as u16);
        let mut conv = Conversation::new(
            client,
            self.addr(KAFKA),
            at,
            rng.range(180..=450),
            rng.next_u32(),
            rng.next_u32(),
        );
        conv.handshake();
        let corr = rng.range(1..=1_000) as i32;
        let req = msg::kafka_request(msg::KAFKA_API_VERSIONS, 0, corr, client_id, &[]);
        conv.client_send(&req, rng.range(50..=300));
        self.kafka_fact(&conv, "API_VERSIONS", 0, corr, client_id, None);
        conv.server_send(
            &msg::kafka_response(corr, &msg::kafka_api_versions_response()),
            rng.range(100..=600),
        );
        let topics = [DEMO_KAFKA_TOPIC];
        let req = msg::kafka_request(
            msg::KAFKA_METADATA,
            1,
            corr + 1,
            client_id,
            &msg::kafka_metadata_request(&topics),
        );
        conv.client_send(&req, rng.range(50..=300));
        self.kafka_fact(&conv, "METADATA", 1, corr + 1, client_id, None);
        let body = msg::kafka_metadata_response("kafka-0.kafka.data.svc.cluster.local", 9092, &topics);
        conv.server_send(&msg::kafka_response(corr + 1, &body), rng.range(100..=600));
        (conv, corr + 2)
    }

    fn kafka_fact(
        &mut self,
        conv: &Conversation,
        api_key_name: &'static str,
        api_version: i16,
        correlation_id: i32,
        client_id: &'static str,
        record_count: Option<u64>,
    ) {
        self.kafka_requests.push(DemoKafkaRequest {
            client_addr: conv.client_addr(),
            server_addr: conv.server_addr(),
            api_key_name,
            api_version,
            correlation_id,
            client_id,
            topics: if api_key_name == "API_VERSIONS" {
                Vec::new()
            } else {
                vec![DEMO_KAFKA_TOPIC]
            },
            record_count,
            request_ts: conv.last_send_start().unwrap_or(DEMO_START),
        });
    }

    /// `orders` produces new orders to `orders.created`; `inventory` fetches them. From their
    /// own generator.
    fn kafka_orders(&mut self, seed: u64) {
        let mut rng = SplitMix64::new(seed ^ 0x4B41_464B_4100_0009);
        let end = later(DEMO_START, (DEMO_ACTIVE_SECS - 3) * 1_000 * MS);
        let start = later(DEMO_START, rng.range(400_000..=1_200_000) * US);
        let (mut producer, mut corr) = self.kafka_connection(ORDERS, "orders-producer", start, &mut rng);
        // (time the broker acknowledged it, offset, key, value)
        let mut log: Vec<(Timestamp, i64, String, String)> = Vec::new();
        let mut offset = rng.range(1_000..=9_000) as i64;
        let mut t = later(producer.end_ts(), rng.range(500_000..=2_000_000) * US);
        while t < end {
            let n = rng.range(1..=3) as usize;
            let records: Vec<(String, String)> = (0..n)
                .map(|_| {
                    let id = rng.range(40_000..=60_000);
                    (
                        format!("ord-{id}"),
                        format!("{{\"order\":\"ord-{id}\",\"total\":{}}}", rng.range(500..=250_000)),
                    )
                })
                .collect();
            let refs: Vec<(&str, &str)> = records.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let ms = (t.0 / 1_000_000) as i64;
            let batch = msg::kafka_record_batch(0, ms, &refs);
            let req = msg::kafka_request(
                msg::KAFKA_PRODUCE,
                3,
                corr,
                "orders-producer",
                &msg::kafka_produce_request(DEMO_KAFKA_TOPIC, &batch),
            );
            producer.client_send_at(&req, t);
            self.kafka_fact(&producer, "PRODUCE", 3, corr, "orders-producer", Some(n as u64));
            producer.server_send(
                &msg::kafka_response(corr, &msg::kafka_produce_response(DEMO_KAFKA_TOPIC, offset)),
                rng.range(1_000..=8_000),
            );
            let acked = producer.end_ts();
            for (k, v) in records {
                log.push((acked, offset, k, v));
                offset += 1;
            }
            corr += 1;
            t = later(t, rng.range(3_000_000..=8_000_000) * US);
        }
        self.retired.push(producer);

        let start = later(start, rng.range(100_000..=600_000) * US);
        let (mut consumer, mut corr) = self.kafka_connection(INVENTORY, "inventory-consumer", start, &mut rng);
        let mut next = log.first().map_or(offset, |r| r.1);
        let mut t = later(consumer.end_ts(), rng.range(300_000..=1_000_000) * US);
        while t < end {
            let req = msg::kafka_request(
                msg::KAFKA_FETCH,
                4,
                corr,
                "inventory-consumer",
                &msg::kafka_fetch_request(DEMO_KAFKA_TOPIC, next),
            );
            consumer.client_send_at(&req, t);
            self.kafka_fact(&consumer, "FETCH", 4, corr, "inventory-consumer", None);
            let asked = consumer.last_send_start().unwrap_or(t);
            let ready: Vec<(&str, &str)> = log
                .iter()
                .filter(|r| r.1 >= next && r.0 < asked)
                .map(|r| (r.2.as_str(), r.3.as_str()))
                .collect();
            if let Some(fact) = self.kafka_requests.last_mut() {
                fact.record_count = Some(ready.len() as u64);
            }
            let batch = if ready.is_empty() {
                Vec::new()
            } else {
                msg::kafka_record_batch(next, (asked.0 / 1_000_000) as i64, &ready)
            };
            next += ready.len() as i64;
            // The broker holds an empty fetch for its max wait.
            let wait_us = if ready.is_empty() {
                500_000
            } else {
                rng.range(500..=3_000)
            };
            consumer.server_send(
                &msg::kafka_response(corr, &msg::kafka_fetch_response(DEMO_KAFKA_TOPIC, next, &batch)),
                wait_us,
            );
            corr += 1;
            t = later(consumer.end_ts(), rng.range(1_500_000..=4_000_000) * US);
        }
        self.retired.push(consumer);
    }

    /// `mobile-backend` calling `orders` directly (an undocumented dependency: everything else
    /// reaches `orders` through the gateway), over one okhttp keep-alive connection. From its own
    /// generator, last, so the rest of the scenario does not depend on it.
    fn mobile_backend(&mut self, seed: u64) {
        let mut rng = SplitMix64::new(seed ^ 0x4D4F_4249_4C45_000A);
        let end = later(DEMO_START, (DEMO_ACTIVE_SECS - 2) * 1_000 * MS);
        let mut t = later(DEMO_START, rng.range(4_000_000..=9_000_000) * US);
        let client = SocketAddr::new(self.services[MOBILE].ip, rng.range(40_000..=60_000) as u16);
        let server = self.addr(ORDERS);
        let mut conv = Conversation::new(client, server, t, rng.range(180..=450), rng.next_u32(), rng.next_u32());
        conv.handshake();
        while t < end {
            let customer = rng.range(1_000..=9_999);
            let req = Request {
                method: "GET",
                path: format!("/internal/orders?customer_id={customer}&limit=5"),
                body: Vec::new(),
                trace: self.new_trace(),
            };
            let bytes = self.request_bytes(MOBILE, ORDERS, &req, "HTTP/1.1");
            conv.client_send_at(&bytes, t);
            let request_ts = conv.last_send_start().unwrap_or(t);
            let n = rng.range_usize(0..=3);
            let orders: Vec<String> = (0..n)
                .map(|_| {
                    format!(
                        "{{\"order_id\":{},\"status\":\"{}\",\"total_cents\":{}}}",
                        rng.range(40_000..=60_000),
                        ["confirmed", "shipped", "delivered"][rng.range_usize(0..=2)],
                        rng.range(990..=30_000)
                    )
                })
                .collect();
            let body = format!(
                "{{\"customer_id\":{customer},\"orders\":[{}],\"count\":{n}}}",
                orders.join(",")
            );
            let ready = later(conv.server_ready_at(), rng.range(3_000..=14_000) * US);
            let resp = Response::json(200, body, ready);
            let bytes = self.response_bytes(ORDERS, &resp, "HTTP/1.1");
            conv.server_send_at(&bytes, ready);
            let response_ts = conv.last_send_start().unwrap_or(ready);
            self.record(MOBILE, ORDERS, &req, &resp, "HTTP/1.1", &conv, request_ts, response_ts);
            t = later(conv.end_ts().max(t), rng.range(5_000_000..=11_000_000) * US);
        }
        self.retired.push(conv);
    }

    fn finish(mut self) -> DemoScenario {
        // Connections still in the pools stay open: the capture ends while they are idle.
        for (_, pool) in std::mem::take(&mut self.pools) {
            self.retired.extend(pool);
        }
        let mut network = Vec::new();
        for conv in &self.retired {
            let service = |addr: SocketAddr| self.services.iter().position(|s| s.ip == addr.ip());
            let (Some(from), Some(to)) = (service(conv.client_addr()), service(conv.server_addr())) else {
                continue;
            };
            let events = conv.events();
            let kind = if events.refused {
                DemoPathology::Refused
            } else if lossy(from, to) {
                DemoPathology::LossyLink
            } else if self.export_client == Some(conv.client_addr()) {
                DemoPathology::SlowReceiver
            } else if is_inventory(to) {
                DemoPathology::CrossZoneRtt
            } else {
                continue;
            };
            network.push(DemoNetworkFact {
                kind,
                client: self.services[from].name,
                server: self.services[to].name,
                client_addr: conv.client_addr(),
                server_addr: conv.server_addr(),
                start_ts: conv.start_ts(),
                rtt_us: conv.rtt_us(),
                initial_rtt_ns: if events.refused {
                    conv.rtt_us() * 1_000 / 2
                } else {
                    conv.rtt_us() * 1_000
                },
                events,
            });
        }
        network.sort_by_key(|f| (f.start_ts, f.client_addr));
        let mut packets: Vec<SynthPacket> = self.retired.into_iter().flat_map(Conversation::packets).collect();
        packets.append(&mut self.datagrams);
        packets.sort_by_key(|p| p.ts);
        self.calls.sort_by_key(|c| c.request_ts);
        DemoScenario {
            packets,
            link: LINK,
            services: self.services,
            ground_truth: self.calls,
            ground_truth_network: network,
            ground_truth_grpc: self.grpc_calls,
            ground_truth_redis: self.redis_commands,
            ground_truth_dns: self.dns_queries,
            ground_truth_kafka: {
                self.kafka_requests.sort_by_key(|r| r.request_ts);
                self.kafka_requests
            },
            ground_truth_amqp: {
                self.amqp_groups.sort_by_key(|g| g.ts);
                self.amqp_groups
            },
            ground_truth_rollout: demo_rollout(),
        }
    }
}

/// The `available` number of an inventory answer (0 when absent).
fn stock_level(body: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(body);
    text.split("\"available\":")
        .nth(1)
        .map(|rest| rest.chars().take_while(char::is_ascii_digit).collect::<String>())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, Shared};
    use crate::flows::FlowRecord;
    use crate::health::{Verdict, assess_flow};
    use crate::limits::Limits;
    use crate::store::Order;
    use crate::synth::packet::{ACK, FIN, PSH, RST, SYN, Transport, decode_frame};
    use crate::synth::testutil::{parse_messages, reassemble};
    use crate::tcp::analysis::{TcpMetrics, completeness as C};
    use std::collections::{BTreeSet, HashMap};
    use std::ops::ControlFlow;
    use std::sync::Arc;

    fn service_ip(demo: &DemoScenario, name: &str) -> IpAddr {
        demo.services.iter().find(|s| s.name == name).unwrap().ip
    }

    #[test]
    fn frames_are_valid_and_time_ordered() {
        let demo = demo_packets(1);
        assert_eq!(demo.link, LinkType::ETHERNET);
        assert!(demo.packets.windows(2).all(|w| w[0].ts <= w[1].ts));
        let first = demo.packets.first().unwrap().ts;
        let last = demo.packets.last().unwrap().ts;
        assert_eq!(first, DEMO_START);
        let span_s = (last.0 - first.0) / 1_000_000_000;
        assert!((55..=65).contains(&span_s), "capture spans {span_s} s");
        let bytes: usize = demo.packets.iter().map(|p| p.data.len()).sum();
        assert!(bytes < 3 << 20, "{bytes} bytes of packets");
        let ips: BTreeSet<IpAddr> = demo.services.iter().map(|s| s.ip).collect();
        let down = service_ip(&demo, "recommendations");
        let mut requests = 0;
        let mut udp = 0;
        for p in &demo.packets {
            let d = decode_frame(&p.data).unwrap();
            assert!(d.dont_fragment);
            assert!(ips.contains(&d.src.ip()) && ips.contains(&d.dst.ip()));
            let Transport::Tcp { flags, .. } = d.transport else {
                assert!(d.src.port() == 53 || d.dst.port() == 53, "UDP other than DNS: {d:?}");
                udp += 1;
                continue;
            };
            if d.src.ip() == down {
                assert_eq!(flags, RST | ACK, "recommendations only refuses");
            } else {
                assert_eq!(flags & RST, 0);
            }
            assert!(flags & (SYN | FIN | ACK | PSH) != 0);
            if d.payload.starts_with(b"GET ") || d.payload.starts_with(b"POST ") {
                requests += 1;
            }
        }
        // Retransmitted requests show twice.
        let retransmitted_requests = demo
            .ground_truth_network
            .iter()
            .map(|f| f.events.retransmissions)
            .sum::<u64>();
        let udp_lookups = demo.ground_truth_dns.iter().filter(|q| !q.tcp).count();
        assert_eq!(udp, 2 * udp_lookups, "a query and a response per UDP lookup");
        assert!(requests >= demo.ground_truth.len());
        assert!(requests as u64 <= demo.ground_truth.len() as u64 + retransmitted_requests);
    }

    #[test]
    fn ground_truth_matches_the_wire() {
        let demo = demo_packets(7);
        let tcp = demo
            .packets
            .iter()
            .filter(|p| matches!(decode_frame(&p.data).unwrap().transport, Transport::Tcp { .. }));
        let (conns, streams) = reassemble(tcp.map(|p| &p.data[..]));
        let down = service_ip(&demo, "recommendations");
        let (refused, conns): (Vec<_>, Vec<_>) = conns.into_iter().partition(|(_, s)| s.ip() == down);
        // The h2c connection is checked by `engine_finds_every_grpc_call`.
        // The h2c, Redis and DNS connections are checked by `engine_finds_every_grpc_call` and
        // `engine_finds_every_redis_dns_amqp_and_kafka_message`.
        let conns: Vec<_> = conns
            .into_iter()
            .filter(|(_, s)| {
                ![DEMO_GRPC_PORT, DEMO_REDIS_PORT, DEMO_AMQP_PORT, DEMO_KAFKA_PORT, 53].contains(&s.port())
            })
            .collect();
        let refused_facts = demo
            .ground_truth_network
            .iter()
            .filter(|f| f.kind == DemoPathology::Refused)
            .count();
        assert_eq!(refused.len(), refused_facts);
        // Calls per connection in request order, from the ground truth.
        let mut expected: HashMap<(SocketAddr, SocketAddr), Vec<&DemoCall>> = HashMap::new();
        for c in &demo.ground_truth {
            expected.entry((c.client_addr, c.server_addr)).or_default().push(c);
        }
        assert_eq!(conns.len(), expected.len(), "every connection carries calls");
        let by_ip: HashMap<IpAddr, &str> = demo.services.iter().map(|s| (s.ip, s.name)).collect();
        let mut seen = 0;
        for (c, s) in conns {
            let calls = &expected[&(c, s)];
            let reqs = parse_messages(&streams[&(c, s)], false);
            let resps = parse_messages(&streams[&(s, c)], true);
            assert_eq!((reqs.len(), resps.len()), (calls.len(), calls.len()));
            for ((call, req), resp) in calls.iter().zip(&reqs).zip(&resps) {
                assert_eq!(req.line, format!("{} {}", call.method, call.path));
                assert_eq!(resp.line, call.status.to_string());
                assert_eq!(req.body.len(), call.request_body_len);
                assert_eq!(resp.body.len(), call.response_body_len);
                assert_eq!(resp.chunked, call.chunked);
                let version = if call.version == "HTTP/1.0" { 0 } else { 1 };
                assert_eq!((req.version, resp.version), (version, version));
                assert_eq!(by_ip[&c.ip()], call.client);
                assert_eq!(by_ip[&s.ip()], call.server);
                assert!(call.request_ts < call.response_ts);
                seen += 1;
            }
        }
        assert_eq!(seen, demo.ground_truth.len());
    }

    /// The gRPC calls are varied, and our engine finds each one (HTTP/2 prior knowledge on a
    /// port it has no hint for) with its method, status and message counts.
    #[test]
    fn engine_finds_every_grpc_call() {
        for seed in [7, 1, 3] {
            let demo = demo_packets(seed);
            let truth = &demo.ground_truth_grpc;
            assert!(
                (8..=25).contains(&truth.len()),
                "seed {seed}: {} gRPC calls",
                truth.len()
            );
            let count = |f: &dyn Fn(&DemoGrpcCall) -> bool| truth.iter().filter(|c| f(c)).count();
            assert!(
                count(&|c| c.method == "Charge" && c.grpc_status == 14) >= 1,
                "seed {seed}"
            );
            assert!(
                count(&|c| c.method == "Charge" && c.grpc_status == 0) >= 1,
                "seed {seed}"
            );
            assert!(count(&|c| c.method == "Refund") >= 1, "seed {seed}");
            assert_eq!(count(&|c| c.method == "Refund" && c.grpc_status != 0), 0);
            let shared = replay(&demo);
            let mut found = Vec::new();
            shared.store.scan(Order::Asc, None, &mut |e| {
                if let Some(s) = e.h2() {
                    assert_eq!(e.protocol.name(), "grpc", "{e:?}");
                    assert_eq!(s.flags, 0, "{s:?}");
                    let g = s.grpc.as_deref().expect("a gRPC call");
                    found.push((
                        e.src,
                        e.dst,
                        s.stream_id,
                        format!("{}/{}", g.service, g.method),
                        s.status,
                        g.status,
                        g.message.as_deref().map(str::to_string),
                        g.request_messages,
                        g.response_messages,
                    ));
                }
                ControlFlow::Continue(())
            });
            let want: Vec<_> = truth
                .iter()
                .map(|c| {
                    (
                        c.client_addr,
                        c.server_addr,
                        c.stream_id,
                        format!("{}/{}", c.service, c.method),
                        Some(200),
                        Some(c.grpc_status),
                        c.grpc_message.map(str::to_string),
                        c.request_messages,
                        c.response_messages,
                    )
                })
                .collect();
            assert_eq!(found, want, "seed {seed}");
        }
    }

    /// Every seeded Redis command is found with its key and reply type (pipelined ones too),
    /// every DNS lookup with its name, transport and RCODE, and every AMQP method group with its
    /// methods, exchange, routing key and reply code, and every Kafka request with its API, client,
    /// topics and record count.
    #[test]
    fn engine_finds_every_redis_dns_amqp_and_kafka_message() {
        for seed in [7, 1, 3] {
            let demo = demo_packets(seed);
            let redis = &demo.ground_truth_redis;
            let count = |f: &dyn Fn(&DemoRedisCommand) -> bool| redis.iter().filter(|c| f(c)).count();
            assert!(count(&|c| c.pipelined) >= 2, "seed {seed}");
            assert!(count(&|c| c.reply_type == "null_bulk_string") >= 1, "seed {seed}");
            assert!(count(&|c| c.reply_type == "bulk_string") >= 1, "seed {seed}");
            assert!(count(&|c| c.command == "SET") >= 1, "seed {seed}");
            assert_eq!(count(&|c| c.reply_type == "error"), 1, "seed {seed}");
            assert!(count(&|c| c.key.starts_with("session:")) >= 1 && count(&|c| c.key.starts_with("order:")) >= 1);
            let dns = &demo.ground_truth_dns;
            assert_eq!(dns.iter().filter(|q| q.rcode == 3).count(), 1, "seed {seed}");
            assert_eq!(dns.iter().filter(|q| q.tcp).count(), 1, "seed {seed}");
            assert!(
                dns.iter()
                    .any(|q| q.qname == DEMO_NXDOMAIN_NAME && q.answers.is_empty())
            );
            assert!(dns.iter().filter(|q| q.rcode == 0).all(|q| q.answers.len() == 1));

            let shared = replay(&demo);
            let (mut found_redis, mut found_dns) = (Vec::new(), Vec::new());
            shared.store.scan(Order::Asc, None, &mut |e| {
                if let Some(r) = e.redis() {
                    found_redis.push((
                        e.src,
                        e.dst,
                        r.command.as_deref().map(str::to_string),
                        r.key().map(str::to_string),
                        r.reply_type(),
                        r.error().map(str::to_string),
                        e.ts,
                    ));
                } else if let Some(d) = e.dns() {
                    found_dns.push((
                        e.src,
                        e.dst,
                        e.transport == crate::entry::Transport::Tcp,
                        d.id,
                        d.qname().map(|n| n.trim_end_matches('.').to_string()),
                        d.qtype(),
                        d.rcode(),
                        d.response.as_ref().map(|r| r.answers.len()),
                        e.ts,
                    ));
                }
                ControlFlow::Continue(())
            });
            let want_redis: Vec<_> = redis
                .iter()
                .map(|c| {
                    (
                        c.client_addr,
                        c.server_addr,
                        Some(c.command.to_string()),
                        Some(c.key.clone()),
                        Some(c.reply_type),
                        c.error.map(str::to_string),
                        c.request_ts,
                    )
                })
                .collect();
            assert_eq!(found_redis, want_redis, "seed {seed}");
            let want_dns: Vec<_> = dns
                .iter()
                .map(|q| {
                    (
                        q.client_addr,
                        q.server_addr,
                        q.tcp,
                        q.id,
                        Some(q.qname.clone()),
                        Some(1),
                        Some(q.rcode),
                        Some(q.answers.len()),
                        q.query_ts,
                    )
                })
                .collect();
            assert_eq!(found_dns, want_dns, "seed {seed}");

            let amqp = &demo.ground_truth_amqp;
            let groups = |m: &str| amqp.iter().filter(|g| g.methods[0] == m).count();
            assert!(groups("Basic.Publish") >= 4, "seed {seed}");
            assert_eq!(groups("Basic.Return"), 1, "seed {seed}");
            assert_eq!(groups("Basic.Deliver"), groups("Basic.Publish") - 1, "seed {seed}");
            assert_eq!(groups("Basic.Ack"), groups("Basic.Deliver"), "seed {seed}");
            let mut found_amqp = Vec::new();
            shared.store.scan(Order::Asc, None, &mut |e| {
                if let Some(a) = e.amqp() {
                    // The first method may come from either side.
                    let (client, server) = if e.src.port() == DEMO_AMQP_PORT {
                        (e.dst, e.src)
                    } else {
                        (e.src, e.dst)
                    };
                    found_amqp.push((
                        client,
                        server,
                        a.channel,
                        a.methods.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
                        a.exchange.as_deref().map(str::to_string),
                        a.routing_key.as_deref().map(str::to_string),
                        a.reply_code,
                        e.ts,
                    ));
                }
                ControlFlow::Continue(())
            });
            let want_amqp: Vec<_> = amqp
                .iter()
                .map(|g| {
                    (
                        g.client_addr,
                        g.server_addr,
                        g.channel,
                        g.methods.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
                        g.exchange.map(str::to_string),
                        g.routing_key.map(str::to_string),
                        g.reply_code,
                        g.ts,
                    )
                })
                .collect();
            assert_eq!(found_amqp, want_amqp, "seed {seed}");

            let kafka = &demo.ground_truth_kafka;
            let requests = |name: &str| kafka.iter().filter(|r| r.api_key_name == name).count();
            assert_eq!((requests("API_VERSIONS"), requests("METADATA")), (2, 2), "seed {seed}");
            assert!(requests("PRODUCE") >= 4 && requests("FETCH") >= 8, "seed {seed}");
            let mut found_kafka = Vec::new();
            shared.store.scan(Order::Asc, None, &mut |e| {
                if let Some(k) = e.kafka() {
                    assert!(k.response_bytes.is_some(), "{e:?}");
                    found_kafka.push((
                        e.src,
                        e.dst,
                        k.api_name(),
                        k.api_version,
                        k.correlation_id,
                        k.client_id.as_deref().map(str::to_string),
                        k.topics.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
                        k.record_count,
                        e.ts,
                    ));
                }
                ControlFlow::Continue(())
            });
            let want_kafka: Vec<_> = kafka
                .iter()
                .map(|r| {
                    (
                        r.client_addr,
                        r.server_addr,
                        Some(r.api_key_name),
                        Some(r.api_version),
                        r.correlation_id,
                        Some(r.client_id.to_string()),
                        r.topics.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
                        r.record_count,
                        r.request_ts,
                    )
                })
                .collect();
            assert_eq!(found_kafka, want_kafka, "seed {seed}");
        }
    }

    #[test]
    fn scenario_has_the_promised_variety() {
        for seed in 0..6 {
            let demo = demo_packets(seed);
            let calls = &demo.ground_truth;
            assert!((150..=300).contains(&calls.len()), "seed {seed}: {} calls", calls.len());
            assert!(calls.windows(2).all(|w| w[0].request_ts <= w[1].request_ts));
            let count = |f: &dyn Fn(&DemoCall) -> bool| calls.iter().filter(|c| f(c)).count();
            let statuses: BTreeSet<u16> = calls.iter().map(|c| c.status).collect();
            for st in [200, 201, 400, 404, 500, 502, 503] {
                assert!(statuses.contains(&st), "seed {seed}: no {st}");
            }
            let pay500 = count(&|c| c.server == "payments" && c.status == 500);
            assert!((1..=2).contains(&pay500), "seed {seed}: {pay500} payment 500s");
            assert!(count(&|c| c.server == "payments" && c.status == 503) >= 1);
            assert_eq!(count(&|c| c.version == "HTTP/1.0"), 1);
            assert_eq!(count(&|c| c.chunked), 1);
            assert_eq!(count(&|c| c.path.starts_with("/api/catalog/export")), 1);
            assert!(count(&|c| c.path.starts_with("/charges?")) >= 2);
            let fins = demo
                .packets
                .iter()
                .filter(|p| {
                    let d = decode_frame(&p.data).unwrap();
                    matches!(d.transport, Transport::Tcp { flags, .. } if flags & FIN != 0)
                })
                .count();
            assert!(fins >= 4, "seed {seed}: idle keep-alive connections get closed too");
            for c in calls {
                let latency_ms = (c.response_ts.0 - c.request_ts.0) / MS;
                if c.server == "inventory" && latency_ms >= 800 {
                    // Up to 1.5 s in the application, plus half the cross-zone round trip.
                    assert!(latency_ms <= 1_530, "slow stock call {latency_ms} ms");
                }
                if c.server == "payments" {
                    // A lost request waits for the retransmission timeout (200 ms + RTT).
                    let lost = (200..=242).contains(&latency_ms);
                    assert!(latency_ms <= 41 || lost, "{} {} took {latency_ms} ms", c.method, c.path);
                }
                if c.server == "orders" && c.method == "GET" {
                    assert!(latency_ms <= 41, "{} {} took {latency_ms} ms", c.method, c.path);
                }
                if c.status == 404 {
                    assert!(c.path.contains("/orders/"));
                }
                if c.method == "POST" {
                    assert!(c.request_body_len > 50);
                }
            }
            assert!(count(&|c| c.server == "inventory" && c.response_ts.0 - c.request_ts.0 >= 800 * MS) >= 1);
            let edges: BTreeSet<(&str, &str)> = calls.iter().map(|c| (c.client, c.server)).collect();
            assert_eq!(
                edges,
                BTreeSet::from([
                    ("api-gateway", "inventory"),
                    ("api-gateway", "orders"),
                    ("frontend", "api-gateway"),
                    ("mobile-backend", "orders"),
                    ("orders", "payments"),
                ])
            );
        }
    }

    /// The rollout moves every `inventory` call at `DEMO_ROLLOUT_AT` to the new pod, whose
    /// `/stock` answers carry `quantity` where the old ones carry `available`; the gateway,
    /// which reads `available`, lists the products of later pages as out of stock.
    #[test]
    fn rollout_moves_inventory_calls_to_the_new_shape() {
        for seed in [7, 1, 3] {
            let demo = demo_packets(seed);
            let r = &demo.ground_truth_rollout;
            let stock: Vec<&DemoCall> = demo.ground_truth.iter().filter(|c| c.server == "inventory").collect();
            let (old, new): (Vec<&DemoCall>, Vec<&DemoCall>) = stock.iter().partition(|c| c.request_ts < r.switched_at);
            assert!(
                old.len() >= 10 && new.len() >= 10,
                "seed {seed}: {} / {}",
                old.len(),
                new.len()
            );
            assert!(
                old.iter()
                    .all(|c| c.server_pod == r.old_pod && c.path.starts_with("/stock/"))
            );
            assert!(
                new.iter()
                    .all(|c| c.server_pod == r.new_pod && c.path.starts_with("/stock/"))
            );
            assert!(r.old_pod.starts_with(r.old_replicaset) && r.new_pod.starts_with(r.new_replicaset));
            // The bodies on the wire: every answer of the new pod has exactly the new keys.
            let shared = replay(&demo);
            let new_ip = demo.services.iter().find(|s| s.pod_name == r.new_pod).unwrap().ip;
            let mut shapes: BTreeMap<bool, BTreeSet<Vec<String>>> = BTreeMap::new();
            shared.store.scan(Order::Asc, None, &mut |e| {
                if e.http_path().is_some_and(|p| p.starts_with("/stock/")) {
                    let body = e.http().unwrap().response.as_ref().unwrap().body.clone();
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
                    keys.sort();
                    shapes.entry(e.dst.ip() == new_ip).or_default().insert(keys);
                }
                ControlFlow::Continue(())
            });
            let want = |k: &[&str]| BTreeSet::from([k.iter().map(|s| s.to_string()).collect::<Vec<_>>()]);
            assert_eq!(shapes[&false], want(r.old_keys), "seed {seed}");
            assert_eq!(shapes[&true], want(r.new_keys), "seed {seed}");
        }
    }

    /// `mobile-backend` calls `orders` directly, on one connection, and nothing else.
    #[test]
    fn mobile_backend_calls_orders_directly() {
        for seed in [7, 1, 3] {
            let demo = demo_packets(seed);
            let calls: Vec<&DemoCall> = demo
                .ground_truth
                .iter()
                .filter(|c| c.client == "mobile-backend")
                .collect();
            assert!(calls.len() >= 3, "seed {seed}: {} calls", calls.len());
            for c in &calls {
                assert_eq!((c.server, c.method, c.status), ("orders", "GET", 200));
                assert!(c.path.starts_with("/internal/orders?customer_id="), "{}", c.path);
                assert_eq!(c.client_addr, calls[0].client_addr);
            }
            assert!(demo.ground_truth.iter().all(|c| c.server != "mobile-backend"));
        }
    }

    #[test]
    fn network_pathologies_per_seed() {
        for seed in 0..6 {
            let demo = demo_packets(seed);
            let facts = &demo.ground_truth_network;
            let of = |k: DemoPathology| facts.iter().filter(move |f| f.kind == k);

            // The lossy link: every orders → payments connection, each severe on its own.
            let lossy: Vec<&DemoNetworkFact> = of(DemoPathology::LossyLink).collect();
            let lossy_conns: BTreeSet<SocketAddr> = demo
                .ground_truth
                .iter()
                .filter(|c| c.server == "payments")
                .map(|c| c.client_addr)
                .collect();
            assert_eq!(lossy.len(), lossy_conns.len(), "seed {seed}");
            let mut total = TcpEvents::default();
            for f in &lossy {
                assert_eq!((f.client, f.server), ("orders", "payments"));
                assert!(
                    f.events.retransmission_rate() > 0.05,
                    "seed {seed}: {f:?} rate {}",
                    f.events.retransmission_rate()
                );
                assert_eq!(
                    f.events.zero_windows + f.events.window_updates + f.events.window_full,
                    0
                );
                total.data_segments += f.events.data_segments;
                total.retransmissions += f.events.retransmissions;
                total.fast_retransmissions += f.events.fast_retransmissions;
                total.dup_acks += f.events.dup_acks;
            }
            let originals = total.data_segments - total.retransmissions;
            let loss = total.retransmissions as f64 / originals as f64;
            assert!(
                (0.03..=0.12).contains(&loss),
                "seed {seed}: lost {loss:.3} of {originals}"
            );
            assert!(total.fast_retransmissions >= 1, "seed {seed}: {total:?}");
            assert!(
                total.retransmissions > total.fast_retransmissions,
                "seed {seed}: {total:?}"
            );
            assert!(total.dup_acks >= 3 * total.fast_retransmissions);

            // The slow receiver.
            let slow: Vec<&DemoNetworkFact> = of(DemoPathology::SlowReceiver).collect();
            assert_eq!(slow.len(), 1);
            let e = slow[0].events;
            assert_eq!((slow[0].client, slow[0].server), ("frontend", "api-gateway"));
            assert!(e.zero_window_probes >= 2, "seed {seed}: {e:?}");
            assert_eq!(e.zero_window_probe_acks, e.zero_window_probes);
            assert!(e.window_updates >= 3 && e.window_full >= 3, "seed {seed}: {e:?}");
            assert_eq!(e.zero_windows, e.window_updates + e.zero_window_probes, "{e:?}");
            assert_eq!((e.retransmissions, e.dup_acks), (0, 0));

            // Refused connections.
            let refused: Vec<&DemoNetworkFact> = of(DemoPathology::Refused).collect();
            assert!(refused.len() >= 3, "seed {seed}: {} refused", refused.len());
            for f in &refused {
                assert_eq!(
                    (f.client, f.server, f.server_addr.port()),
                    ("api-gateway", "recommendations", 8080)
                );
                assert!(f.events.refused && f.events.data_segments == 0);
            }

            // The distant inventory: every connection to it, clean but 25–40 ms away.
            let far: Vec<&DemoNetworkFact> = of(DemoPathology::CrossZoneRtt).collect();
            let inventory_conns: BTreeSet<SocketAddr> = demo
                .ground_truth
                .iter()
                .filter(|c| c.server == "inventory")
                .map(|c| c.client_addr)
                .collect();
            assert_eq!(far.len(), inventory_conns.len());
            for f in &far {
                assert!(CROSS_ZONE_RTT_US.contains(&f.rtt_us), "{f:?}");
                assert_eq!(
                    f.events,
                    TcpEvents {
                        data_segments: f.events.data_segments,
                        ..TcpEvents::default()
                    }
                );
            }
            // Everything else stays close.
            for f in facts.iter().filter(|f| f.kind != DemoPathology::CrossZoneRtt) {
                assert!(f.rtt_us < 1_000, "{f:?}");
            }
        }
    }

    #[test]
    fn deterministic_per_seed() {
        let a = demo_packets(42);
        let b = demo_packets(42);
        let c = demo_packets(43);
        assert_eq!(a.packets, b.packets);
        assert_eq!(a.ground_truth, b.ground_truth);
        assert_eq!(a.ground_truth_network, b.ground_truth_network);
        assert_eq!(a.ground_truth_redis, b.ground_truth_redis);
        assert_eq!(a.ground_truth_dns, b.ground_truth_dns);
        assert_eq!(a.ground_truth_amqp, b.ground_truth_amqp);
        assert_eq!(a.ground_truth_kafka, b.ground_truth_kafka);
        assert_eq!(a.ground_truth_rollout, c.ground_truth_rollout);
        assert_ne!(a.packets, c.packets);
        assert_eq!(a.services, c.services);
        let ns: Vec<(&str, &str)> = a.services.iter().map(|s| (s.name, s.namespace)).collect();
        assert_eq!(
            ns,
            [
                ("frontend", "web"),
                ("api-gateway", "web"),
                ("orders", "shop"),
                ("payments", "shop"),
                ("inventory", "shop"),
                ("recommendations", "shop"),
                ("redis", "shop"),
                ("kube-dns", "kube-system"),
                ("rabbitmq", "data"),
                ("worker", "shop"),
                ("kafka", "data"),
                ("mobile-backend", "mobile"),
                ("inventory", "shop")
            ]
        );
        assert!(a.services.iter().all(|s| s.pod_name.starts_with(s.name)));
    }

    #[test]
    fn stock_level_parses() {
        assert_eq!(stock_level(br#"{"sku":"X","available":17,"reserved":1}"#), 17);
        assert_eq!(stock_level(b"{}"), 0);
    }

    /// The analysis counters compared with Wireshark: retransmissions (fast and spurious
    /// included), fast, spurious, out-of-order, previous segment not captured, ACKed unseen,
    /// duplicate ACKs, zero windows, zero-window probes, window full, window updates,
    /// keep-alives, data packets.
    type Counters = [u64; 13];

    fn engine_counters(m: &TcpMetrics) -> Counters {
        [
            m.retransmissions,
            m.fast_retransmissions,
            m.spurious_retransmissions,
            m.out_of_order,
            m.missing_segments,
            m.acked_unseen,
            m.dup_acks,
            m.zero_window_events,
            m.zero_window_probes,
            m.window_full_events,
            m.window_updates,
            m.keepalive_count,
            m.data_packets[0] + m.data_packets[1],
        ]
    }

    fn fact_counters(e: &TcpEvents) -> Counters {
        [
            e.retransmissions,
            e.fast_retransmissions,
            0,
            0,
            0,
            0,
            e.dup_acks,
            e.zero_windows,
            e.zero_window_probes,
            e.window_full,
            e.window_updates,
            0,
            e.data_segments,
        ]
    }

    fn replay(demo: &DemoScenario) -> Shared {
        let shared = Shared::new(64 << 20);
        let mut engine = Engine::new(Limits::default(), shared.clone());
        let packets: Vec<(Timestamp, Vec<u8>)> = demo.packets.iter().map(|p| (p.ts, p.data.clone())).collect();
        engine.replay("demo", demo.link, &packets);
        shared
    }

    /// Our TCP analysis finds exactly the seeded pathologies, and the health verdicts walk the
    /// "network or application?" decision for them.
    #[test]
    fn engine_finds_exactly_the_seeded_pathologies() {
        for seed in [7, 1] {
            let demo = demo_packets(seed);
            let shared = replay(&demo);
            // The DNS lookups over UDP have no TCP analysis.
            let flows: Vec<_> = shared
                .flows
                .snapshot()
                .into_iter()
                .filter(|f| f.transport == crate::entry::Transport::Tcp)
                .collect();
            let facts: HashMap<(SocketAddr, SocketAddr), &DemoNetworkFact> = demo
                .ground_truth_network
                .iter()
                .map(|f| ((f.client_addr, f.server_addr), f))
                .collect();
            let mut found = 0;
            for f in &flows {
                let got = engine_counters(&f.metrics);
                let (verdict, reasons) = assess_flow(f);
                let reasons = reasons.join("; ");
                let Some(fact) = facts.get(&(f.client, f.server)) else {
                    assert_eq!(got[..12], [0; 12], "seed {seed}: unexpected flags on {f:?}");
                    let rtt = f.metrics.initial_rtt_ns.unwrap();
                    assert!(rtt < 1_000_000, "seed {seed}: {rtt} ns");
                    continue;
                };
                found += 1;
                assert_eq!(got, fact_counters(&fact.events), "seed {seed}: {fact:?}");
                assert_eq!(f.metrics.initial_rtt_ns, Some(fact.initial_rtt_ns), "{fact:?}");
                match fact.kind {
                    DemoPathology::LossyLink => {
                        assert_eq!(verdict, Verdict::Severe, "{reasons}");
                        assert!(reasons.contains("severe packet loss"), "{reasons}");
                    }
                    DemoPathology::Refused => {
                        assert_eq!(f.metrics.completeness, C::SYN | C::ACK | C::RST);
                        assert_eq!(verdict, Verdict::Severe, "{reasons}");
                        assert!(reasons.contains("refused"), "{reasons}");
                    }
                    DemoPathology::SlowReceiver => {
                        assert!(reasons.contains("zero-window"), "{reasons}");
                        assert_eq!(f.metrics.completeness, 31);
                    }
                    DemoPathology::CrossZoneRtt => assert!(reasons.contains("elevated"), "{reasons}"),
                }
            }
            assert_eq!(found, facts.len(), "seed {seed}: every seeded connection is a flow");

            // Retransmitted and probed bytes do not disturb the HTTP dissection: every call is
            // found once, with its bodies, on lossy and slow connections alike.
            // (The gRPC calls are checked by `engine_finds_every_grpc_call`, Redis and DNS by
            // `engine_finds_every_redis_dns_amqp_and_kafka_message`.)
            let mut entries = Vec::new();
            shared.store.scan(Order::Asc, None, &mut |e| {
                if e.h2().is_none()
                    && e.redis().is_none()
                    && e.dns().is_none()
                    && e.amqp().is_none()
                    && e.kafka().is_none()
                {
                    entries.push(e.clone());
                }
                ControlFlow::Continue(())
            });
            assert_eq!(entries.len(), demo.ground_truth.len(), "seed {seed}");
            for (e, c) in entries.iter().zip(&demo.ground_truth) {
                let got = (
                    e.src,
                    e.dst,
                    e.http_method(),
                    e.http_path(),
                    e.http_status(),
                    e.request_body_size(),
                    e.response_body_size(),
                );
                let want = (
                    c.client_addr,
                    c.server_addr,
                    Some(c.method),
                    Some(c.path.as_str()),
                    Some(c.status),
                    Some(c.request_body_len as u64),
                    Some(c.response_body_len as u64),
                );
                assert_eq!(got, want, "seed {seed}: {c:?}");
                assert_eq!(e.ts, c.request_ts);
            }
        }
    }

    /// One tshark stream: (client, server), [`Counters`], final completeness, initial RTT.
    struct TsharkStream {
        key: (SocketAddr, SocketAddr),
        counters: Counters,
        completeness: u8,
        initial_rtt_ns: Option<u64>,
    }

    /// Writes the demo as a pcap and checks that tshark's `tcp.analysis` flags agree with our
    /// engine, connection by connection, and with the ground truth. Skipped without tshark.
    #[test]
    fn tshark_agrees_with_the_engine() {
        let tshark = std::path::Path::new("/usr/bin/tshark");
        if !tshark.exists() {
            eprintln!("tshark not installed: skipped");
            return;
        }
        for seed in [7, 1] {
            let demo = demo_packets(seed);
            let path = std::env::temp_dir().join(format!("wirelens-demo-{}.pcap", std::process::id()));
            let file = std::fs::File::create(&path).unwrap();
            crate::synth::pcap::write_pcap(file, &demo.packets, crate::synth::pcap::TsResolution::Nanos).unwrap();
            let fields = [
                "tcp.stream",
                "ip.src",
                "tcp.srcport",
                "ip.dst",
                "tcp.dstport",
                "tcp.len",
                "tcp.completeness",
                "tcp.analysis.initial_rtt",
                "tcp.analysis.retransmission",
                "tcp.analysis.fast_retransmission",
                "tcp.analysis.spurious_retransmission",
                "tcp.analysis.out_of_order",
                "tcp.analysis.lost_segment",
                "tcp.analysis.ack_lost_segment",
                "tcp.analysis.duplicate_ack",
                "tcp.analysis.zero_window",
                "tcp.analysis.zero_window_probe",
                "tcp.analysis.window_full",
                "tcp.analysis.window_update",
                "tcp.analysis.keep_alive",
            ];
            let mut cmd = std::process::Command::new(tshark);
            cmd.args(["-2", "-n", "-r"])
                .arg(&path)
                .args(["-Y", "tcp", "-T", "fields", "-E", "separator=|"]);
            for f in fields {
                cmd.args(["-e", f]);
            }
            let out = cmd.output().unwrap();
            let _ = std::fs::remove_file(&path);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let mut streams: BTreeMap<u64, TsharkStream> = BTreeMap::new();
            for line in String::from_utf8(out.stdout).unwrap().lines() {
                let v: Vec<&str> = line.split('|').collect();
                let src = SocketAddr::new(v[1].parse().unwrap(), v[2].parse().unwrap());
                let dst = SocketAddr::new(v[3].parse().unwrap(), v[4].parse().unwrap());
                // The first packet of every demo connection is its SYN: the client's.
                let s = streams.entry(v[0].parse().unwrap()).or_insert(TsharkStream {
                    key: (src, dst),
                    counters: [0; 13],
                    completeness: 0,
                    initial_rtt_ns: None,
                });
                let has = |i: usize| u64::from(!v[i].is_empty());
                s.counters[0] += u64::from(has(8) + has(9) + has(10) > 0);
                for (k, i) in (9..=19).enumerate() {
                    s.counters[k + 1] += has(i);
                }
                s.counters[12] += u64::from(v[5] != "0");
                s.completeness = v[6].parse().unwrap_or(s.completeness);
                if !v[7].is_empty() {
                    let secs: f64 = v[7].parse().unwrap();
                    s.initial_rtt_ns = Some((secs * 1e9).round() as u64);
                }
            }
            let flows: HashMap<(SocketAddr, SocketAddr), Arc<FlowRecord>> = replay(&demo)
                .flows
                .snapshot()
                .into_iter()
                .filter(|f| f.transport == crate::entry::Transport::Tcp)
                .map(|f| ((f.client, f.server), f))
                .collect();
            let facts: HashMap<(SocketAddr, SocketAddr), &DemoNetworkFact> = demo
                .ground_truth_network
                .iter()
                .map(|f| ((f.client_addr, f.server_addr), f))
                .collect();
            assert_eq!(streams.len(), flows.len());
            for (stream, t) in &streams {
                let flow = &flows[&t.key];
                let ours = engine_counters(&flow.metrics);
                assert_eq!(t.counters, ours, "seed {seed} stream {stream} {:?}", t.key);
                assert_eq!(t.completeness, flow.metrics.completeness, "seed {seed} stream {stream}");
                assert_eq!(
                    t.initial_rtt_ns, flow.metrics.initial_rtt_ns,
                    "seed {seed} stream {stream}"
                );
                match facts.get(&t.key) {
                    Some(fact) => assert_eq!(t.counters, fact_counters(&fact.events), "seed {seed} {fact:?}"),
                    None => assert_eq!(t.counters[..12], [0; 12], "seed {seed} stream {stream}"),
                }
            }
        }
    }
}
