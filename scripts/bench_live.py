"""The body of scripts/bench-live (see there)."""

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time

from mcp import Client, StdioServerParameters


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def find_pid(marker):
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"wirelens") and marker.encode() in cmd:
            return int(p)
    raise SystemExit("wirelens process not found")


def iperf(ns, server, seconds, streams, length, udp):
    extra = ["-l", str(length), "-N"] if length and not udp else []
    if udp:
        extra = ["-u", "-b", "0", "-l", str(length or 100)]
    r = sh("ip", "netns", "exec", ns, "iperf3", "-c", server, "-t", str(seconds), "-P", str(streams), "-J", *extra)
    j = json.loads(r.stdout)
    end = j["end"]
    got = end.get("sum_received") or end["sum"]
    return got["bits_per_second"], got["bytes"]


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--streams", type=int, default=1)
    ap.add_argument("--ring-blocks", type=int, default=64)
    ap.add_argument("--len", type=int, default=0, help="bytes per write, with TCP_NODELAY (small packets)")
    ap.add_argument("--udp", action="store_true", help="UDP datagrams of --len bytes (default 100) at full speed")
    ap.add_argument("extra", nargs="*")
    a = ap.parse_args()
    tag = f"{os.getpid() % 10000}{random.randrange(100)}"
    na, nb, va, vb = f"wlla{tag}", f"wllb{tag}", f"lva{tag}", f"lvb{tag}"
    net = random.randrange(16, 250)
    server = f"10.{net}.1.2"
    iperf_srv = None
    try:
        sh("ip", "netns", "add", na)
        sh("ip", "netns", "add", nb)
        sh("ip", "link", "add", va, "type", "veth", "peer", "name", vb)
        sh("ip", "link", "set", va, "netns", na)
        sh("ip", "link", "set", vb, "netns", nb)
        for ns, dev, addr in ((na, va, f"10.{net}.1.1/24"), (nb, vb, f"{server}/24")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        iperf_srv = subprocess.Popen(["ip", "netns", "exec", nb, "iperf3", "-s"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        base_bps, _ = iperf(na, server, a.seconds, a.streams, a.len, a.udp)
        params = StdioServerParameters(command="ip", args=[
            "netns", "exec", na, a.bin, "mcp", "--interface", va, "--ring-blocks", str(a.ring_blocks), *a.extra])
        async with Client(params) as client:
            await client.call_tool("capture_status", {})
            pid = find_pid(va)
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            bps, sent = iperf(na, server, a.seconds, a.streams, a.len, a.udp)
            cpu1, t1 = cpu_seconds(pid), time.monotonic()
            time.sleep(0.3)
            st = (await client.call_tool("capture_status", {})).structured_content
        src = st["sources"][0]
        wall = t1 - t0
        ebpf = st.get("ebpf") or {}
        report = {
            "seconds": a.seconds,
            "streams": a.streams,
            "traffic": f"UDP, {a.len or 100}-byte datagrams" if a.udp else f"TCP, {a.len or 'iperf3 default (128 KiB)'} bytes per write",
            "iperf3_gbit_s_without_capture": round(base_bps / 1e9, 2),
            "iperf3_gbit_s_with_capture": round(bps / 1e9, 2),
            "captured_packets": src["packets"],
            "captured_bytes": src["bytes"],
            "captured_gbit_s": round(src["bytes"] * 8 / wall / 1e9, 2),
            "captured_packets_per_s": round(src["packets"] / wall),
            "kernel_drops": st["drops"]["kernel_drops"],
            "wirelens_cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / wall, 1),
            "ebpf_events": ebpf.get("events"),
            "ebpf_ring_full": st["drops"].get("ebpf_ring_full"),
            "flows_created": st["flows"]["created"],
        }
        print(json.dumps(report, indent=2))
    finally:
        if iperf_srv:
            iperf_srv.kill()
            iperf_srv.wait()
        for ns in (na, nb):
            sh("ip", "netns", "del", ns, check=False)


asyncio.run(main())
