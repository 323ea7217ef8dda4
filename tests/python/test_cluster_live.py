"""Cluster mode on one machine: two "nodes" (network namespaces joined by a veth pair), a
`wirelens agent` capturing each node's end of the link, and a hub (`wirelens mcp --agents …`,
the same tool code as `serve --agents`) driven by the Python MCP SDK.

Checks: merged answers equal the union of what each agent holds; a connection seen by both
agents is reported once (by the client's node); killing an agent gives an answer labelled
partial (and the other agent then reports the calls it holds), restarting it gives a full answer
again without restarting the hub; cursors page through both agents in time order; the agents
refuse clients without a certificate from the CA, and a hub with a certificate from another CA
gets no answer.

Needs root, iproute2 and openssl."""

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

import pytest
from mcp import Client, StdioServerParameters

from conftest import unavailable
from test_live_capture import netns_pair, sh  # noqa: F401  (the fixture is used by name)
from wirelens_http import stop_group


def make_certs(d):
    """A CA; an agent certificate naming `wirelens-agent`; a hub client certificate; and a rogue
    CA with its own hub certificate."""
    openssl = shutil.which("openssl") or unavailable("openssl is not installed (certificates are needed)")

    def run(*a):
        subprocess.run([openssl, *a], check=True, capture_output=True, cwd=d)

    for ca in ("ca", "rogue"):
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-days", "2", "-subj", f"/CN=wirelens test {ca}")
    for name, ca, cn in (("agent", "ca", "wirelens-agent"), ("hub", "ca", "wirelens-hub"),
                         ("roguehub", "rogue", "wirelens-hub")):
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}")
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName=DNS:{cn}\nextendedKeyUsage=serverAuth,clientAuth\n"
                    "basicConstraints=CA:FALSE\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")
    return {k: os.path.join(d, k) for k in ("ca.crt", "agent.crt", "agent.key", "hub.crt", "hub.key",
                                             "roguehub.crt", "roguehub.key")}


