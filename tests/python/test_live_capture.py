"""Live capture with AF_PACKET, for real: two network namespaces joined by a veth pair, an HTTP
server in one, a client in the other, and `wirelens mcp --interface` capturing on the client's
veth. The Python MCP client drives wirelens over stdio (inside the namespace) and must see every
request with its status, first through `watch_entries` as it happens, then in `list_entries`.
With `--bpf` the filter runs in the kernel: only the traffic it names shows up.

Needs root and `ip` (iproute2). Under CI=true a missing prerequisite fails; elsewhere it skips.
All traffic stays inside the namespaces this test creates; they are removed at the end."""

import contextlib
import os
import random
import shutil
import subprocess
import sys
import time

import pytest
from mcp import Client, StdioServerParameters

from conftest import unavailable


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


@pytest.fixture
def netns_pair():
    if os.geteuid() != 0:
        unavailable("live capture needs root (network namespaces, AF_PACKET)")
    ip = shutil.which("ip") or unavailable("iproute2's `ip` is not installed")
    tag = f"{os.getpid() % 10000}{random.randrange(100)}"
    a, b = f"wla{tag}", f"wlb{tag}"
    net = random.randrange(16, 250)
    try:
        sh(ip, "netns", "add", a)
        sh(ip, "netns", "add", b)
        sh(ip, "link", "add", f"va{tag}", "type", "veth", "peer", "name", f"vb{tag}")
        sh(ip, "link", "set", f"va{tag}", "netns", a)
        sh(ip, "link", "set", f"vb{tag}", "netns", b)
        for ns, dev, addr in ((a, f"va{tag}", f"10.{net}.0.1/24"), (b, f"vb{tag}", f"10.{net}.0.2/24")):
            sh(ip, "-n", ns, "addr", "add", addr, "dev", dev)
            sh(ip, "-n", ns, "link", "set", dev, "up")
            sh(ip, "-n", ns, "link", "set", "lo", "up")
        yield {"ip": ip, "a": a, "b": b, "dev_a": f"va{tag}", "server": f"10.{net}.0.2"}
    finally:
        for ns in (a, b):
            sh(ip, "netns", "del", ns, check=False)


