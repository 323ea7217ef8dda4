"""The answer bank: questions people ask an agent about their traffic, each answered against
`wirelens mcp --demo` through the official Python MCP SDK (stdio) by a scripted agent trajectory.

Every question has
- at most 3 tool calls (a `prompts/get` before them does not count: it is the playbook the agent
  follows; the calls it recommends are taken from the prompt's own text);
- a budget on every result: the structured result and its text copy each at most 16,000 bytes
  (4,000 tokens at 4 bytes per token), so no answer needs reading 50 KB;
- an assertion on the answer computed from the scenario's ground truth, which `wirelens
  demo-truth` prints from the demo generator's own records (what was put on the wire), never from
  the dissectors.

Arguments of later calls come only from earlier results (ids, pod names), never from the ground
truth: the agent does not know it. When a question needs more calls or a result is too large,
the tools change, not the question."""

import json
import re
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

import pytest
from mcp import Client, StdioServerParameters

BUDGET_BYTES = 16_000  # 4,000 tokens, estimated as bytes / 4
MAX_CALLS = 3
CATEGORIES = ("discovery", "debugging", "verification", "network", "dns", "redis", "kafka", "amqp")


# --- Ground truth ------------------------------------------------------------------------------

class Truth:
    """The demo's ground truth (`wirelens demo-truth`) with the look-ups the assertions need."""

    def __init__(self, raw: dict):
        self.raw = raw
        self.pods = raw["pods"]
        self.http = raw["http"]
        self.grpc = raw["grpc"]
        self.redis = raw["redis"]
        self.dns = raw["dns"]
        self.amqp = raw["amqp"]
        self.kafka = raw["kafka"]
        self.network = raw["network"]
        self.rollout = raw["rollout"]
        self.ip_service = {p["ip"]: p["service"] for p in self.pods}
        self.ip_namespace = {p["ip"]: p["namespace"] for p in self.pods}

    def service_of(self, addr: str) -> str:
        return self.ip_service[addr.rsplit(":", 1)[0]]

    def namespace_of(self, service: str) -> str:
        return next(p["namespace"] for p in self.pods if p["service"] == service)

    def qualified(self, service: str) -> str:
        return f"{self.namespace_of(service)}/{service}"

    def calls(self, client=None, server=None) -> list:
        return [c for c in self.http if (client is None or c["client"] == client)
                and (server is None or c["server"] == server)]

    def edges(self) -> set:
        """Every (client, server) pair of services that exchanged a call or tried to connect."""
        e = {(c["client"], c["server"]) for c in self.http}
        e |= {(c["client"], c["server"]) for c in self.grpc}
        for rows in (self.redis, self.kafka, self.amqp):
            e |= {(self.service_of(r["client_addr"]), self.service_of(r["server_addr"])) for r in rows}
        e |= {(q["client"], self.service_of(q["server_addr"])) for q in self.dns}
        e |= {(f["client"], f["server"]) for f in self.network}
        return e


def endpoint_of(method: str, path: str) -> str:
    """An HTTP call's endpoint template as api_stats names them: the query left out, path
    segments holding a digit (ids, SKUs) as `{id}`."""
    p = path.split("?", 1)[0]
    segs = ["{id}" if any(ch.isdigit() for ch in s) else s for s in p.split("/")]
    return f"{method} {'/'.join(segs) or '/'}"


def ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def percentile(values, q: float) -> float:
    """Nearest-rank percentile."""
    v = sorted(values)
    return v[max(0, min(len(v) - 1, int(round(q * len(v) + 0.5)) - 1))]


