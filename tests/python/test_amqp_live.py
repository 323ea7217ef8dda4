"""A real RabbitMQ broker (Debian's rabbitmq-server, its own node name, ports, epmd and data dir
under a temp dir) and the real pika client talk over loopback while tcpdump records the packets;
then `wirelens call --pcap` must find every AMQP operation the client performed: the exchange,
queue and binding declarations, each publish, each delivery to the consumer, each ack, and a
mandatory publish to an unroutable routing key that comes back as Basic.Return 312 NO_ROUTE.

Needs rabbitmq-server, epmd and tcpdump (scripts/test installs them). Under CI=true a missing
prerequisite is a failure, never a skip."""

import json
import os
import time

import pika  # pinned in requirements.txt
import pytest

EXCHANGE = "wl.jobs.x"
QUEUE = "wl.jobs"
KEY = "job"
UNROUTABLE_KEY = "nowhere"
BODIES = [f"job {i}: {'payload ' * (i + 1)}".encode() for i in range(5)]
BOOT_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def broker(live, tmp_path_factory):
    """Boots one RabbitMQ node for the module; yields its AMQP port."""
    # Debian's /usr/sbin/rabbitmq-server switches to the system user and its directories; the
    # script it wraps runs the node as we are, with the environment below.
    server_bin = live.need("rabbitmq-server", prefer=["/usr/lib/rabbitmq/bin/rabbitmq-server"])
    epmd_bin = live.need("epmd")
    tmp = tmp_path_factory.mktemp("rabbitmq")
    port, dist_port, epmd_port = live.port(), live.port(), live.port()
    (tmp / "home").mkdir()
    (tmp / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{port}\n")
    (tmp / "enabled_plugins").write_text("[].\n")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(tmp / "home"),  # the Erlang cookie goes here
        "ERL_EPMD_PORT": str(epmd_port),
        "RABBITMQ_NODENAME": f"wltest{port}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "RABBITMQ_MNESIA_BASE": str(tmp / "mnesia"),
        "RABBITMQ_LOG_BASE": str(tmp / "log"),
        "RABBITMQ_CONFIG_FILE": str(tmp / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(tmp / "advanced.config"),
        "RABBITMQ_CONF_ENV_FILE": str(tmp / "rabbitmq-env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(tmp / "enabled_plugins"),
        "RABBITMQ_PID_FILE": str(tmp / "rabbitmq.pid"),
    }
    # Our own epmd on loopback (else Erlang starts a daemon that outlives the test).
    epmd = live.spawn([epmd_bin, "-port", str(epmd_port), "-address", "127.0.0.1"], tmp / "epmd.log", env=env)
    server = None
    try:
        live.wait_port(epmd_port, epmd, tmp / "epmd.log", timeout=10)
        server = live.spawn([server_bin], tmp / "server.log", env=env, cwd=tmp)
        live.wait_port(port, server, tmp / "server.log", timeout=BOOT_TIMEOUT_S)
        yield port
    finally:
        live.stop(server, grace=5)
        live.stop(epmd, grace=2)


@pytest.fixture(scope="module")
def capture(live, broker, tmp_path_factory):
    """Records the client's work with tcpdump, returns the pcap path."""
    port = broker
    pcap = tmp_path_factory.mktemp("amqp-pcap") / "amqp-live.pcap"
    with live.record(pcap, f"tcp port {port}", port):
        params = pika.ConnectionParameters(host="127.0.0.1", port=port, heartbeat=0,
                                           credentials=pika.PlainCredentials("guest", "guest"))
        conn = pika.BlockingConnection(params)
        try:
            ch = conn.channel()
            ch.exchange_declare(EXCHANGE, exchange_type="direct")
            ch.queue_declare(QUEUE)
            ch.queue_bind(QUEUE, EXCHANGE, routing_key=KEY)
            for i, body in enumerate(BODIES):
                ch.basic_publish(EXCHANGE, KEY, body, properties=pika.BasicProperties(message_id=f"m{i}"))

            received = []

            def on_message(channel, method, _props, body):
                received.append(body)
                channel.basic_ack(method.delivery_tag)

            tag = ch.basic_consume(QUEUE, on_message)
            deadline = time.monotonic() + 10
            while len(received) < len(BODIES) and time.monotonic() < deadline:
                conn.process_data_events(time_limit=0.2)
            assert received == BODIES
            ch.basic_cancel(tag)

            # Publisher confirms on a second channel: the unroutable mandatory publish is returned
            # (Basic.Return) before the broker confirms it, and pika raises UnroutableError.
            ch2 = conn.channel()
            ch2.confirm_delivery()
            with pytest.raises(pika.exceptions.UnroutableError):
                ch2.basic_publish(EXCHANGE, UNROUTABLE_KEY, b"lost in the post", mandatory=True)
            ch2.close()
            ch.close()
        finally:
            conn.close()
    return pcap


FIELDS = ["src.port", "dst.port", "amqp_channel", "amqp_methods", "amqp_exchange", "amqp_routing_key",
          "amqp_queue", "amqp_reply_code", "summary"]


@pytest.fixture(scope="module")
def entries(live, capture):
    found = live.entries(capture, "amqp", FIELDS)
    assert found, "no amqp entries"
    return found


def _with(entries, method):
    return [e for e in entries if method in e["amqp_methods"]]


def test_one_connection_every_method_frame(entries, broker):
    clients = {e["src.port"] if e["dst.port"] == broker else e["dst.port"] for e in entries}
    assert len(clients) == 1, clients
    methods = [m for e in entries for m in e["amqp_methods"]]
    # The connection handshake and close, each synchronous method with its reply.
    for sync in ("Connection.Start", "Connection.Tune", "Connection.Open", "Connection.Close"):
        assert methods.count(sync) == 1, (sync, methods)
        assert methods.count(sync + "-Ok") == 1, (sync, methods)
    for sync in ("Channel.Open", "Channel.Close"):
        assert methods.count(sync) == 2 and methods.count(sync + "-Ok") == 2, (sync, methods)
    for sync in ("Exchange.Declare", "Queue.Declare", "Queue.Bind", "Basic.Consume", "Basic.Cancel",
                 "Confirm.Select"):
        assert methods.count(sync) == 1 and methods.count(sync + "-Ok") == 1, (sync, methods)
    n = len(BODIES)
    assert methods.count("Basic.Publish") == n + 1
    assert methods.count("Basic.Deliver") == n
    assert methods.count("Basic.Ack") == n + 1  # n from the consumer, 1 confirm from the broker
    assert methods.count("Basic.Return") == 1
    # A synchronous method and its reply are one entry.
    for e in entries:
        first = e["amqp_methods"][0]
        if first.split(".")[0] in ("Connection", "Channel", "Exchange", "Queue", "Confirm") or first in (
                "Basic.Consume", "Basic.Cancel"):
            assert e["amqp_methods"] == [first, first + "-Ok"], e


def test_declarations(entries):
    [exchange] = _with(entries, "Exchange.Declare")
    assert exchange["amqp_exchange"] == EXCHANGE
    assert exchange["amqp_channel"] == 1
    [queue] = _with(entries, "Queue.Declare")
    assert queue["amqp_queue"] == QUEUE
    [bind] = _with(entries, "Queue.Bind")
    assert (bind["amqp_queue"], bind["amqp_exchange"], bind["amqp_routing_key"]) == (QUEUE, EXCHANGE, KEY)
    [consume] = _with(entries, "Basic.Consume")
    assert consume["amqp_queue"] == QUEUE


def test_publish_deliver_ack(entries, broker):
    n = len(BODIES)
    publishes = [e for e in _with(entries, "Basic.Publish") if e["amqp_channel"] == 1]
    assert len(publishes) == n
    for e in publishes:
        assert e["amqp_methods"] == ["Basic.Publish"]
        assert (e["amqp_exchange"], e["amqp_routing_key"]) == (EXCHANGE, KEY)
        assert e["dst.port"] == broker
    delivers = _with(entries, "Basic.Deliver")
    assert len(delivers) == n
    for e in delivers:
        assert e["amqp_methods"] == ["Basic.Deliver"]
        assert (e["amqp_channel"], e["amqp_exchange"], e["amqp_routing_key"]) == (1, EXCHANGE, KEY)
        assert e["src.port"] == broker
    acks = [e for e in _with(entries, "Basic.Ack") if e["amqp_channel"] == 1]
    assert len(acks) == n
    for e in acks:
        assert e["amqp_methods"] == ["Basic.Ack"]
        assert e["dst.port"] == broker  # sent by the consumer


def test_publish_and_deliver_payloads_in_order(live, capture, entries):
    """Each publish and each delivery carries its own message: body and message-id, in order."""
    for method in ("Basic.Publish", "Basic.Deliver"):
        found = [e for e in _with(entries, method) if e["amqp_channel"] == 1]
        assert len(found) == len(BODIES)
        for i, (e, body) in enumerate(zip(found, BODIES)):
            assert f"({len(body)} B body)" in e["summary"], e
            payload = live.call_text(capture, "get_payload", {"id": e["id"]})
            assert json.dumps(body.decode()) in payload, (method, i, payload)
            assert json.dumps(f"m{i}") in payload, (method, i, payload)


def test_unroutable_mandatory_publish_is_returned(entries, broker):
    [ret] = _with(entries, "Basic.Return")
    assert ret["amqp_methods"] == ["Basic.Return"]
    assert ret["amqp_channel"] == 2
    assert ret["amqp_reply_code"] == 312
    assert (ret["amqp_exchange"], ret["amqp_routing_key"]) == (EXCHANGE, UNROUTABLE_KEY)
    assert ret["src.port"] == broker
    assert "NO_ROUTE" in ret["summary"]
    [publish] = [e for e in _with(entries, "Basic.Publish") if e["amqp_channel"] == 2]
    assert (publish["amqp_exchange"], publish["amqp_routing_key"]) == (EXCHANGE, UNROUTABLE_KEY)
    [confirm] = [e for e in _with(entries, "Basic.Ack") if e["amqp_channel"] == 2]
    assert confirm["src.port"] == broker  # the broker's publisher confirm
    # Channel.Close carries pika's reply code 0, Connection.Close 200: no other failure.
    others = [e for e in entries if e is not ret and e["amqp_reply_code"] not in (None, 0, 200)]
    assert others == []
