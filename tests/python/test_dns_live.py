"""A real dnsmasq (Debian's dnsmasq-base: no upstream servers, only local data, on a loopback port)
and the real dig (bind9-dnsutils) talk over loopback (127.0.0.1, and ::1 once) while tcpdump
records the packets; then `wirelens call --pcap` must find every query dig sent: A and AAAA
answers over UDP and over TCP, two queries on one TCP connection, a truncated UDP answer that dig
retries over TCP, an NXDOMAIN, and a query that times out (dnsmasq forwards it to a loopback
socket that never answers; dig tries twice) as entries without a response.

Needs dnsmasq, dig and tcpdump (scripts/test installs them). Under CI=true a missing prerequisite
is a failure, never a skip."""

import socket
import subprocess

import pytest

ZONE = "wl.test"
HOST = f"www.{ZONE}"
HOST_V4, HOST_V6 = "127.0.0.77", "fd00::77"
WILD = f"api.svc.{ZONE}"
WILD_V4 = "127.0.0.88"
DB, DB_V4 = f"db.{ZONE}", "127.0.0.99"
VIA_V6, VIA_V6_ADDR = f"v6.{ZONE}", "127.0.0.66"
BIG = f"big.{ZONE}"  # 12 TXT records of 252 bytes: too big for UDP, so dig retries over TCP
BIG_TXT = [f"{i:02}" + "t" * 250 for i in range(12)]
MISSING = f"missing.{ZONE}"
SLOW = f"x.slow.{ZONE}"


@pytest.fixture(scope="module")
def capture(live, tmp_path_factory):
    """Runs dnsmasq and a silent upstream, records dig's queries, returns (pcap, dnsmasq port,
    upstream port)."""
    dnsmasq = live.need("dnsmasq", "Debian package dnsmasq-base; scripts/test installs it")
    dig = live.need("dig", "Debian package bind9-dnsutils; scripts/test installs it")
    tmp = tmp_path_factory.mktemp("dns")
    port, upstream_port = live.port(), live.port()
    # The upstream for slow.wl.test: a bound UDP socket that reads nothing and answers nothing.
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", upstream_port))
    log = tmp / "dnsmasq.log"
    server = live.spawn(
        [dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--no-poll",
         "--bind-interfaces", "--listen-address=127.0.0.1,::1", f"--port={port}", "--pid-file=",
         "--user=root", "--log-queries", "--log-facility=-", "--cache-size=0",
         f"--local=/{ZONE}/",  # only local data for wl.test: unknown names are NXDOMAIN
         f"--host-record={HOST},{HOST_V4},{HOST_V6}",
         f"--host-record={DB},{DB_V4}",
         f"--host-record={VIA_V6},{VIA_V6_ADDR}",
         *(f"--txt-record={BIG},{t}" for t in BIG_TXT),
         f"--address=/svc.{ZONE}/{WILD_V4}",
         f"--server=/slow.{ZONE}/127.0.0.1#{upstream_port}"],
        log)

    def dig_(*args, ok=True, server="127.0.0.1"):
        out = subprocess.run([dig, f"@{server}", "-p", str(port), *args], capture_output=True, text=True,
                             timeout=20)
        assert (out.returncode == 0) == ok, (args, out.returncode, out.stdout, out.stderr)
        return out.stdout

    try:
        live.wait_port(port, server, log)
        pcap = tmp / "dns-live.pcap"
        with live.record(pcap, f"port {port} or port {upstream_port}", port):
            assert dig_(HOST, "A", "+short").split() == [HOST_V4]
            assert dig_(HOST, "AAAA", "+short").split() == [HOST_V6]
            assert dig_(HOST, "A", "+tcp", "+short").split() == [HOST_V4]
            assert dig_(HOST, "AAAA", "+tcp", "+short").split() == [HOST_V6]
            assert dig_(WILD, "A", "+short").split() == [WILD_V4]
            assert dig_(VIA_V6, "A", "+short", server="::1").split() == [VIA_V6_ADDR]  # over IPv6 loopback
            big = dig_(BIG, "TXT")
            assert "Truncated, retrying in TCP mode" in big and big.count("IN\tTXT\t") == len(BIG_TXT), big
            # Two queries over one TCP connection.
            assert dig_("+tcp", "+keepopen", "+short", DB, "A", DB, "TXT").split() == [DB_V4]
            assert "status: NXDOMAIN" in dig_(MISSING, "A")
            assert "status: NXDOMAIN" in dig_(MISSING, "A", "+tcp")
            # Exit code 9: no reply from the server, after two tries of one second each.
            timed_out = dig_(SLOW, "A", "+tries=2", "+time=1", ok=False)
            assert "timed out" in timed_out
    finally:
        live.stop(server)
        silent.close()
    return pcap, port, upstream_port


FIELDS = ["transport", "src.ip", "dst.ip", "src.port", "dst.port", "dns_id", "dns_qname", "dns_qtype", "dns_rcode",
          "status_code", "dns_answer_count", "dns_answers", "dns_request", "dns_response", "elapsed_ms", "summary"]


@pytest.fixture(scope="module")
def entries(live, capture):
    pcap, _, _ = capture
    found = live.entries(pcap, "dns", FIELDS)
    assert found, "no dns entries"
    return found


