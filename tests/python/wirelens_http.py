"""`wirelens serve` as a test fixture: start it on 127.0.0.1 port 0, read the real address from its
`wirelens: listening on ADDR` line on stderr, wait for /readyz, and end its process group at the
end. Used by test_mcp_client.py and test_http_security.py (and scripts/bench-mcp)."""

import os
import re
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request

LISTENING = re.compile(r"wirelens: listening on (\S+)\r?\n")  # a whole line, not one half-written


class ServerFailed(RuntimeError):
    pass


class HttpServer:
    """A running `wirelens serve`; `url` is its MCP endpoint, `base` its scheme://host:port."""

    def __init__(self, proc: subprocess.Popen, log_path: str, addr: str, scheme: str):
        self.proc = proc
        self.log_path = log_path
        self.addr = addr
        self.port = int(addr.rsplit(":", 1)[1])
        self.base = f"{scheme}://{addr}"
        self.url = f"{self.base}/mcp"

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        stop_group(self.proc)


def stop_group(proc: subprocess.Popen, grace: float = 5.0):
    """SIGTERM to the process group, SIGKILL after `grace` seconds."""
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def start(bin_path: str, log_path, args=(), env=None, scheme: str = "http", cafile=None,
          timeout: float = 60.0, sources=("--demo",)) -> HttpServer:
    """Starts `wirelens serve SOURCES --listen 127.0.0.1:0 ARGS` (the demo unless told) and waits
    until it is ready. Raises ServerFailed (with the server's log) if it exits or does not come up
    in `timeout`."""
    log_path = str(log_path)
    cmd = [bin_path, "serve", *sources, "--listen", "127.0.0.1:0", *args]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        addr = None
        while addr is None:
            with open(log_path, errors="replace") as f:
                m = LISTENING.search(f.read())
            if m:
                addr = m.group(1)
            elif proc.poll() is not None or time.monotonic() > deadline:
                raise ServerFailed(f"{' '.join(cmd)} did not start (exit {proc.poll()}):\n"
                                   + open(log_path, errors="replace").read()[-3000:])
            else:
                time.sleep(0.05)
        server = HttpServer(proc, log_path, addr, scheme)
        ctx = ssl.create_default_context(cafile=cafile) if scheme == "https" else None
        while True:
            try:
                with urllib.request.urlopen(f"{server.base}/readyz", timeout=5, context=ctx) as r:
                    if r.status == 200:
                        return server
            except urllib.error.HTTPError as e:
                if e.code != 503:
                    raise ServerFailed(f"/readyz answered {e.code}:\n{server.log()[-3000:]}") from e
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ServerFailed(f"{server.base} never became ready (exit {proc.poll()}):\n"
                                   + server.log()[-3000:])
            time.sleep(0.1)
    except BaseException:
        stop_group(proc)
        raise
