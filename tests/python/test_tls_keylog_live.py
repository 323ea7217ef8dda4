"""TLS decrypted live with a key log: an HTTPS server (Python `ssl`, OpenSSL 3) in one network
namespace, a client in the other that writes its secrets to a key log (SSLKEYLOGFILE, as browsers
and curl do), and `wirelens mcp --interface --keylog` capturing the client's veth. The key log is
empty when wirelens starts and grows while it runs: every request must come back decrypted, with
its status, and the connection's `tls` entry must say `decrypted`.

Needs root and iproute2 (the namespaces of test_live_capture.py) and openssl for the
certificate. Under CI=true a missing prerequisite fails; elsewhere it skips."""

import contextlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

import pytest
from mcp import Client, StdioServerParameters

from conftest import unavailable
from test_ebpf_live import HTTPS_SERVER, wait_listening
from test_live_capture import netns_pair, sh  # noqa: F401  (the fixture is used by name)


@pytest.mark.anyio
async def test_https_is_decrypted_live_with_a_growing_key_log(wirelens_bin, netns_pair):
    n = netns_pair
    openssl = shutil.which("openssl") or unavailable("openssl is not installed (a certificate is needed)")
    port = random.randrange(40000, 50000)
    with tempfile.TemporaryDirectory() as tmp:
        key, cert, keylog = (os.path.join(tmp, x) for x in ("k.pem", "c.pem", "keys.log"))
        sh(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
           "-days", "1", "-subj", "/CN=wirelens-test")
        open(keylog, "w").close()
        web = subprocess.Popen(
            [n["ip"], "netns", "exec", n["b"], sys.executable, "-c", HTTPS_SERVER, n["server"], str(port), cert, key],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_listening(n, port)
            params = StdioServerParameters(
                command=n["ip"],
                args=["netns", "exec", n["a"], wirelens_bin, "mcp", "--interface", n["dev_a"], "--no-ebpf",
                      "--keylog", keylog, "--ring-blocks", "8", "--ring-block-size", "256KiB"])
            async with Client(params) as client:
                start = (await client.call_tool("watch_entries", {"timeout_ms": 0})).structured_content
                client_code = (
                    "import ssl, urllib.request, urllib.error\n"
                    "ctx = ssl._create_unverified_context()\n"
                    f"ctx.keylog_filename = {keylog!r}\n"
                    "for p in ('/one', '/missing', '/three?x=1'):\n"
                    "    try: urllib.request.urlopen("
                    f"'https://{n['server']}:{port}' + p, context=ctx, timeout=5).read()\n"
                    # Read the error body: a socket closed with unread data is reset, and a
                    # reset connection ends before a live key log is read again (see README).
                    "    except urllib.error.HTTPError as e: e.read()\n")
                sh(n["ip"], "netns", "exec", n["a"], sys.executable, "-c", client_code)
                assert os.path.getsize(keylog) > 0, "the client wrote no secrets"

                seen, cursor = [], start["next_cursor"]
                deadline = time.monotonic() + 25
                while len(seen) < 3 and time.monotonic() < deadline:
                    w = (await client.call_tool("watch_entries", {
                        "cursor": cursor, "filter": "http && decrypted", "timeout_ms": 3000,
                        "fields": ["path", "status", "dst.port"]})).structured_content
                    seen += w["entries"]
                    cursor = w["next_cursor"]
                got = sorted((e["path"], e["status"]) for e in seen)
                if len(got) != 3:
                    r = (await client.call_tool("list_entries", {"filter": f"dst.port == {port}"})).structured_content
                    st = (await client.call_tool("capture_status", {})).structured_content
                    raise AssertionError(f"{seen}\n{r['entries']}\n{st['dissection']}\n{st['drops']}")
                assert got == [("/missing", 404), ("/one", 200), ("/three?x=1", 200)], seen
                assert all(e["dst.port"] == port for e in seen)
                # Each connection's tls entry says it was decrypted (written when it ends).
                tls = []
                deadline = time.monotonic() + 20
                while len(tls) < 3 and time.monotonic() < deadline:
                    r = (await client.call_tool("list_entries", {
                        "filter": f"tls_decryption == \"decrypted\" && dst.port == {port}",
                        "fields": ["tls_decryption"]})).structured_content
                    tls = r["entries"]
                    time.sleep(0.5)
                assert len(tls) == 3, tls
                # No secret from the key log appears in any answer.
                secrets = [line.split()[2] for line in open(keylog) if len(line.split()) == 3]
                status = (await client.call_tool("capture_status", {})).structured_content
                everything = str(status) + str(seen) + str(tls)
                assert secrets and not any(s[:16].lower() in everything.lower() for s in secrets)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(web.pid, 9)
            web.wait()
