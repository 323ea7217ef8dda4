"""`wirelens mcp --kube`: MCP on stdio reaching a hub through a real Kubernetes API server's
service proxy with a kubeconfig (scripts/k8s-test-cluster.sh, on loopback). The API server
proxies to the Service's endpoint, which must not be a loopback address, so the hub listens on
an address on a veth this test adds. The hub's token comes from its Secret.

Needs root (the veth), iproute2, kubectl and the cached kube-apiserver."""

import json
import os
import random
import secrets
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from conftest import unavailable
from wirelens_http import stop_group

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def api_server(tmp_path):
    cache = Path(os.environ.get("WIRELENS_CACHE", Path.home() / ".cache/wirelens"))
    if not (cache / "k8s/1.20.2/kube-apiserver").exists():
        unavailable("the kube-apiserver binaries are not cached: run scripts/k8s-test-cluster.sh build")
    script = ROOT / "scripts/k8s-test-cluster.sh"
    d = tmp_path / "k8s"
    d.mkdir()
    out = subprocess.run([script, "start", d], capture_output=True, text=True)
    try:
        assert out.returncode == 0, out.stderr[-3000:]
        yield d / "kubeconfig"
    finally:
        subprocess.run([script, "stop", d], capture_output=True)


@pytest.fixture
def dummy_address():
    if os.geteuid() != 0:
        unavailable("the --kube test needs root (a veth for the hub's address)")
    ip = shutil.which("ip") or unavailable("iproute2's `ip` is not installed")
    dev = f"wlk{os.getpid() % 10000}"
    addr = f"10.{random.randrange(100, 200)}.{random.randrange(1, 250)}.1"
    # No dummy driver on every kernel: one end of a veth pair holds the address.
    subprocess.run([ip, "link", "add", dev, "type", "veth", "peer", "name", dev + "p"], check=True)
    try:
        subprocess.run([ip, "addr", "add", f"{addr}/32", "dev", dev], check=True)
        subprocess.run([ip, "link", "set", dev, "up"], check=True)
        subprocess.run([ip, "link", "set", dev + "p", "up"], check=True)
        yield addr
    finally:
        subprocess.run([ip, "link", "del", dev], capture_output=True)


def kubectl(kubeconfig, *args, stdin=None):
    k = shutil.which("kubectl") or unavailable("kubectl is not installed")
    return subprocess.run([k, "--kubeconfig", str(kubeconfig), *args], input=stdin, check=True,
                          capture_output=True, text=True)


@pytest.mark.anyio
async def test_mcp_kube_reaches_the_hub_through_the_api_server(wirelens_bin, api_server, dummy_address, tmp_path):
    token = secrets.token_hex(16)
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    port = random.randrange(20000, 30000)
    log = open(tmp_path / "hub.log", "wb")
    hub = subprocess.Popen([wirelens_bin, "serve", "--demo", "--listen", f"{dummy_address}:{port}",
                            "--token-file", str(token_file)], stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{dummy_address}:{port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert hub.poll() is None and time.monotonic() < deadline, open(tmp_path / "hub.log").read()
            time.sleep(0.1)
        objects = {"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "wirelens"}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "wirelens-hub-token", "namespace": "wirelens"},
             "stringData": {"token": token}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "wirelens-hub", "namespace": "wirelens"},
             "spec": {"ports": [{"name": "mcp", "port": 8898, "targetPort": port}]}},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "wirelens-hub-0", "namespace": "wirelens"},
             "spec": {"containers": [{"name": "hub", "image": "wirelens:test"}]}},
            # The API server proxies only to an address that a pod of the Endpoints holds.
            {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "wirelens-hub", "namespace": "wirelens"},
             "subsets": [{"addresses": [{"ip": dummy_address, "targetRef": {
                 "kind": "Pod", "name": "wirelens-hub-0", "namespace": "wirelens"}}],
                 "ports": [{"name": "mcp", "port": port}]}]},
        ]}
        for _ in range(50):  # the new namespace's service account may not exist yet
            try:
                kubectl(api_server, "apply", "-f", "-", stdin=json.dumps(objects))
                break
            except subprocess.CalledProcessError:
                time.sleep(0.2)
        else:
            kubectl(api_server, "apply", "-f", "-", stdin=json.dumps(objects))
        # No kubelet runs: the pod's IP is set through its status, as a kubelet would.
        kubectl(api_server, "-n", "wirelens", "patch", "pod", "wirelens-hub-0", "--subresource=status",
                "--type", "merge", "-p", json.dumps({"status": {
                    "phase": "Running", "podIP": dummy_address, "podIPs": [{"ip": dummy_address}]}}))

        params = StdioServerParameters(command=wirelens_bin, args=["mcp", "--kube", "--kubeconfig", str(api_server)])
        async with Client(params) as client:
            tools = await client.list_tools()
            assert "list_entries" in [t.name for t in tools.tools]
            r = await client.call_tool("list_entries", {"limit": 3, "filter": "http && status >= 500"})
            assert not r.is_error, r.content
            assert len(r.structured_content["entries"]) == 3
            assert r.structured_content["coverage"]["sources"] == ["demo"]
            stats = await client.call_tool("api_stats", {"group_by": "service"})
            assert not stats.is_error and stats.structured_content["total"]["count"] > 100

        # A wrong token in the Secret: the hub refuses, and the client is told why.
        kubectl(api_server, "-n", "wirelens", "patch", "secret", "wirelens-hub-token", "--type", "merge",
                "-p", json.dumps({"stringData": {"token": "wrong"}}))
        with pytest.raises(Exception) as e:
            async with Client(params) as client:
                await client.list_tools()
        assert "401" in repr(e.value) and "bearer token" in repr(e.value), repr(e.value)
    finally:
        stop_group(hub)
        log.close()
