"""A real redis-server (Debian's package) with a password, and the real redis-py client, talk over
loopback while tcpdump records the packets; then `wirelens call --pcap` must find every command the
client sent, each with its reply in order: a 100-command pipeline, a 300 kB value, pub/sub (the
subscribe confirmation and every published message as its own pushed entry), error replies,
MULTI/EXEC, RESP3 connections (`HELLO 3`, map replies, push messages, a client-side-caching
invalidation), PING in pub/sub mode, and AUTH with the password absent from every output.

Needs redis-server and tcpdump (scripts/test installs them). Under CI=true a missing prerequisite
is a failure, never a skip."""

import json
import time

import pytest
import redis  # pinned in requirements.txt
from redis.maint_notifications import MaintNotificationsConfig

PASSWORD = "pw-Zq81-live-secret"
PIPELINED = 50  # SETs, then as many GETs, in one pipeline
MESSAGES = [f"news #{i}: {'x' * i}" for i in range(4)]
RESP3_MESSAGES = ["r3-one", "r3-two"]
BIG = "B" * 300_000  # spans many TCP segments both ways
# No CLIENT SETINFO and no CLIENT MAINT_NOTIFICATIONS (RESP3): the commands are exactly the test's.
LIB = {"driver_info": None, "maint_notifications_config": MaintNotificationsConfig(enabled=False)}


def _command(conn, *args):
    conn.send_command(*args)
    return conn.read_response()


def _wait_message(pubsub, deadline_s=5.0):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        m = pubsub.get_message(timeout=0.5)
        if m is not None:
            return m
    pytest.fail("no pub/sub message within 5 s")


@pytest.fixture(scope="module")
def capture(live, tmp_path_factory):
    """Runs redis-server, records the client's work with tcpdump, returns the pcap path."""
    server_bin = live.need("redis-server")
    tmp = tmp_path_factory.mktemp("redis")
    port = live.port()
    log = tmp / "redis.log"
    server = live.spawn(
        [server_bin, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp), "--save", "",
         "--appendonly", "no", "--daemonize", "no", "--requirepass", PASSWORD, "--logfile", ""],
        log)
    try:
        live.wait_port(port, server, log)
        pcap = tmp / "redis-live.pcap"
        with live.record(pcap, f"tcp port {port}", port):
            r = redis.Redis(host="127.0.0.1", port=port, password=PASSWORD, protocol=2, **LIB)
            assert r.ping() is True

            pipe = r.pipeline(transaction=False)
            for i in range(PIPELINED):
                pipe.set(f"pipe:{i}", f"value-{i}")
            for i in range(PIPELINED):
                pipe.get(f"pipe:{i}")
            res = pipe.execute()
            assert res[:PIPELINED] == [True] * PIPELINED
            assert res[PIPELINED:] == [f"value-{i}".encode() for i in range(PIPELINED)]

            assert r.set("big", BIG) is True
            assert r.get("big") == BIG.encode()

            r.set("not-a-number", "abc")
            with pytest.raises(redis.ResponseError, match="not an integer"):
                r.execute_command("INCR", "not-a-number")
            with pytest.raises(redis.ResponseError, match="unknown command"):
                r.execute_command("NOSUCHCMD", "arg1")

            tx = r.pipeline(transaction=True)
            tx.incr("counter").incr("counter").get("counter")
            assert tx.execute() == [1, 2, b"2"]

            sub = redis.Redis(host="127.0.0.1", port=port, password=PASSWORD, protocol=2, **LIB).pubsub()
            sub.subscribe("news")
            confirm = _wait_message(sub)
            assert confirm["type"] == "subscribe" and confirm["channel"] == b"news"
            for m in MESSAGES:
                assert r.publish("news", m) == 1
            got = [_wait_message(sub) for _ in MESSAGES]
            assert [g["data"].decode() for g in got] == MESSAGES
            sub.close()

            r3 = redis.Redis(host="127.0.0.1", port=port, password=PASSWORD, protocol=3, **LIB)
            r3.hset("user:7", mapping={"name": "ada", "lang": "en"})
            assert r3.hgetall("user:7") == {b"name": b"ada", b"lang": b"en"}
            sub3 = redis.Redis(host="127.0.0.1", port=port, password=PASSWORD, protocol=3, **LIB).pubsub()
            sub3.subscribe("r3chan")
            assert _wait_message(sub3)["type"] == "subscribe"
            for m in RESP3_MESSAGES:
                assert r3.publish("r3chan", m) == 1
            assert [_wait_message(sub3)["data"].decode() for _ in RESP3_MESSAGES] == RESP3_MESSAGES
            sub3.close()
            r3.close()

            # Server messages among replies: a RESP3 client-side-caching invalidation push, and a
            # RESP2 PING inside pub/sub mode (answered with an array that is a reply, not a push).
            other = redis.Redis(host="127.0.0.1", port=port, password=PASSWORD, protocol=2, **LIB)
            other.set("tracked", "1")
            tracking = redis.Redis(host="127.0.0.1", port=port, password=PASSWORD, protocol=3,
                                   **LIB).connection_pool.get_connection()
            assert _command(tracking, "CLIENT", "TRACKING", "ON") == b"OK"
            assert _command(tracking, "GET", "tracked") == b"1"
            other.set("tracked", "2")  # the server pushes an invalidation to `tracking`
            time.sleep(0.2)
            assert _command(tracking, "PING") == b"PONG"
            tracking.disconnect()
            psub = redis.Redis(host="127.0.0.1", port=port, password=PASSWORD, protocol=2,
                               **LIB).connection_pool.get_connection()
            assert _command(psub, "PSUBSCRIBE", "ch*") == [b"psubscribe", b"ch*", 1]
            assert _command(psub, "PING") == [b"pong", b""]
            assert other.publish("chx", "pattern hello") == 1
            assert psub.read_response() == [b"pmessage", b"ch*", b"chx", b"pattern hello"]
            assert _command(psub, "PUNSUBSCRIBE") == [b"punsubscribe", b"ch*", 0]
            assert _command(psub, "PING") == b"PONG"
            psub.disconnect()
            other.close()
            r.close()
    finally:
        live.stop(server)
    return pcap