def _key(e):
    return (e["transport"], e["dns_qname"], e["dns_qtype"])


def test_every_query_is_found(entries, capture):
    _, port, upstream_port = capture
    to_dnsmasq = sorted(_key(e) for e in entries if e["dst.port"] == port)
    assert to_dnsmasq == sorted([
        ("udp", HOST, 1), ("udp", HOST, 28), ("tcp", HOST, 1), ("tcp", HOST, 28), ("udp", WILD, 1),
        ("tcp", DB, 1), ("tcp", DB, 16), ("udp", VIA_V6, 1), ("udp", BIG, 16), ("tcp", BIG, 16),
        ("udp", MISSING, 1), ("tcp", MISSING, 1), ("udp", SLOW, 1), ("udp", SLOW, 1)])
    forwarded = [_key(e) for e in entries if e["dst.port"] == upstream_port]
    # dnsmasq forwards the first try (and may forward the retry too).
    assert forwarded in ([("udp", SLOW, 1)], [("udp", SLOW, 1)] * 2), forwarded
    assert len(entries) == len(to_dnsmasq) + len(forwarded)
    assert all(e["dns_request"] is True for e in entries)


def test_answers_over_udp_and_tcp(entries):
    for transport in ("udp", "tcp"):
        for qtype, addr in ((1, HOST_V4), (28, HOST_V6)):
            [e] = [e for e in entries if _key(e) == (transport, HOST, qtype)]
            assert e["dns_response"] is True
            assert (e["dns_rcode"], e["status_code"], e["dns_answer_count"], e["dns_answers"]) == (0, 0, 1, [addr])
            assert e["elapsed_ms"] is not None and e["elapsed_ms"] >= 0
    [wild] = [e for e in entries if e["dns_qname"] == WILD]
    assert (wild["dns_rcode"], wild["dns_answers"]) == (0, [WILD_V4])
    db_a, db_txt = [e for e in entries if e["dns_qname"] == DB]
    assert db_a["src.port"] == db_txt["src.port"]  # one connection, two exchanges
    assert (db_a["dns_qtype"], db_a["dns_rcode"], db_a["dns_answers"]) == (1, 0, [DB_V4])
    assert (db_txt["dns_qtype"], db_txt["dns_rcode"], db_txt["dns_answer_count"]) == (16, 0, 0)
    [v6] = [e for e in entries if e["dns_qname"] == VIA_V6]
    assert (v6["src.ip"], v6["dst.ip"], v6["dns_rcode"], v6["dns_answers"]) == ("::1", "::1", 0, [VIA_V6_ADDR])
    assert all(e["src.ip"] == "127.0.0.1" for e in entries if e is not v6)


def test_truncated_udp_answer_then_tcp(live, capture, entries):
    pcap, _, _ = capture
    [udp] = [e for e in entries if _key(e) == ("udp", BIG, 16)]
    [tcp] = [e for e in entries if _key(e) == ("tcp", BIG, 16)]
    assert udp["dns_rcode"] == 0 and udp["dns_answer_count"] < len(BIG_TXT)
    assert "truncated" in udp["summary"]
    assert live.call(pcap, "get_payload", {"id": udp["id"]})["detail"]["response"]["truncated"] is True
    # The whole answer (3 kB), every record's text.
    assert (tcp["dns_rcode"], tcp["dns_answer_count"]) == (0, len(BIG_TXT))
    assert sorted(tcp["dns_answers"]) == BIG_TXT
    assert live.call(pcap, "get_payload", {"id": tcp["id"]})["detail"]["response"]["truncated"] is False


def test_nxdomain(entries):
    nx = [e for e in entries if e["dns_qname"] == MISSING]
    assert sorted(e["transport"] for e in nx) == ["tcp", "udp"]
    for e in nx:
        assert (e["dns_rcode"], e["status_code"], e["dns_answer_count"], e["dns_answers"]) == (3, 3, 0, [])
        assert "NXDOMAIN" in e["summary"]


def test_unanswered_queries_and_the_retry(live, capture, entries):
    pcap, port, upstream_port = capture
    slow = [e for e in entries if e["dns_qname"] == SLOW]
    forwarded = [e for e in slow if e["dst.port"] == upstream_port]
    assert len(slow) == 2 + len(forwarded) and forwarded
    for e in slow:
        assert (e["dns_response"], e["dns_rcode"], e["status_code"], e["dns_answer_count"], e["dns_answers"]) == (
            False, None, None, None, None)
        assert "no response" in e["summary"]
        detail = live.call(pcap, "get_payload", {"id": e["id"]})["detail"]
        assert detail["response"] is None
        assert "no response in the capture" in detail["notes"]
    # dig's retry: the same query id again, from a new source port.
    tries = [e for e in slow if e["dst.port"] == port]
    assert len(tries) == 2
    assert tries[0]["dns_id"] == tries[1]["dns_id"]
    assert tries[0]["src.port"] != tries[1]["src.port"]
    # A filter finds exactly these.
    res = live.call(pcap, "list_entries", {"filter": "dns and !dns_response", "fields": ["dns_qname"], "limit": 100})
    assert [e["dns_qname"] for e in res["entries"]] == [SLOW] * len(slow)
    answered = [e for e in entries if e["dns_qname"] != SLOW]
    assert all(e["dns_response"] is True for e in answered)
