"""The raw capture ring, live: two network namespaces joined by a veth pair, an HTTP server in
one, a client in the other, and `wirelens mcp --interface --raw-ring DIR --raw-ring-size 2MiB`
capturing on the client's veth. Over the Python MCP client it:

- makes a snapshot of the last minute and exports it with a filter (the 404s); wirelens and
  tshark read the export and agree with each other and with the requests made;
- fills the ring past its size (downloads of a 3 MB file) and checks that it stays bounded on
  disk, oldest segments deleted, the write rate and drops reported in capture_status;
- restarts wirelens on the same directory: the segments are still there (bounded), a snapshot of
  the first run's window has its packets, and the earlier snapshot is still listed and exports.

Needs root, `ip` (iproute2) and tshark. Under CI=true a missing prerequisite fails; elsewhere it
skips. All traffic stays inside the namespaces this test creates; they are removed at the end."""

import contextlib
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import time

import pytest
from mcp import Client, StdioServerParameters

from conftest import unavailable
from test_live_capture import netns_pair  # noqa: F401  (the fixture)

RING_BYTES = 2 << 20


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


async def tool(client, name, args):
    r = await client.call_tool(name, args)
    assert not r.is_error, (name, args, r.content[0].text if r.content else r)
    return r.structured_content


def fetch(n, port, paths):
    """GETs `paths` from namespace a (one connection each); HTTP errors are fine."""
    script = "import urllib.request, urllib.error\n"
    for p in paths:
        script += (f"try: urllib.request.urlopen('http://{n['server']}:{port}{p}', timeout=10).read()\n"
                   "except urllib.error.HTTPError: pass\n")
    sh(n["ip"], "netns", "exec", n["a"], sys.executable, "-c", script)


async def wait_entries(client, cursor, want, filter_="http"):
    seen, deadline = [], time.monotonic() + 30
    while len(seen) < want and time.monotonic() < deadline:
        w = await tool(client, "watch_entries", {"cursor": cursor, "filter": filter_, "timeout_ms": 5000,
                                                 "fields": ["path", "status"]})
        seen += w["entries"]
        cursor = w["next_cursor"]
    assert len(seen) >= want, seen
    return seen, cursor


def tshark_view(tshark, path):
    """(request URIs, response codes, TCP conversations) as tshark reads the file."""
    def fields(flt, *names):
        r = sh(tshark, "-r", path, "-Y", flt, "-T", "fields", "-E", "separator=|", *sum([["-e", f] for f in names], []))
        return [line.split("|") for line in r.stdout.splitlines() if line]
    uris = sorted(r[0] for r in fields("http.request", "http.request.uri"))
    codes = sorted(int(r[0]) for r in fields("http.response", "http.response.code"))
    convs = {tuple(sorted([(r[0], int(r[1])), (r[2], int(r[3]))]))
             for r in fields("tcp", "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport")}
    return uris, codes, convs


def wirelens_view(wirelens_bin, path):
    """(paths, statuses, TCP connections) as `wirelens call --pcap` reads the file."""
    def call(tool_, args):
        r = sh(wirelens_bin, "call", "--pcap", path, tool_, json.dumps(args))
        return json.loads(r.stdout)
    entries = call("list_entries", {"filter": "http", "limit": 1000, "fields": ["path", "status"]})["entries"]
    flows = call("list_flows", {"protocol": "tcp", "limit": 1000})["flows"]

    def end(s):
        host, port = s.rsplit(":", 1)
        return (host, int(port))
    convs = {tuple(sorted([end(f["client"]), end(f["server"])])) for f in flows}
    return sorted(e["path"] for e in entries), sorted(e["status"] for e in entries), convs


def ring_files(ring):
    return [p for p in pathlib.Path(ring).iterdir() if p.is_file() and p.name.startswith("ring-")]