FIELDS = ["src.port", "redis_command", "redis_key", "redis_args", "redis_reply_type", "redis_reply",
          "redis_error", "redis_channel", "redis_payload"]


@pytest.fixture(scope="module")
def entries(live, capture):
    found = live.entries(capture, "redis", FIELDS)
    assert found, "no redis entries"
    return found


def _connections(entries):
    """Entries grouped by client port, in capture order."""
    conns = {}
    for e in entries:
        conns.setdefault(e["src.port"], []).append(e)
    return list(conns.values())


def test_every_command_is_found_in_order(entries):
    """The complete command sequence per connection: nothing missed, nothing invented."""
    conns = _connections(entries)
    assert len(conns) == 7, [c[0] for c in conns]
    main, sub, main3, sub3, other, tracking, psub = conns
    assert [e["redis_command"] for e in main] == (
        ["AUTH", "PING"] + ["SET"] * PIPELINED + ["GET"] * PIPELINED + ["SET", "GET", "SET", "INCR", "NOSUCHCMD"]
        + ["MULTI", "INCRBY", "INCRBY", "GET", "EXEC"] + ["PUBLISH"] * len(MESSAGES))
    assert [e["redis_command"] for e in sub] == ["AUTH", "SUBSCRIBE"] + [None] * len(MESSAGES)
    assert [e["redis_command"] for e in main3] == ["HELLO", "HSET", "HGETALL"] + ["PUBLISH"] * len(RESP3_MESSAGES)
    assert [e["redis_command"] for e in sub3] == ["HELLO", "SUBSCRIBE"] + [None] * len(RESP3_MESSAGES)
    assert [e["redis_command"] for e in other] == ["AUTH", "SET", "SET", "PUBLISH"]
    assert [e["redis_command"] for e in tracking] == ["HELLO", "CLIENT", "GET", None, "PING"]
    assert [e["redis_command"] for e in psub] == ["AUTH", "PSUBSCRIBE", "PING", None, "PUNSUBSCRIBE", "PING"]


