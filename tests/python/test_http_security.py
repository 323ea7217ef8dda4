"""`wirelens serve` security, over real HTTP on 127.0.0.1: Origin and Host validation (DNS
rebinding), the bearer token (401 with WWW-Authenticate; /healthz and /readyz open, /metrics
closed), refusal of a non-loopback bind without a token, HTTPS with a self-signed certificate,
the request body cap (413), and the tool-call counters of /metrics."""

import json
import os
import re
import shutil
import ssl
import subprocess

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

import wirelens_http
from conftest import unavailable

TOKEN = "wl-test-7f3c9a1e5b2d4c6e8a0f1b3d5e7c9a2b"
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def initialize(req_id=1) -> dict:
    """A legacy initialize request: every server answers it, with or without a session."""
    return {"jsonrpc": "2.0", "id": req_id, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "wirelens-security-test", "version": "0"}}}


def start(wirelens_bin, tmp_path, name, args=(), **kw):
    try:
        return wirelens_http.start(wirelens_bin, tmp_path / f"{name}.log", args, **kw)
    except wirelens_http.ServerFailed as e:
        pytest.fail(str(e))


@pytest.fixture(scope="module")
def plain(wirelens_bin, tmp_path_factory):
    """No token; one extra allowed Origin and Host; a 4 KiB body cap."""
    s = start(wirelens_bin, tmp_path_factory.mktemp("plain"), "plain",
              ["--allowed-origin", "https://console.example.com", "--allowed-host", "wirelens.internal",
               "--max-body", "4KiB"])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def token_server(wirelens_bin, tmp_path_factory):
    d = tmp_path_factory.mktemp("token")
    token_file = d / "token"
    token_file.write_text(TOKEN + "\n")
    os.chmod(token_file, 0o600)
    s = start(wirelens_bin, d, "token", ["--token-file", str(token_file)])
    yield s
    s.stop()


def post(url, body, headers=None, **kw):
    return httpx2.post(url, content=body if isinstance(body, (bytes, str)) else json.dumps(body),
                       headers={**ACCEPT, **(headers or {})}, timeout=30, **kw)


def test_foreign_origin_is_forbidden(plain):
    for origin in ["http://evil.example", "https://attacker.test:8898", "null", "http://localhost.evil.example"]:
        r = post(plain.url, initialize(), {"Origin": origin})
        assert r.status_code == 403, (origin, r.status_code, r.text)
        assert "Origin" in r.text


def test_local_and_configured_origins_are_accepted(plain):
    for origin in ["http://localhost:3000", "http://127.0.0.1:6274", f"http://localhost:{plain.port}",
                   "https://console.example.com"]:
        r = post(plain.url, initialize(), {"Origin": origin})
        assert r.status_code == 200, (origin, r.status_code, r.text)
        assert '"serverInfo"' in r.text
    # No Origin at all (a non-browser client) is fine too.
    assert post(plain.url, initialize()).status_code == 200


def test_wrong_host_is_rejected(plain):
    for host in ["evil.example", f"evil.example:{plain.port}", "192.0.2.7", f"attacker.test:{plain.port}"]:
        r = post(plain.url, initialize(), {"Host": host})
        # rmcp's DNS-rebinding guard: 403 "Forbidden: Host header is not allowed".
        assert r.status_code == 403, (host, r.status_code, r.text)
        assert "Host" in r.text
    for host in [f"127.0.0.1:{plain.port}", f"localhost:{plain.port}", "localhost", "wirelens.internal",
                 f"wirelens.internal:{plain.port}"]:
        r = post(plain.url, initialize(), {"Host": host})
        assert r.status_code == 200, (host, r.status_code, r.text)


def test_oversized_body_is_413(plain):
    small = initialize()
    small["params"]["clientInfo"]["name"] = "x" * 1000
    assert post(plain.url, small).status_code == 200
    big = initialize()
    big["params"]["clientInfo"]["name"] = "x" * 8192  # over --max-body 4KiB
    r = post(plain.url, big)
    assert r.status_code == 413, (r.status_code, r.text)