class Agent:
    def __init__(self, n, wirelens_bin, ns, dev, addr, port, name, certs, log):
        self.cmd = [n["ip"], "netns", "exec", ns, wirelens_bin, "agent", "--interface", dev, "--no-ebpf",
                    "--bpf", f"not port {port}", "--ring-blocks", "4", "--ring-block-size", "256KiB",
                    "--listen", f"{addr}:{port}", "--node-name", name,
                    "--raw-ring", f"{log}.ring", "--raw-ring-size", "64MiB",
                    "--tls-cert", certs["agent.crt"], "--tls-key", certs["agent.key"],
                    "--client-ca", certs["ca.crt"]]
        self.log, self.addr, self.port, self.proc = log, addr, port, None
        self.start()

    def start(self):
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen(self.cmd, stdout=f, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while "listening on" not in open(self.log, errors="replace").read().split("== restart ==")[-1]:
            assert self.proc.poll() is None and time.monotonic() < deadline, open(self.log).read()[-3000:]
            time.sleep(0.05)

    def kill(self):
        os.killpg(self.proc.pid, 9)
        self.proc.wait()
        with open(self.log, "a") as f:
            f.write("\n== restart ==\n")


def requests(n, ns, server, port, paths):
    script = "import urllib.request\n" + "".join(
        f"urllib.request.urlopen('http://{server}:{port}{p}', timeout=5).read()\n" for p in paths)
    sh(n["ip"], "netns", "exec", ns, sys.executable, "-c", script)


async def tool(client, name, args):
    r = await client.call_tool(name, args)
    assert not r.is_error, (name, args, r.content[0].text if r.content else r)
    return r.structured_content


async def wait_total(client, filt, want, partial=False, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        r = await tool(client, "list_entries", {"filter": filt, "limit": 1000, "fields": ["id", "path", "src.ip"]})
        if r["total_matched"] == want and r["coverage"].get("partial", False) == partial:
            return r
        assert time.monotonic() < deadline, (want, partial, r["total_matched"], r["coverage"])
        time.sleep(0.3)


def hub_params(n, wirelens_bin, agents, certs, cert="hub", deadline="3"):
    args = ["netns", "exec", n["a"], wirelens_bin, "mcp"]
    for a in agents:
        args += ["--agents", f"{a.addr}:{a.port}"]
    args += ["--agent-ca", certs["ca.crt"], "--agent-cert", certs[f"{cert}.crt"],
             "--agent-key", certs[f"{cert}.key"], "--agent-deadline", deadline]
    return StdioServerParameters(command=n["ip"], args=args)


@pytest.mark.anyio
async def test_hub_merges_dedups_survives_an_agent_restart_and_requires_mtls(wirelens_bin, netns_pair, tmp_path):
    n = netns_pair
    certs = make_certs(str(tmp_path))
    addr_a = n["server"].rsplit(".", 1)[0] + ".1"
    addr_b = n["server"]
    web_port, agent_port = random.randrange(20000, 30000), random.randrange(30000, 40000)
    dev_b = n["dev_a"].replace("va", "vb", 1)
    webs = [subprocess.Popen([n["ip"], "netns", "exec", ns, sys.executable, "-m", "http.server", str(web_port),
                              "--bind", addr], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
            for ns, addr in ((n["a"], addr_a), (n["b"], addr_b))]
    agents = []
    try:
        agents = [Agent(n, wirelens_bin, n["a"], n["dev_a"], addr_a, agent_port, "node-a", certs,
                        str(tmp_path / "agent-a.log")),
                  Agent(n, wirelens_bin, n["b"], dev_b, addr_b, agent_port, "node-b", certs,
                        str(tmp_path / "agent-b.log"))]
        time.sleep(1.0)  # the http servers listen
        a_to_b = [f"/?a-to-b={i}" for i in range(6)]
        b_to_a = [f"/?b-to-a={i}" for i in range(4)]
        requests(n, n["a"], addr_b, web_port, a_to_b)
        requests(n, n["b"], addr_a, web_port, b_to_a)
        filt = f"http && dst.port == {web_port}"

        # Each agent alone holds every call (both ends of the link are on its veth).
        union = set()
        for a in agents:
            async with Client(hub_params(n, wirelens_bin, [a], certs)) as one:
                r = await wait_total(one, filt, 10)
                union |= {e["path"] for e in r["entries"]}
        assert union == set(a_to_b + b_to_a)

        async with Client(hub_params(n, wirelens_bin, agents, certs)) as hub:
            r = await wait_total(hub, filt, 10)
            # The union, each call once, reported by its client's node.
            paths = [e["path"] for e in r["entries"]]
            assert sorted(paths) == sorted(a_to_b + b_to_a), paths
            for e in r["entries"]:
                want = "node-a/" if e["path"].startswith("/?a-to-b") else "node-b/"
                assert e["id"].startswith(want), e
            cov = r["coverage"]
            assert [a["name"] for a in cov["agents"]] == ["node-a", "node-b"]
            assert all(a["answered"] and a["restarts"] == 0 for a in cov["agents"]), cov["agents"]
            assert not cov.get("partial", False)

            # Pages of 3 across both agents: every call once, oldest first.
            seen, cursor = [], None
            while True:
                args = {"filter": filt, "limit": 3, "order": "asc", "fields": ["id", "path", "timestamp"]}
                if cursor:
                    args["cursor"] = cursor
                page = await tool(hub, "list_entries", args)
                seen += page["entries"]
                cursor = page["next_cursor"]
                if not cursor:
                    break
            assert sorted(e["path"] for e in seen) == sorted(a_to_b + b_to_a)
            assert [e["timestamp"] for e in seen] == sorted(e["timestamp"] for e in seen)

            # Aggregates count each call once and keep whole histograms.
            stats = await tool(hub, "api_stats", {"filter": filt, "group_by": "server"})
            assert stats["total"]["count"] == 10, stats["total"]
            assert stats["total"]["latency_ms"]["samples"] == 10
            smap = await tool(hub, "service_map", {"filter": filt, "level": "pod"})
            assert sum(e["requests"] for e in smap["edges"]) == 10, smap["edges"]

            # A payload by hub id, from the agent named in it.
            one = next(e for e in r["entries"] if e["path"] == "/?b-to-a=2")
            p = await tool(hub, "get_payload", {"id": one["id"]})
            assert p["id"] == one["id"] and "/?b-to-a=2" in p["summary"], p
            status = await tool(hub, "capture_status", {})
            assert len(status["coverage"]["agents"]) == 2 and status["packets"] > 0

            # Connections: each once, by its client's node, with whole RTT percentiles.
            flt = f"dst.port == {web_port}"
            deadline = time.monotonic() + 20
            while True:  # closed connections are recorded when the engine sweeps them
                tcp = await tool(hub, "tcp_insights", {"filter": flt, "group_by": "flow", "limit": 100})
                if tcp["total_matched"] >= 10 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert tcp["total_matched"] == 10 and len(tcp["flows"]) == 10, tcp["total_matched"]
            assert {f["agent"] for f in tcp["flows"]} == {"node-a", "node-b"}
            assert tcp["initial_rtt_p50_us"] is not None
            groups = await tool(hub, "tcp_insights", {"filter": flt, "group_by": "server"})
            assert sorted(g["flows"] for g in groups["groups"]) == [4, 6], groups["groups"]
            flows = await tool(hub, "list_flows", {"filter": flt, "limit": 4})
            assert flows["total_matched"] == 10 and len(flows["flows"]) == 4 and flows["next_cursor"]
            rest = await tool(hub, "list_flows", {"filter": flt, "limit": 100, "cursor": flows["next_cursor"]})
            assert len(rest["flows"]) == 6 and not rest["next_cursor"]
            summary = await tool(hub, "flow_summary", {"filter": flt})
            assert summary["flows"] == 10 and summary["tcp_flows"] == 10

            # Following new calls on both nodes through one cursor.
            w = await tool(hub, "watch_entries", {"timeout_ms": 0, "filter": filt})
            requests(n, n["b"], addr_a, web_port, ["/?watch=1"])
            got, cursor = [], w["next_cursor"]
            for _ in range(20):
                w = await tool(hub, "watch_entries", {"cursor": cursor, "filter": filt, "timeout_ms": 1000,
                                                      "fields": ["id", "path"]})
                got += w["entries"]
                cursor = w["next_cursor"]
                if got:
                    break
            assert [e["path"] for e in got] == ["/?watch=1"] and got[0]["id"].startswith("node-b/"), got
            a_to_b_extra = ["/?watch=1"]

            # Exports: each agent writes what it reports; the hub joins them into one file.
            pcap = await tool(hub, "export_pcap", {"filter": filt})
            assert pcap["flows"] == 11 and pcap["packets"] > 0, pcap
            assert len(pcap["coverage"]["agents"]) == 2
            again = subprocess.run([wirelens_bin, "call", "--pcap", pcap["path"], "list_entries",
                                    json.dumps({"filter": filt, "limit": 100, "fields": ["path"]})],
                                   check=True, capture_output=True, text=True)
            assert sorted(e["path"] for e in json.loads(again.stdout)["entries"]) == sorted(
                a_to_b + b_to_a + a_to_b_extra), again.stdout[:2000]
            har = await tool(hub, "export_har", {"filter": filt})
            with open(har["path"]) as f:
                log = json.load(f)["log"]
            assert len(log["entries"]) == 11 and har["entries"] == 11
            started = [e["startedDateTime"] for e in log["entries"]]
            assert started == sorted(started)
            snap = await tool(hub, "create_snapshot", {"since": "1h", "until": "2100-01-01T00:00:00Z", "filter": filt, "name": "cluster-test"})
            assert snap["snapshot"]["name"] == "cluster-test" and "node-a:" in snap["snapshot"]["path"], snap
            listed = await tool(hub, "list_snapshots", {})
            assert "cluster-test" in [x["name"] for x in listed["snapshots"]]
            await tool(hub, "delete_snapshot", {"name": "cluster-test"})

            # A slow agent (stopped, so it answers nothing) hits the per-query deadline: the
            # answer comes in time, labelled partial, naming the deadline.
            os.killpg(agents[0].proc.pid, signal.SIGSTOP)
            try:
                t0 = time.monotonic()
                r = await tool(hub, "list_entries", {"filter": filt, "fields": ["id"]})
                assert time.monotonic() - t0 < 3 * 2 + 2, "the deadline (3 s) was not kept"
                a = next(x for x in r["coverage"]["agents"] if x["name"] == "node-a")
                assert r["coverage"]["partial"] and not a["answered"] and "deadline" in a["error"], r["coverage"]
            finally:
                os.killpg(agents[0].proc.pid, signal.SIGCONT)
            await wait_total(hub, filt, 11)

            # node-b dies: the answer is labelled partial, and node-a reports what it holds of
            # node-b's calls too.
            agents[1].kill()
            r = await wait_total(hub, filt, 11, partial=True)
            b = next(a for a in r["coverage"]["agents"] if a["name"] == "node-b")
            assert not b["answered"] and b["error"], b
            assert "PARTIAL" in r["coverage"]["notes"][0]
            assert all(e["id"].startswith("node-a/") for e in r["entries"])

            # It comes back (a new process, an empty store): the same hub sees it again, counts
            # the restart, and node-a still reports the calls node-b no longer holds.
            agents[1].start()
            requests(n, n["a"], addr_b, web_port, ["/?after=1", "/?after=2"])
            r = await wait_total(hub, filt, 13)
            b = next(a for a in r["coverage"]["agents"] if a["name"] == "node-b")
            assert b["answered"] and b["restarts"] == 1, b
            assert sorted(e["path"] for e in r["entries"]) == sorted(
                a_to_b + b_to_a + a_to_b_extra + ["/?after=1", "/?after=2"])

        # A new hub (the old one gone) answers the same: the agents hold everything.
        async with Client(hub_params(n, wirelens_bin, agents, certs)) as hub2:
            r = await wait_total(hub2, filt, 13)
            assert sorted(e["path"] for e in r["entries"]) == sorted(
                a_to_b + b_to_a + a_to_b_extra + ["/?after=1", "/?after=2"])

        # mTLS: a client without a certificate is refused by the agent ...
        ctx = ssl.create_default_context(cafile=certs["ca.crt"])
        ctx.check_hostname = False
        ctx.set_alpn_protocols(["h2"])
        refused = False
        try:
            with socket.create_connection((addr_a, agent_port), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname="wirelens-agent") as tls:
                    tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                    refused = tls.recv(100) == b""
        except (ssl.SSLError, ConnectionResetError, OSError):
            refused = True
        assert refused, "an agent served a client without a certificate"
        # ... and a hub whose certificate another CA signed gets no answer.
        async with Client(hub_params(n, wirelens_bin, agents, certs, cert="roguehub")) as rogue:
            r = await tool(rogue, "list_entries", {"filter": filt})
            assert r["total_matched"] == 0 and r["coverage"]["partial"], r["coverage"]
            assert all(not a["answered"] for a in r["coverage"]["agents"])
    finally:
        for a in agents:
            stop_group(a.proc)
        for w in webs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(w.pid, 9)
            w.wait()