def test_pipeline_replies_pair_in_order(entries):
    main = _connections(entries)[0]
    sets = [e for e in main if e["redis_command"] == "SET" and e["redis_key"].startswith("pipe:")]
    gets = [e for e in main if e["redis_command"] == "GET" and e["redis_key"].startswith("pipe:")]
    assert [e["redis_key"] for e in sets] == [f"pipe:{i}" for i in range(PIPELINED)]
    assert [e["redis_args"] for e in sets] == [[f"pipe:{i}", f"value-{i}"] for i in range(PIPELINED)]
    assert {(e["redis_reply_type"], e["redis_reply"]) for e in sets} == {("simple_string", "OK")}
    assert [e["redis_key"] for e in gets] == [f"pipe:{i}" for i in range(PIPELINED)]
    # Each GET has its own value: replies are paired with commands in order.
    assert [(e["redis_reply_type"], e["redis_reply"]) for e in gets] == [
        ("bulk_string", f"value-{i}") for i in range(PIPELINED)]


def test_large_value_across_segments(live, capture, entries):
    main = _connections(entries)[0]
    set_big, get_big = [e for e in main if e["redis_key"] == "big"]
    assert (set_big["redis_command"], set_big["redis_reply"]) == ("SET", "OK")
    detail = live.call(capture, "get_payload", {"id": set_big["id"]})["detail"]
    assert detail["request_bytes"] > len(BIG)
    assert detail["args_truncated"] is True  # the value is kept only in part
    assert get_big["redis_command"] == "GET" and get_big["redis_reply_type"] == "bulk_string"
    assert BIG.startswith(get_big["redis_reply"]) and get_big["redis_reply"]
    reply = live.call(capture, "get_payload", {"id": get_big["id"]})["detail"]["reply"]
    assert reply["len"] == len(BIG)
    assert reply["bytes"] > len(BIG)


def test_error_replies(entries):
    main = _connections(entries)[0]
    incr = next(e for e in main if e["redis_command"] == "INCR" and e["redis_key"] == "not-a-number")
    assert incr["redis_reply_type"] == "error"
    assert incr["redis_error"] == "ERR value is not an integer or out of range"
    unknown = next(e for e in main if e["redis_command"] == "NOSUCHCMD")
    assert unknown["redis_key"] == "arg1"
    assert unknown["redis_reply_type"] == "error"
    assert unknown["redis_error"].startswith("ERR unknown command 'NOSUCHCMD'")
    others = [e for e in entries if e not in (incr, unknown)]
    assert all(e["redis_error"] is None for e in others), [e for e in others if e["redis_error"]]


def test_multi_exec(live, capture, entries):
    main = _connections(entries)[0]
    i = [e["redis_command"] for e in main].index("MULTI")
    multi, incr1, incr2, get, exec_ = main[i:i + 5]
    assert (multi["redis_reply_type"], multi["redis_reply"]) == ("simple_string", "OK")
    for e in (incr1, incr2, get):
        assert e["redis_key"] == "counter"
        assert (e["redis_reply_type"], e["redis_reply"]) == ("simple_string", "QUEUED")
        assert live.call(capture, "get_payload", {"id": e["id"]})["detail"]["in_transaction"] is True
    assert exec_["redis_command"] == "EXEC"
    assert exec_["redis_reply_type"] == "array"
    detail = live.call(capture, "get_payload", {"id": exec_["id"]})["detail"]
    assert detail["reply"]["len"] == 3
    assert detail["reply"]["items"] == ["1", "2", "2"]