@pytest.fixture(scope="module")
def truth(wirelens_bin) -> Truth:
    out = subprocess.run([wirelens_bin, "demo-truth"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return Truth(json.loads(out.stdout))


# --- Trajectories ------------------------------------------------------------------------------

@dataclass
class Ctx:
    """What the agent has seen so far."""
    results: list = field(default_factory=list)  # structured results, in call order
    calls: list = field(default_factory=list)  # (tool, args)
    prompts: list = field(default_factory=list)  # prompt texts

    @property
    def last(self) -> dict:
        return self.results[-1]


@dataclass
class Call:
    """A tool call; `args` is a dict, or a function of what the agent has seen."""
    tool: str
    args: object = field(default_factory=dict)

    def resolve(self, ctx: Ctx):
        return self.tool, (self.args(ctx) if callable(self.args) else self.args)


@dataclass
class Prompt:
    """`prompts/get`: the playbook the following `FromPrompt` steps take their calls from."""
    name: str
    args: dict = field(default_factory=dict)


def prompt_calls(text: str) -> list:
    """The tool calls a prompt recommends, in order: inline code spans `tool {json}`."""
    return [(m.group(1), json.loads(m.group(2))) for m in re.finditer(r"`([a-z_]+) (\{[^`]*\})`", text)]


@dataclass
class FromPrompt:
    """The `index`-th tool call written in the last prompt, as written (placeholders such as
    `<id from step 1>` filled in by `fill` from earlier results)."""
    index: int
    fill: Callable = None

    def resolve(self, ctx: Ctx):
        tool, args = prompt_calls(ctx.prompts[-1])[self.index]
        if self.fill:
            args = self.fill(ctx, dict(args))
        assert "<" not in json.dumps(args), f"an unfilled placeholder in {tool} {args}"
        return tool, args


@dataclass
class Q:
    category: str
    question: str
    steps: list
    check: Callable  # (truth, ctx) -> None, asserts


async def ask(wirelens_bin: str, q: Q) -> Ctx:
    ctx = Ctx()
    params = StdioServerParameters(command=wirelens_bin, args=["mcp", "--demo"])
    async with Client(params) as client:
        for step in q.steps:
            if isinstance(step, Prompt):
                got = await client.get_prompt(step.name, step.args)
                text = "\n".join(m.content.text for m in got.messages if m.content.type == "text")
                assert len(text.encode()) <= BUDGET_BYTES, f"prompt {step.name}: {len(text.encode())} bytes"
                ctx.prompts.append(text)
                continue
            tool, args = step.resolve(ctx)
            r = await client.call_tool(tool, args)
            texts = [c.text for c in r.content if c.type == "text"]
            assert not r.is_error, f"{tool} {args}: {texts}"
            sc = r.structured_content
            size = len(json.dumps(sc, separators=(",", ":"), ensure_ascii=False).encode())
            assert size <= BUDGET_BYTES, f"{tool} {args}: structured result of {size} bytes"
            for t in texts:
                assert len(t.encode()) <= BUDGET_BYTES, f"{tool} {args}: text content of {len(t.encode())} bytes"
            if "coverage" in sc:
                assert sc["coverage"]["complete"] is True, sc["coverage"]
            ctx.calls.append((tool, args))
            ctx.results.append(sc)
    assert 1 <= len(ctx.calls) <= MAX_CALLS, f"{len(ctx.calls)} tool calls"
    return ctx


def groups(res: dict) -> dict:
    """api_stats groups by key."""
    return {g["key"]: g for g in res["groups"]}


def first_id(res: dict) -> str:
    return res["entries"][0]["id"]


def body_keys(payload: dict) -> list:
    return sorted(payload["response"]["body_json"])


# --- Checks ------------------------------------------------------------------------------------
# Each takes (truth, ctx) and asserts the answer the results give.

def c_frontend_endpoints(t, ctx):
    want = Counter(endpoint_of(c["method"], c["path"]) for c in t.calls("frontend", "api-gateway"))
    got = {k: g["count"] for k, g in groups(ctx.last).items()}
    assert got == dict(want)


def c_orders_callers(t, ctx):
    want = Counter(t.qualified(c["client"]) for c in t.calls(server="orders"))
    assert {k: g["count"] for k, g in groups(ctx.last).items()} == dict(want)
    assert "mobile/mobile-backend" in want


def c_mobile_to_orders(t, ctx):
    want = t.calls("mobile-backend", "orders")
    res = ctx.last
    assert res["total_matched"] == len(want) > 0
    got = sorted((e["timestamp"], e["method"], e["path"], e["status"]) for e in res["entries"])
    assert got == sorted((c["request_ts"], c["method"], c["path"], c["status"]) for c in want)


def c_mobile_map(t, ctx):
    edges = ctx.last["edges"]
    want = {(t.qualified(a), t.qualified(b)) for a, b in t.edges() if a == "mobile-backend"}
    assert {(e["source"], e["destination"]) for e in edges} == want == {("mobile/mobile-backend", "shop/orders")}
    assert all(e["cross_namespace"] for e in edges)
    assert edges[0]["requests"] == len(t.calls("mobile-backend"))


def c_undocumented_callers(t, ctx):
    # Only the gateway is meant to call the shop's services from outside `shop`. The broker's
    # deliveries to the worker go the other way on the worker's own connection (an AMQP consumer).
    pushed = {(t.service_of(g["server_addr"]), t.service_of(g["client_addr"])) for g in t.amqp
              if g["methods"][0] in ("Basic.Deliver", "Basic.Return")}
    pairs = t.edges() | pushed
    want = {(t.qualified(a), t.qualified(b)) for a, b in pairs
            if t.namespace_of(b) == "shop" and t.namespace_of(a) not in ("shop", "web")}
    edges = {(e["source"], e["destination"]): e for e in ctx.last["edges"]}
    assert set(edges) == want
    callers = {k for k, e in edges.items() if set(e["protocols"]) != {"amqp"}}
    assert callers == {("mobile/mobile-backend", "shop/orders")}
    assert edges[("mobile/mobile-backend", "shop/orders")]["requests"] == len(t.calls("mobile-backend", "orders"))


def c_service_map(t, ctx):
    res = ctx.last
    got = {(e["source"], e["destination"]) for e in res["edges"]}
    want = {(t.qualified(a), t.qualified(b)) for a, b in t.edges()}
    # Deliveries and returns come from the broker: those edges point from rabbitmq.
    assert want <= got | {(b, a) for a, b in got}
    assert all((a, b) in want or (b, a) in want for a, b in got), got - want
    assert res["edges_omitted"] == 0
    down = [e for e in res["edges"] if e["refused_connections"]]
    refused = [f for f in t.network if f["kind"] == "refused"]
    assert [(e["destination"], e["refused_connections"]) for e in down] == [("shop/recommendations", len(refused))]


def c_namespace_map(t, ctx):
    edges = {(e["source"], e["destination"]): e for e in ctx.last["edges"]}
    want = {(t.namespace_of(a), t.namespace_of(b)) for a, b in t.edges()}
    assert want <= set(edges) | {(b, a) for a, b in edges}
    # The calls into `shop` from the web tier (HTTP and gRPC) and from `mobile`.
    web_shop = [c for c in t.http + t.grpc if t.namespace_of(c["client"]) == "web" and t.namespace_of(c["server"]) == "shop"]
    assert edges[("web", "shop")]["requests"] == len(web_shop)
    assert edges[("mobile", "shop")]["requests"] == len(t.calls("mobile-backend"))


def c_orders_dependencies(t, ctx):
    got = {e["destination"]: e["requests"] for e in ctx.last["edges"] if e["source"] == "shop/orders"}
    def orders(addr):
        return t.service_of(addr) == "orders"

    want = {
        "shop/payments": len(t.calls("orders", "payments")),
        "shop/redis": sum(1 for r in t.redis if orders(r["client_addr"])),
        "data/kafka": sum(1 for r in t.kafka if orders(r["client_addr"])),
        "kube-system/kube-dns": sum(1 for q in t.dns if q["client"] == "orders"),
    }
    assert set(want) == {t.qualified(b) for a, b in t.edges() if a == "orders"}
    assert got == want


def c_inventory_pods(t, ctx):
    [inv] = [w for w in ctx.last["workloads"] if w["name"] == t.rollout["deployment"]]
    pods = {p["name"]: p for p in inv["pods"]}
    assert set(pods) == {t.rollout["old_pod"], t.rollout["new_pod"]}
    for name, p in pods.items():
        want = [c for c in t.calls(server="inventory") if c["server_pod"] == name]
        assert p["entries_as_destination"] == len(want) > 0
    assert ts(pods[t.rollout["new_pod"]]["created"]) < ts(t.rollout["switched_at"])


def c_redis_users(t, ctx):
    want = Counter(t.qualified(t.service_of(r["client_addr"])) for r in t.redis)
    assert {k: g["count"] for k, g in groups(ctx.last).items()} == dict(want)


def c_kafka_topics_and_producers(t, ctx):
    topics, producers = ctx.results
    want_topics = Counter(f"kafka {r['api_key_name']}" + (f" {' '.join(r['topics'])}" if r["topics"] else "")
                          for r in t.kafka)
    assert {k: g["count"] for k, g in groups(topics).items()} == dict(want_topics)
    want = Counter(t.qualified(t.service_of(r["client_addr"])) for r in t.kafka if r["api_key_name"] == "PRODUCE")
    assert {k: g["count"] for k, g in groups(producers).items()} == dict(want) == {"shop/orders": want["shop/orders"]}


def c_kafka_consumers(t, ctx):
    want = Counter(t.qualified(t.service_of(r["client_addr"])) for r in t.kafka if r["api_key_name"] == "FETCH")
    assert {k: g["count"] for k, g in groups(ctx.last).items()} == dict(want)
    assert set(want) == {"shop/inventory"}


def c_kafka_records(t, ctx):
    res = ctx.last
    want = [r for r in t.kafka if r["api_key_name"] == "PRODUCE"]
    assert res["total_matched"] == len(want)
    assert sum(e["kafka_record_count"] for e in res["entries"]) == sum(r["record_count"] for r in want)
    assert {tuple(e["kafka_topics"]) for e in res["entries"]} == {tuple(r["topics"]) for r in want}
    assert {e["kafka_client_id"] for e in res["entries"]} == {r["client_id"] for r in want}


def c_dns_lookups(t, ctx):
    rows = ctx.last["entries"]
    got = Counter((e["src.workload.name"], e["dns_qname"], e["dns_rcode"]) for e in rows)
    assert got == Counter((q["client"], q["qname"], q["rcode"]) for q in t.dns)
    for e in rows:
        q = next(q for q in t.dns if q["qname"] == e["dns_qname"])
        assert e["dns_answers"] == q["answers"]


def c_dns_failures(t, ctx):
    rows = ctx.last["entries"]
    want = [q for q in t.dns if q["rcode"] != 0]
    assert [(e["src.workload.name"], e["dns_qname"], e["dns_rcode"]) for e in rows] == \
        [(q["client"], q["qname"], q["rcode"]) for q in want]
    assert want[0]["rcode"] == 3 and "paymnets" in want[0]["qname"]


def c_dns_nxdomain_via_prompt(t, ctx):
    rows = [e for e in ctx.last["entries"] if e["protocol"] == "dns"]
    want = [q for q in t.dns if q["rcode"] != 0]
    assert len(rows) == len(want) == 1
    assert want[0]["qname"] in rows[0]["summary"] and "NXDOMAIN" in rows[0]["summary"]
    assert rows[0]["src.ip"] == want[0]["client_addr"].rsplit(":", 1)[0]


def c_dns_status(t, ctx):
    assert {k: g["count"] for k, g in groups(ctx.last).items()} == \
        dict(Counter({0: "NOERROR", 3: "NXDOMAIN"}[q["rcode"]] for q in t.dns))


def c_grpc_failures(t, ctx):
    res = ctx.last
    want = [c for c in t.grpc if c["grpc_status"] != 0]
    assert res["total_matched"] == len(want) > 0
    got = sorted((e["timestamp"], e["grpc_method"], e["grpc_status"], e["grpc_message"]) for e in res["entries"])
    assert got == sorted((c["request_ts"], c["method"], c["grpc_status"], c["grpc_message"]) for c in want)


def c_grpc_methods(t, ctx):
    g = groups(ctx.last)
    for method in {c["method"] for c in t.grpc}:
        calls = [c for c in t.grpc if c["method"] == method]
        failed = [c for c in calls if c["grpc_status"] != 0]
        key = f"{calls[0]['service']}/{method}"
        assert (g[key]["count"], g[key]["errors"]) == (len(calls), len(failed))
        assert g[key]["error_rate"] == pytest.approx(len(failed) / len(calls), abs=1e-3)
    assert g["payments.Payments/Refund"]["errors"] == 0 < g["payments.Payments/Charge"]["errors"]
    assert {s["status"] for s in g["payments.Payments/Charge"]["top_statuses"]} == {"OK", "UNAVAILABLE"}


def c_http_statuses(t, ctx):
    want = Counter(str(c["status"]) for c in t.http)
    assert {k: g["count"] for k, g in groups(ctx.last).items()} == dict(want)


def c_errors_start_at_payments(t, ctx):
    stats, rows = ctx.results
    per_server = groups(stats)
    pay = [c for c in t.calls(server="payments") if c["status"] >= 500]
    host = "payments.shop.svc.cluster.local:8080"
    assert per_server[host]["errors"] == len(pay) > 0
    http_rows = [e for e in rows["entries"] if e["protocol"].startswith("http/1")]
    assert len(http_rows) == sum(1 for c in t.http if c["status"] >= 500)
    # The earliest failing hop of each chain is payments: every 502 of orders has a payments 5xx
    # in the same few milliseconds before it.
    pay_ip = next(p["ip"] for p in t.pods if p["service"] == "payments")
    deepest = [e for e in http_rows if e["dst.ip"] == pay_ip]
    assert len(deepest) == len(pay)


def c_payments_503_body(t, ctx):
    listing, payload = ctx.results
    assert listing["total_matched"] == sum(1 for c in t.calls(server="payments") if c["status"] == 503)
    resp = payload["response"]
    assert resp["start_line"].startswith("HTTP/1.1 503")
    assert resp["body_json"]["error"] == "upstream_unavailable"
    assert {"name": "Retry-After", "value": "2"} in resp["headers"]


def export_call(t):
    """The download the slow receiver reads (its connection is the slow_receiver fact)."""
    [f] = [f for f in t.network if f["kind"] == "slow_receiver"]
    [c] = [c for c in t.http if c["client_addr"] == f["client_addr"]]
    return c


def c_slowest_endpoint(t, ctx):
    g = ctx.last["groups"]
    p99 = {x["key"]: x["latency_ms"]["p99"] for x in g if x["latency_ms"]}
    # Slowest of all: the one download a slow reader drags out (zero windows).
    export = export_call(t)
    assert max(p99, key=p99.get) == endpoint_of(export["method"], export["path"])
    # Of the endpoints that call nothing themselves (the leaves of the call graph), the stock
    # lookups: the truth's slow answers (first byte after 800 ms) are all inventory's.
    callers = {c["client"] for c in t.http}
    leaves = {endpoint_of(c["method"], c["path"]) for c in t.http if c["server"] not in callers}
    slow = {endpoint_of(c["method"], c["path"]) for c in t.http
            if c["first_response_ms"] >= 800 and c["server"] not in callers}
    assert slow == {"GET /stock/{id}"}
    assert max((k for k in p99 if k in leaves), key=p99.get) == "GET /stock/{id}"
    assert p99["GET /stock/{id}"] >= 800


def c_stock_latency(t, ctx):
    [g] = ctx.last["groups"]
    calls = t.calls(server="inventory")
    lat = g["latency_ms"]
    assert g["key"] == "GET /stock/{id}" and g["count"] == lat["samples"] == len(calls)
    firsts = [c["first_response_ms"] for c in calls]
    # Responses are one segment: elapsed is the first response byte, within HDR's 1 % precision.
    assert lat["max"] == pytest.approx(max(firsts), rel=0.02)
    assert lat["p50"] == pytest.approx(percentile(firsts, 0.5), rel=0.05, abs=1.0)
    assert lat["p50"] < 60 < 800 <= lat["p99"]


def c_stock_response(t, ctx):
    listing, payload = ctx.results
    e = listing["entries"][0]
    call = next(c for c in t.calls(server="inventory") if c["request_ts"] == e["timestamp"])
    keys = t.rollout["new_keys"] if call["server_pod"] == t.rollout["new_pod"] else t.rollout["old_keys"]
    assert body_keys(payload) == keys
    assert payload["response"]["body_json"]["sku"] == call["path"].rsplit("/", 1)[1]
    assert payload["response"]["body_size"] == call["response_body_len"]


def c_slow_over_1s(t, ctx):
    rows = ctx.last["entries"]
    assert ctx.last["total_matched"] == len(rows)
    got = {e["timestamp"] for e in rows}
    # elapsed runs to the last response byte: at least the first one, a little more for long bodies.
    sure = {c["request_ts"] for c in t.http if c["first_response_ms"] > 1000}
    maybe = {c["request_ts"] for c in t.http if c["first_response_ms"] > 850} | {export_call(t)["request_ts"]}
    assert sure <= got <= maybe, (sure - got, got - maybe)
    assert {e["dst.workload.name"] for e in rows} <= {"inventory", "api-gateway"}


def c_latency_origin(t, ctx):
    stats, slow = ctx.results
    per_server = groups(stats)
    inv = per_server["inventory.shop.svc.cluster.local:8080"]
    want = t.calls(server="inventory")
    assert inv["count"] == len(want)
    assert inv["latency_ms"]["p99"] >= 800
    rows = slow["entries"]
    inv_ips = {p["ip"] for p in t.pods if p["service"] == "inventory"}
    deepest = [e for e in rows if e["dst.ip"] in inv_ips]
    slow_truth = [c for c in want if c["first_response_ms"] > 500]
    assert len(deepest) == len(slow_truth) > 0
    # Every other slow call waited on one of them: the gateway's pages.
    others = [e for e in rows if e["dst.ip"] not in inv_ips]
    gw = next(p["ip"] for p in t.pods if p["service"] == "api-gateway")
    assert all(e["dst.ip"] == gw for e in others)


def c_404s(t, ctx):
    res = ctx.last
    want = [c for c in t.http if c["status"] == 404]
    assert res["total_matched"] == len(want) > 0
    assert sorted((e["src.workload.name"], e["dst.workload.name"], e["path"]) for e in res["entries"]) == \
        sorted((c["client"], c["server"], c["path"]) for c in want)


def c_400_reason(t, ctx):
    listing, payload = ctx.results
    want = [c for c in t.calls(server="orders") if c["status"] == 400]
    assert listing["total_matched"] == len(want) > 0
    assert payload["response"]["body_json"]["error"] == "invalid_quantity"
    assert payload["request"]["body_json"]["items"][0]["qty"] == 0


def c_checkout_errors(t, ctx):
    [g] = ctx.last["groups"]
    calls = [c for c in t.http if c["path"] == "/api/checkout"]
    assert g["count"] == len(calls)
    assert g["errors"] == sum(1 for c in calls if c["status"] >= 500)
    statuses = {s["status"]: s["count"] for s in g["top_statuses"]}
    assert statuses == dict(Counter(str(c["status"]) for c in calls))


def c_redis_errors(t, ctx):
    res = ctx.last
    want = [r for r in t.redis if r["error"]]
    assert [(e["redis_command"], e["redis_key"], e["redis_error"]) for e in res["entries"]] == \
        [(r["command"], r["key"], r["error"]) for r in want]
    assert want[0]["error"].startswith("WRONGTYPE")


def c_redis_miss_rate(t, ctx):
    misses, gets = ctx.results
    want_gets = [r for r in t.redis if r["command"] == "GET"]
    want_miss = [r for r in want_gets if r["reply_type"] == "null_bulk_string"]
    assert misses["total_matched"] == len(want_miss) > 0
    assert sorted(e["redis_key"] for e in misses["entries"]) == sorted(r["key"] for r in want_miss)
    assert gets["total"]["count"] == len(want_gets)


def c_redis_fill(t, ctx):
    misses, sets = ctx.results
    want_sets = [r for r in t.redis if r["command"] == "SET"]
    want_miss = [r for r in t.redis if r["reply_type"] == "null_bulk_string"]
    assert (misses["total_matched"], sets["total_matched"]) == (len(want_miss), len(want_sets))
    # Every miss is followed by a SET of its key, and every SET got +OK.
    for m in misses["entries"]:
        assert any(s["redis_key"] == m["redis_key"] and s["timestamp"] > m["timestamp"] for s in sets["entries"])
    assert {s["redis_reply_type"] for s in sets["entries"]} == {"simple_string"}


def c_amqp_no_route(t, ctx):
    res = ctx.last
    want = [g for g in t.amqp if g["reply_code"] == 312]
    assert [(e["amqp_methods"], e["amqp_exchange"], e["amqp_routing_key"], e["amqp_reply_code"])
            for e in res["entries"]] == [(g["methods"], g["exchange"], g["routing_key"], g["reply_code"]) for g in want]
    assert len(want) == 1


def c_amqp_flow(t, ctx):
    g = groups(ctx.last)
    count = Counter(x["methods"][0] for x in t.amqp)
    assert g["amqp Basic.Publish jobs"]["count"] == count["Basic.Publish"]
    assert g["amqp Basic.Deliver jobs"]["count"] == count["Basic.Deliver"]
    assert g["amqp Basic.Ack"]["count"] == count["Basic.Ack"]
    assert g["amqp Basic.Return jobs"]["errors"] == count["Basic.Return"] == 1
    assert count["Basic.Publish"] == count["Basic.Deliver"] + count["Basic.Return"]


def c_amqp_publishers(t, ctx):
    want = Counter(t.qualified(t.service_of(x["client_addr"])) for x in t.amqp if x["methods"][0] == "Basic.Publish")
    assert {k: g["count"] for k, g in groups(ctx.last).items()} == dict(want) == {"web/api-gateway": want["web/api-gateway"]}


def c_rollout_shape(t, ctx):
    pods, old, new = ctx.results
    r = t.rollout
    g = groups(pods)
    assert set(g) == {f"{r['namespace']}/{r['old_pod']}", f"{r['namespace']}/{r['new_pod']}"}
    for pod in (r["old_pod"], r["new_pod"]):
        want = [c for c in t.calls(server="inventory") if c["server_pod"] == pod]
        assert g[f"{r['namespace']}/{pod}"]["count"] == len(want)
    assert (body_keys(old), body_keys(new)) == (r["old_keys"], r["new_keys"])


def c_rollout_switch_time(t, ctx):
    workloads, first_new, last_old = ctx.results
    r = t.rollout
    new = [c for c in t.calls(server="inventory") if c["server_pod"] == r["new_pod"]]
    old = [c for c in t.calls(server="inventory") if c["server_pod"] == r["old_pod"]]
    assert first_new["entries"][0]["timestamp"] == min(c["request_ts"] for c in new)
    assert last_old["entries"][0]["timestamp"] == max(c["request_ts"] for c in old)
    assert ts(last_old["entries"][0]["timestamp"]) < ts(first_new["entries"][0]["timestamp"])
    assert ts(r["switched_at"]) <= ts(first_new["entries"][0]["timestamp"])


def c_rollout_before_after(t, ctx):
    before, after = ctx.results
    r = t.rollout
    calls = t.calls(server="inventory")
    pre = [c for c in calls if ts(c["request_ts"]) < ts(r["switched_at"])]
    post = [c for c in calls if ts(c["request_ts"]) >= ts(r["switched_at"])]
    assert before["total"]["count"] == len(pre) >= 20 and after["total"]["count"] == len(post) >= 20
    # Errors did not move (every stock answer is 200): the regression is not in the statuses.
    assert before["total"]["errors"] == after["total"]["errors"] == 0
    assert {c["status"] for c in calls} == {200}


def c_rollout_consequence(t, ctx):
    # After the rollout the gateway reads no `available` any more: every product listed is out of stock.
    listing, before, after = ctx.results
    rows = listing["entries"]
    want = [c for c in t.http if c["path"].startswith("/api/products?")]
    assert listing["total_matched"] == len(rows) == len(want)
    switched = ts(t.rollout["switched_at"])
    assert ts(rows[0]["timestamp"]) < switched < ts(rows[-1]["timestamp"])
    # Which stock answers each listing was built from, in the truth: the gateway's calls to
    # inventory made while it served the listing.
    def pods_behind(row):
        call = next(c for c in want if c["request_ts"] == row["timestamp"])
        start = ts(call["request_ts"])
        end = start + timedelta(milliseconds=call["first_response_ms"])
        return {c["server_pod"] for c in t.calls("api-gateway", "inventory") if start <= ts(c["request_ts"]) <= end}
    assert pods_behind(rows[0]) == {t.rollout["old_pod"]}
    assert pods_behind(rows[-1]) == {t.rollout["new_pod"]}
    assert any(p["in_stock"] for p in before["response"]["body_json"]["products"])
    assert not any(p["in_stock"] for p in after["response"]["body_json"]["products"])


def c_recommendations_down(t, ctx):
    res = ctx.last
    refused = [f for f in t.network if f["kind"] == "refused"]
    assert res["total_matched"] == len(res["flows"]) == len(refused) > 0
    assert {f["conn_state"] for f in res["flows"]} == {"refused"}
    assert sorted(f"{f['src.ip']}:{f['src.port']}" for f in res["flows"]) == sorted(f["client_addr"] for f in refused)
    assert {f["src.workload.name"] for f in res["flows"]} == {f["client"] for f in refused}


def c_unhealthy_connections(t, ctx):
    rows = ctx.last["flows"]
    assert ctx.last["total_matched"] == len(rows)
    kinds = Counter(f["kind"] for f in t.network)
    # Every seeded problem is there with its own signature; the far inventory is only "elevated"
    # when its round trip is the only thing wrong, which the verdict may leave healthy.
    lossy = [r for r in rows if r["retransmission_rate"] > 0.05]
    assert len(lossy) == kinds["lossy_link"]
    assert {(r["src.workload.name"], r["dst.workload.name"]) for r in lossy} == {("orders", "payments")}
    assert sum(1 for r in rows if r["conn_state"] == "refused") == kinds["refused"]
    slow = [r for r in rows if r["zero_window_events"] > 0]
    assert [(r["src.workload.name"], r["dst.workload.name"]) for r in slow] == [("frontend", "api-gateway")]
    far = [r for r in rows if r["initial_rtt_us"] and r["initial_rtt_us"] > 10_000]
    assert {r["dst.workload.name"] for r in far} <= {"inventory"}
    assert all(r["verdict"] in ("degraded", "severe") for r in rows)


def c_refused_overall(t, ctx):
    refused = [f for f in t.network if f["kind"] == "refused"]
    assert ctx.last["tcp_states"]["refused"] == len(refused)


def c_loss(t, ctx):
    g = ctx.last["groups"][0]
    lossy = [f for f in t.network if f["kind"] == "lossy_link"]
    servers = {f["server_addr"] for f in lossy}
    assert g["key"] in servers and g["name"].startswith("payments-")
    mine = [f for f in lossy if f["server_addr"] == g["key"]]
    assert g["retransmissions"] == sum(f["retransmissions"] for f in mine)
    assert g["retransmission_rate"] > 0.05
    assert all(x["retransmission_rate"] < 0.01 for x in ctx.last["groups"][1:])


def c_link_retransmissions(t, ctx):
    [g] = ctx.last["groups"]
    lossy = [f for f in t.network if f["kind"] == "lossy_link" and f["client"] == "orders" and f["server"] == "payments"]
    assert g["flows"] == len(lossy)
    assert (g["retransmissions"], g["fast_retransmissions"], g["dup_acks"]) == (
        sum(f["retransmissions"] for f in lossy), sum(f["fast_retransmissions"] for f in lossy),
        sum(f["dup_acks"] for f in lossy))
    assert g["verdict"] == "severe"


def c_zero_window(t, ctx):
    res = ctx.last
    slow = [f for f in t.network if f["kind"] == "slow_receiver"]
    assert res["total_matched"] == len(slow) == 1
    [f] = res["flows"]
    assert (f["client"], f["server"]) == (slow[0]["client_addr"], slow[0]["server_addr"])
    assert f["client_name"].startswith("frontend-")
    assert (f["zero_window_events"], f["zero_window_probes"], f["window_updates"]) == (
        slow[0]["zero_windows"], slow[0]["zero_window_probes"], slow[0]["window_updates"])
    assert f["retransmissions"] == 0 and any("slow to read" in r for r in f["reasons"])


def c_rtt_inventory(t, ctx):
    g = ctx.last["groups"]
    far = [f for f in t.network if f["kind"] == "cross_zone_rtt"]
    far_servers = {f["server_addr"] for f in far}
    top = [x for x in g if x["key"] in far_servers]
    assert {x["key"] for x in g[:len(far_servers)]} == far_servers
    for x in top:
        assert x["name"].startswith("inventory-")
        rtts = sorted(f["rtt_us"] for f in far if f["server_addr"] == x["key"])
        assert rtts[0] <= x["initial_rtt_p50_us"] <= rtts[-1]
        assert 25_000 <= x["initial_rtt_p50_us"] <= 40_000
    assert all(x["initial_rtt_p50_us"] < 1_000 for x in g if x["key"] not in far_servers and x["initial_rtt_p50_us"])


def c_network_health_prompt(t, ctx):
    summary, per_server, severe = ctx.results
    refused = [f for f in t.network if f["kind"] == "refused"]
    lossy = [f for f in t.network if f["kind"] == "lossy_link"]
    assert summary["tcp_states"]["refused"] == len(refused)
    worst = per_server["groups"][0]
    assert worst["key"] in {f["server_addr"] for f in lossy}
    flows = severe["flows"]
    assert severe["total_matched"] == len(flows) == len(refused) + len(lossy)
    assert Counter(f["conn_state"] for f in flows) == Counter(
        ["refused"] * len(refused) + ["established"] * len(lossy))
    assert f"{flows[0]['dst.ip']}:{flows[0]['dst.port']}" in {f["server_addr"] for f in lossy}
    assert flows[0]["src.name"].startswith("orders-") and flows[0]["retransmission_rate"] > 0.05


def c_debug_inventory(t, ctx):
    stats, conns, payload = ctx.results
    calls = t.calls("api-gateway", "inventory")
    [g] = stats["groups"]
    assert g["count"] == len(calls) and g["errors"] == 0
    assert g["latency_ms"]["max"] >= 800
    far = [f for f in t.network if f["kind"] == "cross_zone_rtt"]
    assert conns["total_matched"] == len(far)
    assert all(f["retransmissions"] == 0 for f in conns["flows"])
    assert all(25_000 <= f["initial_rtt_us"] <= 40_000 for f in conns["flows"])
    # The slowest call spent over 800 ms in the server: far more than one round trip.
    l4 = payload["l4"]
    assert l4["retransmissions"] == 0
    assert max(c["first_response_ms"] for c in calls) * 1000 > 20 * l4["initial_rtt_us"]


def c_debug_orders_payments(t, ctx):
    stats, conns = ctx.results
    calls = t.calls("orders", "payments")
    total = stats["total"]
    assert total["count"] == len(calls)
    assert total["errors"] == sum(1 for c in calls if c["status"] >= 500)
    lossy = [f for f in t.network if f["kind"] == "lossy_link"]
    assert sum(f["retransmissions"] for f in conns["flows"]) == sum(f["retransmissions"] for f in lossy)
    assert all(f["retransmission_rate"] > 0.05 for f in conns["flows"])


def c_capture_window(t, ctx):
    res = ctx.last
    first = min(ts(c["request_ts"]) for c in t.http)
    assert ts(res["coverage"]["from"]) <= first
    entries = len(t.http) + len(t.grpc) + len(t.redis) + len(t.dns) + len(t.amqp) + len(t.kafka)
    assert res["store"]["entries"] == entries


def c_traffic_to_new_pod(t, ctx):
    res = ctx.last
    r = t.rollout
    want = Counter(c["client"] for c in t.calls(server="inventory") if c["server_pod"] == r["new_pod"])
    assert {k: g["count"] for k, g in groups(res).items()} == {t.qualified(k): v for k, v in want.items()}


def c_gateway_grpc_vs_http(t, ctx):
    g = groups(ctx.last)
    grpc = [c for c in t.grpc]
    http = t.calls("orders", "payments")
    assert g["grpc"]["count"] == len(grpc) and g["grpc"]["errors"] == sum(1 for c in grpc if c["grpc_status"])
    assert g["http/1.1"]["count"] == len(http)
    assert g["http/1.1"]["errors"] == sum(1 for c in http if c["status"] >= 500)


def c_kafka_lag(t, ctx):
    fetch, produce, methods = ctx.results
    produced = sum(r["record_count"] for r in t.kafka if r["api_key_name"] == "PRODUCE")
    fetched = sum(r["record_count"] or 0 for r in t.kafka if r["api_key_name"] == "FETCH")
    assert sum(e["kafka_record_count"] or 0 for e in fetch["entries"]) == fetched
    assert sum(e["kafka_record_count"] or 0 for e in produce["entries"]) == produced
    # Every record produced before the consumer's last fetch was fetched: no lag beyond the last poll.
    last_fetch = max(ts(r["request_ts"]) for r in t.kafka if r["api_key_name"] == "FETCH")
    before = sum(r["record_count"] for r in t.kafka if r["api_key_name"] == "PRODUCE" and ts(r["request_ts"]) < last_fetch)
    assert before <= fetched <= produced
    g = groups(methods)
    assert g["kafka FETCH"]["count"] == sum(1 for r in t.kafka if r["api_key_name"] == "FETCH")


def newest_pod(workloads: dict, name: str) -> str:
    [w] = [w for w in workloads["workloads"] if w["name"] == name]
    return max(w["pods"], key=lambda p: p["created"])["name"]


def oldest_pod(workloads: dict, name: str) -> str:
    [w] = [w for w in workloads["workloads"] if w["name"] == name]
    return min(w["pods"], key=lambda p: p["created"])["name"]


def reorder_by_pod(t: Truth, ctx: Ctx) -> Ctx:
    """The (pods, old payload, new payload) of a pod comparison, whichever order api_stats listed
    the pods in (busiest first)."""
    pods, a, b = ctx.results
    first = pods["groups"][0]["key"].split("/", 1)[1]
    old, new = (a, b) if first == t.rollout["old_pod"] else (b, a)
    return Ctx(results=[pods, old, new], calls=ctx.calls, prompts=ctx.prompts)




# --- The bank ----------------------------------------------------------------------------------

def example_of(ctx: Ctx, i: int) -> str:
    return ctx.results[0]["groups"][i]["example_entry_id"]


BANK = [
    # Discovery and dependencies.
    Q("discovery", "What endpoints is the frontend calling on the API gateway?",
      [Call("api_stats", {"group_by": "endpoint", "limit": 50,
                          "filter": "src.workload.name == 'frontend' && dst.workload.name == 'api-gateway'"})],
      c_frontend_endpoints),
    Q("discovery", "Who calls the orders service?",
      [Call("api_stats", {"group_by": "client", "filter": "dst.workload.name == 'orders'"})],
      c_orders_callers),
    Q("verification", "Is the order-service receiving any traffic from the mobile backend?",
      [Call("list_entries", {"filter": "src.workload.name == 'mobile-backend' && dst.workload.name == 'orders'",
                             "fields": ["timestamp", "method", "path", "status"], "limit": 50})],
      c_mobile_to_orders),
    Q("discovery", "What does the mobile backend talk to?",
      [Call("service_map", {"filter": "src.namespace == 'mobile'"})],
      c_mobile_map),
    Q("verification", "Does anything outside the web tier call the shop's services directly?",
      [Call("service_map", {"filter": "dst.namespace == 'shop' && !(src.namespace in ['shop', 'web'])"})],
      c_undocumented_callers),
    Q("discovery", "Draw me the service map: who calls whom?",
      [Call("service_map", {})],
      c_service_map),
    Q("discovery", "Which namespaces talk to each other?",
      [Call("service_map", {"level": "namespace"})],
      c_namespace_map),
    Q("discovery", "Which services does orders depend on?",
      [Prompt("map_dependencies", {"service": "orders"}),
       FromPrompt(1)],
      c_orders_dependencies),
    Q("verification", "Which pods does the inventory deployment run, and do both get traffic?",
      [Call("list_workloads", {"namespace": "shop", "name_regex": "^inventory$"})],
      c_inventory_pods),
    Q("redis", "Which services use the Redis cache?",
      [Call("api_stats", {"group_by": "client", "filter": "redis"})],
      c_redis_users),
    Q("kafka", "Which Kafka topics are in use, and who produces to them?",
      [Call("api_stats", {"group_by": "endpoint", "filter": "kafka"}),
       Call("api_stats", {"group_by": "client", "filter": "kafka_api_key_name == 'PRODUCE'"})],
      c_kafka_topics_and_producers),
    Q("kafka", "Who consumes the orders.created topic?",
      [Call("api_stats", {"group_by": "client",
                          "filter": "kafka_api_key_name == 'FETCH' && kafka_topics.contains('orders.created')"})],
      c_kafka_consumers),
    Q("kafka", "How many order records were produced to Kafka, by which client?",
      [Call("list_entries", {"filter": "kafka_api_key_name == 'PRODUCE'", "limit": 100,
                             "fields": ["timestamp", "kafka_topics", "kafka_record_count", "kafka_client_id"]})],
      c_kafka_records),
    Q("kafka", "Is the inventory consumer keeping up with what orders produces?",
      [Call("list_entries", {"filter": "kafka_api_key_name == 'FETCH'", "limit": 100,
                             "fields": ["timestamp", "kafka_record_count"]}),
       Call("list_entries", {"filter": "kafka_api_key_name == 'PRODUCE'", "limit": 100,
                             "fields": ["timestamp", "kafka_record_count"]}),
       Call("api_stats", {"group_by": "method", "filter": "kafka"})],
      c_kafka_lag),
    Q("dns", "Which DNS names were looked up, by whom, and what did they resolve to?",
      [Call("list_entries", {"filter": "dns", "limit": 50,
                             "fields": ["src.workload.name", "dns_qname", "dns_rcode", "dns_answers"]})],
      c_dns_lookups),
    Q("dns", "Which DNS lookups failed?",
      [Call("list_entries", {"filter": "dns && dns_rcode != 0",
                             "fields": ["src.workload.name", "dns_qname", "dns_rcode"]})],
      c_dns_failures),
    Q("dns", "Is any service resolving a name that doesn't exist?",
      [Prompt("investigate_errors", {}),
       FromPrompt(2)],
      c_dns_nxdomain_via_prompt),
    Q("dns", "How many DNS queries succeeded and how many failed?",
      [Call("api_stats", {"group_by": "status", "filter": "dns"})],
      c_dns_status),

    # Debugging.
    Q("debugging", "Show me all failed gRPC calls in the payments namespace",
      [Call("list_entries", {"filter": "grpc && grpc_status != 0 && dst.workload.name == 'payments'",
                             "fields": ["timestamp", "grpc_method", "grpc_status", "grpc_message"], "limit": 100})],
      c_grpc_failures),
    Q("debugging", "Which gRPC method of payments is failing, and how often?",
      [Call("api_stats", {"group_by": "endpoint", "filter": "grpc && dst.workload.name == 'payments'"})],
      c_grpc_methods),
    Q("debugging", "How many HTTP calls ended with each status code?",
      [Call("api_stats", {"group_by": "status", "filter": "http && !grpc", "limit": 50})],
      c_http_statuses),
    Q("debugging", "Checkouts are failing with 502: which hop do the errors start at?",
      [Prompt("investigate_errors", {}),
       FromPrompt(0),
       FromPrompt(2)],
      c_errors_start_at_payments),
    Q("debugging", "What does payments answer when a charge fails with 503?",
      [Call("list_entries", {"filter": "dst.workload.name == 'payments' && status == 503", "fields": ["id"],
                             "limit": 1}),
       Call("get_payload", lambda ctx: {"id": first_id(ctx.last), "part": "response"})],
      c_payments_503_body),
    Q("debugging", "Which endpoint is the slowest?",
      [Call("api_stats", {"group_by": "endpoint", "limit": 50, "filter": "kafka_api_key_name != 'FETCH'"})],
      c_slowest_endpoint),
    Q("debugging", "What are the p50 and p99 latencies of inventory's /stock endpoint?",
      [Call("api_stats", {"group_by": "endpoint", "filter": "path.startsWith('/stock')"})],
      c_stock_latency),
    Q("verification", "What response is the inventory-service returning for the /stock endpoint?",
      [Call("list_entries", {"filter": "dst.workload.name == 'inventory' && path.startsWith('/stock')",
                             "fields": ["id", "timestamp"], "limit": 1}),
       Call("get_payload", lambda ctx: {"id": first_id(ctx.last), "part": "response"})],
      c_stock_response),
    Q("debugging", "Which requests took longer than a second?",
      [Call("list_entries", {"filter": "http && elapsed_ms > 1000", "limit": 100,
                             "fields": ["timestamp", "elapsed_ms", "src.workload.name", "dst.workload.name", "path"]})],
      c_slow_over_1s),
    Q("debugging", "The shop feels slow: where does the time go?",
      [Prompt("latency_analysis", {"filter": "http"}),
       FromPrompt(0),
       FromPrompt(1)],
      c_latency_origin),
    Q("debugging", "Are there any 404s, and for what?",
      [Call("list_entries", {"filter": "http && status == 404",
                             "fields": ["src.workload.name", "dst.workload.name", "path"]})],
      c_404s),
    Q("debugging", "Why was an order rejected with 400?",
      [Call("list_entries", {"filter": "dst.workload.name == 'orders' && status == 400", "fields": ["id"],
                             "limit": 1}),
       Call("get_payload", lambda ctx: {"id": first_id(ctx.last)})],
      c_400_reason),
    Q("debugging", "What is the error rate of POST /api/checkout?",
      [Call("api_stats", {"group_by": "endpoint", "filter": "method == 'POST' && path == '/api/checkout'"})],
      c_checkout_errors),
    Q("debugging", "Does payments fail more over gRPC or over HTTP?",
      [Call("api_stats", {"group_by": "protocol", "filter": "dst.workload.name == 'payments'"})],
      c_gateway_grpc_vs_http),
    Q("redis", "Which Redis commands failed, and why?",
      [Call("list_entries", {"filter": "redis && redis_error != ''",
                             "fields": ["redis_command", "redis_key", "redis_error"]})],
      c_redis_errors),
    Q("redis", "What is the Redis cache miss rate for GET?",
      [Call("list_entries", {"filter": "redis_command == 'GET' && redis_reply_type == 'null_bulk_string'",
                             "fields": ["redis_key"], "limit": 100}),
       Call("api_stats", {"group_by": "endpoint", "filter": "redis_command == 'GET'"})],
      c_redis_miss_rate),
    Q("redis", "Are cache misses filled in, and do the writes succeed?",
      [Call("list_entries", {"filter": "redis_command == 'GET' && redis_reply_type == 'null_bulk_string'",
                             "fields": ["timestamp", "redis_key"], "limit": 100}),
       Call("list_entries", {"filter": "redis_command == 'SET'", "fields": ["timestamp", "redis_key", "redis_reply_type"],
                             "limit": 100})],
      c_redis_fill),
    Q("amqp", "Did any AMQP message fail to route?",
      [Call("list_entries", {"filter": "amqp && amqp_reply_code == 312",
                             "fields": ["amqp_methods", "amqp_exchange", "amqp_routing_key", "amqp_reply_code"]})],
      c_amqp_no_route),
    Q("amqp", "Are the email jobs published, delivered and acknowledged?",
      [Call("api_stats", {"group_by": "endpoint", "filter": "amqp", "limit": 50})],
      c_amqp_flow),
    Q("amqp", "Who publishes to the jobs exchange?",
      [Call("api_stats", {"group_by": "client",
                          "filter": "amqp_methods.contains('Basic.Publish') && amqp_exchange == 'jobs'"})],
      c_amqp_publishers),

    # Verification of the rollout.
    Q("verification", "Did the new inventory version change the /stock response?",
      [Call("api_stats", {"group_by": "pod", "filter": "dst.workload.name == 'inventory'"}),
       Call("get_payload", lambda ctx: {"id": example_of(ctx, 0), "part": "response"}),
       Call("get_payload", lambda ctx: {"id": example_of(ctx, 1), "part": "response"})],
      lambda t, ctx: c_rollout_shape(t, reorder_by_pod(t, ctx))),
    Q("verification", "Verify the inventory rollout: did the new version break anything?",
      [Prompt("verify_deployment", {"deployed_at": "2026-01-15T10:00:30Z", "service": "inventory"}),
       FromPrompt(2),
       FromPrompt(3, lambda ctx, a: {**a, "id": example_of(ctx, 0)}),
       FromPrompt(4, lambda ctx, a: {**a, "id": example_of(ctx, 1)})],
      lambda t, ctx: c_rollout_shape(t, reorder_by_pod(t, ctx))),
    Q("verification", "Did errors or latency change after the inventory rollout at 10:00:30?",
      [Prompt("verify_deployment", {"deployed_at": "2026-01-15T10:00:30Z", "service": "inventory"}),
       FromPrompt(0),
       FromPrompt(1)],
      c_rollout_before_after),
    Q("verification", "When did inventory traffic move to the new pod?",
      [Call("list_workloads", {"namespace": "shop", "name_regex": "^inventory$"}),
       Call("list_entries", lambda ctx: {
           "filter": f"dst.pod.name == '{newest_pod(ctx.last, 'inventory')}'", "order": "asc", "limit": 1,
           "fields": ["timestamp"]}),
       Call("list_entries", lambda ctx: {
           "filter": f"dst.pod.name == '{oldest_pod(ctx.results[0], 'inventory')}'", "order": "desc", "limit": 1,
           "fields": ["timestamp"]})],
      c_rollout_switch_time),
    Q("verification", "Who sends traffic to the new inventory pod?",
      [Call("list_workloads", {"namespace": "shop", "name_regex": "^inventory$"}),
       Call("api_stats", lambda ctx: {"group_by": "client",
                                      "filter": f"dst.pod.name == '{newest_pod(ctx.last, 'inventory')}'"})],
      c_traffic_to_new_pod),
    Q("verification", "Since the inventory rollout, do product listings still show items in stock?",
      [Call("list_entries", {"filter": "path.startsWith('/api/products?')", "fields": ["id", "timestamp"],
                             "order": "asc", "limit": 100}),
       Call("get_payload", lambda ctx: {"id": ctx.last["entries"][0]["id"], "part": "response"}),
       Call("get_payload", lambda ctx: {"id": ctx.results[0]["entries"][-1]["id"], "part": "response"})],
      c_rollout_consequence),
    Q("verification", "Is the recommendations service up?",
      [Call("list_flows", {"filter": "dst.workload.name == 'recommendations'", "limit": 100,
                           "fields": ["timestamp", "src.workload.name", "src.ip", "src.port", "conn_state"]})],
      c_recommendations_down),
    Q("verification", "What does the capture cover, and is it complete?",
      [Call("capture_status", {})],
      c_capture_window),

    # Network health.
    Q("network", "Is there packet loss anywhere, and between which services?",
      [Call("tcp_insights", {"group_by": "server", "sort": "retransmission_rate", "limit": 10})],
      c_loss),
    Q("network", "How many retransmissions are there on the orders → payments link?",
      [Call("tcp_insights", {"group_by": "client_server",
                             "filter": "src.workload.name == 'orders' && dst.workload.name == 'payments' "
                                       "&& dst.port == 8080"})],
      c_link_retransmissions),
    Q("network", "Which connection sees zero windows, and who is the slow reader?",
      [Call("tcp_insights", {"filter": "zero_window_events > 0"})],
      c_zero_window),
    Q("network", "What is the round-trip time to inventory compared with the other services?",
      [Call("tcp_insights", {"group_by": "server", "sort": "initial_rtt_us", "limit": 20})],
      c_rtt_inventory),
    Q("network", "Which connections are unhealthy, and why: loss, distance or refused?",
      [Call("tcp_insights", {"filter": "verdict != 'healthy'", "sort": "retransmission_rate", "limit": 100,
                             "fields": ["flow_id", "src.workload.name", "dst.workload.name", "conn_state", "verdict",
                                        "retransmission_rate", "zero_window_events", "initial_rtt_us"]})],
      c_unhealthy_connections),
    Q("network", "Are any connections being refused?",
      [Call("flow_summary", {"top": 5})],
      c_refused_overall),
    Q("network", "How healthy is the network?",
      [Prompt("network_health", {}),
       FromPrompt(0),
       FromPrompt(1),
       FromPrompt(2)],
      c_network_health_prompt),
    Q("network", "Calls from the gateway to inventory are slow: network or application?",
      [Prompt("debug_connection", {"client": "api-gateway", "server": "inventory"}),
       FromPrompt(1),
       FromPrompt(2),
       FromPrompt(5, lambda ctx, a: {**a, "id": ctx.results[0]["groups"][0]["example_entry_id"]})],
      c_debug_inventory),
    Q("network", "Is the lossy link between orders and payments behind their errors?",
      [Prompt("debug_connection", {"client": "orders", "server": "payments"}),
       FromPrompt(1),
       FromPrompt(2)],
      c_debug_orders_payments),
]



def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


SEED_QUESTIONS = [
    "What endpoints is the frontend calling on the API gateway?",
    "Show me all failed gRPC calls in the payments namespace",
    "Is the order-service receiving any traffic from the mobile backend?",
    "What response is the inventory-service returning for the /stock endpoint?",
]


def test_the_bank_is_broad():
    assert len(BANK) >= 40
    assert len({q.question for q in BANK}) == len(BANK), "a question asked twice"
    per = Counter(q.category for q in BANK)
    assert set(per) == set(CATEGORIES), per
    assert all(n >= 3 for n in per.values()), per
    assert set(SEED_QUESTIONS) <= {q.question for q in BANK}
    for q in BANK:
        calls = [s for s in q.steps if not isinstance(s, Prompt)]
        assert 1 <= len(calls) <= MAX_CALLS, q.question


@pytest.mark.anyio
async def test_every_prompt_is_exercised(wirelens_bin):
    params = StdioServerParameters(command=wirelens_bin, args=["mcp", "--demo"])
    async with Client(params) as client:
        served = {p.name for p in (await client.list_prompts()).prompts}
    used = {s.name for q in BANK for s in q.steps if isinstance(s, Prompt)}
    assert used == served, f"prompts no trajectory follows: {served - used}"


@pytest.mark.anyio
@pytest.mark.parametrize("q", BANK, ids=[slug(q.question) for q in BANK])
async def test_question(q, truth, wirelens_bin):
    ctx = await ask(wirelens_bin, q)
    q.check(truth, ctx)
