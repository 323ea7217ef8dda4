"""Live capture with several threads (`--capture-threads 2`): the kernel's fanout group spreads
connections over two rings and two engines. Every request must be seen exactly once (without the
fanout group each ring would get every frame and every request would show up twice), and the
flows must land on both engines (their ids are spaced: odd on one, even on the other).

Needs root and iproute2, like test_live_capture.py, whose namespaces it reuses."""

import contextlib
import os
import random
import subprocess
import sys
import time

import pytest
from mcp import Client, StdioServerParameters

from test_ebpf_live import wait_listening
from test_live_capture import netns_pair, sh  # noqa: F401  (the fixture is used by name)


@pytest.mark.anyio
async def test_two_capture_threads_see_every_request_once(wirelens_bin, netns_pair):
    n = netns_pair
    port = random.randrange(20000, 30000)
    web = subprocess.Popen(
        [n["ip"], "netns", "exec", n["b"], sys.executable, "-m", "http.server", str(port), "--bind", n["server"]],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_listening(n, port)
        params = StdioServerParameters(
            command=n["ip"],
            args=["netns", "exec", n["a"], wirelens_bin, "mcp", "--interface", n["dev_a"], "--no-ebpf",
                  "--capture-threads", "2", "--ring-blocks", "4", "--ring-block-size", "256KiB"])
        async with Client(params) as client:
            start = (await client.call_tool("watch_entries", {"timeout_ms": 0})).structured_content
            requests = 16
            script = "import urllib.request\n"
            for i in range(requests):
                script += f"urllib.request.urlopen('http://{n['server']}:{port}/?n={i}', timeout=5).read()\n"
            sh(n["ip"], "netns", "exec", n["a"], sys.executable, "-c", script)
            seen, cursor = [], start["next_cursor"]
            deadline = time.monotonic() + 20
            while len(seen) < requests and time.monotonic() < deadline:
                w = (await client.call_tool("watch_entries", {
                    "cursor": cursor, "filter": f"http && dst.port == {port}", "timeout_ms": 3000,
                    "fields": ["path", "status", "flow_id"]})).structured_content
                seen += w["entries"]
                cursor = w["next_cursor"]
            time.sleep(0.5)
            w = (await client.call_tool("watch_entries", {
                "cursor": cursor, "filter": f"http && dst.port == {port}", "timeout_ms": 0})).structured_content
            seen += w["entries"]
            paths = sorted(e["path"] for e in seen)
            assert paths == sorted(f"/?n={i}" for i in range(requests)), paths
            assert all(e["status"] == 200 for e in seen)
            ids = [e["flow_id"] for e in seen]
            assert len(set(ids)) == requests, ids
            assert {i % 2 for i in ids} == {0, 1}, f"all flows on one engine: {ids}"
            status = (await client.call_tool("capture_status", {})).structured_content
            iface = status["sources"][0]
            assert iface["kind"] == "interface" and iface["packets"] > 0
            assert status["packets"] == iface["packets"], (status["packets"], iface)
            assert status["flows"]["created"] >= requests
            assert status["drops"]["kernel_drops"] == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(web.pid, 9)
        web.wait()


@pytest.mark.anyio
async def test_open_connections_are_listed_while_they_last(wirelens_bin, netns_pair):
    """Flows used to appear only once they ended; a live capture now lists the open ones too,
    refreshed every second, marked `end: open`."""
    n = netns_pair
    port = random.randrange(30000, 40000)
    server = subprocess.Popen(
        [n["ip"], "netns", "exec", n["b"], sys.executable, "-c",
         "import socket,time\n"
         f"s=socket.create_server(('{n['server']}', {port}))\n"
         "c,_=s.accept(); c.sendall(b'hello'); time.sleep(30)"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    client = None
    try:
        params = StdioServerParameters(
            command=n["ip"],
            args=["netns", "exec", n["a"], wirelens_bin, "mcp", "--interface", n["dev_a"], "--no-ebpf",
                  "--ring-blocks", "4", "--ring-block-size", "256KiB"])
        async with Client(params) as c:
            await c.call_tool("capture_status", {})
            deadline = time.monotonic() + 10
            while True:
                client = subprocess.Popen(
                    [n["ip"], "netns", "exec", n["a"], sys.executable, "-c",
                     "import socket,time\n"
                     f"s=socket.create_connection(('{n['server']}', {port}), timeout=3)\n"
                     "s.recv(5); time.sleep(30)"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
                time.sleep(0.5)
                if client.poll() is None or time.monotonic() > deadline:
                    break
            assert client.poll() is None, "the client could not connect"
            # Open flows are listed from a snapshot taken once a second: one taken between the
            # SYN and the server's 5 bytes is not yet the whole story, so wait for the bytes.
            flows = []
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                r = (await c.call_tool("tcp_insights", {"group_by": "flow", "limit": 100})).structured_content
                flows = [f for f in r["flows"] or [] if f["server"] == f"{n['server']}:{port}"]
                if flows and flows[0]["payload_bytes_s2c"] == 5:
                    break
                time.sleep(0.3)
            assert len(flows) == 1, r
            f = flows[0]
            assert f["end"] == "open" and f["state"] == "established", f
            assert f["payload_bytes_s2c"] == 5, f
            listed = (await c.call_tool("list_flows", {"endpoint": f"{n['server']}:{port}"})).structured_content
            assert [x["flow_id"] for x in listed["flows"]] == [f["flow_id"]], listed
            status = (await c.call_tool("capture_status", {})).structured_content
            assert status["flows"]["open_unlisted"] == 0
    finally:
        for p in (client, server):
            if p:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, 9)
                p.wait()