def test_pubsub_confirmation_and_each_message(entries):
    main, sub = _connections(entries)[:2]
    subscribe = sub[1]
    assert subscribe["redis_command"] == "SUBSCRIBE"
    assert subscribe["redis_channel"] == "news"
    assert subscribe["redis_reply_type"] == "array"  # ["subscribe", "news", 1]
    pushed = sub[2:]
    assert [(e["redis_command"], e["redis_channel"], e["redis_payload"], e["redis_reply_type"]) for e in pushed] == [
        (None, "news", m, "array") for m in MESSAGES]
    publishes = [e for e in main if e["redis_command"] == "PUBLISH"]
    assert [(e["redis_channel"], e["redis_payload"], e["redis_reply_type"], e["redis_reply"]) for e in publishes] == [
        ("news", m, "integer", "1") for m in MESSAGES]


def test_resp3_hello_map_and_push(entries):
    main3, sub3 = _connections(entries)[2:4]
    hello = main3[0]
    assert hello["redis_command"] == "HELLO"
    assert hello["redis_key"] == "3"
    assert hello["redis_reply_type"] == "map"
    hgetall = main3[2]
    assert hgetall["redis_key"] == "user:7"
    assert hgetall["redis_reply_type"] == "map"
    subscribe = sub3[1]
    assert (subscribe["redis_command"], subscribe["redis_channel"], subscribe["redis_reply_type"]) == (
        "SUBSCRIBE", "r3chan", "push")
    assert [(e["redis_command"], e["redis_channel"], e["redis_payload"], e["redis_reply_type"]) for e in sub3[2:]] == [
        (None, "r3chan", m, "push") for m in RESP3_MESSAGES]


def test_server_messages_among_replies(entries):
    tracking, psub = _connections(entries)[5:]
    get, invalidate, ping = tracking[2:]
    assert (get["redis_key"], get["redis_reply"]) == ("tracked", "1")
    assert (invalidate["redis_command"], invalidate["redis_reply_type"]) == (None, "push")
    assert (ping["redis_reply_type"], ping["redis_reply"]) == ("simple_string", "PONG")
    psubscribe, ping1, pmessage, punsubscribe, ping2 = psub[1:]
    assert (psubscribe["redis_key"], psubscribe["redis_reply_type"]) == ("ch*", "array")
    assert (ping1["redis_command"], ping1["redis_reply_type"]) == ("PING", "array")  # ["pong", ""]
    assert (pmessage["redis_command"], pmessage["redis_channel"], pmessage["redis_payload"]) == (
        None, "chx", "pattern hello")
    assert (punsubscribe["redis_command"], punsubscribe["redis_reply_type"]) == ("PUNSUBSCRIBE", "array")
    assert (ping2["redis_reply_type"], ping2["redis_reply"]) == ("simple_string", "PONG")


def test_password_is_redacted_everywhere(live, capture, entries):
    # The password is on the wire (AUTH and HELLO … AUTH) ...
    with open(capture, "rb") as f:
        assert f.read().count(PASSWORD.encode()) == 7
    # ... but in no tool output: every field of every entry, and every payload.
    listing = live.call_text(capture, "list_entries", {"filter": "redis", "limit": 1000, "fields": [
        "id", "summary", "redis_command", "redis_key", "redis_args", "redis_reply"]})
    assert PASSWORD not in listing
    full = live.call_text(capture, "list_entries", {"filter": "redis", "limit": 1000})
    assert PASSWORD not in full
    auths = [e for e in entries if e["redis_command"] in ("AUTH", "HELLO")]
    assert len(auths) == 7
    for e in auths:
        assert PASSWORD not in json.dumps(e)
        assert e["redis_reply_type"] in ("simple_string", "map")
        payload = live.call_text(capture, "get_payload", {"id": e["id"]})
        assert PASSWORD not in payload
        detail = json.loads(payload)["detail"]
        assert detail["command"] == e["redis_command"]
    auth = next(e for e in auths if e["redis_command"] == "AUTH")
    assert auth["redis_reply"] == "OK"
    assert len(auth["redis_args"]) == 1  # the password's place is kept, its text is not
    assert auth["redis_args"][0].startswith("[redacted")
    hello = next(e for e in auths if e["redis_command"] == "HELLO")
    assert hello["redis_args"][:3] == ["3", "AUTH", "default"]
    assert hello["redis_args"][3].startswith("[redacted")