@pytest.mark.anyio
async def test_raw_ring_snapshot_export_bounded_and_restart(wirelens_bin, netns_pair, tmp_path):  # noqa: F811
    n = netns_pair
    tshark = shutil.which("tshark") or unavailable("tshark is not installed (scripts/test installs it)")
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello\n")
    (www / "big.bin").write_bytes(os.urandom(3 << 20))
    ring = tmp_path / "ring"
    exports = tmp_path / "exports"
    port = random.randrange(20000, 30000)
    web = subprocess.Popen(
        [n["ip"], "netns", "exec", n["b"], sys.executable, "-m", "http.server", str(port), "--bind", n["server"],
         "--directory", str(www)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    params = StdioServerParameters(
        command=n["ip"],
        args=["netns", "exec", n["a"], wirelens_bin, "mcp", "--interface", n["dev_a"], "--no-ebpf",
              "--raw-ring", str(ring), "--raw-ring-size", str(RING_BYTES), "--export-dir", str(exports)])
    try:
        deadline = time.monotonic() + 10
        while sh(n["ip"], "netns", "exec", n["a"], sys.executable, "-c",
                 f"import urllib.request; urllib.request.urlopen('http://{n['server']}:{port}/', timeout=3)",
                 check=False).returncode != 0:
            assert time.monotonic() < deadline, "the HTTP server did not come up"
            time.sleep(0.2)

        async with Client(params) as client:
            start = await tool(client, "watch_entries", {"timeout_ms": 0})
            paths = ["/", "/missing-1", "/index.html", "/missing-2", "/?q=1", "/missing-3"]
            fetch(n, port, paths)
            await wait_entries(client, start["next_cursor"], len(paths))

            # 1. A snapshot of the last minute, exported with a filter: the 404s only.
            snap = (await tool(client, "create_snapshot", {"since": "1m", "until": "0s", "name": "incident"}))["snapshot"]
            assert snap["packets"] > 0 and snap["entries"] >= len(paths), snap
            assert pathlib.Path(snap["path"]).is_file() and snap["path"].startswith(str(ring))
            t0 = time.monotonic()
            ex = await tool(client, "export_pcap", {"snapshot": "incident", "filter": "http && status == 404"})
            export_ms = (time.monotonic() - t0) * 1000
            assert ex["flows"] == 3 and ex["packet_source"] == "snapshot incident", ex
            assert pathlib.Path(ex["path"]).parent == exports
            w_paths, w_codes, w_convs = wirelens_view(wirelens_bin, ex["path"])
            t_uris, t_codes, t_convs = tshark_view(tshark, ex["path"])
            assert w_paths == t_uris == ["/missing-1", "/missing-2", "/missing-3"], (w_paths, t_uris)
            assert w_codes == t_codes == [404, 404, 404], (w_codes, t_codes)
            assert w_convs == t_convs and len(w_convs) == 3, (w_convs, t_convs)
            # The same straight from the ring.
            direct = await tool(client, "export_pcap", {"filter": "http && status == 404"})
            assert direct["flows"] == 3 and direct["packet_source"].startswith("raw ring"), direct
            assert wirelens_view(wirelens_bin, direct["path"])[2] == w_convs

            # 2. Fill the ring past its size: it stays bounded.
            fetch(n, port, ["/big.bin"] * 3)
            await wait_entries(client, start["next_cursor"], len(paths) + 3)
            deadline = time.monotonic() + 20
            while True:
                status = await tool(client, "capture_status", {})
                rr = status["raw_ring"]
                if rr["packets_written"] + rr["dropped_queue_full"] >= rr["packets_offered"] or \
                        time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert rr["max_bytes"] == RING_BYTES
            assert rr["bytes_written"] > 3 * RING_BYTES, rr
            assert rr["segments_deleted"] > 0, rr
            assert rr["bytes_on_disk"] <= RING_BYTES, rr
            assert rr["dropped_queue_full"] == 0 and rr["dropped_write_errors"] == 0, rr
            assert rr["write_rate_bytes_per_s"] > 0, rr
            on_disk = sum(p.stat().st_size for p in ring_files(ring))
            assert 0 < on_disk <= RING_BYTES, on_disk
            first_run = (rr["oldest"], rr["newest"])
            print(f"\nraw ring: {rr['bytes_written']} bytes written, {rr['segments']} segments, "
                  f"{rr['segments_deleted']} deleted, {rr['write_rate_bytes_per_s']:.0f} B/s over the last 10 s; "
                  f"export of a snapshot: {export_ms:.0f} ms")

        # 3. A restart keeps the segments (bounded) and the snapshots.
        async with Client(params) as client:
            status = await tool(client, "capture_status", {})
            rr = status["raw_ring"]
            assert rr["segments_recovered"] > 0 and rr["bytes_on_disk"] <= RING_BYTES, rr
            # The segment open at the stop was closed; the oldest may have made room for a new one.
            assert rr["oldest"] >= first_run[0] and rr["newest"] >= first_run[1], (rr, first_run)
            listed = await tool(client, "list_snapshots", {})
            assert [s["name"] for s in listed["snapshots"]] == ["incident"]
            again = await tool(client, "export_pcap", {"snapshot": "incident", "filter": "http && status == 404"})
            assert again["flows"] == 3
            kept = (await tool(client, "create_snapshot", {"since": first_run[0], "until": first_run[1],
                                                           "name": "from-last-run"}))["snapshot"]
            assert kept["packets"] > 0 and kept["source"].startswith("raw ring"), kept
            # The tail of the last download: the ring holds less than one 3 MB transfer.
            convs = wirelens_view(wirelens_bin, kept["path"])[2]
            assert any((n["server"], port) in c for c in convs), convs
            deleted = await tool(client, "delete_snapshot", {"name": "from-last-run"})
            assert deleted["deleted"]["name"] == "from-last-run"
            assert not pathlib.Path(kept["path"]).exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(web.pid, 9)
        web.wait()