@pytest.mark.anyio
async def test_live_requests_are_seen_as_they_happen(wirelens_bin, netns_pair):
    n = netns_pair
    port = random.randrange(20000, 30000)
    web = subprocess.Popen(
        [n["ip"], "netns", "exec", n["b"], sys.executable, "-m", "http.server", str(port), "--bind", n["server"]],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        params = StdioServerParameters(
            command=n["ip"],
            args=["netns", "exec", n["a"], wirelens_bin, "mcp", "--interface", n["dev_a"],
                  "--ring-blocks", "8", "--ring-block-size", "256KiB"])
        async with Client(params) as client:
            start = (await client.call_tool("watch_entries", {"timeout_ms": 0})).structured_content
            assert "no new entries" not in " ".join(start["coverage"]["notes"])
            # The server may take a moment to listen.
            paths = ["/", "/missing-page", "/?q=1"]
            deadline = time.monotonic() + 10
            while True:
                r = sh(n["ip"], "netns", "exec", n["a"], sys.executable, "-c",
                       "import urllib.request,sys\n"
                       f"urllib.request.urlopen('http://{n['server']}:{port}/', timeout=3).read()",
                       check=False)
                if r.returncode == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert r.returncode == 0, r.stderr
            script = "import urllib.request, urllib.error\n"
            for p in paths:
                script += (f"try: urllib.request.urlopen('http://{n['server']}:{port}{p}', timeout=3).read()\n"
                           "except urllib.error.HTTPError: pass\n")
            sh(n["ip"], "netns", "exec", n["a"], sys.executable, "-c", script)

            # watch_entries returns them as they are stored (first call: the warm-up GET too).
            seen, cursor = [], start["next_cursor"]
            deadline = time.monotonic() + 20
            while len(seen) < 4 and time.monotonic() < deadline:
                w = (await client.call_tool("watch_entries", {
                    "cursor": cursor, "filter": "http", "timeout_ms": 5000,
                    "fields": ["path", "status", "src.ip", "dst.ip"]})).structured_content
                seen += w["entries"]
                cursor = w["next_cursor"]
            got = sorted((e["path"], e["status"]) for e in seen)
            assert got == sorted([("/", 200), ("/", 200), ("/missing-page", 404), ("/?q=1", 200)]), got
            assert all(e["dst.ip"] == n["server"] for e in seen)

            status = (await client.call_tool("capture_status", {})).structured_content
            assert status["sources"][0]["kind"] == "interface"
            assert status["sources"][0]["packets"] > 0
            assert status["drops"]["kernel_drops"] == 0
            # Every connection is a flow (listed once it ends; counted as it starts).
            assert status["flows"]["created"] >= 4
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(web.pid, 9)
        web.wait()


def _serve(n, port):
    """An HTTP server in namespace b on `port`; waits (from namespace a, before any capture
    starts) until it answers."""
    web = subprocess.Popen(
        [n["ip"], "netns", "exec", n["b"], sys.executable, "-m", "http.server", str(port), "--bind", n["server"]],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 10
    while True:
        r = sh(n["ip"], "netns", "exec", n["a"], sys.executable, "-c",
               f"import urllib.request; urllib.request.urlopen('http://{n['server']}:{port}/', timeout=3).read()",
               check=False)
        if r.returncode == 0:
            return web
        if time.monotonic() > deadline:
            os.killpg(web.pid, 9)
            pytest.fail(f"the HTTP server on port {port} did not come up: {r.stderr}")
        time.sleep(0.2)


@pytest.mark.anyio
async def test_live_bpf_keeps_only_the_filtered_port(wirelens_bin, netns_pair):
    """`--bpf "tcp port P"` is attached in the kernel: of HTTP to P, HTTP to another port and UDP
    datagrams sent at the same time (and the ARP and ICMP they cause), only the first shows up."""
    n = netns_pair
    kept, other = random.sample(range(20000, 30000), 2)
    udp_port = kept + 1 if kept + 1 != other else kept + 2
    servers = [_serve(n, kept), _serve(n, other)]
    try:
        bpf = f"tcp port {kept}"
        params = StdioServerParameters(
            command=n["ip"],
            args=["netns", "exec", n["a"], wirelens_bin, "mcp", "--interface", n["dev_a"], "--bpf", bpf,
                  "--ring-blocks", "8", "--ring-block-size", "256KiB"])
        async with Client(params) as client:
            start = (await client.call_tool("watch_entries", {"timeout_ms": 0})).structured_content
            # Flush the neighbour cache so that this traffic needs ARP again, which the filter drops.
            sh(n["ip"], "-n", n["a"], "neigh", "flush", "dev", n["dev_a"], check=False)
            rounds = 4
            script = (
                "import socket, urllib.request\n"
                f"for i in range({rounds}):\n"
                f"    urllib.request.urlopen('http://{n['server']}:{kept}/?kept=%d' % i, timeout=3).read()\n"
                f"    urllib.request.urlopen('http://{n['server']}:{other}/?other=%d' % i, timeout=3).read()\n"
                "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                f"    s.sendto(b'not for the filter', ('{n['server']}', {udp_port}))\n"
                "    s.close()\n"
                "print('ok')\n")
            r = sh(n["ip"], "netns", "exec", n["a"], sys.executable, "-c", script, check=False)
            assert r.returncode == 0 and "ok" in r.stdout, r.stderr

            seen, cursor = [], start["next_cursor"]
            deadline = time.monotonic() + 20
            while len(seen) < rounds and time.monotonic() < deadline:
                w = (await client.call_tool("watch_entries", {
                    "cursor": cursor, "timeout_ms": 3000, "fields": ["path", "status", "dst.port"]})).structured_content
                seen += w["entries"]
                cursor = w["next_cursor"]
            # Anything else would have arrived by now: give it a moment more, then look at all.
            time.sleep(0.5)
            listing = (await client.call_tool("list_entries", {
                "limit": 100, "order": "asc", "fields": ["path", "dst.port"]})).structured_content
            paths = [e["path"] for e in listing["entries"]]
            assert paths == [f"/?kept={i}" for i in range(rounds)], paths
            assert all(e["dst.port"] == kept for e in listing["entries"]), listing["entries"]

            status = (await client.call_tool("capture_status", {})).structured_content
            src = status["sources"][0]
            assert src["kind"] == "interface"
            assert src["bpf"] == {"expression": bpf, "applied": "kernel", "filtered_out": None}, src
            assert status["filtered_out_packets"] == 0, "the kernel filters: wirelens drops nothing itself"
            # One flow per request to the kept port; no UDP, ICMP or ARP got through.
            assert status["flows"]["created"] == rounds, status["flows"]
            assert status["tcp_packets"] > 0
            assert status["udp_packets"] == 0, status
            assert status["other_ip_packets"] == 0, status
            assert status["non_ip_packets"] == 0, status
            assert status["drops"]["kernel_drops"] == 0
            notes = " ".join(status["coverage"]["notes"])
            assert f"capture filter `{bpf}`" in notes, notes
    finally:
        for web in servers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(web.pid, 9)
            web.wait()


def test_bad_bpf_is_a_usage_error_naming_the_column(wirelens_bin):
    out = subprocess.run([wirelens_bin, "mcp", "--interface", "lo", "--bpf", "tcp port 80 and hots 10.0.0.1"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2, out
    assert "bpf filter: column 17:" in out.stderr and "did you mean `host`?" in out.stderr, out.stderr