def test_no_token_means_open(plain):
    assert httpx2.get(f"{plain.base}/metrics", timeout=10).status_code == 200
    assert post(plain.url, initialize()).status_code == 200


def test_token_required_on_mcp(token_server):
    for headers in [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN}x"},
                    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}]:
        r = post(token_server.url, initialize(), headers)
        assert r.status_code == 401, (headers, r.status_code, r.text)
        assert r.headers.get("www-authenticate", "").startswith("Bearer"), r.headers
        assert "serverInfo" not in r.text
    r = post(token_server.url, initialize(), {"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and '"serverInfo"' in r.text


def test_probes_open_and_metrics_closed_with_a_token(token_server):
    for path in ["/healthz", "/readyz"]:
        r = httpx2.get(f"{token_server.base}{path}", timeout=10)
        assert r.status_code == 200, (path, r.status_code)
    r = httpx2.get(f"{token_server.base}/metrics", timeout=10)
    assert r.status_code == 401 and r.headers.get("www-authenticate", "").startswith("Bearer")
    r = httpx2.get(f"{token_server.base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert r.status_code == 200 and "wirelens_tool_calls_total" in r.text


@pytest.mark.anyio
async def test_downloads_are_authorised_like_mcp(token_server):
    """export_pcap, export_har and create_snapshot give download URLs served under the same
    token, Host and Origin checks as /mcp; nothing outside the export directory is served."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx2.AsyncClient(headers=auth, timeout=30) as http:
        async with Client(streamable_http_client(token_server.url, http_client=http)) as client:
            urls = []
            for tool, args in [("export_pcap", {"filter": "http && status >= 500"}), ("export_har", {}),
                               ("create_snapshot", {"since": "1h", "until": "0s",
                                                    "name": f"dl-{os.getpid()}-{token_server.port}"})]:
                r = await client.call_tool(tool, args)
                assert not r.is_error, r.content[0].text
                out = r.structured_content.get("snapshot", r.structured_content)
                assert out["download_url"].startswith(token_server.base + "/"), out
                urls.append((out["download_url"], out["path"]))
            await client.call_tool("delete_snapshot", {"name": f"dl-{os.getpid()}-{token_server.port}"})
    for url, path in urls[:2]:
        r = httpx2.get(url, timeout=30)
        assert r.status_code == 401 and r.headers.get("www-authenticate", "").startswith("Bearer")
        r = httpx2.get(url, headers=auth, timeout=30)
        assert r.status_code == 200, (url, r.status_code, r.text)
        with open(path, "rb") as f:
            assert r.content == f.read()
        assert r.headers["content-type"] in ("application/x-pcapng", "application/json")
        assert httpx2.get(url, headers={**auth, "Host": "evil.example"}, timeout=30).status_code == 403
        assert httpx2.get(url, headers={**auth, "Origin": "http://evil.example"}, timeout=30).status_code == 403
    # The snapshot was deleted: its URL is gone too.
    assert httpx2.get(urls[2][0], headers=auth, timeout=30).status_code == 404
    for bad in ["/exports/..%2F..%2Fetc%2Fpasswd", f"/exports/..%2F..%2F{urls[0][1].lstrip('/').replace('/', '%2F')}",
                "/exports/.hidden.pcapng", "/exports/x.txt",
                "/snapshots/..%2Fx/packets.pcapng", "/snapshots/x/entries.json"]:
        r = httpx2.get(token_server.base + bad, headers=auth, timeout=30)
        assert r.status_code == 404, (bad, r.status_code)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_mcp_client_with_the_token(token_server, mode):
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http:
        async with Client(streamable_http_client(token_server.url, http_client=http), mode=mode) as client:
            r = await client.call_tool("list_entries", {"limit": 3})
            assert not r.is_error and len(r.structured_content["entries"]) == 3
    # Without the header the handshake gets the 401 and the client fails with an MCPError.
    with pytest.raises(BaseExceptionGroup) as failed:
        async with httpx2.AsyncClient(timeout=30) as http:
            async with Client(streamable_http_client(token_server.url, http_client=http), mode=mode) as client:
                await client.call_tool("list_entries", {"limit": 1})
    assert failed.group_contains(MCPError), failed.value


def test_token_from_environment(wirelens_bin, tmp_path):
    s = start(wirelens_bin, tmp_path, "env", env={**os.environ, "WIRELENS_TOKEN": TOKEN})
    try:
        assert post(s.url, initialize()).status_code == 401
        assert post(s.url, initialize(), {"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    finally:
        s.stop()


def test_non_loopback_bind_without_token_refuses_to_start(wirelens_bin):
    env = {k: v for k, v in os.environ.items() if k != "WIRELENS_TOKEN"}
    for addr in ["0.0.0.0:0", "[::]:0"]:
        out = subprocess.run([wirelens_bin, "serve", "--demo", "--listen", addr], capture_output=True, text=True,
                             timeout=60, env=env, stdin=subprocess.DEVNULL)
        assert out.returncode != 0, (addr, out.stderr)
        assert "refusing to listen" in out.stderr and "token" in out.stderr, out.stderr
        assert "listening on" not in out.stderr


def test_empty_token_file_refuses_to_start(wirelens_bin, tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    out = subprocess.run([wirelens_bin, "serve", "--demo", "--listen", "127.0.0.1:0", "--token-file", str(empty)],
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode != 0 and "empty" in out.stderr, out.stderr


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory):
    """A self-signed certificate for localhost and 127.0.0.1 (openssl CLI)."""
    openssl = shutil.which("openssl")
    if not openssl:
        unavailable("openssl is not installed (scripts/test installs it)")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert),
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_https_with_a_trusted_self_signed_certificate(wirelens_bin, tmp_path, tls_pair, mode):
    cert, key = tls_pair
    s = start(wirelens_bin, tmp_path, "tls", ["--tls-cert", str(cert), "--tls-key", str(key)],
              scheme="https", cafile=str(cert))
    try:
        assert s.url.startswith("https://127.0.0.1:")
        ctx = ssl.create_default_context(cafile=str(cert))
        async with httpx2.AsyncClient(verify=ctx, timeout=30) as http:
            async with Client(streamable_http_client(s.url, http_client=http), mode=mode) as client:
                r = await client.call_tool("list_entries", {"limit": 2})
                assert not r.is_error and len(r.structured_content["entries"]) == 2
        # Untrusted (default CA store): the handshake fails; plain HTTP to the TLS port gets nothing.
        with pytest.raises(httpx2.ConnectError):
            httpx2.get(f"{s.base}/healthz", timeout=10)
        with pytest.raises(httpx2.HTTPError):
            httpx2.get(f"http://{s.addr}/healthz", timeout=10)
    finally:
        s.stop()


def tool_calls(metrics_text: str, tool: str) -> int:
    m = re.search(rf'^wirelens_tool_calls_total\{{tool="{tool}"\}} (\d+)$', metrics_text, re.M)
    assert m, f"no wirelens_tool_calls_total for {tool} in:\n{metrics_text[:2000]}"
    return int(m.group(1))


@pytest.mark.anyio
async def test_metrics_count_tool_calls(wirelens_bin, tmp_path):
    s = start(wirelens_bin, tmp_path, "metrics")
    try:
        before = httpx2.get(f"{s.base}/metrics", timeout=10).text
        assert tool_calls(before, "list_entries") == 0
        async with Client(s.url) as client:
            for _ in range(5):
                assert not (await client.call_tool("list_entries", {"limit": 1})).is_error
            assert (await client.call_tool("get_payload", {"id": "nope"})).is_error
        after = httpx2.get(f"{s.base}/metrics", timeout=10).text
        assert tool_calls(after, "list_entries") == 5
        assert tool_calls(after, "get_payload") == 1
    finally:
        s.stop()
